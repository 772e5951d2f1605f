"""Errors of the pipeline layer.

PipelineError
 ├── StoreError
 │    ├── StoreBusy          another process holds the writer lock
 │    └── StoreUnavailable   the directory cannot be used (permissions, disk full, corruption)
 ├── LogError
 │    ├── LogClosed          append or read after close
 │    └── ReplayFailed       the process reading the log for a replay stopped
 └── CantonError             a Ledger API / Scan failure, classified (pipeline/canton_errors.py)
"""

from __future__ import annotations


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
