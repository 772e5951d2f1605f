"""How one log record is shown: a `billing tail` line, an audit row (JSON), a dashboard feed row.

The cells every view shares (time, kind, payment, plan, amount) come from `cells_of`; each view
adds its own detail: the tail names the proof in full, the page's narrow column a short form.
"""

from __future__ import annotations

from typing import Any, assert_never

import msgspec

from pipeline.events import (
    AnyEvent,
    PaymentConfirmed,
    PaymentFailed,
    PaymentRequested,
    PaymentSubmitted,
    Recorded,
    Skipped,
    Unreadable,
    to_builtins,
)


class Cells(msgspec.Struct, frozen=True, kw_only=True):
    """The parts of an event every view shows, as text."""

    at: str
    kind: str  # requested, submitted, confirmed or failed
    payment: str  # the payment id's first 12 characters
    party: str
    plan: str
    amount: str  # "<amount> CC", or "" for an event without one


def cells_of(event: AnyEvent) -> Cells:
    amount = getattr(event, "amount", None)
    return Cells(
        at=event.at.strftime("%Y-%m-%d %H:%M:%S"),
        kind=type(event).__name__.removeprefix("Payment").lower(),
        payment=event.payment_id[:12],
        party=getattr(event, "party", ""),
        plan=getattr(event, "plan", ""),
        amount=f"{amount} CC" if amount is not None else "",
    )


def whole(record: Recorded) -> AnyEvent | Unreadable:
    """The record's event: these views read whole records, never the outcomes-only form."""
    event = record.event
    assert not isinstance(event, Skipped), "an outcomes-only read reached an event view"
    return event


class Periods:
    """Remembers each request's period, so outcomes can show it too (bounded: oldest forgotten)."""

    LIMIT = 100_000

    def __init__(self) -> None:
        self._by_payment: dict[str, int] = {}

    def of(self, event: AnyEvent) -> int | None:
        if isinstance(event, PaymentRequested):
            if len(self._by_payment) >= self.LIMIT:
                self._by_payment.pop(next(iter(self._by_payment)))
            self._by_payment[event.payment_id] = event.period.index
            return event.period.index
        return self._by_payment.get(event.payment_id)


def outcome(event: AnyEvent) -> str:
    """requested, submitted, confirmed, failed (for good) or retrying."""
    if isinstance(event, PaymentFailed):
        return "failed" if event.final else "retrying"
    return cells_of(event).kind


def audit_row(record: Recorded, periods: Periods | None = None, *, partitioned: bool = False) -> dict[str, Any]:
    """One event as a flat dict (also the shape of the WebSocket audit stream); ``partitioned``: with
    its Kafka partition (offsets are per partition there)."""
    event = whole(record)
    where = {"partition": record.partition, "offset": record.offset} if partitioned else {"offset": record.offset}
    if isinstance(event, Unreadable):
        return {**where, "type": "unreadable", "reason": event.reason}
    period = periods.of(event) if periods is not None else None
    extra = {"outcome": outcome(event)} | ({"period_index": period} if period is not None else {})
    return {**where, **to_builtins(event), **extra}


def event_line(record: Recorded, periods: Periods | None = None, *, partitioned: bool = False) -> str:
    """One line per event: offset (``partitioned``: partition/offset), time, kind, payment, who, period,
    amount, and the proof or reason."""
    event = whole(record)
    where = f"{record.partition}/{record.offset}" if partitioned else str(record.offset)
    if isinstance(event, Unreadable):
        return f"{where:>8}  unreadable record: {event.reason}"
    shown = cells_of(event)
    period = (
        periods.of(event)
        if periods is not None
        else (event.period.index if isinstance(event, PaymentRequested) else None)
    )
    cells = [
        f"{where:>8}",
        shown.at,
        f"{outcome(event):<9}",
        shown.payment,
        _short(shown.party),
        shown.plan,
        f"#{period}" if period is not None else "",
        shown.amount,
        proof(event),
    ]
    return "  ".join(c for c in cells if c)


def proof(event: AnyEvent) -> str:
    """The tail's detail: the reason, the command id, the ledger update, the retry time."""
    match event:
        case PaymentRequested():
            return event.reason
        case PaymentSubmitted():
            return f"attempt {event.attempt} {event.command_id}"
        case PaymentConfirmed():
            return f"update {event.update_id} ({event.verified_by})"
        case PaymentFailed():
            when = "final" if event.final else f"retry at {event.next_attempt_at:%H:%M:%S}"
            return f"{event.reason} [{when}]"
        case _:
            assert_never(event)


def brief(event: AnyEvent) -> str:
    """The page's detail, short: what an operator looks for on each kind of record."""
    match event:
        case PaymentRequested():
            return f"period #{event.period.index}, {event.reason}"
        case PaymentSubmitted():
            return f"attempt {event.attempt}"
        case PaymentConfirmed():
            return f"ledger update {event.update_id}"
        case PaymentFailed():
            return event.reason + (" (final)" if event.final else " (will retry)")
        case _:
            assert_never(event)


def _short(party: str) -> str:
    name, _, rest = party.partition("::")
    return f"{name}::{rest[:6]}…" if len(rest) > 6 else party
