"""What is due: anchored periods, first sight charges the current period only, recovery caps."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from commands.catalogue import Plan, Subscription, User
from commands.services.schedule import EPOCH, current_requests, missed_requests, period_index
from pipeline.events import PaymentRequested, Recorded
from pipeline.processor.book import PaymentBook

APP = "app::1220aa"
T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
PLAN = Plan(id="p", name="prover", price=Decimal("2"), currency="CC", interval_sec="300")
ALICE = User(
    id="alice",
    party="alice::1220",
    name="Alice",
    email="a@x",
    subscriptions=(Subscription(name="prover", expires_at=date(2030, 1, 1)),),
)
PAIR = (ALICE, ALICE.subscriptions[0], PLAN)


def book_with(*requests: PaymentRequested) -> PaymentBook:
    book = PaymentBook()
    for i, r in enumerate(requests):
        book.apply(Recorded(i, r))
    return book


def test_first_sight_charges_the_current_period_only() -> None:
    (req,) = current_requests([PAIR], {}, T0, app_party=APP)
    # No starts_at: periods are aligned on the epoch, so T0 (12:00) starts one.
    assert req.period.index == period_index(EPOCH, 300, T0) and req.period.start == T0
    assert req.amount == Decimal("2") and req.receiver == APP
    assert "Alice" not in req.description  # no display names on the ledger
    assert missed_requests([PAIR], {}, T0, app_party=APP, per_subscription=100) == []


def test_a_requested_period_is_not_requested_again() -> None:
    (req,) = current_requests([PAIR], {}, T0, app_party=APP)
    book = book_with(req)
    assert current_requests([PAIR], book.subscriptions, T0 + timedelta(seconds=299), app_party=APP) == []
    (nxt,) = current_requests([PAIR], book.subscriptions, T0 + timedelta(seconds=300), app_party=APP)
    assert nxt.period.index == req.period.index + 1 and nxt.period.start == T0 + timedelta(seconds=300)
    assert nxt.payment_id != req.payment_id


def test_missed_periods_are_requested_once_newest_first_capped() -> None:
    (req,) = current_requests([PAIR], {}, T0, app_party=APP)
    book = book_with(req)
    later = T0 + timedelta(seconds=300 * 10 + 5)  # down for ten periods
    missed = missed_requests([PAIR], book.subscriptions, later, app_party=APP, per_subscription=4)
    assert [m.period.index - req.period.index for m in missed] == [6, 7, 8, 9]
    assert {m.reason for m in missed} == {"recovery"}
    book2 = book_with(req, *missed)
    again = missed_requests([PAIR], book2.subscriptions, later, app_party=APP, per_subscription=4)
    assert [m.period.index - req.period.index for m in again] == [2, 3, 4, 5]


def test_periods_after_expiry_are_never_charged() -> None:
    short = User(
        id="b",
        party="b::1220",
        name="B",
        email="b@x",
        subscriptions=(Subscription(name="prover", expires_at=date(2026, 11, 24)),),
    )
    pair = (short, short.subscriptions[0], PLAN)
    (req,) = current_requests([pair], {}, T0, app_party=APP)
    book = book_with(req)
    after = datetime(2026, 11, 25, 0, 2, tzinfo=UTC)
    assert current_requests([pair], book.subscriptions, after, app_party=APP) == []
    missed = missed_requests([pair], book.subscriptions, after, app_party=APP, per_subscription=10_000)
    assert missed and all(m.period.start < datetime(2026, 11, 25, tzinfo=UTC) for m in missed)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**8), st.integers(0, 10**8), st.sampled_from([60, 300, 86_400, 2_592_000]))
def test_any_state_folder_finds_the_same_period_and_id(a: int, b: int, interval: int) -> None:
    """Two state folders that know nothing (a lost one and a new one) ask at two moments: they
    name the same real period with the same id exactly when both moments fall in one period."""
    plan = Plan(id="p", name="prover", price=Decimal("2"), currency="CC", interval_sec=str(interval))
    pair = (ALICE, ALICE.subscriptions[0], plan)
    base = 1_700_000_000  # 2023: a and b stay within the subscription (it expires in 2030)
    at_a, at_b = EPOCH + timedelta(seconds=base + a), EPOCH + timedelta(seconds=base + b)
    (ra,) = current_requests([pair], {}, at_a, app_party=APP)
    (rb,) = current_requests([pair], {}, at_b, app_party=APP)
    same_period = (base + a) // interval == (base + b) // interval
    assert (ra.payment_id == rb.payment_id) == same_period
    assert (ra.description == rb.description) == same_period
    assert ra.period.start <= at_a < ra.period.end


def test_starts_at_anchors_the_periods() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    sub = Subscription(name="prover", expires_at=date(2030, 1, 1), starts_at=start)
    user = User(id="c", party="c::1220", name="C", email="c@x", subscriptions=(sub,))
    (req,) = current_requests([(user, sub, PLAN)], {}, T0, app_party=APP)
    assert req.period.index == period_index(start, 300, T0)
    assert req.period.start <= T0 < req.period.end


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=60, max_value=10**6), st.integers(min_value=0, max_value=10**9))
def test_period_index_contains_the_instant(interval: int, offset: int) -> None:
    at = T0 + timedelta(seconds=offset)
    k = period_index(T0, interval, at)
    assert T0 + timedelta(seconds=k * interval) <= at < T0 + timedelta(seconds=(k + 1) * interval)
