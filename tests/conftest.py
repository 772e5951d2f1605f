"""Shared fixtures (a clean environment, the sample data folder, the shared/ folder) and the
session-end table of bad inputs tried per entry point (`tests/bad_inputs.py`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests import bad_inputs

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


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print how many bad inputs the run tried per entry point (issue #9 asks the suite to say)."""
    lines = bad_inputs.summary_lines()
    if lines:
        terminalreporter.section("bad inputs tried per entry point")
        for line in lines:
            terminalreporter.write_line(line)
