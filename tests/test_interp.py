"""The interpolation baselines' torch-free 8-bit path (issue 19): a ``--model bicubic``
run that never imports torch, and the numpy kernel equal to the torch one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import make_video

from vidsr.media.planes import HostFrame

RUN_AND_REPORT = """
import sys
from vidsr.cli import main
rc = main(["upscale", sys.argv[1], "-o", sys.argv[2], "--overwrite", *sys.argv[3:]])
print(rc, "torch" in sys.modules)
"""


def _run(src: Path, out: Path, *options: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", RUN_AND_REPORT, str(src), str(out), *options],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.parametrize("model", ["bicubic", "lanczos"])
def test_an_interpolation_run_never_imports_torch(tmp_path: Path, model: str) -> None:
    """`vidsr upscale --model bicubic [--color off]` on the CPU upscales and encodes a clip
    with torch never imported; colour matching needs torch (the float kernel) and loads it,
    so the check can tell the two apart."""
    src = make_video(tmp_path / "in.mp4", n=4, size=(64, 48))
    out = tmp_path / "out.mp4"
    assert _run(src, out, "--model", model, "--color", "off", "--device", "cpu") == "0 False"
    assert out.stat().st_size > 0
    assert _run(src, out, "--model", model, "--color", "frame", "--device", "cpu") == "0 True"
    # without --color an interpolation baseline runs without colour matching: torch-free
    assert _run(src, out, "--model", model, "--device", "cpu") == "0 False"


def test_default_colour_is_off_for_interpolators_and_shot_for_learned_models() -> None:
    import argparse

    from vidsr.cli.upscale_cmd import add_run_options, config_from_args

    parser = argparse.ArgumentParser()
    add_run_options(parser)
    colour = {
        argv: config_from_args(parser.parse_args(argv.split())).colour
        for argv in ("--model bicubic", "--model lanczos", "--model fast", "--model quality",
                     "--model bicubic --color shot", "--model fast --color off", "")
    }  # fmt: skip
    assert colour == {
        "--model bicubic": "off",
        "--model lanczos": "off",
        "--model fast": "shot",
        "--model quality": "shot",
        "--model bicubic --color shot": "shot",  # asked for: done
        "--model fast --color off": "off",
        "": "shot",  # the default model is learned
    }


def test_numpy_taps_are_the_torch_taps() -> None:
    import torch

    from vidsr.models.baselines import cubic_kernel, lanczos_kernel, polyphase_weights
    from vidsr.models.interp import cubic_taps, lanczos_taps, polyphase_taps

    x = np.linspace(-4, 4, 81)
    assert np.allclose(cubic_kernel(torch.from_numpy(x)).numpy(), cubic_taps(x))
    assert np.allclose(lanczos_kernel(torch.from_numpy(x)).numpy(), lanczos_taps(x))
    # x2 bicubic: MATLAB's taps are exact multiples of 1/128
    assert np.array_equal(polyphase_taps(2, "bicubic")[0] * 128, [0, -3, 29, 111, -9, 0, 0])
    assert torch.equal(
        polyphase_weights(3, "lanczos"), torch.from_numpy(polyphase_taps(3, "lanczos"))
    )


@pytest.mark.parametrize("kernel", ["bicubic", "lanczos"])
@pytest.mark.parametrize("size", [(2, 3), (1, 1), (3, 9)])
def test_planes_too_small_to_mirror_match_the_float_path(kernel: str, size: tuple) -> None:
    """Planes of at most ``radius`` pixels a side take the numpy float path: the torch
    float path rounded, exactly (edge replication where mirroring cannot)."""
    import torch

    from vidsr.models.baselines import PolyphaseUpsampler
    from vidsr.models.interp import Interpolator

    plane = np.random.default_rng(1).integers(0, 256, size, dtype=np.uint8)
    net = PolyphaseUpsampler(2, kernel)
    with torch.inference_mode():
        ref = net._upsample_axis(
            net._upsample_axis(torch.from_numpy(plane)[None, None].double(), 3), 2
        )
    expected = np.clip(np.rint(ref[0, 0].numpy()), 0, 255).astype(np.uint8)
    assert np.array_equal(Interpolator(2, kernel).upsample_u8(plane), expected)


def test_the_torch_free_stage_is_the_processors_integer_kernel() -> None:
    """The same planes as :class:`FrameProcessor`'s ``integer`` kernel, 4:2:0 and 4:4:4."""
    import torch

    from vidsr.colour.convert import YuvFormat
    from vidsr.engine.integer import IntegerProcessor
    from vidsr.engine.processor import FrameProcessor, PlaneFormats
    from vidsr.engine.upscaler import load_interpolator, load_model

    fmt = YuvFormat(1, False, 8)
    rng = np.random.default_rng(0)
    planes = (
        rng.integers(16, 235, (48, 64), dtype=np.uint8),
        rng.integers(16, 240, (24, 32), dtype=np.uint8),
        rng.integers(16, 240, (24, 32), dtype=np.uint8),
    )
    frames = [HostFrame(0, 0, 1, planes)]
    for out_format in ("yuv420p", "yuv444p"):
        formats = PlaneFormats(fmt, fmt, out_format)
        reference = FrameProcessor(load_model("bicubic", 2), torch.device("cpu"), formats)
        assert reference.kernel == "integer"
        stage = IntegerProcessor(load_interpolator("bicubic", 2), formats)
        for a, b in zip(reference.process(frames)[0], stage.submit(frames).result()[0]):
            assert a.shape == b.shape and np.array_equal(a, b)
    assert load_interpolator("fast", 2) is None
