"""Failure alerts (one structured WARN line per threshold crossing) and the submission rate limit."""

from __future__ import annotations

import asyncio
import io
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from commands.daemon.alerts import FailureWatch, watch_failures
from commands.logs import configure
from pipeline.events import PaymentFailed, PaymentRequested, Period
from pipeline.log.embedded import EmbeddedLog
from pipeline.processor.rate_limit import RateLimiter

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ALICE, BOB = "alice::1220", "bob::1220"


def failed(party: str, seconds: float, n: int = 0) -> PaymentFailed:
    return PaymentFailed(
        payment_id=f"{party}-{n}",
        at=T0 + timedelta(seconds=seconds),
        party=party,
        plan="prover",
        amount=Decimal(2),
        attempt=1,
        code="INSUFFICIENT_FUNDS",
        message="empty wallet",
        retryable=False,
        final=True,
    )


def test_one_alert_per_crossing_per_party() -> None:
    watch = FailureWatch(3, timedelta(minutes=10))
    alerts = [watch.observe(failed(ALICE, 60 * i, i)) for i in range(6)]
    assert [a is not None for a in alerts] == [False, False, True, False, False, False]
    assert alerts[2] is not None and alerts[2].party == ALICE and alerts[2].failures == 3
    assert watch.observe(failed(BOB, 0)) is None  # another party has its own count


def test_old_failures_leave_the_window_and_the_alert_re_arms() -> None:
    watch = FailureWatch(2, timedelta(minutes=10))
    assert watch.observe(failed(ALICE, 0, 1)) is None
    assert watch.observe(failed(ALICE, 60, 2)) is not None
    assert watch.observe(failed(ALICE, 3600, 3)) is None  # the first two are out of the window
    assert watch.observe(failed(ALICE, 3660, 4)) is not None  # crossed again: alerted again


def _request(i: int) -> PaymentRequested:
    return PaymentRequested(
        payment_id=f"r{i}",
        at=T0,
        party=ALICE,
        user_id="alice",
        plan="prover",
        period=Period(index=i, start=T0, end=T0 + timedelta(minutes=5)),
        amount=Decimal(2),
        receiver="app::1220",
        description="prover subscription payment",
        reason="scheduled",
    )


async def test_the_daemon_watch_logs_one_structured_warn_line(tmp_path: Path) -> None:
    out = io.StringIO()
    configure("info", "kv", [], stream=out)
    log = EmbeddedLog.open(tmp_path / "log", sync=False)
    try:
        await log.append_batch([_request(0), *(failed(ALICE, i, i) for i in range(5)), failed(BOB, 9)])
        watch = FailureWatch(5, timedelta(hours=1))
        task = asyncio.create_task(watch_failures(log, watch, 0))
        for _ in range(200):
            if "alert=payment_failures" in out.getvalue():
                break
            await asyncio.sleep(0.01)
        task.cancel()
    finally:
        await log.close()
        logging.getLogger().handlers = [h for h in logging.getLogger().handlers if not getattr(h, "_billing", False)]
    lines = [line for line in out.getvalue().splitlines() if "alert=payment_failures" in line]
    assert len(lines) == 1, out.getvalue()
    assert "level=warning" in lines[0] and f"party={ALICE}" in lines[0] and "failures=5" in lines[0]
    assert "window_secs=3600" in lines[0] and "last_code=INSUFFICIENT_FUNDS" in lines[0]


async def test_the_rate_limit_spaces_submissions() -> None:
    loop = asyncio.get_running_loop()
    limiter = RateLimiter(200, clock=loop.time)  # one slot every 5 ms
    start = loop.time()
    times: list[float] = []

    async def submit() -> None:
        await limiter.acquire()
        times.append(loop.time() - start)

    await asyncio.gather(*(submit() for _ in range(10)))
    # The n-th submission gets the n-th slot: never earlier than n * 5 ms after the start (a sleep
    # never ends early; only later, which this does not check).
    assert all(t >= n * 0.005 - 0.001 for n, t in enumerate(sorted(times))), times
    unlimited = RateLimiter(0)
    await asyncio.gather(*(unlimited.acquire() for _ in range(1000)))  # no limit: never waits
