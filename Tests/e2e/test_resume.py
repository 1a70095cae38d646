# SPDX-License-Identifier: Apache-2.0
"""Resume on the seed's plain socket, seen by Python's websockets client."""
import asyncio
import json
import urllib.request

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed


def publish(server, channel, text):
    request = urllib.request.Request(f"{server.http}/channels/{channel}/messages", data=text.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        return json.load(response)


async def test_plain_socket_resumes_from_since(squall):
    server = squall()
    first = publish(server, "py", "one")
    publish(server, "py", "two")
    publish(server, "py", "three")
    async with connect(f"{server.ws}/msg/py?since={first['epoch']}:{first['offset']}") as client:
        assert await asyncio.wait_for(client.recv(), 5) == "two"
        assert await asyncio.wait_for(client.recv(), 5) == "three"
        publish(server, "py", "live")
        assert await asyncio.wait_for(client.recv(), 5) == "live"


@pytest.mark.parametrize("stale", ["too_old", "other_epoch"])
async def test_plain_socket_with_a_lost_position_is_closed_4010_with_the_current_one(squall, stale):
    server = squall("--retention-messages", "2")
    first = publish(server, "gone", "m1")
    for n in range(2, 6):
        publish(server, "gone", f"m{n}")
    since = f"{first['epoch']}:1" if stale == "too_old" else "zzzzzzzz:3"
    async with connect(f"{server.ws}/msg/gone?since={since}") as client:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(client.recv(), 5)
    assert closed.value.rcvd.code == 4010
    assert closed.value.rcvd.reason == f"position not recoverable; current {first['epoch']}:5"
