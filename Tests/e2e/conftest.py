# SPDX-License-Identifier: Apache-2.0
"""Fixtures that run the real `squall` binary on 127.0.0.1 and a free port."""
import os
import resource
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def squall_binary() -> str:
    path = os.environ.get("SQUALL_BIN")
    if not path:
        bin_dir = subprocess.run(
            ["swift", "build", "--show-bin-path"], cwd=ROOT, check=True, capture_output=True, text=True
        ).stdout.strip()
        path = os.path.join(bin_dir, "squall")
    if not os.access(path, os.X_OK):
        pytest.exit(f"squall binary not found at {path}: run `swift build` first", returncode=2)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Squall:
    """One running `squall serve` process."""

    def __init__(self, args, env, nofile=None):
        args = list(args)
        self.args = [squall_binary(), "serve", *args]
        self.tls = "--tls-cert" in args
        if "--port" in args:
            self.port = int(args[args.index("--port") + 1])
        elif "SQUALL_PORT" in env:
            self.port = int(env["SQUALL_PORT"]) if env["SQUALL_PORT"].isdigit() else None
        else:
            self.port = free_port()
            self.args += ["--port", str(self.port)]
        def limit_descriptors():
            # A number is both limits; a pair is (soft, hard).
            resource.setrlimit(resource.RLIMIT_NOFILE, nofile if isinstance(nofile, tuple) else (nofile, nofile))

        # The log goes to a file, not a pipe: a pipe nobody reads fills up, and a server that
        # logs much (a test's flood) would block on it.
        self.log = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(
            self.args,
            env={**os.environ, **env},
            stdout=subprocess.DEVNULL,
            stderr=self.log,
            text=True,
            preexec_fn=limit_descriptors if nofile else None,
        )
        self.output = None

    @property
    def ws(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}"

    @property
    def http(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def wait_ready(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"squall exited early: {self.stop()}")
            try:
                # A test's own certificate: trusted here, checked by the tests that need it.
                context = ssl._create_unverified_context() if self.tls else None
                with urllib.request.urlopen(f"{self.http}/healthz", timeout=1, context=context) as response:
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("squall did not start listening in time")

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Signals the process and returns (exit code, stderr)."""
        if self.process.poll() is None and self.output is None:
            self.process.send_signal(sig)
        return self.exited(timeout)

    def log_so_far(self) -> str:
        """What the server has logged until now, while it runs."""
        with open(self.log.fileno(), closefd=False) as log:
            log.seek(0)
            return log.read()

    def exited(self, timeout=20.0):
        """Waits for the process to exit (killing it after `timeout`); returns (exit code, stderr)."""
        if self.output is None:
            note = ""
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                note = "\n[test] killed: did not exit in time"
            self.log.seek(0)
            self.output = (self.process.returncode, self.log.read() + note)
            self.log.close()
        return self.output


@pytest.fixture
def browser():
    """Starts headless Chromium pages (Debian's chromium and chromedriver); all quit after the test."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    drivers = []

    def open_page(url=None, before_load=None, flags=()):
        options = webdriver.ChromeOptions()
        for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,800", *flags):
            options.add_argument(flag)
        options.binary_location = "/usr/bin/chromium"
        driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
        drivers.append(driver)
        if before_load:
            driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": before_load})
        if url:
            driver.get(url)
        return driver

    yield open_page
    for driver in drivers:
        driver.quit()


@pytest.fixture
def squall():
    """Starts `squall serve` with extra args/env; every process is stopped after the test."""
    started = []

    def start(*args, env=None, ready=True, nofile=None):
        """`nofile`: the descriptors the process may hold (`ulimit -n`)."""
        server = Squall(list(args), env or {}, nofile=nofile)
        started.append(server)
        return server.wait_ready() if ready else server

    yield start
    for server in started:
        server.stop(signal.SIGKILL)
