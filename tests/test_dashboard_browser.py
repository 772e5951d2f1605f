"""The dashboard in a real headless browser: Debian's Chromium, driven by Playwright, one launch.

After a demo-like run, `billing dashboard` serves the page; the browser signs in with the
printed one-time link, the tiles must show what `billing metrics --json` prints, and a
record appended to the log must reach the live audit feed. The screenshot is saved in the
test's folder, and also to $DASHBOARD_SCREENSHOT when set (how docs/dashboard.png is made):
never into the repository by default, so a test run leaves the work tree clean.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.asgi_server import free_port
from pipeline.errors import StoreBusy
from pipeline.events import PaymentFailed
from pipeline.log.embedded import EmbeddedLog
from tests.dashboard_state import PARTIES, make_state
from tests.processes import BILLING, ROOT, billing, clean_env

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# as the machine notes say: without the background-networking flags Chromium keeps dialling out
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not Path(CHROMIUM).is_file():
    pytest.skip(
        f"no Chromium at {CHROMIUM}: install Debian's package (`apt-get install -y chromium`; .ci/run does "
        "it when apt-get may)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="Playwright's Python package is missing: "
    "pip install -e '.[test]' (never `playwright install`: we use Debian's Chromium)",
)


@pytest.fixture
def dashboard(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """`billing dashboard` over a demo-like state; yields the state dir and the printed one-time link."""
    state = make_state(tmp_path / "state")
    env = clean_env(ROCKSDB_PATH=str(state), BILLING_DATA_DIR=str(ROOT / "data"))
    proc = subprocess.Popen(
        [BILLING, "dashboard", "--port", str(free_port())],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        if not first.startswith("dashboard: http://127.0.0.1:"):
            proc.kill()
            raise AssertionError(f"the dashboard did not start: {first}{proc.communicate()[1]}")
        yield state, first.removeprefix("dashboard: ").strip()
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def append_failure(state: Path) -> int:
    """A final failure appended as the daemon would (retrying while the dashboard briefly holds the lock)."""
    event = PaymentFailed(
        payment_id="live-failure",
        at=datetime.now(UTC),
        party=PARTIES["dave"],
        plan="verifier",
        amount=Decimal(1),
        attempt=1,
        code="INSUFFICIENT_FUNDS",
        message="appended during the test",
        retryable=False,
        final=True,
    )

    async def append() -> int:
        for _ in range(50):
            try:
                log = EmbeddedLog.open(state / "log")
            except StoreBusy:
                await asyncio.sleep(0.1)
                continue
            try:
                return await log.append(event)
            finally:
                await log.close()
        raise AssertionError("the log stayed locked for 5 s")

    return asyncio.run(append())


def test_the_page_shows_the_metrics_and_the_live_feed_in_chromium(dashboard: tuple[Path, str], tmp_path: Path) -> None:
    state, link = dashboard
    result = billing(
        "metrics", "--window", "24h", "--json", env={"ROCKSDB_PATH": str(state), "BILLING_DATA_DIR": str(ROOT / "data")}
    )
    assert result.returncode == 0, result.stderr
    (expected,) = json.loads(result.stdout)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(link)
            assert page.url.endswith("/dashboard/")  # the one-time code is gone from the address bar
            page.wait_for_selector("#feed-status:text-is('live')", timeout=15_000)
            tiles = page.eval_on_selector_all(
                "[data-metric]",
                "els => els.map(e => [e.dataset.metric, e.querySelector('.value').dataset.value,"
                " e.querySelector('.value').innerText])",
            )
            with ThreadPoolExecutor(1) as thread:  # Playwright's sync API owns this thread's event loop
                offset = thread.submit(append_failure, state).result(timeout=30)
            page.wait_for_selector(f"#feed tr.failed td:text-is('{offset}')", timeout=15_000)
            page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
        finally:
            browser.close()
    shown = {name: (value, text) for name, value, text in tiles}
    assert {name: value for name, (value, _) in shown.items()} == {k: str(expected[k]) for k in shown}
    assert len(shown) == 6 and shown["total_amount"][1] == f"{expected['total_amount']} CC"
    assert shown["payment_count"] == ("19", "19") and shown["failure_count"] == ("3", "3")
    if target := os.environ.get("DASHBOARD_SCREENSHOT"):
        shutil.copyfile(tmp_path / "dashboard.png", target)
