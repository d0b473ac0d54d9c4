"""The static model registry: every model ``vidsr`` can load by name.

Each row is a :class:`~vidsr.models.contract.ModelEntry`. Learned families add their own
rows here; weights live in ``models/weights/`` as ``.safetensors`` with a JSON card beside.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vidsr.models.entry import ColourSpace, Family, ModelEntry
from vidsr.models.interp import Interpolator

if TYPE_CHECKING:
    from torch import nn

# The scales every model here is built and trained for. ``models`` imports nothing else of
# vidsr, so this is the registry's own list; the run-wide vocabulary of accepted scales is
# ``vidsr.config.SCALES``, and tests/test_imports.py checks that the two agree.
SCALES = (2, 3, 4)


def _weights(name: str) -> dict[int, str]:
    return {s: f"{name}_x{s}.safetensors" for s in SCALES}


def _net(module: str, cls: str, **kwargs: Any) -> Callable[[int], nn.Module]:
    """A builder of ``vidsr.models.<module>.<cls>(scale, **kwargs)`` that imports the
    module (and torch) only when a net is built: listing the registry, or running an
    interpolation baseline's 8-bit path, stays torch-free."""

    def build(scale: int) -> nn.Module:
        return getattr(importlib.import_module(f"vidsr.models.{module}"), cls)(scale, **kwargs)

    return build


def _baseline(kernel: str, description: str, radius: int) -> ModelEntry:
    """An interpolation kernel on luma (no learned weights)."""
    return ModelEntry(
        name=kernel,
        family="baseline",
        scales=SCALES,
        colour="luma",
        build=_net("baselines", "PolyphaseUpsampler", kernel=kernel),
        description=description,
        receptive_radius=radius,
        integer_build=lambda scale: Interpolator(scale, kernel),
    )


def _learned(
    name: str,
    family: Family,
    colour: ColourSpace,
    build: Callable[[int], nn.Module],
    description: str,
    radius: int,
    **extra: Any,
) -> ModelEntry:
    """A learned model at every scale, its weights shipped as ``<name>_x<scale>``."""
    return ModelEntry(
        name=name,
        family=family,
        scales=SCALES,
        colour=colour,
        build=build,
        description=description,
        receptive_radius=radius,
        weights=_weights(name),
        **extra,
    )


_ENTRIES = (
    _baseline("bicubic", "bicubic interpolation (MATLAB kernel, a=-0.5); no learned weights", 3),
    _baseline("lanczos", "Lanczos-3 interpolation on luma (chroma bicubic); no learned weights", 4),
    _learned(
        "srcnn",
        "srcnn",
        "luma",
        _net("srcnn", "SRCNN"),
        "SRCNN 9-5-5 (Dong et al. 2014) on bicubic-upsampled Y, residual over bicubic",
        6,
    ),
    _learned(
        "srcnn-tutorial",
        "srcnn",
        "rgb",
        _net("srcnn", "SRCNNTutorial"),
        "the tutorial's SRCNN variant: RGB, 7 conv layers of 32, LeakyReLU, tanh",
        6,
    ),
    _learned(
        "fast",
        "fast",
        "luma",
        _net("fast", "FastSR"),
        "real-time LR-space FSRCNN-style net, pixel shuffle, bicubic skip (Y)",
        7,
        compressed_weights=_weights("fast-compressed"),
    ),
    _learned(
        "fast-hq",
        "fast",
        "luma",
        _net("fast", "FastSR", d=48, s=16, m=6),
        "the fast net widened (d=48, 6 mapping layers): FSRCNN's PSNR, ~1.7x the cost",
        9,
    ),
    _learned(
        "fast-ecb",
        "fast",
        "luma",
        _net("ecb", "ECBNetPlain", c=24, m=4),
        "re-parameterised fast net (ECBSR edge blocks, 24 ch, 4+2 layers) folded to 3x3 convs",
        7,
        train_build=_net("ecb", "ECBNet", c=24, m=4),
        compressed_weights=_weights("fast-ecb-compressed"),
    ),
    _learned(
        "quality",
        "quality",
        "luma",
        _net("quality", "QualitySR"),
        "slim EDSR (8 blocks x 48) in LR space, pixel shuffle, bicubic skip (Y)",
        20,
        compressed_weights=_weights("quality-compressed"),
    ),
    _learned(
        "temporal",
        "temporal",
        "luma",
        _net("temporal", "RecurrentSR"),
        "recurrent slim EDSR (quality net + previous frame, output and hidden state), "
        "flow-free; state reset at cuts (Y)",
        24,
        compressed_weights=_weights("temporal-compressed"),
    ),
    _learned(
        "perceptual",
        "perceptual",
        "rgb",
        _net("perceptual", "PerceptualSR"),
        "Johnson et al. 2016 net, ICNR shuffle, bicubic skip (RGB), VGG feature loss",
        15,
    ),
)
REGISTRY: dict[str, ModelEntry] = {entry.name: entry for entry in _ENTRIES}
