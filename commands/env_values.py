"""How one environment value becomes a setting, and how a bad one is explained by name.

`commands/config.py` declares the settings; this module reads `.env`, converts each raw
value to its field's type and turns msgspec's complaints into words an operator knows.
"""

from __future__ import annotations

import math
import os
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
from dotenv import dotenv_values

from commands.errors import ConfigError

URL = r"^https?://[^\s/$.?#][^\s]*$"
PARTY = r"^[^:\s]+::[^\s]+$"
EVENT_LOG = r"^(embedded|kafka://[^\s/:]+:\d+(,[^\s/:]+:\d+)*/?)$"
_PATTERN_MEANS = {
    URL: "an http:// or https:// URL",
    PARTY: "a party id such as app1::1220ab…",
    EVENT_LOG: "embedded, or kafka://host:port[,host:port]",
}


class Spec(msgspec.Struct, frozen=True):
    field: str
    env: str
    help: str
    secret: bool
    type: Any
    default: Any

    def show(self, value: object) -> str:
        if value is None or value == "":
            return "(not set)"
        return "******** (set)" if self.secret else str(value)


def merge(environ: Mapping[str, str], dotenv: str | os.PathLike[str] | None) -> dict[str, str]:
    merged: dict[str, str] = {}
    if dotenv is not None and Path(dotenv).is_file():
        try:
            values = dotenv_values(dotenv)
        except (UnicodeDecodeError, OSError) as err:
            raise ConfigError(
                f"{dotenv}: cannot read it as UTF-8 text ({type(err).__name__}); fix or remove it"
            ) from err
        merged.update({k: v for k, v in values.items() if v is not None})
    merged.update(environ)  # the real environment wins over .env
    return merged


def convert(raw: str, spec: Spec) -> Any:
    value = raw.rstrip("/") if spec.env.endswith("_URL") else raw
    if spec.env == "LOG_LEVEL":
        value = value.lower()
    result = msgspec.convert(value, spec.type, strict=False)
    if isinstance(result, float) and not math.isfinite(result):
        raise ValueError("expected a finite number")
    return result


def clip(text: str, limit: int = 60) -> str:
    """A bad value as shown in the error: long pastes are cut, so one line stays one line."""
    text = text.replace("\n", "\\n")
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def rust_log_level(rust_log: str | None) -> str | None:
    """RUST_LOG is an alias: take its global level from forms like ``info`` or ``info,h2=warn``."""
    if not rust_log:
        return None
    for part in rust_log.split(","):
        if "=" not in part and part.strip():
            return part.strip()
    return None


_TYPE_MEANS = {"`int`": "a whole number", "`float`": "a number", "`bool`": "true or false"}


def reason(err: Exception, spec: Spec) -> str:
    text = str(err).replace(" - at `$`", "")
    for pattern, meaning in _PATTERN_MEANS.items():
        if repr(pattern) in text:
            return f"expected {meaning}"
    if "Invalid enum value" in text:
        allowed = typing.get_args(typing.get_args(spec.type)[0]) or typing.get_args(spec.type)
        return "must be one of " + ", ".join(map(str, allowed))
    for name, meaning in _TYPE_MEANS.items():
        text = text.replace(f"Expected {name}, got `str`", f"expected {meaning}")
        text = text.replace(f"Expected {name}", f"expected {meaning}")
    return text.replace("Integer value out of range", "expected a whole number, this one is far too large")
