"""vidsr: video super-resolution stream processor.

Public API::

    import vidsr
    vidsr.upscale_video("movie.mp4")      # -> movie_x2.mp4, the default model, as `vidsr upscale`
    config = vidsr.RunConfig(scale=2, model="bicubic", encode=vidsr.EncodeConfig(crf=18))
    vidsr.upscale_video("movie.mp4", "movie_x2.mp4", config)
    vidsr.upscale_folder("frames/", "out/", vidsr.RunConfig(scale=2))
    model = vidsr.load_model("bicubic", 2)   # torch module + contract (scale, colour, multiple_of)

The names are the library's own functions and classes, imported on first use (PEP 562):
``import vidsr``, ``vidsr.errors`` and ``vidsr.config`` load no torch, PyAV or OpenCV.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from vidsr.config import EncodeConfig, RunConfig
from vidsr.errors import (
    DeviceError,
    EncodeError,
    InputError,
    ModelError,
    OptionError,
    OutputExistsError,
    VidsrError,
)

if TYPE_CHECKING:
    from vidsr.engine.upscaler import load_model
    from vidsr.models.contract import SRModel
    from vidsr.pipeline.folders import FolderOptions, upscale_folder, video_to_folder
    from vidsr.pipeline.video import RunSummary, upscale_video

__version__ = "0.1.0"

# Public names that need torch, PyAV or OpenCV, and the module each comes from.
_LAZY = {
    "FolderOptions": "vidsr.pipeline.folders",
    "upscale_folder": "vidsr.pipeline.folders",
    "video_to_folder": "vidsr.pipeline.folders",
    "RunSummary": "vidsr.pipeline.video",
    "upscale_video": "vidsr.pipeline.video",
    "SRModel": "vidsr.models.contract",
    "load_model": "vidsr.engine.upscaler",
}

__all__ = [
    "DeviceError",
    "EncodeConfig",
    "EncodeError",
    "FolderOptions",
    "InputError",
    "ModelError",
    "OptionError",
    "OutputExistsError",
    "RunConfig",
    "RunSummary",
    "SRModel",
    "VidsrError",
    "__version__",
    "load_model",
    "upscale_folder",
    "upscale_video",
    "video_to_folder",
]


def __getattr__(name: str) -> object:
    """Import a heavy public name from its module when it is first used."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vidsr' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
