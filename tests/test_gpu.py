"""The CUDA path (run on a GPU machine with ``pytest -m gpu``; skipped elsewhere).

Checks what the CPU suite cannot: the CUDA output matches the CPU output (fp16 autocast:
within 2 codes, mean under 0.1), batches in flight keep every frame in order, and the
pinned buffers are reused instead of allocated per batch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import frame_times, make_video, read_frames

from vidsr.colour.convert import YuvFormat
from vidsr.config import EncodeConfig, RunConfig
from vidsr.engine.processor import FrameProcessor, PlaneFormats
from vidsr.engine.upscaler import load_model
from vidsr.media.planes import HostFrame
from vidsr.pipeline.video import upscale_video

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("model", ["bicubic", "fast", "perceptual"])
def test_cuda_output_matches_cpu(tmp_path: Path, model: str) -> None:
    src = make_video(tmp_path / "in.mkv", n=7, size=(96, 64), codec="ffv1", pix_fmt="yuv444p")
    outputs = {}
    for device in ("cpu", "cuda"):
        dst = tmp_path / f"{device}.mkv"
        upscale_video(
            src,
            dst,
            RunConfig(
                model=model,
                scale=2,
                device=device,
                colour="off",
                batch_size=3,
                encode=EncodeConfig(codec="ffv1", pix_fmt="yuv444p"),
            ),
        )
        outputs[device] = [f.to_ndarray().astype(int) for f in read_frames(dst)]
        assert frame_times(dst) == frame_times(src)
    assert len(outputs["cuda"]) == 7
    for a, b in zip(outputs["cpu"], outputs["cuda"]):
        diff = np.abs(a - b)
        assert diff.max() <= 2 and diff.mean() < 0.1


def test_pinned_buffers_are_reused() -> None:
    fmt = YuvFormat(1, False, 8)
    formats = PlaneFormats(fmt, fmt, "yuv420p")
    processor = FrameProcessor(load_model("fast", 2), torch.device("cuda"), formats)
    planes = (
        np.zeros((64, 96), np.uint8),
        np.zeros((32, 48), np.uint8),
        np.zeros((32, 48), np.uint8),
    )
    previous = None
    for i in range(20):  # the runner's pattern: submit batch k+1, then collect batch k
        pending = processor.submit([HostFrame(i, i, 1, planes)] * 4)
        if previous is not None:
            assert len(previous.result()) == 4
        previous = pending
    assert processor.uploader.ring.allocations <= 4  # two shapes (Y, chroma) x depth 2
    assert processor.downloader.ring.allocations <= 6


def test_compile_on_cuda(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mkv", n=4, size=(96, 64), codec="ffv1", pix_fmt="yuv444p")
    for compiled in (False, True):
        upscale_video(
            src,
            tmp_path / f"{compiled}.mkv",
            RunConfig(
                model="fast",
                device="cuda",
                colour="off",
                compile=compiled,
                encode=EncodeConfig(codec="ffv1", pix_fmt="yuv444p"),
            ),
        )
    for a, b in zip(read_frames(tmp_path / "False.mkv"), read_frames(tmp_path / "True.mkv")):
        assert np.abs(a.to_ndarray().astype(int) - b.to_ndarray().astype(int)).max() <= 2
