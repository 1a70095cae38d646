# SPDX-License-Identifier: Apache-2.0
"""permessage-deflate (RFC 7692): what Squall negotiates, what it compresses, what it inflates,
and how it fails a client that sends bad compressed data. Raw sockets show the wire (RSV1 and
the compressed bytes); Python's `websockets`, which offers the extension by default, shows that
a real client library interoperates."""
import asyncio
import json
import struct
import urllib.request
import zlib

import pytest
from websockets.asyncio.client import connect
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from rawsocket import RawSocket

ACCEPTED = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
BROWSER_OFFER = "permessage-deflate; client_max_window_bits"  # what Chromium sends
RSV1 = 0x40


def deflate(data, compressor=None):
    """One permessage-deflate message body: raw DEFLATE, sync-flushed, without 00 00 FF FF."""
    compressor = compressor or zlib.compressobj(wbits=-15)
    body = compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH)
    assert body.endswith(b"\x00\x00\xff\xff")
    return body[:-4]


def inflate(body):
    return zlib.decompressobj(wbits=-15).decompress(body + b"\x00\x00\xff\xff")


def publish(server, channel, text):
    request = urllib.request.Request(
        f"{server.http}/channels/{channel}/messages", data=text.encode(), method="POST",
        headers={"Content-Type": "text/plain"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status in (200, 201)


async def test_offers_are_accepted_on_squalls_terms_or_declined(squall):
    server = squall()
    cases = [
        (BROWSER_OFFER, ACCEPTED),
        ("permessage-deflate", ACCEPTED),
        ("permessage-deflate; client_max_window_bits=10; server_no_context_takeover", ACCEPTED),
        # A server accepts server_max_window_bits by answering it (RFC 7692 §7.1.2.1).
        ('permessage-deflate; server_max_window_bits="15"', ACCEPTED + "; server_max_window_bits=15"),
        # A smaller window is compressed with, and named in the answer ...
        ("permessage-deflate; server_max_window_bits=10", ACCEPTED + "; server_max_window_bits=10"),
        ("x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=9, permessage-deflate", ACCEPTED + "; server_max_window_bits=9"),
        # ... and an offer Squall cannot take gives way to the next.
        ("permessage-deflate; server_max_window_bits=7, permessage-deflate", ACCEPTED),
        ("permessage-deflate; unknown_parameter", None),
        ("permessage-deflate; client_no_context_takeover; client_no_context_takeover", None),
        ("permessage-deflate; client_max_window_bits=16", None),
        ("x-webkit-deflate-frame", None),
    ]
    for offer, answer in cases:
        client = await RawSocket.connect(server, extensions=offer)
        assert client.extensions == answer, offer
        client.close()


async def test_turned_off_the_extension_is_never_negotiated(squall):
    for server in [squall("--deflate-min-size", "off"), squall(env={"SQUALL_DEFLATE_MIN_SIZE": "off"})]:
        client = await RawSocket.connect(server, extensions=BROWSER_OFFER)
        assert client.extensions is None
        client.close()


async def test_large_messages_go_compressed_to_clients_that_negotiated(squall):
    server = squall()
    compressed = await RawSocket.connect(server, extensions=BROWSER_OFFER)
    plain = await RawSocket.connect(server)
    large = json.dumps([{"user": "alice", "text": f"message number {i}"} for i in range(100)]).encode()
    small = b"hello"
    compressed.send(0x1, large)
    compressed.send(0x1, small)

    first, body = await compressed.receive_frame()
    assert first & RSV1 and first & 0x0F == 0x1
    assert len(body) < len(large) / 3
    assert inflate(body) == large
    first, body = await compressed.receive_frame()
    assert not first & RSV1 and body == small  # below 1 KiB: not compressed
    # A client without the extension gets the same messages as they were sent.
    assert await plain.receive_frame() == (0x81, large)
    assert await plain.receive_frame() == (0x81, small)
    compressed.close()
    plain.close()


async def test_envelopes_on_ws_are_compressed_too(squall):
    server = squall()
    client = await RawSocket.connect(server, path="/ws", extensions=BROWSER_OFFER)
    assert client.extensions == ACCEPTED
    _, body = await client.receive_frame()
    assert json.loads(body)["type"] == "welcome"
    client.send(0x1, json.dumps({"op": "subscribe", "channel": "room", "ref": 1}).encode())
    _, body = await client.receive_frame()
    assert json.loads(body)["type"] == "subscribed"
    text = "the same words again and again " * 100
    publish(server, "room", text)
    first, body = await client.receive_frame()
    assert first & RSV1
    envelope = json.loads(inflate(body))
    assert envelope["type"] == "message" and envelope["data"] == text
    client.close()


async def test_compressed_messages_from_clients_are_inflated(squall):
    server = squall("--deflate-min-size", "0")
    receiver = await RawSocket.connect(server)
    sender = await RawSocket.connect(server, extensions=BROWSER_OFFER)
    text = b"compress me, " * 200
    # One compressed message in two frames: RSV1 on the first only (RFC 7692 section 6.1).
    body = deflate(text)
    sender.send(0x1, body[:10], fin=False, rsv=4)
    sender.send(0x0, body[10:])
    assert await receiver.receive() == (0x1, text)
    # An uncompressed message from the same client is fine too.
    sender.send(0x1, b"plain")
    assert await receiver.receive() == (0x1, b"plain")
    receiver.close()
    sender.close()


@pytest.mark.parametrize("bits", range(8, 16))
async def test_a_client_that_asks_for_a_smaller_window_gets_what_it_can_inflate(squall, bits):
    # websockets inflates with exactly the window it asked for: a back-reference beyond it
    # fails ("invalid distance too far back"). On 8 bits, which zlib cannot compress with,
    # Squall sends messages uncompressed.
    server = squall("--deflate-min-size", "0", "--log-level", "error")
    factory = ClientPerMessageDeflateFactory(server_max_window_bits=bits)
    # Text whose repeats lie far apart: a 32 KiB window would reach back past a small one.
    text = "".join(f"{i:05d} " + "abcdefghij"[i % 10] * 40 for i in range(600))
    async with connect(f"{server.ws}/msg", extensions=[factory], compression=None) as client:
        [extension] = client.protocol.extensions
        assert extension.remote_max_window_bits == bits
        await client.send(text)
        assert await asyncio.wait_for(client.recv(), 5) == text
    # On the wire: compressed with that window (zlib inflates it with exactly that many bits).
    raw = await RawSocket.connect(server, extensions=f"permessage-deflate; server_max_window_bits={bits}")
    assert raw.extensions == ACCEPTED + f"; server_max_window_bits={bits}"
    publish(server, "msg", text)
    first, body = await raw.receive_frame()
    if bits == 8:
        assert not first & RSV1 and body == text.encode()
    else:
        assert first & RSV1
        assert zlib.decompressobj(wbits=-bits).decompress(body + b"\x00\x00\xff\xff") == text.encode()
    raw.close()


async def test_websockets_library_interoperates_both_ways(squall):
    server = squall("--deflate-min-size", "0")
    async with connect(f"{server.ws}/msg") as alice, connect(f"{server.ws}/msg", compression=None) as bob:
        [extension] = alice.protocol.extensions
        assert extension.name == "permessage-deflate"
        assert extension.local_no_context_takeover and extension.remote_no_context_takeover
        # Several compressed messages in a row: each is inflated on its own.
        messages = [f"{i}: " + "lorem ipsum dolor sit amet " * 50 for i in range(5)]
        for message in messages:
            await alice.send(message)
        for message in messages:
            assert await asyncio.wait_for(alice.recv(), 5) == message
            assert await asyncio.wait_for(bob.recv(), 5) == message


async def test_bad_compressed_data_closes_that_client_only(squall):
    server = squall("--max-message-size", "64KiB")
    bystander = await RawSocket.connect(server, extensions=BROWSER_OFFER)
    context_takeover = zlib.compressobj(wbits=-15)
    cases = [
        (dict(opcode=0x1, payload=b"\xff\xff\xff\xff", rsv=4), 1007, "invalid compressed data"),
        # Inflates past --max-message-size (128 KiB of zeros is ~130 bytes compressed).
        (dict(opcode=0x2, payload=deflate(bytes(128 << 10)), rsv=4), 1009, "message too big"),
        (dict(opcode=0x9, payload=b"", rsv=4), 1002, "RSV1 set on a non-first frame"),
        (dict(opcode=0x1, payload=b"x", rsv=2), 1002, "reserved bits set"),
    ]
    for frame, code, reason in cases:
        client = await RawSocket.connect(server, extensions=BROWSER_OFFER)
        client.send(**frame)
        assert await client.expect_close(code) == reason
        client.close()

    # RSV1 on a continuation frame.
    client = await RawSocket.connect(server, extensions=BROWSER_OFFER)
    client.send(0x1, b"a", fin=False)
    client.send(0x0, deflate(b"b"), rsv=4)
    assert await client.expect_close(1002) == "RSV1 set on a non-first frame"
    client.close()

    # A client that keeps its compression context, which it agreed not to do: its second
    # message refers back into the first, which Squall no longer has.
    client = await RawSocket.connect(server, extensions=BROWSER_OFFER)
    repeated = b"a sentence that will be repeated word for word"
    client.send(0x1, deflate(repeated, context_takeover), rsv=4)
    assert (await bystander.receive_frame())[1] == repeated
    client.send(0x1, deflate(repeated, context_takeover), rsv=4)
    assert await client.expect_close(1007) == "invalid compressed data"
    client.close()

    # The server and the other client carry on.
    other = await RawSocket.connect(server)
    other.send(0x1, b"still here")
    assert (await bystander.receive_frame())[1] == b"still here"
    other.close()
    bystander.close()
