"""``--cluster auto|ADDRESS`` and ``--workers N``, and the executor they choose.

Torch- and Ray-free at import (``vidsr --help`` imports it): the executors are imported
when :func:`executor_from_args` runs.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from vidsr.errors import OptionError

if TYPE_CHECKING:
    from vidsr.pipeline.jobs import Executor


def add_cluster_option(parser: argparse.ArgumentParser) -> None:
    """``--cluster auto|ADDRESS`` (default: none, this process) and ``--workers N``."""
    parser.add_argument(
        "--cluster",
        default=None,
        metavar="auto|ADDRESS",
        help="run on a Ray cluster (pip install \"vidsr[ray]\"): 'auto' joins the cluster "
        "RAY_ADDRESS names or starts a local one bound to 127.0.0.1; ADDRESS (HOST:PORT, "
        "as printed by `ray start --head`) joins that cluster (default: no cluster, one "
        "worker in this process)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="with --cluster: how many workers, each keeping a model loaded (default: one "
        "per GPU of the cluster, or one per group of up to 4 CPU cores)",
    )


def executor_from_args(args: argparse.Namespace) -> Executor:
    """The executor ``--cluster``/``--workers`` ask for: a
    :class:`~vidsr.pipeline.cluster.RayExecutor` (close it when done; it is a context
    manager) or, without ``--cluster``, a :class:`~vidsr.pipeline.jobs.LocalExecutor`.

    Raises:
        OptionError: ``--workers`` without ``--cluster`` or below 1, Ray missing, or the
            cluster cannot be reached.
    """
    cluster = getattr(args, "cluster", None)
    workers = getattr(args, "workers", None)
    if cluster is None:
        if workers is not None:
            raise OptionError("--workers needs --cluster (without it one worker runs here)")
        from vidsr.pipeline.jobs import LocalExecutor

        return LocalExecutor()
    if not cluster.strip():
        raise OptionError("--cluster needs 'auto' or the address of a Ray cluster")
    if workers is not None and workers < 1:
        raise OptionError(f"--workers must be >= 1, got {workers}")
    from vidsr.pipeline.cluster import RayExecutor

    return RayExecutor(cluster.strip(), workers)


@contextlib.contextmanager
def cluster_executor(args: argparse.Namespace) -> Iterator[Executor]:
    """:func:`executor_from_args` as a context: a Ray executor is closed at the end (its
    workers stopped, and a local Ray instance it started shut down), Ctrl-C included."""
    executor = executor_from_args(args)
    try:
        yield executor
    finally:
        close = getattr(executor, "close", None)
        if close is not None:
            close()
