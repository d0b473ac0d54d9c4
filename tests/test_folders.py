"""Frame-folder mode: formats, depth, alpha, bad files, natural order, resume, video ends."""

from __future__ import annotations

import logging
import os
import threading
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import BICUBIC_CPU, make_video, read_frames, upscale_main

from vidsr import RunConfig
from vidsr.errors import EncodeError, InputError, OutputExistsError
from vidsr.media.folders import FolderSink, ImageFrame, check_one_size, scan_folder
from vidsr.media.images import IMAGE_YUV, TEMP_SUFFIX, natural_key, planes_to_rgb, rgb_to_planes
from vidsr.pipeline.folders import FolderOptions, upscale_folder, video_to_folder

W, H = 24, 16


def picture(seed: int, channels: int = 3, dtype: type = np.uint8) -> np.ndarray:
    """A smooth random ``(H, W, C)`` test picture (BGR order, as OpenCV writes it)."""
    rng = np.random.default_rng(seed)
    small = rng.random((4, 6, channels)).astype(np.float32)
    img = (
        cv2.resize(small, (W, H), interpolation=cv2.INTER_CUBIC).clip(0, 1).reshape(H, W, channels)
    )
    peak = np.iinfo(dtype).max
    return (img * peak).round().astype(dtype)


def config(**kw) -> RunConfig:
    return RunConfig(model="bicubic", scale=2, device="cpu", **{"colour": "off", **kw})


def test_natural_order_and_hidden_files(tmp_path: Path) -> None:
    assert sorted(["f10", "f2", "F1", "f1a"], key=natural_key) == ["F1", "f1a", "f2", "f10"]
    for name in ("f10.png", "f2.png", "f1.png", ".hidden.png"):
        cv2.imwrite(str(tmp_path / name), picture(0))
    (tmp_path / "sub").mkdir()
    scan = scan_folder(tmp_path)
    assert [e.path.name for e in scan.entries] == ["f1.png", "f2.png", "f10.png"]
    assert (scan.width, scan.height) == (W, H)


def test_mixed_formats_depth_alpha_and_bad_files(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), picture(1))
    cv2.imwrite(str(src / "b.jpg"), picture(2))
    cv2.imwrite(str(src / "c.bmp"), picture(3))
    cv2.imwrite(str(src / "d.webp"), picture(4))
    deep = picture(5, dtype=np.uint16)
    cv2.imwrite(str(src / "e16.png"), deep)
    cv2.imwrite(str(src / "f16.tif"), picture(6, dtype=np.uint16))
    rgba = picture(7, channels=4)
    cv2.imwrite(str(src / "g_alpha.png"), rgba)
    cv2.imwrite(str(src / "h_gray.png"), picture(8, channels=1))
    (src / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nthis is not a png")
    (src / "notes.txt").write_text("not an image")
    with caplog.at_level(logging.WARNING):
        summary = upscale_folder(src, dst, config())
    assert summary.frames == 8 and summary.skipped == 2
    assert not [t.name for t in threading.enumerate() if t.name.startswith("vidsr")]  # pools joined
    warned = " ".join(r.getMessage() for r in caplog.records)
    assert "bad.png" in warned and "notes.txt" in warned
    assert sorted(p.name for p in dst.iterdir()) == [
        "a.png",
        "b.jpg",
        "c.bmp",
        "d.webp",
        "e16.png",
        "f16.tif",
        "g_alpha.png",
        "h_gray.png",
    ]
    read = {p.name: cv2.imread(str(p), cv2.IMREAD_UNCHANGED) for p in dst.iterdir()}
    for name, img in read.items():
        assert img.shape[:2] == (2 * H, 2 * W), name
    assert read["e16.png"].dtype == np.uint16 and read["f16.tif"].dtype == np.uint16
    assert len(np.unique(read["e16.png"])) > 256  # really 16-bit, not 8-bit values widened
    assert read["a.png"].dtype == np.uint8 and read["h_gray.png"].ndim == 2
    # Alpha: kept, upscaled by plain bicubic interpolation.
    out_alpha = read["g_alpha.png"][:, :, 3]
    expected = cv2.resize(rgba[:, :, 3], (2 * W, 2 * H), interpolation=cv2.INTER_CUBIC)
    assert np.array_equal(out_alpha, expected)
    # The picture itself is the bicubic upscale (through YUV and back), close to OpenCV's.
    ref = cv2.resize(picture(1), (2 * W, 2 * H), interpolation=cv2.INTER_CUBIC).astype(int)
    assert np.abs(read["a.png"].astype(int) - ref).mean() < 3


def test_strict_stops_at_an_unreadable_image(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    cv2.imwrite(str(src / "a.png"), picture(1))
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    code = upscale_main(src, str(tmp_path / "out") + "/", *BICUBIC_CPU, "--strict")
    assert code == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("vidsr: error: ") and "broken.jpg" in err[0]


def test_rgb_yuv_round_trip_is_exact_for_8_bit_and_close_for_16_bit() -> None:
    rng = np.random.default_rng(0)
    rgb8 = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    assert np.array_equal(planes_to_rgb(rgb_to_planes(rgb8), IMAGE_YUV, 8), rgb8)
    rgb16 = rng.integers(0, 65536, (32, 32, 3), dtype=np.uint16)
    back = planes_to_rgb(rgb_to_planes(rgb16), IMAGE_YUV, 16)
    assert np.abs(back.astype(int) - rgb16.astype(int)).max() <= 3


def test_mixed_sizes_group_and_name_clashes_are_refused(tmp_path: Path) -> None:
    cv2.imwrite(str(tmp_path / "a.png"), picture(1))
    cv2.imwrite(str(tmp_path / "b.png"), cv2.resize(picture(2), (W * 2, H)))
    scan = scan_folder(tmp_path)  # photos of several sizes are a normal input
    assert [size for size, _ in scan.by_size()] == [(W, H), (W * 2, H)]
    with pytest.raises(InputError, match="differ in size"):  # but a video needs one
        check_one_size(scan)
    (tmp_path / "b.png").unlink()
    cv2.imwrite(str(tmp_path / "a.jpg"), picture(2))
    with pytest.raises(ValueError, match="a.png"):
        scan_folder(tmp_path, image_format="png")


def test_resume_after_a_killed_run(tmp_path: Path) -> None:
    src, dst = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    dst.mkdir()
    for i in range(1, 6):
        cv2.imwrite(str(src / f"f{i}.png"), picture(i))
    # What a killed run leaves: two complete outputs and a temporary file of a third.
    done = {"f1.png": b"", "f2.png": b""}
    for name in done:
        cv2.imwrite(str(dst / name), picture(99))
        done[name] = (dst / name).read_bytes()
    leftover = dst / f".f3.png.0123abcd{TEMP_SUFFIX}"
    leftover.write_bytes(b"\x89PNG truncated")
    with pytest.raises(OutputExistsError, match="--resume"):
        upscale_folder(src, dst, config())
    summary = upscale_folder(src, dst, config(), FolderOptions(resume=True))
    assert summary.frames == 3 and summary.resumed == 2
    for name, data in done.items():
        assert (dst / name).read_bytes() == data  # untouched
    assert not leftover.exists()
    assert sorted(p.name for p in dst.iterdir()) == [f"f{i}.png" for i in range(1, 6)]
    assert cv2.imread(str(dst / "f3.png")).shape == (2 * H, 2 * W, 3)
    assert oct(os.stat(dst / "f3.png").st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode
    again = upscale_folder(src, dst, config(), FolderOptions(resume=True))
    assert again.frames == 0 and again.resumed == 5


def test_folder_to_video_in_natural_order(tmp_path: Path) -> None:
    src = tmp_path / "frames"
    src.mkdir()
    levels = {1: 20, 2: 60, 3: 100, 10: 220, 4: 140}  # f10 is brightest: last in natural order
    for i, level in levels.items():
        cv2.imwrite(str(src / f"f{i}.png"), np.full((H, W, 3), level, np.uint8))
    dst = tmp_path / "out.mp4"
    summary = upscale_folder(src, dst, config(), FolderOptions(fps=Fraction(24)))
    assert summary.frames == 5
    frames = read_frames(dst)
    assert (frames[0].width, frames[0].height) == (2 * W, 2 * H)
    means = [f.to_ndarray(format="gray").mean() for f in frames]
    assert means == sorted(means)
    with av.open(str(dst)) as c:
        assert c.streams.video[0].average_rate == 24


def test_video_to_folder_and_cli_dispatch(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_video(tmp_path / "clip.mp4", n=4, size=(32, 24))
    out = tmp_path / "frames"
    summary = video_to_folder(src, out, config())
    assert summary.frames == 4
    assert sorted(p.name for p in out.iterdir()) == [f"clip_{i:06d}.png" for i in range(4)]
    assert cv2.imread(str(out / "clip_000000.png")).shape == (48, 64, 3)
    # The CLI: folder in, folder out (named with a trailing slash), default model.
    code = upscale_main(out, str(tmp_path / "x2") + "/", "--device", "cpu", "--format", "jpg")
    assert code == 0
    assert "4 frames" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "x2").iterdir()) == [
        f"clip_{i:06d}.jpg" for i in range(4)
    ]


def test_sink_never_writes_outside_its_folder(tmp_path: Path) -> None:
    sink = FolderSink(tmp_path / "out", IMAGE_YUV)
    (tmp_path / "out").mkdir()
    planes = rgb_to_planes(picture(1))
    frame = ImageFrame(0, 0, 1, planes, out_name="../escape.png", bits=8)
    sink.open()
    try:
        with pytest.raises(EncodeError, match="outside"):
            sink.write_frame(planes, frame)
    finally:
        sink.close()
    assert not (tmp_path / "escape.png").exists()


@pytest.mark.parametrize("orientation", [1, 2, 3, 4, 5, 6, 7, 8])
def test_exif_orientation_is_applied_like_pillow(tmp_path: Path, orientation: int) -> None:
    """A phone photo stored sideways with an EXIF orientation comes out upright, as
    viewers show the input (Pillow's exif_transpose is the reference)."""
    from PIL import Image, ImageOps

    from vidsr.media.images import read_picture

    pixels = np.zeros((24, 40, 3), np.uint8)
    pixels[:8, :10] = (250, 20, 20)  # a red corner block and a gradient: every flip differs
    pixels[..., 1] = np.arange(40, dtype=np.uint8)[None, :] * 6
    path = tmp_path / "photo.png"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(pixels).save(path, exif=exif)
    with Image.open(path) as im:
        expected = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    assert np.array_equal(read_picture(path).rgb, expected)
    upscale_folder(
        tmp_path,
        tmp_path / "out",
        RunConfig(model="bicubic", scale=2, device="cpu"),
        FolderOptions(),
    )
    with Image.open(tmp_path / "out" / "photo.png") as out:
        assert out.size == (expected.shape[1] * 2, expected.shape[0] * 2)
