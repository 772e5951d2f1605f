"""The fold behind the window metrics: outcomes into time-bucket rows, committed atomically.

`apply` only sums outcomes per user+plan and minute in memory; `commit` spreads the sums
over every scope and level, moves members' last-active minutes, and writes the changed
rows, a bounded slice of retention's pruning and the log position they reflect in one
RocksDB batch. A crash loses only what was not committed, and the log has it. A row for
a bucket later than the latest minute folded (or than a pair's last active minute) cannot
exist yet, so a forward-moving stream folds without reading the store.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from operator import attrgetter, lt
from typing import TypeVar

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
T = TypeVar("T")
_offset_of = attrgetter("offset")
_event_of = attrgetter("event")


def _u64(raw: bytes | None) -> int:
    return int.from_bytes(raw, "big") if raw else 0


def _shared_buckets(minute: int) -> tuple[int, ...]:
    return minute, minute // 10, minute // 60, minute // 1440  # SHARED_SIZES, spelt out: this is the hot path


def _shared_after(buckets: tuple[int, ...], minute: int) -> tuple[bool, ...]:
    """Per level: is the bucket later than ``minute``'s (-1: no minute, every bucket is later)?"""
    if minute < 0:
        return _NEW
    return buckets[0] > minute, buckets[1] > minute // 10, buckets[2] > minute // 60, buckets[3] > minute // 1440


def _is_outcome(event: object) -> bool:
    kind = type(event)
    return kind is PaymentConfirmed or (kind is PaymentFailed and event.final)  # type: ignore[attr-defined]


def _rising(records: list[Recorded], position: int) -> bool:
    """Every record new and in offset order: the whole list is folded as one (checked in C)."""
    offsets = list(map(_offset_of, records))
    return offsets[0] >= position and all(map(lt, offsets, offsets[1:]))


def _sum_into(sums: dict[T, Row], key: T, cell: Row) -> None:
    total = sums.get(key)
    sums[key] = cell if total is None else _plus(total, cell)  # rows are never changed in place: they share cells


def _plus(row: Row, cell: Row) -> Row:
    return [row[0] + cell[0], row[1] + cell[1], row[2] + cell[2], row[3] + cell[3]]


assert SHARED_SIZES == (1, 10, 60, 1440) and PAIR_SIZES == (1, 60, 1440)  # spelt out above and in the flush


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
        records = records if isinstance(records, list) else list(records)
        if not records:
            return
        if not _rising(records, self.position):
            for record in records:  # redelivered records, or foreign keys: one by one
                if record.offset >= self.position:
                    self.apply([record])
            return
        events = list(map(_event_of, records))
        self.position = records[-1].offset + 1
        self.pending += len(records)
        self.unreadable += list(map(type, events)).count(Unreadable)
        self._sum([event for event in events if _is_outcome(event)])

    def _sum(self, outcomes: list[PaymentConfirmed | PaymentFailed]) -> None:
        cells, pair_max, horizon = self._cells, self._pair_max, self.horizon
        for event in outcomes:
            minute = int(event.at.timestamp()) // 60
            if minute < horizon:
                continue  # older than the retention window
            pair = (event.party, event.plan)
            cell = cells.get((pair, minute))
            if cell is None:
                cell = cells[(pair, minute)] = [0, 0, 0, 0]
            cell[0] += 1
            if type(event) is PaymentConfirmed:
                cell[1] += 1
                cell[3] += int(event.amount.scaleb(10))
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
        # A row after the pair's last active bucket cannot exist yet: no need to read it.
        # (-1, no minute, floors to -1 at every level: every bucket is later.)
        bump, rows, get = self._bump, self._rows, self._rows.get
        for (pair, minute), cell in self._cells.items():
            last, (m, h, d) = pair_lasts[pair], keys_of[pair].pair_counters
            hour, day = minute // 60, minute // 1440
            key = m + minute.to_bytes(8, "big")  # one cell per pair and minute: its only outcomes in this flush
            rows[key] = cell if minute > last else _plus(self._load_row(key), cell)
            for key, fresh in ((h + hour.to_bytes(8, "big"), hour > last // 60),
                               (d + day.to_bytes(8, "big"), day > last // 1440)):
                row = get(key)  # `_bump`, inlined: two rows per outcome
                rows[key] = (cell if fresh else _plus(self._load_row(key), cell)) if row is None else _plus(row, cell)
        scopes: dict[str | None, tuple[bytes, ...]] = {None: ()}  # a plan's rows, and (None) the overall ones
        for (_, plan), keys in keys_of.items():
            scopes[None], scopes[plan] = keys.shared_counters
        for index, level in enumerate(self._shared_levels()):
            after = latest // SHARED_SIZES[index]  # nothing lies after the latest minute folded
            for (scope, bucket), cell in level.items():
                bump(scopes[scope][index] + bucket.to_bytes(8, "big"), cell, bucket > after)

    def _shared_levels(self) -> Iterator[dict[tuple[str | None, int], Row]]:
        """The sums per plan (and overall: None) and bucket, level by level, each rolled up from the one below."""
        level: dict[tuple[str | None, int], Row] = {}
        for ((_, plan), minute), cell in self._cells.items():
            _sum_into(level, (plan, minute), cell)
        for (_, minute), cell in list(level.items()):  # overall: the sum over plans
            _sum_into(level, (None, minute), cell)
        yield level
        for below, size in itertools.pairwise(SHARED_SIZES):
            rolled: dict[tuple[str | None, int], Row] = {}
            for (scope, bucket), cell in level.items():
                _sum_into(rolled, (scope, bucket * below // size), cell)
            level = rolled
            yield level

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

    def _bump(self, key: bytes, cell: Row, fresh: bool) -> None:
        """Add ``cell`` to the row at ``key``; ``fresh``: that row is known not to exist in the store."""
        row = self._rows.get(key)
        if row is None:
            self._rows[key] = cell if fresh else _plus(self._load_row(key), cell)
        else:
            self._rows[key] = _plus(row, cell)  # a new list: rows and cells share lists, none is changed in place

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
            deletes = self.pruner.step(cutoff, self._ints, [*self._rows, *self._dirty_ints])
        rows, ints = self._rows, self._ints
        for key in deletes:
            rows.pop(key, None)
        puts = list(zip(rows, map(_enc, rows.values()), strict=True))  # no Python loop over a chunk's rows
        puts += [(k, b"" if k[:1] in b"gp" else _enc(ints[k])) for k in self._dirty_ints - deletes]
        puts += [(POSITION, self.position.to_bytes(8, "big")), (HORIZON, self.horizon.to_bytes(8, "big")),
                 (LATEST, (self.latest + 1).to_bytes(8, "big")), (FORMAT_KEY, FORMAT)]
        if self.pruner is not None:
            puts += self.pruner.progress()
        puts.sort()  # in key order RocksDB inserts a large batch faster (15-30 % measured at 400,000 rows)
        self.store.write(puts, deletes)
        self._dirty_ints.clear()
        self.pending = 0
        for key in deletes:
            ints.pop(key, None)
        rows.clear()  # most rows are written once (a user's minute); the few hot ones cost a read per commit
        if len(ints) > INTS_CACHED:
            ints.clear()

    @property
    def needs_commit(self) -> bool:
        """Folded records not yet written, or pruning to do."""
        return bool(self.pending) or (self.pruner is not None and self.pruner.due())
