"""The Canton Coin a TransferPreapproval costs to create or renew, computed as Splice does.

hyperledger-labs/splice daml/splice-amulet/daml/Splice/AmuletRules.daml,
`computeTransferPreapprovalFee`: fee_usd = days x `transferPreapprovalFee` (USD/day, default
0.00274, about 1 USD a year) of the AmuletConfig in force now, fee_cc = fee_usd / the context
round's `amuletPrice`; `splitAndBurn` burns it from the provider's inputs. Since the Canton
Coin fee-removal CIP (splice PR 1954) only the lifetime beyond `transferPreapprovalBaseDuration`
(90 days by default) is charged: create charges ``expiresAt - now``, renew
``newExpiresAt - expiresAt``. A year at 0.005 USD/CC: (365 - 90) x 0.00274 / 0.005 = 150.7 CC.
Pure functions: no I/O, no clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import msgspec

DEFAULT_FEE_PER_DAY = Decimal("0.00274")  # Splice's defaultTransferPreapprovalFee
DAY = timedelta(days=1)
SCALE = Decimal("1e-10")  # Daml Numeric 10


class PreapprovalTerms(msgspec.Struct, frozen=True, kw_only=True):
    """The AmuletConfig fields that price a preapproval."""

    fee_usd_per_day: Decimal = DEFAULT_FEE_PER_DAY
    #: Free lifetime. Zero when AmuletRules does not name one: a network without the
    #: fee-removal CIP charges the whole lifetime, and billing must never choose too few inputs.
    free: timedelta = timedelta(0)


def terms_of(amulet_rules_payload: Any, now: datetime) -> PreapprovalTerms:
    """The terms in force at ``now`` (the Daml `getValueAsOf now configSchedule`)."""
    schedule = (amulet_rules_payload or {}).get("configSchedule") or {}
    config = schedule.get("initialValue") or {}
    for entry in schedule.get("futureValues") or []:
        at, value = (entry.get("_1"), entry.get("_2")) if isinstance(entry, dict) else entry
        if datetime.fromisoformat(str(at).replace("Z", "+00:00")) <= now:
            config = value
    fee = config.get("transferPreapprovalFee")
    base = (config.get("transferPreapprovalBaseDuration") or {}).get("microseconds")
    return PreapprovalTerms(
        fee_usd_per_day=Decimal(str(fee)) if fee is not None else DEFAULT_FEE_PER_DAY,
        free=timedelta(microseconds=int(base)) if base is not None else timedelta(0),
    )


def preapproval_fee(terms: PreapprovalTerms, lifetime: timedelta, amulet_price: Decimal) -> Decimal:
    """CC burnt for ``lifetime`` (the extension when renewing) at ``amulet_price`` USD/CC."""
    if amulet_price <= 0:
        raise ValueError(f"the round's amulet price must be positive, got {amulet_price}")
    charged = max(lifetime - terms.free, timedelta(0))
    days = Decimal(charged // timedelta(microseconds=1)) / Decimal(DAY // timedelta(microseconds=1))
    return (days * terms.fee_usd_per_day / amulet_price).quantize(SCALE, ROUND_HALF_EVEN)
