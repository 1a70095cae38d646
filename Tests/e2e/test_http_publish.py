# SPDX-License-Identifier: Apache-2.0
"""HTTP publishes as a client sees them, whichever path serves them: plain keep-alive publishes
are answered in the event loop, everything else by the router — and both answer alike, in
request order, with every HTTP/1.1 behaviour a client relies on. Loopback only; every read has a
timeout."""
import json
import socket
import time
import urllib.request

import pytest


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    """Each test with the memory store, where a publish is answered at once, and with SQLite,
    where it is answered after the commit, from another thread."""
    return [] if request.param == "memory" else ["--store", f"sqlite:{tmp_path}/squall.sqlite"]


def exchange(server, data: bytes, responses: int, timeout=5.0):
    """Sends `data` on one connection and reads `responses` complete responses (each with a
    Content-Length); returns them as (status, headers, body)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
        s.sendall(data)
        return read_responses(s, responses, timeout)


def read_responses(s, count, timeout=5.0):
    buffer, out = b"", []
    deadline = time.monotonic() + timeout
    while len(out) < count:
        while b"\r\n\r\n" in buffer:
            head, rest = buffer.split(b"\r\n\r\n", 1)
            lines = head.decode().split("\r\n")
            headers = {k.lower(): v for k, v in (line.split(": ", 1) for line in lines[1:])}
            length = int(headers.get("content-length", "0"))
            if len(rest) < length:
                break
            out.append((int(lines[0].split()[1]), headers, rest[:length]))
            buffer = rest[length:]
            if len(out) == count:
                return out
        assert time.monotonic() < deadline, f"only {len(out)} of {count} responses in time"
        chunk = s.recv(65536)
        assert chunk, f"the server closed the connection after {len(out)} of {count} responses"
        buffer += chunk
    return out


def publish_request(channel, body: bytes, extra=b""):
    return (f"POST /channels/{channel}/messages HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n".encode()
            + extra + b"\r\n" + body)


def history(server, channel):
    with urllib.request.urlopen(f"{server.http}/channels/{channel}/history", timeout=5) as response:
        return [m["data"] for m in json.load(response)["messages"]]


def test_pipelined_publishes_are_answered_in_order_and_published_in_order(squall, store):
    server = squall(*store).wait_ready()
    requests = b"".join(publish_request("pipe", f"m{i}".encode()) for i in range(50))
    responses = exchange(server, requests, 50)
    assert [status for status, _, _ in responses] == [201] * 50
    assert [json.loads(body)["offset"] for _, _, body in responses] == list(range(1, 51))
    assert history(server, "pipe") == [f"m{i}" for i in range(50)]


def test_a_publish_pipelined_behind_a_long_poll_is_answered_after_it(squall, store):
    server = squall(*store).wait_ready()
    poll = b"GET /channels/wait/messages?wait=1 HTTP/1.1\r\nHost: x\r\n\r\n"
    started = time.monotonic()
    (first, _, poll_body), (second, _, publish_body) = exchange(server, poll + publish_request("other", b"after"), 2)
    # The poll waited its second out (nothing came to its channel); the publish came after it.
    assert first == 200 and json.loads(poll_body)["messages"] == []
    assert time.monotonic() - started >= 0.9
    assert second == 201 and json.loads(publish_body)["channel"] == "other"


def test_publishes_and_reads_interleaved_on_one_connection_keep_their_order(squall, store):
    server = squall(*store).wait_ready()
    read = b"GET /channels/mix/history HTTP/1.1\r\nHost: x\r\n\r\n"
    requests = publish_request("mix", b"a") + read + publish_request("mix", b"b") + read
    statuses = exchange(server, requests, 4)
    assert [status for status, _, _ in statuses] == [201, 200, 201, 200]
    assert [m["data"] for m in json.loads(statuses[1][2])["messages"]] == ["a"]
    assert [m["data"] for m in json.loads(statuses[3][2])["messages"]] == ["a", "b"]


def test_a_client_that_ends_its_side_after_pipelining_gets_every_answer(squall, store):
    server = squall(*store).wait_ready()
    read = b"GET /channels/bye/history HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(publish_request("bye", b"one") + read + publish_request("bye", b"two"))
        s.shutdown(socket.SHUT_WR)
        responses = read_responses(s, 3)
    assert [status for status, _, _ in responses] == [201, 200, 201]
    assert [m["data"] for m in json.loads(responses[1][2])["messages"]] == ["one"]
    assert history(server, "bye") == ["one", "two"]


def test_a_chunked_publish_is_published(squall, store):
    server = squall(*store).wait_ready()
    request = (b"POST /channels/chunks/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    [(status, _, body)] = exchange(server, request, 1)
    assert status == 201, body
    assert history(server, "chunks") == ["hello world"]


def test_a_publish_that_expects_100_continue_is_published(squall, store):
    server = squall(*store).wait_ready()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"POST /channels/expect/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        # As curl does: wait a second for `100 Continue`, then send the body anyway.
        s.settimeout(1)
        try:
            early = s.recv(4096)
        except socket.timeout:
            early = b""
        assert early == b"" or early.startswith(b"HTTP/1.1 100"), early
        s.settimeout(5)
        s.sendall(b"later")
        [(status, _, _)] = read_responses(s, 1)
    assert status == 201
    assert history(server, "expect") == ["later"]


def test_a_body_sent_in_pieces_is_published_whole(squall, store):
    server = squall(*store).wait_ready()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"POST /channels/slow/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhel")
        time.sleep(0.2)
        s.sendall(b"lo wo")
        time.sleep(0.2)
        s.sendall(b"rld")
        [(status, _, _)] = read_responses(s, 1)
    assert status == 201
    assert history(server, "slow") == ["hello world"]


def test_plain_and_routed_publishes_answer_with_the_same_headers(squall, store):
    server = squall(*store).wait_ready()
    # `Origin` of the server's own page sends the publish through the router.
    routed = publish_request("same", b"x", f"Origin: {server.http}\r\n".encode()).replace(b"Host: x", f"Host: 127.0.0.1:{server.port}".encode())
    [(plain_status, plain, _)], [(routed_status, via_router, _)] = exchange(server, publish_request("same", b"x"), 1), exchange(server, routed, 1)
    assert plain_status == routed_status == 201
    assert set(plain) == set(via_router) == {"content-type", "content-length", "date", "server"}
    assert plain["content-type"] == via_router["content-type"] == "application/json; charset=utf-8"
    assert plain["server"] == via_router["server"]
    assert plain["date"].endswith(" GMT") and len(plain["date"]) == len(via_router["date"])


def test_refusals_are_the_same_json_errors_and_counted(squall, store):
    server = squall(*store, "--publish-rate", "3/min", "--publish-burst", "3").wait_ready()
    # Refused before the rate is charged, but for UTF-8, which is checked after it.
    responses = exchange(server, b"".join([
        publish_request("bad%20name", b"x"),
        publish_request("ok", b"\xff\xfe"),
        publish_request("ok", b"1", b"Idempotency-Key: \r\n"),
    ]), 3)
    assert [status for status, _, _ in responses] == [400, 400, 400]
    assert [json.loads(body)["error"]["code"] for _, _, body in responses] == ["invalid_channel", "invalid_utf8", "invalid_parameter"]
    # Three publishes a minute, one taken by the UTF-8 refusal: two more, then 429 and Retry-After.
    limited = exchange(server, b"".join(publish_request("ok", b"m") for _ in range(3)), 3)
    assert [status for status, _, _ in limited] == [201, 201, 429]
    with urllib.request.urlopen(f"{server.http}/metrics", timeout=5) as response:
        metrics = response.read().decode()
    for reason in ("invalid_channel", "invalid_utf8", "invalid_parameter", "rate_limited"):
        assert f'squall_http_refusals_total{{reason="{reason}"}} 1' in metrics, reason
    assert json.loads(limited[2][2])["error"]["code"] == "rate_limited" and int(limited[2][1]["retry-after"]) > 0


def test_an_idempotent_retry_returns_the_first_message(squall, store):
    server = squall(*store).wait_ready()
    key = b"Idempotency-Key: order-7\r\n"
    (s1, _, first), (s2, _, again), (s3, _, other) = exchange(
        server, publish_request("orders", b"paid", key) + publish_request("orders", b"paid", key) + publish_request("orders", b"refund", key), 3)
    assert (s1, s2, s3) == (201, 201, 422)
    assert json.loads(first)["id"] == json.loads(again)["id"]
    assert json.loads(other)["error"]["code"] == "idempotency_key_reused"
    assert history(server, "orders") == ["paid"]
