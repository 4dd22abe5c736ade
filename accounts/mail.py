"""Account mail (verification, invitations, "you already have an account"), through Django's email
backend: console (or file) in development, SMTP with ``EMAIL_HOST`` in production, the local-memory
outbox in tests. Links are absolute, on ``WEFT_PUBLIC_URL``. A failed send is logged without the
link (a capability) and never fails the request that caused it."""

from __future__ import annotations

import logging

from django.conf import settings
from django.core.mail import send_mail
from django.template.loader import render_to_string

logger = logging.getLogger(__name__)


def absolute_url(path: str) -> str:
    return settings.WEFT_PUBLIC_URL + path


def mail_send(*, to: str, subject: str, template: str, context: dict[str, object]) -> bool:
    body = render_to_string(template, {**context, "public_url": settings.WEFT_PUBLIC_URL})
    try:
        send_mail(subject, body, None, [to])
    except Exception as exc:  # an unreachable SMTP server must not turn a sign-up into a 500
        logger.warning("could not send %r mail: %s", subject, type(exc).__name__)
        return False
    return True
