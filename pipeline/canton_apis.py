"""The Ledger API and Scan calls billing makes, and the pure builders of their bodies.

Request bodies follow the vendored OpenAPI files exactly (tests validate them): the
`TransferPreapproval_Send` and `AmuletRules_CreateTransferPreapproval` exercises with
`actAs` = the controllers only, an explicit `deduplicationPeriod`, a fresh
`submissionId`, and the disclosed contracts' blobs with their synchronizer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pipeline.canton_http import CantonError, Http

AMULET = "#splice-amulet:Splice.Amulet:Amulet"
PREAPPROVAL = "#splice-amulet:Splice.AmuletRules:TransferPreapproval"
AMULET_RULES = "#splice-amulet:Splice.AmuletRules:AmuletRules"
ROUND_MARGIN = timedelta(seconds=5)


@dataclass(frozen=True)
class ScanContract:
    contract_id: str
    template_id: str
    blob: str
    payload: dict[str, Any]

    @classmethod
    def of(cls, doc: dict[str, Any]) -> ScanContract:
        return cls(doc["contract_id"], doc["template_id"], doc["created_event_blob"], doc.get("payload") or {})

    def disclosed(self, synchronizer: str) -> dict[str, str]:
        return {"templateId": self.template_id, "contractId": self.contract_id, "createdEventBlob": self.blob,
                "synchronizerId": synchronizer}


@dataclass(frozen=True)
class Holding:
    contract_id: str
    amount: Decimal


class LedgerApi:
    def __init__(self, http: Http, user_id: str | None = None) -> None:
        self.http = http
        self.user_id = user_id

    async def ledger_end(self) -> int:
        return int((await self.http.read("GET", "/v2/state/ledger-end")).get("offset", 0))

    async def holdings(self, party: str, at_offset: int, limit: int = 1000) -> list[Holding]:
        body = {"activeAtOffset": at_offset, "eventFormat": {"filtersByParty": {party: {"cumulative": [
            {"identifierFilter": {"TemplateFilter": {"value": {"templateId": AMULET,
                                                                "includeCreatedEventBlob": False}}}}]}},
            "verbose": False}}
        rows = await self.http.read("POST", "/v2/state/active-contracts", body, {"limit": limit})
        out = []
        for row in rows:
            active = (row.get("contractEntry") or {}).get("JsActiveContract")
            if not active:
                continue
            event = active["createdEvent"]
            arg = event["createArgument"]
            if ":Splice.Amulet:Amulet" in event["templateId"] and arg.get("owner") == party:
                out.append(Holding(event["contractId"], Decimal(arg["amount"]["initialAmount"])))
        return out

    async def submit(self, commands: dict[str, Any]) -> dict[str, Any]:
        """submit-and-wait, once: the caller owns retries (the commandId makes them safe)."""
        result: dict[str, Any] = await self.http.call("POST", "/v2/commands/submit-and-wait", commands)
        return result

    async def completions(self, party: str, begin: int, limit: int = 1000) -> list[dict[str, Any]]:
        body: dict[str, Any] = {"parties": [party], "beginExclusive": begin}
        if self.user_id:
            body["userId"] = self.user_id
        rows = await self.http.read("POST", "/v2/commands/completions", body, {"limit": limit,
                                                                              "stream_idle_timeout_ms": 1000})
        return [r["completionResponse"]["Completion"]["value"] for r in rows
                if "Completion" in (r.get("completionResponse") or {})]

    async def update(self, party: str, *, update_id: str | None = None, offset: int | None = None) -> dict[str, Any]:
        fmt = {"includeTransactions": {"eventFormat": {"filtersByParty": {party: {}}, "verbose": True},
                                       "transactionShape": "TRANSACTION_SHAPE_ACS_DELTA"}}
        if update_id is not None:
            doc = await self.http.read("POST", "/v2/updates/update-by-id", {"updateId": update_id, "updateFormat": fmt})
        else:
            doc = await self.http.read("POST", "/v2/updates/update-by-offset", {"offset": offset, "updateFormat": fmt})
        result: dict[str, Any] = doc
        return result


class ScanApi:
    def __init__(self, http: Http) -> None:
        self.http = http

    async def dso(self) -> dict[str, Any]:
        result: dict[str, Any] = await self.http.read("GET", "/v0/dso")
        return result

    async def open_rounds(self) -> tuple[list[ScanContract], int]:
        body = {"cached_open_mining_round_contract_ids": [], "cached_issuing_round_contract_ids": []}
        doc = await self.http.read("POST", "/v0/open-and-issuing-mining-rounds", body)
        rounds = [ScanContract.of(v["contract"]) for v in doc["open_mining_rounds"].values() if v.get("contract")]
        return rounds, int(doc["time_to_live_in_microseconds"])

    async def featured_app_right(self, provider: str) -> ScanContract | None:
        doc = await self.http.read("GET", f"/v0/featured-apps/{provider}")
        right = doc.get("featured_app_right")
        return ScanContract.of(right) if right else None

    async def preapproval(self, receiver: str) -> tuple[ScanContract, str | None] | None:
        try:
            doc = await self.http.read("GET", f"/v0/transfer-preapprovals/by-party/{receiver}")
        except CantonError as err:
            if err.status == 404:
                return None
            raise
        state = doc["transfer_preapproval"]
        return ScanContract.of(state["contract"]), state.get("domain_id")

    async def update(self, update_id: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self.http.call("GET", f"/v2/updates/{update_id}")
        except CantonError as err:
            if err.status == 404:
                return None
            raise
        return result


def choose_round(rounds: list[ScanContract], now: datetime) -> ScanContract | None:
    """The newest round (highest number) that opened at least ROUND_MARGIN ago (Splice's rule)."""
    usable = [r for r in rounds if _time(r.payload["opensAt"]) <= now - ROUND_MARGIN]
    return max(usable, key=lambda r: int(r.payload["round"]["number"]), default=None)


def select_inputs(holdings: list[Holding], amount: Decimal, max_inputs: int) -> list[Holding] | None:
    """Largest first, as few as cover ``amount``; None when even ``max_inputs`` of them cannot."""
    chosen: list[Holding] = []
    total = Decimal(0)
    for holding in sorted(holdings, key=lambda h: h.amount, reverse=True)[:max_inputs]:
        chosen.append(holding)
        total += holding.amount
        if total >= amount:
            return chosen
    return None


def transfer_context(rules: ScanContract, round_: ScanContract, featured: ScanContract | None) -> dict[str, Any]:
    return {"amuletRules": rules.contract_id, "context": {
        "openMiningRound": round_.contract_id, "issuingMiningRounds": [], "validatorRights": [],
        "featuredAppRight": featured.contract_id if featured else None}}


def commands_body(exercise: dict[str, Any], *, act_as: list[str], command_id: str, submission_id: str,
                  dedup_seconds: int, synchronizer: str, disclosed: list[dict[str, str]],
                  user_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "commands": [{"ExerciseCommand": exercise}], "commandId": command_id, "actAs": act_as, "readAs": [],
        "submissionId": submission_id,
        "deduplicationPeriod": {"DeduplicationDuration": {"value": {"seconds": dedup_seconds, "nanos": 0}}},
        "synchronizerId": synchronizer, "disclosedContracts": disclosed,
    }
    if user_id:
        body["userId"] = user_id
    return body


def send_exercise(preapproval_cid: str, context: dict[str, Any], inputs: list[str], amount: Decimal,
                  sender: str, description: str) -> dict[str, Any]:
    return {"templateId": PREAPPROVAL, "contractId": preapproval_cid, "choice": "TransferPreapproval_Send",
            "choiceArgument": {"context": context, "inputs": [{"tag": "InputAmulet", "value": i} for i in inputs],
                               "amount": format(amount, "f"), "sender": sender, "description": description}}


def create_preapproval_exercise(rules_cid: str, context: dict[str, Any], inputs: list[str], party: str,
                                expires_at: datetime, dso: str) -> dict[str, Any]:
    return {"templateId": AMULET_RULES, "contractId": rules_cid, "choice": "AmuletRules_CreateTransferPreapproval",
            "choiceArgument": {"context": context, "inputs": [{"tag": "InputAmulet", "value": i} for i in inputs],
                               "receiver": party, "provider": party,
                               "expiresAt": expires_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "expectedDso": dso}}


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
