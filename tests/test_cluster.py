"""The Ray executor (vidsr.pipeline.cluster): a pool of actors on a local 2-CPU instance.

One local Ray instance for the module (``num_cpus=2``), started the way ``--cluster auto``
starts one (bound to 127.0.0.1) and shut down at the end. The task functions are top-level
functions of this module: the workers import it (``tests/`` is on their PYTHONPATH).
Deselect with ``-m 'not cluster'``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import av
import pytest

ray = pytest.importorskip("ray")

from conftest import make_video  # noqa: E402

from vidsr.cli.cluster_options import add_cluster_option, executor_from_args  # noqa: E402
from vidsr.errors import InputError, OptionError, WorkerError  # noqa: E402
from vidsr.pipeline.cluster import RayExecutor, WorkerPlan, plan_workers  # noqa: E402
from vidsr.pipeline.cluster.session import INSTALL_HINT, LOCALHOST, start_local  # noqa: E402
from vidsr.pipeline.cluster.worker import KILL_ONCE_ENV  # noqa: E402
from vidsr.pipeline.jobs import LocalExecutor, WorkerContext  # noqa: E402

pytestmark = pytest.mark.cluster
TESTS = Path(__file__).resolve().parent


# --- task functions (top level, so that the workers can import them) ---------------------


def sleep_then_echo(task: tuple[int, float], context: WorkerContext) -> int:
    value, seconds = task
    time.sleep(seconds)
    return value


def fail_if_negative(task: int, context: WorkerContext) -> int:
    if task < 0:
        raise InputError(f"input {task} is corrupt")
    return task * 10


def count_calls(task: int, context: WorkerContext) -> tuple[int, int]:
    """(worker pid, how many tasks this worker's cache has seen)."""
    calls = context.cache.get("calls", 0)
    assert isinstance(calls, int)
    context.cache["calls"] = calls + 1
    time.sleep(0.05)
    return os.getpid(), calls + 1


def crash_on_zero(task: int, context: WorkerContext) -> int:
    """Kills its worker's process (as a crash would) on task 0, each time it runs."""
    if task == 0:
        os._exit(3)
    return task


def report_frames(task: int, context: WorkerContext) -> int:
    for _ in range(task):
        context.progress(1)
        time.sleep(0.01)
    return task


def upscale_clip(task: tuple[str, str], context: WorkerContext) -> int:
    """A real job: one clip upscaled x2 by the bicubic baseline on the CPU."""
    from vidsr.config import RunConfig
    from vidsr.pipeline.video import upscale_video

    config = RunConfig(model="bicubic", scale=2, device="cpu", colour="off")
    return upscale_video(task[0], task[1], config, progress=context.progress).frames


# --- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_ray() -> object:
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([str(TESTS), *([saved] if saved else [])])
    try:
        start_local(num_cpus=2, log_to_driver=False)
    finally:
        if saved is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = saved
    yield ray
    ray.shutdown()


@pytest.fixture
def executor(local_ray: object) -> RayExecutor:
    with RayExecutor("auto", workers=2) as ex:
        yield ex


def outcomes_by_index(executor: RayExecutor, fn, tasks, progress=None) -> dict:  # noqa: ANN001
    return {o.index: o for o in executor.map_unordered(fn, tasks, progress)}


# --- planning (pure) ---------------------------------------------------------------------


def test_plan_one_worker_per_gpu_else_per_core_group() -> None:
    gpu_nodes = [{"CPU": 16, "GPU": 2}, {"CPU": 8, "GPU": 1}]
    assert plan_workers(gpu_nodes) == WorkerPlan(3, 8, 1, 8)
    assert plan_workers([{"CPU": 2}], workers=2) == WorkerPlan(2, 1, 0, 1)
    assert plan_workers([{"CPU": 16}]) == WorkerPlan(4, 4, 0, 4)
    assert plan_workers([{"CPU": 2}]) == WorkerPlan(1, 2, 0, 2)
    with pytest.raises(OptionError, match="3 GPU"):
        plan_workers(gpu_nodes, workers=4)
    with pytest.raises(OptionError, match="does not fit"):
        plan_workers([{"CPU": 2}], workers=3)


# --- the executor ------------------------------------------------------------------------


def test_outcomes_come_as_tasks_finish(executor: RayExecutor) -> None:
    assert executor.workers == 2
    list(executor.map_unordered(sleep_then_echo, [(0, 0.0), (1, 0.0)]))  # both workers up
    tasks = [(0, 2.0), (1, 0.0), (2, 0.0), (3, 0.0)]
    order = [o.index for o in executor.map_unordered(sleep_then_echo, tasks)]
    assert sorted(order) == [0, 1, 2, 3]
    assert order[-1] == 0  # the slow one, submitted first, finished last
    values = outcomes_by_index(executor, sleep_then_echo, tasks)
    assert [values[i].value for i in range(4)] == [0, 1, 2, 3]


def test_errors_are_outcomes_and_the_others_finish(executor: RayExecutor) -> None:
    outcomes = outcomes_by_index(executor, fail_if_negative, [1, -2, 3])
    assert outcomes[0].value == 10 and outcomes[2].value == 30
    error = outcomes[1].error
    assert isinstance(error, InputError) and str(error) == "input -2 is corrupt"
    assert outcomes[1].value is None and outcomes[0].error is None


def test_each_worker_keeps_its_cache_across_tasks(executor: RayExecutor) -> None:
    values = [o.value for o in executor.map_unordered(count_calls, list(range(8)))]
    calls_by_pid: dict[int, list[int]] = {}
    for pid, calls in values:
        calls_by_pid.setdefault(pid, []).append(calls)
    assert len(calls_by_pid) <= 2
    for calls in calls_by_pid.values():
        assert sorted(calls) == list(range(1, len(calls) + 1))
    assert sum(len(c) for c in calls_by_pid.values()) == 8
    # The cache outlives one map: the next tasks count on.
    more = [o.value for o in executor.map_unordered(count_calls, [0, 1])]
    assert all(calls > 1 for _, calls in more)


def test_progress_reaches_the_driver_exactly(executor: RayExecutor) -> None:
    seen: list[int] = []
    tasks = [30, 5, 40, 1]
    outcomes = outcomes_by_index(executor, report_frames, tasks, seen.append)
    assert [(outcomes[i].value, outcomes[i].error) for i in range(4)] == [(t, None) for t in tasks]
    assert sum(seen) == sum(tasks)
    assert len(seen) > len(tasks)  # reports came while tasks ran, not only at their end


def test_a_killed_worker_s_task_is_retried(
    local_ray: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = tmp_path / "killed"
    monkeypatch.setenv(KILL_ONCE_ENV, str(marker))
    seen: list[int] = []
    with RayExecutor("auto", workers=2) as ex:
        outcomes = outcomes_by_index(ex, report_frames, [20, 20, 20], seen.append)
    assert marker.exists()  # one worker did die mid-task
    assert [(outcomes[i].value, outcomes[i].error) for i in range(3)] == [(20, None)] * 3
    assert sum(seen) == 60  # the lost attempt's frames are not counted twice


def test_a_worker_lost_past_its_retries_is_a_failed_outcome(local_ray: object) -> None:
    with RayExecutor("auto", workers=1, retries=1) as ex:
        outcomes = outcomes_by_index(ex, crash_on_zero, [0, 2, 3])
    lost = outcomes[0].error
    assert isinstance(lost, WorkerError) and outcomes[0].value is None
    assert "died 2 time(s)" in str(lost) and "\n" not in str(lost)
    # The worker was restarted each time: the other tasks ran.
    assert [(outcomes[i].value, outcomes[i].error) for i in (1, 2)] == [(2, None), (3, None)]


def test_a_real_job_runs_on_the_workers(executor: RayExecutor, tmp_path: Path) -> None:
    clips = [make_video(tmp_path / f"in{i}.mp4", n=6 + i, size=(32, 24)) for i in range(3)]
    tasks = [(str(c), str(tmp_path / f"out{i}.mp4")) for i, c in enumerate(clips)]
    seen: list[int] = []
    outcomes = outcomes_by_index(executor, upscale_clip, tasks, seen.append)
    for i in range(3):
        assert outcomes[i].error is None and outcomes[i].value == 6 + i
        with av.open(tasks[i][1]) as out:
            stream = out.streams.video[0]
            assert (stream.width, stream.height) == (64, 48)
            assert sum(1 for _ in out.decode(video=0)) == 6 + i
    assert sum(seen) == 6 + 7 + 8


def test_ctrl_c_stops_the_workers(executor: RayExecutor) -> None:
    stream = executor.map_unordered(sleep_then_echo, [(0, 0.0), (1, 30.0), (2, 30.0)])
    first = next(stream)
    assert first.index == 0
    started = time.monotonic()
    stream.close()  # what an interrupt in the caller's loop does to the generator
    assert time.monotonic() - started < 10
    # The pool is started again for the next map, and works.
    assert [o.value for o in executor.map_unordered(fail_if_negative, [4])] == [40]


def test_without_ray_cluster_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    with pytest.raises(OptionError) as raised:
        RayExecutor("auto")
    assert str(raised.value) == INSTALL_HINT == '--cluster needs Ray: pip install "vidsr[ray]"'


def test_cluster_options_choose_the_executor(local_ray: object) -> None:
    parser = argparse.ArgumentParser()
    add_cluster_option(parser)
    assert isinstance(executor_from_args(parser.parse_args([])), LocalExecutor)
    with pytest.raises(OptionError, match="--workers needs --cluster"):
        executor_from_args(parser.parse_args(["--workers", "2"]))
    with executor_from_args(parser.parse_args(["--cluster", "auto", "--workers", "1"])) as ex:
        assert isinstance(ex, RayExecutor) and ex.workers == 1
    with pytest.raises(OptionError, match="does not fit"):
        executor_from_args(parser.parse_args(["--cluster", "auto", "--workers", "5"]))


def test_the_local_instance_listens_on_localhost_only(local_ray: object) -> None:
    assert {n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]} == {LOCALHOST}
    listening = _listening_addresses(_descendants(os.getpid()))
    assert listening  # the GCS, the raylet and the workers listen somewhere
    assert listening <= {"127.0.0.1", "::ffff:127.0.0.1", "::1"}, listening


# --- helpers: the sockets the processes this test started listen on -------------------


def _descendants(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = {root}, [root]
    while frontier:
        parent = frontier.pop()
        children = [pid for pid, ppid in parents.items() if ppid == parent and pid not in found]
        found.update(children)
        frontier.extend(children)
    return found


def _listening_addresses(pids: set[int]) -> set[str]:
    """The local addresses of the TCP sockets ``pids`` listen on (from /proc/net)."""
    inodes: set[str] = set()
    for pid in pids:
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        inodes.update(link[8:-1] for link in links if link.startswith("socket:["))
    addresses = set()
    for table, decode in (("tcp", _ipv4), ("tcp6", _ipv6)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                addresses.add(decode(fields[1].split(":")[0]))
    return addresses


def _ipv4(hex_address: str) -> str:
    return ".".join(str(b) for b in reversed(bytes.fromhex(hex_address)))


def _ipv6(hex_address: str) -> str:
    import ipaddress

    raw = b"".join(bytes.fromhex(hex_address[i : i + 8])[::-1] for i in range(0, 32, 8))
    address = ipaddress.IPv6Address(raw)
    mapped = address.ipv4_mapped
    return f"::ffff:{mapped}" if mapped else str(address)
