"""The ledger as one submission sees it, and the Daml checks every simulated choice shares.

A contract is visible when the submitter is a stakeholder or disclosed it (with the right
blob); an archived one is LOCAL_VERDICT_INACTIVE_CONTRACTS, a round that is not open yet
fails the Daml deadline check, and input Amulets must belong to the payer and cover
what the choice burns or sends.
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
)

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


class SubmissionView:
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


def need_fields(arg: dict[str, Any], *names: str) -> None:
    missing = [n for n in names if n not in arg]
    if missing:
        raise Rejection("COMMAND_PREPROCESSING_FAILED", f"missing choice argument fields: {missing}", 8)


def daml_time(text: Any) -> datetime:
    try:
        return parse_time(str(text))
    except ValueError as err:
        raise Rejection("COMMAND_PREPROCESSING_FAILED", f"bad Time {text!r}", 8) from err
