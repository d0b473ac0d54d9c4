"""Shot detector on synthetic sequences, thumbnails, detect_shots and `vidsr shots` (CPU)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from vidsr.cli import shots_cmd
from vidsr.colour.shots import Shot, ShotConfig, ShotDetector, make_thumbnail
from vidsr.errors import InputError, OptionError
from vidsr.media.shot_scan import detect_shots

H, W = 96, 128


def _texture(seed: int, h: int = 4 * H, w: int = 4 * W) -> np.ndarray:
    """Smooth random grey texture, uint8 (h, w), values ~16..235."""
    rng = np.random.default_rng(seed)
    small = rng.uniform(16, 235, (h // 8, w // 8)).astype(np.float32)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    big += rng.normal(0, 6, (h, w)).astype(np.float32)  # grain
    return np.clip(big, 0, 255).astype(np.uint8)


def _still(seed: int, n: int, noise_seed: int = 0) -> list[np.ndarray]:
    """n frames of the same picture with fresh sensor noise in each."""
    base = _texture(seed)[:H, :W].astype(np.float32)
    rng = np.random.default_rng(noise_seed + 1000 * seed)
    return [np.clip(base + rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8) for _ in range(n)]


def _pan(seed: int, n: int, step: tuple[int, int]) -> list[np.ndarray]:
    """A window sliding over a large texture, ``step`` = (dy, dx) pixels per frame."""
    tex = _texture(seed)
    return [
        tex[i * step[0] : i * step[0] + H, i * step[1] : i * step[1] + W].copy() for i in range(n)
    ]


def _cuts(frames: list[np.ndarray], config: ShotConfig | None = None) -> list[int]:
    detector = ShotDetector(config)
    decided: list[tuple[int, bool]] = []
    for frame in frames:
        decided += detector.push(make_thumbnail(frame))
    decided += detector.flush()
    assert [i for i, _ in decided] == list(range(len(frames)))  # each frame once, in order
    return [i for i, cut in decided if cut]


# ---- configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("threshold", 1.0),
        ("min_score", -1.0),
        ("min_shot_len", 0),
        ("window", 0),
        ("lookahead", 0),
        ("flash_ratio", 1.0),
        ("max_shift", -1),
        ("thumb_size", 8),
    ],
)
def test_config_rejects_bad_values(field: str, value: float) -> None:
    with pytest.raises(OptionError, match=field):
        ShotConfig(**{field: value})


# ---- detector on synthetic sequences ----------------------------------------------------


def test_hard_cuts_are_found_exactly() -> None:
    frames = _still(1, 20) + _still(2, 15) + _pan(3, 25, (1, 2))
    assert _cuts(frames) == [0, 20, 35]


def test_cut_between_pictures_of_equal_brightness() -> None:
    a, b = _texture(4)[:H, :W], _texture(5)[:H, :W]
    b = np.clip(b.astype(np.float32) - b.mean() + a.mean(), 0, 255).astype(np.uint8)
    assert _cuts([a] * 12 + [b] * 12) == [0, 12]


@pytest.mark.parametrize("length", [1, 2])
def test_flash_is_not_a_cut(length: int) -> None:
    frames = _still(6, 30)
    for i in range(15, 15 + length):
        frames[i] = np.clip(frames[i].astype(np.int16) + 90, 0, 255).astype(np.uint8)
    assert _cuts(frames) == [0]


def test_flash_during_a_pan_is_not_a_cut() -> None:
    frames = _pan(7, 30, (0, 3))
    frames[12] = np.full_like(frames[12], 235)  # white flash frame
    assert _cuts(frames) == [0]


@pytest.mark.parametrize("step", [(0, 1), (0, 3), (2, 2), (0, 6), (5, 0)])
def test_smooth_pan_has_no_cuts(step: tuple[int, int]) -> None:
    assert _cuts(_pan(8, 40, step)) == [0]


@pytest.mark.parametrize("speed", [4, 12])  # 12 px/frame is beyond motion compensation
def test_pan_starting_abruptly_has_no_cuts(speed: int) -> None:
    tex = _texture(9)
    still = [tex[:H, :W]] * 15
    moving = [tex[:H, speed * i : speed * i + W] for i in range(1, 20)]
    assert _cuts(still + moving) == [0]


def test_zoom_has_no_cuts() -> None:
    tex = _texture(10)[: 2 * H, : 2 * W]
    frames = []
    for i in range(30):
        crop = 1.0 - 0.015 * i
        h, w = int(2 * H * crop), int(2 * W * crop)
        y0, x0 = (2 * H - h) // 2, (2 * W - w) // 2
        frames.append(
            cv2.resize(tex[y0 : y0 + h, x0 : x0 + w], (W, H), interpolation=cv2.INTER_AREA)
        )
    assert _cuts(frames) == [0]


def test_fade_out_and_in_is_at_most_one_cut() -> None:
    a, b = _still(11, 1)[0].astype(np.float32), _still(12, 1)[0].astype(np.float32)
    black = 16.0
    out = [black + (a - black) * (1 - t) for t in np.linspace(0, 1, 15)]
    into = [black + (b - black) * t for t in np.linspace(0, 1, 15)]
    frames = (
        [a.astype(np.uint8)] * 10
        + [f.astype(np.uint8) for f in out + into]
        + [b.astype(np.uint8)] * 10
    )
    assert len(_cuts(frames)) <= 2  # frame 0 and at most one cut


def test_cross_dissolve_is_at_most_one_cut() -> None:
    a, b = _still(13, 1)[0].astype(np.float32), _still(14, 1)[0].astype(np.float32)
    mix = [(a * (1 - t) + b * t).astype(np.uint8) for t in np.linspace(0, 1, 12)]
    frames = [a.astype(np.uint8)] * 10 + mix + [b.astype(np.uint8)] * 10
    assert len(_cuts(frames)) <= 2


def test_min_shot_len_suppresses_close_cuts() -> None:
    frames = _still(15, 12) + _still(16, 4) + _still(17, 12)
    assert _cuts(frames, ShotConfig(min_shot_len=10)) == [0, 12]
    assert _cuts(frames, ShotConfig(min_shot_len=3)) == [0, 12, 16]


def test_decisions_arrive_after_lookahead_and_flush_resets() -> None:
    config = ShotConfig(lookahead=3)
    detector = ShotDetector(config)
    frames = _still(18, 6)
    got = [detector.push(make_thumbnail(f)) for f in frames]
    assert got[:3] == [[], [], []]
    assert got[3] == [(0, True)] and got[5] == [(2, False)]
    assert detector.flush() == [(3, False), (4, False), (5, False)]
    assert detector.flush() == []
    assert detector.push(make_thumbnail(frames[0])) == []  # a new stream starts at frame 0
    assert detector.flush() == [(0, True)]


def test_thumbnail_size_change_is_rejected() -> None:
    detector = ShotDetector()
    detector.push(make_thumbnail(np.zeros((H, W), np.uint8)))
    with pytest.raises(ValueError, match="shape changed"):
        detector.push(make_thumbnail(np.zeros((W, H), np.uint8)))


# ---- thumbnails ---------------------------------------------------------------------------


def test_thumbnail_layouts_and_depths() -> None:
    y8 = np.full((1080, 1920), 235, np.uint8)
    u8 = np.full((540, 960), 128, np.uint8)
    thumb = make_thumbnail(y8, u8, u8, thumb_size=64)
    assert thumb.shape == (3, 36, 64) and thumb.dtype == np.float32
    np.testing.assert_allclose(thumb[0], 235 / 255, atol=1e-6)
    np.testing.assert_allclose(thumb[1:], 128 / 255, atol=1e-6)
    y10 = np.full((1080, 1920), 940, np.uint16)  # 10-bit white: same code-normalised value
    np.testing.assert_allclose(make_thumbnail(y10, bits=10), thumb[:1], atol=1e-6)
    np.testing.assert_allclose(make_thumbnail(y8.astype(np.float32) / 255), thumb[:1], atol=1e-6)
    assert make_thumbnail(y8, u8[:, :480], u8[:, :480]).shape == (3, 36, 64)  # 4:1:1 ok too
    with pytest.raises(ValueError, match="both chroma"):
        make_thumbnail(y8, u8)
    with pytest.raises(TypeError, match="dtype"):
        make_thumbnail(y8.astype(np.int32))


# ---- detect_shots and the CLI on a real (tiny) video file ------------------------------------


def _write_video(path: Path, frames: list[np.ndarray]) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        for grey in frames:
            frame = av.VideoFrame.from_ndarray(np.stack([grey] * 3, -1), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():  # flush
            container.mux(packet)


@pytest.fixture
def three_shot_video(tmp_path: Path) -> Path:
    path = tmp_path / "shots.mkv"
    _write_video(path, _still(20, 14) + _pan(21, 12, (0, 2)) + _still(22, 10))
    return path


def test_detect_shots_on_a_file(three_shot_video: Path) -> None:
    shots = detect_shots(three_shot_video)
    assert [s.index for s in shots] == [0, 14, 26]
    assert [s.frames for s in shots] == [14, 12, 10]
    assert shots[1].time == pytest.approx(14 / 25, abs=1e-3)
    assert isinstance(shots[0], Shot)


def test_detect_shots_bad_input(tmp_path: Path) -> None:
    bogus = tmp_path / "not_a_video.mp4"
    bogus.write_bytes(b"hello")
    with pytest.raises(InputError, match="not_a_video"):
        detect_shots(bogus)
    with pytest.raises(InputError):
        detect_shots(tmp_path / "missing.mp4")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    shots_cmd.register(parser.add_subparsers())
    return parser.parse_args(argv)


def test_cli_json(three_shot_video: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse(["shots", str(three_shot_video), "--json"])
    assert args.func(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [s["first_frame"] for s in doc["shots"]] == [0, 14, 26]
    assert doc["shots"][2]["time"] == pytest.approx(26 / 25, abs=1e-3)


def test_cli_table_and_options(three_shot_video: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = _parse(["shots", str(three_shot_video), "--min-shot-len", "20"])
    assert args.func(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3  # header + shots at 0 and 26 (14 is too close to 0)
    assert lines[2].split()[:3] == ["1", "26", "10"] and lines[2].endswith("0:00:01.040")
    with pytest.raises(OptionError, match="threshold"):
        args = _parse(["shots", str(three_shot_video), "--threshold", "0.5"])
        args.func(args)
