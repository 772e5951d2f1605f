"""Who may see the dashboard: one-time login codes exchanged for a session cookie.

A browser cannot send the API's bearer header on its first visit, and a long-lived token in
a URL ends up in history and in shell scroll-back. So the process that serves the page
prints a URL with a one-time code; the first visit trades it for a random session id set
as an HttpOnly, SameSite=Strict cookie (scripts cannot read it, other sites cannot make the
browser send it) and is redirected to a URL without the code. A used code is worthless.
Scripts may still send the API token as a bearer header. Sessions live in memory only.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from commands.context import Clock

COOKIE = "billing_dashboard"
SESSION_HOURS = 12
MAX_SESSIONS = 64  # a runaway script cannot grow the table without bound


class Sessions:
    """One-time codes and the sessions they opened, with an injectable clock."""

    def __init__(self, api_token: str, clock: Clock, make_secret: Callable[[], str] = secrets.token_urlsafe) -> None:
        self._api_token = api_token
        self._clock = clock
        self._secret = make_secret
        self._codes: set[str] = set()
        self._sessions: dict[str, datetime] = {}

    def new_code(self) -> str:
        """A code that opens one session, once."""
        code = self._secret()
        self._codes.add(code)
        return code

    def redeem(self, code: str) -> str | None:
        """The new session id for a valid unused code (the code is spent), else None."""
        if code not in self._codes:
            return None
        self._codes.discard(code)
        now = self._clock()
        self._sessions = {s: t for s, t in self._sessions.items() if t > now}
        if len(self._sessions) >= MAX_SESSIONS:
            self._sessions.pop(min(self._sessions, key=self._sessions.__getitem__))
        session = self._secret()
        self._sessions[session] = now + timedelta(hours=SESSION_HOURS)
        return session

    def allows(self, headers: Mapping[str, str], cookies: Mapping[str, str]) -> bool:
        """A live session cookie, or the API token as a bearer header."""
        bearer = headers.get("authorization", "").removeprefix("Bearer ").strip()
        if bearer and hmac.compare_digest(bearer.encode(), self._api_token.encode()):
            return True
        expires = self._sessions.get(cookies.get(COOKIE, ""))
        return expires is not None and expires > self._clock()


def same_origin(headers: Mapping[str, str]) -> bool:
    """A WebSocket handshake from our own page (browsers always send Origin; a script may send none)."""
    origin = headers.get("origin")
    return origin is None or origin.removeprefix("http://").removeprefix("https://") == headers.get("host", "")


def cookie_header(session: str) -> str:
    """No ``Secure``: the page is plain HTTP on loopback, where browsers treat it as a secure context."""
    return f"{COOKIE}={session}; HttpOnly; SameSite=Strict; Path=/dashboard; Max-Age={SESSION_HOURS * 3600}"
