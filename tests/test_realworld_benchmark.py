"""Smoke test: benchmarks/realworld.py runs end to end on a tiny clip (figures come from
the real run, not from here)."""

from __future__ import annotations

import importlib.util
import json
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load_benchmark():
    spec = importlib.util.spec_from_file_location("realworld", ROOT / "benchmarks/realworld.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def _hr_clip(path: Path, frames: int = 6, size: tuple[int, int] = (64, 48)) -> Path:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (size[1] * 2, size[0] * 2, 3), dtype=np.uint8)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "bgr0"
        for i in range(frames):  # a texture panning right by 2 px a frame
            rgb = np.ascontiguousarray(base[: size[1], 2 * i : 2 * i + size[0]])
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def test_realworld_runs_end_to_end(tmp_path: Path, capsys) -> None:
    bench = _load_benchmark()
    clip = _hr_clip(tmp_path / "hr.mkv")
    report = tmp_path / "scores.json"
    argv = [
        "--clip",
        str(clip),
        "--frames",
        "5",
        "--scales",
        "2",
        "--storages",
        "lossless",
        "crf33",
        "--methods",
        "bicubic,lanczos",
        "--threads",
        "1",
        "--json",
        str(report),
    ]
    assert bench.main(argv) == 0
    printed = capsys.readouterr().out
    assert "x2: Y-PSNR" in printed and "lanczos" in printed
    scores = json.loads(report.read_text())["2"]
    for storage in ("lossless", "crf33"):
        for method in ("bicubic", "lanczos"):
            s = scores[storage][method]
            assert 10 < s["psnr"] < 60 and 0 < s["ssim"] <= 1 and s["temporal"] >= 0
    # the codec costs fidelity: CRF 33 scores below the lossless store
    assert scores["crf33"]["bicubic"]["psnr"] < scores["lossless"]["bicubic"]["psnr"]


def test_realworld_threads_must_be_positive(capsys) -> None:
    bench = _load_benchmark()
    with pytest.raises(SystemExit):
        bench.parse_args(["--threads", "0"])
    assert "expected an integer >= 1" in capsys.readouterr().err


def test_temporal_error_is_zero_for_the_truth_and_grows_with_flicker() -> None:
    bench = _load_benchmark()
    rng = np.random.default_rng(1)
    hr = [rng.integers(0, 256, (8, 8)).astype(np.uint8) for _ in range(4)]
    assert bench.temporal_error(hr, hr) == 0.0
    flicker = [
        np.clip(f.astype(int) + (4 if t % 2 else 0), 0, 255).astype(np.uint8)
        for t, f in enumerate(hr)
    ]
    assert bench.temporal_error(flicker, hr) > 2.0
