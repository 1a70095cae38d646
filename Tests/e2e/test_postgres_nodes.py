# SPDX-License-Identifier: Apache-2.0
"""`--store postgres://…`: several nodes on one real PostgreSQL database are one system. A message
published on any node reaches subscribers on every node, on every transport, in one order; a
node killed and started again loses nothing; the database stopped and started again costs
refusals (503 `store_unavailable`), never a silent gap."""
import asyncio
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

DATABASE = os.environ.get("SQUALL_TEST_POSTGRES")
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    not DATABASE, reason="needs a database: SQUALL_TEST_POSTGRES=postgres://… (scripts/postgres starts one)")


def channel_name(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def publish(server, channel, text, timeout=5):
    request = urllib.request.Request(f"{server.http}/channels/{channel}/messages", data=text.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        assert response.status == 201
        return json.load(response)


def poll(server, channel, since=None, wait=0):
    query = f"?wait={wait}&limit=1000{'&since=' + since if since else ''}"
    with urllib.request.urlopen(f"{server.http}/channels/{channel}/messages{query}", timeout=wait + 5) as response:
        return json.load(response)


def nodes(squall, count=2, *args):
    return [squall("--store", DATABASE, "--log-level", "error", *args) for _ in range(count)]


async def ws_collect(server, channel, count, since=None, timeout=30):
    """Subscribes on /ws and returns the first `count` messages as (offset, data)."""
    got = []
    async with connect(f"{server.ws}/ws", subprotocols=["squall.v1"]) as ws:
        json.loads(await ws.recv())  # welcome
        request = {"op": "subscribe", "channel": channel, "ref": 1}
        if since:
            epoch, offset = since.rsplit(":", 1)
            request["since"] = {"epoch": epoch, "offset": int(offset)}
        await ws.send(json.dumps(request))
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            reply = json.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
            if reply["type"] == "message":
                got.append((reply["offset"], reply["data"]))
    return got


async def msg_collect(server, channel, count, timeout=30):
    """A plain socket on /msg/{channel}: bare frames, so the order is checked by text."""
    got = []
    async with connect(f"{server.ws}/msg/{channel}") as ws:
        deadline = time.monotonic() + timeout
        while len(got) < count and time.monotonic() < deadline:
            got.append(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
    return got


def sse_collect(server, channel, count, timeout=30):
    got = []
    request = urllib.request.Request(f"{server.http}/channels/{channel}/events")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        event = None
        while len(got) < count:
            line = response.readline().decode().rstrip("\n")
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "message":
                message = json.loads(line.split(":", 1)[1])
                got.append((message["offset"], message["data"]))
    return got


def poll_collect(server, channel, count, start, wait, timeout=30):
    """Long polls (`wait` > 0) or short polls from `start` until `count` messages came."""
    got = []
    since = start
    deadline = time.monotonic() + timeout
    while len(got) < count and time.monotonic() < deadline:
        page = poll(server, channel, since, wait=wait)
        assert page["recovered"] is True
        got += [(m["offset"], m["data"]) for m in page["messages"]]
        since = f"{page['epoch']}:{page['offset']}"
        if not wait:
            time.sleep(0.05)
    return got


def test_two_nodes_deliver_one_order_on_every_transport(squall):
    # /ws on both nodes, SSE, long and short polls, and a plain /msg socket, publishers on both.
    a, b = nodes(squall)
    room = channel_name("order")
    start = poll(a, room)
    position = f"{start['epoch']}:{start['offset']}"
    results = {}

    def run(name, function, *args):
        # A reader that fails is a failure of the test, not a thread's warning.
        try:
            results[name] = function(*args)
        except Exception as error:  # noqa: BLE001
            results[name] = error

    readers = [
        threading.Thread(target=run, args=("ws on a", lambda: asyncio.run(ws_collect(a, room, 100)))),
        threading.Thread(target=run, args=("ws on b", lambda: asyncio.run(ws_collect(b, room, 100)))),
        threading.Thread(target=run, args=("sse on a", sse_collect, a, room, 100)),
        threading.Thread(target=run, args=("long poll on b", poll_collect, b, room, 100, position, 5)),
        threading.Thread(target=run, args=("short poll on a", poll_collect, a, room, 100, position, 0)),
        threading.Thread(target=run, args=("msg on b", lambda: asyncio.run(msg_collect(b, room, 100)))),
    ]
    for reader in readers:
        reader.start()
    time.sleep(1.0)  # every stream subscribed

    def publisher(server, name):
        for n in range(50):
            publish(server, room, f"{name}{n}")

    writers = [threading.Thread(target=run, args=(f"publish on {name}", publisher, server, name)) for server, name in ((a, "a"), (b, "b"))]
    for writer in writers:
        writer.start()
    for thread in writers + readers:
        thread.join(60)
    assert not any(thread.is_alive() for thread in writers + readers), "every reader and writer finished"
    failures = {name: got for name, got in results.items() if isinstance(got, Exception)}
    assert not failures, failures
    del results["publish on a"], results["publish on b"]
    assert set(results) == {"ws on a", "ws on b", "sse on a", "long poll on b", "short poll on a", "msg on b"}

    expected = results["ws on a"]
    assert [offset for offset, _ in expected] == list(range(1, 101))
    assert sorted(text for _, text in expected) == sorted([f"a{n}" for n in range(50)] + [f"b{n}" for n in range(50)])
    assert results.pop("msg on b") == [text for _, text in expected]
    for name, got in results.items():
        assert got == expected, name


async def test_a_killed_nodes_client_resumes_on_the_other_node_with_no_loss(squall):
    a, b = nodes(squall)
    room = channel_name("failover")
    seen = []
    position = None  # {"epoch", "offset"} of the last message seen
    async with connect(f"{a.ws}/ws", subprotocols=["squall.v1"]) as ws:
        json.loads(await ws.recv())
        await ws.send(json.dumps({"op": "subscribe", "channel": room, "ref": 1}))
        subscribed = json.loads(await ws.recv())
        position = {"epoch": subscribed["epoch"], "offset": subscribed["offset"]}
        for n in range(5):
            publish(b, room, f"m{n}")
        while len(seen) < 5:
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if reply["type"] == "message":
                seen.append(reply["data"])
                position = {"epoch": reply["epoch"], "offset": reply["offset"]}
        a.stop(signal.SIGKILL)
    # Published while the client has no node; it resumes on the node that is left.
    for n in range(5, 10):
        publish(b, room, f"m{n}")
    async with connect(f"{b.ws}/ws", subprotocols=["squall.v1"]) as ws:
        json.loads(await ws.recv())
        await ws.send(json.dumps({"op": "subscribe", "channel": room, "since": position, "ref": 2}))
        subscribed = json.loads(await ws.recv())
        assert subscribed.get("recovered") is True, subscribed
        while len(seen) < 10:
            reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
            if reply["type"] == "message":
                seen.append(reply["data"])
    assert seen == [f"m{n}" for n in range(10)]

    # The killed node, started again, has the same log.
    again = squall("--store", DATABASE, "--log-level", "error")
    history = poll(again, room)
    assert [m["data"] for m in history["messages"]] == seen
    assert f"{history['epoch']}:{history['offset']}" == f"{subscribed['epoch']}:10"


def test_kill_9_while_two_nodes_publish_loses_no_acknowledged_message(squall):
    a, b = nodes(squall)
    room = channel_name("crash")
    acknowledged = []
    lock = threading.Lock()

    def publisher(server, name):
        # Bounded: at most 400 publishes each (within the 1,000 a channel retains), stopping at
        # the first failure (the kill).
        for n in range(400):
            try:
                reply = publish(server, room, f"{name}{n}", timeout=3)
            except (urllib.error.URLError, ConnectionError, OSError):
                return
            with lock:
                acknowledged.append((reply["offset"], f"{name}{n}"))

    threads = [threading.Thread(target=publisher, args=(server, name)) for server, name in ((a, "a"), (b, "b"))]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while len(acknowledged) < 100 and time.monotonic() < deadline:
        time.sleep(0.01)
    a.stop(signal.SIGKILL)
    for thread in threads:
        thread.join(60)
    kept = {}
    page = poll(b, room)
    while page["messages"]:
        kept.update({m["offset"]: m["data"] for m in page["messages"]})
        page = poll(b, room, f"{page['epoch']}:{page['offset']}")
    assert acknowledged, "nothing was published before the kill"
    for offset, text in acknowledged:
        assert kept.get(offset) == text
    assert sorted(kept) == list(range(1, len(kept) + 1)), "a gap in the offsets"


def postgres(*args):
    subprocess.run(["bash", str(ROOT / "scripts/postgres"), *args], check=True, capture_output=True, timeout=60)


async def test_the_database_stopped_and_started_again(squall):
    a, b = nodes(squall)
    room = channel_name("outage")
    async with connect(f"{a.ws}/ws", subprotocols=["squall.v1"]) as ws:
        json.loads(await ws.recv())
        await ws.send(json.dumps({"op": "subscribe", "channel": room, "ref": 1}))
        json.loads(await ws.recv())
        publish(b, room, "before")
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["data"] == "before"

        postgres("stop")
        try:
            # The node keeps its sockets and refuses publishes with a clear error.
            with pytest.raises(urllib.error.HTTPError) as refused:
                publish(a, room, "during")
            assert refused.value.code == 503
            assert json.load(refused.value)["error"]["code"] == "store_unavailable"
            await ws.send(json.dumps({"op": "publish", "channel": room, "data": "during", "ref": 2}))
            error = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert (error["type"], error["code"], error["ref"]) == ("error", "store_unavailable", 2)
        finally:
            postgres()

        # Back: publishes on either node pass again and reach the socket on A, in order.
        deadline = time.monotonic() + 30
        while True:
            try:
                publish(b, room, "after")
                break
            except urllib.error.HTTPError as error:
                assert error.code == 503 and time.monotonic() < deadline
                time.sleep(0.2)
        got = json.loads(await asyncio.wait_for(ws.recv(), 15))
        assert (got["data"], got["offset"]) == ("after", 2)
        publish(a, room, "again")
        got = json.loads(await asyncio.wait_for(ws.recv(), 15))
        assert (got["data"], got["offset"]) == ("again", 3)


def test_an_idempotent_retry_on_another_node_appends_once(squall):
    a, b = nodes(squall)
    room = channel_name("retry")

    def keyed(server, text):
        request = urllib.request.Request(f"{server.http}/channels/{room}/messages", data=text.encode(), method="POST",
                                         headers={"Idempotency-Key": "order-42"})
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)

    first = keyed(a, "pay")
    retry = keyed(b, "pay")
    assert (retry["epoch"], retry["offset"], retry["id"]) == (first["epoch"], first["offset"], first["id"])
    assert [m["data"] for m in poll(a, room)["messages"]] == ["pay"]


async def test_presence_spans_nodes_and_a_dead_node_drops_out_within_its_timeout(squall):
    a, b = nodes(squall)
    room = channel_name("presence")

    def members(server):
        with urllib.request.urlopen(f"{server.http}/channels/{room}/presence", timeout=5) as response:
            return sorted(client["info"]["name"] for client in json.load(response)["clients"])

    async with connect(f"{b.ws}/ws", subprotocols=["squall.v1"]) as watcher:
        json.loads(await watcher.recv())
        await watcher.send(json.dumps({"op": "subscribe", "channel": room, "presence": True, "info": {"name": "bob"}, "ref": 1}))
        events = []

        async def until(event, timeout):
            while event not in events:
                reply = json.loads(await asyncio.wait_for(watcher.recv(), timeout))
                if reply["type"] in ("join", "leave"):
                    events.append((reply["type"], reply["client"]["info"]["name"]))

        await until(("join", "bob"), 10)
        async with connect(f"{a.ws}/ws", subprotocols=["squall.v1"]) as ws:
            json.loads(await ws.recv())
            await ws.send(json.dumps({"op": "subscribe", "channel": room, "info": {"name": "alice"}, "ref": 1}))
            await until(("join", "alice"), 10)
            assert members(b) == ["alice", "bob"]
            deadline = time.monotonic() + 10
            while members(a) != ["alice", "bob"] and time.monotonic() < deadline:
                time.sleep(0.05)
            assert members(a) == ["alice", "bob"]

            # A dies without a word: alice leaves B's presence once A misses its heartbeats
            # (PostgresLogStore.nodeTimeout, 10 s, plus a heartbeat of 2 s).
            started = time.monotonic()
            a.stop(signal.SIGKILL)
            await until(("leave", "alice"), 20)
            assert time.monotonic() - started < 15
            assert members(b) == ["bob"]
