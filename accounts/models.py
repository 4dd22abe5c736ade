"""Tenant models. Every tenant-owned row carries ``team``; unique constraints include it."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models


class Role(models.TextChoices):
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"
    EDITOR = "editor", "Editor"
    VIEWER = "viewer", "Viewer"


class Scope(models.TextChoices):
    RUN = "run", "Run"
    READ = "read", "Read"
    MANAGE = "manage", "Manage"
    ADMIN = "admin", "Admin"


ALL_SCOPES = [Scope.RUN.value, Scope.READ.value, Scope.MANAGE.value, Scope.ADMIN.value]

# What a signed-in member may do, expressed in token scopes so one permission check serves both.
# ``admin`` administers members and tokens; ``manage`` builds (apps, workflows, credentials, ...).
# A token never carries more than its creator's role (``accounts.authentication``).
ROLE_SCOPES: dict[str, set[str]] = {
    Role.OWNER: {"run", "read", "manage", "admin"},
    Role.ADMIN: {"run", "read", "manage", "admin"},
    Role.EDITOR: {"run", "read", "manage"},
    Role.VIEWER: {"read"},
}


class Team(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=120)
    slug = models.SlugField(max_length=64, unique=True)
    time_zone = models.CharField(max_length=64, default="UTC")
    webhook_secret = models.CharField(max_length=80, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.slug


class Membership(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.EDITOR)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "user"], name="membership_team_user_unique")]

    def __str__(self) -> str:
        return f"{self.user_id}@{self.team_id} ({self.role})"


class ApiToken(models.Model):
    """A team's API token. Only ``prefix`` and a SHA-256 of the secret are stored."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="tokens")
    app = models.ForeignKey("workflows.App", null=True, blank=True, on_delete=models.CASCADE, related_name="tokens")
    name = models.CharField(max_length=120)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["team", "created_at"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix})"


class CredentialKind(models.TextChoices):
    API_KEY = "api_key", "API key"
    BEARER = "bearer", "Bearer token"
    BASIC = "basic", "Basic auth"
    DATABASE = "database", "Database (db nodes)"
    BROKER = "broker", "Message broker (queue nodes and triggers)"


CREDENTIAL_FIELDS: dict[str, tuple[str, ...]] = {
    CredentialKind.API_KEY: ("key",),
    CredentialKind.BEARER: ("token",),
    CredentialKind.BASIC: ("username", "password"),
    # A connection URL: postgresql://, mysql:// (MariaDB too), sqlite:/// for ``database``;
    # amqp://, amqps://, redis://, rediss:// for ``broker``. The whole URL is the secret.
    CredentialKind.DATABASE: ("url",),
    CredentialKind.BROKER: ("url",),
}


class Credential(models.Model):
    """A named secret for HTTP, db and queue nodes and queue triggers. ``secret_encrypted`` is a Fernet token of the JSON fields."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="credentials")
    name = models.CharField(max_length=120)
    kind = models.CharField(max_length=16, choices=CredentialKind.choices)
    secret_encrypted = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="credential_team_name_unique")]

    def __str__(self) -> str:
        return self.name


class GlobalParameter(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="parameters")
    name = models.CharField(max_length=120)
    value = models.TextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["team", "name"], name="parameter_team_name_unique")]

    def __str__(self) -> str:
        return self.name


class UserEmail(models.Model):
    """Whether a user's address (their username and email) is verified: proven by a mailed link.

    Only a verified account can accept an invitation; an unverified one reaches only teams it
    created itself. Users without a row are unverified."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, primary_key=True,
                                related_name="email_state")
    verified_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.user_id} ({'verified' if self.verified_at else 'unverified'})"


class Invitation(models.Model):
    """An invitation to join a team, mailed as a single-use link; only a hash of its token is stored.

    Pending while neither accepted, revoked nor expired; one pending invitation per team and address."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(max_length=254)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.EDITOR)
    token_hash = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+")
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(
            fields=["team", "email"], condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
            name="invitation_team_email_pending_unique")]
        indexes = [models.Index(fields=["team", "created_at"])]

    def __str__(self) -> str:
        return f"{self.email} -> {self.team_id} ({self.role})"
