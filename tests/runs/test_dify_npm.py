"""The npm ``dify-client`` 2.3.2, unchanged, under Node against a live Weft: the app's parameters,
a file upload (``FormData``), a blocking run that sends the uploaded file on, and a stream with a
skipped node, a loop, parallel branches and a continue-on-error failure. The package is installed
once with npm into a cache directory (``WEFT_TOOL_NPM``, default ``~/.cache/weft-test-npm``)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.engine.http_servers import scripted_server
from tests.runs.conftest import FIDELITY_GRAPH, run_env_make
from tests.runs.test_files import CSV, file_graph, multipart_echo

pytestmark = pytest.mark.slow

PACKAGE = "dify-client@2.3.2"
NPM_HOME = Path(os.environ.get("WEFT_TOOL_NPM", Path.home() / ".cache" / "weft-test-npm")) / "dify-client-2.3.2"

SCRIPT = r'''
import { DifyClient, CompletionClient } from "dify-client";
const cfg = JSON.parse(process.env.WEFT_SDK);
const out = {};
const files = new DifyClient(cfg.file, cfg.base + "/v1");
out.parameters = (await files.getApplicationParameters("fi")).data.user_input_form;
const form = new FormData();
form.append("file", new Blob([cfg.csv], { type: "text/csv" }), "report.csv");
form.append("user", "fi");
const uploaded = (await files.fileUpload(form)).data;
out.upload = uploaded;
const runner = new CompletionClient(cfg.file, cfg.base + "/v1");
const doc = { type: "document", transfer_method: "local_file", upload_file_id: uploaded.id };
out.file_run = (await runner.runWorkflow({ doc }, "fi")).data;
const streamer = new CompletionClient(cfg.fidelity, cfg.base + "/v1");
const response = await streamer.runWorkflow({}, "st", true);
let text = "";
for await (const chunk of response.data) text += chunk.toString();
out.stream = text.split("\n").filter((l) => l.startsWith("data: ")).map((l) => JSON.parse(l.slice(6)));
console.log(JSON.stringify(out));
'''


def npm_install() -> Path:
    if not (NPM_HOME / "node_modules" / "dify-client" / "package.json").exists():
        NPM_HOME.mkdir(parents=True, exist_ok=True)
        (NPM_HOME / "package.json").write_text('{"private": true, "type": "module"}')
        subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error", PACKAGE], cwd=NPM_HOME,
                       check=True, capture_output=True, timeout=300)
    return NPM_HOME


def test_npm_dify_client(live_server_url: str, transactional_db: Any, team_a: Any, team_b: Any) -> None:
    home = npm_install()
    with scripted_server() as echo:
        echo.route("/form", multipart_echo)
        envs = {"file": run_env_make(team_a, team_b, file_graph(echo.url("/form"), accept=["text/csv"])),
                "fidelity": run_env_make(team_a, team_b, FIDELITY_GRAPH)}
        config = {"base": live_server_url, "csv": CSV.decode(), **{k: e.app_token for k, e in envs.items()}}
        script = home / "weft_dify_client_check.mjs"
        script.write_text(SCRIPT)
        result = subprocess.run(["node", str(script)], cwd=home, capture_output=True, text=True, timeout=120,
                                env={**os.environ, "WEFT_SDK": json.dumps(config)})
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    form = {next(iter(item.values()))["variable"]: item for item in out["parameters"]}
    assert form["doc"]["file"]["allowed_file_types"] == ["document"]
    assert out["upload"]["name"] == "report.csv" and out["upload"]["size"] == len(CSV)
    assert out["file_run"]["data"]["status"] == "succeeded"
    part = out["file_run"]["data"]["outputs"]["received"]["parts"]["upload"]
    assert part["sha256"] == hashlib.sha256(CSV).hexdigest()
    stream = out["stream"]
    assert stream[0]["event"] == "workflow_started" and stream[-1]["event"] == "workflow_finished"
    nodes = {e["data"]["node_id"]: e["data"] for e in stream if e["event"] == "node_finished"}
    assert "skipped" not in nodes and nodes["broken"]["status"] == "exception"
    assert nodes["each"]["outputs"] == {"output": [1, 4, 9]}
    assert "parallel_branch_started" in {e["event"] for e in stream}
    assert stream[-1]["data"]["exceptions_count"] == 1
