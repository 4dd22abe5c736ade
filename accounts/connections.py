"""Connection credentials (kinds ``database`` and ``broker``): their policies from settings and the
"test connection" action.

The policies are what ``db``/``queue`` nodes and queue triggers run under: the HTTP allow-list
(``WEFT_HTTP_ALLOW_NETWORKS``) applies to every outbound connection, the ``WEFT_DB_*`` budgets to
SQL. A test connects once (``SELECT 1`` / AMQP login / Redis ``PING``) and answers ``{"ok": true}``
or ``{"ok": false, "error": {"code", "message"}}``: the codes tell a refused address
(``address_refused``), a refused connection (``connection_refused``), an authentication failure
(``auth_failed``), an unknown database (``unknown_database``) or virtual host (``access_denied``)
apart; messages never contain the URL or its password.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from accounts.crypto import secret_decrypt
from accounts.models import Credential, CredentialKind, Team
from config.errors import InvalidInput, team_owned
from workflows.engine import brokers, databases
from workflows.engine.brokers import BrokerPolicy
from workflows.engine.databases import DatabasePolicy
from workflows.engine.nodes.base import NodeError


def db_policy() -> DatabasePolicy:
    """The ``db`` node budgets from settings (WEFT_DB_*; the HTTP allow-list applies to databases too)."""
    return DatabasePolicy(
        allow_networks=tuple(settings.WEFT_HTTP_ALLOW_NETWORKS), connect_timeout=settings.WEFT_CONNECT_TIMEOUT,
        sqlite_dir=settings.WEFT_DB_SQLITE_DIR, sqlite_max_bytes=settings.WEFT_DB_SQLITE_MAX_BYTES,
        max_connections=settings.WEFT_DB_MAX_CONNECTIONS_PER_TEAM, max_rows=settings.WEFT_DB_MAX_ROWS,
        max_output_bytes=settings.WEFT_NODE_MAX_OUTPUT_BYTES, statement_timeout=settings.WEFT_DB_STATEMENT_TIMEOUT,
        max_statement_timeout=settings.WEFT_DB_MAX_STATEMENT_TIMEOUT,
    )


def broker_policy() -> BrokerPolicy:
    """The ``queue`` node and queue trigger policy from settings."""
    return BrokerPolicy(allow_networks=tuple(settings.WEFT_HTTP_ALLOW_NETWORKS),
                        connect_timeout=settings.WEFT_CONNECT_TIMEOUT,
                        max_message_bytes=settings.WEFT_QUEUE_MAX_MESSAGE_BYTES)


def credential_test(*, team: Team, credential: Credential) -> dict[str, Any]:
    """Connect once with a ``database`` or ``broker`` credential of ``team``."""
    team_owned(team, credential, "Credential")
    if credential.kind not in (CredentialKind.DATABASE, CredentialKind.BROKER):
        raise InvalidInput("Only database and broker credentials can be tested.",
                           errors=[{"path": "/kind", "message": "must be database or broker"}])
    url = secret_decrypt(credential.secret_encrypted).get("url", "")
    try:
        if credential.kind == CredentialKind.DATABASE:
            databases.connection_test(team=str(team.id), url=url, policy=db_policy())
        else:
            brokers.connection_test(url=url, policy=broker_policy())
    except NodeError as exc:
        return {"ok": False, "error": {"code": exc.code, "message": exc.message}}
    return {"ok": True, "error": None}
