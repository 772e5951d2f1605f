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
import uuid
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from pipeline.canton.errors import CantonError
from pipeline.canton.port import (
    Accepted,
    CantonPort,
    CompletionFound,
    Insufficient,
    Mismatch,
    NotVisible,
    Rejected,
    Unproved,
    Verified,
)
from pipeline.errors import ProcessorStopped
from pipeline.events import AnyEvent, PaymentConfirmed, PaymentRequested, PaymentSubmitted, Recorded
from pipeline.ids import command_id
from pipeline.log.port import EventLog
from pipeline.processor.book import AnyState, PaymentBook, PaymentState, next_action
from pipeline.processor.in_doubt import beyond_dedup, parked
from pipeline.processor.outcomes import RetryPolicy, failure_event, next_attempt
from pipeline.processor.rate_limit import RateLimiter
from pipeline.processor.submit_window import Aimd, SubmitWindow, submit_in_window

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
Verification = tuple[Decimal, int | None, Literal["scan", "ledger"]]
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
        self.canton = canton
        self.clock = clock
        self.policy = policy or RetryPolicy()
        self.verify_timeout = verify_timeout
        self.dedup_seconds = dedup_seconds  # the deduplication period sent with each command
        self.book = PaymentBook()
        self.position = 0
        self._rng = rng or random.Random()
        self._slots = asyncio.Semaphore(max_in_flight)
        # The participant's own in-flight limit is learnt (AIMD), up to ours.
        self.submit_window = SubmitWindow(Aimd.starting(max_in_flight))
        self._limiter = RateLimiter(rate_limit)
        self._senders: dict[str, asyncio.Lock] = {}
        self._active: dict[str, asyncio.Task[None]] = {}
        self._timers: list[tuple[datetime, str]] = []
        self._changed = asyncio.Event()
        self._waiting: set[str] | None = None  # payments `run` waits for; discarded as they settle
        self._progress: Callable[[], None] | None = None
        self._timer_added = asyncio.Event()
        self._stopped: ProcessorStopped | None = None  # the first error no step may retry

    # -- driving ---------------------------------------------------------------------

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
        elif action == "wait" and state.next_attempt_at is not None:
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
                        await self._advance(payment_id)
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

    # -- one step of one payment --------------------------------------------------------

    async def _advance(self, payment_id: str) -> None:
        state = self.book.get(payment_id)
        if not isinstance(state, PaymentState) or next_action(state, self.clock()) not in ("attempt", "reconcile"):
            return
        request = state.request
        if state.first_offset is not None:
            # Something was submitted before: never submit again before the ledger says
            # it did not accept it.
            found = await self._completion(state, state.first_offset)
            if found is None or not found.accepted:
                found = await self._proof_beyond_dedup(state)
            if isinstance(found, Unproved):
                await self._fail(state, parked(state, found.reason, self.dedup_seconds))
                return
            if found is not None and found.accepted:
                await self._confirm(state, found.update_id, found.offset, answered=False)
                return
        prepared = await self.canton.prepare(request.party, request.amount)
        if isinstance(prepared, Insufficient):
            rejection = Rejected(kind="final", code="INSUFFICIENT_FUNDS", message=prepared.message)
            await self._fail(state, rejection)
            return
        if isinstance(prepared, Rejected):
            await self._fail(state, prepared)
            return
        attempt = state.attempts + 1
        submission_id = uuid.uuid4().hex  # fresh per attempt, the same in the log and on the wire
        await self._append(
            PaymentSubmitted(
                payment_id=payment_id,
                at=self.clock(),
                command_id=command_id(payment_id),
                submission_id=submission_id,
                attempt=attempt,
                ledger_offset_before=prepared.ledger_offset,
            )
        )
        await self._limiter.acquire()
        result = await submit_in_window(
            self.submit_window,
            lambda: self.canton.submit(
                prepared,
                sender=request.party,
                receiver=request.receiver,
                amount=request.amount,
                description=request.description,
                command_id=command_id(payment_id),
                submission_id=submission_id,
            ),
            clock=self.clock,
            rng=self._rng,
        )
        state = self.book.get(payment_id)
        if isinstance(state, PaymentState):  # else confirmed meanwhile (another worker): nothing to settle
            await self._settle(state, result, prepared.ledger_offset)

    async def _settle(self, state: PaymentState, result: Accepted | Rejected, offset: int) -> None:
        request = state.request
        if isinstance(result, Accepted):
            await self._confirm(state, result.update_id, result.completion_offset, answered=True)
            return
        if result.kind in ("duplicate", "in_doubt"):
            # Duplicate: accepted earlier. In doubt: maybe accepted. Ask the ledger.
            found = await self._completion(state, state.first_offset or offset)
            if found is not None and found.accepted:
                await self._confirm(state, found.update_id, found.offset, answered=False)
                return
            if result.kind == "duplicate" and result.completion_offset is not None:
                update_id = await self.canton.update_at(result.completion_offset, request.party)
                if update_id is not None:
                    await self._confirm(state, update_id, result.completion_offset, answered=False)
                    return
            # Not found yet: treat as retryable; the next attempt reconciles first again.
            result = Rejected(kind="in_doubt", code=result.code, message=result.message, error_id=result.error_id)
        if result.stale_context:
            self.canton.invalidate_context()
        await self._fail(state, result)

    async def _proof_beyond_dedup(self, state: PaymentState) -> CompletionFound | Unproved | None:
        """Nothing (None) within the deduplication period: the ledger refuses a second
        acceptance itself. Past it, a read to the ledger end: the acceptance, None (proved
        not accepted), or Unproved."""
        assert state.first_offset is not None
        if not beyond_dedup(state, self.clock(), self.dedup_seconds):
            return None
        return await self.canton.prove_outcome(
            party=state.request.party,
            command_id=command_id(state.request.payment_id),
            begin_offset=state.first_offset,
        )

    async def _completion(self, state: PaymentState, begin: int) -> CompletionFound | None:
        return await self.canton.find_completion(
            party=state.request.party,
            command_id=command_id(state.request.payment_id),
            begin_offset=begin,
        )

    async def _fail(self, state: PaymentState, rejection: Rejected) -> None:
        now = self.clock()
        retry_at = None
        if rejection.kind in ("retryable", "in_doubt"):
            retry_at = next_attempt(self.policy, state.failures + 1, state.request.at, now, self._rng.random())
        event = failure_event(state.request, rejection, attempt=state.attempts, retry_at=retry_at, now=now)
        level = logging.ERROR if event.final else logging.WARNING
        logger.log(
            level,
            "payment failed",
            extra=_fields(state.request, code=event.code, final=event.final, reason=event.message),
        )
        await self._append(event)

    async def _confirm(
        self, state: PaymentState, update_id: str | None, completion_offset: int | None, *, answered: bool
    ) -> None:
        """Record the confirmation of ``state``'s payment, after checking the transfer.

        ``answered``: the ledger accepted *this* submission (its own 200). Otherwise the
        acceptance was found (DUPLICATE_COMMAND, a completion lookup) and may be an earlier
        run's, from another state folder say: it counts only once Scan shows that transfer
        for this very period (sender, receiver, amount, and the description naming the period).
        """
        request = state.request
        if update_id is None:
            raise RuntimeError(f"accepted payment {request.payment_id} without an update id")
        verified = await self._verify(request, update_id, proof_needed=not answered)
        if isinstance(verified, Rejected):
            await self._fail(state, verified)
            return
        amount, round_, verified_by = verified
        await self._append(
            PaymentConfirmed(
                payment_id=request.payment_id,
                at=self.clock(),
                party=request.party,
                plan=request.plan,
                amount=amount,
                update_id=update_id,
                completion_offset=completion_offset,
                round=round_,
                verified_by=verified_by,
            )
        )
        logger.info("payment confirmed", extra=_fields(request, update_id=update_id))

    async def _verify(
        self, request: PaymentRequested, update_id: str, *, proof_needed: bool
    ) -> Verification | Rejected:
        """Find the transfer in Scan. For our own accepted submission a lagging Scan delays,
        never fails, the confirmation; an acceptance we only found must be proved (`_confirm`)."""
        deadline = self.clock() + timedelta(seconds=self.verify_timeout)
        pause = 0.1
        while True:
            seen = await self.canton.verify(
                update_id,
                sender=request.party,
                receiver=request.receiver,
                amount=request.amount,
                description=request.description,
            )
            if isinstance(seen, Verified):
                return seen.amount, seen.round, "scan"
            if isinstance(seen, Mismatch):
                logger.error(
                    "ledger transfer differs from the request",
                    extra=_fields(request, update_id=update_id, reason=seen.message),
                )
                if proof_needed:
                    return not_this_payment(request, update_id, seen.message)
                return seen.amount or request.amount, None, "scan"
            assert isinstance(seen, NotVisible)
            if self.clock() >= deadline:
                if proof_needed:
                    return not_proved_yet(request, update_id)
                logger.warning(
                    "scan does not show the update yet; confirmed on the ledger's word",
                    extra=_fields(request, update_id=update_id),
                )
                return request.amount, None, "ledger"
            await asyncio.sleep(pause)
            pause = min(pause * 2, 5.0)

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


def not_this_payment(request: PaymentRequested, update_id: str, why: str) -> Rejected:
    """The ledger holds our commandId, but its transfer is not this payment: never "paid"."""
    return Rejected(
        kind="final",
        code="DUPLICATE_NOT_THIS_PAYMENT",
        message=f"the ledger already accepted command {command_id(request.payment_id)} (update "
        f"{update_id}) but not as this payment ({why}); this period is NOT paid: compare with "
        f"`billing update {update_id}` and charge it by hand if it is due",
    )


def not_proved_yet(request: PaymentRequested, update_id: str) -> Rejected:
    """An acceptance found on the ledger that Scan cannot show yet: look again before anything else."""
    return Rejected(
        kind="in_doubt",
        code="DUPLICATE_NOT_PROVED",
        message=f"the ledger accepted command {command_id(request.payment_id)} earlier (update "
        f"{update_id}), but Scan does not show that transfer yet; it is checked again before "
        "anything is submitted",
    )


def _fields(request: PaymentRequested, **more: object) -> dict[str, object]:
    return {
        "payment_id": request.payment_id,
        "party": request.party,
        "plan": request.plan,
        "period": request.period.index,
        "amount": str(request.amount),
        **more,
    }
