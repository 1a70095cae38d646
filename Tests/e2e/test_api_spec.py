# SPDX-License-Identifier: Apache-2.0
"""The server API against its spec: schemathesis (PyPI 4.x) generates requests from
docs/openapi.yaml — valid ones, and ones that break it each way it can — and checks every answer
against the spec: status, content type, body schema, refusals of what the spec forbids, 405 for
other methods, 401 without the key. Any finding fails the test."""
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

KEY = "spec-key"


def test_the_running_server_answers_as_docs_openapi_yaml_says(squall, tmp_path):
    server = squall("--log-level", "error", "--api-key", KEY)
    schemathesis = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [
            str(schemathesis), "--config-file", str(ROOT / "Tests/api/schemathesis.toml"), "run", str(ROOT / "docs/openapi.yaml"),
            "--url", server.http, "--header", f"Authorization: apikey {KEY}",
            # Fixed, so that a finding is reproducible; enough examples to reach every keyword.
            "--seed", "27", "--max-examples", "100", "--no-color",
        ],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout
