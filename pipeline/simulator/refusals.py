"""What a real participant refuses: lists longer than its limit, offsets it has pruned, and
Numerics written other than as plain decimals.

Pure functions raising the `Rejection` the JSON Ledger API answers with (docs/canton-facts.md).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, TypeVar

from pipeline.simulator.model import Rejection

T = TypeVar("T")

# digital-asset/canton community/ledger/ledger-json-api/src/main/scala/com/digitalasset/canton/
# http/JsonApiConfig.scala: WebsocketConfig.DefaultHttpListMaxElementsLimit = 200
# (`http-list-max-elements-limit`; "Canton transactions can be quite big").
DEFAULT_LIST_LIMIT = 200
LIST_LIMIT_CODE = "JSON_API_MAXIMUM_LIST_ELEMENTS_NUMBER_REACHED"
PRUNED_CODE = "PARTICIPANT_PRUNED_DATA_ACCESSED"


def list_page(items: Sequence[T], limit_param: str | None, node_limit: int) -> list[T]:
    """The elements an HTTP list answers with, or the 413 a real node gives instead.

    digital-asset/canton .../http/json/v2/Endpoints.scala (`asList`, `maxRowsToReturn`,
    `handleListLimit`): the stream is cut after min(``limit``, node limit + 1) elements
    (node limit + 1 without ``limit``); more than the node limit is answered with HTTP 413
    and JsonApiErrors.MaximumNumberOfElements (ledger-api-core .../error/JsonApiErrors.scala,
    category ContentionOnSharedResources), never with a partial list. So ``limit`` <= the
    node limit returns up to ``limit`` elements, and a bigger ``limit`` (or none) fails as
    soon as more than the node limit match.
    """
    wanted = int(limit_param) if limit_param else node_limit + 1
    page = list(items[: max(min(wanted, node_limit + 1), 0)])
    if len(page) > node_limit:
        raise Rejection(
            LIST_LIMIT_CODE,
            f"The number of matching elements ({len(page)}) is greater than the node limit ({node_limit}).",
            2,
            http_status=413,  # StatusCode.PayloadTooLarge, whatever the category says
            definite=False,  # DamlErrorWithDefiniteAnswer's default
        )
    return page


def acs_token_start(token: Any, at: int) -> int:
    """Where a streamContinuationToken (the last element a client read) resumes the snapshot.

    A real token only works for the same ``activeAtOffset`` (and event format); ours names both
    that offset and the position, so reading past the list limit page by page is checked.
    """
    if not token:
        return 0
    prefix = f"sim-acs-{at}-"
    rest = token[len(prefix) :] if isinstance(token, str) and token.startswith(prefix) else ""
    if not rest.isdigit():
        raise Rejection("INVALID_ARGUMENT", f"invalid streamContinuationToken {token!r}", 8)
    return int(rest)


def check_active_at(at: int, pruned_up_to: int) -> None:
    """An ACS snapshot before the pruning offset is gone.

    digital-asset/canton community/ledger/ledger-api-core/src/main/scala/com/digitalasset/canton/
    platform/store/dao/events/ACSReader.scala (`withOffsetNotBeforePruning`,
    `acsBeforePruningErrorReason`); the check is QueryValidRange.scala's: an
    ``activeAtOffset`` equal to the pruning offset still works.
    """
    if at < pruned_up_to:
        raise _pruned(
            f"Active contracts request at offset {at} precedes pruned offset {pruned_up_to}",
            pruned_up_to,
        )


def check_completions_from(begin_exclusive: int, end: int, pruned_up_to: int) -> None:
    """Completions from before the pruning offset are gone.

    digital-asset/canton community/ledger/ledger-api-core/src/main/scala/com/digitalasset/canton/
    platform/store/dao/CommandCompletionsReader.scala: `withRangeNotPruned` from
    beginExclusive + 1, which fails when the pruning offset is at or after that start.
    """
    start = begin_exclusive + 1
    if pruned_up_to >= start:
        raise _pruned(
            f"Command completions request from {start} to {end} overlaps with pruned offset {pruned_up_to}",
            pruned_up_to,
        )


def check_updates_from(begin_exclusive: int, end: int, pruned_up_to: int) -> None:
    """Updates from before the pruning offset are gone (the in-doubt proof's read).

    digital-asset/canton community/ledger/ledger-api-core/src/main/scala/com/digitalasset/canton/
    platform/store/dao/events/UpdatesStreamReader.scala: `withRangeNotPruned` from
    beginExclusive + 1, as for completions.
    """
    start = begin_exclusive + 1
    if pruned_up_to >= start:
        raise _pruned(f"Updates request from {start} to {end} precedes pruned offset {pruned_up_to}", pruned_up_to)


def _pruned(cause: str, pruned_up_to: int) -> Rejection:
    # ledger-api-core .../error/groups/RequestValidationErrors.scala ParticipantPrunedDataAccessed:
    # InvalidGivenCurrentSystemStateOther (9, FAILED_PRECONDITION, HTTP 400), context earliest_offset
    # (LedgerApiErrors.EarliestOffsetMetadataKey).
    return Rejection(PRUNED_CODE, cause, 9, {"earliest_offset": str(pruned_up_to)}, definite=False)


# digital-asset/canton community/ledger/ledger-api-core/src/main/scala/com/digitalasset/canton/
# ledger/api/validation/ValueValidator.scala `validNumericPattern`: the JSON API hands a Numeric's
# string on unchanged (transcode's JsonCodec), and the Ledger API accepts only this form.
NUMERIC_TEXT = re.compile(r"[+-]?\d{1,38}(\.\d{0,37})?")


def numeric_text(value: Any) -> str:
    """A Daml Numeric's JSON value as the Ledger API reads it, or its INVALID_ARGUMENT."""
    # A JSON number reaches the validator as its printed double ("10.0", "5.0E-7"); close enough.
    shown = repr(float(value)) if isinstance(value, int | float) else value
    if not isinstance(shown, str) or NUMERIC_TEXT.fullmatch(shown) is None:
        raise Rejection(  # RequestValidationErrors.InvalidArgument (ValidationErrors.invalidArgument)
            "INVALID_ARGUMENT",
            f'The submitted request has invalid arguments: Could not read Numeric string "{value}"',
            8,
            definite=False,
        )
    return shown
