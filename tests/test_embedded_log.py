"""The embedded RocksDB log: the shared contract, plus followers, locks, corruption and kill -9."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncGenerator
from pathlib import Path

import pytest

from pipeline.errors import StoreBusy
from pipeline.events import Unreadable
from pipeline.log.embedded import EmbeddedLog, offset_key
from pipeline.log.store import Store
from tests.log_contract import EventLogContract, collect, event, payment_id

ROOT = Path(__file__).resolve().parents[1]


class TestEmbeddedLog(EventLogContract):
    async def open_log(self, path: Path) -> EmbeddedLog:
        return EmbeddedLog.open(path / "log", sync=False)


async def test_a_second_writer_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    log = EmbeddedLog.open(tmp_path / "log")
    with pytest.raises(StoreBusy, match="in use by another process"):
        EmbeddedLog.open(tmp_path / "log")
    await log.close()


async def _log_with(path: Path, events: int, raw: list[tuple[bytes, bytes]]) -> EmbeddedLog:
    """A log of ``events`` events plus ``raw`` pairs written behind its back, reopened."""
    log = EmbeddedLog.open(path)
    await log.append_batch([event(i) for i in range(events)])
    await log.close()
    store = Store.open(path)
    store.write(raw)
    store.close()
    return EmbeddedLog.open(path)


async def test_corrupt_and_foreign_records_are_reported_and_the_rest_survives(tmp_path: Path) -> None:
    log = await _log_with(
        tmp_path / "log",
        3,
        [
            (offset_key(3), b"\x93garbage"),
            (offset_key(4), b'{"v":1,"event":{"type":"payment.refunded"}}'),
            (b"foreign-key", b"x"),
        ],
    )
    await log.append(event(5))
    records = [r async for r in log.read()]
    good = [r.offset for r in records if not isinstance(r.event, Unreadable)]
    bad = {r.offset: r.event.reason for r in records if isinstance(r.event, Unreadable)}
    assert good == [0, 1, 2, 5]
    assert "not a billing event" in bad[3] and "payment.refunded" in bad[4]
    assert "offset 3" in bad[3] and "foreign key" in bad[5] and "after offset 5" in bad[5]
    await log.close()


async def test_follow_reports_a_foreign_key_once_and_neither_repeats_nor_skips_events(tmp_path: Path) -> None:
    # The foreign key sorts after every offset: each new read from the end meets it again.
    log = await _log_with(tmp_path / "log", 2, [(b"zz-foreign", b"x")])
    seen: list[tuple[int, bool]] = []
    follower = log.follow(0)
    assert isinstance(follower, AsyncGenerator)  # an async generator, closed at the end
    for i in range(2, 5):
        await log.append(event(i))
        while len(seen) < i + 2:  # the events so far, and the foreign record once
            record = await anext(follower)
            seen.append((record.offset, isinstance(record.event, Unreadable)))
    assert seen == [(0, False), (1, False), (2, False), (2, True), (3, False), (4, False)]
    await follower.aclose()
    await log.close()


def _child(path: Path, mode: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "log_writer_child.py"), str(path), mode],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


@pytest.mark.parametrize("mode", ["sync", "nosync"])
async def test_every_append_that_returned_survives_kill_9(tmp_path: Path, mode: str) -> None:
    path = tmp_path / "log"
    reported: list[int] = []
    for round_ in range(3):
        child = _child(path, mode)
        assert child.stdout is not None
        want = len(reported) + 150 + 50 * round_
        while len(reported) < want:
            line = child.stdout.readline()
            assert line, "the writer died on its own"
            reported.append(int(line))
        child.send_signal(signal.SIGKILL)  # no clean-up, no flush: a crash
        child.wait(timeout=10)
        child.stdout.close()
    log = EmbeddedLog.open(path)
    stored = {r.offset: r async for r in log.read()}
    await log.close()
    assert all(o in stored for o in reported), "an acknowledged append was lost"
    assert all(payment_id(stored[o]) == f"p{o:06d}" for o in reported)
    assert sorted(stored) == list(range(len(stored)))  # contiguous, no holes


async def test_a_follower_in_another_process_sees_new_records(tmp_path: Path) -> None:
    path = tmp_path / "log"
    log = EmbeddedLog.open(path)
    await log.append(event(0))
    code = (
        "import asyncio,sys\nfrom pipeline.log.embedded import EmbeddedLog\n"
        "async def m():\n  log=EmbeddedLog.open(sys.argv[1], follow=True)\n"
        "  async for r in log.follow(0):\n    print(r.offset, flush=True)\n    if r.offset==3: return\n"
        "asyncio.run(m())"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    await asyncio.sleep(0.5)
    for i in range(1, 4):
        await log.append(event(i))
    out, _ = await asyncio.to_thread(child.communicate, timeout=20)
    assert out.split() == ["0", "1", "2", "3"]
    await log.close()


async def test_read_from_the_middle_and_past_the_end(tmp_path: Path) -> None:
    log = EmbeddedLog.open(tmp_path / "log", sync=False)
    await log.append_batch([event(i) for i in range(5)])
    assert await collect(log, 3) == [3, 4]
    assert await collect(log, 99) == []
    await log.close()
