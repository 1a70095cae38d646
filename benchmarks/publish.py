#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Acknowledged publishes per store, in one command:

    python3 benchmarks/publish.py            # memory, SQLite and PostgreSQL, over /ws and HTTP, 3 runs each
    python3 benchmarks/publish.py --quick    # smaller counts, for trying the script

For each store (`--store memory`, `--store sqlite:FILE` in a fresh directory) Squall serves on
core 0 with `--publish-rate off`; `squall bench publish` (release build) runs on core 1: 16
connections publish 100,000 messages of 64 bytes, acknowledged one by one, over /ws (16 in
flight per connection) and over HTTP (one request in flight per connection) — the channel route
(`POST /channels/C/messages`), the server API's `POST /api/publish`, and its `POST /api/batch`
with 100 publishes a request (`--transports` picks).

PostgreSQL (`--store postgres://…`, the server scripts/postgres starts unless `--postgres URL`
names one, commits fsynced) runs two nodes of one system, unpinned (node, node, database and
client share this machine's cores), with 12 publishes in flight per /ws connection:
"two nodes" has publishers on both and the subscriber on the second; "node 1 → node 2" has
publishers on the first only, so every delivery timed crossed from one node to the other.
Medians go to
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

POSTGRES_KEYS = ["acknowledgedPerSecond", "acknowledgedP50Milliseconds", "acknowledgedP99Milliseconds",
                 "deliveredP50Milliseconds", "deliveredP99Milliseconds"]
KEYS = ["acknowledgedPerSecond", "acknowledgedP50Milliseconds", "acknowledgedP99Milliseconds",
        "deliveredP50Milliseconds", "deliveredP99Milliseconds", "serverMicrosecondsPerPublish"]


API_KEY = "bench-key"


def release_binary():
    subprocess.run(["swift", "build", "-c", "release", "--product", "squall"], cwd=ROOT, check=True)
    bin_path = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout.strip()
    return Path(bin_path) / "squall"


def measure(squall, generator, store, transport, runs, messages):
    with tempfile.TemporaryDirectory() as directory:
        store_arg = "memory" if store == "memory" else f"sqlite:{directory}/bench.sqlite"
        port = free_port()
        server = subprocess.Popen(["taskset", "-c", "0", str(squall), "serve", "--port", str(port), "--log-level", "error",
                                   "--publish-rate", "off", "--store", store_arg, "--api-key", API_KEY],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_listening(port, server)
            results = []
            for run in range(runs):
                result = bench(generator, f"ws://127.0.0.1:{port}/ws", "publish", "--transport", transport, "--publishers", "16",
                               "--messages", str(messages), "--size", "64", "--window", "16", "--channel", f"{transport}-{run}",
                               "--server-pid", str(server.pid), "--api-key", API_KEY, "--batch", "100")
                if result["acknowledged"] != messages or result["delivered"] != messages:
                    raise RuntimeError(f"{store} over {transport}: {result['acknowledged']} acknowledged, {result['delivered']} delivered")
                result["serverMicrosecondsPerPublish"] = 1e6 * result["serverCPUSeconds"] / result["acknowledged"]
                results.append(result)
        finally:
            server.terminate()
            server.wait(timeout=30)
    return {key: statistics.median(r[key] for r in results) for key in KEYS}


def measure_postgres(squall, database, transport, runs, messages, cross_only):
    ports = [free_port(), free_port()]
    servers = [subprocess.Popen([str(squall), "serve", "--port", str(port), "--log-level", "error", "--publish-rate", "off",
                                 "--store", database], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for port in ports]
    try:
        for port, server in zip(ports, servers):
            wait_listening(port, server)
        urls = [f"ws://127.0.0.1:{port}/ws" for port in ports]
        publish_at = urls[:1] if cross_only else urls
        results = []
        for run in range(runs):
            arguments = [argument for url in publish_at[1:] for argument in ("--url", url)]
            result = bench(squall, publish_at[0], "publish", *arguments, "--subscriber-url", urls[1], "--transport", transport,
                           "--publishers", "16", "--messages", str(messages), "--size", "64", "--window", "12",
                           "--channel", f"pg-{transport}-{'cross' if cross_only else 'both'}-{run}-{free_port()}")
            if result["acknowledged"] != messages or result["delivered"] != messages:
                raise RuntimeError(f"postgres over {transport}: {result['acknowledged']} acknowledged, {result['delivered']} delivered")
            results.append(result)
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=30)
    return {key: statistics.median(r[key] for r in results) for key in POSTGRES_KEYS}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--postgres", help="a PostgreSQL URL (default: the server scripts/postgres starts)")
    parser.add_argument("--stores", default="memory,sqlite,postgres",
                        help="which to measure, comma-separated; rows already in the day's results file are kept")
    parser.add_argument("--transports", default="ws,http,api,api-batch",
                        help="for memory and SQLite, comma-separated: ws, http, api (POST /api/publish), api-batch (POST /api/batch)")
    parser.add_argument("--squall", metavar="BINARY", help="serve with this build (e.g. an earlier one); the generator is always the fresh build")
    parser.add_argument("--label", help="prefix for this run's rows, e.g. before")
    options = parser.parse_args()
    stores = options.stores.split(",")
    messages = 10_000 if options.quick else 100_000
    generator = release_binary()
    squall = Path(options.squall) if options.squall else generator
    prefix = f"{options.label}: " if options.label else ""
    table = {f"{prefix}{store} over {transport}": measure(squall, generator, store, transport, options.runs, messages)
             for store in ["memory", "sqlite"] if store in stores for transport in options.transports.split(",")}
    if "postgres" in stores:
        database = options.postgres or subprocess.run(["bash", str(ROOT / "scripts/postgres")], check=True,
                                                      capture_output=True, text=True).stdout.strip()
        for transport in ["ws", "http"]:
            table[f"{prefix}postgres, two nodes, over {transport}"] = measure_postgres(squall, database, transport, options.runs, messages, False)
        table[f"{prefix}postgres, node 1 → node 2, over ws"] = measure_postgres(squall, database, "ws", options.runs, messages, True)
    results = ROOT / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    path = results / f"{datetime.now(timezone.utc):%Y-%m-%d}-publish.json"
    kept = json.loads(path.read_text()) if path.exists() else {}
    path.write_text(json.dumps({**kept, **table}, indent=2) + "\n")
    print("| store, route | acknowledged/s | ack p50 / p99 | publish → delivery p50 / p99 | server CPU per publish |")
    print("|---|---|---|---|---|")
    for name, row in table.items():
        print(f"| {name} | {row['acknowledgedPerSecond']:,.0f} | {row['acknowledgedP50Milliseconds']:.2f} / "
              f"{row['acknowledgedP99Milliseconds']:.2f} ms | {row['deliveredP50Milliseconds']:.2f} / "
              f"{row['deliveredP99Milliseconds']:.2f} ms | "
              + (f"{row['serverMicrosecondsPerPublish']:.1f} µs |" if "serverMicrosecondsPerPublish" in row else "(two processes) |"))


if __name__ == "__main__":
    main()
