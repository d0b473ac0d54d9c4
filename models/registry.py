"""The static model registry: every model ``vidsr`` can load by name.

Each row is a :class:`~vidsr.models.contract.ModelEntry`. Learned families add their own
rows here; weights live in ``models/weights/`` as ``.safetensors`` with a JSON card beside.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from vidsr.models.baselines import PolyphaseUpsampler
from vidsr.models.contract import ColourSpace, Family, ModelEntry
from vidsr.models.ecb import ECBNet, ECBNetPlain
from vidsr.models.fast import FastSR
from vidsr.models.perceptual import PerceptualSR
from vidsr.models.quality import QualitySR
from vidsr.models.srcnn import SRCNN, SRCNNTutorial
from vidsr.models.temporal import RecurrentSR

# The scales every model here is built and trained for. ``models`` imports nothing else of
# vidsr, so this is the registry's own list; the run-wide vocabulary of accepted scales is
# ``vidsr.config.SCALES``, and tests/test_imports.py checks that the two agree.
SCALES = (2, 3, 4)


def _weights(name: str) -> dict[int, str]:
    return {s: f"{name}_x{s}.safetensors" for s in SCALES}


def _baseline(kernel: str, description: str, radius: int) -> ModelEntry:
    """An interpolation kernel on luma (no learned weights)."""
    return ModelEntry(
        name=kernel,
        family="baseline",
        scales=SCALES,
        colour="luma",
        build=lambda scale: PolyphaseUpsampler(scale, kernel),
        description=description,
        receptive_radius=radius,
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
        lambda scale: SRCNN(scale),
        "SRCNN 9-5-5 (Dong et al. 2014) on bicubic-upsampled Y, residual over bicubic",
        6,
    ),
    _learned(
        "srcnn-tutorial",
        "srcnn",
        "rgb",
        lambda scale: SRCNNTutorial(scale),
        "the tutorial's SRCNN variant: RGB, 7 conv layers of 32, LeakyReLU, tanh",
        6,
    ),
    _learned(
        "fast",
        "fast",
        "luma",
        lambda scale: FastSR(scale),
        "real-time LR-space FSRCNN-style net, pixel shuffle, bicubic skip (Y)",
        7,
        compressed_weights=_weights("fast-compressed"),
    ),
    _learned(
        "fast-hq",
        "fast",
        "luma",
        lambda scale: FastSR(scale, d=48, s=16, m=6),
        "the fast net widened (d=48, 6 mapping layers): FSRCNN's PSNR, ~1.7x the cost",
        9,
    ),
    _learned(
        "fast-ecb",
        "fast",
        "luma",
        lambda scale: ECBNetPlain(scale, c=24, m=4),
        "re-parameterised fast net (ECBSR edge blocks, 24 ch, 4+2 layers) folded to 3x3 convs",
        7,
        train_build=lambda scale: ECBNet(scale, c=24, m=4),
    ),
    _learned(
        "quality",
        "quality",
        "luma",
        lambda scale: QualitySR(scale),
        "slim EDSR (8 blocks x 48) in LR space, pixel shuffle, bicubic skip (Y)",
        20,
        compressed_weights=_weights("quality-compressed"),
    ),
    _learned(
        "temporal",
        "temporal",
        "luma",
        lambda scale: RecurrentSR(scale),
        "recurrent slim EDSR (quality net + previous frame, output and hidden state), "
        "flow-free; state reset at cuts (Y)",
        24,
    ),
    _learned(
        "perceptual",
        "perceptual",
        "rgb",
        lambda scale: PerceptualSR(scale),
        "Johnson et al. 2016 net, ICNR shuffle, bicubic skip (RGB), VGG feature loss",
        15,
    ),
)
REGISTRY: dict[str, ModelEntry] = {entry.name: entry for entry in _ENTRIES}
