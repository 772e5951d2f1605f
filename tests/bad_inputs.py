"""A tally of the bad inputs the suite feeds each entry point, printed at the end of the run.

Any test may call `tried("users.json")` (or `tried("event log", 40)`) for each bad input it
checked was handled; ``tests/conftest.py`` prints the table "bad inputs tried per entry point".
A plain function, not a fixture, so hypothesis tests can call it from inside ``@given``.
"""

from __future__ import annotations

from collections import Counter
from typing import Final

#: entry point -> how many bad inputs the suite tried on it in this run.
TALLY: Final[Counter[str]] = Counter()


def tried(entry_point: str, count: int = 1) -> None:
    """Count ``count`` bad inputs fed to ``entry_point`` (and found handled)."""
    TALLY[entry_point] += count


def summary_lines() -> list[str]:
    """The table the session-end hook prints; empty when no test recorded anything."""
    if not TALLY:
        return []
    width = max(len(name) for name in TALLY)
    rows = [f"{name:<{width}}  {TALLY[name]:>7}" for name in sorted(TALLY)]
    return [f"{'entry point':<{width}}  {'tried':>7}", *rows, f"{'total':<{width}}  {TALLY.total():>7}"]
