"""`AmuletRules_CreateTransferPreapproval` and `TransferPreapproval_Renew`, with Splice's fee.

hyperledger-labs/splice daml/splice-amulet/daml/Splice/AmuletRules.daml: both choices
burn ``computeTransferPreapprovalFee`` = days x ``transferPreapprovalFee`` (USD/day, default
0.00274) / the context round's ``amuletPrice``, split off the provider's inputs
(``splitAndBurn``); since the Canton Coin fee-removal CIP (splice PR 1954) only the part of
the lifetime (create: ``expiresAt - now``; renew: ``newExpiresAt - expiresAt``) beyond
``transferPreapprovalBaseDuration`` (default 90 days) is charged. Create requires
``expiresAt > now``; Renew (consuming, controller provider) requires the contract not to
be expired and ``newExpiresAt > expiresAt``.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from pipeline.simulator.model import Contract, Exercise, Rejection, iso, numeric
from pipeline.simulator.submission_view import Effects, SubmissionView, daml_time, need_fields

DAY_US = 86_400_000_000


def _require(message: str, ok: bool) -> None:
    if not ok:  # Splice's `require` is a Daml assertion: an interpretation error naming it
        raise Rejection("UNHANDLED_EXCEPTION", f"Interpretation error: {message}", 9)


def preapproval_fee(rules: Contract, open_round: Contract, lifetime: timedelta) -> Decimal:
    """The CC burnt for ``lifetime`` (an extension when renewing), as the Daml computes it."""
    config = rules.payload["configSchedule"]["initialValue"]
    base_us = int((config.get("transferPreapprovalBaseDuration") or {}).get("microseconds", 0))
    charged_us = max(lifetime // timedelta(microseconds=1) - base_us, 0)
    days = Decimal(charged_us) / Decimal(DAY_US)
    fee_usd = days * Decimal(config.get("transferPreapprovalFee") or "0.00274")
    return (fee_usd / Decimal(open_round.payload["amuletPrice"])).quantize(Decimal("1e-10"), ROUND_HALF_EVEN)


def _burn(
    view: SubmissionView, arg: dict[str, Any], provider: str, fee: Decimal, rnd: int
) -> tuple[list[Contract], list[Contract]]:
    inputs, total = view.inputs_covering(arg, provider, fee, "the preapproval fee is")
    change = [view.ledger.new_amulet(provider, total - fee, rnd)] if total > fee else []
    return inputs, change


def _authority(view: SubmissionView, choice: str, *parties: str) -> None:
    if not set(parties) <= view.act_as:
        raise Rejection("DAML_AUTHORIZATION_ERROR", f"{choice} needs the authority of {sorted(parties)}", 8)


def create_preapproval(view: SubmissionView, rules_cid: str, arg: dict[str, Any]) -> Effects:
    need_fields(arg, "context", "inputs", "receiver", "provider", "expiresAt")
    receiver, provider = arg["receiver"], arg["provider"]
    _authority(view, "AmuletRules_CreateTransferPreapproval", receiver, provider)
    ledger = view.ledger
    _require(
        f"expectedDso {arg.get('expectedDso')} is {ledger.dso_party}",
        arg.get("expectedDso") in (None, ledger.dso_party),
    )
    rules = view.fetch(rules_cid, "AmuletRules")
    round_cid = arg["context"]["context"]["openMiningRound"]
    round_number = view.open_round(round_cid)
    expires = daml_time(arg["expiresAt"])
    _require("expiresAt is not in the past", expires > view.now)
    fee = preapproval_fee(rules, ledger.contracts[round_cid], expires - view.now)
    inputs, change = _burn(view, arg, provider, fee, round_number)
    now = iso(ledger.now())
    preapproval = ledger.new_contract(
        "TransferPreapproval",
        {
            "dso": ledger.dso_party,
            "receiver": receiver,
            "provider": provider,
            "validFrom": now,
            "lastRenewedAt": now,
            "expiresAt": arg["expiresAt"],
        },
        [receiver, provider, ledger.dso_party],
        [],
    )
    result = {
        "transferPreapprovalCid": preapproval.contract_id,
        "amuletPaid": numeric(fee),
        "meta": None,
        "transferResult": {"round": {"number": str(round_number)}},
    }
    root = Exercise(
        rules, "AmuletRules_CreateTransferPreapproval", arg, [receiver, provider], consuming=False, result=result
    )
    return root, inputs, [*change, preapproval]


def renew_preapproval(view: SubmissionView, cid: str, arg: dict[str, Any]) -> Effects:
    need_fields(arg, "context", "inputs", "newExpiresAt")
    old = view.fetch(cid, "TransferPreapproval")
    provider, ledger = old.payload["provider"], view.ledger
    _authority(view, "TransferPreapproval_Renew", provider)
    expires = daml_time(old.payload["expiresAt"])
    new_expires = daml_time(arg["newExpiresAt"])
    _require("Contract is not expired", expires > view.now)
    _require("newExpiresAt is after expiresAt", new_expires > expires)
    rules = view.fetch(arg["context"]["amuletRules"], "AmuletRules")
    round_cid = arg["context"]["context"]["openMiningRound"]
    round_number = view.open_round(round_cid)
    fee = preapproval_fee(rules, ledger.contracts[round_cid], new_expires - expires)
    inputs, change = _burn(view, arg, provider, fee, round_number)
    renewed = ledger.new_contract(
        "TransferPreapproval",
        {**old.payload, "lastRenewedAt": iso(ledger.now()), "expiresAt": arg["newExpiresAt"]},
        old.signatories,
        old.observers,
    )
    result = {
        "transferPreapprovalCid": renewed.contract_id,
        "amuletPaid": numeric(fee),
        "receiver": old.payload["receiver"],
        "provider": provider,
        "meta": None,
        "transferResult": {"round": {"number": str(round_number)}},
    }
    root = Exercise(old, "TransferPreapproval_Renew", arg, [provider], consuming=True, result=result)
    return root, [old, *inputs], [*change, renewed]
