"""`vidsr upscale --cluster auto` end to end on a local 2-CPU Ray instance (issue 21).

One long input in segments across 2 workers equals the single-machine run (FFV1: every
frame; libx264: Y-PSNR >= 45 dB; both: frame count, every timestamp, audio packets); a
worker killed mid-segment and a driver interrupted after two segments still give that
output; a library of three inputs, one corrupt, through the cluster. The Ray instance is
the module's (``local_ray`` of tests/test_cluster.py, bound to 127.0.0.1); ``--cluster
auto`` uses the Ray already initialised in this process and leaves it running. The
movie and the comparisons are tests/test_segments.py's. Deselect with ``-m 'not cluster'``.
"""

from __future__ import annotations

import contextlib
import re
import sys
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

import test_segments  # noqa: E402
from conftest import BICUBIC_CPU, make_video, upscale_main  # noqa: E402
from test_cluster import local_ray  # noqa: E402, F401 - the module's Ray instance
from test_library import corrupt, library_main, rows  # noqa: E402
from test_segments import SHOTS, assert_same_streams, planes, y_psnr  # noqa: E402

from vidsr.pipeline.cluster import RayExecutor  # noqa: E402
from vidsr.pipeline.cluster.session import INSTALL_HINT  # noqa: E402
from vidsr.pipeline.cluster.worker import KILL_ONCE_ENV  # noqa: E402
from vidsr.pipeline.segmented import work_folder  # noqa: E402

pytestmark = [pytest.mark.cluster, pytest.mark.usefixtures("local_ray")]

CLUSTER = ("--cluster", "auto", "--workers", "2")
FFV1 = (*BICUBIC_CPU, "--scale", "2", "--codec", "ffv1")
SEGMENTS = ("--segments", "4")


# The multi-shot movie (VFR H.264, AAC, SubRip) of tests/test_segments.py, made once here.
movie = test_segments.movie


@pytest.fixture(scope="module")
def single_ffv1(movie: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The single-machine run of the same command (no --cluster)."""
    dst = tmp_path_factory.mktemp("single") / "single.mkv"
    assert upscale_main(movie, dst, *FFV1) == 0
    return dst


def segment_counts(out: str) -> tuple[int, int]:
    """(segments, reused) from the summary line."""
    found = re.search(r", (\d+) segments(?: \((\d+) reused)?", out)
    assert found, out
    return int(found[1]), int(found[2] or 0)


def assert_same_output(single: Path, dst: Path) -> None:
    assert_same_streams(single, dst)
    for x, y in zip(planes(single), planes(dst), strict=True):
        np.testing.assert_array_equal(x, y)


def test_ffv1_through_ray_equals_the_single_run(
    movie: Path, single_ffv1: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    dst = tmp_path / "seg.mkv"
    assert upscale_main(movie, dst, *FFV1, *CLUSTER, *SEGMENTS) == 0
    out = capsys.readouterr().out
    segments, reused = segment_counts(out)
    assert segments >= 3 and reused == 0
    assert f"{sum(SHOTS)} frames" in out and "2 CPU worker(s) of a Ray cluster" in out
    assert_same_output(single_ffv1, dst)
    assert not work_folder(dst).exists()


def test_x264_through_ray_is_close_to_the_single_run(
    movie: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    x264 = (*BICUBIC_CPU, "--scale", "2", "--codec", "libx264")
    single, seg = tmp_path / "single.mkv", tmp_path / "seg.mkv"
    assert upscale_main(movie, single, *x264) == 0
    assert upscale_main(movie, seg, *x264, *CLUSTER, *SEGMENTS) == 0
    assert segment_counts(capsys.readouterr().out)[0] >= 3
    assert_same_streams(single, seg)  # frame count, timestamps, audio and subtitles
    assert y_psnr(single, seg) >= 45


def test_a_worker_killed_mid_segment_still_gives_the_output(
    movie: Path, single_ffv1: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "killed"
    monkeypatch.setenv(KILL_ONCE_ENV, str(marker))
    dst = tmp_path / "seg.mkv"
    assert upscale_main(movie, dst, *FFV1, *CLUSTER, *SEGMENTS) == 0
    assert marker.exists()  # a worker did die during a segment
    assert_same_output(single_ffv1, dst)


def interrupt_after(monkeypatch: pytest.MonkeyPatch, finished: int) -> None:
    """Make the driver stop (Ctrl-C) once ``finished`` segments have come back."""
    original = RayExecutor.map_unordered
    seen: list[int] = []

    def stopping(self, fn, tasks, progress=None):  # noqa: ANN001, ANN202
        with contextlib.closing(original(self, fn, tasks, progress)) as outcomes:
            for outcome in outcomes:
                yield outcome
                seen.append(outcome.index)
                if len(seen) == finished:
                    raise KeyboardInterrupt

    monkeypatch.setattr(RayExecutor, "map_unordered", stopping)


def test_an_interrupted_driver_s_rerun_reuses_the_finished_segments(
    movie: Path, single_ffv1: Path, tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture
) -> None:
    dst = tmp_path / "seg.mkv"
    with monkeypatch.context() as patch:
        interrupt_after(patch, 2)
        assert upscale_main(movie, dst, *FFV1, *CLUSTER, *SEGMENTS) == 130
    assert not dst.exists()
    done = len(list(work_folder(dst).glob("segment-*.nut")))
    assert done >= 2  # the two that came back (a third may have finished meanwhile)
    capsys.readouterr()
    assert upscale_main(movie, dst, *FFV1, *CLUSTER, *SEGMENTS) == 0
    segments, reused = segment_counts(capsys.readouterr().out)
    assert segments >= 3 and reused == done < segments
    assert_same_output(single_ffv1, dst)


def test_a_library_through_the_cluster(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    a = make_video(tmp_path / "a.mp4", n=6, size=(32, 24))
    b = make_video(tmp_path / "b.mkv", n=5, size=(32, 24), audio=True)
    bad = corrupt(tmp_path / "bad.mp4")
    out = tmp_path / "out"
    options = (*BICUBIC_CPU, *CLUSTER)
    assert library_main(a, bad, b, out=out, options=options) == 1
    table = rows(capsys.readouterr().out)
    assert [table[str(p)][1] for p in (a, bad, b)] == ["done", "failed", "done"]
    assert sorted(p.name for p in out.iterdir()) == ["a_x2.mp4", "b_x2.mkv"]
    assert library_main(a, bad, b, out=out, options=options) == 1
    text = capsys.readouterr().out
    table = rows(text)
    assert [table[str(p)][1] for p in (a, bad, b)] == ["skipped", "failed", "skipped"]
    assert "2 skipped" in text


def test_segments_need_cluster_and_refuse_a_recurrent_model(
    movie: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert upscale_main(movie, tmp_path / "x.mkv", *FFV1, "--segments", "3") == 1
    assert "--segments needs --cluster" in capsys.readouterr().err
    recurrent = ("--model", "temporal", "--device", "cpu", *CLUSTER)
    assert upscale_main(movie, tmp_path / "y.mkv", *recurrent) == 1
    err = capsys.readouterr().err
    assert "recurrent" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "y.mkv").exists()


def test_without_ray_cluster_is_a_one_line_error(
    movie: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    other = make_video(tmp_path / "other.mp4", n=2, size=(32, 24))
    assert upscale_main(movie, tmp_path / "one.mkv", *FFV1, *CLUSTER) == 1  # one video
    assert capsys.readouterr().err.strip() == f"vidsr: error: {INSTALL_HINT}"
    assert library_main(movie, other, out=tmp_path / "out", options=(*FFV1, *CLUSTER)) == 1
    assert capsys.readouterr().err.strip() == f"vidsr: error: {INSTALL_HINT}"
