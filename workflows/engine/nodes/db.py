"""The ``db`` node: one SQL statement against a team's database credential, bound parameters only.

``{"credential": name, "query": SQL, "params": {name: value}, "mode": "rows"|"one"|"execute",
"max_rows": 1000}``. Values reach SQL only as bound parameters (``:name`` placeholders in
``query``); ``params`` values may be templates, ``query`` may not (a ``{{ }}``, ``${}`` or macro
inside it is a publish error, so a value can never become SQL text). Output: ``rows`` →
``{"rows": [...], "rowcount", "truncated"?}``, ``one`` → the first row or null, ``execute`` →
``{"rowcount"}``. The statement runs under the node's ``timeout`` (default
``DatabasePolicy.statement_timeout``), enforced by the database (``workflows.engine.databases``).

Services used (``workflows.engine.ports.Services``): ``credential(name)`` → ``{"kind": "database",
"url"}``; ``db_policy``; ``team_key`` (pools and SQLite files are per team).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from workflows.engine.connections import url_parse
from workflows.engine.databases import statement_run
from workflows.engine.nodes.base import (
    TEMPLATE_MARKERS,
    NodeContext,
    NodeError,
    NodeResult,
    NodeType,
    Reference,
)


def credential_url(ctx: NodeContext, name: Any, kind: str) -> str:
    """The ``url`` of the team credential ``name`` of ``kind``; registers it as a secret."""
    if not isinstance(name, str) or not name:
        raise NodeError(f"credential {name!r} is not available here", code="credential_not_found")
    try:
        credential = dict(ctx.services.credential(name))
    except LookupError:
        raise NodeError(f"credential {name!r} does not exist", code="credential_not_found") from None
    if credential.get("kind") != kind:
        raise NodeError(f"credential {name!r} is not a {kind} credential", code="credential_invalid")
    url = credential.get("url") or ""
    for secret in (url, url_parse(url).password):
        if secret and secret not in ctx.secrets:
            ctx.secrets.append(secret)
    return url


class DbNode(NodeType):
    type: ClassVar[str] = "db"
    title: ClassVar[str] = "Database"
    config_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "title": "Database query",
        "description": "Runs one SQL statement on a database credential (PostgreSQL, MySQL/MariaDB, SQLite). "
                       "Values reach SQL only as bound parameters.",
        "required": ["credential", "query"],
        "properties": {
            "credential": {"type": "string", "minLength": 1, "title": "Credential",
                           "description": "Name of a team credential of kind `database`."},
            "query": {"type": "string", "minLength": 1, "maxLength": 100_000, "title": "SQL",
                      "description": "One statement with `:name` placeholders, e.g. "
                                     "`SELECT * FROM orders WHERE id = :id`. No templates here: "
                                     "pass values through params."},
            "params": {"type": "object", "title": "Parameters",
                       "description": "Values of the `:name` placeholders: literals, `{{ }}` templates or "
                                      "`${}` parameters. Objects and arrays are sent as JSON text.",
                       "additionalProperties": True},
            "mode": {"enum": ["rows", "one", "execute"], "default": "rows", "title": "Result",
                     "description": "`rows`: {rows, rowcount}; `one`: the first row or null; "
                                    "`execute`: {rowcount}."},
            "max_rows": {"type": "integer", "minimum": 0, "default": 1000, "title": "Maximum rows",
                         "description": "Rows returned at most in `rows` mode (more: `truncated: true`)."},
        },
        "additionalProperties": False,
    }
    self_timed: ClassVar[bool] = True  # the database enforces the timeout on the statement

    def references(self, config: Mapping[str, Any]) -> list[Reference]:
        return [Reference("/credential", "credential", config.get("credential"), accepts=("database",))]

    def validate(self, config: Mapping[str, Any], path: str) -> list[dict[str, str]]:
        query = config.get("query")
        if isinstance(query, str) and TEMPLATE_MARKERS.search(query):
            return [{"path": f"{path}/query",
                     "message": "templates, ${} parameters and macros are not allowed in SQL; use :name "
                                "placeholders and put the values in params"}]
        return []

    def run(self, ctx: NodeContext) -> NodeResult:
        config = ctx.config
        if TEMPLATE_MARKERS.search(str(config.get("query", ""))):
            raise NodeError(f"nodes.{ctx.node_id}.config.query: templates are not allowed in SQL", code="bad_config")
        url = credential_url(ctx, ctx.resolve(config.get("credential")), "database")
        params = ctx.resolve(config.get("params") or {})
        if not isinstance(params, dict):
            raise NodeError(f"nodes.{ctx.node_id}.config.params: must be an object", code="bad_config")
        output = statement_run(
            team=ctx.services.team_key, url=url, query=config["query"], params=params, mode=config.get("mode", "rows"),
            max_rows=int(config.get("max_rows", 1000)), timeout=ctx.timeout, policy=ctx.services.db_policy,
        )
        return NodeResult(output=output)
