"""The static model registry: every model ``vidsr`` can load by name.

Each row is a :class:`~vidsr.models.contract.ModelEntry`. Learned families add their own
rows here; weights live in ``models/weights/`` as ``.safetensors`` with a JSON card beside.
"""

from __future__ import annotations

from vidsr.models.baselines import PolyphaseUpsampler
from vidsr.models.contract import ModelEntry
from vidsr.models.ecb import ECBNet, ECBNetPlain
from vidsr.models.fast import FastSR
from vidsr.models.perceptual import PerceptualSR
from vidsr.models.quality import QualitySR
from vidsr.models.srcnn import SRCNN, SRCNNTutorial

# The scales every model here is built and trained for. ``models`` imports nothing else of
# vidsr, so this is the registry's own list; the run-wide vocabulary of accepted scales is
# ``vidsr.config.SCALES``, and tests/test_imports.py checks that the two agree.
SCALES = (2, 3, 4)


def _weights(name: str) -> dict[int, str]:
    return {s: f"{name}_x{s}.safetensors" for s in SCALES}


REGISTRY: dict[str, ModelEntry] = {
    "bicubic": ModelEntry(
        name="bicubic",
        family="baseline",
        scales=SCALES,
        colour="luma",
        build=lambda scale: PolyphaseUpsampler(scale, "bicubic"),
        description="bicubic interpolation (MATLAB kernel, a=-0.5); no learned weights",
        receptive_radius=3,
    ),
    "lanczos": ModelEntry(
        name="lanczos",
        family="baseline",
        scales=SCALES,
        colour="luma",
        build=lambda scale: PolyphaseUpsampler(scale, "lanczos"),
        description="Lanczos-3 interpolation on luma (chroma bicubic); no learned weights",
        receptive_radius=4,
    ),
    "srcnn": ModelEntry(
        name="srcnn",
        family="srcnn",
        scales=SCALES,
        colour="luma",
        build=lambda scale: SRCNN(scale),
        description="SRCNN 9-5-5 (Dong et al. 2014) on bicubic-upsampled Y, residual over bicubic",
        receptive_radius=6,
        weights=_weights("srcnn"),
    ),
    "srcnn-tutorial": ModelEntry(
        name="srcnn-tutorial",
        family="srcnn",
        scales=SCALES,
        colour="rgb",
        build=lambda scale: SRCNNTutorial(scale),
        description="the tutorial's SRCNN variant: RGB, 7 conv layers of 32, LeakyReLU, tanh",
        receptive_radius=6,
        weights=_weights("srcnn-tutorial"),
    ),
    "fast": ModelEntry(
        name="fast",
        family="fast",
        scales=SCALES,
        colour="luma",
        build=lambda scale: FastSR(scale),
        description="real-time LR-space FSRCNN-style net, pixel shuffle, bicubic skip (Y)",
        receptive_radius=7,
        weights=_weights("fast"),
        compressed_weights=_weights("fast-compressed"),
    ),
    "fast-hq": ModelEntry(
        name="fast-hq",
        family="fast",
        scales=SCALES,
        colour="luma",
        build=lambda scale: FastSR(scale, d=48, s=16, m=6),
        description="the fast net widened (d=48, 6 mapping layers): FSRCNN's PSNR, ~1.7x the cost",
        receptive_radius=9,
        weights=_weights("fast-hq"),
    ),
    "fast-ecb": ModelEntry(
        name="fast-ecb",
        family="fast",
        scales=SCALES,
        colour="luma",
        build=lambda scale: ECBNetPlain(scale, c=24, m=4),
        train_build=lambda scale: ECBNet(scale, c=24, m=4),
        description="re-parameterised fast net (ECBSR edge blocks, 24 ch, 4+2 layers), "
        "folded to plain 3x3 convs",
        receptive_radius=7,
        weights=_weights("fast-ecb"),
    ),
    "quality": ModelEntry(
        name="quality",
        family="quality",
        scales=SCALES,
        colour="luma",
        build=lambda scale: QualitySR(scale),
        description="slim EDSR (8 blocks x 48) in LR space, pixel shuffle, bicubic skip (Y)",
        receptive_radius=20,
        weights=_weights("quality"),
        compressed_weights=_weights("quality-compressed"),
    ),
    "perceptual": ModelEntry(
        name="perceptual",
        family="perceptual",
        scales=SCALES,
        colour="rgb",
        build=lambda scale: PerceptualSR(scale),
        description="Johnson et al. 2016 net, ICNR shuffle, bicubic skip (RGB), VGG feature loss",
        receptive_radius=15,
        weights=_weights("perceptual"),
    ),
}
