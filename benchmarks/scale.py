#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Squall at this machine's ceiling of connections per process, in one command:

    python3 benchmarks/scale.py              # up to 19,000 WebSocket connections (the descriptor limit allows)
    python3 benchmarks/scale.py --quick      # 2,000, shorter holds, for trying the script

One server at a time on core 0 (`taskset -c 0`, one event loop), `squall bench` (release build) on
core 1, every connection on ws://127.0.0.1:PORT/msg. It measures:

- memory: server RSS per idle connection at 1,000, 5,000, 10,000 and the most connections the
  descriptor limit allows (each on a fresh server), and what RSS and descriptors are once every
  connection has closed;
- pings: the server's CPU while the connections idle with pings every 570 ms — at 19,000
  connections, the ~33,000 pings and pongs a second that a million connections make at the
  default 30 s — against the same hold with pings off (what is left: the sweeps); /healthz timed
  throughout;
- fan-out: deliveries/s and server CPU per delivery to every connection, against 1,000
  subscribers on the same server.

It prints a Markdown table with a projection to a million connections and writes
benchmarks/results/DATE-scale.json. Everything binds 127.0.0.1; every run is bounded in count
and time (each step has a timeout, the whole script a few minutes).
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

from compare import ROOT, bench, free_port, stop, wait_listening

# Descriptors a server keeps besides its connections (listener, epoll, eventfds, stdio, the
# store), and that the generator keeps besides its sockets: the ceiling leaves room for both.
SPARE_DESCRIPTORS = 600
DEFAULT_PING = 30.0
MILLION = 1_000_000


def build():
    subprocess.run(["swift", "build", "-c", "release", "--product", "squall"], cwd=ROOT, check=True)
    out = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    return Path(out) / "squall"


def serve(server, *flags):
    port = free_port()
    process = subprocess.Popen(["taskset", "-c", "0", str(server), "serve", "--port", str(port), "--log-level", "error", *flags],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_listening(port, process)
    return process, port


def descriptors(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class HealthProbe(threading.Thread):
    """Times GET /healthz every 0.25 s while the server holds at least `connections` descriptors."""

    def __init__(self, port, pid, connections):
        super().__init__(daemon=True)
        self.url, self.pid, self.connections = f"http://127.0.0.1:{port}/healthz", pid, connections
        self.milliseconds, self.done = [], threading.Event()

    def run(self):
        while not self.done.wait(0.25):
            try:
                if descriptors(self.pid) < self.connections:
                    continue
                start = time.perf_counter()
                with urllib.request.urlopen(self.url, timeout=5) as response:
                    response.read()
                self.milliseconds.append(1000 * (time.perf_counter() - start))
            except OSError:
                pass


def idle(squall, server, connections, hold, *flags, probe=False):
    """`connections` idle connections held `hold` seconds on a fresh `server` started with
    `flags`; `squall` generates the load."""
    process, port = serve(server, *flags)
    health = HealthProbe(port, process.pid, connections) if probe else None
    try:
        if health:
            health.start()
        run = bench(squall, f"ws://127.0.0.1:{port}/msg", "idle", "--connections", str(connections), "--hold", str(hold),
                    "--server-pid", str(process.pid), timeout=hold + 180)
    finally:
        if health:
            health.done.set()
            health.join()
        stop(process)
    run["kibPerConnection"] = (run["serverKiBAfter"] - run["serverKiBBefore"]) / run["connections"]
    if health:
        run["healthzMilliseconds"] = health.milliseconds
    return run


def fanout(squall, server, connections, messages):
    """Fan-out to 1,000 subscribers, then to `connections`, on one fresh `server`."""
    process, port = serve(server)
    url = f"ws://127.0.0.1:{port}/msg"
    try:
        result = {}
        for subscribers, count in ((1000, 1000), (connections, messages)):
            run = bench(squall, url, "fanout", "--subscribers", str(subscribers), "--messages", str(count), "--size", "64",
                        "--server-pid", str(process.pid), "--timeout", "300", timeout=600)
            run["deliveriesPerSecond"] = run["delivered"] / run["seconds"]
            run["serverCPUMicrosecondsPerDelivery"] = 1e6 * run["serverCPUSeconds"] / max(run["delivered"], 1)
            result[str(subscribers)] = run
        return result
    finally:
        stop(process)


def ceiling(requested):
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return min(requested, soft - SPARE_DESCRIPTORS)


def report(results):
    top = results["connections"]
    memory = results["memory"]
    pings, quiet = results["pings"], results["pingsOff"]
    ping_cpu = pings["serverCPUSecondsHeld"] - quiet["serverCPUSecondsHeld"]
    per_ping = 1e6 * ping_cpu / max(pings["pingsAnswered"], 1)
    fan = results["fanout"]
    wide, narrow = fan[str(top)], fan["1000"]
    kib = memory[str(top)]["kibPerConnection"]
    health = sorted(pings.get("healthzMilliseconds", [])) or [float("nan")]
    rows = [
        "| connections | server KiB per idle connection | RSS once all closed (KiB, before → after) | descriptors before → held → closed |",
        "|---|---|---|---|",
    ]
    for count, run in sorted(memory.items(), key=lambda item: int(item[0])):
        rows.append(f"| {int(count):,} | {run['kibPerConnection']:.2f} | {run['serverKiBBefore']:,} → {run['serverKiBClosed']:,}"
                    f" | {run['serverDescriptorsBefore']} → {run['serverDescriptorsHeld']:,} → {run['serverDescriptorsClosed']} |")
    rows += [
        "",
        f"| at {top:,} connections | figure |",
        "|---|---|",
        f"| pings every {results['pingInterval'] * 1000:.0f} ms (= a million connections at 30 s) | {pings['pingsAnswered'] / pings['heldSeconds']:,.0f} pings and pongs/s, "
        f"server CPU {100 * pings['serverCPUSecondsHeld'] / pings['heldSeconds']:.1f} % of a core |",
        f"| the same hold, pings off (the sweeps alone) | server CPU {100 * quiet['serverCPUSecondsHeld'] / quiet['heldSeconds']:.2f} % of a core |",
        f"| one ping and its pong | {per_ping:.2f} µs of server CPU |",
        f"| GET /healthz while pinging | median {statistics.median(health):.2f} ms, max {max(health):.2f} ms ({len(health)} requests) |",
        f"| fan-out of 64 B to all {top:,} | {wide['deliveriesPerSecond'] / 1000:,.0f}k deliveries/s, {wide['serverCPUMicrosecondsPerDelivery']:.2f} µs of server CPU each |",
        f"| fan-out to 1,000, same server | {narrow['deliveriesPerSecond'] / 1000:,.0f}k deliveries/s, {narrow['serverCPUMicrosecondsPerDelivery']:.2f} µs each |",
        "",
        "| a million connections, projected | figure |",
        "|---|---|",
        f"| memory | {kib * MILLION / 1024 / 1024:.1f} GiB ({kib:.2f} KiB each) |",
        f"| pings at 30 s | {MILLION / DEFAULT_PING:,.0f}/s × {per_ping:.2f} µs = {MILLION / DEFAULT_PING * per_ping / 1e6:.2f} cores |",
        f"| one broadcast to all | {MILLION * wide['serverCPUMicrosecondsPerDelivery'] / 1e6:.2f} s of one core's CPU"
        f" ({MILLION / wide['deliveriesPerSecond']:.2f} s at this rate on one core) |",
        f"| processes at this machine's {results['descriptorLimit']:,} descriptors each | {-(-MILLION // top)} |",
    ]
    return "\n".join(rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--connections", type=int, default=19_000, help="most connections (default 19,000; capped by the descriptor limit)")
    parser.add_argument("--hold", type=int, default=30, help="seconds the ping and sweep runs hold the connections (default 30)")
    parser.add_argument("--quick", action="store_true", help="2,000 connections, short holds")
    parser.add_argument("--squall", metavar="BINARY", help="serve with this binary (e.g. an earlier build); the generator is always the fresh build")
    args = parser.parse_args()
    squall = build()
    server = Path(args.squall) if args.squall else squall
    top = ceiling(2000 if args.quick else args.connections)
    hold = 5 if args.quick else args.hold
    steps = sorted({n for n in (1000, 5000, 10_000) if n < top} | {top})
    # The interval at which `top` connections make the pings a million make at 30 s.
    interval = DEFAULT_PING * top / MILLION
    results = {"server": str(server), "connections": top, "descriptorLimit": resource.getrlimit(resource.RLIMIT_NOFILE)[0], "pingInterval": interval, "memory": {}}
    for count in steps:
        print(f"idle: {count} connections", file=sys.stderr)
        results["memory"][str(count)] = idle(squall, server, count, 2)
    print(f"pings: {top} connections every {interval * 1000:.0f} ms for {hold} s", file=sys.stderr)
    results["pings"] = idle(squall, server, top, hold, "--ping-interval", f"{interval * 1000:.0f}ms", probe=True)
    print(f"pings off: {top} connections for {hold} s", file=sys.stderr)
    results["pingsOff"] = idle(squall, server, top, hold, "--ping-interval", "0")
    print(f"fan-out: 1,000 and {top} subscribers", file=sys.stderr)
    results["fanout"] = fanout(squall, server, top, 200 if args.quick else 100)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    out = ROOT / "benchmarks" / "results" / f"{stamp}-scale.json"
    out.parent.mkdir(exist_ok=True)
    machine = {"date": stamp, "cpus": os.cpu_count(), "uname": " ".join(os.uname())}
    out.write_text(json.dumps({"machine": machine, "results": results}, indent=2))
    print(report(results))
    print(f"\nwrote {out.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
