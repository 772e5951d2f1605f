"""One line per party billing cannot charge, at `info`, `setup` and `billing start`.

The seed's model is custodial: every subscriber is hosted on the app provider's participant
and the billing user holds CanActAs for it (`pipeline/canton/hosting.py`). A subscriber outside
that model is reported here, before anything is charged; its payments then end as a final
failure with the same reason, never as insufficient funds and never retried.
"""

from __future__ import annotations

import logging

from commands.context import Context
from commands.errors import CommandError
from pipeline.canton.adapter import CantonAdapter
from pipeline.canton.hosting import Standing

log = logging.getLogger(__name__)


def subscriber_parties(ctx: Context) -> dict[str, str]:
    """Party → user id of every user with a subscription in the catalogue (none if it is broken:
    `billing catalogue` says why)."""
    try:
        return {u.party: u.id for u in ctx.catalogue.users if u.subscriptions}
    except CommandError:
        return {}


async def report_hosting(ctx: Context, canton: CantonAdapter, *, table: bool = False) -> list[Standing]:
    """Check the app party and every subscriber; warn once per party that cannot be charged.

    With ``table`` (`billing info`) every party gets a row, chargeable or not.
    """
    app = ctx.settings.party_app or ""
    users = subscriber_parties(ctx)
    standings = await canton.parties.standings([app, *users])
    blocked = [s for s in standings.values() if not s.chargeable]
    if table:
        ctx.console.table(
            "Parties (hosted here, ledger user may act as them)",
            ["party", "user", "hosted", "CanActAs", "status"],
            [
                (
                    s.party,
                    users.get(s.party, "PARTY_APP"),
                    _yes_no(s.hosted),
                    _yes_no(s.can_act),
                    "ok" if s.chargeable else "cannot be charged",
                )
                for s in standings.values()
            ],
        )
    for s in blocked:
        who = "PARTY_APP" if s.party == app else f"subscriber {users.get(s.party, '?')}"
        ctx.console.warn(f"{who}: {s.reason}")
        log.warning("party cannot be charged", extra={"party": s.party, "hosted": s.hosted, "can_act": s.can_act})
    if any(s.hosted is None for s in standings.values()):
        ctx.console.note("hosting not checked: the ledger user is no participant admin (GET /v2/parties); rights were")
    return list(standings.values())


def _yes_no(flag: bool | None) -> str:
    return "unknown" if flag is None else ("yes" if flag else "no")
