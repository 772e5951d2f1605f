"""The fold behind the window metrics: outcomes into time-bucket rows, committed atomically.

Rows live in a write-back cache across commits; `commit` writes the ones changed since the
last commit, a bounded slice of retention's pruning, and the log position they reflect,
in one RocksDB batch. A crash loses only what was not committed, and the log has it.
A user+plan row for a bucket later than that pair's last active minute cannot exist yet,
so a forward-moving stream folds without reading the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal

import msgspec

from pipeline.events import PaymentConfirmed, PaymentFailed, Recorded, Unreadable
from pipeline.rocks import Store
from projections import retention
from projections.keys import PairKeys

FORMAT = b"windows/v2"
POSITION = b"\x00pos"
FORMAT_KEY = b"\x00format"
HORIZON = b"\x00horizon"
LATEST = b"\x00latest"
ROWS_CACHED = 200_000  # counter rows kept after a commit; beyond it the cache starts afresh
INTS_CACHED = 500_000  # members' last minutes and histogram cells, likewise
counts = msgspec.msgpack.Decoder(tuple[int, int, int, str])
as_int = msgspec.msgpack.Decoder(int)
_enc = msgspec.msgpack.encode
ZERO = Decimal(0)
Row = list  # [payments, confirmed, failed, confirmed amount]
_NEW = (True, True, True)


def _after(buckets: tuple[int, ...], minute: int) -> tuple[bool, ...]:
    """Per level: is the bucket later than ``minute``'s (-1: no minute, every bucket is later)?"""
    if minute < 0:
        return _NEW
    return buckets[0] > minute, buckets[1] > minute // 60, buckets[2] > minute // 1440


def _u64(raw: bytes | None) -> int:
    return int.from_bytes(raw, "big") if raw else 0


class WindowFold:
    """Folds outcomes into the projection store. ``retention_days`` with ``clock`` turns on pruning."""

    def __init__(self, store: Store, *, retention_days: int | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.store = store
        self.position = _u64(store.get(POSITION))
        self.horizon = _u64(store.get(HORIZON))  # outcomes before this minute are not folded (retention)
        self.latest = _u64(store.get(LATEST)) - 1  # the latest minute folded (-1: none); no row lies after it
        self.unreadable = 0
        self.pending = 0  # records folded since the last commit
        self._rows: dict[bytes, Row] = {}
        self._ints: dict[bytes, int] = {}  # histogram cells, last-active minutes, plan index rows
        self._dirty_rows: set[bytes] = set()
        self._dirty_ints: set[bytes] = set()
        self._pairs: dict[tuple[str, str], PairKeys] = {}
        self.pruner: retention.Pruner | None = None
        if retention_days and clock:
            fresh = self.position == 0 and store.get(FORMAT_KEY) is None
            self.pruner = retention.Pruner(store, retention_days, clock, fresh=fresh)
            self.horizon = max(self.horizon, self.pruner.cutoff())

    @property
    def current(self) -> bool:
        """False when the store was written by another format version: rebuild it."""
        fmt = self.store.get(FORMAT_KEY)
        return (fmt is None and self.position == 0) or fmt == FORMAT

    def apply(self, records: Iterable[Recorded]) -> None:
        for record in records:
            if record.offset < self.position:
                continue  # already folded: at-least-once delivery changes nothing
            self.position = record.offset + 1
            self.pending += 1
            event = record.event
            if type(event) is PaymentConfirmed:
                self._outcome(event.party, event.plan, event.at, event.amount)
            elif type(event) is PaymentFailed and event.final:
                self._outcome(event.party, event.plan, event.at, None)
            elif isinstance(event, Unreadable):
                self.unreadable += 1

    def _outcome(self, party: str, plan: str, at: datetime, amount: Decimal | None) -> None:
        """Count one outcome (``amount`` None: a final failure) in every scope and level."""
        minute = int(at.timestamp()) // 60
        if minute < self.horizon:
            return  # older than the retention window
        keys = self._pairs.get((party, plan)) or self._pair_keys(party, plan)
        buckets = (minute, minute // 60, minute // 1440)
        suffixes = (minute.to_bytes(8, "big"), buckets[1].to_bytes(8, "big"), buckets[2].to_bytes(8, "big"))
        # a row for a bucket after the latest one folded, or after the pair's last active one,
        # cannot exist yet: no need to read it
        latest = self.latest
        fresh = _after(buckets, latest)
        if minute > latest:
            self.latest = minute
        pair_last = self._last(keys.pair_last)
        for prefixes in keys.shared_counters:
            self._count(prefixes, suffixes, amount, fresh)
        self._count(keys.pair_counters, suffixes, amount, _after(buckets, pair_last))  # pair_last <= latest
        if self._seen(keys.pair_last, pair_last, keys.pair_hists, buckets, suffixes, fresh) and pair_last < 0:
            for row in keys.index_rows:  # the pair's first outcome: index the plan (overall, under the user)
                self._ints[row] = 1
                self._dirty_ints.add(row)
        self._seen(keys.user_last, self._last(keys.user_last), keys.user_hists, buckets, suffixes, fresh)

    def _count(self, prefixes: tuple[bytes, ...], suffixes: tuple[bytes, ...], amount: Decimal | None,
               fresh: tuple[bool, ...]) -> None:
        """Add to one row per level; ``fresh[level]``: the row is known not to exist yet."""
        rows, dirty = self._rows, self._dirty_rows
        for level, prefix in enumerate(prefixes):
            key = prefix + suffixes[level]
            row = rows.get(key)
            if row is None:
                row = rows[key] = [0, 0, 0, ZERO] if fresh[level] else self._load_row(key)
            dirty.add(key)
            row[0] += 1
            if amount is None:
                row[2] += 1
            else:
                row[1] += 1
                row[3] += amount

    def _seen(self, last_key: bytes, last: int, prefixes: tuple[bytes, ...], buckets: tuple[int, ...],
              suffixes: tuple[bytes, ...], fresh: tuple[bool, ...]) -> bool:
        """Move a member's last active minute forward, and its histogram cells with it."""
        if last >= buckets[0]:
            return False
        ints, dirty = self._ints, self._dirty_ints
        olds = (last, last // 60, last // 1440)
        for level, prefix in enumerate(prefixes):
            if last >= 0:
                if olds[level] == buckets[level]:
                    break  # same hour: same day too
                key = prefix + olds[level].to_bytes(8, "big")
                value = ints.get(key)
                ints[key] = (self._int(key) if value is None else value) - 1
                dirty.add(key)
            key = prefix + suffixes[level]
            value = ints.get(key)
            if value is None:
                value = 0 if fresh[level] else self._int(key)
            ints[key] = value + 1
            dirty.add(key)
        ints[last_key] = buckets[0]
        dirty.add(last_key)
        return True

    def _last(self, key: bytes) -> int:
        """A member's last active minute; -1 if never, or before the horizon (its rows are pruned)."""
        value = self._ints.get(key)
        if value is None:
            raw = self.store.get(key)
            value = self._ints[key] = as_int.decode(raw) if raw else -1
        return value if value >= self.horizon else -1

    def _int(self, key: bytes) -> int:
        value = self._ints.get(key)
        if value is None:
            raw = self.store.get(key)
            value = self._ints[key] = as_int.decode(raw) if raw else 0
        return value

    def _pair_keys(self, party: str, plan: str) -> PairKeys:
        if len(self._pairs) > 100_000:
            self._pairs.clear()  # bound memory; rebuilding one costs a few concatenations
        keys = self._pairs[(party, plan)] = PairKeys.of(party, plan)
        return keys

    def _load_row(self, key: bytes) -> Row:
        raw = self.store.get(key)
        if raw is None:
            return [0, 0, 0, ZERO]
        n, ok, failed, total = counts.decode(raw)
        return [n, ok, failed, Decimal(total)]

    def commit(self) -> None:
        """Write every change, a bounded slice of pruning, and the position, in one atomic batch."""
        deletes: set[bytes] = set()
        if self.pruner is not None:
            cutoff = self.pruner.cutoff()
            self.horizon = max(self.horizon, cutoff)
            deletes = self.pruner.step(cutoff, self._ints, [*self._dirty_rows, *self._dirty_ints])
        rows, ints = self._rows, self._ints
        puts = [(k, _enc((r[0], r[1], r[2], str(r[3])))) for k in self._dirty_rows - deletes if (r := rows[k])]
        puts += [(k, b"" if k[:1] in b"gp" else _enc(ints[k])) for k in self._dirty_ints - deletes]
        puts += [(POSITION, self.position.to_bytes(8, "big")), (HORIZON, self.horizon.to_bytes(8, "big")),
                 (LATEST, (self.latest + 1).to_bytes(8, "big")), (FORMAT_KEY, FORMAT)]
        if self.pruner is not None:
            puts += self.pruner.progress()
        self.store.write(puts, deletes)
        self._dirty_rows.clear()
        self._dirty_ints.clear()
        self.pending = 0
        for key in deletes:
            rows.pop(key, None)
            ints.pop(key, None)
        if len(rows) > ROWS_CACHED:
            rows.clear()  # bound memory; the store has everything
        if len(ints) > INTS_CACHED:
            ints.clear()

    @property
    def needs_commit(self) -> bool:
        """Folded records not yet written, or pruning to do."""
        return bool(self.pending) or (self.pruner is not None and self.pruner.due())
