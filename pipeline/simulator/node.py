"""What the simulator's routes serve from: the ledger, its hosting, the faults, tokens and limits.

`Simulator` (app.py) assembles a `Node` and hands it to every route module; the routes
read and change this state and never see the app, so imports point one way.
"""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pipeline.simulator.clock import Clock
from pipeline.simulator.deduplication import ChangeId
from pipeline.simulator.faults import FaultPlan
from pipeline.simulator.hosting import Hosting
from pipeline.simulator.ledger import SimLedger

STATIC_USER = "ledger-api-user"


@dataclass(eq=False)
class Node:
    """One simulated network's serving state: the app provider's participant and a Scan."""

    app_party: str
    clock: Clock
    ledger: SimLedger
    hosting: Hosting
    faults: FaultPlan
    static_token: str
    oauth_clients: dict[str, str]
    token_lifetime: timedelta
    submit_latency: float  # seconds every submission takes (`--latency-ms`)
    max_commands_in_flight: int
    list_limit: int  # the node's http-list-max-elements-limit (`--list-limit`)
    pruned_up_to: int = 0  # reads of history before this offset fail as on a pruned node
    tokens: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # token -> (user, expiry)
    in_flight: set[ChangeId] = field(default_factory=set)
    commands_in_flight: int = 0  # submit-and-wait requests being processed now
    requests: Counter[str] = field(default_factory=Counter)  # endpoint -> requests that reached it

    def issue_token(self, client_id: str) -> tuple[str, int]:
        token = f"sim-oauth-{client_id}-{secrets.token_hex(12)}"
        self.tokens[token] = (client_id, self.clock() + self.token_lifetime)
        return token, int(self.token_lifetime.total_seconds())

    def user_of(self, authorization: str) -> str | None:
        """The ledger user an Authorization header stands for, or None (missing, wrong or expired)."""
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        if secrets.compare_digest(token, self.static_token):
            return STATIC_USER
        user, expiry = self.tokens.get(token, (None, None))
        return user if expiry is not None and self.clock() < expiry else None
