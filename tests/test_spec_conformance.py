"""Every request the product's payment flow sends (processor + adapter), and every answer the
simulator gives it, validates against the vendored OpenAPI files (openapi-core), recorded on
the wire between the two. The client-level calls are covered by tests/test_canton_conformance.py.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import msgspec
from openapi_core import OpenAPI

from pipeline.canton.port import CompletionFound
from pipeline.log.embedded import EmbeddedLog
from pipeline.processor.retry import RetryPolicy
from pipeline.processor.runner import Processor
from tests.canton_fixtures import specs_fixture  # noqa: F401 - registers the fixture
from tests.canton_sim import APP, USERS, adapter, simulator
from tests.test_canton_conformance import Recording, check
from tests.test_end_to_end import request


def _exercise_everything(tmp_path: Path) -> Recording:
    sim = simulator()
    sim.inject("timeout_after_commit")  # so completions and update-by-offset are used too
    sim.inject("insufficient_funds")
    recording = Recording(sim)

    async def go() -> None:
        log = EmbeddedLog.open(tmp_path / "log", sync=False)
        reqs = [request(p, i) for p in USERS for i in range(2)]
        await log.append_batch(reqs)
        async with adapter(sim, transport=recording, dedup_seconds=3600) as port:
            proc = Processor(
                log,
                port,
                clock=lambda: datetime.now(UTC),
                verify_timeout=0.2,
                policy=RetryPolicy(base_delay=0.01, max_delay=0.02),
            )
            ids = {r.payment_id for r in reqs}
            await asyncio.wait_for(proc.run(ids), 30)
            first = sim.transfers()[0]
            assert await port.update_at(first.offset, APP) == first.update_id  # update-by-offset
            proof = await port.prove_outcome(party=first.sender, command_id=first.command_id, begin_offset=0)
            assert isinstance(proof, CompletionFound) and proof.update_id == first.update_id  # /v2/updates
        await log.close()

    asyncio.run(go())
    return recording


def test_requests_and_responses_match_the_specs(tmp_path: Path, specs: dict[str, OpenAPI]) -> None:
    recording = _exercise_everything(tmp_path)
    seen = set()
    for exchange in recording.exchanges:
        check(specs, exchange)
        sent = exchange[0]
        seen.add(sent.url.path)
    paths = set(seen)
    acs = [
        msgspec.json.decode(e[0].content) for e in recording.exchanges if e[0].url.path == "/v2/state/active-contracts"
    ]
    assert any(len(body["eventFormat"]["filtersByParty"]) > 1 for body in acs), "no batched holdings read"
    for needed in (
        "/v2/state/ledger-end",
        "/v2/state/active-contracts",
        "/v2/commands/submit-and-wait",
        "/v2/commands/completions",
        "/v2/updates/update-by-offset",
        "/api/scan/v0/dso",
        "/api/scan/v0/open-and-issuing-mining-rounds",
        "/api/scan/v0/transfer-preapprovals",
        "/api/scan/v0/featured-apps",
        "/api/scan/v2/updates/",
    ):
        assert any(p.startswith(needed) for p in paths), f"{needed} was never exercised: {sorted(paths)}"
    assert "/v2/updates" in paths  # the bounded updates list of the in-doubt proof
