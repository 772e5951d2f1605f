"""Poison records in a real log: none stops the stream for the records after it, none loses a stored
event, and the processor's book and the window projection step over them."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncGenerator
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipeline.events import AnyEvent, PaymentConfirmed, PaymentFailed, Unreadable, decode, encode
from pipeline.log.embedded import EmbeddedLog, offset_key
from pipeline.log.store import Store
from pipeline.processor.book import Settled
from pipeline.processor.runner import Processor
from projections.replay import rebuild
from projections.windows import WINDOWS
from tests import bad_inputs
from tests.bad_records import BAD, ENTRY
from tests.fakes import FakeLedger
from tests.log_contract import T0, event

# -- in a real log -------------------------------------------------------------------------

SMALL_BAD = [raw for _, raw, _ in BAD if len(raw) < 10_000]
foreign_keys = st.one_of(
    st.binary(min_size=1, max_size=7),  # shorter than an offset: sorts among or before them
    st.builds(lambda o, tail: offset_key(o) + tail, st.integers(0, 40), st.binary(min_size=1, max_size=3)),
    st.binary(min_size=9, max_size=16),
)
layouts = st.lists(
    st.one_of(
        st.tuples(st.just("good"), st.integers(0, 10**6)),
        st.tuples(st.just("bad"), st.integers(0, len(SMALL_BAD) - 1)),
        st.tuples(st.just("foreign"), foreign_keys),
    ),
    max_size=40,
)


def write_log(path: Path, layout: list[tuple[str, Any]]) -> tuple[dict[int, AnyEvent], set[int], set[bytes]]:
    """Write ``layout`` straight into the store; return the good events, bad offsets and foreign keys."""
    good: dict[int, AnyEvent] = {}
    bad: set[int] = set()
    foreign: set[bytes] = set()
    pairs: list[tuple[bytes, bytes]] = []
    for kind, x in layout:
        if kind == "foreign":
            foreign.add(x)
            pairs.append((x, b"not ours"))
            continue
        offset = len(good) + len(bad)
        if kind == "good":
            good[offset] = event(x) if isinstance(x, int) else x
        else:
            bad.add(offset)
        pairs.append((offset_key(offset), encode(good[offset]) if kind == "good" else SMALL_BAD[x]))
    store = Store.open(path)
    store.write(pairs)
    store.close()
    return good, bad, foreign


@settings(max_examples=40, deadline=None)
@given(layouts, st.integers(1, 7), st.integers(0, 45), st.none() | st.integers(0, 50))
@example([("foreign", b"\x00")], 1, 0, None)  # sorts before offset 0: a read from 0 reports it first
def test_a_log_with_poison_records_yields_every_good_event_once(
    layout: list[tuple[str, Any]], size: int, start: int, stop: int | None
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        good, bad, foreign = write_log(Path(tmp) / "log", layout)
        bad_inputs.tried(ENTRY, len(bad) + len(foreign))
        asyncio.run(_check_reads(Path(tmp) / "log", good, bad, foreign, (size, start, stop)))


async def _check_reads(
    path: Path, good: dict[int, AnyEvent], bad: set[int], foreign: set[bytes], read: tuple[int, int, int | None]
) -> None:
    size, start, stop = read
    end = len(good) + len(bad) if stop is None else stop
    log = EmbeddedLog.open(path, sync=False)
    batches = [b async for b in log.read_batches(start, stop=stop, size=size)]
    got = [r for b in batches for r in b]
    assert all(0 < len(b) <= size for b in batches)
    assert [r.offset for r in got] == sorted(r.offset for r in got)
    events = {r.offset: r.event for r in got if not isinstance(r.event, Unreadable)}
    assert events == {o: e for o, e in good.items() if start <= o < end}  # none lost, none twice
    unreadable = [(r.offset, r.event) for r in got if isinstance(r.event, Unreadable)]
    located = sorted(o for o, e in unreadable if "foreign key" not in e.reason)
    assert located == sorted(o for o in bad if start <= o < end)
    assert all(f"offset {o}" in e.reason for o, e in unreadable)
    low, high = offset_key(start) if start else b"", None if stop is None else offset_key(stop)
    reported = [o for o, e in unreadable if "foreign key" in e.reason]
    assert len(reported) == len({k for k in foreign if low <= k and (high is None or k < high)})
    assert await log.last_offset() == (len(good) + len(bad) - 1 if good or bad else None)
    offset = await log.append(event(7))  # the log goes on after the poison, at the right place
    assert offset == len(good) + len(bad)
    assert [r.event async for r in log.read(offset) if not isinstance(r.event, Unreadable)] == [event(7)]
    await log.close()


def outcomes() -> list[AnyEvent]:
    """Ten requests, then a confirmation or a final failure for most of them."""
    out: list[AnyEvent] = [event(i) for i in range(10)]
    for i in range(8):
        request = event(i)
        common: dict[str, Any] = {
            "payment_id": request.payment_id,
            "at": T0 + timedelta(minutes=1),
            "party": request.party,
            "plan": request.plan,
            "amount": request.amount,
        }
        out.append(
            PaymentConfirmed(**common, update_id=f"u{i}")
            if i % 3
            else PaymentFailed(**common, attempt=1, code="X", message="no", retryable=False, final=True)
        )
    return out


def poisoned(events: list[AnyEvent]) -> list[tuple[str, Any]]:
    """The same events with every small bad record and a few foreign keys between them."""
    layout: list[tuple[str, Any]] = [("foreign", b"\x00")]
    for i, e in enumerate(events):
        layout += [("good", e), ("bad", i % len(SMALL_BAD))]
    return [*layout, *(("bad", i) for i in range(len(SMALL_BAD))), ("foreign", b"zz-foreign")]


async def fold_everything(path: Path, layout: list[tuple[str, Any]]) -> tuple[dict[str, Any], list[Any], int]:
    good, bad, foreign = write_log(path / "log", layout)
    log = EmbeddedLog.open(path / "log", sync=False)
    processor = Processor(log, FakeLedger(), clock=lambda: T0)
    await processor.load()  # folds only: nothing is submitted
    assert processor.position == len(good) + len(bad)  # past the poison, never back to 0
    assert bad <= set(processor.book.unreadable)
    # It reads up to the last offset: the foreign key before offset 0 is seen, the one after the end is not.
    assert len(processor.book.unreadable) == len(bad) + (b"\x00" in foreign)
    projection = await rebuild(log, path / "windows")
    # The fold reads outcomes only: a bad request whose envelope and type are sound is skipped
    # with the other requests (the processor's book reports it); everything else it counts.
    assert projection.unreadable == sum(
        isinstance(decode(raw, outcomes_only=True), Unreadable)
        for kind, x in layout
        if kind == "bad"
        for raw in [SMALL_BAD[x]]
    )
    assert not bad or 0 < projection.unreadable < len(bad)
    metrics = [projection.metrics(w, T0 + timedelta(minutes=5)) for w in WINDOWS]
    projection.store.close()
    await log.close()
    # Every payment of the clean events; a confirmed one is kept as its update id only.
    ids = {e.payment_id for kind, e in layout if kind == "good"}
    book = {
        pid: (s.status, s.update_id if isinstance(s, Settled) else s.request)
        for pid in ids
        if (s := processor.book.get(pid)) is not None
    }
    return book, metrics, len(bad) + len(foreign)


def test_the_processor_and_the_projection_step_over_poison_records(tmp_path: Path) -> None:
    clean = [("good", e) for e in outcomes()]
    (tmp_path / "clean").mkdir()
    (tmp_path / "poisoned").mkdir()
    want_book, want_metrics, _ = asyncio.run(fold_everything(tmp_path / "clean", clean))
    book, metrics, tried = asyncio.run(fold_everything(tmp_path / "poisoned", poisoned(outcomes())))
    bad_inputs.tried(ENTRY, tried)
    assert book == want_book and metrics == want_metrics
    assert {status for status, _ in book.values()} == {"confirmed", "failed", "requested"}


async def test_follow_goes_on_past_poison_records(tmp_path: Path) -> None:
    good, bad, foreign = write_log(tmp_path / "log", poisoned(outcomes()))
    bad_inputs.tried(ENTRY, len(bad) + len(foreign))
    log = EmbeddedLog.open(tmp_path / "log", sync=False)
    follower = log.follow(0)
    assert isinstance(follower, AsyncGenerator)  # an async generator, closed at the end
    async with asyncio.timeout(30):  # a guard against a follower that lost its place, not a timing check
        seen = [await anext(follower) for _ in range(len(good) + len(bad) + len(foreign))]
        new = await log.append(event(99))
        assert (await anext(follower)).offset == new
    assert {r.offset: r.event for r in seen if not isinstance(r.event, Unreadable)} == good
    await follower.aclose()
    await log.close()
