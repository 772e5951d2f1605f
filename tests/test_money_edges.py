"""Issue #17 points 2-5 through the CLI, as real processes: `restart` retries a payment the *ledger*
refused for insufficient funds; a busy port fails in one line before anything is done; a misspelled
catalogue key is an error; `balance --party` takes the names `billing users` shows. One pure test
beside them: the fold `restart` decides on, over old and new failure records."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import msgspec
import pytest

from commands.config import Settings
from commands.console import Console
from commands.context import Context
from commands.services.payments import retry_requests
from commands.services.simulated_network import build
from pipeline.asgi_server import free_port
from pipeline.canton.errors import INSUFFICIENT_FUNDS
from pipeline.events import Envelope, Recorded
from pipeline.processor.book import PaymentBook
from pipeline.simulator.faults import Fault
from pipeline.simulator.serve import settings_lines
from tests.processes import ROOT, billing, simulator, write_catalogue
from tests.secret_watch import SECRETS
from tests.sim_thread import Listener

DATA = ROOT / "data"
ALICE = "alice::12202bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90"


@pytest.fixture
def thread_sim(tmp_path: Path) -> Iterator[tuple[Listener, dict[str, str]]]:
    """The simulator over TCP, in this process (so a test can inject one fault), and billing's env."""
    data = write_catalogue(tmp_path / "data", users=1)
    settings = Settings.from_env(
        {"BILLING_DATA_DIR": str(data), "APP_PROVIDER_JWT": SECRETS["APP_PROVIDER_JWT"]}, dotenv=None
    )
    sim = build(Context(settings, Console()), preapproval=True)
    listener = Listener(sim, free_port())
    listener.start()
    lines = settings_lines(sim, f"http://127.0.0.1:{listener.port}")
    env = {
        **dict(line.split("=", 1) for line in lines),
        "BILLING_DATA_DIR": str(data),
        "ROCKSDB_PATH": str(tmp_path / "state"),
        "LOG_LEVEL": "warn",
    }
    try:
        yield listener, env
    finally:
        listener.stop()
        listener.close()


def test_restart_retries_a_payment_the_ledger_refused_for_insufficient_funds(
    thread_sim: tuple[Listener, dict[str, str]],
) -> None:
    listener, env = thread_sim
    # The ledger's own refusal (400 DAML_FAILURE, context.error_id insufficient-funds), not our pre-check.
    listener.call(lambda: listener.sim.inject(Fault.INSUFFICIENT_FUNDS))
    refused = billing("pay", "-u", "u0", "-s", "prover", env=env)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    reason = next((line for line in refused.stderr.splitlines() if line.startswith("error:")), "")
    assert reason.startswith("error: payment failed:") and "Insufficient funds" in reason, refused.stderr
    assert reason.count("DAML_FAILURE") == 1, f"the reason repeats itself: {reason}"
    assert "`billing restart`" in reason, reason
    assert sum(listener.senders().values()) == 0

    restart = billing("restart", "--no-recover-missed", env=env)
    assert restart.returncode == 0, restart.stdout + restart.stderr
    assert "requested again" in restart.stdout and "amount confirmed" in restart.stdout
    assert listener.senders() == {"u0::1220" + f"{0:060x}": 1}, "restart did not charge the refused period"
    again = billing("restart", "--no-recover-missed", env=env)
    assert again.returncode == 0 and sum(listener.senders().values()) == 1, "charged twice"


SAMPLES = ROOT / "tests" / "event_samples"


@pytest.mark.parametrize(
    ("error_id", "retried"),
    [
        (INSUFFICIENT_FUNDS, True),
        (None, False),  # a record written before PaymentFailed had error_id: it still folds
        ("splice.lfdecentralizedtrust.org/maximum-inputs-exceeded", False),  # a bad request: never asked again
    ],
)
def test_the_book_keeps_the_error_id_restart_decides_on(error_id: str | None, retried: bool) -> None:
    request = msgspec.json.decode((SAMPLES / "v1_requested.json").read_bytes(), type=Envelope).event
    doc = json.loads((SAMPLES / "v1_failed.json").read_text())
    doc["event"].pop("error_id")
    if error_id is not None:
        doc["event"]["error_id"] = error_id
    failed = msgspec.json.decode(json.dumps(doc), type=Envelope).event
    book = PaymentBook()
    book.apply(Recorded(0, request))
    state = book.apply(Recorded(1, failed))
    assert state is not None and state.status == "failed"
    assert state.last_error_id == error_id and state.last_error == "DAML_FAILURE: Insufficient funds"
    assert [r.payment_id for r in retry_requests(book, request.at)] == ([request.payment_id] if retried else [])


class _Counting(BaseHTTPRequestHandler):
    """A stand-in Canton that counts what it is asked: a busy port must ask nothing."""

    hits: ClassVar[list[str]] = []

    def _reply(self) -> None:
        self.hits.append(self.path)
        self.send_response(503)
        self.send_header("content-length", "0")
        self.end_headers()

    do_GET = do_POST = _reply

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("command", [["start"], ["simulator", "--port", "{port}"], ["dashboard", "--port", "{port}"]])
def test_a_busy_port_fails_in_one_line_before_anything_is_done(tmp_path: Path, command: list[str]) -> None:
    hits: list[str] = []
    canton = ThreadingHTTPServer(("127.0.0.1", 0), type("Canton", (_Counting,), {"hits": hits}))
    threading.Thread(target=canton.serve_forever, daemon=True).start()
    busy = ThreadingHTTPServer(("127.0.0.1", 0), _Counting)  # listens, never serves: the port is taken
    port = busy.server_address[1]
    url = f"http://127.0.0.1:{canton.server_address[1]}"
    state = tmp_path / "state"
    env = {
        "APP_PROVIDER_API_URL": url,
        "SCAN_API_URL": url + "/api/scan",
        "APP_PROVIDER_JWT": "t0ken-abc",
        "PARTY_APP": "app::1220ab",
        "BILLING_DATA_DIR": str(DATA),
        "ROCKSDB_PATH": str(state),
        "BILLING_API_PORT": str(port if command == ["start"] else port - 1),
    }
    try:
        result = billing(*(a.format(port=port) for a in command), env=env, timeout=60)
    finally:
        busy.server_close()
        canton.shutdown()
        canton.server_close()
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.splitlines() == [result.stderr.strip()], f"not one line: {result.stderr}"
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr and "Traceback" not in result.stderr
    assert ("BILLING_API_PORT" if command == ["start"] else "--port") in result.stderr
    assert hits == [], f"requested before the port was checked: {hits}"
    assert not state.exists(), "wrote state before the port was checked"


def _catalogue(
    folder: Path, user_key: str = "subscriptions", sub_key: str = "expires_at", plan_key: str = "interval_sec"
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    plans = [{"id": "sub_prover", "name": "prover", "price": 2, "currency": "CC", plan_key: "300"}]
    users = [
        {
            "id": "alice",
            "party": ALICE,
            "name": "Alice",
            "email": "alice@example.com",
            user_key: [{"name": "prover", sub_key: "2031-12-31"}],
        }
    ]
    (folder / "subscriptions.json").write_text(json.dumps({"subscriptions": plans}))
    (folder / "users.json").write_text(json.dumps({"users": users}))
    return folder


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (
            {"user_key": "subscriptons"},
            "users.json: users[0].subscriptons: unknown field in the entry with id 'alice' "
            '(did you mean "subscriptions"?)',
        ),
        (
            {"sub_key": "expire_at"},
            "users.json: users[0].subscriptions[0].expire_at: unknown field in the entry with "
            "id 'alice' (did you mean \"expires_at\"?)",
        ),
        (
            {"plan_key": "interval_secs"},
            "subscriptions.json: subscriptions[0].interval_secs: unknown field in the "
            "entry with id 'sub_prover' (did you mean \"interval_sec\"?)",
        ),
    ],
)
def test_a_misspelled_catalogue_key_is_an_error_naming_file_entry_and_field(
    tmp_path: Path,
    keys: dict[str, str],
    expected: str,
) -> None:
    env = {"BILLING_DATA_DIR": str(_catalogue(tmp_path / "data", **keys)), "ROCKSDB_PATH": str(tmp_path / "s")}
    for command in (["users"], ["pay-all", "--dry-run"]):
        result = billing(*command, env=env)
        assert result.returncode == 2, result.stdout + result.stderr
        assert expected in result.stderr and "Traceback" not in result.stderr, result.stderr
    spelled_right = billing("users", env={**env, "BILLING_DATA_DIR": str(_catalogue(tmp_path / "ok"))})
    assert spelled_right.returncode == 0 and "2031-12-31" in spelled_right.stdout, spelled_right.stderr


def test_the_shipped_catalogue_still_loads() -> None:
    result = billing("users", env={"BILLING_DATA_DIR": str(DATA)})
    assert result.returncode == 0 and "Registered users (5)" in result.stdout, result.stderr


@pytest.fixture(scope="module")
def sim_env() -> Iterator[dict[str, str]]:
    with simulator(DATA) as env:
        yield {**env, "BILLING_DATA_DIR": str(DATA), "LOG_LEVEL": "warn"}


@pytest.mark.parametrize("party", [ALICE, "alice::12202bd8…", "alice", "alice@example.com"])
def test_balance_of_a_funded_party_shows_its_holdings(sim_env: dict[str, str], tmp_path: Path, party: str) -> None:
    result = billing("balance", "--party", party, env={**sim_env, "ROCKSDB_PATH": str(tmp_path / "s")})
    assert result.returncode == 0, result.stderr
    assert "Total: 1000.0000000000 CC in 1 amulet(s)" in result.stdout, result.stdout


def test_balance_of_an_unknown_name_is_one_line(sim_env: dict[str, str], tmp_path: Path) -> None:
    result = billing("balance", "--party", "nobody", env={**sim_env, "ROCKSDB_PATH": str(tmp_path / "s")})
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip() == (
        "error: --party 'nobody': no user matches 'nobody'; `billing users` lists "
        "them; or give a whole party id (name::1220…)"
    )


@pytest.mark.parametrize(
    ("code", "retried"),
    [
        ("PREAPPROVAL_EXPIRED", True),
        ("NO_PREAPPROVAL", True),
        ("INSUFFICIENT_FUNDS", True),
        # Never asked again blindly: the period may be paid (parked in doubt, or another transfer holds the id).
        ("IN_DOUBT", False),
        ("DUPLICATE_NOT_THIS_PAYMENT", False),
        ("INVALID_ARGUMENT", False),
    ],
)
def test_restart_asks_again_only_what_an_operator_can_fix(code: str, retried: bool) -> None:
    request = msgspec.json.decode((SAMPLES / "v1_requested.json").read_bytes(), type=Envelope).event
    doc = json.loads((SAMPLES / "v1_failed.json").read_text())
    doc["event"].update(code=code, error_id=None, final=True)
    book = PaymentBook()
    book.apply(Recorded(0, request))
    book.apply(Recorded(1, msgspec.json.decode(json.dumps(doc), type=Envelope).event))
    assert [r.payment_id for r in retry_requests(book, request.at)] == ([request.payment_id] if retried else [])
