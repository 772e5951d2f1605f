"""Failure alerts: one WARN line when a user's failed payments pass a threshold within a window.

Many failures for one party in a short time mean an empty wallet, an expired preapproval
or abuse; operators want one line to alert on, not a scroll of failures. `FailureWatch`
is a pure fold over `PaymentFailed` events (times from the events, never the wall clock);
it raises once when a party crosses ``threshold`` and re-arms once the party drops below.
The daemon feeds it from the log (`watch_failures`).
"""

from __future__ import annotations

import logging
from collections import deque
from datetime import datetime, timedelta

import msgspec

from pipeline.events import PaymentFailed, Recorded
from pipeline.log.port import EventLog

log = logging.getLogger(__name__)


class FailureAlert(msgspec.Struct, frozen=True, kw_only=True):
    party: str
    failures: int
    window_secs: int
    last_code: str


class FailureWatch:
    """Per-party failure times within ``window``; which parties just crossed ``threshold``."""

    def __init__(self, threshold: int, window: timedelta) -> None:
        self.threshold, self.window = threshold, window
        self._times: dict[str, deque[datetime]] = {}
        self._alerted: set[str] = set()

    def observe(self, event: PaymentFailed) -> FailureAlert | None:
        """Count one failure; return an alert the first time its party reaches the threshold."""
        times = self._times.setdefault(event.party, deque())
        times.append(event.at)
        self._expire(event.party, event.at)
        if len(times) < self.threshold:
            self._alerted.discard(event.party)  # below again: the next crossing alerts again
            return None
        if event.party in self._alerted:
            return None
        self._alerted.add(event.party)
        return FailureAlert(
            party=event.party, failures=len(times), window_secs=int(self.window.total_seconds()), last_code=event.code
        )

    def _expire(self, party: str, now: datetime) -> None:
        times = self._times[party]
        while times and times[0] <= now - self.window:
            times.popleft()
        if len(times) < self.threshold:
            self._alerted.discard(party)


def alert_line(alert: FailureAlert) -> None:
    """The structured WARN line (`logs.py` renders the fields as key=value or JSON)."""
    log.warning(
        "payment failures above threshold",
        extra={
            "alert": "payment_failures",
            "party": alert.party,
            "failures": alert.failures,
            "window_secs": alert.window_secs,
            "last_code": alert.last_code,
        },
    )


async def watch_failures(event_log: EventLog, watch: FailureWatch, start: int) -> None:
    """Follow the log from ``start``; log an alert line at each threshold crossing."""
    async for record in event_log.follow(start):
        alert = _observe(watch, record)
        if alert is not None:
            alert_line(alert)


def _observe(watch: FailureWatch, record: Recorded) -> FailureAlert | None:
    return watch.observe(record.event) if isinstance(record.event, PaymentFailed) else None
