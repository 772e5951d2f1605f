"""JSON Ledger API v2 bodies billing sends and reads, as msgspec Structs named after the schemas.

Names follow `json-ledger-api-openapi.yaml` (release line 3.5) components, including its
numbered twins (`Completion` wraps `Completion1`, `TemplateFilter` wraps
`TemplateFilter1`). Python fields are snake_case; ``rename`` produces the wire names.
Requests omit unset optional fields; responses ignore fields we do not read, so a
newer participant does not break decoding. `oneOf` wrappers (``{"ExerciseCommand": …}``)
are Structs with one optional field per alternative.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec


class _Request(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, rename="camel"):
    """Base of request bodies: camelCase on the wire, unset optionals left out."""


class _Response(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Base of response bodies: camelCase on the wire, unknown fields ignored."""


class _OneOf(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, rename="pascal"):
    """Base of the spec's oneOf wrappers, whose keys are schema names (``JsActiveContract``)."""


# --- filters (GetActiveContractsRequest, UpdateFormat) -------------------------------------------


class TemplateFilter1(_Request, frozen=True):
    template_id: str
    include_created_event_blob: bool | None = None


class TemplateFilter(_Request, frozen=True):
    value: TemplateFilter1


class IdentifierFilter(_OneOf, frozen=True):
    template_filter: TemplateFilter | None = None
    wildcard_filter: dict[str, Any] | None = None


class CumulativeFilter(_Request, frozen=True):
    identifier_filter: IdentifierFilter


class Filters(_Request, frozen=True):
    cumulative: list[CumulativeFilter] = []


class EventFormat(_Request, frozen=True):
    filters_by_party: dict[str, Filters] | None = None
    filters_for_any_party: Filters | None = None
    verbose: bool | None = None


class TransactionFormat(_Request, frozen=True):
    event_format: EventFormat
    transaction_shape: Literal["TRANSACTION_SHAPE_ACS_DELTA", "TRANSACTION_SHAPE_LEDGER_EFFECTS"]


class UpdateFormat(_Request, frozen=True):
    include_transactions: TransactionFormat | None = None


# --- ledger end and active contracts ------------------------------------------------------------


class GetLedgerEndResponse(_Response, frozen=True):
    offset: int = 0


class GetActiveContractsRequest(_Request, frozen=True):
    active_at_offset: int
    event_format: EventFormat
    stream_continuation_token: str | None = None


class CreatedEvent(_Response, frozen=True):
    offset: int
    node_id: int
    contract_id: str
    template_id: str
    create_argument: Any = None
    created_event_blob: str | None = None
    witness_parties: list[str] = []
    signatories: list[str] = []
    observers: list[str] = []
    created_at: str = ""
    package_name: str = ""


class ArchivedEvent(_Response, frozen=True):
    offset: int
    node_id: int
    contract_id: str
    template_id: str


class ExercisedEvent(_Response, frozen=True):
    offset: int
    node_id: int
    contract_id: str
    template_id: str
    choice: str
    choice_argument: Any = None
    consuming: bool = False
    acting_parties: list[str] = []
    exercise_result: Any = None


class JsActiveContract(_Response, frozen=True):
    created_event: CreatedEvent
    synchronizer_id: str
    reassignment_counter: int = 0


class JsContractEntry(_OneOf, frozen=True):
    js_active_contract: JsActiveContract | None = None
    js_empty: dict[str, Any] | None = None
    js_incomplete_assigned: dict[str, Any] | None = None
    js_incomplete_unassigned: dict[str, Any] | None = None


class JsGetActiveContractsResponse(_Response, frozen=True):
    contract_entry: JsContractEntry | None = None
    workflow_id: str | None = None
    stream_continuation_token: str | None = None


# --- commands -----------------------------------------------------------------------------------


class ExerciseCommand(_Request, frozen=True):
    template_id: str
    contract_id: str
    choice: str
    choice_argument: Any


class Command(_OneOf, frozen=True):
    exercise_command: ExerciseCommand | None = None


class Duration(_Request, frozen=True, omit_defaults=False):
    """Both fields are required by the spec, so zero nanos are sent too."""

    seconds: int
    nanos: int = 0

    def __post_init__(self) -> None:
        if self.seconds < 0:
            raise ValueError("a deduplication duration cannot be negative")


class DeduplicationDuration(_Request, frozen=True):
    value: Duration


class DeduplicationPeriod(_OneOf, frozen=True):
    deduplication_duration: DeduplicationDuration | None = None


class DisclosedContract(_Request, frozen=True):
    created_event_blob: str
    template_id: str | None = None
    contract_id: str | None = None
    synchronizer_id: str | None = None


class JsCommands(_Request, frozen=True):
    commands: list[Command]
    command_id: str
    act_as: list[str]
    user_id: str | None = None
    read_as: list[str] | None = None
    submission_id: str | None = None
    deduplication_period: DeduplicationPeriod | None = None
    disclosed_contracts: list[DisclosedContract] | None = None
    synchronizer_id: str | None = None


class SubmitAndWaitResponse(_Response, frozen=True):
    update_id: str
    completion_offset: int


# --- completions --------------------------------------------------------------------------------


class CompletionStreamRequest(_Request, frozen=True):
    parties: list[str]
    user_id: str | None = None
    begin_exclusive: int | None = None


class JsStatus(_Response, frozen=True):
    code: int = 0
    message: str = ""


class SynchronizerTime(_Response, frozen=True):
    synchronizer_id: str
    record_time: str


class Completion1(_Response, frozen=True):
    """The completion itself (the spec's second schema titled `Completion`)."""

    command_id: str
    offset: int
    user_id: str = ""
    act_as: list[str] = []
    status: JsStatus | None = None
    update_id: str | None = None
    submission_id: str | None = None

    @property
    def accepted(self) -> bool:
        """gRPC status absent or 0 means the command committed (then ``update_id`` is set)."""
        return self.status is None or self.status.code == 0


class Completion(_Response, frozen=True):
    value: Completion1


class OffsetCheckpoint1(_Response, frozen=True):
    offset: int


class OffsetCheckpoint(_Response, frozen=True):
    value: OffsetCheckpoint1


class CompletionResponse(_OneOf, frozen=True):
    completion: Completion | None = None
    offset_checkpoint: OffsetCheckpoint | None = None
    empty: dict[str, Any] | None = None


class CompletionStreamResponse(_Response, frozen=True):
    completion_response: CompletionResponse | None = None


# --- updates ------------------------------------------------------------------------------------


class GetUpdateByIdRequest(_Request, frozen=True):
    update_id: str
    update_format: UpdateFormat


class GetUpdateByOffsetRequest(_Request, frozen=True):
    offset: int
    update_format: UpdateFormat


class Event(_OneOf, frozen=True):
    created_event: CreatedEvent | None = None
    archived_event: ArchivedEvent | None = None
    exercised_event: ExercisedEvent | None = None


class JsTransaction(_Response, frozen=True):
    update_id: str
    offset: int
    synchronizer_id: str
    effective_at: str
    record_time: str
    events: list[Event] = []
    command_id: str | None = None
    workflow_id: str | None = None


class Transaction(_Response, frozen=True):
    value: JsTransaction


class Update(_OneOf, frozen=True):
    transaction: Transaction | None = None
    offset_checkpoint: OffsetCheckpoint | None = None
    reassignment: dict[str, Any] | None = None
    topology_transaction: dict[str, Any] | None = None


class JsGetUpdateResponse(_Response, frozen=True):
    update: Update | None = None


class GetUpdatesRequest(_Request, frozen=True):
    begin_exclusive: int
    end_inclusive: int | None = None
    update_format: UpdateFormat | None = None


class JsGetUpdatesResponse(_Response, frozen=True):
    update: Update | None = None
