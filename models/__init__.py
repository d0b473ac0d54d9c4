"""Super-resolution networks (``nn.Module`` definitions only) and the static model registry.

Installed as ``vidsr.models``. Nothing here does IO at import time or chooses a device.
"""

from vidsr.models.contract import ColourSpace, Family, ModelEntry, SRModel
from vidsr.models.registry import REGISTRY

__all__ = ["REGISTRY", "ColourSpace", "Family", "ModelEntry", "SRModel"]
