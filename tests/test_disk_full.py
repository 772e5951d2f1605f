"""A full disk and a read-only data directory: a clear error, nothing charged, nothing lost,
and billing resumes when space (or write access) returns. Real processes on a small tmpfs."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import billing, simulator, transfers_per_period, write_catalogue


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "disk"
    mnt.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mnt)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"needs `mount -t tmpfs` (root or CAP_SYS_ADMIN) for a small disk: {mounted.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode != 0, result.stdout
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert all(w in lines[0] for w in words), lines[0]


@pytest.mark.slow
def test_full_then_read_only_disk_then_space_returns(tmp_path: Path, small_disk: Path) -> None:
    everyone = write_catalogue(tmp_path / "sim-data", users=12)  # the simulator funds all twelve
    data = write_catalogue(tmp_path / "data", users=12)
    people = json.loads((data / "users.json").read_text())["users"]

    def bill(count: int) -> None:
        (data / "users.json").write_text(json.dumps({"users": people[:count]}))

    with simulator(everyone) as sim_env:
        env = {**sim_env, "BILLING_DATA_DIR": str(data), "ROCKSDB_PATH": str(small_disk / "state"), "LOG_LEVEL": "warn"}
        bill(4)
        assert billing("pay-all", env=env).returncode == 0
        filler = small_disk / "filler"
        subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True, check=False)
        bill(8)
        _one_line_error(billing("pay-all", env=env), "No space left on device", str(small_disk))
        filler.unlink()  # space returns
        subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
        bill(12)
        _one_line_error(billing("pay-all", env=env), str(small_disk))
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
        resumed = billing("pay-all", env=env)
        assert resumed.returncode == 0, resumed.stderr
        assert "already paid or requested (not charged again) │ 4" in resumed.stdout  # nothing lost
        counts = transfers_per_period(sim_env)
    assert len(counts) == 12 and set(counts.values()) == {1}
