"""Seeded fuzz test: a small valid video, mutated (bit flips, truncations, duplicated
and dropped byte ranges), run through `vidsr upscale`. Every case must end within its
time limit with exit 0 and a decodable output, or exit 1 and one error line: no
traceback, no hang, no stray file.

CI runs ``VIDSR_FUZZ_CASES`` cases (default 24); set it to a few hundred for a campaign.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import make_video

CASES = int(os.environ.get("VIDSR_FUZZ_CASES", "24"))
SEED = int(os.environ.get("VIDSR_FUZZ_SEED", "1234"))
CASE_SECONDS = 30.0


def mutate(data: bytes, rng: np.random.Generator) -> bytes:
    buf = bytearray(data)
    for _ in range(int(rng.integers(1, 4))):
        kind = rng.choice(["flip", "truncate", "duplicate", "drop"])
        n = len(buf)
        if n < 16:
            break
        if kind == "flip":
            for pos in rng.integers(0, n, size=int(rng.integers(1, 64))):
                buf[pos] ^= 1 << int(rng.integers(0, 8))
        elif kind == "truncate":
            del buf[int(rng.integers(8, n)) :]
        else:
            start = int(rng.integers(0, n - 8))
            length = int(rng.integers(1, min(4096, n - start)))
            if kind == "duplicate":
                buf[start:start] = buf[start : start + length]
            else:
                del buf[start : start + length]
    return bytes(buf)


def run_worker(cases_file: Path, results_file: Path) -> list[dict]:
    """Run the worker until every case has a result; a case past its limit is a hang."""
    worker = Path(__file__).with_name("fuzz_worker.py")
    total = len(cases_file.read_text().split())
    while True:
        proc = subprocess.Popen(
            [sys.executable, str(worker), str(cases_file), str(results_file)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        last_change, last_size = time.monotonic(), -1
        while proc.poll() is None:
            size = results_file.stat().st_size if results_file.exists() else 0
            if size != last_size:
                last_change, last_size = time.monotonic(), size
            elif time.monotonic() - last_change > CASE_SECONDS + 10:  # +10: the worker's imports
                proc.kill()
                proc.wait()
                lines = [json.loads(x) for x in results_file.read_text().splitlines()]
                with results_file.open("a") as f:
                    f.write(json.dumps({"case": lines[-1]["case"], "hang": True}) + "\n")
                break
            time.sleep(0.2)
        records = [json.loads(x) for x in results_file.read_text().splitlines()]
        finished = {r["case"] for r in records if "started" not in r}
        if len(finished) >= total:
            return [r for r in records if "started" not in r]
        if proc.returncode not in (None, 0, -9):
            raise AssertionError(
                f"fuzz worker crashed (exit {proc.returncode}): {proc.stderr.read()[-2000:]}"
            )


@pytest.mark.slow
def test_fuzzed_videos_end_cleanly(tmp_path: Path) -> None:
    seed = make_video(tmp_path / "seed.mp4", n=12, size=(48, 32), audio=True)
    data = seed.read_bytes()
    rng = np.random.default_rng(SEED)
    cases_dir = tmp_path / "cases"
    cases_dir.mkdir()
    names = []
    for i in range(CASES):
        case = cases_dir / f"case{i:04d}.mp4"
        case.write_bytes(mutate(data, rng))
        names.append(str(case))
    cases_file = tmp_path / "cases.txt"
    cases_file.write_text("\n".join(names))
    records = run_worker(cases_file, tmp_path / "results.jsonl")

    problems = []
    for r in records:
        if r.get("hang"):
            problems.append(f"{r['case']}: no result within {CASE_SECONDS} s")
        elif r.get("traceback"):
            problems.append(f"{r['case']}: traceback\n{r['traceback']}")
        elif r["rc"] == 0 and "output_frames" not in r:
            problems.append(
                f"{r['case']}: exit 0 but output does not decode: {r.get('output_error')}"
            )
        elif r["rc"] == 1 and len([x for x in r["stderr"].splitlines() if x.strip()]) != 1:
            problems.append(f"{r['case']}: error is not one line: {r['stderr']!r}")
        elif r["rc"] not in (0, 1):
            problems.append(f"{r['case']}: exit code {r['rc']}")
    leftovers = [p.name for p in cases_dir.iterdir() if ".partial" in p.name]
    assert not leftovers, f"stray partial files: {leftovers}"
    outcome = {
        "ok": sum(r.get("rc") == 0 for r in records),
        "error": sum(r.get("rc") == 1 for r in records),
    }
    print(f"fuzz: {len(records)} cases, {outcome}")
    assert not problems, "\n".join(problems)
