"""The retry policy: whether a failed payment is tried again, and when (pure).

The policy is data (attempts, delays, horizon); the jitter is a number passed in, so the
same inputs always give the same decision.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec


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
        raw = min(self.max_delay, self.base_delay * 2.0 ** max(0, attempts - 1))
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
