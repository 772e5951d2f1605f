"""The layer rule: pipeline imports neither projections nor commands; projections not commands."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contract_holds() -> None:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert exe, "lint-imports (import-linter) must be installed with the test extra"
    result = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b\d+ kept, 0 broken", result.stdout), result.stdout


def test_third_party_frameworks_stay_in_their_module() -> None:
    """Each framework is imported by one module of ours (STYLE §8)."""
    routes = ("command_routes", "idp_routes", "ledger_routes", "party_routes", "scan_routes")
    simulator = {f"pipeline/simulator/{m}.py" for m in ("app", "gate", *routes, "responses")}
    owners = {
        "rocksdict": {"pipeline/log/store.py"},
        "rich": {"commands/console.py"},
        "httpx": {"pipeline/canton/http.py"},
        "aiohttp": {"pipeline/canton/http.py"},
        "uvloop": {"pipeline/asgi_server.py"},
        "starlette": {*simulator, "commands/daemon/local_api.py", "commands/dashboard/routes.py"},
    }
    for lib, allowed in owners.items():
        users = {
            str(p.relative_to(ROOT))
            for pkg in ("pipeline", "projections", "commands")
            for p in (ROOT / pkg).rglob("*.py")
            if f"import {lib}" in p.read_text() or f"from {lib}" in p.read_text()
        }
        assert users <= allowed, f"{lib} imported outside {allowed}: {users - allowed}"
