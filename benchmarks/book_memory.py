"""The processor's payment book at projection_bench scale: daemon RSS, book RSS and fold time.

    .venv/bin/python -m benchmarks.book_memory [--events 1000000] [--users 10000] [--baseline SRC]

Writes projection_bench's log (three records per payment, 1 in 50 failing for good) and its
projection once, then measures a real `billing start` serving them (VmRSS once it answers),
and, in this process, the RSS the folded book holds and the fold's time per record. With
``--baseline SRC`` (another checkout, e.g. main) the daemon is also measured running that
code (``PYTHONPATH=SRC``) on the same files, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.machine import record, table
from benchmarks.projection_bench import daemon_rss, payments, replay, write_log
from pipeline.events import Recorded
from pipeline.payment_book import PaymentBook


def rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")) / 1024


def fold(events: int, users: int) -> tuple[float, float, PaymentBook]:
    """RSS (MB) the book holds after folding the stream, and microseconds per record."""
    gc.collect()
    book, offset, seconds, before = PaymentBook(), 0, 0.0, rss_mb()
    for batch in payments(events, users):
        records = [Recorded(offset + i, e) for i, e in enumerate(batch)]
        offset += len(records)
        start = time.perf_counter()
        for one in records:
            book.apply(one)
        seconds += time.perf_counter() - start
        del records, batch
    gc.collect()
    return rss_mb() - before, seconds / offset * 1e6, book


def baseline_rss(src: str, state: Path, users: int) -> float:
    """The daemon's RSS with ``src``'s code first on the path (the same log and projection)."""
    saved = dict(os.environ)
    os.environ["PYTHONPATH"] = src
    try:
        return daemon_rss(state, users)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--baseline", metavar="SRC", help="also measure the daemon running this checkout")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="book-memory-"))
    try:
        asyncio.run(write_log(work / "big" / "log", args.events, args.users))
        asyncio.run(replay(work / "big" / "log", work / "big" / "projections"))[0].store.close()
        rows = []
        if args.baseline:
            base = baseline_rss(args.baseline, work / "big", args.users)
            rows.append((f"daemon RSS, baseline ({args.baseline})", f"{base:.0f} MB"))
        rows.append(("daemon RSS, this checkout", f"{daemon_rss(work / 'big', args.users):.0f} MB"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    held, per_record, book = fold(args.events, args.users)
    rows += [("book RSS in process (after the fold, gc'd)", f"{held:.0f} MB"),
             ("book fold time per record", f"{per_record:.2f} µs"),
             ("open / failed for good / confirmed",
              f"{len(book.payments)} / {len(book.failed)} / {len(book.confirmed)}")]
    body = table(rows, ("measure", "result"))
    if args.events == 1_000_000 and args.users == 10_000:
        record("Payment book memory (benchmarks/book_memory.py)", body)
    else:
        print(body)  # a trial run: RESULTS.md keeps the full-scale figures


if __name__ == "__main__":
    main()
