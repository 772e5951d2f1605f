"""The simulated JSON Ledger API v2 reads: ledger end, ACS, completions and updates.

Same paths, field names and status codes as json-ledger-api-openapi.yaml; every route
passes `gate.guarded` (token, fault, body) and a refusal is a `JsCantonError` with the
status of its category.
"""

from __future__ import annotations

import bisect
import itertools

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pipeline.simulator import wire
from pipeline.simulator.gate import Body, guarded
from pipeline.simulator.model import Contract, Rejection, Transaction, iso, template_matches
from pipeline.simulator.node import Node
from pipeline.simulator.refusals import acs_token_start, check_active_at, check_completions_from, list_page
from pipeline.simulator.responses import ok
from pipeline.simulator.update_stream import updates


def routes(node: Node) -> list[Route]:
    return [
        Route("/v2/state/ledger-end", guarded(node, "ledger-end", _ledger_end), methods=["GET"]),
        Route(
            "/v2/state/active-contracts",
            guarded(node, "active-contracts", _active_contracts),
            methods=["POST"],
        ),
        Route("/v2/commands/completions", guarded(node, "completions", _completions), methods=["POST"]),
        Route("/v2/updates", guarded(node, "updates", _updates), methods=["POST"]),
        Route(
            "/v2/updates/update-by-id",
            guarded(node, "update-by-id", _update_by_id),
            methods=["POST"],
        ),
        Route(
            "/v2/updates/update-by-offset",
            guarded(node, "update-by-offset", _update_by_offset),
            methods=["POST"],
        ),
    ]


def _ledger_end(node: Node, request: Request, user: str, body: Body) -> Response:
    return ok({"offset": node.ledger.offset})


def _filters(fmt: Body | None) -> dict[str | None, list[str] | None]:
    """An EventFormat's party (None: any) → template ids (None: wildcard)."""
    fmt = fmt or {}
    out: dict[str | None, list[str] | None] = {}
    for party, filters in (fmt.get("filtersByParty") or {}).items():
        out[party] = _templates(filters)
    if fmt.get("filtersForAnyParty") is not None:
        out[None] = _templates(fmt["filtersForAnyParty"])
    return out


def _templates(filters: Body | None) -> list[str] | None:
    names = []
    for item in (filters or {}).get("cumulative") or []:
        ident = (item or {}).get("identifierFilter") or {}
        if "TemplateFilter" in ident:
            names.append(ident["TemplateFilter"]["value"]["templateId"])
        elif "WildcardFilter" in ident:
            return None
    return names or None


def _wants_blob(fmt: Body | None) -> bool:
    fmt = fmt or {}
    filters = [*(fmt.get("filtersByParty") or {}).values(), fmt.get("filtersForAnyParty") or {}]
    for item in (i for f in filters for i in (f or {}).get("cumulative") or []):
        ident = (item or {}).get("identifierFilter") or {}
        for kind in ("TemplateFilter", "WildcardFilter"):
            if (ident.get(kind) or {}).get("value", {}).get("includeCreatedEventBlob"):
                return True
    return False


def _active_contracts(node: Node, request: Request, user: str, body: Body) -> Response:
    ledger, at = node.ledger, int(body["activeAtOffset"])
    if at > ledger.offset:
        raise Rejection(
            "OFFSET_AFTER_LEDGER_END",
            f"activeAtOffset {at} is after the ledger end {ledger.offset}",
            12,
        )
    check_active_at(at, node.pruned_up_to)
    filters = _filters(body.get("eventFormat") or body.get("filter"))
    node.hosting.check_readers(user, filters)
    blob = _wants_blob(body.get("eventFormat") or body.get("filter"))
    rows: dict[str, tuple[Contract, str]] = {}
    for party, templates in filters.items():
        if party is not None and not node.hosting.hosted(party):
            continue  # this participant's ACS holds no contract of a party it does not host
        for contract in ledger.active(party=party, at_offset=at):
            if templates is None or any(template_matches(t, contract.template) for t in templates):
                rows.setdefault(contract.contract_id, (contract, party or contract.signatories[0]))
    ordered = sorted(rows.values(), key=lambda r: (r[0].created_offset, r[0].contract_id))
    start = acs_token_start(body.get("streamContinuationToken"), at)
    page = list_page(ordered[start:], request.query_params.get("limit"), node.list_limit)
    return ok(
        [
            wire.active_contract(
                c,
                party=p,
                synchronizer_id=ledger.synchronizer_id,
                blob=blob,
                token=f"sim-acs-{at}-{start + i + 1}",
            )
            for i, (c, p) in enumerate(page)
        ]
    )


def _completions(node: Node, request: Request, user: str, body: Body) -> Response:
    ledger = node.ledger
    parties, begin = set(body["parties"]), int(body.get("beginExclusive") or 0)
    if not parties:
        raise Rejection("INVALID_ARGUMENT", "parties must not be empty", 8)
    node.hosting.check_readers(user, parties)
    wanted_user = body.get("userId") or user
    check_completions_from(begin, ledger.offset, node.pruned_up_to)
    # Completions are appended in offset order: start at the first one after ``begin``.
    start = bisect.bisect_right(ledger.completions, begin, key=lambda c: c.offset)
    mine = (
        c
        for c in itertools.islice(ledger.completions, start, None)
        if c.user_id == wanted_user and parties & set(c.act_as)
    )
    found = list(itertools.islice(mine, node.list_limit + 1))  # tells full from over the limit
    items = [wire.completion(c, ledger.synchronizer_id) for c in found]
    last = found[-1].offset if found else begin
    if len(items) <= node.list_limit and ledger.offset > last:
        items.append(wire.checkpoint(ledger.offset, ledger.synchronizer_id, iso(ledger.now())))
    return ok(list_page(items, request.query_params.get("limit"), node.list_limit))


def _updates(node: Node, request: Request, user: str, body: Body) -> Response:
    return ok(updates(node, body, request.query_params.get("limit")))


def _update_format(body: Body) -> tuple[set[str] | None, bool]:
    txf = (body.get("updateFormat") or {}).get("includeTransactions")
    if not txf:
        raise Rejection("UPDATE_NOT_FOUND", "no transactions requested by the update format", 11)
    filters = _filters(txf.get("eventFormat"))
    parties = None if None in filters else {p for p in filters if p is not None}
    return parties, txf.get("transactionShape") == "TRANSACTION_SHAPE_LEDGER_EFFECTS"


def _update(node: Node, body: Body, tx: Transaction | None, what: str) -> Response:
    parties, effects = _update_format(body)
    # Pointwise lookups drop pruned events (digital-asset/canton .../platform/store/dao/events/
    # TransactionOrReassignmentPointwiseReader.scala, `filterPrunedEvents`): not found, not an error.
    pruned = tx is not None and tx.offset <= node.pruned_up_to
    if tx is None or pruned or (parties is not None and not parties & tx.witnesses):
        raise Rejection("UPDATE_NOT_FOUND", f"Update not found: {what}", 11)
    doc = wire.transaction(tx, parties, effects=effects, synchronizer_id=node.ledger.synchronizer_id)
    return ok({"update": {"Transaction": {"value": doc}}})


def _update_by_id(node: Node, request: Request, user: str, body: Body) -> Response:
    return _update(node, body, node.ledger.transaction(str(body["updateId"])), f"update id {body['updateId']}")


def _update_by_offset(node: Node, request: Request, user: str, body: Body) -> Response:
    return _update(node, body, node.ledger.transaction_at(int(body["offset"])), f"offset {body['offset']}")
