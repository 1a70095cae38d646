// SPDX-License-Identifier: Apache-2.0

// Node.js + ws (Debian's node-ws): broadcast each message to every client of /msg.
const { WebSocketServer, WebSocket } = require('ws');

const port = Number(process.argv[2]);
// PEER_DEFLATE=1: permessage-deflate with ws's defaults (compare.py's idle-with-compression run).
const perMessageDeflate = process.env.PEER_DEFLATE === '1';
const server = new WebSocketServer({ host: '127.0.0.1', port, path: '/msg', perMessageDeflate, maxPayload: 1 << 20 });
server.on('connection', (socket) => {
  socket.on('message', (data, isBinary) => {
    for (const client of server.clients) {
      if (client.readyState === WebSocket.OPEN) client.send(data, { binary: isBinary });
    }
  });
});
