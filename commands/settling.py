"""Folding new records into a payment book until the payments a command waits for are final.

The session that goes through the daemon and the Kafka session both wait this way: they follow
a log they do not write, and a payment is settled once the book says it is final.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection

from pipeline.events import Recorded, Skipped, Unreadable
from pipeline.processor.book import PaymentBook

Progress = Callable[[int, int], None]


def open_payments(book: PaymentBook) -> list[str]:
    """The payments requested and not final yet: in progress, waiting to retry, or in doubt."""
    return [p for p, s in book.payments.items() if not s.final]


def is_final(book: PaymentBook, payment_id: str) -> bool:
    state = book.get(payment_id)
    return state is not None and state.final


async def fold_until_final(
    book: PaymentBook,
    payment_ids: Collection[str],
    batches: Callable[[], AsyncIterator[list[Recorded]]],
    fold: Callable[[list[Recorded]], None],
    progress: Progress | None = None,
) -> None:
    """``fold`` each of ``batches`` (into ``book``) until every payment in ``payment_ids`` is final.

    ``batches`` is only opened when something is still open; ``progress`` gets (settled, total).
    """
    waiting = {i for i in payment_ids if not is_final(book, i)}
    total = len(payment_ids)
    if not waiting:
        return
    async for batch in batches():
        fold(batch)
        touched = {r.event.payment_id for r in batch if not isinstance(r.event, Unreadable | Skipped)} & waiting
        settled = {i for i in touched if is_final(book, i)}
        if settled:
            waiting -= settled
            if progress is not None:
                progress(total - len(waiting), total)
        if not waiting:
            return
