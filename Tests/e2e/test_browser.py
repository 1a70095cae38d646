# SPDX-License-Identifier: Apache-2.0
"""squall.js and the demo chat in a real headless Chromium, driven by Selenium."""
import json
import time
import urllib.request

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from conftest import Squall, free_port
from proxy import CuttableProxy

TRANSPORTS = ["websocket", "sse", "longpoll", "shortpoll"]


def page_url(base, **params):
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return f"{base}/?{query}"


def wait_until(driver, condition, timeout=20, message=""):
    # The demo re-renders its lists, so an element found a moment ago can be gone when read:
    # that is a retry, not a failure.
    return WebDriverWait(driver, timeout, poll_frequency=0.05,
                         ignored_exceptions=[StaleElementReferenceException]).until(lambda d: condition(d), message)


def wait_connected(driver, transport=None, timeout=20):
    def connected(d):
        state = d.execute_script("return window.chat && chat.client && [chat.client.readyState, chat.client.transport]")
        return state and state[0] == 1 and (transport is None or state[1] == transport)

    wait_until(driver, connected, timeout, f"page did not connect over {transport}")
    # The subscription is confirmed after open; wait for it so nothing sent next is missed.
    wait_until(driver, lambda d: d.execute_script(
        "var s = chat.client._channels[chat.room]; return !!(s && s.position)"), timeout, "not subscribed")


def say(driver, text):
    box = driver.find_element(By.ID, "text")
    box.send_keys(text)
    driver.find_element(By.ID, "send").click()


def shown(driver):
    """[(nick, text)] of every message on the page, in order (read in one script: no stale elements)."""
    return [tuple(pair) for pair in driver.execute_script(
        "return Array.from(document.querySelectorAll('#messages li'), li =>"
        " [li.querySelector('.nick').textContent, li.querySelector('.text').textContent])")]


def wait_shown(driver, expected, timeout=20):
    wait_until(driver, lambda d: shown(d) == expected, timeout, f"expected {expected}, page shows {shown(driver)}")


def publish(port, room, nick, text):
    body = json.dumps({"nick": nick, "text": text}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/channels/{room}/messages", data=body, method="POST")
    urllib.request.urlopen(request, timeout=5).read()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_two_browsers_chat(squall, browser, transport):
    server = squall("--log-level", "error")
    alice = browser(page_url(server.http, transport=transport, nick="alice", room="duo"))
    bob = browser(page_url(server.http, transport=transport, nick="bob", room="duo"))
    wait_connected(alice, transport)
    wait_connected(bob, transport)

    say(alice, "hi bob")
    wait_shown(bob, [("alice", "hi bob")])
    say(bob, "hi alice")
    wait_shown(alice, [("alice", "hi bob"), ("bob", "hi alice")])
    wait_shown(bob, [("alice", "hi bob"), ("bob", "hi alice")])
    assert alice.find_element(By.ID, "status").text == f"connected via {transport}"


def test_presence_shows_who_is_online(squall, browser):
    # A short heartbeat: the server notices the closed SSE stream at its next write.
    server = squall("--log-level", "error", "--sse-heartbeat", "0.5")
    alice = browser(page_url(server.http, transport="websocket", nick="alice", room="party"))
    wait_connected(alice)
    carol = browser(page_url(server.http, transport="sse", nick="carol", room="party"))
    wait_connected(carol)

    def names(d):
        return sorted(d.execute_script(
            "return Array.from(document.querySelectorAll('#presence li'), li => li.textContent)"))

    wait_until(alice, lambda d: names(d) == ["alice", "carol"], message="alice sees both")
    carol.quit()
    wait_until(alice, lambda d: names(d) == ["alice"], message="carol left")


BLOCK_WEBSOCKET = """
window.WebSocket = function () {
  var socket = this;
  setTimeout(function () {
    if (socket.onerror) socket.onerror(new Event('error'));
    if (socket.onclose) socket.onclose({ code: 1006, reason: '' });
  }, 10);
};
"""

KILL_WEBSOCKET_AFTER_OPEN = """
(function () {
  var Real = window.WebSocket;
  window.WebSocket = function (url, protocols) {
    var socket = new Real(url, protocols);
    socket.addEventListener('open', function () { setTimeout(function () { socket.close(); }, 300); });
    return socket;
  };
  window.WebSocket.OPEN = Real.OPEN;
})();
"""


@pytest.mark.parametrize("block", [BLOCK_WEBSOCKET, KILL_WEBSOCKET_AFTER_OPEN], ids=["blocked", "killed-after-open"])
def test_falls_back_when_websocket_is_blocked(squall, browser, block):
    server = squall("--log-level", "error")
    page = browser(page_url(server.http, nick="fallback", room="fb"), before_load=block)
    wait_connected(page, "sse", timeout=30)
    other = browser(page_url(server.http, transport="websocket", nick="ws", room="fb"))
    wait_connected(other, "websocket")
    say(other, "over websocket")
    wait_shown(page, [("ws", "over websocket")])
    say(page, "over sse")
    wait_shown(other, [("ws", "over websocket"), ("fallback", "over sse")])


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_network_drop_resumes_without_loss_or_duplicates(squall, browser, transport):
    server = squall("--log-level", "error")
    proxy = CuttableProxy(server.port)
    try:
        page = browser(page_url(f"http://127.0.0.1:{proxy.port}", transport=transport, nick="reader", room="drop"))
        wait_connected(page, transport)
        publish(server.port, "drop", "writer", "before the drop")
        wait_shown(page, [("writer", "before the drop")])

        proxy.cut()
        wait_until(page, lambda d: d.execute_script("return chat.client.readyState") != 1, message="page noticed the drop")
        for n in (1, 2, 3):
            publish(server.port, "drop", "writer", f"while away {n}")
        proxy.restore()

        expected = [("writer", "before the drop")] + [("writer", f"while away {n}") for n in (1, 2, 3)]
        wait_shown(page, expected, timeout=30)
        publish(server.port, "drop", "writer", "after")
        wait_shown(page, expected + [("writer", "after")])
        assert page.find_element(By.ID, "recovery").is_displayed() is False
    finally:
        proxy.close()


@pytest.mark.parametrize("transport", ["websocket", "sse", "longpoll"])
def test_server_restart_reconnects_and_shows_the_reload_event(squall, browser, transport):
    port = free_port()
    first = squall("--port", str(port), "--log-level", "error")
    page = browser(page_url(first.http, transport=transport, nick="survivor", room="phoenix"))
    wait_connected(page, transport)
    publish(port, "phoenix", "old", "before the restart")
    wait_shown(page, [("old", "before the restart")])

    first.stop()
    second = squall("--port", str(port), "--log-level", "error")
    # The memory log started a new epoch: the position cannot be resumed, and the page says so.
    wait_until(page, lambda d: d.find_element(By.ID, "recovery").is_displayed(), 30, "no reload event shown")
    wait_connected(page, transport)
    publish(second.port, "phoenix", "new", "after the restart")
    wait_shown(page, [("old", "before the restart"), ("new", "after the restart")])


def test_markup_in_messages_is_shown_as_text(squall, browser):
    server = squall("--log-level", "error")
    sender = browser(page_url(server.http, transport="websocket", nick="<b>mallory</b>", room="xss"))
    reader = browser(page_url(server.http, transport="sse", nick="reader", room="xss"))
    wait_connected(sender)
    wait_connected(reader)
    attack = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'
    say(sender, attack)
    for page in (sender, reader):
        wait_shown(page, [("<b>mallory</b>", attack)])
        assert page.execute_script("return window.pwned") is None
        assert page.find_elements(By.CSS_SELECTOR, "#messages img, #messages script, #messages b") == []


def test_client_works_as_an_es_module_and_mirrors_the_websocket_api(squall, browser):
    server = squall("--log-level", "error")
    page = browser(f"{server.http}/healthz")
    result = page.execute_async_script("""
        const done = arguments[arguments.length - 1];
        import('/squall.mjs').then(({ default: Squall, Client }) => {
          const client = new Client(location.origin, { channel: 'mod', transports: ['websocket'] });
          const seen = [];
          client.addEventListener('open', () => client.send('from a module'));
          client.onmessage = (event) => {
            seen.push(event.data);
            client.close();
          };
          client.onclose = () => done({ seen, transport: client.transport, same: Squall.Client === Client });
        }, (error) => done({ error: String(error) }));
    """)
    assert result == {"seen": ["from a module"], "transport": "websocket", "same": True}


def test_demo_fits_a_phone(squall, browser):
    server = squall("--log-level", "error")
    phone = browser()
    # Chromium windows have a minimum width; a phone is emulated instead, as DevTools does.
    phone.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 3, "mobile": True})
    phone.get(page_url(server.http, nick="phone", room="small"))
    wait_connected(phone)
    width = phone.execute_script("return document.documentElement.scrollWidth")
    assert width <= 390, f"the page scrolls sideways at phone width ({width}px)"
    assert phone.find_element(By.ID, "text").is_displayed()
    # One column: the message list takes the width, and who-is-online sits below it.
    messages = phone.find_element(By.ID, "messages").rect
    online = phone.find_element(By.ID, "presence").rect
    assert messages["width"] >= 340, messages
    assert online["y"] > messages["y"] + messages["height"], (messages, online)


def test_chromium_negotiates_permessage_deflate_both_ways(squall, browser):
    # Chromium offers permessage-deflate on every WebSocket and compresses what it sends;
    # Squall compresses what it sends from 1 KiB up. A long message makes the round trip intact.
    server = squall("--log-level", "error")
    page = browser(f"{server.http}/healthz")
    page.set_script_timeout(10)
    extensions, echoed = page.execute_async_script("""
        const done = arguments[arguments.length - 1];
        const text = Array.from({length: 400}, (_, i) => `line ${i} of a long message`).join('\\n');
        const ws = new WebSocket(arguments[0]);
        ws.onopen = () => ws.send(text);
        ws.onmessage = (event) => { done([ws.extensions, event.data === text ? 'same' : event.data]); ws.close(); };
        ws.onerror = () => done(['error', null]);
    """, f"{server.ws}/msg")
    assert extensions == "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    assert echoed == "same"


async def test_the_demo_page_and_a_terminal_on_msg_share_the_seeds_channel(squall, browser):
    from websockets.asyncio.client import connect

    server = squall("--log-level", "error")
    page = browser(page_url(server.http, nick="ada", transport="websocket"))
    wait_connected(page, "websocket")
    assert page.execute_script("return chat.room") == "msg"
    async with connect(f"{server.ws}/msg") as terminal:
        await terminal.send("hello from a terminal")
        assert await terminal.recv() == "hello from a terminal"  # the seed's chat echoes to all
        wait_shown(page, [("anonymous", "hello from a terminal")])
        say(page, "hello from a browser")
        assert json.loads(await terminal.recv()) == {"nick": "ada", "text": "hello from a browser"}


def test_a_browsers_favicon_request_is_answered_without_an_error(squall):
    server = squall()
    with urllib.request.urlopen(f"{server.http}/favicon.ico", timeout=5) as response:
        assert response.status == 204
    code, log = server.stop()
    assert not [line for line in log.splitlines() if "favicon" in line and "warning" in line], log


@pytest.mark.parametrize("transport", ["websocket", "longpoll"])
def test_a_publish_retried_with_its_idempotency_key_is_published_once(squall, browser, transport):
    # Over WebSocket the publish travels on /ws; on the polling transports squall.js POSTs it.
    server = squall("--log-level", "error")
    page = browser(f"{server.http}/healthz")
    result = page.execute_async_script("""
        const [transport, done] = [arguments[0], arguments[arguments.length - 1]];
        import('/squall.mjs').then(({ Client }) => {
          const client = new Client(location.origin, { channel: 'idem', transports: [transport] });
          client.addEventListener('open', async () => {
            const first = await client.publish('idem', 'once', { idempotencyKey: 'browser-1' });
            const retry = await client.publish('idem', 'once', { idempotencyKey: 'browser-1' });
            const other = await client.publish('idem', 'twice', { idempotencyKey: 'browser-2' });
            const history = await client.history('idem');
            client.close();
            done({ same: first.id === retry.id && first.offset === retry.offset, other: other.offset - first.offset,
                   history: history.map((m) => m.data), transport: client.transport });
          });
        }, (error) => done({ error: String(error) }));
    """, transport)
    assert result == {"same": True, "other": 1, "history": ["once", "twice"], "transport": transport}


def test_a_publish_made_while_the_network_is_down_is_sent_again_and_published_once(squall, browser):
    server = squall("--log-level", "error")
    proxy = CuttableProxy(server.port)
    try:
        page = browser(f"http://127.0.0.1:{proxy.port}/healthz")
        page.execute_async_script("""
            const done = arguments[arguments.length - 1];
            import('/squall.mjs').then(({ Client }) => {
              window.client = new Client(location.origin, { channel: 'retry', transports: ['websocket'] });
              client.addEventListener('open', () => done(true));
            });
        """)
        proxy.cut()
        wait_until(page, lambda d: d.execute_script("return client.readyState") != 1, message="page noticed the drop")
        page.execute_script("""
            window.outcome = null;
            client.publish('retry', 'sent while offline').then(
              (ack) => { window.outcome = { offset: ack.offset }; },
              (error) => { window.outcome = { error: String(error) }; });
        """)
        time.sleep(1.5)  # the first tries fail: nothing listens
        assert page.execute_script("return window.outcome") is None, "gave up while the network was down"
        proxy.restore()
        wait_until(page, lambda d: d.execute_script("return window.outcome"), 30, "the publish never settled")
        outcome = page.execute_script("return window.outcome")
        assert "offset" in outcome, outcome
        with urllib.request.urlopen(f"{server.http}/channels/retry/history", timeout=5) as response:
            history = json.load(response)
        assert [m["data"] for m in history["messages"]] == ["sent while offline"]
    finally:
        proxy.close()


def test_a_subscribe_the_server_refuses_for_now_is_sent_again_until_it_is_served(squall, browser):
    # One subscribe a second per connection: the second channel's subscribe is refused
    # rate_limited at first, and squall.js sends it again after a backoff.
    server = squall("--log-level", "error", "--subscribe-rate", "1/s", "--subscribe-burst", "1")
    page = browser(f"{server.http}/healthz")
    page.execute_script("""
        window.seen = []; window.errors = [];
        const script = document.createElement('script');
        script.src = '/squall.js';
        script.onload = () => {
          window.client = new Squall.Client(location.origin, { channel: 'first', transports: ['websocket'] });
          client.addEventListener('open', () => client.subscribe('second'));
          client.onmessage = (event) => seen.push(event.channel + ':' + event.data);
          client.onerror = (event) => errors.push(event.code);
        };
        document.head.appendChild(script);
    """)
    wait_until(page, lambda d: d.execute_script("var s = window.client && client._channels.second; return !!(s && s.position)"), 15,
               "the second channel was never subscribed")
    request = urllib.request.Request(f"{server.http}/channels/second/messages", data=b"hello", method="POST")
    urllib.request.urlopen(request, timeout=5).read()
    wait_until(page, lambda d: "second:hello" in d.execute_script("return window.seen"), 10, "the message on the second channel")
    assert page.execute_script("return window.errors") == [], "a refusal for now is not the application's error"


SECRET = "browser-test-secret-of-32-bytes!!"


def mint(sub, seconds, secret=SECRET):
    import jwt

    return jwt.encode({"sub": sub, "exp": int(time.time()) + seconds}, secret, algorithm="HS256")


@pytest.mark.parametrize("transport", ["websocket", "longpoll"])
def test_squall_js_asks_the_application_for_a_new_token_when_the_server_refuses_one(squall, browser, transport):
    server = squall("--log-level", "error", "--auth", "required", "--jwt-secret", SECRET)
    page = browser(f"{server.http}/healthz")
    tokens = [mint("ada", 60, secret="another-secret-of-at-least-32-bytes"), mint("ada", 60)]
    result = page.execute_async_script("""
        const [tokens, transport, done] = arguments;
        import('/squall.mjs').then(({ Client }) => {
          let asked = 0;
          const codes = [];
          const client = new Client(location.origin, {
            channel: 'tokens', transports: [transport], minReconnectDelay: 50,
            getToken: () => Promise.resolve(tokens[Math.min(asked++, tokens.length - 1)]),
          });
          client.addEventListener('error', (event) => { if (event.code) codes.push(event.code); });
          client.onopen = () => client.send('with a fresh token');
          client.onmessage = (event) => { client.close(); done({ asked, codes, data: event.data, transport: client.transport }); };
          setTimeout(() => done({ asked, codes, timedOut: true }), 15000);
        });
    """, tokens, transport)
    assert result["data"] == "with a fresh token", result
    assert result["asked"] == 2, result
    assert result["codes"][0] == 4001, result
    assert result["transport"] == transport


def test_squall_js_refreshes_its_token_before_it_expires_and_stays_connected(squall, browser):
    server = squall("--log-level", "error", "--auth", "required", "--jwt-secret", SECRET, "--jwt-leeway", "0")
    page = browser(f"{server.http}/healthz")
    tokens = [mint("ada", 3), mint("ada", 60)]
    result = page.execute_async_script("""
        const [tokens, done] = arguments;
        import('/squall.mjs').then(({ Client }) => {
          let asked = 0;
          const closes = [];
          const client = new Client(location.origin, {
            channel: 'refresh', transports: ['websocket'], tokenRefreshMargin: 1500,
            getToken: () => tokens[Math.min(asked++, tokens.length - 1)],
          });
          client.onclose = (event) => closes.push(event.code);
          client.onopen = () => {
            // Past the first token's expiry: a client that did not refresh is closed with 4002.
            setTimeout(() => client.send('after the first token expired'), 4500);
          };
          client.onmessage = (event) => { const state = { asked, closes: closes.slice(), data: event.data }; client.close(); done(state); };
          setTimeout(() => done({ asked, closes, timedOut: true }), 15000);
        });
    """, tokens)
    assert result == {"asked": 2, "closes": [], "data": "after the first token expired"}


def test_squall_js_acts_on_a_close_codes_range_not_on_a_list_of_codes(squall, browser):
    server = squall("--log-level", "error")
    page = browser(f"{server.http}/healthz")
    advice = page.execute_async_script("""
        const done = arguments[arguments.length - 1];
        import('/squall.mjs').then(({ default: Squall }) => {
          done([1001, 1008, 1011, 3000, 4000, 4001, 4002, 4003, 4009, 4010, 4011, 4499, 4500, 4999].map(Squall.closeAdvice));
        });
    """)
    assert advice == ["reconnect"] * 4 + ["refresh"] * 5 + ["reconnect"] * 3 + ["giveup"] * 2


@pytest.mark.parametrize("transport", ["websocket", "sse", "longpoll"])
def test_squall_js_subscribes_to_a_private_channel_with_the_applications_subscription_token(squall, browser, transport, tmp_path):
    import jwt

    config = tmp_path / "private.yaml"
    config.write_text("namespaces:\n  priv: {private: true, history: subscribers}\n")
    server = squall("--log-level", "error", "--config", str(config), "--jwt-secret", SECRET)
    page = browser(f"{server.http}/healthz")
    grant = jwt.encode({"channel": "priv:room", "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    result = page.execute_async_script("""
        const [grant, transport, done] = arguments;
        import('/squall.mjs').then(({ Client }) => {
          const asked = [];
          const client = new Client(location.origin, {
            channel: 'priv:room', transports: [transport],
            getSubscriptionToken: (channel) => { asked.push(channel); return grant; },
          });
          client.onopen = () => client.send('for subscribers only');
          client.onmessage = (event) => { client.close(); done({ asked: asked.slice(0, 1), data: event.data }); };
          setTimeout(() => done({ asked, timedOut: true }), 15000);
        });
    """, grant, transport)
    assert result == {"asked": ["priv:room"], "data": "for subscribers only"}
