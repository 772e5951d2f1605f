"""Window projection: replay rate beside the raw log read, query time at two scales, daemon RSS.

    .venv/bin/python -m benchmarks.projection_bench [--events 1000000] [--users 10000] [--no-daemon]

Each payment is three log records (requested, submitted, and confirmed or, 1 in 50, a
final failure), spread evenly over the 30 days before NOW across ``--users`` users on two
plans. The 10,000-event run uses the same 30 days, so the query comparison is same span,
100× the events.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from benchmarks.machine import record, table
from benchmarks.process_rss import daemon_rss, projection_rss
from pipeline.events import AnyEvent, PaymentConfirmed, PaymentFailed, PaymentRequested, PaymentSubmitted, Period
from pipeline.log.embedded import EmbeddedLog
from projections.replay import PARALLEL_FROM, READ, rebuild
from projections.windows import WINDOWS, WindowProjection

NOW = datetime(2026, 11, 24, 12, 0, 30, tzinfo=UTC)
SPAN = timedelta(days=30)
BATCH = 50_000


def party(user: int) -> str:
    return f"user{user}::1220{user:064x}"


def payments(n_events: int, users: int) -> Iterator[list[AnyEvent]]:
    """The benchmark's event stream, in batches, three records per payment."""
    count = n_events // 3
    step = (SPAN - timedelta(minutes=2)) / count  # all inside the 30d window that ends at NOW
    batch: list[AnyEvent] = []
    for k in range(count):
        at, user = NOW - timedelta(minutes=1) - step * (count - 1 - k), k % users
        plan, price = ("verifier", Decimal(1)) if k % 4 == 3 else ("prover", Decimal(2))
        pid = f"{k:032x}"
        batch.append(
            PaymentRequested(
                payment_id=pid,
                at=at,
                party=party(user),
                user_id=f"user{user}",
                plan=plan,
                period=Period(index=k, start=at, end=at + timedelta(minutes=5)),
                amount=price,
                receiver="app::1220" + "ab" * 32,
                description="bench",
            )
        )
        batch.append(
            PaymentSubmitted(
                payment_id=pid, at=at, command_id=f"c{pid}", submission_id=f"s{pid}", attempt=1, ledger_offset_before=k
            )
        )
        if k % 50 == 49:
            batch.append(
                PaymentFailed(
                    payment_id=pid,
                    at=at,
                    party=party(user),
                    plan=plan,
                    amount=price,
                    attempt=5,
                    code="INSUFFICIENT_FUNDS",
                    message="bench",
                    retryable=False,
                    final=True,
                )
            )
        else:
            batch.append(
                PaymentConfirmed(
                    payment_id=pid,
                    at=at + timedelta(seconds=2),
                    party=party(user),
                    plan=plan,
                    amount=price,
                    update_id=f"1220{k:060x}",
                    completion_offset=k,
                    round=1,
                )
            )
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


async def write_log(path: Path, n_events: int, users: int) -> int:
    log = EmbeddedLog.open(path, sync=False)
    for batch in payments(n_events, users):
        await log.append_batch(batch)
    last = await log.last_offset()
    await log.close()
    return 0 if last is None else last + 1


async def read_rate(path: Path, *, outcomes_only: bool = False) -> tuple[int, float]:
    log = EmbeddedLog.open(path)
    start = time.perf_counter()
    sizes = [len(batch) async for batch in log.read_batches(0, size=READ, outcomes_only=outcomes_only)]
    seconds = time.perf_counter() - start
    await log.close()
    return sum(sizes), seconds


async def replay(
    log_path: Path, projection_path: Path, parallel_from: int = PARALLEL_FROM
) -> tuple[WindowProjection, float, float, float]:
    """The projection, the wall seconds of its rebuild, and the CPU seconds of this process and its children."""
    log = EmbeddedLog.open(log_path)
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    projection = await rebuild(log, projection_path, parallel_from=parallel_from)
    seconds = time.perf_counter() - start
    own_after, children_after = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    await log.close()

    def cpu(a: resource.struct_rusage, b: resource.struct_rusage) -> float:
        return b.ru_utime - a.ru_utime + b.ru_stime - a.ru_stime

    return projection, seconds, cpu(own, own_after), cpu(children, children_after)


def query_ms(projection: WindowProjection, **scope: str) -> float:
    """Median time of one query of all seven windows (after a warm-up)."""
    return query_pair(projection, projection, **scope)[0]


def query_pair(a: WindowProjection, b: WindowProjection, **scope: str) -> tuple[float, float]:
    """Median times (ms) of the same query on ``a`` and ``b``, taken in turns, so that the load of a
    shared machine falls on both alike (apart, the ratio of two sub-millisecond medians swung 1.2-2×)."""
    times: tuple[list[float], list[float]] = ([], [])
    for projection in (a, b):
        projection.all_windows(NOW, **scope)  # warm-up
    for _ in range(30):
        for projection, out in zip((a, b), times, strict=True):
            start = time.perf_counter()
            projection.all_windows(NOW, **scope)
            out.append(time.perf_counter() - start)
    return statistics.median(times[0]) * 1000, statistics.median(times[1]) * 1000


async def scale(work: Path, n: int, users: int) -> tuple[dict[str, float], WindowProjection]:
    count = await write_log(work / "log", n, users)
    read_count, read_s = await read_rate(work / "log")
    assert read_count == count
    outcomes_count, outcomes_s = await read_rate(work / "log", outcomes_only=True)
    assert outcomes_count == count
    alone, alone_s, _, _ = await replay(work / "log", work / "alone", parallel_from=count + 1)
    alone.store.close()
    projection, replay_s, own_cpu, reader_cpu = await replay(work / "log", work / "projections")
    month = projection.metrics("30d", NOW)
    assert month.payment_count == count // 3, (month.payment_count, count)
    out = {
        "events": count,
        "read": count / read_s,
        "read_outcomes": count / outcomes_s,
        "replay": count / replay_s,
        "alone": count / alone_s,
        "replay_s": replay_s,
        "own_cpu": own_cpu,
        "reader_cpu": reader_cpu,
        "plan": query_ms(projection, plan="prover"),
        "user": query_ms(projection, user=party(7)),
        "users": month.active_users,
    }
    return out, projection  # the overall query is timed beside the other scale's (`query_pair`)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--no-daemon", action="store_true", help="skip the daemon RSS measurement")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="projection-bench-"))
    try:
        small, small_projection = asyncio.run(scale(work / "small", 10_000, args.users))
        big, big_projection = asyncio.run(scale(work / "big", args.events, args.users))
        small["query"], big["query"] = query_pair(small_projection, big_projection)
        small_projection.store.close()
        big_projection.store.close()
        parties = [party(i) for i in range(args.users)]
        rss = None if args.no_daemon else (daemon_rss(work / "big", parties), projection_rss(work / "big", NOW))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    body = report(small, big, rss, args.users)
    if args.events == 1_000_000 and args.users == 10_000:
        record("Window projection (benchmarks/projection_bench.py)", body)
    else:
        print(body)  # a trial run: RESULTS.md keeps the full-scale figures


def report(small: dict[str, float], big: dict[str, float], rss: tuple[float, float] | None, users: int) -> str:
    def rate(r: float) -> str:
        return f"{r:,.0f} ev/s"

    def ms(t: float) -> str:
        return f"{t:.2f} ms"

    rows = [
        (f"raw log read + decode, {big['events']:,.0f} events (baseline)", rate(big["read"]), "–"),
        ("raw log read + decode of outcomes only (what a replay reads)", rate(big["read_outcomes"]), "–"),
        (f"replay (read + decode + fold + commit), {big['events']:,.0f} events", rate(big["replay"]), "≥ 250,000 ev/s"),
        ("  the same replay in one process (no log reader process)", rate(big["alone"]), "–"),
        ("query, all 7 windows, overall, 10,000 events", ms(small["query"]), "–"),
        (
            f"query, all 7 windows, overall, {big['events']:,.0f} events",
            ms(big["query"]),
            f"≤ 5 ms and ≤ 1.5× ({big['query'] / small['query']:.2f}×)",
        ),
        (f"query, all 7 windows, one plan, {big['events']:,.0f} events", ms(big["plan"]), "–"),
        (f"query, all 7 windows, one user, {big['events']:,.0f} events", ms(big["user"]), "–"),
        (
            "daemon RSS (VmRSS) serving that log and projection",
            f"{rss[0]:.0f} MB" if rss else "not measured",
            "≤ 150 MB",
        ),
        (
            "  of which the projection part (a process that only opens, catches up, queries)",
            f"{rss[1]:.0f} MB" if rss else "not measured",
            "–",
        ),
    ]
    body = table(rows, ("measure", "result", "target"))
    return body + (
        f"\n\n{users:,} users on two plans, payments spread over 30 days; three records per payment "
        f"(requested, submitted, outcome). Replay of {big['events']:,.0f} events took "
        f"{big['replay_s']:.1f} s, with {big['own_cpu']:.1f} CPU s in the folding process and "
        f"{big['reader_cpu']:.1f} in the log reader process it started (projections/presum.py); "
        f"{len(WINDOWS)} windows per query; medians of 30 queries (the two overall "
        f"ones taken in turns)."
    )


if __name__ == "__main__":
    main()
