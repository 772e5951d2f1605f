"""The simulated command service: `POST /v2/commands/submit-and-wait` of the JSON Ledger API v2.

A submission passes the command service's in-flight limit and the change-id check, waits
out the node's latency, then runs its one choice on the ledger (`choices.py`); a fault
planned "after commit" replaces the answer once the transaction has committed.
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from pipeline.simulator.choices import execute
from pipeline.simulator.deduplication import ChangeId
from pipeline.simulator.faults import AFTER_COMMIT, Fault, Planned
from pipeline.simulator.gate import Body, Handler, authenticated_user, gate, read_body
from pipeline.simulator.model import Rejection
from pipeline.simulator.node import Node
from pipeline.simulator.responses import backpressure, canton_error, fault_answer, fault_error, ok, unauthenticated


def routes(node: Node) -> list[Route]:
    return [Route("/v2/commands/submit-and-wait", _submit(node), methods=["POST"])]


def _submit(node: Node) -> Handler:
    async def handle(request: Request) -> Response:
        user = authenticated_user(node, request)
        if user is None:
            return unauthenticated()
        planned, early = await gate(node, "submit", hold=True)
        if early is not None:
            return early
        body = await read_body(request, "submit")
        if isinstance(body, Response):
            return body
        if node.commands_in_flight >= node.max_commands_in_flight:
            return canton_error(backpressure())
        change = (str(body.get("userId") or user), frozenset(body["actAs"]), str(body["commandId"]))
        if change in node.in_flight:
            return fault_error(Fault.IN_FLIGHT)
        node.in_flight.add(change)
        node.commands_in_flight += 1
        try:
            delay = node.submit_latency
            if planned is not None and planned.fault is Fault.LATENCY:
                delay += planned.delay
            if delay > 0:
                await asyncio.sleep(delay)
            return _run(node, body, change, planned, user)
        finally:
            node.in_flight.discard(change)
            node.commands_in_flight -= 1

    return handle


def _run(node: Node, body: Body, change: ChangeId, planned: Planned | None, user: str) -> Response:
    ledger, submission = node.ledger, body.get("submissionId")
    try:
        node.hosting.check_submitters(user, body["actAs"])  # before sequencing: no completion
        ledger.check_duplicate(change, body.get("deduplicationPeriod"))
        root, archived, created = execute(ledger, body, list(body["actAs"]))
    except Rejection as rejection:
        if rejection.sequenced:
            ledger.reject(change, submission, rejection)
        return canton_error(rejection)
    tx = ledger.commit(change, submission, root, archived, created)
    if planned is not None and planned.fault in AFTER_COMMIT:
        return fault_answer(planned.fault)
    return ok({"updateId": tx.update_id, "completionOffset": tx.offset})
