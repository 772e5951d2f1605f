"""Window metrics (10m … 30d): the queries over the fold, of bounded cost.

Every outcome (a `PaymentConfirmed`, or a *final* `PaymentFailed`; retries do not count)
is counted in three scopes — overall, plan, user+plan — in minute, (10-minute,) hour and
day buckets, keyed by event time, so late events land where they belong (see
`projections.fold`). A user's figures are the sum of their user+plan scopes (a user has a
handful of plans). A window is the last N whole minutes, covered by at most ~200 buckets,
so a query costs the same at ten events or ten million.

Distinct counts are exact: each user and each user+plan pair keeps its last active
minute, and each scope a histogram of those minutes at the same resolutions; the members
active in a window are the histogram's sum over it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import msgspec

from projections.fold import UNIT, WindowFold
from projections.keys import (
    LEVELS,
    PAIR_LEVELS,
    PLANS_INDEX,
    bucket_key,
    counter_prefix,
    hist_prefix,
    pair_scope,
    plans_prefix,
)

T = TypeVar("T")
_many_counts = msgspec.msgpack.Decoder(list[tuple[int, int, int, int]])
_many_ints = msgspec.msgpack.Decoder(list[int])
WINDOWS = {"10m": 10, "1h": 60, "6h": 360, "12h": 720, "24h": 1440, "7d": 10080, "30d": 43200}  # minutes


class WindowMetrics(msgspec.Struct, frozen=True, kw_only=True):
    window: str
    payment_count: int = 0
    success_count: int = 0
    failure_count: int = 0
    total_amount: Decimal = Decimal(0)
    success_rate: Decimal | None = None  # percent; None when there were no payments
    active_users: int = 0
    active_subscriptions: int = 0


class WindowProjection(WindowFold):
    """The fold plus its queries. Queries read committed state only."""

    _memo: dict[tuple[bytes, int, int], Any] | None = None

    # -- queries (committed state only) --------------------------------------------------

    def metrics(self, window: str, now: datetime, *, user: str | None = None, plan: str | None = None) -> WindowMetrics:
        last = int(now.timestamp()) // 60
        first = last - WINDOWS[window] + 1
        if user is not None:
            plans = [plan] if plan is not None else self.plans_of(user)
            parts = [self._counters(pair_scope(user, p), first, last, PAIR_LEVELS) for p in plans]
            count, ok, failed, total = (sum(part[i] for part in parts) for i in range(4))
            users = int(count > 0)
            subs = sum(1 for part in parts if part[0])
        else:
            scope = "all" if plan is None else f"plan\x1f{plan}"
            count, ok, failed, total = self._counters(scope, first, last)
            users = self._members(scope, first, last)
            # a pair active in the window is a user active in that plan: pairs are summed over plans
            subs = users if plan is not None else sum(self._members(f"plan\x1f{p}", first, last)
                                                      for p in self.plans())
        rate = (Decimal(ok) * 100 / count).quantize(Decimal("0.01")) if count else None
        return WindowMetrics(window=window, payment_count=count, success_count=ok, failure_count=failed,
                             total_amount=amount(total), success_rate=rate, active_users=users,
                             active_subscriptions=subs)

    def all_windows(self, now: datetime, *, user: str | None = None, plan: str | None = None) -> list[WindowMetrics]:
        """All seven windows. They end at the same minute, so the ranges they share are read once."""
        self._memo = {}
        try:
            return [self.metrics(w, now, user=user, plan=plan) for w in WINDOWS]
        finally:
            self._memo = None

    def plans_of(self, party: str) -> list[str]:
        """The plans ``party`` has ever had an outcome on (the index behind per-user queries)."""
        prefix = plans_prefix(party)
        return [key[len(prefix):].decode() for key, _ in self.store.scan(prefix, prefix[:-1] + b"\x01")]

    def _counters(self, scope: str, first: int, last: int,
                  levels: tuple[tuple[str, int], ...] = LEVELS) -> tuple[int, int, int, int]:
        count = ok = failed = total = 0
        for c, s, f, t in self._ranges(counter_prefix, scope, first, last, _sum_counts, levels):
            count, ok, failed, total = count + c, ok + s, failed + f, total + t
        return count, ok, failed, total

    def plans(self) -> list[str]:
        """Every plan that has had an outcome."""
        return [key[1:].decode() for key, _ in self.store.scan(PLANS_INDEX, PLANS_INDEX[:-1] + b"h")]

    def _members(self, scope: str, first: int, last: int) -> int:
        prefix = lambda level, s: hist_prefix(b"u", level, s)  # noqa: E731
        return sum(self._ranges(prefix, scope, first, last, _sum_ints, LEVELS))

    def _ranges(self, prefix_of: Callable[[str, str], bytes], scope: str, first: int, last: int,
                total: Callable[[list[bytes]], T], levels: tuple[tuple[str, int], ...]) -> Iterator[T]:
        """The ``total`` of each bucket range covering the window (memoised within `all_windows`)."""
        for level, lo, hi in cover(max(first, self.horizon), last, levels):
            prefix = prefix_of(level, scope)
            key = (prefix, lo, hi)
            if self._memo is not None and key in self._memo:
                yield self._memo[key]
                continue
            value = total(self.store.values(bucket_key(prefix, lo), bucket_key(prefix, hi + 1), hi - lo + 1))
            if self._memo is not None:
                self._memo[key] = value
            yield value


def _sum_counts(values: list[bytes]) -> tuple[int, int, int, int]:
    rows = _many_counts.decode(_array(values))  # one decode for the whole range, not one per row
    if not rows:
        return 0, 0, 0, 0
    count, ok, failed, total = map(sum, zip(*rows, strict=True))
    return count, ok, failed, total


def _sum_ints(values: list[bytes]) -> int:
    return sum(_many_ints.decode(_array(values)))


def _array(values: list[bytes]) -> bytes:
    """The msgpack array of ``values``, each one msgpack object already (rows as stored)."""
    n = len(values)
    if n < 16:
        return bytes((0x90 | n,)) + b"".join(values)
    return (b"\xdc" + n.to_bytes(2, "big") if n < 1 << 16 else b"\xdd" + n.to_bytes(4, "big")) + b"".join(values)


def amount(units: int) -> Decimal:
    """A sum of UNITs as CC, without trailing zeros or exponent (``2``, ``34.0000000017``)."""
    whole, rest = divmod(units, 10**10)
    return Decimal(whole) if not rest else Decimal(format((Decimal(units) * UNIT).normalize(), "f"))


def cover(first: int, last: int, levels: tuple[tuple[str, int], ...] = LEVELS) -> list[tuple[str, int, int]]:
    """Buckets (level, first, last inclusive) that exactly cover minutes ``first..last``, fewest first:
    the whole buckets of the coarsest level inside, then the two ragged ends at the finer ones."""
    if first > last:
        return []
    level, size = levels[-1]
    if size == 1:
        return [(level, first, last)]
    lo, hi = -(-first // size), (last + 1) // size  # whole buckets inside: [lo, hi)
    if lo >= hi:
        return cover(first, last, levels[:-1])
    return [*cover(first, lo * size - 1, levels[:-1]), (level, lo, hi - 1), *cover(hi * size, last, levels[:-1])]
