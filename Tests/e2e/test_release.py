# SPDX-License-Identifier: Apache-2.0
"""The release artifact (scripts/release): a tarball that runs on a machine without Swift —
unpacked into an empty directory and started with an empty environment, it serves the chat."""
import asyncio
import os
import re
import signal
import subprocess
import tarfile
import time

import pytest
from websockets.asyncio.client import connect

from conftest import free_port
from test_command import ROOT, VERSION

# The C library family, and the two libraries of Debian's the binary links dynamically.
ALLOWED = {"linux-vdso", "ld-linux-x86-64", "ld-linux-aarch64", "libc", "libm", "libpthread", "libdl", "librt", "libutil",
           "libstdc++", "libgcc_s", "libz", "libsqlite3"}


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """The unpacked release directory, built in debug mode (the same linking, built faster)."""
    built = subprocess.run(["bash", "scripts/release", "--debug"], cwd=ROOT, capture_output=True, text=True, timeout=1500)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    arch = os.uname().machine
    tarball = ROOT / f"dist/squall-{VERSION}-linux-{arch}.tar.gz"
    checked = subprocess.run(["sha256sum", "-c", f"{tarball.name}.sha256"], cwd=tarball.parent, capture_output=True, text=True)
    assert checked.returncode == 0 and checked.stdout.strip() == f"{tarball.name}: OK", checked.stdout + checked.stderr
    empty = tmp_path_factory.mktemp("unpacked")
    with tarfile.open(tarball) as archive:
        archive.extractall(empty, filter="data")
    [directory] = list(empty.iterdir())
    assert directory.name == f"squall-{VERSION}-linux-{arch}"
    return directory


def test_the_tarball_holds_the_binary_the_client_the_service_and_the_docs(release):
    names = {path.name for path in release.iterdir()}
    assert {"squall", "squall.js", "squall.mjs", "squall.d.ts", "squall.yaml", "squall.service", "LICENSE", "CHANGELOG.md",
            "SECURITY.md", "README.md", "docs", "squall_Squall.resources"} <= names, names
    assert (release / "docs/deployment.md").is_file() and (release / "docs/openapi.yaml").is_file()
    assert (release / "squall.js").read_bytes() == (ROOT / "clients/js/squall.js").read_bytes()
    assert os.access(release / "squall", os.X_OK)


def test_the_binary_needs_only_the_c_library_family_zlib_and_sqlite(release):
    listed = subprocess.run(["ldd", str(release / "squall")], capture_output=True, text=True, timeout=30).stdout
    # The name of each: `libz.so.1 => /lib/…` gives libz, `/lib64/ld-linux-x86-64.so.2 (…)` ld-linux-x86-64.
    libraries = {re.match(r"\s*(?:\S*/)?([^\s/.]+)", line).group(1) for line in listed.splitlines() if line.strip()}
    assert libraries <= ALLOWED, f"linked beyond the C library, zlib and SQLite: {sorted(libraries - ALLOWED)}\n{listed}"
    assert "swift" not in listed.lower(), listed


async def test_unpacked_and_started_with_an_empty_environment_it_serves_the_chat(release):
    port = free_port()
    log = open(release.parent / "squall.log", "w+")
    # env -i: no PATH, no HOME, nothing a Swift installation would set; run from elsewhere.
    process = subprocess.Popen(["env", "-i", str(release / "squall"), "serve", "--port", str(port)], cwd="/",
                               stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                alice = await connect(f"ws://127.0.0.1:{port}/msg", open_timeout=2)
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline, open(log.name).read()
                await asyncio.sleep(0.1)
        async with alice, connect(f"ws://127.0.0.1:{port}/msg", open_timeout=5) as bob:
            await alice.send("from the tarball")
            assert await asyncio.wait_for(bob.recv(), 5) == "from the tarball"
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as page:
            assert b"squall.js" in page.read(), "the demo page, from the resource bundle beside the binary"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0, open(log.name).read()
    version = subprocess.run(["env", "-i", str(release / "squall"), "--version"], capture_output=True, text=True, timeout=20)
    assert version.stdout.startswith(VERSION), version.stdout + version.stderr
