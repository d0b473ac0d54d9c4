"""Upscale a library of videos: many inputs, one output folder, one model loaded once.

:func:`plan_jobs` turns what the user named (video files, folders of videos searched
recursively, list files) into :class:`~vidsr.pipeline.jobs.Job` s with the usual output
names, refusing up front two inputs that would write the same output. :func:`run_library`
skips the jobs whose output is already complete (:func:`is_complete`), so rerunning the
same command after a crash continues the job (an interrupted video's ``.partial`` output
is continued, as with ``--resume``), and hands the others to an
:class:`~vidsr.pipeline.jobs.Executor`: this process (:class:`LocalExecutor`) or a
cluster. Each job runs :func:`upscale_job`, which keeps its worker's loaded model in
``context.cache``. A failed input is a ``failed`` result; the others go on.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from vidsr.config import IMAGE_EXTENSIONS, RunConfig, WeightsKind
from vidsr.engine import upscaler
from vidsr.errors import EncodeError, InputError, OptionError, VidsrError
from vidsr.media.deinterlace import deinterlaced_info
from vidsr.media.probe import probe
from vidsr.media.sinks import CONTAINERS
from vidsr.models.contract import SRModel
from vidsr.pipeline.jobs import Executor, Job, JobResult, LocalExecutor, WorkerContext
from vidsr.pipeline.planning import ModelLoader
from vidsr.pipeline.video import upscale_video

log = logging.getLogger(__name__)

# Files a folder of videos is searched for (lower case): the containers vidsr also writes,
# so that each output can keep its input's extension.
VIDEO_EXTENSIONS: tuple[str, ...] = tuple(sorted(CONTAINERS))
# The temporary names of vidsr's own outputs (vidsr.pipeline.output), never inputs.
_TEMPORARY_SUFFIXES = (".partial", ".partial-previous", ".partial-final")


def output_name(src: Path, scale: int) -> str:
    """``movie.mkv`` -> ``movie_x2.mkv``."""
    return f"{src.stem}_x{scale}{src.suffix}"


def is_video_file(path: Path) -> bool:
    """A file a folder of videos contributes: a video extension, not hidden, not one of
    vidsr's temporary outputs."""
    return (
        path.suffix.lower() in VIDEO_EXTENSIONS
        and not path.name.startswith(".")
        and not path.stem.endswith(_TEMPORARY_SUFFIXES)
    )


def is_video_folder(folder: Path) -> bool:
    """Whether ``folder`` is a folder of videos (a library) rather than of frames: no
    image at its top level, and at least one video in it or below it."""
    if any(p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.iterdir() if p.is_file()):
        return False
    return next(iter(_walk_videos(folder, None)), None) is not None


def _walk_videos(folder: Path, skip: Path | None) -> Iterable[Path]:
    """The videos in ``folder`` and its subfolders (sorted, hidden folders and ``skip``
    left out; symbolic links to folders are not followed)."""
    for root, dirs, files in os.walk(folder):
        here = Path(root)
        dirs[:] = sorted(
            d for d in dirs if not d.startswith(".") and (skip is None or here / d != skip)
        )
        for name in sorted(files):
            if is_video_file(here / name):
                yield here / name


def read_input_list(path: Path) -> list[Path]:
    """The paths listed in ``path``, one a line; blank lines and lines starting with
    ``#`` are ignored, and relative paths are relative to the list file's folder.

    Raises:
        InputError: the list cannot be read or names nothing.
    """
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read the input list {path}: {e}") from e
    entries = [line.strip() for line in lines]
    paths = [path.parent / e for e in entries if e and not e.startswith("#")]
    if not paths:
        raise InputError(f"the input list {path} names no input")
    return paths


def plan_jobs(
    inputs: Sequence[Path], output_dir: Path | None, scale: int, *, input_lists: Sequence[Path] = ()
) -> list[Job]:
    """The jobs of a library run, in the order given (a folder's own videos first, then
    its subfolders' in turn, each sorted by name).

    Args:
        inputs: video files and folders of videos. A folder is searched recursively
            (:data:`VIDEO_EXTENSIONS`, hidden files and folders left out) and its
            subfolders are kept under ``output_dir``: ``season1/disc2/e01.mkv`` is
            written to ``out/disc2/e01_x2.mkv``. A path that is not a folder is a video
            file (one that does not exist fails as its job, not here).
        output_dir: where outputs go (``<stem>_x<scale><ext>``); ``None``: next to each
            input.
        scale: the upscaling factor, for the names.
        input_lists: files listing more inputs (see :func:`read_input_list`).

    Raises:
        InputError: a folder holds no video, or a list cannot be read.
        OptionError: no input, or two inputs would write the same output.
    """
    named = [*inputs, *(p for lst in input_lists for p in read_input_list(lst))]
    if not named:
        raise OptionError("no input given")
    jobs: list[Job] = []
    found: list[Job] = []  # jobs of files found in folders (not named by the user)
    for path in named:
        if path.is_dir():
            found_here = _folder_jobs(path, output_dir, scale)
            jobs += found_here
            found += found_here
        else:
            dst = (output_dir or path.parent) / output_name(path, scale)
            jobs.append(Job(path, dst))
    return _check_unique(_drop_outputs(jobs, found))


def _folder_jobs(folder: Path, output_dir: Path | None, scale: int) -> list[Job]:
    skip = output_dir.resolve() if output_dir is not None else None
    if skip is not None and skip == folder.resolve():
        skip = None  # outputs beside their inputs are dropped by _drop_outputs
    jobs = []
    for src in _walk_videos(folder.resolve(), skip):
        relative = src.relative_to(folder.resolve())
        base = output_dir / relative.parent if output_dir is not None else src.parent
        jobs.append(Job(folder / relative, base / output_name(src, scale)))
    if not jobs:
        raise InputError(
            f"no video in {folder} or its subfolders (looked for {', '.join(VIDEO_EXTENSIONS)})"
        )
    return jobs


def _drop_outputs(jobs: list[Job], found: list[Job]) -> list[Job]:
    """Leave out the files found in folders that are this run's own outputs (an earlier
    run's, written beside their inputs), and inputs named more than once (the first
    naming counts)."""
    outputs = {job.dst.resolve() for job in jobs}
    dropped = {id(job) for job in found if job.src.resolve() in outputs}
    seen: set[Path] = set()
    kept = []
    for job in jobs:
        src = job.src.resolve()
        if id(job) not in dropped and src not in seen:
            seen.add(src)
            kept.append(job)
    return kept


def _check_unique(jobs: list[Job]) -> list[Job]:
    writers: dict[Path, Job] = {}
    for job in jobs:
        first = writers.setdefault(job.dst.resolve(), job)
        if first is not job:
            raise OptionError(
                f"{first.src} and {job.src} would both be written to {job.dst}; "
                "rename one of them or give them in separate runs"
            )
    return jobs


def is_complete(job: Job) -> bool:
    """Whether ``job``'s output is already there, complete: vidsr publishes an output under
    its name only once it is complete (:func:`vidsr.pipeline.output.partial_output`), so a
    file there that reads as a video is one. An interrupted run's ``.partial`` file is
    not: that job is continued."""
    if not job.dst.is_file():
        return False
    try:
        probe(job.dst)
    except InputError:
        return False
    return True


@dataclass(frozen=True)
class JobTask:
    """What a worker needs for one job: the job and the run's settings."""

    job: Job
    config: RunConfig


def upscale_job(task: JobTask, context: WorkerContext) -> JobResult:
    """Upscale one video of a library (a task function for an
    :class:`~vidsr.pipeline.jobs.Executor`), reusing the model loaded by earlier jobs
    of the same worker (``context.cache``).

    Raises:
        VidsrError as :func:`~vidsr.pipeline.video.upscale_video` does; ``KeyboardInterrupt``
        leaves the ``.partial`` output to continue on the next run.
    """
    job = task.job
    try:
        job.dst.parent.mkdir(parents=True, exist_ok=True)  # a subfolder of a folder input
    except OSError as e:
        raise EncodeError(f"cannot create the folder {job.dst.parent}: {e.strerror or e}") from e
    summary = upscale_video(
        job.src, job.dst, task.config, progress=context.progress, loader=_cached_loader(context)
    )
    return JobResult(job, "done", summary.frames, summary.seconds)


def _cached_loader(context: WorkerContext) -> ModelLoader:
    """A model loader that keeps each model it loads in ``context.cache``."""

    def load(
        name: str | None, scale: int, *, self_ensemble: bool = False, content: WeightsKind = "clean"
    ) -> SRModel:
        key = f"model:{upscaler.resolve_model(name, scale)}:x{scale}:{self_ensemble}:{content}"
        model = context.cache.get(key)
        if not isinstance(model, SRModel):
            model = upscaler.load_model(name, scale, self_ensemble=self_ensemble, content=content)
            context.cache[key] = model
        return model

    return load


def frames_of(job: Job, config: RunConfig) -> int | None:
    """How many frames ``job``'s output will have, from the input's header (``None`` when
    it does not say).

    Raises:
        InputError: the input is missing or not a readable video.
    """
    info = probe(job.src)
    if config.deinterlace is not None:
        info = deinterlaced_info(info, config.deinterlace)
    return info.frame_count


def run_library(
    jobs: Sequence[Job],
    config: RunConfig,
    executor: Executor | None = None,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[int | None], None] | None = None,
) -> list[JobResult]:
    """Upscale every job, in ``jobs``' order of results.

    Args:
        jobs: from :func:`plan_jobs`.
        config: the settings of every job. Unless ``config.overwrite``, jobs whose output
            is complete are skipped and an interrupted job's ``.partial`` output is
            continued (``resume``); with it, every job starts again.
        executor: where the jobs run (default: a :class:`LocalExecutor`, this process).
        progress: called with numbers of frames just written, of any job.
        on_start: called once the inputs are probed, when there is a job to do, with
            the total number of frames to write (``None`` when a header does not say).

    Returns:
        One :class:`JobResult` per job: ``done``, ``skipped`` or ``failed`` (``error``
        is the one-line reason; an input that cannot be probed fails before any work).

    Raises:
        ``KeyboardInterrupt`` stops the run; the job in progress keeps its ``.partial``.
    """
    if not config.overwrite:
        config = replace(config, resume=True)
    results: dict[int, JobResult] = {}
    todo: list[int] = []
    total: int | None = 0
    for index, job in enumerate(jobs):
        if not config.overwrite and is_complete(job):
            results[index] = JobResult(job, "skipped")
            continue
        try:
            frames = frames_of(job, config)
        except VidsrError as e:
            results[index] = JobResult(job, "failed", error=str(e))
            continue
        total = None if total is None or frames is None else total + frames
        todo.append(index)
    if on_start is not None and todo:
        on_start(total)
    executor = executor or LocalExecutor()
    tasks = [JobTask(jobs[i], config) for i in todo]
    for outcome in executor.map_unordered(upscale_job, tasks, progress):
        job = jobs[todo[outcome.index]]
        results[todo[outcome.index]] = _result(job, outcome.value, outcome.error)
    return [results[i] for i in range(len(jobs))]


def _result(job: Job, value: JobResult | None, error: BaseException | None) -> JobResult:
    if error is None and value is not None:
        return value
    if isinstance(error, VidsrError):
        return JobResult(job, "failed", error=str(error))
    # Not a user-facing error: a bug. Its traceback is logged; the other jobs go on.
    log.error("%s failed unexpectedly", job.src, exc_info=error)
    return JobResult(job, "failed", error=f"internal error: {type(error).__name__}: {error}")
