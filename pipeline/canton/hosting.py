"""Which subscribers this participant and ledger user can charge: hosting and CanActAs rights.

A participant submits only for parties it hosts with submission permission, and the Ledger
API lets a user act only as the parties it holds CanActAs for (docs/canton-facts.md,
"Hosting and user rights"). A subscriber failing either can never be charged from here:
billing says so once per party at `info`, `setup` and start, and ends its payments as a
final failure naming the fix, before any read or submission (`standing` is pure).

Rights come from `GET /v2/users/{user-id}/rights` (a user may always read its own);
hosting from `GET /v2/parties/{party}?parties=…` (``isLocal``), which needs participant
admin rights: without them hosting is unknown and only the rights decide.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

import msgspec

from pipeline.canton.errors import CantonError
from pipeline.canton.http import Http

PARTIES_PER_LOOKUP = 50  # party ids in one GET's query string
RECHECK_AFTER = timedelta(minutes=10)  # a right granted meanwhile is seen within this
# The ledger's own refusals for the same reasons (TransactionRoutingError / authorization).
NOT_HOSTED_CODES = frozenset({"NO_SYNCHRONIZER_ON_WHICH_ALL_SUBMITTERS_CAN_SUBMIT", "UNKNOWN_SUBMITTERS"})
NO_RIGHT_CODES = frozenset({"PERMISSION_DENIED"})
NOT_CHARGEABLE = "PARTY_NOT_CHARGEABLE"  # billing's own verdict, before asking the ledger


class Rights(msgspec.Struct, frozen=True, kw_only=True):
    """What a ledger user may do (ListUserRightsResponse, reduced to what billing needs)."""

    user_id: str
    act_as: frozenset[str] = frozenset()
    any_party: bool = False  # CanActAsAnyParty


class Standing(msgspec.Struct, frozen=True, kw_only=True):
    """Whether billing can charge ``party``; ``reason`` (one line, with the fix) when not."""

    party: str
    can_act: bool
    hosted: bool | None  # None: not known (the user may not read the participant's parties)
    reason: str | None = None

    @property
    def chargeable(self) -> bool:
        return self.reason is None


def not_hosted_reason(party: str) -> str:
    return (
        f"{party} is not hosted on this participant with submission permission: host it here "
        "(the custodial set-up) or charge it from the participant that hosts it"
    )


def no_right_reason(party: str, user_id: str) -> str:
    return (
        f"ledger user {user_id} may not act as {party}: grant it CanActAs "
        f"(POST /v2/users/{user_id}/rights, participant admin) or end the subscription"
    )


def standing(party: str, rights: Rights, hosted: bool | None) -> Standing:
    """The pure decision: hosting first (nothing fixes it from here), then the user's right."""
    can_act = rights.any_party or party in rights.act_as
    if hosted is False:
        return Standing(party=party, can_act=can_act, hosted=False, reason=not_hosted_reason(party))
    if not can_act:
        return Standing(party=party, can_act=False, hosted=hosted, reason=no_right_reason(party, rights.user_id))
    return Standing(party=party, can_act=True, hosted=hosted)


def read_rights(user_id: str, doc: Any) -> Rights:
    """`ListUserRightsResponse` → `Rights`; kinds billing does not use are ignored."""
    act_as: set[str] = set()
    any_party = False
    for right in (doc or {}).get("rights") or []:
        kind = (right or {}).get("kind") or {}
        if "CanActAs" in kind:
            act_as.add(str(((kind["CanActAs"] or {}).get("value") or {}).get("party", "")))
        any_party = any_party or "CanActAsAnyParty" in kind
    return Rights(user_id=user_id, act_as=frozenset(act_as), any_party=any_party)


class PartyDirectory:
    """The user's rights and the parties' hosting, read from the Ledger API and kept a while."""

    def __init__(self, http: Http, *, user_id: str | None, clock: Callable[[], datetime]) -> None:
        self.http, self.user_id, self.clock = http, user_id, clock
        self._rights: tuple[datetime, Rights] | None = None
        self._hosted: dict[str, tuple[datetime, bool | None]] = {}
        # One refresh at a time: hundreds of payments prepared at once must not each re-read.
        self._lock = asyncio.Lock()

    async def standings(self, parties: Sequence[str]) -> dict[str, Standing]:
        """The standing of each of ``parties`` (rights read once, hosting in bounded lookups)."""
        rights = await self.rights()
        hosted = await self.hosted(parties)
        return {p: standing(p, rights, hosted.get(p)) for p in dict.fromkeys(parties)}

    async def rights(self) -> Rights:
        async with self._lock:
            now = self.clock()
            if self._rights is None or now - self._rights[0] > RECHECK_AFTER:
                user = self.user_id or await self._authenticated_user()
                doc = await self.http.read("GET", f"/v2/users/{quote(user, safe='')}/rights")
                self._rights = (now, read_rights(user, doc))
            return self._rights[1]

    async def hosted(self, parties: Sequence[str]) -> dict[str, bool | None]:
        """``isLocal`` per party; None for all when the user may not list parties (not admin).

        A refresh re-reads every stale party seen so far, so that the payments of many
        subscribers share a few lookups of up to `PARTIES_PER_LOOKUP` parties each. Only a
        stale or unknown party among ``parties`` starts one: a payment asks for its own party,
        and walking every known party on each payment would make a run quadratic."""
        async with self._lock:
            now = self.clock()

            def fresh(party: str) -> bool:
                seen = self._hosted.get(party)
                return seen is not None and now - seen[0] <= RECHECK_AFTER

            if all(fresh(p) for p in parties):
                return {p: self._hosted[p][1] for p in parties}
            stale = [p for p in dict.fromkeys([*parties, *self._hosted]) if not fresh(p)]
            for start in range(0, len(stale), PARTIES_PER_LOOKUP):
                group = stale[start : start + PARTIES_PER_LOOKUP]
                found = await self._lookup(group)
                for party in group:
                    self._hosted[party] = (now, found.get(party, False) if found is not None else None)
            return {p: self._hosted[p][1] for p in parties}

    async def _lookup(self, group: list[str]) -> dict[str, bool] | None:
        try:
            doc = await self.http.read(
                "GET",
                f"/v2/parties/{quote(group[0], safe='')}",
                params={"parties": group[1:]} if len(group) > 1 else None,
            )
        except CantonError as err:
            if err.status in (401, 403):
                return None  # not a participant admin: hosting cannot be read, rights still decide
            raise
        details = (doc or {}).get("partyDetails") or []
        return {str(d.get("party")): bool(d.get("isLocal")) for d in details if isinstance(d, dict)}

    async def _authenticated_user(self) -> str:
        doc = await self.http.read("GET", "/v2/authenticated-user")
        return str(((doc or {}).get("user") or {}).get("id") or "")
