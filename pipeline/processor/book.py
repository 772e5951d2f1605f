"""The processor's view of every payment, folded from the log (pure, no I/O).

One `PaymentState` per payment_id. Applying a record whose offset the payment has
already seen changes nothing, so the processor can apply its own appends at once and
again when the log delivers them (at-least-once delivery, idempotent fold).

A confirmation is final (`pipeline.events.outcome`). So the book keeps a confirmed payment
as its id and update id only (`Settled`, in `SettledIds`), and whole states only for the
payments still open and those that failed for good (which `restart` may ask again): its
memory follows what is unsettled, not the length of the log.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Literal

import msgspec

from pipeline.events import (
    PaymentConfirmed,
    PaymentRequested,
    PaymentSubmitted,
    Recorded,
    Skipped,
    Unreadable,
    outcome,
)
from pipeline.processor.compact import IndexSet, SettledIds

Status = Literal["requested", "submitted", "retry_wait", "confirmed", "failed"]
Action = Literal["attempt", "reconcile", "wait", "none"]


class PaymentState(msgspec.Struct, frozen=True, kw_only=True):
    request: PaymentRequested
    status: Status = "requested"
    #: Submissions so far (the `attempt` of the latest PaymentSubmitted).
    attempts: int = 0
    #: Failures since the payment was last requested: the retry budget spent.
    failures: int = 0
    #: Ledger offset before the first submission: completions are searched from here.
    first_offset: int | None = None
    #: When the first submission was recorded: past the deduplication period after it, an
    #: unproved outcome is never submitted again (the ledger would not deduplicate it).
    first_submitted_at: datetime | None = None
    open_submission: PaymentSubmitted | None = None
    next_attempt_at: datetime | None = None
    last_error: str | None = None
    last_code: str | None = None
    #: Splice's ``error_id`` of the last failure (e.g. insufficient-funds under DAML_FAILURE):
    #: the code alone does not say whether an operator can fix the cause.
    last_error_id: str | None = None
    update_id: str | None = None
    last_offset: int = -1

    @property
    def final(self) -> bool:
        return self.status in ("confirmed", "failed")

    @property
    def payment_id(self) -> str:
        return self.request.payment_id


class Settled(msgspec.Struct, frozen=True, gc=False):
    """A confirmed payment as the book remembers it: all its readers need is the update id."""

    payment_id: str
    update_id: str
    status: Literal["confirmed"] = "confirmed"

    @property
    def final(self) -> bool:
        return True


AnyState = PaymentState | Settled


def evolve(state: AnyState | None, record: Recorded) -> AnyState | None:
    """The state of one payment after ``record`` (``state`` is None for a new payment)."""
    event = record.event
    if isinstance(event, Unreadable):
        return state
    assert not isinstance(event, Skipped), "the book folds whole records, not an outcomes-only read"
    now = outcome(event, confirmed=state is not None and state.status == "confirmed")
    if now is None or isinstance(state, Settled):
        return state  # confirmed: final, whatever comes later (`Settled` is only ever confirmed)
    if state is not None and record.offset <= state.last_offset:
        return state  # already applied: the fold is idempotent
    if isinstance(event, PaymentRequested):
        return _requested(state, event, record.offset)
    if state is None:
        return None  # an outcome without its request: nothing to act on
    seen = {"last_offset": record.offset}
    if isinstance(event, PaymentSubmitted):
        first = state.first_offset if state.first_offset is not None else event.ledger_offset_before
        first_at = state.first_submitted_at or event.at
        return msgspec.structs.replace(
            state,
            status="submitted",
            attempts=event.attempt,
            first_offset=first,
            first_submitted_at=first_at,
            open_submission=event,
            next_attempt_at=None,
            **seen,
        )
    if isinstance(event, PaymentConfirmed):
        return msgspec.structs.replace(
            state,
            status="confirmed",
            open_submission=None,
            update_id=event.update_id,
            next_attempt_at=None,
            **seen,
        )
    return msgspec.structs.replace(
        state,
        status="failed" if now == "failed" else "retry_wait",
        open_submission=None,
        next_attempt_at=None if now == "failed" else event.next_attempt_at,
        failures=state.failures + 1,
        last_error=event.reason,
        last_code=event.code,
        last_error_id=event.error_id,
        **seen,
    )


def _requested(state: PaymentState | None, event: PaymentRequested, offset: int) -> PaymentState:
    if state is None:
        return PaymentState(request=event, last_offset=offset)
    if state.status == "failed":
        # Asked again after a final failure (restart, manual retry): a fresh retry budget.
        # The commandId stays the same, so the ledger still deduplicates.
        return msgspec.structs.replace(state, status="requested", failures=0, last_offset=offset)
    return msgspec.structs.replace(state, last_offset=offset)  # duplicate request: no change


def next_action(state: AnyState, now: datetime) -> Action:
    """What the processor should do with a payment it is not already working on."""
    if state.status == "requested":
        return "attempt"
    if state.status == "submitted":
        return "reconcile"  # a submission without outcome: in doubt (e.g. after a crash)
    if state.status == "retry_wait":
        due = state.next_attempt_at is None or state.next_attempt_at <= now
        return "attempt" if due else "wait"
    return "none"


class SubscriptionHistory:
    """What was ever requested for one (party, plan): its period anchor and indices."""

    __slots__ = ("anchor", "requested")

    def __init__(self, anchor: datetime) -> None:
        self.anchor = anchor
        self.requested = IndexSet()


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(PaymentState).decode


class PaymentBook:
    """Every payment's state by payment_id, and every subscription's requested periods.

    ``payments`` holds the whole state of every open payment (neither confirmed nor failed
    for good). Payments that failed for good are kept encoded in ``failed`` (one bytes
    object each: `restart` asks them again, see `failed_states`), confirmed ones as ids in
    ``confirmed``; `get` answers for all three.
    """

    def __init__(self) -> None:
        self.payments: dict[str, PaymentState] = {}
        self.failed: dict[str, bytes] = {}
        self.confirmed = SettledIds()
        self.subscriptions: dict[tuple[str, str], SubscriptionHistory] = {}
        self.unreadable: list[int] = []
        #: The newest ledger offset the log mentions (a submission's start, a confirmation's
        #: completion): charges on the ledger after it are ones this log may not know.
        self.ledger_offset = 0

    def apply(self, record: Recorded) -> AnyState | None:
        event = record.event
        if isinstance(event, Unreadable):
            self.unreadable.append(record.offset)
            return None
        assert not isinstance(event, Skipped), "the book folds whole records, not an outcomes-only read"
        payment_id = event.payment_id
        known = self.payments.get(payment_id) or self.get(payment_id)
        state = evolve(known, record)
        if state is None:
            return None
        if state is not known and isinstance(state, PaymentState):
            self._put(payment_id, state)
        if isinstance(event, PaymentRequested):
            self._remember(event)
        elif isinstance(event, PaymentSubmitted):
            self.ledger_offset = max(self.ledger_offset, event.ledger_offset_before)
        elif isinstance(event, PaymentConfirmed) and event.completion_offset is not None:
            self.ledger_offset = max(self.ledger_offset, event.completion_offset)
        return state

    def _put(self, payment_id: str, state: PaymentState) -> None:
        status = state.status
        if status == "confirmed":
            self.payments.pop(payment_id, None)
            self.failed.pop(payment_id, None)  # confirmed after all (an in-doubt attempt)
            self.confirmed.add(payment_id, state.update_id or "", new=True)
        elif status == "failed":
            self.payments.pop(payment_id, None)
            self.failed[payment_id] = _encode(state)
        else:
            self.failed.pop(payment_id, None)  # asked again after a final failure
            self.payments[payment_id] = state

    def _remember(self, event: PaymentRequested) -> None:
        key = (event.party, event.plan)
        history = self.subscriptions.get(key)
        if history is None:
            # The anchor is the start of period 0, whatever index was requested first.
            length = event.period.end - event.period.start
            history = SubscriptionHistory(event.period.start - length * event.period.index)
            self.subscriptions[key] = history
        history.requested.add(event.period.index)

    def get(self, payment_id: str) -> AnyState | None:
        state = self.payments.get(payment_id)
        if state is not None:
            return state
        failed = self.failed.get(payment_id)
        return _decode(failed) if failed is not None else self._settled(payment_id)

    def failed_states(self) -> Iterator[PaymentState]:
        """Every payment that failed for good (what `restart` may ask again)."""
        return map(_decode, self.failed.values())

    def _settled(self, payment_id: str) -> Settled | None:
        update_id = self.confirmed.get(payment_id)
        return None if update_id is None else Settled(payment_id, update_id)
