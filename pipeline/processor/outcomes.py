"""Pure decisions of the processor: when to retry, and what a failed attempt becomes.

The retry policy is data (attempts, delays, horizon); the jitter is a number passed in,
so the same inputs always give the same decision.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from pipeline.canton.errors import INSUFFICIENT_FUNDS
from pipeline.canton.port import Rejected
from pipeline.events import MESSAGE_LIMIT, PaymentFailed, PaymentRequested


class RetryPolicy(msgspec.Struct, frozen=True, kw_only=True):
    """How often and how long a payment is retried before its failure is final."""

    max_attempts: int = 5
    base_delay: float = 30.0
    max_delay: float = 900.0
    #: No attempt starts later than this many seconds after the request. Keep it well
    #: below the ledger deduplication period, which is what makes retries safe.
    horizon: float = 86400.0
    jitter: float = 0.2

    def delay(self, attempts: int, rand: float) -> float:
        """Capped exponential backoff after ``attempts`` failed attempts; ``rand`` in [0, 1)."""
        raw = min(self.max_delay, self.base_delay * 2 ** max(0, attempts - 1))
        return raw * (1 - self.jitter + 2 * self.jitter * rand)


def next_attempt(
    policy: RetryPolicy, attempts: int, requested_at: datetime, now: datetime, rand: float
) -> datetime | None:
    """When to try again after ``attempts`` attempts of this budget, or None to give up."""
    if attempts >= policy.max_attempts:
        return None
    when = now + timedelta(seconds=policy.delay(attempts, rand))
    if when > requested_at + timedelta(seconds=policy.horizon):
        return None
    return when


def failure_event(
    request: PaymentRequested,
    rejection: Rejected,
    *,
    attempt: int,
    retry_at: datetime | None,
    now: datetime,
) -> PaymentFailed:
    """The `PaymentFailed` recording ``rejection``; final when there is no retry."""
    retryable = rejection.kind in ("retryable", "in_doubt")
    final = not retryable or retry_at is None
    message = rejection.message
    if retryable and final:
        message = f"gave up after {attempt} attempt(s): {message}"
    if rejection.error_id == INSUFFICIENT_FUNDS or rejection.code == "INSUFFICIENT_FUNDS":
        # Ledger-refused (DAML_FAILURE + error id) or refused by our own pre-check: say what to do.
        message = f"{message}; fund the sender, then `billing restart` charges it again"
    return PaymentFailed(
        payment_id=request.payment_id,
        at=now,
        party=request.party,
        plan=request.plan,
        amount=request.amount,
        attempt=attempt,
        code=rejection.code,
        error_id=rejection.error_id,
        message=message[:MESSAGE_LIMIT],
        retryable=retryable,
        final=final,
        next_attempt_at=None if final else retry_at,
    )
