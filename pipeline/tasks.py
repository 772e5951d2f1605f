"""Stopping asyncio tasks for sure: the daemon's parts, a worker's partition runners."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

logger = logging.getLogger(__name__)


async def cancel_and_wait(tasks: Iterable[asyncio.Task[Any]], *, grace: float = 1.0) -> None:
    """Cancel ``tasks`` and wait until every one has ended (their results and errors stay on them).

    A task still running ``grace`` seconds after its cancel is cancelled again: a library can
    swallow a cancellation (aiokafka's consumer sometimes does while it stops), and a task left
    running would stall a rebalance or keep a stopping daemon alive.
    """
    pending = set(tasks)
    for task in pending:
        task.cancel()
    while pending:
        _, pending = await asyncio.wait(pending, timeout=grace)
        for task in pending:
            logger.warning("a task ignored its cancel; cancelling it again", extra={"task": task.get_name()})
            task.cancel()
