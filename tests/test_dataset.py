"""Dataset builder and shard reader: determinism, frame skipping, patch alignment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import dataset_argv, write_lossless_video
from PIL import Image

from vidsr.errors import InputError, OptionError, OutputExistsError
from vidsr.eval.resize import bicubic_downscale
from vidsr.training.dataset import DatasetConfig, FrameFilter, build_dataset, plan_targets
from vidsr.training.degrade import parse_spec
from vidsr.training.shards import ShardDataset, ShardWriter


def textured(seed: int, h: int, w: int) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB: smooth gradients plus random edges, distinct per seed."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx / w * 200, yy / h * 200, (xx + yy) / (h + w) * 255], -1)
    for _ in range(6):
        y0, x0 = rng.integers(0, h - 8), rng.integers(0, w - 8)
        img[y0 : y0 + rng.integers(4, h // 2), x0 : x0 + rng.integers(4, w // 2)] = rng.integers(
            0, 256, 3
        )
    return img.clip(0, 255).astype(np.uint8)


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(3):
        Image.fromarray(textured(i, 40 + 8 * i, 56)).save(folder / f"img{i}.png")
    return folder


@pytest.fixture
def video(tmp_path: Path) -> Path:
    black = np.zeros((48, 64, 3), np.uint8)
    a, b, c = textured(10, 48, 64), textured(11, 48, 64), textured(12, 48, 64)
    # 2 black, a, a (duplicate), b, b+1 (near duplicate), c
    near = np.clip(b.astype(int) + 1, 0, 255).astype(np.uint8)
    return write_lossless_video(tmp_path / "clip.mkv", [black, black, a, a, b, near, c])


def files_bytes(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_images_deterministic_for_a_seed(image_dir: Path, tmp_path: Path) -> None:
    cfg = DatasetConfig(scale=2, patch=16, seed=3, shard_size=7)
    m1 = build_dataset([image_dir], tmp_path / "a", cfg)
    build_dataset([image_dir], tmp_path / "b", cfg)
    build_dataset(
        [image_dir], tmp_path / "c", DatasetConfig(scale=2, patch=16, seed=4, shard_size=7)
    )
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
    cfg = DatasetConfig(
        scale=2,
        patch=16,
        seed=1,
        max_patches=4,
        degradations=(parse_spec("h264:30"), parse_spec("noise:2")),
    )
    m = build_dataset([video], tmp_path / "v1", cfg)
    build_dataset([video], tmp_path / "v2", cfg)
    assert files_bytes(tmp_path / "v1") == files_bytes(tmp_path / "v2")
    record = m["inputs"][0]
    assert record["frames_seen"] == 7
    assert record["skipped"] == {"black": 2, "flat": 0, "duplicate": 2}
    assert record["frames_used"] == 3 and m["count"] == 12
    assert m["degradations"] == ["h264:30", "noise:2"]


def test_plan_targets_spreads_the_budget_over_shots() -> None:
    assert plan_targets([12, 12, 12], 0, 0) == list(range(36))  # no cap: every frame
    assert plan_targets([12, 12, 12], 3, 0) == [6, 18, 30]  # one from the middle of each shot
    assert plan_targets([12, 12, 12], 0, 2) == [3, 9, 15, 21, 27, 33]  # middles of the halves
    assert plan_targets([12, 12, 12], 2, 0) == [6, 30]  # fewer frames than shots: spread shots
    # the short shot gives the two frames it has, the long one the rest, evenly spaced
    assert plan_targets([2, 20], 6, 0) == [0, 1, 4, 9, 14, 19]
    assert plan_targets([5], 10, 0) == [0, 1, 2, 3, 4]  # budget above the frames: all of them


@pytest.fixture
def three_shot_video(tmp_path: Path) -> Path:
    """Three 12-frame shots of different scenes, each panning one pixel a frame; frame 25
    (in the third shot's first half) is black."""
    frames = []
    for scene in (20, 21, 22):
        base = textured(scene, 64, 96)
        frames += [np.roll(base, i, axis=1) for i in range(12)]
    frames[27] = np.zeros_like(frames[27])
    return write_lossless_video(tmp_path / "shots.mkv", frames)


def test_capped_video_sample_covers_every_shot(three_shot_video: Path, tmp_path: Path) -> None:
    cfg = DatasetConfig(scale=2, patch=16, seed=0, max_patches=2, max_frames=3)
    record = build_dataset([three_shot_video], tmp_path / "a", cfg)["inputs"][0]
    assert record["shots"] == 3
    assert record["frame_indices"] == [6, 18, 30]  # not the first three frames of shot one
    assert record["frames_used"] == 3 and record["patches"] == 6

    per_shot = DatasetConfig(scale=2, patch=16, seed=0, max_patches=2, frames_per_shot=2)
    record = build_dataset([three_shot_video], tmp_path / "b", per_shot)["inputs"][0]
    # target 27 is the black frame: it is skipped and frame 28 takes its turn
    assert record["frame_indices"] == [3, 9, 15, 21, 28, 33]
    assert record["skipped"]["black"] == 1 and record["frames_used"] == 6


def test_uncapped_video_record_has_no_plan(three_shot_video: Path, tmp_path: Path) -> None:
    record = build_dataset(
        [three_shot_video], tmp_path / "c", DatasetConfig(scale=2, patch=16, max_patches=1)
    )["inputs"][0]
    assert "shots" not in record and "frame_indices" not in record
    assert record["frames_seen"] == 36 and record["skipped"]["black"] == 1


VID4_CALENDAR = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "Vid4" / "calendar.mkv"
)


@pytest.mark.skipif(
    not VID4_CALENDAR.is_file(), reason=f"shared Vid4 clip absent ({VID4_CALENDAR}); present in CI"
)
def test_dataset_from_a_real_clip(tmp_path: Path) -> None:
    """The builder on a real video (Vid4 calendar, 41 frames, one shot): a capped sample
    spread over the clip, deterministic, LR the bicubic of HR."""
    cfg = DatasetConfig(scale=4, patch=48, seed=3, max_patches=8, max_frames=4)
    m = build_dataset([VID4_CALENDAR], tmp_path / "v1", cfg)
    build_dataset([VID4_CALENDAR], tmp_path / "v2", cfg)
    assert files_bytes(tmp_path / "v1") == files_bytes(tmp_path / "v2")
    record = m["inputs"][0]
    assert record["shots"] == 1 and record["frame_indices"] == [5, 15, 25, 35]
    assert m["count"] == 32
    lr, hr = ShardDataset(tmp_path / "v1", colour="rgb", seed=0)[0]
    assert lr.shape == (3, 12, 12) and hr.shape == (3, 48, 48)
    hr_u8 = (hr.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    lr_u8 = (lr.permute(1, 2, 0).numpy() * 255).round().astype(np.int16)
    # patches are cut from the whole frame's downscale: the interior matches the patch's own
    diff = np.abs(bicubic_downscale(hr_u8, 4).astype(np.int16) - lr_u8)[2:-2, 2:-2]
    assert diff.max() <= 1


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
    assert not (tmp_path / "big").exists()


def test_failed_build_leaves_nothing_behind(image_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    config = DatasetConfig(scale=2, patch=16, shard_size=2)
    made = tmp_path / "made"
    with pytest.raises(InputError):
        build_dataset([image_dir, broken], made, config)
    assert not made.exists()
    # A folder the user made is kept (empty again), with nothing of the failed build in it.
    given = tmp_path / "given"
    given.mkdir()
    with pytest.raises(InputError):
        build_dataset([image_dir, broken], given, config)
    assert given.is_dir() and list(given.iterdir()) == []


def test_codec_mode_from_video_uses_runs_of_frames(tmp_path: Path) -> None:
    from vidsr.training.codec_degrade import parse_codec_spec

    base = textured(20, 64, 96)
    frames = [np.ascontiguousarray(np.roll(base, (i, 2 * i), (0, 1))[:48, :64]) for i in range(14)]
    clip = write_lossless_video(tmp_path / "moving.mkv", frames)
    spec = parse_codec_spec("codec:x264:crf=24-30:frames=5-5:window=24:bframes=1-2:gop=32")
    cfg = DatasetConfig(scale=2, patch=16, seed=2, codec=spec, max_patches=8)
    m = build_dataset([clip], tmp_path / "v", cfg)
    rec = m["inputs"][0]
    # 14 frames: runs start at 0, 5, 10 (the last one cut short by the end of the clip)
    assert rec["frames_used"] == 3 and [s["frames"] for s in rec["samples"]] == [5, 5, 4]
    assert "P" in rec["picture_types"] or "B" in rec["picture_types"]
    assert m["count"] == rec["patches"] == 3 * 8
    assert m["degradations"] == [spec.spec()]
    again = build_dataset([clip], tmp_path / "w", cfg)
    assert files_bytes(tmp_path / "v") == files_bytes(tmp_path / "w") and again == m
    capped = build_dataset(
        [clip],
        tmp_path / "c",
        DatasetConfig(scale=2, patch=16, seed=2, codec=spec, max_patches=8, max_frames=1),
    )
    assert capped["inputs"][0]["frames_used"] == 1


def test_cli_codec_degradation(image_dir: Path, tmp_path: Path) -> None:
    import json

    from vidsr.cli import dataset_cmd, train_cmd

    out = tmp_path / "cli"
    spec = "web:frames=4-5:window=16:crf=30"
    assert (
        train_cmd.standalone(
            dataset_cmd.register,
            dataset_argv(
                out, "--degrade", spec, "--degrade", "noise:1", "--sequences", "2", str(image_dir)
            ),
        )
        == 0
    )
    m = json.loads((out / "manifest.json").read_text())
    assert m["degradations"][0].startswith("codec:x264:crf=30-30:") and m["count"] > 0
    assert m["degradations"][1] == "noise:1" and m["settings"]["sequences"] == 2
    assert (
        train_cmd.standalone(
            dataset_cmd.register,
            dataset_argv(tmp_path / "bad", "--degrade", "web", "--degrade", "dvd", str(image_dir)),
        )
        != 0
    )
