# SPDX-License-Identifier: Apache-2.0
"""The admin page at /admin, in headless Chromium: signed in with an API key, it shows the node,
connections by transport, channels with their subscribers and message rates, and recent
refusals, live over /admin/events; its forms publish and disconnect a user."""
import asyncio
import json
import urllib.error
import urllib.request

from selenium.webdriver.common.by import By
from websockets.asyncio.client import connect

from test_auth import SECRET, close_of, mint
from test_browser import wait_until

KEY = "admin-key"


def text(driver, element_id):
    return driver.find_element(By.ID, element_id).text


def sign_in(driver, key):
    driver.find_element(By.ID, "key").send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "#login-form button").click()


async def test_the_admin_page_shows_the_node_live_and_publishes_and_disconnects(squall, browser):
    server = squall("--log-level", "error", "--api-key", KEY, "--jwt-secret", SECRET)
    token = mint(SECRET, sub="mallory")
    async with connect(f"{server.ws}/msg/lobby?token={token}", open_timeout=5) as listener, connect(
        f"{server.ws}/ws", subprotocols=["squall.v1"], open_timeout=5
    ):
        refuse(server)
        page = browser(f"{server.http}/admin")
        sign_in(page, KEY)
        wait_until(page, lambda d: "lobby" in text(d, "channels"), message="the channel with its subscriber")
        assert "key" not in page.current_url and page.execute_script("return localStorage.length + sessionStorage.length") == 0
        wait_until(page, lambda d: "msg\n1" in text(d, "transports").replace(" ", "\n") and "ws\n1" in text(d, "transports").replace(" ", "\n"))
        wait_until(page, lambda d: "invalid_channel" in text(d, "refusals"), message="the refusal")
        # A message rate, from messages published meanwhile.
        for n in range(5):
            urllib.request.urlopen(urllib.request.Request(f"{server.http}/channels/lobby/messages", data=f"m{n}".encode(), method="POST"), timeout=5)
        wait_until(page, lambda d: any(row.split()[-1] != "0" for row in text(d, "channels").splitlines() if row.startswith("lobby")))
        for _ in range(5):
            await asyncio.wait_for(listener.recv(), 5)
        page.find_element(By.ID, "publish-channel").send_keys("lobby")
        page.find_element(By.ID, "publish-data").send_keys("from the admin page")
        page.find_element(By.CSS_SELECTOR, "#publish-form button").click()
        assert await asyncio.wait_for(listener.recv(), 10) == "from the admin page"
        wait_until(page, lambda d: "published at offset 6" in text(d, "publish-result"))
        page.find_element(By.ID, "disconnect-user").send_keys("mallory")
        page.find_element(By.ID, "disconnect-reason").send_keys("spam")
        page.find_element(By.CSS_SELECTOR, "#disconnect-form button").click()
        assert await close_of(listener, timeout=10) == (4500, "spam")
        wait_until(page, lambda d: "closed 1 connection" in text(d, "disconnect-result"))


def refuse(server):
    """A request the server refuses (invalid_channel), for the page's list of refusals."""
    try:
        urllib.request.urlopen(f"{server.http}/channels/bad%20name/history", timeout=5)
    except urllib.error.HTTPError:
        pass


def test_a_wrong_key_is_told_and_shows_nothing(squall, browser):
    server = squall("--log-level", "error", "--api-key", KEY)
    page = browser(f"{server.http}/admin")
    sign_in(page, "not-the-key")
    wait_until(page, lambda d: "unauthorized" in text(d, "login-result"), message="the refusal")
    assert not page.find_element(By.ID, "dashboard").is_displayed()


def test_the_feed_needs_the_key(squall):
    server = squall("--log-level", "error", "--api-key", KEY)
    try:
        urllib.request.urlopen(f"{server.http}/admin/events", timeout=5)
        raise AssertionError("the feed answered without a key")
    except urllib.error.HTTPError as error:
        assert error.code == 401 and json.loads(error.read())["error"]["code"] == "unauthorized"
