"""The pure half of the window fold: outcomes summed in memory, nothing read or written.

`Sums` takes records in log order and keeps, until the fold commits them, each user+plan
pair's day rows (day totals, then one cell per active minute), each plan's minute sums and
each pair's latest minute. Summing is associative, so a chunk can be summed anywhere (in
this process, or in the replay's reader process, `projections.presum`) and handed over as
a `Partial`.

A payment counts once (`pipeline.events.outcome`: a confirmation is final). `Sums`
remembers the ids it confirmed since the last commit (`confirmed`, written by the fold as
rows); ``known`` answers for the ones before. The row arithmetic the fold writes with
(cells, day rows, members' moves) is here too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Container, Iterable
from itertools import compress
from operator import attrgetter, lt

import msgspec

from pipeline.events import PaymentConfirmed, PaymentFailed, Recorded, Unreadable, outcome
from projections.keys import DAY

Cell = list[int]  # [payments, confirmed, failed, confirmed amount in UNITs]
Pair = tuple[str, str]  # (party, plan)
Scope = str | None  # a plan, or None: overall
Moves = tuple[list[int], list[int]]  # members' last active minutes before (where they had one) and after
_offset_of = attrgetter("offset")
_event_of = attrgetter("event")
_id_of = attrgetter("payment_id")
#: The ids among these that were confirmed before this `Sums` began (committed by the fold).
Known = Callable[[list[str]], Container[str]]


def nothing_known(ids: list[str]) -> Container[str]:
    return ()


_OUTCOME_TYPES = frozenset({PaymentConfirmed, PaymentFailed})


def _rising(records: list[Recorded], position: int) -> bool:
    """Every record new and in offset order: the whole list is summed as one (checked in C)."""
    offsets = list(map(_offset_of, records))
    return offsets[0] >= position and all(map(lt, offsets, offsets[1:]))


class Partial(msgspec.Struct, frozen=True, array_like=True, gc=False):
    """A chunk's `Sums`, as the replay's reader process hands them over."""

    position: int
    records: int
    unreadable: int
    days: list[tuple[str, str, int, list[int]]]  # party, plan, day, row
    minutes: list[tuple[str, int, Cell]]  # plan, minute, cell
    pair_max: list[tuple[str, str, int]]  # party, plan, latest minute
    confirmed: list[tuple[str, int]]  # payment id, the minute its confirmation was summed at


class Sums:
    """Outcomes since the last commit, summed per pair and day, and per plan and minute."""

    def __init__(self, position: int, horizon: int, known: Known = nothing_known) -> None:
        self.position = position  # one past the last record summed
        self.horizon = horizon  # outcomes before this minute are not summed (retention)
        self.pending = 0  # records summed since the last commit
        self.unreadable = 0
        self.days: dict[tuple[Pair, int], list[int]] = {}  # (party, plan), day: its row
        self.minutes: dict[tuple[str, int], Cell] = {}  # plan, minute
        self.pair_max: dict[Pair, int] = {}  # (party, plan): latest minute
        self.confirmed: dict[str, int] = {}  # payment id: the minute its confirmation was summed at
        self.known = known

    def apply(self, records: Iterable[Recorded]) -> None:
        """Sum records; a record before the position (redelivered) is skipped."""
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
        self._sum(list(compress(events, map(_OUTCOME_TYPES.__contains__, map(type, events)))))  # in C

    def _sum(self, outcomes: list[PaymentConfirmed | PaymentFailed]) -> None:
        """Sum each outcome into its pair's day row and its plan's minute: the hot loop of a replay."""
        if not outcomes:
            return
        days, minutes, pair_max, horizon = self.days, self.minutes, self.pair_max, self.horizon
        confirmed, known = self.confirmed, self.known(list(map(_id_of, outcomes)))
        for event in outcomes:
            payment = event.payment_id
            now = outcome(event, confirmed=payment in confirmed or payment in known)
            if now == "confirmed":
                ok, failed, units = 1, 0, int(event.amount.scaleb(10))
            elif now == "failed":
                ok, failed, units = 0, 1, 0
            else:
                continue  # confirmed already (final), or a failed attempt to be retried: not an outcome
            minute = int(event.at.timestamp()) // 60
            if minute < horizon:
                continue  # older than the retention window
            if ok:
                confirmed[payment] = minute
            plan = event.plan
            pair = (event.party, plan)
            day = minute // DAY
            row = days.get((pair, day))
            if row is None:
                days[(pair, day)] = [1, ok, failed, units, minute - day * DAY, 1, ok, failed, units]
            else:  # the day's totals, and one more cell (the same minute twice is merged in the flush)
                row[0] += 1
                row[1] += ok
                row[2] += failed
                row[3] += units
                row += (minute - day * DAY, 1, ok, failed, units)
            cell = minutes.get((plan, minute))
            if cell is None:
                minutes[(plan, minute)] = [1, ok, failed, units]
            else:
                cell[0] += 1
                cell[1] += ok
                cell[2] += failed
                cell[3] += units
            if pair_max.get(pair, -1) < minute:
                pair_max[pair] = minute

    def partial(self) -> Partial:
        """What was summed since the last commit, to hand over (then `clear`)."""
        return Partial(
            position=self.position,
            records=self.pending,
            unreadable=self.unreadable,
            days=[(party, plan, day, row) for ((party, plan), day), row in self.days.items()],
            minutes=[(plan, minute, cell) for (plan, minute), cell in self.minutes.items()],
            pair_max=[(party, plan, minute) for (party, plan), minute in self.pair_max.items()],
            confirmed=list(self.confirmed.items()),
        )

    def absorb(self, partial: Partial) -> None:
        """Take over a chunk summed elsewhere, from where this one stands (nothing summed since)."""
        assert not self.pair_max and not self.minutes and not self.confirmed, "absorb only between commits"
        self.position = partial.position
        self.pending += partial.records
        self.unreadable += partial.unreadable
        self.days = {((party, plan), day): row for party, plan, day, row in partial.days}
        self.minutes = {(plan, minute): cell for plan, minute, cell in partial.minutes}
        self.pair_max = {(party, plan): minute for party, plan, minute in partial.pair_max}
        self.confirmed = dict(partial.confirmed)

    def clear(self) -> None:
        """Forget the sums (committed); the position stays."""
        self.days.clear()
        self.minutes.clear()
        self.pair_max.clear()
        self.confirmed.clear()
        self.pending = 0


def add_cells(a: Cell, b: Cell) -> Cell:
    return [a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3]]


def add_rows(a: list[int], b: list[int]) -> list[int]:
    """Two shared rows (a cell and its members) added up, in a new list: rows are shared, never changed."""
    return [a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3], a[4] + b[4]]


def day_row(cells: list[int]) -> list[int]:
    """A pair's day row from its flat cells (minute, n, ok, failed, total)*: the totals, then the cells."""
    return [sum(cells[1::5]), sum(cells[2::5]), sum(cells[3::5]), sum(cells[4::5]), *cells]


def merged_cells(*flats: list[int]) -> list[int]:
    """Flat cells with each minute once, in minute order: the one form a day row is stored in."""
    by_minute: dict[int, Cell] = {}
    for flat in flats:
        for i in range(0, len(flat), 5):
            total, cell = by_minute.get(flat[i]), flat[i + 1 : i + 5]
            by_minute[flat[i]] = cell if total is None else add_cells(total, cell)
    return [x for minute in sorted(by_minute) for x in (minute, *by_minute[minute])]


def add_moves(level: dict[tuple[Scope, int], list[int]], members: dict[Scope, Moves]) -> None:
    """Add to each minute's row the members whose last minute moved into it, less those that moved
    out of it (counted in C); a row no outcome of this commit touched gets one of its own."""
    for scope, (olds, news) in members.items():
        net = Counter(news)
        net.subtract(Counter(olds))
        for minute, moved in net.items():
            if moved:
                row = level.get((scope, minute))
                if row is None:
                    level[(scope, minute)] = [0, 0, 0, 0, moved]
                else:
                    row[4] += moved
