"""The simulator's ledger: contracts, offsets, transactions and completions.

Commands are executed by `pipeline/simulator/choices.py` against this state; an accepted
command commits one transaction (archives, creates, a completion), a rejected one raises
`Rejection` and, when it was rejected after sequencing, leaves a failed completion. An
accepted change id is remembered for `deduplication.py`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pipeline.simulator.amulet_config import (
    AMULET_PRICE,
    HOLDING_FEE_USD,
    TICK,
    amulet_rules_payload,
    round_payload,
)
from pipeline.simulator.clock import Clock
from pipeline.simulator.deduplication import Accepted, ChangeId, check_duplicate
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

FIRST_ROUND = 100


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
        self.accepted: dict[ChangeId, Accepted] = {}
        self._last_record_time = datetime.min.replace(tzinfo=clock().tzinfo)
        self.amulet_rules = self._genesis_contract(
            "AmuletRules", amulet_rules_payload(self.dso_party, max_num_inputs), [self.dso_party], []
        )

    # --- time and rounds ------------------------------------------------------------------------

    def now(self) -> datetime:
        """The record time of the next update: the clock, but strictly after the previous one."""
        return max(self.clock(), self._last_record_time + timedelta(microseconds=1))

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
            payload = round_payload(self.dso_party, info, self.tick, self.max_num_inputs)
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
            and (template is None or template == c.template or template_matches(template, c.template))
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
        if earlier is not None:
            check_duplicate(change, earlier, period, self.default_dedup, self.clock())

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
