"""Units of work bigger than one run, and where they run.

A *job* is one input file and its output (the library mode upscales many); a *task* is
whatever an executor hands to a worker: a whole job, or one segment of a long input. The
code that does a task is a plain top-level function ``fn(task, context)`` of picklable
arguments, so the same function runs in this process (:class:`LocalExecutor`) or in a
Ray actor on another machine (``vidsr.pipeline.cluster``). ``context.cache`` lives as long
as the worker does: a worker keeps its loaded model there between tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, Literal, Protocol, TypeVar

T = TypeVar("T")
R = TypeVar("R")

JobStatus = Literal["done", "skipped", "failed"]


@dataclass(frozen=True)
class Job:
    """One input video and the output it is upscaled to."""

    src: Path
    dst: Path


@dataclass(frozen=True)
class JobResult:
    """How one job ended: ``done`` (with its frame count and time), ``skipped`` (its output
    was already complete) or ``failed`` (``error`` is the one-line reason)."""

    job: Job
    status: JobStatus
    frames: int = 0
    seconds: float = 0.0
    error: str = ""


@dataclass
class WorkerContext:
    """What a task function gets besides its task: the worker's cache (kept between the
    tasks one worker runs) and a progress callback taking a number of frames just done."""

    cache: dict[str, object] = field(default_factory=dict)
    progress: Callable[[int], None] = lambda n: None


@dataclass(frozen=True)
class TaskOutcome(Generic[R]):
    """The end of one task: its index in the submitted sequence and its value, or the
    exception it raised (``error``; ``value`` is then ``None``)."""

    index: int
    value: R | None
    error: BaseException | None = None


class Executor(Protocol):
    """Runs task functions on workers: here (:class:`LocalExecutor`) or on a cluster."""

    @property
    def workers(self) -> int:
        """How many tasks run at once."""
        ...

    def map_unordered(
        self,
        fn: Callable[[T, WorkerContext], R],
        tasks: Sequence[T],
        progress: Callable[[int], None] | None = None,
    ) -> Iterator[TaskOutcome[R]]:
        """Run ``fn`` on every task, yielding each outcome as it finishes (in any order).
        An exception raised by ``fn`` is yielded as that task's outcome, not raised, so the
        other tasks go on. ``progress`` receives the frame counts that tasks report."""
        ...


class LocalExecutor:
    """One worker: this process, the tasks in order, one cache shared by all of them (so a
    model is loaded once for a whole library)."""

    def __init__(self) -> None:
        self._cache: dict[str, object] = {}

    @property
    def workers(self) -> int:
        return 1

    def map_unordered(
        self,
        fn: Callable[[T, WorkerContext], R],
        tasks: Sequence[T],
        progress: Callable[[int], None] | None = None,
    ) -> Iterator[TaskOutcome[R]]:
        context = WorkerContext(self._cache, progress or (lambda n: None))
        for index, task in enumerate(tasks):
            try:
                value = fn(task, context)
            except Exception as error:  # noqa: BLE001 - handed to the caller as the outcome
                yield TaskOutcome(index, None, error)
            else:
                yield TaskOutcome(index, value)
