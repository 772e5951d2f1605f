"""JSON Ledger API v2 bodies of the commands billing submits and of their completions, as msgspec
Structs named after the schemas; the reads' bodies are in `pipeline/canton/read_types.py`.

Names follow `json-ledger-api-openapi.yaml` (release line 3.5) components, including its
numbered twins (`Completion` wraps `Completion1`, `TemplateFilter` wraps
`TemplateFilter1`). Python fields are snake_case; ``rename`` produces the wire names.
Requests omit unset optional fields; responses ignore fields we do not read, so a
newer participant does not break decoding. `oneOf` wrappers (``{"ExerciseCommand": …}``)
are Structs with one optional field per alternative.
"""

from __future__ import annotations

from typing import Any

import msgspec


class Request(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, rename="camel"):
    """Base of request bodies: camelCase on the wire, unset optionals left out."""


class Response(msgspec.Struct, frozen=True, kw_only=True, rename="camel"):
    """Base of response bodies: camelCase on the wire, unknown fields ignored."""


class OneOf(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, rename="pascal"):
    """Base of the spec's oneOf wrappers, whose keys are schema names (``JsActiveContract``)."""


# --- commands -----------------------------------------------------------------------------------


class ExerciseCommand(Request, frozen=True):
    template_id: str
    contract_id: str
    choice: str
    choice_argument: Any


class Command(OneOf, frozen=True):
    exercise_command: ExerciseCommand | None = None


class Duration(Request, frozen=True, omit_defaults=False):
    """Both fields are required by the spec, so zero nanos are sent too."""

    seconds: int
    nanos: int = 0

    def __post_init__(self) -> None:
        if self.seconds < 0:
            raise ValueError("a deduplication duration cannot be negative")


class DeduplicationDuration(Request, frozen=True):
    value: Duration


class DeduplicationPeriod(OneOf, frozen=True):
    deduplication_duration: DeduplicationDuration | None = None


class DisclosedContract(Request, frozen=True):
    created_event_blob: str
    template_id: str | None = None
    contract_id: str | None = None
    synchronizer_id: str | None = None


class JsCommands(Request, frozen=True):
    commands: list[Command]
    command_id: str
    act_as: list[str]
    user_id: str | None = None
    read_as: list[str] | None = None
    submission_id: str | None = None
    deduplication_period: DeduplicationPeriod | None = None
    disclosed_contracts: list[DisclosedContract] | None = None
    synchronizer_id: str | None = None


class SubmitAndWaitResponse(Response, frozen=True):
    update_id: str
    completion_offset: int


# --- completions --------------------------------------------------------------------------------


class CompletionStreamRequest(Request, frozen=True):
    parties: list[str]
    user_id: str | None = None
    begin_exclusive: int | None = None


class JsStatus(Response, frozen=True):
    code: int = 0
    message: str = ""


class Completion1(Response, frozen=True):
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


class Completion(Response, frozen=True):
    value: Completion1


class OffsetCheckpoint1(Response, frozen=True):
    offset: int


class OffsetCheckpoint(Response, frozen=True):
    value: OffsetCheckpoint1


class CompletionResponse(OneOf, frozen=True):
    completion: Completion | None = None
    offset_checkpoint: OffsetCheckpoint | None = None
    empty: dict[str, Any] | None = None


class CompletionStreamResponse(Response, frozen=True):
    completion_response: CompletionResponse | None = None
