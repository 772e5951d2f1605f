"""Known test secrets, and a record of everything the product printed during the test run.

Tests that run `billing` (through `tests/processes.py`, `tests/test_cli.py` or directly)
pass what it printed to `record`; at the end of the session `tests/conftest.py` greps all
of it for `SECRETS` and fails the run on a leak (issue #9: the JWT, the OAuth client
secret and the OTLP token never appear in logs, errors, info, config or crash output).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

#: Values no output may ever contain. Long and distinctive, so a hit is never a coincidence.
SECRETS = {
    "APP_PROVIDER_JWT": "eyJhbGciOiJIUzI1NiJ9.leak-canary-jwt.Zm9vYmFy",
    "LEDGER_AUTH_CLIENT_SECRET": "leak-canary-client-secret-9f3a",
    "OPENTELEMETRY_SOURCE_TOKEN": "leak-canary-otlp-token-77c1",
    "BILLING_API_TOKEN": "leak-canary-api-token-5be2",
}
OUTPUT = Path(tempfile.gettempdir()) / f"billing-test-output-{os.getpid()}"


def record(label: str, *texts: str | bytes | None) -> None:
    """Keep what the product printed (stdout, stderr, log files) for the end-of-run grep."""
    OUTPUT.mkdir(exist_ok=True)
    with (OUTPUT / "printed.txt").open("a", encoding="utf-8", errors="replace") as out:
        for text in texts:
            if text:
                out.write(f"--- {label}\n{text.decode(errors='replace') if isinstance(text, bytes) else text}\n")


def leaks() -> list[str]:
    """Each (secret, context) found in the recorded output; [] when nothing leaked."""
    path = OUTPUT / "printed.txt"
    if not path.exists():
        return []
    found, label = [], ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("--- "):
            label = line[4:]
        for name, value in SECRETS.items():
            if value in line:
                found.append(f"{name} leaked in {label}: {line[:200]}")
    return found


def recorded_bytes() -> int:
    path = OUTPUT / "printed.txt"
    return path.stat().st_size if path.exists() else 0
