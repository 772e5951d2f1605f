"""A bug in a payment step stops the processor loudly, with nothing more submitted; a second
processor over the same log finishes the payment with exactly one transfer on the simulator.
Classified failures (CantonError, timeouts) are still retried, never fatal."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Collection
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from commands.cli.main import stopped_line
from pipeline.canton.errors import CantonError, ErrorClass
from pipeline.errors import ProcessorStopped, StoreUnavailable
from pipeline.events import Recorded
from pipeline.ids import command_id
from pipeline.log.embedded import EmbeddedLog
from pipeline.processor.retry import RetryPolicy
from pipeline.processor.runner import Processor
from tests.canton_sim import USERS, adapter, simulator
from tests.fakes import FaultAt
from tests.test_end_to_end import request

PARTIES = list(USERS)
FAST = RetryPolicy(max_attempts=8, base_delay=0.01, max_delay=0.05, horizon=120)
REQ, SUB, CONF = "PaymentRequested", "PaymentSubmitted", "PaymentConfirmed"

#: step -> (the bug, the log when it stopped, transfers by then, the log once a restart settled)
CASES: dict[str, tuple[BaseException, list[str], int, list[str]]] = {
    "prepare": (RuntimeError("boom in prepare"), [REQ], 0, [REQ, SUB, CONF]),
    # recorded as submitted, never sent: the restart looks it up, finds nothing, submits (attempt 2)
    "submit": (KeyError("party"), [REQ, SUB], 0, [REQ, SUB, SUB, CONF]),
    # sent and committed, the answer lost: the restart finds it on the ledger, submits nothing
    "after_submit": (RuntimeError("answer lost"), [REQ, SUB], 1, [REQ, SUB, CONF]),
    "verify": (KeyError("update"), [REQ, SUB], 1, [REQ, SUB, CONF]),
}


async def run(log: Any, port: Any, ids: Collection[str]) -> Processor:
    proc = Processor(log, port, clock=lambda: datetime.now(UTC), policy=FAST, verify_timeout=0.3)
    await asyncio.wait_for(proc.run(ids), timeout=30)
    return proc


async def kinds(log: EmbeddedLog) -> list[str]:
    return [type(r.event).__name__ async for r in log.read()]


def processor_records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "pipeline.processor.runner" and r.levelno == level]


@pytest.mark.parametrize("step", list(CASES))
async def test_a_bug_stops_the_processor_and_a_restart_charges_exactly_once(
    tmp_path: Path, step: str, caplog: pytest.LogCaptureFixture
) -> None:
    error, stopped_log, sent, settled_log = CASES[step]
    caplog.set_level(logging.DEBUG, logger="pipeline.processor.runner")
    sim, r = simulator(), request(PARTIES[0], 0)
    log = EmbeddedLog.open(tmp_path / "log", sync=False)
    await log.append(r)
    async with adapter(sim) as port:
        with pytest.raises(ProcessorStopped) as stopped:
            await run(log, FaultAt(port, step, error), {r.payment_id})
    assert stopped.value.__cause__ is error and stopped.value.bug
    assert stopped.value.payment_id == r.payment_id and type(error).__name__ in str(stopped.value)
    assert await kinds(log) == stopped_log
    assert len(sim.transfers()) == sent and sim.requests["submit"] == sent
    (line,) = processor_records(caplog, logging.ERROR)  # one error line, without the traceback
    # payment_id and error_type are the log call's extra= fields: attributes LogRecord does not declare
    logged = (line.payment_id, line.error_type, line.exc_info)  # type: ignore[attr-defined]
    assert logged == (r.payment_id, type(error).__name__, None)
    assert "tests/fakes.py" in line.at  # type: ignore[attr-defined]
    assert [d.exc_info[1] for d in processor_records(caplog, logging.DEBUG) if d.exc_info] == [error]
    await log.close()

    again = EmbeddedLog.open(tmp_path / "log", sync=False)
    async with adapter(sim) as port:
        await run(again, port, {r.payment_id})
    assert await kinds(again) == settled_log
    assert [t.command_id for t in sim.transfers()] == [command_id(r.payment_id)]
    assert sim.requests["submit"] == 1  # one submission reached the ledger, whatever step failed
    await again.close()


async def test_a_bug_in_one_payment_stops_the_others_and_the_restart_settles_all(tmp_path: Path) -> None:
    sim = simulator()
    reqs = [request(p, i) for p in PARTIES for i in range(2)]
    log = EmbeddedLog.open(tmp_path / "log", sync=False)
    await log.append_batch(reqs)
    async with adapter(sim) as port:
        with pytest.raises(ProcessorStopped):
            await run(log, FaultAt(port, "after_submit", RuntimeError("answer lost")), {r.payment_id for r in reqs})
    await log.close()
    again = EmbeddedLog.open(tmp_path / "log", sync=False)
    async with adapter(sim) as port:
        proc = await run(again, port, {r.payment_id for r in reqs})
    assert sorted(t.command_id for t in sim.transfers()) == sorted(command_id(r.payment_id) for r in reqs)
    states = [proc.book.get(r.payment_id) for r in reqs]
    assert all(s is not None and s.status == "confirmed" for s in states)
    await again.close()


@pytest.mark.parametrize(
    "error",
    [
        CantonError(ErrorClass.IN_DOUBT, "the Ledger API did not answer", code="CONNECTION_LOST"),
        CantonError(ErrorClass.RETRYABLE, "the Ledger API is unreachable", code="UNREACHABLE"),
        TimeoutError(),
    ],
    ids=["in_doubt", "not_sent", "timeout"],
)
async def test_classified_failures_of_a_step_are_retried_not_fatal(
    tmp_path: Path, error: BaseException, caplog: pytest.LogCaptureFixture
) -> None:
    sim, r = simulator(), request(PARTIES[0], 0)
    sim.inject("timeout_after_commit")  # the first submission is in doubt: the lookup is what fails
    log = EmbeddedLog.open(tmp_path / "log", sync=False)
    await log.append(r)
    async with adapter(sim) as port:
        proc = await run(log, FaultAt(port, "find_completion", error), {r.payment_id})
    assert (state := proc.book.get(r.payment_id)) is not None and state.status == "confirmed"
    assert [t.command_id for t in sim.transfers()] == [command_id(r.payment_id)]
    assert await kinds(log) == [REQ, SUB, CONF]  # looked up again, never submitted again
    (warning,) = [w for w in processor_records(caplog, logging.WARNING) if "trying again" in w.getMessage()]
    assert warning.exc_info is None and warning.payment_id == r.payment_id  # type: ignore[attr-defined]
    await log.close()


class FollowFails:
    """The embedded log, except that following it fails (a store that went away)."""

    def __init__(self, log: EmbeddedLog) -> None:
        self.log = log

    def __getattr__(self, name: str) -> Any:
        return getattr(self.log, name)

    async def follow(self, start: int = 0) -> AsyncIterator[Recorded]:
        raise StoreUnavailable("the store at /data went away")
        yield  # an async generator, like the real one


async def test_a_failing_log_follower_stops_the_processor(tmp_path: Path) -> None:
    sim, r = simulator(), request(PARTIES[0], 0)
    log = EmbeddedLog.open(tmp_path / "log", sync=False)
    await log.append(r)
    async with adapter(sim) as port:
        with pytest.raises(ProcessorStopped) as stopped:
            await run(FollowFails(log), port, {r.payment_id})
    assert stopped.value.payment_id is None and not stopped.value.bug
    assert "following the event log: StoreUnavailable: the store at /data went away" in str(stopped.value)
    await log.close()


def test_the_cli_line_says_what_failed_and_what_to_do() -> None:
    bug = stopped_line(ProcessorStopped(KeyError("party"), "pay-1"))
    assert bug.startswith("processing stopped at payment pay-1: unexpected KeyError: 'party'. This is a bug")
    store = stopped_line(ProcessorStopped(StoreUnavailable("no space left on /data")))
    assert "Fix the cause" in store and "bug" not in store
    assert all("\n" not in line and "looked up on the ledger" in line for line in (bug, store))
