"""The Scan context of a payment, chosen by pure functions and cached for Scan's time-to-live.

A `PaymentContext` holds everything a `TransferPreapproval_Send` must disclose:
AmuletRules, a usable OpenMiningRound (the newest whose ``opensAt`` passed at least a
margin ago, as Splice's wallet picks it), the receiver's TransferPreapproval, the
FeaturedAppRight of the preapproval's *provider* (or None), the synchronizer id
(Scan's ``domain_id``) and the DSO party. `ScanContextCache` refetches it once
``time_to_live_in_microseconds`` has passed, or when told the context went stale.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

import msgspec

from pipeline.canton.errors import CantonError, ErrorClass
from pipeline.canton.scan import ScanApi
from pipeline.canton.scan_types import Contract, GetOpenAndIssuingMiningRoundsResponse
from pipeline.canton.splice_types import OpenMiningRound, TransferPreapproval, read_payload
from pipeline.canton.types import DisclosedContract

Clock = Callable[[], datetime]
ROUND_MARGIN = timedelta(seconds=5)  # ledger time may lag our clock; a just-opened round can still fail
#: A context is never trusted for longer than a day, whatever time-to-live Scan claims
#: (and a huge one would overflow the datetime arithmetic).
MAX_TTL_US = 86_400_000_000


class ChosenRound(msgspec.Struct, frozen=True, kw_only=True):
    contract: Contract
    number: int
    opens_at: datetime
    max_num_inputs: int


class PaymentContext(msgspec.Struct, frozen=True, kw_only=True):
    """What one payment to ``receiver`` needs from Scan, valid until ``valid_until``."""

    receiver: str
    dso_party: str
    synchronizer_id: str
    amulet_rules: Contract
    open_round: ChosenRound
    transfer_preapproval: Contract
    preapproval_provider: str
    preapproval_expires_at: datetime
    featured_app_right: Contract | None
    fetched_at: datetime
    valid_until: datetime

    def disclosed_contracts(self) -> list[DisclosedContract]:
        """The contracts the sender cannot see: rules, round, preapproval and the featured right."""
        contracts = [self.amulet_rules, self.open_round.contract, self.transfer_preapproval]
        if self.featured_app_right is not None:
            contracts.append(self.featured_app_right)
        return [disclose(c, self.synchronizer_id) for c in contracts]


def disclose(contract: Contract, synchronizer_id: str) -> DisclosedContract:
    """A Scan contract as a `DisclosedContract` (package-id template id, as Scan sent it)."""
    return DisclosedContract(
        template_id=contract.template_id,
        contract_id=contract.contract_id,
        created_event_blob=contract.created_event_blob,
        synchronizer_id=synchronizer_id,
    )


def read_rounds(contracts: Iterable[Contract]) -> list[ChosenRound]:
    """The OpenMiningRound contracts whose payload reads; others are skipped, not fatal."""
    rounds = []
    for contract in contracts:
        try:
            payload = read_payload(contract.payload, OpenMiningRound)
        except msgspec.ValidationError:
            continue
        rounds.append(
            ChosenRound(
                contract=contract,
                number=payload.round.number,
                opens_at=payload.opensAt,
                max_num_inputs=payload.transferConfigUsd.maxNumInputs,
            )
        )
    return rounds


def choose_round(rounds: Iterable[ChosenRound], now: datetime, margin: timedelta = ROUND_MARGIN) -> ChosenRound | None:
    """The newest (highest-numbered) round whose ``opensAt`` is at least ``margin`` in the past."""
    usable = [r for r in rounds if r.opens_at <= now - margin]
    return max(usable, key=lambda r: r.number, default=None)


def context_expiry(
    now: datetime, ttl: timedelta, rounds: Iterable[ChosenRound], margin: timedelta = ROUND_MARGIN
) -> datetime:
    """Scan's time-to-live, cut short when a newer round becomes usable: switching to it early
    gives payments the round with the most life left."""
    upcoming = [r.opens_at + margin for r in rounds if r.opens_at + margin > now]
    return min([now + ttl, *upcoming])


def open_round_contracts(answer: GetOpenAndIssuingMiningRoundsResponse) -> list[Contract]:
    # With empty caches sent, every entry comes with its contract; skip any that does not.
    return [entry.contract for entry in answer.open_mining_rounds.values() if entry.contract is not None]


def preapproval_usable(ctx: PaymentContext, now: datetime, margin: timedelta = ROUND_MARGIN) -> bool:
    """False once the preapproval has expired (or will, within ``margin``): Send would fail."""
    return ctx.preapproval_expires_at > now + margin


class ScanContextCache:
    """The payment context for one receiver, fetched at most once per Scan time-to-live."""

    def __init__(
        self,
        scan: ScanApi,
        *,
        receiver: str,
        clock: Clock = lambda: datetime.now(UTC),
        round_margin: timedelta = ROUND_MARGIN,
    ) -> None:
        self.scan, self.receiver, self.clock, self.round_margin = (
            scan,
            receiver,
            clock,
            round_margin,
        )
        self._context: PaymentContext | None = None
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def get(self) -> PaymentContext:
        """The cached context, or a fresh one once it has expired."""
        async with self._lock:  # concurrent payments share one fetch
            if self._context is None or self.clock() >= self._context.valid_until:
                self._context = await self._fetch(self.clock())
                self.fetches += 1
            return self._context

    def invalidate(self) -> None:
        """Drop the context (after a stale-contract rejection); the next `get` refetches."""
        self._context = None

    async def _fetch(self, now: datetime) -> PaymentContext:
        dso = await self.scan.dso()
        answer = await self.scan.open_and_issuing_mining_rounds()
        rounds = read_rounds(open_round_contracts(answer))
        chosen = choose_round(rounds, now, self.round_margin)
        if chosen is None:
            raise CantonError(
                ErrorClass.RETRYABLE,
                "Scan lists no mining round that opened more than "
                f"{self.round_margin.total_seconds():g}s ago; try again shortly",
                code="NO_OPEN_ROUND",
            )
        found = await self.scan.transfer_preapproval(self.receiver)
        if found is None:
            raise CantonError(
                ErrorClass.FINAL,
                f"{self.receiver} has no TransferPreapproval on Scan; run `billing setup`",
                status=404,
                code="NO_PREAPPROVAL",
            )
        try:
            preapproval = read_payload(found.contract.payload, TransferPreapproval)
        except msgspec.ValidationError as err:
            raise CantonError(
                ErrorClass.FINAL,
                f"Scan's TransferPreapproval of {self.receiver} does not read: {err}",
                code="INVALID_RESPONSE",
            ) from err
        featured = await self.scan.featured_app_right(preapproval.provider)
        synchronizer = found.domain_id or dso.amulet_rules.domain_id
        if not synchronizer:
            raise CantonError(
                ErrorClass.RETRYABLE,
                "Scan shows the preapproval and AmuletRules in flight "
                "between synchronizers (no domain_id); try again shortly",
                code="NO_SYNCHRONIZER",
            )
        ttl = timedelta(microseconds=min(max(answer.time_to_live_in_microseconds, 0), MAX_TTL_US))
        valid_until = context_expiry(now, ttl, rounds, self.round_margin)
        return PaymentContext(
            receiver=self.receiver,
            dso_party=dso.dso_party_id,
            synchronizer_id=synchronizer,
            amulet_rules=dso.amulet_rules.contract,
            open_round=chosen,
            transfer_preapproval=found.contract,
            preapproval_provider=preapproval.provider,
            preapproval_expires_at=preapproval.expiresAt,
            featured_app_right=featured,
            fetched_at=now,
            valid_until=valid_until,
        )
