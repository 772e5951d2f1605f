"""The local dashboard without a browser: its numbers equal `billing metrics --json`, sign-in, feed, daemon wiring."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import httpx
import pytest

from commands.config import Settings
from commands.console import Console
from commands.context import Context
from commands.daemon.local_api import make_app
from commands.dashboard.auth import COOKIE, Sessions, same_origin
from commands.dashboard.data import FeedItem, Snapshot
from commands.dashboard.page import page
from commands.dashboard.server import in_daemon, standalone_app
from commands.services.events_view import audit_row
from commands.services.metrics import show_metrics
from pipeline.log.embedded import EmbeddedLog
from projections.replay import catch_up, open_projection
from projections.windows import WINDOWS, WindowMetrics
from tests.dashboard_state import make_state
from tests.processes import ROOT, billing

TOKEN = "test-api-token"


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_state(tmp_path_factory.mktemp("dashboard") / "state")


@pytest.fixture(scope="module")
def now(state: Path) -> datetime:
    """One moment for the page and the CLI, taken after the demo ran."""
    return datetime.now(UTC)


def context(state: Path, clock: datetime) -> tuple[Context, StringIO]:
    settings = Settings.from_env(
        {"ROCKSDB_PATH": str(state), "BILLING_DATA_DIR": str(ROOT / "data"), "BILLING_API_TOKEN": TOKEN}, dotenv=None
    )
    out = StringIO()
    return Context(settings, Console(out=out, err=StringIO(), width=200), clock=lambda: clock), out


async def metrics_json(state: Path, now: datetime, **filters: str | None) -> list[dict[str, object]]:
    """What `billing metrics --json` prints at ``now``."""
    ctx, out = context(state, now)
    shown = {"window": None, "user": None, "subscription": None, **filters}
    assert await show_metrics(ctx, **shown, as_json=True) == 0
    rows = json.loads(out.getvalue())
    assert isinstance(rows, list)
    return rows


@pytest.fixture
async def client(state: Path, now: datetime) -> AsyncIterator[httpx.AsyncClient]:
    ctx, _ = context(state, now)
    log = EmbeddedLog.open(ctx.settings.log_dir, follow=True)
    app, sessions = standalone_app(ctx, log)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
        answer = await http.get(f"/dashboard/login?code={sessions.new_code()}")
        assert answer.status_code == 303 and answer.headers["location"] == "/dashboard/"
        yield http
    await log.close()


async def test_the_snapshot_holds_exactly_what_billing_metrics_json_prints(
    state: Path, now: datetime, client: httpx.AsyncClient
) -> None:
    snapshot = (await client.get("/dashboard/api/snapshot")).json()
    assert snapshot["windows"] == await metrics_json(state, now)
    day = next(w for w in snapshot["windows"] if w["window"] == "24h")
    assert (day["payment_count"], day["failure_count"], day["total_amount"]) == (19, 3, "21.75")  # history 11+3, demo 5
    for row in snapshot["plans"]:
        per_plan = {w["window"]: w for w in await metrics_json(state, now, subscription=row["plan"])}
        assert (row["day"], row["week"], row["month"]) == (per_plan["24h"], per_plan["7d"], per_plan["30d"])


async def test_the_tiles_on_the_page_show_the_24h_numbers(
    state: Path, now: datetime, client: httpx.AsyncClient
) -> None:
    html = (await client.get("/dashboard/")).text
    tiles = dict(re.findall(r'data-metric="(\w+)".*?data-value="([^"]*)"', html))
    day = next(w for w in await metrics_json(state, now) if w["window"] == "24h")
    assert tiles == {
        k: str(day[k])
        for k in (
            "payment_count",
            "total_amount",
            "success_rate",
            "failure_count",
            "active_users",
            "active_subscriptions",
        )
    }
    # six metrics across the windows; over time only the four that are not distinct counts
    assert html.count('<svg class="chart"') == 10
    assert html.count("Distinct counts are exact for windows ending now") == 2
    assert "INSUFFICIENT_FUNDS: holdings of 0.4 CC" in html and "PREAPPROVAL_EXPIRED" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing fetched from elsewhere


async def test_nothing_is_served_without_signing_in_and_a_code_works_once(state: Path) -> None:
    ctx, _ = context(state, datetime.now(UTC))
    log = EmbeddedLog.open(ctx.settings.log_dir, follow=True)
    app, sessions = standalone_app(ctx, log)
    code = sessions.new_code()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
        for path in ("/dashboard/", "/dashboard/live", "/dashboard/api/snapshot", f"/dashboard/login?code={code}x"):
            assert (await http.get(path)).status_code == 401, path
        first = await http.get(f"/dashboard/login?code={code}")
        cookie = first.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/dashboard" in cookie
        http.cookies.clear()
        assert (await http.get(f"/dashboard/login?code={code}")).status_code == 401  # spent
        bearer = await http.get("/dashboard/api/snapshot", headers={"authorization": f"Bearer {TOKEN}"})
        assert bearer.status_code == 200
        page = await http.get("/dashboard/", headers={"authorization": f"Bearer {TOKEN}"})
        assert "script-src 'nonce-" in page.headers["content-security-policy"]
    await log.close()


def test_sessions_expire_and_websockets_must_come_from_the_page() -> None:
    now = [datetime(2026, 1, 1, tzinfo=UTC)]
    sessions = Sessions("t", lambda: now[0])
    session = sessions.redeem(sessions.new_code())
    assert session is not None and sessions.allows({}, {COOKIE: session})
    assert not sessions.allows({}, {COOKIE: "guess"}) and not sessions.allows({"authorization": "Bearer x"}, {})
    now[0] += timedelta(hours=13)
    assert not sessions.allows({}, {COOKIE: session})
    assert same_origin({"origin": "http://127.0.0.1:8766", "host": "127.0.0.1:8766"})
    assert not same_origin({"origin": "http://evil.example", "host": "127.0.0.1:8766"})


async def websocket(app: Any, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    """An ASGI WebSocket client in ~15 lines: connect, take the first answer (and a message), hang up."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    route, _, query = path.partition("?")
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": route,
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        "server": ("127.0.0.1", 8766),
        "client": ("127.0.0.1", 50000),
        "subprotocols": [],
    }
    await inbox.put({"type": "websocket.connect"})
    handler = asyncio.create_task(app(scope, inbox.get, outbox.put))
    answers = [await asyncio.wait_for(outbox.get(), 10)]
    if answers[0]["type"] == "websocket.accept":
        answers.append(await asyncio.wait_for(outbox.get(), 10))
        await inbox.put({"type": "websocket.disconnect", "code": 1000})
    await asyncio.wait_for(handler, 10)  # the handler ends when the page goes away, even with no new records
    return answers


async def test_the_audit_feed_streams_log_records_to_a_signed_in_page(state: Path) -> None:
    ctx, _ = context(state, datetime.now(UTC))
    log = EmbeddedLog.open(ctx.settings.log_dir, follow=True)
    app, sessions = standalone_app(ctx, log)
    session = sessions.redeem(sessions.new_code())
    ours = {"host": "127.0.0.1:8766", "origin": "http://127.0.0.1:8766", "cookie": f"{COOKIE}={session}"}
    try:
        refused = await websocket(app, "/dashboard/audit", {k: v for k, v in ours.items() if k != "cookie"})
        foreign = await websocket(app, "/dashboard/audit", {**ours, "origin": "http://evil.example"})
        accepted, sent = await websocket(app, "/dashboard/audit?from=14", ours)
    finally:
        await log.close()
    assert refused[0]["type"] == foreign[0]["type"] == "websocket.close" and refused[0]["code"] == 4401
    assert accepted["type"] == "websocket.accept"
    first = json.loads(sent["text"])
    assert first["offset"] == 14 and first["kind"] == "requested"  # the demo's first record, after 14 of history


async def test_the_daemon_serves_the_dashboard_beside_its_api(tmp_path: Path) -> None:
    ctx, _ = context(tmp_path, datetime.now(UTC))
    log = EmbeddedLog.open(ctx.settings.log_dir)
    projection = open_projection(ctx.settings.projections_dir)
    await catch_up(log, projection)
    api = make_app(log, TOKEN, log.append_batch, audit_row)
    app, sessions = in_daemon(ctx, api, log, projection, lambda: ctx.catalogue)
    bearer = {"authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1") as http:
        assert (await http.get("/v1/health", headers=bearer)).json()["status"] == "ok"
        assert (await http.get(f"/dashboard/login?code={sessions.new_code()}")).status_code == 303
        snapshot = (await http.get("/dashboard/api/snapshot")).json()
    assert snapshot["source"] == "billing start" and snapshot["windows"][0]["success_rate"] is None
    projection.store.close()
    await log.close()


def test_without_an_event_log_the_command_says_what_to_run_first(tmp_path: Path) -> None:
    result = billing("dashboard", env={"ROCKSDB_PATH": str(tmp_path / "none"), "BILLING_DATA_DIR": str(ROOT / "data")})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "nothing to show yet" in result.stderr and "billing start" in result.stderr


def test_text_from_the_log_is_escaped_on_the_page() -> None:
    hostile = "<img src=x onerror=alert(1)>"
    item = FeedItem(
        offset=3,
        at="2026-01-01 00:00:00",
        kind="failed",
        payment="p",
        user=hostile,
        plan="prover",
        amount="1 CC",
        detail=f"CODE: {hostile}",
    )
    snap = Snapshot(
        as_of=datetime(2026, 1, 1, tzinfo=UTC),
        source="test",
        position=4,
        windows=[WindowMetrics(window=w) for w in WINDOWS],
        hourly=[],
        plans=[],
        failures=[item],
        feed=[item],
        feed_next=4,
    )
    html = page(snap, app_name=hostile, chain="devnet", nonce="n0nce")
    assert hostile not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert html.count("<script") == 1 and '<script nonce="n0nce">' in html
