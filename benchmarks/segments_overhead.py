"""What splitting one input into segments costs over a single-machine run of it.

    .venv/bin/python benchmarks/segments_overhead.py [--frames 200] [--size 320x180]
        [--segments 4] [--model NAME] [--codec libx264] [--repeats 3] [--ray N]

The input is FFmpeg's ``testsrc2`` pattern encoded with H.264, a keyframe every second.
Each repeat upscales it x2 on the CPU once with ``upscale_video`` and once with
``upscale_segmented`` on the one-worker ``LocalExecutor`` (so the segment work itself
takes as long as the single run's, and what differs is overhead). Reported, as medians:
the single run's time; the segmented run's planning (a decode of the source with the
shot detector) and stitching (stream copy, mux, publish) and their sum as a share of the
single run (target: under 3%); and the whole segmented run against the single one (which
also counts each segment's pre-roll decode and the pipeline restarting per segment).

``--ray N`` runs the segments on a local Ray instance (127.0.0.1, ``N`` cores) with ``N``
one-core workers instead (the ``--cluster auto --workers N`` path): planning and
stitching stay on the driver, and the whole segmented run then shows the parallel speed-up
net of that overhead and of Ray's own (the pool is started and warmed before timing).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from common import banner, render_clip

from vidsr.config import EncodeConfig, RunConfig
from vidsr.pipeline.jobs import Executor, LocalExecutor
from vidsr.pipeline.segmented import upscale_segmented
from vidsr.pipeline.video import upscale_video


@contextlib.contextmanager
def executor_for(ray_workers: int | None) -> Iterator[Executor]:
    """This process, or a warm pool of ``ray_workers`` one-core Ray workers."""
    if ray_workers is None:
        yield LocalExecutor()
        return
    from cluster_scaling import run_job, warm_up

    from vidsr.pipeline.cluster import RayExecutor
    from vidsr.pipeline.cluster.session import import_ray, start_local

    start_local(num_cpus=ray_workers, log_to_driver=False)
    try:
        with RayExecutor("auto", workers=ray_workers, threads=1) as executor:
            run_job(executor, warm_up, list(range(ray_workers)))
            yield executor
    finally:
        import_ray().shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--size", default="320x180")
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--model", default=None, help="default: the x2 default model")
    parser.add_argument("--codec", default="libx264")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ray", type=int, default=None, metavar="N", help="N Ray workers")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))
    config = RunConfig(
        model=args.model, device="cpu", scale=2, encode=EncodeConfig(codec=args.codec)
    )
    print(banner())
    single, whole, plan, stitch, segments = [], [], [], [], 0
    with tempfile.TemporaryDirectory() as folder, executor_for(args.ray) as executor:
        src = render_clip(Path(folder) / "clip.mkv", args.frames, (width, height), gop=25)
        for repeat in range(args.repeats):
            started = time.perf_counter()
            upscale_video(src, Path(folder) / f"single{repeat}.mkv", config)
            single.append(time.perf_counter() - started)
            started = time.perf_counter()
            summary = upscale_segmented(
                src, Path(folder) / f"seg{repeat}.mkv", config, executor, segments=args.segments
            )
            whole.append(time.perf_counter() - started)
            plan.append(summary.plan_seconds)
            stitch.append(summary.stitch_seconds)
            segments = summary.segments
    run, p, s = statistics.median(single), statistics.median(plan), statistics.median(stitch)
    print(
        f"input: {args.frames} frames {width}x{height} H.264, x2 to {args.codec}, "
        f"model {args.model or 'default'}, {segments} segments "
        f"{f'on {args.ray} Ray worker(s)' if args.ray else 'in this process'}, "
        f"medians of {args.repeats}"
    )
    print(f"single-machine run:        {run:8.2f} s")
    print(f"planning (scan + plan):    {p:8.3f} s  {100 * p / run:5.2f}%")
    print(f"stitching (copy + mux):    {s:8.3f} s  {100 * s / run:5.2f}%")
    print(f"planning + stitching:      {p + s:8.3f} s  {100 * (p + s) / run:5.2f}%  (target < 3%)")
    ratio = statistics.median(whole) / run
    print(f"whole segmented run:       {statistics.median(whole):8.2f} s  {ratio:5.3f}x single")


if __name__ == "__main__":
    main()
