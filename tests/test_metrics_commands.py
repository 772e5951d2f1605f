"""`billing metrics` and `billing replay` as a user runs them: the projection is rebuildable from the log."""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from pipeline.events import AnyEvent, PaymentConfirmed, PaymentFailed, PaymentSubmitted
from pipeline.log.embedded import EmbeddedLog
from tests.processes import billing, write_catalogue

# far from every window's edge, so that the seconds between two commands change nothing
AGES = [
    timedelta(minutes=3),
    timedelta(minutes=25),
    timedelta(hours=3),
    timedelta(hours=9),
    timedelta(hours=18),
    timedelta(days=3),
    timedelta(days=15),
    timedelta(days=45),
]


def write_log(path: Path) -> int:
    now = datetime.now(UTC)
    events: list[AnyEvent] = []
    for i, age in enumerate(AGES * 3):
        party = f"u{i % 3}::1220{i % 3:060x}"
        at = now - age
        events.append(
            PaymentSubmitted(
                payment_id=f"p{i}", at=at, command_id=f"c{i}", submission_id=f"s{i}", attempt=1, ledger_offset_before=0
            )
        )
        if i % 5 == 4:
            events.append(
                PaymentFailed(
                    payment_id=f"p{i}",
                    at=at,
                    party=party,
                    plan="prover",
                    amount=Decimal(2),
                    attempt=5,
                    code="INSUFFICIENT_FUNDS",
                    message="m",
                    retryable=False,
                    final=True,
                )
            )
        else:
            events.append(
                PaymentConfirmed(
                    payment_id=f"p{i}",
                    at=at,
                    party=party,
                    plan="prover",
                    amount=Decimal("2.0000000001"),
                    update_id=f"u{i}",
                )
            )

    async def go() -> None:
        log = EmbeddedLog.open(path, sync=False)
        await log.append_batch(events)
        await log.close()

    asyncio.run(go())
    return len(events)


def metrics(env: dict[str, str], *args: str) -> list[dict[str, Any]]:
    result = billing("metrics", "--json", *args, env=env)
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert isinstance(rows, list)
    return rows


def test_replay_and_a_deleted_projection_reproduce_exactly_the_metrics_shown_before(tmp_path: Path) -> None:
    data = write_catalogue(tmp_path / "data", users=3)
    state = tmp_path / "state"
    count = write_log(state / "log")
    env = {"BILLING_DATA_DIR": str(data), "ROCKSDB_PATH": str(state), "LOG_LEVEL": "warn"}
    before, alice = metrics(env), metrics(env, "--user", "u1")
    assert [m["payment_count"] for m in before] == [3, 6, 9, 12, 15, 18, 21]
    assert before[-1]["failure_count"] == 4 and before[-1]["total_amount"] == "34.0000000017"
    assert before[0]["success_rate"] is not None and alice[-1]["active_subscriptions"] == 1

    replay = billing("replay", env=env)
    assert replay.returncode == 0, replay.stderr
    assert f"replayed {count} events" in replay.stdout
    assert metrics(env) == before and metrics(env, "--user", "u1") == alice

    shutil.rmtree(state / "projections")  # lost or deleted: the next run folds the log again
    assert metrics(env) == before
    assert (state / "projections" / "CURRENT").exists()
    assert metrics(env, "--user", "u1") == alice
