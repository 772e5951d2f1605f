"""The daemon's local API as other `billing` processes use it: its token, its request body, its client.

`commands/daemon/local_api.py` serves it; `pay`, `pay-all` and `restart` send their requests
through `DaemonClient` while `billing start` owns the log, and the dashboard signs in with the token.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import msgspec

from commands.config import Settings
from commands.errors import CommandError
from pipeline.canton.auth import StaticToken
from pipeline.canton.errors import CantonError
from pipeline.canton.http import Http, ReadRetry, make_client
from pipeline.events import PaymentRequested

TOKEN_FILE = "api-token"


class RequestBatch(msgspec.Struct, forbid_unknown_fields=True):
    """Inbound commands are strict: an unknown field is a client bug, not a new version."""

    requests: list[PaymentRequested]


def api_token(state_dir: Path, configured: str | None) -> str:
    """The configured token, else the one in the state dir (created on first use, mode 0600)."""
    if configured:
        return configured
    path = state_dir / TOKEN_FILE
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text().strip()


class DaemonClient:
    def __init__(self, http: Http) -> None:
        self._http = http

    @classmethod
    @asynccontextmanager
    async def connect(cls, settings: Settings) -> AsyncIterator[DaemonClient]:
        token = api_token(Path(settings.rocksdb_path), settings.api_token)
        async with make_client(f"http://127.0.0.1:{settings.api_port}", 30.0, connect_timeout=3.0) as client:
            yield cls(Http(client, "the daemon's API", StaticToken(token), retry=ReadRetry(attempts=1)))

    async def submit(self, requests: list[PaymentRequested]) -> list[int]:
        try:
            doc: dict[str, list[int]] = await self._http.call(
                "POST", "/v1/requests", RequestBatch(requests=requests), into=dict[str, list[int]]
            )
        except CantonError as err:
            if err.status is None:
                raise CommandError(
                    f"the event log is locked by a running daemon, but its API on {self._http.client.base_url} "
                    f"does not answer ({err.code}); check BILLING_API_PORT or stop the other process"
                ) from err
            raise CommandError(f"the daemon refused the requests: {err}") from err
        return doc["offsets"]
