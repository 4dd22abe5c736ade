"""Deployment checks (``manage.py check --deploy``) of account settings."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Warning, register

_NOT_DELIVERED = ("console.", "locmem.", "dummy.", "filebased.")


@register(deploy=True)
def mail_is_delivered(app_configs: Any = None, **kwargs: Any) -> list[Warning]:
    if any(part in settings.EMAIL_BACKEND for part in _NOT_DELIVERED):
        return [Warning(
            f"EMAIL_BACKEND is {settings.EMAIL_BACKEND}: verification, invitation and password-reset "
            "mail is not delivered (and its links end up in logs or files).",
            hint="Set EMAIL_HOST (and EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS) for SMTP.",
            id="weft.W001")]
    return []
