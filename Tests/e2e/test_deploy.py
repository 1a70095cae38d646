# SPDX-License-Identifier: Apache-2.0
"""Running Squall as a service: the systemd unit (checked by systemd-analyze), the example
configuration beside it, and the descriptor limit `squall serve` raises for itself."""
import asyncio
import resource
import shutil
import subprocess
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from conftest import squall_binary

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "deploy/squall.service"


def unit_settings():
    """{key: [values]} of the unit's lines, comments left out."""
    settings = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="needs systemd-analyze (Debian's systemd)")
def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path):
    # The unit names /opt/squall/squall, where the tarball goes; here the binary just built.
    unit = tmp_path / "squall.service"
    unit.write_text(UNIT.read_text().replace("/opt/squall/squall ", f"{squall_binary()} "))
    checked = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0 and checked.stderr.strip() == "", checked.stderr


def test_the_unit_runs_squall_hardened_as_a_dynamic_user_that_reloads_on_sighup():
    settings = unit_settings()
    expected = {
        "DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "StateDirectory": "squall",
        "Restart": "on-failure", "ExecReload": "/bin/kill -HUP $MAINPID", "ProtectHome": "yes", "PrivateTmp": "yes",
    }
    for key, value in expected.items():
        assert settings.get(key) == [value], (key, settings.get(key))
    assert settings["ExecStart"] == ["/opt/squall/squall serve --config /etc/squall/squall.yaml"]
    # Room for the default --max-connections (100,000) and the server's own descriptors (256).
    assert int(settings["LimitNOFILE"][0]) >= 100_000 + 256
    assert "#AmbientCapabilities=CAP_NET_BIND_SERVICE" in UNIT.read_text(), "port 443's line, commented"


def test_the_example_configuration_is_one_squall_accepts():
    checked = subprocess.run([squall_binary(), "config", "check", "--config", str(ROOT / "deploy/squall.yaml")],
                             capture_output=True, text=True, timeout=20)
    assert checked.returncode == 0, checked.stdout + checked.stderr


async def test_squall_raises_its_soft_descriptor_limit_to_the_hard_one_and_holds_more_connections_than_it(squall):
    soft, hard = 128, resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    server = squall("--log-level", "info", nofile=(soft, hard))
    sockets = []
    try:
        for _ in range(soft + 72):
            sockets.append(await connect(f"{server.ws}/msg", open_timeout=5))
        await sockets[0].send("all of them")
        for socket in sockets[-3:]:
            assert await asyncio.wait_for(socket.recv(), 5) == "all of them"
    finally:
        for socket in sockets:
            await socket.close()
    _, log = server.stop()
    assert f"raised the descriptor limit from {soft} to {hard}, the hard limit" in log


def test_squall_warns_naming_both_limits_when_max_connections_needs_more_descriptors(squall):
    server = squall("--log-level", "warning", "--max-connections", "5000", nofile=(1000, 1000))
    _, log = server.stop()
    assert "--max-connections 5000 is more than the descriptor limit allows" in log
    assert "soft limit 1000, hard limit 1000" in log and "about 744 connections" in log
    quiet = squall("--log-level", "warning", "--max-connections", "500", nofile=(1000, 1000))
    _, log = quiet.stop()
    assert "descriptor limit" not in log
