"""Upscale one long input as segments on any :class:`~vidsr.pipeline.jobs.Executor`.

plan (scan the source, cut it at shots or keyframes) -> segment tasks on the workers ->
stitch by stream copy -> publish. The segment files live in a work folder beside the
output (``out.partial-segments/``, with the plan's settings in ``settings.json``); a
rerun after the driver died reuses every segment whose file checks out complete.

Colour matching is the single-machine run's, to the bit: a segment that starts at a cut
starts its matcher afresh, as the single run does there, and one that starts inside a
shot (at a keyframe of a long shot) continues from the matcher state the previous
segment of that shot ended with. Such segments therefore run in *rounds*: round ``r``
holds the ``r``-th segment of every chain of segments that share a shot; the segments
of one round run in parallel.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from vidsr.config import RunConfig
from vidsr.engine import upscaler
from vidsr.errors import OptionError, PartialOutputError
from vidsr.media.content import assess_video
from vidsr.media.probe import VideoInfo
from vidsr.media.resume import run_settings
from vidsr.media.sinks import OutputPlan
from vidsr.models.registry import REGISTRY
from vidsr.pipeline.jobs import Executor
from vidsr.pipeline.output import partial_output, partial_path
from vidsr.pipeline.planning import choose_content
from vidsr.pipeline.segmented.plan import FrameTable, Segment, plan_segments, scan_source
from vidsr.pipeline.segmented.segment import SegmentResult, SegmentTask, run_segment, segment_format
from vidsr.pipeline.segmented.stitch import stitch
from vidsr.pipeline.video import RunSummary, default_output_path, plan_run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SegmentedSummary(RunSummary):
    """A :class:`RunSummary` with how many segments there were, how many an earlier,
    interrupted run had already finished (reused), and the seconds spent planning (the
    scan of the source) and stitching: the overhead over a single-machine run."""

    segments: int = 0
    reused: int = 0
    plan_seconds: float = 0.0
    stitch_seconds: float = 0.0


def work_folder(dst: Path) -> Path:
    """Where the segments of output ``dst`` are kept until it is published."""
    return dst.with_name(f"{dst.stem}.partial-segments")


def upscale_segmented(
    src: str | Path,
    dst: str | Path | None,
    config: RunConfig | None,
    executor: Executor,
    *,
    segments: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> SegmentedSummary:
    """Upscale ``src`` to ``dst`` as segments run by ``executor`` (about ``segments``,
    default twice its workers), with the same output as :func:`upscale_video`.

    Raises:
        InputError, OptionError (deinterlacing, or a recurrent model: see
        :func:`refuse_stateful`), ModelError, EncodeError, DeviceError, OutputExistsError,
        PartialOutputError (an earlier run's segments were made with other settings:
        ``--overwrite`` starts again), or the first error a segment task raised.
    """
    config = config or RunConfig()
    if config.deinterlace is not None:
        raise OptionError("a segmented run cannot deinterlace; run it on one machine")
    refuse_stateful(config)
    src = Path(src)
    dst = Path(dst) if dst is not None else default_output_path(src, config.scale)
    info, out_info, config, plan, _hardware = plan_run(src, dst, config)
    verdict = choose_content(config, lambda: assess_video(src, info.stream_index))
    config = replace(config, content=verdict.kind)  # every worker loads the same weights
    folder = work_folder(dst)
    if (folder / "settings.json").is_file():  # this job's own stitch, interrupted
        partial_path(dst).unlink(missing_ok=True)
    started = time.perf_counter()
    with partial_output(dst, None, overwrite=config.overwrite) as out:
        table = scan_source(info, config)
        count = segments or max(1, executor.workers * 2)
        planned = plan_segments(table, count, shot_colour=config.colour == "shot")
        _claim_folder(folder, run_settings(info, config), config.overwrite)
        planning = time.perf_counter() - started
        tasks = [_task(info, out_info, plan, config, s, table, folder) for s in planned]
        results = _run_rounds(tasks, executor, progress)
        stitching = time.perf_counter()
        frames = stitch([t.path for t in tasks], plan, out_info, out.path)
    stitching = time.perf_counter() - stitching  # with the publish (a remux for MP4)
    shutil.rmtree(folder, ignore_errors=True)
    return SegmentedSummary(
        dst,
        frames,
        time.perf_counter() - started,
        dst.stat().st_size,
        expected_frames=len(table.pts),
        encoder=plan.codec,
        content=verdict.kind,
        content_reason=verdict.reason,
        segments=len(planned),
        reused=sum(r.reused for r in results),
        plan_seconds=planning,
        stitch_seconds=stitching,
    )


def refuse_stateful(config: RunConfig) -> None:
    """Refuse a recurrent model (family ``temporal``): its state runs through a whole shot,
    and a segment starting inside a shot cannot get it from the segment before (only the
    colour matcher's state is handed over), so the output would depend on where segments
    fall. Read from the registry (or an export's metadata), without loading weights.

    Raises:
        OptionError: ``config.model`` is a recurrent model.
    """
    name = upscaler.resolve_model(config.model, config.scale)
    if upscaler.is_external(name):
        exported = upscaler.vidsr_export(Path(name))
        name = exported[0] if exported is not None else ""
    entry = REGISTRY.get(name)
    if entry is not None and entry.family == "temporal":
        raise OptionError(
            f"model {config.model} is recurrent (its state runs through each shot): it cannot "
            "run in segments; upscale this video without --cluster, or in a library run"
        )


def _claim_folder(folder: Path, settings: dict, overwrite: bool) -> None:
    """Make the work folder, or keep an earlier run's when it was made with the same
    settings (a different one is removed with ``overwrite``, else refused)."""
    record = folder / "settings.json"
    if record.is_file():
        if json.loads(record.read_text()) == settings:
            return
        if not overwrite:
            raise PartialOutputError(
                f"segments of an interrupted run with other settings exist: {folder}: "
                f"add --overwrite to start again"
            )
        shutil.rmtree(folder)
    folder.mkdir(exist_ok=True)
    record.write_text(json.dumps(settings, indent=1))


def _task(
    info: VideoInfo,
    out_info: VideoInfo,
    plan: OutputPlan,
    config: RunConfig,
    segment: Segment,
    table: FrameTable,
    folder: Path,
) -> SegmentTask:
    """The task of one segment (the state of a continued shot is filled in later)."""
    lo, hi = segment.start, segment.end
    cuts = frozenset(i - lo for i in table.cuts if lo <= i < hi)
    return SegmentTask(
        info,
        out_info,
        plan,
        config,
        segment,
        table.pts[lo:hi],
        table.durations[lo:hi],
        cuts,
        folder / f"segment-{segment.index:05d}.{segment_format(plan.codec)}",
    )


def _run_rounds(
    tasks: list[SegmentTask], executor: Executor, progress: Callable[[int], None] | None
) -> list[SegmentResult]:
    """Run every task on ``executor``, a segment continuing a shot after the one before
    it (with that one's matcher state). Raises the first task error."""
    results: dict[int, SegmentResult] = {}
    pending = list(tasks)
    while pending:
        ready = [
            t for t in pending if not t.segment.continues_shot or t.segment.index - 1 in results
        ]
        ready = [
            replace(t, state=results[t.segment.index - 1].state) if t.segment.continues_shot else t
            for t in ready
        ]
        for outcome in executor.map_unordered(run_segment, ready, progress):
            if outcome.error is not None:
                raise outcome.error
            assert outcome.value is not None
            results[outcome.value.index] = outcome.value
        done = {t.segment.index for t in ready}
        pending = [t for t in pending if t.segment.index not in done]
    return [results[t.segment.index] for t in tasks]
