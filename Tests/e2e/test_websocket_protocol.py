# SPDX-License-Identifier: Apache-2.0
"""RFC 6455 edge cases against Squall's own WebSocket layer, with a raw socket so that the
client can break the rules on purpose (libraries will not send unmasked or malformed frames)."""
import asyncio
import base64
import hashlib
import json
import struct

from websockets.asyncio.client import connect

from rawsocket import RawSocket


async def test_protocol_errors_close_with_1002_and_a_reason(squall):
    server = squall()
    cases = [
        (dict(opcode=0x1, payload=b"hi", masked=False), "client frames must be masked"),
        (dict(opcode=0x1, payload=b"hi", rsv=4), "no extension was negotiated"),
        (dict(opcode=0x0, payload=b"tail"), "continuation frame without a message"),
        (dict(opcode=0x3, payload=b""), "unknown opcode"),
        (dict(opcode=0x9, payload=b"p", fin=False), "fragmented control frame"),
        (dict(opcode=0x9, payload=b"x" * 126), "control frame too long"),
        (dict(opcode=0x1, payload=b"x", rsv=2), "reserved bits set"),
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


async def test_frames_cut_anywhere_by_tcp_are_put_back_together(squall):
    server = squall()
    receiver = await RawSocket.connect(server)
    sender = await RawSocket.connect(server)
    # Three frames — 16-bit and 64-bit lengths among them — written one byte at a time.
    messages = [b"short", b"m" * 300, b"l" * 70000]
    data = b"".join(sender.frame(0x2, message) for message in messages)
    for index in range(len(data)):
        sender.writer.write(data[index:index + 1])
        if index % 1000 == 0:
            await sender.writer.drain()
    for message in messages:
        assert await receiver.receive() == (0x2, message)
    receiver.close()
    sender.close()


async def test_a_frame_over_the_limit_is_refused_from_its_header(squall):
    server = squall("--max-message-size", "1KiB")
    client = await RawSocket.connect(server)
    # Only the header of a 2 GiB frame: the server must not wait for (or buffer) the payload.
    client.writer.write(struct.pack("!BBQ", 0x82, 0x80 | 127, 2 << 30) + b"mask")
    assert await client.expect_close(1009) == "message too big"
    client.close()


async def open_raw(server, request):
    """A TCP connection that sends `request` (bytes) as it is and reads the response head."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(request)
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    return reader, writer, head


async def test_unusual_but_valid_upgrade_requests_are_accepted(squall):
    # Firefox's "Connection: keep-alive, Upgrade", lower-case names and odd spacing; a head over
    # 8 KiB (a big cookie); a frame sent in the same packet as the request: each one upgrades,
    # and the early frame is delivered.
    server = squall()
    receiver = await RawSocket.connect(server)
    key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    requests = [
        "GET /msg HTTP/1.1\r\nhost: 127.0.0.1\r\nupgrade:websocket\r\nconnection: keep-alive, Upgrade\r\n"
        f"sec-websocket-version:   13  \r\n{key}\r\n",
        f"GET /msg HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: {'c' * 9000}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Version: 13\r\n{key}\r\n",
    ]
    for index, request in enumerate(requests):
        early = receiver.frame(0x1, f"early {index}".encode())
        reader, writer, head = await open_raw(server, request.encode() + early)
        assert head.startswith(b"HTTP/1.1 101"), head
        assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head  # RFC 6455's example accept value
        assert await receiver.receive() == (0x1, f"early {index}".encode())
        writer.close()
    receiver.close()


async def test_accept_value_is_right_for_every_key_length(squall):
    # Sec-WebSocket-Accept is SHA-1 of key + GUID, base64 (RFC 6455 §4.2.2). Keys whose length
    # puts the hashed message at each SHA-1 padding boundary (55/56/63/64 bytes and two blocks
    # on) must all get the value a client computes, or every browser refuses the socket.
    server = squall()
    guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
    for length in (1, 19, 20, 27, 28, 83, 84, 100):
        key = "k" * length
        request = (
            "GET /msg HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n\r\n"
        )
        _, writer, head = await open_raw(server, request.encode())
        expected = base64.b64encode(hashlib.sha1((key + guid).encode()).digest())
        assert head.startswith(b"HTTP/1.1 101"), head
        assert b"Sec-WebSocket-Accept: " + expected + b"\r\n" in head, (length, head)
        writer.close()


async def test_requests_the_fast_path_does_not_take_are_served_as_before(squall):
    server = squall()
    key = "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    # An upgrade to an unknown path gets the JSON error a GET gets.
    _, writer, head = await open_raw(
        server, f"GET /nowhere HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n{key}\r\n".encode()
    )
    assert head.startswith(b"HTTP/1.1 404"), head
    writer.close()
    # A version other than 13 gets 426 and the version Squall speaks (RFC 6455 §4.4); an
    # upgrade without a key gets 400. Both as JSON errors, and the connection closes.
    for version, key_line, status, code in [
        ("8", key, b"426", "unsupported_websocket_version"),
        ("13", "", b"400", "invalid_websocket_key"),
    ]:
        reader, writer, head = await open_raw(
            server,
            f"GET /msg HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: {version}\r\n{key_line}\r\n".encode(),
        )
        assert head.startswith(b"HTTP/1.1 " + status), head
        assert status != b"426" or b"sec-websocket-version: 13" in head.lower(), head
        body = await asyncio.wait_for(reader.read(), 5)  # then the server closes
        assert json.loads(body)["error"]["code"] == code
        writer.close()
    # Plain HTTP on the same port, keep-alive: two requests on one connection.
    reader, writer, head = await open_raw(server, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    length = int([line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")][0])
    await reader.readexactly(length)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).startswith(b"HTTP/1.1 200")
    writer.close()


async def test_a_message_echoed_just_before_a_protocol_error_arrives_before_the_close(squall):
    # Autobahn 3.2: the echo of the valid message was lost to the close of the bad frame after it.
    server = squall("--log-level", "error")
    client = await RawSocket.connect(server)
    client.writer.write(client.frame(0x1, b"Hello, world!") + client.frame(0x1, b"Hello, world!", rsv=2) + client.frame(0x9))
    opcode, payload = await client.receive()
    assert (opcode, payload) == (0x1, b"Hello, world!"), "the echo first"
    assert await client.expect_close(1002) == "reserved bits set"
    client.close()


async def test_invalid_utf8_in_a_fragment_closes_at_that_fragment_not_at_the_end(squall):
    # Autobahn 6.4.1: noticed only at the message's end, which never comes here.
    server = squall("--log-level", "error")
    client = await RawSocket.connect(server)
    client.send(0x1, "κόσμε".encode(), fin=False)
    client.send(0x0, b"\xf4\x90\x80\x80", fin=False)
    assert await client.expect_close(1007) == "invalid UTF-8 in a text message"
    client.close()


async def test_invalid_utf8_is_caught_while_its_frame_is_still_arriving(squall):
    # Autobahn 6.4.3: a frame of 1,000 bytes whose first ones are invalid, the rest never sent.
    server = squall("--log-level", "error")
    client = await RawSocket.connect(server)
    whole = client.frame(0x1, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80" + b"x" * 986)
    client.writer.write(whole[:8 + 20])
    assert await client.expect_close(1007) == "invalid UTF-8 in a text message"
    client.close()


async def test_since_takes_every_offset_on_ws_as_over_http(squall):
    # Before: /ws took offsets only up to 2^63-1 ("wrong type"), HTTP up to 2^64-1.
    server = squall("--log-level", "error")
    async with connect(f"{server.ws}/ws", subprotocols=["squall.v1"]) as ws:
        await ws.recv()
        for offset in (2**63, 2**64 - 1):
            await ws.send(json.dumps({"op": "subscribe", "channel": "big", "since": {"epoch": "e", "offset": offset}, "ref": offset}))
            reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
            assert reply["type"] == "subscribed" and reply["recovered"] is False, reply
        await ws.send(json.dumps({"op": "subscribe", "channel": "big", "since": {"epoch": "e", "offset": 2**64}, "ref": "over"}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert reply["type"] == "error" and reply["code"] == "invalid_request"
