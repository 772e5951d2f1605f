"""The compact payment book answers every query the product makes exactly like a naive one.

The naive book is the fold as it was: a whole `PaymentState` per payment id ever seen and a
plain set of requested period indices per subscription. Streams are random: requests
(duplicates included), submissions, outcomes in any order, and redeliveries of old records.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from commands.services.payments import RETRYABLE_BY_OPERATOR, retry_requests
from pipeline import events as ev
from pipeline.events import AnyEvent, PaymentRequested, Recorded
from pipeline.ids import payment_id
from pipeline.processor.book import PaymentBook, PaymentState, Settled, evolve
from pipeline.processor.compact import IndexSet, SettledIds

T0 = datetime(2026, 11, 24, tzinfo=UTC)
APP = "app::1220" + "ab" * 32
#: Canonical ids (hashes, as `billing` makes them) and two others the book must also take.
IDS = [
    payment_id(APP, f"u{i % 2}::1220", "prover", T0 + timedelta(minutes=5 * i), T0 + timedelta(minutes=5 * i + 5))
    for i in range(4)
] + ["p-odd", "AB" * 16]


class NaiveBook:
    """The reference: every state whole, every requested index in a set."""

    def __init__(self) -> None:
        self.states: dict[str, PaymentState] = {}
        self.requested: dict[tuple[str, str], tuple[datetime, set[int]]] = {}

    def apply(self, record: Recorded) -> PaymentState | None:
        event = record.event
        assert isinstance(event, AnyEvent)  # these streams hold whole, readable records only
        new = evolve(self.states.get(event.payment_id), record)
        if new is None:
            return None
        assert isinstance(new, PaymentState)  # only a `Settled` state evolves into one
        self.states[event.payment_id] = new
        if isinstance(event, PaymentRequested):
            length = event.period.end - event.period.start
            anchor = event.period.start - length * event.period.index
            self.requested.setdefault((event.party, event.plan), (anchor, set()))[1].add(event.period.index)
        return new


def event_for(kind: str, pid: str, n: int, index: int) -> AnyEvent:
    at, k = T0 + timedelta(seconds=n), IDS.index(pid)
    party, plan = f"u{k % 2}::1220", ("prover", "verifier")[k % 3 == 2]
    if kind == "request":
        return ev.PaymentRequested(
            payment_id=pid,
            at=at,
            party=party,
            user_id=party[:2],
            plan=plan,
            period=ev.Period(
                index=index, start=T0 + timedelta(minutes=5 * index), end=T0 + timedelta(minutes=5 * index + 5)
            ),
            amount=Decimal(k + 1),
            receiver=APP,
            description="d",
        )
    if kind == "submit":
        return ev.PaymentSubmitted(
            payment_id=pid,
            at=at,
            command_id=f"pay-{pid}",
            submission_id=f"s{n}",
            attempt=n % 5 + 1,
            ledger_offset_before=n,
        )
    if kind == "confirm":
        return ev.PaymentConfirmed(
            payment_id=pid,
            at=at,
            party=party,
            plan=plan,
            amount=Decimal(k + 1),
            update_id=("1220" + f"{n:060x}") if n % 2 else f"u-{n}",
        )
    code = ("INSUFFICIENT_FUNDS", "DAML_FAILURE", "REQUEST_TIME_OUT")[n % 3]
    return ev.PaymentFailed(
        payment_id=pid,
        at=at,
        party=party,
        plan=plan,
        amount=Decimal(k + 1),
        attempt=1,
        code=code,
        message="m",
        retryable=kind == "retry",
        final=kind == "fail",
        next_attempt_at=None if kind == "fail" else at + timedelta(seconds=30),
    )


Step = tuple[str, int, int]  # (kind, payment id's position or the record to redeliver, period index)
steps = st.lists(
    st.tuples(
        st.sampled_from(["request", "submit", "confirm", "retry", "fail", "redeliver"]),
        st.integers(0, 40),
        st.integers(0, 12),
    ),
    max_size=40,
)


def assert_same(book: PaymentBook, naive: NaiveBook) -> None:
    for pid in IDS:
        want, got = naive.states.get(pid), book.get(pid)
        if want is None or want.status == "confirmed":
            assert got == (None if want is None else Settled(pid, want.update_id or ""))
        else:
            assert got == want  # open or failed for good: the whole state, as before
    assert {p for p, s in book.payments.items() if not s.final} == {p for p, s in naive.states.items() if not s.final}
    naive_retries = [
        msgspec_free_retry(s)
        for s in naive.states.values()
        if s.status == "failed" and s.last_code in RETRYABLE_BY_OPERATOR
    ]
    key = lambda r: r.payment_id  # noqa: E731
    assert sorted(retry_requests(book, T0), key=key) == sorted(naive_retries, key=key)
    assert book.subscriptions.keys() == naive.requested.keys()
    for sub, (anchor, indices) in naive.requested.items():
        history = book.subscriptions[sub]
        # IndexSet is a Set[int]: mypy's strict equality only knows that the builtin sets overlap
        assert history.anchor == anchor and history.requested == indices  # type: ignore[comparison-overlap]
        assert history.requested.first() == min(indices)
        assert [i in history.requested for i in range(-1, 15)] == [i in indices for i in range(-1, 15)]


def msgspec_free_retry(state: PaymentState) -> PaymentRequested:
    r = state.request
    return PaymentRequested(
        payment_id=r.payment_id,
        at=T0,
        party=r.party,
        user_id=r.user_id,
        plan=r.plan,
        period=r.period,
        amount=r.amount,
        receiver=r.receiver,
        description=r.description,
        reason="retry",
        currency=r.currency,
    )


@settings(max_examples=200, deadline=None)
@given(steps)
def test_compact_book_answers_like_the_naive_fold(plan: list[Step]) -> None:
    book, naive, log = PaymentBook(), NaiveBook(), list[Recorded]()
    for n, (kind, which, index) in enumerate(plan):
        if kind == "redeliver":
            if not log:
                continue
            record = log[which % len(log)]  # at-least-once: an old record, its old offset
        else:
            record = Recorded(len(log), event_for(kind, IDS[which % len(IDS)], n, index))
            log.append(record)
        got, want = book.apply(record), naive.apply(record)
        assert (got is None) == (want is None)
        if got is not None and want is not None:
            assert (got.payment_id, got.status, got.final) == (want.payment_id, want.status, want.final)
        assert_same(book, naive)


def test_settled_ids_keep_every_id_through_merges() -> None:
    rng = random.Random(7)
    ids = [f"{k:032x}" for k in range(3000)]  # counters: one shared prefix
    ids += [rng.randbytes(16).hex() for _ in range(3000)] + ["p1", "AB" * 16, "ab" * 16]
    settled, naive = SettledIds(), dict[str, str]()
    for i, pid in enumerate(ids):
        update = f"1220{i:060x}" if i % 3 else f"upd-{i}"
        settled.add(pid, update)
        naive.setdefault(pid, update)
        settled.add(pid, "ignored: the first confirmation stays")
    assert len(settled) == len(naive)
    assert all(settled.get(pid) == update for pid, update in naive.items())
    assert settled.get("f" * 32) is None and settled.get("p2") is None and settled.get("Ab" * 16) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 60), max_size=80))
def test_index_set_is_a_set(items: list[int]) -> None:
    got, want = IndexSet(), set[int]()
    for item in items:
        got.add(item)
        want.add(item)
        # IndexSet is a Set[int]: mypy's strict equality only knows that the builtin sets overlap
        assert got == want and len(got) == len(want) and sorted(got) == sorted(want)  # type: ignore[comparison-overlap]
    assert [i in got for i in range(-2, 63)] == [i in want for i in range(-2, 63)]
    assert got.first() == (min(want) if want else None)
    assert "1" not in got  # type: ignore[comparison-overlap]  # deliberately a str: membership takes any object
