#!/usr/bin/env python3
"""Acknowledged publishes per store, in one command:

    python3 benchmarks/publish.py            # memory and SQLite, over /ws and HTTP, 3 runs each
    python3 benchmarks/publish.py --quick    # smaller counts, for trying the script

For each store (`--store memory`, `--store sqlite:FILE` in a fresh directory) Squall serves on
core 0 with `--publish-rate off`; `squall bench publish` (release build) runs on core 1: 16
connections publish 100,000 messages of 64 bytes, acknowledged one by one, over /ws (16 in
flight per connection) and over HTTP (one request in flight per connection). Medians go to
benchmarks/results/DATE-publish.json and a Markdown table to stdout. Everything binds
127.0.0.1; every run is bounded in count and time.
"""
import argparse
import json
import statistics
import subprocess
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from compare import ROOT, bench, free_port, wait_listening

KEYS = ["acknowledgedPerSecond", "acknowledgedP50Milliseconds", "acknowledgedP99Milliseconds",
        "deliveredP50Milliseconds", "deliveredP99Milliseconds", "serverMicrosecondsPerPublish"]


def release_binary():
    subprocess.run(["swift", "build", "-c", "release", "--product", "squall"], cwd=ROOT, check=True)
    bin_path = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout.strip()
    return Path(bin_path) / "squall"


def measure(squall, store, transport, runs, messages):
    with tempfile.TemporaryDirectory() as directory:
        store_arg = "memory" if store == "memory" else f"sqlite:{directory}/bench.sqlite"
        port = free_port()
        server = subprocess.Popen(["taskset", "-c", "0", str(squall), "serve", "--port", str(port), "--log-level", "error",
                                   "--publish-rate", "off", "--store", store_arg], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_listening(port, server)
            results = []
            for run in range(runs):
                result = bench(squall, f"ws://127.0.0.1:{port}/ws", "publish", "--transport", transport, "--publishers", "16",
                               "--messages", str(messages), "--size", "64", "--window", "16", "--channel", f"{transport}-{run}",
                               "--server-pid", str(server.pid))
                if result["acknowledged"] != messages or result["delivered"] != messages:
                    raise RuntimeError(f"{store} over {transport}: {result['acknowledged']} acknowledged, {result['delivered']} delivered")
                result["serverMicrosecondsPerPublish"] = 1e6 * result["serverCPUSeconds"] / result["acknowledged"]
                results.append(result)
        finally:
            server.terminate()
            server.wait(timeout=30)
    return {key: statistics.median(r[key] for r in results) for key in KEYS}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    messages = 10_000 if options.quick else 100_000
    squall = release_binary()
    table = {f"{store} over {transport}": measure(squall, store, transport, options.runs, messages)
             for store in ["memory", "sqlite"] for transport in ["ws", "http"]}
    results = ROOT / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    (results / f"{datetime.now(timezone.utc):%Y-%m-%d}-publish.json").write_text(json.dumps(table, indent=2) + "\n")
    print("| store, route | acknowledged/s | ack p50 / p99 | publish → delivery p50 / p99 | server CPU per publish |")
    print("|---|---|---|---|---|")
    for name, row in table.items():
        print(f"| {name} | {row['acknowledgedPerSecond']:,.0f} | {row['acknowledgedP50Milliseconds']:.2f} / "
              f"{row['acknowledgedP99Milliseconds']:.2f} ms | {row['deliveredP50Milliseconds']:.2f} / "
              f"{row['deliveredP99Milliseconds']:.2f} ms | {row['serverMicrosecondsPerPublish']:.1f} µs |")


if __name__ == "__main__":
    main()
