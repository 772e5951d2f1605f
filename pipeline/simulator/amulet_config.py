"""What the DSO's contracts say about money: the amulet price, the holding fee, the fee config.

The payloads of AmuletRules and of each OpenMiningRound, with the fields billing reads
(Daml-LF JSON, as Scan serves them).
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from pipeline.simulator.model import RoundInfo, iso, numeric

TICK = timedelta(minutes=10)
AMULET_PRICE = Decimal("0.005")  # USD per CC, as on DevNet
# Splice's holding fee, 1 USD a year at 10-minute rounds (the Canton Coin fee-removal CIP quotes
# "holdingFeeRate of 1 $/year"), kept on each Amulet in CC per round: since that CIP
# (hyperledger-labs/splice PR 1722) it is no longer charged when the Amulet is a transfer input.
HOLDING_FEE_USD = Decimal("0.0000190259")


def round_payload(dso: str, info: RoundInfo, tick: timedelta, max_inputs: int) -> dict[str, Any]:
    """An OpenMiningRound's payload: its schedule, the amulet price and the transfer config."""
    return {
        "dso": dso,
        "round": {"number": str(info.number)},
        "amuletPrice": numeric(AMULET_PRICE),
        "opensAt": iso(info.opens_at),
        "targetClosesAt": iso(info.target_closes_at),
        "issuingFor": {"microseconds": str(int((info.number * tick) / timedelta(microseconds=1)))},
        "transferConfigUsd": transfer_config(max_inputs),
        "tickDuration": {"microseconds": str(int(tick / timedelta(microseconds=1)))},
        "issuanceConfig": {},
        "trafficPrice": None,
    }


def amulet_rules_payload(dso: str, max_inputs: int) -> dict[str, Any]:
    """AmuletRules with the config fields billing reads: the preapproval fee and its free base
    duration (splice-amulet AmuletConfig: `transferPreapprovalFee`, 0.00274 USD/day by default,
    `transferPreapprovalBaseDuration`, 90 days, from the Canton Coin fee-removal CIP)."""
    config = {
        "transferConfig": transfer_config(max_inputs),
        "tickDuration": {"microseconds": str(int(TICK / timedelta(microseconds=1)))},
        "transferPreapprovalFee": "0.0027400000",
        "transferPreapprovalBaseDuration": {"microseconds": str(90 * 86_400_000_000)},
    }
    return {"dso": dso, "configSchedule": {"initialValue": config, "futureValues": []}, "isDevNet": True}


def transfer_config(max_inputs: int) -> dict[str, Any]:
    zero = {"initialRate": "0.0000000000", "steps": []}
    return {
        "createFee": {"fee": "0.0000000000"},
        "holdingFee": {"rate": numeric(HOLDING_FEE_USD)},
        "transferFee": zero,
        "lockHolderFee": {"fee": "0.0000000000"},
        "extraFeaturedAppRewardAmount": "1.0000000000",
        "maxNumInputs": str(max_inputs),
        "maxNumOutputs": "100",
        "maxNumLockHolders": "50",
    }
