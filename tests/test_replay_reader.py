"""A long replay reads and sums the log in a second process (`projections.presum`).

What it folds must be byte for byte what one process folds, whatever the chunking, with
retention's horizon and unreadable records; and a reader that dies mid-replay must fail
the replay loudly, keep what was committed, and let the next catch-up finish the job.
"""

from __future__ import annotations

import os
import signal
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pipeline.errors import ReplayFailed
from pipeline.events import AnyEvent, PaymentConfirmed, PaymentFailed, PaymentSubmitted, encode
from pipeline.log.embedded import EmbeddedLog, offset_key
from pipeline.log.store import Store
from projections.replay import Retention, catch_up, open_projection
from projections.windows import WindowProjection
from tests.test_windows import NOW, PLANS, USERS, snapshot

NOT_AN_EVENT = b"\xc1 not an event"


def events(n: int) -> list[AnyEvent]:
    """Submissions and outcomes (confirmed, retried, final failures) over 40 days, out of time order;
    every 13th confirms an earlier payment again (half as far into the log: confirmed or not)."""
    out: list[AnyEvent] = []
    for i in range(n):
        at = NOW - timedelta(minutes=(i * 7919) % (40 * 1440))  # jumps back and forth in time
        common: dict[str, Any] = {
            "payment_id": f"p{i // 2 if i % 13 == 12 else i}",
            "at": at,
            "party": USERS[i % 3],
            "plan": PLANS[i % 2],
        }
        match i % 5 if i % 13 != 12 else 1:
            case 0:
                out.append(
                    PaymentSubmitted(
                        payment_id=f"p{i}",
                        at=at,
                        command_id=f"c{i}",
                        submission_id=f"s{i}",
                        attempt=1,
                        ledger_offset_before=i,
                    )
                )
            case 1 | 2 | 3:
                out.append(PaymentConfirmed(**common, amount=Decimal(i % 97) / 8, update_id=f"u{i}"))
            case _:
                out.append(
                    PaymentFailed(
                        **common,
                        amount=Decimal(3),
                        attempt=1,
                        code="X",
                        message="no",
                        retryable=i % 2 == 0,
                        final=i % 2 == 1,
                    )
                )
    return out


def write_log(path: Path, n: int) -> int:
    """``n`` events with a record that is not an event every 97: straight into the store."""
    pairs = [(offset_key(i), NOT_AN_EVENT if i % 97 == 50 else encode(e)) for i, e in enumerate(events(n))]
    store = Store.open(path)
    store.write(pairs)
    store.close()
    return n


def rows(projection: WindowProjection) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in projection.store.scan() if not k.startswith(b"\x00swept")]


def retention() -> Retention:
    return Retention(days=20, clock=lambda: NOW)


@pytest.mark.parametrize("kept", [None, retention()], ids=["everything", "20 days kept"])
async def test_a_replay_read_by_a_second_process_equals_one_folded_here(tmp_path: Path, kept: Retention | None) -> None:
    write_log(tmp_path / "log", 6000)
    log = EmbeddedLog.open(tmp_path / "log", sync=False)
    here = open_projection(tmp_path / "here", kept)
    there = open_projection(tmp_path / "there", kept)
    assert await catch_up(log, here, parallel_from=10**9) == 6000
    assert await catch_up(log, there, parallel_from=1, chunk=700) == 6000  # nine frames
    assert rows(there) == rows(here) and snapshot(there) == snapshot(here)
    assert there.unreadable == here.unreadable == sum(1 for i in range(6000) if i % 97 == 50)
    assert there.metrics("30d", NOW).payment_count > 0
    for p in (here, there):
        p.store.close()
    await log.close()


async def test_a_replay_resumes_in_a_second_process_from_where_the_projection_stands(tmp_path: Path) -> None:
    write_log(tmp_path / "log", 5000)
    log = EmbeddedLog.open(tmp_path / "log", sync=False)
    reference = open_projection(tmp_path / "reference")
    await catch_up(log, reference, parallel_from=10**9)
    projection = open_projection(tmp_path / "p")
    async for batch in log.read_batches(0, stop=1234):
        projection.apply(batch)  # folded live, not committed yet: the reader starts after a commit
    await catch_up(log, projection, parallel_from=1, chunk=1000)
    assert projection.position == 5000 and rows(projection) == rows(reference)
    assert any(k.startswith(b"k") for k, _ in rows(reference))  # it looked up confirmations committed before
    for p in (reference, projection):
        p.store.close()
    await log.close()


def _readers() -> list[int]:
    """Our `projections.presum` children, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == os.getpid() and b"projections.presum" in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue  # not a process, or gone
    return found


async def test_a_killed_reader_fails_the_replay_keeps_what_was_committed_and_the_next_one_finishes(
    tmp_path: Path,
) -> None:
    write_log(tmp_path / "log", 40_000)
    log = EmbeddedLog.open(tmp_path / "log", sync=False)
    reference = open_projection(tmp_path / "reference")
    await catch_up(log, reference, parallel_from=10**9)
    projection = open_projection(tmp_path / "p")
    killed: list[int] = []

    def kill_the_reader(done: int, total: int) -> None:
        if not killed:
            killed.extend(_readers())
            for pid in killed:
                os.kill(pid, signal.SIGKILL)

    with pytest.raises(ReplayFailed, match=r"log reader stopped at offset \d+ of 40000 \(exit -9\).*run the"):
        await catch_up(log, projection, kill_the_reader, parallel_from=1, chunk=1000)
    assert len(killed) == 1
    projection.store.close()
    projection = open_projection(tmp_path / "p")  # a restart: what was committed is there
    assert 1000 <= projection.position < 40_000 and projection.position % 1000 == 0
    await catch_up(log, projection, parallel_from=1, chunk=1000)
    assert projection.position == 40_000 and rows(projection) == rows(reference)
    assert _readers() == []  # none left behind
    for p in (reference, projection):
        p.store.close()
    await log.close()
