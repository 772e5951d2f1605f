"""The README's commands work as written, and the docs' links lead somewhere.

`make demo` and `make test` are not run from here (`make test` would run this suite inside
itself): the Makefile's recipes are checked to be `billing demo` and pytest, and `billing
demo` is run, which is what `make demo` runs once the virtualenv exists. The block under
the README's "Quickstart" heading is run by bash as written, with the venv's `bin` first on
PATH (what `. .venv/bin/activate` does), in a temporary folder, on a free loopback port
instead of 7575, with the state in a temporary ROCKSDB_PATH.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from commands.config import SPECS
from pipeline.asgi_server import free_port
from tests.processes import clean_env

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]
BIN = Path(sys.executable).parent
PROVER_SECONDS = 300  # data/subscriptions.json: the plan the quickstart pays twice

# What the Rust tool's README names (its commands, options, variables, metrics and files):
# each is still documented, commands in the README's table, the rest in the README or docs/.
SEED_COMMANDS = ["setup", "info", "pay", "pay-all", "restart", "monitor", "metrics", "users", "test-otel"]
SEED_NAMES = [
    *("--expires-in-min", "--limit", "--window", "--user", "--subscription"),
    *("`CANTON_CHAIN`", "`APP_NAME`", "`PARTY_APP`", "`APP_PROVIDER_API_URL`", "`SCAN_API_URL`"),
    *("`APP_PROVIDER_JWT`", "`OPENTELEMETRY_INGESTING_HOST`", "`OPENTELEMETRY_SOURCE_ID`"),
    *("`OPENTELEMETRY_SOURCE_TOKEN`", "`RETENTION_DAYS`", "RUST_LOG"),
    *("canton.billing.window.", "payment_count", "total_amount", "success_rate"),
    *("active_users", "active_subscriptions", "`window`", "`subscription`", "`user`"),
    *("data/users.json", "data/subscriptions.json", "dashboard/billing.json", ".env.example"),
]


def fenced_block_after(heading: str, text: str) -> str:
    """The first ```bash block under the Markdown heading ``heading``."""
    section = text.split(f"\n{heading}\n", 1)[1]
    return section.split("```bash\n", 1)[1].split("\n```", 1)[0]


def make_recipe(target: str) -> str:
    makefile = (ROOT / "Makefile").read_text()
    return makefile.split(f"\n{target}:", 1)[1].split("\n")[1].strip()


def test_the_two_commands_are_what_the_test_runs() -> None:
    two = fenced_block_after("## Two commands", README.read_text())
    assert [line.split("#")[0].strip() for line in two.splitlines()] == ["make demo", "make test"]
    assert make_recipe("demo") == "$(BIN)/billing demo"
    assert make_recipe("test") == "$(BIN)/python -m pytest $(PYTEST_ARGS)"


def test_billing_demo_charges_every_period_once(tmp_path: Path) -> None:
    env = clean_env(TMPDIR=str(tmp_path), ROCKSDB_PATH=str(tmp_path / "unused"), EVENT_LOG="embedded")
    done = subprocess.run([str(BIN / "billing"), "demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "TransferPreapproval already exists" in done.stdout
    assert "every period charged exactly once" in done.stdout
    assert not (tmp_path / "unused").exists()


def test_quickstart_runs_as_written(tmp_path: Path) -> None:
    block = fenced_block_after("## Quickstart", README.read_text())
    assert block.count("--port 7575") == 1
    port = free_port()
    script = "set -e\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n" + block.replace("7575", str(port))
    env = clean_env(
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        BILLING_DATA_DIR=str(ROOT / "data"),
        ROCKSDB_PATH=str(tmp_path / "state"),
        EVENT_LOG="embedded",
    )
    _clear_of_a_period_boundary(margin=20)
    proc = subprocess.Popen(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # the simulator in the background is killed with its shell
    )
    try:
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    assert proc.returncode == 0, out + err
    assert "TransferPreapproval created" in out
    assert re.search(r"^paid: 2 CC from alice for prover", out, re.M), out
    assert re.search(r"^already paid: alice prover", out, re.M), out
    assert re.search(r"confirmed\s*│\s*4\s", out), out  # pay-all: every other subscription of data/
    assert re.search(r"1h\s*│\s*5\s*│\s*5\s*│\s*0\s*│\s*6\.25", out), out  # metrics: 5 paid, 6.25 CC
    assert re.search(r"confirmed .*alice::.*prover", out), out  # the audit trail
    assert (tmp_path / "state" / "log").is_dir()


def _clear_of_a_period_boundary(margin: float) -> None:
    """Wait until ``margin`` seconds of the current prover period are left at least, so the two
    `pay` of the quickstart fall in one period (its periods start at multiples of 300 s)."""
    left = PROVER_SECONDS - time.time() % PROVER_SECONDS
    if left < margin:
        time.sleep(left + 1)


def test_every_relative_link_resolves() -> None:
    broken = []
    for doc in DOCS:
        for target in re.findall(r"\]\(([^)\s]+)\)", doc.read_text()):
            if re.match(r"[a-z]+:", target):
                continue  # https:, mailto:
            path, _, anchor = target.partition("#")
            file = (doc.parent / path).resolve() if path else doc
            if not file.exists():
                broken.append(f"{doc.relative_to(ROOT)}: {target}")
            elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
                broken.append(f"{doc.relative_to(ROOT)}: {target} (no such heading)")
    assert not broken, broken


def test_every_path_the_docs_name_exists() -> None:
    """A module or folder named in `code` (`pipeline/processor/`, `commands/config.py`) is there:
    files move, and the docs must move with them."""
    named = r"`((?:pipeline|projections|commands|tests|benchmarks|docs|data|dashboard)/[\w/.\-]*)`"
    gone = [
        f"{doc.relative_to(ROOT)}: {path}"
        for doc in DOCS
        for path in re.findall(named, doc.read_text())
        if not (ROOT / path).exists()
    ]
    assert not gone, gone


def _anchors(doc: Path) -> set[str]:
    """GitHub's ids for the headings of ``doc``: lower case, punctuation dropped, spaces to dashes."""
    headings = re.findall(r"^#+ (.+)$", doc.read_text(), re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_the_rust_tools_names_are_still_documented() -> None:
    table = README.read_text().split("\n## Commands\n", 1)[1]
    missing = [f"command {c}" for c in SEED_COMMANDS if not re.search(rf"^\| `{c}[ `]|, `{c}[ `]", table, re.M)]
    text = "\n".join(doc.read_text() for doc in DOCS)
    missing += [name for name in SEED_NAMES if name not in text]
    assert not missing, missing


def test_the_settings_table_says_what_the_code_does() -> None:
    """Every row of docs/configuration.md's table names a setting of `commands/config.py`,
    with its default (secrets and unset ones have none)."""
    table = (ROOT / "docs" / "configuration.md").read_text()
    rows = dict(re.findall(r"^\| `([A-Z_]+)` \| (?:`([^`]*)`)? *\|", table, re.M))
    code = {s.env: "" if s.default is None else str(s.default).lower() for s in SPECS}
    assert rows.keys() == code.keys()
    assert {env: default.lower() for env, default in rows.items()} == code
