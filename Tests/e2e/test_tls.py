# SPDX-License-Identifier: Apache-2.0
"""TLS (`--tls-cert`, `--tls-key`): wss:// and https:// on one port, HTTP/2 by ALPN for the
HTTP routes. Each run makes its own self-signed certificate for 127.0.0.1 with openssl."""
import asyncio
import json
import signal
import socket
import ssl
import subprocess
import time
import urllib.request

import h2.config
import h2.connection
import h2.events
import h2.settings
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from conftest import squall_binary


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """(certificate path, key path) of a self-signed certificate for 127.0.0.1 and localhost."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    return str(cert), str(key)


@pytest.fixture
def secure(squall, certificate):
    """Starts squall with the test certificate; returns (server, an SSL context that trusts it)."""
    def start(*args):
        server = squall("--tls-cert", certificate[0], "--tls-key", certificate[1], "--log-level", "error", *args)
        return server, ssl.create_default_context(cafile=certificate[0])

    return start


def curl(*args):
    """curl's (HTTP version, status, body) for one request."""
    out = subprocess.run(
        ["curl", "-s", "--max-time", "10", "-w", "\n%{http_version} %{http_code}", *args],
        check=True, capture_output=True, text=True,
    ).stdout
    body, _, meta = out.rpartition("\n")
    version, status = meta.split()
    return version, int(status), body


async def test_wss_clients_chat_on_msg_with_a_certificate_they_trust(secure):
    server, context = secure()
    async with connect(f"{server.ws}/msg", ssl=context) as alice, connect(f"{server.ws}/msg", ssl=context) as bob:
        await alice.send("hello over TLS")
        assert await asyncio.wait_for(bob.recv(), 5) == "hello over TLS"
        assert await asyncio.wait_for(alice.recv(), 5) == "hello over TLS"


def test_http_routes_speak_http2_to_clients_that_offer_it_and_http11_to_the_rest(secure, certificate):
    server, _ = secure()
    version, status, _ = curl("--http2", "--cacert", certificate[0], "-X", "POST", "--data-binary", "over h2", f"{server.http}/channels/room/messages")
    assert (version, status) == ("2", 201)
    version, status, body = curl("--http1.1", "--cacert", certificate[0], f"{server.http}/channels/room/history")
    assert (version, status) == ("1.1", 200)
    assert [m["data"] for m in json.loads(body)["messages"]] == ["over h2"]


def test_a_plain_http_request_to_the_tls_port_is_not_served_and_the_server_carries_on(secure):
    server, context = secure()
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
    assert not answer.startswith(b"HTTP/")  # a TLS alert at most, never a plaintext answer
    with urllib.request.urlopen(f"{server.http}/healthz", timeout=5, context=context) as response:
        assert response.status == 200


def test_a_client_that_never_starts_tls_is_closed_at_the_handshake_timeout(secure):
    server, _ = secure("--handshake-timeout", "1")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        started = time.monotonic()
        assert s.recv(1) == b""
        assert time.monotonic() - started < 8


async def test_wss_clients_get_1001_when_the_server_shuts_down(secure):
    server, context = secure()
    async with connect(f"{server.ws}/msg", ssl=context) as client:
        server.process.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(client.recv(), 10)
        assert closed.value.rcvd.code == 1001
    assert server.stop()[0] == 0


def test_a_certificate_file_that_is_missing_stops_the_start_and_is_named(certificate, tmp_path):
    missing = tmp_path / "missing.pem"
    result = subprocess.run(
        [squall_binary(), "serve", "--port", "0", "--tls-cert", str(missing), "--tls-key", certificate[1]],
        capture_output=True, text=True, timeout=20,
    )
    assert result.returncode != 0
    assert str(missing) in result.stderr


def test_a_certificate_without_its_key_is_a_usage_error(certificate):
    result = subprocess.run(
        [squall_binary(), "serve", "--port", "0", "--tls-cert", certificate[0]], capture_output=True, text=True, timeout=20
    )
    assert result.returncode == 64
    assert 'tls-cert (flag --tls-cert): tls-cert and tls-key go together' in result.stderr


STREAMS = 8  # more than the six connections a browser opens to one origin over HTTP/1.1

OPEN_STREAMS = """
window.got = {};
window.opened = 0;
for (let n = 0; n < %d; n++) {
  const events = new EventSource('/channels/tls-' + n + '/events');
  events.addEventListener('subscribed', () => { window.opened += 1; });
  events.addEventListener('message', (e) => { window.got[n] = JSON.parse(e.data).data; });
}
""" % STREAMS


def test_a_page_over_https_opens_more_than_six_sse_streams_and_every_one_receives(secure, browser):
    server, context = secure()
    page = browser(f"{server.http}/", flags=("--ignore-certificate-errors",))
    assert page.execute_script("return performance.getEntriesByType('navigation')[0].nextHopProtocol") == "h2"
    page.execute_script(OPEN_STREAMS)
    deadline = time.monotonic() + 15
    while page.execute_script("return window.opened") < STREAMS and time.monotonic() < deadline:
        time.sleep(0.1)
    assert page.execute_script("return window.opened") == STREAMS
    for n in range(STREAMS):
        request = urllib.request.Request(f"{server.http}/channels/tls-{n}/messages", data=f"to stream {n}".encode(), method="POST")
        with urllib.request.urlopen(request, timeout=5, context=context) as response:
            assert response.status == 201
    deadline = time.monotonic() + 15
    while len(page.execute_script("return window.got")) < STREAMS and time.monotonic() < deadline:
        time.sleep(0.1)
    assert page.execute_script("return window.got") == {str(n): f"to stream {n}" for n in range(STREAMS)}


def h2_connection(server, context, initial_window):
    """A TLS socket speaking HTTP/2 (ALPN h2) with python-h2, asking for `initial_window` bytes of
    flow-control window per stream; returns (socket, connection)."""
    context.set_alpn_protocols(["h2"])
    raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    tls = context.wrap_socket(raw, server_hostname="127.0.0.1")
    assert tls.selected_alpn_protocol() == "h2"
    connection = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    connection.initiate_connection()
    connection.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: initial_window})
    tls.sendall(connection.data_to_send())
    return tls, connection


def h2_events_until(tls, connection, done, timeout=10):
    """Reads h2 events until `done(events so far)` holds or `timeout` passes; returns them all."""
    events = []
    deadline = time.monotonic() + timeout
    while not done(events) and time.monotonic() < deadline:
        tls.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            data = tls.recv(65536)
        except (socket.timeout, TimeoutError):
            break
        if not data:
            break
        events += connection.receive_data(data)
        tls.sendall(connection.data_to_send())
    return events


def test_an_http2_stream_that_stalls_is_reset_and_its_connection_carries_on(secure):
    server, context = secure("--body-timeout", "1", "--write-timeout", "1")
    authority = f"127.0.0.1:{server.port}"
    tls, connection = h2_connection(server, context, initial_window=0)
    # Stream 1 promises a body and never sends it; stream 3 asks for a reply its window (0) can
    # never take.
    connection.send_headers(1, [(":method", "POST"), (":scheme", "https"), (":authority", authority),
                                (":path", "/channels/stall/messages"), ("content-length", "10")])
    connection.send_headers(3, [(":method", "GET"), (":scheme", "https"), (":authority", authority),
                                (":path", "/channels/stall/history")], end_stream=True)
    tls.sendall(connection.data_to_send())

    def reset(events):
        return {event.stream_id for event in events if isinstance(event, h2.events.StreamReset)}

    events = h2_events_until(tls, connection, lambda events: reset(events) >= {1, 3})
    assert reset(events) >= {1, 3}, f"both stalled streams are reset: {events}"
    assert not any(isinstance(event, h2.events.ConnectionTerminated) for event in events)

    # The same connection serves a stream that reads.
    connection.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 65535})
    connection.send_headers(5, [(":method", "GET"), (":scheme", "https"), (":authority", authority),
                                (":path", "/healthz")], end_stream=True)
    tls.sendall(connection.data_to_send())
    events = h2_events_until(tls, connection, lambda events: any(isinstance(e, h2.events.StreamEnded) and e.stream_id == 5 for e in events))
    statuses = [dict(e.headers).get(b":status") for e in events if isinstance(e, h2.events.ResponseReceived) and e.stream_id == 5]
    assert statuses == [b"200"]
    tls.close()


def make_certificate(cert, key, name):
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "2", "-subj", f"/CN={name}", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True)


def served_certificate(port):
    """The DER certificate the server presents to a new connection now."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, context.wrap_socket(raw) as tls:
        return tls.getpeercert(binary_form=True)


def der(cert):
    return ssl.PEM_cert_to_DER_cert(open(cert).read())


async def test_a_reload_serves_a_renewed_certificate_to_new_connections_and_keeps_open_ones(squall, tmp_path):
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    make_certificate(cert, key, "first")
    first = der(cert)
    server = squall("--tls-cert", str(cert), "--tls-key", str(key), "--log-level", "notice")
    trusting_first = ssl.create_default_context(cafile=str(cert))
    assert served_certificate(server.port) == first
    async with connect(f"{server.ws}/msg", ssl=trusting_first) as open_before:
        # Renewed as certbot does it: new files at the same paths, then a reload.
        make_certificate(cert, key, "renewed")
        renewed = der(cert)
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while served_certificate(server.port) != renewed:
            assert time.monotonic() < deadline, "the renewed certificate was never served"
            await asyncio.sleep(0.1)
        await open_before.send("still here")
        assert await asyncio.wait_for(open_before.recv(), 5) == "still here"

    # A file caught half-written: the reload keeps the certificate in use and says why.
    cert.write_text("-----BEGIN CERTIFICATE-----\ntruncated\n")
    server.process.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while "kept the TLS certificate in use" not in server.log_so_far():
        assert time.monotonic() < deadline, "the failed reload was never logged"
        await asyncio.sleep(0.1)
    assert served_certificate(server.port) == renewed
    _, log = server.stop()
    assert "reloaded the TLS certificate chain and key" in log
    assert str(cert) in log.split("kept the TLS certificate in use", 1)[1].splitlines()[0]
