#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What watching and driving Squall costs its fan-out, in one command:

    python3 benchmarks/operations.py            # 3 runs of each variant
    python3 benchmarks/operations.py --quick    # smaller counts, for trying the script

Squall (release build) serves on core 0, `squall bench fanout` runs on core 1, as in
benchmarks/compare.py: 1,000 subscribers on /msg, 5,000 messages of 64 bytes (and 100
subscribers, 10,000 messages). Variants: plain; with /metrics scraped every second; with that and
lifecycle webhooks for connections and subscriptions (`--webhook-events` without `published`);
and the same with every event type, a `published` webhook per message. The webhook receiver is a Python
HTTP server on 127.0.0.1 answering 204 (unpinned). Medians go to
benchmarks/results/DATE-operations.json and a Markdown table to stdout. Everything binds
127.0.0.1; every run is bounded in count and time.
"""
import argparse
import base64
import json
import statistics
import subprocess
import threading
import time
import urllib.request
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from compare import ROOT, bench, free_port, wait_listening
from publish import release_binary

SECRET = "whsec_" + base64.b64encode(b"operations-benchmark-key-32bytes").decode()
LIFECYCLE = ["connected", "disconnected", "subscribed", "unsubscribed"]


class Receiver(BaseHTTPRequestHandler):
    # Keep-alive, as a receiver in production would: HTTP/1.0 would cost Squall a connection per event.
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def scrape(port, stop):
    while not stop.is_set():
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read()
        except OSError:
            pass
        stop.wait(1)


def measure(squall, extra, runs, scale, watched):
    port = free_port()
    server = subprocess.Popen(["taskset", "-c", "0", str(squall), "serve", "--port", str(port), "--log-level", "error", *extra],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stop = threading.Event()
    try:
        wait_listening(port, server)
        if watched:
            threading.Thread(target=scrape, args=(port, stop), daemon=True).start()
        results = {}
        for subscribers, messages in ((100, scale[0]), (1000, scale[1])):
            rows = []
            for _ in range(runs):
                run = bench(squall, f"ws://127.0.0.1:{port}/msg", "fanout", "--subscribers", str(subscribers), "--messages",
                            str(messages), "--size", "64", "--server-pid", str(server.pid))
                rows.append({"deliveriesPerSecond": run["delivered"] / run["seconds"],
                             "serverCPUMicrosecondsPerDelivery": 1e6 * run["serverCPUSeconds"] / max(run["delivered"], 1)})
            results[f"fanout{subscribers}"] = {key: statistics.median(r[key] for r in rows) for key in rows[0]}
        return results
    finally:
        stop.set()
        server.terminate()
        server.wait(timeout=30)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    # 5,000 messages to 1,000 subscribers: a window long enough that the burst of lifecycle
    # events the subscribers' arrival makes is not most of what is measured.
    scale = (1000, 100) if options.quick else (10000, 5000)
    squall = release_binary()
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    hooks = ["--webhook", f"http://127.0.0.1:{receiver.server_address[1]}/", "--webhook-secret", SECRET]
    lifecycle = [argument for event in LIFECYCLE for argument in ("--webhook-events", event)]
    variants = {
        "plain": ([], False),
        "metrics scraped": ([], True),
        "metrics scraped, lifecycle webhooks": (hooks + lifecycle, True),
        "metrics scraped, every webhook (published too)": (hooks, True),
    }
    table = {name: measure(squall, extra, options.runs, scale, watched) for name, (extra, watched) in variants.items()}
    receiver.shutdown()
    results = ROOT / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    (results / f"{datetime.now(timezone.utc):%Y-%m-%d}-operations.json").write_text(json.dumps(table, indent=2) + "\n")
    plain = table["plain"]["fanout1000"]["deliveriesPerSecond"]
    print("| Squall | fan-out 100 subs, deliveries/s | fan-out 1,000 subs | server CPU per delivery (1,000) | vs plain (1,000) |")
    print("|---|---|---|---|---|")
    for name, row in table.items():
        print(f"| {name} | {row['fanout100']['deliveriesPerSecond'] / 1000:.0f}k | {row['fanout1000']['deliveriesPerSecond'] / 1000:.0f}k"
              f" | {row['fanout1000']['serverCPUMicrosecondsPerDelivery']:.2f} µs"
              f" | {100 * row['fanout1000']['deliveriesPerSecond'] / plain:.0f} % |")


if __name__ == "__main__":
    main()
