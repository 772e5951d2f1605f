"""The fold behind the window metrics: outcomes into time-bucket rows, committed atomically.

`apply` only sums outcomes per user+plan and minute in memory; `commit` spreads the sums
over every scope and level, moves members' last-active minutes, and writes the changed
rows, a bounded slice of retention's pruning and the log position they reflect in one
RocksDB batch. A crash loses only what was not committed, and the log has it. A row for
a bucket later than the latest minute folded (or than a pair's last active minute) cannot
exist yet, so a forward-moving stream folds without reading the store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal

import msgspec

from pipeline.events import PaymentConfirmed, PaymentFailed, Recorded, Unreadable
from pipeline.rocks import Store
from projections import retention
from projections.keys import PAIR_SIZES, SHARED_SIZES, PairKeys

FORMAT = b"windows/v3"
POSITION = b"\x00pos"
FORMAT_KEY = b"\x00format"
HORIZON = b"\x00horizon"
LATEST = b"\x00latest"
INTS_CACHED = 500_000  # members' last minutes and histogram cells kept after a commit; beyond it, none
counts = msgspec.msgpack.Decoder(tuple[int, int, int, int])
as_int = msgspec.msgpack.Decoder(int)
_enc = msgspec.msgpack.encode
UNIT = Decimal("1E-10")  # amounts are summed as integers of 10^-10 CC (Canton Numeric 10): exact and fast
Row = list  # [payments, confirmed, failed, confirmed amount in UNITs]
_NEW = (True, True, True, True)


def _u64(raw: bytes | None) -> int:
    return int.from_bytes(raw, "big") if raw else 0


def _shared_buckets(minute: int) -> tuple[int, ...]:
    return minute, minute // 10, minute // 60, minute // 1440  # SHARED_SIZES, spelt out: this is the hot path


def _pair_buckets(minute: int) -> tuple[int, ...]:
    return minute, minute // 60, minute // 1440  # PAIR_SIZES


def _shared_after(buckets: tuple[int, ...], minute: int) -> tuple[bool, ...]:
    """Per level: is the bucket later than ``minute``'s (-1: no minute, every bucket is later)?"""
    if minute < 0:
        return _NEW
    return buckets[0] > minute, buckets[1] > minute // 10, buckets[2] > minute // 60, buckets[3] > minute // 1440


def _pair_after(buckets: tuple[int, ...], minute: int) -> tuple[bool, ...]:
    if minute < 0:
        return _NEW
    return buckets[0] > minute, buckets[1] > minute // 60, buckets[2] > minute // 1440


assert SHARED_SIZES == (1, 10, 60, 1440) and PAIR_SIZES == (1, 60, 1440)  # the four functions above


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
        self._cells: dict[tuple[tuple[str, str], int], Row] = {}  # (party, plan), minute: outcomes not flushed
        self._pair_max: dict[tuple[str, str], int] = {}  # (party, plan): latest minute not flushed
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
        """Fold records: outcomes are summed per user+plan and minute in memory until `commit`."""
        cells, pair_max, horizon = self._cells, self._pair_max, self.horizon
        for record in records:
            if record.offset < self.position:
                continue  # already folded: at-least-once delivery changes nothing
            self.position = record.offset + 1
            self.pending += 1
            event = record.event
            kind = type(event)
            if kind is not PaymentConfirmed and (kind is not PaymentFailed or not event.final):  # type: ignore[union-attr]
                self.unreadable += kind is Unreadable
                continue
            minute = int(event.at.timestamp()) // 60  # type: ignore[union-attr]
            if minute < horizon:
                continue  # older than the retention window
            pair = (event.party, event.plan)  # type: ignore[union-attr]
            cell = cells.get((pair, minute))
            if cell is None:
                cell = cells[(pair, minute)] = [0, 0, 0, 0]
            cell[0] += 1
            if kind is PaymentConfirmed:
                cell[1] += 1
                cell[3] += int(event.amount.scaleb(10))  # type: ignore[union-attr]
            else:
                cell[2] += 1
            if pair_max.get(pair, -1) < minute:
                pair_max[pair] = minute

    def _flush(self) -> None:
        """Add the summed outcomes to every scope and level, and move members' last minutes."""
        latest = self.latest
        keys_of = {pair: self._pairs.get(pair) or self._pair_keys(*pair) for pair in self._pair_max}
        pair_lasts = {pair: self._last(keys.pair_last) for pair, keys in keys_of.items()}
        self._flush_counters(keys_of, pair_lasts, latest)
        self._flush_members(keys_of, pair_lasts, latest)
        self.latest = max(latest, *self._pair_max.values())
        self._cells.clear()
        self._pair_max.clear()

    def _flush_counters(self, keys_of: dict[tuple[str, str], PairKeys], pair_lasts: dict[tuple[str, str], int],
                        latest: int) -> None:
        shared: dict[tuple[tuple[bytes, ...], int], Row] = {}  # overall and plan rows, summed first
        for (pair, minute), cell in self._cells.items():
            keys, buckets = keys_of[pair], _pair_buckets(minute)
            # a row after the pair's last active bucket cannot exist yet: no need to read it
            self._add(keys.pair_counters, buckets, cell, _pair_after(buckets, pair_lasts[pair]))
            for prefixes in keys.shared_counters:
                total = shared.get((prefixes, minute))
                if total is None:
                    shared[(prefixes, minute)] = cell.copy()
                else:
                    total[0], total[1], total[2], total[3] = (total[0] + cell[0], total[1] + cell[1],
                                                              total[2] + cell[2], total[3] + cell[3])
        for (prefixes, minute), cell in shared.items():
            buckets = _shared_buckets(minute)
            self._add(prefixes, buckets, cell, _shared_after(buckets, latest))  # nothing lies after latest

    def _flush_members(self, keys_of: dict[tuple[str, str], PairKeys], pair_lasts: dict[tuple[str, str], int],
                       latest: int) -> None:
        users: dict[str, tuple[int, PairKeys]] = {}
        for pair, minute in self._pair_max.items():
            keys, last = keys_of[pair], pair_lasts[pair]
            if self._seen(keys.pair_last, last, keys.pair_hists, minute, latest) and last < 0:
                for row in keys.index_rows:  # the pair's first outcome: index the plan (overall, under the user)
                    self._ints[row] = 1
                    self._dirty_ints.add(row)
            if users.get(pair[0], (-1,))[0] < minute:
                users[pair[0]] = (minute, keys)
        for minute, keys in users.values():
            self._seen(keys.user_last, self._last(keys.user_last), keys.user_hists, minute, latest)

    def _add(self, prefixes: tuple[bytes, ...], buckets: tuple[int, ...], cell: Row, fresh: tuple[bool, ...]) -> None:
        """Add ``cell`` to the row of each level; ``fresh[level]``: that row is known not to exist yet."""
        rows, dirty = self._rows, self._dirty_rows
        for level, prefix in enumerate(prefixes):
            key = prefix + buckets[level].to_bytes(8, "big")
            row = rows.get(key)
            if row is None:
                row = rows[key] = [0, 0, 0, 0] if fresh[level] else self._load_row(key)
            dirty.add(key)
            row[0] += cell[0]
            row[1] += cell[1]
            row[2] += cell[2]
            row[3] += cell[3]

    def _seen(self, last_key: bytes, last: int, prefixes: tuple[bytes, ...], minute: int, latest: int) -> bool:
        """Move a member's last active minute forward, and its histogram cells with it."""
        if last >= minute:
            return False
        ints, dirty = self._ints, self._dirty_ints
        buckets = _shared_buckets(minute)  # histograms are kept for overall and plan scopes only
        fresh = _shared_after(buckets, latest)
        olds = _shared_buckets(last)
        for level, prefix in enumerate(prefixes):
            if last >= 0:
                if olds[level] == buckets[level]:
                    break  # same bucket at this level: at the coarser ones too
                key = prefix + olds[level].to_bytes(8, "big")
                value = ints.get(key)
                ints[key] = (self._int(key) if value is None else value) - 1
                dirty.add(key)
            key = prefix + buckets[level].to_bytes(8, "big")
            value = ints.get(key)
            if value is None:
                value = 0 if fresh[level] else self._int(key)
            ints[key] = value + 1
            dirty.add(key)
        ints[last_key] = minute
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
            return [0, 0, 0, 0]
        return list(counts.decode(raw))

    def commit(self) -> None:
        """Write every change, a bounded slice of pruning, and the position, in one atomic batch."""
        if self._pair_max:
            self._flush()
        deletes: set[bytes] = set()
        if self.pruner is not None:
            cutoff = self.pruner.cutoff()
            self.horizon = max(self.horizon, cutoff)
            deletes = self.pruner.step(cutoff, self._ints, [*self._dirty_rows, *self._dirty_ints])
        rows, ints = self._rows, self._ints
        puts = [(k, _enc(rows[k])) for k in self._dirty_rows - deletes]
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
        rows.clear()  # most rows are written once (a user's minute); the few hot ones cost a read per commit
        if len(ints) > INTS_CACHED:
            ints.clear()

    @property
    def needs_commit(self) -> bool:
        """Folded records not yet written, or pruning to do."""
        return bool(self.pending) or (self.pruner is not None and self.pruner.due())
