# SPDX-License-Identifier: Apache-2.0
"""The seed's MsgHandler, as the tutorial writes it: Tornado, a set of connections, a loop."""
import os
import sys

import tornado.ioloop
import tornado.web
import tornado.websocket


class MsgHandler(tornado.websocket.WebSocketHandler):
    conn_pool = set()

    def check_origin(self, origin):
        return True

    def get_compression_options(self):
        # PEER_DEFLATE=1: permessage-deflate with Tornado's defaults (compare.py's idle run).
        return {} if os.environ.get("PEER_DEFLATE") == "1" else None

    def open(self):
        self.conn_pool.add(self)

    def on_message(self, message):
        for conn in self.conn_pool:
            conn.write_message(message)

    def on_close(self):
        self.conn_pool.discard(self)


if __name__ == "__main__":
    app = tornado.web.Application([(r"/msg", MsgHandler)], websocket_max_message_size=1 << 20)
    app.listen(int(sys.argv[1]), "127.0.0.1")
    tornado.ioloop.IOLoop.current().start()
