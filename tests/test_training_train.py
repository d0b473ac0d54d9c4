"""Trainer: loss goes down, resume continues exactly, export writes loadable weights + card."""

from __future__ import annotations

import json
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import dataset_argv, smooth_image, train_argv
from PIL import Image
from safetensors.torch import load_file
from torch import nn

from vidsr.errors import OptionError
from vidsr.models.contract import ModelEntry
from vidsr.training.dataset import DatasetConfig, build_dataset
from vidsr.training.export import export_model
from vidsr.training.train import (
    TrainConfig,
    autocast_for,
    ema_state,
    load_checkpoint,
    load_trained,
    lr_at,
    make_ema,
    train,
)
from vidsr.training.validate import evaluate, load_pairs


class TinyNet(nn.Module):
    """Seeded LR -> HR net: two 3x3 convs and a pixel shuffle (x2), Y in, Y out."""

    def __init__(self, scale: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, scale * scale, 3, padding=1)
        )
        self.shuffle = nn.PixelShuffle(scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shuffle(self.body(x))


TINY = ModelEntry(
    name="tiny", family="test", scales=(2,), colour="luma", build=TinyNet, description="test net"
)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> tuple[Path, Path]:
    """A small x2 patch dataset and a folder of two validation images."""
    root = tmp_path_factory.mktemp("train")
    imgs, val = root / "imgs", root / "val"
    imgs.mkdir()
    val.mkdir()
    for i in range(4):
        Image.fromarray(smooth_image(i)).save(imgs / f"{i}.png")
    for i in range(2):
        Image.fromarray(smooth_image(10 + i, 40, 40)).save(val / f"v{i}.png")
    build_dataset([imgs], root / "ds", DatasetConfig(scale=2, patch=16, seed=0))
    return root / "ds", val


def config(data_dir: Path, out: Path, **kw) -> TrainConfig:
    base = dict(
        arch="tiny",
        scale=2,
        data=str(data_dir),
        out=str(out),
        steps=40,
        batch_size=8,
        lr=1e-2,
        log_every=10,
        ckpt_every=10,
        val_every=1000,
        device="cpu",
    )
    base.update(kw)
    return TrainConfig(**base)


def test_a_few_steps_lower_the_loss(data, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    result = train(config(data[0], tmp_path / "run"), TINY)
    losses = [r["loss"] for r in result.history if "loss" in r]
    assert result.step == 40 and len(losses) == 4
    assert losses[-1] < 0.5 * losses[0]
    assert (tmp_path / "run" / "ckpt.pt").is_file()
    assert len((tmp_path / "run" / "log.jsonl").read_text().splitlines()) == 4


def test_bf16_training_lowers_the_loss_and_keeps_fp32_weights(data, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    result = train(config(data[0], tmp_path / "bf16", precision="bf16"), TINY)
    losses = [r["loss"] for r in result.history if "loss" in r]
    assert losses[-1] < 0.5 * losses[0]
    params = dict(result.net.named_parameters())
    assert all(p.dtype == torch.float32 for p in params.values())
    fp32 = train(config(data[0], tmp_path / "fp32", precision="fp32"), TINY)
    # the same run in bf16 follows fp32 closely but not bit-exactly (it did run in bf16)
    diffs = [
        float((a - b).detach().abs().max())
        for a, b in zip(params.values(), dict(fp32.net.named_parameters()).values())
    ]
    assert 0 < max(diffs) < 0.1


@pytest.mark.parametrize("native", [False, True])
def test_bf16_on_a_cpu_without_native_bf16_warns(
    data, tmp_path: Path, monkeypatch, caplog, native: bool
) -> None:
    import vidsr.training.train as train_module

    monkeypatch.setattr(train_module, "cpu_has_native_bf16", lambda: native)
    with caplog.at_level("WARNING", logger="vidsr.training.train"):
        train(config(data[0], tmp_path / "run", precision="bf16", steps=2), TINY)
    warned = [r for r in caplog.records if "no native bf16" in r.getMessage()]
    assert bool(warned) is not native


def test_precision_modes_pick_autocast_and_layout() -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    ctx, scaler, channels_last = autocast_for("auto", cpu, True)
    assert not isinstance(ctx, torch.autocast) and not scaler.is_enabled() and not channels_last
    ctx, scaler, channels_last = autocast_for("bf16", cpu, True)
    assert ctx.fast_dtype == torch.bfloat16 and not scaler.is_enabled() and channels_last
    ctx, _, channels_last = autocast_for("fp32", cpu, True)
    assert not isinstance(ctx, torch.autocast) and not channels_last
    with pytest.warns(UserWarning) if not torch.cuda.is_available() else nullcontext():
        ctx, scaler, _ = autocast_for("auto", cuda, True)
    assert ctx.fast_dtype == torch.float16 and scaler.is_enabled() == torch.cuda.is_available()
    with pytest.raises(OptionError, match="precision"):
        TrainConfig(arch="x", scale=2, data=".", precision="fp8")


def test_resume_continues_exactly(data, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    kw = dict(steps=12, schedule="step", lr_step=6, ckpt_every=6, log_every=3)
    straight = train(config(data[0], tmp_path / "a", **kw), TINY)
    train(config(data[0], tmp_path / "b", **{**kw, "steps": 6}), TINY)
    ckpt = load_checkpoint(tmp_path / "b" / "ckpt.pt")
    assert ckpt["step"] == 6 and ckpt["config"]["arch"] == "tiny"
    resumed = train(config(data[0], tmp_path / "b", **kw, resume=True), TINY)
    assert resumed.step == 12 and [r["step"] for r in resumed.history] == [9, 12]
    for (k, a), (_, b) in zip(straight.net.state_dict().items(), resumed.net.state_dict().items()):
        assert torch.equal(a, b), k
    final = load_checkpoint(tmp_path / "b" / "ckpt.pt")
    opt_a = load_checkpoint(tmp_path / "a" / "ckpt.pt")["optimizer"]["state"]
    assert final["step"] == 12
    assert torch.equal(final["optimizer"]["state"][0]["exp_avg"], opt_a[0]["exp_avg"])


def test_resume_without_a_checkpoint_still_warm_starts(data, tmp_path: Path) -> None:
    """``--resume --init W`` on an empty run folder (the first launch of a resumable run)
    starts from W, as the same run without ``--resume`` does; once a checkpoint exists,
    the checkpoint wins."""
    from safetensors.torch import save_file

    seed = TinyNet(2)
    with torch.no_grad():
        for p in seed.parameters():
            p.fill_(0.25)
    weights = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in seed.state_dict().items()}, str(weights))
    kw = dict(steps=1, lr=1e-12, init=str(weights))  # one step that moves nothing
    plain = train(config(data[0], tmp_path / "plain", **kw), TINY)
    first = train(config(data[0], tmp_path / "first", **kw, resume=True), TINY)
    for (k, a), (_, b) in zip(seed.state_dict().items(), first.net.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-6), k
    for (k, a), (_, b) in zip(plain.net.state_dict().items(), first.net.state_dict().items()):
        assert torch.equal(a, b), k
    trained = train(
        config(data[0], tmp_path / "first", steps=6, ckpt_every=6, init=str(weights)), TINY
    )
    again = train(
        config(data[0], tmp_path / "first", steps=6, resume=True, init=str(weights)), TINY
    )
    assert again.step == 6
    for (k, a), (_, b) in zip(trained.net.state_dict().items(), again.net.state_dict().items()):
        assert torch.equal(a, b), k  # the checkpoint's weights, not W's


def test_resume_refuses_other_arch(data, tmp_path: Path) -> None:
    train(config(data[0], tmp_path / "c", steps=2), TINY)
    other = replace(TINY, name="tiny2")
    with pytest.raises(OptionError, match="tiny x2"):
        train(config(data[0], tmp_path / "c", arch="tiny2", steps=4, resume=True), other)


def test_dataset_scale_must_match(data, tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="x2"):
        train(config(data[0], tmp_path / "d", scale=3), replace(TINY, scales=(3,)))


def test_perceptual_loss_runs(data, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = {}
    for name, (cout, cin) in {
        "conv1_1": (64, 3),
        "conv1_2": (64, 64),
        "conv2_1": (128, 64),
        "conv2_2": (128, 128),
    }.items():
        arrays[f"{name}.weight"] = rng.normal(0, 0.05, (cout, cin, 3, 3)).astype(np.float32)
        arrays[f"{name}.bias"] = np.zeros(cout, np.float32)
    np.savez(tmp_path / "vgg.npz", **arrays)
    result = train(
        config(
            data[0],
            tmp_path / "p",
            steps=4,
            log_every=2,
            loss="perceptual",
            vgg_weights=str(tmp_path / "vgg.npz"),
            tv_weight=1e-4,
        ),
        TINY,
    )
    assert result.step == 4 and np.isfinite(result.loss) and result.loss > 0


def test_lr_schedules() -> None:
    cfg = TrainConfig(arch="x", scale=2, data=".", steps=100, lr=1e-3, min_lr_ratio=0.1)
    assert lr_at(0, cfg) == pytest.approx(1e-3)
    assert lr_at(100, cfg) == pytest.approx(1e-4)
    assert lr_at(10, cfg) > lr_at(50, cfg) > lr_at(90, cfg)
    assert lr_at(10, cfg, time_fraction=1.0) == pytest.approx(1e-4)
    step = replace(cfg, schedule="step", lr_step=30)
    assert [lr_at(s, step) for s in (0, 29, 30, 60)] == pytest.approx([1e-3, 1e-3, 5e-4, 2.5e-4])
    with pytest.raises(OptionError):
        TrainConfig(arch="x", scale=2, data=".", loss="ssim")


def test_validation_and_export(data, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    run = tmp_path / "e"
    result = train(config(data[0], run, steps=20, val=str(data[1]), val_every=10), TINY)
    vals = [r for r in result.history if "val_psnr" in r]
    assert [r["step"] for r in vals] == [10, 20] and result.best_psnr == max(
        r["val_psnr"] for r in vals
    )
    assert (run / "best.pt").is_file()

    net, info = load_trained(run, TINY, 2)
    assert info["steps"] == 20 and info["config"]["arch"] == "tiny"
    weights, card_path = export_model(
        net,
        TINY,
        scale=2,
        name="tiny",
        out_dir=tmp_path / "w",
        train_info=info,
        report={"val": str(data[1])},
    )
    assert weights.name == "tiny_x2.safetensors" and card_path.name == "tiny_x2.json"
    fresh = TinyNet(2)
    fresh.load_state_dict(load_file(str(weights)), strict=True)
    x = torch.rand(1, 1, 10, 12)
    assert torch.equal(fresh(x), net(x))
    card = json.loads(card_path.read_text())
    for key in (
        "architecture",
        "family",
        "scale",
        "colour",
        "data",
        "loss",
        "steps",
        "wall_time_s",
        "device",
        "command",
        "parameters",
        "cpu_inference_ms_640x360",
    ):
        assert key in card, key
    assert card["parameters"] == sum(p.numel() for p in fresh.parameters())
    assert card["data"]["patches"] > 0 and card["steps"] == 20
    val = card["validation"]["val"]
    assert set(val) >= {"psnr_y", "ssim_y", "bicubic_psnr_y"}
    assert val["psnr_y"] == pytest.approx(result.best_psnr, abs=1e-3)


def test_cli_dataset_and_train(data, tmp_path: Path) -> None:
    from vidsr.cli import dataset_cmd, train_cmd

    imgs = data[0].parent / "imgs"
    ds = tmp_path / "ds"
    assert train_cmd.standalone(dataset_cmd.register, dataset_argv(ds, str(imgs))) == 0
    assert json.loads((ds / "manifest.json").read_text())["count"] > 0
    export = ["--export", "clitest", "--export-dir", str(tmp_path / "w")]
    extra = ["--batch-size", "4", "--ema", "0.9", *export]
    rc = train_cmd.standalone(train_cmd.register, train_argv(ds, tmp_path / "run", *extra, steps=3))
    assert rc == 0
    card = json.loads((tmp_path / "w" / "clitest_x2.json").read_text())
    assert card["steps"] == 3 and card["family"] == "fast" and "--arch fast" in card["command"]
    assert card["ema"] == 0.9
    assert (
        train_cmd.standalone(
            train_cmd.register,
            train_argv(ds, tmp_path / "run", "--export-only", "--export", "x", arch="srcnn"),
        )
        == 1
    )


def test_warm_start_copies_the_body_and_leaves_the_new_tail(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    from vidsr.errors import ModelError
    from vidsr.models.fast import FastSR
    from vidsr.training.train import warm_start

    x2 = FastSR(2)
    save_file(
        {k: v.contiguous() for k, v in x2.state_dict().items()}, str(tmp_path / "x2.safetensors")
    )
    x3 = FastSR(3)
    before = {k: v.clone() for k, v in x3.state_dict().items()}
    copied = warm_start(x3, tmp_path / "x2.safetensors")
    state = x3.state_dict()
    assert copied and all(torch.equal(state[k], x2.state_dict()[k]) for k in copied)
    fresh = [k for k in state if k not in copied]
    assert fresh  # the x3 upsampler's shapes differ from x2's: left as initialised
    assert all(torch.equal(state[k], before[k]) for k in fresh)
    torch.save({"unrelated": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ModelError, match="no tensor fits"):
        warm_start(FastSR(3), tmp_path / "other.pt")
    (tmp_path / "bad.safetensors").write_bytes(b"not weights")
    with pytest.raises(ModelError, match="cannot read"):
        warm_start(FastSR(3), tmp_path / "bad.safetensors")


def test_ema_is_the_exponential_average_of_the_weights() -> None:
    net = TinyNet(2)
    w = [torch.full_like(p, 0.0) for p in net.parameters()]
    ema = make_ema(net, decay=0.75)
    values = (1.0, 3.0, -2.0)
    for v in values:
        with torch.no_grad():
            for p in net.parameters():
                p.fill_(v)
        ema.update_parameters(net)
    # the first update copies; each later one keeps 3/4 of the average
    expected = (1.0 * 0.75 + 3.0 * 0.25) * 0.75 + -2.0 * 0.25
    for p, zero in zip(ema.module.parameters(), w):
        assert torch.allclose(p, zero + expected)
    with pytest.raises(OptionError, match="ema"):
        TrainConfig(arch="x", scale=2, data=".", ema=1.0)


def test_ema_run_validates_keeps_and_resumes_the_average(data, tmp_path: Path, caplog) -> None:
    torch.set_num_threads(1)
    kw = dict(steps=12, schedule="step", lr_step=6, ckpt_every=6, log_every=3, ema=0.9)
    straight = train(config(data[0], tmp_path / "a", **kw, val=str(data[1]), val_every=6), TINY)
    ckpt = load_checkpoint(tmp_path / "a" / "ckpt.pt")
    raw = ckpt["model"]
    averaged = ema_state(ckpt)
    assert averaged is not None and set(averaged) == set(raw)
    assert any(not torch.equal(averaged[k], raw[k]) for k in raw)  # the average is not the raw net
    best = torch.load(tmp_path / "a" / "best.pt", weights_only=True)
    state = straight.net.state_dict()
    assert all(torch.equal(state[k], best[k]) for k in state)  # handed back = kept best
    # the validated numbers are the average's: re-measure the kept state
    net = TinyNet(2)
    net.load_state_dict(best)
    vals = [r["val_psnr"] for r in straight.history if "val_psnr" in r]
    again = evaluate(net, load_pairs(data[1], 2), "luma", 2, torch.device("cpu"))["psnr"]
    assert again == pytest.approx(max(vals), abs=1e-6)

    # stopped at step 6 and resumed: the average continues exactly
    train(config(data[0], tmp_path / "b", **{**kw, "steps": 6}), TINY)
    resumed = train(config(data[0], tmp_path / "b", **kw, resume=True), TINY)
    final = ema_state(load_checkpoint(tmp_path / "b" / "ckpt.pt"))
    assert all(torch.equal(final[k], averaged[k]) for k in averaged)
    # without validation, the exported net is the average
    net, _ = load_trained(tmp_path / "b", TINY, 2)
    assert all(torch.equal(net.state_dict()[k], averaged[k]) for k in averaged)
    assert all(torch.equal(resumed.net.state_dict()[k], averaged[k]) for k in averaged)
    # resuming without --ema says that the average is dropped
    with caplog.at_level("WARNING", logger="vidsr.training.train"):
        train(config(data[0], tmp_path / "b", **{**kw, "steps": 13, "ema": 0.0}, resume=True), TINY)
    assert "average but --ema is off" in caplog.text
