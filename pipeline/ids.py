"""Deterministic identifiers: the same billing period always gets the same ids.

``payment_id`` decides idempotency in our log; ``command_id`` decides it on the ledger
(Canton deduplicates by user, actAs and commandId). Both are pure functions of the app
party, the user party, the plan and the period's *start and end times*: the real period,
not its index, which means something only beside the anchor it counts from. So a second
state folder, a rebuilt log or a changed interval can never give one real period two ids,
nor two periods one id.

`description` is the text the transfer carries on the ledger. It names the period too, so
a transfer found on the ledger (after DUPLICATE_COMMAND, or when rebuilding from the
ledger) can be proved to be the one for this period: `parse_description` reads it back.
"""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from typing import Final

import msgspec

COMMAND_PREFIX: Final = "pay-"
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO: Final = timedelta(microseconds=1)


def _micros(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError(f"a period bound needs a timezone, got {at}")
    return (at - _EPOCH) // _MICRO


def payment_id(app_party: str, user_party: str, plan: str, start: datetime, end: datetime) -> str:
    """A 32-hex-digit id for the period ``[start, end)`` of one user's plan with one app."""
    begins, ends = _micros(start), _micros(end)
    if ends <= begins:
        raise ValueError(f"a period must end after it starts: {start} .. {end}")
    material = "\x1f".join(("canton-billing/payment/v2", app_party, user_party, plan, str(begins), str(ends)))
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def legacy_payment_id(app_party: str, user_party: str, plan: str, period_index: int) -> str:
    """The id of the first versions (v1: the period *index*), still in older logs. Only looked
    up, never given to a new payment: `billing pay` finds a period requested before with it."""
    material = "\x1f".join(("canton-billing/payment/v1", app_party, user_party, plan))
    return hashlib.sha256(f"{material}\x1f{period_index}".encode()).hexdigest()[:32]


def command_id(payment: str) -> str:
    """The ledger commandId of a payment: identical on every attempt."""
    return f"{COMMAND_PREFIX}{payment}"


def payment_of_command(command: str) -> str | None:
    """The payment id a billing commandId carries, or None for any other command."""
    if not command.startswith(COMMAND_PREFIX):
        return None
    rest = command[len(COMMAND_PREFIX) :]
    return rest if re.fullmatch(r"[0-9a-f]{32}", rest) else None


def _stamp(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def description(plan: str, user_id: str, start: datetime, end: datetime) -> str:
    """What the transfer says on the ledger, for every stakeholder to read: the plan, the
    user by catalogue id (no personal data on the ledger) and the period it pays."""
    return f"{plan} subscription payment for {user_id} (period {_stamp(start)} to {_stamp(end)})"


class Described(msgspec.Struct, frozen=True, kw_only=True):
    """What a billing description says: the plan, the user's catalogue id, the period."""

    plan: str
    user_id: str
    start: datetime
    end: datetime


_DESCRIBED = re.compile(
    r"(?P<plan>.+?) subscription payment for (?P<user>.+) \(period (?P<start>\S+) to (?P<end>\S+)\)"
)


def parse_description(text: str) -> Described | None:
    """`description`'s fields, or None when ``text`` is not one (another tool, an older version)."""
    match = _DESCRIBED.fullmatch(text)
    if match is None:
        return None
    try:
        start, end = datetime.fromisoformat(match["start"]), datetime.fromisoformat(match["end"])
    except ValueError:
        return None
    if start.tzinfo is None or end.tzinfo is None or end <= start:
        return None
    return Described(plan=match["plan"], user_id=match["user"], start=start, end=end)
