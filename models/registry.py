"""The static model registry: every model ``vidsr`` can load by name.

Each row is a :class:`~vidsr.models.contract.ModelEntry`. Learned families add their own
rows here; weights live in ``models/weights/`` as ``.safetensors`` with a JSON card beside.
"""

from __future__ import annotations

from vidsr.models.baselines import PolyphaseUpsampler
from vidsr.models.contract import ModelEntry

REGISTRY: dict[str, ModelEntry] = {
    "bicubic": ModelEntry(
        name="bicubic",
        family="baseline",
        scales=(2, 3, 4),
        colour="luma",
        build=lambda scale: PolyphaseUpsampler(scale, "bicubic"),
        description="bicubic interpolation (MATLAB kernel, a=-0.5); no learned weights",
        receptive_radius=3,
    ),
    "lanczos": ModelEntry(
        name="lanczos",
        family="baseline",
        scales=(2, 3, 4),
        colour="luma",
        build=lambda scale: PolyphaseUpsampler(scale, "lanczos"),
        description="Lanczos-3 interpolation on luma (chroma bicubic); no learned weights",
        receptive_radius=4,
    ),
}
