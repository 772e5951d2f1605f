"""The stream processor: every `PaymentRequested` becomes at most one Canton transfer.

Delivery is at-least-once (the log is re-read after a crash); charging is exactly-once
because the ledger commandId is derived from the payment_id and every retry reuses it,
`PaymentSubmitted` is recorded before each attempt, and an attempt whose outcome is
unknown is looked up in the ledger's completions before anything is submitted again.

Start-up folds the whole log *before* acting, so a payment is never worked on from a
stale view. Many payments run at once (``max_in_flight``), one at a time per sender.

A step that fails with a classified, transient error (`CantonError`, a timeout) is tried
again later. Any other exception is a bug (or a store that cannot record): the processor
submits nothing more and `run` raises `ProcessorStopped`; a restart resumes from the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import random
from collections.abc import Callable, Collection
from datetime import datetime, timedelta

from pipeline.canton.errors import CantonError
from pipeline.canton.port import CantonPort
from pipeline.errors import ProcessorStopped
from pipeline.events import AnyEvent, Recorded
from pipeline.log.port import EventLog
from pipeline.processor.book import AnyState, PaymentBook, PaymentState, next_action
from pipeline.processor.rate_limit import RateLimiter
from pipeline.processor.retry import RetryPolicy
from pipeline.processor.step import Steps
from pipeline.processor.submit_window import Aimd, SubmitWindow

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Progress = Callable[[int, int], None]
#: What a step may raise and still be tried again: classified and transient. Nothing was recorded
#: for the step, and a payment already submitted is looked up on the ledger before anything else.
RETRIED = (CantonError, TimeoutError)


class Processor:
    """Runs payments from the log through Canton. One per log writer."""

    def __init__(
        self,
        log: EventLog,
        canton: CantonPort,
        *,
        clock: Clock,
        policy: RetryPolicy | None = None,
        max_in_flight: int = 256,
        rate_limit: float = 0.0,
        verify_timeout: float = 30.0,
        rng: random.Random | None = None,
        dedup_seconds: int = 172800,
    ) -> None:
        self.log = log
        self.clock = clock
        self.policy = policy or RetryPolicy()
        self.book = PaymentBook()
        self.position = 0
        self._slots = asyncio.Semaphore(max_in_flight)
        # The participant's own in-flight limit is learnt (AIMD), up to ours.
        self.submit_window = SubmitWindow(Aimd.starting(max_in_flight))
        self.steps = Steps(
            canton=canton,
            book=self.book,
            append=self._append,
            clock=clock,
            policy=self.policy,
            rng=rng or random.Random(),
            window=self.submit_window,
            limiter=RateLimiter(rate_limit),
            verify_timeout=verify_timeout,
            dedup_seconds=dedup_seconds,
        )
        self._senders: dict[str, asyncio.Lock] = {}
        self._active: dict[str, asyncio.Task[None]] = {}
        self._timers: list[tuple[datetime, str]] = []
        self._changed = asyncio.Event()
        self._waiting: set[str] | None = None  # payments `run` waits for; discarded as they settle
        self._progress: Callable[[], None] | None = None
        self._timer_added = asyncio.Event()
        self._stopped: ProcessorStopped | None = None  # the first error no step may retry

    async def load(self) -> None:
        """Fold every record already in the log, without acting on any."""
        last = await self.log.last_offset()
        if last is None or last < self.position:
            return
        async for batch in self.log.read_batches(self.position, stop=last + 1):
            for record in batch:
                self.book.apply(record)
            self.position = batch[-1].offset + 1

    async def run(self, until: Collection[str] | None = None, progress: Progress | None = None) -> None:
        """Act on every open payment, then follow the log; return once every payment in
        ``until`` has a final outcome (``progress(done, total)`` hears of each).

        Without ``until`` it runs until cancelled (the daemon).

        Raises:
            ProcessorStopped: a step raised an error that is not retried (a bug, or a log that
                cannot record), or following the log failed. The other steps are abandoned as on
                a cancel, after their appends; this processor does no more work.
        """
        await self.load()
        self._expect(until, progress)
        parts = [asyncio.create_task(self._follow()), asyncio.create_task(self._run_timers())]
        for part in parts:
            part.add_done_callback(self._part_done)
        try:
            while self._stopped is None and (self._waiting is None or self._waiting):
                self._changed.clear()
                await self._changed.wait()
        except asyncio.CancelledError:
            # Stopped from outside: abandon the steps under way. Nothing is lost: each
            # payment resumes from its recorded state (in doubt if it was submitted).
            self._abandon()
            raise
        finally:
            await self._end(parts)
        if self._stopped is not None:
            raise self._stopped from self._stopped.error
        await self.drain()

    def _expect(self, until: Collection[str] | None, progress: Progress | None) -> None:
        """Note what `run` waits for, and start on every open payment."""
        total = len(until) if until is not None else 0
        self._waiting = {i for i in until if not self._final(i)} if until is not None else None
        self._progress = (lambda: progress(total - len(self._waiting or ()), total)) if progress else None
        for payment_id in list(self.book.payments):
            self._consider(payment_id)

    async def _end(self, parts: list[asyncio.Task[None]]) -> None:
        for part in parts:
            part.cancel()
        if self._stopped is not None:
            self._abandon()  # as on a stop from outside; `run` then raises the error
        await asyncio.gather(*parts, *self._active.values(), return_exceptions=True)

    async def drain(self) -> None:
        """Wait for the payments being worked on to reach their next recorded state."""
        while self._active:
            await asyncio.gather(*self._active.values(), return_exceptions=True)

    def _abandon(self) -> None:
        for task in self._active.values():
            task.cancel()

    async def _follow(self) -> None:
        async for record in self.log.follow(self.position):
            self.position = record.offset + 1
            state = self.book.apply(record)
            if state is not None:
                self._settled(state)
                self._consider(state.payment_id)
            self._changed.set()

    async def _run_timers(self) -> None:
        while True:
            now = self.clock()
            while self._timers and self._timers[0][0] <= now:
                _, payment_id = heapq.heappop(self._timers)
                self._consider(payment_id)
            wait = (self._timers[0][0] - now).total_seconds() if self._timers else 1.0
            self._timer_added.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._timer_added.wait(), min(max(wait, 0.001), 1.0))

    def _consider(self, payment_id: str) -> None:
        """Start work on a payment if it needs some and nobody is on it already."""
        state = self.book.get(payment_id)
        if state is None or payment_id in self._active or self._stopped is not None:
            return
        action = next_action(state, self.clock())
        if action in ("attempt", "reconcile"):
            task = asyncio.create_task(self._work(payment_id))
            self._active[payment_id] = task
        elif action == "wait" and isinstance(state, PaymentState) and state.next_attempt_at is not None:
            self._schedule(state.next_attempt_at, payment_id)

    def _schedule(self, when: datetime, payment_id: str) -> None:
        heapq.heappush(self._timers, (when, payment_id))
        self._timer_added.set()

    async def _work(self, payment_id: str) -> None:
        try:
            async with self._slots:
                state = self.book.get(payment_id)
                if isinstance(state, PaymentState):  # else confirmed meanwhile: nothing to do
                    async with self._senders.setdefault(state.request.party, asyncio.Lock()):
                        await self.steps.advance(payment_id)
        except RETRIED as err:
            # Classified and transient (a reconciliation read failed, say): try again later.
            self._active.pop(payment_id, None)
            logger.warning(
                "payment step failed; trying again later",
                extra={
                    "payment_id": payment_id,
                    "code": getattr(err, "code", type(err).__name__),
                    "error": str(err) or type(err).__name__,
                    "retry_in_secs": self.policy.base_delay,
                },
            )
            self._schedule(self.clock() + timedelta(seconds=self.policy.base_delay), payment_id)
            return
        except Exception as err:  # a bug, or a log that cannot record: stop, submit nothing more
            self._active.pop(payment_id, None)
            self._stop(err, payment_id)
            return
        self._active.pop(payment_id, None)
        self._consider(payment_id)
        self._changed.set()

    def _part_done(self, part: asyncio.Task[None]) -> None:
        """The log follower or the timers ended: only an error ends them, and it stops us."""
        if not part.cancelled() and (error := part.exception()) is not None:
            self._stop(error, None)

    def _stop(self, error: BaseException, payment_id: str | None) -> None:
        """Record the error that stops the processor (the first one is raised by `run`)."""
        stopped = ProcessorStopped(error, payment_id)
        logger.error(
            "processing stopped",
            extra={
                "payment_id": payment_id,
                "bug": stopped.bug,
                "error_type": type(error).__name__,
                "error": stopped.detail,
                "at": stopped.origin,
            },
        )
        logger.debug("traceback of the error that stopped processing", exc_info=error)
        if self._stopped is None:
            self._stopped = stopped
        self._changed.set()

    async def _append(self, event: AnyEvent) -> None:
        offset = await self.log.append(event)
        state = self.book.apply(Recorded(offset, event))
        if state is not None:
            self._settled(state)

    def _settled(self, state: AnyState) -> None:
        if self._waiting and state.final and state.payment_id in self._waiting:
            self._waiting.discard(state.payment_id)
            if self._progress is not None:
                self._progress()
            self._changed.set()

    def _final(self, payment_id: str) -> bool:
        state = self.book.get(payment_id)
        return state is not None and state.final
