# SPDX-License-Identifier: Apache-2.0
"""The Autobahn TestSuite's 517 cases, run by kosoku 0.1.0, against a live `squall` on /msg.

    .venv-test/bin/python Tests/autobahn/run.py SQUALL_BINARY [--jobs N] [CASE_GLOB ...]

Every case must pass strictly: its behaviour OK or INFORMATIONAL and a clean close. kosoku
counts NON-STRICT as passing; this run does not — what was queued before a protocol error is
written before the close frame, and text fragments are checked for UTF-8 as they arrive, so no
case has a reason to be lenient. A case UNIMPLEMENTED — permessage-deflate not negotiated in
12.x and 13.x — fails the run too. Exits 1 listing every case that did not pass, with what it
saw.

On /msg/{channel} a client's own message comes back to it as the channel's broadcast, which
makes the route an echo only while the case is alone on its channel. kosoku opens every case of
one run on the same URL, so a run takes one case at a time; `--jobs N` (default 1) splits the
suite into N runs, each in a Python process of its own (kosoku's client is CPU-bound and holds
its interpreter) and on a channel of its own (`/msg/autobahn-1`, …), against one server.

What a run costs is zlib's work on both sides: the 12.x/13.x cases send 1,000 messages of up
to 128 KiB each way compressed, with windows down to 9 bits, where zlib is slowest. On 2 cores
one run takes most of both, so `--jobs 2` gains little: 856 s against 973 s serial for the whole
suite, measured on a debug build with the server sending no pings (see `start`). The test command
runs two jobs.

kosoku 0.1.0 has a bug of its own in 12.x/13.x: when an echo arrives uncompressed, which RFC 7692
allows message by message, its `onMessage` gets a `str` (text decoded, binary one character per
byte) and hashlib fails with "Strings must be encoded before hashing". `patch_kosoku` fixes the
installed copy before the run: `onMessage` first turns such a `str` back into the bytes it was.
"""
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

PATCH_MARK = "# squall: an uncompressed echo arrives as str"
PATCHED_LINES = f"""   {PATCH_MARK}
   if isinstance(msg, str):
      msg = msg.encode('latin-1' if binary else 'utf-8')
"""


def patch_kosoku():
    """Patches kosoku's case12_x_x.py in place (once); see the module's doc."""
    import kosoku

    path = Path(kosoku.__file__).parent / "cases" / "case12_x_x.py"
    source = path.read_text()
    if PATCH_MARK in source:
        return
    signature = "def onMessage(self, msg, binary):\n"
    if source.count(signature) != 1:
        sys.exit(f"autobahn: {path} is not the kosoku 0.1.0 this patch is for")
    path.write_text(source.replace(signature, signature + PATCHED_LINES))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(binary):
    port = free_port()
    # Case 9.x sends messages of up to 16 MiB and waits for their echo. No server pings: a ping
    # that reaches kosoku during a 12.x/13.x case makes it end the case unfinished ("did not
    # finish within 480 seconds", a clean 1000 close, long before 480 s) — measured with
    # --ping-interval 1 on 12.2.10 and 13.1.10, which pass without it. The suite does not test
    # server pings; WebSocketStateMachineTests and the e2e tests do.
    server = subprocess.Popen(
        [
            binary, "serve", "--port", str(port), "--log-level", "error", "--max-message-size", "20MiB", "--outbox-bytes", "64MiB",
            "--ping-interval", "0",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                return server, port
        except OSError:
            if server.poll() is not None:
                sys.exit(f"autobahn: squall exited: {server.stderr.read()}")
            time.sleep(0.05)
    server.kill()
    sys.exit("autobahn: squall did not start")


# The suite's groups and their case seconds in a `--jobs 2` run against a debug build (2 cores,
# zlib level 6): the runs are balanced by them (longest first, each to the least loaded run).
GROUP_SECONDS = {
    "1.*": 1, "2.*": 1, "3.*": 1, "4.*": 1, "5.*": 2, "6.*": 10, "7.*": 1, "10.*": 1,
    "9.1.*": 3, "9.2.*": 2, "9.3.*": 4, "9.4.*": 7, "9.5.*": 1, "9.6.*": 1, "9.7.*": 3, "9.8.*": 4,
    "12.1.*": 74, "12.2.*": 182, "12.3.*": 195, "12.4.*": 93, "12.5.*": 158,
    "13.1.*": 67, "13.2.*": 93, "13.3.*": 137, "13.4.*": 86, "13.5.*": 128, "13.6.*": 83, "13.7.*": 126,
}


def split(globs, jobs):
    """The case globs of each of `jobs` runs: the given globs as one run, else the whole suite
    balanced by GROUP_SECONDS."""
    if globs:
        return [globs]
    loads = [(0, []) for _ in range(jobs)]
    for glob, seconds in sorted(GROUP_SECONDS.items(), key=lambda item: -item[1]):
        index = min(range(jobs), key=lambda i: loads[i][0])
        loads[index] = (loads[index][0] + seconds, loads[index][1] + [glob])
    return [globs for _, globs in loads if globs]


FIELDS = ("case_id", "passed", "result", "remote_close_code", "remote_close_reason", "description", "duration")


async def run_one(url, cases):
    """One run, in this process: prints each case's result as a line of JSON."""
    from kosoku import FailureError, run_fuzzingclient

    try:
        results = await run_fuzzingclient(url, cases, None, concurrency=1)
    except FailureError as failure:
        results = failure.results
    for result in results:
        fields = {name: getattr(result, name) for name in FIELDS}
        fields["behavior"], fields["behavior_close"] = result.behavior.value, result.behavior_close.value
        print(json.dumps(fields), flush=True)


def run(port, runs):
    """Starts each run as a worker process and collects what they print, in case order."""
    workers = [
        (cases, subprocess.Popen([sys.executable, __file__, "--worker", f"ws://127.0.0.1:{port}/msg/autobahn-{n}", *cases], stdout=subprocess.PIPE, text=True))
        for n, cases in enumerate(runs, 1)
    ]
    results = []
    for cases, worker in workers:
        output, _ = worker.communicate()
        batch = [SimpleNamespace(**json.loads(line)) for line in output.splitlines() if line.startswith("{")]
        if worker.returncode != 0:
            sys.exit(f"autobahn: the run of {' '.join(cases)} failed (exit {worker.returncode}) after {len(batch)} cases")
        print(f"autobahn: {len(batch)} cases, {sum(r.duration for r in batch) / 1000:.0f} s of cases ({' '.join(cases)})")
        results += batch
    return sorted(results, key=lambda r: [int(p) for p in r.case_id.split(".")])


def main():
    arguments = sys.argv[1:]
    if not arguments:
        sys.exit(__doc__)
    if arguments[0] == "--worker":
        asyncio.run(run_one(arguments[1], arguments[2:]))
        # kosoku's native module can abort (SIGABRT) while the interpreter tears down, after
        # every result is printed (seen once: a worker exited -6 with all 163 of its cases
        # reported): what is printed is the run's outcome, so leave without the teardown.
        sys.stdout.flush()
        os._exit(0)
    binary = arguments.pop(0)
    jobs = 1
    if arguments[:1] == ["--jobs"] and len(arguments) > 1 and arguments[1].isdigit():
        jobs = max(1, int(arguments[1]))
        arguments = arguments[2:]
    patch_kosoku()
    server, port = start(binary)
    started = time.monotonic()
    try:
        results = run(port, split(arguments, jobs))
    finally:
        server.terminate()
        server.wait(10)
    failed = [result for result in results if not result.passed or result.behavior == "NON-STRICT"]
    counts = {}
    for result in results:
        key = f"{result.behavior}/{result.behavior_close}"
        counts[key] = counts.get(key, 0) + 1
    summary = ", ".join(f"{count} {key}" for key, count in sorted(counts.items()))
    print(f"autobahn: {len(results)} cases in {time.monotonic() - started:.0f} s: {summary}")
    groups = {}
    for result in results:
        group = ".".join(result.case_id.split(".")[:2] if result.case_id.split(".")[0] in ("9", "12", "13") else result.case_id.split(".")[:1])
        groups[group] = groups.get(group, 0) + result.duration
    print("autobahn: seconds per group: " + ", ".join(f"{group} {ms / 1000:.0f}" for group, ms in groups.items()))
    for result in failed:
        print(
            f"  {result.case_id}: {result.behavior}/{result.behavior_close}: {result.result}"
            f" (close {result.remote_close_code} {result.remote_close_reason!r}) — {result.description[:120]}"
        )
    if failed or not results:
        sys.exit(f"autobahn: {len(failed)} of {len(results)} cases did not pass")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
