"""Terminal output: the one module that imports rich.

Results go to stdout (tables for people, JSON for scripts); errors and progress go to
stderr, so `billing metrics --json | jq` stays clean.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, Any

import msgspec
from rich.console import Console as RichConsole
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

_json = msgspec.json.Encoder(decimal_format="string")


class Console:
    """Where a command writes. Tests pass their own streams."""

    def __init__(self, out: IO[str] | None = None, err: IO[str] | None = None, width: int | None = None):
        self._out = RichConsole(file=out or sys.stdout, width=width, highlight=False, soft_wrap=False, emoji=False)
        self._err = RichConsole(
            file=err or sys.stderr, width=width, highlight=False, soft_wrap=True, stderr=err is None, emoji=False
        )

    def line(self, text: str = "", *, style: str | None = None) -> None:
        self._out.print(escape(text), style=style, soft_wrap=True)

    def table(self, title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
        table = Table(title=title, title_justify="left", show_lines=False)
        for name in columns:
            table.add_column(name, overflow="fold")
        for row in rows:
            table.add_row(*(escape(_cell(v)) for v in row))
        self._out.print(table)

    def json(self, value: Any) -> None:
        """One JSON document on stdout (Decimal as strings, datetimes as RFC 3339)."""
        self._out.file.write(_json.encode(value).decode() + "\n")
        self._out.file.flush()

    def note(self, text: str) -> None:
        """A remark for people, on stderr."""
        self._err.print(escape(text), style="dim")

    def warn(self, text: str) -> None:
        self._err.print(f"warning: {escape(text)}", style="yellow")

    def error(self, text: str) -> None:
        self._err.print(f"error: {escape(text)}", style="bold red")

    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[ProgressBar]:
        """A progress bar on stderr; silent when stderr is not a terminal."""
        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self._err,
            transient=True,
            disable=not self._err.is_terminal,
        )
        with bar:
            task = bar.add_task(description, total=total)
            yield ProgressBar(bar, task)


class ProgressBar:
    def __init__(self, bar: Progress, task: Any) -> None:
        self._bar = bar
        self._task = task

    def update(self, done: int, total: int | None = None) -> None:
        self._bar.update(self._task, completed=done, total=total)


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
