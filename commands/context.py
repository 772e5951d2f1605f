"""What every command receives: settings, a console, a clock and the catalogue."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from commands.catalogue import Catalogue, load
from commands.config import Settings
from commands.console import Console
from commands.errors import CommandError

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Context:
    """Built once per run by the CLI (or a test) and passed to the command."""

    def __init__(self, settings: Settings, console: Console, clock: Clock = utc_now, transport: Any = None) -> None:
        self.settings = settings
        self.console = console
        self.clock = clock
        #: An httpx transport for the Canton clients (the in-process simulator), or None.
        self.transport = transport

    @cached_property
    def catalogue(self) -> Catalogue:
        """Users and plans, read and validated on first use."""
        return load(self.settings.data_dir, min_interval=self.settings.min_interval_sec)

    def missing_state(self) -> str | None:
        """ "no billing state at <folder> (ROCKSDB_PATH)" when the embedded log is not there, else None."""
        if self.settings.log_dir.exists():
            return None
        return f"no billing state at {Path(self.settings.rocksdb_path).resolve()} (ROCKSDB_PATH)"

    def require_state(self) -> None:
        """A read-only command on the embedded log: refuse, in one line, where there is no state
        folder, rather than create an empty one and print zeros (a cron job run from the wrong
        directory must not look like a quiet billing)."""
        if (missing := self.missing_state()) is not None:
            raise CommandError(
                f"{missing}: run from the directory that holds billing_db, or set ROCKSDB_PATH to the state folder"
            )
