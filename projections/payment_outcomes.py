"""Which log records are payment outcomes, and how long after its request each one came."""

from __future__ import annotations

from datetime import datetime
from typing import TypeVar

from pipeline.events import PaymentConfirmed, PaymentFailed, PaymentRequested, Recorded, outcome

T = TypeVar("T")


class PaymentOutcomes:
    """Pairs each outcome with its request's time (bounded memory: old requests are forgotten).

    A payment counts once (`pipeline.events.outcome`): one confirmed recently yields no outcome again.
    """

    LIMIT = 100_000
    #: A second worker's confirmation comes within its request timeout of the first; the window
    #: fold's own deduplication is exact, these live counters remember the latest 10,000 (~1.5 MB).
    CONFIRMED_LIMIT = 10_000

    def __init__(self) -> None:
        self.requested: dict[str, datetime] = {}
        self.confirmed: dict[str, None] = {}  # recent confirmations, oldest first

    def see(self, record: Recorded) -> tuple[PaymentConfirmed | PaymentFailed, datetime | None] | None:
        event = record.event
        if isinstance(event, PaymentRequested):
            _remember(self.requested, event.payment_id, event.at, self.LIMIT)
        elif isinstance(event, PaymentConfirmed | PaymentFailed):
            now = outcome(event, confirmed=event.payment_id in self.confirmed)
            if now == "confirmed":
                _remember(self.confirmed, event.payment_id, None, self.CONFIRMED_LIMIT)
            if now in ("confirmed", "failed"):
                return event, self.requested.pop(event.payment_id, None)
        return None


def _remember(recent: dict[str, T], key: str, value: T, limit: int) -> None:
    if len(recent) >= limit:
        recent.pop(next(iter(recent)))  # the oldest
    recent[key] = value
