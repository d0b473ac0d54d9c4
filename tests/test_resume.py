"""`--resume`: an interrupted run continues where it stopped, same length, in sync."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import frame_times, make_video, packet_payloads, read_frames

from vidsr import RunConfig
from vidsr.engine.processor import FrameProcessor
from vidsr.errors import InputError
from vidsr.media.resume import settings_path
from vidsr.pipeline.output import partial_path
from vidsr.pipeline.video import upscale_video


def interrupt_after(monkeypatch: pytest.MonkeyPatch, batches: int) -> dict:
    """Make FrameProcessor.process raise KeyboardInterrupt on batch ``batches + 1``,
    and count the frames it processes."""
    monkeypatch.undo()  # wrap the real method, not an earlier wrapper
    original = FrameProcessor.process
    state = {"calls": 0, "frames": 0}

    def process(self: FrameProcessor, frames: list) -> list:
        state["calls"] += 1
        if batches is not None and state["calls"] > batches:
            raise KeyboardInterrupt
        state["frames"] += len(frames)
        return original(self, frames)

    monkeypatch.setattr(FrameProcessor, "process", process)
    return state


@pytest.mark.parametrize("ext", [".mp4", ".mkv"])
def test_resume_continues_and_stays_in_sync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ext: str
) -> None:
    src = make_video(tmp_path / f"long{ext}", n=40, rate=5, audio=True)  # 2-second GOPs = 10 frames
    dst = tmp_path / f"long_x2{ext}"
    config = RunConfig(model="bicubic", device="cpu", batch_size=4, queue_size=2)

    interrupt_after(monkeypatch, batches=7)  # 28 frames processed, then Ctrl-C
    with pytest.raises(KeyboardInterrupt):
        upscale_video(src, dst, config)
    partial = partial_path(dst)
    assert partial.exists() and settings_path(partial).exists() and not dst.exists()
    done_before = len(read_frames(partial))
    assert 0 < done_before < 40

    state = interrupt_after(monkeypatch, batches=None)
    summary = upscale_video(
        src, dst, RunConfig(model="bicubic", device="cpu", batch_size=4, resume=True)
    )
    assert state["frames"] < 40 - 10  # at least one finished GOP was not redone
    assert summary.frames == 40
    assert summary.resumed_at >= 10 and summary.resumed_at + state["frames"] == 40
    assert len(read_frames(dst)) == 40
    assert frame_times(dst) == frame_times(src)
    assert packet_payloads(dst, "audio") == packet_payloads(src, "audio")
    assert not partial.exists() and not settings_path(partial).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"long{ext}", f"long_x2{ext}"]


def test_resume_refuses_other_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = make_video(tmp_path / "v.mp4", n=30, rate=5)
    dst = tmp_path / "v_x2.mp4"
    interrupt_after(monkeypatch, batches=4)
    with pytest.raises(KeyboardInterrupt):
        upscale_video(src, dst, RunConfig(model="bicubic", device="cpu", batch_size=4))
    with pytest.raises(InputError, match="other settings"):
        upscale_video(src, dst, RunConfig(model="lanczos", device="cpu", batch_size=4, resume=True))
    # Self-ensembled frames differ from single-pass ones: never mixed in one output.
    with pytest.raises(InputError, match=r"other settings \(self_ensemble\)"):
        upscale_video(
            src,
            dst,
            RunConfig(model="bicubic", device="cpu", batch_size=4, resume=True, self_ensemble=True),
        )
    # bf16 convolutions and swscale give other codes than fp32 and the exact kernel.
    for other, key in (
        ({"precision": "fp32"}, "precision"),
        ({"resampler": "swscale"}, "resampler"),
    ):
        config = RunConfig(
            model="bicubic", device="cpu", batch_size=4, resume=True, colour="off", **other
        )
        with pytest.raises(InputError, match=rf"other settings \([a-z_, ]*{key}"):
            upscale_video(src, dst, config)


def test_resume_accepts_a_record_from_before_self_ensemble(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A settings record written before --self-ensemble existed has no such key: it was a
    single-pass run, so it resumes without the flag and is refused with it."""
    src = make_video(tmp_path / "v.mp4", n=30, rate=5)
    dst = tmp_path / "v_x2.mp4"
    interrupt_after(monkeypatch, batches=4)
    with pytest.raises(KeyboardInterrupt):
        upscale_video(src, dst, RunConfig(model="bicubic", device="cpu", batch_size=4))
    record = settings_path(partial_path(dst))
    old = json.loads(record.read_text())
    del old["self_ensemble"]
    record.write_text(json.dumps(old))
    with pytest.raises(InputError, match=r"other settings \(self_ensemble\)"):
        upscale_video(
            src,
            dst,
            RunConfig(model="bicubic", device="cpu", batch_size=4, resume=True, self_ensemble=True),
        )
    state = interrupt_after(monkeypatch, batches=None)
    summary = upscale_video(
        src, dst, RunConfig(model="bicubic", device="cpu", batch_size=4, resume=True)
    )
    assert summary.frames == 30 and state["frames"] < 30


def test_resume_without_partial_runs_from_the_start(tmp_path: Path) -> None:
    src = make_video(tmp_path / "v.mp4", n=6)
    summary = upscale_video(
        src, tmp_path / "o.mp4", RunConfig(model="bicubic", device="cpu", resume=True)
    )
    assert summary.frames == 6
