"""`POST /v2/updates` as an HTTP list (list limit and pruning as `refusals.py` says).

A bounded stream (``endInclusive`` set) ends at its end, so the HTTP list answers every
transaction in range up to ``limit``; only open-ended streams (and completions) are cut by the
idle timeout (digital-asset/canton community/ledger/ledger-json-api/src/main/scala/com/
digitalasset/canton/http/json/v2/JsUpdateService.scala: `timeoutOpenEndedStream =
endInclusive.isEmpty`; http/json/v2/Endpoints.scala `asList`).
"""

from __future__ import annotations

import bisect
import itertools
from typing import Any

from pipeline.simulator import wire
from pipeline.simulator.model import Rejection
from pipeline.simulator.node import Node
from pipeline.simulator.refusals import check_updates_from, list_page


def updates(node: Node, body: dict[str, Any], limit: str | None) -> list[dict[str, Any]]:
    """The `JsGetUpdatesResponse` items answering ``body`` (``limit``: the query parameter)."""
    ledger = node.ledger
    begin = int(body["beginExclusive"])
    end = body.get("endInclusive")
    end = ledger.offset if end is None else int(end)  # open-ended: what exists now
    if end > ledger.offset:
        raise Rejection("OFFSET_AFTER_LEDGER_END", f"endInclusive {end} is after the ledger end {ledger.offset}", 12)
    check_updates_from(begin, end, node.pruned_up_to)
    txf = (body.get("updateFormat") or {}).get("includeTransactions") or {}
    fmt = txf.get("eventFormat") or {}
    parties = None if fmt.get("filtersForAnyParty") is not None else set(fmt.get("filtersByParty") or {})
    effects = txf.get("transactionShape") == "TRANSACTION_SHAPE_LEDGER_EFFECTS"
    start = bisect.bisect_right(ledger.transactions, begin, key=lambda t: t.offset)
    in_range = itertools.takewhile(lambda t: t.offset <= end, itertools.islice(ledger.transactions, start, None))
    seen = (t for t in in_range if parties is None or parties & t.witnesses)
    # More than the node's limit is a 413, not a shorter list: one element past it tells.
    found = list(itertools.islice(seen, node.list_limit + 1))
    rows = list_page(found, limit, node.list_limit)
    docs = [wire.transaction(t, parties, effects=effects, synchronizer_id=ledger.synchronizer_id) for t in rows]
    return [{"update": {"Transaction": {"value": doc}}} for doc in docs]
