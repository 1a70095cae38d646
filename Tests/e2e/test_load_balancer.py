# SPDX-License-Identifier: Apache-2.0
"""Debian's nginx, round-robin with no stickiness, in front of two nodes on one PostgreSQL: two
squall.js clients in Chromium — one on WebSocket, one forced to long polling — chat through it
while one node is killed and started again. Neither loses nor repeats a message. The nginx
configuration is the one docs/scaling.md gives."""
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from conftest import free_port
from test_browser import page_url, say, shown, wait_connected, wait_until

DATABASE = os.environ.get("SQUALL_TEST_POSTGRES")
NGINX = "/usr/sbin/nginx"

pytestmark = pytest.mark.skipif(
    not DATABASE or not os.path.exists(NGINX),
    reason="needs SQUALL_TEST_POSTGRES (scripts/postgres) and Debian's nginx")


def nginx_config(directory: Path, port: int, upstreams) -> str:
    """docs/scaling.md's configuration, with the paths a test's own nginx needs."""
    servers = "\n".join(f"        server 127.0.0.1:{upstream} max_fails=1 fail_timeout=2s;" for upstream in upstreams)
    user = "user root;\n" if os.geteuid() == 0 else ""
    return f"""{user}worker_processes 1;
daemon off;
pid {directory}/nginx.pid;
error_log {directory}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {directory}/body;
    proxy_temp_path {directory}/proxy;
    fastcgi_temp_path {directory}/fastcgi;
    uwsgi_temp_path {directory}/uwsgi;
    scgi_temp_path {directory}/scgi;

    upstream squall {{
{servers}
    }}
    map $http_upgrade $connection_upgrade {{
        default upgrade;
        ''      '';
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://squall;
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_buffering off;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
        }}
    }}
}}
"""


@pytest.fixture
def nginx(tmp_path):
    started = []

    def start(upstreams):
        port = free_port()
        config = tmp_path / "nginx.conf"
        config.write_text(nginx_config(tmp_path, port, upstreams))
        process = subprocess.Popen([NGINX, "-c", str(config), "-p", str(tmp_path)], stderr=subprocess.PIPE, text=True)
        started.append(process)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                import socket
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return f"http://127.0.0.1:{port}"
            except OSError:
                assert process.poll() is None, process.stderr.read()
                time.sleep(0.05)
        raise AssertionError("nginx did not start")

    yield start
    for process in started:
        process.send_signal(signal.SIGQUIT)
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()


def test_two_browsers_chat_through_nginx_while_a_node_is_killed_and_restarted(squall, browser, nginx):
    ports = [free_port(), free_port()]
    node = {port: squall("--port", str(port), "--store", DATABASE, "--log-level", "error", "--trusted-proxy", "127.0.0.1") for port in ports}
    balancer = nginx(ports)
    room = f"lb-{uuid.uuid4().hex[:8]}"
    ws_page = browser(page_url(balancer, transport="websocket", nick="ws", room=room))
    poll_page = browser(page_url(balancer, transport="longpoll", nick="lp", room=room))
    wait_connected(ws_page, "websocket")
    wait_connected(poll_page, "longpoll")
    expected = []

    def chat(page, nick, text):
        wait_connected(page, "websocket" if nick == "ws" else "longpoll", timeout=30)
        say(page, text)
        expected.append((nick, text))
        for each in (ws_page, poll_page):
            wait_until(each, lambda d: [m for m in shown(d) if m == (nick, text)], 30, f"{text!r} not shown")

    for n in range(3):
        chat(ws_page, "ws", f"before {n}")
        chat(poll_page, "lp", f"before poll {n}")

    node[ports[0]].stop(signal.SIGKILL)
    for n in range(3):
        chat(ws_page, "ws", f"one node {n}")
        chat(poll_page, "lp", f"one node poll {n}")

    node[ports[0]] = squall("--port", str(ports[0]), "--store", DATABASE, "--log-level", "error", "--trusted-proxy", "127.0.0.1")
    node[ports[1]].stop(signal.SIGKILL)
    for n in range(3):
        chat(ws_page, "ws", f"other node {n}")
        chat(poll_page, "lp", f"other node poll {n}")

    # Every message once, in one order, on both pages; no reload was needed.
    for page in (ws_page, poll_page):
        wait_until(page, lambda d: len(shown(d)) >= len(expected), 30)
        assert sorted(shown(page)) == sorted(expected)
    assert shown(ws_page) == shown(poll_page)


def test_behind_nginx_each_client_is_itself_for_rates_and_the_access_log(squall, nginx):
    # Before --trusted-proxy, every publisher behind the same-host nginx shared its address, and
    # one rate bucket.
    import http.client

    port = free_port()
    node = squall("--port", str(port), "--store", DATABASE, "--trusted-proxy", "127.0.0.1", "--publish-rate", "1/min", "--publish-burst", "1")
    balancer = int(nginx([port]).rsplit(":", 1)[1])
    room = f"rates-{uuid.uuid4().hex[:8]}"

    def publish(source, headers=None):
        connection = http.client.HTTPConnection("127.0.0.1", balancer, timeout=10, source_address=(source, 0))
        connection.request("POST", f"/channels/{room}/messages", body=b"m", headers=headers or {})
        status = connection.getresponse().status
        connection.close()
        return status

    assert [publish("127.0.0.2"), publish("127.0.0.2")] == [201, 429]
    # Headers a client writes itself choose nothing: nginx appends to X-Forwarded-For and passes
    # a Forwarded header on untouched, and the node reads only the address nginx wrote.
    for spoof in [{"Forwarded": "for=198.51.100.7"}, {"X-Forwarded-For": "198.51.100.8"}]:
        assert publish("127.0.0.2", spoof) == 429, f"{spoof} gave the client a fresh bucket"
    assert publish("127.0.0.3") == 201, "another client behind the same proxy has a bucket of its own"
    _, log = node.stop()
    assert f"POST /channels/{room}/messages (127.0.0.3)" in log
    assert "198.51.100" not in log
