"""The output file is safe: one run per output, an interrupted run's work is never dropped
silently, write failures are one line, and a hard-killed run of any container resumes."""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import av
import pytest
from conftest import (
    BICUBIC_CPU,
    SLOW_UPSCALE,
    frame_times,
    make_video,
    read_frames,
    run_cli,
    small_tmpfs,
    start_cli,
)

from vidsr import RunConfig
from vidsr.cli.upscale_cmd import format_summary
from vidsr.engine.processor import FrameProcessor
from vidsr.errors import EncodeError, ModelError, OutputBusyError, PartialOutputError
from vidsr.media.resume import finished_frames, settings_path
from vidsr.media.sinks import is_fragmented
from vidsr.pipeline import output
from vidsr.pipeline.output import lock_path, partial_output, partial_path
from vidsr.pipeline.video import RunSummary, upscale_video

WEIGHTS = Path(__file__).resolve().parents[1] / "models" / "weights"
BICUBIC = RunConfig(model="bicubic", device="cpu", batch_size=4)
SLOW = (*SLOW_UPSCALE, "--gop", "10")


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("vidsr: error:")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def wait_until(condition: Callable[[], bool], proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def interrupt_after(monkeypatch: pytest.MonkeyPatch, batches: int) -> None:
    """Ctrl-C on model batch ``batches + 1``."""
    original, calls = FrameProcessor.process, []

    def process(self: FrameProcessor, frames: list) -> list:
        calls.append(1)
        if len(calls) > batches:
            raise KeyboardInterrupt
        return original(self, frames)

    monkeypatch.setattr(FrameProcessor, "process", process)


# 1. Two runs on one output.
def test_a_second_owner_of_an_output_is_refused(tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    with partial_output(dst, {"a": 1}) as out:
        out.path.write_bytes(b"first")
        busy = pytest.raises(OutputBusyError, match="another vidsr run is writing")
        with busy, partial_output(dst, {"a": 1}):
            pass
        assert out.path.read_bytes() == b"first"  # the refused run touched nothing
    assert dst.read_bytes() == b"first" and not lock_path(dst).exists()
    lock_path(dst).touch()  # a lock file left by a killed run holds no lock: no block
    with partial_output(dst, overwrite=True) as out:
        out.path.write_bytes(b"again")
    assert dst.read_bytes() == b"again"


@pytest.mark.slow
def test_concurrent_runs_on_one_output(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", n=600, size=(160, 120))  # the first run: about 50 s
    dst = tmp_path / "out.mp4"
    first = start_cli("upscale", str(src), "-o", str(dst), *SLOW)
    wait_until(lambda: partial_path(dst).exists(), first)
    started = time.monotonic()
    second = run_cli("upscale", str(src), "-o", str(dst), *SLOW)
    line = one_line_error(second)
    assert "another vidsr run is writing" in line and str(dst) in line
    assert first.poll() is None, "the first run ended before the second was refused"
    assert time.monotonic() - started < 60  # after its imports, before any work
    stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr
    assert stdout.startswith(f"wrote {dst}: 600 frames")
    assert len(read_frames(dst)) == 600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]


# 8. An interrupted run's partial output is kept unless asked.
def test_an_earlier_partial_is_not_replaced_silently(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = make_video(tmp_path / "in.mp4", n=40, rate=5)
    dst = tmp_path / "out.mp4"
    interrupt_after(monkeypatch, batches=6)
    with pytest.raises(KeyboardInterrupt):
        upscale_video(src, dst, BICUBIC)
    monkeypatch.undo()
    before = partial_path(dst).read_bytes()
    message = (
        f"a partial output from an interrupted run exists: {partial_path(dst)}: "
        f"add --resume to continue or --overwrite to start again"
    )
    with pytest.raises(PartialOutputError) as refused:
        upscale_video(src, dst, BICUBIC)
    assert str(refused.value) == message
    assert partial_path(dst).read_bytes() == before and settings_path(partial_path(dst)).exists()
    summary = upscale_video(src, dst, RunConfig(model="bicubic", device="cpu", overwrite=True))
    assert summary.frames == 40 and len(read_frames(dst)) == 40
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]


# 10. Folders the up-front check cannot see through.
@pytest.mark.slow
@pytest.mark.parametrize("folder", ["/sys", "/proc"])
def test_system_folders_fail_in_one_line(tmp_path: Path, folder: str) -> None:
    src = make_video(tmp_path / "in.mp4", n=4)
    line = one_line_error(
        run_cli(
            "upscale", str(src), "--model", "bicubic", "--device", "cpu", "-o", f"{folder}/out.mp4"
        )
    )
    assert folder in line


# 17. Full disk, long names, a folder in the way, a broken model card.
def test_full_disk_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC raised where the settings record is written (simulated: the record's file is
    created, then the write fails, as on a full disk)."""
    src = make_video(tmp_path / "in.mp4", n=4)

    def full(partial: Path, settings: dict) -> None:
        settings_path(partial).touch()
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(output, "write_settings", full)
    with pytest.raises(EncodeError, match="No space left on device"):
        upscale_video(src, tmp_path / "out.mp4", BICUBIC)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]  # no 0-byte record


@pytest.fixture
def full_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A small tmpfs filled to the last byte (needs root and mount)."""
    with small_tmpfs(tmp_path / "full", "64k") as mount_point:
        fd = os.open(mount_point / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, bytes(4096)):
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        yield mount_point


@pytest.mark.slow
def test_completely_full_disk(tmp_path: Path, full_tmpfs: Path) -> None:
    src = make_video(tmp_path / "in.mp4", n=4)
    line = one_line_error(
        run_cli("upscale", str(src), *BICUBIC_CPU, "-o", str(full_tmpfs / "out.mp4"))
    )
    assert "No space left on device" in line
    assert [p.name for p in full_tmpfs.iterdir()] == ["filler"]


def test_full_disk_at_publish_keeps_the_finished_video(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The final remux of an MP4 fails (simulated ENOSPC): the finished partial is kept,
    and --resume publishes it once there is room."""
    src = make_video(tmp_path / "in.mp4", n=20, rate=5)
    dst = tmp_path / "out.mp4"

    def full(src_path: Path, dst_path: Path) -> None:
        dst_path.write_bytes(b"half")
        raise EncodeError(f"cannot finish {dst_path}: No space left on device")

    monkeypatch.setattr(output, "remux_fragmented", full)
    with pytest.raises(EncodeError, match="the finished video is kept at .*--resume"):
        upscale_video(src, dst, BICUBIC)
    assert len(read_frames(partial_path(dst))) == 20
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "in.mp4",
        "out.partial.mp4",
        "out.partial.mp4.json",
    ]
    monkeypatch.undo()
    summary = upscale_video(src, dst, RunConfig(model="bicubic", device="cpu", resume=True))
    assert summary.frames == 20 and frame_times(dst) == frame_times(src)


def test_temporary_name_too_long(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", n=4)
    dst = tmp_path / ("n" * 240 + ".mp4")  # fits; its .partial-previous name does not
    with pytest.raises(EncodeError, match="output name too long"):
        upscale_video(src, dst, BICUBIC)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4"]


def test_folder_at_the_partial_name(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", n=4)
    dst = tmp_path / "out.mp4"
    partial_path(dst).mkdir()
    (partial_path(dst) / "mine.txt").write_text("keep me")
    with pytest.raises(EncodeError, match="a folder is in the way"):
        upscale_video(src, dst, BICUBIC)
    assert (partial_path(dst) / "mine.txt").read_text() == "keep me"


def test_corrupt_model_card(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", n=4)
    weights = tmp_path / "x.safetensors"
    shutil.copy(WEIGHTS / "fast_x2.safetensors", weights)
    (tmp_path / "x.json").write_text('{"name": "x", broken')
    with pytest.raises(ModelError, match=r"model card .*x\.json.* cannot be read"):
        upscale_video(src, tmp_path / "out.mp4", RunConfig(model=str(weights), device="cpu"))
    assert not (tmp_path / "out.mp4").exists()


# 18. kill -9, then --resume, for every kind of container.
def _stream_starts(path: Path) -> dict[str, Fraction]:
    """Presentation time of the first packet of the video and of the audio stream."""
    starts: dict[str, Fraction] = {}
    with av.open(str(path)) as c:
        for packet in c.demux():
            kind = packet.stream.type
            if packet.pts is not None and packet.size > 0 and kind not in starts:
                starts[kind] = Fraction(packet.pts) * packet.time_base
    return starts


def _relative_times(path: Path) -> list[Fraction]:
    """Frame times from the first, in presentation order. MPEG-TS, NUT and AVI start later
    by the encoder's B-frame delay (no negative decode times), as ffmpeg's output does;
    AVI stores no presentation times, so its decoder hands B-frames out of order."""
    times = sorted(frame_times(path))
    return [t - times[0] for t in times]


@pytest.mark.slow
@pytest.mark.parametrize("ext", [".mp4", ".mov", ".mkv", ".webm", ".avi", ".ts", ".nut"])
def test_hard_kill_resumes(tmp_path: Path, ext: str) -> None:
    src = make_video(tmp_path / "in.mkv", n=240, size=(160, 120), audio=True)
    dst = tmp_path / f"out{ext}"
    partial = partial_path(dst)
    options = (*SLOW, "--audio", "opus") if ext == ".webm" else SLOW
    run = start_cli("upscale", str(src), "-o", str(dst), *options)
    wait_until(lambda: partial.exists() and finished_frames(partial) >= 20, run)
    run.send_signal(signal.SIGKILL)
    run.communicate(timeout=60)
    done = finished_frames(partial)
    assert 20 <= done < 240 and not dst.exists()

    result = run_cli("upscale", str(src), "-o", str(dst), "--resume", *options, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote {dst}: 240 frames (resumed at frame {done}) in ")
    shown = [int(n) for n in re.findall(r"(\d+)/240", result.stderr)]
    assert all(n == 0 or n >= done for n in shown)  # the finished GOPs were not redone
    assert len(read_frames(dst)) == 240  # decodes to the end
    out_times, in_times = _relative_times(dst), _relative_times(src)
    # AVI included: one tick per frame, so the copied GOPs and the fresh encoder's
    # frames meet on the same grid, with no nudge.
    assert out_times == in_times
    # Audio and video keep their offset (AVI has no timestamps to keep it; WebM's Opus
    # re-encode has its own codec delay).
    if ext not in (".avi", ".webm"):
        out, inp = _stream_starts(dst), _stream_starts(src)
        assert out["video"] - out["audio"] == inp["video"] - inp["audio"]
    if ext in (".mp4", ".mov", ".mkv", ".webm"):
        assert frame_times(dst) == frame_times(src)
    assert not is_fragmented(dst)  # published as a regular file
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([src.name, dst.name])


def test_the_summary_says_where_a_resumed_run_started(tmp_path: Path) -> None:
    fresh = RunSummary(tmp_path / "out.mp4", 240, 4.0, 10**6)
    resumed = replace(fresh, resumed_at=120)
    assert "resumed" not in format_summary(fresh) and "(60.0 fps)" in format_summary(fresh)
    line = format_summary(resumed)
    # The speed is this run's: 120 frames processed in 4 s, the 120 resumed ones copied.
    assert line.startswith(f"wrote {tmp_path / 'out.mp4'}: 240 frames (resumed at frame 120) in ")
    assert "(30.0 fps)" in line
