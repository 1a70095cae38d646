# SPDX-License-Identifier: Apache-2.0
"""`--store sqlite:PATH`: history, positions and epochs survive a restart and `kill -9`; every
transport (plain socket, `/ws`, SSE, polling) resumes from a position taken before the restart."""
import asyncio
import json
import signal
import threading
import time
import urllib.error
import urllib.request

from websockets.asyncio.client import connect


def publish(server, channel, text):
    request = urllib.request.Request(f"{server.http}/channels/{channel}/messages", data=text.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 201
        return json.load(response)


def poll(server, channel, since=None):
    query = f"?wait=0&limit=1000{'&since=' + since if since else ''}"
    with urllib.request.urlopen(f"{server.http}/channels/{channel}/messages{query}", timeout=5) as response:
        return json.load(response)


def sse_messages(server, channel, last_event_id, count):
    """The first `count` message events of an EventSource-style stream resumed from `last_event_id`."""
    request = urllib.request.Request(f"{server.http}/channels/{channel}/events", headers={"Last-Event-ID": last_event_id})
    texts = []
    with urllib.request.urlopen(request, timeout=5) as response:
        event = None
        while len(texts) < count:
            line = response.readline().decode().rstrip("\n")
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "message":
                texts.append(json.loads(line.split(":", 1)[1])["data"])
    return texts


def everything(server, channel):
    """Every retained message of `channel`, oldest first, page after page."""
    page = poll(server, channel)
    messages = list(page["messages"])
    while page["messages"]:
        page = poll(server, channel, f"{page['epoch']}:{page['offset']}")
        messages += page["messages"]
    return messages


async def test_a_restarted_server_keeps_history_and_every_transport_resumes_from_before(squall, tmp_path):
    store = f"sqlite:{tmp_path / 'squall.sqlite'}"
    server = squall("--store", store)
    first = publish(server, "kept", "one")
    publish(server, "kept", "two")
    publish(server, "kept", "three")
    assert server.stop()[0] == 0

    server = squall("--store", store)
    since = f"{first['epoch']}:{first['offset']}"
    history = poll(server, "kept")
    assert [(m["offset"], m["data"]) for m in history["messages"]] == [(1, "one"), (2, "two"), (3, "three")]
    assert history["epoch"] == first["epoch"] and history["messages"][0]["id"] == first["id"]
    # The plain socket, the channel protocol and a poll each resume from a position taken before.
    async with connect(f"{server.ws}/msg/kept?since={since}") as plain:
        assert [await asyncio.wait_for(plain.recv(), 5) for _ in range(2)] == ["two", "three"]
    async with connect(f"{server.ws}/ws", subprotocols=["squall.v1"]) as client:
        await asyncio.wait_for(client.recv(), 5)  # welcome
        position = {"epoch": first["epoch"], "offset": first["offset"]}
        await client.send(json.dumps({"op": "subscribe", "channel": "kept", "since": position}))
        subscribed = json.loads(await asyncio.wait_for(client.recv(), 5))
        assert subscribed["recovered"] is True and subscribed["offset"] == 3
        replayed = [json.loads(await asyncio.wait_for(client.recv(), 5))["data"] for _ in range(2)]
        assert replayed == ["two", "three"]
    assert sse_messages(server, "kept", since, 2) == ["two", "three"]
    assert [m["data"] for m in poll(server, "kept", since)["messages"]] == ["two", "three"]
    after = publish(server, "kept", "four")
    assert (after["epoch"], after["offset"]) == (first["epoch"], 4)


def test_kill_9_while_publishing_loses_no_acknowledged_message(squall, tmp_path):
    store = f"sqlite:{tmp_path / 'crash.sqlite'}"
    server = squall("--store", store, "--retention-messages", "100000", "--publish-rate", "off")
    acknowledged = []
    lock = threading.Lock()
    stop = threading.Event()

    def publisher(index):
        # Bounded: at most 2,000 publishes each, and it stops at the first failure (the kill).
        for n in range(2000):
            if stop.is_set():
                return
            text = f"p{index}-{n}"
            try:
                reply = publish(server, "crash", text)
            except (OSError, urllib.error.URLError):
                return
            with lock:
                acknowledged.append((reply["epoch"], reply["offset"], text))

    threads = [threading.Thread(target=publisher, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while len(acknowledged) < 300 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=10)
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    assert len(acknowledged) >= 300

    server = squall("--store", store, "--retention-messages", "100000")
    stored = {(m["epoch"], m["offset"]): m["data"] for m in everything(server, "crash")}
    missing = [entry for entry in acknowledged if stored.get(entry[:2]) != entry[2]]
    assert not missing, f"{len(missing)} acknowledged messages lost, e.g. {missing[:3]}"
    offsets = sorted(offset for _, offset in stored)
    assert offsets == list(range(1, len(offsets) + 1)), "no gap in the offsets"
    after = publish(server, "crash", "after the crash")
    assert (after["epoch"], after["offset"]) == (acknowledged[0][0], offsets[-1] + 1)
