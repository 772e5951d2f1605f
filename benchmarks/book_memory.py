"""The processor's payment book at projection_bench scale: daemon RSS, book RSS and fold time.

    .venv/bin/python -m benchmarks.book_memory [--events 1000000] [--users 10000] [--baseline SRC]

Writes projection_bench's log (three records per payment, 1 in 50 failing for good) and its
projection once, then measures a real `billing start` serving them (VmRSS once it answers),
and, in a fresh process, the RSS the folded book holds and the fold's time per record. With
``--baseline SRC`` (another checkout, e.g. main) the daemon is also measured running that
code (``PYTHONPATH=SRC``) on the same files, and its book folds the same stream, in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.machine import record, table
from benchmarks.projection_bench import daemon_rss, replay, write_log

FOLD = """
import gc, sys, time
from pathlib import Path
from benchmarks.projection_bench import payments
def rss():
    status = Path("/proc/self/status").read_text()
    return next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS")) / 1024
gc.collect()
book, offset, seconds, before = PaymentBook(), 0, 0.0, rss()
for batch in payments(int(sys.argv[1]), int(sys.argv[2])):
    records = [Recorded(offset + i, e) for i, e in enumerate(batch)]
    offset += len(records)
    start = time.perf_counter()
    for record in records:
        book.apply(record)
    seconds += time.perf_counter() - start
    del records, batch
gc.collect()
print(rss() - before, seconds / offset * 1e6)
"""


def fold(events: int, users: int, src: str | None = None) -> tuple[float, float]:
    """In a fresh process (running ``src``'s code if given): the RSS (MB) the folded book
    holds, fragmentation included, and the fold's microseconds per record."""
    env = dict(os.environ) | ({"PYTHONPATH": src} if src else {})
    out = subprocess.run([sys.executable, "-c", FOLD, str(events), str(users)], capture_output=True, text=True,
                         check=True, cwd=Path(__file__).resolve().parents[1], env=env)
    held, per_record = map(float, out.stdout.split())
    return held, per_record


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
    for name, src in ([("baseline", args.baseline)] if args.baseline else []) + [("this checkout", None)]:
        held, per_record = fold(args.events, args.users, src)
        rows += [(f"book RSS in a fresh process, {name}", f"{held:.0f} MB"),
                 (f"book fold time per record, {name}", f"{per_record:.2f} µs")]
    body = table(rows, ("measure", "result"))
    if args.events == 1_000_000 and args.users == 10_000:
        record("Payment book memory (benchmarks/book_memory.py)", body)
    else:
        print(body)  # a trial run: RESULTS.md keeps the full-scale figures


if __name__ == "__main__":
    main()
