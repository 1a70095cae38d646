#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Squall's HTTP publish beside its framework's floor, in one command:

    python3 benchmarks/http_publish.py            # 5 alternating rounds, medians
    python3 benchmarks/http_publish.py --quick    # 2 rounds, fewer requests

Each server runs on core 0 (`taskset -c 0`, one event loop thread) and `squall bench publish
--transport http --no-subscriber` (release build) on core 1: 16 keep-alive connections, one
request in flight on each, `POST /channels/bench-publish/messages` with 64 bytes, each answered
201. The servers, measured in the same rounds, one after another:

- Squall (`squall serve --publish-rate off`): every check a publish makes (origin, rate, size,
  idempotency) and the publish itself, answered once the message is in the channel's log;
- an empty Hummingbird 2 handler (`squall bench floor --kind hummingbird`): the floor of the
  framework Squall's HTTP routes run on;
- SwiftNIO's HTTP/1.1 pipeline answering in the event loop (`squall bench floor --kind nio`):
  the least a fast path in front of Hummingbird could cost.

Reports the server's CPU per request (median of the rounds), requests/s and p99, writes
benchmarks/results/DATE-http.json. `--squall BINARY` serves Squall with another build (for
before/after). Everything binds 127.0.0.1; every run is bounded in count and time.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from compare import ROOT, bench, free_port, stop, wait_listening


def build():
    subprocess.run(["swift", "build", "-c", "release", "--product", "squall"], cwd=ROOT, check=True)
    out = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                         capture_output=True, text=True).stdout.strip()
    return Path(out) / "squall"


def measure(generator, command, requests):
    port = free_port()
    process = subprocess.Popen(["taskset", "-c", "0", *command(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, process)
        run = bench(generator, f"ws://127.0.0.1:{port}/ws", "publish", "--transport", "http", "--no-subscriber",
                    "--publishers", "16", "--messages", str(requests), "--server-pid", str(process.pid), timeout=300)
    finally:
        stop(process)
    run["serverMicrosecondsPerRequest"] = 1e6 * run["serverCPUSeconds"] / max(run["acknowledged"], 1)
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds; medians are reported (default 5)")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 10,000 requests")
    parser.add_argument("--squall", metavar="BINARY", help="serve Squall with this binary (the generator is always the fresh build)")
    parser.add_argument("--before", metavar="BINARY", help="also measure this build as \"Squall before\", in the same rounds")
    args = parser.parse_args()
    generator = build()
    server = Path(args.squall) if args.squall else generator
    rounds, requests = (2, 10_000) if args.quick else (args.rounds, 60_000)
    servers = {
        "Squall": lambda port: [str(server), "serve", "--port", str(port), "--log-level", "error", "--publish-rate", "off"],
        "empty Hummingbird handler": lambda port: [str(generator), "bench", "floor", "--kind", "hummingbird", "--port", str(port)],
        "SwiftNIO HTTP/1.1, answered in the loop": lambda port: [str(generator), "bench", "floor", "--kind", "nio", "--port", str(port)],
    }
    if args.before:
        servers = {"Squall before": lambda port: [args.before, "serve", "--port", str(port), "--log-level", "error", "--publish-rate", "off"],
                   **servers}
    runs = {name: [] for name in servers}
    for index in range(rounds):
        for name, command in servers.items():
            print(f"{name}: round {index + 1}/{rounds}", file=sys.stderr)
            runs[name].append(measure(generator, command, requests))
    results = {
        name: {
            "serverMicrosecondsPerRequest": statistics.median(r["serverMicrosecondsPerRequest"] for r in done),
            "requestsPerSecond": statistics.median(r["acknowledgedPerSecond"] for r in done),
            "p99Milliseconds": statistics.median(r["acknowledgedP99Milliseconds"] for r in done),
            "rounds": [r["serverMicrosecondsPerRequest"] for r in done],
        }
        for name, done in runs.items()
    }
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    out = ROOT / "benchmarks" / "results" / f"{stamp}-http.json"
    out.parent.mkdir(exist_ok=True)
    machine = {"date": stamp, "cpus": os.cpu_count(), "uname": " ".join(os.uname()), "rounds": rounds, "requests": requests,
               "squall": str(server), "before": args.before}
    out.write_text(json.dumps({"machine": machine, "results": results}, indent=2))
    print("| server, POST /channels/C/messages, 16 keep-alive connections | server CPU per request (median; each round) | requests/s | p99 |")
    print("|---|---|---|---|")
    for name, r in results.items():
        each = ", ".join(f"{value:.1f}" for value in r["rounds"])
        print(f"| {name} | {r['serverMicrosecondsPerRequest']:.1f} µs ({each}) | {r['requestsPerSecond'] / 1000:.1f}k | {r['p99Milliseconds']:.2f} ms |")
    print(f"\nwrote {out.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
