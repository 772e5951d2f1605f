"""The Canton simulator as an ASGI app: the JSON Ledger API v2 at `/`, Scan at `/api/scan/`.

It speaks the subset of both APIs billing uses, with the specs' field names and status
codes, over `SimLedger`. Faults can be queued for the next submissions or drawn at a
rate from a seeded generator: latency, a timeout after the commit, an in-flight
rejection, insufficient funds, stale contracts, proxy 5xx with a non-JSON body, and a
dropped connection (before or after the commit).
"""

from __future__ import annotations

import asyncio
import random
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route

from pipeline.sim_ledger import SimLedger, SimRejection, Transaction

FAULTS = (
    "timeout_after_commit", "in_flight", "insufficient_funds", "stale_contract",
    "proxy_502_after_commit", "unavailable", "drop", "drop_after_commit", "scan_lag",
)
DEFAULT_USER = "ledger-api-user"


class ConnectionDropped(ConnectionError):
    """The simulator hangs up without an answer (seen by clients as a transport error)."""


@dataclass
class Faults:
    queue: deque[str] = field(default_factory=deque)
    rates: dict[str, float] = field(default_factory=dict)
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    latency_ms: int = 0

    def draw(self) -> str | None:
        if self.queue:
            return self.queue.popleft()
        for name, rate in self.rates.items():
            if name != "scan_lag" and self.rng.random() < rate:
                return name
        return None


class Simulator:
    """State, faults and tokens of one simulated network, and its ASGI app."""

    def __init__(self, app_party: str, *, token: str | None = None, clock: Callable[[], datetime] | None = None,
                 seed: int = 7, token_lifetime: timedelta = timedelta(hours=24)) -> None:
        self.ledger = SimLedger(app_party, clock=clock) if clock else SimLedger(app_party)
        self.static_token = token or "sim-" + secrets.token_hex(16)
        self.tokens: dict[str, datetime] = {}
        self.token_lifetime = token_lifetime
        self.faults = Faults(rng=random.Random(seed))
        self.in_flight: set[tuple[str, frozenset[str], str]] = set()
        self.submissions = 0
        self.app = self._make_app()

    # -- test controls -------------------------------------------------------------------

    def seed(self, balances: dict[str, Decimal], *, featured: bool = True) -> None:
        for party, amount in balances.items():
            self.ledger.fund(party, amount)
        if featured:
            self.ledger.feature(self.ledger.app_party)

    def inject(self, fault: str, count: int = 1) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; one of {', '.join(FAULTS)}")
        self.faults.queue.extend([fault] * count)

    def set_fault_rate(self, fault: str, rate: float) -> None:
        if fault not in FAULTS or not 0 <= rate <= 1:
            raise ValueError(f"fault must be one of {', '.join(FAULTS)} and rate in [0, 1]")
        self.faults.rates[fault] = rate

    def transfers(self) -> list[dict[str, Any]]:
        """Every TransferPreapproval_Send on the ledger: what an auditor would count."""
        out = []
        for tx in self.ledger.transactions:
            if tx.exercised["choice"] == "TransferPreapproval_Send":
                arg = tx.exercised["argument"]
                out.append({"command_id": tx.command_id, "sender": arg["sender"], "amount": Decimal(arg["amount"]),
                            "update_id": tx.update_id, "offset": tx.offset})
        return out

    # -- HTTP ------------------------------------------------------------------------------

    def _make_app(self) -> Starlette:
        from pipeline import sim_routes

        return Starlette(routes=[
            Route("/oauth/token", sim_routes.oauth_token(self), methods=["POST"]),
            Mount("/api/scan", routes=sim_routes.scan_routes(self)),
            *sim_routes.ledger_routes(self),
        ])

    def authorised(self, request: Request) -> str | None:
        """The ledger user of the request's bearer token, or None."""
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if token == self.static_token:
            return DEFAULT_USER
        expiry = self.tokens.get(token)
        if expiry is not None and expiry > self.ledger.clock():
            return DEFAULT_USER
        return None

    async def submit(self, body: dict[str, Any], user: str) -> Response:
        """submit-and-wait: run the command, apply the drawn fault around the commit."""
        self.submissions += 1
        if self.faults.latency_ms:
            await asyncio.sleep(self.faults.latency_ms / 1000)
        fault = self.faults.draw()
        act_as = list(body.get("actAs") or [])
        key = (body.get("userId") or user, frozenset(act_as), body["commandId"])
        early = _early_fault(fault)
        if early is not None:
            return early
        if key in self.in_flight:
            return canton_error(SimRejection(409, "SUBMISSION_ALREADY_IN_FLIGHT", "in flight", 2))
        self.in_flight.add(key)
        try:
            return await self._execute(body, key, fault)
        finally:
            self.in_flight.discard(key)

    async def _execute(self, body: dict[str, Any], key: tuple[str, frozenset[str], str], fault: str | None) -> Response:
        ledger = self.ledger
        window = _dedup_window(body.get("deduplicationPeriod"))
        try:
            ledger.check_duplicate(key, window)
            effects, exercised = self._run_command(body, list(key[1]))
        except SimRejection as err:
            if err.code != "DUPLICATE_COMMAND":
                ledger.reject(key[2], key[0], list(key[1]), body.get("submissionId"), err)
            return canton_error(err)
        tx = ledger.commit(key[2], key[0], list(key[1]), body.get("submissionId"), effects, exercised, key)
        if fault == "timeout_after_commit":
            return canton_error(SimRejection(504, "REQUEST_TIME_OUT", "Timed out while awaiting completion", 3))
        if fault == "proxy_502_after_commit":
            return PlainTextResponse("<html><body>502 Bad Gateway</body></html>", 502)
        if fault == "drop_after_commit":
            raise ConnectionDropped("connection dropped after the commit")
        return JSONResponse({"updateId": tx.update_id, "completionOffset": tx.offset})

    def _run_command(self, body: dict[str, Any], act_as: list[str]) -> tuple[list, dict]:
        commands = body.get("commands") or []
        if len(commands) != 1 or "ExerciseCommand" not in commands[0]:
            raise SimRejection(400, "INVALID_ARGUMENT", "the simulator runs exactly one ExerciseCommand", 8)
        ex = commands[0]["ExerciseCommand"]
        if ex["choice"] == "TransferPreapproval_Send":
            return self.ledger.send(ex["contractId"], ex["choiceArgument"], act_as)
        if ex["choice"] == "AmuletRules_CreateTransferPreapproval":
            return self.ledger.create_preapproval(ex["choiceArgument"], act_as)
        raise SimRejection(400, "INVALID_ARGUMENT", f"choice {ex['choice']} is not simulated", 8)

    def scan_sees(self, tx: Transaction) -> bool:
        """Scan lags the participant: with the scan_lag fault, an update shows up a bit later."""
        rate = self.faults.rates.get("scan_lag", 0.0)
        return not rate or self.faults.rng.random() >= rate


def _early_fault(fault: str | None) -> Response | None:
    if fault == "in_flight":
        return canton_error(SimRejection(409, "SUBMISSION_ALREADY_IN_FLIGHT", "A submission with the same "
                                         "change id is in flight", 2))
    if fault == "insufficient_funds":
        return canton_error(SimRejection(400, "DAML_FAILURE", "Insufficient funds", 9,
                                         {"error_id": "splice.lfdecentralizedtrust.org/insufficient-funds"}))
    if fault == "stale_contract":
        return canton_error(SimRejection(404, "LOCAL_VERDICT_INACTIVE_CONTRACTS", "contract archived", 11))
    if fault == "unavailable":
        return PlainTextResponse("upstream connect error", 503)
    if fault == "drop":
        raise ConnectionDropped("connection dropped before the command was sent")
    return None


def _dedup_window(period: dict[str, Any] | None) -> timedelta:
    duration = (period or {}).get("DeduplicationDuration", {}).get("value")
    if duration:
        return timedelta(seconds=int(duration.get("seconds", 0)))
    return timedelta(seconds=30)  # what LocalNet configures when none is sent


def canton_error(err: SimRejection) -> JSONResponse:
    body: dict[str, Any] = {"code": err.code, "cause": err.cause, "context": err.context,
                            "errorCategory": err.category, "definiteAnswer": err.category not in (3,)}
    if err.category in (1, 2, 3):
        body["retryInfo"] = "1 second"
    return JSONResponse(body, err.status)
