# SPDX-License-Identifier: Apache-2.0
"""Connection limits, publish rates and the kernel send buffer: what a stranger can make Squall hold."""
import asyncio
import json
import re
import socket
import subprocess
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from conftest import Squall
from test_hostile import never_reading_socket
from test_origin import error_code, request


async def open_socket(url, **options):
    """A WebSocket once the server has let go of the connections a test closed just before.

    The server releases a connection's place when it sees the close, a moment after the client
    has closed, so a refusal is retried for a few seconds."""
    deadline = time.monotonic() + 5
    while True:
        try:
            return await connect(url, open_timeout=5, **options)
        except InvalidStatus as refused:
            if refused.response.status_code != 503 or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def refusal(url, **options):
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, open_timeout=5, **options):
            pass
    return refused.value.response


async def test_the_connection_over_the_limit_gets_503_and_the_open_ones_carry_on(squall):
    server = squall("--log-level", "error", "--max-connections", "3")
    clients = [await open_socket(f"{server.ws}/msg") for _ in range(3)]

    response = await refusal(f"{server.ws}/msg")
    assert response.status_code == 503
    assert error_code(response.body) == "too_many_connections"
    assert response.headers["Retry-After"] == "1"
    status, headers, body = request(f"{server.http}/healthz")
    assert (status, error_code(body)) == (503, "too_many_connections")

    await clients[0].send("still here")
    for client in clients:
        assert await asyncio.wait_for(client.recv(), 5) == "still here"

    await clients[0].close()
    replacement = await open_socket(f"{server.ws}/msg")
    await clients[1].send("after one left")
    assert await asyncio.wait_for(replacement.recv(), 5) == "after one left"
    for client in [*clients[1:], replacement]:
        await client.close()


async def test_one_address_may_hold_only_its_share_and_others_still_connect(squall):
    server = squall("--log-level", "error", "--max-connections-per-address", "2")
    neighbour = ("127.0.0.2", 0)
    mine = [await open_socket(f"{server.ws}/msg", local_addr=neighbour) for _ in range(2)]

    response = await refusal(f"{server.ws}/msg", local_addr=neighbour)
    assert (response.status_code, error_code(response.body)) == (503, "too_many_connections")
    assert "from one address" in json.loads(response.body)["error"]["message"]

    other = await open_socket(f"{server.ws}/msg", local_addr=("127.0.0.3", 0))
    local = [await open_socket(f"{server.ws}/msg") for _ in range(3)]
    await other.send("hello")
    for client in [*mine, *local]:
        assert await asyncio.wait_for(client.recv(), 5) == "hello"
    for client in [*mine, other, *local]:
        await client.close()


async def test_a_ws_publisher_over_the_rate_is_told_and_stays_open(squall):
    server = squall("--log-level", "error", "--publish-rate", "1/min", "--publish-burst", "5")
    async with connect(f"{server.ws}/ws", subprotocols=["squall.v1"]) as reader, connect(
        f"{server.ws}/ws", subprotocols=["squall.v1"]
    ) as publisher:
        for client in (reader, publisher):
            await client.recv()  # welcome
        await reader.send(json.dumps({"op": "subscribe", "channel": "room", "ref": 0}))
        assert json.loads(await reader.recv())["type"] == "subscribed"

        for n in range(8):
            await publisher.send(json.dumps({"op": "publish", "channel": "room", "data": f"m{n}", "ref": n}))
        replies = [json.loads(await asyncio.wait_for(publisher.recv(), 5)) for _ in range(8)]
        assert [r["type"] for r in replies] == ["published"] * 5 + ["error"] * 3
        assert {r["code"] for r in replies[5:]} == {"rate_limited"}
        assert "rate" in replies[5]["message"]

        await publisher.send(json.dumps({"op": "ping", "ref": "alive"}))
        assert json.loads(await asyncio.wait_for(publisher.recv(), 5)) == {"type": "pong", "ref": "alive"}
        received = [json.loads(await asyncio.wait_for(reader.recv(), 5))["data"] for _ in range(5)]
        assert received == [f"m{n}" for n in range(5)]
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(reader.recv(), 0.5)


async def test_a_ws_publisher_gets_tokens_back_at_the_rate(squall):
    server = squall("--log-level", "error", "--publish-rate", "10/s", "--publish-burst", "1")
    async with connect(f"{server.ws}/ws", subprotocols=["squall.v1"]) as publisher:
        await publisher.recv()
        results = []
        for n in range(3):
            await publisher.send(json.dumps({"op": "publish", "channel": "room", "data": "x", "ref": n}))
            results.append(json.loads(await asyncio.wait_for(publisher.recv(), 5))["type"])
        assert results.count("published") >= 1 and "error" in results
        await asyncio.sleep(0.2)
        await publisher.send(json.dumps({"op": "publish", "channel": "room", "data": "later", "ref": "later"}))
        assert json.loads(await asyncio.wait_for(publisher.recv(), 5))["type"] == "published"


def test_http_publishes_over_the_rate_get_429_with_retry_after_and_are_not_kept(squall):
    server = squall("--log-level", "error", "--publish-rate", "1/min", "--publish-burst", "2")
    url = f"{server.http}/channels/room/messages"
    statuses = [request(url, "POST", body=f"m{n}".encode())[0] for n in range(2)]
    assert statuses == [201, 201]
    status, headers, body = request(url, "POST", body=b"one too many")
    assert (status, error_code(body)) == (429, "rate_limited")
    assert 1 <= int(headers["Retry-After"]) <= 60
    # Reads are not publishes: they are not limited.
    status, _, history = request(f"{server.http}/channels/room/history")
    assert status == 200
    assert [m["data"] for m in json.loads(history)["messages"]] == ["m0", "m1"]


async def test_a_msg_client_that_keeps_over_the_rate_is_closed_with_1008(squall):
    server = squall("--log-level", "error", "--publish-rate", "1/min", "--publish-burst", "3")
    async with connect(f"{server.ws}/msg/room") as listener:
        flooder = await connect(f"{server.ws}/msg/room")
        for n in range(6):
            try:
                await flooder.send(f"m{n}")
            except ConnectionClosed:
                break
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(flooder.recv(), 5)
        assert closed.value.rcvd.code == 1008
        assert closed.value.rcvd.reason == "publish rate exceeded"
        heard = [await asyncio.wait_for(listener.recv(), 5) for _ in range(3)]
        assert heard == ["m0", "m1", "m2"]
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(listener.recv(), 0.5)
        # The listener, who kept to the rate, is still served.
        await listener.send("still here")
        assert await asyncio.wait_for(listener.recv(), 5) == "still here"


def test_publish_rate_off_lets_a_burst_through(squall):
    server = squall("--log-level", "error", "--publish-rate", "off")
    url = f"{server.http}/channels/room/messages"
    assert {request(url, "POST", body=b"x")[0] for _ in range(50)} == {201}


@pytest.mark.parametrize(
    "args",
    [
        ["--max-connections", "0"],
        ["--max-connections-per-address", "0"],
        ["--publish-rate", "100"],
        ["--publish-rate", "0/s"],
        ["--publish-burst", "0"],
        ["--socket-send-buffer", "2GiB"],
    ],
)
def test_a_limit_that_makes_no_sense_is_a_usage_error(args):
    server = Squall(args, {})
    _, log = server.exited()
    assert server.process.returncode == 64, log


def send_buffer_of(server, client):
    """`tb` — the send buffer the kernel gives the server's end of `client`'s connection."""
    peer = client.getsockname()[1]
    lines = subprocess.run(
        ["ss", "-tmnH", "state", "established", f"( sport = :{server.port} and dport = :{peer} )"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    found = re.search(r"tb(\d+)", lines)
    assert found, lines
    return int(found.group(1))


def fill(server, channel, stalled):
    """Publishes 8 MiB to `channel` — past any loopback send buffer and far below the outbox —
    and returns the stalled client's server-side send buffer then."""
    chunk = b"x" * 65536
    for _ in range(128):
        assert request(f"{server.http}/channels/{channel}/messages", "POST", body=chunk)[0] == 201
    time.sleep(0.3)
    return send_buffer_of(server, stalled)


@pytest.mark.skipif(not subprocess.run(["which", "ss"], capture_output=True).stdout, reason="needs ss (iproute2)")
def test_a_client_that_stops_reading_pins_at_most_the_capped_send_buffer(squall):
    capped = squall("--log-level", "error", "--publish-rate", "off")
    stalled = never_reading_socket(capped, "/msg/big")
    # Linux keeps twice SO_SNDBUF; the default is 256 KiB.
    assert fill(capped, "big", stalled) <= 2 * 256 * 1024
    stalled.close()

    # The same load with the kernel left to autotune: the cap is what made the difference.
    free = squall("--log-level", "error", "--publish-rate", "off", "--socket-send-buffer", "off")
    stalled = never_reading_socket(free, "/msg/big")
    assert fill(free, "big", stalled) > 2 * 256 * 1024
    stalled.close()
