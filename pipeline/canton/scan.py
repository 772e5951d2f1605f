"""Typed client of the Scan API calls billing makes (canton-apis.md §2).

Scan is public (no auth) and every call here is a read, so all of them are retried by
`Http` on transport errors and 5xx. "Not found" answers that are normal (no
preapproval, update not indexed yet) come back as None, not as errors.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import msgspec

from pipeline.canton.errors import CantonError, ErrorClass
from pipeline.canton.http import Http
from pipeline.canton.scan_types import (
    Contract,
    ContractWithState,
    GetDsoInfoResponse,
    GetOpenAndIssuingMiningRoundsRequest,
    GetOpenAndIssuingMiningRoundsResponse,
    LookupFeaturedAppRightResponse,
    LookupTransferPreapprovalByPartyResponse,
    UpdateHistoryRequestAfter,
    UpdateHistoryRequestV2,
    UpdateHistoryResponseV2,
    UpdateHistoryTransactionV2,
)


def _segment(value: str) -> str:
    # Party ids hold "::"; quote everything that is not safe in one path segment.
    return quote(value, safe="")


class ScanApi:
    """One Scan instance (an SV's view of the network)."""

    def __init__(self, http: Http) -> None:
        self.http = http

    async def dso(self) -> GetDsoInfoResponse:
        """`GET /v0/dso`: DSO party, AmuletRules (with its synchronizer), latest round."""
        result: GetDsoInfoResponse = await self.http.read("GET", "/v0/dso", into=GetDsoInfoResponse)
        return result

    async def open_and_issuing_mining_rounds(self) -> GetOpenAndIssuingMiningRoundsResponse:
        """`POST /v0/open-and-issuing-mining-rounds` with empty caches: every round in full."""
        result: GetOpenAndIssuingMiningRoundsResponse = await self.http.read(
            "POST",
            "/v0/open-and-issuing-mining-rounds",
            GetOpenAndIssuingMiningRoundsRequest(),
            into=GetOpenAndIssuingMiningRoundsResponse,
        )
        return result

    async def featured_app_right(self, provider: str) -> Contract | None:
        """`GET /v0/featured-apps/{provider}`: its FeaturedAppRight, None if not featured."""
        doc: LookupFeaturedAppRightResponse = await self.http.read(
            "GET", f"/v0/featured-apps/{_segment(provider)}", into=LookupFeaturedAppRightResponse
        )
        return doc.featured_app_right

    async def transfer_preapproval(self, receiver: str) -> ContractWithState | None:
        """`GET /v0/transfer-preapprovals/by-party/{party}`; None on 404 (the receiver has none)."""
        try:
            doc: LookupTransferPreapprovalByPartyResponse = await self.http.read(
                "GET",
                f"/v0/transfer-preapprovals/by-party/{_segment(receiver)}",
                into=LookupTransferPreapprovalByPartyResponse,
            )
        except CantonError as err:
            if err.status == 404:
                return None
            raise
        return doc.transfer_preapproval

    async def update_by_id(self, update_id: str) -> UpdateHistoryTransactionV2 | None:
        """`GET /v2/updates/{update_id}`; None on 404 (not committed, or this Scan lags)."""
        try:
            doc: UpdateHistoryTransactionV2 = await self.http.read(
                "GET", f"/v2/updates/{_segment(update_id)}", into=UpdateHistoryTransactionV2
            )
        except CantonError as err:
            if err.status == 404:
                return None
            raise
        return doc

    async def updates(self, *, page_size: int = 100, after: tuple[int, str] | None = None) -> UpdatesPage:
        """One page of `POST /v2/updates` after (migration id, record time), minus reassignments."""
        body = UpdateHistoryRequestV2(
            page_size=page_size,
            after=None
            if after is None
            else UpdateHistoryRequestAfter(after_migration_id=after[0], after_record_time=after[1]),
        )
        doc: UpdateHistoryResponseV2 = await self.http.read("POST", "/v2/updates", body, into=UpdateHistoryResponseV2)
        try:
            transactions = [
                msgspec.convert(item, UpdateHistoryTransactionV2) for item in doc.transactions if "events_by_id" in item
            ]
            last = doc.transactions[-1] if doc.transactions else None
            next_after = _cursor(last) if last else after
        except (msgspec.ValidationError, KeyError, TypeError, ValueError) as err:
            raise CantonError(
                ErrorClass.RETRYABLE,
                f"Scan sent an update history page that does not read: {type(err).__name__}: {err}",
                code="INVALID_RESPONSE",
            ) from err
        return UpdatesPage(
            transactions=transactions,
            next_after=next_after,
            complete=len(doc.transactions) < page_size,
        )


class UpdatesPage(msgspec.Struct, frozen=True, kw_only=True):
    transactions: list[UpdateHistoryTransactionV2]
    next_after: tuple[int, str] | None  # pass as ``after`` for the next page
    complete: bool  # a short page: the head of the history was reached


def _cursor(item: dict[str, Any]) -> tuple[int, str]:
    # Reassignments carry their migration id inside `event` (UpdateHistoryAssignment/Unassignment).
    event = item.get("event") or {}
    migration = item.get("migration_id", event.get("migration_id", 0))
    return int(migration), str(item["record_time"])
