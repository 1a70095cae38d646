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
    raise AssertionError(f"expected {count} connections")
