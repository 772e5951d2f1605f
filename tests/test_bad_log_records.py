"""Bad records in the event log (issue #9, the log's entry point).

Each bad record comes back as `Unreadable` with one line saying what is wrong and at which
offset; none raises, none stops the stream for the records after it, none loses a stored
event; the processor's book and the window projection step over them. Every bad input
tried is counted in the session-end table (`tests/bad_inputs.py`).
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pipeline.events import (
    AnyEvent,
    PaymentConfirmed,
    PaymentFailed,
    PaymentRequested,
    Skipped,
    Unreadable,
    decode,
    decode_all,
    decode_at,
    decode_outcomes,
    encode,
    encode_json,
    to_builtins,
)
from pipeline.log.embedded import EmbeddedLog, offset_key
from pipeline.log.store import Store
from pipeline.processor.book import Settled
from pipeline.processor.runner import Processor
from projections.replay import rebuild
from projections.windows import WINDOWS
from tests import bad_inputs
from tests.fakes import FakeLedger
from tests.log_contract import T0, event

ENTRY = "event log records"
GOOD = encode(event(1))
FIELDS = to_builtins(event(1))
REASON_LIMIT = 400  # a reason is one readable line, not a dump of the record


def record(v: Any = 1, **changes: Any) -> bytes:
    """A msgpack envelope of event(1) with some fields changed (None removes a field)."""
    fields = {k: v for k, v in {**FIELDS, **changes}.items() if v is not None}
    return msgspec.msgpack.encode({"v": v, "event": fields})


def json_record(**changes: Any) -> bytes:
    return msgspec.json.encode({"v": 1, "event": {**FIELDS, **changes}})


BAD: list[tuple[str, bytes, str]] = [
    ("empty record", b"", "truncated"),
    ("a byte msgpack never uses", b"\xc1", "not a billing event"),
    ("plain text", b"hello, world", "not a billing event"),
    ("foreign JSON object", b'{"hello": "world"}', "not a billing event"),
    ("JSON cut short", b'{"v":1,"event":', "not a billing event"),
    ("msgpack cut short", GOOD[: len(GOOD) // 2], "truncated"),
    ("msgpack missing its last byte", GOOD[:-1], "truncated"),
    ("trailing bytes after a record", GOOD + b"\x00", "not a billing event"),
    ("envelope is a list", msgspec.msgpack.encode([1, FIELDS]), "Expected `object`"),
    ("event is null", msgspec.msgpack.encode({"v": 1, "event": None}), "not a billing event"),
    ("no event at all", msgspec.msgpack.encode({"v": 1}), "missing required field `event`"),
    ("unknown event type", record(type="payment.refunded"), "unknown event type"),
    ("future version, unknown type", record(v=2, type="payment.refunded"), "schema version 2"),
    ("future version, retyped field", record(v=7, amount={"value": "2.5"}), "schema version 7"),
    ("amount is a bool", record(amount=True), "$.event.amount"),
    ("payment_id is a number", record(payment_id=3), "$.event.payment_id"),
    ("period index is text", record(period={**FIELDS["period"], "index": "one"}), "$.event.period.index"),
    ("time is a number in JSON", json_record(at=12), "$.event.at"),
    ("time without a zone", json_record(at="2026-11-24T00:00:00"), "timezone"),
    ("reason outside its values", record(reason="sometimes"), "$.event.reason"),
    ("required field missing", record(party=None), "missing required field `party`"),
    ("amount NaN", record(amount="NaN"), "amount NaN"),
    ("amount signalling NaN", record(amount="sNaN"), "amount sNaN"),
    ("amount infinite", record(amount="-Infinity"), "amount -Infinity"),
    ("amount negative", record(amount="-2.5"), "amount -2.5"),
    ("amount beyond Canton's range", record(amount="1e30"), "amount 1E+30"),
    ("amount exponent overflowing", record(amount="1e999999999"), "amount"),
    ("huge integer in JSON", json_record().replace(b'"index":1', b'"index":' + b"9" * 5000), "out of range"),
    ("array header claiming 4 G items", b"\xdd\xff\xff\xff\xff", "not a billing event"),
    ("deeply nested arrays", b"\x91" * 100_000 + b"\x00", "not a billing event"),
    ("deeply nested JSON", b'{"v":' + b"[" * 100_000 + b"]" * 100_000 + b"}", "not a billing event"),
    ("huge unknown tag", record(type="x" * 1_000_000), "unknown event type"),
    ("huge bad literal with newlines", record(reason="a\nb" * 300_000), "$.event.reason"),
]


@pytest.mark.parametrize(("name", "raw", "fragment"), BAD, ids=[name for name, _, _ in BAD])
def test_each_bad_record_is_unreadable_with_a_located_one_line_reason(name: str, raw: bytes, fragment: str) -> None:
    result = decode_at(raw, 42)
    bad_inputs.tried(ENTRY)
    assert isinstance(result, Unreadable), name
    assert result.reason.startswith("record at offset 42: ") and fragment in result.reason, result.reason
    assert "\n" not in result.reason and len(result.reason) <= REASON_LIMIT
    assert result.raw == raw  # kept whole, to be looked at or repaired


def test_a_bad_record_in_a_chunk_leaves_its_neighbours_decoded() -> None:
    for _, raw, _ in BAD:
        got = decode_all([encode(event(0)), raw, encode(event(2))], 10)
        bad_inputs.tried(ENTRY)
        assert got[0] == event(0) and got[2] == event(2)
        assert isinstance(got[1], Unreadable) and "offset 11" in got[1].reason


def test_no_records_decode_to_no_events() -> None:
    assert decode_all([]) == []


def test_huge_but_valid_values_are_kept_whole() -> None:
    big = msgspec.structs.replace(event(1), description="x" * 5_000_000, amount=Decimal("9" * 27 + ".5"))
    assert decode(encode(big)) == big and decode(encode_json(big)) == big


def test_a_newer_version_that_only_adds_fields_still_reads() -> None:
    got = decode(record(v=2, fee="0.01", note="added later"))
    assert got == event(1)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    bad_inputs.tried(ENTRY)
    result = decode_at(raw, 7)
    if isinstance(result, Unreadable):
        assert "offset 7" in result.reason and "\n" not in result.reason and len(result.reason) <= REASON_LIMIT


mutations = st.one_of(
    st.tuples(st.just("cut"), st.integers(0, len(GOOD) - 1), st.just(b"")),
    st.tuples(st.just("flip"), st.integers(0, len(GOOD) - 1), st.binary(min_size=1, max_size=1)),
    st.tuples(st.just("insert"), st.integers(0, len(GOOD)), st.binary(min_size=1, max_size=8)),
)


@settings(max_examples=400, deadline=None)
@given(mutations)
def test_damaged_records_are_unreadable_or_a_real_event(mutation: tuple[str, int, bytes]) -> None:
    kind, at, data = mutation
    raw = GOOD[:at] if kind == "cut" else GOOD[:at] + data + GOOD[at + (kind == "flip") :]
    bad_inputs.tried(ENTRY)
    result = decode(raw)
    if not isinstance(result, Unreadable):
        assert decode(encode(result)) == result  # a byte that still spells a valid event


def outcome(i: int, **changes: Any) -> bytes:
    """A msgpack envelope of a confirmation, with some fields changed (None removes a field)."""
    fields = {
        **msgspec.to_builtins(
            PaymentConfirmed(
                payment_id=f"p{i}", at=T0, party="a::1", plan="prover", amount=Decimal("2.5"), update_id=f"u{i}"
            )
        ),
        **changes,
    }
    return msgspec.msgpack.encode({"v": 1, "event": {k: v for k, v in fields.items() if v is not None}})


OUTCOMES_ONLY = [raw for _, raw, _ in BAD] + [
    outcome(1),
    outcome(2, amount="NaN"),
    outcome(3, update_id=7),
    outcome(4, party=None),
    outcome(5, at=12),
    outcome(6, amount="1e30"),
    msgspec.json.encode({"v": 1, "event": msgspec.to_builtins(decode(outcome(7)))}),
]


@pytest.mark.parametrize("raw", OUTCOMES_ONLY)
def test_an_outcomes_only_read_gives_the_same_outcomes_and_refuses_the_same_bad_ones(raw: bytes) -> None:
    whole, fast = decode_all([raw, GOOD], 5), decode_outcomes([raw, GOOD], 5)
    bad_inputs.tried(ENTRY)
    assert isinstance(fast[1], Skipped)  # a sound request: not decoded
    if isinstance(whole[0], PaymentConfirmed | PaymentFailed) or isinstance(fast[0], Unreadable):
        assert fast[0] == whole[0]  # outcomes whole and checked; unreadable for the same reason
    else:  # a request, sound or not: skipped when its envelope and type are sound
        assert isinstance(fast[0], Skipped) and whole[0].__class__ in {Unreadable, PaymentRequested}
    assert [decode_at(raw, 0, outcomes_only=True)] == decode_outcomes([raw])  # one by one, the same


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
def test_a_log_with_poison_records_yields_every_good_event_once(layout, size, start, stop) -> None:  # type: ignore[no-untyped-def]
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
    unreadable = [r for r in got if isinstance(r.event, Unreadable)]
    located = sorted(r.offset for r in unreadable if "foreign key" not in r.event.reason)
    assert located == sorted(o for o in bad if start <= o < end)
    assert all(f"offset {r.offset}" in r.event.reason for r in unreadable)
    low, high = offset_key(start) if start else b"", None if stop is None else offset_key(stop)
    reported = [r for r in unreadable if "foreign key" in r.event.reason]
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
        common = {
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
    async with asyncio.timeout(30):  # a guard against a follower that lost its place, not a timing check
        seen = [await anext(follower) for _ in range(len(good) + len(bad) + len(foreign))]
        new = await log.append(event(99))
        assert (await anext(follower)).offset == new
    assert {r.offset: r.event for r in seen if not isinstance(r.event, Unreadable)} == good
    await follower.aclose()
    await log.close()
