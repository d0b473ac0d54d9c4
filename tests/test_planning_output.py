"""The compute stage's assembly (build_compute) and the partial output file's life."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidsr.colour.convert import YuvFormat
from vidsr.colour.matching import ColourMatcher
from vidsr.config import RunConfig
from vidsr.engine.processor import PlaneFormats
from vidsr.media.resume import ResumePoint, settings_path
from vidsr.pipeline import output
from vidsr.pipeline.output import partial_output, partial_path
from vidsr.pipeline.planning import CPU_CACHE_TILE, CPU_WIDE_TILE, WIDE_RADIUS, build_compute

SETTINGS = {"model": "bicubic", "scale": 2}


def test_success_publishes_and_drops_the_record(tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    with partial_output(dst, SETTINGS) as out:
        assert out.path == partial_path(dst) and out.resume_from is None
        assert settings_path(out.path).exists()  # recorded for a later --resume
        out.path.write_bytes(b"video")
    assert dst.read_bytes() == b"video"
    assert not partial_path(dst).exists() and not settings_path(partial_path(dst)).exists()


def test_without_settings_nothing_is_recorded(tmp_path: Path) -> None:
    dst = tmp_path / "out.mkv"
    with partial_output(dst) as out:
        out.path.write_bytes(b"video")
        assert not settings_path(out.path).exists()
    assert dst.read_bytes() == b"video"


def test_failure_removes_the_partial_and_its_record(tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"), partial_output(dst, SETTINGS) as out:
        out.path.write_bytes(b"half")
        raise RuntimeError("boom")
    assert not dst.exists() and not partial_path(dst).exists()
    assert not settings_path(partial_path(dst)).exists()


def _earlier_partial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An earlier run's partial output that matches the settings (5 frames done)."""
    dst = tmp_path / "out.mp4"
    partial_path(dst).write_bytes(b"earlier")
    monkeypatch.setattr(output, "read_resume_point", lambda path, settings: ResumePoint(path, 5))
    return dst


def test_failure_gives_back_the_partial_it_resumed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dst = _earlier_partial(tmp_path, monkeypatch)
    with pytest.raises(RuntimeError), partial_output(dst, SETTINGS, resume=True) as out:
        point = out.resume_from
        assert point is not None and point.frames_done == 5
        assert point.path != out.path and point.path.read_bytes() == b"earlier"
        out.path.write_bytes(b"new")
        raise RuntimeError("boom")
    assert partial_path(dst).read_bytes() == b"earlier"  # ready to resume again
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.partial.mp4", "out.partial.mp4.json"]


def test_resumed_success_drops_the_earlier_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dst = _earlier_partial(tmp_path, monkeypatch)
    with partial_output(dst, SETTINGS, resume=True) as out:
        assert out.resume_from is not None
        out.path.write_bytes(b"whole")
    assert dst.read_bytes() == b"whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_interrupt_keeps_the_partial_for_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dst = _earlier_partial(tmp_path, monkeypatch)
    with pytest.raises(KeyboardInterrupt), partial_output(dst, SETTINGS, resume=True) as out:
        out.path.write_bytes(b"flushed")
        raise KeyboardInterrupt
    assert partial_path(dst).read_bytes() == b"flushed"
    assert settings_path(partial_path(dst)).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.partial.mp4", "out.partial.mp4.json"]


def test_build_compute_sizes_the_stage_from_the_frame() -> None:
    fmt8 = YuvFormat(1, False, 8)
    formats = PlaneFormats(fmt8, fmt8, "yuv420p")
    baseline = build_compute(
        RunConfig(model="bicubic", device="cpu", colour="off"), 64, 48, formats
    )
    assert str(baseline.device) == "cpu" and baseline.model.name == "bicubic"
    assert baseline.tile is None and baseline.batch_size == 8  # small frames: a full batch
    assert baseline.processor.kernel == "integer" and baseline.processor.schedule == "inline"

    learned = RunConfig(model="fast", device="cpu", batch_size=3)
    fast = build_compute(learned, 640, 360, formats)
    assert fast.tile == CPU_CACHE_TILE == fast.processor.tile and fast.batch_size == 3
    assert isinstance(fast.processor.colour_stage, ColourMatcher)
    assert fast.processor.kernel == "float"
    as_given = build_compute(learned, 640, 360, formats, choose_tile=False)
    assert as_given.tile is None and as_given.processor.tile is None
    # A net that sees far gets tiles twice as wide (less of each tile is overlap); a frame
    # no larger than that tile runs whole.
    wide = build_compute(RunConfig(model="quality", device="cpu"), 640, 360, formats)
    assert wide.model.receptive_radius >= WIDE_RADIUS and wide.tile == CPU_WIDE_TILE
    small = build_compute(RunConfig(model="quality", device="cpu"), 320, 240, formats)
    assert small.tile is None
    assert build_compute(RunConfig(model="fast", device="cpu"), 320, 240, formats).tile == (
        CPU_CACHE_TILE
    )
