"""Library mode: `vidsr upscale a.mp4 b.mkv season1/ -o out/` (issue 21, on one machine)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import BICUBIC_CPU, make_video, read_frames, upscale_main

from vidsr import RunConfig
from vidsr.cli import main
from vidsr.engine import upscaler
from vidsr.engine.processor import FrameProcessor
from vidsr.errors import OptionError
from vidsr.pipeline import library, planning
from vidsr.pipeline.jobs import Job, LocalExecutor
from vidsr.pipeline.library import is_complete, plan_jobs, read_input_list, run_library
from vidsr.pipeline.output import partial_path

CONFIG = RunConfig(model="bicubic", device="cpu", batch_size=2, queue_size=2)


def library_main(*inputs: Path | str, out: Path, options: tuple[str, ...] = BICUBIC_CPU) -> int:
    """``vidsr upscale INPUTS... -o OUT/ OPTIONS`` in this process."""
    return main(["upscale", *map(str, inputs), "-o", f"{out}/", *options])


def corrupt(path: Path) -> Path:
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42 but not a video" * 40)
    return path


def count_runs(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Record the input of every upscale_video call a library run makes."""
    calls: list[Path] = []
    original = library.upscale_video

    def counted(src, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        calls.append(Path(src))
        return original(src, *args, **kwargs)

    monkeypatch.setattr(library, "upscale_video", counted)
    return calls


def rows(out: str) -> dict[str, list[str]]:
    """The summary table's rows by input (status is the second cell)."""
    table = out.strip().splitlines()[1:-1]
    return {line.split()[0]: line.split() for line in table}


def test_three_inputs_one_corrupt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    a = make_video(tmp_path / "a.mp4", n=6)
    b = make_video(tmp_path / "b.mkv", n=5, audio=True)
    bad = corrupt(tmp_path / "bad.mp4")
    out = tmp_path / "out"
    inputs = (a, bad, b)  # the corrupt one in the middle

    assert library_main(*inputs, out=out) == 1
    printed = capsys.readouterr()
    assert sorted(p.name for p in out.iterdir()) == ["a_x2.mp4", "b_x2.mkv"]
    assert len(read_frames(out / "a_x2.mp4")) == 6 and len(read_frames(out / "b_x2.mkv")) == 5
    table = rows(printed.out)
    assert [table[str(p)][1] for p in (a, bad, b)] == ["done", "failed", "done"]
    assert "not a readable video file" in printed.out
    assert "2 done, 0 skipped (already complete), 1 failed" in printed.out

    stamps = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    calls = count_runs(monkeypatch)
    assert library_main(*inputs, out=out) == 1  # the rerun: the failure again, nothing redone
    table = rows(capsys.readouterr().out)
    assert sum(row[1] == "skipped" for row in table.values()) == 2
    assert table[str(bad)][1] == "failed"
    assert calls == []
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == stamps


def test_folder_input_recursive_keeps_subfolders(tmp_path: Path) -> None:
    season = tmp_path / "season1"
    (season / "disc2").mkdir(parents=True)
    (season / ".hidden").mkdir()
    make_video(season / "e01.mp4", n=4)
    make_video(season / "disc2" / "e02.mkv", n=3)
    make_video(season / ".hidden" / "x.mp4", n=3)
    make_video(season / "e03.partial.mp4", n=3)  # an interrupted run's leftover, not an input
    (season / "notes.txt").write_text("not a video")
    out = season / "upscaled"  # inside the folder: not searched on a rerun

    assert library_main(season, out=out) == 0
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert written == ["disc2/e02_x2.mkv", "e01_x2.mp4"]
    jobs = plan_jobs([season], out, 2)
    assert [j.src.relative_to(season).as_posix() for j in jobs] == ["e01.mp4", "disc2/e02.mkv"]
    assert all(is_complete(j) for j in jobs)


def test_outputs_beside_their_inputs_are_not_inputs_again(tmp_path: Path) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    make_video(folder / "a.mp4", n=3)
    make_video(folder / "b.mp4", n=3)
    results = run_library(plan_jobs([folder], None, 2), CONFIG)
    assert [r.status for r in results] == ["done", "done"]
    jobs = plan_jobs([folder], None, 2)  # a_x2.mp4 and b_x2.mp4 are now in the folder
    assert [j.src.name for j in jobs] == ["a.mp4", "b.mp4"]
    assert [r.status for r in run_library(jobs, CONFIG)] == ["skipped", "skipped"]


def test_inputs_list_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "clips").mkdir()
    make_video(tmp_path / "clips" / "a.mp4", n=3)
    make_video(tmp_path / "b.mp4", n=4)
    listing = tmp_path / "list.txt"
    listing.write_text("# the season\n\nclips/a.mp4\n  b.mp4  \n# clips/skipped.mp4\n")
    assert read_input_list(listing) == [tmp_path / "clips/a.mp4", tmp_path / "b.mp4"]

    out = tmp_path / "out"
    assert main(["upscale", "--inputs", str(listing), "-o", str(out), *BICUBIC_CPU]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a_x2.mp4", "b_x2.mp4"]
    assert "2 done" in capsys.readouterr().out


def test_duplicate_output_names_refused_up_front(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    for folder in ("s1", "s2"):
        (tmp_path / folder).mkdir()
        make_video(tmp_path / folder / "e01.mp4", n=3)
    with pytest.raises(OptionError, match="would both be written to"):
        plan_jobs([tmp_path / "s1", tmp_path / "s2"], tmp_path / "out", 2)
    # the same file named twice is one job
    assert len(plan_jobs([tmp_path / "s1", tmp_path / "s1" / "e01.mp4"], None, 2)) == 1

    out = tmp_path / "out"
    a, b = tmp_path / "s1" / "e01.mp4", tmp_path / "s2" / "e01.mp4"
    assert library_main(a, b, out=out) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "would both be written to" in err[0]
    assert not out.exists()


def test_model_loaded_once_for_all_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loads: list[str | None] = []
    original = upscaler.load_model

    def counted(name, scale, **kwargs):  # noqa: ANN001, ANN003, ANN202
        loads.append(name)
        return original(name, scale, **kwargs)

    monkeypatch.setattr(upscaler, "load_model", counted)
    monkeypatch.setattr(planning, "load_model", counted)  # a run that bypassed the cache
    jobs = [Job(make_video(tmp_path / f"{i}.mp4", n=3), tmp_path / f"{i}_x2.mp4") for i in range(3)]
    executor = LocalExecutor()
    results = run_library(jobs, CONFIG, executor)
    assert [r.status for r in results] == ["done"] * 3
    assert loads == ["bicubic"]

    from vidsr.pipeline.video import upscale_video

    upscale_video(jobs[0].src, tmp_path / "single.mp4", CONFIG)  # a single run loads its own
    assert loads == ["bicubic", "bicubic"]


def test_one_bar_over_all_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import tqdm

    bars: list[dict] = []

    class Bar:
        def __init__(self, total: int | None = None, **kwargs: object) -> None:
            self.state = {"total": total, "n": 0, "closed": False}
            bars.append(self.state)

        def update(self, n: int) -> None:
            self.state["n"] += n

        def close(self) -> None:
            self.state["closed"] = True

    monkeypatch.setattr(tqdm, "tqdm", Bar)
    a, b, c = (make_video(tmp_path / f"{k}.mp4", n=n) for k, n in (("a", 4), ("b", 7), ("c", 2)))
    out = tmp_path / "out"
    assert library_main(a, b, c, out=out) == 0
    assert bars == [{"total": 13, "n": 13, "closed": True}]
    assert sum(int(row[2]) for row in rows(capsys.readouterr().out).values()) == 13


def test_ctrl_c_leaves_the_partial_and_a_rerun_continues_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = make_video(tmp_path / "first.mp4", n=4)
    long = make_video(tmp_path / "long.mp4", n=40, rate=5)  # 2-second GOPs: 10 frames
    last = make_video(tmp_path / "last.mp4", n=4)
    out = tmp_path / "out"
    jobs = plan_jobs([first, long, last], out, 2)
    config = RunConfig(model="bicubic", device="cpu", batch_size=4, queue_size=2)

    original = FrameProcessor.process
    seen = {"frames": 0, "stop_at": 1 + 7}  # first.mp4's one batch, then 7 of long.mp4's

    def process(self: FrameProcessor, frames: list) -> list:
        seen["stop_at"] -= 1
        if seen["stop_at"] < 0:
            raise KeyboardInterrupt
        seen["frames"] += len(frames)
        return original(self, frames)

    monkeypatch.setattr(FrameProcessor, "process", process)
    with pytest.raises(KeyboardInterrupt):
        run_library(jobs, config)
    assert (out / "first_x2.mp4").exists() and partial_path(out / "long_x2.mp4").exists()
    assert not (out / "long_x2.mp4").exists() and not (out / "last_x2.mp4").exists()

    seen.update(frames=0, stop_at=10**6)
    results = run_library(jobs, config)  # no --resume needed: the library continues it
    assert [r.status for r in results] == ["skipped", "done", "done"]
    assert seen["frames"] < 30 + 4  # at least one finished GOP of long.mp4 was not redone
    assert len(read_frames(out / "long_x2.mp4")) == 40
    assert not partial_path(out / "long_x2.mp4").exists()


def test_one_file_input_is_unchanged(tmp_path: Path) -> None:
    src = make_video(tmp_path / "a.mp4", n=3)
    assert upscale_main(src, tmp_path / "a_big.mp4", *BICUBIC_CPU) == 0
    assert len(read_frames(tmp_path / "a_big.mp4")) == 3
    frames = tmp_path / "frames"  # a folder of images is still a frame folder
    frames.mkdir()
    import av

    with av.open(str(src)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            frame.to_image().save(frames / f"{i:03d}.png")
    assert not library.is_video_folder(frames)
    assert upscale_main(frames, f"{tmp_path / 'frames_x2'}/", *BICUBIC_CPU) == 0
    assert len(list((tmp_path / "frames_x2").glob("*.png"))) == 3
