# SPDX-License-Identifier: Apache-2.0
"""The origin policy (Tornado's check_origin) and CORS: what pages on other origins may do."""
import http.server
import json
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from conftest import Squall, free_port

EVIL = "http://evil.example"
APP = "http://app.example:3000"


def request(url, method="GET", headers=None, body=None):
    """(status, headers, body) of one HTTP request; an error status is returned, not raised."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def error_code(body):
    return json.loads(body)["error"]["code"]


async def refused_upgrade(url, origin):
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, origin=origin, open_timeout=5):
            pass
    return refused.value.response


@pytest.mark.parametrize("path", ["/msg", "/msg/other", "/ws"])
async def test_a_websocket_from_a_foreign_page_is_refused_with_403(squall, path):
    server = squall("--log-level", "error")
    response = await refused_upgrade(f"{server.ws}{path}", EVIL)
    assert response.status_code == 403
    assert error_code(response.body) == "origin_not_allowed"
    # Clients that are not pages (no Origin) and the server's own pages still connect.
    async with connect(f"{server.ws}{path}", open_timeout=5):
        pass
    async with connect(f"{server.ws}{path}", origin=server.http, open_timeout=5):
        pass


async def test_a_plain_get_of_a_websocket_route_gets_the_same_refusal(squall):
    server = squall("--log-level", "error")
    status, _, body = request(f"{server.http}/msg", headers={"Origin": EVIL})
    assert (status, error_code(body)) == (403, "origin_not_allowed")
    status, _, body = request(f"{server.http}/msg")
    assert (status, error_code(body)) == (426, "websocket_required")


async def test_listed_origins_connect_and_others_stay_refused(squall):
    server = squall("--log-level", "error", "--allowed-origin", APP, "--allowed-origin", "https://Other.Example/")
    async with connect(f"{server.ws}/ws", origin=APP, open_timeout=5):
        pass
    async with connect(f"{server.ws}/ws", origin="https://other.example", open_timeout=5):
        pass
    response = await refused_upgrade(f"{server.ws}/ws", EVIL)
    assert response.status_code == 403


async def test_the_environment_lists_origins_too_and_a_star_admits_every_one(squall):
    listed = squall("--log-level", "error", env={"SQUALL_ALLOWED_ORIGINS": f"{APP}, https://b.example"})
    async with connect(f"{listed.ws}/msg", origin="https://b.example", open_timeout=5):
        pass
    assert (await refused_upgrade(f"{listed.ws}/msg", EVIL)).status_code == 403
    anyone = squall("--log-level", "error", "--allowed-origin", "*")
    async with connect(f"{anyone.ws}/msg", origin=EVIL, open_timeout=5):
        pass


@pytest.mark.parametrize("value", ["evil.example", "http://evil.example/path", "ftp://evil.example", "http://"])
def test_an_allowed_origin_that_is_not_an_origin_is_a_usage_error(value):
    server = Squall(["--allowed-origin", value], {})
    _, log = server.exited()
    assert server.process.returncode == 64, log
    assert "is not an origin" in log, log


def test_a_foreign_page_cannot_publish_and_its_message_is_not_kept(squall):
    server = squall("--log-level", "error")
    status, headers, body = request(f"{server.http}/channels/room/messages", "POST", {"Origin": EVIL}, b"from evil")
    assert (status, error_code(body)) == (403, "origin_not_allowed")
    assert "Access-Control-Allow-Origin" not in headers
    _, _, history = request(f"{server.http}/channels/room/history")
    assert json.loads(history)["messages"] == []
    # Its reads are answered, without the header that would let the page see them.
    status, headers, _ = request(f"{server.http}/channels/room/history", headers={"Origin": EVIL})
    assert status == 200 and "Access-Control-Allow-Origin" not in headers
    # The server's own page publishes.
    status, _, _ = request(f"{server.http}/channels/room/messages", "POST", {"Origin": server.http}, b"from home")
    assert status == 201


def test_a_listed_origin_gets_cors_on_replies_and_errors(squall):
    server = squall("--log-level", "error", "--allowed-origin", APP)
    status, headers, _ = request(f"{server.http}/channels/room/messages", "POST", {"Origin": APP}, b"hello")
    assert status == 201
    assert headers["Access-Control-Allow-Origin"] == APP
    assert "Origin" in headers["Vary"]
    status, headers, body = request(f"{server.http}/channels/bad%20name/history", headers={"Origin": APP})
    assert (status, error_code(body)) == (400, "invalid_channel")
    assert headers["Access-Control-Allow-Origin"] == APP


def test_a_preflight_is_answered_for_a_listed_origin_and_refused_for_others(squall):
    server = squall("--log-level", "error", "--allowed-origin", APP)
    asks = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    status, headers, body = request(f"{server.http}/channels/room/messages", "OPTIONS", {"Origin": APP, **asks})
    assert status == 204 and body == b""
    assert headers["Access-Control-Allow-Origin"] == APP
    assert "POST" in headers["Access-Control-Allow-Methods"]
    assert "content-type" in headers["Access-Control-Allow-Headers"].lower()
    assert headers["Access-Control-Max-Age"] == "600"
    status, headers, body = request(f"{server.http}/channels/room/messages", "OPTIONS", {"Origin": EVIL, **asks})
    assert (status, error_code(body)) == (403, "origin_not_allowed")
    assert "Access-Control-Allow-Origin" not in headers


@contextmanager
def page_server(html):
    """Serves `html` at / from another origin (another port on 127.0.0.1)."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    port = free_port()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Page)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        httpd.shutdown()
        httpd.server_close()


ROUND_TRIP = """
    const done = arguments[arguments.length - 1];
    const [base, transport] = [arguments[0], arguments[1]];
    const client = new Squall.Client(base, { channel: 'xo-' + transport, transports: [transport] });
    client.onopen = () => client.send('hello over ' + transport);
    client.onmessage = (event) => { client.close(); done({ data: event.data, transport: client.transport }); };
    setTimeout(() => done({ error: 'no message', state: client.readyState }), 15000);
"""


@pytest.mark.parametrize("transport", ["websocket", "sse", "longpoll", "shortpoll"])
def test_squall_js_on_a_listed_origin_works_on_every_transport(squall, browser, transport):
    port = free_port()
    squall_url = f"http://127.0.0.1:{port}"
    with page_server(f'<!doctype html><script src="{squall_url}/squall.js"></script>') as page_origin:
        squall("--port", str(port), "--log-level", "error", "--allowed-origin", page_origin)
        page = browser(page_origin)
        page.set_script_timeout(20)
        result = page.execute_async_script(ROUND_TRIP, squall_url, transport)
    assert result == {"data": f"hello over {transport}", "transport": transport}


def test_a_page_on_an_unlisted_origin_can_neither_connect_nor_publish(squall, browser):
    port = free_port()
    squall_url = f"http://127.0.0.1:{port}"
    with page_server("<!doctype html><title>elsewhere</title>") as page_origin:
        squall("--port", str(port), "--log-level", "error")
        page = browser(page_origin)
        page.set_script_timeout(20)
        result = page.execute_async_script("""
            const done = arguments[arguments.length - 1];
            const ws = new WebSocket(arguments[0].replace('http', 'ws') + '/msg');
            ws.onopen = () => done('opened');
            ws.onclose = (event) => fetch(arguments[0] + '/channels/msg/messages', { method: 'POST', body: 'x' })
                .then((response) => done('published ' + response.status), (error) => done('closed ' + event.code + ', publish failed'));
        """, squall_url)
    assert result == "closed 1006, publish failed"
    _, _, history = request(f"{squall_url}/channels/msg/history")
    assert json.loads(history)["messages"] == []
