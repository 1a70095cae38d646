# SPDX-License-Identifier: Apache-2.0
"""squall.js as a package (clients/js): the files the server serves are the package's, its
version is the server's, its types check a strict TypeScript program written both ways a page
uses it (a module, the script tag's global), and `npm pack` ships what package.json says."""
import json
import shutil
import subprocess
import urllib.request

import pytest

from test_command import ROOT, VERSION

PACKAGE = ROOT / "clients/js"


@pytest.mark.parametrize("name", ["squall.js", "squall.mjs"])
def test_the_server_serves_the_packages_files_byte_for_byte(squall, name):
    server = squall("--log-level", "error")
    with urllib.request.urlopen(f"{server.http}/{name}", timeout=5) as response:
        served = response.read()
    assert served == (PACKAGE / name).read_bytes(), f"/{name} differs from clients/js/{name}: run scripts/copy-client"


def test_the_package_and_the_client_carry_the_servers_version():
    assert json.loads((PACKAGE / "package.json").read_text())["version"] == VERSION
    assert f"version: '{VERSION}'" in (PACKAGE / "squall.js").read_text()


MODULE_PROGRAM = """
import Squall, { Client, closeAdvice, type Message, type Acknowledgement } from "squall";

const client: Client = new Client("https://rt.example", {
  channel: "chat:lobby",
  transports: ["websocket", "sse"],
  getToken: () => fetch("/token").then((response) => response.text()),
});
client.onmessage = (event) => {
  const data: string | ArrayBuffer = event.data;
  const when: Date = event.time;
  console.log(event.channel, data, when.toISOString(), event.offset);
};
client.addEventListener("recoveryfailed", (event) => console.log(event.channel, event.lostPosition?.offset));
client.addEventListener("join", (event) => console.log(event.client.id, event.client.info));
const ack: Promise<Acknowledgement> = client.publish("chat:lobby", new Uint8Array([1, 2]), { idempotencyKey: "k-1" });
ack.then((a) => console.log(a.id, a.epoch, a.offset));
client.history("chat:lobby", 10).then((messages: Message[]) => console.log(messages.length));
client.presence("chat:lobby").then((clients) => console.log(clients.map((c) => c.transport)));
const advice: "refresh" | "giveup" | "reconnect" = closeAdvice(4002);
console.log(advice, Squall.version, Squall.Client.OPEN, client.readyState === Client.OPEN);
// Strictness is real: each of these must be refused.
// @ts-expect-error: not a transport
new Client(undefined, { transports: ["carrier-pigeon"] });
// @ts-expect-error: publish needs data
client.publish("chat:lobby");
// @ts-expect-error: no such event
client.addEventListener("opened", () => {});
"""

SCRIPT_PROGRAM = """/// <reference types="squall" />
const chat = new Squall.Client(location.origin, { channel: "room", name: "alice" });
chat.onopen = (event) => console.log("via", event.transport);
chat.send("hello").then((ack) => console.log(ack.offset));
const advice: Squall.CloseAdvice = Squall.closeAdvice(4500);
const message: Squall.Message | null = null;
console.log(advice, message);
"""


@pytest.mark.skipif(not shutil.which("tsc"), reason="needs tsc (Debian's node-typescript)")
def test_squall_d_ts_type_checks_a_strict_program_as_a_module_and_as_the_script_tags_global(tmp_path):
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules/squall").symlink_to(PACKAGE)
    (tmp_path / "app.mts").write_text(MODULE_PROGRAM)
    (tmp_path / "page.ts").write_text(SCRIPT_PROGRAM)
    (tmp_path / "tsconfig.json").write_text(json.dumps({
        "compilerOptions": {
            "strict": True, "noEmit": True, "module": "node16", "moduleResolution": "node16", "target": "es2020",
            "lib": ["es2020", "dom"], "types": [], "moduleDetection": "legacy",
        },
        "files": ["app.mts", "page.ts"],
    }))
    checked = subprocess.run(["tsc", "--noEmit", "--strict", "-p", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert checked.returncode == 0, checked.stdout + checked.stderr


@pytest.mark.skipif(not shutil.which("npm"), reason="needs npm (Debian's npm)")
def test_npm_pack_lists_the_client_its_module_its_types_and_readme(tmp_path):
    packed = subprocess.run(["npm", "pack", "--dry-run", "--json", "--cache", str(tmp_path / "cache")], cwd=PACKAGE,
                            capture_output=True, text=True, timeout=120)
    assert packed.returncode == 0, packed.stderr
    [listing] = json.loads(packed.stdout)
    assert (listing["name"], listing["version"]) == ("squall", VERSION)
    assert sorted(entry["path"] for entry in listing["files"]) == ["README.md", "package.json", "squall.d.ts", "squall.js", "squall.mjs"]
    exports = json.loads((PACKAGE / "package.json").read_text())["exports"]["."]
    assert exports == {"types": "./squall.d.ts", "import": "./squall.mjs", "default": "./squall.js"}


@pytest.mark.skipif(not shutil.which("node"), reason="needs node")
@pytest.mark.parametrize("program", [
    "const Squall = require('squall'); const { Client } = require('squall');"
    " if (typeof Client !== 'function' || Squall.default !== Squall || Squall.version !== process.argv[1]) process.exit(1);",
    "import Squall, { Client, closeAdvice, version } from 'squall';"
    " if (typeof Client !== 'function' || Squall.Client !== Client || closeAdvice(4002) !== 'refresh' || version !== process.argv[1]) process.exit(1);",
])
def test_node_loads_the_package_by_its_name_as_commonjs_and_as_an_es_module(tmp_path, program):
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules/squall").symlink_to(PACKAGE)
    kind = ["--input-type=module"] if program.startswith("import") else []
    ran = subprocess.run(["node", "--preserve-symlinks", *kind, "-e", program, VERSION], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stdout + ran.stderr
