"""Errors of the pipeline layer.

PipelineError
 ├── StoreError
 │    ├── StoreBusy          another process holds the writer lock
 │    └── StoreUnavailable   the directory cannot be used (permissions, disk full, corruption)
 ├── LogError
 │    ├── LogClosed          append or read after close
 │    └── ReplayFailed       the process reading the log for a replay stopped
 ├── CantonError             a Ledger API / Scan failure, classified (pipeline/canton/errors.py)
 └── ProcessorStopped        a payment step raised what it cannot retry; the processor stopped
"""

from __future__ import annotations

import traceback
from pathlib import Path


class PipelineError(Exception):
    """Root of every error the pipeline layer raises on purpose."""


class StoreError(PipelineError, OSError):
    """The RocksDB store could not be used."""


class StoreBusy(StoreError):
    """Another process is the writer of this store."""


class StoreUnavailable(StoreError):
    """The store's directory is missing, unreadable, full or corrupt."""


class LogError(PipelineError):
    """The event log refused an operation."""


class LogClosed(LogError, RuntimeError):
    """The event log was used after `close()`."""


class ReplayFailed(LogError):
    """The process reading the log for a replay stopped before the end (what was folded is kept)."""


class ProcessorStopped(PipelineError):
    """The processor stopped because a payment step (or its log follower) raised an error that
    is not a classified, retryable failure: a bug (``bug``), or a store / log error.

    The error itself is ``error`` (and ``__cause__``); ``payment_id`` names the payment whose
    step raised it (None for the log follower). Nothing more was submitted for that payment:
    a restart finds it in its recorded state, in doubt if it was submitted.
    """

    def __init__(self, error: BaseException, payment_id: str | None = None) -> None:
        self.error, self.payment_id = error, payment_id
        #: Not one of our own errors: an unexpected exception, i.e. a bug.
        self.bug = not isinstance(error, PipelineError)
        #: The error's message on one line, bounded (it may quote a whole body).
        self.detail = " ".join(str(error).split())[:500] or "(no message)"
        where = f"payment {payment_id}" if payment_id else "following the event log"
        unexpected = "unexpected " if self.bug else ""
        super().__init__(f"processing stopped at {where}: {unexpected}{type(error).__name__}: {self.detail}")

    @property
    def origin(self) -> str:
        """Where the error was raised (``pipeline/x.py:12 in f``): the line a bug report needs."""
        frames = traceback.extract_tb(self.error.__traceback__)
        if not frames:
            return "unknown"
        path = Path(frames[-1].filename)
        return f"{path.parent.name}/{path.name}:{frames[-1].lineno} in {frames[-1].name}"
