"""`CantonPort` on the real APIs: Scan context (cached), inputs, submission, reconciliation, proof.

The Scan context (AmuletRules, a usable round, the receiver's TransferPreapproval and
its provider's FeaturedAppRight) is cached for Scan's time-to-live and dropped after a
stale-contract rejection. Everything that goes wrong comes back as a value the
processor's pure decisions understand (`Rejected`, `Insufficient`, `NotVisible`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from pipeline.canton_apis import (
    LedgerApi,
    ScanApi,
    ScanContract,
    choose_round,
    commands_body,
    select_inputs,
    send_exercise,
    transfer_context,
)
from pipeline.canton_http import CantonError, Http, TokenSource, make_client
from pipeline.canton_port import (
    Accepted,
    CompletionFound,
    Insufficient,
    Mismatch,
    NotVisible,
    Prepared,
    Rejected,
    Verified,
)

Clock = Callable[[], datetime]
MAX_COMPLETION_PAGES = 200


@dataclass(frozen=True)
class PaymentContext:
    synchronizer: str
    dso_party: str
    rules: ScanContract
    round: ScanContract
    preapproval: ScanContract
    featured: ScanContract | None
    max_inputs: int
    valid_until: datetime

    def disclosed(self) -> list[dict[str, str]]:
        contracts = [self.rules, self.round, self.preapproval, *([self.featured] if self.featured else [])]
        return [c.disclosed(self.synchronizer) for c in contracts]


class CantonAdapter:
    def __init__(self, ledger: LedgerApi, scan: ScanApi, *, receiver: str, clock: Clock, dedup_seconds: int) -> None:
        self.ledger, self.scan, self.receiver = ledger, scan, receiver
        self.clock, self.dedup_seconds = clock, dedup_seconds
        self._context: PaymentContext | None = None

    async def context(self) -> PaymentContext:
        """The Scan context, fetched again once Scan's time-to-live has passed."""
        now = self.clock()
        if self._context is None or now >= self._context.valid_until:
            self._context = await self._fetch_context(now)
        return self._context

    async def _fetch_context(self, now: datetime) -> PaymentContext:
        dso = await self.scan.dso()
        rounds, ttl_us = await self.scan.open_rounds()
        chosen = choose_round(rounds, now)
        if chosen is None:
            raise CantonError("retryable", "Scan lists no mining round that is open yet; retrying later",
                              code="NO_OPEN_ROUND")
        found = await self.scan.preapproval(self.receiver)
        if found is None:
            raise CantonError("final", f"{self.receiver} has no TransferPreapproval; run `billing setup`",
                              code="NO_PREAPPROVAL")
        preapproval, domain = found
        featured = await self.scan.featured_app_right(preapproval.payload.get("provider", self.receiver))
        config = chosen.payload.get("transferConfigUsd") or {}
        return PaymentContext(
            synchronizer=domain or dso["amulet_rules"].get("domain_id") or "",
            dso_party=dso["dso_party_id"],
            rules=ScanContract.of(dso["amulet_rules"]["contract"]),
            round=chosen, preapproval=preapproval, featured=featured,
            max_inputs=int(config.get("maxNumInputs", 100)),
            valid_until=now + timedelta(microseconds=max(ttl_us, 1_000_000)),
        )

    def invalidate_context(self) -> None:
        self._context = None

    async def prepare(self, sender: str, amount: Decimal) -> Prepared | Insufficient | Rejected:
        try:
            ctx = await self.context()
            expires = ctx.preapproval.payload.get("expiresAt")
            if expires and datetime.fromisoformat(expires.replace("Z", "+00:00")) <= self.clock():
                return Rejected(kind="final", code="PREAPPROVAL_EXPIRED",
                                message=f"the app's TransferPreapproval expired at {expires}; run `billing setup`")
            offset = await self.ledger.ledger_end()
            holdings = await self.ledger.holdings(sender, offset)
        except CantonError as err:
            return _rejected(err, reading=True)
        chosen = select_inputs(holdings, amount, ctx.max_inputs)
        if chosen is None:
            total = sum((h.amount for h in holdings), Decimal(0))
            return Insufficient(available=total, required=amount,
                                message=f"{sender} holds {total} CC in {len(holdings)} amulet(s), needs {amount} CC")
        return Prepared(ledger_offset=offset, inputs=tuple(h.contract_id for h in chosen), context=ctx)

    async def submit(self, prepared: Prepared, *, sender: str, receiver: str, amount: Decimal, description: str,
                     command_id: str, submission_id: str) -> Accepted | Rejected:
        ctx = prepared.context
        assert isinstance(ctx, PaymentContext)
        exercise = send_exercise(ctx.preapproval.contract_id, transfer_context(ctx.rules, ctx.round, ctx.featured),
                                 list(prepared.inputs), amount, sender, description)
        body = commands_body(exercise, act_as=[sender], command_id=command_id, submission_id=submission_id,
                             dedup_seconds=self.dedup_seconds, synchronizer=ctx.synchronizer,
                             disclosed=ctx.disclosed(), user_id=self.ledger.user_id)
        try:
            result = await self.ledger.submit(body)
        except CantonError as err:
            return _rejected(err, reading=False)
        return Accepted(update_id=result["updateId"], completion_offset=result.get("completionOffset"))

    async def find_completion(self, *, party: str, command_id: str, begin_offset: int) -> CompletionFound | None:
        begin = begin_offset
        for _ in range(MAX_COMPLETION_PAGES):
            page = await self.ledger.completions(party, begin)
            for c in page:
                if c["commandId"] == command_id:
                    status = c.get("status") or {}
                    accepted = not status.get("code")
                    return CompletionFound(accepted=accepted, offset=int(c["offset"]), update_id=c.get("updateId"),
                                           message=status.get("message", ""))
            if len(page) < 1000:
                return None
            begin = int(page[-1]["offset"])
        return None

    async def update_at(self, offset: int, party: str) -> str | None:
        try:
            doc = await self.ledger.update(party, offset=offset)
        except CantonError:
            return None
        tx = (doc.get("update") or {}).get("Transaction") or {}
        update_id = (tx.get("value") or {}).get("updateId")
        return str(update_id) if update_id else None

    async def verify(self, update_id: str, *, sender: str, receiver: str, amount: Decimal) -> Verified | NotVisible | Mismatch:  # noqa: E501
        try:
            doc = await self.scan.update(update_id)
        except CantonError:
            return NotVisible()
        if doc is None:
            return NotVisible()
        return check_transfer(doc, sender=sender, receiver=receiver, amount=amount)


def check_transfer(doc: dict, *, sender: str, receiver: str, amount: Decimal) -> Verified | Mismatch:  # type: ignore[type-arg]
    """Is this Scan update our transfer: a Send by ``sender`` paying ``receiver`` ``amount``?"""
    events = doc.get("events_by_id") or {}
    sends = [e for e in events.values() if e.get("choice") == "TransferPreapproval_Send"]
    if not sends:
        return Mismatch(message=f"update {doc.get('update_id')} holds no TransferPreapproval_Send")
    arg = sends[0].get("choice_argument") or {}
    sent = Decimal(str(arg.get("amount", "0")))
    if arg.get("sender") != sender or sent != amount:
        return Mismatch(message=f"sender {arg.get('sender')} sent {sent}, expected {sender} and {amount}", amount=sent)
    paid = [e for e in events.values() if e.get("event_type") == "created_event"
            and (e.get("create_arguments") or {}).get("owner") == receiver]
    if not paid:
        return Mismatch(message=f"no amulet created for {receiver}", amount=sent)
    created_round = (paid[0]["create_arguments"].get("amount") or {}).get("createdAt", {}).get("number")
    return Verified(amount=sent, round=int(created_round) if created_round else None)


def _rejected(err: CantonError, *, reading: bool) -> Rejected:
    kind = err.kind
    if reading and kind == "in_doubt":
        kind = "retryable"  # a failed read changed nothing on the ledger
    return Rejected(kind=kind, code=err.code, message=err.message, error_id=err.error_id,
                    completion_offset=int(err.context["completion_offset"]) if "completion_offset" in err.context
                    else None, stale_context=err.stale_context)


@dataclass(frozen=True)
class Endpoints:
    ledger_url: str
    scan_url: str
    timeout: float = 30.0
    user_id: str | None = None


@asynccontextmanager
async def open_canton(endpoints: Endpoints, auth: Callable[[Any], TokenSource], *, receiver: str,
                      dedup_seconds: int, clock: Clock = lambda: datetime.now(UTC),
                      transport: Any = None) -> AsyncIterator[CantonAdapter]:
    """Both clients (one connection pool each) and the adapter over them.

    ``auth`` builds the Ledger API's token source from its HTTP client; ``transport`` is
    an httpx transport (the in-process simulator in tests and the demo).
    """
    async with make_client(endpoints.ledger_url, endpoints.timeout, transport) as ledger_http, \
            make_client(endpoints.scan_url, endpoints.timeout, transport) as scan_http:
        ledger = LedgerApi(Http(ledger_http, "the Ledger API", auth(ledger_http)), endpoints.user_id)
        scan = ScanApi(Http(scan_http, "Scan"))
        yield CantonAdapter(ledger, scan, receiver=receiver, clock=clock, dedup_seconds=dedup_seconds)
