"""The choices the simulator runs: TransferPreapproval_Send, AmuletRules_CreateTransferPreapproval.

Checks follow the Daml model closely enough to exercise every client path: contracts
the submitter cannot see must be disclosed (with the right blob), archived ones give
LOCAL_VERDICT_INACTIVE_CONTRACTS, a round that is not open yet or an expired
preapproval fail the Daml deadline checks (DAML_FAILURE with the stdlib's error id, the
check named in the cause, as Canton does: `deadline_failure`), and a
short balance fails with Splice's insufficient-funds error id (`submission_view.py`).
Transfers have no fees and inputs count at their initialAmount (no holding fee on transfer,
as in current Splice). Creating and renewing a preapproval are in `preapproval_choices.py`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pipeline.simulator.ledger import SimLedger
from pipeline.simulator.model import Exercise, Rejection, numeric, parse_time, template_matches
from pipeline.simulator.preapproval_choices import create_preapproval, renew_preapproval
from pipeline.simulator.refusals import numeric_text
from pipeline.simulator.submission_view import Effects, SubmissionView, deadline_failure, need_fields


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
    view = SubmissionView(ledger, act_as, disclosed)
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


def _amount(text: Any) -> Decimal:
    amount = Decimal(numeric_text(text))  # a plain decimal string, or INVALID_ARGUMENT
    exponent = amount.as_tuple().exponent  # a str only for NaN and infinities
    if not isinstance(exponent, int) or amount <= 0 or -exponent > 10:
        raise Rejection("DAML_FAILURE", f"amount must be positive with at most 10 decimals, got {text}", 9)
    return amount


def _send(view: SubmissionView, preapproval_cid: str, arg: dict[str, Any]) -> Effects:
    need_fields(arg, "context", "inputs", "amount", "sender")
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


def _check_featured(view: SubmissionView, cid: str | None, provider: str) -> None:
    if cid is None:
        return
    right = view.fetch(cid, "FeaturedAppRight")
    if right.payload["provider"] != provider:
        raise Rejection(
            "UNHANDLED_EXCEPTION",
            f"Interpretation error: the FeaturedAppRight is not the transfer provider's ({provider})",
            9,
        )
