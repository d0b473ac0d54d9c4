"""Segmented runs (one long input split across workers) equal single-machine runs."""

from __future__ import annotations

import concurrent.futures
import random
import time
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import TypeVar

import av
import numpy as np
import pytest
from conftest import frame_times, packet_payloads, pattern_frame, read_frames

from vidsr.config import EncodeConfig, RunConfig
from vidsr.media.probe import probe
from vidsr.pipeline.jobs import LocalExecutor, TaskOutcome, WorkerContext
from vidsr.pipeline.segmented import upscale_segmented, work_folder
from vidsr.pipeline.segmented.plan import plan_segments, scan_source
from vidsr.pipeline.video import upscale_video

T = TypeVar("T")
R = TypeVar("R")

SHOTS = (14, 12, 30, 11)  # frames per shot: the third is long (keyframes inside it)
GOP = 8


class ThreadExecutor:
    """Two worker threads, each with its own cache, finishing tasks out of order (each
    task first sleeps a random moment)."""

    def __init__(self, workers: int = 2, seed: int = 0) -> None:
        self._workers = workers
        self._random = random.Random(seed)

    @property
    def workers(self) -> int:
        return self._workers

    def map_unordered(
        self,
        fn: Callable[[T, WorkerContext], R],
        tasks: Sequence[T],
        progress: Callable[[int], None] | None = None,
    ) -> Iterator[TaskOutcome[R]]:
        delays = [self._random.uniform(0, 0.3) for _ in tasks]

        def call(index: int) -> R:
            time.sleep(delays[index])
            return fn(tasks[index], WorkerContext({}, progress or (lambda n: None)))

        with concurrent.futures.ThreadPoolExecutor(self._workers) as pool:
            futures = {pool.submit(call, i): i for i in range(len(tasks))}
            for future in concurrent.futures.as_completed(futures):
                error = future.exception()
                value = None if error is not None else future.result()
                yield TaskOutcome(futures[future], value, error)


class StopAfter:
    """LocalExecutor that stops (as a killed driver would) after ``n`` finished tasks."""

    def __init__(self, n: int) -> None:
        self._n = n
        self._inner = LocalExecutor()

    @property
    def workers(self) -> int:
        return 1

    def map_unordered(self, fn, tasks, progress=None):  # noqa: ANN001, ANN201
        for done, outcome in enumerate(self._inner.map_unordered(fn, tasks, progress), 1):
            yield outcome
            if done == self._n:
                raise KeyboardInterrupt


def shot_frame(shot: int, index: int, width: int, height: int) -> np.ndarray:
    """A picture per shot: the moving-bar pattern in a colour and brightness of its own."""
    img = pattern_frame(0, width, height).astype(np.int32)
    img = np.roll(img, index, axis=1)  # a slow pan
    tint = np.array([(shot * 83) % 160, (shot * 41) % 120, (shot * 67) % 140]) - 60
    return np.clip(img * (0.5 + 0.15 * shot) + tint, 0, 255).astype(np.uint8)


def make_movie(path: Path, size: tuple[int, int] = (64, 48)) -> Path:
    """A multi-shot H.264 MKV (keyframe every ``GOP`` frames, variable frame rate) with
    AAC audio and SubRip subtitles."""
    width, height = size
    tb = Fraction(1, 1000)
    total = sum(SHOTS)
    steps = [40 if i % 5 else 60 for i in range(total)]  # VFR: every 5th interval longer
    times = [sum(steps[:i]) for i in range(total)]
    with av.open(str(path), "w") as out:
        out.metadata["title"] = "segments"
        video = out.add_stream("libx264", rate=25)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.time_base = video.codec_context.time_base = tb
        video.options = {"preset": "ultrafast", "crf": "16", "g": str(GOP), "sc_threshold": "0"}
        audio = out.add_stream("aac", rate=48000)
        audio.layout = "stereo"
        subs = out.add_mux_stream("subrip")
        subs.time_base = tb
        index = 0
        for shot, length in enumerate(SHOTS):
            for i in range(length):
                img = shot_frame(shot, i, width, height)
                frame = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
                frame.pts, frame.time_base = times[index], tb
                for packet in video.encode(frame):
                    out.mux(packet)
                if i == 1:
                    packet = av.Packet(f"shot {shot}".encode())
                    packet.stream, packet.time_base = subs, tb
                    packet.pts = packet.dts = times[index]
                    packet.duration = 300
                    out.mux(packet)
                index += 1
        for packet in video.encode():
            out.mux(packet)
        rng = np.random.default_rng(0)
        for start in range(0, int((times[-1] / 1000 + 0.1) * 48000), 1024):
            samples = (rng.standard_normal((2, 1024)) * 0.05).astype(np.float32)
            af = av.AudioFrame.from_ndarray(samples, format="fltp", layout="stereo")
            af.sample_rate, af.pts = 48000, start
            for packet in audio.encode(af):
                out.mux(packet)
        for packet in audio.encode():
            out.mux(packet)
    return path


def config(codec: str, **more: object) -> RunConfig:
    return RunConfig(
        model="bicubic", device="cpu", scale=2, encode=EncodeConfig(codec=codec), **more
    )


@pytest.fixture(scope="module")
def movie(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_movie(tmp_path_factory.mktemp("movie") / "movie.mkv")


@pytest.fixture(scope="module")
def single_ffv1(movie: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dst = tmp_path_factory.mktemp("single") / "single.mkv"
    upscale_video(movie, dst, config("ffv1"))
    return dst


def audio_packets(path: Path) -> list[tuple[int | None, bytes]]:
    with av.open(str(path)) as c:
        return [(p.pts, bytes(p)) for p in c.demux(c.streams.audio[0]) if p.size]


def assert_same_streams(a: Path, b: Path) -> None:
    """Frame count, every timestamp, audio packets and subtitles equal."""
    assert frame_times(a) == frame_times(b)
    assert audio_packets(a) == audio_packets(b)
    assert packet_payloads(a, "subtitle") == packet_payloads(b, "subtitle")
    with av.open(str(a)) as ca, av.open(str(b)) as cb:
        assert ca.metadata.get("title") == cb.metadata.get("title") == "segments"
        assert [s.type for s in ca.streams] == [s.type for s in cb.streams]


def planes(path: Path) -> list[np.ndarray]:
    return [f.to_ndarray() for f in read_frames(path)]


def test_plan_cuts_at_shots_and_keyframes(movie: Path) -> None:
    cfg = config("ffv1")
    table = scan_source(probe(movie), cfg)
    assert table.exact and len(table.pts) == sum(SHOTS)
    starts = [sum(SHOTS[:k]) for k in range(1, len(SHOTS))]
    assert sorted(table.cuts - {0}) == starts  # the detector finds the synthetic cuts
    segments = plan_segments(table, 6, shot_colour=True)
    assert len(segments) >= 3
    assert segments[0].start == 0 and segments[-1].end == sum(SHOTS)
    for a, b in zip(segments, segments[1:], strict=False):
        assert a.end == b.start
        assert b.start in table.cuts or b.start in table.keyframes
        assert b.continues_shot == (b.start not in table.cuts)
    assert any(s.continues_shot for s in segments)  # the long shot is split at a keyframe


@pytest.mark.parametrize("make_executor", [LocalExecutor, ThreadExecutor])
def test_ffv1_equals_single_run(
    movie: Path, single_ffv1: Path, tmp_path: Path, make_executor: Callable[[], object]
) -> None:
    dst = tmp_path / "seg.mkv"
    summary = upscale_segmented(movie, dst, config("ffv1"), make_executor(), segments=5)
    assert summary.segments >= 3 and summary.frames == sum(SHOTS)
    assert_same_streams(single_ffv1, dst)
    for x, y in zip(planes(single_ffv1), planes(dst), strict=True):
        np.testing.assert_array_equal(x, y)
    assert not work_folder(dst).exists()


def y_psnr(a: Path, b: Path) -> float:
    fa = [f.to_ndarray(format="gray").astype(np.float64) for f in read_frames(a)]
    fb = [f.to_ndarray(format="gray").astype(np.float64) for f in read_frames(b)]
    mse = np.mean([np.mean((x - y) ** 2) for x, y in zip(fa, fb, strict=True)])
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def test_x264_close_to_single_run(movie: Path, tmp_path: Path) -> None:
    single, seg = tmp_path / "single.mkv", tmp_path / "seg.mkv"
    upscale_video(movie, single, config("libx264"))
    summary = upscale_segmented(movie, seg, config("libx264"), ThreadExecutor(), segments=4)
    assert summary.segments >= 3
    assert frame_times(single) == frame_times(seg)
    assert audio_packets(single) == audio_packets(seg)
    assert y_psnr(single, seg) >= 45


def test_resume_reuses_checked_segments(movie: Path, single_ffv1: Path, tmp_path: Path) -> None:
    dst = tmp_path / "seg.mkv"
    with pytest.raises(KeyboardInterrupt):
        upscale_segmented(movie, dst, config("ffv1"), StopAfter(2), segments=3)
    assert not dst.exists()
    finished = sorted(work_folder(dst).glob("segment-*.nut"))
    assert len(finished) == 2
    summary = upscale_segmented(movie, dst, config("ffv1"), LocalExecutor(), segments=3)
    assert (summary.segments, summary.reused) == (3, 2)
    for x, y in zip(planes(single_ffv1), planes(dst), strict=True):
        np.testing.assert_array_equal(x, y)
    assert_same_streams(single_ffv1, dst)


def test_truncated_segment_is_redone(movie: Path, single_ffv1: Path, tmp_path: Path) -> None:
    dst = tmp_path / "seg.mkv"
    with pytest.raises(KeyboardInterrupt):
        upscale_segmented(movie, dst, config("ffv1"), StopAfter(2), segments=3)
    first = sorted(work_folder(dst).glob("segment-*.nut"))[0]
    first.write_bytes(first.read_bytes()[: first.stat().st_size // 2])
    summary = upscale_segmented(movie, dst, config("ffv1"), LocalExecutor(), segments=3)
    assert summary.reused == 1
    for x, y in zip(planes(single_ffv1), planes(dst), strict=True):
        np.testing.assert_array_equal(x, y)
