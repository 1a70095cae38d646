# SPDX-License-Identifier: Apache-2.0
"""Configuration from four sources (flag > SQUALL_* > --config file > default), `squall config
check` and `config defaults`, and reloading a running server (SIGHUP, --config-watch) without
closing its clients."""
import asyncio
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from conftest import Squall, free_port, squall_binary
from test_namespaces import SECRET, WS, closed_with, history_data, http, is_error, publish, refused_upgrade, refusal, token, upgrade_error

APP = "http://app.example:3000"
OTHER_SECRET = "the-next-secret-of-at-least-32-bytes!!"


def clean_environment(extra=None):
    """This process's environment without SQUALL_* options (the runner's own SQUALL_BIN aside),
    plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SQUALL_") or k == "SQUALL_BIN"}
    return {**env, **(extra or {})}


def squall_command(*args, env=None):
    """Runs `squall ARGS` to its end: (exit code, stdout, stderr)."""
    done = subprocess.run([squall_binary(), *args], env=clean_environment(env), capture_output=True, text=True, timeout=15)
    return done.returncode, done.stdout, done.stderr


def checked(output):
    """`config check`'s lines as {key: (value, source)}."""
    rows = {}
    for line in output.splitlines():
        match = re.fullmatch(r"(\S+)\s+(.*?)\s+\((.*)\)", line)
        if match:
            rows[match.group(1)] = (match.group(2), match.group(3))
    return rows


@pytest.fixture
def config_file(tmp_path):
    """Writes a configuration file (YAML unless the name says .json) and returns its path."""

    def write(text, name="squall.yaml"):
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write


@pytest.fixture
def serve():
    """Starts `squall serve ARGS` with no --port added: the port is the one its sources name
    (`port`). Every process is killed after the test."""
    started = []

    def start(*args, port, env=None, ready=True):
        server = Squall.__new__(Squall)
        server.args = [squall_binary(), "serve", *args]
        server.tls, server.port, server.output = False, port, None
        server.log = tempfile.TemporaryFile(mode="w+")
        server.process = subprocess.Popen(
            server.args, env=clean_environment(env), stdout=subprocess.DEVNULL, stderr=server.log, text=True
        )
        started.append(server)
        return server.wait_ready() if ready else server

    yield start
    for server in started:
        server.stop(signal.SIGKILL)


def log_of(server):
    """What the server has logged so far (read without moving the file offset it writes at)."""
    fd, chunks, offset = server.log.fileno(), [], 0
    while chunk := os.pread(fd, 1 << 20, offset):
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks).decode(errors="replace")


async def logged(server, pattern, since=0, timeout=5.0):
    """Waits until the log, after offset `since`, matches `pattern`; returns that part."""
    deadline = time.monotonic() + timeout
    while True:
        text = log_of(server)[since:]
        if re.search(pattern, text):
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"no {pattern!r} in the log within {timeout} s:\n{text}")
        await asyncio.sleep(0.05)


async def reload(server, path, text, expect):
    """Rewrites the configuration file (`None` deletes it), sends SIGHUP and waits for the log
    line `expect`; returns what the reload logged."""
    mark = len(log_of(server))
    if text is None:
        os.unlink(path)
    else:
        Path(path).write_text(text)
    server.process.send_signal(signal.SIGHUP)
    return await logged(server, expect, since=mark)


def listening(port):
    """Whether something accepts connections on 127.0.0.1:`port`."""
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Bystanders:
    """A /ws client and a /msg client connected across a reload, which must neither be closed
    nor stop working."""

    @classmethod
    async def connect(cls, server, channel="bystanders"):
        self = cls()
        self.channel = channel
        self.ws = await WS.open(server)
        assert (await self.ws.ask("subscribe", channel=channel))["type"] == "subscribed"
        self.msg = await connect(f"{server.ws}/msg/{channel}", open_timeout=5)
        return self

    async def still_work(self, note):
        assert (await self.ws.ask("ping"))["type"] == "pong"
        await self.msg.send(note)
        assert await asyncio.wait_for(self.msg.recv(), 5) == note
        assert (await self.ws.event("message"))["data"] == note

    async def close(self):
        await self.ws.close()
        await self.msg.close()


# --- sources and their precedence -----------------------------------------------------------


def test_config_check_shows_each_options_winner_and_its_source(config_file):
    path = config_file("port: 8101\nmax-message-size: 1KiB\nping-interval: 5m\nlog-level: warning\n")
    env = {"SQUALL_PORT": "8102", "SQUALL_MAX_MESSAGE_SIZE": "2KiB"}
    code, out, err = squall_command("config", "check", "--config", path, "--port", "8103", env=env)
    assert code == 0, err
    rows = checked(out)
    assert rows["port"] == ("8103", "flag --port")
    assert rows["max-message-size"] == ("2KiB", "environment SQUALL_MAX_MESSAGE_SIZE")
    assert rows["ping-interval"] == ("5m", f"{path}:3")
    assert rows["log-level"] == ("warning", f"{path}:4")
    assert rows["idle-timeout"] == ("60s", "default")
    assert rows["publish-rate"] == ("1000/s", "default, reloads live")
    assert out.rstrip().endswith("configuration OK")
    # Without the flag the environment wins; without both, the file; without the file, the default.
    assert checked(squall_command("config", "check", "--config", path, env=env)[1])["port"] == ("8102", "environment SQUALL_PORT")
    assert checked(squall_command("config", "check", "--config", path)[1])["port"] == ("8101", f"{path}:1")
    assert checked(squall_command("config", "check")[1])["port"] == ("8000", "default")
    # SQUALL_CONFIG names the file as --config does.
    rows = checked(squall_command("config", "check", env={"SQUALL_CONFIG": path})[1])
    assert rows["log-level"] == ("warning", f"{path}:4")


@pytest.mark.parametrize("winner", ["file", "environment", "flag"])
async def test_a_server_listens_on_the_port_the_winning_source_names(config_file, serve, winner):
    ports = {source: free_port() for source in ("file", "environment", "flag")}
    path = config_file(f"port: {ports['file']}\nlog-level: error\n")
    env = {"SQUALL_PORT": str(ports["environment"])} if winner in ("environment", "flag") else {}
    flags = ["--port", str(ports["flag"])] if winner == "flag" else []
    server = serve("--config", path, *flags, port=ports[winner], env=env)
    async with connect(f"{server.ws}/msg", open_timeout=5) as client:
        await client.send("here")
        assert await asyncio.wait_for(client.recv(), 5) == "here"
    assert [source for source, port in ports.items() if listening(port)] == [winner]


async def test_a_json_file_configures_a_server(config_file, squall):
    path = config_file(
        '{\n  "max-message-size": "1KiB",\n  "allowed-origin": ["%s"],\n  "log-level": "error",\n'
        '  "namespaces": {\n    "chat": {"publish": "none"}\n  }\n}\n' % APP,
        name="squall.json",
    )
    code, out, err = squall_command("config", "check", "--config", path)
    assert code == 0, err
    rows = checked(out)
    assert rows["max-message-size"] == ("1KiB", f"{path}:2")
    assert rows["allowed-origin"] == (APP, f"{path}:3, reloads live")
    assert rows["namespaces.chat.publish"] == ("none", f"{path}:6, reloads live")
    server = squall("--config", path)
    assert refusal(*publish(server, "chat:x", "hi")) == (403, "permission_denied")
    assert publish(server, "chatx", "hi")[0] == 201
    async with connect(f"{server.ws}/msg", origin=APP, open_timeout=5, max_size=None) as client:
        await client.send("k" * 1024)
        assert await asyncio.wait_for(client.recv(), 5) == "k" * 1024, "1KiB is 1024 bytes"
        await client.send("k" * 1025)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(client.recv(), 5)
        assert closed.value.rcvd.code == 1009
    # The name decides the format: YAML in a .json file is an error, not read as YAML.
    yaml_in_json = config_file("port: 8001\n", name="yaml.json")
    code, _, err = squall_command("config", "check", "--config", yaml_in_json)
    assert code != 0 and err.startswith("Error: ") and "yaml.json" in err, err


def test_durations_and_sizes_take_every_documented_form(config_file):
    path = config_file(
        "ping-interval: 30\nclose-timeout: 30s\nidle-timeout: 5m\nretention-age: 1h\n"
        "max-message-size: 65536\noutbox-bytes: 64KiB\nretention-bytes: 1MiB\n"
        "namespaces:\n  a:\n    history-age: 5m\n    history-bytes: 64KiB\n    max-message-size: 1024\n"
    )
    code, out, err = squall_command("config", "check", "--config", path)
    assert code == 0, err
    rows = checked(out)
    expected = {
        "ping-interval": "30", "close-timeout": "30s", "idle-timeout": "5m", "retention-age": "1h",
        "max-message-size": "65536", "outbox-bytes": "64KiB", "retention-bytes": "1MiB",
        "namespaces.a.history-age": "5m", "namespaces.a.history-bytes": "64KiB", "namespaces.a.max-message-size": "1024",
    }
    assert {key: rows[key][0] for key in expected} == expected
    for flag, value in [("--sse-heartbeat", "1h"), ("--write-timeout", "90"), ("--outbox-bytes", "1MiB"), ("--max-reply-bytes", "4096")]:
        code, out, err = squall_command("config", "check", flag, value)
        assert code == 0, err
        assert checked(out)[flag[2:]] == (value, f"flag {flag}")


@pytest.mark.parametrize(
    "text, error",
    [
        ("port: 8001\nbogus: 1\n", r'bogus "bogus" \(PATH:2\): is not an option'),
        ("port: 8001\nping-interval: 5 minutes\n", r'ping-interval "5 minutes" \(PATH:2\): is not a duration'),
        ("log-level: info\nmax-message-size: 64KB\n", r'max-message-size "64KB" \(PATH:2\): is not a size'),
        ("log-level: info\nport: x\n", r'port "x" \(PATH:2\): is not a whole number from 0 to 65535'),
        ("log-level: info\nport: [8001, 8002]\n", r"port \(PATH:2\): must be a single value \(N\), not a list or a mapping"),
        ("log-level: info\nport: {number: 8001}\n", r"port \(PATH:2\): must be a single value \(N\), not a list or a mapping"),
        ("port:\n  number: 8001\n", r"port \(PATH:\d\): must be a single value \(N\), not a list or a mapping"),
        ("namespaces:\n  chat:\n    publish: sometimes\n",
         r'namespaces\.chat\.publish "sometimes" \(PATH:3\): is not one of anyone, authenticated, subscribers, none'),
        ("namespaces:\n  chat:\n    colour: red\n", r'namespaces\.chat\.colour "red" \(PATH:3\): is not a namespace option'),
        ("namespaces:\n  chat:\n    history-size: 0\n", r'namespaces\.chat\.history-size "0" \(PATH:3\)'),
        ("auth:\n  mode: optional\n  secret: x\n", r'auth\.secret "x" \(PATH:3\): is not an auth option'),
        ("default-namespace:\n  presence: maybe\n", r'default-namespace\.presence "maybe" \(PATH:2\): is not true or false'),
    ],
    ids=["unknown-key", "bad-duration", "bad-size", "bad-number", "list", "flow-mapping", "block-mapping",
         "bad-access", "unknown-namespace-option", "zero-history", "unknown-auth-key", "bad-boolean"],
)
def test_a_bad_file_is_an_error_naming_the_key_the_value_and_the_line(config_file, text, error):
    path = config_file(text)
    code, out, err = squall_command("config", "check", "--config", path)
    assert code == 64, (code, out, err)
    assert "configuration OK" not in out
    assert err.startswith("Error: "), err
    assert re.search(error.replace("PATH", re.escape(path)), err.splitlines()[0]), err


def test_bad_values_in_the_environment_and_flags_name_their_source(config_file):
    code, _, err = squall_command("config", "check", env={"SQUALL_PORT": "x"})
    assert code == 64 and err.startswith('Error: port "x" (environment SQUALL_PORT): is not a whole number from 0 to 65535'), err
    code, _, err = squall_command("config", "check", "--publish-rate", "fast")
    assert code == 64 and err.startswith('Error: publish-rate "fast" (flag --publish-rate): is not a rate'), err
    # A flag's good value does not excuse the file's bad one: every source is checked.
    path = config_file("port: 8001\nbogus: 1\n")
    code, _, err = squall_command("config", "check", "--config", path, "--port", "8002")
    assert code == 64 and f'bogus "bogus" ({path}:2)' in err, err


def test_config_check_and_its_errors_never_print_a_secret(config_file):
    code, out, err = squall_command("config", "check", "--jwt-secret", SECRET, "--store", "postgres://squall:hunter2@127.0.0.1/db")
    assert code == 0, err
    rows = checked(out)
    assert rows["jwt-secret"] == ("<secret>", "flag --jwt-secret, reloads live")
    assert SECRET not in out and "hunter2" not in out and rows["store"][0] == "postgres://squall:<secret>@127.0.0.1/db"
    path = config_file("auth:\n  jwt-secret: tooshort-but-private\n")
    code, out, err = squall_command("config", "check", "--config", path)
    assert code == 64 and f"jwt-secret \"<secret>\" ({path}:2)" in err, err
    assert "tooshort-but-private" not in err + out


def test_a_file_of_comments_only_is_an_empty_configuration(config_file):
    for text in ["", "# every option at its default\n# port: 8000\n"]:
        path = config_file(text)
        code, out, err = squall_command("config", "check", "--config", path)
        assert code == 0, err
        assert checked(out)["port"] == ("8000", "default")


def test_serve_refuses_to_start_with_a_bad_file(config_file, serve):
    path = config_file("log-level: error\nnamespaces:\n  chat:\n    publish: sometimes\n")
    port = free_port()
    server = serve("--config", path, "--port", str(port), port=port, ready=False)
    code, log = server.exited(timeout=10)
    assert code == 64, log
    assert f'namespaces.chat.publish "sometimes" ({path}:4)' in log, log
    assert not listening(port)


def test_config_defaults_is_a_complete_file_config_check_accepts_unchanged(config_file):
    code, defaults, err = squall_command("config", "defaults")
    assert code == 0, err
    path = config_file(defaults)
    code, out, err = squall_command("config", "check", "--config", path)
    assert code == 0, err
    assert out.rstrip().endswith("configuration OK")
    from_file = checked(out)
    built_in = checked(squall_command("config", "check")[1])
    # The same value for every option as with no file at all; set in the file where it has one.
    assert {key: value for key, (value, _) in built_in.items()} == {
        key: value for key, (value, _) in from_file.items() if not key.startswith("default-namespace.")
    }
    from_the_file = [key for key, (_, source) in from_file.items() if source.startswith(f"{path}:")]
    assert {"port", "max-message-size", "publish-rate", "allowed-origin", "auth", "jwt-leeway"} <= set(from_the_file)
    # The namespace's bounds are left to follow the server's (commented out); its rules are set.
    assert {k.split(".")[1] for k in from_the_file if k.startswith("default-namespace.")} == {
        "presence", "join-leave", "subscribe", "publish", "history", "presence-read", "private", "publish-rate",
    }
    assert "# history-size:" in defaults and "# max-message-size: SIZE" in defaults


async def test_config_defaults_serves(config_file, squall):
    _, defaults, _ = squall_command("config", "defaults")
    server = squall("--config", config_file(defaults), "--log-level", "error")
    assert publish(server, "plain", "hello")[0] == 201
    assert history_data(server, "plain") == ["hello"]


# --- reloading ----------------------------------------------------------------------------


async def test_sighup_admits_an_origin_refused_before(config_file, serve):
    port = free_port()
    path = config_file(f"port: {port}\n")
    server = serve("--config", path, port=port)
    clients = await Bystanders.connect(server)
    assert upgrade_error(await refused_upgrade(f"{server.ws}/ws", origin=APP)) == (403, "origin_not_allowed")
    assert refusal(*publish(server, "page", "x", headers={"Origin": APP})) == (403, "origin_not_allowed")
    log = await reload(server, path, f"port: {port}\nallowed-origin: [{APP}]\n", r"reloaded allowed-origin")
    assert f"reloaded allowed-origin: none -> {APP}" in log, log
    async with connect(f"{server.ws}/msg", origin=APP, open_timeout=5):
        pass
    assert publish(server, "page", "x", headers={"Origin": APP})[0] == 201
    await clients.still_work("after the origin reload")
    await clients.close()


async def test_sighup_changes_the_publish_and_subscribe_rates(config_file, serve):
    port = free_port()
    path = config_file(f"port: {port}\n")
    server = serve("--config", path, port=port)
    clients = await Bystanders.connect(server)
    for n in range(5):
        assert (await clients.ws.ask("publish", channel="rated", data=str(n)))["type"] == "published"
    text = f"port: {port}\npublish-rate: 1/min\npublish-burst: 2\nsubscribe-rate: 1/min\nsubscribe-burst: 1\n"
    log = await reload(server, path, text, r"reloaded subscribe-rate")
    for line in ["reloaded publish-rate: 1000/s -> 1/min", "reloaded publish-burst: 10 s of the rate -> 2",
                 "reloaded subscribe-rate: 100/s -> 1/min", "reloaded subscribe-burst: 10 s of the rate -> 1"]:
        assert line in log, log
    # The connection made before the reload is held to the new rate at its next publish.
    replies = [await clients.ws.ask("publish", channel="rated", data=f"after {n}") for n in range(3)]
    assert [r["type"] for r in replies] == ["published", "published", "error"], replies
    assert is_error(replies[2], "rate_limited")
    statuses = [publish(server, "rated", f"http {n}")[0] for n in range(3)]
    assert statuses == [201, 201, 429]
    fresh = await WS.open(server)
    assert (await fresh.ask("subscribe", channel="one"))["type"] == "subscribed"
    assert is_error(await fresh.ask("subscribe", channel="two"), "rate_limited")
    await fresh.close()
    await clients.still_work("after the rate reload")
    await clients.close()


async def test_sighup_changes_namespace_rules(config_file, serve):
    port = free_port()
    path = config_file(f"port: {port}\nnamespaces:\n  chat:\n    publish: anyone\n    history-size: 3\n")
    server = serve("--config", path, port=port)
    clients = await Bystanders.connect(server, "chat:bystanders")
    assert (await clients.ws.ask("publish", channel="chat:elsewhere", data="before"))["type"] == "published"
    assert publish(server, "chat:http", "before")[0] == 201
    text = (
        f"port: {port}\ndefault-namespace:\n  publish: authenticated\n"
        "namespaces:\n  chat:\n    publish: subscribers\n    history-size: 2\n  news:\n    publish: none\n"
    )
    log = await reload(server, path, text, r"reloaded namespaces\.news\.publish")
    for line in ["reloaded namespaces.chat.publish: anyone -> subscribers", "reloaded namespaces.chat.history-size: 3 -> 2",
                 "reloaded namespaces.news.publish: default -> none"]:
        assert line in log, log
    # The file had not set it: its old value was the default.
    assert "reloaded default-namespace.publish: default -> authenticated" in log, log
    # The /ws client connected before: its next publish follows the new rule.
    reply = await clients.ws.ask("publish", channel="chat:elsewhere", data="after")
    assert is_error(reply) and "(publish: subscribers)" in reply["message"], reply
    status, body = publish(server, "chat:http", "after")
    assert refusal(status, body) == (403, "permission_denied")
    assert refusal(*publish(server, "news:x", "after")) == (403, "permission_denied")
    assert refusal(*publish(server, "plain", "after")) == (403, "permission_denied")
    # A channel whose log opens now keeps the new history size.
    async with connect(f"{server.ws}/msg/chat:fresh", open_timeout=5) as socket:
        for n in range(4):
            await socket.send(f"f{n}")
            assert await asyncio.wait_for(socket.recv(), 5) == f"f{n}"
    assert history_data(server, "chat:fresh") == ["f2", "f3"]
    # Subscribed on the same connection, it still publishes; so does the /msg client.
    await clients.still_work("after the namespace reload")
    await clients.close()


async def test_sighup_loads_new_token_keys_and_auth_mode(config_file, serve):
    port = free_port()
    base = f"port: {port}\nnamespaces:\n  members:\n    subscribe: authenticated\n"
    path = config_file(base + f"auth:\n  jwt-secret: {SECRET}\n")
    server = serve("--config", path, port=port)
    clients = await Bystanders.connect(server)
    old, new = token(sub="old"), token(OTHER_SECRET, sub="new")
    member = await WS.open(server, token=old)
    assert (await member.ask("subscribe", channel="members:a"))["type"] == "subscribed"
    assert upgrade_error(await refused_upgrade(f"{server.ws}/ws?token={new}")) == (401, "unauthorized")
    assert http(server, "/channels/members:a/messages?wait=0", bearer=new)[0] == 401

    log = await reload(server, path, base + f"auth:\n  mode: required\n  jwt-secret: {OTHER_SECRET}\n", r"reloaded auth:")
    assert "reloaded auth: optional -> required" in log, log
    newcomer = await WS.open(server, token=new)
    assert (await newcomer.ask("subscribe", channel="members:a"))["type"] == "subscribed"
    assert http(server, "/channels/members:a/messages?wait=0", bearer=new)[0] == 200
    assert http(server, "/channels/members:a/messages?wait=0", bearer=old)[0] == 401
    status, _, body = http(server, "/channels/plain/history")
    assert refusal(status, body) == (401, "unauthorized"), "auth: required, and this request has no token"
    # Connections made before the reload, the old token's and the anonymous ones, stay open.
    publish(server, "members:a", "to both", bearer=new)
    assert (await member.event("message"))["data"] == "to both"
    assert (await newcomer.event("message"))["data"] == "to both"
    await clients.still_work("after the auth reload")
    await member.close()
    await newcomer.close()
    await clients.close()


async def test_a_reload_that_changes_only_the_secret_logs_it(config_file, serve):
    port = free_port()
    path = config_file(f"port: {port}\nauth:\n  jwt-secret: {SECRET}\n")
    server = serve("--config", path, port=port)
    log = await reload(server, path, f"port: {port}\nauth:\n  jwt-secret: {OTHER_SECRET}\n", r"configuration reload|reloaded ")
    assert http(server, "/channels/a/history", bearer=token(OTHER_SECRET, sub="u"))[0] == 200, "the new secret is in force"
    # The secret is never printed: its change is told as the keys'.
    assert "reloaded the keys that verify tokens" in log, log
    assert "nothing changed" not in log, log


async def test_a_port_change_is_warned_about_and_kept_until_a_restart(config_file, serve):
    port, other = free_port(), free_port()
    path = config_file(f"port: {port}\n")
    server = serve("--config", path, port=port)
    clients = await Bystanders.connect(server)
    log = await reload(server, path, f"port: {other}\nallowed-origin: [{APP}]\n", r"reloaded allowed-origin")
    assert re.search(rf"warning .*port cannot change while running; it keeps {port} until a restart", log), log
    assert "reloaded port" not in log
    assert listening(port) and not listening(other)
    assert publish(server, "still", "here", headers={"Origin": APP})[0] == 201, "the live option beside it changed"
    await clients.still_work("after the port reload")
    await clients.close()


@pytest.mark.parametrize(
    "broken, why",
    [
        ("namespaces:\n  chat:\n    publish: anyone\n    presence: maybe\n", 'namespaces.chat.presence "maybe" (PATH:5)'),
        ("namespaces:\n  chat: [publish\n", "does not parse"),
        ("namespaces:\n  chat:\n    publish: anyone\nbogus: 1\n", 'bogus "bogus" (PATH:5)'),
        # Valid YAML whose key cannot be loaded: not half applied (the namespace) either.
        ("namespaces:\n  chat:\n    publish: anyone\nauth:\n  jwt-public-key: [/nonexistent/key.pem]\n", "/nonexistent/key.pem"),
        (None, "cannot be read"),
    ],
    ids=["bad-value", "bad-yaml", "unknown-key", "unloadable-key", "deleted-file"],
)
async def test_an_invalid_reload_changes_nothing(config_file, serve, broken, why):
    port = free_port()
    path = config_file(f"port: {port}\nnamespaces:\n  chat:\n    publish: none\n")
    server = serve("--config", path, port=port)
    clients = await Bystanders.connect(server)
    log = await reload(server, path, broken and f"port: {port}\n{broken}", r"configuration reload \(SIGHUP\) failed; nothing changed")
    assert "reloaded" not in log, log
    assert why.replace("PATH", path) in log, log
    assert refusal(*publish(server, "chat:a", "x")) == (403, "permission_denied"), "the old rule stands"
    assert is_error(await clients.ws.ask("publish", channel="chat:a", data="x"))
    await clients.still_work("after the failed reload")
    # Fixed, it reloads.
    await reload(server, path, f"port: {port}\nnamespaces:\n  chat:\n    publish: anyone\n", r"reloaded namespaces\.chat\.publish")
    assert publish(server, "chat:a", "x")[0] == 201
    await clients.close()


async def test_sighup_rereads_a_rotated_secret_file(config_file, serve, tmp_path):
    port = free_port()
    secret = tmp_path / "secret"
    secret.write_text(SECRET)
    path = config_file(f"port: {port}\nauth:\n  jwt-secret-file: {secret}\n")
    server = serve("--config", path, port=port)
    old, new = token(sub="u"), token(OTHER_SECRET, sub="u")
    assert [http(server, "/channels/a/history", bearer=t)[0] for t in (old, new)] == [200, 401]
    secret.write_text(OTHER_SECRET)
    await reload(server, path, Path(path).read_text(), r"configuration reloaded|reloaded ")
    assert [http(server, "/channels/a/history", bearer=t)[0] for t in (old, new)] == [401, 200]
    # A secret that is too short now is refused, and the one in force stays.
    secret.write_text("short")
    log = await reload(server, path, Path(path).read_text(), r"failed; nothing changed")
    assert "at least 32 bytes" in log and "short" not in log, log
    assert http(server, "/channels/a/history", bearer=new)[0] == 200


async def test_a_reload_keeps_flags_and_environment_winning(config_file, serve):
    port = free_port()
    path = config_file(f"port: {port}\npublish-rate: 1000/s\n")
    server = serve("--config", path, "--publish-rate", "1/min", "--publish-burst", "1", port=port,
                   env={"SQUALL_ALLOWED_ORIGINS": APP})
    log = await reload(server, path, f"port: {port}\npublish-rate: 500/s\nallowed-origin: [http://evil.example]\n",
                       r"configuration reloaded|reloaded ")
    assert "reloaded publish-rate" not in log and "reloaded allowed-origin" not in log, log
    assert [publish(server, "capped", str(n))[0] for n in range(2)] == [201, 429]
    assert refusal(*publish(server, "o", "x", headers={"Origin": "http://evil.example"})) == (403, "origin_not_allowed")
    async with connect(f"{server.ws}/msg", origin=APP, open_timeout=5):
        pass


async def test_config_watch_reloads_when_the_file_changes(config_file, serve):
    port = free_port()
    path = config_file(f"port: {port}\nnamespaces:\n  chat:\n    publish: anyone\n")
    server = serve("--config", path, "--config-watch", port=port)
    clients = await Bystanders.connect(server, "chat:watch")
    assert publish(server, "chat:a", "before")[0] == 201
    await asyncio.sleep(1.1)  # a modification time of its own, whatever the clock's resolution
    mark = len(log_of(server))
    Path(path).write_text(f"port: {port}\nnamespaces:\n  chat:\n    publish: subscribers\n    presence: false\n")
    log = await logged(server, r"reloaded namespaces\.chat\.publish", since=mark, timeout=4)
    assert "reloaded namespaces.chat.publish: anyone -> subscribers" in log, log
    assert "changed" in log and path in log, "the reload says the file's change started it"
    assert refusal(*publish(server, "chat:a", "after")) == (403, "permission_denied")
    await clients.still_work("after the watched reload")
    await clients.close()


async def test_config_watch_notices_a_same_size_edit_within_one_second(config_file, serve):
    port = free_port()
    path = config_file(f"port: {port}\nnamespaces:\n  chat:\n    publish: anyone\n")
    second = int(time.time()) - 5
    os.utime(path, ns=(second * 10**9 + 100_000_000,) * 2)
    server = serve("--config", path, "--config-watch", port=port)
    mark = len(log_of(server))
    Path(path).write_text(f"port: {port}\nnamespaces:\n  chat:\n    publish: none  \n")  # same size as before
    os.utime(path, ns=(second * 10**9 + 600_000_000,) * 2)  # written half a second after the first
    await logged(server, r"reloaded namespaces\.chat\.publish: anyone -> none", since=mark, timeout=3.5)
    assert refusal(*publish(server, "chat:a", "x")) == (403, "permission_denied")


async def test_a_msg_socket_open_before_a_reload_is_held_to_the_new_publish_rules(config_file, serve):
    port = free_port()
    path = config_file(f"port: {port}\n")
    server = serve("--config", path, port=port)
    rated = await connect(f"{server.ws}/msg/plain", open_timeout=5)
    closed = await connect(f"{server.ws}/msg/chat:x", open_timeout=5)
    text = f"port: {port}\npublish-rate: 1/min\npublish-burst: 2\nnamespaces:\n  chat:\n    publish: none\n"
    await reload(server, path, text, r"reloaded namespaces\.chat\.publish")
    await closed.send("after chat closed")
    assert await closed_with(closed, timeout=2) == 4003
    for n in range(4):
        await rated.send(f"flood {n}")
    assert await closed_with(rated, timeout=2) == 1008
