"""JSON Ledger API v2 bodies of billing's reads: the ledger end, active contracts, updates, and the
filters that select what they return (conventions as in `pipeline/canton/types.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from msgspec import field

from pipeline.canton.types import OffsetCheckpoint, OneOf, Request, Response

Shape = Literal["TRANSACTION_SHAPE_ACS_DELTA", "TRANSACTION_SHAPE_LEDGER_EFFECTS"]

# --- filters (GetActiveContractsRequest, UpdateFormat) -------------------------------------------


class TemplateFilter1(Request, frozen=True):
    template_id: str
    include_created_event_blob: bool | None = None


class TemplateFilter(Request, frozen=True):
    value: TemplateFilter1


class IdentifierFilter(OneOf, frozen=True):
    template_filter: TemplateFilter | None = None
    wildcard_filter: dict[str, Any] | None = None


class CumulativeFilter(Request, frozen=True):
    identifier_filter: IdentifierFilter


class Filters(Request, frozen=True):
    cumulative: list[CumulativeFilter] = field(default_factory=list)


class EventFormat(Request, frozen=True):
    filters_by_party: dict[str, Filters] | None = None
    filters_for_any_party: Filters | None = None
    verbose: bool | None = None


class TransactionFormat(Request, frozen=True):
    event_format: EventFormat
    transaction_shape: Shape


class UpdateFormat(Request, frozen=True):
    include_transactions: TransactionFormat | None = None


def template_filter(party: str | Sequence[str], template_id: str, *, include_blob: bool = False) -> EventFormat:
    """An `EventFormat` selecting one template's contracts visible to ``party`` (or parties)."""
    flt = IdentifierFilter(
        template_filter=TemplateFilter(
            value=TemplateFilter1(template_id=template_id, include_created_event_blob=include_blob)
        )
    )
    filters = Filters(cumulative=[CumulativeFilter(identifier_filter=flt)])
    parties = [party] if isinstance(party, str) else party
    return EventFormat(filters_by_party=dict.fromkeys(parties, filters), verbose=False)


def transaction_format(party: str, *, effects: bool = False) -> UpdateFormat:
    """Transactions as ``party`` sees them (all templates); LEDGER_EFFECTS adds the exercise."""
    shape: Shape = "TRANSACTION_SHAPE_LEDGER_EFFECTS" if effects else "TRANSACTION_SHAPE_ACS_DELTA"
    fmt = EventFormat(filters_by_party={party: Filters()}, verbose=True)
    return UpdateFormat(include_transactions=TransactionFormat(event_format=fmt, transaction_shape=shape))


# --- ledger end and active contracts ------------------------------------------------------------


class GetLedgerEndResponse(Response, frozen=True):
    offset: int = 0


class GetActiveContractsRequest(Request, frozen=True):
    active_at_offset: int
    event_format: EventFormat
    stream_continuation_token: str | None = None


class CreatedEvent(Response, frozen=True):
    offset: int
    node_id: int
    contract_id: str
    template_id: str
    create_argument: Any = None
    created_event_blob: str | None = None
    witness_parties: list[str] = field(default_factory=list)
    signatories: list[str] = field(default_factory=list)
    observers: list[str] = field(default_factory=list)
    created_at: str = ""
    package_name: str = ""


class ArchivedEvent(Response, frozen=True):
    offset: int
    node_id: int
    contract_id: str
    template_id: str


class ExercisedEvent(Response, frozen=True):
    offset: int
    node_id: int
    contract_id: str
    template_id: str
    choice: str
    choice_argument: Any = None
    consuming: bool = False
    acting_parties: list[str] = field(default_factory=list)
    exercise_result: Any = None


class JsActiveContract(Response, frozen=True):
    created_event: CreatedEvent
    synchronizer_id: str
    reassignment_counter: int = 0


class JsContractEntry(OneOf, frozen=True):
    js_active_contract: JsActiveContract | None = None
    js_empty: dict[str, Any] | None = None
    js_incomplete_assigned: dict[str, Any] | None = None
    js_incomplete_unassigned: dict[str, Any] | None = None


class JsGetActiveContractsResponse(Response, frozen=True):
    contract_entry: JsContractEntry | None = None
    workflow_id: str | None = None
    stream_continuation_token: str | None = None


# --- updates ------------------------------------------------------------------------------------


class GetUpdateByIdRequest(Request, frozen=True):
    update_id: str
    update_format: UpdateFormat


class GetUpdateByOffsetRequest(Request, frozen=True):
    offset: int
    update_format: UpdateFormat


class Event(OneOf, frozen=True):
    created_event: CreatedEvent | None = None
    archived_event: ArchivedEvent | None = None
    exercised_event: ExercisedEvent | None = None


class JsTransaction(Response, frozen=True):
    update_id: str
    offset: int
    synchronizer_id: str
    effective_at: str
    record_time: str
    events: list[Event] = field(default_factory=list)
    command_id: str | None = None
    workflow_id: str | None = None


class Transaction(Response, frozen=True):
    value: JsTransaction


class Update(OneOf, frozen=True):
    transaction: Transaction | None = None
    offset_checkpoint: OffsetCheckpoint | None = None
    reassignment: dict[str, Any] | None = None
    topology_transaction: dict[str, Any] | None = None


class JsGetUpdateResponse(Response, frozen=True):
    update: Update | None = None


class GetUpdatesRequest(Request, frozen=True):
    begin_exclusive: int
    end_inclusive: int | None = None
    update_format: UpdateFormat | None = None


class JsGetUpdatesResponse(Response, frozen=True):
    update: Update | None = None
