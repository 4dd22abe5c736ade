"""Files for runs: ``POST /v1/files/upload`` (Django's storage API, team-scoped, size and type
limits), ``file`` inputs from uploads and remote URLs, and the HTTP node sending them as
``multipart/form-data`` to a real server on 127.0.0.1."""

from __future__ import annotations

import email.parser
import hashlib
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import storages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings

from runs.models import Run, UploadedFile
from tests.conftest import client_with_token
from tests.engine.http_servers import Recorded, Reply, scripted_server
from tests.runs.conftest import RunEnv, run_count, run_env_make

CSV = b"id,amount\n1,20\n2,22\n"


def file_graph(url: str, *, accept: list[str] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"type": "file", "required": True, "title": "Document"}
    if accept:
        doc["accept"] = accept
    return {
        "inputs": {"doc": doc, "note": {"type": "string", "default": "n"}},
        "outputs": {}, "params": {},
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "send", "type": "http", "config": {"method": "POST", "url": url,
                                                      "files": {"upload": "{{ inputs.doc }}"},
                                                      "body": {"note": "{{ inputs.note }}"}}},
            {"id": "end", "type": "end", "config": {"outputs": {"received": "{{ send.body }}",
                                                               "name": "{{ inputs.doc.name }}"}}},
        ],
        "edges": [{"from": "start", "to": "send"}, {"from": "send", "to": "end"}],
    }


def multipart_echo(request: Recorded) -> Reply:
    """What a form-handling service would see: each part's name, filename, type and digest."""
    head = f"Content-Type: {request.header('Content-Type')}\r\n\r\n".encode()
    message = email.parser.BytesParser().parsebytes(head + request.body)
    parts = {}
    for part in message.get_payload():
        content = part.get_payload(decode=True)
        parts[part.get_param("name", header="content-disposition")] = {
            "filename": part.get_filename(), "type": part.get_content_type(),
            "sha256": hashlib.sha256(content).hexdigest(), "text": content.decode(errors="replace")}
    return Reply(body={"content_type": request.header("Content-Type").split(";")[0], "parts": parts})


@pytest.fixture
def echo() -> Any:
    with scripted_server() as server:
        server.route("/form", multipart_echo)
        server.route("/files/report.csv", Reply(body=CSV, headers={"Content-Type": "text/csv"}))
        yield server


@pytest.fixture
def file_env(transactional_db: Any, team_a: Any, team_b: Any, echo: Any, settings: Any) -> RunEnv:
    settings.WEFT_HTTP_ALLOW_NETWORKS = ["127.0.0.1/32"]
    return run_env_make(team_a, team_b, file_graph(echo.url("/form"), accept=["text/csv", ".txt"]))


def upload(env: RunEnv, name: str = "report.csv", content: bytes = CSV, content_type: str = "text/csv",
           token: str | None = None) -> Any:
    return env.client(token).post("/v1/files/upload", {"file": SimpleUploadedFile(name, content, content_type),
                                                       "user": "alice"}, format="multipart")


def test_upload_is_stored_through_the_storage_api_for_the_team(file_env: RunEnv, settings: Any) -> None:
    response = upload(file_env)
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "name", "size", "extension", "mime_type", "created_by", "created_at"}
    assert (body["name"], body["size"], body["extension"], body["mime_type"], body["created_by"]) == (
        "report.csv", len(CSV), "csv", "text/csv", "alice")
    row = UploadedFile.objects.get(pk=body["id"])
    assert row.team == file_env.team and row.app == file_env.app
    stored = Path(settings.WEFT_UPLOAD_DIR) / row.storage_name
    assert stored.read_bytes() == CSV and row.storage_name.startswith(f"{file_env.team.pk}/")


@override_settings(WEFT_MAX_BODY_BYTES=1000)
def test_an_upload_may_be_larger_than_other_bodies(file_env: RunEnv) -> None:
    big = b"a,b\n" + b"1,2\n" * 2000  # 8 kB: over the body limit, under the upload limit
    response = upload(file_env, content=big)
    assert response.status_code == 201, response.content
    assert UploadedFile.objects.get().size == len(big)
    run = file_env.client().post("/v1/workflows/run", {"inputs": {"doc": "x" * 2000}, "user": "u"}, format="json")
    assert run.status_code == 413  # the run endpoint keeps the body limit


def test_upload_limits_and_bad_requests_write_nothing(file_env: RunEnv) -> None:
    with override_settings(WEFT_UPLOAD_MAX_BYTES=10):
        response = upload(file_env)
    assert response.status_code == 413 and response.json()["code"] == "file_too_large"
    response = upload(file_env, name="tool.exe", content=b"MZ", content_type="application/octet-stream")
    assert response.status_code == 415 and response.json()["code"] == "unsupported_file_type"
    response = file_env.client().post("/v1/files/upload", {"user": "alice"}, format="multipart")
    assert response.status_code == 400 and response.json()["code"] == "no_file_uploaded"
    team_only = upload(file_env, token=file_env.team_token)
    assert team_only.status_code == 400 and team_only.json()["code"] == "app_unavailable"
    assert UploadedFile.objects.count() == 0


def test_any_storage_backend_by_setting(file_env: RunEnv) -> None:
    memory = {"default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
              "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
              "uploads": {"BACKEND": "django.core.files.storage.InMemoryStorage"}}
    with override_settings(STORAGES=memory):
        body = upload(file_env).json()
        row = UploadedFile.objects.get(pk=body["id"])
        assert type(storages["uploads"]).__name__ == "InMemoryStorage"
        assert storages["uploads"].open(row.storage_name).read() == CSV


def test_a_run_sends_the_uploaded_file_as_multipart(file_env: RunEnv) -> None:
    file_id = upload(file_env).json()["id"]
    doc = {"type": "document", "transfer_method": "local_file", "upload_file_id": file_id}
    response = file_env.client().post("/v1/workflows/run", {"inputs": {"doc": doc, "note": "q3"}, "user": "alice"},
                                      format="json")
    data = response.json()["data"]
    assert data["status"] == "succeeded", data
    received = data["outputs"]["received"]
    assert received["content_type"] == "multipart/form-data"
    assert received["parts"]["upload"] == {"filename": "report.csv", "type": "text/csv",
                                           "sha256": hashlib.sha256(CSV).hexdigest(), "text": CSV.decode()}
    assert received["parts"]["note"]["text"] == "q3"
    assert data["outputs"]["name"] == "report.csv"
    run = Run.objects.get()
    assert run.inputs["doc"] == {"id": file_id, "name": "report.csv", "size": len(CSV), "mime_type": "text/csv",
                                 "url": None, "transfer_method": "local_file"}


def test_a_remote_url_input_is_fetched_under_the_address_policy(file_env: RunEnv, echo: Any, settings: Any) -> None:
    doc = {"type": "document", "transfer_method": "remote_url", "url": echo.url("/files/report.csv")}
    data = file_env.client().post("/v1/workflows/run", {"inputs": {"doc": doc}, "user": "u"}, format="json").json()
    assert data["data"]["status"] == "succeeded", data
    assert data["data"]["outputs"]["received"]["parts"]["upload"]["sha256"] == hashlib.sha256(CSV).hexdigest()
    settings.WEFT_HTTP_ALLOW_NETWORKS = []  # loopback is not public: the fetch is refused
    refused = file_env.client().post("/v1/workflows/run", {"inputs": {"doc": doc}, "user": "u"},
                                     format="json").json()["data"]
    assert refused["status"] == "failed" and "address" in refused["error"].lower()


def test_file_inputs_are_checked_before_anything_runs(file_env: RunEnv) -> None:
    other_env = run_env_make(file_env.other_team, file_env.team, file_graph("http://127.0.0.1:9/form"))
    other_id = upload(other_env).json()["id"]
    client = file_env.client()
    before = run_count()
    cases = [
        ({"transfer_method": "local_file", "upload_file_id": other_id}, "inputs.doc", "no such uploaded file"),
        ({"transfer_method": "local_file", "upload_file_id": "not-an-id"}, "inputs.doc", "no such uploaded file"),
        ({"transfer_method": "remote_url", "url": "ftp://x.example/a.csv"}, "inputs.doc", "http(s)"),
        ({"transfer_method": "remote_url", "url": "https://x.example/a.png"}, "inputs.doc", "not accepted"),
        (42, "inputs.doc", ""),
    ]
    for doc, params, message in cases:
        response = client.post("/v1/workflows/run", {"inputs": {"doc": doc}, "user": "u"}, format="json")
        assert response.status_code == 400, (doc, response.content)
        assert response.json()["params"] == params and message in response.json()["message"], response.json()
    assert run_count() == before
    assert client_with_token(file_env.other_team, ["run"]).post(
        "/v1/files/upload", {"file": SimpleUploadedFile("a.csv", CSV, "text/csv")}, format="multipart"
    ).status_code == 400  # a team token without an app: app_unavailable
