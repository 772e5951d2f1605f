"""The simulator's data: contracts, transactions, completions, rejections, and the round schedule.

Plain dataclasses and pure functions, no HTTP. Payloads are Daml-LF JSON as Scan and the
Ledger API show them (Decimals and Int64s in strings, times in ISO-8601).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

PKG = hashlib.sha256(b"splice-amulet-sim").hexdigest()  # the package id our templates claim
PACKAGE_NAME = "splice-amulet"
TEMPLATES = {
    "Amulet": "Splice.Amulet:Amulet",
    "FeaturedAppRight": "Splice.Amulet:FeaturedAppRight",
    "AmuletRules": "Splice.AmuletRules:AmuletRules",
    "TransferPreapproval": "Splice.AmuletRules:TransferPreapproval",
    "OpenMiningRound": "Splice.Round:OpenMiningRound",
}
INSUFFICIENT_FUNDS = "splice.lfdecentralizedtrust.org/insufficient-funds"
MAX_INPUTS_EXCEEDED = "splice.lfdecentralizedtrust.org/maximum-inputs-exceeded"
# errorCategory → HTTP status (canton-apis.md §6.1) and gRPC status code (for completions).
CATEGORY_STATUS = {
    1: 503,
    2: 409,
    3: 504,
    4: 500,
    5: 500,
    6: 401,
    7: 403,
    8: 400,
    9: 400,
    10: 409,
    11: 404,
    12: 400,
}
CATEGORY_GRPC = {1: 14, 2: 10, 3: 4, 4: 13, 5: 13, 6: 16, 7: 7, 8: 3, 9: 9, 10: 6, 11: 5, 12: 11}


def digest(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def numeric(amount: Decimal) -> str:
    """Daml Numeric 10 as Daml-LF JSON prints it."""
    return f"{amount.quantize(Decimal('1e-10')):f}"


def template_id(short: str) -> str:
    return f"{PKG}:{TEMPLATES[short]}"


def template_matches(requested: str, short: str) -> bool:
    """``#splice-amulet:M:E`` or ``<pkg id>:M:E`` names the template ``short``."""
    return requested.split(":", 1)[-1] == TEMPLATES[short]


@dataclass
class Contract:
    contract_id: str
    template: str  # a key of TEMPLATES
    payload: dict[str, Any]
    signatories: list[str]
    observers: list[str]
    created_at: datetime
    created_offset: int
    archived_offset: int | None = None

    @property
    def template_id(self) -> str:
        return template_id(self.template)

    @property
    def blob(self) -> str:
        return base64.b64encode(f"sim-blob|{self.template}|{self.contract_id}".encode()).decode()

    @property
    def stakeholders(self) -> set[str]:
        return {*self.signatories, *self.observers}

    def active_at(self, offset: int) -> bool:
        return self.created_offset <= offset and (self.archived_offset is None or self.archived_offset > offset)


@dataclass
class Exercise:
    contract: Contract
    choice: str
    argument: Any
    acting_parties: list[str]
    consuming: bool
    result: Any = None


@dataclass
class Transaction:
    update_id: str
    offset: int
    command_id: str
    user_id: str
    act_as: list[str]
    submission_id: str | None
    record_time: datetime
    root: Exercise
    archived: list[Contract]
    created: list[Contract]

    @property
    def witnesses(self) -> set[str]:
        parties = {*self.root.acting_parties, *self.root.contract.stakeholders}
        for contract in (*self.archived, *self.created):
            parties |= contract.stakeholders
        return parties


@dataclass
class CompletionRecord:
    offset: int
    command_id: str
    user_id: str
    act_as: list[str]
    submission_id: str | None
    record_time: datetime
    update_id: str | None = None
    status: tuple[int, str] | None = None  # gRPC code and message of a rejection


@dataclass
class Rejection(Exception):
    """A JsCantonError the simulator answers with (HTTP status from the category)."""

    code: str
    cause: str
    category: int
    context: dict[str, str] = field(default_factory=dict)
    sequenced: bool = False  # rejected after sequencing: leaves a completion behind
    http_status: int | None = None  # when the JSON API does not map the category (413 list limit)
    definite: bool | None = None  # definiteAnswer, when it is not simply "not a deadline"
    redacted: bool = False  # security-sensitive: ``cause`` is a template naming the request only

    @property
    def status(self) -> int:
        return self.http_status or CATEGORY_STATUS[self.category]

    def body(self, correlation_id: str) -> dict[str, Any]:
        trace = digest("trace", correlation_id)[:32]
        cause = self.cause.format(correlation=correlation_id, trace=trace) if self.redacted else self.cause
        doc: dict[str, Any] = {
            "code": self.code,
            "cause": cause,
            "context": dict(self.context),
            "errorCategory": self.category,
            "grpcCodeValue": CATEGORY_GRPC[self.category],
            "correlationId": correlation_id,
            "traceId": trace,
            "definiteAnswer": self.category != 3 if self.definite is None else self.definite,
        }
        if self.category in (1, 2, 3, 12):
            doc["retryInfo"] = "1 second"
        return doc


@dataclass(frozen=True)
class RoundInfo:
    number: int
    opens_at: datetime
    target_closes_at: datetime
    created_at: datetime


def open_rounds(genesis: datetime, tick: timedelta, now: datetime) -> list[RoundInfo]:
    """The three OpenMiningRounds alive at ``now`` (canton-apis.md §3.2).

    Round n opens at ``genesis + n·tick``, is created one tick earlier and archived at its
    ``targetClosesAt`` = opensAt + 2·tick; so at any moment rounds k-1, k (open) and k+1
    (opening next tick) exist, k being the latest round whose opensAt has passed.
    """
    k = max((now - genesis) // tick, 1)
    return [
        RoundInfo(n, genesis + n * tick, genesis + (n + 2) * tick, genesis + (n - 1) * tick) for n in (k - 1, k, k + 1)
    ]


def round_contract_id(number: int) -> str:
    return "00" + digest("OpenMiningRound", number)
