"""benchmarks/gpu_check.sh runs end to end as a CPU dry run (tiny sizes), so the one
command prepared for a GPU lease is known to work before a lease is spent on it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_gpu_check_dry_run_completes_every_step(tmp_path: Path) -> None:
    env = {**os.environ, "OUT": str(tmp_path)}
    done = subprocess.run(
        ["bash", "benchmarks/gpu_check.sh", "--dry-run"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = (tmp_path / "summary.txt").read_text()
    for step in ("gpu_tests", "throughput_bicubic", "throughput_fast", "memory", "stream"):
        assert f"{step}: ok" in summary, summary
    assert "dry run" in summary
    assert (tmp_path / "throughput_fast.json").is_file() and (tmp_path / "memory.json").is_file()
