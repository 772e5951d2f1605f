"""Scan API bodies billing sends and reads, as msgspec Structs named after the spec schemas.

Names follow `scan.yaml` and the `common-{external,internal}.yaml` files it refers to.
Scan's wire names are already snake_case. Only the fields billing reads are declared;
the rest of each answer is ignored. Contract payloads stay Daml-LF JSON (`dict`);
`pipeline/canton/splice_types.py` reads the few fields that matter out of them.
"""

from __future__ import annotations

from typing import Any

import msgspec

# The wire values of the TreeEvent discriminator `event_type`.
CREATED = "created_event"
EXERCISED = "exercised_event"


class Contract(msgspec.Struct, frozen=True, kw_only=True):
    template_id: str
    contract_id: str
    payload: dict[str, Any]
    created_event_blob: str
    created_at: str


class ContractWithState(msgspec.Struct, frozen=True, kw_only=True):
    contract: Contract
    domain_id: str | None = None


class MaybeCachedContractWithState(msgspec.Struct, frozen=True, kw_only=True):
    contract: Contract | None = None
    domain_id: str | None = None


class GetDsoInfoResponse(msgspec.Struct, frozen=True, kw_only=True):
    dso_party_id: str
    amulet_rules: ContractWithState
    latest_mining_round: ContractWithState
    sv_party_id: str = ""


class GetOpenAndIssuingMiningRoundsRequest(msgspec.Struct, frozen=True, kw_only=True):
    cached_open_mining_round_contract_ids: list[str] = []
    cached_issuing_round_contract_ids: list[str] = []


class GetOpenAndIssuingMiningRoundsResponse(msgspec.Struct, frozen=True, kw_only=True):
    open_mining_rounds: dict[str, MaybeCachedContractWithState]
    issuing_mining_rounds: dict[str, MaybeCachedContractWithState]
    time_to_live_in_microseconds: int


class LookupFeaturedAppRightResponse(msgspec.Struct, frozen=True, kw_only=True):
    featured_app_right: Contract | None = None


class LookupTransferPreapprovalByPartyResponse(msgspec.Struct, frozen=True, kw_only=True):
    transfer_preapproval: ContractWithState


class UpdateHistoryRequestAfter(msgspec.Struct, frozen=True, kw_only=True):
    after_migration_id: int
    after_record_time: str


class UpdateHistoryRequestV2(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    page_size: int
    after: UpdateHistoryRequestAfter | None = None
    daml_value_encoding: str | None = None


class CreatedEvent(msgspec.Struct, frozen=True, kw_only=True, tag_field="event_type", tag=CREATED):
    event_id: str
    contract_id: str
    template_id: str
    create_arguments: dict[str, Any]
    package_name: str = ""
    signatories: list[str] = []
    observers: list[str] = []


class ExercisedEvent(msgspec.Struct, frozen=True, kw_only=True, tag_field="event_type", tag=EXERCISED):
    event_id: str
    contract_id: str
    template_id: str
    choice: str
    choice_argument: dict[str, Any]
    child_event_ids: list[str] = []
    exercise_result: Any = None
    consuming: bool = False
    acting_parties: list[str] = []


TreeEvent = CreatedEvent | ExercisedEvent


class UpdateHistoryTransactionV2(msgspec.Struct, frozen=True, kw_only=True):
    update_id: str
    migration_id: int
    record_time: str
    synchronizer_id: str
    effective_at: str
    root_event_ids: list[str]
    events_by_id: dict[str, TreeEvent]
    workflow_id: str = ""

    def exercises(self, choice: str) -> list[ExercisedEvent]:
        """The exercised events of ``choice``, in tree order (roots first)."""
        found = [e for e in self._in_tree_order() if isinstance(e, ExercisedEvent) and e.choice == choice]
        return found

    def created(self) -> list[CreatedEvent]:
        return [e for e in self._in_tree_order() if isinstance(e, CreatedEvent)]

    def _in_tree_order(self) -> list[TreeEvent]:
        # events_by_id is sorted by id for display; the real order is the tree (scan.yaml).
        ordered: list[TreeEvent] = []
        stack = list(reversed(self.root_event_ids))
        seen: set[str] = set()
        while stack and len(ordered) < len(self.events_by_id):
            event_id = stack.pop()
            event = self.events_by_id.get(event_id)
            if event is None or event_id in seen:
                continue
            seen.add(event_id)
            ordered.append(event)
            if isinstance(event, ExercisedEvent):
                stack.extend(reversed(event.child_event_ids))
        return ordered


class UpdateHistoryResponseV2(msgspec.Struct, frozen=True, kw_only=True):
    # Transactions or reassignments (an untagged oneOf): kept raw, sorted out by the client.
    transactions: list[dict[str, Any]]
