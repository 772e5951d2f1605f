"""Every injected fault, seen through the real clients, is classified as canton-apis.md §7.2 says;
and what the ledger really did (committed or not) matches what the classification promises."""

from __future__ import annotations

import socket
from decimal import Decimal

import pytest

from pipeline.canton.errors import INSUFFICIENT_FUNDS, CantonError, ErrorClass
from pipeline.canton.http import Http, make_client
from pipeline.canton.transfers import send_commands
from pipeline.simulator.app import Simulator
from pipeline.simulator.faults import Fault
from tests.canton_fixtures import (  # noqa: F401 - the *_fixture names register fixtures
    ALICE,
    CAROL,
    Canton,
    canton_fixture,
    clock_fixture,
    new_sim,
    open_clients,
    payment,
    sim_fixture,
)

# fault → (classification, code, HTTP status, did the transfer commit?)
SUBMIT_FAULTS = [
    (Fault.TIMEOUT_AFTER_COMMIT, ErrorClass.IN_DOUBT, "REQUEST_TIME_OUT", 504, True),
    (Fault.IN_FLIGHT, ErrorClass.RETRYABLE, "SUBMISSION_ALREADY_IN_FLIGHT", 409, False),
    (Fault.BACKPRESSURE, ErrorClass.RETRYABLE, "PARTICIPANT_BACKPRESSURE", 409, False),
    (Fault.INSUFFICIENT_FUNDS, ErrorClass.FINAL, "DAML_FAILURE", 400, False),
    (
        Fault.INACTIVE_CONTRACTS,
        ErrorClass.RETRYABLE,
        "LOCAL_VERDICT_INACTIVE_CONTRACTS",
        404,
        False,
    ),
    (Fault.CONTRACT_NOT_FOUND, ErrorClass.RETRYABLE, "CONTRACT_NOT_FOUND", 404, False),
    (Fault.PROXY_502, ErrorClass.IN_DOUBT, "HTTP_502", 502, False),
    (Fault.PROXY_503, ErrorClass.IN_DOUBT, "HTTP_503", 503, False),
    (Fault.PROXY_502_AFTER_COMMIT, ErrorClass.IN_DOUBT, "HTTP_502", 502, True),
    (Fault.DROP, ErrorClass.IN_DOUBT, "CONNECTION_LOST", None, False),
    (Fault.DROP_AFTER_COMMIT, ErrorClass.IN_DOUBT, "CONNECTION_LOST", None, True),
]


@pytest.mark.parametrize(
    ("fault", "kind", "code", "status", "committed"),
    SUBMIT_FAULTS,
    ids=[f[0].value for f in SUBMIT_FAULTS],
)
async def test_submission_faults_are_classified(
    canton: Canton, fault: Fault, kind: ErrorClass, code: str, status: int | None, committed: bool
) -> None:
    command = await payment(canton, ALICE, "10", "pay-f")
    before = await canton.ledger.ledger_end()
    canton.sim.inject(fault)
    with pytest.raises(CantonError) as caught:
        await canton.ledger.submit_and_wait(command)
    err = caught.value
    assert (err.kind, err.code, err.status) == (kind, code, status)
    assert len(canton.sim.transfers()) == int(committed)
    completion = await canton.ledger.find_completion(ALICE, "pay-f", begin_exclusive=before)
    assert (completion is not None and completion.accepted) == committed  # what "in doubt" must look up
    assert canton.sim.requests["submit"] == 1  # a submission is never retried by the client


async def test_injected_insufficient_funds_carries_splices_error_id(canton: Canton) -> None:
    canton.sim.inject(Fault.INSUFFICIENT_FUNDS)
    with pytest.raises(CantonError) as caught:
        await canton.ledger.submit_and_wait(await payment(canton, ALICE, "10", "pay-i"))
    assert caught.value.error_id == INSUFFICIENT_FUNDS and caught.value.insufficient_funds
    assert not caught.value.retryable


async def test_real_insufficient_funds_is_final(canton: Canton) -> None:
    ctx = await canton.context.get()
    [amulet] = await canton.ledger.amulets(CAROL)  # 5 CC
    command = send_commands(
        ctx,
        sender=CAROL,
        amount=Decimal(50),
        inputs=[amulet.contract_id],
        description=None,
        command_id="pay-c",
        submission_id="s",
        dedup_seconds=60,
    )
    with pytest.raises(CantonError) as caught:
        await canton.ledger.submit_and_wait(command)
    err = caught.value
    assert (err.kind, err.code, err.status) == (ErrorClass.FINAL, "DAML_FAILURE", 400)
    assert err.error_id == INSUFFICIENT_FUNDS and err.context["requiredAmount"] == "50.0000000000"


async def test_a_spent_input_is_an_inactive_contract_retryable_with_fresh_inputs(
    canton: Canton,
) -> None:
    stale = await payment(canton, ALICE, "70", "pay-2")
    await canton.ledger.submit_and_wait(await payment(canton, ALICE, "70", "pay-1"))  # same inputs
    with pytest.raises(CantonError) as caught:
        await canton.ledger.submit_and_wait(stale)
    assert caught.value.code == "LOCAL_VERDICT_INACTIVE_CONTRACTS"
    assert caught.value.kind is ErrorClass.RETRYABLE and caught.value.stale_context
    assert canton.sim.balance(ALICE) == 30  # only one of the two went through


async def test_a_repeated_command_is_a_duplicate_pointing_at_the_first_acceptance(
    canton: Canton,
) -> None:
    command = await payment(canton, ALICE, "10", "pay-d")
    first = await canton.ledger.submit_and_wait(command)
    with pytest.raises(CantonError) as caught:
        await canton.ledger.submit_and_wait(command)
    err = caught.value
    assert (err.kind, err.code, err.status) == (ErrorClass.DUPLICATE, "DUPLICATE_COMMAND", 409)
    assert err.completion_offset == first.completion_offset
    earlier = await canton.ledger.update_by_offset(err.completion_offset or 0, party=ALICE)
    assert earlier is not None and earlier.update_id == first.update_id
    assert len(canton.sim.transfers()) == 1


async def test_after_a_timeout_the_same_command_id_is_a_duplicate_not_a_second_charge(
    canton: Canton,
) -> None:
    command = await payment(canton, ALICE, "10", "pay-t")
    canton.sim.inject(Fault.TIMEOUT_AFTER_COMMIT)
    with pytest.raises(CantonError):
        await canton.ledger.submit_and_wait(command)
    with pytest.raises(CantonError) as caught:
        await canton.ledger.submit_and_wait(command)
    assert caught.value.kind is ErrorClass.DUPLICATE and len(canton.sim.transfers()) == 1


async def test_a_stale_round_is_retryable_after_a_refresh(canton: Canton) -> None:
    command = await payment(canton, ALICE, "10", "pay-r")
    canton.sim.advance(20 * 60)  # two ticks: the chosen round is archived
    with pytest.raises(CantonError) as caught:
        await canton.ledger.submit_and_wait(command)
    assert caught.value.kind is ErrorClass.RETRYABLE and caught.value.stale_context
    canton.context.invalidate()
    await canton.ledger.submit_and_wait(await payment(canton, ALICE, "10", "pay-r", submission_id="attempt-2"))
    assert [t.command_id for t in canton.sim.transfers()] == ["pay-r"]


async def test_scan_lag_hides_an_update_for_a_while(canton: Canton) -> None:
    done = await canton.ledger.submit_and_wait(await payment(canton, ALICE, "10", "pay-l"))
    canton.sim.inject(Fault.SCAN_LAG, 2)
    assert await canton.scan.update_by_id(done.update_id) is None
    assert await canton.scan.update_by_id(done.update_id) is None
    assert await canton.scan.update_by_id(done.update_id) is not None


async def test_an_injected_401_with_a_static_token_is_final(canton: Canton) -> None:
    canton.sim.inject(Fault.UNAUTHENTICATED, on="ledger-end")
    with pytest.raises(CantonError) as caught:
        await canton.ledger.ledger_end()
    assert (caught.value.kind, caught.value.code, caught.value.status) == (
        ErrorClass.FINAL,
        "UNAUTHENTICATED",
        401,
    )


async def test_reads_ride_out_proxy_errors_and_dropped_connections(canton: Canton) -> None:
    canton.sim.inject(Fault.PROXY_502, on="ledger-end")
    canton.sim.inject(Fault.DROP, on="ledger-end")
    assert await canton.ledger.ledger_end() == canton.sim.ledger.offset
    assert canton.sim.requests["ledger-end"] == 3 and canton.sleeps == [0.2, 0.4]


async def test_fault_rates_are_seeded_so_runs_repeat(clock: object) -> None:
    def run(seed: int) -> list[tuple[str, Fault]]:
        sim = new_sim(seed=seed)
        sim.set_fault_rate(Fault.PROXY_503, 0.5, on="ledger-end")
        for _ in range(20):
            sim.faults.draw("ledger-end")
        return sim.faults.fired

    assert run(3) == run(3) and 3 < len(run(3)) < 17


async def test_many_reads_under_a_fault_rate_still_succeed(sim: Simulator) -> None:
    sim.set_fault_rate(Fault.PROXY_503, 0.3, on="active-contracts")
    async with open_clients(sim) as c:
        for _ in range(10):
            assert sum(h.initial_amount for h in await c.ledger.amulets(ALICE)) == 100
    assert sim.faults.fired  # some requests did fail and were retried


async def test_latency_holds_the_change_id_in_flight(canton: Canton) -> None:
    import asyncio

    command = await payment(canton, ALICE, "10", "pay-lat")
    canton.sim.inject(Fault.LATENCY, delay=0.2)
    first = asyncio.create_task(canton.ledger.submit_and_wait(command))
    await asyncio.sleep(0.05)
    with pytest.raises(CantonError) as caught:
        await canton.ledger.submit_and_wait(command)
    assert caught.value.code == "SUBMISSION_ALREADY_IN_FLIGHT" and caught.value.kind is ErrorClass.RETRYABLE
    assert (await first).update_id == canton.sim.transfers()[0].update_id


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_a_refused_connection_is_retryable_nothing_was_sent() -> None:
    async with make_client(f"http://127.0.0.1:{free_loopback_port()}", 2) as client:
        with pytest.raises(CantonError) as caught:
            await Http(client, "the Ledger API").call("POST", "/v2/commands/submit-and-wait", {})
    assert (caught.value.kind, caught.value.code) == (ErrorClass.RETRYABLE, "UNREACHABLE")
