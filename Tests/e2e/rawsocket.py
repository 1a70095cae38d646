# SPDX-License-Identifier: Apache-2.0
"""A WebSocket client made by hand, for tests that must see or break the wire format."""
import asyncio
import os
import struct


class RawSocket:
    """A WebSocket client made of a TCP stream and hand-built frames."""

    @classmethod
    async def connect(cls, server, path="/msg", extensions=None):
        """Opens a WebSocket; `extensions` is sent as Sec-WebSocket-Extensions, and the
        response's value is kept in `self.extensions` (None when the server sent none)."""
        self = cls()
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", server.port)
        offer = f"Sec-WebSocket-Extensions: {extensions}\r\n" if extensions else ""
        self.writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{offer}\r\n".encode()
        )
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 101"), head
        fields = [line.split(":", 1) for line in head.decode().split("\r\n")[1:] if ":" in line]
        self.extensions = next((v.strip() for k, v in fields if k.lower() == "sec-websocket-extensions"), None)
        return self

    def frame(self, opcode, payload=b"", fin=True, masked=True, rsv=0):
        """The bytes of one client frame; `rsv` is the 3 RSV bits (4 = RSV1)."""
        first = (0x80 if fin else 0) | rsv << 4 | opcode
        mask = os.urandom(4) if masked else b""
        flag = 0x80 if masked else 0
        if len(payload) < 126:
            header = struct.pack("!BB", first, flag | len(payload))
        elif len(payload) < 1 << 16:
            header = struct.pack("!BBH", first, flag | 126, len(payload))
        else:
            header = struct.pack("!BBQ", first, flag | 127, len(payload))
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if masked else payload
        return header + mask + body

    def send(self, opcode, payload=b"", fin=True, masked=True, rsv=0):
        self.writer.write(self.frame(opcode, payload, fin, masked, rsv))

    async def receive_frame(self):
        """(first byte, payload) of the next frame the server sends: FIN, RSV bits, opcode."""
        first, second = await asyncio.wait_for(self.reader.readexactly(2), 5)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        return first, await self.reader.readexactly(length)

    async def receive(self):
        """(opcode, payload) of the next frame the server sends."""
        first, payload = await self.receive_frame()
        return first & 0x0F, payload

    async def expect_close(self, code):
        opcode, payload = await self.receive()
        while opcode != 0x8:
            opcode, payload = await self.receive()
        assert struct.unpack("!H", payload[:2])[0] == code, payload
        return payload[2:].decode()

    def close(self):
        self.writer.close()
