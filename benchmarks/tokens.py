#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What a connection token costs a WebSocket handshake, in one command:

    python3 benchmarks/tokens.py            # 5 alternating rounds of 20,000 handshakes each way
    python3 benchmarks/tokens.py --quick    # 1 round of 2,000, for trying the script

One release server on core 0 (`--jwt-secret`, tokens optional) takes `squall bench handshakes`
from core 1 on `/msg`, alternately without a token and with an HS256 connection token in the
query (`?token=`: the same request line a browser's `WebSocket` or `EventSource` sends), so that
both kinds meet the same server in the same state. Each round reports handshakes per second and
the server's CPU per handshake; the table gives the medians and the ratio (the bar: with a token
≥ 80 % of the handshakes without). Results go to benchmarks/results/DATE-tokens.json.
Everything binds 127.0.0.1; every run is bounded in count and time.
"""
import argparse
import base64
import hashlib
import hmac
import json
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from compare import bench, free_port, wait_listening  # noqa: E402
from publish import release_binary  # noqa: E402

SECRET = "benchmark-secret-of-at-least-32-bytes"


def hs256(claims):
    """A token as any JWT library makes it (standard library only, so that no venv is needed)."""
    def part(value):
        return base64.urlsafe_b64encode(json.dumps(value, separators=(",", ":")).encode()).rstrip(b"=").decode()

    signing = part({"alg": "HS256", "typ": "JWT"}) + "." + part(claims)
    signature = hmac.new(SECRET.encode(), signing.encode(), hashlib.sha256).digest()
    return signing + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args()
    rounds, count = (1, 2000) if options.quick else (5, 20000)
    squall = release_binary()
    port = free_port()
    server = subprocess.Popen(["taskset", "-c", "0", str(squall), "serve", "--port", str(port), "--log-level", "error", "--threads", "1",
                               "--jwt-secret", SECRET, "--subscribe-rate", "off", "--max-connections-per-address", "100000"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    token = hs256({"sub": "bench", "exp": int(time.time()) + 3600, "info": {"name": "bench"}})
    urls = {"without": f"ws://127.0.0.1:{port}/msg", "with": f"ws://127.0.0.1:{port}/msg?token={token}"}
    runs = {"without": [], "with": []}
    try:
        wait_listening(port, server)
        bench(squall, urls["without"], "handshakes", "--count", "1000")  # warm up
        for _ in range(rounds):
            for kind in ("without", "with"):
                run = bench(squall, urls[kind], "handshakes", "--count", str(count), "--server-pid", str(server.pid))
                runs[kind].append({"perSecond": run["count"] / run["seconds"],
                                   "serverCPUMicrosecondsPerHandshake": 1e6 * run["serverCPUSeconds"] / run["count"]})
    finally:
        server.terminate()
        server.wait(timeout=30)
    summary = {kind: {key: statistics.median(run[key] for run in values) for key in values[0]} for kind, values in runs.items()}
    ratio = summary["with"]["perSecond"] / summary["without"]["perSecond"]
    print("| handshakes on /msg | per second (median) | server CPU per handshake |")
    print("|---|---|---|")
    for kind in ("without", "with"):
        print(f"| {kind} an HS256 token | {summary[kind]['perSecond']:,.0f} | {summary[kind]['serverCPUMicrosecondsPerHandshake']:.1f} µs |")
    print(f"\nwith a token: {ratio:.0%} of the handshakes without (bar: ≥ 80 %)")
    results = ROOT / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    out = results / f"{datetime.now(timezone.utc):%Y-%m-%d}-tokens.json"
    out.write_text(json.dumps({"rounds": rounds, "count": count, "runs": runs, "summary": summary, "ratio": ratio}, indent=2) + "\n")
    return 0 if ratio >= 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
