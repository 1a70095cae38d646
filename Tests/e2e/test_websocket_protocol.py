"""RFC 6455 edge cases against Squall's own WebSocket layer, with a raw socket so that the
client can break the rules on purpose (libraries will not send unmasked or malformed frames)."""
import asyncio
import os
import struct


class RawSocket:
    """A WebSocket client made of a TCP stream and hand-built frames."""

    @classmethod
    async def connect(cls, server, path="/msg"):
        self = cls()
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", server.port)
        self.writer.write(
            f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        head = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5)
        assert head.startswith(b"HTTP/1.1 101"), head
        return self

    def send(self, opcode, payload=b"", fin=True, masked=True, rsv=0):
        first = (0x80 if fin else 0) | rsv << 4 | opcode
        mask = os.urandom(4) if masked else b""
        header = struct.pack("!BB", first, (0x80 if masked else 0) | len(payload))
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if masked else payload
        self.writer.write(header + mask + body)

    async def receive(self):
        """(opcode, payload) of the next frame the server sends."""
        first, second = await asyncio.wait_for(self.reader.readexactly(2), 5)
        length = second & 0x7F
        if length == 126:
            length = struct.unpack("!H", await self.reader.readexactly(2))[0]
        elif length == 127:
            length = struct.unpack("!Q", await self.reader.readexactly(8))[0]
        return first & 0x0F, await self.reader.readexactly(length)

    async def expect_close(self, code):
        opcode, payload = await self.receive()
        while opcode != 0x8:
            opcode, payload = await self.receive()
        assert struct.unpack("!H", payload[:2])[0] == code, payload
        return payload[2:].decode()

    def close(self):
        self.writer.close()


async def test_protocol_errors_close_with_1002_and_a_reason(squall):
    server = squall()
    cases = [
        (dict(opcode=0x1, payload=b"hi", masked=False), "client frames must be masked"),
        (dict(opcode=0x1, payload=b"hi", rsv=4), "no extension was negotiated"),
        (dict(opcode=0x0, payload=b"tail"), "continuation frame without a message"),
        (dict(opcode=0x3, payload=b""), "unknown opcode"),
    ]
    for frame, reason in cases:
        client = await RawSocket.connect(server)
        client.send(**frame)
        assert await client.expect_close(1002) == reason
        client.close()


async def test_ping_gets_its_payload_back_and_fragments_are_reassembled(squall):
    server = squall()
    client = await RawSocket.connect(server)
    client.send(0x9, b"are you there")
    assert await client.receive() == (0xA, b"are you there")
    # A text message in three fragments, with a ping between them, arrives whole.
    client.send(0x1, b"hel", fin=False)
    client.send(0x0, b"lo ", fin=False)
    client.send(0x9, b"p")
    client.send(0x0, b"world")
    assert await client.receive() == (0xA, b"p")
    assert await client.receive() == (0x1, b"hello world")
    client.close()


async def test_the_server_echoes_a_close_and_refuses_codes_that_may_not_be_sent(squall):
    server = squall()
    client = await RawSocket.connect(server)
    client.send(0x8, struct.pack("!H", 4321) + b"bye")
    assert await client.expect_close(4321) == ""
    assert await asyncio.wait_for(client.reader.read(), 5) == b""  # then the TCP connection ends
    client.close()

    reserved = await RawSocket.connect(server)
    reserved.send(0x8, struct.pack("!H", 1005))  # "no status", which no endpoint may send
    await reserved.expect_close(1002)
    reserved.close()
