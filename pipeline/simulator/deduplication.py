"""Command deduplication: a change id accepted within the submitter's period is a duplicate.

The change id is (user, actAs set, commandId); the period is the one the submission
sent (a duration, or an offset after which the first acceptance must lie), else the
node's default (canton-apis.md §7.1).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pipeline.simulator.model import Rejection

ChangeId = tuple[str, frozenset[str], str]
Accepted = tuple[int, datetime, str | None]  # completion offset, record time, submission id


def check_duplicate(
    change: ChangeId, earlier: Accepted, period: dict[str, Any] | None, default: timedelta, now: datetime
) -> None:
    """DUPLICATE_COMMAND when ``earlier`` (the change's acceptance) lies within the period."""
    offset, when, submission = earlier
    if _within(period, default, offset, when, now):
        context = {
            "completion_offset": str(offset),
            "accepted": "true",
            "existing_submission_id": submission or "",
            "changeId": f"{change[2]}",
        }
        raise Rejection(
            "DUPLICATE_COMMAND",
            "A command with the given command id has already been successfully processed",
            10,
            context,
        )


def _within(period: dict[str, Any] | None, default: timedelta, offset: int, when: datetime, now: datetime) -> bool:
    period = period or {}
    if "DeduplicationOffset" in period:
        return offset > int(period["DeduplicationOffset"].get("value", 0))
    duration = (period.get("DeduplicationDuration") or {}).get("value")
    window = (
        default
        if duration is None
        else timedelta(
            seconds=int(duration.get("seconds", 0)),
            microseconds=int(duration.get("nanos", 0)) // 1000,
        )
    )
    return now - when < window
