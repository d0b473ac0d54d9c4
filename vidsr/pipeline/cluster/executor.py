"""The Ray executor: task functions on a pool of Ray actors, outcomes as they finish.

Each actor (:class:`~vidsr.pipeline.cluster.worker.TaskWorker`) holds a worker cache for
its whole life and runs one task at a time; the driver hands the next task to whichever
actor finishes first (so a slow task never holds up the others, and no more tasks are in
flight than there are workers). An actor whose process dies is restarted by Ray and its
task retried (``max_restarts``, ``max_task_retries``); a task that raises is an outcome,
not retried. Progress reaches the one driver-side callback through a small actor.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from types import TracebackType
from typing import Any, TypeVar

from vidsr.errors import WorkerError
from vidsr.pipeline.cluster.resources import WorkerPlan, plan_workers
from vidsr.pipeline.cluster.session import connect, import_ray
from vidsr.pipeline.cluster.worker import KILL_ONCE_ENV, REPORT_EVERY, ProgressBox, TaskWorker
from vidsr.pipeline.jobs import TaskOutcome, WorkerContext

T = TypeVar("T")
R = TypeVar("R")


class RayExecutor:
    """Runs task functions on a Ray cluster (an :class:`~vidsr.pipeline.jobs.Executor`).

    Args:
        address: ``auto`` (the cluster ``RAY_ADDRESS`` names, else a new local instance
            bound to 127.0.0.1, without dashboard) or a cluster's address (``HOST:PORT``,
            ``ray://HOST:PORT``). A Ray already initialised in this process is used as is.
        workers: how many actors; default one per GPU, or one per ``threads`` CPU cores.
        threads: CPU cores (and torch threads) per CPU actor; default the cores split
            evenly among ``workers`` (see :func:`~vidsr.pipeline.cluster.plan_workers`).
        num_cpus: cores of a local instance this starts (default: all of this machine's).
        retries: times a task whose worker died is run again before it fails.

    Raises:
        OptionError: Ray is missing (one line saying what to install), the cluster cannot
            be reached, or ``workers`` does not fit it.
    """

    def __init__(
        self,
        address: str = "auto",
        workers: int | None = None,
        *,
        threads: int | None = None,
        num_cpus: int | None = None,
        retries: int = 3,
    ) -> None:
        self._ray = import_ray()
        self._retries = retries
        self._kill_marker = os.environ.get(KILL_ONCE_ENV) or None
        self._actors: list[Any] = []
        self._box: Any = None
        self._runs = itertools.count()
        self._owned = connect(address, num_cpus)
        try:
            nodes = [node["Resources"] for node in self._ray.nodes() if node["Alive"]]
            self.plan: WorkerPlan = plan_workers(nodes, workers, threads)
        except BaseException:
            self.close()
            raise

    @property
    def workers(self) -> int:
        return self.plan.count

    def __enter__(self) -> RayExecutor:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers, and shut down the Ray connection (and the local instance)
        this executor started. Safe to call more than once."""
        self._stop_pool()
        if self._owned and self._ray.is_initialized():
            self._ray.shutdown()
        self._owned = False

    def map_unordered(
        self,
        fn: Callable[[T, WorkerContext], R],
        tasks: Sequence[T],
        progress: Callable[[int], None] | None = None,
    ) -> Iterator[TaskOutcome[R]]:
        """Run ``fn`` on every task on the pool, yielding each outcome as it finishes.
        ``fn`` must be a top-level function (workers import it by name). A task that
        raises is yielded with its error; one whose worker died is retried, and yielded
        with a :class:`~vidsr.errors.WorkerError` when the retries run out. Interrupted
        (Ctrl-C) or closed early, this stops the workers before returning."""
        if not tasks:
            return
        report = progress or (lambda n: None)
        actors = self._pool()
        run = next(self._runs)  # tells this map's progress reports from a previous one's
        pending = iter(enumerate(tasks))
        running: dict[Any, tuple[Any, int]] = {}
        counted: dict[int, int] = {}  # frames of each task already given to ``report``

        def submit(actor: Any) -> None:
            item = next(pending, None)
            if item is not None:
                index, task = item
                counted[index] = 0
                key = (run, index)
                running[actor.run.remote(fn, task, key, self._box)] = (actor, index)

        completed = False
        try:
            for actor in actors:
                submit(actor)
            while running:
                ready, _ = self._ray.wait(list(running), num_returns=1, timeout=REPORT_EVERY)
                live = {index for _, index in running.values()}
                self._forward_progress(counted, {(run, index) for index in live}, report)
                for ref in ready:
                    actor, index = running.pop(ref)
                    outcome, frames = self._collect(ref, index)
                    _count(counted, index, frames, report)
                    submit(actor)  # the worker goes on while the caller takes the outcome
                    yield outcome
            completed = True
        finally:
            if not completed:  # Ctrl-C, an error, or the caller stopped early
                self._stop_pool()

    def _pool(self) -> list[Any]:
        """The actors (started on first use, kept for the executor's life)."""
        if not self._actors:
            ray, plan = self._ray, self.plan
            self._box = ray.remote(ProgressBox).options(num_cpus=0).remote()
            worker = ray.remote(TaskWorker).options(
                num_cpus=plan.num_cpus,
                num_gpus=plan.num_gpus,
                max_restarts=-1,
                max_task_retries=self._retries,
            )
            self._actors = [
                worker.remote(plan.threads, self._kill_marker) for _ in range(plan.count)
            ]
        return self._actors

    def _stop_pool(self) -> None:
        for actor in [*self._actors, *([self._box] if self._box is not None else [])]:
            self._ray.kill(actor, no_restart=True)
        self._actors, self._box = [], None

    def _forward_progress(
        self, counted: dict[int, int], live: set[tuple[int, int]], report: Callable[[int], None]
    ) -> None:
        """Give ``report`` the frames the running tasks (``live``: their ``(run, index)``
        keys) have done since last time."""
        for (run, index), frames in self._ray.get(self._box.take.remote()).items():
            if (run, index) in live:
                _count(counted, index, frames, report)

    def _collect(self, ref: Any, index: int) -> tuple[TaskOutcome[Any], int]:
        """The outcome of a finished task and the frames it reported."""
        try:
            value, error, frames = self._ray.get(ref)
        except self._ray.exceptions.RayError as lost:
            reason = (str(lost).strip().splitlines() or [type(lost).__name__])[0]
            error = WorkerError(
                f"task {index}: its worker died {self._retries + 1} time(s): {reason}"
            )
            return TaskOutcome(index, None, error), 0
        return TaskOutcome(index, value, error), frames


def _count(counted: dict[int, int], index: int, frames: int, report: Callable[[int], None]) -> None:
    """Report the frames of task ``index`` beyond those already reported: a retried task
    counts again from zero, and only its progress past the first attempt's is new."""
    if frames > counted.get(index, 0):
        report(frames - counted[index])
        counted[index] = frames
