"""Window metrics: exact against a brute-force count, replay-safe, and crash-safe (hypothesis)."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.events import PaymentConfirmed, PaymentFailed, PaymentSubmitted, Recorded
from pipeline.log.embedded import EmbeddedLog
from pipeline.log.store import Store
from projections.keys import LEVELS
from projections.replay import catch_up, rebuild
from projections.windows import WINDOWS, WindowMetrics, WindowProjection, cover

NOW = datetime(2026, 11, 24, 12, 0, 30, tzinfo=UTC)
USERS = ["a::1", "b::1", "c::1"]
PLANS = ["prover", "verifier"]


#: What the window fold counts (outcomes) and steps over (submissions).
Outcomes = list[PaymentConfirmed | PaymentFailed | PaymentSubmitted]


@st.composite
def outcomes(draw: st.DrawFn) -> Outcomes:
    out: Outcomes = []
    for i in range(draw(st.integers(min_value=0, max_value=40))):
        at = NOW - timedelta(minutes=draw(st.integers(min_value=0, max_value=50_000)))
        party, plan = draw(st.sampled_from(USERS)), draw(st.sampled_from(PLANS))
        amount = Decimal(draw(st.integers(min_value=1, max_value=10**6))) / 1000
        kind = draw(st.sampled_from(["ok", "final", "retry", "submitted"]))
        # Now and then an earlier payment again: a second worker's confirmation, a failure after one.
        pid = f"p{draw(st.one_of(st.just(i), st.integers(0, i)))}"
        if kind == "submitted":  # not an outcome: moves the position, counts nothing
            out.append(
                PaymentSubmitted(
                    payment_id=pid, at=at, command_id=f"c{i}", submission_id=f"s{i}", attempt=1, ledger_offset_before=0
                )
            )
        elif kind == "ok":
            out.append(
                PaymentConfirmed(payment_id=pid, at=at, party=party, plan=plan, amount=amount, update_id=f"u{i}")
            )
        else:
            out.append(
                PaymentFailed(
                    payment_id=pid,
                    at=at,
                    party=party,
                    plan=plan,
                    amount=amount,
                    attempt=1,
                    code="X",
                    message="m",
                    retryable=kind == "retry",
                    final=kind == "final",
                )
            )
    return out


def counted(events: Outcomes) -> list[PaymentConfirmed | PaymentFailed]:
    """The outcomes the metrics count: final ones, none of a payment after its confirmation."""
    confirmed: set[str] = set()
    out: list[PaymentConfirmed | PaymentFailed] = []
    for e in events:
        if isinstance(e, PaymentSubmitted) or e.payment_id in confirmed:
            continue
        if isinstance(e, PaymentConfirmed):
            confirmed.add(e.payment_id)
            out.append(e)
        elif e.final:
            out.append(e)
    return out


def brute(events: Outcomes, window: str, user: str | None = None, plan: str | None = None) -> dict[str, object]:
    first = int(NOW.timestamp() // 60) - WINDOWS[window] + 1
    hits = [
        e
        for e in counted(events)
        if int(e.at.timestamp() // 60) >= first
        and (user is None or e.party == user)
        and (plan is None or e.plan == plan)
    ]
    ok = [e for e in hits if isinstance(e, PaymentConfirmed)]
    return {
        "payment_count": len(hits),
        "success_count": len(ok),
        "failure_count": len(hits) - len(ok),
        "total_amount": sum((e.amount for e in ok), Decimal(0)),
        "active_users": len({e.party for e in hits}),
        "active_subscriptions": len({(e.party, e.plan) for e in hits}),
    }


def fold(path: Path, events: Outcomes, cut: int | None = None) -> WindowProjection:
    """Fold, committing (and 'crashing': dropping memory) after ``cut`` records."""
    projection = WindowProjection(Store.open(path))
    records = [Recorded(i, e) for i, e in enumerate(events)]
    if cut is not None:
        projection.apply(records[:cut])
        projection.commit()
        projection.store.close()
        projection = WindowProjection(Store.open(path))  # restart from what was committed
        projection.apply(records[: cut + 3])  # at-least-once: some records come again
    projection.apply(records)
    projection.commit()
    return projection


def state(p: WindowProjection) -> list[tuple[bytes, bytes]]:
    """Every row, byte for byte. (A member that passed through a bucket between two commits leaves
    it a member count of 0, but the bucket's row is there anyway: it holds that member's outcome.)"""
    return list(p.store.scan())


def snapshot(p: WindowProjection) -> list[WindowMetrics]:
    """Every window in every scope: overall, each plan, each user, each user+plan."""
    scopes = [
        (None, None),
        *((None, plan) for plan in PLANS),
        *((user, None) for user in USERS),
        *itertools.product(USERS, PLANS),
    ]
    return [p.metrics(w, NOW, user=user, plan=plan) for w in WINDOWS for user, plan in scopes]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=outcomes())
def test_metrics_equal_a_brute_force_count(tmp_path_factory: pytest.TempPathFactory, events: Outcomes) -> None:
    projection = fold(tmp_path_factory.mktemp("w"), events)
    for window in WINDOWS:
        for user, plan in ((None, None), ("a::1", None), (None, "prover"), ("b::1", "verifier")):
            got = projection.metrics(window, NOW, user=user, plan=plan)
            want = brute(events, window, user, plan)
            assert {k: getattr(got, k) for k in want} == want, (window, user, plan)
            assert (got.success_rate is None) == (want["payment_count"] == 0)
    projection.store.close()


# A crash: fold records up to ``cut`` (from ``back`` before the stored position: redelivery),
# commit or not (what was not committed is lost), then reopen the store.
crashes = st.lists(st.tuples(st.integers(0, 60), st.booleans(), st.integers(0, 10)), max_size=6)


def fold_with_crashes(path: Path, events: Outcomes, plan: list[tuple[int, bool, int]], back: int) -> WindowProjection:
    records = [Recorded(i, e) for i, e in enumerate(events)]
    projection = WindowProjection(Store.open(path))
    for cut, commit, again in plan:
        start = max(projection.position - again, 0)
        projection.apply(records[start : max(cut, start)])
        if commit:
            projection.commit()
        projection.store.close()
        projection = WindowProjection(Store.open(path))
    projection.apply(records[max(projection.position - back, 0) :])
    projection.commit()
    return projection


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=outcomes(), plan=crashes, back=st.integers(0, 10))
def test_crashes_restarts_and_redelivery_give_the_live_fold_byte_for_byte(
    tmp_path_factory: pytest.TempPathFactory, events: Outcomes, plan: list[tuple[int, bool, int]], back: int
) -> None:
    live = fold(tmp_path_factory.mktemp("a"), events)
    crashed = fold_with_crashes(tmp_path_factory.mktemp("b"), events, plan, back)
    assert crashed.position == live.position == len(events)
    assert state(crashed) == state(live)  # byte-identical state
    assert snapshot(crashed) == snapshot(live)
    live.store.close()
    crashed.store.close()


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10**7), st.integers(min_value=0, max_value=100_000))
def test_cover_is_exact_and_small(first: int, length: int) -> None:
    levels, bound = LEVELS, 9 + 5 + 23 + 70 + 23 + 5 + 9
    last = first + length
    sizes = dict(levels)
    ranges = cover(first, last, levels)
    minutes = sorted((lo * sizes[level], (hi + 1) * sizes[level] - 1) for level, lo, hi in ranges)
    assert minutes[0][0] == first and minutes[-1][1] == last
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(minutes))
    assert sum(hi - lo + 1 for _, lo, hi in ranges) <= bound


def test_replay_after_deleting_the_store_reproduces_the_metrics(tmp_path: Path) -> None:
    async def go() -> None:
        log = EmbeddedLog.open(tmp_path / "log", sync=False)
        events = [
            PaymentConfirmed(
                payment_id=f"p{i}",
                at=NOW - timedelta(minutes=7 * i),
                party=USERS[i % 3],
                plan=PLANS[i % 2],
                amount=Decimal("1.5"),
                update_id=f"u{i}",
            )
            for i in range(500)
        ]
        await log.append_batch(events)
        live = WindowProjection(Store.open(tmp_path / "proj"))
        await catch_up(log, live)
        before = snapshot(live)
        live.store.close()
        rebuilt = await rebuild(log, tmp_path / "proj")
        assert snapshot(rebuilt) == before
        month = rebuilt.metrics("30d", NOW)
        assert month.payment_count == 500 and month.total_amount == Decimal("750.0")
        rebuilt.store.close()
        await log.close()

    asyncio.run(go())


def test_a_payment_confirmed_twice_counts_once_even_across_commits_and_restarts(tmp_path: Path) -> None:
    """Two workers on one Kafka partition (one lost it without knowing) both record a confirmation."""

    def confirmed(minutes_ago: int) -> PaymentConfirmed:
        return PaymentConfirmed(
            payment_id="p1",
            at=NOW - timedelta(minutes=minutes_ago),
            party=USERS[0],
            plan=PLANS[0],
            amount=Decimal("2.5"),
            update_id="u1",
        )

    late_failure = PaymentFailed(
        payment_id="p1",
        at=NOW,
        party=USERS[0],
        plan=PLANS[0],
        amount=Decimal("2.5"),
        attempt=2,
        code="X",
        message="m",
        retryable=False,
        final=True,
    )
    other = PaymentConfirmed(payment_id="p2", at=NOW, party=USERS[1], plan=PLANS[0], amount=Decimal(1), update_id="u2")
    projection = WindowProjection(Store.open(tmp_path / "p"))
    projection.apply([Recorded(0, confirmed(5)), Recorded(1, confirmed(4))])  # both in one commit
    projection.commit()
    projection.store.close()
    projection = WindowProjection(Store.open(tmp_path / "p"))  # and after a restart
    projection.apply([Recorded(2, confirmed(1)), Recorded(3, late_failure), Recorded(4, other)])
    projection.commit()
    hour = projection.metrics("1h", NOW)
    assert (hour.payment_count, hour.success_count, hour.failure_count) == (2, 2, 0)
    assert hour.total_amount == Decimal("3.5")
    assert projection.metrics("1h", NOW, user=USERS[0]).payment_count == 1
    projection.store.close()
