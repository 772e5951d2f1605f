"""Client of the daemon's local API (`commands/local_api.py`), used while `billing start` runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import msgspec

from commands.config import Settings
from commands.errors import CommandError
from commands.local_api import RequestBatch, api_token
from pipeline.events import PaymentRequested

_encoder = msgspec.json.Encoder(decimal_format="string")


class DaemonClient:
    def __init__(self, http: httpx.AsyncClient) -> None:
        self._http = http

    @classmethod
    @asynccontextmanager
    async def connect(cls, settings: Settings) -> AsyncIterator[DaemonClient]:
        token = api_token(Path(settings.rocksdb_path), settings.api_token)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{settings.api_port}",
            headers={"authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(30.0, connect=3.0),
        ) as http:
            yield cls(http)

    async def submit(self, requests: list[PaymentRequested]) -> list[int]:
        body = _encoder.encode(RequestBatch(requests=requests))
        try:
            response = await self._http.post("/v1/requests", content=body)
        except httpx.TransportError as err:
            raise CommandError(
                f"the event log is locked by a running daemon, but its API on {self._http.base_url} "
                f"does not answer ({type(err).__name__}); check BILLING_API_PORT or stop the other process"
            ) from err
        if response.status_code != 200:
            raise CommandError(f"the daemon refused the requests: HTTP {response.status_code} {response.text}")
        offsets = msgspec.json.decode(response.content, type=dict[str, list[int]])["offsets"]
        return offsets
