"""Super-resolution networks (``nn.Module`` definitions only) and the static model registry.

Installed as ``vidsr.models``. Nothing here does IO at import time or chooses a device.
Importing the package or its registry loads no torch; building a net does.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from vidsr.models.entry import ColourSpace, Family, ModelEntry
from vidsr.models.registry import REGISTRY

if TYPE_CHECKING:
    from vidsr.models.contract import SRModel

__all__ = ["REGISTRY", "ColourSpace", "Family", "ModelEntry", "SRModel"]


def __getattr__(name: str) -> object:
    """``SRModel`` (an ``nn.Module``) is imported on first use: the registry and the
    interpolation baselines' 8-bit path load no torch (PEP 562)."""
    if name == "SRModel":
        return importlib.import_module("vidsr.models.contract").SRModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
