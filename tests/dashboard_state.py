"""A demo-like state directory for the dashboard tests: a day of outcomes, then `billing demo`.

The history is outcome events only (the projections fold them; the processor ignores an
outcome without its request), between 1 and 22 hours old, so the 24 h window holds all of
it for the next two hours whatever minute a test reads it in. Then the real demo runs on
the same directory: preapproval, pay-all twice, on the in-process simulator.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from pipeline.events import AnyEvent, PaymentConfirmed, PaymentFailed
from pipeline.log.embedded import EmbeddedLog
from tests.processes import ROOT, billing

PARTIES = {u["id"]: u["party"] for u in json.loads((ROOT / "data" / "users.json").read_text())["users"]}
PRICES = {"prover": Decimal(2), "verifier": Decimal(1), "archive": Decimal("0.25")}
#: (hours ago, user, plan, failure reason or None)
HISTORY = [
    (22, "alice", "prover", None),
    (21, "bob", "prover", None),
    (19, "carol", "verifier", None),
    (17, "dave", "verifier", "INSUFFICIENT_FUNDS: holdings of 0.4 CC cannot cover 1 CC plus fees"),
    (15, "alice", "verifier", None),
    (13, "bob", "prover", None),
    (11, "carol", "archive", None),
    (9, "alice", "prover", None),
    (8, "dave", "verifier", "PREAPPROVAL_EXPIRED: run `billing setup`"),
    (6, "bob", "prover", None),
    (4, "carol", "verifier", None),
    (3, "alice", "prover", None),
    (2, "dave", "verifier", "INSUFFICIENT_FUNDS: holdings of 0.4 CC cannot cover 1 CC plus fees"),
    (1, "carol", "archive", None),
]


def history(now: datetime) -> list[AnyEvent]:
    events: list[AnyEvent] = []
    for i, (hours, user, plan, failure) in enumerate(HISTORY):
        common = {
            "payment_id": f"history-{i:02d}",
            "at": now - timedelta(hours=hours, minutes=7),
            "party": PARTIES[user],
            "plan": plan,
            "amount": PRICES[plan],
        }
        if failure is None:
            update = "1220" + hashlib.sha256(f"history-{i}".encode()).hexdigest()
            events.append(PaymentConfirmed(**common, update_id=update))
        else:
            code, _, message = failure.partition(": ")
            events.append(PaymentFailed(**common, attempt=1, code=code, message=message, retryable=False, final=True))
    return events


def make_state(state: Path) -> Path:
    """``state`` filled as described above; returns it."""

    async def write() -> None:
        log = EmbeddedLog.open(state / "log")
        try:
            await log.append_batch(history(datetime.now(UTC)))
        finally:
            await log.close()

    asyncio.run(write())
    result = billing("demo", "--keep", str(state), env={"BILLING_DATA_DIR": str(ROOT / "data")})
    assert result.returncode == 0, result.stdout + result.stderr
    return state
