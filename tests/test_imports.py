"""Import hygiene: the light modules stay light, and the shared vocabulary agrees.

``import vidsr``, ``vidsr.errors`` and ``vidsr.config``, and ``vidsr --version`` /
``--help``, must not load torch, PyAV or OpenCV (each check runs in a fresh interpreter).
"""

from __future__ import annotations

import subprocess
import sys
from typing import get_args

import pytest

HEAVY = ("torch", "av", "cv2")

# Runs the statements given as argv[1], then prints the heavy modules they loaded.
_RUNNER = f"""
import sys
exec(sys.argv[1])
print("heavy:" + ",".join(m for m in {HEAVY!r} if m in sys.modules))
"""


def heavy_modules_after(statements: str) -> list[str]:
    """The heavy modules a fresh interpreter has loaded after ``statements``."""
    result = subprocess.run(
        [sys.executable, "-c", _RUNNER, statements],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    last = result.stdout.splitlines()[-1]
    assert last.startswith("heavy:"), result.stdout
    return [m for m in last.removeprefix("heavy:").split(",") if m]


@pytest.mark.parametrize("module", ["vidsr", "vidsr.errors", "vidsr.config"])
def test_light_modules_import_no_torch_av_or_opencv(module: str) -> None:
    assert heavy_modules_after(f"import {module}") == []


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_cli_version_and_help_import_no_torch_av_or_opencv(flag: str) -> None:
    run_main = (
        "from vidsr.cli import main\n"
        "try:\n"
        f"    main([{flag!r}])\n"
        "except SystemExit as e:\n"
        "    assert e.code == 0, e.code\n"
    )
    assert heavy_modules_after(run_main) == []


def test_public_names_are_the_library_functions() -> None:
    import vidsr
    from vidsr.engine.upscaler import load_model
    from vidsr.pipeline.folders import upscale_folder
    from vidsr.pipeline.video import upscale_video

    assert vidsr.upscale_video is upscale_video
    assert vidsr.upscale_folder is upscale_folder
    assert vidsr.load_model is load_model
    assert set(vidsr.__all__) <= set(dir(vidsr))
    for name in vidsr.__all__:
        getattr(vidsr, name)
    with pytest.raises(AttributeError, match="no_such_name"):
        vidsr.no_such_name  # noqa: B018


def test_one_vocabulary() -> None:
    from vidsr.colour.matching import ColourMatcher
    from vidsr.config import COLOUR_MODES, IMAGE_EXTENSIONS, OUTPUT_FORMATS, SCALES, ColourMode
    from vidsr.models.registry import REGISTRY
    from vidsr.models.registry import SCALES as MODEL_SCALES

    assert COLOUR_MODES == get_args(ColourMode) == ("shot", "frame", "off")
    for mode in COLOUR_MODES:
        ColourMatcher(mode)
    assert MODEL_SCALES == SCALES
    assert all(set(entry.scales) <= set(SCALES) for entry in REGISTRY.values())
    assert all(ext in IMAGE_EXTENSIONS for ext in OUTPUT_FORMATS.values())
    assert all(ext == ext.lower() and ext.startswith(".") for ext in IMAGE_EXTENSIONS)
