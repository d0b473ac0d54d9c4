"""A batch whose output planes may still be on their way (torch-free, so the 8-bit
interpolation path can hand batches over without importing torch)."""

from __future__ import annotations

from collections.abc import Callable

from vidsr.media.planes import Planes


class PendingBatch:
    """A batch whose output planes may still be on their way to the host."""

    def __init__(
        self, collect: Callable[[], list[Planes]], finished: Callable[[], bool] | None = None
    ) -> None:
        self._collect = collect
        self._finished = finished
        self._planes: list[Planes] | None = None

    @classmethod
    def ready(cls, planes: list[Planes]) -> PendingBatch:
        pending = cls(lambda: planes)
        pending._planes = planes
        return pending

    @property
    def done(self) -> bool:
        """Whether ``result()`` returns without waiting for the device or a worker."""
        return self._planes is not None or (self._finished is not None and self._finished())

    def result(self) -> list[Planes]:
        """The per-frame ``(Y, U, V)`` integer planes, waiting for the device if needed."""
        if self._planes is None:
            self._planes = self._collect()
        return self._planes
