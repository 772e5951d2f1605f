"""`billing tail --user/--subscription` shows that user's whole trail and nobody else's.

A `PaymentSubmitted` names neither party nor plan, so the filter must know which payments the
chosen user's requests asked for; without that, every other user's submissions leak into the trail.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from pipeline.events import AnyEvent, PaymentConfirmed, PaymentRequested, PaymentSubmitted, Period
from pipeline.log.embedded import EmbeddedLog
from tests.processes import billing, write_catalogue


def trail_of(user: int, at: datetime) -> list[AnyEvent]:
    party, pid = f"u{user}::1220{user:060x}", f"pay-{user}"
    period = Period(index=0, start=at, end=at + timedelta(minutes=5))
    return [
        PaymentRequested(
            payment_id=pid,
            at=at,
            party=party,
            user_id=f"u{user}",
            plan="prover",
            period=period,
            amount=Decimal(2),
            receiver="app::1220ab",
            description=f"prover for u{user}",
        ),
        PaymentSubmitted(
            payment_id=pid, at=at, command_id=f"c{user}", submission_id=f"s{user}", attempt=1, ledger_offset_before=0
        ),
        PaymentConfirmed(payment_id=pid, at=at, party=party, plan="prover", amount=Decimal(2), update_id=f"u{user}"),
    ]


def test_a_users_trail_has_its_own_submissions_and_no_one_elses(tmp_path: Path) -> None:
    data = write_catalogue(tmp_path / "data", users=3)
    state = tmp_path / "state"
    at = datetime.now(UTC) - timedelta(minutes=1)
    events = [event for user in (0, 1, 2) for event in trail_of(user, at)]

    async def write() -> None:
        log = EmbeddedLog.open(state / "log", sync=False)
        await log.append_batch(events)
        await log.close()

    asyncio.run(write())
    env = {"BILLING_DATA_DIR": str(data), "ROCKSDB_PATH": str(state), "LOG_LEVEL": "warn"}

    def rows(*args: str) -> list[tuple[str, str]]:
        result = billing("tail", "--json", *args, env=env)
        assert result.returncode == 0, result.stderr
        return [(row["type"], row["payment_id"]) for row in map(json.loads, result.stdout.splitlines())]

    kinds = ["payment.requested", "payment.submitted", "payment.confirmed"]
    assert rows("--user", "u1") == [(kind, "pay-1") for kind in kinds]
    assert len(rows()) == 9 and len(rows("--subscription", "prover")) == 9
    assert rows("--user", "u1", "--since", (at + timedelta(seconds=1)).isoformat()) == []
