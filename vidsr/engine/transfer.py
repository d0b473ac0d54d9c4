"""Host <-> device transfers for the compute stage: reused pinned buffers, a side stream
for uploads, and batches whose results are collected later.

On CUDA the compute stage keeps one batch in flight: while the GPU runs batch k, the
main thread stacks batch k+1 straight into a pinned buffer and queues its upload on a
separate stream; batch k's download goes into pinned memory without a host sync, and
is only waited for when its frames are handed to the encoder. Buffers come from small
rings keyed by shape and dtype, so a run allocates pinned memory a few times in total,
not once per frame. On the CPU none of this applies and batches complete at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from vidsr.engine.pending import PendingBatch
from vidsr.media.planes import Planes

__all__ = ["Downloader", "PendingBatch", "PinnedRing", "Uploader"]


@dataclass
class _Slot:
    buffer: torch.Tensor
    done: torch.cuda.Event | None = None  # recorded after the last copy that used the buffer


@dataclass
class PinnedRing:
    """Reusable pinned host buffers, ``depth`` per (shape, dtype).

    A buffer is handed out again only after the event recorded for its last copy has
    completed, so an in-flight copy is never overwritten.
    """

    depth: int = 2
    _rings: dict[tuple, list[_Slot]] = field(default_factory=dict)
    _next: dict[tuple, int] = field(default_factory=dict)

    def take(self, shape: tuple[int, ...], dtype: torch.dtype) -> _Slot:
        key = (tuple(shape), dtype)
        ring = self._rings.setdefault(key, [])
        if len(ring) < self.depth:
            ring.append(_Slot(torch.empty(shape, dtype=dtype, pin_memory=True)))
            return ring[-1]
        index = self._next.get(key, 0)
        self._next[key] = (index + 1) % self.depth
        slot = ring[index]
        if slot.done is not None:
            slot.done.synchronize()
        return slot

    @property
    def allocations(self) -> int:
        """Pinned buffers allocated so far (for tests and benchmarks)."""
        return sum(len(r) for r in self._rings.values())


class Uploader:
    """Copies host arrays to the device: through pinned rings and a side stream on CUDA."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self.ring = PinnedRing() if self.cuda else None
        self.stream = torch.cuda.Stream(device) if self.cuda else None

    def upload(self, arrays: list[np.ndarray]) -> torch.Tensor:
        """Stack same-shaped 2-D arrays (uint8, or uint16 as int16 bits) to ``(N, h, w)`` on
        the device. On CUDA the copy runs on the side stream; the compute stream waits for
        it before using the result."""
        if arrays[0].dtype == np.uint16:
            arrays = [a.view(np.int16) for a in arrays]
        if not self.cuda:
            return torch.from_numpy(np.stack(arrays))
        assert self.ring is not None and self.stream is not None
        dtype = torch.from_numpy(arrays[0][:1, :1]).dtype
        slot = self.ring.take((len(arrays), *arrays[0].shape), dtype)
        np.stack(arrays, out=slot.buffer.numpy())  # decode output -> pinned, one host copy
        with torch.cuda.stream(self.stream):
            on_device = slot.buffer.to(self.device, non_blocking=True)
            slot.done = torch.cuda.Event()
            slot.done.record(self.stream)
        compute = torch.cuda.current_stream(self.device)
        compute.wait_event(slot.done)
        on_device.record_stream(compute)  # the allocator must not reuse it before compute ends
        return on_device


class Downloader:
    """Copies device code planes back into pinned host rings without a host sync."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.ring = PinnedRing(depth=3)

    def start(self, y_codes: torch.Tensor, uv_codes: torch.Tensor, wide: bool) -> PendingBatch:
        """Queue the copies of ``(N, 1, H, W)`` and ``(N, 2, Hc, Wc)`` integer codes; the
        returned batch's ``result()`` waits for them and copies the planes out of the ring
        (the encoder keeps frames longer than a ring slot lives)."""
        slots = []
        for codes in (y_codes, uv_codes):
            slot = self.ring.take(tuple(codes.shape), codes.dtype)
            slot.buffer.copy_(codes, non_blocking=True)
            slot.done = torch.cuda.Event()
            slot.done.record(torch.cuda.current_stream(self.device))
            slots.append(slot)

        def collect() -> list[Planes]:
            for slot in slots:
                assert slot.done is not None
                slot.done.synchronize()
            y, uv = (s.buffer.numpy() for s in slots)
            if wide:
                y, uv = y.astype(np.uint16), uv.astype(np.uint16)
            else:
                y, uv = y.copy(), uv.copy()
            return [(y[i, 0], uv[i, 0], uv[i, 1]) for i in range(y.shape[0])]

        return PendingBatch(collect)
