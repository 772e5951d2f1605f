"""The simulator's ledger: parties, Amulet holdings, rounds, preapprovals, transactions.

A small, honest model of what billing touches on Canton: transfers really consume the
sender's Amulets and create the receiver's, commands are deduplicated by (user, actAs,
commandId) within the period the submitter sent, mining rounds open and close on a
clock, and every accepted command leaves a completion and a transaction behind.
Plain data in, plain data (or a `SimRejection`) out; HTTP lives in `sim_app.py`.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

PKG = "a" * 56 + "0c7a11e7"  # the package id our templates pretend to come from
TEMPLATES = {
    "Amulet": f"{PKG}:Splice.Amulet:Amulet",
    "FeaturedAppRight": f"{PKG}:Splice.Amulet:FeaturedAppRight",
    "AmuletRules": f"{PKG}:Splice.AmuletRules:AmuletRules",
    "TransferPreapproval": f"{PKG}:Splice.AmuletRules:TransferPreapproval",
    "OpenMiningRound": f"{PKG}:Splice.Round:OpenMiningRound",
}
INSUFFICIENT_FUNDS = "splice.lfdecentralizedtrust.org/insufficient-funds"


def _hex(*parts: object) -> str:
    return hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()


def iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def template_name(template_id: str) -> str:
    return template_id.rsplit(":", 1)[-1]


@dataclass
class Contract:
    contract_id: str
    template: str  # short name, a key of TEMPLATES
    payload: dict[str, Any]
    created_at: datetime
    signatories: list[str]
    offset: int = 0

    @property
    def template_id(self) -> str:
        return TEMPLATES[self.template]

    @property
    def blob(self) -> str:
        return base64.b64encode(f"{self.template}:{self.contract_id}".encode()).decode()

    def scan_json(self) -> dict[str, Any]:
        return {"template_id": self.template_id, "contract_id": self.contract_id, "payload": self.payload,
                "created_event_blob": self.blob, "created_at": iso(self.created_at)}


@dataclass
class Transaction:
    update_id: str
    offset: int
    command_id: str
    act_as: list[str]
    record_time: datetime
    events: list[dict[str, Any]]  # ledger API `Event` objects (one-key dicts)
    exercised: dict[str, Any]  # what Scan shows: the Send/Create exercise and its effects


@dataclass
class Completion:
    offset: int
    command_id: str
    user_id: str
    act_as: list[str]
    submission_id: str | None
    update_id: str | None
    status: dict[str, Any] | None = None


@dataclass
class SimRejection(Exception):
    """A rejection with the fields of a JsCantonError and its HTTP status."""

    status: int
    code: str
    cause: str
    category: int
    context: dict[str, str] = field(default_factory=dict)
    commit_first: bool = False


@dataclass
class SimLedger:
    app_party: str
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    tick: timedelta = timedelta(minutes=10)
    synchronizer_id: str = "global-domain::1220" + _hex("sync")[:60]
    dso_party: str = "DSO::1220" + _hex("dso")[:60]
    contracts: dict[str, Contract] = field(default_factory=dict)
    transactions: list[Transaction] = field(default_factory=list)
    completions: list[Completion] = field(default_factory=list)
    accepted: dict[tuple[str, frozenset[str], str], tuple[int, datetime]] = field(default_factory=dict)
    offset: int = 0

    def __post_init__(self) -> None:
        self.genesis = self.clock() - 3 * self.tick
        self._ids = itertools.count(1)
        self._by_owner: dict[str, dict[str, Contract]] = {}  # Amulets by owner: ACS reads stay O(own holdings)
        self._by_update: dict[str, Transaction] = {}
        self._add("AmuletRules", {"dso": self.dso_party, "isDevNet": True}, [self.dso_party])

    # -- state -----------------------------------------------------------------------

    def _next_offset(self) -> int:
        self.offset += 1
        return self.offset

    def _add(self, template: str, payload: dict[str, Any], signatories: list[str], cid: str | None = None) -> Contract:
        cid = cid or "00" + _hex(template, next(self._ids), self.offset)
        contract = Contract(cid, template, payload, self.clock(), signatories, self.offset)
        self.contracts[cid] = contract
        if template == "Amulet":
            self._by_owner.setdefault(payload["owner"], {})[cid] = contract
        return contract

    def fund(self, party: str, amount: Decimal) -> Contract:
        """Give ``party`` an Amulet of ``amount`` CC (a faucet tap)."""
        return self._add("Amulet", _amulet(self.dso_party, party, amount, self.round_number()), [self.dso_party, party])

    def feature(self, provider: str) -> Contract:
        return self._add("FeaturedAppRight", {"dso": self.dso_party, "provider": provider}, [self.dso_party])

    def add_preapproval(self, receiver: str, provider: str, expires_at: datetime) -> Contract:
        now = self.clock()
        payload = {"dso": self.dso_party, "receiver": receiver, "provider": provider, "validFrom": iso(now),
                   "lastRenewedAt": iso(now), "expiresAt": iso(expires_at)}
        return self._add("TransferPreapproval", payload, [receiver, provider, self.dso_party])

    def of(self, template: str) -> list[Contract]:
        return [c for c in self.contracts.values() if c.template == template]

    @property
    def amulet_rules(self) -> Contract:
        return self.of("AmuletRules")[0]

    def holdings(self, party: str) -> list[Contract]:
        return list(self._by_owner.get(party, {}).values())

    def balance(self, party: str) -> Decimal:
        return sum((Decimal(c.payload["amount"]["initialAmount"]) for c in self.holdings(party)), Decimal(0))

    def preapproval(self, receiver: str) -> Contract | None:
        found = [c for c in self.of("TransferPreapproval") if c.payload["receiver"] == receiver]
        return found[-1] if found else None

    def featured(self, provider: str) -> Contract | None:
        return next((c for c in self.of("FeaturedAppRight") if c.payload["provider"] == provider), None)

    # -- mining rounds: three open at a time, the newest not usable yet ------------------

    def round_number(self) -> int:
        return int((self.clock() - self.genesis) / self.tick) + 1

    def open_rounds(self) -> list[Contract]:
        latest = self.round_number()
        return [self._round(k) for k in (latest - 1, latest, latest + 1) if k >= 0]

    def _round(self, k: int) -> Contract:
        cid = "00" + _hex("round", k)
        if cid not in self.contracts:
            opens = self.genesis + self.tick * (k - 1)
            payload = {
                "dso": self.dso_party, "round": {"number": str(k)}, "amuletPrice": "0.005",
                "opensAt": iso(opens), "targetClosesAt": iso(opens + 2 * self.tick),
                "issuingFor": {"microseconds": str(int(self.tick.total_seconds() * 1e6) * k)},
                "tickDuration": {"microseconds": str(int(self.tick.total_seconds() * 1e6))},
                "transferConfigUsd": {"maxNumInputs": "100", "maxNumOutputs": "100", "maxNumLockHolders": "50",
                                      "holdingFee": {"rate": "0.0000190259"}},
            }
            self._add("OpenMiningRound", payload, [self.dso_party], cid=cid)
        return self.contracts[cid]

    def round_ttl(self) -> timedelta:
        """Until the next round is created (what Scan's time_to_live means)."""
        return self.genesis + self.tick * self.round_number() - self.clock()

    # -- commands ----------------------------------------------------------------------

    def check_duplicate(self, key: tuple[str, frozenset[str], str], window: timedelta) -> None:
        seen = self.accepted.get(key)
        if seen is not None and self.clock() - seen[1] < window:
            raise SimRejection(409, "DUPLICATE_COMMAND", "A command with the given command id has already been "
                               "successfully processed", 10, {"completion_offset": str(seen[0]), "accepted": "true"})

    def send(self, preapproval_cid: str, arg: dict[str, Any], act_as: list[str]) -> tuple[list, dict]:
        """TransferPreapproval_Send: move Amulet from the sender to the preapproval's receiver."""
        pre = self._active(preapproval_cid, "TransferPreapproval")
        sender, amount = arg["sender"], Decimal(arg["amount"])
        if sender not in act_as:
            raise SimRejection(403, "DAML_AUTHORIZATION_ERROR", f"{sender} is not in actAs", 7)
        if parse_time(pre.payload["expiresAt"]) <= self.clock():
            raise SimRejection(400, "UNHANDLED_EXCEPTION", "Interpretation error: assertion failed: "
                               "TransferPreapproval.expiresAt has passed", 9)
        self._usable_round(arg["context"]["context"]["openMiningRound"])
        self._active(arg["context"]["amuletRules"], "AmuletRules")
        featured = arg["context"]["context"].get("featuredAppRight")
        if featured is not None:
            right = self._active(featured, "FeaturedAppRight")
            if right.payload["provider"] != pre.payload["provider"]:
                raise SimRejection(400, "UNHANDLED_EXCEPTION", "FeaturedAppRight is not owned by the provider", 9)
        inputs = [self._active(i["value"], "Amulet") for i in arg["inputs"]]
        if any(c.payload["owner"] != sender for c in inputs):
            raise SimRejection(400, "DAML_FAILURE", "input amulet not owned by the sender", 9)
        total = sum((Decimal(c.payload["amount"]["initialAmount"]) for c in inputs), Decimal(0))
        if total < amount:
            raise SimRejection(400, "DAML_FAILURE", f"Insufficient funds: need {amount}, inputs hold {total}", 9,
                               {"error_id": INSUFFICIENT_FUNDS, "requiredAmount": str(amount)})
        return self._move(inputs, sender, pre.payload["receiver"], amount, total), {
            "choice": "TransferPreapproval_Send", "contract_id": pre.contract_id, "template": "TransferPreapproval",
            "argument": arg, "acting": [sender],
        }

    def create_preapproval(self, arg: dict[str, Any], act_as: list[str]) -> tuple[list, dict]:
        """AmuletRules_CreateTransferPreapproval (free within 90 days in Splice; free here)."""
        for party in (arg["receiver"], arg["provider"]):
            if party not in act_as:
                raise SimRejection(403, "DAML_AUTHORIZATION_ERROR", f"{party} is not in actAs", 7)
        self._usable_round(arg["context"]["context"]["openMiningRound"])
        if arg.get("expectedDso") not in (None, self.dso_party):
            raise SimRejection(400, "UNHANDLED_EXCEPTION", "expectedDso does not match", 9)
        created = self.add_preapproval(arg["receiver"], arg["provider"], parse_time(arg["expiresAt"]))
        return [("created", created)], {"choice": "AmuletRules_CreateTransferPreapproval",
                                        "contract_id": self.amulet_rules.contract_id, "template": "AmuletRules",
                                        "argument": arg, "acting": [arg["receiver"], arg["provider"]]}

    def _move(self, inputs: list[Contract], sender: str, receiver: str, amount: Decimal, total: Decimal) -> list:
        effects: list[tuple[str, Contract]] = []
        for c in inputs:
            del self.contracts[c.contract_id]
            del self._by_owner[c.payload["owner"]][c.contract_id]
            effects.append(("archived", c))
        effects.append(("created", self.fund(receiver, amount)))
        if total > amount:
            effects.append(("created", self.fund(sender, total - amount)))
        return effects

    def _active(self, cid: str, template: str) -> Contract:
        contract = self.contracts.get(cid)
        if contract is None or contract.template != template:
            raise SimRejection(404, "LOCAL_VERDICT_INACTIVE_CONTRACTS", f"Inactive contracts: {cid}", 11,
                               {"contract_id": cid})
        return contract

    def _usable_round(self, cid: str) -> None:
        if cid not in {c.contract_id for c in self.open_rounds()}:
            raise SimRejection(404, "LOCAL_VERDICT_INACTIVE_CONTRACTS", f"mining round {cid} is archived", 11)
        if parse_time(self.contracts[cid].payload["opensAt"]) > self.clock():
            raise SimRejection(400, "UNHANDLED_EXCEPTION", "assertion failed: openRound.opensAt is in the future", 9)

    def commit(self, command_id: str, user_id: str, act_as: list[str], submission_id: str | None,
               effects: list, exercised: dict[str, Any], dedup_key: tuple[str, frozenset[str], str]) -> Transaction:
        offset = self._next_offset()
        update_id = "1220" + _hex("update", offset, command_id)
        tx = Transaction(update_id, offset, command_id, act_as, self.clock(), [], {**exercised, "effects": effects})
        for kind, contract in effects:
            contract.offset = offset
            tx.events.append(_ledger_event(kind, contract, offset))
        self.transactions.append(tx)
        self._by_update[update_id] = tx
        self.completions.append(Completion(offset, command_id, user_id, act_as, submission_id, update_id))
        self.accepted[dedup_key] = (offset, self.clock())
        return tx

    def reject(self, command_id: str, user_id: str, act_as: list[str], submission_id: str | None,
               error: SimRejection) -> None:
        """A rejected command still leaves a completion (with its status)."""
        offset = self._next_offset()
        status = {"code": 9 if error.category == 9 else 10, "message": f"{error.code}({error.category}): {error.cause}"}
        self.completions.append(Completion(offset, command_id, user_id, act_as, submission_id, None, status))

    def transaction(self, update_id: str | None = None, offset: int | None = None) -> Transaction | None:
        if update_id is not None:
            return self._by_update.get(update_id)
        return next((t for t in reversed(self.transactions) if t.offset == offset), None)


def _amulet(dso: str, owner: str, amount: Decimal, round_number: int) -> dict[str, Any]:
    return {"dso": dso, "owner": owner, "amount": {"initialAmount": f"{amount:.10f}",
                                                   "createdAt": {"number": str(round_number)},
                                                   "ratePerRound": {"rate": "0.0000190259"}}}


def _ledger_event(kind: str, c: Contract, offset: int) -> dict[str, Any]:
    common = {"offset": offset, "nodeId": 0, "contractId": c.contract_id, "templateId": c.template_id,
              "packageName": "splice-amulet", "witnessParties": c.signatories}
    if kind == "archived":
        return {"ArchivedEvent": common}
    return {"CreatedEvent": {**common, "createArgument": c.payload, "createdAt": iso(c.created_at),
                             "representativePackageId": PKG, "acsDelta": True, "signatories": c.signatories,
                             "observers": [], "createdEventBlob": c.blob}}
