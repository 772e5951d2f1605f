"""The fold behind the window metrics: outcomes into time-bucket rows, committed atomically.

`apply` only sums outcomes per user+plan and day, and per plan and minute, in memory;
`commit` writes the first as rows, rolls the second up into the overall and plan rows of every level, moves
members' last-active minutes (and the member counts of those rows with them), and writes
the changed rows, a bounded slice of retention's pruning and the log position they
reflect in one RocksDB batch. A crash loses only what was not committed, and the log has
it. A row for a bucket later than the latest minute folded (or than a pair's last active
minute) cannot exist yet, so a forward-moving stream folds without reading the store.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from decimal import Decimal
from itertools import repeat
from operator import lt

import msgspec

from pipeline.events import Recorded
from pipeline.log.store import Store
from projections import retention
from projections.keys import CONFIRMED, CONFIRMED_END, DAY, SHARED_SIZES, PairKeys, confirmed_key
from projections.sums import Moves, Pair, Partial, Scope, Sums, add_moves, add_rows, day_row, merged_cells

FORMAT = b"windows/v5"  # v5: confirmed payment ids (a payment counts once)
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


def _u64(raw: bytes | None) -> int:
    return int.from_bytes(raw, "big") if raw else 0


def counted_confirmations(store: Store, ids: list[str]) -> set[str]:
    """The payments among ``ids`` whose confirmation a commit to ``store`` counted (one multi-get)."""
    return {i for i, raw in zip(ids, store.get_many(list(map(confirmed_key, ids))), strict=True) if raw}


class WindowFold:
    """Folds outcomes into the projection store. ``retention_days`` with ``clock`` turns on pruning."""

    def __init__(
        self, store: Store, *, retention_days: int | None = None, clock: Callable[[], datetime] | None = None
    ) -> None:
        self.store = store
        known = functools.partial(counted_confirmations, store)
        self.sums = Sums(_u64(store.get(POSITION)), _u64(store.get(HORIZON)), known=known)
        self.latest = _u64(store.get(LATEST)) - 1  # the latest minute folded (-1: none); no row lies after it
        self._rows: dict[bytes, list[int]] = {}
        self._ints: dict[bytes, int] = {}  # members' last active minutes
        self._dirty_ints: set[bytes] = set()
        self._dirty_index: set[bytes] = set()  # plan index rows to write
        self._pairs: dict[Pair, PairKeys] = {}
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
        """Fold records: outcomes are summed in memory (`Sums`) until `commit`."""
        self.sums.apply(records)

    def absorb(self, partial: Partial) -> None:
        """Fold a chunk summed elsewhere (the replay's reader process), as `apply` would have."""
        self.sums.absorb(partial)

    @property
    def position(self) -> int:
        """One past the last record folded (committed or not)."""
        return self.sums.position

    @position.setter
    def position(self, value: int) -> None:
        self.sums.position = value

    @property
    def pending(self) -> int:
        """Records folded since the last commit."""
        return self.sums.pending

    @property
    def unreadable(self) -> int:
        """Records folded by this process that were not events."""
        return self.sums.unreadable

    @property
    def horizon(self) -> int:
        """Outcomes before this minute are not folded (retention)."""
        return self.sums.horizon

    @horizon.setter
    def horizon(self, value: int) -> None:
        self.sums.horizon = value

    def _flush(self) -> None:
        """Write the summed outcomes to their pair days and shared rows; move members' last minutes."""
        latest = self.latest
        keys_of = {pair: self._pairs.get(pair) or self._pair_keys(*pair) for pair in self.sums.pair_max}
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
        self.latest = max(latest, *self.sums.pair_max.values())

    def _flush_days(self, keys_of: dict[Pair, PairKeys], pair_lasts: dict[Pair, int]) -> None:
        """One row per pair and day. A day after the pair's last active one cannot exist yet: no read."""
        rows, get = self._rows, self.store.get
        for (pair, day), row in self.sums.days.items():
            key = keys_of[pair].pair_days + day.to_bytes(8, "big")
            last = pair_lasts[pair]
            if last >= 0 and day <= last // DAY:
                raw = get(key)
                row = day_row(merged_cells(day_of.decode(raw)[4:], row[4:]) if raw else merged_cells(row[4:]))
            elif len(row) > 9 and not all(map(lt, row[4:-5:5], row[9::5])):
                row = day_row(merged_cells(row[4:]))  # a minute twice, or out of order, within this commit
            rows[key] = row

    def _move_members(self, keys_of: dict[Pair, PairKeys], pair_lasts: dict[Pair, int]) -> dict[Scope, Moves]:
        """Move members' last active minutes forward; per scope, the minutes they left and moved to.

        Users are the overall scope's members, user+plan pairs their plan's. A pair's first
        outcome also indexes its plan (overall, and under the user).
        """
        ints, dirty, index = self._ints, self._dirty_ints, self._dirty_index
        moves: dict[Scope, Moves] = {}
        users: dict[str, tuple[int, bytes]] = {}  # party: latest minute, its last-minute key
        for pair, minute in self.sums.pair_max.items():
            keys, last = keys_of[pair], pair_lasts[pair]
            if minute > last:
                ints[keys.pair_last] = minute
                dirty.add(keys.pair_last)
                olds, news = moves.get(keys.plan) or moves.setdefault(keys.plan, ([], []))
                olds.append(last)
                news.append(minute)
                if last < 0:
                    index.update(keys.index_rows)
            user = users.get(pair[0])
            if user is None or user[0] < minute:
                users[pair[0]] = (minute, keys.user_last)
        olds, news = moves.setdefault(None, ([], []))
        for minute, key in users.values():
            last = self._last(key)
            if minute > last:
                ints[key] = minute
                dirty.add(key)
                olds.append(last)
                news.append(minute)
        return {scope: ([old for old in olds if old >= 0], news) for scope, (olds, news) in moves.items()}

    def _shared_levels(self, members: dict[Scope, Moves]) -> Iterator[dict[tuple[Scope, int], list[int]]]:
        """The rows per plan (and overall: None) and bucket, level by level, each rolled up from the one
        below: counts, and the net number of members whose last minute moved into the bucket (or out)."""
        level: dict[tuple[Scope, int], list[int]] = {key: [*cell, 0] for key, cell in self.sums.minutes.items()}
        for (_, minute), cell in self.sums.minutes.items():  # overall: the sum over plans
            row = level.get((None, minute))
            level[(None, minute)] = [*cell, 0] if row is None else add_rows(row, [*cell, 0])
        add_moves(level, members)
        yield level
        for below, size in itertools.pairwise(SHARED_SIZES):
            rolled: dict[tuple[Scope, int], list[int]] = {}
            for (scope, bucket), row in level.items():
                key = (scope, bucket * below // size)
                total = rolled.get(key)
                rolled[key] = row if total is None else add_rows(total, row)  # never in place: rows are shared
            level = rolled
            yield level

    def _bump(self, key: bytes, row: list[int], fresh: bool) -> None:
        """Add ``row`` to the row at ``key``; ``fresh``: that row is known not to exist in the store."""
        if fresh:
            self._rows[key] = row
            return
        raw = self.store.get(key)
        self._rows[key] = [a + b for a, b in zip(rows_of.decode(raw), row, strict=True)] if raw else row

    def _last(self, key: bytes) -> int:
        """A member's last active minute; -1 if never, or before the horizon (its rows are pruned)."""
        value = self._ints.get(key)
        if value is None:
            raw = self.store.get(key)
            value = self._ints[key] = as_int.decode(raw) if raw else -1
        return value if value >= self.horizon else -1

    @property
    def holds_confirmations(self) -> bool:
        """Whether any commit wrote a confirmed payment id (the replay's reader then reads them too)."""
        return self.store.last_key(CONFIRMED, CONFIRMED_END) is not None

    def _pair_keys(self, party: str, plan: str) -> PairKeys:
        if len(self._pairs) > 100_000:
            self._pairs.clear()  # bound memory; rebuilding one costs a few concatenations
        keys = self._pairs[(party, plan)] = PairKeys.of(party, plan)
        return keys

    def commit(self, *, behind: bool = False, extra: Iterable[tuple[bytes, bytes]] = ()) -> None:
        """Write every change, a bounded slice of pruning, and the position, in one atomic batch.

        ``behind``: the store writes it in a thread while the caller folds on (see `Store.write`).
        ``extra``: more rows for the same batch (the whole-topic view's partition offsets).
        """
        if self.sums.pair_max:
            self._flush()
        deletes: set[bytes] = set()
        if self.pruner is not None:
            cutoff = self.pruner.cutoff()
            self.horizon = max(self.horizon, cutoff)
            deletes = self.pruner.step(cutoff, self._ints, [*self._rows, *self._dirty_ints])
            for payment in [p for p, minute in self.sums.confirmed.items() if minute < self.horizon]:
                del self.sums.confirmed[payment]  # summed under an older horizon: as old as its rows
        rows, ints = self._rows, self._ints
        for key in deletes:
            rows.pop(key, None)
        puts = list(zip(rows, map(_enc, rows.values()), strict=True))  # no Python loop over a chunk's rows
        lasts = list(self._dirty_ints - deletes)
        puts += zip(lasts, map(_enc, map(ints.__getitem__, lasts)), strict=True)
        puts += zip(self._dirty_index, repeat(b""))  # an index row is its key
        confirmed = self.sums.confirmed
        puts += zip(map(confirmed_key, confirmed), map(_enc, confirmed.values()), strict=True)
        puts += [
            (POSITION, self.position.to_bytes(8, "big")),
            (HORIZON, self.horizon.to_bytes(8, "big")),
            (LATEST, (self.latest + 1).to_bytes(8, "big")),
            (FORMAT_KEY, FORMAT),
        ]
        if self.pruner is not None:
            puts += self.pruner.progress()
        puts += extra
        self.store.write(puts, deletes, behind=behind)
        self._dirty_ints.clear()
        self._dirty_index.clear()
        self.sums.clear()
        for key in deletes:
            ints.pop(key, None)
        rows.clear()
        if len(ints) > INTS_CACHED:
            ints.clear()

    @property
    def needs_commit(self) -> bool:
        """Folded records not yet written, or pruning to do."""
        return bool(self.pending) or (self.pruner is not None and self.pruner.due())
