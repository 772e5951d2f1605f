"""One error type for every Ledger API, Scan and token-endpoint failure, already classified.

`CantonError` carries what Canton said (`code`, `category`, `context` with its `error_id`,
`retryable` as the server sees it) and what it means for a payment (`kind`, an
`ErrorClass`), decided by pure functions following canton-apis.md §7.2:

- ``duplicate``: DUPLICATE_COMMAND, the change id was already accepted (a success);
- ``retryable``: nothing committed; retry with the same commandId (maybe after
  refreshing the Scan context: see `CantonError.stale_context`);
- ``in_doubt``: the command may have committed (timeouts, dropped connections, 5xx
  from a proxy): look the commandId up before resubmitting;
- ``final``: retrying the same request cannot help (insufficient funds, bad request,
  refused credentials).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pipeline.errors import PipelineError

INSUFFICIENT_FUNDS = "splice.lfdecentralizedtrust.org/insufficient-funds"
# Daml's `assertDeadlineExceeded` / `assertWithinDeadline` fail as DAML_FAILURE with these
# error ids (digital-asset/daml sdk/compiler/damlc/daml-stdlib-src/DA/Assert.daml): a round
# that has not opened yet, and a deadline that passed (the preapproval's expiresAt).
DEADLINE_NOT_EXCEEDED = "stdlib.daml.com/deadline-not-exceeded"
DEADLINE_EXCEEDED = "stdlib.daml.com/deadline-exceeded"
DEADLINE_IDS = frozenset({DEADLINE_NOT_EXCEEDED, DEADLINE_EXCEEDED})

# Codes after which the same commandId may simply be submitted again (§7.2).
RETRYABLE_CODES = frozenset(
    {
        "SUBMISSION_ALREADY_IN_FLIGHT",
        "PARTICIPANT_BACKPRESSURE",
        "LOCAL_VERDICT_LOCKED_CONTRACTS",
    }
)
# A disclosed contract (round, AmuletRules, preapproval) is gone: refresh Scan, then retry.
STALE_CODES = frozenset({"LOCAL_VERDICT_INACTIVE_CONTRACTS", "CONTRACT_NOT_FOUND", "CONTRACT_NOT_ACTIVE"})
# Older Daml: `require`s failing as interpretation errors without an error id; the cause names them.
STALE_CAUSES = ("openRound.opensAt", "TransferPreapproval.expiresAt")
INTERPRETATION_CODES = frozenset(
    {
        "UNHANDLED_EXCEPTION",
        "DAML_INTERPRETATION_ERROR",
        "INTERPRETATION_USER_ERROR",
    }
)
# An HTTP list asked for more elements than the node's http-list-max-elements-limit (HTTP 413):
# the same request fails again, a smaller page does not (pipeline/canton/ledger_lists.py).
LIST_LIMIT = "JSON_API_MAXIMUM_LIST_ELEMENTS_NUMBER_REACHED"
# A read before the participant's pruning offset (context ``earliest_offset``): that history is
# gone, so repeating the read can never succeed; read from a later offset or give up.
PRUNED = "PARTICIPANT_PRUNED_DATA_ACCESSED"
# errorCategory values Canton itself marks retryable (§6.1): transient, contention, deadline, seek.
RETRYABLE_CATEGORIES = frozenset({1, 2, 3, 12})
MAX_CAUSE = 400
MAX_MESSAGE = 1000  # characters of a CantonError's message


class ErrorClass(StrEnum):
    """What a failure means for a submission (a str, so ``err.kind == "final"`` reads naturally)."""

    DUPLICATE = "duplicate"
    RETRYABLE = "retryable"
    IN_DOUBT = "in_doubt"
    FINAL = "final"


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """``text`` on one line and at most ``limit`` characters: servers and decoders may quote
    whole bodies, and an error goes to a terminal, a log line and the event log."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class CantonError(PipelineError):
    """A classified failure of a Canton-side call.

    Attributes:
        kind: the classification (`ErrorClass`).
        message: one readable line, never containing a token.
        status: the HTTP status, None when no answer came back.
        code: Canton's error id (``DUPLICATE_COMMAND``...) or one of ours
            (``HTTP_502``, ``CONNECTION_LOST``, ``NO_OPEN_ROUND``...).
        category: JsCantonError ``errorCategory`` when Canton sent one.
        context: JsCantonError ``context`` (``error_id``, ``completion_offset``...).
        retryable: whether the *server* considers the request retryable.
    """

    def __init__(
        self,
        kind: ErrorClass | str,
        message: str,
        status: int | None = None,
        code: str = "HTTP_ERROR",
        category: int | None = None,
        context: Mapping[str, str] | None = None,
        *,
        cause: str = "",
        retryable: bool | None = None,
    ) -> None:
        message = one_line(message)
        super().__init__(message)
        self.kind = ErrorClass(kind)
        self.message, self.status, self.code, self.category = message, status, code, category
        self.context: dict[str, str] = dict(context or {})
        self.cause = cause
        self.retryable = self.kind in (ErrorClass.RETRYABLE, ErrorClass.IN_DOUBT) if retryable is None else retryable

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"CantonError({self.kind.value}, {self.code}, status={self.status}, {self.message!r})"

    @property
    def error_id(self) -> str | None:
        """Splice's structured id (``context.error_id``), e.g. the insufficient-funds one."""
        return self.context.get("error_id")

    @property
    def completion_offset(self) -> int | None:
        """Where DUPLICATE_COMMAND says the earlier acceptance is (when it says it)."""
        raw = self.context.get("completion_offset")
        return int(raw) if raw is not None and raw.lstrip("-").isdigit() else None

    @property
    def stale_context(self) -> bool:
        """A disclosed contract or a Daml deadline check failed: refresh Scan before retrying."""
        return self.code in STALE_CODES or self.error_id in DEADLINE_IDS or any(c in self.cause for c in STALE_CAUSES)

    @property
    def deadline_passed(self) -> bool:
        """A Daml deadline is behind ledger time (an expired preapproval): re-check before retrying."""
        return self.error_id == DEADLINE_EXCEEDED

    @property
    def pruned_up_to(self) -> int | None:
        """The pruning offset, when the participant no longer holds the history asked for."""
        raw = self.context.get("earliest_offset", "") if self.code == PRUNED else ""
        return int(raw) if raw.isdigit() else None

    @property
    def insufficient_funds(self) -> bool:
        return self.error_id == INSUFFICIENT_FUNDS


def classify_canton(
    code: str,
    category: int,
    status: int,
    cause: str,
    retry_info: bool,
    error_id: str | None = None,
) -> ErrorClass:
    """The meaning of a JsCantonError answer (canton-apis.md §7.2), a pure function."""
    if code == "DUPLICATE_COMMAND":
        return ErrorClass.DUPLICATE
    if code == PRUNED:
        return ErrorClass.FINAL  # whatever the category: that offset will never be readable again
    if code == "DAML_FAILURE" and error_id in DEADLINE_IDS:
        # Category 9 (FAILED_PRECONDITION), i.e. "retry after reading updated state": a round
        # not open yet, or a preapproval the adapter re-checks before calling it final.
        return ErrorClass.RETRYABLE
    if category == 3 or code == "REQUEST_TIME_OUT":
        return ErrorClass.IN_DOUBT  # deadline exceeded: it may still commit
    if code in RETRYABLE_CODES or code in STALE_CODES:
        return ErrorClass.RETRYABLE
    if code in INTERPRETATION_CODES and any(c in cause for c in STALE_CAUSES):
        return ErrorClass.RETRYABLE  # round not open yet / preapproval replaced: refresh and retry
    if category in RETRYABLE_CATEGORIES or retry_info:
        return ErrorClass.RETRYABLE
    if status >= 500 and category not in (4, 5):
        return ErrorClass.IN_DOUBT
    return ErrorClass.FINAL


def classify_status(status: int) -> ErrorClass:
    """The meaning of an answer without a JsCantonError body (a proxy, Scan, a text 400)."""
    if status in (429, 408):
        return ErrorClass.RETRYABLE
    if status >= 500:
        return ErrorClass.IN_DOUBT  # a proxy answered: the participant may have committed
    return ErrorClass.FINAL


def from_response(status: int, body: bytes, service: str, path: str) -> CantonError:
    """Decode an error answer (JsCantonError, Scan ErrorResponse, text, HTML) into a CantonError."""
    doc = _json(body)
    if isinstance(doc, dict) and isinstance(doc.get("code"), str) and "errorCategory" in doc:
        return _from_canton(status, doc, service)
    if status in (401, 403):
        return CantonError(
            ErrorClass.FINAL,
            f"{service} refused the credentials (HTTP {status}) for {path}: "
            "check the token or the OAuth settings and the user's rights",
            status,
            "UNAUTHENTICATED" if status == 401 else "PERMISSION_DENIED",
        )
    text = doc.get("error") if isinstance(doc, dict) and isinstance(doc.get("error"), str) else None
    text = text or body[:200].decode(errors="replace").strip() or "(empty body)"
    return CantonError(
        classify_status(status),
        f"{service} answered HTTP {status} for {path}: {text}",
        status,
        f"HTTP_{status}",
    )


def _from_canton(status: int, doc: dict[str, Any], service: str) -> CantonError:
    code = str(doc["code"])
    category = _int(doc.get("errorCategory"))
    cause = str(doc.get("cause", ""))[:MAX_CAUSE]
    raw_context = doc.get("context")
    context = {str(k): str(v) for k, v in raw_context.items()} if isinstance(raw_context, dict) else {}
    retry_info = bool(doc.get("retryInfo"))
    kind = classify_canton(code, category, status, cause, retry_info, context.get("error_id"))
    return CantonError(
        kind,
        f"{service}: {code}: {cause}",
        status,
        code,
        category,
        context,
        cause=cause,
        retryable=category in RETRYABLE_CATEGORIES or retry_info,
    )


def transport_failure(sent: bool, service: str, path: str, detail: str) -> CantonError:
    """No answer: retryable when the request never left (connect failed), in doubt otherwise."""
    if not sent:
        return CantonError(ErrorClass.RETRYABLE, f"{service} is unreachable ({path}): {detail}", code="UNREACHABLE")
    return CantonError(ErrorClass.IN_DOUBT, f"{service} did not answer {path}: {detail}", code="CONNECTION_LOST")


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _int(value: object) -> int:
    if not isinstance(value, (int, float, str)):  # what else JSON holds is no number
        return 0
    try:
        return int(value)
    except ValueError:
        return 0
