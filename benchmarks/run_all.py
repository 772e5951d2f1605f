"""`make bench`: every benchmark, one after the other, each in a process of its own.

    .venv/bin/python -m benchmarks.run_all [--only NAME ...] [--skip NAME ...]

Each one compares against its baseline in the same run, prints its table and rewrites its
own section of benchmarks/RESULTS.md. They run one at a time: on two cores, two benchmarks
side by side would each measure the other. The soak alone takes five minutes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS: dict[str, list[str]] = {
    "log": ["benchmarks.log_bench"],
    "projection": ["benchmarks.projection_bench"],
    "kafka": ["benchmarks.kafka_bench"],
    "payall": ["benchmarks.payall_bench"],
    "book": ["benchmarks.book_memory"],
    "soak": ["benchmarks.soak", "--record"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, help="run just these")
    parser.add_argument("--skip", nargs="+", choices=BENCHMARKS, default=[], help="leave these out")
    args = parser.parse_args()
    chosen = [name for name in (args.only or BENCHMARKS) if name not in args.skip]
    failed = []
    for name in chosen:
        print(f"\n=== {name}: python -m {' '.join(BENCHMARKS[name])}", flush=True)
        start = time.monotonic()
        code = subprocess.call([sys.executable, "-m", *BENCHMARKS[name]], cwd=ROOT)
        print(f"=== {name}: exit {code} after {time.monotonic() - start:.0f} s", flush=True)
        if code != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)} (their sections of RESULTS.md were not rewritten)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
