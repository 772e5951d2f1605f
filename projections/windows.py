"""Window metrics (10m … 30d): the queries over the fold, of bounded cost.

Every outcome (a `PaymentConfirmed`, or a *final* `PaymentFailed`; retries do not count)
is counted overall and per plan in minute, 10-minute, hour and day buckets, and per
user+plan in that pair's day rows (each holding its active minutes), keyed by event time,
so late events land where they belong (see `projections.fold`). A user's figures are the
sum of their user+plan pairs (a user has a handful of plans). A window is the last N whole
minutes, covered by at most ~150 overall or plan buckets and 31 days of a pair, so a query
costs the same at ten events or ten million.

Distinct counts are exact: each user and each user+plan pair keeps its last active
minute, and each overall or plan row the number of members whose last minute lies in it;
the members active in a window are the sum over it.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from projections.fold import UNIT, WindowFold
from projections.keys import DAY, LEVELS, PLANS_INDEX, bucket_key, counter_prefix, pair_days_prefix, plans_prefix

_many_rows = msgspec.msgpack.Decoder(list[tuple[int, int, int, int, int]])
_day_rows = msgspec.msgpack.Decoder(list[list[int]])
WINDOWS = {"10m": 10, "1h": 60, "6h": 360, "12h": 720, "24h": 1440, "7d": 10080, "30d": 43200}  # minutes
Counts = tuple[int, int, int, int, int]  # payments, confirmed, failed, total (UNITs), members


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

    _memo: dict[Any, Any] | None = None  # within `all_windows`: ranges and pair days already read

    # -- queries (committed state only) --------------------------------------------------

    def metrics(self, window: str, now: datetime, *, user: str | None = None, plan: str | None = None) -> WindowMetrics:
        last = int(now.timestamp()) // 60
        first = last - WINDOWS[window] + 1
        if user is not None:
            plans = [plan] if plan is not None else self.plans_of(user)
            parts = [self._pair_counts(pair_days_prefix(user, p), first, last) for p in plans]
            count, ok, failed, total = (sum(part[i] for part in parts) for i in range(4))
            users = int(count > 0)
            subs = sum(1 for part in parts if part[0])
        else:
            count, ok, failed, total, users = self._counts("all" if plan is None else f"plan\x1f{plan}", first, last)
            # a pair active in the window is a user active in that plan: pairs are summed over plans
            subs = (
                users if plan is not None else sum(self._counts(f"plan\x1f{p}", first, last)[4] for p in self.plans())
            )
        rate = (Decimal(ok) * 100 / count).quantize(Decimal("0.01")) if count else None
        return WindowMetrics(
            window=window,
            payment_count=count,
            success_count=ok,
            failure_count=failed,
            total_amount=amount(total),
            success_rate=rate,
            active_users=users,
            active_subscriptions=subs,
        )

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
        return [key[len(prefix) :].decode() for key, _ in self.store.scan(prefix, prefix[:-1] + b"\x01")]

    def plans(self) -> list[str]:
        """Every plan that has had an outcome."""
        return [key[1:].decode() for key, _ in self.store.scan(PLANS_INDEX, PLANS_INDEX[:-1] + b"h")]

    def _counts(self, scope: str, first: int, last: int) -> Counts:
        """An overall or plan scope's sums over minutes ``first..last``."""
        sums = [0, 0, 0, 0, 0]
        for level, lo, hi in cover(max(first, self.horizon), last):
            for row in self._range(counter_prefix(level, scope), lo, hi):
                sums = [a + b for a, b in zip(sums, row, strict=True)]
        count, ok, failed, total, members = sums
        return count, ok, failed, total, members

    def _range(self, prefix: bytes, lo: int, hi: int) -> list[Counts]:
        """The summed row of buckets ``lo..hi`` (as a list of one, or none), memoised within `all_windows`."""
        key = (prefix, lo, hi)
        if self._memo is not None and key in self._memo:
            return self._memo[key]  # type: ignore[no-any-return]
        rows = _many_rows.decode(
            _array(self.store.values(bucket_key(prefix, lo), bucket_key(prefix, hi + 1), hi - lo + 1))
        )  # one decode for the range
        value = [tuple(map(sum, zip(*rows, strict=True)))] if rows else []
        if self._memo is not None:
            self._memo[key] = value
        return value  # type: ignore[return-value]

    def _pair_counts(self, prefix: bytes, first: int, last: int) -> tuple[int, int, int, int]:
        """A user+plan pair's sums over minutes ``first..last``: whole days from their totals, the
        days at the ends from their minutes."""
        first = max(first, self.horizon)
        sums = [0, 0, 0, 0]
        for day, row in self._pair_days(prefix, first // DAY, last // DAY):
            lo, hi = first - day * DAY, last - day * DAY
            if lo <= 0 and hi >= DAY - 1:
                parts = [row[:4]]
            else:
                parts = [row[i + 1 : i + 5] for i in range(4, len(row), 5) if lo <= row[i] <= hi]
            for part in parts:
                sums = [a + b for a, b in zip(sums, part, strict=True)]
        count, ok, failed, total = sums
        return count, ok, failed, total

    def _pair_days(self, prefix: bytes, lo: int, hi: int) -> list[tuple[int, list[int]]]:
        """The pair's day rows from day ``lo`` to ``hi``; within `all_windows` read once, for the longest."""
        if self._memo is None:
            return self._read_days(prefix, lo, hi)
        cached = self._memo.get(prefix)
        if cached is None or not (cached[0] <= lo and hi <= cached[1]):
            start = min(lo, hi - WINDOWS["30d"] // DAY)  # the days of the longest window
            cached = self._memo[prefix] = (start, hi, self._read_days(prefix, start, hi))
        return [(day, row) for day, row in cached[2] if lo <= day <= hi]

    def _read_days(self, prefix: bytes, lo: int, hi: int) -> list[tuple[int, list[int]]]:
        pairs = list(self.store.scan(bucket_key(prefix, max(lo, 0)), bucket_key(prefix, hi + 1)))
        rows = _day_rows.decode(_array([value for _, value in pairs]))
        return [(int.from_bytes(key[-8:], "big"), row) for (key, _), row in zip(pairs, rows, strict=True)]


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
