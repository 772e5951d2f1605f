"""Structured logs on stderr: key=value (default) or JSON lines, with secrets redacted.

Modules log through the standard library (`logging.getLogger(__name__)`) and pass
fields in ``extra={"fields": {...}}``; this module formats them. Any configured secret
that shows up in a message or a field is replaced by ``***`` before it is written.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import IO, Any

import msgspec

TRACE = 5
logging.addLevelName(TRACE, "TRACE")

_LEVELS = {
    "trace": TRACE,
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
}
_json = msgspec.json.Encoder(decimal_format="string")
_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


def level_of(name: str) -> int:
    return _LEVELS[name.lower()]


class Redactor(logging.Filter):
    """Replaces every known secret in the final text of a record."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text


class StructuredFormatter(logging.Formatter):
    """``ts=… level=… logger=… msg="…" key=value …`` or one JSON object per line."""

    def __init__(self, fmt: str, redactor: Redactor) -> None:
        super().__init__()
        self.kind = fmt
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields.update(getattr(record, "fields", {}) or {})
        fields.update({k: v for k, v in record.__dict__.items() if k not in _RESERVED and k != "fields"})
        if record.exc_info:
            fields["error"] = self.formatException(record.exc_info)
        if self.kind == "json":
            text = _json.encode(fields).decode()
        else:
            text = " ".join(f"{k}={_kv(v)}" for k, v in fields.items())
        return self.redactor.redact(text)


def _kv(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="\n'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def configure(level: str, fmt: str, secrets: Iterable[str], stream: IO[str] | None = None) -> Redactor:
    """Install the stderr handler on the root logger (idempotent). Returns the redactor."""
    redactor = Redactor(secrets)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(StructuredFormatter(fmt, redactor))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_billing", False)]:
        root.removeHandler(old)
    handler._billing = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level_of(level))
    # Libraries are chatty at debug; keep them at warning unless tracing.
    for noisy in ("httpx", "httpcore", "asyncio", "aiokafka", "faust", "mode", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(TRACE if level == "trace" else logging.WARNING)
    return redactor
