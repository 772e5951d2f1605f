"""How many submissions to keep in flight: additive increase, multiplicative decrease (AIMD).

A participant tracks at most `max-commands-in-flight` submit-and-wait commands (Canton's
default 256, LocalNet 30) and answers PARTICIPANT_BACKPRESSURE beyond that. The limit is not
visible to clients and other applications share it, so the processor learns it: `Aimd` is the
pure decision (a value in, a value out), `SubmitWindow` the asyncio gate that applies it.

- Slow start: from ``start``, +1 per accepted submission (doubling per round trip) until
  the first backpressure; then +1/limit per accepted submission (+1 per round trip), and
  only while the window holds submissions back (an idle window proves nothing).
- On backpressure the limit is multiplied by ``decrease`` once per round trip: the
  rejections of submissions started before the last decrease are the same overload.
  The participant's limit is a hard count, not a congested queue, and a refused submission
  costs one quick round trip, so a mild decrease (0.97) keeps the window close to the limit;
  halving would idle a quarter of the capacity on average.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from pipeline.canton.port import Accepted, Rejected

logger = logging.getLogger(__name__)

BACKPRESSURE = "PARTICIPANT_BACKPRESSURE"
MAX_TRIES = 100  # backpressure answers to one submission before it counts as a failed attempt
PATIENCE = timedelta(minutes=5)  # ... or this long
MAX_PAUSE = 2.0  # seconds between two tries of one submission, at most


@dataclass(frozen=True)
class Aimd:
    """The submission window: ``limit`` (fractional; ``size`` is what is used)."""

    ceiling: int
    limit: float = 1.0
    floor: int = 1
    decrease: float = 0.97
    slow_start: bool = True
    #: Bumped at each decrease; a rejection of a submission started in an older epoch is ignored.
    epoch: int = 0

    @classmethod
    def starting(cls, ceiling: int, start: int = 8) -> Aimd:
        return cls(ceiling=ceiling, limit=float(min(max(start, 1), ceiling)))

    @property
    def size(self) -> int:
        return max(self.floor, min(self.ceiling, int(self.limit)))

    def accepted(self, limiting: bool) -> Aimd:
        """A submission got through; ``limiting``: the window held submissions back (some
        waited for a slot, or all slots were taken)."""
        if not limiting:
            return self  # no evidence that a larger window would be used, or accepted
        step = 1.0 if self.slow_start else 1.0 / self.limit
        return replace(self, limit=min(float(self.ceiling), self.limit + step))

    def backpressure(self, started_epoch: int) -> Aimd:
        """The participant refused a submission started in ``started_epoch``."""
        if started_epoch != self.epoch:
            return self  # already decreased for this overload
        limit = max(float(self.floor), self.limit * self.decrease)
        return replace(self, limit=limit, slow_start=False, epoch=self.epoch + 1)


class SubmitWindow:
    """At most `Aimd.size` submissions at once; `slot` yields the epoch the submission started in."""

    def __init__(self, controller: Aimd) -> None:
        self.controller = controller
        self.in_flight = 0
        self.waiting = 0
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[int]:
        async with self._changed:
            self.waiting += 1
            try:
                await self._changed.wait_for(lambda: self.in_flight < self.controller.size)
            finally:
                self.waiting -= 1
            self.in_flight += 1
        try:
            yield self.controller.epoch
        finally:
            async with self._changed:
                self.in_flight -= 1
                self._changed.notify(max(1, self.controller.size - self.in_flight))

    def accepted(self) -> None:
        limiting = self.waiting > 0 or self.in_flight >= self.controller.size
        self.controller = self.controller.accepted(limiting)

    def backpressure(self, started_epoch: int) -> None:
        self.controller = self.controller.backpressure(started_epoch)


async def submit_in_window(
    window: SubmitWindow,
    submit: Callable[[], Awaitable[Accepted | Rejected]],
    *,
    clock: Callable[[], datetime],
    rng: random.Random,
) -> Accepted | Rejected:
    """``submit()`` within the window. PARTICIPANT_BACKPRESSURE is contention, not a failed
    attempt: nothing was submitted, so the same submission (same submissionId) waits for the
    narrowed window and goes again, with nothing recorded. Bounded by `MAX_TRIES` and
    `PATIENCE`; past them the backpressure is returned and counts as a failed attempt."""
    deadline = clock() + PATIENCE
    result: Accepted | Rejected | None = None
    for tries in range(MAX_TRIES):
        async with window.slot() as epoch:
            result = await submit()
            if not (isinstance(result, Rejected) and result.code == BACKPRESSURE):
                window.accepted()
                return result
            window.backpressure(epoch)
        if clock() >= deadline:
            break
        logger.debug(
            "participant backpressure; submitting again", extra={"window": window.controller.size, "try": tries + 1}
        )
        # Others share the participant: do not hammer it while our own window is not full.
        await asyncio.sleep(min(MAX_PAUSE, 0.02 * 2**tries) * (0.5 + rng.random()))
    assert result is not None
    return result
