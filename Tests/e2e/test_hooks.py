# SPDX-License-Identifier: Apache-2.0
"""Backend hooks (`hook-connect`, `hook-refresh`, `hook-subscribe`, `hook-publish`): a real HTTP
backend on 127.0.0.1 that Squall asks, answering allow — with a user, info, an expiry or
replaced data — or deny, or late, or not at all; and what the clients on every transport see."""
import asyncio
import json
import threading
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from websockets.asyncio.client import connect

from conftest import free_port
from test_auth import SECRET, EventStream, ask, close_of, mint, receive, unique


class Backend:
    """An application's backend: records every hook call and answers as `answers[hook]` says —
    a dict (sent as JSON), a callable of the call returning one, ("sleep", seconds), or a status."""

    def __init__(self):
        self.calls = []
        self.answers = {}
        backend = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                backend.calls.append(body)
                answer = backend.answers.get(body["hook"], {"result": {}})
                if callable(answer):
                    answer = answer(body)
                if isinstance(answer, tuple) and answer[0] == "sleep":
                    time.sleep(answer[1])
                    answer = {"result": {}}
                if isinstance(answer, int):
                    self.send_response(answer)
                    self.end_headers()
                    return
                data = json.dumps(answer).encode() if not isinstance(answer, bytes) else answer
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def calls_of(self, hook):
        return [call for call in self.calls if call["hook"] == hook]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def backend():
    server = Backend()
    yield server
    server.close()


def hooked(squall, backend, *hooks, extra=()):
    args = ["--log-level", "error", "--jwt-secret", SECRET, "--hook-timeout", "1s", "--hook-header", "Cookie"]
    for hook in hooks:
        args += [f"--hook-{hook}", f"{backend.url}/{hook}"]
    return squall(*args, *extra)


def http(server, method, path, body=None):
    request = urllib.request.Request(f"{server.http}{path}", data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def members(server, channel, count, timeout=5):
    deadline = time.monotonic() + timeout
    while True:
        status, page = http(server, "GET", f"/channels/{channel}/presence")
        if status == 200 and len(page["clients"]) >= count:
            return page["clients"]
        assert time.monotonic() < deadline, page
        time.sleep(0.05)


# --- Connect ----------------------------------------------------------------------------------


async def test_the_connect_hook_names_the_user_of_an_anonymous_socket_from_its_cookie(squall, backend):
    backend.answers["connect"] = lambda call: {"result": {"user": call["headers"]["cookie"].split("=")[1], "info": {"via": "cookie"}}}
    server = hooked(squall, backend, "connect")
    channel = unique("room")
    headers = {"Cookie": "session=carol", "X-Secret": "not listed"}
    async with connect(f"{server.ws}/msg/{channel}", additional_headers=headers, open_timeout=5):
        [member] = members(server, channel, 1)
        assert (member["user"], member["info"]) == ("carol", {"via": "cookie"})
    [call] = backend.calls_of("connect")
    assert (call["transport"], call["channel"], call["address"]) == ("msg", channel, "127.0.0.1")
    assert call["headers"] == {"cookie": "session=carol"}, "only the listed headers"
    assert "user" not in call


async def test_a_connect_hook_that_denies_closes_sockets_with_its_code_and_refuses_streams_with_403(squall, backend):
    backend.answers["connect"] = {"error": {"code": 4601, "message": "banned"}}
    server = hooked(squall, backend, "connect")
    async with connect(f"{server.ws}/msg", open_timeout=5) as msg:
        assert await close_of(msg) == (4601, "banned")
    async with connect(f"{server.ws}/ws", subprotocols=["squall.v1"], open_timeout=5) as ws:
        assert await close_of(ws) == (4601, "banned"), "closed before any welcome"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(f"{server.http}/channels/room/events", timeout=5)
    assert refused.value.code == 403
    assert json.loads(refused.value.read())["error"] == {"code": "hook_denied", "message": "banned"}


@pytest.mark.parametrize("failure", ["late", "500", "malformed", "down"])
async def test_a_backend_that_does_not_decide_denies_with_hook_unavailable_within_the_timeout(squall, backend, failure):
    if failure == "down":
        server = squall("--log-level", "error", "--hook-connect", f"http://127.0.0.1:{free_port()}/connect", "--hook-timeout", "1s")
    else:
        backend.answers["connect"] = {"late": ("sleep", 5), "500": 500, "malformed": b"yes please"}[failure]
        server = hooked(squall, backend, "connect")
    started = time.monotonic()
    async with connect(f"{server.ws}/ws", subprotocols=["squall.v1"], open_timeout=5) as ws:
        assert await close_of(ws, timeout=5) == (1013, "backend unavailable; retry later")
    assert time.monotonic() - started < 3, "never held past the hook's timeout"
    status, body = http(server, "GET", "/channels/room/events")
    assert (status, body["error"]["code"]) == (503, "hook_unavailable")


async def test_requests_sent_before_the_connect_hook_decides_are_answered_after_it_in_order(squall, backend):
    backend.answers["connect"] = lambda call: (time.sleep(0.3), {"result": {"user": "dave"}})[1]
    server = hooked(squall, backend, "connect")
    channel = unique("early")
    async with connect(f"{server.ws}/ws", subprotocols=["squall.v1"], open_timeout=5) as ws:
        await ws.send(json.dumps({"op": "subscribe", "channel": channel, "ref": 1}))
        for n in range(3):
            await ws.send(json.dumps({"op": "publish", "channel": channel, "data": f"m{n}", "ref": 10 + n}))
        welcome = await receive(ws)
        assert welcome["type"] == "welcome"
        replies = [await receive(ws) for _ in range(7)]
    assert [r["data"] for r in replies if r["type"] == "message"] == ["m0", "m1", "m2"]
    assert replies[0]["type"] == "subscribed"


# --- Subscribe and publish --------------------------------------------------------------------


async def test_the_subscribe_hook_refuses_one_channel_on_every_transport_and_a_namespace_can_turn_it_off(squall, backend, tmp_path):
    backend.answers["subscribe"] = lambda call: {"error": {"message": "members only"}} if "vip" in call["channel"] else {"result": {}}
    config = tmp_path / "squall.yaml"
    config.write_text("namespaces:\n  open:\n    hook-subscribe: off\n")
    server = hooked(squall, backend, "subscribe", extra=("--config", str(config)))
    async with connect(f"{server.ws}/ws", subprotocols=["squall.v1"], open_timeout=5) as ws:
        await receive(ws)
        refused = await ask(ws, {"op": "subscribe", "channel": "vip-room"})
        assert (refused["type"], refused["code"], refused["message"]) == ("error", "hook_denied", "members only")
        assert (await ask(ws, {"op": "subscribe", "channel": "lobby"}))["type"] == "subscribed"
        assert (await ask(ws, {"op": "subscribe", "channel": "open:vip"}))["type"] == "subscribed", "the namespace's hook is off"
    async with connect(f"{server.ws}/msg/vip-room", open_timeout=5) as msg:
        assert await close_of(msg) == (4503, "members only")
    status, body = http(server, "GET", "/channels/vip-room/messages?wait=0")
    assert (status, body["error"]["code"]) == (403, "hook_denied")
    assert all(call["channel"] != "open:vip" for call in backend.calls_of("subscribe"))


async def test_the_publish_hook_replaces_data_or_denies_and_keeps_a_connections_order(squall, backend):
    def decide(call):
        if call["data"] == "forbidden":
            return {"error": {"code": 4602, "message": "not allowed"}}
        time.sleep(0.05 if call["data"].endswith("0") else 0)  # answers out of order if asked concurrently
        return {"result": {"data": call["data"].upper()}}

    backend.answers["publish"] = decide
    server = hooked(squall, backend, "publish")
    channel = unique("pub")
    async with connect(f"{server.ws}/msg/{channel}", open_timeout=5) as listener, connect(
        f"{server.ws}/ws", subprotocols=["squall.v1"], open_timeout=5
    ) as ws:
        await receive(ws)
        for n in range(6):
            await ws.send(json.dumps({"op": "publish", "channel": channel, "data": f"m{n}0" if n % 2 == 0 else f"m{n}", "ref": n}))
        got = [await asyncio.wait_for(listener.recv(), 5) for _ in range(6)]
        assert got == ["M00", "M1", "M20", "M3", "M40", "M5"]
        refused = await ask(ws, {"op": "publish", "channel": channel, "data": "forbidden"})
        assert (refused["code"], refused["message"]) == ("hook_denied", "not allowed")
        status, body = http(server, "POST", f"/channels/{channel}/messages", b"forbidden")
        assert (status, body["error"]["code"]) == (403, "hook_denied")
        status, body = http(server, "POST", f"/channels/{channel}/messages", b"over http")
        assert status == 201
        assert await asyncio.wait_for(listener.recv(), 5) == "OVER HTTP"
        await listener.send("forbidden")
        assert await close_of(listener) == (4602, "not allowed")


# --- Refresh ----------------------------------------------------------------------------------


async def test_the_refresh_hook_keeps_a_connection_past_its_tokens_expiry_until_it_denies(squall, backend):
    answers = iter([lambda: {"result": {"expire_at": time.time() + 1.5}}, lambda: {"error": {"code": 4603, "message": "session ended"}}])
    backend.answers["refresh"] = lambda call: next(answers)()
    server = hooked(squall, backend, "refresh", extra=("--jwt-leeway", "0s"))
    token = mint(SECRET, sub="erin", ttl=1.0)
    started = time.monotonic()
    async with connect(f"{server.ws}/msg?token={token}", open_timeout=5) as msg:
        assert await close_of(msg, timeout=8) == (4603, "session ended")
    assert time.monotonic() - started >= 2.4, "renewed once, for 1.5 s more"
    calls = backend.calls_of("refresh")
    assert len(calls) == 2 and calls[0]["user"] == "erin"


def test_an_sse_stream_is_renewed_by_the_refresh_hook_and_ended_when_it_denies(squall, backend):
    answers = iter([lambda: {"result": {"expire_at": time.time() + 1.5}}, lambda: {"error": {"message": "session ended"}}])
    backend.answers["refresh"] = lambda call: next(answers)()
    server = hooked(squall, backend, "refresh", extra=("--jwt-leeway", "0s"))
    stream = EventStream(server, unique("sse"), mint(SECRET, sub="frank", ttl=1.0))
    stream.response.fp.raw._sock.settimeout(8)
    assert stream.next_event()[0] == "subscribed"
    event, data = stream.next_event()
    stream.close()
    assert (event, data) == ("close", {"code": 4503, "reason": "session ended"})
    assert len(backend.calls_of("refresh")) == 2


# --- Second look ------------------------------------------------------------------------------


async def test_a_client_gone_before_the_subscribe_hook_answered_leaves_no_subscription(squall, backend):
    backend.answers["subscribe"] = ("sleep", 0.5)
    server = hooked(squall, backend, "subscribe", extra=("--api-key", "k"))
    channel = unique("ghost")
    async with connect(f"{server.ws}/ws", subprotocols=["squall.v1"], open_timeout=5) as ws:
        await receive(ws)
        await ws.send(json.dumps({"op": "subscribe", "channel": channel, "ref": 1}))
    time.sleep(1.0)  # the hook answers allow after the client has gone
    request = urllib.request.Request(f"{server.http}/api/channels", data=b"{}", method="POST",
                                     headers={"Authorization": "apikey k", "Content-Type": "application/json"})
    assert json.load(urllib.request.urlopen(request, timeout=5))["channels"] == []
    status, page = http(server, "GET", f"/channels/{channel}/presence")
    assert (status, page["clients"]) == (200, [])


async def test_a_backend_that_trickles_its_answer_is_unavailable_within_the_timeout(squall):
    class Trickling(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(10):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.5)

        def log_message(self, *args):
            pass

    trickler = ThreadingHTTPServer(("127.0.0.1", 0), Trickling)
    threading.Thread(target=trickler.serve_forever, daemon=True).start()
    try:
        server = squall("--log-level", "error", "--hook-connect", f"http://127.0.0.1:{trickler.server_address[1]}/", "--hook-timeout", "1s")
        started = time.monotonic()
        async with connect(f"{server.ws}/msg", open_timeout=5) as ws:
            assert await close_of(ws, timeout=5) == (1013, "backend unavailable; retry later")
        assert time.monotonic() - started < 2.5, "the whole answer, body too, is held to the timeout"
    finally:
        trickler.shutdown()
        trickler.server_close()


async def test_the_refresh_hook_never_renews_a_private_channels_subscription_token(squall, backend, tmp_path):
    backend.answers["refresh"] = {"result": {}}  # renews the connection for good
    config = tmp_path / "squall.yaml"
    config.write_text("namespaces:\n  private:\n    private: true\n")
    server = hooked(squall, backend, "refresh", extra=("--config", str(config), "--jwt-leeway", "0s"))
    token = mint(SECRET, sub="gina", ttl=60)
    channel_token = mint(SECRET, sub="gina", channel="private:room", ttl=1.0)
    started = time.monotonic()
    async with connect(f"{server.ws}/msg/private:room?token={token}&subscription_token={channel_token}", open_timeout=5) as ws:
        assert await close_of(ws, timeout=8) == (4002, "token expired")
    assert time.monotonic() - started < 4 and backend.calls_of("refresh") == [], "its own time had not come"


async def test_a_connect_hooks_expire_at_applies_without_a_user_and_the_token_user_stays(squall, backend):
    backend.answers["connect"] = lambda call: {"result": {"expire_at": time.time() + 1}}
    server = hooked(squall, backend, "connect", extra=("--jwt-leeway", "0s"))
    channel = unique("expire")
    async with connect(f"{server.ws}/msg/{channel}?token={mint(SECRET, sub='hank', ttl=60)}", open_timeout=5) as ws:
        [member] = members(server, channel, 1)
        assert member["user"] == "hank"
        assert await close_of(ws, timeout=5) == (4002, "token expired")


async def test_a_user_renamed_by_the_connect_hook_is_forgotten_when_it_leaves(squall, backend):
    backend.answers["connect"] = {"result": {"user": "renamed"}}
    server = hooked(squall, backend, "connect", extra=("--api-key", "k"))

    def disconnect(user):
        request = urllib.request.Request(f"{server.http}/api/disconnect", data=json.dumps({"user": user}).encode(), method="POST",
                                         headers={"Authorization": "apikey k", "Content-Type": "application/json"})
        return json.load(urllib.request.urlopen(request, timeout=5))["connections"]

    async with connect(f"{server.ws}/ws?token={mint(SECRET, sub='ivy')}", subprotocols=["squall.v1"], open_timeout=5) as ws:
        await receive(ws)
    time.sleep(0.3)
    assert disconnect("renamed") == 0 and disconnect("ivy") == 0
