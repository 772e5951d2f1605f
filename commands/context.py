"""What every command receives: settings, a console, a clock and the catalogue."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

from commands.catalogue import Catalogue, load
from commands.config import Settings
from commands.console import Console

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
