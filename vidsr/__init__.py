"""vidsr: video super-resolution stream processor.

Public API::

    import vidsr
    vidsr.upscale_video("movie.mp4", "movie_x2.mp4", scale=2, model="bicubic")
    vidsr.upscale_folder("frames/", "out/", vidsr.RunConfig(scale=2))
    model = vidsr.load_model("bicubic", 2)   # torch module + contract (scale, colour, multiple_of)
"""

from __future__ import annotations

from pathlib import Path

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
from vidsr.pipeline.folders import FolderOptions, upscale_folder, video_to_folder
from vidsr.models.contract import SRModel
from vidsr.pipeline.video import RunSummary
from vidsr.pipeline.video import upscale_video as _run_pipeline
from vidsr.engine.upscaler import load_model

__version__ = "0.1.0"

__all__ = [
    "DeviceError", "EncodeConfig", "EncodeError", "FolderOptions", "InputError", "ModelError",
    "OptionError", "OutputExistsError", "RunConfig", "RunSummary", "SRModel", "VidsrError",
    "__version__", "load_model", "upscale_folder", "upscale_video", "video_to_folder",
]


def upscale_video(
    src: str | Path,
    dst: str | Path | None = None,
    *,
    scale: int = 2,
    model: str = "bicubic",
    device: str = "auto",
    config: RunConfig | None = None,
    **options: object,
) -> RunSummary:
    """Upscale ``src`` into ``dst`` (default ``<stem>_x<scale><ext>`` beside it).

    Keyword ``options`` are any other :class:`RunConfig` fields (``batch_size``, ``tile``,
    ``colour``, ``overwrite``...) plus ``codec``, ``crf``, ``preset``, ``pix_fmt`` for the
    encoder. A full ``config`` replaces all of them.
    """
    if config is None:
        encode_keys = {"codec", "crf", "preset", "pix_fmt"}
        encode = EncodeConfig(**{k: v for k, v in options.items() if k in encode_keys})  # type: ignore[arg-type]
        rest = {k: v for k, v in options.items() if k not in encode_keys}
        config = RunConfig(model=model, scale=scale, device=device, encode=encode, **rest)  # type: ignore[arg-type]
    return _run_pipeline(src, dst, config)
