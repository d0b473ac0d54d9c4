"""What runs inside a Ray actor: the task function, its worker's cache, progress reports.

:class:`TaskWorker` is a plain class that :class:`~vidsr.pipeline.cluster.RayExecutor`
makes into a Ray actor. It keeps one :class:`~vidsr.pipeline.jobs.WorkerContext` cache for
its life (a task function keeps its loaded model there), runs one task at a time and
returns ``(value, error, frames)``: a task's exception is a value to hand back, never a
reason for Ray to retry. Frame counts go to a :class:`ProgressBox` actor as they come
(cumulative per task, at most every :data:`REPORT_EVERY` seconds), and the final count
comes back with the result, so the driver's total is exact even when a report is late.

Fault injection for tests: given a marker path (``VIDSR_TEST_KILL_ONCE`` on the driver),
the first task to find the marker absent creates it and kills its own process, at its
first progress report (mid-task) or, reporting none, just before it would return.
"""

from __future__ import annotations

import os
import pickle
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any

from vidsr.allocator import keep_freed_memory
from vidsr.pipeline.jobs import WorkerContext

KILL_ONCE_ENV = "VIDSR_TEST_KILL_ONCE"
REPORT_EVERY = 0.2  # seconds between a task's progress reports to the driver


class ProgressBox:
    """A Ray actor holding the latest cumulative frame count of each running task, by the
    task's key (``(run, index)``: which map, which task)."""

    def __init__(self) -> None:
        self._frames: dict[Hashable, int] = {}

    def report(self, key: Hashable, frames: int) -> None:
        self._frames[key] = max(frames, self._frames.get(key, 0))

    def take(self) -> dict[Hashable, int]:
        """The counts reported since the last call."""
        frames, self._frames = self._frames, {}
        return frames


class _TaskProgress:
    """``context.progress`` for one task: adds up frames (from any thread) and sends the
    running total to the box now and then."""

    def __init__(self, key: Hashable, box: Any, kill_marker: str | None) -> None:
        self.key, self.frames = key, 0
        self._box, self._kill_marker = box, kill_marker
        self._sent_at = 0.0
        self._lock = threading.Lock()

    def __call__(self, frames: int) -> None:
        maybe_kill_once(self._kill_marker)
        with self._lock:
            self.frames += frames
            now = time.monotonic()
            if now - self._sent_at < REPORT_EVERY:
                return
            self._sent_at, total = now, self.frames
        if self._box is not None:
            self._box.report.remote(self.key, total)  # fire and forget


def maybe_kill_once(marker: str | None) -> None:
    """The test hook: exit this process at once (no cleanup, like a crash) if ``marker``
    is given and this is the first caller to create it."""
    if not marker:
        return
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    os._exit(1)


def _picklable(error: BaseException) -> BaseException:
    """``error``, or a plain RuntimeError with its message where it cannot travel back."""
    try:
        pickle.dumps(error)
    except Exception:  # noqa: BLE001 - any pickling failure means: send a copy
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error


class TaskWorker:
    """One worker of the pool (made a Ray actor by the executor): ``threads`` torch
    threads (``None``: leave torch's default). Its constructor takes plain values only,
    which Ray keeps to restart it."""

    def __init__(self, threads: int | None, kill_marker: str | None = None) -> None:
        keep_freed_memory()  # a process of its own: the CLI's heap setting (vidsr.allocator)
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        self._cache: dict[str, object] = {}
        self._kill_marker = kill_marker

    def run(
        self, fn: Callable[[Any, WorkerContext], Any], task: Any, key: Hashable, box: Any = None
    ) -> tuple[Any, BaseException | None, int]:
        """Run ``fn(task, context)``: ``(value, None, frames)`` or ``(None, error, frames)``
        where ``frames`` is what the task reported through ``context.progress`` (also
        sent to the :class:`ProgressBox` actor ``box`` under ``key`` as it goes)."""
        progress = _TaskProgress(key, box, self._kill_marker)
        try:
            value = fn(task, WorkerContext(self._cache, progress))
        except Exception as error:  # noqa: BLE001 - the task's outcome, not a crash
            return None, _picklable(error), progress.frames
        if progress.frames == 0:
            maybe_kill_once(self._kill_marker)
        return value, None, progress.frames

    def pid(self) -> int:
        """This worker's process id (tests kill it)."""
        return os.getpid()
