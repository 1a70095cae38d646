# SPDX-License-Identifier: Apache-2.0
"""The server API (`POST /api/COMMAND`, docs/openapi.yaml), driven as an application's backend
drives it: with and without a key, every command, bad bodies, and what the users on the other
end see — a /ws, a /msg socket and an SSE stream of the same user, closed or taken off a
channel by a backend."""
import asyncio
import json
import signal
import time
import urllib.error
import urllib.request
import uuid

import pytest

from test_auth import SECRET, EventStream, ask, close_of, mint, open_ws, receive, unique

KEY = "backend-key-1"
OTHER_KEY = "backend-key-2"


def api(server, command, body=None, key=KEY, scheme="apikey", raw=None, content_type="application/json", method="POST"):
    """(status, JSON body, headers) of one API request."""
    data = raw if raw is not None else json.dumps(body if body is not None else {}).encode()
    headers = {"Content-Type": content_type} if content_type else {}
    if key is not None:
        headers["Authorization"] = f"{scheme} {key}"
    request = urllib.request.Request(f"{server.http}/api/{command}", data=data if method == "POST" else None, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response), response.headers
    except urllib.error.HTTPError as error:
        text = error.read()
        return error.code, json.loads(text) if text else None, error.headers


def ok(server, command, body=None):
    status, reply, _ = api(server, command, body)
    assert status == 200, reply
    return reply


def error_code(reply):
    return reply["error"]["code"]


@pytest.fixture
def backend(squall):
    """A server with two API keys and token auth, so that users have ids."""
    return squall("--log-level", "error", "--api-key", KEY, "--api-key", OTHER_KEY, "--jwt-secret", SECRET)


# --- Keys -------------------------------------------------------------------------------------


def test_without_an_api_key_configured_the_api_says_it_is_off_with_404_api_disabled(squall):
    server = squall("--log-level", "error")
    status, reply, _ = api(server, "publish", {"channel": "news", "data": "hi"})
    assert (status, error_code(reply)) == (404, "api_disabled")
    assert "api-key" in reply["error"]["message"]


@pytest.mark.parametrize("key", [None, "wrong-key", KEY[:-1], KEY + "x", ""])
def test_a_request_without_one_of_the_keys_is_refused_with_401_and_publishes_nothing(backend, key):
    channel = unique("keys")
    status, reply, headers = api(backend, "publish", {"channel": channel, "data": "forged"}, key=key)
    assert (status, error_code(reply)) == (401, "unauthorized")
    assert headers["WWW-Authenticate"]
    assert ok(backend, "history", {"channel": channel})["messages"] == []


@pytest.mark.parametrize("scheme", ["apikey", "Bearer", "ApiKey", "bearer"])
def test_either_key_opens_the_api_as_apikey_or_bearer(backend, scheme):
    for key in (KEY, OTHER_KEY):
        status, reply, _ = api(backend, "info", {}, key=key, scheme=scheme)
        assert status == 200, reply


def test_a_reload_rotates_the_keys_without_a_restart(squall, tmp_path):
    config = tmp_path / "squall.yaml"
    config.write_text(f"api-key: [{KEY}]\n")
    server = squall("--log-level", "error", "--config", str(config))
    assert api(server, "info", {}, key=KEY)[0] == 200
    config.write_text(f"api-key: [{OTHER_KEY}]\n")
    server.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while api(server, "info", {}, key=KEY)[0] != 401:
        assert time.monotonic() < deadline, "the old key still opens the API after the reload"
        time.sleep(0.05)
    assert api(server, "info", {}, key=OTHER_KEY)[0] == 200


def test_config_check_hides_the_api_keys(tmp_path):
    import subprocess

    from conftest import squall_binary

    result = subprocess.run(
        [squall_binary(), "config", "check", "--api-key", "very-secret-key"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert "api-key" in result.stdout and "very-secret-key" not in result.stdout


# --- Bodies -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command, body, code",
    [
        ("publish", b"not json", "invalid_request"),
        ("publish", b'{"channel": "news"}', "invalid_request"),
        ("publish", b'{"channel": "news", "data": 5}', "invalid_request"),
        ("publish", b'{"channel": "news", "data": "x", "extra": 1}', "invalid_request"),
        ("publish", b'{"channel": "bad name", "data": "x"}', "invalid_channel"),
        ("publish", b'{"channel": "news", "data": "***", "encoding": "base64"}', "invalid_request"),
        ("publish", b'{"channel": "news", "data": "x", "idempotency_key": ""}', "invalid_parameter"),
        ("broadcast", b'{"channels": [], "data": "x"}', "invalid_parameter"),
        ("broadcast", b'{"channels": ["a", "a"], "data": "x"}', "invalid_parameter"),
        ("disconnect", b'{"user": "alice", "code": 1000}', "invalid_parameter"),
        ("disconnect", b'{"user": "alice", "reason": "caf\\u00e9"}', "invalid_parameter"),
        ("disconnect", b'{"user": ""}', "invalid_parameter"),
        ("history", b'{"channel": "news", "limit": 0}', "invalid_parameter"),
        ("history", b'{"channel": "news", "since": "nope"}', "invalid_position"),
        ("presence", b'{"channel": "news", "after": "nope"}', "invalid_parameter"),
        ("channels", b'{"pattern": "a b*"}', "invalid_parameter"),
        ("batch", b'{"commands": []}', "invalid_parameter"),
        ("batch", b'{"commands": [{"method": "nope", "params": {}}]}', "invalid_request"),
    ],
)
def test_a_body_that_breaks_the_spec_gets_400_with_a_registry_code_and_changes_nothing(backend, command, body, code):
    status, reply, _ = api(backend, command, raw=body)
    assert (status, error_code(reply)) == (400, code), reply
    assert ok(backend, "history", {"channel": "news"})["messages"] == []


def test_a_body_that_is_not_json_by_its_content_type_is_refused(backend):
    status, reply, _ = api(backend, "publish", raw=b'{"channel":"news","data":"x"}', content_type="text/plain")
    assert (status, error_code(reply)) == (400, "invalid_request")


def test_a_body_over_the_bound_is_refused_with_413_before_it_is_read_whole(squall):
    server = squall("--log-level", "error", "--api-key", KEY, "--max-message-size", "1KiB")
    status, reply, _ = api(server, "publish", raw=b'{"channel":"news","data":"' + b"x" * (17 << 20) + b'"}')
    assert (status, error_code(reply)) == (413, "message_too_large")
    status, reply, _ = api(server, "publish", {"channel": "news", "data": "x" * 2000})
    assert (status, error_code(reply)) == (413, "message_too_large")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_another_method_on_an_api_route_gets_405_with_allow_post(backend, method):
    status, reply, headers = api(backend, "publish", method=method, content_type=None)
    assert (status, error_code(reply)) == (405, "method_not_allowed")
    assert headers["Allow"] == "POST"


# --- Publishing -------------------------------------------------------------------------------


async def test_publish_reaches_subscribers_and_history_with_binary_and_an_idempotency_key(backend):
    channel = unique("publish")
    async with open_ws(backend) as ws:
        await receive(ws)
        assert (await ask(ws, {"op": "subscribe", "channel": channel}))["type"] == "subscribed"
        first = ok(backend, "publish", {"channel": channel, "data": "hello", "idempotency_key": "order-1"})
        assert (first["channel"], first["offset"]) == (channel, 1)
        message = await receive(ws)
        assert (message["type"], message["data"], message["offset"]) == ("message", "hello", 1)
        again = ok(backend, "publish", {"channel": channel, "data": "hello", "idempotency_key": "order-1"})
        assert again["id"] == first["id"] and again["offset"] == 1
        status, reply, _ = api(backend, "publish", {"channel": channel, "data": "other", "idempotency_key": "order-1"})
        assert (status, error_code(reply)) == (422, "idempotency_key_reused")
        ok(backend, "publish", {"channel": channel, "data": "AAEC/w==", "encoding": "base64"})
        binary = await receive(ws)
        assert (binary["data"], binary["encoding"]) == ("AAEC/w==", "base64")
    history = ok(backend, "history", {"channel": channel})
    assert [(m["offset"], m["data"], m.get("encoding")) for m in history["messages"]] == [(1, "hello", None), (2, "AAEC/w==", "base64")]


def test_the_api_publishes_where_a_namespace_refuses_clients(squall, tmp_path):
    config = tmp_path / "squall.yaml"
    config.write_text(f"api-key: [{KEY}]\nnamespaces:\n  news:\n    publish: none\n")
    server = squall("--log-level", "error", "--config", str(config))
    request = urllib.request.Request(f"{server.http}/channels/news:today/messages", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 403
    assert ok(server, "publish", {"channel": "news:today", "data": "from the backend"})["offset"] == 1


async def test_broadcast_gives_each_channel_the_message_and_each_its_outcome_in_order(backend):
    channels = [unique("b1"), unique("b2"), unique("b3")]
    ok(backend, "publish", {"channel": channels[1], "data": "first", "idempotency_key": "k"})
    reply = ok(backend, "broadcast", {"channels": channels, "data": "to all", "idempotency_key": "k"})
    outcomes = reply["results"]
    assert [o["channel"] for o in outcomes] == channels
    assert outcomes[0]["published"]["offset"] == 1 and outcomes[2]["published"]["offset"] == 1
    assert outcomes[1]["error"]["code"] == "idempotency_key_reused"
    for channel in (channels[0], channels[2]):
        assert [m["data"] for m in ok(backend, "history", {"channel": channel})["messages"]] == ["to all"]


def test_a_batch_answers_every_command_in_order_and_one_failure_stops_nothing(backend):
    channel = unique("batch")
    commands = [{"method": "publish", "params": {"channel": channel, "data": f"m{i}"}} for i in range(100)]
    commands.insert(50, {"method": "publish", "params": {"channel": channel, "data": "dup", "idempotency_key": "same"}})
    commands.insert(51, {"method": "publish", "params": {"channel": channel, "data": "not dup", "idempotency_key": "same"}})
    commands += [
        {"method": "history", "params": {"channel": channel, "limit": 1000}},
        {"method": "presence_stats", "params": {"channel": channel}},
        {"method": "info", "params": {}},
    ]
    replies = ok(backend, "batch", {"commands": commands})["replies"]
    assert len(replies) == len(commands)
    offsets = [r["result"]["offset"] for r in replies[:50]] + [replies[50]["result"]["offset"]] + [r["result"]["offset"] for r in replies[52:102]]
    assert offsets == list(range(1, 102))
    assert replies[51]["error"]["code"] == "idempotency_key_reused"
    history = replies[102]["result"]
    assert [m["data"] for m in history["messages"]] == [f"m{i}" for i in range(50)] + ["dup"] + [f"m{i}" for i in range(50, 100)]
    assert replies[103]["result"] == {"channel": channel, "clients": 0, "users": 0}
    assert replies[104]["result"]["nodes"][0]["this"] is True


def test_a_batch_with_one_bad_command_is_refused_whole_and_publishes_nothing(backend):
    channel = unique("whole")
    commands = [
        {"method": "publish", "params": {"channel": channel, "data": "would be first"}},
        {"method": "publish", "params": {"channel": "not a name", "data": "x"}},
    ]
    status, reply, _ = api(backend, "batch", {"commands": commands})
    assert (status, error_code(reply)) == (400, "invalid_channel")
    assert reply["error"]["message"].startswith("commands[1]:")
    assert ok(backend, "history", {"channel": channel})["messages"] == []


# --- Users ------------------------------------------------------------------------------------


async def test_disconnect_closes_every_connection_of_the_user_on_every_transport_and_no_one_else(backend):
    channel = unique("kick")
    alice, bob = mint(SECRET, sub="alice"), mint(SECRET, sub="bob")
    async with open_ws(backend, token=alice) as ws, open_ws(backend, f"/msg/{channel}", token=alice) as msg, open_ws(
        backend, f"/msg/{channel}", token=bob
    ) as other:
        await receive(ws)
        # A user known only from its `connect` is found too.
        async with open_ws(backend) as late:
            await receive(late)
            assert (await ask(late, {"op": "connect", "token": alice}))["type"] == "connected"
            stream = await asyncio.to_thread(EventStream, backend, channel, alice)
            assert (await asyncio.to_thread(stream.next_event))[0] == "subscribed"
            reply = ok(backend, "disconnect", {"user": "alice", "code": 4601, "reason": "banned by moderator"})
            assert reply == {"connections": 4}
            for socket in (ws, msg, late):
                assert await close_of(socket) == (4601, "banned by moderator")
            event, data = await asyncio.to_thread(stream.next_event)
            assert (event, data) == ("close", {"code": 4601, "reason": "banned by moderator"})
            stream.close()
        await other.send("bob is still here")
        assert await asyncio.wait_for(other.recv(), 5) == "bob is still here"


async def test_disconnect_without_a_code_tells_clients_not_to_reconnect_with_4500(backend):
    async with open_ws(backend, token=mint(SECRET, sub="carol")) as ws:
        await receive(ws)
        assert ok(backend, "disconnect", {"user": "carol"}) == {"connections": 1}
        assert await close_of(ws) == (4500, "disconnected by the server")
    assert ok(backend, "disconnect", {"user": "nobody"}) == {"connections": 0}


async def test_unsubscribe_takes_the_user_off_one_channel_and_leaves_the_rest(backend):
    channel, kept = unique("unsub"), unique("kept")
    token = mint(SECRET, sub="dave")
    async with open_ws(backend, token=token) as ws, open_ws(backend, f"/msg/{channel}", token=token) as msg, open_ws(
        backend, f"/msg/{kept}", token=token
    ) as other:
        await receive(ws)
        for name in (channel, kept):
            assert (await ask(ws, {"op": "subscribe", "channel": name}))["type"] == "subscribed"
        stream = await asyncio.to_thread(EventStream, backend, channel, token)
        assert (await asyncio.to_thread(stream.next_event))[0] == "subscribed"
        assert ok(backend, "unsubscribe", {"user": "dave", "channel": channel}) == {"subscriptions": 3}
        assert await receive(ws) == {"channel": channel, "type": "unsubscribed"}
        assert await close_of(msg) == (4501, "unsubscribed by the server")
        assert await asyncio.to_thread(stream.next_event) == ("close", {"code": 4501, "reason": "unsubscribed by the server"})
        stream.close()
        ok(backend, "publish", {"channel": channel, "data": "after"})
        ok(backend, "publish", {"channel": kept, "data": "still subscribed"})
        message = await receive(ws)
        assert (message["channel"], message["data"]) == (kept, "still subscribed")
        assert await asyncio.wait_for(other.recv(), 5) == "still subscribed"


# --- Presence, history, channels, info --------------------------------------------------------


async def test_presence_and_presence_stats_count_clients_and_distinct_users(backend):
    channel = unique("room")
    erin = mint(SECRET, sub="erin", info={"name": "Erin"})
    async with open_ws(backend, f"/msg/{channel}", token=erin), open_ws(backend, f"/msg/{channel}", token=erin), open_ws(
        backend, f"/msg/{channel}", token=mint(SECRET, sub="frank")
    ):
        deadline = time.monotonic() + 5
        while (stats := ok(backend, "presence_stats", {"channel": channel}))["clients"] < 3:
            assert time.monotonic() < deadline, stats
            await asyncio.sleep(0.05)
        assert stats == {"channel": channel, "clients": 3, "users": 2}
        page = ok(backend, "presence", {"channel": channel})
        assert sorted(c["user"] for c in page["clients"]) == ["erin", "erin", "frank"]
        assert {"name": "Erin"} in [c.get("info") for c in page["clients"]]
        assert all(c["transport"] == "msg" for c in page["clients"])


def test_history_since_a_position_and_history_remove_keeps_the_position(backend):
    channel = unique("hist")
    for text in ("a", "b", "c"):
        ok(backend, "publish", {"channel": channel, "data": text})
    first = ok(backend, "history", {"channel": channel, "limit": 2})
    assert [m["data"] for m in first["messages"]] == ["b", "c"]
    since = f"{first['epoch']}:1"
    assert [m["data"] for m in ok(backend, "history", {"channel": channel, "since": since})["messages"]] == ["b", "c"]
    removed = ok(backend, "history_remove", {"channel": channel})
    assert (removed["epoch"], removed["offset"]) == (first["epoch"], 3)
    after = ok(backend, "history", {"channel": channel, "since": since})
    assert (after["messages"], after["recovered"]) == ([], False)
    assert ok(backend, "publish", {"channel": channel, "data": "d"})["offset"] == 4
    assert [m["data"] for m in ok(backend, "history", {"channel": channel})["messages"]] == ["d"]


async def test_channels_lists_channels_with_subscribers_filtered_by_pattern_and_info_counts_them(backend):
    prefix = unique("chan")
    async with open_ws(backend, f"/msg/{prefix}:a"), open_ws(backend, f"/msg/{prefix}:a"), open_ws(backend, f"/msg/{prefix}:b"), open_ws(
        backend, f"/msg/other-{prefix}"
    ):
        deadline = time.monotonic() + 5
        while len(found := ok(backend, "channels", {"pattern": f"{prefix}:*"})["channels"]) < 2 or found[0]["subscribers"] < 2:
            assert time.monotonic() < deadline, found
            await asyncio.sleep(0.05)
        assert found == [{"channel": f"{prefix}:a", "subscribers": 2}, {"channel": f"{prefix}:b", "subscribers": 1}]
        assert len(ok(backend, "channels")["channels"]) == 3
        node = ok(backend, "info")["nodes"][0]
        assert node["connections"] == 4 and node["channels"] >= 3 and node["uptime"] >= 0
        uuid.UUID(node["id"])
