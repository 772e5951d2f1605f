"""Scan's word on a payment: is the update the ledger accepted the transfer we asked for?

The processor confirms a payment only once Scan shows its `TransferPreapproval_Send`: the
right sender, amount and description (the period it pays), and an Amulet of that amount
created for the receiver. `verify_transfer` reads the update from Scan and says so as a
port outcome; `find_transfer` is the pure check of one update.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

import msgspec

from pipeline.canton.errors import CantonError
from pipeline.canton.port import Mismatch, NotVisible, Verified
from pipeline.canton.scan import ScanApi
from pipeline.canton.scan_types import UpdateHistoryTransactionV2
from pipeline.canton.splice_types import SEND


async def verify_transfer(
    scan: ScanApi, update_id: str, *, sender: str, receiver: str, amount: Decimal, description: str
) -> Verified | NotVisible | Mismatch:
    """Scan's view of update ``update_id``: our transfer (`Verified`), not ours (`Mismatch`), or
    not shown yet (`NotVisible`: Scan down or lagging, the processor polls again)."""
    try:
        update = await scan.update_by_id(update_id)
    except CantonError:
        return NotVisible()
    if update is None:
        return NotVisible()
    seen = find_transfer(update, sender=sender, receiver=receiver, amount=amount, description=description)
    if isinstance(seen, str):
        return Mismatch(message=seen)
    return Verified(amount=seen.amount, round=seen.round)


class TransferSeen(msgspec.Struct, frozen=True, kw_only=True):
    """A `TransferPreapproval_Send` as Scan shows it."""

    update_id: str
    sender: str
    receiver: str
    amount: Decimal
    round: int | None
    record_time: str


def find_transfer(
    update: UpdateHistoryTransactionV2,
    *,
    sender: str,
    receiver: str,
    amount: Decimal,
    description: str | None = None,
) -> TransferSeen | str:
    """Is ``update`` our payment (a Send by ``sender`` creating ``amount`` for ``receiver``,
    saying ``description`` when one is given: the period it pays)?

    Returns what Scan shows, or a one-line reason why it is not the expected transfer.
    """
    sends = update.exercises(SEND)
    if not sends:
        return f"update {update.update_id} holds no {SEND}"
    arg = sends[0].choice_argument
    sent = _decimal(arg.get("amount"))
    if arg.get("sender") != sender or sent != amount:
        return f"update {update.update_id} sends {sent} from {arg.get('sender')}, expected {amount} from {sender}"
    if description is not None and arg.get("description") != description:
        return f"update {update.update_id} is described {arg.get('description')!r}, expected {description!r}"
    paid = [
        e
        for e in update.created()
        if e.create_arguments.get("owner") == receiver
        and _decimal(_field(e.create_arguments, "amount", "initialAmount")) == amount
    ]
    if not paid:
        return f"update {update.update_id} creates no amulet of {amount} for {receiver}"
    return TransferSeen(
        update_id=update.update_id,
        sender=sender,
        receiver=receiver,
        amount=sent,
        round=_round_number(_field(paid[0].create_arguments, "amount", "createdAt", "number")),
        record_time=update.record_time,
    )


def _field(doc: object, *path: str) -> object:
    """``doc[path[0]][path[1]]…``, or None where any step is missing or not an object."""
    for name in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(name)
    return doc


def _round_number(value: object) -> int | None:
    """A round number as Daml's JSON encodes it (an int or a decimal string); None if it is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    try:
        return int(value)
    except ValueError:
        return None


def _decimal(value: object) -> Decimal | None:
    """An amount as Scan writes it, or None where it is not a finite number."""
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None
