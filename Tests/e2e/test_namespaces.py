# SPDX-License-Identifier: Apache-2.0
"""Namespaces: channel `NS:rest` takes namespace NS's options (history bounds, presence, who may
subscribe, publish and read, private channels, message size, publish rate), a name without `:`
or in an undefined namespace the default namespace's — on every transport a client uses."""
import asyncio
import json
import os
import signal
import tempfile
import time
import urllib.error
import urllib.request

import jwt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from conftest import Squall

SECRET = "namespaces-e2e-secret-at-least-32-bytes-long"
OTHER_SECRET = "another-secret-also-at-least-32-bytes-long!"

CONFIG = """\
namespaces:
  hist: {history-size: 3}
  age: {history-age: 1s}
  bytes: {history-bytes: 2KiB}
  quiet: {presence: false}
  nojl: {join-leave: false}
  members: {subscribe: authenticated, publish: authenticated, history: authenticated, presence-read: authenticated}
  say: {publish: authenticated}
  closed: {subscribe: none, publish: none, history: none, presence-read: none}
  readonly: {publish: none}
  room: {publish: subscribers, history: subscribers, presence-read: subscribers}
  archive: {history: none}
  user: {subscribe: subscribers, publish: subscribers}
  chat: {publish: subscribers}
  chatroom: {publish: subscribers}
  news: {publish: subscribers}
  priv: {private: true}
  unseen: {presence-read: none}
  vault: {history: authenticated}
  small: {max-message-size: 100}
  slow: {publish-rate: 1/s}
"""


def token(secret=SECRET, **claims):
    """A connection or subscription token, HS256, as an application's backend mints it."""
    return jwt.encode(claims, secret, algorithm="HS256")


# --- HTTP ---------------------------------------------------------------------------------


def http(server, path, method="GET", body=None, headers=None, bearer=None):
    """(status, headers, parsed JSON body or text) of one request; errors are returned."""
    headers = dict(headers or {})
    if bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    req = urllib.request.Request(f"{server.http}{path}", data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=5) as response:
            status, head, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, head, raw = error.code, error.headers, error.read()
    try:
        return status, head, json.loads(raw)
    except ValueError:
        return status, head, raw.decode(errors="replace")


def publish(server, channel, data, **kw):
    status, _, body = http(server, f"/channels/{channel}/messages", "POST", data.encode(), **kw)
    return status, body


def refusal(status, body):
    """(status, code) of an HTTP JSON error."""
    return status, body["error"]["code"] if isinstance(body, dict) and "error" in body else body


def history_data(server, channel, **kw):
    status, _, body = http(server, f"/channels/{channel}/history", **kw)
    assert status == 200, body
    return [m["data"] for m in body["messages"]]


def poll_data(server, channel, query="", **kw):
    status, _, body = http(server, f"/channels/{channel}/messages?wait=0{query}", **kw)
    assert status == 200, body
    return [m["data"] for m in body["messages"]]


# --- /ws ----------------------------------------------------------------------------------


class WS:
    """A `/ws` (squall.v1) client: `ask` sends a request and returns the reply with its ref;
    frames without a ref (messages, joins, leaves) are kept in `events`."""

    def __init__(self, socket, welcome):
        self.socket = socket
        self.welcome = welcome
        self.events = []
        self.ref = 0

    @classmethod
    async def open(cls, server, token=None, headers=None, origin=None):
        url = f"{server.ws}/ws" + (f"?token={token}" if token else "")
        socket = await connect(url, subprotocols=["squall.v1"], additional_headers=headers, origin=origin, open_timeout=5)
        welcome = json.loads(await asyncio.wait_for(socket.recv(), 5))
        assert welcome["type"] == "welcome", welcome
        return cls(socket, welcome)

    async def ask(self, op, timeout=5, **fields):
        self.ref += 1
        ref = self.ref
        await self.socket.send(json.dumps({"op": op, "ref": ref, **fields}))
        async with asyncio.timeout(timeout):
            while True:
                frame = json.loads(await self.socket.recv())
                if frame.get("ref") == ref:
                    return frame
                self.events.append(frame)

    async def event(self, kind, timeout=5):
        """The next event of type `kind` (earlier events of other types stay in `events`)."""
        async with asyncio.timeout(timeout):
            while True:
                for index, frame in enumerate(self.events):
                    if frame.get("type") == kind:
                        return self.events.pop(index)
                frame = json.loads(await self.socket.recv())
                if frame.get("ref") is None:
                    self.events.append(frame)

    async def settle(self, pause=0.3):
        """Events that arrive within `pause` s and before a ping's pong: presence events gather
        for 50 ms per channel, so any due by now come before the pong."""
        await asyncio.sleep(pause)
        assert (await self.ask("ping"))["type"] == "pong"
        events, self.events = self.events, []
        return events

    async def close(self):
        await self.socket.close()


def is_error(reply, code="permission_denied"):
    return reply["type"] == "error" and reply["code"] == code


async def refused_upgrade(url, **kw):
    """The HTTP response that refused a WebSocket upgrade."""
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, open_timeout=5, **kw):
            pass
    return refused.value.response


def upgrade_error(response):
    return response.status_code, json.loads(response.body)["error"]["code"]


async def closed_with(socket, timeout=5):
    """The close code the server sent, once the socket closes (within `timeout` s)."""
    received = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                received.append(await socket.recv())
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None
    except TimeoutError:
        raise AssertionError(f"the server did not close the socket within {timeout} s; it sent {received[:5]!r}") from None


# --- SSE ----------------------------------------------------------------------------------


class EventStream:
    """A raw `GET /channels/{c}/events`: the status, then the stream's text as it comes."""

    @classmethod
    async def open(cls, server, path, headers=None):
        self = cls()
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", server.port)
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n".encode())
        head = (await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), 5)).decode()
        self.status = int(head.split()[1])
        self.text = ""
        if self.status != 200:
            length = int(next(line.split(":")[1] for line in head.split("\r\n") if line.lower().startswith("content-length")))
            self.error = json.loads(await asyncio.wait_for(self.reader.readexactly(length), 5))["error"]["code"]
            self.close()
        return self

    async def until(self, marker, timeout=5):
        """The stream's text up to and including `marker`'s first appearance."""
        async with asyncio.timeout(timeout):
            while marker not in self.text:
                chunk = await self.reader.read(65536)
                assert chunk, f"the stream ended before {marker!r}: {self.text!r}"
                self.text += chunk.decode()
        return self.text

    def close(self):
        self.writer.close()


async def sse_status(server, path, headers=None):
    stream = await EventStream.open(server, path, headers)
    if stream.status == 200:
        await stream.until("event: subscribed")
        stream.close()
        return 200, None
    return stream.status, stream.error


# --- servers ------------------------------------------------------------------------------


def write_config(text, suffix=".yaml"):
    handle = tempfile.NamedTemporaryFile("w", suffix=suffix, delete=False)
    handle.write(text)
    handle.close()
    return handle.name


@pytest.fixture(scope="module")
def server():
    """One server for the module: the namespaces above, tokens verified with SECRET."""
    path = write_config(CONFIG)
    squall = Squall(["--config", path, "--jwt-secret", SECRET, "--log-level", "error"], {}).wait_ready()
    yield squall
    squall.stop(signal.SIGKILL)
    os.unlink(path)


# --- history bounds -----------------------------------------------------------------------


async def test_a_channel_takes_its_namespaces_options_and_other_names_the_default_namespaces(squall):
    path = write_config(
        "default-namespace:\n  history-size: 2\n  publish: authenticated\nnamespaces:\n  hist:\n    history-size: 3\n"
    )
    try:
        srv = squall("--config", path, "--jwt-secret", SECRET, "--log-level", "error")
        alice = token(sub="alice")
        for channel in ["plain", "nowhere:x", "hist:x", "x:hist:y"]:
            for n in range(5):
                assert publish(srv, channel, f"m{n}", bearer=alice)[0] == 201
        assert history_data(srv, "hist:x") == ["m2", "m3", "m4"]
        # No ':' and an undefined namespace ("nowhere", "x") both take the default namespace's.
        assert history_data(srv, "plain") == ["m3", "m4"]
        assert history_data(srv, "nowhere:x") == ["m3", "m4"]
        assert history_data(srv, "x:hist:y") == ["m3", "m4"]
        # The default namespace's publish rule, where the namespace hist has none of its own.
        status, body = publish(srv, "plain", "anonymous")
        assert refusal(status, body) == (403, "permission_denied")
        assert body["error"]["message"].startswith("the default namespace refuses this (publish: authenticated)")
        assert publish(srv, "hist:x", "anonymous")[0] == 201
    finally:
        os.unlink(path)


async def test_history_size_bounds_history_polls_and_ws_history(server):
    for n in range(6):
        assert publish(server, "hist:size", f"h{n}")[0] == 201
        assert publish(server, "histsize", f"h{n}")[0] == 201
    assert history_data(server, "hist:size") == ["h3", "h4", "h5"]
    assert poll_data(server, "hist:size") == ["h3", "h4", "h5"]
    client = await WS.open(server)
    reply = await client.ask("history", channel="hist:size")
    assert [m["data"] for m in reply["messages"]] == ["h3", "h4", "h5"]
    await client.close()
    # The same name outside the namespace keeps them all.
    assert history_data(server, "histsize") == [f"h{n}" for n in range(6)]


async def test_a_namespaces_history_size_never_exceeds_the_servers_retention(squall):
    path = write_config("retention-messages: 2\nnamespaces:\n  big:\n    history-size: 5000\n")
    try:
        srv = squall("--config", path, "--log-level", "error")
        for n in range(5):
            publish(srv, "big:x", f"b{n}")
        assert history_data(srv, "big:x") == ["b3", "b4"]
    finally:
        os.unlink(path)


async def test_history_age_drops_what_is_older_than_the_namespace_keeps(server):
    assert publish(server, "age:a", "old")[0] == 201
    assert publish(server, "agea", "old")[0] == 201
    assert history_data(server, "age:a") == ["old"]
    await asyncio.sleep(1.6)
    assert history_data(server, "age:a") == []
    assert poll_data(server, "age:a") == []
    assert history_data(server, "agea") == ["old"], "a channel outside the namespace keeps it for the server's hour"


async def test_history_bytes_bounds_what_a_channel_keeps(server):
    for n in range(4):
        assert publish(server, "bytes:a", str(n) * 1000)[0] == 201
        assert publish(server, "bytesa", str(n) * 1000)[0] == 201
    kept = history_data(server, "bytes:a")
    assert 1 <= len(kept) < 4, [m[:1] for m in kept]
    assert kept[-1] == "3" * 1000, "the newest is always kept"
    assert len(history_data(server, "bytesa")) == 4


# --- presence -----------------------------------------------------------------------------


async def test_presence_false_refuses_presence_reads_and_sends_no_joins(server):
    status, _, body = http(server, "/channels/quiet:a/presence")
    assert refusal(status, body) == (403, "permission_denied")
    assert "presence: false" in body["error"]["message"]

    watcher = await WS.open(server)
    assert (await watcher.ask("subscribe", channel="quiet:a", presence=True))["type"] == "subscribed"
    assert (await watcher.ask("subscribe", channel="quieta", presence=True))["type"] == "subscribed"
    reply = await watcher.ask("presence", channel="quiet:a")
    assert is_error(reply) and "presence: false" in reply["message"], reply
    sse = await EventStream.open(server, "/channels/quiet:a/events?presence=true")
    assert sse.status == 200
    await sse.until("event: subscribed")
    async with connect(f"{server.ws}/msg/quiet:a", open_timeout=5), connect(f"{server.ws}/msg/quieta", open_timeout=5):
        events = await watcher.settle()
    events += await watcher.settle()
    assert [e for e in events if e["type"] in ("join", "leave") and e["channel"] == "quiet:a"] == [], events
    # Outside the namespace the same watcher hears the /msg socket come and go.
    assert {e["type"] for e in events if e["channel"] == "quieta"} >= {"join", "leave"}, events
    publish(server, "quiet:a", "after")
    text = await sse.until("event: message")
    assert "event: join" not in text and "event: leave" not in text, text
    sse.close()
    await watcher.close()


async def test_a_subscriber_the_presence_read_rule_refuses_hears_no_joins_either(server):
    # Join and leave events name members as a presence read does: presence-read: none keeps
    # them from a subscriber that asks for them, on /ws and SSE, and the subscribe still works.
    watcher = await WS.open(server)
    assert (await watcher.ask("subscribe", channel="unseen:a", presence=True))["type"] == "subscribed"
    sse = await EventStream.open(server, "/channels/unseen:a/events?presence=true")
    assert sse.status == 200
    await sse.until("event: subscribed")
    async with connect(f"{server.ws}/msg/unseen:a?name=mallory", open_timeout=5):
        events = await watcher.settle()
    events += await watcher.settle()
    assert [e for e in events if e["type"] in ("join", "leave")] == [], events
    publish(server, "unseen:a", "after")
    text = await sse.until("event: message")
    assert "event: join" not in text and "mallory" not in text, text
    sse.close()
    await watcher.close()


async def test_a_poll_the_history_rule_refuses_starts_from_now_but_may_resume(server):
    for text in ("one", "two"):
        assert publish(server, "vault:a", text)[0] == 201
    assert http(server, "/channels/vault:a/history")[0] == 403
    # Without a position an anonymous poll gets no backlog: it starts from the current position.
    status, _, page = http(server, "/channels/vault:a/messages?wait=0")
    assert status == 200 and page["messages"] == [] and page["offset"] == 2, page
    # Resuming from a position is part of subscribing, which anyone may.
    status, _, page = http(server, f"/channels/vault:a/messages?wait=0&since={page['epoch']}:1")
    assert [m["data"] for m in page["messages"]] == ["two"], page
    # With a token the history rule allows, the poll gets the backlog.
    status, _, page = http(server, "/channels/vault:a/messages?wait=0", bearer=token(sub="ada"))
    assert [m["data"] for m in page["messages"]] == ["one", "two"], page


async def test_join_leave_false_silences_events_but_presence_still_lists_members(server):
    watcher = await WS.open(server)
    assert (await watcher.ask("subscribe", channel="nojl:a", presence=True))["type"] == "subscribed"
    sse = await EventStream.open(server, "/channels/nojl:a/events?presence=1")
    control = await EventStream.open(server, "/channels/nojla/events?presence=1")
    assert (sse.status, control.status) == (200, 200)
    await sse.until("event: subscribed")
    async with connect(f"{server.ws}/msg/nojl:a", open_timeout=5) as member, connect(f"{server.ws}/msg/nojla", open_timeout=5):
        await asyncio.sleep(0.3)
        status, _, body = http(server, "/channels/nojl:a/presence")
        assert status == 200
        assert {c["transport"] for c in body["clients"]} == {"ws", "sse", "msg"}, body
        reply = await watcher.ask("presence", channel="nojl:a")
        assert reply["type"] == "presence" and len(reply["clients"]) == 3, reply
        await member.send("hello")
        assert (await watcher.event("message"))["data"] == "hello"
    events = await watcher.settle()
    assert [e for e in events if e["type"] in ("join", "leave")] == [], events
    publish(server, "nojl:a", "after")
    text = await sse.until('"data":"after"')
    assert "event: join" not in text and "event: leave" not in text, text
    # A channel outside the namespace does tell its watchers.
    assert "event: join" in await control.until("event: join")
    sse.close()
    control.close()
    await watcher.close()


# --- who may: authenticated, none, subscribers --------------------------------------------


async def test_authenticated_subscribe_needs_a_connection_token_on_every_transport(server):
    alice = token(sub="alice")
    # /ws: refused without a token (the socket stays open), then subscribed after `connect`.
    client = await WS.open(server)
    reply = await client.ask("subscribe", channel="members:a")
    assert is_error(reply), reply
    assert "namespace members refuses this (subscribe: authenticated)" in reply["message"]
    assert (await client.ask("connect", token=alice))["type"] == "connected"
    assert (await client.ask("subscribe", channel="members:a"))["type"] == "subscribed"
    await client.close()
    # /ws with the token at the upgrade.
    client = await WS.open(server, token=alice)
    assert (await client.ask("subscribe", channel="members:a"))["type"] == "subscribed"
    await client.close()
    # SSE, polls and /msg: ?token= or Authorization: Bearer.
    assert await sse_status(server, "/channels/members:a/events") == (403, "permission_denied")
    assert await sse_status(server, f"/channels/members:a/events?token={alice}") == (200, None)
    assert await sse_status(server, "/channels/members:a/events", {"Authorization": f"Bearer {alice}"}) == (200, None)
    status, _, body = http(server, "/channels/members:a/messages?wait=0")
    assert refusal(status, body) == (403, "permission_denied")
    assert http(server, "/channels/members:a/messages?wait=0", bearer=alice)[0] == 200
    assert http(server, f"/channels/members:a/messages?wait=0&token={alice}")[0] == 200
    assert upgrade_error(await refused_upgrade(f"{server.ws}/msg/members:a")) == (403, "permission_denied")
    async with connect(f"{server.ws}/msg/members:a?token={alice}", open_timeout=5) as socket:
        await socket.send("from alice")
        assert await asyncio.wait_for(socket.recv(), 5) == "from alice"
    # A token that does not verify is not anonymous: it is refused as a token (401).
    forged = token(OTHER_SECRET, sub="alice")
    status, _, body = http(server, "/channels/members:a/messages?wait=0", bearer=forged)
    assert refusal(status, body) == (401, "unauthorized")


async def test_authenticated_publish_history_and_presence_need_a_token(server):
    alice = token(sub="alice")
    status, body = publish(server, "members:p", "anonymous")
    assert refusal(status, body) == (403, "permission_denied")
    assert "(publish: authenticated)" in body["error"]["message"]
    assert publish(server, "members:p", "signed", bearer=alice)[0] == 201
    for route in ("history", "presence"):
        status, _, body = http(server, f"/channels/members:p/{route}")
        assert refusal(status, body) == (403, "permission_denied"), route
        assert http(server, f"/channels/members:p/{route}", bearer=alice)[0] == 200, route
    assert history_data(server, "members:p", bearer=alice) == ["signed"]
    client = await WS.open(server)
    assert is_error(await client.ask("publish", channel="members:p", data="x"))
    assert is_error(await client.ask("history", channel="members:p"))
    assert (await client.ask("connect", token=alice))["type"] == "connected"
    assert (await client.ask("publish", channel="members:p", data="over ws"))["type"] == "published"
    assert (await client.ask("history", channel="members:p"))["type"] == "history"
    await client.close()
    # /msg: anyone may subscribe to say:*, but a frame from an anonymous socket is a refused
    # publish, which closes it with 4003; a socket with a token publishes.
    async with connect(f"{server.ws}/msg/say:a", open_timeout=5) as anonymous:
        await anonymous.send("may I?")
        assert await closed_with(anonymous) == 4003
    assert history_data(server, "say:a") == []
    async with connect(f"{server.ws}/msg/say:a?token={alice}", open_timeout=5) as signed:
        await signed.send("I may")
        assert await asyncio.wait_for(signed.recv(), 5) == "I may"


async def test_none_refuses_every_client_even_with_a_token_that_grants_everything(server):
    everything = token(sub="root", subscribe=["*"], publish=["*"])
    for bearer in (None, everything):
        status, body = publish(server, "closed:a", "x", bearer=bearer)
        assert refusal(status, body) == (403, "permission_denied")
        assert "(publish: none)" in body["error"]["message"]
        for route in ("history", "presence", "messages?wait=0"):
            status, _, body = http(server, f"/channels/closed:a/{route}", bearer=bearer)
            assert refusal(status, body) == (403, "permission_denied"), route
        query = f"?token={bearer}" if bearer else ""
        assert await sse_status(server, f"/channels/closed:a/events{query}") == (403, "permission_denied")
    client = await WS.open(server, token=everything)
    for op, fields in [("subscribe", {}), ("publish", {"data": "x"}), ("history", {}), ("presence", {})]:
        reply = await client.ask(op, channel="closed:a", **fields)
        assert is_error(reply), (op, reply)
    assert (await client.ask("ping"))["type"] == "pong", "a refusal leaves the socket open"
    await client.close()
    response = await refused_upgrade(f"{server.ws}/msg/closed:a?token={everything}")
    assert upgrade_error(response) == (403, "permission_denied")
    # publish: none with subscribe open: /msg subscribes, and its first frame closes it.
    async with connect(f"{server.ws}/msg/readonly:a?token={everything}", open_timeout=5) as socket:
        await socket.send("x")
        assert await closed_with(socket) == 4003
    assert publish(server, "readonly:a", "x", bearer=everything)[0] == 403


async def test_subscribers_rules_need_a_subscription_on_the_same_connection(server):
    alice = token(sub="alice")
    # HTTP requests are never subscribers, with a token or without.
    for bearer in (None, alice):
        status, body = publish(server, "room:a", "x", bearer=bearer)
        assert refusal(status, body) == (403, "permission_denied")
        assert body["error"]["message"].startswith("namespace room refuses this (publish: subscribers)")
        for route in ("history", "presence"):
            status, _, body = http(server, f"/channels/room:a/{route}", bearer=bearer)
            assert refusal(status, body) == (403, "permission_denied"), route
    member, other = await WS.open(server), await WS.open(server)
    for op, fields in [("publish", {"data": "early"}), ("history", {}), ("presence", {})]:
        assert is_error(await member.ask(op, channel="room:a", **fields)), op
    assert (await member.ask("subscribe", channel="room:a"))["type"] == "subscribed"
    assert (await member.ask("publish", channel="room:a", data="inside"))["type"] == "published"
    assert [m["data"] for m in (await member.ask("history", channel="room:a"))["messages"]] == ["inside"]
    presence = await member.ask("presence", channel="room:a")
    assert [c["id"] for c in presence["clients"]] == [member.welcome["client"]]
    # Another connection's subscription is not this one's.
    assert is_error(await other.ask("publish", channel="room:a", data="outside"))
    # A /msg socket is always subscribed to its own channel.
    async with connect(f"{server.ws}/msg/room:a", open_timeout=5) as socket:
        await socket.send("from msg")
        assert await asyncio.wait_for(socket.recv(), 5) == "from msg"
    assert [(await member.event("message"))["data"] for _ in range(2)] == ["inside", "from msg"]
    await member.close()
    await other.close()


async def test_a_poll_follows_the_subscribe_rule_and_history_the_history_rule(server):
    assert publish(server, "archive:a", "kept")[0] == 201
    status, _, body = http(server, "/channels/archive:a/history")
    assert refusal(status, body) == (403, "permission_denied")
    assert "(history: none)" in body["error"]["message"]
    # A poll is a subscribe, which anyone may; without a position it starts from now, the
    # backlog being history, and resumes from a position it is given.
    assert poll_data(server, "archive:a") == []
    _, _, head = http(server, "/channels/archive:a/messages?wait=0")
    assert poll_data(server, "archive:a", f"&since={head['epoch']}:0") == ["kept"]
    client = await WS.open(server)
    assert is_error(await client.ask("history", channel="archive:a"))
    await client.close()


# --- token grants -------------------------------------------------------------------------


async def test_a_user_sub_grant_opens_the_users_own_channel_only(server):
    grant = {"subscribe": ["user:{sub}"], "publish": ["user:{sub}"]}
    alice, bob = token(sub="alice", **grant), token(sub="bob", **grant)
    client = await WS.open(server, token=alice)
    assert (await client.ask("subscribe", channel="user:alice"))["type"] == "subscribed"
    assert is_error(await client.ask("subscribe", channel="user:bob"))
    await client.close()
    anonymous = await WS.open(server)
    assert is_error(await anonymous.ask("subscribe", channel="user:alice"))
    await anonymous.close()
    assert await sse_status(server, f"/channels/user:bob/events?token={bob}") == (200, None)
    assert await sse_status(server, f"/channels/user:alice/events?token={bob}") == (403, "permission_denied")
    assert http(server, "/channels/user:alice/messages?wait=0", bearer=alice)[0] == 200
    assert http(server, "/channels/user:alice/messages?wait=0", bearer=bob)[0] == 403
    async with connect(f"{server.ws}/msg/user:bob?token={bob}", open_timeout=5):
        pass
    assert upgrade_error(await refused_upgrade(f"{server.ws}/msg/user:bob?token={alice}")) == (403, "permission_denied")
    # Publishing, granted the same way: even over HTTP, which is never a subscriber.
    assert publish(server, "user:alice", "note to self", bearer=alice)[0] == 201
    assert publish(server, "user:alice", "from bob", bearer=bob)[0] == 403
    # A user id of "*" is not a wildcard.
    star = token(sub="*", **grant)
    assert http(server, "/channels/user:alice/messages?wait=0", bearer=star)[0] == 403
    assert publish(server, "user:alice", "x", bearer=star)[0] == 403
    # A subscribe grant is not a publish grant.
    reader = token(sub="carol", subscribe=["user:{sub}"])
    assert publish(server, "user:carol", "x", bearer=reader)[0] == 403


async def test_glob_and_exact_grants_reach_only_the_channels_they_name(server):
    writer = token(sub="w", publish=["chat:*", "news:flash"])
    assert publish(server, "chat:lobby", "a", bearer=writer)[0] == 201
    assert publish(server, "chat:other", "b", bearer=writer)[0] == 201
    assert publish(server, "news:flash", "c", bearer=writer)[0] == 201
    for channel in ("news:other", "chatroom:x"):
        status, body = publish(server, channel, "d", bearer=writer)
        assert refusal(status, body) == (403, "permission_denied"), channel
    assert publish(server, "chat:lobby", "anonymous")[0] == 403
    assert publish(server, "chat:lobby", "no grant", bearer=token(sub="w"))[0] == 403
    # On /ws the grant stands in for the subscription `publish: subscribers` asks for.
    client = await WS.open(server, token=writer)
    assert (await client.ask("publish", channel="chat:ws", data="granted"))["type"] == "published"
    assert is_error(await client.ask("publish", channel="chatroom:ws", data="not granted"))
    await client.close()
    assert history_data(server, "chat:lobby") == ["a"]


# --- private namespaces: subscription tokens ----------------------------------------------


async def test_private_channels_need_a_subscription_token_for_the_channel_and_user_on_ws(server):
    anonymous = await WS.open(server)
    cases = [
        (None, "a subscription token for priv:a is needed"),
        (token(channel="priv:b"), "another channel or user"),
        (token(channel="priv:a", sub="mallory"), "another channel or user"),
        (token(OTHER_SECRET, channel="priv:a"), "does not verify"),
        (token(channel="priv:a", exp=int(time.time()) - 60), "expired"),
    ]
    for subscription, why in cases:
        fields = {"token": subscription} if subscription else {}
        reply = await anonymous.ask("subscribe", channel="priv:a", **fields)
        assert is_error(reply), reply
        assert "(private: true)" in reply["message"] and why in reply["message"], reply
    assert (await anonymous.ask("subscribe", channel="priv:a", token=token(channel="priv:a")))["type"] == "subscribed"
    publish(server, "priv:a", "secret")
    assert (await anonymous.event("message"))["data"] == "secret"
    await anonymous.close()

    alice = await WS.open(server, token=token(sub="alice"))
    assert is_error(await alice.ask("subscribe", channel="priv:a", token=token(channel="priv:a", sub="bob")))
    assert is_error(await alice.ask("subscribe", channel="priv:a", token=token(channel="priv:a")))
    assert (await alice.ask("subscribe", channel="priv:a", token=token(channel="priv:a", sub="alice")))["type"] == "subscribed"
    await alice.close()


async def test_private_channels_take_subscription_tokens_on_sse_polls_and_msg(server):
    valid, wrong_channel = token(channel="priv:s"), token(channel="priv:t")
    assert await sse_status(server, "/channels/priv:s/events") == (403, "permission_denied")
    assert await sse_status(server, f"/channels/priv:s/events?subscription_token={wrong_channel}") == (403, "permission_denied")
    assert await sse_status(server, f"/channels/priv:s/events?subscription_token={valid}") == (200, None)
    assert http(server, "/channels/priv:s/messages?wait=0")[0] == 403
    assert http(server, f"/channels/priv:s/messages?wait=0&subscription_token={wrong_channel}")[0] == 403
    assert http(server, f"/channels/priv:s/messages?wait=0&subscription_token={valid}")[0] == 200
    assert upgrade_error(await refused_upgrade(f"{server.ws}/msg/priv:s")) == (403, "permission_denied")
    async with connect(f"{server.ws}/msg/priv:s?subscription_token={valid}", open_timeout=5) as socket:
        await socket.send("inside")
        assert await asyncio.wait_for(socket.recv(), 5) == "inside"
    # Bound to the connection's user: alice's socket needs alice's subscription token.
    alice = token(sub="alice")
    for_bob = token(channel="priv:s", sub="bob")
    for_alice = token(channel="priv:s", sub="alice")
    assert upgrade_error(await refused_upgrade(f"{server.ws}/msg/priv:s?token={alice}&subscription_token={for_bob}")) == (
        403,
        "permission_denied",
    )
    async with connect(f"{server.ws}/msg/priv:s?token={alice}&subscription_token={for_alice}", open_timeout=5):
        pass
    assert await sse_status(server, f"/channels/priv:s/events?token={alice}&subscription_token={for_alice}") == (200, None)
    assert await sse_status(server, f"/channels/priv:s/events?token={alice}&subscription_token={valid}") == (403, "permission_denied")


async def test_a_subscription_token_expires_as_a_connection_token_does_unless_renewed():
    # Leeway 0: a token is valid until its exp, and its connection closed then with 4002.
    path = write_config(CONFIG)
    squall = Squall(["--config", path, "--jwt-secret", SECRET, "--jwt-leeway", "0", "--log-level", "error"], {}).wait_ready()
    try:
        soon = lambda: token(channel="priv:x", exp=int(time.time()) + 2)  # noqa: E731
        # /ws: subscribed with a token about to expire, and never renewed.
        lapsing = await WS.open(squall)
        assert (await lapsing.ask("subscribe", channel="priv:x", token=soon()))["type"] == "subscribed"
        # /ws: renewed before it expires, by subscribing again with a fresh token.
        renewed = await WS.open(squall)
        assert (await renewed.ask("subscribe", channel="priv:x", token=soon()))["type"] == "subscribed"
        await asyncio.sleep(1)
        assert (await renewed.ask("subscribe", channel="priv:x", token=token(channel="priv:x", exp=int(time.time()) + 60)))["type"] == "subscribed"
        plain = await connect(f"{squall.ws}/msg/priv:x?subscription_token={soon()}", open_timeout=5)
        stream = await EventStream.open(squall, f"/channels/priv:x/events?subscription_token={soon()}")
        assert stream.status == 200
        assert await closed_with(lapsing.socket, timeout=5) == 4002
        assert await closed_with(plain, timeout=5) == 4002
        assert "event: close" in await stream.until('"code":4002', timeout=5)
        stream.close()
        # The renewed one is still subscribed past the first token's expiry.
        await asyncio.sleep(1.5)
        publish(squall, "priv:x", "still here")
        assert (await renewed.event("message"))["data"] == "still here"
        await renewed.close()
    finally:
        squall.stop(signal.SIGKILL)
        os.unlink(path)


# --- message size and publish rate ---------------------------------------------------------


async def test_a_namespaces_max_message_size_on_every_transport(server):
    status, body = publish(server, "small:a", "x" * 101)
    assert refusal(status, body) == (413, "message_too_large")
    assert publish(server, "small:a", "x" * 100)[0] == 201
    assert publish(server, "smalla", "x" * 101)[0] == 201, "outside the namespace the server's 1 MiB applies"
    client = await WS.open(server)
    assert is_error(await client.ask("publish", channel="small:a", data="y" * 101), "message_too_large")
    assert (await client.ask("publish", channel="small:a", data="y" * 100))["type"] == "published"
    await client.close()
    async with connect(f"{server.ws}/msg/small:a", open_timeout=5) as socket:
        await socket.send("z" * 100)
        assert await asyncio.wait_for(socket.recv(), 5) == "z" * 100
        await socket.send("z" * 101)
        assert await closed_with(socket) == 1009
    assert history_data(server, "small:a") == ["x" * 100, "y" * 100, "z" * 100]


async def test_a_namespaces_publish_rate_on_every_transport(server):
    # 1/s: a burst of 10 (ten seconds' worth), then refusals.
    statuses = [publish(server, "slow:http", f"{n}") for n in range(13)]
    passed = [s for s, _ in statuses if s == 201]
    assert 10 <= len(passed) <= 11, statuses
    status, body = statuses[-1]
    assert refusal(status, body) == (429, "rate_limited")
    _, headers, _ = http(server, "/channels/slow:http/messages", "POST", b"again")
    assert int(headers["Retry-After"]) >= 1
    assert publish(server, "slowhttp", "elsewhere")[0] == 201, "only the namespace's channels are limited"

    client = await WS.open(server)
    replies = [await client.ask("publish", channel="slow:ws", data=str(n)) for n in range(13)]
    assert 10 <= sum(r["type"] == "published" for r in replies) <= 11, replies
    assert is_error(replies[-1], "rate_limited"), replies[-1]
    assert (await client.ask("publish", channel="plain-ws", data="elsewhere"))["type"] == "published"
    fresh = await WS.open(server)
    assert (await fresh.ask("publish", channel="slow:ws", data="mine"))["type"] == "published", "per connection"
    await client.close()
    await fresh.close()

    async with connect(f"{server.ws}/msg/slow:msg", open_timeout=5) as socket:
        for n in range(13):
            await socket.send(str(n))
        echoed = []
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(5):
                while True:
                    echoed.append(await socket.recv())
        assert closed.value.rcvd.code == 1008 and closed.value.rcvd.reason == "publish rate exceeded"
        assert 10 <= len(echoed) <= 11, echoed


# --- channel names in URLs ------------------------------------------------------------------


async def test_a_namespaced_channel_may_be_percent_encoded_in_a_url(server):
    # squall.js builds these URLs with encodeURIComponent(channel).
    assert publish(server, "hist:colon", "as is")[0] == 201
    status, body = publish(server, "hist%3Acolon", "encoded")
    assert status == 201, body
    assert body["channel"] == "hist:colon"
    assert history_data(server, "hist%3Acolon") == ["as is", "encoded"]
