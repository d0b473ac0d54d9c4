"""The heap setting for tensor churn (vidsr.allocator): applied where glibc is, refused
otherwise, and it really stops freed tile-sized blocks from faulting back in page by page."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from vidsr import allocator

GLIBC = allocator._glibc() is not None

# A worker thread allocating and freeing a tile's worth of activations (22 MB each), as a
# CPU model worker does per batch; prints the minor page faults of the second round.
CHURN = """
import resource, sys, threading
import numpy as np
from vidsr.allocator import keep_freed_memory

applied = keep_freed_memory()

def work():
    for _ in range(20):
        a = np.ones((4, 32, 208, 208), np.float32)
        b = a * 2.0
        c = b + a
        del a, b, c

for round in range(2):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = threading.Thread(target=work)
    t.start()
    t.join()
print(applied, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _churn(setting: str | None) -> tuple[bool, int]:
    env = {k: v for k, v in os.environ.items() if k != allocator.OPT_OUT_VARIABLE}
    if setting is not None:
        env[allocator.OPT_OUT_VARIABLE] = setting
    out = subprocess.run(
        [sys.executable, "-c", CHURN], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(not GLIBC, reason="the heap setting is for glibc's malloc (Linux)")
def test_keeping_freed_memory_stops_page_faults_of_reused_blocks() -> None:
    applied, kept = _churn(None)
    refused, system = _churn("system")
    assert applied and not refused
    # 60 blocks of 22 MB are 330k pages: with glibc's defaults most fault again each time.
    assert system > 20_000, system
    assert kept < system / 10, (kept, system)


@pytest.mark.skipif(not GLIBC, reason="the heap setting is for glibc's malloc (Linux)")
def test_keep_freed_memory_is_idempotent_and_can_be_declined(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(allocator.OPT_OUT_VARIABLE, raising=False)
    assert allocator.keep_freed_memory() is True
    assert allocator.keep_freed_memory() is True
    monkeypatch.setenv(allocator.OPT_OUT_VARIABLE, "System")
    assert allocator.keep_freed_memory() is False


def test_other_platforms_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(allocator.OPT_OUT_VARIABLE, raising=False)
    monkeypatch.setattr(allocator.sys, "platform", "darwin")
    assert allocator._glibc() is None
    assert allocator.keep_freed_memory() is False
