"""Shared fixtures (a clean environment, the sample data folder, the shared/ folder) and the
session-end reports: bad inputs tried per entry point (`tests/bad_inputs.py`), and the grep
of everything the product printed for the canary secrets (`tests/secret_watch.py`)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import bad_inputs, secret_watch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A private copy of data/ that a test may break."""
    target = tmp_path / "data"
    shutil.copytree(ROOT / "data", target)
    return target


@pytest.fixture
def shared_dir() -> Path:
    """../shared (specs, references); skipped with a reason in a clone without it."""
    if not SHARED.is_dir():
        pytest.skip(f"needs the shared/ folder beside the repository ({SHARED}); absent here")
    return SHARED


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Run from an empty folder with no billing variables set, so .env files do not leak in."""
    from commands.config import SPECS

    for spec in SPECS:
        monkeypatch.delenv(spec.env, raising=False)
    monkeypatch.delenv("RUST_LOG", raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


class _Recorder(logging.Handler):
    """Keeps each log line in-process runs write, formatted as billing's own handler writes it."""

    def emit(self, record: logging.LogRecord) -> None:
        product = [h for h in logging.getLogger().handlers if getattr(h, "_billing", False)]
        if product and record.levelno >= product[0].level and product[0].formatter is not None:
            secret_watch.record(f"log {record.name}", product[0].formatter.format(record))


@pytest.fixture(autouse=True, scope="session")
def _record_logs() -> Iterator[None]:
    handler = _Recorder(level=logging.DEBUG)
    logging.getLogger().addHandler(handler)
    yield
    logging.getLogger().removeHandler(handler)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if secret_watch.leaks():
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print how many bad inputs the run tried per entry point (issue #9 asks the suite to say),
    and whether anything the product printed held a canary secret."""
    lines = bad_inputs.summary_lines()
    if lines:
        terminalreporter.section("bad inputs tried per entry point")
        for line in lines:
            terminalreporter.write_line(line)
    if secret_watch.recorded_bytes():
        terminalreporter.section("secrets in product output")
        found = secret_watch.leaks()
        for line in found:
            terminalreporter.write_line(f"LEAK: {line}", red=True)
        if not found:
            terminalreporter.write_line(f"{secret_watch.recorded_bytes()} bytes of output checked: no secret leaked")


from tests.kafka_broker import kafka_url  # noqa: E402, F401  (the session broker for Kafka tests)
