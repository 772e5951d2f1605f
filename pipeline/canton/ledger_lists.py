"""The JSON Ledger API's HTTP lists, read within the node's element limit (docs/canton-facts.md).

A participant answers at most ``http-list-max-elements-limit`` elements per HTTP list (200
unless its operator changed it). Asked for more, or asked without ``limit``, it answers 413
JSON_API_MAXIMUM_LIST_ELEMENTS_NUMBER_REACHED and no element at all; a ``limit`` at or below
its own returns up to that many without error (digital-asset/canton
.../ledger-json-api/.../http/json/v2/Endpoints.scala, `asList`). So every list request asks for
``limit`` = a page of `LIST_PAGE`, and the caller pages on (the ACS by its
``streamContinuationToken``, completions by offset). A 413 then only means the node is set
below 200: the page shrinks to the limit its cause names (else halves) and the same page is
asked again. A 413 changed nothing on the ledger: it is never a payment attempt nor a failure.

Why HTTP pages rather than the WebSocket variants of asyncapi.yaml, which have no element
limit: the ACS HTTP list honours ``streamContinuationToken``, so pages read a snapshot of any
size, each request bounded in elements and time; and every page goes through the same client
as every other call (bearer token, retries, timeouts, error classification, proxies), where a
WebSocket needs an Upgrade through the node's proxy, another auth form and in-band errors.
`/v2/state/active-contracts-page` is a GET carrying a body in release line 3.5, which proxies
may drop.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from pipeline.canton.errors import LIST_LIMIT, CantonError, ErrorClass
from pipeline.canton.http import Http

logger = logging.getLogger(__name__)

LIST_PAGE = 200  # JsonApiConfig.scala DefaultHttpListMaxElementsLimit: fits every node left at the default
MAX_SHRINKS = 8  # 200 halved 8 times is 1: enough for any limit a node can have
NODE_LIMIT = re.compile(r"node limit \((\d+)\)")  # JsonApiErrors.MaximumNumberOfElements' cause


class PageSize:
    """How many elements one list request asks for: `LIST_PAGE` until a node allows fewer."""

    def __init__(self, size: int = LIST_PAGE) -> None:
        if size < 1:
            raise ValueError(f"a page holds at least one element, not {size}")
        self.size = size

    def shrink(self, err: CantonError, asked: int) -> bool:
        """After ``err`` answered a page of ``asked``: True when it was the node's list limit
        and pages are now smaller (the limit the node named, else half)."""
        if err.code != LIST_LIMIT or asked <= 1:
            return False
        named = NODE_LIMIT.search(err.cause)
        limit = int(named.group(1)) if named else 0
        self.size = min(self.size, limit if 0 < limit < asked else asked // 2)
        return True


async def read_list(
    http: Http,
    path: str,
    body: Any,
    *,
    pages: PageSize,
    into: Any,
    limit: int | None = None,
    params: Mapping[str, Any] | None = None,
) -> Any:
    """One page of the HTTP list at ``path``: at most ``limit`` (and at most a page) elements."""
    for _ in range(MAX_SHRINKS):
        size = min(limit or pages.size, pages.size)
        try:
            return await http.read("POST", path, body, {**(params or {}), "limit": size}, into=into)
        except CantonError as err:
            if not pages.shrink(err, size):
                raise
            logger.warning(
                "the participant allows fewer list elements; asking smaller pages",
                extra={"path": path, "asked": size, "page_size": pages.size, "cause": err.cause},
            )
    raise CantonError(
        ErrorClass.RETRYABLE,
        f"{http.name} refused every page of {path} down to {pages.size} element(s) as over its "
        "list limit; ask its operator about http-list-max-elements-limit",
        413,
        LIST_LIMIT,
    )
