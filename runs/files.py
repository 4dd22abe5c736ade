"""Files for runs: uploads, ``file`` inputs, and reading a file's bytes for a node.

- ``file_upload`` stores an upload through Django's storage API (the ``uploads`` storage: the
  filesystem under the data directory by default, any backend by setting), after the size
  (``WEFT_UPLOAD_MAX_BYTES``) and type (``WEFT_UPLOAD_ALLOWED_TYPES``) checks; nothing is written
  when one fails. An upload belongs to the team (and the app) of the token that sent it.
- ``file_inputs_resolve`` (called by ``runs.services.run_create``, so by every ``run_start``) turns
  each ``file`` input into the file object of WORKFLOW_FORMAT.md, ``{"id", "name", "size",
  "mime_type", "url", "transfer_method"}``: from an upload id (Dify's ``{"transfer_method":
  "local_file", "upload_file_id"}`` or ``{"upload_file_id"}`` / ``{"id"}``, of the run's team only)
  or a remote URL (a string, or ``{"transfer_method": "remote_url", "url"}``), and checks the
  declaration's ``accept``. A bad one is ``InvalidInput`` naming ``/inputs/<name>``.
- ``file_content`` gives a node the bytes (``runs.runtime.RunServices.file_content``): an upload
  from storage, a remote URL fetched under the outbound address policy, capped at the upload size.
"""

from __future__ import annotations

import fnmatch
import mimetypes
import posixpath
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.core.files.storage import storages
from django.core.files.uploadedfile import UploadedFile as DjangoUpload
from django.db import transaction

from accounts.models import Team
from config.errors import DomainError, InvalidInput, PayloadTooLarge
from runs.http_policy import http_policy
from runs.models import UploadedFile
from workflows.engine.nodes.base import NodeError
from workflows.engine.outbound import OutboundPolicy, outbound_request
from workflows.models import App, WorkflowVersion

UPLOADS = "uploads"


class FileTooLarge(PayloadTooLarge):
    code = "file_too_large"  # Dify's code


class UnsupportedFileType(DomainError):
    status = 415
    code = "unsupported_file_type"  # Dify's code
    title = "Unsupported Media Type"


class NoFileUploaded(DomainError):
    status = 400
    code = "no_file_uploaded"  # Dify's code
    title = "No file uploaded"


def uploads_storage() -> Any:
    return storages[UPLOADS]


def file_mime_type(name: str, declared: str | None) -> str:
    """The MIME type of a file named ``name``: from its extension, else what the client declared."""
    guessed, _ = mimetypes.guess_type(name)
    return (guessed or (declared or "").split(";")[0].strip() or "application/octet-stream").lower()


def file_extension(name: str) -> str:
    return posixpath.splitext(name)[1].lower()[:32]


def type_allowed(patterns: list[str], *, mime_type: str, extension: str) -> bool:
    """Whether a file matches one of ``patterns``: MIME types (``image/*`` families, ``*`` any) or
    extensions (``.csv``)."""
    for pattern in patterns:
        pattern = pattern.strip().lower()
        if pattern == "*" or (pattern.startswith(".") and pattern == extension):
            return True
        if "/" in pattern and fnmatch.fnmatchcase(mime_type, pattern):
            return True
    return False


def file_upload(*, team: Team, app: App | None, upload: DjangoUpload, user: str = "",
                created_by: Any = None) -> UploadedFile:
    """Store ``upload`` for ``team``; ``PayloadTooLarge`` / ``InvalidInput`` (naming ``/file``) first."""
    limit = int(settings.WEFT_UPLOAD_MAX_BYTES)
    if upload.size is not None and upload.size > limit:
        raise FileTooLarge(f"The file is larger than {limit} bytes (WEFT_UPLOAD_MAX_BYTES).",
                           errors=[{"path": "/file", "message": f"larger than {limit} bytes"}])
    name = posixpath.basename((upload.name or "file").replace("\\", "/"))[:255] or "file"
    mime_type, extension = file_mime_type(name, upload.content_type), file_extension(name)
    if not type_allowed(settings.WEFT_UPLOAD_ALLOWED_TYPES, mime_type=mime_type, extension=extension):
        raise UnsupportedFileType(f"Files of type {mime_type} are not accepted (WEFT_UPLOAD_ALLOWED_TYPES).",
                                  errors=[{"path": "/file", "message": f"type {mime_type} not accepted"}])
    file_id = uuid.uuid4()
    storage = uploads_storage()
    # The stored name is ours (team and id), never the client's: no path tricks, no collisions.
    stored = storage.save(f"{team.pk}/{file_id}{extension}", upload)
    try:
        with transaction.atomic():
            return UploadedFile.objects.create(
                id=file_id, team=team, app=app, name=name, size=upload.size or storage.size(stored),
                extension=extension.lstrip("."), mime_type=mime_type, storage_name=stored, user=(user or "")[:255],
                created_by=created_by)
    except Exception:
        storage.delete(stored)  # nothing half-written
        raise


def upload_file_object(row: UploadedFile) -> dict[str, Any]:
    return {"id": str(row.pk), "name": row.name, "size": row.size, "mime_type": row.mime_type, "url": None,
            "transfer_method": "local_file"}


# File inputs ----------------------------------------------------------------------------------

def _remote_object(url: str, pointer: str) -> dict[str, Any]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(f"{pointer}: not an http(s) URL",
                           errors=[{"path": pointer, "message": "a remote file needs an http(s) URL"}])
    name = posixpath.basename(parts.path) or parts.netloc
    return {"id": None, "name": name, "size": None, "mime_type": file_mime_type(name, None), "url": url,
            "transfer_method": "remote_url"}


def _upload_id(value: dict[str, Any]) -> Any:
    if value.get("transfer_method") == "remote_url" or ("url" in value and "upload_file_id" not in value):
        return None
    return value.get("upload_file_id") or value.get("id")


def _file_object(team: Team, value: Any, pointer: str) -> dict[str, Any]:
    if isinstance(value, str):
        return _remote_object(value, pointer)
    if not isinstance(value, dict):
        raise InvalidInput(f"{pointer}: not a file", errors=[{"path": pointer, "message": "not a file"}])
    upload_id = _upload_id(value)
    if upload_id is None:
        if not isinstance(value.get("url"), str):
            raise InvalidInput(f"{pointer}: a file needs upload_file_id or url",
                               errors=[{"path": pointer, "message": "needs upload_file_id or url"}])
        return _remote_object(value["url"], pointer)
    try:
        row = UploadedFile.objects.filter(team=team, pk=str(upload_id)).first()
    except Exception:  # not a UUID: no such upload
        row = None
    if row is None:
        raise InvalidInput(f"{pointer}: no such uploaded file",
                           errors=[{"path": pointer, "message": "no such uploaded file"}])
    return upload_file_object(row)


def _check_accept(obj: dict[str, Any], accept: list[str], pointer: str) -> None:
    if accept and not type_allowed(accept, mime_type=obj["mime_type"], extension=file_extension(obj["name"])):
        raise InvalidInput(f"{pointer}: type {obj['mime_type']} not accepted",
                           errors=[{"path": pointer, "message": f"type {obj['mime_type']} not accepted "
                                                                f"(accept: {', '.join(accept)})"}])


def file_inputs_resolve(*, team: Team, version: WorkflowVersion, inputs: dict[str, Any]) -> dict[str, Any]:
    """``inputs`` with each declared ``file`` input as a file object (see the module docstring)."""
    decls = (version.graph or {}).get("inputs") or {}
    out = dict(inputs)
    for name, decl in decls.items():
        if decl.get("type") != "file" or out.get(name) is None:
            continue
        pointer = f"/inputs/{name}"
        accept = list(decl.get("accept") or [])
        if decl.get("multiple"):
            objects = [_file_object(team, v, f"{pointer}/{i}") for i, v in enumerate(out[name])]
            for i, obj in enumerate(objects):
                _check_accept(obj, accept, f"{pointer}/{i}")
            out[name] = objects
        else:
            obj = _file_object(team, out[name], pointer)
            _check_accept(obj, accept, pointer)
            out[name] = obj
    return out


# Reading a file for a node --------------------------------------------------------------------

@dataclass(frozen=True)
class FileContent:
    name: str
    content: bytes
    mime_type: str


def file_content(*, team_id: Any, file: Any, policy: OutboundPolicy | None = None) -> FileContent:
    """The bytes of a file object of a run of ``team_id``; a ``NodeError`` when it cannot be read."""
    if not isinstance(file, dict):
        raise NodeError("not a file object", code="invalid_file")
    limit = int(settings.WEFT_UPLOAD_MAX_BYTES)
    if file.get("id"):
        row = UploadedFile.objects.filter(team_id=team_id, pk=str(file["id"])).first()
        if row is None:
            raise NodeError("the uploaded file no longer exists", code="file_missing")
        with uploads_storage().open(row.storage_name, "rb") as handle:
            return FileContent(row.name, handle.read(), row.mime_type)
    url = file.get("url")
    if not isinstance(url, str):
        raise NodeError("the file has neither an upload id nor a url", code="invalid_file")
    base = policy or http_policy()
    capped = OutboundPolicy(allow_networks=list(base.allow_networks), max_response_bytes=limit,
                            max_redirects=base.max_redirects)
    response = outbound_request("GET", url, policy=capped, timeout=30)
    if response.status >= 400:
        raise NodeError(f"fetching the file answered {response.status}", code="file_fetch_failed",
                        retryable=response.status >= 500)
    declared = response.headers.get("Content-Type")
    name = str(file.get("name") or "file")
    return FileContent(name, response.content, file_mime_type(name, declared))
