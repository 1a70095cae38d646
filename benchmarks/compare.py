#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Squall against the servers people would otherwise pick, side by side, in one command:

    python3 benchmarks/compare.py            # installs what it needs, builds, runs, prints a table
    python3 benchmarks/compare.py --tls      # Squall and Go gorilla over TLS (wss://), a table of its own

Each server runs pinned to core 0 (`taskset -c 0`), the load generator (`squall bench`, release
build) pinned to core 1. Every server implements the seed's contract on ws://127.0.0.1:PORT/msg:
every message reaches every client. Results go to benchmarks/results/ (JSON) and charts to docs/.
Everything binds 127.0.0.1; every run is bounded in count and time.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "benchmarks" / "peers"
VENV = ROOT / ".venv-bench"
BUILD = ROOT / ".build-bench"
PYTHON_PACKAGES = ["tornado==6.6.1", "websockets==17.4", "matplotlib==3.11.2"]
APT_PACKAGES = ["node-ws", "golang-go", "golang-github-gorilla-websocket-dev", "util-linux"]


def sh(*args, **kwargs):
    return subprocess.run(args, check=True, **kwargs)


def install():
    missing = [p for p in APT_PACKAGES if subprocess.run(["dpkg", "-s", p], capture_output=True).returncode]
    if missing:
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        sh(*sudo, "apt-get", "update", "-qq")
        sh(*sudo, "apt-get", "install", "-y", "-qq", *missing, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if not (VENV / "bin" / "python").exists():
        sh(sys.executable, "-m", "venv", str(VENV))
    sh(str(VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", *PYTHON_PACKAGES)
    BUILD.mkdir(exist_ok=True)
    sh("go", "build", "-o", str(BUILD / "gorilla"), str(PEERS / "gorilla_server.go"),
       env={**os.environ, "GOPATH": "/usr/share/gocode", "GO111MODULE": "off", "GOCACHE": str(BUILD / "gocache")})
    sh("swift", "build", "-c", "release", "--product", "squall", cwd=ROOT)
    bin_path = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                              capture_output=True, text=True).stdout.strip()
    return Path(bin_path) / "squall"


def servers(squall, server=None):
    """Each server's command for a port; `server` is the Squall binary to serve with (the
    freshly built one unless another is named, e.g. an earlier build for before/after)."""
    python = str(VENV / "bin" / "python")
    server = server or squall
    return {
        "Squall": lambda port: [str(server), "serve", "--port", str(port), "--log-level", "error"],
        "Tornado (seed MsgHandler)": lambda port: [python, str(PEERS / "tornado_server.py"), str(port)],
        "Python websockets": lambda port: [python, str(PEERS / "websockets_server.py"), str(port)],
        "Node.js ws": lambda port: ["node", str(PEERS / "ws_server.js"), str(port)],
        "Go gorilla": lambda port: [str(BUILD / "gorilla"), str(port)],
    }


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, process, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not start listening")


def bench(squall, url, kind, *args, timeout=900):
    out = subprocess.run(["taskset", "-c", "1", str(squall), "bench", kind, "--url", url, "--json", *args],
                         check=True, capture_output=True, text=True, timeout=timeout).stdout
    return json.loads(out.strip().splitlines()[-1])


def start(command, deflate=False, tls=None):
    """The server on core 0, on a free port; `deflate` turns permessage-deflate on for peers
    (PEER_DEFLATE=1; Squall offers it always); `tls`, (certificate, key), serves wss:// (the
    command is given them as well)."""
    port = free_port()
    env = {**os.environ, "NODE_PATH": "/usr/share/nodejs", "PEER_DEFLATE": "1" if deflate else "0"}
    if tls:
        env.update(PEER_TLS_CERT=str(tls[0]), PEER_TLS_KEY=str(tls[1]))
    process = subprocess.Popen(["taskset", "-c", "0", *command(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return process, f"{'wss' if tls else 'ws'}://127.0.0.1:{port}/msg", port


def certificate():
    """(certificate, key) of a self-signed P-256 certificate for 127.0.0.1, made once in
    .build-bench: what a server would use today (ECDSA, as Let's Encrypt issues by default)."""
    cert, key = BUILD / "tls-cert.pem", BUILD / "tls-key.pem"
    if not cert.exists():
        sh("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650",
           "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert),
           capture_output=True)
    return cert, key


def tls_servers(squall, tls):
    """The servers compared over TLS: Squall (swift-nio-ssl, BoringSSL) and Go gorilla
    (crypto/tls), with the same certificate."""
    return {
        "Squall": lambda port: [str(squall), "serve", "--port", str(port), "--log-level", "error", "--tls-cert", str(tls[0]), "--tls-key", str(tls[1])],
        "Go gorilla": lambda port: [str(BUILD / "gorilla"), str(port)],
    }


def fanouts(squall, url, process, scale):
    """Fan-out at 100 and 1,000 subscribers. The generator reads the server's CPU time itself,
    over the measured run only (not connection set-up or warm-up)."""
    result = {}
    for subscribers, messages in ((100, scale["fanout100"]), (1000, scale["fanout1000"])):
        run = bench(squall, url, "fanout", "--subscribers", str(subscribers), "--messages", str(messages), "--size", "64",
                    "--server-pid", str(process.pid))
        result[f"fanout{subscribers}"] = {
            **run,
            "deliveriesPerSecond": run["delivered"] / run["seconds"],
            "serverCPUMicrosecondsPerDelivery": 1e6 * run["serverCPUSeconds"] / max(run["delivered"], 1),
        }
    return result


def measure_tls(command, squall, scale, tls):
    """Fan-out at 100 and 1,000 subscribers and handshakes/s on a fresh server, over wss://."""
    process, url, port = start(command, tls=tls)
    try:
        wait_listening(port, process)
        result = fanouts(squall, url, process, scale)
    finally:
        stop(process)
    result["handshakesFresh"] = fresh_handshakes(command, squall, scale["tlsHandshakes"], tls=tls)
    return result


def tls_table(results):
    rows = ["| server, over TLS | fan-out 100 subs, deliveries/s | fan-out 1,000 subs | server CPU per delivery (1,000) | TLS + WebSocket handshakes/s, fresh server (server CPU each) | generator CPU per handshake |",
            "|---|---|---|---|---|---|"]
    for name, r in results.items():
        h = r["handshakesFresh"]
        rows.append(
            f"| {name} | {r['fanout100']['deliveriesPerSecond'] / 1000:.0f}k | {r['fanout1000']['deliveriesPerSecond'] / 1000:.0f}k"
            f" | {r['fanout1000']['serverCPUMicrosecondsPerDelivery']:.2f} µs | {handshake_rate(h)}"
            f" | {1e6 * h['clientCPUSeconds'] / h['count']:.0f} µs |"
        )
    return "\n".join(rows)


def stop(process):
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


def idle(squall, url, process, connections, *flags):
    run = bench(squall, url, "idle", "--connections", str(connections), "--server-pid", str(process.pid), *flags)
    run["kibPerConnection"] = (run["serverKiBAfter"] - run["serverKiBBefore"]) / run["connections"]
    return run


def measure(name, command, squall, scale):
    process, url, port = start(command)
    try:
        wait_listening(port, process)
        result = fanouts(squall, url, process, scale)
        result["latency"] = quiet_chat(squall, url, process, scale["latencySeconds"])
        result["handshakes"] = handshakes(squall, url, process, scale["handshakes"])
    finally:
        stop(process)
    result["handshakesFresh"] = fresh_handshakes(command, squall, scale["handshakes"])
    result["idle"] = fresh_idle(command, squall, scale)
    result["idleDeflate"] = fresh_idle(command, squall, scale, deflate=True)
    return result


def quiet_chat(squall, url, process, seconds):
    """1,000 subscribers × 20 messages/s: a quiet chat, where there is nothing to batch and
    every delivery is one write(2). Delay percentiles and the server's CPU per delivery, from
    the first publish to the last delivery."""
    run = bench(squall, url, "latency", "--subscribers", "1000", "--rate", "20", "--duration", str(seconds),
                "--server-pid", str(process.pid))
    run["serverCPUMicrosecondsPerDelivery"] = 1e6 * run["serverCPUSeconds"] / max(run["delivered"], 1)
    return run


def handshakes(squall, url, process, count):
    run = bench(squall, url, "handshakes", "--count", str(count), "--server-pid", str(process.pid))
    run["perSecond"] = run["count"] / run["seconds"]
    run["serverCPUMicrosecondsPerHandshake"] = 1e6 * run["serverCPUSeconds"] / run["count"]
    return run


def fresh_handshakes(command, squall, count, tls=None):
    """Handshakes on a server that has served nothing before. Both figures are reported: a
    server's cost per handshake can grow with what it has served (Go's does, by a quarter,
    after the fan-out and latency runs)."""
    process, url, port = start(command, tls=tls)
    try:
        wait_listening(port, process)
        return handshakes(squall, url, process, count)
    finally:
        stop(process)


def fresh_idle(command, squall, scale, deflate=False):
    """Memory per idle connection on a server that has served nothing before: on a server that
    has, memory freed by earlier runs is reused (and garbage-collected runtimes have grown their
    heaps), which hides what a connection costs. With `deflate`, permessage-deflate is on and
    every connection negotiates it."""
    process, url, port = start(command, deflate=deflate)
    try:
        wait_listening(port, process)
        return idle(squall, url, process, scale["idle"], *(["--deflate"] if deflate else []))
    finally:
        stop(process)


def median_run(runs):
    """The run whose 1,000-subscriber fan-out is the median of the runs; the quiet chat's
    figures are each the median of the runs (its CPU per delivery moves by a quarter from run
    to run on a shared machine, so one run's would say little)."""
    ordered = sorted(runs, key=lambda r: r["fanout1000"]["deliveriesPerSecond"])
    chosen = dict(ordered[len(ordered) // 2])
    if all("serverCPUMicrosecondsPerDelivery" in r["latency"] for r in runs):
        chosen["latency"] = {
            **chosen["latency"],
            **{key: statistics.median(r["latency"][key] for r in runs)
               for key in ("p50Milliseconds", "p99Milliseconds", "serverCPUMicrosecondsPerDelivery")},
            "runs": [{key: r["latency"][key] for key in ("p50Milliseconds", "p99Milliseconds", "serverCPUMicrosecondsPerDelivery")}
                     for r in runs],
        }
    return chosen


def table(results):
    rows = ["| server | fan-out 100 subs, deliveries/s | fan-out 1,000 subs | server CPU per delivery (1,000) | quiet chat 1,000 × 20 msg/s: p50 / p99 | … server CPU per delivery | KiB per idle connection | … with permessage-deflate | handshakes/s after the runs before (server CPU each) | … on a fresh server |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        quiet = r["latency"].get("serverCPUMicrosecondsPerDelivery")
        rows.append(
            f"| {name} | {r['fanout100']['deliveriesPerSecond'] / 1000:.0f}k | {r['fanout1000']['deliveriesPerSecond'] / 1000:.0f}k"
            f" | {r['fanout1000']['serverCPUMicrosecondsPerDelivery']:.2f} µs"
            f" | {r['latency']['p50Milliseconds']:.1f} / {r['latency']['p99Milliseconds']:.1f} ms"
            f" | {f'{quiet:.2f} µs' if quiet is not None else '–'}"
            f" | {r['idle']['kibPerConnection']:.1f} | {deflate_idle(r)} | {handshake_rate(r.get('handshakes'))} | {handshake_rate(r.get('handshakesFresh'))} |"
        )
    return "\n".join(rows)


def handshake_rate(run):
    """Older results have no fresh-server run, and some no server CPU."""
    if run is None:
        return "–"
    cpu = run.get("serverCPUMicrosecondsPerHandshake")
    return f"{run['perSecond'] / 1000:.1f}k" + (f" ({cpu:.0f} µs)" if cpu is not None else "")


def deflate_idle(result):
    """Results from before the deflate run have no such column."""
    return f"{result['idleDeflate']['kibPerConnection']:.1f}" if "idleDeflate" in result else "–"


def pyplot():
    """matplotlib from .venv-bench, drawing to files only."""
    sys.path.insert(0, str(next((VENV / "lib").glob("python*/site-packages"))))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def chart(results, path):
    plt = pyplot()
    names = list(results)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for axis, key, title in ((axes[0], "fanout100", "100 subscribers"), (axes[1], "fanout1000", "1,000 subscribers")):
        values = [results[n][key]["deliveriesPerSecond"] / 1000 for n in names]
        axis.barh(names, values, color=["#2b6cb0" if n == "Squall" else "#a0aec0" for n in names])
        axis.set_title(title)
        axis.set_xlabel("thousand deliveries per second")
        axis.invert_yaxis()
    fig.suptitle("Fan-out of 64-byte messages, each server on one core")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def memory_chart(results, path):
    """KiB per idle connection, without and with permessage-deflate (log scale: they span 30×)."""
    plt = pyplot()
    names = [n for n in results if "idleDeflate" in results[n]]
    fig, axis = plt.subplots(figsize=(8, 3.6))
    rows = range(len(names))
    plain = [results[n]["idle"]["kibPerConnection"] for n in names]
    deflate = [results[n]["idleDeflate"]["kibPerConnection"] for n in names]
    axis.barh([y - 0.2 for y in rows], plain, height=0.4, label="plain", color="#2b6cb0")
    axis.barh([y + 0.2 for y in rows], deflate, height=0.4, label="permessage-deflate", color="#ed8936")
    axis.set_yticks(list(rows), names)
    axis.set_xscale("log")
    axis.set_xlabel("KiB of server memory per idle connection (10,000 open; log scale)")
    axis.invert_yaxis()
    axis.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs per server; the median is reported (default 3)")
    parser.add_argument("--quick", action="store_true", help="smaller counts, for trying the script")
    parser.add_argument("--only", nargs="*", help="servers to run (default: all)")
    parser.add_argument("--chart", metavar="RESULTS_JSON", help="only redraw the chart and table from a results file")
    parser.add_argument("--tls", action="store_true", help="Squall and Go gorilla over wss:// instead: fan-out and TLS handshakes")
    parser.add_argument("--squall", metavar="BINARY", help="serve Squall with this binary (e.g. an earlier build); the generator is always the fresh build")
    parser.add_argument("--before", metavar="BINARY", help="also measure this build as \"Squall before\", in the same rounds (before/after)")
    parser.add_argument("--out", metavar="NAME", help="results file name under benchmarks/results/ (default: DATE.json)")
    args = parser.parse_args()
    if args.chart:
        results = json.loads(Path(args.chart).read_text())["results"]
        chart(results, ROOT / "docs" / "benchmarks-fanout.png")
        memory_chart(results, ROOT / "docs" / "benchmarks-memory.png")
        print(table(results))
        return
    if not shutil.which("taskset"):
        sys.exit("taskset is needed (Debian's util-linux)")
    scale = {"fanout100": 10000, "fanout1000": 1000, "latencySeconds": 10, "handshakes": 20000, "idle": 10000, "tlsHandshakes": 5000}
    if args.quick:
        scale = {"fanout100": 500, "fanout1000": 50, "latencySeconds": 2, "handshakes": 300, "idle": 1000, "tlsHandshakes": 300}
    squall = install()
    if args.tls:
        return main_tls(args, squall, scale)
    chosen = {name: command for name, command in servers(squall, Path(args.squall) if args.squall else squall).items()
              if not args.only or name in args.only}
    if args.before:
        chosen = {"Squall before": servers(squall, Path(args.before))["Squall"], **chosen}
    # Round by round, every server once per round: a shared machine's speed drifts over minutes,
    # and interleaving spreads the drift over all of them alike.
    runs = {name: [] for name in chosen}
    for run in range(args.runs):
        for name, command in chosen.items():
            print(f"{name}: run {run + 1}/{args.runs}", file=sys.stderr)
            runs[name].append(measure(name, command, squall, scale))
    results = {name: median_run(runs[name]) for name in chosen}
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    out = ROOT / "benchmarks" / "results" / (args.out or f"{stamp}.json")
    out.parent.mkdir(exist_ok=True)
    machine = {"date": stamp, "cpus": os.cpu_count(), "uname": " ".join(os.uname()), "runs": args.runs, "scale": scale}
    out.write_text(json.dumps({"machine": machine, "results": results}, indent=2))
    chart(results, ROOT / "docs" / "benchmarks-fanout.png")
    memory_chart(results, ROOT / "docs" / "benchmarks-memory.png")
    print(table(results))
    print(f"\nwrote {out.relative_to(ROOT)}, docs/benchmarks-fanout.png and docs/benchmarks-memory.png", file=sys.stderr)


def main_tls(args, squall, scale):
    tls = certificate()
    results = {}
    for name, command in tls_servers(squall, tls).items():
        if args.only and name not in args.only:
            continue
        runs = []
        for run in range(args.runs):
            print(f"{name} over TLS: run {run + 1}/{args.runs}", file=sys.stderr)
            runs.append(measure_tls(command, squall, scale, tls))
        results[name] = median_run(runs)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    out = ROOT / "benchmarks" / "results" / f"{stamp}-tls.json"
    machine = {"date": stamp, "cpus": os.cpu_count(), "uname": " ".join(os.uname()), "runs": args.runs, "scale": scale}
    out.write_text(json.dumps({"machine": machine, "results": results}, indent=2))
    print(tls_table(results))
    print(f"\nwrote {out.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
