# SPDX-License-Identifier: Apache-2.0
"""Addresses as operators mean them (issue 25, item 5): behind a trusted proxy each client has
its own rate bucket and connection share, and the access log names it; a forwarding header from
anyone else is ignored; IPv6 clients count as their /64. All traffic on 127.0.0.x."""
import asyncio
import http.client
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus


def publish(server, forwarded_for=None, source="127.0.0.1", header="X-Forwarded-For"):
    """The status of one HTTP publish from `source`, forwarded for `forwarded_for`."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5, source_address=(source, 0))
    headers = {header: forwarded_for} if forwarded_for else {}
    connection.request("POST", "/channels/room/messages", body=b"m", headers=headers)
    status = connection.getresponse().status
    connection.close()
    return status


def test_behind_a_trusted_proxy_each_client_has_its_own_rate_bucket(squall):
    # Before: behind the documented same-host nginx every HTTP publisher shared the proxy's
    # address and one rate bucket.
    server = squall("--log-level", "info", "--trusted-proxy", "127.0.0.1", "--publish-rate", "1/min", "--publish-burst", "2")
    assert [publish(server, "203.0.113.1") for _ in range(3)] == [201, 201, 429]
    assert [publish(server, "203.0.113.2") for _ in range(2)] == [201, 201], "another client, another bucket"
    # RFC 7239's header is read too, and wins.
    assert publish(server, 'for="203.0.113.3:4711"', header="Forwarded") == 201
    _, log = server.stop()
    assert "POST /channels/room/messages (203.0.113.1)" in log, "the access log names the client, not the proxy"


def test_a_forwarding_header_from_a_peer_that_is_not_a_trusted_proxy_is_ignored(squall):
    server = squall("--log-level", "error", "--trusted-proxy", "127.0.0.1", "--publish-rate", "1/min", "--publish-burst", "2")
    # 127.0.0.2 is not trusted: whatever it claims, it is itself.
    statuses = [publish(server, f"198.51.100.{n}", source="127.0.0.2") for n in range(3)]
    assert statuses == [201, 201, 429]


def test_without_a_trusted_proxy_forwarding_headers_change_nothing(squall):
    server = squall("--log-level", "error", "--publish-rate", "1/min", "--publish-burst", "2")
    assert [publish(server, f"203.0.113.{n}", source="127.0.0.2") for n in range(3)] == [201, 201, 429]


def test_ipv6_clients_count_as_their_slash_64_unless_the_prefix_says_otherwise(squall):
    # Before: per-address limits keyed on the full /128, so anyone with a /64 had none.
    server = squall("--log-level", "error", "--trusted-proxy", "127.0.0.1", "--publish-rate", "1/min", "--publish-burst", "2")
    assert [publish(server, f"2001:db8:1:2::{n}") for n in range(1, 4)] == [201, 201, 429]
    assert publish(server, "2001:db8:1:3::1") == 201, "another /64"
    narrow = squall("--log-level", "error", "--trusted-proxy", "127.0.0.1", "--publish-rate", "1/min", "--publish-burst", "2",
                    "--ipv6-prefix", "128")
    assert [publish(narrow, f"2001:db8:1:2::{n}") for n in range(1, 4)] == [201, 201, 201]


async def test_behind_a_trusted_proxy_the_connection_limit_is_each_clients(squall):
    server = squall("--log-level", "error", "--trusted-proxy", "127.0.0.1", "--max-connections-per-address", "2")
    alice = [await connect(f"{server.ws}/msg", additional_headers={"X-Forwarded-For": "203.0.113.7"}, open_timeout=5) for _ in range(2)]
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"{server.ws}/msg", additional_headers={"X-Forwarded-For": "203.0.113.7"}, open_timeout=5)
    assert refused.value.response.status_code == 503
    assert json.loads(refused.value.response.body)["error"]["code"] == "too_many_connections"
    bob = await connect(f"{server.ws}/msg", additional_headers={"X-Forwarded-For": "203.0.113.8"}, open_timeout=5)
    await alice[0].close()
    await asyncio.sleep(0.3)
    again = await connect(f"{server.ws}/msg", additional_headers={"X-Forwarded-For": "203.0.113.7"}, open_timeout=5)
    for ws in [*alice, bob, again]:
        await ws.close()


@pytest.mark.parametrize("args", [["--trusted-proxy", "example.com"], ["--trusted-proxy", "10.0.0.0/33"], ["--ipv4-prefix", "0"], ["--ipv6-prefix", "129"]])
def test_an_address_option_that_makes_no_sense_is_a_usage_error(args):
    from conftest import Squall

    server = Squall(args, {})
    code, log = server.exited()
    assert code == 64, log
