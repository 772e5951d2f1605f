"""Small stateful fakes for processor tests (the HTTP-level fake is the simulator).

`FakeLedger` implements `CantonPort` with a ledger that really deduplicates by
commandId, keeps completions, moves no real money but records every transfer, and
fails the next calls as scripted. It lets a test stop the processor at any step.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from decimal import Decimal
from typing import Any

from pipeline.canton.port import (
    Accepted,
    CompletionFound,
    Insufficient,
    Mismatch,
    NotVisible,
    Prepared,
    Rejected,
    Verified,
)


class Transfer:
    def __init__(
        self, command_id: str, sender: str, receiver: str, amount: Decimal, offset: int, description: str = ""
    ):
        self.command_id = command_id
        self.description = description
        self.sender = sender
        self.receiver = receiver
        self.amount = amount
        self.offset = offset
        self.update_id = f"upd-{offset}"


class FakeLedger:
    """A CantonPort whose ledger and faults a test controls."""

    def __init__(self, balances: dict[str, Decimal] | None = None) -> None:
        self.balances = balances
        self.transfers: list[Transfer] = []
        self.completions: list[tuple[int, str, bool, str | None]] = []
        self._offsets = itertools.count(1)
        self.offset = 0
        #: scripted outcomes for the next submissions: "commit_then_timeout", "timeout",
        #: "retryable", "final", "stale", "duplicate_no_offset", or a callable hook.
        self.faults: deque[str] = deque()
        self.scan_lag = 0  # verify() answers NotVisible this many times first
        self.gate: asyncio.Event | None = None  # when set, submit() waits for it
        self.calls: list[str] = []
        self.invalidations = 0

    def transfers_for(self, command_id: str) -> list[Transfer]:
        return [t for t in self.transfers if t.command_id == command_id]

    async def prepare(self, sender: str, amount: Decimal) -> Prepared | Insufficient | Rejected:
        self.calls.append("prepare")
        if self.balances is not None and self.balances.get(sender, Decimal(0)) < amount:
            have = self.balances.get(sender, Decimal(0))
            return Insufficient(available=have, required=amount, message=f"{sender} holds {have} CC")
        return Prepared(ledger_offset=self.offset, inputs=("amulet-1",))

    async def submit(
        self,
        prepared: Prepared,
        *,
        sender: str,
        receiver: str,
        amount: Decimal,
        description: str,
        command_id: str,
        submission_id: str,
    ) -> Accepted | Rejected:
        self.calls.append("submit")
        if self.gate is not None:
            await self.gate.wait()
        fault = self.faults.popleft() if self.faults else None
        if fault in ("timeout", "retryable", "final", "stale"):
            return _rejection(fault)
        existing = self.transfers_for(command_id)
        if existing:
            return Rejected(
                kind="duplicate",
                code="DUPLICATE_COMMAND",
                message="already accepted",
                completion_offset=None if fault == "duplicate_no_offset" else existing[0].offset,
            )
        transfer = self._commit(command_id, sender, receiver, amount, description)
        if fault == "commit_then_timeout":
            return _rejection("timeout")
        if fault == "commit_then_hang":  # the process dies before it hears back
            await asyncio.Event().wait()
        return Accepted(update_id=transfer.update_id, completion_offset=transfer.offset)

    def _commit(self, command_id: str, sender: str, receiver: str, amount: Decimal, description: str = "") -> Transfer:
        self.offset = next(self._offsets)
        transfer = Transfer(command_id, sender, receiver, amount, self.offset, description)
        self.transfers.append(transfer)
        self.completions.append((self.offset, command_id, True, transfer.update_id))
        if self.balances is not None:
            self.balances[sender] -= amount
        return transfer

    async def find_completion(self, *, party: str, command_id: str, begin_offset: int) -> CompletionFound | None:
        self.calls.append("find_completion")
        for offset, cid, accepted, update_id in self.completions:
            if cid == command_id and offset > begin_offset:
                return CompletionFound(accepted=accepted, offset=offset, update_id=update_id)
        return None

    async def prove_outcome(self, *, party: str, command_id: str, begin_offset: int) -> CompletionFound | None:
        self.calls.append("prove_outcome")
        found = await self.find_completion(party=party, command_id=command_id, begin_offset=begin_offset)
        return found if found is not None and found.accepted else None

    async def update_at(self, offset: int, party: str) -> str | None:
        return next((t.update_id for t in self.transfers if t.offset == offset), None)

    async def verify(
        self, update_id: str, *, sender: str, receiver: str, amount: Decimal, description: str
    ) -> Verified | NotVisible | Mismatch:
        self.calls.append("verify")
        if self.scan_lag > 0:
            self.scan_lag -= 1
            return NotVisible()
        transfer = next((t for t in self.transfers if t.update_id == update_id), None)
        if transfer is None:
            return NotVisible()
        seen = (transfer.sender, transfer.receiver, transfer.amount, transfer.description)
        if seen != (sender, receiver, amount, description):
            return Mismatch(message="different transfer", amount=transfer.amount)
        return Verified(amount=transfer.amount, round=7)

    def invalidate_context(self) -> None:
        self.invalidations += 1


def _rejection(fault: str) -> Rejected:
    return {
        "timeout": Rejected(kind="in_doubt", code="REQUEST_TIME_OUT", message="timed out"),
        "retryable": Rejected(kind="retryable", code="LOCAL_VERDICT_LOCKED_CONTRACTS", message="input locked"),
        "final": Rejected(kind="final", code="DAML_FAILURE", message="preapproval expired"),
        "stale": Rejected(
            kind="retryable", code="LOCAL_VERDICT_INACTIVE_CONTRACTS", message="round archived", stale_context=True
        ),
    }[fault]


class FaultAt:
    """A CantonPort over a real one (e.g. the adapter on the simulator) that raises ``error``
    once, at ``step``: a plain bug, not a classified failure.

    Steps: ``prepare`` (before anything is recorded), ``submit`` (PaymentSubmitted recorded,
    nothing sent), ``after_submit`` (sent, committed and answered; the answer is lost),
    ``find_completion`` (the in-doubt lookup) and ``verify`` (the accepted transfer's proof).
    """

    def __init__(self, port: Any, step: str, error: BaseException) -> None:
        self.port, self.step = port, step
        self.error: BaseException | None = error

    def _trip(self, step: str) -> None:
        if step == self.step and self.error is not None:
            error, self.error = self.error, None
            raise error

    async def prepare(self, sender: str, amount: Decimal) -> Prepared | Insufficient | Rejected:
        self._trip("prepare")
        return await self.port.prepare(sender, amount)  # type: ignore[no-any-return]

    async def submit(self, prepared: Prepared, **kw: Any) -> Accepted | Rejected:
        self._trip("submit")
        result = await self.port.submit(prepared, **kw)
        self._trip("after_submit")
        return result  # type: ignore[no-any-return]

    async def find_completion(self, **kw: Any) -> CompletionFound | None:
        self._trip("find_completion")
        return await self.port.find_completion(**kw)  # type: ignore[no-any-return]

    async def prove_outcome(self, **kw: Any) -> Any:
        self._trip("prove_outcome")
        return await self.port.prove_outcome(**kw)

    async def update_at(self, offset: int, party: str) -> str | None:
        return await self.port.update_at(offset, party)  # type: ignore[no-any-return]

    async def verify(self, update_id: str, **kw: Any) -> Verified | NotVisible | Mismatch:
        self._trip("verify")
        return await self.port.verify(update_id, **kw)  # type: ignore[no-any-return]

    def invalidate_context(self) -> None:
        self.port.invalidate_context()
