"""Window metrics: exact against a brute-force count, replay-safe, and crash-safe (hypothesis)."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeline.embedded_log import EmbeddedLog
from pipeline.events import PaymentConfirmed, PaymentFailed, Recorded
from pipeline.rocks import Store
from projections.replay import catch_up, rebuild
from projections.windows import WINDOWS, WindowProjection, cover

NOW = datetime(2026, 11, 24, 12, 0, 30, tzinfo=UTC)
USERS = ["a::1", "b::1", "c::1"]
PLANS = ["prover", "verifier"]


@st.composite
def outcomes(draw: st.DrawFn) -> list[PaymentConfirmed | PaymentFailed]:
    out = []
    for i in range(draw(st.integers(min_value=0, max_value=40))):
        at = NOW - timedelta(minutes=draw(st.integers(min_value=0, max_value=50_000)))
        party, plan = draw(st.sampled_from(USERS)), draw(st.sampled_from(PLANS))
        amount = Decimal(draw(st.integers(min_value=1, max_value=10**6))) / 1000
        kind = draw(st.sampled_from(["ok", "final", "retry"]))
        if kind == "ok":
            out.append(PaymentConfirmed(payment_id=f"p{i}", at=at, party=party, plan=plan, amount=amount,
                                        update_id=f"u{i}"))
        else:
            out.append(PaymentFailed(payment_id=f"p{i}", at=at, party=party, plan=plan, amount=amount, attempt=1,
                                     code="X", message="m", retryable=kind == "retry", final=kind == "final"))
    return out


def brute(events: list, window: str, user: str | None = None, plan: str | None = None) -> dict:  # type: ignore[type-arg]
    first = int(NOW.timestamp() // 60) - WINDOWS[window] + 1
    hits = [e for e in events if int(e.at.timestamp() // 60) >= first and (user is None or e.party == user)
            and (plan is None or e.plan == plan)
            and (isinstance(e, PaymentConfirmed) or e.final)]
    ok = [e for e in hits if isinstance(e, PaymentConfirmed)]
    return {"payment_count": len(hits), "success_count": len(ok), "failure_count": len(hits) - len(ok),
            "total_amount": sum((e.amount for e in ok), Decimal(0)),
            "active_users": len({e.party for e in hits}),
            "active_subscriptions": len({(e.party, e.plan) for e in hits})}


def fold(path: Path, events: list, cut: int | None = None) -> WindowProjection:  # type: ignore[type-arg]
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


def snapshot(p: WindowProjection) -> list:  # type: ignore[type-arg]
    return [(p.metrics(w, NOW), p.metrics(w, NOW, user="a::1"), p.metrics(w, NOW, plan="prover"),
             p.metrics(w, NOW, user="b::1", plan="verifier")) for w in WINDOWS]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=outcomes())
def test_metrics_equal_a_brute_force_count(tmp_path_factory, events) -> None:  # type: ignore[no-untyped-def]
    projection = fold(tmp_path_factory.mktemp("w"), events)
    for window in WINDOWS:
        for user, plan in ((None, None), ("a::1", None), (None, "prover"), ("b::1", "verifier")):
            got = projection.metrics(window, NOW, user=user, plan=plan)
            want = brute(events, window, user, plan)
            assert {k: getattr(got, k) for k in want} == want, (window, user, plan)
            assert (got.success_rate is None) == (want["payment_count"] == 0)
    projection.store.close()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(events=outcomes(), cut=st.integers(min_value=0, max_value=40))
def test_crash_and_redelivery_give_the_same_state(tmp_path_factory, events, cut) -> None:  # type: ignore[no-untyped-def]
    cut = min(cut, len(events))
    one_go = fold(tmp_path_factory.mktemp("a"), events)
    crashed = fold(tmp_path_factory.mktemp("b"), events, cut=cut)
    assert snapshot(one_go) == snapshot(crashed)
    assert list(one_go.store.scan()) == list(crashed.store.scan())  # byte-identical state
    one_go.store.close()
    crashed.store.close()


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10**7), st.integers(min_value=0, max_value=100_000))
def test_cover_is_exact_and_small(first: int, length: int) -> None:
    last = first + length
    minutes = []
    for level, lo, hi in cover(first, last):
        size = {"m": 1, "h": 60, "d": 1440}[level]
        minutes += [(lo * size, (hi + 1) * size - 1)]
    minutes.sort()
    assert minutes[0][0] == first and minutes[-1][1] == last
    assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(minutes))
    assert sum(hi - lo + 1 for _, lo, hi in cover(first, last)) <= 59 + 23 + 70 + 23 + 59


def test_replay_after_deleting_the_store_reproduces_the_metrics(tmp_path: Path) -> None:
    async def go() -> None:
        log = EmbeddedLog.open(tmp_path / "log", sync=False)
        events = [PaymentConfirmed(payment_id=f"p{i}", at=NOW - timedelta(minutes=7 * i), party=USERS[i % 3],
                                   plan=PLANS[i % 2], amount=Decimal("1.5"), update_id=f"u{i}") for i in range(500)]
        await log.append_batch(events)
        live = WindowProjection(Store.open(tmp_path / "proj"))
        await catch_up(log, live)
        before = snapshot(live)
        live.store.close()
        rebuilt = await rebuild(log, tmp_path / "proj")
        assert snapshot(rebuilt) == before
        assert before[-1][0].payment_count == 500 and before[-1][0].total_amount == Decimal("750.0")
        rebuilt.store.close()
        await log.close()

    asyncio.run(go())
