"""Community super-resolution weights (ESRGAN, Real-ESRGAN, SwinIR, ...) through spandrel.

The file is read without running any code from it: ``.safetensors`` with safetensors,
``.pth``/``.pt``/``.ckpt``/``.bin`` with ``torch.load(weights_only=True)`` (never
TorchScript, never a full unpickle). spandrel then detects the architecture from the
state-dict keys and builds it; its descriptor gives the scale, channels, size
requirements and half-precision support, which become the :class:`SRModel` contract.
Every failure becomes a one-line :class:`~vidsr.errors.ModelError`.
"""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from vidsr.errors import ModelError
from vidsr.models.contract import SRModel

SAFETENSORS_SUFFIXES = (".safetensors",)
PICKLE_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")


class DescriptorNet(nn.Module):
    """Holds a spandrel model as a submodule (so ``.to()``/``.half()`` reach it) and calls
    it the way spandrel does, padding to its minimum size or square shape first.

    Input ``(N, C, H, W)`` float in ``[0, 1]``; output ``(N, C', s*H, s*W)``, not clamped.
    ``multiple_of`` padding is left to :class:`SRModel`.
    """

    def __init__(
        self,
        model: nn.Module,
        scale: int,
        *,
        minimum: int = 0,
        square: bool = False,
        call_fn: Callable[[nn.Module, torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.scale = scale
        self.minimum = minimum
        self.square = square
        self._call_fn = call_fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        th, tw = max(h, self.minimum), max(w, self.minimum)
        if self.square:
            th = tw = max(th, tw)
        if (th, tw) != (h, w):
            x = F.pad(x, (0, tw - w, 0, th - h), mode="replicate")
        y = self._call_fn(self.model, x) if self._call_fn is not None else self.model(x)
        return y[..., : h * self.scale, : w * self.scale]


def read_state_dict(path: Path) -> dict[str, Any]:
    """Read a weights file without executing code from it.

    Raises:
        ModelError: missing file, unsupported suffix, corrupt file, or a pickle that
            holds anything but tensors and plain containers.
    """
    suffix = path.suffix.lower()
    if not path.is_file():
        raise ModelError(f"model weights file not found: {path}")
    if suffix in SAFETENSORS_SUFFIXES:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, ValueError, RuntimeError) as e:
            raise ModelError(
                f"cannot read {path.name}: corrupt safetensors file ({_line(e)})"
            ) from e
    if suffix in PICKLE_SUFFIXES:
        try:
            with warnings.catch_warnings():  # we refuse TorchScript below, with our message
                warnings.filterwarnings("ignore", message=".*TorchScript archive")
                data = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            # weights_only refuses any global outside torch's allow-list, so a pickle that
            # would build objects or call functions stops here, before anything runs.
            if "GLOBAL" not in str(e):
                raise ModelError(f"cannot read {path.name}: corrupt or not a PyTorch file") from e
            raise ModelError(
                f"refusing to load {path.name}: it holds Python objects, not just tensors "
                "(only plain state dicts are loaded; convert it to .safetensors)"
            ) from e
        except Exception as e:  # noqa: BLE001 - arbitrary bytes make the unpickler raise anything
            if "TorchScript" in str(e):
                raise ModelError(
                    f"refusing to load {path.name}: TorchScript archives can run code; "
                    "save the model's state_dict (or .safetensors) instead"
                ) from e
            raise ModelError(
                f"cannot read {path.name}: corrupt or truncated file ({_line(e)})"
            ) from e
        if not isinstance(data, dict):
            kind = type(data).__name__
            raise ModelError(f"cannot use {path.name}: it holds a {kind}, not a state dict")
        return data
    known = ", ".join(SAFETENSORS_SUFFIXES + PICKLE_SUFFIXES)
    shown = suffix or "(none)"
    raise ModelError(f"unsupported model file type {shown!r} for {path.name}; use {known}")


def load_external(path: Path, scale: int) -> SRModel:
    """Load a community SR model file into an :class:`SRModel` (CPU, float32, eval mode).

    Args:
        path: a ``.safetensors`` or ``.pth``/``.pt``/``.ckpt``/``.bin`` state dict of an
            architecture spandrel knows.
        scale: the upscaling factor asked for; must equal the model's own.

    Returns:
        An ``SRModel`` of family ``external``: colour ``rgb`` (``luma`` for 1-channel
        models), ``multiple_of`` and ``supports_half`` from the spandrel descriptor;
        the card records architecture, tags, purpose and size requirements.

    Raises:
        ModelError: unreadable or unsafe file, unknown architecture, a model that is not
            single-image super-resolution, or a scale other than ``scale``.
    """
    path = Path(path)
    descriptor = _describe(path)
    _check_descriptor(descriptor, path, scale)
    req = descriptor.size_requirements
    net = DescriptorNet(
        descriptor.model,
        descriptor.scale,
        minimum=req.minimum,
        square=req.square,
        call_fn=getattr(descriptor, "_call_fn", None),
    )
    model = SRModel(
        net,
        name=str(path),
        family="external",
        scale=descriptor.scale,
        colour="luma" if descriptor.input_channels == 1 else "rgb",
        multiple_of=req.multiple_of,
        supports_half=bool(descriptor.supports_half),
        receptive_radius=32,
        card=_card(descriptor, path),
    )
    return model.eval()


def external_scale(path: Path) -> int:
    """The upscaling factor of the community model in ``path``, read before any work
    (the file is read and its architecture detected, as :func:`load_external` does).

    Raises:
        ModelError: as :func:`load_external`, for a file that cannot be used.
    """
    return int(_describe(Path(path)).scale)


def _describe(path: Path) -> Any:
    """spandrel's model descriptor for the weights in ``path``."""
    from spandrel import ModelLoader, UnsupportedModelError

    state_dict = read_state_dict(path)
    try:
        return ModelLoader(device="cpu").load_from_state_dict(state_dict)
    except UnsupportedModelError as e:
        raise ModelError(
            f"unknown model architecture in {path.name}: spandrel does not recognise its weights"
        ) from e
    except Exception as e:  # noqa: BLE001 - detection matched but the weights are inconsistent
        raise ModelError(f"cannot build the model in {path.name}: {_line(e)}") from e


def _check_descriptor(descriptor: Any, path: Path, scale: int) -> None:
    """Raise :class:`ModelError` unless spandrel's ``descriptor`` is a single-image SR
    model at ``scale`` mapping RGB to RGB or grey to grey."""
    from spandrel import ImageModelDescriptor

    arch = descriptor.architecture.name
    purpose = descriptor.purpose
    if not isinstance(descriptor, ImageModelDescriptor) or purpose != "SR":
        raise ModelError(f"{path.name} is a {arch} {purpose} model, not a super-resolution model")
    if descriptor.scale != scale:
        raise ModelError(scale_mismatch(path, descriptor.scale, scale))
    c_in, c_out = descriptor.input_channels, descriptor.output_channels
    if c_in != c_out or c_in not in (1, 3):
        raise ModelError(
            f"{path.name} maps {c_in} to {c_out} channels; "
            "only RGB or grayscale models are supported"
        )


def scale_mismatch(path: Path, model_scale: int, scale: int) -> str:
    """The one-line refusal for a model file of another scale than the run's."""
    return (
        f"{Path(path).name}: this model is x{model_scale}, not x{scale}: "
        f"use --scale {model_scale} (or leave --scale out)"
    )


def _card(descriptor: Any, path: Path) -> dict[str, Any]:
    """The model card of an external model: what spandrel's ``descriptor`` says of it."""
    req = descriptor.size_requirements
    return {
        "architecture": descriptor.architecture.name,
        "purpose": descriptor.purpose,
        "tags": list(descriptor.tags),
        "size_requirements": {
            "minimum": req.minimum,
            "multiple_of": req.multiple_of,
            "square": req.square,
        },
        "supports_bfloat16": bool(descriptor.supports_bfloat16),
        "tiling": descriptor.tiling.name.lower(),
        "source": str(path),
    }


def _line(e: BaseException, limit: int = 200) -> str:
    """A third-party error message on one line (they can span pages): the first two
    non-empty lines, shortened to ``limit`` characters."""
    parts = [p.strip() for p in str(e).splitlines() if p.strip()]
    text = " ".join(parts[:2]) or type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
