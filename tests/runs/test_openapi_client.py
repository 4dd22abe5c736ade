"""A client generated from /api/schema/ by openapi-python-client 0.29.1 (installed from PyPI into a
cached venv of its own) creates, publishes and runs a workflow against a live server, and gets
typed errors: every status the server answers is documented, so ``raise_on_unexpected_status``
never fires, and the 4xx bodies parse into the ``Problem`` model."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from tests.runs.conftest import RunEnv
from tests.support.tool_venvs import tool_python

pytestmark = pytest.mark.slow

GENERATOR = ["openapi-python-client==0.29.1"]
GRAPH = {
    "inputs": {"name": {"type": "string", "required": True}}, "outputs": {"greeting": {"type": "string"}},
    "nodes": [{"id": "start", "type": "start"},
              {"id": "end", "type": "end", "config": {"outputs": {"greeting": "Hi {{ inputs.name }}"}}}],
    "edges": [{"from": "start", "to": "end"}],
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Any:
    out = tmp_path_factory.mktemp("openapi")
    schema = out / "schema.json"
    call_command("spectacular", "--format", "openapi-json", "--file", str(schema))
    python = tool_python("openapi-python-client", GENERATOR)
    package = out / "weft_generated_client"
    subprocess.run([str(python.parent / "openapi-python-client"), "generate", "--path", str(schema),
                    "--output-path", str(package), "--meta", "none"],
                   check=True, capture_output=True, timeout=300,
                   env={**os.environ, "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"})
    sys.path.insert(0, str(out))
    try:
        yield importlib.import_module("weft_generated_client")
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m.startswith("weft_generated_client")]:
            del sys.modules[name]


def module(generated: Any, name: str) -> Any:
    return importlib.import_module(f"{generated.__name__}.{name}")


def test_generated_client_creates_publishes_runs_and_gets_typed_errors(
        generated: Any, live_server_url: str, run_env: RunEnv) -> None:
    models = module(generated, "models")
    client = generated.AuthenticatedClient(base_url=live_server_url, token=run_env.team_token,
                                           raise_on_unexpected_status=True)
    apps_create = module(generated, "api.apps.apps_create")
    workflows_create = module(generated, "api.workflows.workflows_create")
    publish = module(generated, "api.versions.workflows_publish")
    runs_start = module(generated, "api.runs.runs_start")
    runs_get = module(generated, "api.runs.runs_get")

    app = apps_create.sync(client=client, body=models.AppCreateInputRequest(name="Generated"))
    assert isinstance(app, models.App) and app.name == "Generated"
    workflow = workflows_create.sync(app.id, client=client,
                                     body=models.WorkflowCreateInputRequest(name="hello", graph=GRAPH))
    assert isinstance(workflow, models.Workflow)
    version = publish.sync(workflow.id, client=client)
    assert isinstance(version, models.Version) and version.number == 1

    params = models.RunStartInRequestParams.from_dict({"name": "Gen"})
    run = runs_start.sync(client=client, body=models.RunStartInRequest(workflow_id=workflow.id, params=params))
    assert isinstance(run, models.RunOut), run
    assert run.status == models.RunOutStatusEnum.SUCCEEDED and run.outputs == {"greeting": "Hi Gen"}
    fetched = runs_get.sync(str(run.id), client=client)
    assert isinstance(fetched, models.RunOut) and fetched.id == run.id

    # Typed errors: a missing input (400) and an unknown run (404) parse into Problem.
    bad = runs_start.sync_detailed(client=client, body=models.RunStartInRequest(
        workflow_id=workflow.id, params=models.RunStartInRequestParams.from_dict({})))
    assert bad.status_code == 400 and isinstance(bad.parsed, models.Problem)
    assert bad.parsed.errors[0].path == "/inputs/name"
    missing = runs_get.sync_detailed("00000000-0000-0000-0000-000000000000", client=client)
    assert missing.status_code == 404 and isinstance(missing.parsed, models.Problem)
    assert missing.parsed.code == "not_found"
    bad_publish = publish.sync_detailed(workflows_create.sync(app.id, client=client, body=models.WorkflowCreateInputRequest(
        name="broken", graph={"nodes": [], "edges": []})).id, client=client)
    assert bad_publish.status_code == 400 and isinstance(bad_publish.parsed, models.Problem)
    anonymous = generated.Client(base_url=live_server_url, raise_on_unexpected_status=True)
    denied = runs_get.sync_detailed(str(run.id), client=anonymous)
    assert denied.status_code == 401 and isinstance(denied.parsed, models.Problem)


def test_the_generated_package_has_one_model_per_schema(generated: Any) -> None:
    models_dir = Path(generated.__file__).parent / "models"
    names = sorted(p.stem for p in models_dir.glob("*.py"))
    assert len([n for n in names if n.startswith("callback_result")]) == 1, names
    assert "callbacks_receive_body" not in names
