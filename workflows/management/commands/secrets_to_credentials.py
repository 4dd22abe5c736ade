"""``manage.py secrets_to_credentials [--team SLUG ...] [--dry-run]``: move the inline secrets of
drafts and published versions into team credentials (``workflows.inline_secrets``)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Team
from workflows.inline_secrets import inline_secrets_move


class Command(BaseCommand):
    help = ("Move secrets written in auth blocks (key, token, password) of every draft and published version "
            "into team credentials, which the blocks then name. Exits 1 when a secret had to be left in place.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--team", action="append", default=[], metavar="SLUG", help="only these teams")
        parser.add_argument("--dry-run", action="store_true", help="report what would move, change nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        teams = Team.objects.order_by("slug")
        if options["team"]:
            teams = teams.filter(slug__in=options["team"])
            missing = set(options["team"]) - set(teams.values_list("slug", flat=True))
            if missing:
                raise CommandError(f"no such team: {', '.join(sorted(missing))}")
        moved = left = 0
        for team in teams:
            for move in inline_secrets_move(team=team, dry_run=options["dry_run"]):
                where = f"{team.slug} workflow {move.workflow} {'draft' if move.version is None else f'v{move.version}'}"
                if move.credential:
                    moved += 1
                    self.stdout.write(f"{where} {move.path}: -> credential {move.credential!r}")
                else:
                    left += 1
                    self.stdout.write(f"{where} {move.path}: LEFT ({move.reason})")
        verb = "would move" if options["dry_run"] else "moved"
        self.stdout.write(f"{verb} {moved} inline secret(s); {left} left in place")
        if left:
            raise CommandError(f"{left} inline secret(s) left in place: fix them by hand (see above)", returncode=1)
