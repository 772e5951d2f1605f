"""The soak run at its CI setting (30 s): faults, random SIGKILLs, then every due period paid once."""

from __future__ import annotations

import pytest

from benchmarks.soak import main


@pytest.mark.slow
def test_the_30_second_soak_passes(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--seconds", "30", "--subscriptions", "200", "--interval", "10"])
    out = capsys.readouterr().out
    print(out)  # the table, for the log of a failed run
    assert code == 0, out
    assert "| charged twice                | 0 " in out and "PASS" in out
