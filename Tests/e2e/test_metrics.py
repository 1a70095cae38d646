# SPDX-License-Identifier: Apache-2.0
"""/metrics in Prometheus's text format — exact counts after known traffic, read directly and
through a real Prometheus (Debian's) scraping Squall on loopback — and /readyz."""
import asyncio
import json
import re
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from websockets.asyncio.client import connect

from conftest import free_port
from test_postgres_nodes import postgres

DATABASE = os.environ.get("SQUALL_TEST_POSTGRES")


def scrape(server):
    """{"name{labels}": value} of every sample /metrics serves."""
    with urllib.request.urlopen(f"{server.http}/metrics", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = response.read().decode()
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def publish(server, channel, text):
    request = urllib.request.Request(f"{server.http}/channels/{channel}/messages", data=text.encode(), method="POST")
    urllib.request.urlopen(request, timeout=5).read()


async def traffic(server):
    """Two /msg subscribers of `metered`, one refused upgrade, five publishes over HTTP."""
    sockets = [await connect(f"{server.ws}/msg/metered", open_timeout=5) for _ in range(2)]
    try:
        await connect(f"{server.ws}/msg/metered", origin="https://elsewhere.example", open_timeout=5)
    except Exception:  # noqa: BLE001 - refused with 403, as meant
        pass
    for n in range(5):
        publish(server, "metered", f"m{n}")
    for socket in sockets:
        for n in range(5):
            assert await asyncio.wait_for(socket.recv(), 5) == f"m{n}"
    return sockets


async def test_metrics_count_messages_deliveries_and_handshakes_exactly(squall):
    server = squall("--log-level", "error")
    before = scrape(server)
    sockets = await traffic(server)
    after = scrape(server)
    delta = lambda name: after.get(name, 0) - before.get(name, 0)  # noqa: E731
    assert delta("squall_messages_total") == 5
    assert delta("squall_deliveries_total") == 10, "five messages to two subscribers, counted per message"
    assert delta('squall_websocket_handshakes_total{result="accepted"}') == 2
    assert delta('squall_websocket_handshakes_total{result="refused",reason="origin_not_allowed"}') == 1
    assert after["squall_websocket_connections"] == 2
    assert after["squall_channels"] >= 1
    assert after["process_resident_memory_bytes"] > 1 << 20 and after["process_open_fds"] > 2
    for socket in sockets:
        await socket.close()


async def test_a_real_prometheus_scrapes_squall_and_answers_a_query_for_its_counter(squall, tmp_path):
    server = squall("--log-level", "error")
    sockets = await traffic(server)
    port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\nscrape_configs:\n"
        f"  - job_name: squall\n    static_configs:\n      - targets: ['127.0.0.1:{server.port}']\n")
    prometheus = subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
         "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        query = urllib.parse.quote('squall_messages_total{job="squall"}')
        deadline = time.monotonic() + 30
        value = None
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/query?query={query}", timeout=2) as response:
                    result = json.loads(response.read())["data"]["result"]
                if result:
                    value = result[0]["value"][1]
                    break
            except OSError:
                pass
            await asyncio.sleep(0.5)
        assert value == "5", f"Prometheus answered {value!r}"
    finally:
        prometheus.terminate()
        prometheus.wait(timeout=20)
        for socket in sockets:
            await socket.close()


def readiness(server):
    try:
        with urllib.request.urlopen(f"{server.http}/readyz", timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_readyz_says_ready_while_the_server_listens_and_its_store_answers(squall):
    server = squall("--log-level", "error")
    from test_command import VERSION

    assert readiness(server) == (200, {"draining": False, "status": "ready", "store": True, "version": VERSION})


@pytest.mark.skipif(not DATABASE, reason="needs a database: SQUALL_TEST_POSTGRES=postgres://… (scripts/postgres starts one)")
def test_readyz_says_not_ready_while_the_database_does_not_answer(squall):
    server = squall("--log-level", "error", "--store", DATABASE)
    assert readiness(server)[0] == 200
    postgres("pause")
    try:
        began = time.monotonic()
        status, body = readiness(server)
        assert (status, body["store"], body["status"]) == (503, False, "not_ready"), body
        assert time.monotonic() - began < 5, "a readiness probe never waits on the store past its deadline"
    finally:
        postgres("resume")
    deadline = time.monotonic() + 20
    while readiness(server)[0] != 200:
        assert time.monotonic() < deadline, "ready again once the database answers"
        time.sleep(0.2)


def test_readyz_says_draining_as_soon_as_a_shutdown_begins(squall):
    import signal
    import socket

    server = squall("--log-level", "error", "--close-timeout", "3")
    # A client that never answers the close keeps the drain going for the close timeout.
    silent = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    silent.sendall(b"GET /msg HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert b" 101 " in silent.recv(4096)
    assert readiness(server)[0] == 200
    server.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 2
    status, body = readiness(server)
    while status == 200 and time.monotonic() < deadline:
        time.sleep(0.05)
        status, body = readiness(server)
    assert (status, body) == (503, {"draining": True, "status": "not_ready", "store": True, "version": body["version"]})
    silent.close()


def test_the_grafana_dashboard_asks_only_for_metrics_squall_serves(squall):
    from pathlib import Path

    dashboard = json.loads((Path(__file__).resolve().parents[2] / "docs/grafana-dashboard.json").read_text())
    server = squall("--log-level", "error")
    served = {name.split("{")[0] for name in scrape(server)}
    asked = set()
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            asked |= {name for name in re.findall(r"[a-z_]+(?=[{\[)]|$)", target["expr"]) if name.startswith(("squall_", "process_"))}
    assert asked and asked <= served, f"the dashboard asks for {sorted(asked - served)}, which /metrics does not serve"


async def test_metrics_count_acknowledgements_commits_http_refusals_and_hook_calls(squall, tmp_path):
    from test_hooks import Backend

    backend = Backend()
    backend.answers["publish"] = lambda call: {"error": {"message": "no"}} if call["data"] == "refused" else {"result": {}}
    try:
        server = squall("--log-level", "error", "--store", f"sqlite:{tmp_path}/squall.db", "--hook-publish", f"{backend.url}/publish")
        before = scrape(server)
        for n in range(4):
            publish(server, "timed", f"m{n}")
        for body in ("refused", "refused"):
            with pytest.raises(urllib.error.HTTPError):
                publish(server, "timed", body)
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"{server.http}/channels/bad%20name/history", timeout=5)
        after = scrape(server)
    finally:
        backend.close()
    delta = lambda name: after.get(name, 0) - before.get(name, 0)  # noqa: E731
    assert delta("squall_publish_acknowledgement_seconds_count") == 4
    assert after["squall_publish_acknowledgement_seconds_sum"] > 0
    assert 1 <= delta("squall_store_commit_seconds_count") <= 4, "each commit a batch"
    assert delta('squall_http_refusals_total{reason="hook_denied"}') == 2
    assert delta('squall_http_refusals_total{reason="invalid_channel"}') == 1
    assert delta('squall_hook_calls_total{hook="publish",outcome="allow"}') == 4
    assert delta('squall_hook_calls_total{hook="publish",outcome="deny"}') == 2
    assert after["squall_store_commit_errors_total"] == 0


async def test_metrics_count_connections_by_transport_bytes_delivered_and_endings_by_cause(squall):
    from test_hostile import never_reading_socket

    server = squall("--log-level", "error", "--publish-rate", "off", "--outbox-messages", "16")
    before = scrape(server)
    chat = [await connect(f"{server.ws}/msg/bytes", open_timeout=5) for _ in range(2)]
    plain = await connect(f"{server.ws}/ws", open_timeout=5)
    stream = urllib.request.urlopen(f"{server.http}/channels/streamed/events", timeout=5)
    stalled = never_reading_socket(server, "/msg/stalled")
    try:
        # A stream counts once its body runs, just after its head reached the client: wait for it.
        deadline = time.monotonic() + 5
        while (now := scrape(server))['squall_connections{transport="sse"}'] != 1:
            assert time.monotonic() < deadline, now
            await asyncio.sleep(0.05)
        assert now['squall_connections{transport="msg"}'] == 3
        assert now['squall_connections{transport="ws"}'] == 1
        assert now['squall_connections{transport="sse"}'] == 1
        assert now['squall_connections{transport="websocket"}'] == 0
        assert now["squall_websocket_connections"] == 4, "SSE streams are not WebSockets"

        publish(server, "bytes", "hello")
        for socket in chat:
            assert await asyncio.wait_for(socket.recv(), 5) == "hello"
        assert scrape(server)["squall_delivered_bytes_total"] - now["squall_delivered_bytes_total"] == 2 * 5, "per subscriber"
        # Past the kernel's buffers and the stalled client's 16-message outbox: closed as slow.
        for _ in range(128):
            publish(server, "stalled", "x" * 65536)
        await chat[0].close()
        deadline = time.monotonic() + 10
        after = scrape(server)
        while time.monotonic() < deadline and not (
            after.get('squall_disconnections_total{cause="slow_consumer"}')
            and after.get('squall_disconnections_total{cause="client_close"}')
            and after['squall_connections{transport="msg"}'] == 1
        ):
            await asyncio.sleep(0.1)
            after = scrape(server)
    finally:
        stalled.close()
        stream.close()
        await plain.close()
        for socket in chat:
            await socket.close()
    delta = lambda name: after.get(name, 0) - before.get(name, 0)  # noqa: E731
    assert delta("squall_delivered_bytes_total") >= 2 * 5 + 17 * 65536, "the stalled client's overflowing outbox took 17"
    assert delta('squall_disconnections_total{cause="slow_consumer"}') == 1
    assert delta('squall_disconnections_total{cause="client_close"}') == 1
    assert after['squall_connections{transport="msg"}'] == 1
