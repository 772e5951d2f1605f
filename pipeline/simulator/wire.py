"""How the simulator's contracts and transactions look on the wire (Ledger API v2 and Scan).

Pure functions from model objects to the JSON documents of the specs, with every field
the specs require. Visibility: a party sees the events of contracts it is a stakeholder
of, and the exercise it acted in or whose contract it is a stakeholder of.
"""

from __future__ import annotations

from typing import Any

from pipeline.simulator.model import (
    PACKAGE_NAME,
    PKG,
    CompletionRecord,
    Contract,
    Exercise,
    Transaction,
    iso,
)


def scan_contract(contract: Contract) -> dict[str, Any]:
    """Scan's `Contract` (common-external.yaml)."""
    return {
        "template_id": contract.template_id,
        "contract_id": contract.contract_id,
        "payload": contract.payload,
        "created_event_blob": contract.blob,
        "created_at": iso(contract.created_at),
    }


def with_state(contract: Contract, domain_id: str) -> dict[str, Any]:
    """Scan's `ContractWithState`."""
    return {"contract": scan_contract(contract), "domain_id": domain_id}


def created_event(contract: Contract, *, node_id: int, witnesses: list[str], blob: bool = False) -> dict[str, Any]:
    """Ledger API `CreatedEvent`."""
    event: dict[str, Any] = {
        "offset": contract.created_offset,
        "nodeId": node_id,
        "contractId": contract.contract_id,
        "templateId": contract.template_id,
        "contractKey": None,
        "createArgument": contract.payload,
        "interfaceViews": [],
        "witnessParties": witnesses,
        "signatories": contract.signatories,
        "observers": contract.observers,
        "createdAt": iso(contract.created_at),
        "packageName": PACKAGE_NAME,
        "representativePackageId": PKG,
        "acsDelta": True,
    }
    if blob:
        event["createdEventBlob"] = contract.blob
    return event


def active_contract(contract: Contract, *, party: str, synchronizer_id: str, blob: bool, token: str) -> dict[str, Any]:
    """One `JsGetActiveContractsResponse` item of the ACS snapshot."""
    event = created_event(contract, node_id=0, witnesses=[party], blob=blob)
    return {
        "workflowId": "",
        "streamContinuationToken": token,
        "contractEntry": {
            "JsActiveContract": {
                "createdEvent": event,
                "synchronizerId": synchronizer_id,
                "reassignmentCounter": 0,
            }
        },
    }


def _exercised(tx: Transaction, exercise: Exercise, node_id: int, last: int, witnesses: list[str]) -> dict[str, Any]:
    return {
        "ExercisedEvent": {
            "offset": tx.offset,
            "nodeId": node_id,
            "contractId": exercise.contract.contract_id,
            "templateId": exercise.contract.template_id,
            "choice": exercise.choice,
            "choiceArgument": exercise.argument,
            "actingParties": exercise.acting_parties,
            "consuming": exercise.consuming,
            "witnessParties": witnesses,
            "lastDescendantNodeId": last,
            "exerciseResult": exercise.result,
            "packageName": PACKAGE_NAME,
            "implementedInterfaces": [],
            "acsDelta": exercise.consuming,
        }
    }


def transaction(tx: Transaction, parties: set[str] | None, *, effects: bool, synchronizer_id: str) -> dict[str, Any]:
    """`JsTransaction` as ``parties`` see it (None: any party); ACS delta or ledger effects."""

    def sees(stakeholders: set[str]) -> list[str]:
        return sorted(stakeholders if parties is None else stakeholders & parties)

    events: list[dict[str, Any]] = []
    count = 1 + len(tx.archived) + len(tx.created)
    root_witnesses = sees({*tx.root.acting_parties, *tx.root.contract.stakeholders})
    if effects and root_witnesses:
        events.append(_exercised(tx, tx.root, 0, count - 1, root_witnesses))
    for node, contract in enumerate(tx.archived, start=1):
        if witnesses := sees(contract.stakeholders):
            events.append(_archive(tx, contract, node, witnesses, effects))
    for node, contract in enumerate(tx.created, start=1 + len(tx.archived)):
        if witnesses := sees(contract.stakeholders):
            events.append({"CreatedEvent": created_event(contract, node_id=node, witnesses=witnesses)})
    doc: dict[str, Any] = {
        "updateId": tx.update_id,
        "workflowId": "",
        "effectiveAt": iso(tx.record_time),
        "events": events,
        "offset": tx.offset,
        "synchronizerId": synchronizer_id,
        "recordTime": iso(tx.record_time),
    }
    if parties is None or parties & set(tx.act_as):
        doc["commandId"] = tx.command_id  # only submitters see their command id
    return doc


def _archive(tx: Transaction, contract: Contract, node: int, witnesses: list[str], effects: bool) -> dict[str, Any]:
    if effects:
        archive = Exercise(contract, "Archive", {}, tx.root.acting_parties, consuming=True, result={})
        return _exercised(tx, archive, node, node, witnesses)
    return {
        "ArchivedEvent": {
            "offset": tx.offset,
            "nodeId": node,
            "contractId": contract.contract_id,
            "templateId": contract.template_id,
            "witnessParties": witnesses,
            "packageName": PACKAGE_NAME,
            "implementedInterfaces": [],
        }
    }


def completion(record: CompletionRecord, synchronizer_id: str) -> dict[str, Any]:
    """`CompletionStreamResponse` holding one `Completion`."""
    value: dict[str, Any] = {
        "commandId": record.command_id,
        "userId": record.user_id,
        "actAs": record.act_as,
        "offset": record.offset,
        "synchronizerTime": {
            "synchronizerId": synchronizer_id,
            "recordTime": iso(record.record_time),
        },
    }
    if record.submission_id:
        value["submissionId"] = record.submission_id
    if record.update_id:
        value["updateId"] = record.update_id
    if record.status:
        value["status"] = {"code": record.status[0], "message": record.status[1], "details": []}
    return {"completionResponse": {"Completion": {"value": value}}}


def checkpoint(offset: int, synchronizer_id: str, record_time: str) -> dict[str, Any]:
    return {
        "completionResponse": {
            "OffsetCheckpoint": {
                "value": {
                    "offset": offset,
                    "synchronizerTimes": [{"synchronizerId": synchronizer_id, "recordTime": record_time}],
                }
            }
        }
    }


def scan_update(tx: Transaction, synchronizer_id: str) -> dict[str, Any]:
    """Scan's `UpdateHistoryTransactionV2`: the exercise tree with its archives and creates."""
    root_id = f"{tx.update_id}:0"
    children = [f"{tx.update_id}:{n}" for n in range(1, 1 + len(tx.archived) + len(tx.created))]
    events: dict[str, Any] = {root_id: _tree_exercise(tx.root, root_id, children)}
    for index, (event_id, contract) in enumerate(zip(children, [*tx.archived, *tx.created], strict=True)):
        if index < len(tx.archived):
            archive = Exercise(contract, "Archive", {}, tx.root.acting_parties, consuming=True, result={})
            events[event_id] = _tree_exercise(archive, event_id, [])
        else:
            events[event_id] = {
                "event_type": "created_event",
                "event_id": event_id,
                "contract_id": contract.contract_id,
                "template_id": contract.template_id,
                "package_name": PACKAGE_NAME,
                "create_arguments": contract.payload,
                "created_at": iso(contract.created_at),
                "signatories": contract.signatories,
                "observers": contract.observers,
            }
    return {
        "update_id": tx.update_id,
        "migration_id": 0,
        "workflow_id": "",
        "record_time": iso(tx.record_time),
        "synchronizer_id": synchronizer_id,
        "effective_at": iso(tx.record_time),
        "root_event_ids": [root_id],
        "events_by_id": dict(sorted(events.items())),
    }


def _tree_exercise(exercise: Exercise, event_id: str, children: list[str]) -> dict[str, Any]:
    return {
        "event_type": "exercised_event",
        "event_id": event_id,
        "contract_id": exercise.contract.contract_id,
        "template_id": exercise.contract.template_id,
        "package_name": PACKAGE_NAME,
        "choice": exercise.choice,
        "choice_argument": exercise.argument,
        "child_event_ids": children,
        "exercise_result": exercise.result,
        "consuming": exercise.consuming,
        "acting_parties": exercise.acting_parties,
    }
