"""The demo team: a user, a team, an app with published example workflows, and tokens.

``demo_load`` is idempotent: it creates what is missing and republishes nothing that exists.
When a RabbitMQ broker answers at ``WEFT_DEMO_BROKER_URL`` (default the local one), it also loads
"Order queue": a queue trigger on ``weft_demo_orders`` whose workflow writes each order into the
team's SQLite database ``demo-orders.db`` and publishes a notification to ``weft_demo_notifications``
(docs/queues.md, "The demo").
The demo tokens stay the same across restarts: their secrets are kept in the data dir
(``demo-tokens-<database>.json``, readable by the owner only; the database only ever holds their hashes) and
reused while they are valid, so a script or a Dify client configured with them keeps working.
``reset_tokens=True`` (``manage.py runweft --reset-demo-tokens``) revokes them and issues new ones.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pika
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from accounts.models import ALL_SCOPES, ApiToken, Credential, GlobalParameter, Membership, Team
from accounts.services import credential_create, team_create, token_create, user_get_or_create
from accounts.tokens import token_matches, token_split
from workflows.models import App, Trigger, Workflow
from workflows.services import app_create, workflow_create, workflow_publish
from workflows.triggers import trigger_create

DEMO_EMAIL = "demo@weft.local"
DEMO_PASSWORD = "weft-demo-1"
DEMO_TEAM = "demo"
DEMO_APP = "Order desk"
HERE = Path(__file__).parent

DEMO_WORKFLOWS = [
    ("Order notification", "Seed 001's example: amount > 1000 → mask PII and notify the risk team; "
     "else format and send an email. Both actions call the platform's /demo endpoints.", "order_notification.json"),
    ("Order router", "Parallel enrichment joined, then a condition routes high-risk orders.", "order_router.json"),
]


def _graph(filename: str) -> dict[str, Any]:
    return json.loads((HERE / filename).read_text())


def demo_tokens_path() -> Path:
    """``<data dir>/demo-tokens-<database name>.json``: one file per database (the tests' own too)."""
    return Path(settings.DATA_DIR) / f"demo-tokens-{Path(str(connection.settings_dict['NAME'])).name}.json"


def _kept_token(team: Team, name: str, raw: Any) -> ApiToken | None:
    """The unrevoked, unexpired demo token ``name`` whose secret is ``raw``, if there is one."""
    parts = token_split(raw) if isinstance(raw, str) else None
    if parts is None:
        return None
    token = ApiToken.objects.filter(team=team, name=name, prefix=parts[0], revoked_at__isnull=True).first()
    if token is None or not token_matches(parts[1], token.secret_hash):
        return None
    if token.expires_at is not None and token.expires_at <= timezone.now():
        return None
    return token


def _demo_tokens(*, team: Team, app: App, user: Any, reset: bool) -> tuple[str, str]:
    """The demo's team token and app token: the kept ones, or new ones (the old ones revoked)."""
    path = demo_tokens_path()
    try:
        kept = json.loads(path.read_text()) if path.exists() and not reset else {}
    except (OSError, ValueError):
        kept = {}
    if not isinstance(kept, dict):
        kept = {}
    team_token, app_token = kept.get("token"), kept.get("appToken")
    if _kept_token(team, "demo", team_token) and (found := _kept_token(team, "demo-app", app_token)) \
            and found.app_id == app.pk:
        return team_token, app_token
    ApiToken.objects.filter(team=team, name__in=["demo", "demo-app"], revoked_at__isnull=True).update(
        revoked_at=timezone.now()
    )
    _, team_token = token_create(team=team, name="demo", scopes=list(ALL_SCOPES), created_by=user)
    _, app_token = token_create(team=team, name="demo-app", scopes=["run", "read"], app=app, created_by=user)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"token": team_token, "appToken": app_token}, out)
    os.replace(tmp, path)
    return team_token, app_token


@transaction.atomic
def demo_load(*, base_url: str | None = None, reset_tokens: bool = False) -> dict[str, Any]:
    """Create the demo team, app and published workflows when missing; the demo tokens are the
    ones kept in the data dir while valid, else new ones (and the previous revoked)."""
    user, _ = user_get_or_create(email=DEMO_EMAIL)
    if not user.has_usable_password():
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
    team = Team.objects.filter(slug=DEMO_TEAM).first()
    if team is None:
        team = team_create(name="Demo team", slug=DEMO_TEAM, owner=user)
    elif not Membership.objects.filter(team=team, user=user).exists():
        Membership.objects.create(team=team, user=user, role="owner")
    # The demo's HTTP nodes call this platform's own /demo endpoints.
    GlobalParameter.objects.update_or_create(
        team=team, name="demo_base_url", defaults={"value": (base_url or settings.WEFT_PUBLIC_URL).rstrip("/")}
    )
    app = App.objects.filter(team=team, name=DEMO_APP).first() or app_create(
        team=team, name=DEMO_APP, description="Example workflows of the order desk.", tags=["demo"], created_by=user
    )
    hooks: dict[str, str] = {}
    for name, description, filename in DEMO_WORKFLOWS:
        workflow = Workflow.objects.filter(app=app, name=name).first()
        if workflow is None:
            workflow = workflow_create(team=team, app=app, name=name, description=description,
                                       graph=_graph(filename), created_by=user)
        if workflow.active_version_id is None:
            workflow_publish(team=team, workflow=workflow, published_by=user)
        if filename == "order_notification.json":
            # Seed 001's example starts from a webhook: an unsigned demo hook anyone on this machine can call.
            trigger = Trigger.objects.filter(team=team, workflow=workflow, kind="webhook").first() or trigger_create(
                team=team, workflow=workflow, kind="webhook", name="Order webhook", signed=False
            )
            hooks[name] = f"/hooks/{trigger.key}"
    queue_demo = _queue_demo_load(team=team, app=app, user=user)
    team_token, app_token = _demo_tokens(team=team, app=app, user=user, reset=reset_tokens)
    return {"team": team.slug, "login": DEMO_EMAIL, "password": DEMO_PASSWORD, "token": team_token,
            "appToken": app_token, "app": str(app.pk), "hooks": hooks, "queue": queue_demo}


DEMO_ORDERS_QUEUE = "weft_demo_orders"
DEMO_NOTIFICATIONS_QUEUE = "weft_demo_notifications"


def _broker_reachable(url: str) -> bool:
    """Declare the demo's queues when the broker answers (the notification queue must exist for the
    queue node's publish to be routable)."""
    try:
        conn = pika.BlockingConnection(pika.URLParameters(url + ("&" if "?" in url else "?") +
                                                           "connection_attempts=1&socket_timeout=2"))
    except Exception:
        return False
    try:
        channel = conn.channel()
        channel.queue_declare(DEMO_ORDERS_QUEUE, durable=True)
        channel.queue_declare(DEMO_NOTIFICATIONS_QUEUE, durable=True)
    finally:
        conn.close()
    return True


def _queue_demo_load(*, team: Team, app: App, user: Any) -> dict[str, str] | None:
    url = os.environ.get("WEFT_DEMO_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")
    if not _broker_reachable(url):
        return None
    for name, kind, secret in (("demo-broker", "broker", url), ("demo-orders-db", "database", "sqlite:///demo-orders.db")):
        if not Credential.objects.filter(team=team, name=name).exists():
            credential_create(team=team, name=name, kind=kind, secrets={"url": secret})
    workflow = Workflow.objects.filter(app=app, name="Order queue").first()
    if workflow is None:
        workflow = workflow_create(team=team, app=app, name="Order queue", graph=_graph("order_queue.json"),
                                   description="Fed by a RabbitMQ queue: writes each order into a SQLite table, "
                                               "then publishes a notification to another queue.", created_by=user)
    if workflow.active_version_id is None:
        workflow_publish(team=team, workflow=workflow, published_by=user)
    if not Trigger.objects.filter(team=team, workflow=workflow, kind="queue").exists():
        trigger_create(team=team, workflow=workflow, kind="queue", name="Orders queue", credential="demo-broker",
                       source=DEMO_ORDERS_QUEUE)
    return {"orders": DEMO_ORDERS_QUEUE, "notifications": DEMO_NOTIFICATIONS_QUEUE, "workflow": str(workflow.pk)}
