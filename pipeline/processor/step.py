"""One step of one payment: the Canton calls, in order, and the events they lead to.

A payment submitted before is first looked up on the ledger and never submitted again
before the ledger says it did not accept it. Otherwise the step prepares, records
`PaymentSubmitted`, submits within the submission window, and records what Canton
answered, a confirmation only once Scan shows the transfer (`decisions.verdict`).
What the answers mean is decided in `pipeline.processor.decisions`; this module does the I/O.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pipeline.canton.port import (
    Accepted,
    CantonPort,
    CompletionFound,
    Insufficient,
    Mismatch,
    NotVisible,
    Rejected,
    Unproved,
)
from pipeline.events import AnyEvent, PaymentRequested
from pipeline.ids import command_id
from pipeline.processor import decisions
from pipeline.processor.book import PaymentBook, PaymentState, next_action
from pipeline.processor.rate_limit import RateLimiter
from pipeline.processor.retry import RetryPolicy, next_attempt
from pipeline.processor.submit_window import SubmitWindow, submit_in_window

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class Steps:
    """Advances payments through Canton, one step at a time; ``append`` records each event
    (in the log, then in ``book``)."""

    canton: CantonPort
    book: PaymentBook
    append: Callable[[AnyEvent], Awaitable[None]]
    clock: Callable[[], datetime]
    policy: RetryPolicy
    rng: random.Random
    window: SubmitWindow
    limiter: RateLimiter
    verify_timeout: float
    dedup_seconds: int  # the deduplication period sent with each command

    async def advance(self, payment_id: str) -> None:
        """Take the payment one recorded state further, if it needs an attempt or a reconciliation."""
        state = self.book.get(payment_id)
        if not isinstance(state, PaymentState) or next_action(state, self.clock()) not in ("attempt", "reconcile"):
            return
        if state.first_offset is not None and await self._reconciled(state, state.first_offset):
            return
        prepared = await self.canton.prepare(state.request.party, state.request.amount)
        if isinstance(prepared, Insufficient | Rejected):
            await self._fail(state, decisions.refused(prepared) if isinstance(prepared, Insufficient) else prepared)
            return
        submission_id = uuid.uuid4().hex  # fresh per attempt, the same in the log and on the wire
        await self.append(decisions.submission(state, prepared, submission_id, at=self.clock()))
        await self.limiter.acquire()
        request = state.request
        result = await submit_in_window(
            self.window,
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
            rng=self.rng,
        )
        state = self.book.get(payment_id)
        if isinstance(state, PaymentState):  # else confirmed meanwhile (another worker): nothing to settle
            await self._settle(state, result, prepared.ledger_offset)

    async def _reconciled(self, state: PaymentState, first_offset: int) -> bool:
        """Something was submitted before: whether the ledger's answer about it settled the payment
        (confirmed, or parked). False: the ledger did not accept it, submitting again is safe."""
        completion = await self._completion(state, first_offset)
        accepted = completion is not None and completion.accepted
        found = completion if accepted else await self._proof_beyond_dedup(state, first_offset)
        if isinstance(found, Unproved):
            await self._fail(state, decisions.parked(state, found.reason, self.dedup_seconds))
            return True
        if found is not None and found.accepted:
            await self._confirm(state, found.update_id, found.offset, answered=False)
            return True
        return False

    async def _settle(self, state: PaymentState, result: Accepted | Rejected, offset: int) -> None:
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
                update_id = await self.canton.update_at(result.completion_offset, state.request.party)
                if update_id is not None:
                    await self._confirm(state, update_id, result.completion_offset, answered=False)
                    return
            result = decisions.unsettled(result)
        if result.stale_context:
            self.canton.invalidate_context()
        await self._fail(state, result)

    async def _proof_beyond_dedup(self, state: PaymentState, first_offset: int) -> CompletionFound | Unproved | None:
        """Nothing (None) within the deduplication period: the ledger refuses a second
        acceptance itself. Past it, a read to the ledger end: the acceptance, None (proved
        not accepted), or Unproved."""
        if not decisions.beyond_dedup(state, self.clock(), self.dedup_seconds):
            return None
        return await self.canton.prove_outcome(
            party=state.request.party,
            command_id=command_id(state.payment_id),
            begin_offset=first_offset,
        )

    async def _completion(self, state: PaymentState, begin: int) -> CompletionFound | None:
        return await self.canton.find_completion(
            party=state.request.party,
            command_id=command_id(state.payment_id),
            begin_offset=begin,
        )

    async def _fail(self, state: PaymentState, rejection: Rejected) -> None:
        now = self.clock()
        retry_at = None
        if rejection.kind in decisions.RETRIED_KINDS:
            retry_at = next_attempt(self.policy, state.failures + 1, state.request.at, now, self.rng.random())
        event = decisions.failure_event(state.request, rejection, attempt=state.attempts, retry_at=retry_at, now=now)
        level = logging.ERROR if event.final else logging.WARNING
        logger.log(
            level,
            "payment failed",
            extra=_fields(state.request, code=event.code, final=event.final, reason=event.message),
        )
        await self.append(event)

    async def _confirm(
        self, state: PaymentState, update_id: str | None, completion_offset: int | None, *, answered: bool
    ) -> None:
        """Record the confirmation of ``state``'s payment, after checking the transfer.

        ``answered``: the ledger accepted *this* submission (its own 200). Otherwise the
        acceptance was found and must be proved (`decisions.verdict`).
        """
        request = state.request
        if update_id is None:
            raise RuntimeError(f"accepted payment {request.payment_id} without an update id")
        verified = await self._verify(request, update_id, proof_needed=not answered)
        if isinstance(verified, Rejected):
            await self._fail(state, verified)
            return
        await self.append(decisions.confirmation(request, update_id, completion_offset, verified, at=self.clock()))
        logger.info("payment confirmed", extra=_fields(request, update_id=update_id))

    async def _verify(
        self, request: PaymentRequested, update_id: str, *, proof_needed: bool
    ) -> decisions.Verification | Rejected:
        """Ask Scan for the transfer until it shows it, or ``verify_timeout`` is over."""
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
            if isinstance(seen, NotVisible) and self.clock() < deadline:
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
                continue
            if isinstance(seen, Mismatch):
                logger.error(
                    "ledger transfer differs from the request",
                    extra=_fields(request, update_id=update_id, reason=seen.message),
                )
            elif isinstance(seen, NotVisible) and not proof_needed:
                logger.warning(
                    "scan does not show the update yet; confirmed on the ledger's word",
                    extra=_fields(request, update_id=update_id),
                )
            return decisions.verdict(seen, request, update_id, proof_needed=proof_needed)


def _fields(request: PaymentRequested, **more: object) -> dict[str, object]:
    return {
        "payment_id": request.payment_id,
        "party": request.party,
        "plan": request.plan,
        "period": request.period.index,
        "amount": str(request.amount),
        **more,
    }
