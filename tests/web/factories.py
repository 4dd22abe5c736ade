"""Test data for the page and websocket tests: teams with members of each role, a published workflow."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import User

from accounts.models import Membership, Team
from accounts.services import membership_add, team_create, user_get_or_create
from workflows.models import Workflow
from workflows.services import app_create, workflow_create, workflow_publish

PASSWORD = "correct-horse-battery"


def three_node_graph() -> dict[str, Any]:
    return {
        "inputs": {"name": {"type": "string", "required": True}},
        "outputs": {},
        "params": {},
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "shout", "type": "transform", "config": {"mapping": {"greeting": "{{ 'hello ' + inputs.name }}"}}},
            {"id": "end", "type": "end", "config": {"outputs": {"greeting": "{{ shout.greeting }}"}}},
        ],
        "edges": [{"from": "start", "to": "shout"}, {"from": "shout", "to": "end"}],
    }


def delay_graph(seconds: float = 30) -> dict[str, Any]:
    return {
        "inputs": {}, "outputs": {}, "params": {},
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "wait", "type": "delay", "config": {"mode": "fixed", "seconds": seconds}},
            {"id": "end", "type": "end", "config": {"outputs": {}}},
        ],
        "edges": [{"from": "start", "to": "wait"}, {"from": "wait", "to": "end"}],
    }


def team_with_members(slug: str) -> tuple[Team, dict[str, User]]:
    owner, _ = user_get_or_create(email=f"owner@{slug}.test", password=PASSWORD)
    team = team_create(name=slug.title(), slug=slug, owner=owner)
    users = {"owner": owner}
    for role in ("admin", "editor", "viewer"):
        membership_add(team=team, email=f"{role}@{slug}.test", role=role, password=PASSWORD)
        users[role] = User.objects.get(username=f"{role}@{slug}.test")
    return team, users


def published_workflow(team: Team, owner: User, graph: dict[str, Any] | None = None, name: str = "Greeter") -> Workflow:
    app = app_create(team=team, name=f"{name} app", created_by=owner)
    workflow = workflow_create(team=team, app=app, name=name, graph=graph or three_node_graph(), created_by=owner)
    workflow_publish(team=team, workflow=workflow, published_by=owner)
    workflow.refresh_from_db()
    return workflow


def membership(team: Team, user: User) -> Membership:
    return Membership.objects.get(team=team, user=user)
