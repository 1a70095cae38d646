# SPDX-License-Identifier: Apache-2.0
"""Takes docs/demo.png — the demo chat with two people talking — and docs/admin.png — the admin
page of a server with some traffic — in headless Chromium.

Run after `scripts/test` has made .venv-test:  .venv-test/bin/python scripts/screenshot.py
"""
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "e2e"))

from conftest import Squall  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402


def main():
    server = Squall(["--log-level", "error"], {}).wait_ready()
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,720", "--hide-scrollbars"):
        options.add_argument(flag)
    pages = []
    try:
        for nick, transport in (("ada", "websocket"), ("grace", "sse")):
            page = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
            page.get(f"{server.http}/?nick={nick}&room=lobby&transport={transport}")
            pages.append(page)
        time.sleep(1.5)
        lines = [
            ("ada", "Short polling asks every second; most answers are empty."),
            ("grace", "Long polling waits for news — but proxies cut it at 60 s, so Squall answers at 25."),
            ("ada", "And WebSocket just pushes. Same log, same order, whichever you use."),
            ("grace", "<script>alert('hi')</script> stays text, by the way."),
        ]
        for nick, text in lines:
            body = json.dumps({"nick": nick, "text": text}).encode()
            request = urllib.request.Request(f"{server.http}/channels/lobby/messages", data=body, method="POST")
            urllib.request.urlopen(request, timeout=5).read()
            time.sleep(0.2)
        time.sleep(5.5)  # a presence refresh
        out = ROOT / "docs" / "demo.png"
        pages[0].save_screenshot(str(out))
        print(f"wrote {out.relative_to(ROOT)}")
    finally:
        for page in pages:
            page.quit()
        server.stop()


def admin():
    """docs/admin.png: the admin page, signed in, with a few clients on a few channels."""
    import asyncio

    from websockets.asyncio.client import connect

    server = Squall(["--log-level", "error", "--api-key", "screenshot-key"], {}).wait_ready()
    options = webdriver.ChromeOptions()
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,900", "--hide-scrollbars"):
        options.add_argument(flag)
    page = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))

    async def traffic():
        sockets = [await connect(f"{server.ws}/msg/{room}") for room in ("lobby", "lobby", "lobby", "chat:support", "news")]
        page.get(f"{server.http}/admin")
        page.find_element("id", "key").send_keys("screenshot-key")
        page.find_element("css selector", "#login-form button").click()
        try:  # a refusal, for the list of them
            urllib.request.urlopen(f"{server.http}/channels/bad%20name/history", timeout=5)
        except urllib.error.HTTPError:
            pass
        for n in range(30):
            request = urllib.request.Request(f"{server.http}/channels/lobby/messages", data=f"m{n}".encode(), method="POST")
            urllib.request.urlopen(request, timeout=5).read()
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.2)
        out = ROOT / "docs" / "admin.png"
        page.save_screenshot(str(out))
        print(f"wrote {out.relative_to(ROOT)}")
        for socket in sockets:
            await socket.close()

    try:
        asyncio.run(traffic())
    finally:
        page.quit()
        server.stop()


if __name__ == "__main__":
    os.environ.setdefault("SQUALL_BIN", str(ROOT / ".build" / "debug" / "squall"))
    main()
    admin()
