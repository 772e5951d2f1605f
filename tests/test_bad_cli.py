"""Bad command lines, generated: one `error:` line on stderr, exit code 2, never a traceback.

The parser is driven in-process (it stops before any command runs); a few cases run the
real `billing` executable to prove the same holds end to end.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands.cli.main import build_parser, main
from tests.bad_inputs import tried

BILLING = str(Path(sys.executable).parent / "billing")


def _options() -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """Command names, (command, whole-number option) pairs, and every option string."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    ints, flags = [], set()
    for name, child in sub.choices.items():
        for action in child._actions:
            flags.update(action.option_strings)
            if action.option_strings and getattr(action.type, "__name__", "") == "convert":
                ints.append((name, max(action.option_strings, key=len)))
    return list(sub.choices), ints, sorted(flags)


COMMANDS, INT_OPTIONS, FLAGS = _options()
bad_numbers = (
    st.sampled_from(["x", "", "-1", "1.5", "1e3", "0x10", "9" * 40, "٣", "--", " 7"])
    | st.integers(max_value=-1).map(str)
    | st.integers(min_value=2**62 + 1).map(str)
)
tokens = st.sampled_from(COMMANDS + FLAGS + ["--", "-", "-x", "=", "--period=", "list", "with-subscription"]) | st.text(
    max_size=10
)


def _one_error_line(err: str) -> None:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: billing"), err
    assert "Traceback" not in err


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(option=st.sampled_from(INT_OPTIONS), value=bad_numbers)
def test_bad_whole_numbers_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], option: tuple[str, str], value: str
) -> None:
    command, flag = option
    tried("CLI arguments")
    with pytest.raises(SystemExit) as caught:
        main([command, f"{flag}={value}"])
    assert caught.value.code == 2
    _one_error_line(capsys.readouterr().err)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=st.lists(tokens, max_size=6))
def test_any_command_line_parses_or_is_one_error_line(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    tried("CLI arguments")
    try:
        build_parser().parse_args(argv)  # parse only: a valid line would really run the command
    except SystemExit as stop:
        out = capsys.readouterr()
        assert stop.code in (0, 2), argv
        if stop.code == 2:
            _one_error_line(out.err)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["pay", "-u", "alice", "-s", "prover", "--period", "99999999999999999999"], "--period: must be a whole"),
        (["simulator", "--port", "-1"], "--port: must be a whole number from 1 to 65535"),
        (["simulator", "--list-limit", "0"], "--list-limit: must be a whole number from 1 to 1000000"),
        (["metrics", "--window", "2h"], "invalid choice: '2h'"),
        (["frobnicate"], "invalid choice: 'frobnicate'"),
    ],
)
def test_the_real_executable(tmp_path: Path, argv: list[str], expected: str) -> None:
    tried("CLI arguments")
    result = subprocess.run([BILLING, *argv], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    _one_error_line(result.stderr)
    assert expected in result.stderr
