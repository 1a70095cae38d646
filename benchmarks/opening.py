#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""What opening channels costs everyone else, in one command:

    python3 benchmarks/opening.py            # memory, SQLite, PostgreSQL healthy and paused, 3 runs each
    python3 benchmarks/opening.py --quick    # one run each, for trying the script

Squall serves on core 0 with one event-loop thread (`--threads 1`), so every client shares one
loop. A bystander on /ws sends a `ping` every 10 ms and times each `pong`, for as long as an
opener (another process, on core 1 with the bystander) pipelines 1,000 subscribes to channels
nobody used, each of which the server must open from its store, and has all its answers.
"paused" freezes PostgreSQL (SIGSTOP, `scripts/postgres pause`) before the opener starts: every
open then waits for its deadline (3 s) and is told `store_unavailable`. The PostgreSQL server
scripts/postgres started runs on core 1 meanwhile (`taskset`, put back after), and the opener
at a lower priority than the bystander, so that what is timed is Squall's loop, not the
clients' or the database's share of a core. The table gives the bystander's round trips while the
opener runs (and its answers), against a run with no opener. Medians over runs, worst of all runs;
results go to benchmarks/results/DATE-opening.json. Everything binds 127.0.0.1; every loop is
bounded in count and time.
"""
import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv-bench"
sys.path.insert(0, str(ROOT / "benchmarks"))

try:
    from websockets.asyncio.client import connect
except ImportError:  # The bench venv has websockets (compare.py makes it; so does this).
    if not (VENV / "bin" / "python").exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "websockets==17.4"], check=True)
    os.execv(str(VENV / "bin" / "python"), [str(VENV / "bin" / "python"), *sys.argv])

from compare import free_port, wait_listening  # noqa: E402
from publish import release_binary  # noqa: E402

CHANNELS = 1000


async def bystander(url, seconds, busy=lambda: False):
    """Round trips (seconds) of a ping every 10 ms for at least `seconds`, and while `busy()`
    (at most 60 s)."""
    trips = []
    async with connect(url, subprotocols=["squall.v1"]) as ws:
        await ws.recv()  # welcome
        began = time.monotonic()
        ref = 0
        while time.monotonic() < began + 60 and (time.monotonic() < began + seconds or busy()):
            ref += 1
            sent = time.monotonic()
            await ws.send(json.dumps({"op": "ping", "ref": ref}))
            while json.loads(await asyncio.wait_for(ws.recv(), 30)).get("ref") != ref:
                pass
            trips.append(time.monotonic() - sent)
            await asyncio.sleep(0.01)
    return trips


async def open_channels(url, prefix, count):
    """Pipelines `count` subscribes to new channels: each answer's type (or error code), and the
    seconds until the last."""
    answers = []
    async with connect(url, subprotocols=["squall.v1"], max_queue=None) as ws:
        await ws.recv()
        started = time.monotonic()
        for index in range(count):
            await ws.send(json.dumps({"op": "subscribe", "channel": f"{prefix}-{index}", "ref": index}))
        deadline = started + 30
        while len(answers) < count and time.monotonic() < deadline:
            reply = json.loads(await asyncio.wait_for(ws.recv(), 30))
            if "ref" in reply:
                answers.append(reply["type"] if reply["type"] != "error" else reply["code"])
        return answers, time.monotonic() - started


def opener(url, prefix, results):
    os.sched_setaffinity(0, {1})
    os.nice(10)  # the bystander's pings go first on the clients' core: they are what is timed
    results.put(asyncio.run(open_channels(url, prefix, CHANNELS)))


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def summary(trips):
    return {"pings": len(trips), "p50Milliseconds": 1000 * percentile(trips, 0.5),
            "p99Milliseconds": 1000 * percentile(trips, 0.99), "maxMilliseconds": 1000 * max(trips)}


def postgres(*args):
    return subprocess.run(["bash", str(ROOT / "scripts/postgres"), *args], check=True, capture_output=True, text=True,
                          timeout=300).stdout.strip()


def pin_postgres(cores):
    """Moves the PostgreSQL server scripts/postgres started (and every backend, now and later:
    they fork from it) to `cores`, so that its work does not take Squall's core from the loop
    being timed. Returns whether it could."""
    pid_file = Path(f"/tmp/squall-postgres-{os.environ.get('SQUALL_TEST_POSTGRES_PORT', '54329')}/data/postmaster.pid")
    try:
        postmaster = pid_file.read_text().split()[0]
        subprocess.run(["taskset", "-a", "-p", "-c", cores, postmaster], check=True, capture_output=True)
        for child in subprocess.run(["pgrep", "-P", postmaster], capture_output=True, text=True).stdout.split():
            subprocess.run(["taskset", "-a", "-p", "-c", cores, child], capture_output=True)
        return True
    except (OSError, IndexError, subprocess.CalledProcessError):
        return False


def measure(squall, store, paused, runs, database):
    with tempfile.TemporaryDirectory() as directory:
        store_arg = {"memory": "memory", "sqlite": f"sqlite:{directory}/opening.sqlite", "postgres": database}[store]
        port = free_port()
        server = subprocess.Popen(["taskset", "-c", "0", str(squall), "serve", "--port", str(port), "--threads", "1",
                                   "--log-level", "error", "--subscribe-rate", "off", "--store", store_arg],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"ws://127.0.0.1:{port}/ws"
        try:
            wait_listening(port, server)
            os.sched_setaffinity(0, {1})
            quiet = asyncio.run(bystander(url, 2))
            measured = []
            for _ in range(runs):
                queue = multiprocessing.Queue()
                if paused:
                    postgres("pause")
                try:
                    process = multiprocessing.Process(target=opener, args=(url, f"open-{uuid.uuid4().hex[:8]}", queue))
                    process.start()
                    trips = asyncio.run(bystander(url, 1, busy=process.is_alive))
                    answers, seconds = queue.get(timeout=60)
                    process.join(timeout=10)
                finally:
                    if paused:
                        postgres("resume")
                counts = {answer: answers.count(answer) for answer in set(answers)}
                expected = "store_unavailable" if paused else "subscribed"
                if counts != {expected: CHANNELS}:
                    raise RuntimeError(f"{store}{' paused' if paused else ''}: the opener was answered {counts}")
                measured.append({**summary(trips), "openerSeconds": seconds})
                time.sleep(1)
            return {"quiet": summary(quiet), "runs": measured, "answers": expected}
        finally:
            server.terminate()
            server.wait(timeout=10)


def table(results):
    lines = ["| store | opener's answers (1,000) | opener done in | bystander p50 / p99 / worst while opening | bystander p99 / worst, no opener |",
             "|---|---|---:|---|---|"]
    for name, result in results.items():
        runs = result["runs"]
        median = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        worst = max(run["maxMilliseconds"] for run in runs)
        lines.append(f"| {name} | {result['answers']} | {median['openerSeconds']:.2f} s | "
                     f"{median['p50Milliseconds']:.1f} / {median['p99Milliseconds']:.1f} / {worst:.1f} ms | "
                     f"{result['quiet']['p99Milliseconds']:.1f} / {result['quiet']['maxMilliseconds']:.1f} ms |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs per setup (default 3)")
    parser.add_argument("--quick", action="store_true", help="one run per setup")
    parser.add_argument("--postgres", metavar="URL", help="a database to use instead of the one scripts/postgres starts")
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    squall = release_binary()
    database = args.postgres or postgres()
    pinned = not args.postgres and pin_postgres("1")
    results = {}
    try:
        for name, store, paused in [("memory", "memory", False), ("SQLite", "sqlite", False),
                                    ("PostgreSQL", "postgres", False), ("PostgreSQL, paused", "postgres", True)]:
            results[name] = measure(squall, store, paused, runs, database)
            print(f"{name}: {results[name]['runs']}", file=sys.stderr)
    finally:
        if pinned:
            pin_postgres("0-1")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    out = ROOT / "benchmarks" / "results" / f"{stamp}-opening.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


if __name__ == "__main__":
    main()
