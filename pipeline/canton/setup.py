"""What `billing setup` submits and pays: the app's TransferPreapproval, created or renewed.

`create_preapproval_commands` builds `AmuletRules_CreateTransferPreapproval`
(original-behaviour.md §3.1 without its non-API fields), `renew_preapproval_commands`
`TransferPreapproval_Renew`, both as the app itself with AmuletRules and the round disclosed.

The fee, computed as Splice does: hyperledger-labs/splice
daml/splice-amulet/daml/Splice/AmuletRules.daml, `computeTransferPreapprovalFee`: fee_usd =
days x `transferPreapprovalFee` (USD/day, default 0.00274, about 1 USD a year) of the
AmuletConfig in force now, fee_cc = fee_usd / the context round's `amuletPrice`;
`splitAndBurn` burns it from the provider's inputs. Since the Canton Coin fee-removal CIP
(splice PR 1954) only the lifetime beyond `transferPreapprovalBaseDuration` (90 days by
default) is charged: create charges ``expiresAt - now``, renew ``newExpiresAt - expiresAt``.
A year at 0.005 USD/CC: (365 - 90) x 0.00274 / 0.005 = 150.7 CC.
Pure functions: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import msgspec

from pipeline.canton.splice_types import (
    AMULET_RULES,
    CREATE_PREAPPROVAL,
    RENEW_PREAPPROVAL,
    TRANSFER_PREAPPROVAL,
    AmuletRulesCreateTransferPreapproval,
    PaymentTransferContext,
    TransferContext,
    TransferPreapprovalRenew,
)
from pipeline.canton.transfers import envelope, transfer_inputs
from pipeline.canton.types import DisclosedContract, ExerciseCommand, JsCommands

DEFAULT_FEE_PER_DAY = Decimal("0.00274")  # Splice's defaultTransferPreapprovalFee
DAY = timedelta(days=1)
SCALE = Decimal("1e-10")  # Daml Numeric 10


class PreapprovalTerms(msgspec.Struct, frozen=True, kw_only=True):
    """The AmuletConfig fields that price a preapproval."""

    fee_usd_per_day: Decimal = DEFAULT_FEE_PER_DAY
    #: Free lifetime. Zero when AmuletRules does not name one: a network without the
    #: fee-removal CIP charges the whole lifetime, and billing must never choose too few inputs.
    free: timedelta = timedelta(0)


def terms_of(amulet_rules_payload: Any, now: datetime) -> PreapprovalTerms:
    """The terms in force at ``now`` (the Daml `getValueAsOf now configSchedule`)."""
    schedule = (amulet_rules_payload or {}).get("configSchedule") or {}
    config = schedule.get("initialValue") or {}
    for entry in schedule.get("futureValues") or []:
        at, value = (entry.get("_1"), entry.get("_2")) if isinstance(entry, dict) else entry
        if datetime.fromisoformat(str(at).replace("Z", "+00:00")) <= now:
            config = value
    fee = config.get("transferPreapprovalFee")
    base = (config.get("transferPreapprovalBaseDuration") or {}).get("microseconds")
    return PreapprovalTerms(
        fee_usd_per_day=Decimal(str(fee)) if fee is not None else DEFAULT_FEE_PER_DAY,
        free=timedelta(microseconds=int(base)) if base is not None else timedelta(0),
    )


def preapproval_fee(terms: PreapprovalTerms, lifetime: timedelta, amulet_price: Decimal) -> Decimal:
    """CC burnt for ``lifetime`` (the extension when renewing) at ``amulet_price`` USD/CC."""
    if amulet_price <= 0:
        raise ValueError(f"the round's amulet price must be positive, got {amulet_price}")
    charged = max(lifetime - terms.free, timedelta(0))
    days = Decimal(charged // timedelta(microseconds=1)) / Decimal(DAY // timedelta(microseconds=1))
    return (days * terms.fee_usd_per_day / amulet_price).quantize(SCALE, ROUND_HALF_EVEN)


def create_preapproval_commands(
    *,
    amulet_rules: DisclosedContract,
    open_round: DisclosedContract,
    party: str,
    inputs: Sequence[str],
    expires_at: datetime,
    dso_party: str,
    command_id: str,
    submission_id: str,
    dedup_seconds: int,
    user_id: str | None = None,
) -> JsCommands:
    """`AmuletRules_CreateTransferPreapproval` with receiver = provider = ``party`` (the app).

    ``amulet_rules`` and ``open_round`` come from `disclose` (their ``synchronizer_id`` is
    also the command's); ``party`` pays any preapproval fee from ``inputs``.
    """
    argument = AmuletRulesCreateTransferPreapproval(
        context=_rules_context(amulet_rules, open_round, expires_at),
        inputs=transfer_inputs(inputs),
        receiver=party,
        provider=party,
        expiresAt=expires_at,
        expectedDso=dso_party,
    )
    exercise = (AMULET_RULES, amulet_rules.contract_id or "", CREATE_PREAPPROVAL, argument)
    return _as_app(exercise, party, amulet_rules, open_round, command_id, submission_id, dedup_seconds, user_id)


def renew_preapproval_commands(
    *,
    preapproval_id: str,
    amulet_rules: DisclosedContract,
    open_round: DisclosedContract,
    party: str,
    inputs: Sequence[str],
    new_expires_at: datetime,
    command_id: str,
    submission_id: str,
    dedup_seconds: int,
    user_id: str | None = None,
) -> JsCommands:
    """`TransferPreapproval_Renew` of the app's own preapproval (``party`` is its provider and
    pays the fee for the extension from ``inputs``)."""
    argument = TransferPreapprovalRenew(
        context=_rules_context(amulet_rules, open_round, new_expires_at),
        inputs=transfer_inputs(inputs),
        newExpiresAt=new_expires_at,
    )
    exercise = (TRANSFER_PREAPPROVAL, preapproval_id, RENEW_PREAPPROVAL, argument)
    return _as_app(exercise, party, amulet_rules, open_round, command_id, submission_id, dedup_seconds, user_id)


def _as_app(
    exercise: tuple[str, str, str, object],
    party: str,
    amulet_rules: DisclosedContract,
    open_round: DisclosedContract,
    command_id: str,
    submission_id: str,
    dedup_seconds: int,
    user_id: str | None,
) -> JsCommands:
    """The app (``party``) exercising (template, contract id, choice, argument), with AmuletRules
    and the round disclosed."""
    template_id, contract_id, choice, argument = exercise
    return envelope(
        ExerciseCommand(template_id=template_id, contract_id=contract_id, choice=choice, choice_argument=argument),
        act_as=[party],
        command_id=command_id,
        submission_id=submission_id,
        dedup_seconds=dedup_seconds,
        user_id=user_id,
        synchronizer_id=amulet_rules.synchronizer_id,
        disclosed=[amulet_rules, open_round],
    )


def _rules_context(
    amulet_rules: DisclosedContract, open_round: DisclosedContract, expiry: datetime
) -> PaymentTransferContext:
    """The context of a preapproval choice (no featured right: the app pays itself)."""
    if expiry.tzinfo is None:
        raise ValueError("the expiry must be an aware (UTC) datetime")
    if amulet_rules.contract_id is None or open_round.contract_id is None:
        raise ValueError("disclosed AmuletRules and OpenMiningRound need their contract ids")
    return PaymentTransferContext(
        amuletRules=amulet_rules.contract_id,
        context=TransferContext(openMiningRound=open_round.contract_id, featuredAppRight=None),
    )
