"""Moving inline secrets out of graphs into team credentials (``manage.py secrets_to_credentials``).

Publishing refuses a secret written in an ``auth`` block (``key``, ``token``, ``password``:
WORKFLOW_FORMAT.md lets secrets in only through ``auth.credential``). Drafts and versions saved
before that still hold them in plaintext, readable by every member. ``inline_secrets_move`` rewrites
each such block of a team's drafts and published versions to name a credential holding the same
secret: an existing credential of the team with the same kind and fields is reused, else one is
created (named after the workflow and the node). A version runs exactly as before. A value that is
an expression or a parameter (``{{ }}``, ``${ }``, ``$[ ]``) is left in place and reported: only a
person can say where that secret should live, and publishing keeps refusing it until then.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils.text import slugify

from accounts.crypto import secret_decrypt
from accounts.models import CREDENTIAL_FIELDS, Credential, CredentialKind, Team
from accounts.services import credential_create
from workflows.engine.graph import INLINE_SECRET_FIELDS
from workflows.models import Workflow, WorkflowVersion

_KIND_BY_FIELD = {"key": CredentialKind.API_KEY, "token": CredentialKind.BEARER, "password": CredentialKind.BASIC}
_TEMPLATE_MARKS = ("{{", "${", "$[")


@dataclass
class SecretMove:
    """One ``auth`` block: moved into ``credential``, or left in place with the ``reason``."""

    workflow: str
    version: int | None  # None: the draft
    path: str
    credential: str = ""
    reason: str = ""


def _auth_blocks(value: Any, path: str, node_id: str) -> Iterator[tuple[dict[str, Any], str, str]]:
    """Every ``auth`` object in a graph (nodes, loop bodies, compensations, poll requests), with its
    JSON pointer and the id of the node it belongs to."""
    if isinstance(value, dict):
        node_id = str(value["id"]) if isinstance(value.get("id"), str) and "type" in value else node_id
        for key, child in value.items():
            pointer = f"{path}/{str(key).replace('~', '~0').replace('/', '~1')}"
            if key == "auth" and isinstance(child, dict):
                yield child, pointer, node_id
            else:
                yield from _auth_blocks(child, pointer, node_id)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _auth_blocks(child, f"{path}/{index}", node_id)


def _inline(auth: dict[str, Any]) -> list[str]:
    return [f for f in INLINE_SECRET_FIELDS if auth.get(f) not in (None, "")]


class _Credentials:
    """The team's HTTP credentials by content, so that equal secrets share one credential."""

    def __init__(self, team: Team, dry_run: bool) -> None:
        self.team, self.dry_run = team, dry_run
        self.names = set(Credential.objects.filter(team=team).values_list("name", flat=True))
        self.by_content: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
        for credential in Credential.objects.filter(team=team, kind__in=list(_KIND_BY_FIELD.values())):
            fields = secret_decrypt(credential.secret_encrypted)
            self.by_content.setdefault((credential.kind, tuple(sorted(fields.items()))), credential.name)

    def for_secrets(self, kind: str, secrets: dict[str, str], hint: str) -> str:
        content = (kind, tuple(sorted(secrets.items())))
        if content in self.by_content:
            return self.by_content[content]
        base = slugify(hint)[:100] or "inline-secret"
        name, n = base, 2
        while name in self.names:
            name, n = f"{base}-{n}", n + 1
        if not self.dry_run:
            credential_create(team=self.team, name=name, kind=kind, secrets=secrets)
        self.names.add(name)
        self.by_content[content] = name
        return name


def _graph_move(graph: Any, *, workflow: Workflow, version: int | None,
                credentials: _Credentials) -> tuple[Any, list[SecretMove]]:
    graph = copy.deepcopy(graph)
    moves: list[SecretMove] = []
    for auth, pointer, node_id in list(_auth_blocks(graph, "", "")):
        fields = _inline(auth)
        if not fields:
            continue
        move = SecretMove(workflow=str(workflow.pk), version=version, path=pointer)
        moves.append(move)
        kind = auth.get("type") if auth.get("type") in _KIND_BY_FIELD.values() else _KIND_BY_FIELD[fields[0]]
        wanted = CREDENTIAL_FIELDS[kind]
        values = {f: auth.get(f) for f in wanted}
        if any(not isinstance(v, str) or not v and f != "username" for f, v in values.items()):
            move.reason = f"{kind} auth needs {', '.join(wanted)} as text; fix it by hand"
            continue
        if any(mark in v for v in values.values() for mark in _TEMPLATE_MARKS):
            move.reason = "the secret is an expression or a parameter; move it into a credential by hand"
            continue
        if auth.get("credential"):
            move.reason = "the block names a credential and an inline secret; remove one by hand"
            continue
        move.credential = credentials.for_secrets(kind, values, f"{workflow.name}-{node_id}")
        for field in {*fields, *wanted}:
            auth.pop(field, None)
        auth["type"], auth["credential"] = kind, move.credential
    return graph, moves


def inline_secrets_move(*, team: Team, dry_run: bool = False) -> list[SecretMove]:
    """Move the inline secrets of the team's drafts and versions into credentials (all in one
    transaction); what was moved and what was left, in order. ``dry_run``: report only."""
    with transaction.atomic():
        credentials = _Credentials(team, dry_run)
        moves: list[SecretMove] = []
        for workflow in Workflow.objects.filter(team=team).order_by("created_at", "pk"):
            graph, found = _graph_move(workflow.graph, workflow=workflow, version=None, credentials=credentials)
            moves += found
            if any(m.credential for m in found) and not dry_run:
                Workflow.objects.filter(team=team, pk=workflow.pk).update(graph=graph)
            for version in WorkflowVersion.objects.filter(team=team, workflow=workflow).order_by("number", "pk"):
                graph, found = _graph_move(version.graph, workflow=workflow, version=version.number,
                                           credentials=credentials)
                moves += found
                if any(m.credential for m in found) and not dry_run:
                    WorkflowVersion.objects.filter(team=team, pk=version.pk).update(graph=graph)
        if dry_run:
            transaction.set_rollback(True)
    return moves
