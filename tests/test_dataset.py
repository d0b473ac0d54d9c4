"""Dataset builder and shard reader: determinism, frame skipping, patch alignment."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from vidsr.errors import InputError, OptionError, OutputExistsError
from vidsr.resize import bicubic_downscale
from vidsr.training.dataset import DatasetConfig, FrameFilter, build_dataset
from vidsr.training.degrade import parse_spec
from vidsr.training.shards import ShardDataset, ShardWriter


def textured(seed: int, h: int, w: int) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB: smooth gradients plus random edges, distinct per seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx / w * 200, yy / h * 200, (xx + yy) / (h + w) * 255], -1)
    for _ in range(6):
        y0, x0 = rng.integers(0, h - 8), rng.integers(0, w - 8)
        img[y0 : y0 + rng.integers(4, h // 2), x0 : x0 + rng.integers(4, w // 2)] = rng.integers(0, 256, 3)
    return img.clip(0, 255).astype(np.uint8)


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(textured(i, 40 + 8 * i, 56)).save(folder / f"img{i}.png")
    return folder


def write_video(path: Path, frames: list[np.ndarray]) -> Path:
    """Lossless FFV1 so decoded frames equal ``frames`` exactly."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=Fraction(25, 1))
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "bgr0"
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


@pytest.fixture
def video(tmp_path: Path) -> Path:
    black = np.zeros((48, 64, 3), np.uint8)
    a, b, c = textured(10, 48, 64), textured(11, 48, 64), textured(12, 48, 64)
    # 2 black, a, a (duplicate), b, b+1 (near duplicate), c
    near = np.clip(b.astype(int) + 1, 0, 255).astype(np.uint8)
    return write_video(tmp_path / "clip.mkv", [black, black, a, a, b, near, c])


def files_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_images_deterministic_for_a_seed(image_dir: Path, tmp_path: Path) -> None:
    cfg = DatasetConfig(scale=2, patch=16, seed=3, shard_size=7)
    m1 = build_dataset([image_dir], tmp_path / "a", cfg)
    build_dataset([image_dir], tmp_path / "b", cfg)
    build_dataset([image_dir], tmp_path / "c", DatasetConfig(scale=2, patch=16, seed=4, shard_size=7))
    assert files_bytes(tmp_path / "a") == files_bytes(tmp_path / "b")
    assert files_bytes(tmp_path / "a") != files_bytes(tmp_path / "c")
    assert m1["count"] == sum(s["count"] for s in m1["shards"]) > 7
    assert [s["count"] for s in m1["shards"]][:-1] == [7] * (len(m1["shards"]) - 1)


def test_lr_patches_are_bicubic_of_hr(image_dir: Path, tmp_path: Path) -> None:
    build_dataset([image_dir], tmp_path / "d", DatasetConfig(scale=2, patch=16, seed=0))
    ds = ShardDataset(tmp_path / "d", augment=False)
    shard = ds._shards[0]
    hr, lr = np.asarray(shard["hr"]), np.asarray(shard["lr"])
    assert hr.shape[1:] == (16, 16, 3) and lr.shape[1:] == (8, 8, 3) and hr.dtype == np.uint8
    # Cut from one whole-frame downscale, so only the patch border differs from a
    # downscale of the patch alone.
    own = np.stack([bicubic_downscale(np.ascontiguousarray(p), 2) for p in hr[:10]])
    inner = np.abs(own[:, 2:-2, 2:-2].astype(int) - lr[:10, 2:-2, 2:-2].astype(int))
    assert inner.max() <= 1


def test_video_skips_black_and_duplicates_and_is_deterministic(video: Path, tmp_path: Path) -> None:
    cfg = DatasetConfig(scale=2, patch=16, seed=1, max_patches=4,
                        degradations=(parse_spec("h264:30"), parse_spec("noise:2")))
    m = build_dataset([video], tmp_path / "v1", cfg)
    build_dataset([video], tmp_path / "v2", cfg)
    assert files_bytes(tmp_path / "v1") == files_bytes(tmp_path / "v2")
    record = m["inputs"][0]
    assert record["frames_seen"] == 7
    assert record["skipped"] == {"black": 2, "flat": 0, "duplicate": 2}
    assert record["frames_used"] == 3 and m["count"] == 12
    assert m["degradations"] == ["h264:30", "noise:2"]


def test_frame_filter_flat_frame() -> None:
    f = FrameFilter(black_level=12, min_std=3, min_diff=3)
    assert not f.keep(np.full((32, 32, 3), 128, np.uint8))
    assert f.skipped["flat"] == 1


def test_shard_dataset_layout_and_batches(image_dir: Path, tmp_path: Path) -> None:
    build_dataset([image_dir], tmp_path / "d", DatasetConfig(scale=2, patch=16, seed=0))
    rgb = ShardDataset(tmp_path / "d", colour="rgb", seed=5)
    lr, hr = rgb[0]
    assert lr.shape == (3, 8, 8) and hr.shape == (3, 16, 16) and lr.dtype == torch.float32
    assert 0.0 <= float(hr.min()) and float(hr.max()) <= 1.0
    luma = ShardDataset(tmp_path / "d", colour="luma", seed=5)
    lb, hb = luma.batch(step=3, batch_size=4)
    assert lb.shape == (4, 1, 8, 8) and hb.shape == (4, 1, 16, 16)
    lb2, hb2 = luma.batch(step=3, batch_size=4)
    assert torch.equal(lb, lb2) and torch.equal(hb, hb2)
    assert not torch.equal(hb, luma.batch(step=4, batch_size=4)[1])
    # Augmentation moves LR and HR together: HR downscaled still matches LR.
    lr_b, hr_b = rgb.batch(step=0, batch_size=8)
    down = torch.nn.functional.avg_pool2d(hr_b, 2)
    assert (down - lr_b)[..., 1:-1, 1:-1].abs().mean() < 0.03


def test_shard_writer_flushes_fixed_sizes(tmp_path: Path) -> None:
    w = ShardWriter(tmp_path, shard_size=5)
    for _ in range(4):
        w.add(np.zeros((3, 4, 4, 3), np.uint8), np.zeros((3, 2, 2, 3), np.uint8))
    assert [s["count"] for s in w.close()] == [5, 5, 2]


def test_errors(image_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(OptionError):
        DatasetConfig(scale=3, patch=16)
    with pytest.raises(InputError):
        build_dataset([tmp_path / "missing"], tmp_path / "o", DatasetConfig(scale=2))
    out = tmp_path / "full"
    out.mkdir()
    (out / "x.txt").write_text("x")
    with pytest.raises(OutputExistsError):
        build_dataset([image_dir], out, DatasetConfig(scale=2, patch=16))
    with pytest.raises(InputError, match="no patches"):
        build_dataset([image_dir], tmp_path / "big", DatasetConfig(scale=2, patch=128))
