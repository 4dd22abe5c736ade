"""``manage.py createteam <slug> --owner <email> [--password PW] [--token NAME]``.

Creates the team and its owner (or adds an existing user as owner) and, with ``--token``, a team
token with every scope. Prints one JSON object ``{"team", "owner", "token"}``.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.models import ALL_SCOPES
from accounts.services import team_create, token_create, user_get_or_create
from config.errors import DomainError


class Command(BaseCommand):
    help = "Create a team with an owner and optionally an all-scopes API token."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--owner", required=True, help="owner's email (created when new)")
        parser.add_argument("--password", default=None)
        parser.add_argument("--name", default=None, help="team name (default: the slug)")
        parser.add_argument("--time-zone", default="UTC")
        parser.add_argument("--token", default=None, help="create a token with this name")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            with transaction.atomic():
                owner, _ = user_get_or_create(email=options["owner"], password=options["password"])
                team = team_create(name=options["name"] or options["slug"], slug=options["slug"], owner=owner,
                                   time_zone=options["time_zone"])
                secret = None
                if options["token"]:
                    _, secret = token_create(team=team, name=options["token"], scopes=list(ALL_SCOPES), created_by=owner)
        except DomainError as exc:
            raise CommandError(f"{exc.detail} {exc.errors}") from exc
        self.stdout.write(json.dumps({"team": team.slug, "owner": owner.username, "token": secret}))
