"""Recurrent training: sequence shards, training through sequences, resume, warm start,
export + card + load round-trip."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import smooth_image
from PIL import Image
from safetensors.torch import save_file

from vidsr.engine import upscaler
from vidsr.errors import OptionError
from vidsr.eval.resize import bicubic_downscale
from vidsr.models.contract import ModelEntry
from vidsr.models.quality import QualitySR
from vidsr.models.registry import REGISTRY
from vidsr.models.temporal import RecurrentSR
from vidsr.training.dataset import DatasetConfig, build_dataset
from vidsr.training.export import export_model
from vidsr.training.shards import SequenceDataset
from vidsr.training.train import TrainConfig, train

TINY = ModelEntry(
    name="tiny-rec",
    family="temporal",
    scales=(2,),
    colour="luma",
    build=lambda s: RecurrentSR(s, feats=8, blocks=1, hidden=4),
    description="tiny recurrent test net",
)


def textured(seed: int, h: int = 72, w: int = 80) -> np.ndarray:
    """A smooth random RGB image with some detail, ``(h, w, 3)`` uint8."""
    return smooth_image(seed, h, w, period=5.0)


@pytest.fixture(scope="module")
def seqs(tmp_path_factory) -> tuple[Path, Path]:
    """An x2 sequence set (5 frames of 16-pixel patches) and a held-out one."""
    root = tmp_path_factory.mktemp("seq")
    imgs, val = root / "imgs", root / "val"
    imgs.mkdir()
    val.mkdir()
    for i in range(3):
        Image.fromarray(textured(i)).save(imgs / f"{i}.png")
    Image.fromarray(textured(9)).save(val / "v.png")
    cfg = DatasetConfig(scale=2, patch=16, frames=5, sequences=6, cut_rate=0.3)
    build_dataset([imgs], root / "ds", cfg)
    build_dataset([val], root / "val_ds", DatasetConfig(scale=2, patch=24, frames=5, sequences=2))
    return root / "ds", root / "val_ds"


def _digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_sequence_shards_are_aligned_moving_and_deterministic(seqs, tmp_path: Path) -> None:
    ds = SequenceDataset(seqs[0], augment=False)
    manifest = ds.manifest
    assert manifest["format"] == "vidsr-sequences/1" and manifest["count"] == len(ds) == 18
    assert sum(i["cuts"] for i in manifest["inputs"]) > 0  # some sequences cut
    lr, hr = ds.sequence(0)
    assert lr.shape == (5, 8, 8, 3) and hr.shape == (5, 16, 16, 3)
    for t in range(5):  # LR is the protocol's bicubic of the HR frame (window margin cropped)
        ref = bicubic_downscale(np.ascontiguousarray(hr[t]), 2).astype(int)
        assert np.abs(ref - lr[t])[2:-2, 2:-2].max() <= 1
    assert np.abs(hr[1:].astype(int) - hr[:-1]).mean() > 0.5  # the window moves
    imgs = seqs[0].parent / "imgs"
    cfg = DatasetConfig(scale=2, patch=16, frames=5, sequences=6, cut_rate=0.3)
    build_dataset([imgs], tmp_path / "again", cfg)
    assert _digest(tmp_path / "again") == _digest(seqs[0])
    build_dataset([imgs], tmp_path / "other", DatasetConfig(**{**cfg.__dict__, "seed": 1}))
    assert _digest(tmp_path / "other") != _digest(seqs[0])


def test_video_runs_give_consecutive_frame_sequences(tmp_path: Path) -> None:
    from conftest import write_lossless_video

    big = textured(5, 60, 90)
    frames = [np.ascontiguousarray(big[:, t : t + 64]) for t in range(0, 24, 3)]  # 8 frames
    video = write_lossless_video(tmp_path / "pan.mkv", frames)
    cfg = DatasetConfig(scale=2, patch=16, frames=4, sequences=2, min_diff=0.0)
    manifest = build_dataset([video], tmp_path / "ds", cfg)
    assert manifest["count"] == 4 and manifest["inputs"][0]["frames_used"] == 2  # 2 runs
    lr, hr = SequenceDataset(tmp_path / "ds", augment=False).sequence(0)
    assert lr.shape == (4, 8, 8, 3) and hr.shape == (4, 16, 16, 3)
    spots = [(y, x) for y in range(0, 45, 2) for x in range(0, 49, 2)]
    (y, x), *_ = [
        (y, x) for y, x in spots if np.array_equal(hr[0], frames[0][y : y + 16, x : x + 16])
    ]
    for t in range(4):  # the same window of consecutive frames, in order
        assert np.array_equal(hr[t], frames[t][y : y + 16, x : x + 16])


def test_sequence_batches_are_5d_and_depend_on_seed_and_step(seqs) -> None:
    ds = SequenceDataset(seqs[0], seed=3)
    lr, hr = ds.batch(7, 4)
    assert lr.shape == (4, 5, 1, 8, 8) and hr.shape == (4, 5, 1, 16, 16)
    assert torch.equal(lr, SequenceDataset(seqs[0], seed=3).batch(7, 4)[0])
    assert not torch.equal(lr, ds.batch(8, 4)[0])


def config(seqs: tuple[Path, Path], out: Path, **kw) -> TrainConfig:
    base = dict(
        arch="tiny-rec",
        scale=2,
        data=str(seqs[0]),
        out=str(out),
        steps=30,
        batch_size=4,
        lr=5e-3,
        log_every=10,
        ckpt_every=10,
        val_every=1000,
        device="cpu",
    )
    base.update(kw)
    return TrainConfig(**base)


def test_training_through_sequences_lowers_the_loss(seqs, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    result = train(config(seqs, tmp_path / "run", skip_frames=1, val=str(seqs[1])), TINY)
    losses = [r["loss"] for r in result.history if "loss" in r]
    assert losses[-1] < losses[0]
    val = [r for r in result.history if "val_psnr" in r]
    assert val and np.isfinite(val[-1]["val_psnr"])


def test_recurrent_training_resumes_exactly(seqs, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    kw = dict(steps=20, schedule="step", lr_step=10, ema=0.9)
    full = train(config(seqs, tmp_path / "full", **kw), TINY)
    train(config(seqs, tmp_path / "part", **{**kw, "steps": 10}), TINY)
    resumed = train(config(seqs, tmp_path / "part", **kw, resume=True), TINY)
    assert resumed.step == 20
    for a, b in zip(full.net.state_dict().values(), resumed.net.state_dict().values()):
        assert torch.equal(a, b)


def test_a_patch_set_is_refused_for_a_recurrent_net(tmp_path: Path) -> None:
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    Image.fromarray(textured(0)).save(imgs / "0.png")
    build_dataset([imgs], tmp_path / "patches", DatasetConfig(scale=2, patch=16))
    with pytest.raises(OptionError, match="sequence"):
        train(config((tmp_path / "patches", tmp_path), tmp_path / "run"), TINY)


def test_init_from_a_quality_net_starts_equal_to_it(seqs, tmp_path: Path) -> None:
    torch.manual_seed(0)
    quality = QualitySR(2, feats=8, blocks=1)
    with torch.no_grad():
        quality.tail.weight.normal_(0, 0.1)  # not the near-bicubic start
    save_file(quality.state_dict(), str(tmp_path / "q.safetensors"))
    result = train(
        config(seqs, tmp_path / "run", steps=1, lr=1e-9, init=str(tmp_path / "q.safetensors")), TINY
    )
    x = torch.rand(2, 1, 12, 12)
    with torch.no_grad():
        assert torch.allclose(result.net(x), quality(x), atol=1e-5)


def test_export_card_and_load_round_trip(seqs, tmp_path: Path, monkeypatch) -> None:
    torch.set_num_threads(1)
    entry = REGISTRY["temporal"]
    cfg = config(seqs, tmp_path / "run", arch="temporal", steps=2, batch_size=2)
    result = train(cfg, entry)
    info = {"config": cfg.__dict__, "steps": 2, "wall_s": 1.0, "device": "cpu", "command": "x"}
    weights, card_path = export_model(
        result.net, entry, scale=2, name="temporal", out_dir=tmp_path / "out", train_info=info
    )
    card = json.loads(card_path.read_text())
    assert card["family"] == "temporal" and card["steps"] == 2
    assert card["data"]["frames"] == 5 and card["data"]["sequences"] == 18
    clip = torch.rand(1, 4, 1, 10, 12)
    with torch.no_grad():
        want = result.net(clip)[0, -1].clamp(0, 1)
    for name in (str(weights), "temporal"):  # --model FILE, then --model NAME
        monkeypatch.setattr(upscaler, "weights_dir", lambda: tmp_path / "out")
        model = upscaler.load_model(name, 2)
        assert model.stateful and model.family == "temporal"
        state = None
        with torch.no_grad():
            for t in range(4):
                sr, state = model.step(clip[:, t], state)
        assert torch.allclose(sr[0], want, atol=1e-5)
