"""Fault injection: what can go wrong, on which endpoint, for the next N requests or at a rate.

A fault targets an endpoint name (`ENDPOINTS`); each fault has a default target
(submissions for the Canton rejections, Scan's update lookup for ``scan_lag``).
Queued faults are consumed by the next matching requests in order; rates are drawn
from a seeded generator, so a failing run can be replayed with its seed.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from enum import StrEnum


class Fault(StrEnum):
    LATENCY = "latency"  # answer late (and hold the change id in flight meanwhile)
    TIMEOUT_AFTER_COMMIT = "timeout_after_commit"  # commit, then 504 REQUEST_TIME_OUT
    IN_FLIGHT = "in_flight"  # 409 SUBMISSION_ALREADY_IN_FLIGHT
    BACKPRESSURE = "backpressure"  # 409 PARTICIPANT_BACKPRESSURE
    INSUFFICIENT_FUNDS = "insufficient_funds"  # 400 DAML_FAILURE, error_id insufficient-funds
    INACTIVE_CONTRACTS = "inactive_contracts"  # 404 LOCAL_VERDICT_INACTIVE_CONTRACTS
    CONTRACT_NOT_FOUND = "contract_not_found"  # 404 CONTRACT_NOT_FOUND
    PROXY_502 = "proxy_502"  # a proxy's 502 with an HTML body, the request never reached the node
    PROXY_503 = "proxy_503"  # a proxy's 503, text body
    PROXY_502_AFTER_COMMIT = "proxy_502_after_commit"  # committed, then the proxy lost the answer
    DROP = "drop"  # connection closed without an answer, nothing executed
    DROP_AFTER_COMMIT = "drop_after_commit"  # committed, then the connection closed
    SCAN_LAG = "scan_lag"  # Scan has not indexed the update yet: 404
    UNAUTHENTICATED = "unauthenticated"  # 401 as if the token had just expired
    IDLE_TIMEOUT = "idle_timeout"  # a stream list cut by its idle timeout before any element: []


ENDPOINTS = frozenset(
    {
        "submit",
        "ledger-end",
        "active-contracts",
        "completions",
        "updates",
        "update-by-id",
        "update-by-offset",
        "scan-dso",
        "scan-rounds",
        "scan-featured",
        "scan-preapproval",
        "scan-update",
        "scan-updates",
        "token",
    }
)
ANY = "*"
# The names `billing simulator --fault` accepts (docs/failures.md), and the faults they stand for.
CLI_FAULTS: dict[str, Fault] = {
    "timeout_after_commit": Fault.TIMEOUT_AFTER_COMMIT,
    "in_flight": Fault.IN_FLIGHT,
    "insufficient_funds": Fault.INSUFFICIENT_FUNDS,
    "stale_contract": Fault.INACTIVE_CONTRACTS,
    "proxy_502_after_commit": Fault.PROXY_502_AFTER_COMMIT,
    "unavailable": Fault.PROXY_503,
    "drop": Fault.DROP,
    "drop_after_commit": Fault.DROP_AFTER_COMMIT,
    "scan_lag": Fault.SCAN_LAG,
}
# Every other fault defaults to "submit".
DEFAULT_TARGET = {Fault.SCAN_LAG: "scan-update", Fault.IDLE_TIMEOUT: "completions"}
AFTER_COMMIT = frozenset({Fault.TIMEOUT_AFTER_COMMIT, Fault.PROXY_502_AFTER_COMMIT, Fault.DROP_AFTER_COMMIT})


def fault_named(name: Fault | str) -> Fault:
    """A `Fault` from its value or its name in docs/failures.md (``stale_contract``, ``unavailable``)."""
    if isinstance(name, Fault):
        return name
    if name in CLI_FAULTS:
        return CLI_FAULTS[name]
    try:
        return Fault(name)
    except ValueError:
        known = sorted({*CLI_FAULTS, *(f.value for f in Fault)})
        raise ValueError(f"unknown fault {name!r}; one of {', '.join(known)}") from None


class ConnectionDropped(ConnectionResetError):
    """Raised inside the app to hang up without an answer (a transport error for the client)."""


@dataclass(frozen=True)
class Planned:
    fault: Fault
    target: str
    delay: float


def target_of(fault: Fault, on: str | None) -> str:
    target = on or DEFAULT_TARGET.get(fault, "submit")
    if target != ANY and target not in ENDPOINTS:
        raise ValueError(f"unknown endpoint {target!r}; one of {', '.join(sorted(ENDPOINTS))} or '*'")
    return target


class FaultPlan:
    """Queued and random faults; `draw` says which one (if any) hits a request to ``endpoint``."""

    def __init__(self, seed: int = 0, latency: float = 0.05) -> None:
        self.seed, self.latency = seed, latency
        self._rng = random.Random(seed)
        self._queue: deque[Planned] = deque()
        self._rates: dict[tuple[Fault, str], float] = {}
        self.fired: list[tuple[str, Fault]] = []  # what hit which endpoint, in order

    def inject(
        self,
        fault: Fault | str,
        count: int = 1,
        *,
        on: str | None = None,
        delay: float | None = None,
    ) -> None:
        fault = fault_named(fault)
        if count < 0:
            raise ValueError("count must be >= 0")
        planned = Planned(fault, target_of(fault, on), self.latency if delay is None else delay)
        self._queue.extend([planned] * count)

    def set_rate(self, fault: Fault | str, rate: float, *, on: str | None = None) -> None:
        if not 0 <= rate <= 1:
            raise ValueError(f"a rate is a probability in [0, 1], got {rate}")
        fault = fault_named(fault)
        self._rates[(fault, target_of(fault, on))] = rate

    @property
    def pending(self) -> int:
        return len(self._queue)

    def draw(self, endpoint: str) -> Planned | None:
        """The first queued fault for ``endpoint``, else one drawn from the rates, else None."""
        for planned in self._queue:
            if planned.target in (endpoint, ANY):
                self._queue.remove(planned)
                self.fired.append((endpoint, planned.fault))
                return planned
        for (fault, target), rate in sorted(self._rates.items()):
            if target in (endpoint, ANY) and self._rng.random() < rate:
                self.fired.append((endpoint, fault))
                return Planned(fault, target, self.latency)
        return None
