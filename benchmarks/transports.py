#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The seed's comparison, measured: one message stream delivered over short polling, long
polling, Server-Sent Events and WebSocket, and what each costs.

    python3 benchmarks/transports.py           # builds Squall (release), runs, prints a table

One Squall server, pinned to core 0; the clients (asyncio, raw sockets so that every byte is
counted) pinned to core 1. For each transport, CLIENTS clients follow one channel while a
publisher posts RATE messages per second for SECONDS seconds. Reported per transport: the HTTP
requests the clients made, the bytes they sent and received (HTTP heads and bodies, WebSocket
frames; TCP/IP headers not counted), each delivery's delay from publish to receipt (p50/p99), and
the server's CPU time. Everything binds and connects to 127.0.0.1; every run ends by itself.
"""
import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from compare import ROOT, VENV, free_port, pyplot, sh, wait_listening  # noqa: E402

TRANSPORTS = ["short poll, 5 s", "short poll, 1 s", "long poll", "SSE", "WebSocket"]


class Tally:
    """What the clients of one transport did."""

    def __init__(self):
        self.requests = 0
        self.bytes = 0
        self.delays = []

    def deliver(self, text):
        self.delays.append((time.monotonic_ns() - json.loads(text)["t"]) / 1e6)


class Connection:
    """One HTTP/1.1 keep-alive connection that counts what crosses it."""

    def __init__(self, tally):
        self.tally = tally

    async def open(self, port):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        return self

    def send(self, data):
        self.writer.write(data)
        self.tally.bytes += len(data)

    async def read_head(self):
        head = await self.reader.readuntil(b"\r\n\r\n")
        self.tally.bytes += len(head)
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
        return int(lines[0].split()[1]), headers

    async def read_exactly(self, n):
        data = await self.reader.readexactly(n)
        self.tally.bytes += n
        return data

    async def read_line(self):
        line = await self.reader.readline()
        self.tally.bytes += len(line)
        return line

    async def get(self, path):
        self.tally.requests += 1
        self.send(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        status, headers = await self.read_head()
        if headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size = int((await self.read_line()).strip(), 16)
                chunk = await self.read_exactly(size + 2)
                if size == 0:
                    return status, body
                body += chunk[:-2]
        return status, await self.read_exactly(int(headers.get("content-length", "0")))

    def close(self):
        self.writer.close()


async def poller(port, channel, tally, interval, wait, stop):
    """Short polls (`wait=0`, every `interval` seconds) or long polls (`wait` seconds, back to back)."""
    connection = await Connection(tally).open(port)
    since = ""
    await asyncio.sleep(random.uniform(0, interval))  # clients are not in lockstep
    try:
        while not stop.is_set():
            started = time.monotonic()
            _, body = await connection.get(f"/channels/{channel}/messages?wait={wait}{since}")
            page = json.loads(body)
            for message in page["messages"]:
                tally.deliver(message["data"])
            since = f"&since={page['epoch']}:{page['offset']}"
            if interval:
                await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
    finally:
        connection.close()


async def sse_client(port, channel, tally, stop, ready):
    connection = await Connection(tally).open(port)
    tally.requests += 1
    connection.send(f"GET /channels/{channel}/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n".encode())
    _, headers = await connection.read_head()
    chunked = headers.get("transfer-encoding") == "chunked"
    event = None
    ready.release()
    try:
        while not stop.is_set():
            line = await connection.read_line()
            if chunked and line.strip() and all(c in b"0123456789abcdefABCDEF" for c in line.strip()):
                continue  # a chunk-size line: framing, not an event line
            if line.startswith(b"event: "):
                event = line[7:].strip()
            elif line.startswith(b"data: ") and event == b"message":
                tally.deliver(json.loads(line[6:])["data"])
    finally:
        connection.close()


async def websocket_client(port, channel, tally, stop, ready):
    connection = await Connection(tally).open(port)
    tally.requests += 1
    connection.send(
        f"GET /msg/{channel} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    status, _ = await connection.read_head()
    assert status == 101, status
    ready.release()
    try:
        while not stop.is_set():
            first, second = await connection.read_exactly(2)
            length = second & 0x7F
            if length == 126:
                length = int.from_bytes(await connection.read_exactly(2), "big")
            elif length == 127:
                length = int.from_bytes(await connection.read_exactly(8), "big")
            payload = await connection.read_exactly(length)
            if first & 0x0F == 0x1:
                tally.deliver(payload.decode())
    finally:
        connection.close()


async def publisher(port, channel, rate, seconds):
    connection = await Connection(Tally()).open(port)
    start = time.monotonic()
    for n in range(int(rate * seconds)):
        body = json.dumps({"t": time.monotonic_ns()}).encode()
        connection.send(f"POST /channels/{channel}/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        status, headers = await connection.read_head()
        await connection.read_exactly(int(headers.get("content-length", "0")))
        assert status == 201, status
        await asyncio.sleep(max(0.0, (n + 1) / rate - (time.monotonic() - start)))
    connection.close()


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_transport(name, port, server_pid, clients, rate, seconds):
    channel = "bench-" + "".join(c for c in name if c.isalnum())
    tally, stop, ready = Tally(), asyncio.Event(), asyncio.Semaphore(0)
    if name.startswith("short poll"):
        interval = 5 if "5" in name else 1
        tasks = [poller(port, channel, tally, interval, 0, stop) for _ in range(clients)]
    elif name == "long poll":
        tasks = [poller(port, channel, tally, 0, 25, stop) for _ in range(clients)]
    elif name == "SSE":
        tasks = [sse_client(port, channel, tally, stop, ready) for _ in range(clients)]
    else:
        tasks = [websocket_client(port, channel, tally, stop, ready) for _ in range(clients)]
    before = cpu_seconds(server_pid)
    running = [asyncio.create_task(t) for t in tasks]
    if name in ("SSE", "WebSocket"):
        for _ in range(clients):
            await ready.acquire()
    else:
        await asyncio.sleep(0.5)  # the first polls fix each client's starting position
    await publisher(port, channel, rate, seconds)
    # Let the slowest transport fetch what is left, then stop everyone.
    deadline = time.monotonic() + 7
    expected = int(rate * seconds) * clients
    while len(tally.delays) < expected and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    stop.set()
    for task in running:
        task.cancel()
    await asyncio.gather(*running, return_exceptions=True)
    delays = sorted(tally.delays)
    return {
        "clients": clients,
        "expected": expected,
        "delivered": len(delays),
        "requests": tally.requests,
        "bytes": tally.bytes,
        "p50Milliseconds": delays[len(delays) // 2] if delays else None,
        "p99Milliseconds": delays[min(len(delays) - 1, int(len(delays) * 0.99))] if delays else None,
        "serverCPUSeconds": cpu_seconds(server_pid) - before,
    }


def table(results):
    rows = ["| transport | HTTP requests | KiB on the wire | KiB per delivery | delivered | latency p50 / p99 | server CPU |",
            "|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        rows.append(
            f"| {name} | {r['requests']:,} | {r['bytes'] / 1024:,.0f} | {r['bytes'] / 1024 / max(r['delivered'], 1):.2f}"
            f" | {r['delivered']:,} / {r['expected']:,} | {r['p50Milliseconds']:.1f} / {r['p99Milliseconds']:.1f} ms"
            f" | {r['serverCPUSeconds']:.2f} s |"
        )
    return "\n".join(rows)


def chart(results, setup, path):
    plt = pyplot()
    names = list(results)
    panels = [
        ("HTTP requests", [results[n]["requests"] for n in names], None),
        ("KiB on the wire", [results[n]["bytes"] / 1024 for n in names], None),
        ("latency p50 (ms)", [results[n]["p50Milliseconds"] for n in names], "log"),
        ("server CPU (s)", [results[n]["serverCPUSeconds"] for n in names], None),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))
    for axis, (title, values, scale) in zip(axes, panels):
        axis.barh(names, values, color=["#2b6cb0" if n == "WebSocket" else "#a0aec0" for n in names])
        axis.set_title(title)
        if scale:
            axis.set_xscale(scale)
        axis.invert_yaxis()
    for axis in axes[1:]:
        axis.set_yticklabels([])
    fig.suptitle(f"One stream, five ways: {setup}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=100, help="clients per transport, 1–1000 (default 100)")
    parser.add_argument("--rate", type=float, default=5, help="messages per second, 0.1–100 (default 5)")
    parser.add_argument("--seconds", type=float, default=30, help="seconds of publishing, 1–120 (default 30)")
    parser.add_argument("--chart", metavar="RESULTS_JSON", help="only redraw the chart and table from a results file")
    args = parser.parse_args()
    if args.chart:
        saved = json.loads(Path(args.chart).read_text())
        chart(saved["results"], saved["setup"], ROOT / "docs" / "benchmarks-transports.png")
        print(table(saved["results"]))
        return
    if not (1 <= args.clients <= 1000 and 0.1 <= args.rate <= 100 and 1 <= args.seconds <= 120):
        sys.exit("clients 1–1000, rate 0.1–100, seconds 1–120")
    if not (VENV / "bin" / "python").exists():
        sys.exit("run benchmarks/compare.py once first: it installs matplotlib into .venv-bench")
    sh("swift", "build", "-c", "release", "--product", "squall", cwd=ROOT)
    bin_path = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout.strip()
    port = free_port()
    server = subprocess.Popen(["taskset", "-c", "0", str(Path(bin_path) / "squall"), "serve", "--port", str(port),
                               "--log-level", "error"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.sched_setaffinity(0, {1})
    results = {}
    try:
        wait_listening(port, server)
        for name in TRANSPORTS:
            print(f"{name} …", file=sys.stderr)
            results[name] = asyncio.run(run_transport(name, port, server.pid, args.clients, args.rate, args.seconds))
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(10)
    setup = f"{args.clients} clients, {args.rate:g} messages/s for {args.seconds:g} s"
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    out = ROOT / "benchmarks" / "results" / f"transports-{stamp}.json"
    out.write_text(json.dumps({"date": stamp, "setup": setup, "results": results}, indent=2))
    chart(results, setup, ROOT / "docs" / "benchmarks-transports.png")
    print(table(results))
    print(f"\nwrote {out.relative_to(ROOT)} and docs/benchmarks-transports.png", file=sys.stderr)


if __name__ == "__main__":
    main()
