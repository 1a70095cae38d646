# SPDX-License-Identifier: Apache-2.0
"""Many connections at once: pings come as a steady stream, not a burst, and the memory of
connections that have gone goes back to the system. Loopback only; every wait is bounded."""
import os
import resource
import select
import socket
import time

UPGRADE = (b"GET /msg HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")


def rss_kib(server):
    with open(f"/proc/{server.process.pid}/status") as status:
        return int(next(line for line in status if line.startswith("VmRSS:")).split()[1])


def open_websockets(server, count, timeout=30):
    """`count` raw WebSocket connections to /msg, each past its 101."""
    sockets = []
    deadline = time.monotonic() + timeout
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        s.sendall(UPGRADE)
        sockets.append(s)
    for s in sockets:
        head = b""
        while b"\r\n\r\n" not in head:
            assert time.monotonic() < deadline, "handshakes did not complete in time"
            chunk = s.recv(4096)
            assert chunk, "the server closed a connection during its handshake"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101")
        s.setblocking(False)
    return sockets


def test_pings_to_many_connections_are_spread_over_the_interval(squall):
    # One event loop: each loop has a wheel of its own, and 64 connections over two would fill
    # only half of each.
    server = squall("--ping-interval", "2s", "--threads", "1").wait_ready()
    sockets = open_websockets(server, 64)
    first_ping = {}
    deadline = time.monotonic() + 10
    try:
        while len(first_ping) < len(sockets) and time.monotonic() < deadline:
            readable, _, _ = select.select(sockets, [], [], 0.5)
            now = time.monotonic()
            for s in readable:
                data = s.recv(4096)
                # A ping is opcode 9 (0x89 with FIN); the server sends nothing else unasked.
                if data and data[0] == 0x89 and s not in first_ping:
                    first_ping[s] = now
        assert len(first_ping) == len(sockets), f"only {len(first_ping)} of {len(sockets)} connections were pinged in 10 s"
        spread = max(first_ping.values()) - min(first_ping.values())
        # Dealt into the wheel's slots, 64 connections' first pings span most of the 2 s
        # interval; pinged all in one tick, they would come within milliseconds of each other.
        assert spread > 1.0, f"the first pings of 64 connections came within {spread:.3f} s of each other"
    finally:
        for s in sockets:
            s.close()


def test_memory_of_closed_connections_goes_back_to_the_system(squall):
    # This process holds the 3,000 client sockets: as many descriptors as it may have.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    server = squall().wait_ready()
    before = rss_kib(server)
    sockets = open_websockets(server, 3000, timeout=60)
    grown = rss_kib(server) - before
    assert grown > 4000, f"3,000 connections grew the server by only {grown} KiB: nothing to give back"
    for s in sockets:
        s.close()
    deadline = time.monotonic() + 15
    kept = grown
    while time.monotonic() < deadline:
        kept = rss_kib(server) - before
        if kept < grown / 3:
            break
        time.sleep(0.25)
    assert kept < grown / 3, f"3,000 closed connections left the server {kept} KiB larger of {grown} KiB"
    assert len(os.listdir(f"/proc/{server.process.pid}/fd")) < 100
