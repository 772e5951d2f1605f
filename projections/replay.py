"""Keeping the window projection in step with the log: catch up, follow, and rebuild.

The projection store lives beside the log (`<ROCKSDB_PATH>/projections`). Deleting it,
or a new projection format, simply means folding the log again from the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import msgspec

from pipeline.errors import ReplayFailed
from pipeline.events import Recorded
from pipeline.log.embedded import EmbeddedLog
from pipeline.log.port import EventLog
from pipeline.log.store import Store
from projections.presum import partial_decoder
from projections.windows import WindowProjection

Progress = Callable[[int, int], None]
BATCH = 5000  # records per commit while following
READ = 1000  # records per read while catching up (bigger lists cost more than they save)
# Records per commit while catching up: larger chunks write shared rows less often but hold more in memory.
CHUNK = 100_000
#: Records to fold from which a second process reads the log: below it, that process's start-up
#: costs more than it saves.
PARALLEL_FROM = 200_000


class Retention(msgspec.Struct, frozen=True):
    """How long window rows are kept (`RETENTION_DAYS`) and the clock that says what is old."""

    days: int
    clock: Callable[[], datetime]


def _open(path: Path, retention: Retention | None) -> WindowProjection:
    # No fsync: each commit is still one atomic batch, and a power cut loses only the last
    # commits, which are folded again from the log (the log itself is fsynced).
    store = Store.open(path, sync=False)
    if retention is None:
        return WindowProjection(store)
    return WindowProjection(store, retention_days=retention.days, clock=retention.clock)


def open_projection(path: Path, retention: Retention | None = None) -> WindowProjection:
    """The projection at ``path``, emptied first if an older format wrote it."""
    projection = _open(path, retention)
    if not projection.current:
        projection.store.close()
        shutil.rmtree(path)
        projection = _open(path, retention)
    return projection


async def catch_up(
    log: EventLog,
    projection: WindowProjection,
    progress: Progress | None = None,
    *,
    parallel_from: int = PARALLEL_FROM,
    chunk: int = CHUNK,
) -> int:
    """Fold every record the projection has not seen yet; return how many were folded.

    One commit per ``chunk`` records: a row many outcomes share is written once per chunk,
    not once per read. Each commit carries its log position, so a crash in the middle of a
    replay (or of the rebuild at start) resumes from the last chunk written. With
    ``parallel_from`` records or more to fold from the embedded log, a second process reads
    and sums them (`projections.presum`) while this one writes.
    """
    last = await log.last_offset()
    start = projection.position
    if last is not None and last >= start:
        with collector_paused():
            if isinstance(log, EmbeddedLog) and last + 1 - start >= parallel_from:
                await _fold_from_reader(log.path, projection, last + 1, chunk, progress)
            else:
                await _fold(log, projection, last + 1, chunk, progress)
    if projection.needs_commit:
        projection.commit()  # a slice of retention's pruning, even when nothing was new
    projection.store.wait()
    return projection.position - start


async def _fold(log: EventLog, projection: WindowProjection, stop: int, chunk: int, progress: Progress | None) -> None:
    start = projection.position
    async for batch in log.read_batches(start, stop=stop, size=READ, outcomes_only=True):
        projection.apply(batch)
        if projection.pending >= chunk:
            projection.commit(behind=True)  # written while the next chunk is folded
        if progress is not None:
            progress(projection.position - start, stop - start)


async def _fold_from_reader(
    path: Path, projection: WindowProjection, stop: int, chunk: int, progress: Progress | None
) -> None:
    """Fold the sums of records up to ``stop`` that the reader process hands over, one commit each."""
    if projection.pending:
        projection.commit()  # `absorb` starts from a committed state
    start = projection.position
    code = Path(__file__).resolve().parents[1]  # the reader imports this checkout, as we do
    confirmations = [str(projection.store.path)] if projection.holds_confirmations else []
    reader = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "projections.presum",
        str(path),
        str(start),
        str(stop),
        str(projection.horizon),
        str(chunk),
        *confirmations,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        limit=1 << 20,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")]))},
    )
    assert reader.stdout is not None and reader.stderr is not None
    error = asyncio.create_task(reader.stderr.read())  # read all along: a full pipe would stall the reader
    try:
        while projection.position < stop:
            try:
                size = int.from_bytes(await reader.stdout.readexactly(4), "big")
                partial = partial_decoder.decode(await reader.stdout.readexactly(size))
            except asyncio.IncompleteReadError:
                break  # the reader stopped early: its error is below
            projection.absorb(partial)
            projection.commit(behind=True)  # written while the reader sums the next chunk
            if progress is not None:
                progress(projection.position - start, stop - start)
    finally:
        if reader.returncode is None and projection.position < stop:
            with contextlib.suppress(ProcessLookupError):
                reader.kill()  # we were cancelled, or failed: the reader goes too
        await reader.wait()
        message = (await error).decode(errors="replace").strip()
    if projection.position < stop:
        raise ReplayFailed(
            f"the replay's log reader stopped at offset {projection.position} of {stop} "
            f"(exit {reader.returncode}): {message or 'no message'}. What was folded is kept; "
            "run the command again to resume from there."
        )


class _Pauses:
    """How many catch-ups have the collector paused (the Kafka worker runs one per partition), and
    whether it ran before the first of them."""

    depth = 0
    was_enabled = False


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """No cyclic garbage collection while catching up: it would walk the chunk's hundred thousand
    live rows again and again. The fold makes no cycles, so reference counting frees everything;
    the collector resumes when the last catch-up ends."""
    if _Pauses.depth == 0:
        _Pauses.was_enabled = gc.isenabled()
    gc.disable()
    _Pauses.depth += 1
    try:
        yield
    finally:
        _Pauses.depth -= 1
        if _Pauses.depth == 0 and _Pauses.was_enabled:
            gc.enable()


async def rebuild(
    log: EventLog,
    path: Path,
    *,
    start: int = 0,
    progress: Progress | None = None,
    retention: Retention | None = None,
    parallel_from: int = PARALLEL_FROM,
) -> WindowProjection:
    """Delete the projection and fold the log again (from ``start``: older events are left out)."""
    if path.exists():
        shutil.rmtree(path)
    projection = _open(path, retention)
    projection.position = start
    await catch_up(log, projection, progress, parallel_from=parallel_from)
    return projection


async def keep_partition(log: EventLog, path: Path, opened: Callable[[WindowProjection], None] | None = None) -> None:
    """A Kafka worker's projection of one partition: open it at ``path``, catch up, then follow until
    cancelled (the partition revoked). ``opened`` sees the projection (the benchmark watches it)."""
    projection = open_projection(path)
    if opened is not None:
        opened(projection)
    try:
        await catch_up(log, projection)
        await follow(log, projection)
    finally:
        projection.store.close()


async def follow(
    log: EventLog,
    projection: WindowProjection,
    *,
    seconds: float = 1.0,
    observe: Callable[[Recorded], None] | None = None,
) -> None:
    """Fold records as they are appended; commit every BATCH records and at least every ``seconds``.

    The same commits carry retention's pruning, a bounded slice each, also while no events come.
    ``observe`` sees every newly folded record (the OTel counters and payment spans).
    """

    async def commit_now_and_then() -> None:
        while True:
            await asyncio.sleep(seconds)
            if projection.needs_commit:
                projection.commit()

    committer = asyncio.create_task(commit_now_and_then())
    try:
        async for record in log.follow(projection.position):
            projection.apply([record])
            if observe is not None:
                observe(record)
            if projection.pending >= BATCH:
                projection.commit()
    finally:
        committer.cancel()
        if projection.pending:
            projection.commit()
