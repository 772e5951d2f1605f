"""Keeping the window projection in step with the log: catch up, follow, and rebuild.

The projection store lives beside the log (`<ROCKSDB_PATH>/projections`). Deleting it,
or a new projection format, simply means folding the log again from the start.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable
from pathlib import Path

from pipeline.log import EventLog
from pipeline.rocks import Store
from projections.windows import WindowProjection

Progress = Callable[[int, int], None]
BATCH = 5000


def open_projection(path: Path) -> WindowProjection:
    """The projection at ``path``, emptied first if an older format wrote it."""
    projection = WindowProjection(Store.open(path))
    if not projection.current:
        projection.store.close()
        shutil.rmtree(path)
        projection = WindowProjection(Store.open(path))
    return projection


async def catch_up(log: EventLog, projection: WindowProjection, progress: Progress | None = None) -> int:
    """Fold every record the projection has not seen yet; return how many were folded."""
    last = await log.last_offset()
    if last is None or last < projection.position:
        return 0
    start = projection.position
    async for batch in log.read_batches(projection.position, stop=last + 1, size=BATCH):
        projection.apply(batch)
        projection.commit()
        if progress is not None:
            progress(projection.position - start, last + 1 - start)
    return projection.position - start


async def rebuild(log: EventLog, path: Path, *, start: int = 0, progress: Progress | None = None) -> WindowProjection:
    """Delete the projection and fold the log again (from ``start``: older events are left out)."""
    if path.exists():
        shutil.rmtree(path)
    projection = WindowProjection(Store.open(path))
    projection.position = start
    await catch_up(log, projection, progress)
    return projection


async def follow(log: EventLog, projection: WindowProjection, *, seconds: float = 1.0) -> None:
    """Fold records as they are appended; commit every BATCH records and at least every ``seconds``."""

    async def commit_now_and_then() -> None:
        while True:
            await asyncio.sleep(seconds)
            if projection.pending:
                projection.commit()

    committer = asyncio.create_task(commit_now_and_then())
    try:
        async for record in log.follow(projection.position):
            projection.apply([record])
            if projection.pending >= BATCH:
                projection.commit()
    finally:
        committer.cancel()
        if projection.pending:
            projection.commit()
