"""Degradations: shapes and dtypes kept, seeded results repeat, specs validated; codec-in-the-
loop sequences deterministic, really compressed, with P/B frames; motion sub-pixel, bounded."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from vidsr.errors import OptionError
from vidsr.training import codec_degrade, degrade, motion, sequences
from vidsr.training.codec_degrade import SampleParams, parse_codec_spec


def patches(n: int = 4, h: int = 12, w: int = 12) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = np.linspace(0, 255, h * w * 3).reshape(h, w, 3)
    return np.stack(
        [np.clip(base + rng.normal(0, 20, base.shape), 0, 255) for _ in range(n)]
    ).astype(np.uint8)


@pytest.mark.parametrize("spec", ["jpeg:50", "h264:35", "blur:1.0", "noise:3"])
@pytest.mark.parametrize("shape", [(4, 12, 12, 3), (3, 9, 11, 3), (12, 12, 3)])
def test_shape_and_dtype_kept(spec: str, shape: tuple[int, ...]) -> None:
    x = patches(4, 12, 12)[..., : shape[-3], : shape[-2], :]
    x = np.ascontiguousarray(x[: shape[0]] if len(shape) == 4 else x[0])
    out = degrade.apply(x, (degrade.parse_spec(spec),), np.random.default_rng(1))
    assert out.shape == x.shape and out.dtype == np.uint8
    assert not np.array_equal(out, x)


def test_seeded_and_repeatable() -> None:
    x = patches()
    steps = (degrade.parse_spec("h264:30"), degrade.parse_spec("noise:2"))
    a = degrade.apply(x, steps, np.random.default_rng(7))
    b = degrade.apply(x, steps, np.random.default_rng(7))
    c = degrade.apply(x, steps, np.random.default_rng(8))
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_input_not_modified_and_blur_zero_is_identity() -> None:
    x = patches()
    before = x.copy()
    degrade.jpeg(x, 30)
    assert np.array_equal(x, before)
    assert np.array_equal(degrade.gaussian_blur(x, 0.0), x)


def test_parse_spec() -> None:
    assert degrade.parse_spec("JPEG:80") == degrade.Degradation("jpeg", 80.0)
    assert degrade.parse_spec("blur").value == 0.8
    for bad in ("sharpen:1", "jpeg:abc", "h264:80"):
        with pytest.raises(OptionError):
            degrade.parse_spec(bad)


def test_rejects_bad_input() -> None:
    with pytest.raises(TypeError):
        degrade.jpeg(np.zeros((2, 8, 8, 3), np.float32), 50)
    with pytest.raises(ValueError):
        degrade.gaussian_blur(np.zeros((8, 8), np.uint8), 1.0)


# --- codec-in-the-loop sequences ------------------------------------------------------------


def still(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB: gradients, blocks and fine texture (an encoder has work)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([xx / w * 200, yy / h * 200, 128 + 60 * np.sin(xx / 3 + yy / 5)], -1)
    for _ in range(12):
        y0, x0 = rng.integers(0, h - 8), rng.integers(0, w - 8)
        dy, dx = rng.integers(4, h // 3), rng.integers(4, w // 3)
        img[y0 : y0 + dy, x0 : x0 + dx] = rng.integers(0, 256, 3)
    img += rng.normal(0, 8, img.shape)
    return img.clip(0, 255).astype(np.uint8)


def moving_lr(n: int = 10) -> np.ndarray:
    """Clean LR frames of a still under smooth motion: ``(n, 32, 48, 3)`` uint8."""
    rng = np.random.default_rng(3)
    maps = motion.still_trajectory((96, 128), (64, 96), n, rng, speed=2.0)
    hr = motion.render(still(), maps, (64, 96))
    return codec_degrade.downscale(hr, 2, "bicubic", 0.0)


def x264(crf: float, bframes: int = 2) -> SampleParams:
    return SampleParams(
        "x264", 10, "bicubic", 0.0, 0.0, crf=crf, preset="veryfast", gop=32, bframes=bframes
    )


TINY = "codec:x264:crf=20-36:frames=5-7:window=24:preset=ultrafast,veryfast"


def test_codec_sequence_deterministic_for_a_seed() -> None:
    spec = parse_codec_spec(TINY)
    run = [
        sequences.from_still(
            still(), 2, 8, spec, coverage=2.0, max_patches=16, rng=sequences.sample_rng(5, 0, k)
        )
        for k in (0, 0, 1)
    ]
    a, b, c = run
    assert a is not None and b is not None and c is not None
    assert np.array_equal(a.hr, b.hr) and np.array_equal(a.lr, b.lr) and a.params == b.params
    assert not np.array_equal(a.lr, c.lr)
    assert a.hr.shape[1:] == (16, 16, 3) and a.lr.shape[1:] == (8, 8, 3)
    assert a.lr.dtype == np.uint8 and len(a.types) == len(a.lr)


def test_really_compressed_and_grows_with_crf() -> None:
    clean = moving_lr()
    err = {}
    for crf in (18, 28, 38):
        decoded, _ = codec_degrade.encode_decode(clean, x264(crf))
        assert decoded.shape == clean.shape and decoded.dtype == np.uint8
        err[crf] = float(np.abs(decoded.astype(int) - clean.astype(int)).mean())
    assert 0 < err[18] < err[28] < err[38]


@pytest.mark.parametrize(
    "params",
    [
        x264(28),
        SampleParams("mpeg2", 10, "area", 0.0, 0.0, gop=15, bframes=2, bpp=0.4),
        SampleParams("mpeg4", 10, "area", 0.0, 0.0, gop=15, bframes=2, bpp=0.2),
    ],
)
def test_p_and_b_frames_decoded(params: SampleParams) -> None:
    clean = moving_lr()
    decoded, types = codec_degrade.encode_decode(clean, params)
    assert len(types) == len(decoded) == len(clean)
    assert types[0] == "I" and {"P", "B"} <= set(types)
    assert not np.array_equal(decoded, clean)


def test_jpeg_sequence_and_repeatable_encode() -> None:
    clean = moving_lr(4)
    jpeg = SampleParams("jpeg", 4, "area", 0.0, 0.0, quality=40)
    decoded, types = codec_degrade.encode_decode(clean, jpeg)
    assert types == ["I"] * 4 and not np.array_equal(decoded, clean)
    a, _ = codec_degrade.encode_decode(clean, x264(30))
    b, _ = codec_degrade.encode_decode(clean, x264(30))
    assert np.array_equal(a, b)


def test_motion_from_stills_is_subpixel_smooth_and_bounded() -> None:
    H, W, h, w, n = 96, 128, 64, 96, 16
    for seed in range(20):
        maps = motion.still_trajectory(
            (H, W), (h, w), n, np.random.default_rng(seed), speed=1.5, zoom=0.03, rotate=1.0
        )
        corners = np.array([[0, 0, 1], [w - 1, 0, 1], [0, h - 1, 1], [w - 1, h - 1, 1]], float)
        pts = np.einsum("nij,cj->nci", maps, corners)
        assert pts.min() >= 0 and pts[..., 0].max() <= W - 1 and pts[..., 1].max() <= H - 1
        centre = np.einsum("nij,j->ni", maps, [(w - 1) / 2, (h - 1) / 2, 1])
        step = np.diff(centre, axis=0)
        assert np.abs(step).max() < 1.5 * 3  # velocity + bounded acceleration, px/frame
        assert np.abs(np.diff(step, axis=0)).max() < 0.5  # smooth
        frac = np.abs(step - np.round(step))
        assert frac.max() > 0.01  # sub-pixel, not whole-pixel shifts
        scale = np.sqrt(np.abs(np.linalg.det(maps[:, :, :2])))
        assert np.all(np.abs(scale - 1) <= 0.03)
    frames = motion.render(still(), maps, (h, w))
    assert frames.shape == (n, h, w, 3) and not np.array_equal(frames[0], frames[-1])


def test_parse_codec_spec_and_presets() -> None:
    spec = parse_codec_spec("codec:x264*3,mpeg2:crf=20-30:frames=8:kernels=area,lanczos")
    assert spec.codecs == ("x264", "mpeg2") and spec.weights == (3.0, 1.0)
    assert spec.crf == (20.0, 30.0) and spec.frames == (8.0, 8.0)
    assert parse_codec_spec(spec.spec()) == spec  # the manifest's string round-trips
    for name in codec_degrade.PRESETS:
        assert parse_codec_spec(name) == parse_codec_spec(codec_degrade.PRESETS[name])
    for bad in (
        "codec:h265",
        "codec:x264:crf=30-20",
        "codec:x264:crf=60",
        "codec:x264:speed=2",
        "codec:x264:kernels=nearest",
        "codec",
    ):
        with pytest.raises(OptionError):
            parse_codec_spec(bad)
    assert parse_codec_spec("web:window=128:crf=23") == parse_codec_spec(
        "codec:x264:crf=18-38:window=128:crf=23"
    )
    assert parse_codec_spec("web:window=128:crf=23").crf == (23.0, 23.0)
    codec, steps = degrade.parse_specs(["web", "noise:1"])
    assert codec == parse_codec_spec("web") and steps == (degrade.parse_spec("noise:1"),)
    with pytest.raises(OptionError):
        degrade.parse_specs(["web", "dvd"])


def test_dataset_build_with_codec_records_spec(tmp_path: Path) -> None:
    from vidsr.training.dataset import DatasetConfig, build_dataset
    from vidsr.training.export import card_data
    from vidsr.training.shards import ShardDataset

    folder = tmp_path / "img"
    folder.mkdir()
    for i in range(2):
        Image.fromarray(still(64, 80, seed=i)).save(folder / f"s{i}.png")
    codec, steps = degrade.parse_specs([TINY, "noise:1"])
    cfg = DatasetConfig(
        scale=2, patch=16, seed=1, shard_size=16, codec=codec, degradations=steps, sequences=2
    )
    m = build_dataset([folder], tmp_path / "a", cfg)
    build_dataset([folder], tmp_path / "b", cfg)
    for name in [s["file"] for s in m["shards"]] + ["manifest.json"]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert m["degradations"] == [codec.spec(), "noise:1"]
    assert tuple(m["settings"]["codec"]["crf"]) == (20.0, 36.0)
    assert m["lr_method"].startswith("codec")
    rec = m["inputs"][0]
    assert len(rec["samples"]) == 2 and rec["samples"][0]["codec"] == "x264"
    assert sum(rec["picture_types"].values()) == rec["patches"] > 0
    assert {"P", "B"} & {t for r in m["inputs"] for t in r["picture_types"]}
    ds = ShardDataset(tmp_path / "a", augment=False)
    lr, hr = ds[0]
    assert lr.shape == (3, 8, 8) and hr.shape == (3, 16, 16) and len(ds) == m["count"]
    assert card_data(tmp_path / "a")["degradations"] == m["degradations"]


def test_x264_round_trip_is_bit_exact_between_runs() -> None:
    # x264's AVX-512 code and libswscale's line padding left uninitialised bytes in the
    # bitstream: the same frames gave 2-18 different outputs in 60 runs on an AVX-512 CPU.
    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.integers(0, 255, (256, 256, 3), np.uint8), (0, 0), 2)
    params = SampleParams(
        "x264", 6, "bicubic", 0.0, 0.0, crf=28, preset="veryfast", gop=32, bframes=2
    )
    for h, w in [(32, 32), (32, 48), (96, 144)]:
        frames = np.stack([np.roll(base, (i, 2 * i), (0, 1))[:h, :w] for i in range(6)])
        first, _ = codec_degrade.encode_decode(frames, params)
        for k in range(20):
            # Leave freed frame buffers dirty, the way a busy process does, before the next run.
            for _ in range(4):
                dirty = av.VideoFrame(w, h, "yuv420p")
                for plane in dirty.planes:
                    np.frombuffer(plane, np.uint8)[:] = (37 * k + 11) % 256
                del dirty
            again, _ = codec_degrade.encode_decode(frames, params)
            assert np.array_equal(first, again), (h, w, k)


def test_has_avx512_reads_cpu_flags(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512dq avx512bw avx512vl\n")
    assert codec_degrade.has_avx512(info)
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\n")
    assert not codec_degrade.has_avx512(info)
    assert not codec_degrade.has_avx512(tmp_path / "absent")


def test_yuv420_frame_zeroes_line_padding() -> None:
    img = np.full((32, 48, 3), 200, np.uint8)
    frame = codec_degrade.yuv420_frame(img)
    for plane in frame.planes:
        rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
        assert not rows[:, plane.width :].any()
        assert rows[:, : plane.width].all()


def test_x264_kept_off_avx512_only_where_the_cpu_has_it(monkeypatch: pytest.MonkeyPatch) -> None:
    params = SampleParams(
        "x264", 6, "bicubic", 0.0, 0.0, crf=28, preset="veryfast", gop=32, bframes=2
    )
    monkeypatch.setattr(codec_degrade, "has_avx512", lambda: True)
    options, _ = codec_degrade._codec_options(params, 64, 64)
    assert options["x264-params"].endswith(":asm=AVX2") and options["threads"] == "1"
    monkeypatch.setattr(codec_degrade, "has_avx512", lambda: False)
    options, _ = codec_degrade._codec_options(params, 64, 64)
    assert "asm" not in options["x264-params"]


def test_swscale_kernel_and_streaming_preset() -> None:
    rng = np.random.default_rng(1)
    hr = cv2.GaussianBlur(rng.integers(0, 255, (96, 128, 3), np.uint8), (0, 0), 1.5)[None]
    sws = codec_degrade.downscale(hr, 4, "swscale", 0.0)
    pil = codec_degrade.downscale(hr, 4, "bicubic", 0.0)
    assert sws.shape == pil.shape == (1, 24, 32, 3) and sws.dtype == np.uint8
    # both antialiased bicubics: close, but not the same kernel (swscale's is sharper)
    diff = np.abs(sws.astype(int) - pil.astype(int))
    assert 0 < diff.mean() < 2
    spec = parse_codec_spec("streaming")
    assert spec.crf == (18.0, 32.0) and "medium" in spec.presets and "swscale" in spec.kernels
    assert parse_codec_spec(spec.spec()) == spec
