"""Evaluation of a recurrent model on a video: state carried in frame order, temporal error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_lossless_video

from vidsr.eval.evaluate import evaluate, format_table
from vidsr.models.contract import SRModel
from vidsr.models.temporal import RecurrentSR


def _moving_clip(seed: int, n: int = 5, h: int = 32, w: int = 40) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    big = (rng.random((h + 2 * n, w + 2 * n, 3)) * 255).astype(np.uint8)
    return [np.ascontiguousarray(big[t : t + h, 2 * t : 2 * t + w]) for t in range(n)]


def _recurrent() -> SRModel:
    torch.manual_seed(0)
    net = RecurrentSR(2, feats=8, blocks=1, hidden=4)
    with torch.no_grad():  # make the recurrent inputs matter
        net.head.weight.normal_(0, 0.2)
        net.tail.weight.normal_(0, 0.2)
    return SRModel(net, name="rec", family="temporal", scale=2, colour="luma").eval()


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("vids")
    return (
        write_lossless_video(root / "a.mkv", _moving_clip(0)),
        write_lossless_video(root / "b.mkv", _moving_clip(1)),
    )


def test_a_video_is_one_clip_with_the_state_carried(videos) -> None:
    model = _recurrent()
    carried = evaluate(model, [videos[0]])
    reset = evaluate(model, [videos[0]], clips=False)
    assert carried.images[0].psnr == pytest.approx(reset.images[0].psnr)  # both from reset
    later = [abs(a.psnr - b.psnr) for a, b in zip(carried.images[1:], reset.images[1:])]
    assert max(later) > 1e-3  # the state changes what follows
    assert carried.temporal_error is not None and carried.temporal_error > 0
    assert reset.temporal_error is None
    assert "temporal error" in format_table(carried)


def test_the_state_resets_at_each_clip(videos) -> None:
    model = _recurrent()
    both = evaluate(model, list(videos))
    alone = evaluate(model, [videos[1]])
    assert [s.psnr for s in both.images[5:]] == pytest.approx([s.psnr for s in alone.images])
    assert both.clips[1].temporal_error == pytest.approx(alone.temporal_error)


def test_a_single_frame_model_gets_a_temporal_error_too(videos) -> None:
    from vidsr.engine.upscaler import load_model

    report = evaluate(load_model("bicubic", 2), [videos[0]])
    assert report.temporal_error == pytest.approx(report.bicubic_temporal_error)


def test_a_frame_folder_is_a_clip_when_asked(videos, tmp_path: Path) -> None:
    from PIL import Image

    for i, frame in enumerate(_moving_clip(0)):
        Image.fromarray(frame).save(tmp_path / f"{i:03d}.png")
    model = _recurrent()
    video = evaluate(model, [videos[0]])
    folder = evaluate(model, [tmp_path], clips=True)
    assert [s.psnr for s in folder.images] == pytest.approx([s.psnr for s in video.images])
    assert folder.temporal_error == pytest.approx(video.temporal_error)
    assert evaluate(model, [tmp_path]).temporal_error is None  # default: images on their own
