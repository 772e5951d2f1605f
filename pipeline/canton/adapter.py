"""`CantonPort` on the typed clients: Scan context (cached), inputs, submission, reconciliation, proof.

The Scan context comes from `ScanContextCache` (Scan's time-to-live, dropped after a
stale-contract rejection); requests are built by `pipeline/canton/transfers.py`.
Everything that goes wrong comes back as a value the processor's pure decisions
understand (`Rejected`, `Insufficient`, `NotVisible`), never as an exception.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import msgspec

from pipeline.canton.amulet_reads import AmuletReads
from pipeline.canton.auth import TokenSource
from pipeline.canton.errors import PRUNED, CantonError, ErrorClass
from pipeline.canton.hosting import (
    NO_RIGHT_CODES,
    NOT_CHARGEABLE,
    NOT_HOSTED_CODES,
    PartyDirectory,
    no_right_reason,
    not_hosted_reason,
)
from pipeline.canton.http import Http, make_client
from pipeline.canton.ledger import LedgerApi
from pipeline.canton.ledger_end import LedgerEnd
from pipeline.canton.port import (
    Accepted,
    CompletionFound,
    Insufficient,
    Mismatch,
    NotVisible,
    Prepared,
    Rejected,
    Unproved,
    Verified,
)
from pipeline.canton.scan import ScanApi
from pipeline.canton.scan_context import PaymentContext, ScanContextCache, preapproval_usable
from pipeline.canton.transfers import InsufficientFunds, select_inputs, send_commands
from pipeline.canton.verification import verify_transfer

Clock = Callable[[], datetime]
RECHECK_EXPIRED = timedelta(seconds=5)  # an expired preapproval may have been renewed meanwhile
# Reads after which the ledger cannot prove an outcome, however often they are repeated.
CANNOT_PROVE = frozenset({PRUNED, "TOO_MANY_UPDATES"})


class CantonAdapter:
    """The processor's view of one app provider participant and one Scan."""

    def __init__(
        self,
        ledger: LedgerApi,
        scan: ScanApi,
        *,
        receiver: str,
        clock: Clock,
        dedup_seconds: int,
        ledger_end: LedgerEnd | None = None,
    ) -> None:
        self.ledger, self.scan, self.receiver = ledger, scan, receiver
        self.clock, self.dedup_seconds = clock, dedup_seconds
        self.context = ScanContextCache(scan, receiver=receiver, clock=clock)
        self.ledger_end = ledger_end or LedgerEnd(ledger)
        self.amulet_reads = AmuletReads(ledger)
        self.parties = PartyDirectory(ledger.http, user_id=ledger.user_id, clock=clock)

    def invalidate_context(self) -> None:
        self.context.invalidate()

    async def usable_context(self) -> PaymentContext | Rejected:
        """The cached context, refetched once when its preapproval looks expired (it may be renewed)."""
        ctx = await self.context.get()
        if preapproval_usable(ctx, self.clock()):
            return ctx
        if self.clock() - ctx.fetched_at > RECHECK_EXPIRED:  # not for every payment of a batch
            self.context.invalidate()
            ctx = await self.context.get()
            if preapproval_usable(ctx, self.clock()):
                return ctx
        return Rejected(
            kind="final",
            code="PREAPPROVAL_EXPIRED",
            message=f"the app's TransferPreapproval expired at {ctx.preapproval_expires_at:%Y-%m-%d %H:%M} "
            "UTC; run `billing setup`",
        )

    async def prepare(self, sender: str, amount: Decimal) -> Prepared | Insufficient | Rejected:
        try:
            ctx = await self.usable_context()
            if isinstance(ctx, Rejected):
                return ctx
            standing = (await self.parties.standings([sender]))[sender]
            if standing.reason is not None:  # decided before any read of its holdings
                return Rejected(kind="final", code=NOT_CHARGEABLE, message=standing.reason)
            offset = await self.ledger_end.read(sender)
            holdings = await self.amulet_reads.amulets(sender, at_offset=offset)
        except CantonError as err:
            return rejected(err, reading=True)
        chosen = select_inputs(holdings, amount, max_inputs=ctx.open_round.max_num_inputs)
        if isinstance(chosen, InsufficientFunds):
            return Insufficient(
                available=chosen.available,
                required=chosen.required,
                message=f"{sender} {chosen.reason} ({len(holdings)} amulet(s))",
            )
        return Prepared(ledger_offset=offset, inputs=chosen.inputs, context=ctx)

    async def submit(
        self,
        prepared: Prepared,
        *,
        sender: str,
        receiver: str,
        amount: Decimal,
        description: str,
        command_id: str,
        submission_id: str,
    ) -> Accepted | Rejected:
        ctx = prepared.context
        assert isinstance(ctx, PaymentContext)
        commands = send_commands(
            ctx,
            sender=sender,
            amount=amount,
            inputs=prepared.inputs,
            description=description,
            command_id=command_id,
            submission_id=submission_id,
            dedup_seconds=self.dedup_seconds,
            user_id=self.ledger.user_id,
        )
        try:
            result = await self.ledger.submit_and_wait(commands)
        except CantonError as err:
            if err.code in NOT_HOSTED_CODES | NO_RIGHT_CODES:  # the ledger's word on the same check
                reason = (
                    not_hosted_reason(sender)
                    if err.code in NOT_HOSTED_CODES
                    else (no_right_reason(sender, self.ledger.user_id or "(the token's user)"))
                )
                return Rejected(kind="final", code=err.code, message=reason)
            if err.deadline_passed:
                return await self._recheck_preapproval(err)
            return rejected(err, reading=False)
        self.ledger_end.committed(sender, result.completion_offset)
        return Accepted(update_id=result.update_id, completion_offset=result.completion_offset)

    async def _recheck_preapproval(self, err: CantonError) -> Rejected:
        """After Daml's deadline-exceeded: final PREAPPROVAL_EXPIRED if Scan's preapproval is
        expired too, else retryable (renewed meanwhile, or our clock is behind ledger time)."""
        self.context.invalidate()
        try:
            ctx = await self.usable_context()
        except CantonError as read_err:
            return rejected(read_err, reading=True)
        return ctx if isinstance(ctx, Rejected) else rejected(err, reading=False)

    async def find_completion(self, *, party: str, command_id: str, begin_offset: int) -> CompletionFound | None:
        try:
            found = await self.ledger.find_completion(party, command_id, begin_exclusive=begin_offset)
        except CantonError as err:
            if err.code in CANNOT_PROVE:
                return None  # pruned: `prove_outcome` decides what that means
            raise
        if found is None:
            return None
        if found.accepted:
            self.ledger_end.committed(party, found.offset)
        return CompletionFound(
            accepted=found.accepted,
            offset=found.offset,
            update_id=found.update_id,
            message=found.status.message if found.status else "",
        )

    async def prove_outcome(
        self, *, party: str, command_id: str, begin_offset: int
    ) -> CompletionFound | Unproved | None:
        """Read ``party``'s transactions from ``begin_offset`` to the ledger end for the command.

        A transient read failure raises (`CantonError`: try again later); a pruned history is
        `Unproved`, for good.
        """
        end = await self.ledger.ledger_end()
        try:
            tx = await self.ledger.find_transaction(party, command_id, begin_exclusive=begin_offset, end_inclusive=end)
        except CantonError as err:
            if err.code in CANNOT_PROVE:
                return Unproved(reason=err.message)
            raise
        if tx is None:
            return None
        self.ledger_end.committed(party, tx.offset)
        return CompletionFound(accepted=True, offset=tx.offset, update_id=tx.update_id)

    async def update_at(self, offset: int, party: str) -> str | None:
        try:
            tx = await self.ledger.update_by_offset(offset, party=party)
        except CantonError:
            return None
        return tx.update_id if tx is not None else None

    async def verify(
        self, update_id: str, *, sender: str, receiver: str, amount: Decimal, description: str
    ) -> Verified | NotVisible | Mismatch:
        return await verify_transfer(
            self.scan, update_id, sender=sender, receiver=receiver, amount=amount, description=description
        )


def rejected(err: CantonError, *, reading: bool) -> Rejected:
    """A classified failure as the processor's `Rejected`."""
    kind = err.kind
    if reading and kind is ErrorClass.IN_DOUBT:
        kind = ErrorClass.RETRYABLE  # a failed read changed nothing on the ledger
    if reading and kind is ErrorClass.DUPLICATE:
        kind = ErrorClass.FINAL  # cannot happen on a read; never confirm on its word
    return Rejected(
        kind=kind.value,
        code=err.code,
        message=err.message,
        error_id=err.error_id,
        completion_offset=err.completion_offset,
        stale_context=err.stale_context,
    )


class Endpoints(msgspec.Struct, frozen=True, kw_only=True):
    ledger_url: str
    scan_url: str
    timeout: float = 30.0
    user_id: str | None = None
    max_connections: int = 100


@asynccontextmanager
async def open_canton(
    endpoints: Endpoints,
    auth: Callable[[Any], TokenSource],
    *,
    receiver: str,
    dedup_seconds: int,
    clock: Clock = lambda: datetime.now(UTC),
    transport: Any = None,
) -> AsyncIterator[CantonAdapter]:
    """Both clients (one connection pool each) and the adapter over them.

    ``auth`` builds the Ledger API's token source from its HTTP client (OAuth fetches
    through it); ``transport`` replaces the network (the in-process simulator).
    """
    size = endpoints.max_connections
    async with (
        make_client(endpoints.ledger_url, endpoints.timeout, transport, max_connections=size) as lc,
        make_client(endpoints.scan_url, endpoints.timeout, transport, max_connections=size) as sc,
    ):
        ledger = LedgerApi(Http(lc, "the Ledger API", auth(lc), slots=size), user_id=endpoints.user_id)
        scan = ScanApi(Http(sc, "Scan", slots=size))
        yield CantonAdapter(ledger, scan, receiver=receiver, clock=clock, dedup_seconds=dedup_seconds)
