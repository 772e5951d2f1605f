"""Pure decisions: backoff, horizon, what a rejection records; the payment fold."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.canton.port import Rejected
from pipeline.events import (
    AnyEvent,
    PaymentConfirmed,
    PaymentFailed,
    PaymentRequested,
    PaymentSubmitted,
    Period,
    Recorded,
)
from pipeline.processor.book import PaymentBook, PaymentState, next_action
from pipeline.processor.decisions import failure_event
from pipeline.processor.retry import RetryPolicy, next_attempt

T0 = datetime(2026, 11, 24, tzinfo=UTC)
REQ = PaymentRequested(
    payment_id="p1",
    at=T0,
    party="a::1",
    user_id="a",
    plan="prover",
    period=Period(index=0, start=T0, end=T0 + timedelta(minutes=5)),
    amount=Decimal("2"),
    receiver="app::1",
    description="d",
)


@settings(max_examples=300, deadline=None)
@given(st.integers(min_value=1, max_value=40), st.floats(min_value=0, max_value=0.999999))
def test_backoff_is_capped_and_jittered_within_bounds(attempts: int, rand: float) -> None:
    policy = RetryPolicy(base_delay=30, max_delay=900, jitter=0.2)
    delay = policy.delay(attempts, rand)
    raw = min(900, 30 * 2 ** (attempts - 1))
    assert raw * 0.8 <= delay <= raw * 1.2


def test_no_retry_past_attempts_or_horizon() -> None:
    policy = RetryPolicy(max_attempts=3, base_delay=60, horizon=3600)
    assert next_attempt(policy, 1, T0, T0, 0.5) == T0 + timedelta(seconds=60)
    assert next_attempt(policy, 3, T0, T0, 0.5) is None
    assert next_attempt(policy, 1, T0, T0 + timedelta(seconds=3590), 0.5) is None


def test_failure_event_is_final_without_retry_and_bounded() -> None:
    long = Rejected(kind="retryable", code="X", message="m" * 5000)
    event = failure_event(REQ, long, attempt=2, retry_at=None, now=T0)
    assert event.final and event.retryable and len(event.message) <= 500
    assert event.message.startswith("gave up after 2 attempt(s)")
    final = failure_event(
        REQ, Rejected(kind="final", code="DAML_FAILURE", message="no"), attempt=1, retry_at=T0, now=T0
    )
    assert final.final and not final.retryable and final.next_attempt_at is None


def _rec(offset: int, event: AnyEvent) -> Recorded:
    return Recorded(offset, event)


def test_fold_given_when_then() -> None:
    sub = PaymentSubmitted(
        payment_id="p1", at=T0, command_id="pay-p1", submission_id="s", attempt=1, ledger_offset_before=40
    )
    fail = PaymentFailed(
        payment_id="p1",
        at=T0,
        party="a::1",
        plan="prover",
        amount=Decimal(2),
        attempt=1,
        code="X",
        message="busy",
        retryable=True,
        final=False,
        next_attempt_at=T0 + timedelta(seconds=30),
    )
    ok = PaymentConfirmed(payment_id="p1", at=T0, party="a::1", plan="prover", amount=Decimal(2), update_id="u1")
    book = PaymentBook()
    requested = book.apply(_rec(0, REQ))
    assert isinstance(requested, PaymentState) and next_action(requested, T0) == "attempt"
    submitted = book.apply(_rec(1, sub))
    assert isinstance(submitted, PaymentState) and next_action(submitted, T0) == "reconcile"
    state = book.apply(_rec(2, fail))
    assert isinstance(state, PaymentState)
    assert next_action(state, T0) == "wait"
    assert next_action(state, T0 + timedelta(seconds=31)) == "attempt"
    assert state.first_offset == 40 and state.failures == 1
    assert (confirmed := book.apply(_rec(3, ok))) is not None and confirmed.status == "confirmed"
    # At-least-once delivery: re-applying old records changes nothing.
    redelivered: list[AnyEvent] = [REQ, sub, fail]
    for offset, event in enumerate(redelivered):
        book.apply(_rec(offset, event))
    assert (settled := book.get("p1")) is not None and settled.status == "confirmed"
    # IndexSet is a Set[int]: mypy's strict equality only knows that the builtin sets overlap
    assert book.subscriptions[("a::1", "prover")].requested == {0}  # type: ignore[comparison-overlap]
