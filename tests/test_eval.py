"""``vidsr eval``: the protocol reproduces the published bicubic figures, videos and frame
folders score the same, the JSON report, and the clear error for unshipped weights."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import write_lossless_video
from PIL import Image

from vidsr.cli import eval_cmd
from vidsr.engine.upscaler import available_scales, load_model
from vidsr.errors import InputError, ModelError
from vidsr.eval.evaluate import evaluate, iter_hr_images
from vidsr.models.baselines import PolyphaseUpsampler
from vidsr.models.contract import SRModel
from vidsr.models.registry import REGISTRY

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SET5 = DATA / "images" / "Set5"
BRIDGE = DATA / "images" / "Set14" / "bridge.png"
needs_set5 = pytest.mark.skipif(
    not SET5.is_dir(), reason=f"shared benchmark data absent ({SET5}); present in CI"
)


@needs_set5
@pytest.mark.parametrize(("scale", "published"), [(2, 33.66), (3, 30.39), (4, 28.42)])
def test_bicubic_on_set5_matches_published(scale: int, published: float) -> None:
    """Bicubic Set5 Y-PSNR under the MATLAB protocol (SRCNN/VDSR tables). This also
    validates the polyphase bicubic upsampler and the PIL downscale against MATLAB."""
    model = load_model("bicubic", scale)
    report = evaluate(model, [SET5], baseline=model)
    assert len(report.images) == 5
    assert report.psnr == pytest.approx(published, abs=0.05)


@pytest.mark.skipif(not BRIDGE.is_file(), reason=f"shared benchmark data absent ({BRIDGE})")
def test_grayscale_bridge_scored_as_its_own_y() -> None:
    """bridge.png is mode L; the papers score it as Y directly (bicubic x2: 26.58 dB)."""
    model = load_model("bicubic", 2)
    report = evaluate(model, [BRIDGE], baseline=model)
    assert report.psnr == pytest.approx(26.58, abs=0.05)


def _pattern(n: int, h: int = 40, w: int = 48) -> list[np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w]
    frames = []
    for i in range(n):
        r = 128 + 100 * np.sin((xx + 3 * i) / 3.0) * np.cos(yy / 5.0)
        g = 128 + 90 * np.cos((xx - yy + i) / 4.0)
        b = (xx * 5 + yy * 3 + 20 * i) % 256
        frames.append(np.stack([r, g, b], axis=2).clip(0, 255).astype(np.uint8))
    return frames


def test_video_frames_score_like_a_frame_folder(tmp_path: Path) -> None:
    frames = _pattern(4)
    video = write_lossless_video(tmp_path / "clip.mkv", frames)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i:03d}.png")
    decoded = [img for _, img in iter_hr_images(video)]
    assert len(decoded) == 4 and all(np.array_equal(a, b) for a, b in zip(decoded, frames))

    model = load_model("lanczos", 2)
    from_video = evaluate(model, [video])
    from_folder = evaluate(model, [folder])
    folder_psnr = [s.psnr for s in from_folder.images]
    assert [s.psnr for s in from_video.images] == pytest.approx(folder_psnr)
    assert from_video.images[0].name == "clip/0000"
    both = evaluate(model, [video, folder])
    assert [c.frames for c in both.clips] == [4, 4]
    assert both.psnr == pytest.approx(from_video.psnr)
    assert both.clip_mean_psnr == pytest.approx(from_video.psnr)


def test_rgb_model_on_grey_image_matches_luma_path(tmp_path: Path) -> None:
    """An RGB model on a grayscale image is scored on the grey plane, like a luma model."""
    grey = _pattern(1)[0][:, :, 0]
    Image.fromarray(grey).save(tmp_path / "g.png")
    rgb_bicubic = SRModel(
        PolyphaseUpsampler(2), name="rgb-bicubic", family="test", scale=2, colour="rgb"
    )
    report = evaluate(rgb_bicubic, [tmp_path / "g.png"])
    assert report.psnr == pytest.approx(report.bicubic_psnr, abs=0.05)
    assert report.ssim == pytest.approx(report.bicubic_ssim, abs=1e-3)


def _args(paths: list[Path], **kw: object) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    eval_cmd.register(parser.add_subparsers())
    argv = [
        "eval",
        *map(str, paths),
        "--model",
        str(kw.get("model", "bicubic")),
        "--scale",
        str(kw.get("scale", 3)),
        "--device",
        "cpu",
    ]
    if kw.get("json"):
        argv.append("--json")
    return parser.parse_args(argv)


def test_cli_json_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i, f in enumerate(_pattern(2, 37, 41)):  # odd sizes: mod-crop to 36x39
        Image.fromarray(f).save(tmp_path / f"img{i}.png")
    args = _args([tmp_path], model="lanczos", json=True)
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == "lanczos" and report["scale"] == 3
    assert [im["name"] for im in report["images"]] == ["img0.png", "img1.png"]
    assert report["psnr"] == pytest.approx(np.mean([im["psnr"] for im in report["images"]]))
    assert 0 < report["bicubic_ssim"] <= 1

    args = _args([tmp_path], model="lanczos")
    assert args.func(args) == 0
    table = capsys.readouterr().out
    assert "img1.png" in table and "mean (2)" in table


def test_cli_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no images"):
        args = _args([tmp_path])
        args.func(args)
    with pytest.raises(InputError, match="no such file"):
        args = _args([tmp_path / "missing"])
        args.func(args)


def test_unshipped_weights_give_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("vidsr.engine.upscaler.weights_dir", lambda: tmp_path)
    assert available_scales(REGISTRY["fast"]) == ()
    assert available_scales(REGISTRY["bicubic"]) == (2, 3, 4)
    with pytest.raises(ModelError, match=r"no trained weights shipped for 'fast' x3 yet"):
        load_model("fast", 3)
    (tmp_path / "fast_x2.safetensors").write_bytes(b"")
    assert available_scales(REGISTRY["fast"]) == (2,)


VGG = DATA / "weights" / "vgg16_caffe_imagenet_conv1_1-conv3_3.npz"


@pytest.mark.skipif(not VGG.is_file(), reason=f"shared VGG16 weights absent ({VGG})")
def test_vgg_feature_distance_in_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hr = _pattern(1, 36, 40)[0]
    Image.fromarray(hr).save(tmp_path / "a.png")
    distance = eval_cmd.VGGDistance(str(VGG), ("relu2_2",), "cpu")
    assert distance(hr, hr) == 0.0
    args = _args([tmp_path], model="lanczos", json=True)
    args.vgg = str(VGG)
    assert args.func(args) == 0
    report = json.loads(capsys.readouterr().out)
    image = report["images"][0]
    assert image["feature"] > 0 and image["bicubic_feature"] > 0
    assert report["feature"] == pytest.approx(image["feature"])
    assert "relu2_2" in report["protocol"]["feature"]
