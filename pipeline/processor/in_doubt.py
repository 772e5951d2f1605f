"""Pure decisions about a payment whose earlier submission has no known outcome.

Within the deduplication period sent with each command, the ledger itself refuses a second
acceptance of the same change id, so submitting again is safe. Past it, only a read of the
ledger up to its end may allow it; when the ledger cannot say (pruned history), the payment
is parked: a final failure that nothing submits again, `billing restart` included.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pipeline.canton.port import Rejected
from pipeline.ids import command_id
from pipeline.processor.book import PaymentState

IN_DOUBT = "IN_DOUBT"
#: The participant's clock may be ahead of ours: treat the period as over this much earlier
#: (at most a tenth of it).
DEDUP_MARGIN = timedelta(minutes=5)


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
