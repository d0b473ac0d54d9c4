"""What a registry row says about a model, without building it (and without torch).

``vidsr.models.contract`` re-exports these names beside :class:`SRModel`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from torch import nn

    from vidsr.models.interp import Interpolator

ColourSpace = Literal["luma", "rgb"]
Family = Literal[
    "baseline", "srcnn", "perceptual", "fast", "quality", "temporal", "external", "test"
]


@dataclass(frozen=True)
class ModelEntry:
    """A registry row: how to build one named model family member at each scale.

    ``build(scale)`` returns a freshly initialised ``nn.Module`` (no weights loaded).
    ``train_build(scale)``, where set, builds the training-time form of a re-parameterisable
    net instead: a module whose ``fold()`` returns what ``build`` makes, with the same
    function (the export folds it, so shipped weights load into ``build(scale)``).
    ``weights`` maps a scale to a file name under ``models/weights/`` (``None``: the model
    has no learned weights, e.g. the bicubic baseline); ``compressed_weights`` does the same
    for weights of the same network trained on codec-degraded video (``--content``).
    ``integer_build(scale)``, where set, builds the model's torch-free 8-bit form (an
    interpolation baseline's :class:`~vidsr.models.interp.Interpolator`), which a CPU run
    with nothing that needs float planes uses without importing torch.
    """

    name: str
    family: Family
    scales: tuple[int, ...]
    colour: ColourSpace
    build: Callable[[int], nn.Module]
    description: str
    multiple_of: int = 1
    supports_half: bool = True
    receptive_radius: int = 16
    weights: dict[int, str] = field(default_factory=dict)
    compressed_weights: dict[int, str] = field(default_factory=dict)
    train_build: Callable[[int], nn.Module] | None = None
    integer_build: Callable[[int], Interpolator] | None = None

    def build_trainable(self, scale: int) -> nn.Module:
        """The module the trainer optimises: ``train_build`` where set, else ``build``."""
        return (self.train_build or self.build)(scale)
