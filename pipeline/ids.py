"""Deterministic identifiers: the same billing period always gets the same ids.

``payment_id`` decides idempotency in our log; ``command_id`` decides it on the ledger
(Canton deduplicates by user, actAs and commandId). Both are pure functions of
(app party, user party, plan, period index), so a retry, a restart or a second
process can never turn one period into two payments.
"""

from __future__ import annotations

import hashlib
from typing import Final

COMMAND_PREFIX: Final = "pay-"


def payment_id(app_party: str, user_party: str, plan: str, period_index: int) -> str:
    """A 32-hex-digit id for one period of one user's plan with one app."""
    if period_index < 0:
        raise ValueError(f"period index must be >= 0, got {period_index}")
    material = "\x1f".join(("canton-billing/payment/v1", app_party, user_party, plan))
    digest = hashlib.sha256(f"{material}\x1f{period_index}".encode()).hexdigest()
    return digest[:32]


def command_id(payment: str) -> str:
    """The ledger commandId of a payment: identical on every attempt."""
    return f"{COMMAND_PREFIX}{payment}"
