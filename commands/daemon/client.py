"""Client of the daemon's local API (`commands/daemon/local_api.py`), used while `billing start` runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from commands.config import Settings
from commands.daemon.local_api import RequestBatch, api_token
from commands.errors import CommandError
from pipeline.canton.auth import StaticToken
from pipeline.canton.errors import CantonError
from pipeline.canton.http import Http, ReadRetry, make_client
from pipeline.events import PaymentRequested


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
