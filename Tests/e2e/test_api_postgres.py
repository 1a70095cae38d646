# SPDX-License-Identifier: Apache-2.0
"""The server API on several nodes of one PostgreSQL database: a backend talks to any node, and
`disconnect`, `unsubscribe` and `history_remove` reach the users and logs of every node."""
import asyncio
import time

import pytest

from test_api import KEY, api, ok
from test_auth import SECRET, ask, close_of, mint, open_ws, receive, unique
from test_postgres_nodes import DATABASE, nodes

pytestmark = pytest.mark.skipif(
    not DATABASE, reason="needs a database: SQUALL_TEST_POSTGRES=postgres://… (scripts/postgres starts one)")


def two_nodes(squall):
    return nodes(squall, 2, "--api-key", KEY, "--jwt-secret", SECRET)


async def test_disconnect_sent_to_one_node_closes_the_users_connections_on_another(squall):
    asked, other = two_nodes(squall)
    channel = unique("kick")
    async with open_ws(other, token=mint(SECRET, sub="alice")) as ws, open_ws(other, f"/msg/{channel}", token=mint(SECRET, sub="alice")) as msg, open_ws(
        other, f"/msg/{channel}", token=mint(SECRET, sub="bob")
    ) as bob:
        await receive(ws)
        assert ok(asked, "disconnect", {"user": "alice", "code": 4600, "reason": "account closed"}) == {"connections": 0}
        assert await close_of(ws) == (4600, "account closed")
        assert await close_of(msg) == (4600, "account closed")
        await bob.send("bob stays")
        assert await asyncio.wait_for(bob.recv(), 5) == "bob stays"


async def test_unsubscribe_sent_to_one_node_takes_the_user_off_the_channel_on_another(squall):
    asked, other = two_nodes(squall)
    channel, kept = unique("unsub"), unique("kept")
    async with open_ws(other, token=mint(SECRET, sub="carol")) as ws:
        await receive(ws)
        for name in (channel, kept):
            assert (await ask(ws, {"op": "subscribe", "channel": name}))["type"] == "subscribed"
        assert ok(asked, "unsubscribe", {"user": "carol", "channel": channel}) == {"subscriptions": 0}
        assert await receive(ws) == {"channel": channel, "type": "unsubscribed"}
        ok(asked, "publish", {"channel": kept, "data": "still here"})
        message = await receive(ws)
        assert (message["channel"], message["data"]) == (kept, "still here")


def test_history_remove_on_one_node_empties_the_history_every_node_serves(squall):
    asked, other = two_nodes(squall)
    channel = unique("hist")
    for text in ("a", "b", "c"):
        ok(asked, "publish", {"channel": channel, "data": text})
    deadline = time.monotonic() + 10
    while len(ok(other, "history", {"channel": channel})["messages"]) < 3:
        assert time.monotonic() < deadline, "the other node never saw the messages"
        time.sleep(0.05)
    removed = ok(asked, "history_remove", {"channel": channel})
    assert removed["offset"] == 3
    while ok(other, "history", {"channel": channel})["messages"]:
        assert time.monotonic() < deadline, "the other node still serves the removed history"
        time.sleep(0.05)
    assert ok(other, "publish", {"channel": channel, "data": "d"})["offset"] == 4
    for node in (asked, other):
        deadline = time.monotonic() + 10
        while [m["data"] for m in ok(node, "history", {"channel": channel})["messages"]] != ["d"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    status, reply, _ = api(asked, "history_remove", {"channel": unique("never")})
    assert status == 200 and reply["offset"] == 0


async def test_info_on_one_node_lists_every_node_with_the_figures_of_its_last_heartbeat(squall):
    asked, other = two_nodes(squall)
    [this] = ok(other, "info", {})["nodes"][:1]
    assert this["this"] is True
    async with open_ws(other, token=mint(SECRET, sub="dan")) as ws, open_ws(other, f"/msg/{unique('info')}", token=mint(SECRET, sub="eve")):
        await receive(ws)
        deadline = time.monotonic() + 10  # a heartbeat every 2 s
        while True:
            nodes = ok(asked, "info", {})["nodes"]
            seen = [node for node in nodes if node["id"] == this["id"]]
            if seen and seen[0].get("connections") == 2:
                break
            assert time.monotonic() < deadline, f"the other node's connections never reached its heartbeat: {nodes}"
            await asyncio.sleep(0.2)
    assert nodes[0]["this"] is True and nodes[0]["id"] != this["id"]
    assert seen[0]["this"] is False and seen[0]["uptime"] >= 0 and seen[0]["channels"] >= 1
