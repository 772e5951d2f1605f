"""Pure decisions of the processor: what Canton's answers mean for a payment, and what to append.

No I/O, no clock, no randomness: a step (`pipeline.processor.step`) passes in the time and
what Canton said, and appends the event that comes back.

A payment whose earlier submission has no known outcome is *in doubt*. Within the
deduplication period sent with each command the ledger itself refuses a second acceptance
of the same change id, so submitting again is safe. Past it, only a read of the ledger up to
its end may allow it; when the ledger cannot say (pruned history), the payment is parked: a
final failure that nothing submits again, `billing restart` included.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal

from pipeline.canton.errors import INSUFFICIENT_FUNDS
from pipeline.canton.port import Insufficient, Mismatch, NotVisible, Prepared, Rejected, Verified
from pipeline.events import MESSAGE_LIMIT, PaymentConfirmed, PaymentFailed, PaymentRequested, PaymentSubmitted
from pipeline.ids import command_id
from pipeline.processor.book import PaymentState

IN_DOUBT = "IN_DOUBT"
#: The participant's clock may be ahead of ours: treat the period as over this much earlier
#: (at most a tenth of it).
DEDUP_MARGIN = timedelta(minutes=5)
#: The rejections after which a payment is tried again (as the retry policy allows).
RETRIED_KINDS = ("retryable", "in_doubt")
#: A transfer as Scan (or, when Scan lags, the ledger alone) vouches for it: amount, round, by whom.
Verification = tuple[Decimal, int | None, Literal["scan", "ledger"]]


def beyond_dedup(state: PaymentState, now: datetime, dedup_seconds: int) -> bool:
    """Whether a new submission of ``state``'s command might not be deduplicated any more.

    A state folded from a log written before `first_submitted_at` existed counts as beyond.
    """
    first = state.first_submitted_at
    if first is None:
        return True
    window = timedelta(seconds=dedup_seconds)
    return now >= first + window - min(DEDUP_MARGIN, window / 10)


def parked(state: PaymentState, reason: str, dedup_seconds: int) -> Rejected:
    """The final failure of a payment that may have been charged and that the ledger cannot
    prove either way, telling the operator what to check and how to settle it."""
    request = state.request
    first = f"{state.first_submitted_at:%Y-%m-%d %H:%M} UTC" if state.first_submitted_at else "earlier"
    return Rejected(
        kind="final",
        code=IN_DOUBT,
        message=f"command {command_id(request.payment_id)} was first submitted {first}, more than the "
        f"{dedup_seconds} s deduplication period ago, and the ledger cannot prove whether it was "
        f"accepted ({reason}); it is NOT submitted again: look for that command among "
        f"{request.party}'s transactions (Scan, the wallet, a participant not pruned) and, only "
        "if it is absent, charge the period by hand",
    )


def refused(prepared: Insufficient) -> Rejected:
    """Our own pre-check found the sender's holdings short: a final failure, nothing submitted."""
    return Rejected(kind="final", code="INSUFFICIENT_FUNDS", message=prepared.message)


def unsettled(result: Rejected) -> Rejected:
    """A duplicate or in-doubt answer whose acceptance the ledger does not show (yet): in doubt,
    so the next attempt looks it up again before anything is submitted."""
    return Rejected(kind="in_doubt", code=result.code, message=result.message, error_id=result.error_id)


def submission(state: PaymentState, prepared: Prepared, submission_id: str, *, at: datetime) -> PaymentSubmitted:
    """The `PaymentSubmitted` recorded before the next attempt of ``state``'s payment."""
    payment_id = state.payment_id
    return PaymentSubmitted(
        payment_id=payment_id,
        at=at,
        command_id=command_id(payment_id),
        submission_id=submission_id,
        attempt=state.attempts + 1,
        ledger_offset_before=prepared.ledger_offset,
    )


def verdict(
    seen: Verified | Mismatch | NotVisible, request: PaymentRequested, update_id: str, *, proof_needed: bool
) -> Verification | Rejected:
    """What Scan's answer about ``update_id`` means (`NotVisible`: once the caller stopped waiting).

    ``proof_needed``: the acceptance was only found (DUPLICATE_COMMAND, a completion lookup) and
    may be an earlier run's, from another state folder say: it counts only once Scan shows that
    transfer for this very period. Our own accepted submission is confirmed whatever Scan says.
    """
    if isinstance(seen, Verified):
        return seen.amount, seen.round, "scan"
    if isinstance(seen, Mismatch):
        if proof_needed:
            return not_this_payment(request, update_id, seen.message)
        return seen.amount or request.amount, None, "scan"
    return not_proved_yet(request, update_id) if proof_needed else (request.amount, None, "ledger")


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


def confirmation(
    request: PaymentRequested,
    update_id: str,
    completion_offset: int | None,
    verified: Verification,
    *,
    at: datetime,
) -> PaymentConfirmed:
    """The `PaymentConfirmed` of ``request``'s transfer, as verified."""
    amount, round_, verified_by = verified
    return PaymentConfirmed(
        payment_id=request.payment_id,
        at=at,
        party=request.party,
        plan=request.plan,
        amount=amount,
        update_id=update_id,
        completion_offset=completion_offset,
        round=round_,
        verified_by=verified_by,
    )


def failure_event(
    request: PaymentRequested,
    rejection: Rejected,
    *,
    attempt: int,
    retry_at: datetime | None,
    now: datetime,
) -> PaymentFailed:
    """The `PaymentFailed` recording ``rejection``; final when there is no retry."""
    retryable = rejection.kind in RETRIED_KINDS
    final = not retryable or retry_at is None
    message = rejection.message
    if retryable and final:
        message = f"gave up after {attempt} attempt(s): {message}"
    if rejection.error_id == INSUFFICIENT_FUNDS or rejection.code == "INSUFFICIENT_FUNDS":
        # Ledger-refused (DAML_FAILURE + error id) or refused by our own pre-check: say what to do.
        message = f"{message}; fund the sender, then `billing restart` charges it again"
    return PaymentFailed(
        payment_id=request.payment_id,
        at=now,
        party=request.party,
        plan=request.plan,
        amount=request.amount,
        attempt=attempt,
        code=rejection.code,
        error_id=rejection.error_id,
        message=message[:MESSAGE_LIMIT],
        retryable=retryable,
        final=final,
        next_attempt_at=None if final else retry_at,
    )
