# SPDX-License-Identifier: Apache-2.0
"""Hostile reads against the stores (issue 25, defects 1–3): opening a channel never holds an
event loop, however many a client opens and whether the database answers or not; reading
channels leaves nothing in a store; expired messages and forgotten channels are deleted by the
store itself, after a restart too. All traffic on 127.0.0.1, every loop bounded."""
import asyncio
import json
import os
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest
from websockets.asyncio.client import connect

from test_hostile import rss_mib
from test_hostile import wait_until as wait_for
from test_postgres_nodes import postgres

DATABASE = os.environ.get("SQUALL_TEST_POSTGRES")
needs_postgres = pytest.mark.skipif(not DATABASE, reason="needs a database: SQUALL_TEST_POSTGRES=postgres://… (scripts/postgres starts one)")


def psql(sql):
    return subprocess.run(["psql", "-q", "-t", "-A", DATABASE, "-c", sql], check=True, capture_output=True, text=True, timeout=30).stdout.strip()


async def round_trips(server, seconds):
    """A bystander on /ws pinging for `seconds`: the worst round trip it saw."""
    worst = 0.0
    async with connect(f"{server.ws}/ws", subprotocols=["squall.v1"]) as ws:
        await ws.recv()  # welcome
        deadline = time.monotonic() + seconds
        ref = 0
        while time.monotonic() < deadline:
            ref += 1
            started = time.monotonic()
            await ws.send(json.dumps({"op": "ping", "ref": ref}))
            while True:
                reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
                if reply.get("ref") == ref:
                    break
            worst = max(worst, time.monotonic() - started)
            await asyncio.sleep(0.01)
    return worst


async def open_many(server, prefix, count):
    """A client pipelining `count` subscribes to channels nobody used: its answers' types."""
    answers = []
    async with connect(f"{server.ws}/ws", subprotocols=["squall.v1"], max_queue=None) as ws:
        await ws.recv()
        for index in range(count):
            await ws.send(json.dumps({"op": "subscribe", "channel": f"{prefix}-{index}", "ref": index}))
        deadline = time.monotonic() + 30
        while len(answers) < count and time.monotonic() < deadline:
            reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if "ref" in reply:
                answers.append(reply["type"] if reply["type"] != "error" else reply["code"])
    return answers


@needs_postgres
async def test_opening_a_thousand_channels_stalls_no_one_on_the_same_loop(squall):
    # Before: one client pipelining 1,000 subscribes to new channels stalled the others on its
    # loop by up to 1,012 ms (each open waited on a semaphore, on the loop).
    server = squall("--store", DATABASE, "--threads", "1", "--log-level", "error")
    bystander = asyncio.create_task(round_trips(server, 3))
    await asyncio.sleep(0.2)
    answers = await open_many(server, f"open-{uuid.uuid4().hex[:8]}", 1000)
    worst = await bystander
    assert answers.count("subscribed") == 1000
    assert worst < 0.25, f"a bystander waited {worst * 1000:.0f} ms for a pong"


@needs_postgres
async def test_a_paused_database_stalls_no_one_and_each_opening_is_told_store_unavailable(squall):
    # Before: each new channel blocked its loop for 3 s (bystanders' worst round trip 2,993 ms),
    # and two history GETs of new channels delayed /healthz by 2.7 s.
    server = squall("--store", DATABASE, "--threads", "1", "--log-level", "error")
    prefix = f"paused-{uuid.uuid4().hex[:8]}"
    postgres("pause")
    try:
        bystander = asyncio.create_task(round_trips(server, 4))
        opening = asyncio.create_task(open_many(server, prefix, 200))
        started = time.monotonic()
        loop = asyncio.get_running_loop()

        def history():
            try:
                urllib.request.urlopen(f"{server.http}/channels/{prefix}-h/history", timeout=10)
            except urllib.error.HTTPError as error:
                return error.code, json.loads(error.read())["error"]["code"]

        refused = await loop.run_in_executor(None, history)
        assert refused == (503, "store_unavailable") and time.monotonic() - started < 5
        health_started = time.monotonic()
        with urllib.request.urlopen(f"{server.http}/healthz", timeout=10) as response:
            assert response.status == 200
        assert time.monotonic() - health_started < 0.5
        answers = await opening
        worst = await bystander
    finally:
        postgres("resume")
    assert answers == ["store_unavailable"] * 200, set(answers)
    assert worst < 0.25, f"a bystander waited {worst * 1000:.0f} ms for a pong"
    # The database back: the same channels open.
    assert (await open_many(server, prefix, 5)) == ["subscribed"] * 5


@needs_postgres
def test_reading_channels_nobody_published_to_leaves_no_row(squall):
    # Before: 4 clients reading /channels/<random>/history made 9,539 rows in 9 s.
    server = squall("--store", DATABASE, "--log-level", "error")
    prefix = f"curious-{uuid.uuid4().hex[:8]}"
    for index in range(300):
        for route in ("history", "messages?wait=0", "presence"):
            with urllib.request.urlopen(f"{server.http}/channels/{prefix}-{index}/{route}", timeout=10) as response:
                assert response.status == 200
    assert psql(f"SELECT count(*) FROM squall_channels WHERE name LIKE '{prefix}-%'") == "0"
    request = urllib.request.Request(f"{server.http}/channels/{prefix}-0/messages", data=b"now", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
    assert psql(f"SELECT count(*) FROM squall_channels WHERE name LIKE '{prefix}-%'") == "1"


def test_reads_that_open_channels_from_the_store_are_charged_to_the_subscribe_rate(squall, tmp_path):
    # Before: history reads and polls of new names were free, so one client could keep every
    # channel waiting to open (16,384 at most, for the whole server) to itself.
    import http.client

    server = squall("--store", f"sqlite:{tmp_path / 'squall.sqlite'}", "--subscribe-rate", "1/min", "--subscribe-burst", "3")
    prefix = f"names-{uuid.uuid4().hex[:8]}"

    def get(path, source="127.0.0.2"):
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10, source_address=(source, 0))
        connection.request("GET", path)
        response = connection.getresponse()
        body = json.loads(response.read())
        connection.close()
        return response.status, body

    statuses = [get(f"/channels/{prefix}-{n}/history")[0] for n in range(3)] + [get(f"/channels/{prefix}-3/messages?wait=0")[0]]
    assert statuses == [200, 200, 200, 429], statuses
    status, body = get(f"/channels/{prefix}-4/history")
    assert (status, body["error"]["code"]) == (429, "rate_limited")
    request = urllib.request.Request(f"{server.http}/channels/{prefix}-open/messages", data=b"m", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
    assert get(f"/channels/{prefix}-open/history")[0] == 200, "a channel in memory costs the store nothing: never charged"
    assert get(f"/channels/{prefix}-5/history", source="127.0.0.3")[0] == 200, "another address has its own bucket"
    assert get(f"/channels/{prefix}-6/history", source="127.0.0.1")[0] == 200, "loopback is exempt"
    publish = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10, source_address=("127.0.0.2", 0))
    publish.request("POST", f"/channels/{prefix}-7/messages", body=b"m")
    assert publish.getresponse().status == 429, "a publish that opens a channel from the store is charged too"
    publish.close()

    async def subscribe_on_new_connections():
        """One /ws connection per new channel, all from 127.0.0.4: each connection's own bucket
        is full, so only the address's can refuse."""
        answers = []
        for n in range(4):
            async with connect(f"{server.ws}/ws", subprotocols=["squall.v1"], local_addr=("127.0.0.4", 0)) as ws:
                await ws.recv()
                await ws.send(json.dumps({"op": "subscribe", "channel": f"{prefix}-ws-{n}", "ref": n}))
                reply = json.loads(await asyncio.wait_for(ws.recv(), 10))
                answers.append(reply["type"] if reply["type"] != "error" else reply["code"])
        return answers

    assert asyncio.run(subscribe_on_new_connections()) == ["subscribed"] * 3 + ["rate_limited"]


def rows(path, table):
    with sqlite3.connect(path, timeout=10) as db:
        return db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def publish_everywhere(server, channels, count):
    """`count` messages over `channels` channels; each channel's last answer."""
    last = {}
    for index in range(count):
        request = urllib.request.Request(f"{server.http}/channels/c{index % channels}/messages", data=b"m", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            last[index % channels] = json.load(response)
    return last


def test_sqlite_deletes_expired_messages_after_a_restart_whether_or_not_their_channels_open(squall, tmp_path):
    # Before: 300 of 300 rows were still there with --retention-age 3 after a restart, for
    # channels nobody opened again.
    path = str(tmp_path / "squall.sqlite")
    options = ("--store", f"sqlite:{path}", "--retention-age", "3", "--log-level", "error")
    first = squall(*options)
    publish_everywhere(first, 30, 300)
    assert first.stop()[0] == 0
    assert rows(path, "messages") == 300
    squall(*options)
    wait_for(lambda: rows(path, "messages") == 0, 10, "expired messages deleted")
    assert rows(path, "channels") == 30, "positions outlive their messages"


def test_sqlite_forgets_channels_past_their_meta_ttl(squall, tmp_path):
    path = str(tmp_path / "squall.sqlite")
    options = ("--store", f"sqlite:{path}", "--retention-age", "2", "--history-meta-ttl", "4", "--log-level", "error")
    first = squall(*options)
    positions = publish_everywhere(first, 10, 20)
    assert first.stop()[0] == 0
    second = squall(*options)
    wait_for(lambda: rows(path, "channels") == 0, 15, "channels forgotten past their meta TTL")
    # A client resuming from before is told it cannot.
    last = positions[0]
    with urllib.request.urlopen(f"{second.http}/channels/c0/messages?wait=0&since={last['epoch']}:{last['offset']}", timeout=10) as response:
        assert json.load(response)["recovered"] is False


@needs_postgres
def test_postgres_deletes_expired_messages_and_forgets_channels_past_their_meta_ttl(squall):
    server = squall("--store", DATABASE, "--retention-age", "2", "--history-meta-ttl", "8", "--log-level", "error")
    channel = f"expiring-{uuid.uuid4().hex[:8]}"
    request = urllib.request.Request(f"{server.http}/channels/{channel}/messages", data=b"m", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        first = json.load(response)

    def count(table, column):
        return int(psql(f"SELECT count(*) FROM {table} WHERE {column} = '{channel}'"))

    wait_for(lambda: count("squall_messages", "channel") == 0, 10, "the message deleted by age")
    assert count("squall_channels", "name") == 1, "the position outlives the message"
    wait_for(lambda: count("squall_channels", "name") == 0, 15, "the channel forgotten")
    # Its next message begins a new life, in a new epoch: a client resuming from the old one is
    # told it cannot.
    request = urllib.request.Request(f"{server.http}/channels/{channel}/messages", data=b"again", method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        again = json.load(response)
    assert again["epoch"] != first["epoch"] and again["offset"] == 1
    with urllib.request.urlopen(f"{server.http}/channels/{channel}/messages?wait=0&since={first['epoch']}:{first['offset']}", timeout=10) as response:
        assert json.load(response)["recovered"] is False


async def test_memory_the_sweep_frees_goes_back_to_the_system(squall):
    # Before: RSS after sweeping 100k abandoned channels was never returned to the system.
    server = squall("--log-level", "error")
    await asyncio.sleep(0.5)
    baseline = rss_mib(server)
    # The server sweeps every 10 s, which may fall while the channels are still being opened:
    # the most channels and memory seen along the way are what the sweep has to give back.
    peak, most = baseline, 0
    async with connect(f"{server.ws}/ws", subprotocols=["squall.v1"], max_queue=None) as ws:
        await ws.recv()
        for batch in range(100):
            for index in range(1000):
                await ws.send(json.dumps({"op": "history", "channel": f"abandoned-{batch}-{index}", "ref": index}))
            for _ in range(1000):
                await asyncio.wait_for(ws.recv(), 30)
            if batch % 10 == 9:
                peak = max(peak, rss_mib(server))
                with urllib.request.urlopen(f"{server.http}/healthz", timeout=5) as response:
                    most = max(most, json.load(response)["channels"])
    assert most >= 10_000, f"at most {most} channels were open at once"
    wait_for(lambda: json.load(urllib.request.urlopen(f"{server.http}/healthz", timeout=5))["channels"] == 0, 25, "the channels swept")
    time.sleep(0.5)
    after = rss_mib(server)
    assert peak - baseline > 20, f"100,000 channels took only {peak - baseline:.0f} MiB: nothing to give back"
    assert after - baseline < (peak - baseline) / 2, f"RSS {baseline:.0f} MiB, {peak:.0f} with the channels, {after:.0f} after the sweep"
