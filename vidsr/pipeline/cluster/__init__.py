"""Run task functions on a Ray cluster: a pool of actors that keep their model loaded.

:class:`RayExecutor` implements :class:`vidsr.pipeline.jobs.Executor` on Ray Core actors,
one per GPU (``num_gpus=1``) or per group of CPU cores. Ray is an optional dependency
(``pip install "vidsr[ray]"``): it is imported only inside this package and only once an
executor is made, so importing this package costs nothing and works without Ray.
"""

from __future__ import annotations

from vidsr.pipeline.cluster.executor import RayExecutor
from vidsr.pipeline.cluster.resources import WorkerPlan, plan_workers

__all__ = ["RayExecutor", "WorkerPlan", "plan_workers"]
