"""The one device and precision policy: which device, and which autocast dtype (for
inference and for training)."""

from __future__ import annotations

import contextlib
import os
import re
import sys
from typing import TYPE_CHECKING

from vidsr.config import PRECISIONS, Precision
from vidsr.errors import DeviceError, OptionError

if TYPE_CHECKING:
    import torch

# Device nodes without which no GPU is visible to torch on Linux: NVIDIA's control device
# and ROCm's kernel fusion driver (torch's ROCm builds answer through ``torch.cuda``).
GPU_DEVICE_NODES = ("/dev/nvidiactl", "/dev/kfd")


def gpu_possible() -> bool:
    """Whether torch might find a GPU here, answered without importing torch: ``False``
    on Linux when none of :data:`GPU_DEVICE_NODES` exists (``torch.cuda.is_available()``
    is then ``False`` too); ``True`` elsewhere (only torch can tell)."""
    if not sys.platform.startswith("linux"):
        return True
    return any(os.path.exists(node) for node in GPU_DEVICE_NODES)


def runs_on_cpu(spec: str = "auto") -> bool:
    """Whether ``spec`` resolves to the CPU (:func:`resolve_device`), without importing
    torch where the answer is certain: ``cpu``, or ``auto`` on a machine with no GPU
    (:func:`gpu_possible`); any other spec asks torch.

    Raises:
        DeviceError: as :func:`resolve_device`.
    """
    normal = spec.strip().lower()
    if normal == "cpu" or (normal == "auto" and not gpu_possible()):
        return True
    return resolve_device(spec).type == "cpu"


def resolve_device(spec: str = "auto") -> torch.device:
    """Turn ``auto``, ``cpu``, ``cuda`` or ``cuda:N`` into a usable ``torch.device``.

    Raises:
        DeviceError: CUDA asked for but absent, or an index beyond the GPUs present.
    """
    import torch

    spec = spec.strip().lower()
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", spec)
    if not match:
        raise DeviceError(f"unknown device {spec!r}; use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise DeviceError(f"device {spec!r} asked for, but CUDA is not available on this machine")
    index = int(match.group(1) or 0)
    if index >= torch.cuda.device_count():
        raise DeviceError(
            f"device {spec!r} asked for, but only {torch.cuda.device_count()} GPU(s) found"
        )
    return torch.device("cuda", index)


def device_label(spec: str = "auto") -> str:
    """The device ``spec`` resolves to, as text (``cpu``, ``cuda:0``), without importing
    torch where :func:`runs_on_cpu` can tell.

    Raises:
        DeviceError: as :func:`resolve_device`.
    """
    return "cpu" if runs_on_cpu(spec) else str(resolve_device(spec))


def autocast_dtype(
    device: torch.device, supports_half: bool, precision: Precision = "auto"
) -> torch.dtype | None:
    """The dtype a model's forward pass autocasts to on ``device``; ``None``: plain fp32.

    ``precision`` (one of :data:`vidsr.config.PRECISIONS`):

    - ``auto`` (inference always, and training by default): ``torch.float16`` on CUDA when
      the model supports half precision (``supports_half``), else ``None``. There is no
      bf16 fallback: a model that cannot run in fp16 runs in fp32.
    - ``bf16``: ``torch.bfloat16`` on any device (training's ``--precision bf16``).
    - ``fp32``: ``None``.

    Raises:
        OptionError: an unknown ``precision``.
    """
    import torch

    if precision not in PRECISIONS:
        raise OptionError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp32" or device.type != "cuda" or not supports_half:
        return None
    return torch.float16


def inference_context(
    device: torch.device, dtype: torch.dtype | None
) -> contextlib.AbstractContextManager:
    """``torch.autocast`` for the device when a half dtype is chosen, else a no-op (for the
    forward passes of inference and of training alike; ``dtype`` from :func:`autocast_dtype`)."""
    if dtype is None:
        return contextlib.nullcontext()
    import torch

    return torch.autocast(device_type=device.type, dtype=dtype)


def cpu_workers_for(spec: str, threads: int | None) -> int | None:
    """The command line's CPU policy: model worker threads for a run on ``spec``.

    On the CPU, ``threads`` (default: one per core) model workers each run whole batches
    with one torch thread (the caller sets torch to one thread). Measured on 2 cores with
    the fast model at 640x360 -> 1280x720 while decode and x264 share the cores: two
    one-thread workers kept running where one two-thread model call stalled whenever
    a codec thread took a core. ``None`` on CUDA (the device does the work).

    Raises:
        OptionError: ``threads`` below 1.
        DeviceError: as :func:`resolve_device`.
    """
    if threads is not None and threads < 1:
        raise OptionError(f"--threads must be >= 1, got {threads}")
    if not runs_on_cpu(spec):
        return None
    return threads or os.cpu_count() or 1


def set_cpu_threads(threads: int | None) -> None:
    """Set the CPU threads torch uses for the model (``None``: leave torch's default, one
    per core). This is process-wide, so only the command line calls it. On a machine busy
    with other work, 1 thread often gives steadier latency than 2 that wait on each other.
    When torch is not imported yet it is not imported for this (a run that never needs
    it stays torch-free): ``OMP_NUM_THREADS`` is set, which torch reads when imported.

    Raises:
        OptionError: ``threads`` below 1.
    """
    if threads is None:
        return
    if threads < 1:
        raise OptionError(f"--threads must be >= 1, got {threads}")
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)
    else:  # torch takes its thread count from here when it is imported (if ever)
        os.environ["OMP_NUM_THREADS"] = str(threads)
