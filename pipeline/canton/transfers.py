"""Pure builders of the commands billing submits, and the choice of Amulet inputs.

`send_commands` builds the `TransferPreapproval_Send` submission of canton-apis.md §4.6
(`pipeline/canton/setup.py` builds those of `billing setup` on the same `envelope`). Every
submission sends an explicit deduplication period, the caller's commandId and a
submissionId of this attempt, acts as the controllers only, and discloses what the
submitter cannot see. `select_inputs` picks the largest Amulets first. No I/O, no clock,
no randomness here.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import msgspec

from pipeline.canton.amulet_reads import Holding
from pipeline.canton.scan_context import PaymentContext
from pipeline.canton.splice_types import (
    SEND,
    TRANSFER_PREAPPROVAL,
    PaymentTransferContext,
    TransferContext,
    TransferInput,
    TransferPreapprovalSend,
)
from pipeline.canton.types import (
    Command,
    DeduplicationDuration,
    DeduplicationPeriod,
    DisclosedContract,
    Duration,
    ExerciseCommand,
    JsCommands,
)

MAX_SCALE = 10  # Daml Decimal = Numeric 10


class Selection(msgspec.Struct, frozen=True, kw_only=True):
    """Inputs that cover the amount, largest first."""

    inputs: tuple[str, ...]
    total: Decimal


class InsufficientFunds(msgspec.Struct, frozen=True, kw_only=True):
    """The holdings cannot cover ``required``: the balance is short, or too fragmented."""

    required: Decimal
    available: Decimal  # every holding together
    spendable: Decimal  # the largest ``max_inputs`` holdings together
    max_inputs: int

    @property
    def fragmented(self) -> bool:
        return self.available >= self.required > self.spendable

    @property
    def reason(self) -> str:
        if self.fragmented:
            return (
                f"needs {self.required} CC but its {self.max_inputs} largest amulets hold only "
                f"{self.spendable} CC of {self.available} CC (merge them first)"
            )
        return f"holds {self.available} CC, needs {self.required} CC"


def check_amount(amount: Decimal) -> Decimal:
    """A positive Daml Decimal (at most 10 fractional digits), or ValueError."""
    if not amount.is_finite() or amount <= 0:
        raise ValueError(f"amount must be a positive number, got {amount}")
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_SCALE:
        raise ValueError(f"amount {amount} has more than {MAX_SCALE} decimal places (Daml Decimal)")
    return amount


def select_inputs(
    holdings: Sequence[Holding],
    amount: Decimal,
    *,
    max_inputs: int,
    fee_margin: Decimal = Decimal(0),
) -> Selection | InsufficientFunds:
    """Largest first, as few as cover ``amount + fee_margin``, at most ``max_inputs`` of them.

    Each holding counts at its ``initialAmount``: current Splice charges no holding fee when
    an Amulet is a transfer input (the Canton Coin fee-removal CIP, hyperledger-labs/splice
    PR 1722; docs/canton-facts.md), so an old Amulet is worth what it says.
    """
    required = amount + fee_margin
    valued = sorted(
        ((h.initial_amount, h.contract_id) for h in holdings),
        key=lambda pair: (-pair[0], pair[1]),
    )
    valued = [(value, cid) for value, cid in valued if value > 0]
    chosen: list[str] = []
    total = Decimal(0)
    for value, cid in valued[: max(max_inputs, 0)]:
        chosen.append(cid)
        total += value
        if total >= required:
            return Selection(inputs=tuple(chosen), total=total)
    return InsufficientFunds(
        required=required,
        available=sum((v for v, _ in valued), Decimal(0)),
        spendable=total,
        max_inputs=max_inputs,
    )


def dedup_period(seconds: int) -> DeduplicationPeriod:
    """An explicit DeduplicationDuration (LocalNet's default is only 30 s)."""
    return DeduplicationPeriod(deduplication_duration=DeduplicationDuration(value=Duration(seconds=seconds)))


def transfer_inputs(inputs: Sequence[str]) -> list[TransferInput]:
    """The chosen Amulets as a choice's ``inputs`` (at least one)."""
    if not inputs:
        raise ValueError("a transfer needs at least one input amulet")
    return [TransferInput(value=cid) for cid in inputs]


def send_commands(
    ctx: PaymentContext,
    *,
    sender: str,
    amount: Decimal,
    inputs: Sequence[str],
    description: str | None,
    command_id: str,
    submission_id: str,
    dedup_seconds: int,
    user_id: str | None = None,
) -> JsCommands:
    """The `TransferPreapproval_Send` submission paying ``ctx.receiver`` from ``sender``."""
    featured = ctx.featured_app_right.contract_id if ctx.featured_app_right else None
    argument = TransferPreapprovalSend(
        context=PaymentTransferContext(
            amuletRules=ctx.amulet_rules.contract_id,
            context=TransferContext(openMiningRound=ctx.open_round.contract.contract_id, featuredAppRight=featured),
        ),
        inputs=transfer_inputs(inputs),
        amount=check_amount(amount),
        sender=sender,
        description=description,
    )
    exercise = ExerciseCommand(
        template_id=TRANSFER_PREAPPROVAL,
        contract_id=ctx.transfer_preapproval.contract_id,
        choice=SEND,
        choice_argument=argument,
    )
    return envelope(
        exercise,
        act_as=[sender],
        command_id=command_id,
        submission_id=submission_id,
        dedup_seconds=dedup_seconds,
        user_id=user_id,
        synchronizer_id=ctx.synchronizer_id,
        disclosed=ctx.disclosed_contracts(),
    )


def envelope(
    exercise: ExerciseCommand,
    *,
    act_as: list[str],
    command_id: str,
    submission_id: str,
    dedup_seconds: int,
    user_id: str | None,
    synchronizer_id: str | None,
    disclosed: list[DisclosedContract],
) -> JsCommands:
    """The `JsCommands` around one exercise: ids, deduplication period, disclosures."""
    if not command_id or not submission_id:
        raise ValueError("commandId and submissionId must not be empty")
    return JsCommands(
        commands=[Command(exercise_command=exercise)],
        command_id=command_id,
        act_as=act_as,
        user_id=user_id,
        read_as=[],
        submission_id=submission_id,
        deduplication_period=dedup_period(dedup_seconds),
        disclosed_contracts=disclosed,
        synchronizer_id=synchronizer_id,
    )
