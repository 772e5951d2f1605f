"""Errors of the command layer; the CLI maps each to an exit code and one stderr line.

CommandError                      exit 1
 ├── ConfigError                  exit 2  bad or missing settings
 ├── CatalogueError               exit 2  users.json / subscriptions.json problems
 ├── BadArgument (ValueError)     exit 2  a command-line value that does not read
 └── NotFound (LookupError)       exit 1  no such user, plan or payment
"""

from __future__ import annotations


class CommandError(Exception):
    """Root of the errors the command layer raises on purpose."""

    exit_code = 1


class ConfigError(CommandError, ValueError):
    """A setting is missing or invalid."""

    exit_code = 2


class CatalogueError(CommandError, ValueError):
    """The users or subscriptions file is missing, unreadable or invalid."""

    exit_code = 2


class BadArgument(CommandError, ValueError):
    """A command-line value is malformed (a time without a zone, a fault that does not exist)."""

    exit_code = 2


class NotFound(CommandError, LookupError):
    """A user, plan or payment asked for does not exist."""
