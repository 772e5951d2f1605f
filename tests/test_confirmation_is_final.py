"""One rule, one place (`pipeline.events.outcome`): its readers agree on which payments count.

The payment book, the window fold's sums and the live payment counters each read the same
records; whatever order requests, retries, final failures and repeated confirmations come in,
each confirmed payment is confirmed once in all three, and nothing after its confirmation counts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.events import AnyEvent, PaymentConfirmed, PaymentFailed, PaymentRequested, Period, Recorded, outcome
from pipeline.processor.book import PaymentBook
from projections.payment_outcomes import PaymentOutcomes
from projections.sums import Sums

T0 = datetime(2026, 11, 24, tzinfo=UTC)
IDS = [f"{i:032x}" for i in range(3)]


def test_a_confirmation_is_final() -> None:
    confirmed = PaymentConfirmed(payment_id=IDS[0], at=T0, party="a", plan="p", amount=Decimal(1), update_id="u")
    assert outcome(confirmed, confirmed=False) == "confirmed"
    assert outcome(confirmed, confirmed=True) is None
    assert outcome(failure(IDS[0], 0, final=True), confirmed=False) == "failed"
    assert outcome(failure(IDS[0], 0, final=False), confirmed=False) == "open"
    assert outcome(request(IDS[0], 0), confirmed=True) is None


def request(pid: str, n: int) -> PaymentRequested:
    start = T0 + timedelta(minutes=5 * IDS.index(pid))
    return PaymentRequested(
        payment_id=pid,
        at=T0 + timedelta(minutes=n),
        party="a::1",
        user_id="a",
        plan="prover",
        period=Period(index=IDS.index(pid), start=start, end=start + timedelta(minutes=5)),
        amount=Decimal(2),
        receiver="app::1",
        description="d",
    )


def failure(pid: str, n: int, *, final: bool) -> PaymentFailed:
    return PaymentFailed(
        payment_id=pid,
        at=T0 + timedelta(minutes=n),
        party="a::1",
        plan="prover",
        amount=Decimal(2),
        attempt=1,
        code="X",
        message="m",
        retryable=not final,
        final=final,
    )


def event_for(kind: str, pid: str, n: int) -> AnyEvent:
    if kind == "confirm":
        at = T0 + timedelta(minutes=n)
        return PaymentConfirmed(
            payment_id=pid, at=at, party="a::1", plan="prover", amount=Decimal(2), update_id=f"u{n}"
        )
    return request(pid, n) if kind == "request" else failure(pid, n, final=kind == "fail")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["request", "confirm", "retry", "fail"]), st.sampled_from(IDS)), max_size=30))
def test_book_sums_and_counters_count_each_confirmation_once(steps: list[tuple[str, str]]) -> None:
    events = [request(pid, 0) for pid in IDS] + [event_for(kind, pid, n + 1) for n, (kind, pid) in enumerate(steps)]
    records = [Recorded(offset, event) for offset, event in enumerate(events)]
    book, sums, counters = PaymentBook(), Sums(0, 0), PaymentOutcomes()
    seen = []
    for record in records:
        book.apply(record)
        sums.apply([record])
        seen.append(counters.see(record))
    in_book = {pid for pid in IDS if (state := book.get(pid)) is not None and state.status == "confirmed"}
    counted = [found[0].payment_id for found in seen if found and isinstance(found[0], PaymentConfirmed)]
    assert in_book == set(sums.confirmed) == set(counted)
    assert len(counted) == len(in_book) == sum(row[1] for row in sums.days.values())
