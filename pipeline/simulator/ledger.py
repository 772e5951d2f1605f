"""The simulator's ledger: contracts, offsets, transactions, completions and deduplication.

Commands are executed by `pipeline/simulator/choices.py` against this state; an accepted
command commits one transaction (archives, creates, a completion), a rejected one raises
`Rejection` and, when it was rejected after sequencing, leaves a failed completion.
Deduplication is by change id (user, actAs set, commandId) within the period the
submitter sent (canton-apis.md §7.1).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pipeline.simulator.clock import Clock
from pipeline.simulator.model import (
    CATEGORY_GRPC,
    CompletionRecord,
    Contract,
    Exercise,
    Rejection,
    RoundInfo,
    Transaction,
    digest,
    iso,
    numeric,
    open_rounds,
    round_contract_id,
    template_matches,
)

ChangeId = tuple[str, frozenset[str], str]
TICK = timedelta(minutes=10)
FIRST_ROUND = 100
AMULET_PRICE = Decimal("0.005")  # USD per CC, as on DevNet
# Splice's holding fee, 1 USD a year at 10-minute rounds (the Canton Coin fee-removal CIP quotes
# "holdingFeeRate of 1 $/year"), kept on each Amulet in CC per round: since that CIP
# (hyperledger-labs/splice PR 1722) it is no longer charged when the Amulet is a transfer input.
HOLDING_FEE_USD = Decimal("0.0000190259")


class SimLedger:
    """State of one simulated participant and of the DSO contracts Scan serves."""

    def __init__(
        self,
        *,
        app_party: str,
        clock: Clock,
        tick: timedelta = TICK,
        max_num_inputs: int = 100,
        default_dedup: timedelta = timedelta(seconds=30),
    ) -> None:
        self.app_party, self.clock, self.tick = app_party, clock, tick
        self.max_num_inputs, self.default_dedup = max_num_inputs, default_dedup
        self.dso_party = "DSO::1220" + digest("dso", app_party)[:64]
        self.synchronizer_id = "global-domain::1220" + digest("sync", app_party)[:64]
        # Mid-tick at start, so the newest open round has been open for a while.
        self.genesis = clock() - FIRST_ROUND * tick - tick / 2
        self.offset = 0
        self.contracts: dict[str, Contract] = {}
        # Indexes, so a query costs what it returns, not the ledger's size (10,000s of payments).
        self._by_party: dict[str, list[Contract]] = defaultdict(list)
        self._by_template: dict[str, list[Contract]] = defaultdict(list)
        self.transactions: list[Transaction] = []
        self._by_update: dict[str, Transaction] = {}
        self._by_offset: dict[int, Transaction] = {}
        self.completions: list[CompletionRecord] = []
        self.accepted: dict[ChangeId, tuple[int, datetime, str | None]] = {}
        self._last_record_time = datetime.min.replace(tzinfo=clock().tzinfo)
        self.amulet_rules = self._genesis_contract(
            "AmuletRules", amulet_rules_payload(self.dso_party, max_num_inputs), [self.dso_party], []
        )

    # --- time and rounds ------------------------------------------------------------------------

    def now(self) -> datetime:
        """The record time of the next update: the clock, but strictly after the previous one."""
        moment = max(self.clock(), self._last_record_time + timedelta(microseconds=1))
        return moment

    def rounds(self) -> list[tuple[RoundInfo, Contract]]:
        """The three open rounds now, as contracts (created on first sight)."""
        return [(info, self._round_contract(info)) for info in open_rounds(self.genesis, self.tick, self.clock())]

    def current_round(self) -> int:
        """The newest round that is open (its opensAt passed)."""
        now = self.clock()
        return max(info.number for info, _ in self.rounds() if info.opens_at <= now)

    def _round_contract(self, info: RoundInfo) -> Contract:
        cid = round_contract_id(info.number)
        if cid not in self.contracts:
            micro = str(int(self.tick / timedelta(microseconds=1)))
            payload = {
                "dso": self.dso_party,
                "round": {"number": str(info.number)},
                "amuletPrice": numeric(AMULET_PRICE),
                "opensAt": iso(info.opens_at),
                "targetClosesAt": iso(info.target_closes_at),
                "issuingFor": {"microseconds": str(int((info.number * self.tick) / timedelta(microseconds=1)))},
                "transferConfigUsd": _transfer_config(self.max_num_inputs),
                "tickDuration": {"microseconds": micro},
                "issuanceConfig": {},
                "trafficPrice": None,
            }
            self._add(Contract(cid, "OpenMiningRound", payload, [self.dso_party], [], info.created_at, 0))
        return self.contracts[cid]

    # --- seeding --------------------------------------------------------------------------------

    def fund(self, party: str, amount: Decimal, *, rounds_ago: int = 0) -> Contract:
        """Give ``party`` one new Amulet (like the DevNet faucet), dated ``rounds_ago`` rounds back."""
        if amount <= 0:
            raise ValueError(f"cannot fund {party} with {amount}")
        self.offset += 1
        created = max(self.current_round() - rounds_ago, 0)
        return self._create_amulet(party, amount, created, self.clock(), self.offset)

    def feature(self, provider: str) -> Contract:
        """A FeaturedAppRight for ``provider`` (signed by the DSO)."""
        return self._genesis_contract(
            "FeaturedAppRight",
            {"dso": self.dso_party, "provider": provider},
            [self.dso_party],
            [provider],
        )

    def add_preapproval(self, receiver: str, provider: str, expires_at: datetime) -> Contract:
        now = self.clock()
        payload = {
            "dso": self.dso_party,
            "receiver": receiver,
            "provider": provider,
            "validFrom": iso(now),
            "lastRenewedAt": iso(now),
            "expiresAt": iso(expires_at),
        }
        return self._genesis_contract("TransferPreapproval", payload, [receiver, provider, self.dso_party], [])

    def _genesis_contract(
        self, template: str, payload: dict[str, Any], signatories: list[str], observers: list[str]
    ) -> Contract:
        self.offset += 1
        contract = self.new_contract(template, payload, signatories, observers)
        contract.created_offset = self.offset
        return contract

    def _create_amulet(self, owner: str, amount: Decimal, round_number: int, at: datetime, offset: int) -> Contract:
        payload = {
            "dso": self.dso_party,
            "owner": owner,
            "amount": {
                "initialAmount": numeric(amount),
                "createdAt": {"number": str(round_number)},
                "ratePerRound": {"rate": numeric(HOLDING_FEE_USD / AMULET_PRICE)},
            },
        }
        contract = self.new_contract("Amulet", payload, [self.dso_party, owner], [])
        contract.created_at, contract.created_offset = at, offset
        return contract

    def new_contract(
        self, template: str, payload: dict[str, Any], signatories: list[str], observers: list[str]
    ) -> Contract:
        """A contract the running command creates; pending until `commit` gives it an offset."""
        cid = "00" + digest(template, self.offset, len(self.contracts), payload)
        contract = Contract(cid, template, payload, signatories, observers, self.clock(), -1)
        self._add(contract)
        return contract

    def _add(self, contract: Contract) -> None:
        self.contracts[contract.contract_id] = contract
        self._by_template[contract.template].append(contract)
        for party in contract.stakeholders:
            self._by_party[party].append(contract)

    def new_amulet(self, owner: str, amount: Decimal, round_number: int) -> Contract:
        """An Amulet to be created by the command being executed (offset set at commit)."""
        return self._create_amulet(owner, amount, round_number, self.now(), -1)

    # --- queries --------------------------------------------------------------------------------

    def active(
        self, template: str | None = None, party: str | None = None, at_offset: int | None = None
    ) -> list[Contract]:
        """Active contracts at ``at_offset`` (default: now) of a template, seen by ``party``."""
        offset = self.offset if at_offset is None else at_offset
        pool: Iterable[Contract]
        if party is not None:
            pool = self._by_party.get(party, ())
        elif template is not None and template in self._by_template:
            pool = self._by_template[template]
        else:
            pool = self.contracts.values()
        return [
            c
            for c in pool
            if c.template != "OpenMiningRound"
            and c.created_offset >= 0
            and c.active_at(offset)
            and (template in (None, c.template) or template_matches(template, c.template))
            and (party is None or party in c.stakeholders)
        ]

    def preapproval_of(self, receiver: str) -> Contract | None:
        """The newest active TransferPreapproval of ``receiver``."""
        found = [c for c in self.active("TransferPreapproval") if c.payload["receiver"] == receiver]
        return max(found, key=lambda c: c.created_offset, default=None)

    def featured_right(self, provider: str) -> Contract | None:
        found = [c for c in self.active("FeaturedAppRight") if c.payload["provider"] == provider]
        return found[0] if found else None

    def balance(self, party: str) -> Decimal:
        return sum(
            (
                Decimal(c.payload["amount"]["initialAmount"])
                for c in self.active("Amulet")
                if c.payload["owner"] == party
            ),
            Decimal(0),
        )

    def balances(self) -> dict[str, Decimal]:
        owners = sorted({c.payload["owner"] for c in self.active("Amulet")})
        return {owner: self.balance(owner) for owner in owners}

    def transaction_at(self, offset: int) -> Transaction | None:
        return self._by_offset.get(offset)

    def transaction(self, update_id: str) -> Transaction | None:
        return self._by_update.get(update_id)

    # --- deduplication, commit, rejection ----------------------------------------------------

    def check_duplicate(self, change: ChangeId, period: dict[str, Any] | None) -> None:
        """DUPLICATE_COMMAND when the change id was accepted within the deduplication period."""
        earlier = self.accepted.get(change)
        if earlier is None:
            return
        offset, when, submission = earlier
        if _within(period, self.default_dedup, offset, when, self.clock()):
            context = {
                "completion_offset": str(offset),
                "accepted": "true",
                "existing_submission_id": submission or "",
                "changeId": f"{change[2]}",
            }
            raise Rejection(
                "DUPLICATE_COMMAND",
                "A command with the given command id has already been successfully processed",
                10,
                context,
            )

    def commit(
        self,
        change: ChangeId,
        submission_id: str | None,
        root: Exercise,
        archived: Iterable[Contract],
        created: Iterable[Contract],
    ) -> Transaction:
        now = self.now()
        self.offset += 1
        self._last_record_time = now
        archived, created = list(archived), list(created)
        for contract in archived:
            contract.archived_offset = self.offset
        for contract in created:
            contract.created_offset, contract.created_at = self.offset, now
        user, act_as, command_id = change
        update_id = "1220" + digest("update", self.offset, command_id)
        tx = Transaction(
            update_id,
            self.offset,
            command_id,
            user,
            sorted(act_as),
            submission_id,
            now,
            root,
            archived,
            created,
        )
        self.transactions.append(tx)
        self._by_update[tx.update_id] = self._by_offset[tx.offset] = tx
        self.completions.append(
            CompletionRecord(
                self.offset,
                command_id,
                user,
                sorted(act_as),
                submission_id,
                now,
                update_id=update_id,
            )
        )
        self.accepted[change] = (self.offset, now, submission_id)
        return tx

    def reject(self, change: ChangeId, submission_id: str | None, rejection: Rejection) -> None:
        """A rejection after sequencing: it takes an offset and shows up as a failed completion."""
        now = self.now()
        self.offset += 1
        self._last_record_time = now
        user, act_as, command_id = change
        status = (
            CATEGORY_GRPC[rejection.category],
            f"{rejection.code}({rejection.category}): {rejection.cause}",
        )
        self.completions.append(
            CompletionRecord(self.offset, command_id, user, sorted(act_as), submission_id, now, status=status)
        )


def _within(period: dict[str, Any] | None, default: timedelta, offset: int, when: datetime, now: datetime) -> bool:
    period = period or {}
    if "DeduplicationOffset" in period:
        return offset > int(period["DeduplicationOffset"].get("value", 0))
    duration = (period.get("DeduplicationDuration") or {}).get("value")
    window = (
        default
        if duration is None
        else timedelta(
            seconds=int(duration.get("seconds", 0)),
            microseconds=int(duration.get("nanos", 0)) // 1000,
        )
    )
    return now - when < window


def amulet_rules_payload(dso: str, max_inputs: int) -> dict[str, Any]:
    """AmuletRules with the config fields billing reads: the preapproval fee and its free base
    duration (splice-amulet AmuletConfig: `transferPreapprovalFee`, 0.00274 USD/day by default,
    `transferPreapprovalBaseDuration`, 90 days, from the Canton Coin fee-removal CIP)."""
    config = {
        "transferConfig": _transfer_config(max_inputs),
        "tickDuration": {"microseconds": str(int(TICK / timedelta(microseconds=1)))},
        "transferPreapprovalFee": "0.0027400000",
        "transferPreapprovalBaseDuration": {"microseconds": str(90 * 86_400_000_000)},
    }
    return {"dso": dso, "configSchedule": {"initialValue": config, "futureValues": []}, "isDevNet": True}


def _transfer_config(max_inputs: int) -> dict[str, Any]:
    zero = {"initialRate": "0.0000000000", "steps": []}
    return {
        "createFee": {"fee": "0.0000000000"},
        "holdingFee": {"rate": numeric(HOLDING_FEE_USD)},
        "transferFee": zero,
        "lockHolderFee": {"fee": "0.0000000000"},
        "extraFeaturedAppRewardAmount": "1.0000000000",
        "maxNumInputs": str(max_inputs),
        "maxNumOutputs": "100",
        "maxNumLockHolders": "50",
    }
