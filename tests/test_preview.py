"""``vidsr preview``: samples of a tiny synthetic clip through two models, a PNG grid of
the expected size, one projection line per model, and the optional split-screen clip."""

from __future__ import annotations

import re
from pathlib import Path

import av
import pytest
from conftest import make_video, read_frames
from PIL import Image

from vidsr.cli import main
from vidsr.errors import OptionError
from vidsr.media.panels import GAP, LABEL_HEIGHT
from vidsr.pipeline.preview import format_hms, sample_point


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return make_video(tmp_path / "clip.mp4", n=50, size=(64, 48), rate=25)  # 2 s


def test_preview_writes_the_grid_and_one_projection_line_per_model(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid, split = tmp_path / "grid.png", tmp_path / "split.mp4"
    args = ["preview", str(clip), "--models", "bicubic,lanczos", "--device", "cpu"]
    code = main([*args, "--seconds", "0.4", "-o", str(grid), "--clip", str(split)])
    assert code == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if " fps on " in line]
    assert [line.split()[0] for line in lines] == ["bicubic", "lanczos"]
    assert all(re.search(r"\(50 frames\) in about \d+:\d\d:\d\d$", line) for line in lines)
    # 3 sample points x (whole frames, centre crops) rows; nearest, bicubic, 2 models
    panel_w, panel_h = 128, 96  # 64x48 at x2, under the 480-pixel panel limit
    with Image.open(grid) as image:
        assert image.format == "PNG"
        assert image.size == (4 * panel_w + 3 * GAP, 6 * (panel_h + LABEL_HEIGHT) + 5 * GAP)
    frames = read_frames(split)
    assert len(frames) == 3 * 10  # 0.4 s at 25 fps per sample
    assert (frames[0].width, frames[0].height) == (128, 96)
    assert not list(tmp_path.glob(".*partial*"))


def test_preview_refuses_an_existing_grid_and_a_point_outside_the_video(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grid = tmp_path / "grid.png"
    grid.write_bytes(b"keep")
    base = ["preview", str(clip), "-m", "bicubic", "--device", "cpu", "-o", str(grid)]
    assert main(base) == 1
    assert "output exists" in capsys.readouterr().err
    assert grid.read_bytes() == b"keep"
    assert main([*base, "--overwrite", "--at", "5"]) == 1
    assert "outside the video" in capsys.readouterr().err


def test_sample_points_and_times() -> None:
    assert sample_point("50%", 10.0) == 5.0
    assert sample_point("1:30", 600.0) == 90.0
    assert sample_point("100%", 10.0) < 10.0
    with pytest.raises(OptionError, match="not a time"):
        sample_point("soon", 10.0)
    with pytest.raises(OptionError, match="duration is unknown"):
        sample_point("10%", None)
    assert format_hms(3 * 3600 + 5 * 60 + 7.4) == "3:05:07"
    assert format_hms(61.96, 1) == "0:01:02.0" and format_hms(1.25, 1) == "0:00:01.2"


def test_preview_shows_a_rotated_video_upright(tmp_path: Path) -> None:
    """A phone video (display rotation 90) is shown as players show it: its panels are
    portrait (96x128 at x2 for a 64x48 coded frame); the clip keeps the rotation."""
    rotated = make_video(tmp_path / "phone.mp4", n=25, size=(64, 48), rotation=90)
    grid, split = tmp_path / "grid.png", tmp_path / "split.mp4"
    args = ["preview", str(rotated), "-m", "bicubic", "--device", "cpu", "--seconds", "0.2"]
    assert main([*args, "-o", str(grid), "--clip", str(split)]) == 0
    panel_w, panel_h = 96, 128
    with Image.open(grid) as image:
        assert image.size == (3 * panel_w + 2 * GAP, 6 * (panel_h + LABEL_HEIGHT) + 5 * GAP)
    with av.open(str(split)) as c:
        assert next(c.decode(video=0)).rotation == 90
