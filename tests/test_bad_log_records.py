"""Bad records in the event log, decoded one by one (issue #9, the log's entry point).

Each bad record comes back as `Unreadable` with one line saying what is wrong and at which
offset; none raises. Every bad input tried is counted in the session-end table
(`tests/bad_inputs.py`). A real log with such records in it: `tests/test_poison_in_log.py`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.events import (
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
)
from tests import bad_inputs
from tests.bad_records import BAD, ENTRY, GOOD, REASON_LIMIT, record
from tests.log_contract import T0, event


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
    assert not isinstance(result, Skipped)  # a whole decode: only an outcomes-only read skips records
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
