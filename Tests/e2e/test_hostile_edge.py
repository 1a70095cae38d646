# SPDX-License-Identifier: Apache-2.0
"""Hostile connections at the edge (issue 25, defects 4–6): HTTP/2 connections count against the
connection limits like HTTP/1.1 ones, a TLS client that picks h2 and then says nothing is
closed, and refused connections give back their descriptors at once, so that no number of them
from one address delays anyone else. All traffic on 127.0.0.x, every loop bounded."""
import socket
import ssl
import threading
import time
import urllib.request

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest

from test_hostile import fds
from test_tls import certificate, secure  # noqa: F401 (fixtures)

REFUSED_STREAM = 0x7


def h2_open(server, context, source="127.0.0.1"):
    """A TLS connection from `source` that chose h2 by ALPN and sent its preface; (socket, connection)."""
    context.set_alpn_protocols(["h2"])
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10, source_address=(source, 0))
    tls = context.wrap_socket(raw, server_hostname="127.0.0.1")
    assert tls.selected_alpn_protocol() == "h2"
    connection = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    connection.initiate_connection()
    tls.sendall(connection.data_to_send())
    return tls, connection


def h2_events(tls, connection, until, timeout=5.0, answer=True):
    """Reads h2 events until `until(events)` holds, the connection ends or `timeout` passes;
    `answer=False` sends nothing back (no SETTINGS or PING acks)."""
    events = []
    deadline = time.monotonic() + timeout
    while not until(events) and time.monotonic() < deadline:
        tls.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            data = tls.recv(65536)
        except (socket.timeout, TimeoutError):
            break
        except (ConnectionResetError, ssl.SSLError):
            events.append("closed")
            break
        if not data:
            events.append("closed")
            break
        events += connection.receive_data(data)
        if answer:
            tls.sendall(connection.data_to_send())
    return events


def h2_get(tls, connection, server, path, stream):
    """The status of GET `path` on `stream`."""
    connection.send_headers(
        stream, [(":method", "GET"), (":scheme", "https"), (":authority", f"127.0.0.1:{server.port}"), (":path", path)], end_stream=True
    )
    tls.sendall(connection.data_to_send())
    events = h2_events(tls, connection, lambda events: any(isinstance(e, h2.events.StreamEnded) and e.stream_id == stream for e in events))
    return [dict(e.headers)[b":status"] for e in events if isinstance(e, h2.events.ResponseReceived) and e.stream_id == stream]


def refused_with_goaway(tls, connection):
    """Whether the server sent a GOAWAY that took no stream, with REFUSED_STREAM and a reason
    naming too_many_connections, then closed."""
    events = h2_events(tls, connection, lambda events: "closed" in events)
    goaways = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
    return (
        len(goaways) == 1 and goaways[0].error_code == REFUSED_STREAM and goaways[0].last_stream_id == 0
        and b"too_many_connections" in (goaways[0].additional_data or b"") and events[-1] == "closed"
    )


def test_http2_connections_count_against_the_per_address_limit(secure):
    server, context = secure("--max-connections-per-address", "3")
    held = [h2_open(server, context, source="127.0.0.2") for _ in range(3)]
    for tls, connection in held:
        assert h2_get(tls, connection, server, "/healthz", 1) == [b"200"]
    # Before: 8 of 8 served over HTTP/2 while HTTP/1.1 got 503s.
    refused = [h2_open(server, context, source="127.0.0.2") for _ in range(5)]
    assert all(refused_with_goaway(*pair) for pair in refused)
    other = h2_open(server, context, source="127.0.0.3")
    assert h2_get(*other, server, "/healthz", 1) == [b"200"], "another address is served"
    for tls, _ in [*held, *refused, other]:
        tls.close()


def test_http2_connections_count_against_max_connections(secure):
    server, context = secure("--max-connections", "5")
    held = [h2_open(server, context) for _ in range(5)]
    for tls, connection in held:
        assert h2_get(tls, connection, server, "/healthz", 1) == [b"200"]
    # Before: 10 of 10 served.
    refused = [h2_open(server, context) for _ in range(5)]
    assert all(refused_with_goaway(*pair) for pair in refused)
    for tls, _ in [*held, *refused]:
        tls.close()


def test_a_tls_client_that_picks_h2_and_says_nothing_is_closed_at_the_handshake_timeout(secure):
    server, context = secure("--handshake-timeout", "2", "--idle-timeout", "2")
    context.set_alpn_protocols(["h2"])
    silent = []
    for _ in range(30):
        tls = context.wrap_socket(socket.create_connection(("127.0.0.1", server.port), timeout=10), server_hostname="127.0.0.1")
        assert tls.selected_alpn_protocol() == "h2"
        silent.append(tls)
    # And some that send the preface but never open a stream.
    prefaced = [h2_open(server, context) for _ in range(10)]
    started = time.monotonic()
    closed = 0
    for tls in silent + [tls for tls, _ in prefaced]:
        tls.settimeout(max(0.1, started + 6 - time.monotonic()))
        try:
            while tls.recv(65536):
                pass
            closed += 1
        except (ConnectionResetError, ssl.SSLError):
            closed += 1
        except (socket.timeout, TimeoutError):
            pass
        tls.close()
    # Before: 60 of 60 still open after 45 s.
    assert closed == 40, f"{closed} of 40 closed"
    assert time.monotonic() - started < 6


def frame_types(data):
    """The types of the HTTP/2 frames in `data`, in order (a frame is a 9-byte header and its payload)."""
    types = []
    while len(data) >= 9:
        length = int.from_bytes(data[:3], "big")
        types.append(data[3])
        data = data[9 + length:]
    return types


def test_an_idle_http2_client_that_never_acknowledges_the_goaway_ping_is_closed(secure):
    server, context = secure("--idle-timeout", "1", "--close-timeout", "1")
    tls, connection = h2_open(server, context)
    assert h2_get(tls, connection, server, "/healthz", 1) == [b"200"]
    started = time.monotonic()
    received = b""
    closed = False
    tls.settimeout(8)
    try:
        while chunk := tls.recv(65536):  # read, never answered: no PING ack
            received += chunk
        closed = True
    except (ConnectionResetError, ssl.SSLError):
        closed = True
    except (socket.timeout, TimeoutError):
        pass
    GOAWAY, PING = 0x7, 0x6
    assert GOAWAY in frame_types(received) and PING in frame_types(received), "told with a GOAWAY and a PING"
    # Before: open for ever, the server waiting for the PING's ack.
    assert closed, "closed although it never acknowledged"
    assert time.monotonic() - started < 5
    tls.close()


def silent_connection(port, source):
    """A connection from `source` that is opened and then says nothing, without waiting."""
    s = socket.socket()
    s.setblocking(False)
    s.bind((source, 0))
    try:
        s.connect(("127.0.0.1", port))
    except BlockingIOError:
        pass
    return s


def test_a_refused_connection_is_answered_at_once_and_lets_go_of_its_descriptor_within_a_second(squall):
    server = squall("--log-level", "error", "--max-connections-per-address", "3", "--handshake-timeout", "30")
    counted = [socket.create_connection(("127.0.0.1", server.port), source_address=("127.0.0.2", 0)) for _ in range(3)]
    time.sleep(0.3)
    before = fds(server)
    refused = []
    for _ in range(50):
        s = socket.create_connection(("127.0.0.1", server.port), source_address=("127.0.0.2", 0), timeout=5)
        refused.append(s)
    # Answered before it asked anything, then closed by the server.
    for s in refused:
        answer = b""
        while not answer.endswith(b"}") and len(answer) < 4096:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 503") and b"too_many_connections" in answer, answer[:200]
    time.sleep(1.5)
    # Before: each refused connection held its descriptor until the handshake timeout (30 s here).
    assert fds(server) <= before + 2, f"{fds(server)} descriptors, {before} before the refused ones"
    for s in [*counted, *refused]:
        s.close()


def test_a_refused_client_still_sending_its_request_is_not_reset(squall):
    # Before: the refused connection was closed outright once the 503 was written, so whatever
    # the client still sent met a reset — which, off loopback, can destroy the 503 still in
    # flight. Now the server shuts its side and reads (and drops) what comes, until the client
    # is done or the refusal's second is up.
    server = squall("--log-level", "error", "--max-connections-per-address", "1", "--handshake-timeout", "30")
    counted = socket.create_connection(("127.0.0.1", server.port), source_address=("127.0.0.2", 0))
    time.sleep(0.2)
    outcomes = []
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", server.port), source_address=("127.0.0.2", 0), timeout=5)
        s.sendall(b"POST /channels/a/messages HTTP/1.1\r\nHost: x\r\nContent-Length: 30000\r\n\r\n")
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 503") and b"too_many_connections" in answer, answer[:40]
        try:
            s.sendall(b"x" * 15000)  # the rest of its body, as a client that has not read the answer yet sends it
            time.sleep(0.05)  # a reset, if one comes, is back by now
            s.sendall(b"x" * 15000)
            outcomes.append("sent")
        except (BrokenPipeError, ConnectionResetError) as error:
            outcomes.append(type(error).__name__)
        s.close()
    counted.close()
    assert outcomes == ["sent"] * 5, outcomes


def test_refused_connections_from_one_address_never_delay_another(squall):
    # The reproduction: under `ulimit -n 300`, 400 silent connections from one address over its
    # limit delayed another address's /healthz by 9.0 s.
    server = squall("--log-level", "error", "--max-connections-per-address", "3", "--handshake-timeout", "30", nofile=300)
    stop = threading.Event()
    opened = []

    def attack():
        deadline = time.monotonic() + 6
        while not stop.is_set() and time.monotonic() < deadline and len(opened) < 4000:
            opened.append(silent_connection(server.port, "127.0.0.2"))
            if len(opened) % 400 == 0:
                time.sleep(0.2)

    attacker = threading.Thread(target=attack)
    attacker.start()
    worst = 0.0
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            started = time.monotonic()
            request = urllib.request.Request(f"{server.http}/healthz")
            opener = urllib.request.build_opener(SourceAddressHandler("127.0.0.3"))
            with opener.open(request, timeout=15) as response:
                assert response.status == 200
            worst = max(worst, time.monotonic() - started)
            time.sleep(0.1)
    finally:
        stop.set()
        attacker.join()
        for s in opened:
            s.close()
    assert len(opened) >= 400
    assert worst < 1.0, f"/healthz from another address took {worst:.2f} s at worst"


class SourceAddressHandler(urllib.request.HTTPHandler):
    """Connects from `source`, a 127.x address of its own."""

    def __init__(self, source):
        super().__init__()
        self.source = source

    def http_open(self, request):
        import http.client

        source = self.source
        return self.do_open(lambda host, **kwargs: http.client.HTTPConnection(host, source_address=(source, 0), **kwargs), request)
