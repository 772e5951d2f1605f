"""Window metrics (10m … 30d) folded from the log into RocksDB; queries of bounded cost.

Every outcome (a `PaymentConfirmed`, or a *final* `PaymentFailed`; retries do not count)
adds to counters in four scopes — overall, plan, user, user+plan — at three resolutions:
minute, hour and day buckets, keyed by event time, so late events land where they
belong. A window is the last N whole minutes; it is covered by at most ~200 buckets
(minutes up to the first hour, hours up to the first day, days, then back down), so
a query costs the same at ten events or ten million.

Distinct counts are exact: for each scope we keep every member's last active minute
(users; user+plan pairs) and a histogram of those minutes at the same three
resolutions; the members active in a window are the histogram's sum over the window.
State and the log position it reflects are written in one atomic batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import Decimal

import msgspec

from pipeline.events import PaymentConfirmed, PaymentFailed, Recorded, Unreadable
from pipeline.rocks import Store

WINDOWS = {"10m": 10, "1h": 60, "6h": 360, "12h": 720, "24h": 1440, "7d": 10080, "30d": 43200}  # minutes
LEVELS = (("m", 1), ("h", 60), ("d", 1440))  # resolution and its size in minutes
FORMAT = b"windows/v1"
_POSITION = b"\x00pos"
_FORMAT_KEY = b"\x00format"
_counts = msgspec.msgpack.Decoder(tuple[int, int, int, str])
_int = msgspec.msgpack.Decoder(int)
_enc = msgspec.msgpack.encode


class WindowMetrics(msgspec.Struct, frozen=True, kw_only=True):
    window: str
    payment_count: int = 0
    success_count: int = 0
    failure_count: int = 0
    total_amount: Decimal = Decimal(0)
    success_rate: Decimal | None = None  # percent; None when there were no payments
    active_users: int = 0
    active_subscriptions: int = 0


def scopes(party: str, plan: str) -> tuple[str, str, str, str]:
    return ("all", f"plan\x1f{plan}", f"user\x1f{party}", f"pair\x1f{party}\x1f{plan}")


def scope_of(user: str | None, plan: str | None) -> str:
    if user and plan:
        return f"pair\x1f{user}\x1f{plan}"
    if user:
        return f"user\x1f{user}"
    return f"plan\x1f{plan}" if plan else "all"


def _key(kind: bytes, level: str, scope: str, bucket: int) -> bytes:
    return kind + level.encode() + scope.encode() + b"\x00" + bucket.to_bytes(8, "big")


def _minute(at: datetime) -> int:
    return int(at.timestamp() // 60)


class WindowProjection:
    """The fold (with a write-back cache) and the queries, over one projection store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[bytes, bytes | None] = {}
        self._dirty: set[bytes] = set()
        raw = store.get(_POSITION)
        self.position = int.from_bytes(raw, "big") if raw else 0
        self.unreadable = 0
        self.pending = 0  # records folded since the last commit

    @property
    def current(self) -> bool:
        """False when the store was written by another format version: rebuild it."""
        fmt = self.store.get(_FORMAT_KEY)
        return (fmt is None and self.position == 0) or fmt == FORMAT

    # -- fold --------------------------------------------------------------------------

    def apply(self, records: Iterable[Recorded]) -> None:
        for record in records:
            if record.offset < self.position:
                continue  # already folded: at-least-once delivery changes nothing
            self.position = record.offset + 1
            self.pending += 1
            event = record.event
            if isinstance(event, Unreadable):
                self.unreadable += 1
            elif isinstance(event, PaymentConfirmed):
                self._outcome(event.party, event.plan, event.at, event.amount, success=True)
            elif isinstance(event, PaymentFailed) and event.final:
                self._outcome(event.party, event.plan, event.at, Decimal(0), success=False)

    def _outcome(self, party: str, plan: str, at: datetime, amount: Decimal, *, success: bool) -> None:
        minute = _minute(at)
        all_, by_plan, by_user, pair = scopes(party, plan)
        for scope in (all_, by_plan, by_user, pair):
            for level, size in LEVELS:
                key = _key(b"c", level, scope, minute // size)
                count, ok, failed, total = self._counts(key)
                self._put(key, _enc((count + 1, ok + success, failed + (not success), str(Decimal(total) + amount))))
        for kind, scope, member in (("u", all_, party), ("s", all_, f"{party}\x1f{plan}"),
                                    ("u", by_plan, party), ("s", by_plan, party), ("s", by_user, plan)):
            self._seen(kind, scope, member, minute)

    def _seen(self, kind: str, scope: str, member: str, minute: int) -> None:
        """Move ``member``'s last active minute forward, and the histograms with it."""
        last_key = b"l" + kind.encode() + scope.encode() + b"\x00" + member.encode()
        raw = self._get(last_key)
        last = _int.decode(raw) if raw else None
        if last is not None and last >= minute:
            return
        for level, size in LEVELS:
            if last is not None:
                self._bump(_key(b"h" + kind.encode(), level, scope, last // size), -1)
            self._bump(_key(b"h" + kind.encode(), level, scope, minute // size), +1)
        self._put(last_key, _enc(minute))

    def _bump(self, key: bytes, delta: int) -> None:
        raw = self._get(key)
        value = (_int.decode(raw) if raw else 0) + delta
        self._put(key, _enc(value) if value else None)

    def _counts(self, key: bytes) -> tuple[int, int, int, str]:
        raw = self._get(key)
        return _counts.decode(raw) if raw else (0, 0, 0, "0")

    def _get(self, key: bytes) -> bytes | None:
        if key in self._cache:
            return self._cache[key]
        value = self.store.get(key)
        self._cache[key] = value
        return value

    def _put(self, key: bytes, value: bytes | None) -> None:
        self._cache[key] = value
        self._dirty.add(key)

    def commit(self) -> None:
        """Write every change and the position they reflect in one atomic batch."""
        puts = [(k, v) for k in self._dirty if (v := self._cache[k]) is not None]
        deletes = [k for k in self._dirty if self._cache[k] is None]
        puts += [(_POSITION, self.position.to_bytes(8, "big")), (_FORMAT_KEY, FORMAT)]
        self.store.write(puts, deletes)
        self._dirty.clear()
        self.pending = 0
        if len(self._cache) > 200_000:
            self._cache.clear()  # bound memory; the store has everything

    # -- queries -----------------------------------------------------------------------

    def metrics(self, window: str, now: datetime, *, user: str | None = None, plan: str | None = None) -> WindowMetrics:
        last = _minute(now)
        first = last - WINDOWS[window] + 1
        scope = scope_of(user, plan)
        count = ok = failed = 0
        total = Decimal(0)
        for raw in self._buckets(b"c", scope, first, last):
            c, s, f, t = _counts.decode(raw)
            count, ok, failed, total = count + c, ok + s, failed + f, total + Decimal(t)
        users = self._members("u", scope, first, last) if not user else int(count > 0)
        subs = self._members("s", scope, first, last) if not (user and plan) else int(count > 0)
        rate = (Decimal(ok) * 100 / count).quantize(Decimal("0.01")) if count else None
        return WindowMetrics(window=window, payment_count=count, success_count=ok, failure_count=failed,
                             total_amount=total, success_rate=rate, active_users=users, active_subscriptions=subs)

    def all_windows(self, now: datetime, *, user: str | None = None, plan: str | None = None) -> list[WindowMetrics]:
        return [self.metrics(w, now, user=user, plan=plan) for w in WINDOWS]

    def _members(self, kind: str, scope: str, first: int, last: int) -> int:
        return sum(_int.decode(raw) for raw in self._buckets(b"h" + kind.encode(), scope, first, last))

    def _buckets(self, kind: bytes, scope: str, first: int, last: int) -> Iterator[bytes]:
        for level, lo, hi in cover(first, last):
            for _, value in self.store.scan(_key(kind, level, scope, lo), _key(kind, level, scope, hi + 1)):
                yield value


def cover(first: int, last: int) -> list[tuple[str, int, int]]:
    """Buckets (level, first, last inclusive) that exactly cover minutes ``first..last``."""
    out: list[tuple[str, int, int]] = []
    h_lo, h_hi = -(-first // 60), (last + 1) // 60  # whole hours inside: [h_lo, h_hi)
    if h_lo >= h_hi:
        return [("m", first, last)]
    if first < h_lo * 60:
        out.append(("m", first, h_lo * 60 - 1))
    d_lo, d_hi = -(-h_lo // 24), h_hi // 24  # whole days inside the hours: [d_lo, d_hi)
    if d_lo < d_hi:
        if h_lo < d_lo * 24:
            out.append(("h", h_lo, d_lo * 24 - 1))
        out.append(("d", d_lo, d_hi - 1))
        if d_hi * 24 < h_hi:
            out.append(("h", d_hi * 24, h_hi - 1))
    else:
        out.append(("h", h_lo, h_hi - 1))
    if h_hi * 60 <= last:
        out.append(("m", h_hi * 60, last))
    return out
