"""Before a state folder charges anyone: does the ledger show charges this folder does not know?

The event log is the record of what was charged. A state folder that is new (ROCKSDB_PATH
lost or moved, a cron job run from another directory) or behind (restored from a backup)
would charge again periods that another folder already charged, once the ledger's
deduplication window has passed. So before the first charge of a run, billing reads the
completions of its own ledger user for the subscribers' parties, from the newest ledger
offset its log mentions, and refuses to charge when an accepted billing command there
(``pay-<payment id>``) is one the log does not hold. The operator then points ROCKSDB_PATH
at the right folder, or rebuilds this one from the ledger (`billing replay --from-ledger`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import NamedTuple

from commands.errors import CommandError
from pipeline.canton.adapter import CantonAdapter
from pipeline.canton.ledger import LedgerApi
from pipeline.canton.types import Completion1
from pipeline.ids import payment_of_command
from pipeline.processor.book import PaymentBook

log = logging.getLogger(__name__)
PARTIES_PER_READ = 500  # a bounded request body; the completions of each group are read in pages
READS_AT_ONCE = 8  # each read may wait out the stream's idle timeout: groups are read side by side
ACKNOWLEDGED = "ledger-acknowledged"  # in the state folder: charges up to this offset were looked at


def unknown_charges(completions: Iterable[Completion1], book: PaymentBook) -> list[Completion1]:
    """The accepted billing commands among ``completions`` whose payment the log does not hold."""
    out = []
    for completion in completions:
        payment = payment_of_command(completion.command_id)
        if payment is not None and completion.accepted and book.get(payment) is None:
            out.append(completion)
    return out


class LedgerScan(NamedTuple):
    """What one bounded read of the completions saw, and how far it got."""

    completions: list[Completion1]
    checked_to: int  # every completion up to this offset was read (``end`` when the read got there)
    end: int  # the ledger end when the read began


async def billing_completions(ledger: LedgerApi, parties: list[str], *, after: int) -> LedgerScan:
    """Every completion of ``parties``' commands by our ledger user after offset ``after``, read
    up to the ledger end as it is now (bounded: pages of ``ledger.page_size``, ``max_pages`` per
    group of parties; where that bound stops a read short, ``checked_to`` says so).

    Completions the participant has pruned are gone: the read starts at its pruning offset
    instead, and a warning names the offsets nobody can check any more (docs/canton-facts.md).
    """
    end = await ledger.ledger_end()
    slots = asyncio.Semaphore(READS_AT_ONCE)

    async def read(group: list[str]) -> tuple[list[Completion1], int]:
        found: list[Completion1] = []
        last = None
        async with slots:
            async for page in ledger.completion_pages(group, begin_exclusive=after, end=end, past_pruned=True):
                if page.pruned:
                    log.warning(
                        "the participant pruned completions this check would read; starting at its pruning offset",
                        extra={"from_offset": page.begin_exclusive, "pruned_up_to": page.last_offset},
                    )
                found += page.completions
                last = page
        # Read to the end, or until the stream went quiet (nothing more for these parties),
        # unless the page bound stopped it first.
        return found, end if last is None or last.quiet else min(last.last_offset, end)

    groups = [parties[i : i + PARTIES_PER_READ] for i in range(0, len(parties), PARTIES_PER_READ)]
    reads = await asyncio.gather(*map(read, groups))
    return LedgerScan([c for found, _ in reads for c in found], min((to for _, to in reads), default=end), end)


def acknowledged(state: Path) -> int:
    """The ledger offset up to which an operator looked at charges this folder could not map."""
    try:
        return int((state / ACKNOWLEDGED).read_text().strip() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def acknowledge(state: Path, offset: int) -> None:
    target = state / ACKNOWLEDGED
    temp = target.with_suffix(".tmp")
    temp.write_text(f"{offset}\n")
    temp.replace(target)


async def checked_parties(port: CantonAdapter, parties: Iterable[str]) -> list[str]:
    """The catalogue's parties whose completions the check reads. The ledger refuses a
    completions read naming a party the user has no right for (PERMISSION_DENIED): such a
    subscriber cannot be charged by this user now (`pipeline/canton/hosting.py` says so at start)."""
    wanted = list(dict.fromkeys(parties))
    standings = await port.parties.standings(wanted)
    return [p for p in wanted if standings[p].can_act]


async def check_ledger_known(ledger: LedgerApi, book: PaymentBook, parties: list[str], state: Path) -> None:
    """Raise `CommandError` (one line) when the ledger shows charges the log does not hold."""
    after = max(book.ledger_offset, acknowledged(state))
    scan = await billing_completions(ledger, parties, after=after)
    strangers = unknown_charges(scan.completions, book)
    if not strangers and scan.checked_to < scan.end:
        raise CommandError(
            f"the state folder {state.resolve()} knows the ledger up to offset {after}, and one check reads "
            f"only up to offset {scan.checked_to} of {scan.end}: nothing was charged; run "
            "`billing replay --from-ledger` (once or more) to look at the rest first"
        )
    if not strangers:
        return
    latest = max(strangers, key=lambda c: c.offset)
    raise CommandError(
        f"the ledger shows {len(strangers)} charge(s) by this app that the state folder "
        f"{state.resolve()} does not hold (latest: command {latest.command_id}, update "
        f"{latest.update_id}, offset {latest.offset}); nothing was charged, so no period is paid "
        "twice: point ROCKSDB_PATH at the folder that recorded them, or rebuild this one from the "
        "ledger with `billing replay --from-ledger`"
    )
