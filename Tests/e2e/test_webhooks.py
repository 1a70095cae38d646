# SPDX-License-Identifier: Apache-2.0
"""Lifecycle webhooks: events POSTed to a real receiver on 127.0.0.1 that verifies every one with
the `standardwebhooks` library (the specification's own), as any receiver would. With a store
they survive a receiver that is down for a minute and a node killed with -9; out of retries they
become dead letters; on PostgreSQL the nodes share them, and a vanished node's members are
reported by another."""
import asyncio
import base64
import json
import os
import signal
import sqlite3
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from standardwebhooks.webhooks import Webhook
from websockets.asyncio.client import connect

from conftest import Squall, free_port
from test_api import KEY, ok
from test_auth import SECRET, close_of, mint, unique

SIGNING = "whsec_" + base64.b64encode(b"squall-webhook-test-key-32-bytes").decode()


class Receiver:
    """A webhook receiver: verifies each request's signature and keeps the events, by id; answers
    `status` (200 unless told otherwise). `start()` and `stop()` bring its port up and down."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.events = {}
        self.deliveries = 0
        self.rejected = []
        self.status = 200
        self.server = None
        self.verifier = Webhook(SIGNING)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}/hooks"

    def start(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    event = receiver.verifier.verify(body, dict(self.headers.items()))
                except Exception as error:  # noqa: BLE001 (any failure of the signature)
                    receiver.rejected.append(str(error))
                    self.send_response(400)
                    self.end_headers()
                    return
                receiver.deliveries += 1
                if receiver.status == 200:
                    receiver.events[self.headers["webhook-id"]] = event
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def of_type(self, kind):
        return [event for event in self.events.values() if event["type"] == kind]

    def wait_for(self, what, condition, timeout=15):
        deadline = time.monotonic() + timeout
        while not condition():
            assert time.monotonic() < deadline, f"not within {timeout} s: {what}; got {sorted(e['type'] for e in self.events.values())}"
            time.sleep(0.05)


@pytest.fixture
def receiver():
    server = Receiver().start()
    yield server
    server.stop()


def webhooked(squall, receiver, *extra):
    return squall("--log-level", "error", "--webhook", receiver.url, "--webhook-secret", SIGNING, "--webhook-backoff-max", "1s", *extra)


def metric(server, name, **labels):
    text = urllib.request.urlopen(f"{server.http}/metrics", timeout=5).read().decode()
    selector = ",".join(f'{key}="{value}"' for key, value in labels.items())
    wanted = f"{name}{{{selector}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.split()[-1])
    return 0.0


# --- What is sent -----------------------------------------------------------------------------


async def test_a_clients_life_arrives_signed_as_the_standard_says_with_every_event_and_its_cause(squall, receiver):
    server = webhooked(squall, receiver, "--jwt-secret", SECRET)
    channel = unique("life")
    async with connect(f"{server.ws}/msg/{channel}?token={mint(SECRET, sub='alice')}", open_timeout=5) as ws:
        await ws.send("hello")
        assert await asyncio.wait_for(ws.recv(), 5) == "hello"
    receiver.wait_for("the disconnect", lambda: receiver.of_type("disconnected"))
    receiver.wait_for("every event", lambda: len(receiver.events) == 5)
    assert not receiver.rejected, "every signature verifies"
    by_type = {event["type"]: event for event in receiver.events.values()}
    connected, disconnected = by_type["connected"]["data"], by_type["disconnected"]["data"]
    assert (connected["user"], connected["transport"], connected["address"]) == ("alice", "msg", "127.0.0.1")
    assert (disconnected["client"], disconnected["cause"], disconnected["user"]) == (connected["client"], "client_close", "alice")
    assert by_type["subscribed"]["data"]["channel"] == channel and by_type["unsubscribed"]["data"]["client"] == connected["client"]
    published = by_type["published"]["data"]
    assert (published["channel"], published["offset"], published["publisher"]) == (channel, 1, connected["client"])
    assert all(event["timestamp"].endswith("Z") for event in receiver.events.values())


async def test_events_are_filtered_by_type_and_namespace(squall, receiver):
    server = webhooked(squall, receiver, "--webhook-events", "published", "--webhook-events", "disconnected", "--webhook-namespaces", "chat")
    async with connect(f"{server.ws}/msg/chat:lobby", open_timeout=5) as chat, connect(f"{server.ws}/msg/news:today", open_timeout=5) as news:
        await chat.send("in chat")
        await news.send("in news")
        await asyncio.wait_for(chat.recv(), 5)
        await asyncio.wait_for(news.recv(), 5)
    receiver.wait_for("two disconnects", lambda: len(receiver.of_type("disconnected")) == 2)
    assert [e["data"]["channel"] for e in receiver.of_type("published")] == ["chat:lobby"]
    assert {e["type"] for e in receiver.events.values()} == {"published", "disconnected"}


@pytest.mark.parametrize("cause", ["kicked", "token_expired", "node_shutdown"])
async def test_disconnected_says_why_the_server_closed(squall, receiver, cause):
    server = webhooked(squall, receiver, "--jwt-secret", SECRET, "--jwt-leeway", "0s", "--api-key", KEY)
    token = mint(SECRET, sub="bob", ttl=1.0 if cause == "token_expired" else 60)
    async with connect(f"{server.ws}/ws?token={token}", subprotocols=["squall.v1"], open_timeout=5) as ws:
        await asyncio.wait_for(ws.recv(), 5)
        if cause == "kicked":
            ok(server, "disconnect", {"user": "bob"})
        elif cause == "node_shutdown":
            server.process.send_signal(signal.SIGTERM)
        code, _ = await close_of(ws, timeout=8)
    receiver.wait_for("the disconnect", lambda: receiver.of_type("disconnected"))
    data = receiver.of_type("disconnected")[0]["data"]
    assert (data["cause"], data["code"], data["user"]) == (cause, code, "bob")


# --- Surviving failures -----------------------------------------------------------------------


async def test_a_receiver_down_for_a_minute_gets_every_event_afterwards(squall, tmp_path):
    receiver = Receiver()  # not listening: connections are refused
    server = webhooked(squall, receiver, "--store", f"sqlite:{tmp_path}/squall.db")
    channel = unique("down")
    async with connect(f"{server.ws}/msg/{channel}", open_timeout=5) as ws:
        for n in range(20):
            await ws.send(f"m{n}")
        for _ in range(20):
            await asyncio.wait_for(ws.recv(), 5)
    await asyncio.sleep(60)
    assert metric(server, "squall_webhook_events_total", outcome="failed") > 0, "tried and failed while it was down"
    receiver.start()
    try:
        receiver.wait_for("every event", lambda: len(receiver.events) == 24, timeout=20)
        assert sorted(e["data"]["offset"] for e in receiver.of_type("published")) == list(range(1, 21))
        deadline = time.monotonic() + 5
        while metric(server, "squall_webhook_outbox_events") != 0:
            assert time.monotonic() < deadline, "the outbox is not emptied"
            time.sleep(0.1)
    finally:
        receiver.stop()


async def test_a_disconnect_survives_the_node_being_killed_right_after_it(squall, tmp_path):
    receiver = Receiver()
    database = f"sqlite:{tmp_path}/squall.db"
    args = ["--log-level", "error", "--webhook", receiver.url, "--webhook-secret", SIGNING, "--webhook-backoff-max", "1s", "--store", database]
    first = squall(*args)
    async with connect(f"{first.ws}/msg", open_timeout=5):
        pass
    time.sleep(0.3)  # the writer's next commit
    first.stop(signal.SIGKILL)
    second = squall(*args, "--port", str(first.port))
    assert second.port == first.port
    receiver.start()
    try:
        receiver.wait_for("the disconnect from before the kill", lambda: receiver.of_type("disconnected"), timeout=20)
        assert receiver.of_type("disconnected")[0]["data"]["cause"] == "client_close"
    finally:
        receiver.stop()


async def test_an_event_out_of_retries_becomes_a_dead_letter(squall, receiver, tmp_path):
    receiver.status = 500
    path = tmp_path / "squall.db"
    server = webhooked(squall, receiver, "--store", f"sqlite:{path}", "--webhook-retry-for", "3s", "--webhook-events", "published")
    ok_status = urllib.request.urlopen(urllib.request.Request(f"{server.http}/channels/dead/messages", data=b"x", method="POST"), timeout=5).status
    assert ok_status == 201
    deadline = time.monotonic() + 15
    while metric(server, "squall_webhook_events_total", outcome="dead") < 1:
        assert time.monotonic() < deadline, "never a dead letter"
        time.sleep(0.1)
    assert receiver.deliveries >= 2, "tried more than once"
    with sqlite3.connect(path) as db:
        dead = db.execute("SELECT type, reason FROM webhook_dead").fetchall()
        assert db.execute("SELECT count(*) FROM webhook_outbox").fetchone()[0] == 0
    assert dead[0][0] == "published" and "500" in dead[0][1]


async def test_without_a_store_an_event_is_tried_once_and_a_failure_is_counted(squall, receiver):
    receiver.status = 503
    server = webhooked(squall, receiver, "--webhook-events", "published")
    urllib.request.urlopen(urllib.request.Request(f"{server.http}/channels/once/messages", data=b"x", method="POST"), timeout=5)
    deadline = time.monotonic() + 10
    while metric(server, "squall_webhook_events_total", outcome="dropped") < 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(2)
    assert receiver.deliveries == 1, "at most once"


def test_webhooks_need_a_signing_secret(tmp_path):
    import subprocess

    from conftest import squall_binary

    result = subprocess.run([squall_binary(), "config", "check", "--webhook", "http://127.0.0.1:9/hooks"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 64 and "webhook-secret" in result.stderr


# --- Several nodes ----------------------------------------------------------------------------

DATABASE = os.environ.get("SQUALL_TEST_POSTGRES")
postgres_only = pytest.mark.skipif(not DATABASE, reason="needs a database: SQUALL_TEST_POSTGRES=postgres://…")


@postgres_only
async def test_on_postgresql_the_nodes_share_the_outbox_and_each_event_is_delivered_by_one(squall, receiver):
    nodes = [webhooked(squall, receiver, "--store", DATABASE) for _ in range(2)]
    channel = unique("shared")
    sockets = [await connect(f"{node.ws}/msg/{channel}", open_timeout=5) for node in nodes]
    # Each socket is subscribed once its node lists it in presence: a message published before
    # that would, rightly, not reach it.
    for node in nodes:
        deadline = time.monotonic() + 10
        while not json.loads(urllib.request.urlopen(f"{node.http}/channels/{channel}/presence", timeout=5).read())["clients"]:
            assert time.monotonic() < deadline, "a socket was never subscribed"
            await asyncio.sleep(0.05)
    try:
        for n in range(10):
            await sockets[n % 2].send(f"m{n}")
        for ws in sockets:
            for _ in range(10):
                await asyncio.wait_for(ws.recv(), 10)
    finally:
        for ws in sockets:
            await ws.close()
    # The database is shared with other tests, whose events this node may deliver too: ours are
    # those of our channel.
    ours = lambda: [e for e in receiver.of_type("published") if e["data"]["channel"] == channel]  # noqa: E731
    receiver.wait_for("every event", lambda: len(ours()) == 10)
    time.sleep(1)
    assert sorted(e["data"]["offset"] for e in ours()) == list(range(1, 11))
    assert receiver.deliveries == len(receiver.events), "no event delivered twice"


@postgres_only
async def test_when_a_node_vanishes_another_reports_its_members_as_presence_expired(squall, receiver):
    watcher = webhooked(squall, receiver, "--store", DATABASE, "--webhook-events", "presence_expired")
    vanishing = squall("--log-level", "error", "--store", DATABASE)
    channel = unique("vanish")
    ws = await connect(f"{vanishing.ws}/msg/{channel}?name=carol", open_timeout=5)
    await asyncio.sleep(1.5)  # its member reaches the database
    vanishing.stop(signal.SIGKILL)
    # Other tests' vanished nodes may be reported too: ours is the one of our channel.
    ours = lambda: [e for e in receiver.of_type("presence_expired") if e["data"]["channel"] == channel]  # noqa: E731
    receiver.wait_for("presence_expired", ours, timeout=30)
    [event] = ours()
    assert event["data"]["channel"] == channel
    assert [client["info"] for client in event["data"]["clients"]] == [{"name": "carol"}]
    ws.transport.abort()


async def test_a_client_the_connect_hook_turns_away_is_never_connected_and_one_it_names_is_that_user(squall, receiver):
    from test_hooks import Backend

    backend = Backend()
    backend.answers["connect"] = lambda call: {"error": {"message": "no"}} if call["headers"].get("cookie") == "who=eve" else {"result": {"user": "jo"}}
    try:
        server = webhooked(squall, receiver, "--hook-connect", f"{backend.url}/connect", "--hook-header", "cookie",
                           "--webhook-events", "connected", "--webhook-events", "disconnected")
        async with connect(f"{server.ws}/msg", additional_headers={"Cookie": "who=eve"}, open_timeout=5) as turned_away:
            await close_of(turned_away)
        async with connect(f"{server.ws}/ws", subprotocols=["squall.v1"], open_timeout=5) as ws:
            await asyncio.wait_for(ws.recv(), 5)
        receiver.wait_for("jo's two events", lambda: len(receiver.events) >= 2)
        time.sleep(0.5)
    finally:
        backend.close()
    assert sorted((e["type"], e["data"].get("user")) for e in receiver.events.values()) == [("connected", "jo"), ("disconnected", "jo")]


async def test_events_past_the_outbox_bound_are_dropped_and_counted(squall, tmp_path):
    receiver = Receiver()  # down: nothing is delivered
    server = webhooked(squall, receiver, "--store", f"sqlite:{tmp_path}/squall.db", "--webhook-outbox-max", "3",
                       "--webhook-events", "published")
    for n in range(8):
        request = urllib.request.Request(f"{server.http}/channels/bounded/messages", data=f"m{n}".encode(), method="POST")
        assert urllib.request.urlopen(request, timeout=5).status == 201, "publishing never waits on webhooks"
    deadline = time.monotonic() + 5
    while metric(server, "squall_webhook_events_total", outcome="dropped") < 5:
        assert time.monotonic() < deadline, "the drops are not counted"
        time.sleep(0.1)
    with sqlite3.connect(f"{tmp_path}/squall.db") as db:
        assert db.execute("SELECT count(*) FROM webhook_outbox").fetchone()[0] == 3


@postgres_only
async def test_on_postgresql_published_events_keep_to_the_outbox_bound(squall):
    receiver = Receiver()
    server = webhooked(squall, receiver, "--store", DATABASE, "--webhook-outbox-max", "2", "--webhook-events", "published")
    channel = unique("pgbound")
    for n in range(6):
        request = urllib.request.Request(f"{server.http}/channels/{channel}/messages", data=f"m{n}".encode(), method="POST")
        assert urllib.request.urlopen(request, timeout=5).status == 201
    deadline = time.monotonic() + 5
    while metric(server, "squall_webhook_events_total", outcome="dropped") < 4:
        assert time.monotonic() < deadline, "the drops are not counted"
        time.sleep(0.1)
