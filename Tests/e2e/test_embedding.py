# SPDX-License-Identifier: Apache-2.0
"""The README's embedding example (Examples/Embed), run as a new user runs it."""
import asyncio
import json
import os
import re
import signal
import subprocess
import tempfile
import urllib.error
import urllib.request

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from conftest import ROOT, Squall, free_port, squall_binary


class Example(Squall):
    """The EmbedExample binary, built beside `squall`, on a free port."""

    def __init__(self, binary=None):
        self.port = free_port()
        self.tls = False
        self.args = [binary or os.path.join(os.path.dirname(squall_binary()), "EmbedExample"), str(self.port)]
        self.log = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(self.args, stdout=subprocess.DEVNULL, stderr=self.log, text=True)
        self.output = None


@pytest.fixture
def example():
    started = Example().wait_ready()
    yield started
    started.stop()


def newer_swift_nio_patch():
    """A swift-nio one patch release newer than the one Squall pins: the pinned commit tagged as
    such in a repository of its own (the machine's package mirror has no newer one). Returns the
    version, and the environment under which git — which SwiftPM fetches with — reads swift-nio
    from there and every other package from where it did."""
    pins = json.loads((ROOT / "Package.resolved").read_text())["pins"]
    pinned = next(pin for pin in pins if pin["identity"] == "swift-nio")
    major, minor, patch = map(int, pinned["state"]["version"].split("."))
    newer = f"{major}.{minor}.{patch + 1}"
    # At …/swift-nio and …/swift-nio.git, for the URL with and without `.git` (both are used).
    repository = ROOT / f".build/swift-nio-{newer}/swift-nio"
    if not repository.exists():
        subprocess.run(["git", "clone", "--quiet", "--bare", pinned["location"], str(repository)], check=True, timeout=600)
        subprocess.run(["git", "-C", str(repository), "tag", newer, pinned["state"]["revision"]], check=True, timeout=60)
        repository.with_name("swift-nio.git").symlink_to("swift-nio")
    # git's insteadOf rewrites by prefix, the longest winning: swift-nio's URL is a prefix of
    # swift-nio-ssl's and its siblings', so each of those is sent back to where it went before.
    location = pinned["location"].removesuffix(".git")
    rules = [(str(repository), location)]
    for pin in pins:
        other = pin["location"].removesuffix(".git")
        if other != location and other.startswith(location):
            before = subprocess.run(["git", "ls-remote", "--get-url", other], capture_output=True, text=True, check=True).stdout.strip()
            rules.append((before, other))
    environment = {"GIT_CONFIG_COUNT": str(len(rules))}
    for index, (target, prefix) in enumerate(rules):
        environment[f"GIT_CONFIG_KEY_{index}"] = f"url.{target}.insteadOf"
        environment[f"GIT_CONFIG_VALUE_{index}"] = prefix
    return newer, environment


async def test_the_example_builds_as_a_package_of_its_own_beside_a_newer_swift_nio_and_serves_both_route_sets():
    # Copied out of the repository (so that its resolution leaves no file there), with the path
    # to Squall made absolute, and asking for a swift-nio newer than Squall's pin, as an
    # application that updated it would: Squall's ranges must let it resolve. Then a full build
    # of Squall's library and dependencies for it: minutes, once (under .build, kept for the
    # next run on this machine).
    package = ROOT / ".build/embed-example"
    package.mkdir(parents=True, exist_ok=True)
    newer, git = newer_swift_nio_patch()
    manifest = (ROOT / "Examples/Embed/Package.swift").read_text()
    assert 'path: "../.."' in manifest and '.product(name: "Squall", package: "squall")' in manifest
    manifest = manifest.replace('path: "../.."', f'path: "{ROOT}"').replace(
        '.package(name: "squall",', f'.package(url: "https://github.com/apple/swift-nio", from: "{newer}"),\n        .package(name: "squall",'
    ).replace('.product(name: "Squall", package: "squall")', '.product(name: "Squall", package: "squall"), .product(name: "NIOCore", package: "swift-nio")')
    (package / "Package.swift").write_text(manifest)
    (package / "main.swift").write_text((ROOT / "Examples/Embed/main.swift").read_text())
    # Resolved afresh every run, from nothing but the manifests: the point of the test.
    (package / "Package.resolved").unlink(missing_ok=True)
    build = ["swift", "build", "--package-path", str(package)]
    built = subprocess.run(build, capture_output=True, text=True, timeout=1500, env={**os.environ, **git})
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    resolved = json.loads((package / "Package.resolved").read_text())["pins"]
    assert next(pin for pin in resolved if pin["identity"] == "swift-nio")["state"]["version"] == newer
    binary = subprocess.run([*build, "--show-bin-path"], capture_output=True, text=True, timeout=120, check=True,
                            env={**os.environ, **git}).stdout.strip()
    started = Example(os.path.join(binary, "EmbedExample")).wait_ready()
    try:
        async with connect(f"{started.ws}/shout?name=ada", open_timeout=5) as shout, connect(f"{started.ws}/msg", open_timeout=5) as chat:
            await shout.send("built on its own")
            assert await asyncio.wait_for(shout.recv(), 5) == "ada: BUILT ON ITS OWN"
            await chat.send("and the seed's chat beside it")
            assert await asyncio.wait_for(chat.recv(), 5) == "and the seed's chat beside it"
        with urllib.request.urlopen(f"{started.http}/healthz", timeout=5) as response:
            assert json.load(response)["status"] == "ok"
    finally:
        started.stop()


def test_the_readme_shows_the_example_that_is_built():
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```swift\n(.*?)```", readme, re.S)
    # The file's license line (scripts/check-license) is not part of the example.
    source = (ROOT / "Examples/Embed/main.swift").read_text().removeprefix("// SPDX-License-Identifier: Apache-2.0\n\n")
    assert source in blocks, "README.md's embedding example differs from Examples/Embed/main.swift"


async def test_the_example_echoes_and_keeps_a_name_per_connection(example):
    async with connect(f"{example.ws}/echo") as echo:
        assert (await echo.recv()).startswith("welcome, ")
        await echo.send("hello")
        assert await echo.recv() == "hello"
    async with connect(f"{example.ws}/shout?name=ada") as ada, connect(f"{example.ws}/shout?name=bo") as bo:
        await ada.send("hi")
        await bo.send("hey")
        assert await ada.recv() == "ada: HI"
        assert await bo.recv() == "bo: HEY"


async def refusal(url, **options):
    with pytest.raises(InvalidStatus) as refused:
        async with connect(url, **options):
            pass
    response = refused.value.response
    return response.status_code, json.loads(response.body)["error"]["code"]


async def test_the_examples_check_refuses_a_client_without_a_name_with_its_json_error(example):
    assert await refusal(f"{example.ws}/shout") == (400, "name_required")
    # A plain GET of the path is told the same.
    with pytest.raises(urllib.error.HTTPError) as plain:
        urllib.request.urlopen(f"{example.http}/shout", timeout=5)
    assert plain.value.code == 400
    assert json.loads(plain.value.read())["error"]["code"] == "name_required"


async def test_the_server_refuses_a_foreign_page_before_the_mounts_check(example):
    # Without a name the mount's check would refuse with 400 name_required: the origin comes first.
    assert await refusal(f"{example.ws}/shout", origin="http://evil.example") == (403, "origin_not_allowed")
    assert await refusal(f"{example.ws}/shout?name=eve", origin="http://evil.example") == (403, "origin_not_allowed")
    async with connect(f"{example.ws}/shout?name=ada", origin=f"http://127.0.0.1:{example.port}") as same:
        await same.send("ok")
        assert await same.recv() == "ada: OK"


async def test_the_example_serves_the_built_in_routes_too(example):
    with urllib.request.urlopen(f"{example.http}/channels/news/history", timeout=5) as response:
        history = json.load(response)
    assert [m["data"] for m in history["messages"]] == ["the echo server is up"]
    async with connect(f"{example.ws}/msg") as chat:
        await chat.send("seed chat")
        assert await chat.recv() == "seed chat"


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
async def test_ctrl_c_closes_every_client_with_1001_and_exits_0(example, sig):
    async with connect(f"{example.ws}/echo") as client:
        await client.recv()
        example.process.send_signal(sig)
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(client.recv(), 5)
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1001, "server shutting down")
    code, log = await asyncio.to_thread(example.stop, sig, 5)
    assert code == 0, log
