"""What the processor needs from Canton, as a port: prepare, submit, reconcile, verify.

The processor is written against `CantonPort`; `pipeline/canton/adapter.py` implements
it with the Ledger API and Scan clients. Outcomes are plain values, not exceptions, so
the decision of what an outcome means stays a pure function (`pipeline/processor/decisions.py`).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal, Protocol

import msgspec

RejectionKind = Literal["duplicate", "retryable", "in_doubt", "final"]


class Prepared(msgspec.Struct, frozen=True, kw_only=True):
    """Everything a submission needs, fetched before `PaymentSubmitted` is recorded."""

    ledger_offset: int
    inputs: tuple[str, ...]
    context: object = None  # adapter-private (the Scan context used), opaque here


class Insufficient(msgspec.Struct, frozen=True, kw_only=True):
    """The sender's holdings cannot cover the amount: fail before any submission."""

    available: Decimal
    required: Decimal
    message: str


class Accepted(msgspec.Struct, frozen=True, kw_only=True):
    update_id: str
    completion_offset: int | None = None


class Rejected(msgspec.Struct, frozen=True, kw_only=True):
    """A submission that did not (knowingly) commit, classified as canton-apis.md §7.2 says."""

    kind: RejectionKind
    code: str
    message: str
    error_id: str | None = None
    completion_offset: int | None = None
    #: The Scan context (round, rules, preapproval) is stale: refresh it before retrying.
    stale_context: bool = False


class CompletionFound(msgspec.Struct, frozen=True, kw_only=True):
    """A completion of our commandId on the ledger (success or rejection)."""

    accepted: bool
    offset: int
    update_id: str | None = None
    message: str = ""


class Unproved(msgspec.Struct, frozen=True, kw_only=True):
    """The ledger cannot say whether a command was accepted (its history is pruned, say)."""

    reason: str


class Verified(msgspec.Struct, frozen=True, kw_only=True):
    amount: Decimal
    round: int | None = None


class NotVisible(msgspec.Struct, frozen=True, kw_only=True):
    """Scan does not show the update yet (it can lag the participant)."""


class Mismatch(msgspec.Struct, frozen=True, kw_only=True):
    """Scan shows the update but not the transfer we asked for."""

    message: str
    amount: Decimal | None = None


class CantonPort(Protocol):
    async def prepare(self, sender: str, amount: Decimal) -> Prepared | Insufficient | Rejected:
        """Fetch the (cached) Scan context, the ledger end and the sender's inputs."""
        ...

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
        """Exercise `TransferPreapproval_Send` through submit-and-wait."""
        ...

    async def find_completion(self, *, party: str, command_id: str, begin_offset: int) -> CompletionFound | None:
        """Look the commandId up in the completions after ``begin_offset``."""
        ...

    async def prove_outcome(
        self, *, party: str, command_id: str, begin_offset: int
    ) -> CompletionFound | Unproved | None:
        """Whether the commandId was accepted after ``begin_offset``, read to the ledger end:
        its acceptance, None (proved: not accepted), or `Unproved`."""
        ...

    async def update_at(self, offset: int, party: str) -> str | None:
        """The update id of the transaction at ``offset`` (after DUPLICATE_COMMAND)."""
        ...

    async def verify(
        self, update_id: str, *, sender: str, receiver: str, amount: Decimal, description: str
    ) -> Verified | NotVisible | Mismatch:
        """Check the transfer in Scan's update history (``description`` names the period)."""
        ...

    def invalidate_context(self) -> None:
        """Forget the cached Scan context (after a stale-contract rejection)."""
        ...
