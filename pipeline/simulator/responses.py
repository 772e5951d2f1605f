"""The simulator's HTTP answers: spec bodies, Canton and Scan errors, proxy pages, hang-ups."""

from __future__ import annotations

import itertools
import logging
from typing import Any

import msgspec
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import Receive, Scope, Send

from pipeline.simulator.faults import ConnectionDropped, Fault
from pipeline.simulator.model import Rejection

_correlation = itertools.count(1)

# The Canton error each fault answers with (code, cause, category, context).
FAULT_ERRORS: dict[Fault, tuple[str, str, int, dict[str, str]]] = {
    Fault.IN_FLIGHT: (
        "SUBMISSION_ALREADY_IN_FLIGHT",
        "A submission with the same change id is already in flight",
        2,
        {},
    ),
    Fault.BACKPRESSURE: (
        "PARTICIPANT_BACKPRESSURE",
        "The participant is overloaded: too many pending requests",
        2,
        {},
    ),
    Fault.INSUFFICIENT_FUNDS: (
        "DAML_FAILURE",
        "Insufficient funds (injected)",
        9,
        {
            "error_id": "splice.lfdecentralizedtrust.org/insufficient-funds",
            "requiredAmount": "0.0000000000",
        },
    ),
    Fault.INACTIVE_CONTRACTS: (
        "LOCAL_VERDICT_INACTIVE_CONTRACTS",
        "Rejected transaction as some contracts are inactive (injected)",
        11,
        {},
    ),
    Fault.CONTRACT_NOT_FOUND: (
        "CONTRACT_NOT_FOUND",
        "Contract could not be found (injected)",
        11,
        {},
    ),
    Fault.TIMEOUT_AFTER_COMMIT: (
        "REQUEST_TIME_OUT",
        "Timed out while awaiting for a completion corresponding to a command submission",
        3,
        {},
    ),
    Fault.UNAUTHENTICATED: ("UNAUTHENTICATED", "The command is missing a (valid) JWT token", 6, {}),
}


class FastJSON(JSONResponse):
    """JSONResponse rendered by msgspec: with the stdlib encoder, big pages are slow to answer."""

    def render(self, content: Any) -> bytes:
        return msgspec.json.encode(content)


def ok(doc: Any) -> JSONResponse:
    return FastJSON(doc)


def canton_error(rejection: Rejection) -> JSONResponse:
    """A `JsCantonError` with the HTTP status of its category."""
    return FastJSON(rejection.body(f"sim-{next(_correlation)}"), rejection.status)


def fault_error(fault: Fault) -> JSONResponse:
    code, cause, category, context = FAULT_ERRORS[fault]
    return canton_error(Rejection(code, cause, category, dict(context)))


def backpressure() -> Rejection:
    """The command service's answer once max-commands-in-flight submissions are being tracked.

    digital-asset/canton community/ledger/ledger-api-core/src/main/scala/com/digitalasset/canton/
    platform/apiserver/services/tracking/StreamTracker.scala (`InFlight.Limited`) rejects before
    submitting anything with LedgerApiErrors.ParticipantBackpressure (ledger/error/
    LedgerApiErrors.scala): ContentionOnSharedResources (2, ABORTED, HTTP 409), context `reason`.
    """
    reason = "Maximum number of in-flight requests reached"
    return Rejection("PARTICIPANT_BACKPRESSURE", f"The participant is overloaded: {reason}", 2, {"reason": reason})


def unauthenticated() -> JSONResponse:
    return fault_error(Fault.UNAUTHENTICATED)


def bad_body(detail: str) -> PlainTextResponse:
    """What the JSON Ledger API answers when it cannot decode a body (400, text/plain)."""
    return PlainTextResponse(f"Invalid value for: body ({detail})", 400)


def scan_error(status: int, message: str) -> JSONResponse:
    """Scan's `ErrorResponse`."""
    return FastJSON({"error": message}, status)


def proxy_page(status: int) -> Response:
    """A reverse proxy's own error page: not JSON, and no sign of what the node did."""
    if status == 502:
        return Response(
            "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
            "</h1></center><hr><center>nginx</center></body></html>",
            502,
            media_type="text/html",
        )
    return PlainTextResponse(
        "upstream connect error or disconnect/reset before headers. reset reason: overflow", status
    )


class DroppedResponse(Response):
    """Starts an answer and hangs up: uvicorn closes the socket, ASGITransport raises."""

    def __init__(self) -> None:
        super().__init__(b"", 200)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"512")],
            }
        )
        raise ConnectionDropped("the simulator dropped the connection")


def fault_answer(fault: Fault) -> Response:
    """What the client receives for ``fault`` instead of the node's answer."""
    if fault in (Fault.PROXY_502, Fault.PROXY_502_AFTER_COMMIT):
        return proxy_page(502)
    if fault is Fault.PROXY_503:
        return proxy_page(503)
    if fault in (Fault.DROP, Fault.DROP_AFTER_COMMIT):
        return DroppedResponse()
    if fault is Fault.SCAN_LAG:
        return scan_error(404, "update not found (Scan has not ingested it yet)")
    if fault is Fault.IDLE_TIMEOUT:
        # An HTTP list of an open-ended stream (completions) ends after stream_idle_timeout_ms
        # without a new element (digital-asset/canton community/ledger/ledger-json-api/src/
        # main/scala/com/digitalasset/canton/http/json/v2/Endpoints.scala `asList`): a slow
        # index answers [] although completions exist.
        return ok([])
    return fault_error(fault)


def parse_json(raw: bytes) -> Any:
    """The request body, or ValueError with a short reason."""
    if not raw:
        raise ValueError("empty body")
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError as err:
        raise ValueError(str(err)) from err


class _NotDroppedConnections(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionDropped))


def quiet_dropped_connections() -> None:
    """Keep the server's log free of the hang-ups the simulator makes on purpose.

    uvicorn logs every exception an app raises with its traceback; a `drop` fault at a
    few percent would otherwise write megabytes (and block a parent that does not read
    the pipe).
    """
    server_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _NotDroppedConnections) for f in server_log.filters):
        server_log.addFilter(_NotDroppedConnections())
