# SPDX-License-Identifier: Apache-2.0
"""`Idempotency-Key` (HTTP) and `idempotency_key` (`/ws`): a retried publish returns the first
one's position instead of appending again, with either store, across a restart with SQLite."""
import asyncio
import json
import urllib.error
import urllib.request

import pytest
from websockets.asyncio.client import connect


def publish(server, channel, text, key=None):
    headers = {"Idempotency-Key": key} if key is not None else {}
    request = urllib.request.Request(f"{server.http}/channels/{channel}/messages", data=text.encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def history(server, channel):
    with urllib.request.urlopen(f"{server.http}/channels/{channel}/messages?wait=0", timeout=5) as response:
        return [m["data"] for m in json.load(response)["messages"]]


async def ws_publish(client, channel, text, key, ref):
    await client.send(json.dumps({"op": "publish", "channel": channel, "data": text, "idempotency_key": key, "ref": ref}))
    while True:
        reply = json.loads(await asyncio.wait_for(client.recv(), 5))
        if reply.get("ref") == ref:
            return reply


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_a_retried_publish_is_appended_once_on_every_route(squall, tmp_path, store):
    args = ("--store", f"sqlite:{tmp_path / 'idem.sqlite'}") if store == "sqlite" else ("--store", "memory")
    server = squall(*args)
    status, first = publish(server, "orders", "pay 42", key="order-42")
    assert status == 201
    status, retry = publish(server, "orders", "pay 42", key="order-42")
    assert status == 201 and retry == first
    async with connect(f"{server.ws}/ws", subprotocols=["squall.v1"]) as client:
        await asyncio.wait_for(client.recv(), 5)  # welcome
        over_ws = await ws_publish(client, "orders", "pay 42", "order-42", 1)
        assert over_ws["type"] == "published" and (over_ws["id"], over_ws["offset"]) == (first["id"], first["offset"])
        fresh = await ws_publish(client, "orders", "pay 43", "order-43", 2)
        assert fresh["offset"] == first["offset"] + 1
    assert history(server, "orders") == ["pay 42", "pay 43"]

    if store == "sqlite":
        assert server.stop()[0] == 0
        server = squall(*args)
        status, after_restart = publish(server, "orders", "pay 42", key="order-42")
        assert status == 201 and after_restart == first, "the key survives a restart with its message"
        assert history(server, "orders") == ["pay 42", "pay 43"]


async def test_a_malformed_key_is_refused_and_nothing_is_published(squall):
    server = squall()
    status, body = publish(server, "orders", "x", key="has space")
    assert status == 400 and body["error"]["code"] == "invalid_parameter"
    async with connect(f"{server.ws}/ws", subprotocols=["squall.v1"]) as client:
        await asyncio.wait_for(client.recv(), 5)
        reply = await ws_publish(client, "orders", "x", "k" * 256, "bad")
        assert reply["type"] == "error" and reply["code"] == "invalid_parameter"
    assert history(server, "orders") == []


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_a_key_reused_for_another_payload_is_refused_422_and_the_first_stands(squall, tmp_path, store):
    # Before: the reused key was answered with the first message, as if it were a retry.
    args = ("--store", f"sqlite:{tmp_path / 'reuse.sqlite'}") if store == "sqlite" else ("--store", "memory")
    server = squall(*args)
    status, first = publish(server, "orders", "pay 42", key="order-7")
    assert status == 201
    status, body = publish(server, "orders", "pay 4200", key="order-7")
    assert status == 422 and body["error"]["code"] == "idempotency_key_reused", body
    async with connect(f"{server.ws}/ws", subprotocols=["squall.v1"]) as client:
        await asyncio.wait_for(client.recv(), 5)
        reply = await ws_publish(client, "orders", "pay 4200", "order-7", "again")
        assert reply["type"] == "error" and reply["code"] == "idempotency_key_reused"
        retry = await ws_publish(client, "orders", "pay 42", "order-7", "retry")
        assert retry["type"] == "published" and retry["id"] == first["id"]
    assert history(server, "orders") == ["pay 42"]
    if store == "sqlite":
        assert server.stop()[0] == 0
        server = squall(*args)
        status, body = publish(server, "orders", "pay 4200", key="order-7")
        assert status == 422, "the key still knows its payload after a restart"
