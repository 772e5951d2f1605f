"""The Daml records of splice-amulet billing touches, in Daml-LF JSON (canton-apis.md §1.2, §4).

Choice arguments we send (`TransferPreapproval_Send`, `AmuletRules_CreateTransferPreapproval`)
and read-only views of contract payloads (rounds, amulets, preapprovals). Daml-LF JSON
puts Decimal and Int64 in strings; msgspec converts them with ``strict=False``, and `json_body`
writes every Decimal of a request as the plain decimal string Canton requires.
"""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, TypeVar

import msgspec

AMULET = "#splice-amulet:Splice.Amulet:Amulet"
AMULET_RULES = "#splice-amulet:Splice.AmuletRules:AmuletRules"
TRANSFER_PREAPPROVAL = "#splice-amulet:Splice.AmuletRules:TransferPreapproval"
SEND = "TransferPreapproval_Send"
CREATE_PREAPPROVAL = "AmuletRules_CreateTransferPreapproval"
RENEW_PREAPPROVAL = "TransferPreapproval_Renew"

T = TypeVar("T")


class _Daml(msgspec.Struct, frozen=True, kw_only=True):
    """Daml record fields are camelCase already; every field is sent, Optional None as null."""


# --- choice arguments ---------------------------------------------------------------------------


class TransferInput(_Daml, frozen=True, kw_only=True):
    """The `InputAmulet` constructor of the `TransferInput` variant."""

    tag: Literal["InputAmulet"] = "InputAmulet"
    value: str


class TransferContext(_Daml, frozen=True):
    openMiningRound: str
    featuredAppRight: str | None
    # Daml `Map`s (GenMap) are arrays of [key, value] pairs; empty for a plain amulet payment.
    issuingMiningRounds: list[Any] = []
    validatorRights: list[Any] = []


class PaymentTransferContext(_Daml, frozen=True):
    amuletRules: str
    context: TransferContext


class TransferPreapprovalSend(_Daml, frozen=True):
    """Argument of `TransferPreapproval_Send` (controller: sender)."""

    context: PaymentTransferContext
    inputs: list[TransferInput]
    amount: Decimal
    sender: str
    description: str | None


class AmuletRulesCreateTransferPreapproval(_Daml, frozen=True):
    """Argument of `AmuletRules_CreateTransferPreapproval` (controllers: receiver and provider)."""

    context: PaymentTransferContext
    inputs: list[TransferInput]
    receiver: str
    provider: str
    expiresAt: datetime
    expectedDso: str | None


class TransferPreapprovalRenew(_Daml, frozen=True):
    """Argument of `TransferPreapproval_Renew` (controller: provider; consuming)."""

    context: PaymentTransferContext
    inputs: list[TransferInput]
    newExpiresAt: datetime


# --- payload views (what Scan's `payload` and the ACS `createArgument` hold) --------------------


class Round(_Daml, frozen=True):
    number: int


class TransferConfigUsd(_Daml, frozen=True):
    maxNumInputs: int = 100
    maxNumOutputs: int = 100


class OpenMiningRound(_Daml, frozen=True):
    round: Round
    opensAt: datetime
    targetClosesAt: datetime
    amuletPrice: Decimal = Decimal(1)
    transferConfigUsd: TransferConfigUsd = TransferConfigUsd()


class RatePerRound(_Daml, frozen=True):
    rate: Decimal = Decimal(0)


class ExpiringAmount(_Daml, frozen=True):
    initialAmount: Decimal
    createdAt: Round
    ratePerRound: RatePerRound = RatePerRound()


class Amulet(_Daml, frozen=True):
    owner: str
    amount: ExpiringAmount
    dso: str = ""


class TransferPreapproval(_Daml, frozen=True):
    receiver: str
    provider: str
    expiresAt: datetime
    dso: str = ""


class FeaturedAppRight(_Daml, frozen=True):
    provider: str
    dso: str = ""


# What the Ledger API accepts as a Numeric (digital-asset/canton ledger-api-core .../api/validation/
# ValueValidator.scala `validNumericPattern`; the JSON API passes the string through unchanged).
NUMERIC = re.compile(r"[+-]?\d{1,38}(\.\d{0,37})?")


def numeric_text(value: Decimal) -> str:
    """``value`` as a plain decimal string Canton accepts: "0.0000005", never "5E-7" (which is
    what ``str`` and msgspec write for small or trailing-zero-free Decimals, and Canton rejects)."""
    text = f"{value:f}" if value.is_finite() else ""
    if NUMERIC.fullmatch(text) is None:
        raise ValueError(f"{value} is not a Daml Numeric (at most 38 digits, 37 after the point)")
    return text


def json_body(body: Any) -> bytes:
    """A request body as JSON, every Decimal in it a plain Numeric string (`numeric_text`)."""
    return msgspec.json.encode(_plain(msgspec.to_builtins(body, builtin_types=(Decimal,))))


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return numeric_text(value)
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def read_payload(payload: Any, view: type[T]) -> T:
    """A typed view of a Daml-LF JSON payload; `msgspec.ValidationError` when it does not fit."""
    return msgspec.convert(payload, view, strict=False)
