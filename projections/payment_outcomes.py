"""Which log records are payment outcomes, and how long after its request each one came."""

from __future__ import annotations

from datetime import datetime

from pipeline.events import PaymentConfirmed, PaymentFailed, PaymentRequested, Recorded


class PaymentOutcomes:
    """Pairs each outcome with its request's time (bounded memory: old requests are forgotten)."""

    LIMIT = 100_000

    def __init__(self) -> None:
        self.requested: dict[str, datetime] = {}

    def see(self, record: Recorded) -> tuple[PaymentConfirmed | PaymentFailed, datetime | None] | None:
        event = record.event
        if isinstance(event, PaymentRequested):
            if len(self.requested) >= self.LIMIT:
                self.requested.pop(next(iter(self.requested)))
            self.requested[event.payment_id] = event.at
        elif isinstance(event, PaymentConfirmed) or (isinstance(event, PaymentFailed) and event.final):
            return event, self.requested.pop(event.payment_id, None)
        return None
