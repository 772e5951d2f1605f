"""The choices the simulator runs: TransferPreapproval_Send, AmuletRules_CreateTransferPreapproval.

Checks follow the Daml model closely enough to exercise every client path: contracts
the submitter cannot see must be disclosed (with the right blob), archived ones give
LOCAL_VERDICT_INACTIVE_CONTRACTS, a round that is not open yet or an expired
preapproval fail the Daml deadline checks (DAML_FAILURE with the stdlib's error id, the
check named in the cause, as Canton does: `deadline_failure`), and a
short balance fails with Splice's insufficient-funds error id. Transfers have no fees and
inputs count at their initialAmount (no holding fee on transfer, as in current Splice).
Creating and renewing a preapproval are in `preapproval_choices.py`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pipeline.simulator.ledger import SimLedger
from pipeline.simulator.model import (
    INSUFFICIENT_FUNDS,
    MAX_INPUTS_EXCEEDED,
    Contract,
    Exercise,
    Rejection,
    iso,
    numeric,
    parse_time,
    template_matches,
)
from pipeline.simulator.refusals import numeric_text

Effects = tuple[Exercise, list[Contract], list[Contract]]  # root exercise, archived, created


def deadline_failure(name: str, deadline: datetime, *, exceeded: bool) -> Rejection:
    """What Daml's deadline assertions fail with, as Canton reports a `failWithStatus`.

    digital-asset/daml sdk/compiler/damlc/daml-stdlib-src/DA/Assert.daml: `assertWithinDeadline`
    fails with error id stdlib.daml.com/deadline-exceeded, `assertDeadlineExceeded` with
    .../deadline-not-exceeded, category InvalidGivenCurrentSystemStateOther (9) and a `deadline`
    metadata entry; digital-asset/canton community/ledger/ledger-api-core/src/main/scala/com/
    digitalasset/canton/ledger/error/groups/CommandExecutionErrors.scala (FailureStatus) turns
    that into code DAML_FAILURE with the metadata and `error_id` in the context. The checks are
    Splice's (hyperledger-labs/splice daml/splice-amulet/daml/Splice/AmuletRules.daml).
    """
    error_id = "stdlib.daml.com/" + ("deadline-exceeded" if exceeded else "deadline-not-exceeded")
    relation = "at or past" if exceeded else "strictly before"
    message = f"Ledger time is {relation} deadline '{name}' at {iso(deadline)}"
    return Rejection(
        "DAML_FAILURE",
        f"Interpretation error: Error: User failure: {error_id} (error category 9): {message}",
        9,
        {"error_id": error_id, "deadline": iso(deadline)},
    )


def execute(ledger: SimLedger, body: dict[str, Any], act_as: list[str]) -> Effects:
    """Run the one ExerciseCommand of ``body``; raises `Rejection`."""
    commands = body.get("commands") or []
    if len(commands) != 1 or not isinstance(commands[0], dict) or "ExerciseCommand" not in commands[0]:
        raise Rejection("INVALID_ARGUMENT", "the simulator runs exactly one ExerciseCommand per submission", 8)
    ex = commands[0]["ExerciseCommand"]
    disclosed = {d.get("contractId"): d for d in body.get("disclosedContracts") or []}
    sync = body.get("synchronizerId")
    if sync is not None and sync != ledger.synchronizer_id:
        raise Rejection("INVALID_ARGUMENT", f"unknown synchronizer {sync}", 8)
    view = _View(ledger, act_as, disclosed)
    # Imported here: those choices build on this module's `_View` (no import cycle at load time).
    from pipeline.simulator.preapproval_choices import create_preapproval, renew_preapproval

    if ex.get("choice") == "TransferPreapproval_Send" and template_matches(ex["templateId"], "TransferPreapproval"):
        return _send(view, ex["contractId"], ex.get("choiceArgument") or {})
    if ex.get("choice") == "AmuletRules_CreateTransferPreapproval" and template_matches(
        ex["templateId"], "AmuletRules"
    ):
        return create_preapproval(view, ex["contractId"], ex.get("choiceArgument") or {})
    if ex.get("choice") == "TransferPreapproval_Renew" and template_matches(ex["templateId"], "TransferPreapproval"):
        return renew_preapproval(view, ex["contractId"], ex.get("choiceArgument") or {})
    raise Rejection(
        "INVALID_ARGUMENT",
        f"choice {ex.get('choice')} of {ex.get('templateId')} is not simulated",
        8,
    )


class _View:
    """The ledger as one submission sees it: own contracts plus the disclosed ones."""

    def __init__(self, ledger: SimLedger, act_as: list[str], disclosed: dict[str, dict[str, Any]]) -> None:
        self.ledger, self.act_as, self.disclosed = ledger, set(act_as), disclosed
        self.now = ledger.clock()

    def fetch(self, cid: str, template: str) -> Contract:
        contract = self.ledger.contracts.get(cid)
        visible = contract is not None and (self.act_as & contract.stakeholders or cid in self.disclosed)
        if contract is None or contract.template != template or not visible:
            raise Rejection(
                "CONTRACT_NOT_FOUND",
                f"Contract could not be found with id {cid} (not visible to {sorted(self.act_as)} and not disclosed)",
                11,
                {"contract_id": cid},
            )
        if cid in self.disclosed and self.disclosed[cid].get("createdEventBlob") != contract.blob:
            raise Rejection("INVALID_ARGUMENT", f"the createdEventBlob disclosed for {cid} does not match", 8)
        if contract.archived_offset is not None:
            raise Rejection(
                "LOCAL_VERDICT_INACTIVE_CONTRACTS",
                f"Rejected transaction as some contracts are inactive: {cid}",
                11,
                {"contract_ids": cid},
                sequenced=True,
            )
        return contract

    def open_round(self, cid: str) -> int:
        alive = {contract.contract_id: info for info, contract in self.ledger.rounds()}
        if cid not in alive:
            known = cid in self.ledger.contracts
            code = "LOCAL_VERDICT_INACTIVE_CONTRACTS" if known else "CONTRACT_NOT_FOUND"
            raise Rejection(
                code,
                f"OpenMiningRound {cid} is not active",
                11,
                {"contract_ids": cid},
                sequenced=known,
            )
        self.fetch(cid, "OpenMiningRound")
        if alive[cid].opens_at > self.now:
            # Splice's summarizeAndValidateContext: assertDeadlineExceeded "openRound.opensAt"
            raise deadline_failure("openRound.opensAt", alive[cid].opens_at, exceeded=False)
        return alive[cid].number

    def inputs(self, arg: dict[str, Any], owner: str) -> list[Contract]:
        raw = arg.get("inputs") or []
        if any(not isinstance(i, dict) or i.get("tag") != "InputAmulet" for i in raw):
            raise Rejection("INVALID_ARGUMENT", "only InputAmulet inputs are simulated", 8)
        if len(raw) > self.ledger.max_num_inputs:
            raise Rejection(
                "DAML_FAILURE",
                f"{len(raw)} inputs exceed maxNumInputs {self.ledger.max_num_inputs}",
                8,
                {"error_id": MAX_INPUTS_EXCEEDED},
            )
        amulets = [self.fetch(cid, "Amulet") for cid in dict.fromkeys(i["value"] for i in raw)]
        if any(a.payload["owner"] != owner for a in amulets):
            raise Rejection("DAML_AUTHORIZATION_ERROR", f"an input amulet is not owned by {owner}", 8)
        return amulets

    def inputs_covering(
        self, arg: dict[str, Any], owner: str, needed: Decimal, what: str
    ) -> tuple[list[Contract], Decimal]:
        """The input Amulets and their total at initialAmount (current Splice charges no holding
        fee on transfer); Splice's insufficient-funds failure when they hold less than ``needed``."""
        inputs = self.inputs(arg, owner)
        total = sum((Decimal(a.payload["amount"]["initialAmount"]) for a in inputs), Decimal(0))
        if total < needed:
            raise Rejection(
                "DAML_FAILURE",
                f"Insufficient funds: inputs hold {total}, {what} {needed}",
                9,
                {"error_id": INSUFFICIENT_FUNDS, "requiredAmount": numeric(needed)},
            )
        return inputs, total


def _need(arg: dict[str, Any], *names: str) -> None:
    missing = [n for n in names if n not in arg]
    if missing:
        raise Rejection("COMMAND_PREPROCESSING_FAILED", f"missing choice argument fields: {missing}", 8)


def _amount(text: Any) -> Decimal:
    amount = Decimal(numeric_text(text))  # a plain decimal string, or INVALID_ARGUMENT
    if not amount.is_finite() or amount <= 0 or -amount.as_tuple().exponent > 10:  # type: ignore[operator]
        raise Rejection("DAML_FAILURE", f"amount must be positive with at most 10 decimals, got {text}", 9)
    return amount


def _send(view: _View, preapproval_cid: str, arg: dict[str, Any]) -> Effects:
    _need(arg, "context", "inputs", "amount", "sender")
    sender = arg["sender"]
    if sender not in view.act_as:
        raise Rejection(
            "DAML_AUTHORIZATION_ERROR",
            f"TransferPreapproval_Send needs the authority of {sender}",
            8,
        )
    preapproval = view.fetch(preapproval_cid, "TransferPreapproval")
    expires = parse_time(preapproval.payload["expiresAt"])
    if expires <= view.now:
        # TransferPreapproval_Send: assertWithinDeadline "TransferPreapproval.expiresAt"
        raise deadline_failure("TransferPreapproval.expiresAt", expires, exceeded=True)
    ctx = arg["context"]
    view.fetch(ctx["amuletRules"], "AmuletRules")
    round_number = view.open_round(ctx["context"]["openMiningRound"])
    _check_featured(view, ctx["context"].get("featuredAppRight"), preapproval.payload["provider"])
    amount = _amount(arg["amount"])
    inputs, total = view.inputs_covering(arg, sender, amount, "the transfer needs")
    ledger = view.ledger
    paid = ledger.new_amulet(preapproval.payload["receiver"], amount, round_number)
    change = [ledger.new_amulet(sender, total - amount, round_number)] if total > amount else []
    result = {
        "result": {
            "round": {"number": str(round_number)},
            "summary": {
                "inputAmuletAmount": numeric(total),
                "senderChangeAmount": numeric(total - amount),
                "senderChangeFee": numeric(Decimal(0)),
                "holdingFees": numeric(Decimal(0)),
            },
            "createdAmulets": [{"tag": "TransferResultAmulet", "value": paid.contract_id}],
            "senderChangeAmulet": change[0].contract_id if change else None,
            "meta": None,
        },
        "meta": None,
    }
    root = Exercise(preapproval, "TransferPreapproval_Send", arg, [sender], consuming=False, result=result)
    return root, inputs, [paid, *change]


def _check_featured(view: _View, cid: str | None, provider: str) -> None:
    if cid is None:
        return
    right = view.fetch(cid, "FeaturedAppRight")
    if right.payload["provider"] != provider:
        raise Rejection(
            "UNHANDLED_EXCEPTION",
            f"Interpretation error: the FeaturedAppRight is not the transfer provider's ({provider})",
            9,
        )


def _time(text: Any) -> datetime:
    try:
        return parse_time(str(text))
    except ValueError as err:
        raise Rejection("COMMAND_PREPROCESSING_FAILED", f"bad Time {text!r}", 8) from err
