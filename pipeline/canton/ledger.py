"""Typed client of the JSON Ledger API v2 calls billing makes (canton-apis.md §6).

Reads (ledger end, active contracts, completions, update lookups) are retried by `Http`;
`submit_and_wait` is sent exactly once: whether to try again is the processor's decision,
made with the commandId in hand. Lists are paged within the node's element limit
(`pipeline/canton/ledger_lists.py`) and every paging loop is bounded.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing

import msgspec

from pipeline.canton.amulet_reads import Holding, read_holding
from pipeline.canton.errors import PRUNED, CantonError, ErrorClass
from pipeline.canton.http import Http
from pipeline.canton.ledger_lists import LIST_PAGE, PageSize, read_list
from pipeline.canton.read_types import (
    CreatedEvent,
    GetActiveContractsRequest,
    GetLedgerEndResponse,
    GetUpdateByIdRequest,
    GetUpdateByOffsetRequest,
    GetUpdatesRequest,
    JsGetActiveContractsResponse,
    JsGetUpdateResponse,
    JsGetUpdatesResponse,
    JsTransaction,
    template_filter,
    transaction_format,
)
from pipeline.canton.splice_types import AMULET
from pipeline.canton.types import (
    Completion1,
    CompletionStreamRequest,
    CompletionStreamResponse,
    JsCommands,
    SubmitAndWaitResponse,
)

PAGE_SIZE = LIST_PAGE
MAX_PAGES = 200
COMPLETION_IDLE_MS = 500  # the HTTP list of an open-ended stream returns after this much silence
NOT_FOUND_CODES = frozenset({"UPDATE_NOT_FOUND", "TRANSACTION_NOT_FOUND"})


def new_submission_id() -> str:
    """A fresh submissionId for one attempt (commandIds, in contrast, are derived, never random)."""
    return str(uuid.uuid4())


class CompletionsPage(msgspec.Struct, frozen=True, kw_only=True):
    """The completions of one list request, read after offset ``begin_exclusive``."""

    completions: list[Completion1]
    begin_exclusive: int
    last_offset: int  # where the next page starts (completions and checkpoints both move it)
    items: int
    #: The participant pruned (begin_exclusive, last_offset]: a stretch nobody can read any more.
    pruned: bool = False

    @property
    def quiet(self) -> bool:
        """The page moved no further: the stream had nothing more after ``begin_exclusive``."""
        return self.last_offset <= self.begin_exclusive


class LedgerApi:
    """The participant's JSON Ledger API v2, for one ledger user."""

    def __init__(
        self,
        http: Http,
        *,
        user_id: str | None = None,
        page_size: int = PAGE_SIZE,
        max_pages: int = MAX_PAGES,
    ) -> None:
        self.http, self.user_id = http, user_id
        self.pages, self.max_pages = PageSize(page_size), max_pages

    @property
    def page_size(self) -> int:
        """Elements per list request (smaller once a node said its limit is lower)."""
        return self.pages.size

    async def ledger_end(self) -> int:
        """`GET /v2/state/ledger-end`: the offset of the latest update (0 on an empty ledger)."""
        doc = await self.http.read("GET", "/v2/state/ledger-end", into=GetLedgerEndResponse)
        return int(doc.offset)

    async def active_contracts(
        self,
        party: str | Sequence[str],
        template_id: str,
        *,
        at_offset: int,
        include_blob: bool = False,
    ) -> list[CreatedEvent]:
        """`POST /v2/state/active-contracts` for one template, page by page (continuation token).

        ``party`` may be several parties: one request then reads all their contracts.
        """
        events: list[CreatedEvent] = []
        token: str | None = None
        for _ in range(self.max_pages):
            body = GetActiveContractsRequest(
                active_at_offset=at_offset,
                stream_continuation_token=token,
                event_format=template_filter(party, template_id, include_blob=include_blob),
            )
            asked = self.page_size
            page: list[JsGetActiveContractsResponse] = await read_list(
                self.http,
                "/v2/state/active-contracts",
                body,
                pages=self.pages,
                into=list[JsGetActiveContractsResponse],
            )
            events.extend(
                e.contract_entry.js_active_contract.created_event
                for e in page
                if e.contract_entry and e.contract_entry.js_active_contract
            )
            token = page[-1].stream_continuation_token if page else None
            if len(page) < min(asked, self.page_size) or not token:
                return events
        raise CantonError(
            ErrorClass.FINAL,
            f"more than {self.max_pages * self.page_size} {template_id} contracts for {party}",
            code="TOO_MANY_CONTRACTS",
        )

    async def amulets(self, party: str, *, at_offset: int | None = None) -> list[Holding]:
        """The Amulets ``party`` owns at ``at_offset`` (default: the ledger end)."""
        return (await self.amulets_of([party], at_offset=at_offset))[party]

    async def amulets_of(self, parties: Sequence[str], *, at_offset: int | None = None) -> dict[str, list[Holding]]:
        """The Amulets of each of ``parties`` at ``at_offset``, read in one (paged) request."""
        offset = await self.ledger_end() if at_offset is None else at_offset
        try:
            events = await self.active_contracts(parties, AMULET, at_offset=offset)
        except CantonError as err:
            if err.code != PRUNED:
                raise
            # The participant pruned past ``offset`` (even between two pages): the ledger end
            # is later still, and holdings are wanted at or after an offset, never before it.
            events = await self.active_contracts(parties, AMULET, at_offset=await self.ledger_end())
        owned: dict[str, list[Holding]] = {p: [] for p in parties}
        for event in events:
            found = read_holding(event)
            if found is not None and found[0] in owned:
                owned[found[0]].append(found[1])
        return owned

    async def submit_and_wait(self, commands: JsCommands) -> SubmitAndWaitResponse:
        """`POST /v2/commands/submit-and-wait`, once. Raises a classified `CantonError`."""
        result: SubmitAndWaitResponse = await self.http.call(
            "POST", "/v2/commands/submit-and-wait", commands, into=SubmitAndWaitResponse
        )
        return result

    async def completions(
        self, party: str | list[str], *, begin_exclusive: int, limit: int | None = None
    ) -> CompletionsPage:
        """One page of `POST /v2/commands/completions` after ``begin_exclusive``, for the
        commands acting as ``party`` (or any of a list of parties)."""
        parties = [party] if isinstance(party, str) else party
        body = CompletionStreamRequest(parties=parties, user_id=self.user_id, begin_exclusive=begin_exclusive)
        rows: list[CompletionStreamResponse] = await read_list(
            self.http,
            "/v2/commands/completions",
            body,
            pages=self.pages,
            limit=limit,
            params={"stream_idle_timeout_ms": COMPLETION_IDLE_MS},
            into=list[CompletionStreamResponse],
        )
        found, last = [], begin_exclusive
        for row in rows:
            response = row.completion_response
            if response and response.completion:
                found.append(response.completion.value)
                last = max(last, response.completion.value.offset)
            elif response and response.offset_checkpoint:
                last = max(last, response.offset_checkpoint.value.offset)
        return CompletionsPage(completions=found, begin_exclusive=begin_exclusive, last_offset=last, items=len(rows))

    async def completion_pages(
        self, party: str | list[str], *, begin_exclusive: int, end: int | None = None, past_pruned: bool = False
    ) -> AsyncGenerator[CompletionsPage, None]:
        """`completions` page after page, each from where the last ended, at most `max_pages`: until
        a page is `CompletionsPage.quiet` or the read reaches ``end``.

        ``past_pruned``: where the participant pruned the completions asked for, a `pruned` page
        stands for what is gone and the read goes on from the pruning offset; without it, that
        read raises (PARTICIPANT_PRUNED_DATA_ACCESSED).
        """
        begin = begin_exclusive
        for _ in range(self.max_pages):
            if end is not None and begin >= end:
                return
            try:
                page = await self.completions(party, begin_exclusive=begin)
            except CantonError as err:
                pruned = err.pruned_up_to
                if not past_pruned or pruned is None or pruned <= begin:
                    raise
                page = CompletionsPage(completions=[], begin_exclusive=begin, last_offset=pruned, items=0, pruned=True)
            yield page
            if page.quiet:
                return
            begin = page.last_offset

    async def find_completion(self, party: str, command_id: str, *, begin_exclusive: int) -> Completion1 | None:
        """The completion of ``command_id`` after ``begin_exclusive`` that says most: an
        acceptance wherever it is (an earlier attempt's rejection must not hide it), else the
        latest rejection, else None.

        None does not mean "not committed": the completions list ends at an idle timeout, so
        an answer may be partial; `find_transaction` proves it either way.
        """
        rejected = None
        async with aclosing(self.completion_pages(party, begin_exclusive=begin_exclusive)) as pages:
            async for page in pages:
                for completion in page.completions:
                    if completion.command_id != command_id:
                        continue
                    if completion.accepted:
                        return completion
                    rejected = completion
                if page.items < self.page_size:  # a short page: the stream went quiet
                    return rejected
        return rejected

    async def find_transaction(
        self, party: str, command_id: str, *, begin_exclusive: int, end_inclusive: int
    ) -> JsTransaction | None:
        """The transaction of ``command_id`` among ``party``'s in (begin, end], or None: it was
        not accepted there. `POST /v2/updates` with ``endInclusive`` is a bounded stream: the
        node answers all of it (no idle timeout), so None is a proof, page after page.

        Raises:
            CantonError: the read failed (PARTICIPANT_PRUNED_DATA_ACCESSED when ``begin`` is
                pruned; TOO_MANY_UPDATES past `max_pages` pages).
        """
        begin = begin_exclusive
        for _ in range(self.max_pages):
            if begin >= end_inclusive:
                return None
            body = GetUpdatesRequest(
                begin_exclusive=begin, end_inclusive=end_inclusive, update_format=transaction_format(party)
            )
            rows: list[JsGetUpdatesResponse] = await read_list(
                self.http, "/v2/updates", body, pages=self.pages, into=list[JsGetUpdatesResponse]
            )
            for row in rows:
                tx = row.update.transaction.value if row.update and row.update.transaction else None
                if tx is not None and tx.command_id == command_id:
                    return tx
                begin = max(begin, tx.offset if tx is not None else _checkpoint_offset(row, begin))
            if len(rows) < self.page_size:  # the size that answered (it may have shrunk)
                return None
        raise CantonError(
            ErrorClass.FINAL,
            f"more than {self.max_pages * self.page_size} transactions of {party} to search for {command_id}",
            code="TOO_MANY_UPDATES",
        )

    async def update_by_id(self, update_id: str, *, party: str, effects: bool = False) -> JsTransaction | None:
        """`POST /v2/updates/update-by-id` as ``party`` sees it; None if not found (or hidden)."""
        body = GetUpdateByIdRequest(update_id=update_id, update_format=transaction_format(party, effects=effects))
        return await self._update("/v2/updates/update-by-id", body)

    async def update_by_offset(self, offset: int, *, party: str, effects: bool = False) -> JsTransaction | None:
        """`POST /v2/updates/update-by-offset` (after DUPLICATE_COMMAND's completion_offset)."""
        body = GetUpdateByOffsetRequest(offset=offset, update_format=transaction_format(party, effects=effects))
        return await self._update("/v2/updates/update-by-offset", body)

    async def _update(self, path: str, body: GetUpdateByIdRequest | GetUpdateByOffsetRequest) -> JsTransaction | None:
        try:
            doc: JsGetUpdateResponse = await self.http.read("POST", path, body, into=JsGetUpdateResponse)
        except CantonError as err:
            if err.code in NOT_FOUND_CODES or err.status == 404:
                return None
            raise
        return doc.update.transaction.value if doc.update and doc.update.transaction else None


def _checkpoint_offset(row: JsGetUpdatesResponse, default: int) -> int:
    checkpoint = row.update.offset_checkpoint if row.update else None
    return checkpoint.value.offset if checkpoint is not None else default
