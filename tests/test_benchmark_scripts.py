"""Every benchmark script starts: ``python benchmarks/NAME.py --help`` imports what it needs
and parses its options (a helper renamed or removed elsewhere breaks it here, not on the
day someone measures)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPTS = sorted(
    p for p in BENCHMARKS.glob("*.py") if p.stem not in ("common", "opencv_peers")
)  # common: a library for the others; opencv_peers: runs in the peers' own interpreter


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_benchmark_script_starts(script: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(script), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=BENCHMARKS.parent,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout
