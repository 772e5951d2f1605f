"""The event contract: round trips, stored v1 bytes still decode, evolution, ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.events import (
    AnyEvent,
    Event,
    PaymentConfirmed,
    PaymentFailed,
    PaymentRequested,
    PaymentSubmitted,
    Period,
    Unreadable,
    decode,
    encode,
    encode_json,
)
from pipeline.ids import Described, command_id, description, parse_description, payment_id, payment_of_command

SAMPLES = Path(__file__).parent / "event_samples"
times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC))
money = st.decimals(min_value=Decimal("0.0000000001"), max_value=Decimal("1e12"), places=10, allow_nan=False)
text = st.text(min_size=1, max_size=40)


@st.composite
def events(draw: st.DrawFn) -> Event:  # one of the four kinds (AnyEvent)
    at, pid, party, plan, amount = draw(times), draw(text), draw(text), draw(text), draw(money)
    start = draw(times)
    return draw(
        st.sampled_from(
            [
                PaymentRequested(
                    payment_id=pid,
                    at=at,
                    party=party,
                    user_id=draw(text),
                    plan=plan,
                    amount=amount,
                    period=Period(index=draw(st.integers(0, 10**9)), start=start, end=start + timedelta(hours=1)),
                    receiver=draw(text),
                    description=draw(st.text(max_size=200)),
                    reason=draw(st.sampled_from(["scheduled", "manual", "recovery", "retry"])),
                ),
                PaymentSubmitted(
                    payment_id=pid,
                    at=at,
                    command_id=command_id(pid),
                    submission_id=draw(text),
                    attempt=draw(st.integers(1, 100)),
                    ledger_offset_before=draw(st.integers(0, 2**62)),
                ),
                PaymentConfirmed(
                    payment_id=pid,
                    at=at,
                    party=party,
                    plan=plan,
                    amount=amount,
                    update_id=draw(text),
                    completion_offset=draw(st.none() | st.integers(0, 2**62)),
                ),
                PaymentFailed(
                    payment_id=pid,
                    at=at,
                    party=party,
                    plan=plan,
                    amount=amount,
                    attempt=1,
                    code=draw(text),
                    message=draw(st.text(max_size=500)),
                    retryable=draw(st.booleans()),
                    final=draw(st.booleans()),
                    next_attempt_at=draw(st.none() | times),
                ),
            ]
        )
    )


@settings(max_examples=300, deadline=None)
@given(events())
def test_encode_decode_is_identity_in_both_forms(event: AnyEvent) -> None:
    assert decode(encode(event)) == event
    assert decode(encode_json(event)) == event


@pytest.mark.parametrize("name", ["requested", "submitted", "confirmed", "failed"])
@pytest.mark.parametrize("form", ["msgpack", "json"])
def test_stored_v1_records_still_decode(name: str, form: str) -> None:
    event = decode((SAMPLES / f"v1_{name}.{form}").read_bytes())
    assert isinstance(event, AnyEvent), event
    assert event.payment_id == "0f" * 16
    assert event.at == datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    if isinstance(event, PaymentRequested | PaymentConfirmed):
        assert event.amount == Decimal("2.5")


class ConfirmedV2(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag="payment.confirmed"):
    payment_id: str
    at: datetime
    party: str
    plan: str
    amount: Decimal
    update_id: str
    fee: Decimal = Decimal(0)  # the field a later version adds


class EnvelopeV2(msgspec.Struct, kw_only=True):
    v: int = 2
    event: ConfirmedV2


def test_a_field_added_later_reads_old_bytes_and_old_readers_skip_it() -> None:
    old = (SAMPLES / "v1_confirmed.msgpack").read_bytes()
    upgraded = msgspec.msgpack.decode(old, type=EnvelopeV2).event
    assert upgraded.fee == Decimal(0) and upgraded.amount == Decimal("2.5")
    newer = msgspec.msgpack.encode(EnvelopeV2(event=msgspec.structs.replace(upgraded, fee=Decimal("0.01"))))
    read_by_v1 = decode(newer)  # a newer version: the unknown field is skipped
    assert isinstance(read_by_v1, PaymentConfirmed) and read_by_v1.update_id == upgraded.update_id


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "not a billing event"),
        (b"\x93\x01", "not a billing event"),
        (b'{"v":1}', "not a billing event"),
        (b'{"v":1,"event":{"type":"payment.refunded","payment_id":"x"}}', "payment.refunded"),
        (b'{"v":1,"event":{"type":"payment.confirmed","payment_id":3}}', "not a billing event"),
    ],
)
def test_bad_records_come_back_unreadable_with_a_reason(raw: bytes, reason: str) -> None:
    result = decode(raw)
    assert isinstance(result, Unreadable) and reason in result.reason and result.raw == raw


def test_truncated_records_are_unreadable() -> None:
    full = (SAMPLES / "v1_requested.msgpack").read_bytes()
    assert all(isinstance(decode(full[:n]), Unreadable) for n in range(len(full)))


def test_payment_ids_are_deterministic_and_distinct() -> None:
    t0 = datetime(2026, 12, 4, 15, tzinfo=UTC)
    t1, t2 = t0 + timedelta(minutes=5), t0 + timedelta(minutes=10)
    a = payment_id("app::1", "alice::1", "prover", t0, t1)
    assert a == payment_id("app::1", "alice::1", "prover", t0, t1) and len(a) == 32
    # Another period (even one that starts alike), plan, app or user: another id.
    others = {
        payment_id("app::1", "alice::1", "prover", t1, t2),
        payment_id("app::1", "alice::1", "prover", t0, t2),
        payment_id("app::1", "alice::1", "verifier", t0, t1),
        payment_id("app::2", "alice::1", "prover", t0, t1),
        payment_id("app::1", "alice::11", "prover", t0, t1),
    }
    assert a not in others and len(others) == 5
    # The same instant in another zone is the same period.
    assert payment_id("app::1", "alice::1", "prover", t0.astimezone(timezone(timedelta(hours=2))), t1) == a
    assert command_id(a) == f"pay-{a}" and payment_of_command(command_id(a)) == a
    assert payment_of_command("setup-preapproval-1") is None
    with pytest.raises(ValueError):
        payment_id("app::1", "alice::1", "prover", t1, t0)
    with pytest.raises(ValueError):
        payment_id("app::1", "alice::1", "prover", t0.replace(tzinfo=None), t1)


def test_descriptions_name_the_period_and_read_back() -> None:
    t0 = datetime(2026, 12, 4, 15, tzinfo=UTC)
    text = description("pro plan", "alice smith", t0, t0 + timedelta(seconds=300))
    assert text == "pro plan subscription payment for alice smith (period 2026-12-04T15:00:00Z to 2026-12-04T15:05:00Z)"
    assert parse_description(text) == Described(
        plan="pro plan", user_id="alice smith", start=t0, end=t0 + timedelta(seconds=300)
    )
    # An older version's text, another tool's, or a period that ends before it starts: not ours.
    for other in (
        "prover subscription payment for alice (period 3)",
        "rent",
        "",
        "p subscription payment for a (period 2026-12-04T15:05:00Z to 2026-12-04T15:00:00Z)",
        "p subscription payment for a (period 2026-12-04T15:00:00 to 2026-12-04T15:05:00)",
    ):
        assert parse_description(other) is None
