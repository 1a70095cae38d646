# SPDX-License-Identifier: Apache-2.0
"""Presence cannot be used as an amplifier (issue 25, defect 7): subscribes and unsubscribes are
charged to a rate of their own, a join and leave within one presence turn never reach anyone,
and a watcher that reads at a modest pace is never closed by someone else's churn. All traffic
on 127.0.0.1, every loop bounded."""
import asyncio
import json
import time

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

INFO = {"name": "x" * 4000}


async def watch(server, channel, seconds, pause):
    """A watcher of `channel`'s presence reading one frame every `pause` s for `seconds`:
    (bytes of presence events it got, how its socket ended or None if open)."""
    received = 0
    async with connect(f"{server.ws}/ws", subprotocols=["squall.v1"], max_queue=1) as ws:
        await ws.recv()
        await ws.send(json.dumps({"op": "subscribe", "channel": channel, "presence": True, "ref": 0}))
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                try:
                    frame = await asyncio.wait_for(ws.recv(), max(0.01, deadline - time.monotonic()))
                except asyncio.TimeoutError:
                    break
                if json.loads(frame).get("type") in ("join", "leave"):
                    received += len(frame)
                await asyncio.sleep(pause)
        except ConnectionClosed as closed:
            return received, closed.rcvd.code if closed.rcvd else 1006
    return received, None


async def churn(server, channel, pairs):
    """Subscribes and unsubscribes `pairs` times with 4 KB of info, as fast as the socket
    takes it: (subscribes answered, refusals by code)."""
    subscribed = 0
    refused = {}
    async with connect(f"{server.ws}/ws", subprotocols=["squall.v1"], max_queue=None) as ws:
        await ws.recv()
        for index in range(pairs):
            await ws.send(json.dumps({"op": "subscribe", "channel": channel, "info": INFO, "ref": f"s{index}"}))
            await ws.send(json.dumps({"op": "unsubscribe", "channel": channel, "ref": f"u{index}"}))
        answered = 0
        deadline = time.monotonic() + 30
        while answered < 2 * pairs and time.monotonic() < deadline:
            reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if "ref" not in reply:
                continue
            answered += 1
            if reply["type"] == "subscribed":
                subscribed += 1
            elif reply["type"] == "error":
                refused[reply["code"]] = refused.get(reply["code"], 0) + 1
    return subscribed, refused


async def test_subscription_churn_amplifies_nothing_and_closes_no_watcher(squall):
    # Before: a client held to 5 publishes/s sent 3,000 subscribe/unsubscribe pairs with 4 KB
    # info in 0.6 s; each of 10 watchers received 23 MiB, and slower ones were closed with 1008.
    server = squall("--log-level", "error", "--publish-rate", "5/s")
    watchers = [asyncio.create_task(watch(server, "room", 6, pause=0.005 if n % 2 else 0.02)) for n in range(10)]
    await asyncio.sleep(0.5)
    subscribed, refused = await churn(server, "room", 3000)
    results = await asyncio.gather(*watchers)
    for received, closed in results:
        assert closed is None, f"a watcher was closed with {closed}"
        assert received < 512 * 1024, f"a watcher received {received} bytes of presence events"
    # Charged to --subscribe-rate (100/s, a burst of 1,000): most of the churn is refused.
    assert refused.get("rate_limited", 0) >= 3000, refused
    assert subscribed <= 1000


async def test_a_join_and_leave_within_one_turn_reach_no_one(squall):
    server = squall("--log-level", "error")
    watcher = asyncio.create_task(watch(server, "quiet", 2, pause=0))
    await asyncio.sleep(0.3)
    subscribed, refused = await churn(server, "quiet", 200)
    received, closed = await watcher
    assert subscribed == 200 and not refused
    assert closed is None
    # The watcher's own join, and at most the few pairs a turn's end cut in two.
    assert received < 20 * len(json.dumps({"channel": "quiet", "client": {"info": INFO}, "type": "join"})), received


async def test_a_plain_socket_over_its_addresss_subscribe_rate_is_refused_429(squall):
    server = squall("--log-level", "error", "--subscribe-rate", "1/min", "--subscribe-burst", "2")
    opened = [await connect(f"{server.ws}/msg/room", local_addr=("127.0.0.2", 0), open_timeout=5) for _ in range(2)]
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"{server.ws}/msg/room", local_addr=("127.0.0.2", 0), open_timeout=5)
    assert refused.value.response.status_code == 429
    assert json.loads(refused.value.response.body)["error"]["code"] == "rate_limited"
    # From 127.0.0.1 it passes: loopback is a tool on this machine, exempt as from the
    # per-address connection limit.
    opened.append(await connect(f"{server.ws}/msg/room", open_timeout=5))
    for ws in opened:
        await ws.close()


def test_an_sse_stream_over_its_addresss_subscribe_rate_gets_429(squall):
    import http.client

    server = squall("--log-level", "error", "--subscribe-rate", "1/min", "--subscribe-burst", "2")
    statuses = []
    for _ in range(3):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5, source_address=("127.0.0.2", 0))
        connection.request("GET", "/channels/room/events")
        response = connection.getresponse()
        statuses.append(response.status)
        if response.status == 429:
            assert json.loads(response.read())["error"]["code"] == "rate_limited"
            assert response.getheader("Retry-After")
        connection.close()
    assert statuses == [200, 200, 429]
