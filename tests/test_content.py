"""--content auto: clean or compressed, decided from the input itself."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from vidsr.config import RunConfig
from vidsr.errors import ModelError, OptionError
from vidsr.media.content import ContentVerdict, assess_images, assess_video, jpeg_quality
from vidsr.pipeline import planning


def _texture(size: tuple[int, int], frames: int, seed: int = 0) -> list[np.ndarray]:
    """A detailed moving picture: smooth noise panning right, so codecs must work."""
    rng = np.random.default_rng(seed)
    w, h = size
    base = rng.integers(0, 256, (h // 4 + 2, w // 4 + frames + 2, 3)).astype(np.uint8)
    base = np.asarray(Image.fromarray(base).resize((base.shape[1] * 4, base.shape[0] * 4)))
    return [np.ascontiguousarray(base[:h, 4 * i : 4 * i + w]) for i in range(frames)]


def _clip(path: Path, codec: str, options: dict[str, str], frames: int = 12) -> Path:
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=25, options=options)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for i, rgb in enumerate(_texture((96, 64), frames)):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
    return path


def test_lossless_video_is_clean(tmp_path: Path) -> None:
    verdict = assess_video(_clip(tmp_path / "a.mkv", "ffv1", {}))
    assert verdict.kind == "clean" and "ffv1" in verdict.reason


def test_web_quality_h264_is_compressed(tmp_path: Path) -> None:
    verdict = assess_video(_clip(tmp_path / "a.mp4", "libx264", {"crf": "35"}))
    assert verdict.kind == "compressed" and "h264" in verdict.reason
    assert "bits/pixel" in verdict.reason


def test_lossless_h264_is_clean(tmp_path: Path) -> None:
    verdict = assess_video(_clip(tmp_path / "a.mkv", "libx264", {"qp": "0"}))
    assert verdict.kind == "clean" and "lossless mode" in verdict.reason
    verdict = assess_video(_clip(tmp_path / "b.mkv", "libx264", {"crf": "10"}))
    assert verdict.kind == "compressed"


def test_jpeg_quality_is_read_from_the_file(tmp_path: Path) -> None:
    rgb = _texture((64, 48), 1)[0]
    for q in (30, 75, 95):
        Image.fromarray(rgb).save(tmp_path / f"q{q}.jpg", quality=q)
        assert abs(jpeg_quality(tmp_path / f"q{q}.jpg") - q) <= 2


def test_image_folders_by_format_and_quality(tmp_path: Path) -> None:
    rgb = _texture((64, 48), 1)[0]
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb).save(tmp_path / "b.jpg", quality=97)
    Image.fromarray(rgb).save(tmp_path / "c.jpg", quality=60)
    Image.fromarray(rgb).save(tmp_path / "d.webp", lossless=True)
    Image.fromarray(rgb).save(tmp_path / "e.webp", quality=70)
    clean = assess_images([tmp_path / "a.png", tmp_path / "b.jpg", tmp_path / "d.webp"])
    assert clean.kind == "clean"
    assert assess_images([tmp_path / "a.png", tmp_path / "c.jpg"]) == ContentVerdict(
        "compressed", "JPEG quality about 60 (c.jpg)"
    )
    assert assess_images([tmp_path / "e.webp"]).kind == "compressed"


def test_choose_content_follows_the_option_and_the_weights(monkeypatch) -> None:
    explicit = planning.choose_content(RunConfig(model="fast", content="clean"), None)
    assert explicit == ContentVerdict("clean", "--content clean")
    evidence = ContentVerdict("compressed", "h264 at 0.10 bits/pixel")
    # auto, but the model has no compressed-input weights: its clean ones, and why
    monkeypatch.setattr(planning, "has_compressed_weights", lambda name, scale: False)
    chosen = planning.choose_content(RunConfig(model="fast"), lambda: evidence)
    assert chosen.kind == "clean" and "one set of weights" in chosen.reason
    monkeypatch.setattr(planning, "has_compressed_weights", lambda name, scale: True)
    assert planning.choose_content(RunConfig(model="fast"), lambda: evidence) == evidence


def test_compressed_weights_missing_is_one_clear_error() -> None:
    from vidsr.engine import upscaler

    assert not upscaler.has_compressed_weights("temporal", 2)  # shipped: clean weights only
    with pytest.raises(ModelError, match="no weights for compressed input"):
        upscaler.load_model("temporal", 2, content="compressed")


def test_content_option_is_checked() -> None:
    with pytest.raises(OptionError, match="--content"):
        RunConfig(content="blurry")  # the wrong value is the point


@pytest.mark.parametrize(
    ("name", "scale"),
    [
        ("fast", 2),
        ("fast", 3),
        ("fast", 4),
        ("fast-ecb", 2),
        ("fast-ecb", 3),
        ("fast-ecb", 4),
        ("quality", 2),
        ("quality", 3),
        ("quality", 4),
        ("temporal", 4),
    ],
)
def test_shipped_compressed_weights_are_listed_and_load(name: str, scale: int) -> None:
    from vidsr.engine.upscaler import has_compressed_weights, load_model, model_listing

    assert has_compressed_weights(name, scale)
    row = next(r for r in model_listing() if r["name"] == name)
    assert scale in row["trained_on"]["compressed"]
    clean = load_model(name, scale).net.state_dict()
    compressed = load_model(name, scale, content="compressed").net.state_dict()
    assert any((clean[k] != compressed[k]).any() for k in clean)


def _scene(size: tuple[int, int], frames: int) -> list[np.ndarray]:
    """HR frames with edges and texture panning by a sub-pixel-ish step: bars, discs, noise."""
    w, h = size
    rng = np.random.default_rng(3)
    canvas = np.full((h, w + 3 * frames, 3), 128, np.uint8)
    for _ in range(60):
        x, y = int(rng.integers(0, canvas.shape[1] - 20)), int(rng.integers(0, h - 20))
        dx, dy = int(rng.integers(4, 20)), int(rng.integers(4, 20))
        canvas[y : y + dy, x : x + dx] = rng.integers(0, 256, 3)
    noise = rng.normal(0, 6, canvas.shape)
    canvas = np.clip(canvas + noise, 0, 255).astype(np.uint8)
    return [np.ascontiguousarray(canvas[:, 3 * i : 3 * i + w]) for i in range(frames)]


def test_compressed_weights_beat_lanczos_on_a_compressed_clip(tmp_path: Path) -> None:
    import dataclasses

    from vidsr.eval.metrics import rgb_to_y
    from vidsr.pipeline.video import upscale_video

    hr = _scene((192, 128), 10)
    lr_path = tmp_path / "lr.mp4"
    with av.open(str(lr_path), "w") as out:
        stream = out.add_stream("libx264", rate=25, options={"crf": "30"})
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        for i, rgb in enumerate(hr):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            small = frame.reformat(width=48, height=32, format="yuv420p", interpolation="AREA")
            small.pts, small.time_base = i, Fraction(1, 25)
            out.mux(stream.encode(small))
        out.mux(stream.encode())
    psnr = {}
    for name, model in (("lanczos", "lanczos"), ("auto", "fast")):
        config = RunConfig(model=model, scale=4, colour="off", device="cpu")
        config = dataclasses.replace(
            config, encode=dataclasses.replace(config.encode, codec="ffv1")
        )
        summary = upscale_video(lr_path, tmp_path / f"{name}.mkv", config)
        if name == "auto":
            assert summary.content == "compressed", summary.content_reason
        with av.open(str(tmp_path / f"{name}.mkv")) as c:
            ys = [f.to_ndarray(format="yuv420p")[: f.height] for f in c.decode(video=0)]
        mse = np.mean(
            [
                np.mean((y[4:-4, 4:-4] - rgb_to_y(h)[4:-4, 4:-4]) ** 2)
                for y, h in zip([y.astype(np.float64) for y in ys], hr)
            ]
        )
        psnr[name] = 10 * np.log10(255**2 / mse)
    assert psnr["auto"] > psnr["lanczos"] + 0.05, psnr  # 0.15 dB when written
