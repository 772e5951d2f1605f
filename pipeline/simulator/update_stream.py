"""`POST /v2/updates` (HTTP list) and the pruning offset every stream read checks.

A bounded stream (``endInclusive`` set) ends at its end, so the HTTP list answers every
transaction in range up to ``limit``; only open-ended streams (and completions) are cut by the
idle timeout (digital-asset/canton community/ledger/ledger-json-api/src/main/scala/com/
digitalasset/canton/http/json/v2/JsUpdateService.scala: `timeoutOpenEndedStream =
endInclusive.isEmpty`; http/json/v2/Endpoints.scala `asList`). More elements than
http-list-max-elements-limit (200, JsonApiConfig.scala) is a 413, not a shorter list.
"""

from __future__ import annotations

import bisect
import itertools
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from pipeline.simulator import wire
from pipeline.simulator.model import Rejection
from pipeline.simulator.responses import FastJSON, ok

if TYPE_CHECKING:
    from pipeline.simulator.app import Simulator

HTTP_LIST_MAX_ELEMENTS = 200  # JsonApiConfig.DefaultHttpListMaxElementsLimit


def check_not_pruned(sim: Simulator, begin: int) -> None:
    """PARTICIPANT_PRUNED_DATA_ACCESSED for a stream starting before the pruning offset.

    digital-asset/canton community/ledger/ledger-api-core/src/main/scala/com/digitalasset/canton/
    ledger/error/groups/RequestValidationErrors.scala (`ParticipantPrunedDataAccessed`:
    InvalidGivenCurrentSystemStateOther, context `earliest_offset`).
    """
    pruned = sim.ledger.pruned_offset
    if begin < pruned:
        raise Rejection(
            "PARTICIPANT_PRUNED_DATA_ACCESSED",
            f"Transactions request from {begin} precedes pruned offset {pruned}",
            9,
            {"earliest_offset": str(pruned)},
        )


def updates(sim: Simulator, request: Request, user: str, body: dict[str, Any]) -> Response:
    ledger = sim.ledger
    begin = int(body["beginExclusive"])
    end = body.get("endInclusive")
    end = ledger.offset if end is None else int(end)  # open-ended: what exists now
    if end > ledger.offset:
        raise Rejection(
            "OFFSET_AFTER_LEDGER_END", f"endInclusive {end} is after the ledger end {ledger.offset}", 12
        )
    check_not_pruned(sim, begin)
    txf = (body.get("updateFormat") or {}).get("includeTransactions") or {}
    fmt = txf.get("eventFormat") or {}
    parties = None if fmt.get("filtersForAnyParty") is not None else set(fmt.get("filtersByParty") or {})
    effects = txf.get("transactionShape") == "TRANSACTION_SHAPE_LEDGER_EFFECTS"
    start = bisect.bisect_right(ledger.transactions, begin, key=lambda t: t.offset)
    in_range = itertools.takewhile(
        lambda t: t.offset <= end, itertools.islice(ledger.transactions, start, None)
    )
    seen = (t for t in in_range if parties is None or parties & t.witnesses)
    # The list takes min(limit, max+1) elements and refuses more than max (Endpoints.scala).
    limit = int(request.query_params.get("limit") or HTTP_LIST_MAX_ELEMENTS + 1)
    rows = list(itertools.islice(seen, min(limit, HTTP_LIST_MAX_ELEMENTS + 1)))
    if len(rows) > HTTP_LIST_MAX_ELEMENTS:
        return too_many(len(rows))
    docs = [
        wire.transaction(t, parties, effects=effects, synchronizer_id=ledger.synchronizer_id)
        for t in rows
    ]
    return ok([{"update": {"Transaction": {"value": doc}}} for doc in docs])


def too_many(count: int) -> Response:
    """413 with JsonApiErrors.MaximumNumberOfElements (ledger/error/JsonApiErrors.scala)."""
    cause = f"The number of matching elements ({count}) is greater than the node limit ({HTTP_LIST_MAX_ELEMENTS})."
    return FastJSON(Rejection("JSON_API_MAXIMUM_LIST_ELEMENTS_NUMBER_REACHED", cause, 2).body("sim-413"), 413)
