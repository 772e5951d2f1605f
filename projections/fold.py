"""The fold behind the window metrics: outcomes into time-bucket rows, committed atomically.

`apply` only sums outcomes per user+plan and minute in memory; `commit` writes them as one
row per pair and day, rolls them up into the overall and plan rows of every level, moves
members' last-active minutes (and the member counts of those rows with them), and writes
the changed rows, a bounded slice of retention's pruning and the log position they
reflect in one RocksDB batch. A crash loses only what was not committed, and the log has
it. A row for a bucket later than the latest minute folded (or than a pair's last active
minute) cannot exist yet, so a forward-moving stream folds without reading the store.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from itertools import repeat
from operator import attrgetter, floordiv, lt
from typing import TypeVar

import msgspec

from pipeline.events import PaymentConfirmed, PaymentFailed, Recorded, Unreadable
from pipeline.rocks import Store
from projections import retention
from projections.keys import DAY, SHARED_SIZES, PairKeys

FORMAT = b"windows/v4"
POSITION = b"\x00pos"
FORMAT_KEY = b"\x00format"
HORIZON = b"\x00horizon"
LATEST = b"\x00latest"
INTS_CACHED = 500_000  # members' last minutes and index rows kept after a commit; beyond it, none
rows_of = msgspec.msgpack.Decoder(tuple[int, int, int, int, int])
day_of = msgspec.msgpack.Decoder(list[int])
as_int = msgspec.msgpack.Decoder(int)
_enc = msgspec.msgpack.encode
UNIT = Decimal("1E-10")  # amounts are summed as integers of 10^-10 CC (Canton Numeric 10): exact and fast
Cell = list  # [payments, confirmed, failed, confirmed amount in UNITs]
Pair = tuple[str, str]  # (party, plan)
Scope = str | None  # a plan, or None: overall
Moves = tuple[list[int], list[int]]  # members' last active minutes before (where they had one) and after
T = TypeVar("T")
_offset_of = attrgetter("offset")
_event_of = attrgetter("event")


def _u64(raw: bytes | None) -> int:
    return int.from_bytes(raw, "big") if raw else 0


def _is_outcome(event: object) -> bool:
    kind = type(event)
    return kind is PaymentConfirmed or (kind is PaymentFailed and event.final)  # type: ignore[attr-defined]


def _rising(records: list[Recorded], position: int) -> bool:
    """Every record new and in offset order: the whole list is folded as one (checked in C)."""
    offsets = list(map(_offset_of, records))
    return offsets[0] >= position and all(map(lt, offsets, offsets[1:]))


def _sum_into(sums: dict[T, Cell], key: T, cell: Cell) -> None:
    total = sums.get(key)
    sums[key] = cell if total is None else _plus(total, cell)  # sums are never changed in place: they share cells


def _plus(row: Cell, cell: Cell) -> Cell:
    return [row[0] + cell[0], row[1] + cell[1], row[2] + cell[2], row[3] + cell[3]]


def day_row(cells: list[int]) -> list[int]:
    """A pair's day row from its flat cells (minute, n, ok, failed, total)*: the totals, then the cells."""
    return [sum(cells[1::5]), sum(cells[2::5]), sum(cells[3::5]), sum(cells[4::5]), *cells]


def _merged_cells(*flats: list[int]) -> list[int]:
    """Flat cells with each minute once, in minute order: the one form a day row is stored in."""
    by_minute: dict[int, Cell] = {}
    for flat in flats:
        for i in range(0, len(flat), 5):
            _sum_into(by_minute, flat[i], flat[i + 1:i + 5])
    return [x for minute in sorted(by_minute) for x in (minute, *by_minute[minute])]


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
        self._rows: dict[bytes, list[int]] = {}
        self._ints: dict[bytes, int] = {}  # last-active minutes, plan index rows
        self._dirty_ints: set[bytes] = set()
        self._pairs: dict[Pair, PairKeys] = {}
        self._cells: dict[tuple[Pair, int], Cell] = {}  # (party, plan), minute: outcomes not flushed
        self._pair_max: dict[Pair, int] = {}  # (party, plan): latest minute not flushed
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
        """Write the summed outcomes to their pair days and shared rows; move members' last minutes."""
        latest = self.latest
        keys_of = {pair: self._pairs.get(pair) or self._pair_keys(*pair) for pair in self._pair_max}
        pair_lasts = {pair: self._last(keys.pair_last) for pair, keys in keys_of.items()}
        self._flush_days(keys_of, pair_lasts)
        members = self._move_members(keys_of, pair_lasts)
        scopes: dict[Scope, tuple[bytes, ...]] = {}  # a plan's row prefixes, and (None) the overall ones
        for keys in keys_of.values():
            scopes[None], scopes[keys.plan] = keys.shared_counters
        for index, level in enumerate(self._shared_levels(members)):
            after = latest // SHARED_SIZES[index]  # nothing lies after the latest minute folded
            for (scope, bucket), row in level.items():
                self._bump(scopes[scope][index] + bucket.to_bytes(8, "big"), row, bucket > after)
        self.latest = max(latest, *self._pair_max.values())
        self._cells.clear()
        self._pair_max.clear()

    def _flush_days(self, keys_of: dict[Pair, PairKeys], pair_lasts: dict[Pair, int]) -> None:
        """One row per pair and day. A day after the pair's last active one cannot exist yet: no read."""
        days: dict[tuple[Pair, int], list[int]] = {}
        for (pair, minute), cell in self._cells.items():
            day, at = divmod(minute, DAY)
            flat = days.get((pair, day))
            if flat is None:
                days[(pair, day)] = [at, *cell]
            else:
                flat += (at, *cell)
        rows = self._rows
        for (pair, day), flat in days.items():
            key = keys_of[pair].pair_days + day.to_bytes(8, "big")
            last = pair_lasts[pair]
            if last >= 0 and day <= last // DAY:
                raw = self.store.get(key)
                flat = _merged_cells(day_of.decode(raw)[4:], flat) if raw else _merged_cells(flat)
            elif len(flat) > 5 and not all(map(lt, flat[:-5:5], flat[5::5])):
                flat = _merged_cells(flat)  # out of minute order within this commit
            rows[key] = day_row(flat)

    def _move_members(self, keys_of: dict[Pair, PairKeys], pair_lasts: dict[Pair, int]) -> dict[Scope, Moves]:
        """Move members' last active minutes forward; per scope, the minutes they left and moved to.

        Users are the overall scope's members, user+plan pairs their plan's. A pair's first
        outcome also indexes its plan (overall, and under the user).
        """
        moves: dict[Scope, tuple[list[int], list[int]]] = {}
        users: dict[str, tuple[int, PairKeys]] = {}
        for pair, minute in self._pair_max.items():
            keys, last = keys_of[pair], pair_lasts[pair]
            if minute > last:
                self._set_last(keys.pair_last, minute)
                olds, news = moves.setdefault(keys.plan, ([], []))
                olds.append(last)
                news.append(minute)
                if last < 0:
                    for row in keys.index_rows:
                        self._ints[row] = 1
                        self._dirty_ints.add(row)
            if users.get(pair[0], (-1,))[0] < minute:
                users[pair[0]] = (minute, keys)
        olds, news = moves.setdefault(None, ([], []))
        for minute, keys in users.values():
            last = self._last(keys.user_last)
            if minute > last:
                self._set_last(keys.user_last, minute)
                olds.append(last)
                news.append(minute)
        return {scope: ([old for old in olds if old >= 0], news) for scope, (olds, news) in moves.items()}

    def _shared_levels(self, members: dict[Scope, Moves]) -> Iterator[dict[tuple[Scope, int], list[int]]]:
        """The rows per plan (and overall: None) and bucket, level by level: counts rolled up from the
        level below, and the net number of members that moved into (or out of) each bucket."""
        level: dict[tuple[Scope, int], Cell] = {}
        for ((_, plan), minute), cell in self._cells.items():
            _sum_into(level, (plan, minute), cell)
        for (_, minute), cell in list(level.items()):  # overall: the sum over plans
            _sum_into(level, (None, minute), cell)
        yield _with_members(level, members, 1)
        for below, size in itertools.pairwise(SHARED_SIZES):
            rolled: dict[tuple[Scope, int], Cell] = {}
            for (scope, bucket), cell in level.items():
                _sum_into(rolled, (scope, bucket * below // size), cell)
            level = rolled
            yield _with_members(level, members, size)

    def _bump(self, key: bytes, row: list[int], fresh: bool) -> None:
        """Add ``row`` to the row at ``key``; ``fresh``: that row is known not to exist in the store."""
        if fresh:
            self._rows[key] = row
            return
        raw = self.store.get(key)
        self._rows[key] = [a + b for a, b in zip(rows_of.decode(raw), row, strict=True)] if raw else row

    def _set_last(self, key: bytes, minute: int) -> None:
        self._ints[key] = minute
        self._dirty_ints.add(key)

    def _last(self, key: bytes) -> int:
        """A member's last active minute; -1 if never, or before the horizon (its rows are pruned)."""
        value = self._ints.get(key)
        if value is None:
            raw = self.store.get(key)
            value = self._ints[key] = as_int.decode(raw) if raw else -1
        return value if value >= self.horizon else -1

    def _pair_keys(self, party: str, plan: str) -> PairKeys:
        if len(self._pairs) > 100_000:
            self._pairs.clear()  # bound memory; rebuilding one costs a few concatenations
        keys = self._pairs[(party, plan)] = PairKeys.of(party, plan)
        return keys

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
        self.store.write(puts, deletes)
        self._dirty_ints.clear()
        self.pending = 0
        for key in deletes:
            ints.pop(key, None)
        rows.clear()
        if len(ints) > INTS_CACHED:
            ints.clear()

    @property
    def needs_commit(self) -> bool:
        """Folded records not yet written, or pruning to do."""
        return bool(self.pending) or (self.pruner is not None and self.pruner.due())


def _with_members(level: dict[tuple[Scope, int], Cell], members: dict[Scope, Moves],
                  size: int) -> dict[tuple[Scope, int], list[int]]:
    """``level``'s counts as rows with a fifth number: members whose last minute moved into the bucket,
    less those that moved out of it (a move inside one bucket nets to nothing; counted in C)."""
    out = {key: [*cell, 0] for key, cell in level.items()}
    for scope, (olds, news) in members.items():
        net = Counter(map(floordiv, news, repeat(size)))
        net.subtract(Counter(map(floordiv, olds, repeat(size))))
        for bucket, moved in net.items():
            if moved:
                row = out.get((scope, bucket))
                if row is None:
                    out[(scope, bucket)] = [0, 0, 0, 0, moved]
                else:
                    row[4] += moved
    return out
