"""Scaling of the Ray executor on this machine: the same learned-model job on 1 and 2 workers.

The job: ``--clips`` short H.264 clips (FFmpeg's testsrc2), each upscaled by the ``fast``
model on the CPU as one task. It runs on a local Ray instance (``num_cpus`` = the workers
measured) with 1 and 2 CPU workers, alternated repeat by repeat, each with one core: its
process pinned to a core of its own, one torch thread, one model worker thread, one encoder
thread (a worker's decode, model and encode threads would otherwise spread over both cores,
and one worker alone would not be a one-core baseline). The pool is started and warmed (its
processes up, torch imported) before timing, so the figures are the job's own; each worker
still loads the model per task, as ``upscale_video`` does. Prints the machine, the versions,
the median job time per worker count and the speed-up (target: at least 1.7x for 2 workers).

``--task`` picks the job: ``video`` (the default), the per-file :func:`upscale_video` task
below; ``library``, the clips as a library (:func:`~vidsr.pipeline.library.run_library`, the
``vidsr upscale a.mp4 b.mp4 -o out/ --cluster`` path: each worker keeps the model loaded
between its jobs); ``segments``, the clips' frames as one long clip (a keyframe a second,
one shot) cut into ``--segments`` segments (:func:`~vidsr.pipeline.segmented.upscale_segmented`,
the ``vidsr upscale movie.mp4 --cluster`` path). ``--color`` is the colour matching
(default ``frame``: under ``shot`` the segments of the one long shot run one after another,
so ``--task segments --color shot`` measures that limit). A builder in ``TASKS`` is a
function of ``(clips, out_dir, config, args)`` returning the job as a function of the
executor.

Usage: python benchmarks/cluster_scaling.py [--clips 4] [--frames 24] [--size 192x108]
       [--model fast] [--repeats 3] [--task video|library|segments] [--segments 8]
       [--color frame]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import banner, median_time, render_clip  # noqa: E402

from vidsr.config import COLOUR_MODES, EncodeConfig, RunConfig  # noqa: E402
from vidsr.pipeline.cluster import RayExecutor  # noqa: E402
from vidsr.pipeline.cluster.session import import_ray, start_local  # noqa: E402
from vidsr.pipeline.jobs import WorkerContext  # noqa: E402
from vidsr.pipeline.library import plan_jobs, run_library  # noqa: E402
from vidsr.pipeline.segmented import upscale_segmented  # noqa: E402

Job = Callable[[RayExecutor], None]
Builder = Callable[[list[Path], Path, RunConfig, argparse.Namespace], Job]


def upscale_file(task: tuple[str, str, RunConfig], context: WorkerContext) -> int:
    """One clip, upscaled to its output path: the per-file job (frames written)."""
    from vidsr.pipeline.video import upscale_video

    src, dst, config = task
    return upscale_video(src, dst, config, progress=context.progress).frames


def warm_up(task: int, context: WorkerContext) -> int:
    """The imports a real task needs, so the timed runs start warm; and this worker's
    process pinned to core ``task`` (all its threads: decode, model, encode), so that one
    worker really has one core and two have two."""
    import vidsr.pipeline.video  # noqa: F401

    os.sched_setaffinity(0, {task % (os.cpu_count() or 1)})
    return task


def video_job(clips: list[Path], out_dir: Path, config: RunConfig, args: argparse.Namespace) -> Job:
    tasks = [(str(c), str(out_dir / f"{c.stem}_x2.mp4"), config) for c in clips]
    return lambda executor: run_job(executor, upscale_file, tasks)


def library_job(
    clips: list[Path], out_dir: Path, config: RunConfig, args: argparse.Namespace
) -> Job:
    jobs = plan_jobs(clips, out_dir / "library", config.scale)

    def run(executor: RayExecutor) -> None:
        for result in run_library(jobs, config, executor):
            if result.status != "done":
                raise SystemExit(f"{result.job.src}: {result.status} {result.error}")

    return run


def segments_job(
    clips: list[Path], out_dir: Path, config: RunConfig, args: argparse.Namespace
) -> Job:
    frames = sum(args.frames + i for i in range(args.clips))
    long_clip = render_clip(out_dir / "long.mkv", frames, _size(args), gop=25)
    dst = out_dir / "long_x2.mkv"

    def run(executor: RayExecutor) -> None:
        summary = upscale_segmented(long_clip, dst, config, executor, segments=args.segments)
        print(
            f"  {summary.segments} segments, planning {summary.plan_seconds:.2f} s, "
            f"stitching {summary.stitch_seconds:.2f} s, {summary.seconds:.2f} s in all"
        )

    return run


TASKS: dict[str, Builder] = {"video": video_job, "library": library_job, "segments": segments_job}


def _size(args: argparse.Namespace) -> tuple[int, int]:
    width, height = (int(v) for v in args.size.split("x"))
    return width, height


def run_job(executor: RayExecutor, fn: Callable, tasks: list) -> None:
    for outcome in executor.map_unordered(fn, tasks):
        if outcome.error is not None:
            raise SystemExit(f"task {outcome.index} failed: {outcome.error}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clips", type=int, default=4)
    p.add_argument("--frames", type=int, default=24)
    p.add_argument("--size", default="192x108")
    p.add_argument("--model", default="fast")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--task", choices=sorted(TASKS), default="video")
    p.add_argument("--segments", type=int, default=8, help="--task segments: how many")
    p.add_argument("--color", choices=COLOUR_MODES, default="frame")
    args = p.parse_args()
    width, height = _size(args)
    counts = (1, 2)
    print(banner())
    ray = import_ray()
    print(
        f"ray {ray.__version__}; job: {args.clips} clips of {args.frames} frames "
        f"{width}x{height}, model {args.model} x2 on the CPU, task {args.task}, "
        f"colour {args.color}"
    )
    config = RunConfig(
        model=args.model,
        scale=2,
        device="cpu",
        cpu_workers=1,
        colour=args.color,
        overwrite=True,
        encode=EncodeConfig(threads=1, preset="veryfast"),
    )
    medians = {}
    with tempfile.TemporaryDirectory(prefix="vidsr-cluster-") as tmp:
        root = Path(tmp)
        clips = [
            render_clip(root / f"clip{i}.mp4", args.frames + i, (width, height))
            for i in range(args.clips)
        ]
        job = TASKS[args.task](clips, root, replace(config), args)
        start_local(num_cpus=max(counts), log_to_driver=False)
        times: dict[int, list[float]] = {count: [] for count in counts}
        try:
            for _ in range(args.repeats):  # alternated, so a drift in the machine hits both
                for count in counts:
                    with RayExecutor("auto", workers=count, threads=1) as executor:
                        run_job(executor, warm_up, list(range(count)))
                        times[count].append(median_time(lambda: job(executor), 1)[0])
        finally:
            ray.shutdown()
        for count in counts:
            medians[count] = statistics.median(times[count])
            print(
                f"{count} worker(s): median {medians[count]:.2f} s "
                f"({', '.join(f'{t:.2f}' for t in times[count])})"
            )
    speedup = medians[1] / medians[2]
    print(f"speed-up with 2 workers: {speedup:.2f}x (target >= 1.7x)")
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"load average at the end (1, 5, 15 min): {load} on {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
