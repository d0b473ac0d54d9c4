"""``--resampler swscale`` (issue 19): FFmpeg's own scaler for the interpolation baselines,
next to the MATLAB-exact kernel: the same pixels within a code inside the frame, the same
output file otherwise, torch never imported, and a one-line refusal where it cannot run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import frame_times, make_video, read_frames, run_cli

from vidsr.colour.convert import YuvFormat
from vidsr.config import RunConfig
from vidsr.engine.formats import PlaneFormats
from vidsr.engine.integer import ExactResampler
from vidsr.engine.swscale import SwscaleResampler, planar_format
from vidsr.errors import OptionError
from vidsr.models.interp import Interpolator
from vidsr.pipeline import planning


def _smooth(rng: np.random.Generator, h: int, w: int, sigma: float) -> np.ndarray:
    """Blurred noise: detail at every frequency the kernels pass, no flat areas."""
    noise = rng.integers(0, 256, (h, w), dtype=np.uint8)
    return cv2.GaussianBlur(noise, (0, 0), sigma)


def _planes(h: int, w: int, shift: tuple[int, int], seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    ch, cw = -(-h >> shift[0]), -(-w >> shift[1])
    return _smooth(rng, h, w, 1.0), _smooth(rng, ch, cw, 1.0), _smooth(rng, ch, cw, 1.0)


@pytest.mark.parametrize("kernel", ["bicubic", "lanczos"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_swscale_matches_the_exact_kernel_inside_the_frame(kernel: str, scale: int) -> None:
    """Same curve (Keys a = -0.5 / Lanczos-3), different arithmetic: swscale's 14-bit
    fixed-point taps and intermediate rounding against the exact kernel's (itself within
    0.54 code of the float kernel), so at most one code apart inside the frame; measured
    mean 0.05-0.09 code on this content (0.15 asserted). Near the borders swscale repeats
    the edge pixel where MATLAB mirrors the image: a few codes at most on smooth content.
    swscale scales chroma with the same kernel, so chroma is compared with the exact
    kernel on chroma (the exact path itself resizes chroma with OpenCV's a = -0.75 cubic:
    see the next test)."""
    planes = _planes(72, 88, (1, 1))
    model = Interpolator(scale, kernel)
    exact = [model.upsample_u8(p) for p in planes]
    fast = SwscaleResampler(kernel, scale, "yuv420p").resample(planes)
    margin = (model.radius + 1) * scale
    for ours, theirs in zip(fast, exact):
        assert ours.shape == theirs.shape and ours.dtype == np.uint8
        diff = np.abs(ours.astype(np.int16) - theirs.astype(np.int16))
        inner = diff[margin:-margin, margin:-margin]
        assert inner.max() <= 1
        assert inner.mean() < 0.15
        assert diff.max() <= 4


def test_swscale_chroma_is_near_the_exact_paths_opencv_chroma() -> None:
    """The exact path's chroma is OpenCV's bicubic (a = -0.75, sharper than a = -0.5):
    measured up to 5 codes apart on this detailed content, 0.9 on average."""
    planes = _planes(72, 88, (1, 1))
    exact = ExactResampler(Interpolator(2, "bicubic"), "yuv420p").resample(planes)
    fast = SwscaleResampler("bicubic", 2, "yuv420p").resample(planes)
    assert np.array_equal(fast[0].shape, exact[0].shape)
    for ours, theirs in zip(fast[1:], exact[1:]):
        diff = np.abs(ours.astype(np.int16) - theirs.astype(np.int16))[8:-8, 8:-8]
        assert 0 < diff.mean() < 1.2
        assert diff.max() <= 8


def test_swscale_is_not_the_exact_kernel_at_the_borders() -> None:
    """The check above can fail: a step at the left edge is where repeating the edge and
    mirroring the image part (column 0 and 1 differ, MATLAB reads column 1 past the edge)."""
    y = np.full((32, 32), 128, np.uint8)
    y[:, 0] = 0
    planes = (y, np.full((16, 16), 128, np.uint8), np.full((16, 16), 128, np.uint8))
    exact = ExactResampler(Interpolator(2, "bicubic"), "yuv420p").resample(planes)[0]
    fast = SwscaleResampler("bicubic", 2, "yuv420p").resample(planes)[0]
    assert np.abs(exact[:, :4].astype(int) - fast[:, :4]).max() >= 2
    assert np.array_equal(exact[:, 16:], fast[:, 16:])


@pytest.mark.parametrize(
    ("in_shift", "out_format"),
    [((1, 1), "yuv420p"), ((0, 1), "yuv422p"), ((0, 0), "yuv444p"), ((1, 1), "yuv444p")],
)
def test_swscale_keeps_each_format_and_scales_chroma_to_the_output(
    in_shift: tuple[int, int], out_format: str
) -> None:
    planes = _planes(30, 46, in_shift)
    exact = ExactResampler(Interpolator(2, "bicubic"), out_format).resample(planes)
    fast = SwscaleResampler("bicubic", 2, out_format).resample(planes)
    assert [p.shape for p in fast] == [p.shape for p in exact]
    assert all(p.flags.c_contiguous for p in fast)


def test_planar_format_names_the_subsampling() -> None:
    assert planar_format(_planes(31, 45, (1, 1))) == "yuv420p"  # odd sizes round up
    assert planar_format(_planes(30, 46, (0, 1))) == "yuv422p"
    assert planar_format(_planes(30, 46, (0, 0))) == "yuv444p"
    with pytest.raises(ValueError, match="uint8"):
        planar_format(tuple(p.astype(np.uint16) for p in _planes(8, 8, (1, 1))))


def _upscale(src: Path, out: Path, *options: str) -> str:
    done = run_cli(
        "upscale", str(src), "-o", str(out), "--overwrite", "--model", "bicubic",
        "--color", "off", "--device", "cpu", "--crf", "0", *options,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_a_swscale_run_writes_the_exact_runs_file(tmp_path: Path) -> None:
    """Same size, pixel format, frame count and (variable) timestamps as the exact path;
    the pictures within a code on average (lossless x264); the summary names the
    resampler that ran."""
    pts = [0, 40, 80, 160, 200, 280, 320, 360]
    src = make_video(tmp_path / "in.mp4", n=len(pts), size=(64, 48), pts_ms=pts)
    exact_line = _upscale(src, tmp_path / "exact.mp4")
    fast_line = _upscale(src, tmp_path / "fast.mp4", "--resampler", "swscale")
    assert "exact resampler" in exact_line and "swscale resampler" in fast_line
    exact, fast = read_frames(tmp_path / "exact.mp4"), read_frames(tmp_path / "fast.mp4")
    assert len(fast) == len(exact) == len(pts)
    assert frame_times(tmp_path / "fast.mp4") == frame_times(tmp_path / "exact.mp4")
    for a, b in zip(fast, exact):
        assert (a.width, a.height, a.format.name) == (b.width, b.height, b.format.name)
        assert (a.width, a.height) == (128, 96)
        diff = np.abs(a.to_ndarray().astype(int) - b.to_ndarray().astype(int))
        assert diff.mean() < 1.0
    with av.open(str(tmp_path / "fast.mp4")) as c, av.open(str(tmp_path / "exact.mp4")) as d:
        assert c.streams.video[0].average_rate == d.streams.video[0].average_rate


RUN_AND_REPORT = """
import sys
from vidsr.cli import main
rc = main(["upscale", sys.argv[1], "-o", sys.argv[2], "--overwrite", *sys.argv[3:]])
print(rc, "torch" in sys.modules)
"""


@pytest.mark.parametrize("model", ["bicubic", "lanczos"])
def test_a_swscale_run_never_imports_torch(tmp_path: Path, model: str) -> None:
    src = make_video(tmp_path / "in.mp4", n=3, size=(64, 48))
    options = ["--model", model, "--color", "off", "--device", "cpu", "--resampler", "swscale"]
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_REPORT, str(src), str(tmp_path / "o.mp4"), *options],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert done.stdout.strip().splitlines()[-1] == "0 False"


@pytest.mark.parametrize(
    ("given", "why"),
    [
        ({"model": "fast"}, "applies to --model bicubic or lanczos, not fast"),
        ({"model": None}, "not the default model"),
        ({"device": "cuda"}, "runs on the CPU"),
        ({"colour": "shot"}, "needs --color off"),
        ({"tile": 64}, "drop --tile"),
        ({"compile": True}, "drop --compile"),
        ({"self_ensemble": True}, "drop --compile / --self-ensemble"),
    ],
)
def test_swscale_is_refused_where_it_cannot_run(given: dict, why: str) -> None:
    settings = {"model": "bicubic", "colour": "off", "resampler": "swscale", **given}
    with pytest.raises(OptionError, match="--resampler swscale") as caught:
        RunConfig(**settings)
    assert why in str(caught.value) and "\n" not in str(caught.value)
    RunConfig(**{**settings, "resampler": "exact"})  # the same run with the exact kernel


def test_an_unknown_resampler_is_refused() -> None:
    with pytest.raises(OptionError, match="--resampler must be one of exact, swscale"):
        RunConfig(model="bicubic", resampler="opencv")


def _formats(in_bits: int, out_bits: int) -> PlaneFormats:
    return PlaneFormats(YuvFormat(1, False, in_bits), YuvFormat(1, False, out_bits), "yuv420p")


def test_swscale_needs_8_bit_planes_and_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    config = RunConfig(model="bicubic", colour="off", resampler="swscale", device="auto")
    with pytest.raises(OptionError, match=r"needs 8-bit input and output \(8-bit in, 10-bit"):
        planning.build_compute(config, 64, 48, _formats(8, 10))
    monkeypatch.setattr(planning, "runs_on_cpu", lambda _device: False)
    with pytest.raises(OptionError, match="runs on the CPU"):
        planning.build_compute(config, 64, 48, _formats(8, 8))


def test_the_cli_refuses_swscale_in_one_line(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", n=2, size=(64, 48))
    cases = [
        (["--model", "fast", "--color", "off"], "applies to --model bicubic or lanczos"),
        (["--model", "bicubic", "--color", "shot"], "needs --color off"),
        (["--model", "bicubic", "--color", "off", "--pix-fmt", "yuv420p10le"], "8-bit"),
    ]
    for options, why in cases:
        done = run_cli(
            "upscale", str(src), "-o", str(tmp_path / "o.mp4"), "--overwrite",
            "--device", "cpu", "--resampler", "swscale", *options,
        )  # fmt: skip
        assert done.returncode != 0
        errors = [line for line in done.stderr.splitlines() if "error" in line]
        assert len(errors) == 1 and why in errors[0], done.stderr  # (a progress bar may show)
    folder = run_cli(
        "upscale", str(src), "-o", str(tmp_path / "frames") + "/", "--model", "bicubic",
        "--color", "off", "--resampler", "swscale",
    )  # fmt: skip
    assert folder.returncode != 0 and "not folders" in folder.stderr
