# SPDX-License-Identifier: Apache-2.0
"""Connection tokens (JWTs), minted here as an application's backend would with PyJWT and
`cryptography`: which keys verify them, where they travel, what a refusal looks like, what
happens when one expires, and what presence shows of the user a token names."""
import asyncio
import base64
import hashlib
import hmac
import json
import signal
import threading
import time
import urllib.error
import urllib.request
import uuid
import warnings
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from conftest import Squall, free_port

SECRET = "e2e-secret-that-is-at-least-32-bytes-long"  # 41 bytes: HS256 only
LONG_SECRET = "s" * 64  # long enough for HS512 too
AUDIENCE = "squall-e2e"
ISSUER = "https://auth.example"


# --- Tokens -----------------------------------------------------------------------------------


def mint(key, alg="HS256", kid=None, ttl=300.0, **claims):
    """A token as a backend signs it: `sub`, `iat`, `exp` (now + `ttl`) and `claims`; a claim
    given as None is left out."""
    now = time.time()
    body = {"sub": "alice", "iat": int(now), "exp": now + ttl, **claims}
    body = {name: value for name, value in body.items() if value is not None}
    with warnings.catch_warnings():  # some tests sign with a key too short for the hash on purpose
        warnings.simplefilter("ignore")
        return jwt.encode(body, key, algorithm=alg, headers={"kid": kid} if kid else None)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header, claims, sign):
    """A token written by hand (PyJWT will not sign these): `sign(signing input) -> bytes`."""
    signing = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    return f"{signing}.{b64url(sign(signing.encode()))}"


def hs256_with(secret: bytes):
    return lambda data: hmac.new(secret, data, hashlib.sha256).digest()


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# --- Servers and keys -------------------------------------------------------------------------


@contextmanager
def running(*args, env=None):
    server = Squall(["--log-level", "error", *args], env or {})
    try:
        yield server.wait_ready()
    finally:
        server.stop(signal.SIGKILL)


def public_pem(private_key) -> bytes:
    return private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class Keys:
    """Key pairs made once per module, their public halves in PEM files."""

    def __init__(self, directory):
        self.directory = directory
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rsa_a = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.rsa_b = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.ec = ec.generate_private_key(ec.SECP256R1())
        self.ed = ed25519.Ed25519PrivateKey.generate()
        self.pem = {name: self.write(name, public_pem(getattr(self, name))) for name in ("rsa", "rsa_a", "rsa_b", "ec", "ed")}

    def write(self, name, content, suffix=".pem"):
        path = self.directory / f"{name}{suffix}"
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        return path


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    return Keys(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module")
def required():
    """`--auth required` with an HS256 secret and no leeway: every client needs a token."""
    with running("--auth", "required", "--jwt-secret", SECRET, "--jwt-leeway", "0") as server:
        yield server


@pytest.fixture(scope="module")
def optional():
    """The default `--auth optional`, with a secret: anonymous clients and token holders."""
    with running("--jwt-secret", SECRET) as server:
        yield server


@pytest.fixture(scope="module")
def pem_server(keys):
    """Only public keys: RSA, EC P-256 and Ed25519 without kid, two RSA keys with kids a and b."""
    with running(
        "--auth", "required",
        "--jwt-public-key", str(keys.pem["rsa"]),
        "--jwt-public-key", str(keys.pem["ec"]),
        "--jwt-public-key", str(keys.pem["ed"]),
        "--jwt-public-key", f"a={keys.pem['rsa_a']}",
        "--jwt-public-key", f"b={keys.pem['rsa_b']}",
    ) as server:
        yield server


# --- Clients ----------------------------------------------------------------------------------


def with_token(path, token, via):
    """`path` and the headers that carry `token`: `?token=` (via "query") or a Bearer header."""
    if token is None:
        return path, {}
    if via == "query":
        return f"{path}{'&' if '?' in path else '?'}token={token}", {}
    return path, {"Authorization": f"Bearer {token}"}


def http(server, method, path, token=None, via="header", body=None):
    """(status, headers, body) of one request; an error status is returned, not raised."""
    path, headers = with_token(path, token, via)
    request = urllib.request.Request(f"{server.http}{path}", data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def assert_unauthorized(status, headers, body, mentions=None):
    """The refusal every route gives a missing or bad token: 401, JSON, WWW-Authenticate."""
    assert status == 401, (status, body)
    error = json.loads(body)["error"]
    assert error["code"] == "unauthorized", error
    assert headers.get("WWW-Authenticate", "").startswith("Bearer"), dict(headers)
    if mentions:
        assert mentions in error["message"], error


def accepted(server, token):
    """Whether a history read with `token` is answered (200) rather than refused (a 401)."""
    status, headers, body = http(server, "GET", "/channels/probe/history", token)
    if status != 200:
        assert_unauthorized(status, headers, body)
    return status == 200


def refusal(server, token):
    """The message of the 401 a history read with `token` must get."""
    status, headers, body = http(server, "GET", "/channels/probe/history", token)
    assert_unauthorized(status, headers, body)
    return json.loads(body)["error"]["message"]


def open_ws(server, path="/ws", token=None, via="query"):
    path, headers = with_token(path, token, via)
    protocols = ["squall.v1"] if path.startswith("/ws") else None
    return connect(f"{server.ws}{path}", subprotocols=protocols, additional_headers=headers, open_timeout=5)


async def receive(ws, timeout=5):
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def ask(ws, request, timeout=5):
    """Sends a /ws request with a fresh ref and returns the reply with that ref."""
    ref = request.setdefault("ref", uuid.uuid4().hex[:8])
    await ws.send(json.dumps(request))
    async with asyncio.timeout(timeout):
        while True:
            reply = json.loads(await ws.recv())
            if reply.get("ref") == ref:
                return reply


async def close_of(ws, timeout=5):
    """(code, reason) of the close the server sends within `timeout`."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                await ws.recv()
    except ConnectionClosed as closed:
        assert closed.rcvd is not None, "the connection ended without a close frame"
        return closed.rcvd.code, closed.rcvd.reason
    except TimeoutError:
        raise AssertionError(f"the server did not close the connection within {timeout} s") from None


async def refused_upgrade(server, path, token=None, via="query"):
    """The response to a WebSocket upgrade the server must refuse."""
    with pytest.raises(InvalidStatus) as refused:
        async with open_ws(server, path, token, via):
            pass
    return refused.value.response


def assert_upgrade_unauthorized(response, mentions=None):
    assert_unauthorized(response.status_code, response.headers, response.body, mentions)


class EventStream:
    """An SSE response read line by line (urllib undoes the chunked encoding)."""

    def __init__(self, server, channel, token=None, via="query"):
        path, headers = with_token(f"/channels/{channel}/events", token, via)
        self.response = urllib.request.urlopen(urllib.request.Request(f"{server.http}{path}", headers=headers), timeout=5)

    def next_event(self):
        """(event name, data as JSON) of the next event; comments (heartbeats) are skipped."""
        event, data = "message", []
        while True:
            line = self.response.readline().decode()
            assert line, "the stream ended before an event"
            line = line.rstrip("\r\n")
            if not line:
                if data:
                    return event, json.loads("\n".join(data))
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)

    def close(self):
        self.response.close()


async def members_of(server, channel, count, token=None, timeout=5):
    """The presence list of `channel` once it has `count` members."""
    deadline = time.monotonic() + timeout
    while True:
        status, _, body = http(server, "GET", f"/channels/{channel}/presence", token)
        assert status == 200, body
        members = json.loads(body)["clients"]
        if len(members) == count:
            return members
        assert time.monotonic() < deadline, f"presence never had {count} members: {members}"
        await asyncio.sleep(0.05)


# --- Where a token travels --------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["ws-query", "ws-header", "ws-connect", "msg-query", "msg-header", "sse-query", "sse-header"])
async def test_a_valid_token_admits_a_subscriber_on_every_transport_and_presence_names_its_user(required, transport):
    kind, via = transport.split("-")
    user, channel = unique("user"), unique("room")
    token = mint(SECRET, sub=user)
    if kind == "ws":
        async with open_ws(required, "/ws", None if via == "connect" else token, via) as ws:
            assert (await receive(ws))["type"] == "welcome"
            if via == "connect":
                reply = await ask(ws, {"op": "connect", "token": token})
                assert (reply["type"], reply["user"]) == ("connected", user), reply
            reply = await ask(ws, {"op": "subscribe", "channel": channel})
            assert reply["type"] == "subscribed", reply
            members = await members_of(required, channel, 1, token)
    elif kind == "msg":
        async with open_ws(required, f"/msg/{channel}", token, via) as ws:
            await ws.send("hello with a token")
            assert await asyncio.wait_for(ws.recv(), 5) == "hello with a token"
            members = await members_of(required, channel, 1, token)
    else:
        stream = EventStream(required, channel, token, via)
        try:
            event, data = stream.next_event()
            assert (event, data["channel"]) == ("subscribed", channel)
            members = await members_of(required, channel, 1, token)
        finally:
            stream.close()
    assert [(m["user"], m["transport"]) for m in members] == [(user, kind)]


ROUTES = {
    "poll": ("GET", "/channels/{}/messages?wait=0"),
    "publish": ("POST", "/channels/{}/messages"),
    "history": ("GET", "/channels/{}/history"),
    "presence": ("GET", "/channels/{}/presence"),
}


@pytest.mark.parametrize("via", ["header", "query"])
@pytest.mark.parametrize("route", list(ROUTES))
def test_a_valid_token_is_accepted_on_every_http_route(required, route, via):
    channel = unique("http")
    token = mint(SECRET)
    method, path = ROUTES[route]
    status, _, body = http(required, method, path.format(channel), token, via, body=b"posted" if method == "POST" else None)
    assert status == (201 if route == "publish" else 200), body
    if route == "publish":
        status, _, body = http(required, "GET", f"/channels/{channel}/history", token)
        assert [m["data"] for m in json.loads(body)["messages"]] == ["posted"]


# --- --auth required without a token ----------------------------------------------------------


@pytest.mark.parametrize("route", [*ROUTES, "events"])
def test_under_required_auth_an_http_route_without_a_token_is_refused_with_401(required, route):
    channel = unique("closed")
    method, path = ROUTES.get(route, ("GET", "/channels/{}/events"))
    assert_unauthorized(*http(required, method, path.format(channel), body=b"sneaked in" if method == "POST" else None), "required")
    # Nothing was published by the refused request.
    status, _, body = http(required, "GET", f"/channels/{channel}/history", mint(SECRET))
    assert (status, json.loads(body)["messages"]) == (200, [])


@pytest.mark.parametrize("path", ["/msg", "/msg/closed-room"])
async def test_under_required_auth_a_plain_socket_without_a_token_is_refused_at_the_upgrade(required, path):
    assert_upgrade_unauthorized(await refused_upgrade(required, path), "required")


@pytest.mark.parametrize("op", ["subscribe", "publish", "history", "presence"])
async def test_under_required_auth_a_ws_without_a_token_is_welcomed_but_closed_4001_on_its_first_request(required, op):
    channel = unique("secret")
    async with open_ws(required, "/ws") as ws:
        assert (await receive(ws))["type"] == "welcome"
        assert (await ask(ws, {"op": "ping"}))["type"] == "pong"  # a ping needs no token
        await ws.send(json.dumps({"op": op, "channel": channel, "data": "sneaked in", "ref": 1}))
        code, reason = await close_of(ws)
    assert code == 4001 and reason.startswith("unauthorized"), (code, reason)
    token = mint(SECRET)
    assert json.loads(http(required, "GET", f"/channels/{channel}/presence", token)[2])["clients"] == []
    assert json.loads(http(required, "GET", f"/channels/{channel}/history", token)[2])["messages"] == []


async def test_a_connect_request_with_a_valid_token_authenticates_a_ws_that_upgraded_without_one(required):
    channel = unique("connected")
    token = mint(SECRET, sub="carol", ttl=600)
    expires = int(jwt.decode(token, SECRET, algorithms=["HS256"])["exp"])
    async with open_ws(required, "/ws") as ws:
        assert (await receive(ws))["type"] == "welcome"
        await ws.send(json.dumps({"op": "connect", "token": token, "ref": 1}))
        assert await receive(ws) == {"type": "connected", "user": "carol", "expires": expires, "ref": 1}
        assert (await ask(ws, {"op": "subscribe", "channel": channel}))["type"] == "subscribed"
        assert (await ask(ws, {"op": "publish", "channel": channel, "data": "after connect"}))["type"] == "published"
    status, _, body = http(required, "GET", f"/channels/{channel}/history", token)
    assert [m["data"] for m in json.loads(body)["messages"]] == ["after connect"]


@pytest.mark.parametrize(
    "token",
    ["not-a-jwt", mint("another-secret-that-is-at-least-32-bytes"), mint(SECRET, ttl=-30), None],
    ids=["garbage", "bad-signature", "expired", "missing"],
)
async def test_a_connect_request_with_a_bad_token_closes_the_ws_with_4001(required, token):
    async with open_ws(required, "/ws") as ws:
        assert (await receive(ws))["type"] == "welcome"
        await ws.send(json.dumps({"op": "connect", "token": token, "ref": 1}))
        code, reason = await close_of(ws)
    assert code == 4001 and reason.startswith("unauthorized"), (code, reason)


# --- Tokens refused -----------------------------------------------------------------------------


def bad_tokens():
    now = time.time()
    claims = {"sub": "mallory", "exp": now + 300}
    return {
        "expired": (mint(SECRET, ttl=-30), "expired"),
        "not-yet-valid": (mint(SECRET, nbf=int(now) + 300), "nbf"),
        "bad-signature": (mint("a-different-secret-of-at-least-32-bytes"), "signature"),
        "alg-none": (forge({"alg": "none", "typ": "JWT"}, claims, lambda _: b""), "alg"),
        "two-parts": (".".join(mint(SECRET).split(".")[:2]), "malformed"),
        "tampered-claims": (tamper(mint(SECRET, sub="mallory")), "signature"),
        "garbage": ("this.is.not-a-token", "malformed"),
        "hs384-with-a-short-secret": (mint(SECRET, alg="HS384"), "alg"),
    }


def tamper(token):
    """The same signature over claims changed after signing (sub becomes admin)."""
    header, _, signature = token.split(".")
    payload = b64url(json.dumps({"sub": "admin", "exp": time.time() + 300}).encode())
    return f"{header}.{payload}.{signature}"


BAD = bad_tokens()


@pytest.mark.parametrize("case", list(BAD))
async def test_a_bad_token_is_refused_with_401_on_http_and_at_every_websocket_upgrade(required, case):
    token, mentions = BAD[case]
    assert_unauthorized(*http(required, "GET", "/channels/room/history", token, "header"), mentions)
    assert_unauthorized(*http(required, "GET", "/channels/room/events", token, "query"), mentions)
    for path in ("/ws", "/msg", "/msg/room"):
        assert_upgrade_unauthorized(await refused_upgrade(required, path, token), mentions)


async def test_under_optional_auth_anonymous_clients_are_served_but_a_bad_token_is_still_refused(optional):
    assert http(optional, "GET", "/channels/open/history")[0] == 200
    assert http(optional, "POST", "/channels/open/messages", body=b"anonymous")[0] == 201
    async with open_ws(optional, "/ws") as ws:
        assert (await receive(ws))["type"] == "welcome"
        assert (await ask(ws, {"op": "subscribe", "channel": "open"}))["type"] == "subscribed"
    expired = mint(SECRET, ttl=-30)
    assert_unauthorized(*http(optional, "GET", "/channels/open/history", expired), "expired")
    assert_unauthorized(*http(optional, "POST", "/channels/open/messages", "not-a-jwt", body=b"x"))
    for path in ("/ws", "/msg"):
        assert_upgrade_unauthorized(await refused_upgrade(optional, path, expired, via="header"), "expired")


async def test_a_subscription_token_does_not_pass_as_a_connection_token(optional):
    # Both kinds are signed with the same keys; one that grants a channel must not make its
    # bearer an authenticated user everywhere.
    subscription = mint(SECRET, sub="ada", channel="private:room")
    assert_unauthorized(*http(optional, "GET", "/channels/open/history", subscription), "subscription token")
    assert_upgrade_unauthorized(await refused_upgrade(optional, "/msg", subscription, via="query"), "subscription token")


# --- Keys -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "RS384", "RS512", "ES256", "EdDSA"])
def test_tokens_signed_with_rsa_ec_and_ed25519_keys_verify_with_their_pem_public_keys(pem_server, keys, alg):
    private = {"RS": keys.rsa, "ES": keys.ec, "Ed": keys.ed}[alg[:2]]
    assert accepted(pem_server, mint(private, alg=alg))
    # The same claims signed by a key the server does not have are refused.
    stranger = {"RS": keys.rsa_a, "ES": ec.generate_private_key(ec.SECP256R1()), "Ed": ed25519.Ed25519PrivateKey.generate()}[alg[:2]]
    assert "signature" in refusal(pem_server, mint(stranger, alg=alg))


def test_an_hs256_token_signed_with_the_rsa_public_key_pem_as_secret_is_refused(pem_server, keys):
    # The key-confusion attack: the attacker knows the public key, and hopes the server feeds
    # the PEM to HMAC because the header says HS256.
    for pem_name, kid in (("rsa", None), ("rsa_a", "a")):
        pem = keys.pem[pem_name].read_bytes()
        header = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
        for secret in (pem, pem.strip()):
            token = forge(header, {"sub": "mallory", "exp": time.time() + 300}, hs256_with(secret))
            assert "alg" in refusal(pem_server, token), (pem_name, kid)
    # The same server takes the RSA key's own tokens: the refusal is the algorithm's.
    assert accepted(pem_server, mint(keys.rsa_a, alg="RS256", kid="a"))


def test_a_token_naming_an_unknown_kid_is_refused(pem_server, keys):
    message = refusal(pem_server, mint(keys.rsa_a, alg="RS256", kid="c"))
    assert "kid" in message and '"c"' in message, message
    # Not tried against the key-less keys either: the RSA key without kid signed it.
    assert "kid" in refusal(pem_server, mint(keys.rsa, alg="RS256", kid="unknown"))


def test_two_public_keys_with_their_own_kids_both_verify_during_a_rotation(pem_server, keys):
    assert accepted(pem_server, mint(keys.rsa_a, alg="RS256", kid="a"))
    assert accepted(pem_server, mint(keys.rsa_b, alg="RS256", kid="b"))
    # The kid picks the key: key a's token labelled b does not verify.
    assert "signature" in refusal(pem_server, mint(keys.rsa_a, alg="RS256", kid="b"))
    # A key with a kid is not used for tokens without one (only the key-less RSA key is tried).
    assert "signature" in refusal(pem_server, mint(keys.rsa_b, alg="RS256"))


def test_two_secret_files_are_both_accepted_and_a_long_one_verifies_hs512(tmp_path):
    old = tmp_path / "old.secret"
    new = tmp_path / "new.secret"
    old.write_text(SECRET + "\n")  # as `echo secret > file` writes it
    new.write_text(LONG_SECRET)
    with running("--auth", "required", "--jwt-secret-file", str(old), "--jwt-secret-file", str(new)) as server:
        assert accepted(server, mint(SECRET))
        assert accepted(server, mint(LONG_SECRET))
        assert accepted(server, mint(LONG_SECRET, alg="HS512"))
        assert "signature" in refusal(server, mint("a-third-secret-nobody-configured-here!!"))
        # HS384 is tried only with the 64-byte secret: the 41-byte one is too short for it.
        assert "signature" in refusal(server, mint(SECRET, alg="HS384"))


def jwk(private_key, kid, alg):
    public = private_key.public_key()
    convert = {"RS": RSAAlgorithm, "ES": ECAlgorithm, "Ed": OKPAlgorithm}[alg[:2]]
    return {**convert.to_jwk(public, as_dict=True), "kid": kid, "alg": alg, "use": "sig"}


def test_a_jwks_file_supplies_keys_by_kid(keys, tmp_path):
    document = {"keys": [jwk(keys.rsa_a, "r1", "RS256"), jwk(keys.ec, "e1", "ES256"), jwk(keys.ed, "d1", "EdDSA")]}
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(document))
    with running("--auth", "required", "--jwks", str(path)) as server:
        assert accepted(server, mint(keys.rsa_a, alg="RS256", kid="r1"))
        assert accepted(server, mint(keys.ec, alg="ES256", kid="e1"))
        assert accepted(server, mint(keys.ed, alg="EdDSA", kid="d1"))
        assert "kid" in refusal(server, mint(keys.rsa_a, alg="RS256", kid="r2"))
        assert "signature" in refusal(server, mint(keys.rsa_b, alg="RS256", kid="r1"))
        assert "alg" in refusal(server, mint(keys.rsa_a, alg="RS256"))  # JWKS keys are named by kid


def test_a_jwks_document_with_keys_squall_cannot_use_still_gives_the_ones_it_can(keys, tmp_path):
    # What identity providers publish: Keycloak lists an RSA-OAEP encryption key beside its
    # signature key; others list symmetric (oct) keys, or EC keys whose alg is left out.
    encryption = {**jwk(keys.rsa_b, "enc1", "RS256"), "alg": "RSA-OAEP", "use": "enc"}
    symmetric = {"kty": "oct", "kid": "o1", "k": "c2VjcmV0"}
    p384 = ec.generate_private_key(ec.SECP384R1())
    no_alg = {key: value for key, value in jwk(p384, "e384", "ES384").items() if key != "alg"}
    document = {"keys": [encryption, symmetric, jwk(keys.rsa_a, "r1", "RS256"), no_alg]}
    path = tmp_path / "idp-jwks.json"
    path.write_text(json.dumps(document))
    with running("--auth", "required", "--jwks", str(path)) as server:
        assert accepted(server, mint(keys.rsa_a, alg="RS256", kid="r1"))
        assert accepted(server, mint(p384, alg="ES384", kid="e384"))
        assert "kid" in refusal(server, mint(keys.rsa_b, alg="RS256", kid="enc1"))


async def test_under_required_auth_a_ws_that_never_connects_is_closed_with_4001():
    with running("--auth", "required", "--jwt-secret", SECRET, "--handshake-timeout", "1") as server:
        async with open_ws(server, "/ws") as ws:
            assert (await receive(ws))["type"] == "welcome"
            async with asyncio.timeout(5):
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await ws.recv()
            assert closed.value.rcvd.code == 4001


@contextmanager
def jwks_endpoint(document):
    """Serves `document` (a dict, replaced by the test through `state`) at /jwks.json."""
    state = {"document": document, "fetches": 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            state["fetches"] += 1
            body = json.dumps(state["document"]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state["url"] = f"http://127.0.0.1:{httpd.server_address[1]}/jwks.json"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def accepted_within(server, token, seconds):
    """Retries `token` until it is accepted (True) or `seconds` pass (False)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if accepted(server, token):
            return True
        time.sleep(0.1)
    return False


def test_a_jwks_url_is_fetched_again_when_a_token_names_a_kid_it_lacked(keys):
    with jwks_endpoint({"keys": [jwk(keys.rsa_a, "A", "RS256")]}) as endpoint:
        with running("--auth", "required", "--jwks", endpoint["url"]) as server:
            assert endpoint["fetches"] == 1
            token_a = mint(keys.rsa_a, alg="RS256", kid="A")
            assert accepted(server, token_a)
            # The identity provider rotates to key B.
            endpoint["document"] = {"keys": [jwk(keys.rsa_b, "B", "RS256")]}
            token_b = mint(keys.rsa_b, alg="RS256", kid="B")
            assert "kid" in refusal(server, token_b)  # the token that asks is refused...
            assert accepted_within(server, token_b, 5), "...and a later one is accepted"
            assert endpoint["fetches"] == 2
            # Key A left the document: its tokens are refused now.
            assert "kid" in refusal(server, token_a)


def test_made_up_kids_do_not_make_the_server_fetch_the_jwks_url_again_and_again(keys):
    with jwks_endpoint({"keys": [jwk(keys.rsa_a, "A", "RS256")]}) as endpoint:
        with running("--auth", "required", "--jwks", endpoint["url"]) as server:
            assert "kid" in refusal(server, mint(keys.rsa_a, alg="RS256", kid="made-up-0"))
            deadline = time.monotonic() + 5
            while endpoint["fetches"] < 2:
                assert time.monotonic() < deadline, "an unknown kid never made the server fetch the JWKS again"
                time.sleep(0.05)
            for attempt in range(1, 20):
                assert "kid" in refusal(server, mint(keys.rsa_a, alg="RS256", kid=f"made-up-{attempt}"))
            time.sleep(0.5)
            assert endpoint["fetches"] == 2  # at most one fetch per tenth of --jwks-refresh (6 min)


def test_a_jwks_url_is_fetched_again_every_refresh_interval(keys):
    with jwks_endpoint({"keys": [jwk(keys.rsa_a, "A", "RS256")]}) as endpoint:
        with running("--auth", "required", "--jwks", endpoint["url"], "--jwks-refresh", "1s") as server:
            endpoint["document"] = {"keys": [jwk(keys.rsa_a, "A", "RS256"), jwk(keys.rsa_b, "B", "RS256")]}
            # Fetches follow one another (sleep, fetch, swap): once the third has begun, the
            # second one's keys are in.
            deadline = time.monotonic() + 6
            while endpoint["fetches"] < 3:
                assert time.monotonic() < deadline, f"{endpoint['fetches']} fetches in 6 s with a 1 s refresh"
                time.sleep(0.05)
            # No token asked for B: the interval alone brought it, so the first one is taken.
            assert accepted(server, mint(keys.rsa_b, alg="RS256", kid="B"))
            assert accepted(server, mint(keys.rsa_a, alg="RS256", kid="A"))


# --- Audience and issuer ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def checked():
    with running("--auth", "required", "--jwt-secret", SECRET, "--jwt-audience", AUDIENCE, "--jwt-issuer", ISSUER) as server:
        yield server


@pytest.mark.parametrize(
    "claims, expected",
    [
        ({"aud": AUDIENCE, "iss": ISSUER}, 200),
        ({"aud": ["another-app", AUDIENCE], "iss": ISSUER}, 200),
        ({"aud": "another-app", "iss": ISSUER}, "audience"),
        ({"aud": ["another-app"], "iss": ISSUER}, "audience"),
        ({"iss": ISSUER}, "audience"),
        ({"aud": AUDIENCE, "iss": "https://evil.example"}, "issuer"),
        ({"aud": AUDIENCE}, "issuer"),
    ],
    ids=["both-right", "aud-list-includes-it", "other-aud", "aud-list-without-it", "no-aud", "other-iss", "no-iss"],
)
def test_the_audience_and_issuer_are_checked_when_configured(checked, claims, expected):
    token = mint(SECRET, **claims)
    if expected == 200:
        assert accepted(checked, token)
    else:
        assert expected in refusal(checked, token)


def test_auth_is_configured_from_the_environment_too():
    env = {"SQUALL_AUTH": "required", "SQUALL_JWT_SECRET": SECRET, "SQUALL_JWT_AUDIENCE": AUDIENCE}
    with running(env=env) as server:
        assert_unauthorized(*http(server, "GET", "/channels/env/history"), "required")
        assert accepted(server, mint(SECRET, aud=AUDIENCE))
        assert "audience" in refusal(server, mint(SECRET))


@pytest.mark.parametrize(
    "args, complaint",
    [
        (["--jwt-secret", "only-31-bytes-long-secret-here!"], "at least 32"),
        (["--auth", "required"], "needs a key"),
    ],
    ids=["short-secret", "required-without-a-key"],
)
def test_a_configuration_that_cannot_verify_tokens_safely_is_a_usage_error(args, complaint):
    server = Squall(args, {})
    code, log = server.exited(timeout=10)
    assert code == 64 and complaint in log, (code, log)


# --- Expiry and refresh -------------------------------------------------------------------------

TTL = 1.5


async def assert_closed_at_expiry(ws, expires):
    code, reason = await close_of(ws, timeout=TTL + 4)
    assert (code, reason) == (4002, "token expired")
    assert time.time() >= expires - 0.25, "closed before the token expired"


@pytest.mark.parametrize("transport", ["ws-query", "ws-connect", "msg-header"])
async def test_a_socket_whose_token_expires_is_closed_with_4002(required, transport):
    token = mint(SECRET, ttl=TTL)
    expires = time.time() + TTL
    kind, via = transport.split("-")
    if kind == "ws":
        async with open_ws(required, "/ws", None if via == "connect" else token, via) as ws:
            assert (await receive(ws))["type"] == "welcome"
            if via == "connect":
                assert (await ask(ws, {"op": "connect", "token": token}))["type"] == "connected"
            assert (await ask(ws, {"op": "subscribe", "channel": unique("expiring")}))["type"] == "subscribed"
            await assert_closed_at_expiry(ws, expires)
    else:
        async with open_ws(required, f"/msg/{unique('expiring')}", token, via) as ws:
            await ws.send("still valid")
            assert await asyncio.wait_for(ws.recv(), 5) == "still valid"
            await assert_closed_at_expiry(ws, expires)


def test_an_event_stream_whose_token_expires_ends_with_a_4002_close_event(required):
    channel = unique("expiring")
    expires = time.time() + TTL
    stream = EventStream(required, channel, mint(SECRET, ttl=TTL))
    try:
        assert stream.next_event()[0] == "subscribed"
        assert stream.next_event() == ("close", {"code": 4002, "reason": "token expired"})
        assert time.time() >= expires - 0.25, "closed before the token expired"
        assert stream.response.read() == b""  # and the response ends
    finally:
        stream.close()


@pytest.mark.parametrize("transport", ["ws", "msg", "sse"])
async def test_a_live_connection_is_closed_only_once_its_token_is_past_the_leeway(transport):
    # A token that expired a second ago, under a 3 s leeway: valid for about 2 s more.
    with running("--auth", "required", "--jwt-secret", SECRET, "--jwt-leeway", "3s") as server:
        token = mint(SECRET, ttl=-1)
        assert accepted(server, token)
        valid_until = time.time() + 2
        if transport == "sse":
            stream = EventStream(server, unique("leeway"), token)
            try:
                assert stream.next_event()[0] == "subscribed"
                assert stream.next_event() == ("close", {"code": 4002, "reason": "token expired"})
            finally:
                stream.close()
            closed_at = time.time()
        else:
            path = "/ws" if transport == "ws" else f"/msg/{unique('leeway')}"
            async with open_ws(server, path, token) as ws:
                code, reason = await close_of(ws, timeout=5)
                closed_at = time.time()
            assert (code, reason) == (4002, "token expired")
        assert closed_at >= valid_until - 0.5, f"closed {valid_until - closed_at:.2f} s before the token was past the leeway"


async def test_a_refresh_before_expiry_keeps_the_ws_open_past_the_first_tokens_expiry(required):
    channel = unique("refreshed")
    first = mint(SECRET, sub="dora", ttl=TTL)
    expires = time.time() + TTL
    async with open_ws(required, "/ws", first) as ws:
        assert (await receive(ws))["type"] == "welcome"
        assert (await ask(ws, {"op": "subscribe", "channel": channel}))["type"] == "subscribed"
        second = mint(SECRET, sub="dora", ttl=120)
        reply = await ask(ws, {"op": "refresh", "token": second})
        assert (reply["type"], reply["user"]) == ("refreshed", "dora"), reply
        assert reply["expires"] == int(jwt.decode(second, SECRET, algorithms=["HS256"])["exp"])
        await asyncio.sleep(expires + 1 - time.time())
        assert (await ask(ws, {"op": "ping"}))["type"] == "pong"
        assert (await ask(ws, {"op": "publish", "channel": channel, "data": "still here"}))["type"] == "published"


async def test_a_refresh_with_another_users_token_closes_the_ws_with_4001(required):
    async with open_ws(required, "/ws", mint(SECRET, sub="erin")) as ws:
        assert (await receive(ws))["type"] == "welcome"
        await ws.send(json.dumps({"op": "refresh", "token": mint(SECRET, sub="frank"), "ref": 1}))
        code, reason = await close_of(ws)
    assert code == 4001 and "same user" in reason, (code, reason)


# --- Presence -------------------------------------------------------------------------------


async def test_presence_shows_each_members_token_user_and_info_unless_the_client_gives_its_own(optional):
    channel = unique("presence")
    ada = mint(SECRET, sub="ada", info={"name": "Ada Lovelace", "role": "admin"})
    bob = mint(SECRET, sub="bob", info={"name": "Robert"})
    cy = mint(SECRET, sub="cy", info={"name": "Cy"})
    async with open_ws(optional, "/ws", ada) as ws, open_ws(optional, f"/msg/{channel}?name=Bobby", bob):
        await receive(ws)
        assert (await ask(ws, {"op": "subscribe", "channel": channel}))["type"] == "subscribed"
        async with open_ws(optional, f"/msg/{channel}?name=guest"):
            stream = EventStream(optional, channel, cy)
            try:
                assert stream.next_event()[0] == "subscribed"
                members = await members_of(optional, channel, 4)
            finally:
                stream.close()
    seen = sorted(((m["transport"], m.get("user"), m.get("info")) for m in members), key=str)
    assert seen == sorted([
        ("ws", "ada", {"name": "Ada Lovelace", "role": "admin"}),  # the token's info
        ("msg", "bob", {"name": "Bobby"}),  # the client's own name wins over the token's
        ("msg", None, {"name": "guest"}),  # anonymous: no user
        ("sse", "cy", {"name": "Cy"}),
    ], key=str), members
    assert all("user" not in m for m in members if m["info"] == {"name": "guest"})


async def test_a_ws_subscribers_own_info_wins_over_its_tokens(optional):
    channel = unique("presence")
    async with open_ws(optional, "/ws", mint(SECRET, sub="gus", info={"name": "Gus"})) as ws:
        await receive(ws)
        reply = await ask(ws, {"op": "subscribe", "channel": channel, "info": {"name": "Gus on phone"}})
        assert reply["type"] == "subscribed", reply
        [member] = await members_of(optional, channel, 1)
    assert (member["user"], member["info"]) == ("gus", {"name": "Gus on phone"})
