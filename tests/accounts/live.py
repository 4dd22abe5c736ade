"""Helpers for account tests against a live Daphne: a browser-like session (CSRF token from the
cookie, sent back with each form) and the server's mail read from Django's file backend."""

from __future__ import annotations

import re
from pathlib import Path

import requests


class Browser(requests.Session):
    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base

    def url(self, path: str) -> str:
        return path if path.startswith("http") else self.base + path

    def form(self, path: str, data: dict[str, str] | None = None, **kwargs: object) -> requests.Response:
        """GET the page (for the CSRF cookie), then POST the form to it."""
        self.get(self.url(path), timeout=30)
        body = {"csrfmiddlewaretoken": self.cookies.get("csrftoken", ""), **(data or {})}
        return self.post(self.url(path), data=body, allow_redirects=False, timeout=30,
                         headers={"Referer": self.url(path)}, **kwargs)


def mail_links(mail_dir: Path, to: str) -> list[str]:
    links: list[str] = []
    for path in sorted(mail_dir.glob("*.log"), key=lambda p: p.stat().st_mtime_ns):
        text = path.read_text()
        if f"To: {to}" in text:
            links += re.findall(r"https?://\S+", text)
    return links
