"""How many Ray actors to start and what each reserves, from the cluster's nodes.

Pure arithmetic over ``ray.nodes()``-style resource dictionaries, so it is testable
without Ray. GPUs, where the cluster has any, win: one actor per GPU (``num_gpus=1``) with
that GPU's share of its node's CPU cores for decoding and encoding. Otherwise one actor
per group of ``threads`` CPU cores, torch using ``threads`` threads inside it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from vidsr.errors import OptionError

# CPU cores per worker when neither --workers nor a thread count says otherwise: a few
# torch threads per model, and several workers on a big machine.
DEFAULT_CPU_GROUP = 4


@dataclass(frozen=True)
class WorkerPlan:
    """The actor pool: ``count`` actors, each reserving ``num_cpus`` cores and ``num_gpus``
    GPUs (0 or 1) and running torch with ``threads`` threads."""

    count: int
    num_cpus: int
    num_gpus: int
    threads: int

    @property
    def kind(self) -> str:
        """``GPU`` or ``CPU``: what each worker computes on."""
        return "GPU" if self.num_gpus else "CPU"


def plan_workers(
    nodes: Sequence[Mapping[str, float]], workers: int | None = None, threads: int | None = None
) -> WorkerPlan:
    """Plan the pool for a cluster whose alive nodes offer ``nodes`` (each a resource
    dictionary with ``CPU`` and, where present, ``GPU``).

    ``workers``: how many actors (default: every GPU, or as many CPU groups as fit);
    ``threads``: CPU cores per CPU actor (default: the cores split evenly among
    ``workers``, or :data:`DEFAULT_CPU_GROUP`).

    Raises:
        OptionError: ``workers`` or ``threads`` below 1, or more workers than the cluster
            can hold at once (an actor that never starts would stall the job).
    """
    if workers is not None and workers < 1:
        raise OptionError(f"--workers must be >= 1, got {workers}")
    if threads is not None and threads < 1:
        raise OptionError(f"threads per worker must be >= 1, got {threads}")
    cpus = [int(node.get("CPU", 0)) for node in nodes]
    gpus = [int(node.get("GPU", 0)) for node in nodes]
    if sum(gpus) > 0:
        return _gpu_plan(cpus, gpus, workers)
    return _cpu_plan(cpus, workers, threads)


def _gpu_plan(cpus: list[int], gpus: list[int], workers: int | None) -> WorkerPlan:
    total = sum(gpus)
    if workers is not None and workers > total:
        raise OptionError(f"--workers {workers}: the cluster has {total} GPU(s)")
    # Each GPU worker reserves the smallest per-GPU CPU share of any GPU node, so every
    # GPU can get a worker (and at least one core).
    share = min(max(1, c // g) for c, g in zip(cpus, gpus) if g > 0)
    return WorkerPlan(workers or total, share, 1, share)


def _cpu_plan(cpus: list[int], workers: int | None, threads: int | None) -> WorkerPlan:
    total = sum(cpus)
    if total < 1:
        raise OptionError("the Ray cluster has no CPU and no GPU to run workers on")
    if threads is None:
        threads = max(1, total // workers) if workers else min(DEFAULT_CPU_GROUP, max(cpus))
    fit = sum(c // threads for c in cpus)
    if workers is None:
        workers = max(1, fit)
    if workers > fit:
        raise OptionError(
            f"--workers {workers} with {threads} core(s) each does not fit the cluster's "
            f"{total} CPU core(s)"
        )
    return WorkerPlan(workers, threads, 0, threads)
