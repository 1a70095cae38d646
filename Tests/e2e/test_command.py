# SPDX-License-Identifier: Apache-2.0
"""`squall serve` as a user runs it: signals, log levels, environment variables."""
import asyncio
import datetime
import email.utils
import json
import re
import signal
import subprocess
import time
import urllib.request

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from conftest import Squall, free_port, squall_binary
from test_chat import wait_for_connections

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]
# Where the version is defined, once.
VERSION = re.search(r'public let version = "([^"]+)"', (ROOT / "Sources/Squall/Version.swift").read_text()).group(1)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
async def test_signal_closes_websockets_with_1001_and_exits_0(squall, sig):
    server = squall()
    async with connect(f"{server.ws}/msg") as client:
        await wait_for_connections(server, 1)
        server.process.send_signal(sig)
        try:
            await asyncio.wait_for(client.recv(), 5)
            raise AssertionError("expected the server to close the connection")
        except ConnectionClosed as closed:
            assert closed.rcvd is not None
            assert (closed.rcvd.code, closed.rcvd.reason) == (1001, "server shutting down")
    code, log = await asyncio.to_thread(server.stop, sig, 5)
    assert code == 0, log


async def test_http_responses_carry_date_and_server(squall):
    # RFC 9110 §6.6.1: an origin server with a clock sends Date; Server names the software.
    server = squall()
    with urllib.request.urlopen(f"{server.http}/healthz", timeout=5) as response:
        date, name = response.headers["Date"], response.headers["Server"]
    assert re.fullmatch(r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT", date), date
    sent = email.utils.parsedate_to_datetime(date)
    assert abs((datetime.datetime.now(datetime.timezone.utc) - sent).total_seconds()) < 5, date
    assert name == f"Squall/{VERSION}"


def test_server_header_off_leaves_the_server_unnamed(squall):
    server = squall("--server-header", "off")
    with urllib.request.urlopen(f"{server.http}/healthz", timeout=5) as response:
        assert "Server" not in response.headers
        assert json.load(response)["version"] == VERSION, "the version stays where operators ask for it"


def test_version_is_one_string_from_the_command_line_to_the_log_and_the_health_checks(squall):
    flag = subprocess.run([squall_binary(), "--version"], capture_output=True, text=True, timeout=20)
    command = subprocess.run([squall_binary(), "version"], capture_output=True, text=True, timeout=20)
    assert flag.returncode == 0 and command.returncode == 0, flag.stderr + command.stderr
    swift = re.fullmatch(rf"{re.escape(VERSION)} \(Swift (\d+\.\d+)\)\n", flag.stdout)
    assert swift, flag.stdout
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert command.stdout.splitlines()[0] == f"squall {VERSION}"
    # Built from this checkout (scripts/test builds before it tests): its commit, -dirty with edits.
    assert re.fullmatch(rf"commit {head}(-dirty)?", command.stdout.splitlines()[1]), (head, command.stdout)
    assert command.stdout.splitlines()[2] == f"swift {swift[1]}"
    server = squall("--log-level", "notice")
    for path in ("/healthz", "/readyz"):
        with urllib.request.urlopen(f"{server.http}{path}", timeout=5) as response:
            assert json.load(response)["version"] == VERSION, path
    _, log = server.stop()
    assert log.splitlines()[0].endswith(f"Squall {VERSION} (Swift {swift[1]}) starting"), log


async def test_shutdown_closes_idle_http_keep_alive_connections(squall):
    # An idle keep-alive connection must not hold shutdown up: the server closes it (after the
    # response it was serving, had there been one) and exits.
    server = squall()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200"), head
    length = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))
    await asyncio.wait_for(reader.readexactly(length), 5)
    server.process.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(reader.read(), 5) == b"", "the server closes the idle connection"
    writer.close()
    code, log = await asyncio.to_thread(server.stop, signal.SIGTERM, 5)
    assert code == 0, log


async def chat_once(server):
    async with connect(f"{server.ws}/msg") as client:
        await client.send("ping")
        assert await asyncio.wait_for(client.recv(), 5) == "ping"
    urllib.request.urlopen(f"{server.http}/healthz", timeout=2).read()


async def test_default_level_logs_access_lines_and_connections(squall):
    server = squall()
    await chat_once(server)
    code, log = server.stop()
    assert code == 0
    assert re.search(r"101 GET /msg \(127\.0\.0\.1\) \d+\.\d\dms", log), log
    assert re.search(r"200 GET /healthz \(127\.0\.0\.1\) \d+\.\d\dms", log), log
    opened = re.search(r"squall\.connection=([0-9A-F-]{36}).*WebSocket open", log)
    assert opened, log
    assert re.search(rf"squall\.connection={opened.group(1)}.*WebSocket closed", log), log
    assert "WebSocket message" not in log, "messages are logged at debug only"


async def test_debug_level_logs_each_message(squall):
    server = squall("--log-level", "debug")
    await chat_once(server)
    _, log = server.stop()
    assert re.search(r"bytes=4 .*kind=text .*WebSocket message", log), log


async def test_error_level_hides_info_lines(squall):
    server = squall("--log-level", "error")
    await chat_once(server)
    code, log = server.stop()
    assert code == 0
    assert " GET " not in log and "WebSocket open" not in log and "listening" not in log, log


async def test_options_come_from_the_environment(squall):
    port = free_port()
    server = squall(env={"SQUALL_PORT": str(port), "SQUALL_MAX_MESSAGE_SIZE": "1KiB", "SQUALL_LOG_LEVEL": "warning"})
    assert server.port == port
    async with connect(f"ws://127.0.0.1:{port}/msg") as client:
        await client.send("y" * 2000)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(client.recv(), 5)
        assert closed.value.rcvd.code == 1009
    _, log = server.stop()
    assert "101 GET /msg" not in log, "SQUALL_LOG_LEVEL=warning hides info lines"


async def test_command_line_wins_over_the_environment(squall):
    port = free_port()
    server = squall("--port", str(port), env={"SQUALL_PORT": "not-a-port"})
    await chat_once(server)
    assert server.stop()[0] == 0


def test_invalid_environment_value_is_a_clear_error():
    server = Squall([], {"SQUALL_PORT": "not-a-port"})
    _, log = server.exited()
    assert server.process.returncode != 0
    assert 'port "not-a-port" (environment SQUALL_PORT)' in log, log


@pytest.mark.parametrize("args", [["--outbox-messages", "0"], ["--retention-messages", "0"], ["--retention-age", "0"], ["--port", "70000"], ["--deflate-min-size", "lots"]])
def test_out_of_range_option_is_a_usage_error_not_a_crash(args):
    server = Squall(args, {})
    _, log = server.exited()
    assert server.process.returncode == 64, log
    assert log.startswith("Error: "), log


async def test_retention_option_bounds_history(squall):
    server = squall("--retention-messages", "2")
    for text in ["one", "two", "three"]:
        request = urllib.request.Request(f"{server.http}/channels/kept/messages", data=text.encode(), method="POST")
        urllib.request.urlopen(request, timeout=5).read()
    with urllib.request.urlopen(f"{server.http}/channels/kept/history", timeout=5) as response:
        import json
        assert [m["data"] for m in json.load(response)["messages"]] == ["two", "three"]


def test_healthz_keys_come_in_the_order_docs_protocol_md_shows(squall):
    server = squall()
    with urllib.request.urlopen(f"{server.http}/healthz", timeout=5) as response:
        body = response.read().decode()
    assert body == f'{{"channels":0,"connections":0,"status":"ok","version":"{VERSION}","waiting_polls":0}}', body


def test_squall_token_mints_a_token_the_server_accepts_with_the_claims_asked_for(squall):
    import jwt

    secret = "command-test-secret-of-at-least-32-bytes"
    minted = subprocess.run(
        [squall_binary(), "token", "--sub", "alice", "--subscribe", "chat:*", "--publish", "chat:lobby", "--info", '{"name":"Alice"}',
         "--ttl", "5m", "--jwt-secret", secret],
        capture_output=True, text=True, timeout=20)
    assert minted.returncode == 0, minted.stderr
    token = minted.stdout.strip()
    claims = jwt.decode(token, secret, algorithms=["HS256"])
    assert claims["sub"] == "alice" and claims["subscribe"] == ["chat:*"] and claims["publish"] == ["chat:lobby"]
    assert claims["info"] == {"name": "Alice"}
    assert 290 <= claims["exp"] - time.time() <= 300
    server = squall("--auth", "required", "--jwt-secret", secret)
    request = urllib.request.Request(f"{server.http}/channels/chat:lobby/history", headers={"Authorization": f"Bearer {token}"})
    assert urllib.request.urlopen(request, timeout=5).status == 200
    # Without a secret there is nothing to sign with: a usage error, not a token.
    refused = subprocess.run([squall_binary(), "token", "--sub", "alice"], capture_output=True, text=True, timeout=20, env={"PATH": "/usr/bin:/bin"})
    assert refused.returncode == 64 and "signs with a secret" in refused.stderr


async def test_squall_api_drives_a_running_server_with_the_configured_key(squall, tmp_path):
    config = tmp_path / "squall.yaml"
    config.write_text("api-key: [operator-key]\n")
    server = squall("--config", str(config), "--log-level", "error")

    def api(*args, input=None):
        return subprocess.run([squall_binary(), "api", *args, "--config", str(config), "--port", str(server.port)],
                              capture_output=True, text=True, timeout=20, input=input)

    async with connect(f"{server.ws}/msg/news", open_timeout=5) as listener:
        published = api("publish", "news", "from the operator", "--idempotency-key", "op-1")
        assert published.returncode == 0, published.stderr
        assert json.loads(published.stdout)["offset"] == 1
        assert await asyncio.wait_for(listener.recv(), 5) == "from the operator"
        channels = api("channels", "n*")
        assert json.loads(channels.stdout) == {"channels": [{"channel": "news", "subscribers": 1}]}
    history = json.loads(api("history", "news", "--limit", "5").stdout)
    assert [m["data"] for m in history["messages"]] == ["from the operator"]
    batch = api("batch", "-", input=json.dumps([{"method": "publish", "params": {"channel": "news", "data": "second"}}]))
    assert json.loads(batch.stdout)["replies"][0]["result"]["offset"] == 2
    assert json.loads(api("info").stdout)["nodes"][0]["messages"] == 2
    # A refusal is the server's JSON error on stderr and exit 1; no key at all is a usage error.
    refused = api("disconnect", "alice", "--code", "1000")
    assert refused.returncode == 1 and "invalid_parameter" in refused.stderr
    nokey = subprocess.run([squall_binary(), "api", "info", "--port", str(server.port)], capture_output=True, text=True, timeout=20,
                           env={"PATH": "/usr/bin:/bin"})
    assert nokey.returncode == 64 and "no API key" in nokey.stderr
