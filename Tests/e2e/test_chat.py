# SPDX-License-Identifier: Apache-2.0
"""The seed's chat, driven by Python's `websockets` client: a non-Swift client works."""
import asyncio

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


async def test_broadcast_reaches_every_python_client(squall):
    server = squall()
    async with connect(f"{server.ws}/msg") as alice, connect(f"{server.ws}/msg") as bob:
        await wait_for_connections(server, 2)
        await alice.send("hello from python")
        assert await asyncio.wait_for(alice.recv(), 5) == "hello from python"
        assert await asyncio.wait_for(bob.recv(), 5) == "hello from python"

        await bob.send(b"\x00\x01\xff")
        assert await asyncio.wait_for(alice.recv(), 5) == b"\x00\x01\xff"
        assert await asyncio.wait_for(bob.recv(), 5) == b"\x00\x01\xff"


async def test_a_message_sent_right_after_the_handshake_reaches_the_newcomer(squall):
    # Once its handshake completes a client is subscribed: nothing published after it is lost.
    # (The server used to subscribe it just after writing the 101, which lost a message now
    # and then; thirty tries caught that every time.)
    server = squall()
    async with connect(f"{server.ws}/msg") as sender:
        for attempt in range(30):
            async with connect(f"{server.ws}/msg") as newcomer:
                await sender.send(f"hello {attempt}")
                assert await asyncio.wait_for(newcomer.recv(), 5) == f"hello {attempt}"


async def test_oversize_message_closes_with_1009(squall):
    server = squall("--max-message-size", "1KiB")
    async with connect(f"{server.ws}/msg", max_size=None) as client:
        await client.send("x" * 2048)
        try:
            await asyncio.wait_for(client.recv(), 5)
            raise AssertionError("the server should have closed the connection")
        except ConnectionClosed as closed:
            assert closed.rcvd is not None and closed.rcvd.code == 1009


async def wait_for_connections(server, count):
    import json
    import urllib.request

    for _ in range(200):
        with urllib.request.urlopen(f"{server.http}/healthz", timeout=1) as response:
            if json.load(response)["connections"] == count:
                return
        await asyncio.sleep(0.02)
    raise AssertionError(f"the server never reported {count} open connections")
    raise AssertionError(f"expected {count} connections")


async def test_a_client_that_never_answers_pings_is_dropped_and_one_that_does_stays(squall):
    server = squall("--ping-interval", "0.3")
    # A raw socket: it completes the handshake, then never reads or answers a ping.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /msg HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)).startswith(b"HTTP/1.1 101")
    async with connect(f"{server.ws}/msg") as answering:  # websockets answers pings itself
        await wait_for_connections(server, 2)
        # Missing a ping by the next one (0.3-0.6 s) gets the silent client dropped.
        await wait_for_connections(server, 1)
        await asyncio.sleep(1)
        await answering.send("still here")
        assert await asyncio.wait_for(answering.recv(), 5) == "still here"
    writer.close()
