# SPDX-License-Identifier: Apache-2.0
"""Hostile input: what an attacker sends must not crash, wedge or bloat the server.

Each test reproduces one way Squall was once crashed, wedged or grown by gigabytes, and checks
what a user would see instead: a clear error, a closed socket, and a server that keeps serving
everyone else, with its descriptors and memory back near where they started. All traffic goes to
127.0.0.1, every loop is bounded in count and time.
"""
import asyncio
import json
import os
import socket
import struct
import time
import urllib.error
import urllib.request
import zlib

import pytest
import websockets

from rawsocket import RawSocket


# --- the server process, as the kernel sees it -------------------------------------------------

def fds(server):
    return len(os.listdir(f"/proc/{server.process.pid}/fd"))


def rss_mib(server):
    with open(f"/proc/{server.process.pid}/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def cpu_seconds(server):
    with open(f"/proc/{server.process.pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout}s: {what}")


def get(server, path, timeout=5):
    """(status, parsed JSON body) of a GET."""
    try:
        with urllib.request.urlopen(f"{server.http}{path}", timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def post(server, channel, body: bytes):
    request = urllib.request.Request(f"{server.http}/channels/{channel}/messages", data=body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status


def still_serving(server):
    status, health = get(server, "/healthz")
    assert status == 200 and health["status"] == "ok"
    return health


def raw_exchange(server, data: bytes, timeout=5.0):
    """Sends `data` on a new TCP connection and reads until the server closes it (or timeout)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout) as s:
        try:
            s.sendall(data)
        except OSError:
            pass  # refused before it was all sent: the answer is still there to read
        received = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except (socket.timeout, ConnectionResetError):
                break
            if not chunk:
                return received, True
            received += chunk
        return received, False


def status_and_code(response: bytes):
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1])
    return status, json.loads(body)["error"]["code"]


def ws_frame(opcode, payload=b"", mask=b"\x00\x00\x00\x00"):
    """One masked client frame; the zero mask leaves the payload as it is."""
    if len(payload) < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | len(payload))
    elif len(payload) < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, len(payload))
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, len(payload))
    return header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def never_reading_socket(server, path="/ws"):
    """A WebSocket on a TCP socket with a small receive buffer that is never read after the 101."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", server.port))
    s.sendall(
        f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def send_for(s, data: bytes, seconds: float):
    """Sends as much of `data` as the server takes within `seconds`; returns the bytes sent."""
    s.settimeout(0.5)
    sent = 0
    deadline = time.monotonic() + seconds
    view = memoryview(data)
    while sent < len(data) and time.monotonic() < deadline:
        try:
            sent += s.send(view[sent:sent + (1 << 20)])
        except socket.timeout:
            continue
        except OSError:
            break
    return sent


def nested(depth):
    return "[" * depth + "]" * depth


# --- 1. one GET must not kill the process ------------------------------------------------------

def test_a_wait_too_large_for_any_clock_is_cut_to_the_maximum(squall):
    server = squall("--long-poll-wait", "0.2")
    for wait in ("1e16", "9.3e15", "1e300", "179769313486231570000000000000000000000"):
        status, page = get(server, f"/channels/a/messages?wait={wait}")
        assert status == 200 and page["messages"] == [], wait
    for wait in ("inf", "nan", "-1", "1e999"):
        status, error = get(server, f"/channels/a/messages?wait={wait}")
        assert status == 400 and error["error"]["code"] == "invalid_parameter", wait
    still_serving(server)


# --- 2, 6, 10. nested and oversize JSON: refused, in linear time, never a crash ----------------

@pytest.mark.asyncio
async def test_deep_refs_and_info_are_refused_and_presence_keeps_answering(squall):
    server = squall()
    async with websockets.connect(f"{server.ws}/ws", subprotocols=["squall.v1"]) as ws:
        await ws.recv()  # welcome
        await ws.send('{"op":"ping","ref":' + nested(511) + "}")
        error = json.loads(await ws.recv())
        assert error["type"] == "error" and error["code"] == "invalid_request"
        for depth in (510, 509, 9):
            info = '{"a":' * depth + "1" + "}" * depth
            await ws.send('{"ref":"deep","op":"subscribe","channel":"c","presence":true,"info":' + info + "}")
            error = json.loads(await ws.recv())
            assert error["type"] == "error" and error["code"] == "invalid_request", depth
        # Within the request's nesting limit, the error about info still carries the ref.
        assert error["ref"] == "deep"
        await ws.send('{"op":"subscribe","channel":"c","info":{"name":"' + "x" * 5000 + '"},"ref":2}')
        assert json.loads(await ws.recv())["code"] == "invalid_request"
        await ws.send('{"op":"subscribe","channel":"c","info":{"deep":' + nested(7) + '},"ref":3}')
        assert json.loads(await ws.recv())["type"] == "subscribed"
        status, presence = get(server, "/channels/c/presence")
        assert status == 200 and presence["clients"][0]["info"] == {"deep": json.loads(nested(7))}
    still_serving(server)


@pytest.mark.asyncio
async def test_ref_is_echoed_byte_for_byte(squall):
    server = squall()
    async with websockets.connect(f"{server.ws}/ws", subprotocols=["squall.v1"]) as ws:
        await ws.recv()
        for ref in ("9007199254740993", "12345678901234567890", "1.50", '{"b":2, "a":[1e2]}', '"\\u00e9"'):
            await ws.send('{"op":"ping","ref":' + ref + "}")
            reply = await ws.recv()
            assert reply == '{"ref":' + ref + ',"type":"pong"}', reply


@pytest.mark.asyncio
async def test_deep_and_wide_frames_cost_time_linear_in_their_size(squall):
    # Linear parsing: 20 frames nested 511 deep once took 1 s of CPU each (20 s), and each 1 MB
    # array in info 0.5-1.7 s. Budget: 5 s of server CPU for all of it — a debug build scanning
    # linearly takes about a second, the old decoder took over 20.
    server = squall("--max-message-size", "2MiB")
    before = cpu_seconds(server)
    async with websockets.connect(f"{server.ws}/ws", subprotocols=["squall.v1"], max_size=None) as ws:
        await ws.recv()
        for _ in range(20):
            await ws.send('{"op":"ping","x":' + nested(511) + "}")
            assert json.loads(await ws.recv())["code"] == "invalid_request"
        wide = "[" + ",".join(["1"] * 500_000) + "]"
        for _ in range(2):
            await ws.send('{"op":"ping","ref":7,"wide":' + wide + "}")
            assert json.loads(await ws.recv()) == {"ref": 7, "type": "pong"}
            await ws.send('{"op":"subscribe","channel":"w","info":' + wide + "}")
            assert json.loads(await ws.recv())["code"] == "invalid_request"
    spent = cpu_seconds(server) - before
    assert spent < 5.0, f"{spent:.2f} s of server CPU"


# --- 3, 8. every socket ends: connect/close, partial heads, garbage, abandoned polls ------------

CLIENT_HELLO = bytes.fromhex("16030100a5010000a10303") + os.urandom(32)


def test_connect_and_close_before_a_head_leaves_no_socket_behind(squall):
    server = squall()
    baseline = fds(server)
    for i in range(1500):
        with socket.create_connection(("127.0.0.1", server.port)) as s:
            kind = i % 4
            if kind == 1:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHo")
            elif kind == 2:
                s.sendall(CLIENT_HELLO)
            elif kind == 3:
                s.sendall(b"GET /msg HTTP/1.1\r\nUpgrade: websocket\r\n")
    wait_until(lambda: fds(server) <= baseline + 5, 10, f"descriptors back to {baseline}: {fds(server)}")
    still_serving(server)


def test_abandoned_long_polls_release_their_sockets_at_once(squall):
    server = squall()
    baseline = fds(server)
    sockets = []
    for _ in range(200):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(b"GET /channels/idle/messages?wait=25 HTTP/1.1\r\nHost: x\r\n\r\n")
        sockets.append(s)
    wait_until(lambda: still_serving(server)["waiting_polls"] == 200, 10, "200 polls parked")
    for s in sockets:
        s.close()
    # Well before the polls' 25 s would have ended.
    wait_until(lambda: still_serving(server)["waiting_polls"] == 0, 5, "the polls answered")
    wait_until(lambda: fds(server) <= baseline + 5, 5, f"descriptors back to {baseline}: {fds(server)}")


def test_silent_partial_and_idle_connections_are_closed_by_their_timeouts(squall):
    server = squall("--handshake-timeout", "1", "--idle-timeout", "1", "--body-timeout", "1")
    cases = {
        "silent": b"",
        "partial head": b"GET /healthz HTTP/1.1\r\nHost:",
        "after a response": b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        "unterminated chunked body": b"POST /channels/a/messages HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel",
        "body shorter than its length": b"POST /channels/a/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort",
        "partial websocket upgrade": b"GET /msg HTTP/1.1\r\nUpgrade: websocket\r\n",
        "answered before its body came": b"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n",
    }
    for name, data in cases.items():
        started = time.monotonic()
        _, closed = raw_exchange(server, data, timeout=6)
        assert closed and time.monotonic() - started < 4, name
    still_serving(server)


@pytest.mark.parametrize(
    "request_bytes, status, code",
    [
        (b"GARBAGE\r\n\r\n", 400, "malformed_request"),
        (b"GET / HTTP/1.1\r\nHost: \x00\x00\r\n\r\n", 400, "malformed_request"),
        (b"\x00\x01\x02\x03\r\n\r\n", 400, "malformed_request"),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, "malformed_request"),
        (b"POST /channels/a/messages HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, "malformed_request"),
        (b"POST /channels/a/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400, "malformed_request"),
        (b"POST /channels/a/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000000\r\n\r\n", 413, "message_too_large"),
        (b"GET /" + b"a" * (1 << 20) + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * (200 << 10) + b"\r\n\r\n", 431, "request_head_too_large"),
    ],
    ids=["garbage", "nul-in-header", "nul-bytes", "http2-preface", "negative-length", "length-and-chunked",
         "10-GB-length", "1-MiB-url", "200-KiB-header"],
)
def test_malformed_heads_get_a_json_error_and_the_connection_closes(squall, request_bytes, status, code):
    server = squall()
    response, closed = raw_exchange(server, request_bytes, timeout=5)
    assert response.startswith(b"HTTP/1.1 "), response[:100]
    assert status_and_code(response) == (status, code)
    assert closed, "the connection stays open after the error"
    still_serving(server)


def test_a_client_that_ends_its_side_after_the_request_gets_the_whole_answer(squall):
    server = squall()
    for index in range(100):
        post(server, "half", f"{index}:{'h' * 10_000}".encode())  # a 1 MiB answer
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"GET /channels/half/history?limit=1000 HTTP/1.1\r\nHost: x\r\n\r\n")
        s.shutdown(socket.SHUT_WR)  # as `nc -N` and `printf … | curl` do
        time.sleep(0.5)  # the server sees the end of input before it has written the answer
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    assert len(json.loads(body)["messages"]) == 100


# --- 4. pings from a client that never reads ----------------------------------------------------

def test_a_ping_flood_from_a_client_that_never_reads_stays_bounded(squall):
    server = squall()
    baseline = rss_mib(server)
    s = never_reading_socket(server, "/msg")
    flood = ws_frame(0x9) * ((48 << 20) // 6)  # 48 MiB of empty pings
    send_for(s, flood, 8)
    grown = rss_mib(server) - baseline
    s.close()
    # Once its pongs pile up unread, the server stops reading the pings: TCP pushes back.
    assert grown < 64, f"the server grew by {grown:.0f} MiB answering pings nobody read"
    still_serving(server)


def test_unsolicited_pongs_do_not_keep_a_silent_client_alive(squall):
    server = squall("--ping-interval", "0.5")
    s = never_reading_socket(server, "/msg")
    s.settimeout(0.2)
    deadline = time.monotonic() + 6
    closed = False
    while time.monotonic() < deadline and not closed:
        try:
            s.sendall(ws_frame(0xA, b"guess"))
        except OSError:
            closed = True
        time.sleep(0.1)
        closed = closed or still_serving(server)["connections"] == 0
    s.close()
    assert closed, "a client that never read a ping stayed connected on pongs alone"


# --- 5, 10. replies are bounded before they are built; pipelining is back-pressure, not 1008 -----

def test_pipelined_history_requests_from_a_client_that_never_reads_stay_bounded(squall):
    server = squall("--retention-bytes", "64MiB", "--max-message-size", "1MiB")
    for _ in range(24):
        post(server, "big", b"a" * (1 << 20))  # 24 MiB retained: once, each reply held them all
    baseline = rss_mib(server)
    s = never_reading_socket(server)
    request = b'{"op":"history","channel":"big","limit":1000}'
    send_for(s, ws_frame(0x1, request) * 2000, 10)
    # Others are served meanwhile, at once.
    started = time.monotonic()
    still_serving(server)
    assert time.monotonic() - started < 1.0
    grown = rss_mib(server) - baseline
    s.close()
    assert grown < 200, f"the server grew by {grown:.0f} MiB of replies nobody read"


@pytest.mark.asyncio
async def test_a_paused_reader_on_a_busy_channel_resumes_and_gets_everything(squall):
    # Reading stops while replies pile up; broadcasts keep arriving meanwhile. Once the client
    # reads again, every reply comes, and the last request is answered.
    server = squall()
    async with websockets.connect(f"{server.ws}/ws", subprotocols=["squall.v1"], max_queue=1, max_size=None) as ws:
        await ws.recv()
        await ws.send('{"op":"subscribe","channel":"busy","ref":"s"}')
        assert json.loads(await ws.recv())["type"] == "subscribed"
        for index in range(60):
            post(server, "busy", f"{index}:{'b' * 20_000}".encode())
        for index in range(40):
            await ws.send(json.dumps({"op": "history", "channel": "busy", "limit": 1000, "ref": index}))
        for index in range(30):
            post(server, "busy", f"late {index}:{'b' * 20_000}".encode())
        await ws.send('{"op":"ping","ref":"end"}')
        await asyncio.sleep(1)  # nobody reads: the server pauses this client
        histories, messages = 0, 0
        while True:
            reply = json.loads(await asyncio.wait_for(ws.recv(), 20))
            if reply["type"] == "history":
                histories += 1
            elif reply["type"] == "message":
                messages += 1
            elif reply == {"type": "pong", "ref": "end"}:
                break
        assert histories == 40 and messages == 90


@pytest.mark.asyncio
async def test_a_client_that_pipelines_thousands_of_requests_gets_every_reply(squall):
    server = squall()
    async with websockets.connect(f"{server.ws}/ws", subprotocols=["squall.v1"]) as ws:
        await ws.recv()
        for ref in range(3000):
            await ws.send(json.dumps({"op": "ping", "ref": ref}))
        refs = [json.loads(await asyncio.wait_for(ws.recv(), 10))["ref"] for _ in range(3000)]
        assert refs == list(range(3000))


def test_history_and_presence_replies_are_paged_by_bytes(squall):
    server = squall("--max-reply-bytes", "64KiB")
    for index in range(8):
        post(server, "paged", (f"{index}:" + "x" * 20_000).encode())
    _, page = get(server, "/channels/paged/history?limit=1000")
    assert 1 <= len(page["messages"]) <= 3, "a reply over the byte budget"
    assert page["messages"][-1]["data"].startswith("7:"), "history keeps the newest that fit"
    status, old = get(server, f"/channels/paged/messages?wait=0&since={page['epoch']}:0")
    assert status == 200 and 1 <= len(old["messages"]) <= 3, "a page over the byte budget, or none"
    assert [m["offset"] for m in old["messages"]] == list(range(1, len(old["messages"]) + 1)), "the oldest that fit"

    async def crowd():
        clients = []
        for index in range(40):
            ws = await websockets.connect(f"{server.ws}/ws", subprotocols=["squall.v1"])
            await ws.recv()
            await ws.send(json.dumps({"op": "subscribe", "channel": "crowd", "info": {"n": index, "pad": "p" * 3000}}))
            await ws.recv()
            clients.append(ws)
        ids, after, pages = [], "", 0
        while True:
            _, listed = get(server, "/channels/crowd/presence" + (f"?after={after}" if after else ""))
            ids += [member["id"] for member in listed["clients"]]
            pages += 1
            if "next" not in listed:
                break
            after = listed["next"]
        for ws in clients:
            await ws.close()
        return ids, pages

    ids, pages = asyncio.run(crowd())
    assert len(ids) == 40 and len(set(ids)) == 40 and ids == sorted(ids) and pages > 1


# --- 7. retention is bounded by bytes, copies included -------------------------------------------

@pytest.mark.asyncio
async def test_retention_is_bounded_by_bytes_with_every_copy_counted(squall):
    server = squall("--retention-bytes", "2MiB")
    async with websockets.connect(f"{server.ws}/ws", subprotocols=["squall.v1"], max_size=None) as ws, \
            websockets.connect(f"{server.ws}/msg/bytes", max_size=None) as plain:
        await ws.recv()
        await ws.send('{"op":"subscribe","channel":"bytes"}')
        await ws.recv()
        for index in range(10):
            post(server, "bytes", bytes([1]) * (256 << 10))  # 256 KiB, 1.5 MiB as a JSON envelope
            await ws.recv()
            await plain.recv()
        _, page = get(server, "/channels/bytes/history?limit=1000")
    # Each message costs its payload, its /msg frame, its envelope and the envelope's frame:
    # 3.5 MiB, so only the newest is kept within 2 MiB.
    assert [m["offset"] for m in page["messages"]] == [10]
    still_serving(server)


# --- 8. a barrage of bad clients, while two people chat ------------------------------------------

def deflated(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-15)
    return (compressor.compress(data) + compressor.flush(zlib.Z_SYNC_FLUSH))[:-4]


BAD_FRAMES = {
    "garbage": os.urandom(4096),
    "truncated frame": ws_frame(0x1, b"x" * 1000)[:500],
    "unmasked": struct.pack("!BB", 0x81, 5) + b"hello",
    "close code 1005": ws_frame(0x8, struct.pack("!H", 1005)),
    "close code 999": ws_frame(0x8, struct.pack("!H", 999)),
    "one-byte close": ws_frame(0x8, b"\x03"),
    "unfinished fragments": b"".join(
        struct.pack("!BB", 0x01 if i == 0 else 0x00, 0x80 | 100) + b"\x00" * 4 + b"f" * 100 for i in range(200)
    ),
    "reserved opcode": struct.pack("!BB", 0x83, 0x80) + b"\x00" * 4,
}
BOMB = deflated(b"\x00" * (64 << 20))  # 64 MiB of zeros in about 64 KiB
# A compressed binary frame (FIN, RSV1), zero mask: it inflates far past the 1 MiB limit.
BAD_FRAMES["compression bomb"] = struct.pack("!BBQ", 0xC2, 0x80 | 127, len(BOMB)) + b"\x00" * 4 + BOMB


@pytest.mark.asyncio
async def test_a_barrage_of_bad_clients_leaves_the_chat_running_and_the_server_as_it_was(squall):
    # Errors only: the fixture reads the server's log at the end, and a full pipe would block it.
    server = squall("--log-level", "error")
    async with websockets.connect(f"{server.ws}/msg/chat") as alice, websockets.connect(f"{server.ws}/msg/chat") as bob:
        await asyncio.sleep(0.2)
        baseline_fds, baseline_rss = fds(server), rss_mib(server)

        async def bad_websocket(name, data, extensions=None):
            raw = await RawSocket.connect(server, "/ws", extensions=extensions)
            raw.writer.write(data)
            try:
                await asyncio.wait_for(raw.reader.read(), 5)  # until the server closes it
            except (asyncio.TimeoutError, ConnectionError):
                pass
            raw.close()

        async def bad_http(path, body=None):
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            method = "POST" if body is not None else "GET"
            length = f"Content-Length: {len(body)}\r\n" if body is not None else ""
            writer.write(f"{method} {path} HTTP/1.1\r\nHost: x\r\n{length}Connection: close\r\n\r\n".encode() + (body or b""))
            try:
                line = await asyncio.wait_for(reader.readuntil(b"\r\n"), 3)
            except asyncio.TimeoutError:
                line = None  # a long poll the query made valid: still waiting, which is fine
            writer.close()
            return int(line.split(b" ")[1]) if line else None

        for round_number in range(3):
            bad = [bad_websocket(name, data, "permessage-deflate" if name == "compression bomb" else None) for name, data in BAD_FRAMES.items()]
            queries = ["since=%ff:1", "since=a:99999999999999999999999", "wait=1e309", "limit=-0", "limit=1e3",
                       "name=" + "n" * 5000, "after=zz", "%%%%", "since=&wait=&limit=", "wait=0x10"]
            routes = ["/channels/q/messages", "/channels/q/history", "/channels/q/presence", "/channels/q/events", "/msg/q", "/ws"]
            statuses = await asyncio.gather(
                *bad,
                *[bad_http(f"{route}?{query}") for route in routes for query in queries],
                bad_http("/channels/q/messages", b"\xff\xfe not utf-8"),
                bad_http("/channels/bad name/messages", b"x"),
            )
            assert all(status is None or 200 <= status < 500 for status in statuses), statuses
            # The chat carried on through it.
            await alice.send(f"round {round_number}")
            assert await asyncio.wait_for(bob.recv(), 5) == f"round {round_number}"
            assert await asyncio.wait_for(alice.recv(), 5) == f"round {round_number}"

        wait_until(lambda: still_serving(server)["connections"] == 2, 10, "only the two chatters left")
        wait_until(lambda: fds(server) <= baseline_fds + 3, 10, f"descriptors back to {baseline_fds}: {fds(server)}")
        assert rss_mib(server) - baseline_rss < 64, "memory did not come back near its baseline"


# --- found by fuzzing ---------------------------------------------------------------------------

@pytest.mark.asyncio
@pytest.mark.parametrize("offer", ["permessage-deflate;", "permessage-deflate; ;", "permessage-deflate; =15", "permessage-deflate; a="])
async def test_an_extension_offer_with_an_empty_parameter_is_declined_not_fatal(squall, offer):
    # The deflate-offer fuzz target found that one trailing ";" killed the process.
    server = squall()
    raw = await RawSocket.connect(server, "/msg", extensions=offer)
    assert raw.extensions is None
    raw.close()
    still_serving(server)
