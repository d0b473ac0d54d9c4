"""Load a model by registry name (or external weights file) into an :class:`SRModel`.

Weights are read with safetensors only; nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from vidsr.config import EXPORT_DIR, ColourMode, WeightsKind
from vidsr.errors import ModelError, OptionError
from vidsr.models.entry import ModelEntry
from vidsr.models.interp import Interpolator
from vidsr.models.registry import REGISTRY

if TYPE_CHECKING:  # torch, the nets and spandrel are imported when a net is loaded
    import torch

    from vidsr.models.contract import SRModel

EXTERNAL_SUFFIXES = (".pth", ".pt", ".safetensors", ".ckpt", ".bin")


def weights_dir() -> Path:
    """Folder holding the shipped ``*.safetensors`` weights and their JSON cards."""
    import vidsr.models

    return Path(vidsr.models.__file__).resolve().parent / "weights"


def is_external(name: str) -> bool:
    """True when ``name`` names a weights file rather than a registry entry."""
    return name.lower().endswith(EXTERNAL_SUFFIXES) or "/" in name or "\\" in name


def read_card(file_name: str | Path) -> dict:
    """The JSON model card beside a weights file (empty dict when absent). A bare file
    name is looked up among the shipped weights.

    Raises:
        ModelError: the card exists but is not readable JSON (an object).
    """
    weights = Path(file_name)
    folder = weights.parent if weights.parent != Path() else weights_dir()
    card_path = folder / (weights.stem + ".json")
    if not card_path.is_file():
        return {}
    try:
        card = json.loads(card_path.read_text())
    except (OSError, ValueError) as e:  # json.JSONDecodeError is a ValueError
        raise ModelError(
            f"the model card {card_path} beside {weights.name} cannot be read "
            f"({e}); fix or remove it"
        ) from e
    if not isinstance(card, dict):
        raise ModelError(
            f"the model card {card_path} beside {weights.name} is not a JSON "
            f"object; fix or remove it"
        )
    return card


def vidsr_export(path: Path) -> tuple[str, int | None] | None:
    """``(architecture, scale)`` of a ``.safetensors`` file written by ``vidsr train
    --export`` (its metadata names a registry architecture), or None for any other file
    (a community model, which goes to spandrel)."""
    if path.suffix.lower() != ".safetensors" or not path.is_file():
        return None
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except (SafetensorError, OSError, ValueError):
        return None  # not readable as safetensors: the external loader says why
    arch, scale = meta.get("arch"), meta.get("scale", "")
    if arch not in REGISTRY:
        return None
    return arch, int(scale) if scale.isdigit() else None


def model_file_scale(name: str | Path) -> int | None:
    """The scale a weights file was made for, read from the file before any work: the
    metadata of a ``vidsr train --export`` file, else spandrel's detection of a community
    model; ``None`` for an export that does not record it.

    Raises:
        ModelError: missing, unreadable or unknown weights.
    """
    path = Path(name)
    if not path.is_file():
        raise ModelError(f"model weights file not found: {name}")
    exported = vidsr_export(path)
    if exported is not None:
        return exported[1]
    from vidsr.engine.external import external_scale

    return external_scale(path)


def available_scales(entry: ModelEntry) -> tuple[int, ...]:
    """Scales of ``entry`` that can be loaded now: all of them for models without learned
    weights (baselines), else those whose weights file is shipped in ``models/weights/``."""
    if not entry.weights:
        return tuple(entry.scales)
    folder = weights_dir()
    return tuple(
        s for s in entry.scales if s in entry.weights and (folder / entry.weights[s]).is_file()
    )


def check_model_choice(name: str | None, scale: int, *, self_ensemble: bool = False) -> None:
    """Raise :class:`ModelError` early when ``name``/``scale`` cannot be served
    (``None``: the default model, :func:`resolve_model`), and :class:`OptionError` for
    ``self_ensemble`` with a recurrent model (see :func:`load_model`)."""
    name = resolve_model(name, scale)
    if is_external(name):
        own = model_file_scale(name)
        if own is not None and own != scale:
            from vidsr.engine.external import scale_mismatch

            raise ModelError(scale_mismatch(Path(name), own, scale))
        exported = vidsr_export(Path(name))
        if self_ensemble and exported is not None:
            _check_ensemble(REGISTRY[exported[0]], scale)
        return
    entry = REGISTRY.get(name)
    if entry is None:
        known = ", ".join(sorted(REGISTRY))
        exported = Path(EXPORT_DIR) / f"{name}_x{scale}.safetensors"
        hint = f"; for your export, pass --model {exported}" if exported.is_file() else ""
        raise ModelError(f"unknown model {name!r}; available: {known} (see `vidsr models`){hint}")
    if scale not in entry.scales:
        supported = ", ".join(str(s) for s in entry.scales)
        raise ModelError(f"model {name!r} does not support scale {scale} (supports {supported})")
    if entry.weights and scale not in available_scales(entry):
        ready = ", ".join(f"x{s}" for s in available_scales(entry)) or "none"
        raise ModelError(
            f"no trained weights shipped for {name!r} x{scale} yet (available: {ready}); "
            f"train them with `vidsr train --arch {name} --scale {scale} --export {name}` "
            f"(see training/README.md) and pass --model {EXPORT_DIR}/{name}_x{scale}.safetensors"
        )
    if self_ensemble:
        _check_ensemble(entry, scale)


def _check_ensemble(entry: ModelEntry, scale: int) -> None:
    """Refuse ``--self-ensemble`` for a recurrent architecture (builds the net, untrained:
    cheap)."""
    if getattr(entry.build(scale), "stateful", False) is True:
        raise OptionError(_ENSEMBLE_REFUSED.format(name=entry.name))


_ENSEMBLE_REFUSED = (
    "--self-ensemble does not work with the recurrent model {name} "
    "(each of its 8 passes would need its own state); leave it out"
)


def load_model(
    name: str | None, scale: int, *, self_ensemble: bool = False, content: WeightsKind = "clean"
) -> SRModel:
    """Build a model and load its weights, on the CPU in float32, in eval mode.

    Args:
        name: a registry name (``vidsr models`` lists them) or a path to a
            ``.pth``/``.safetensors`` file of a community model (loaded through spandrel).
            ``None``: the default model for ``scale`` (:func:`resolve_model`).
        scale: the upscaling factor wanted; must be one the model supports.
        self_ensemble: average the network over the eight flips and rotations of each
            input (:class:`~vidsr.models.ensemble.SelfEnsemble`): eight times the compute
            for a higher PSNR. ``model.self_ensemble`` records the choice.
        content: ``compressed`` loads the registry model's weights trained on
            codec-degraded video (see :func:`has_compressed_weights`); ``clean`` its
            clean-trained ones. Weights files and baselines have one set and ignore it.

    Raises:
        ModelError: unknown name, unsupported scale, missing or corrupt weights.
        OptionError: ``self_ensemble`` with a recurrent model (each of the eight passes
            would need its own state).
    """
    model = _load(resolve_model(name, scale), scale, content)
    if self_ensemble and model.stateful:
        raise OptionError(_ENSEMBLE_REFUSED.format(name=model.name))
    if self_ensemble:
        from vidsr.models.ensemble import SelfEnsemble

        model.net = SelfEnsemble(model.net)
        model.self_ensemble = True
    return model


def load_interpolator(name: str | None, scale: int) -> Interpolator | None:
    """The torch-free 8-bit form of model ``name`` (``None``: the default) at ``scale``
    (an interpolation baseline's :class:`~vidsr.models.interp.Interpolator`, see
    ``ModelEntry.integer_build``), or ``None`` for a model without one.

    Raises:
        ModelError: as :func:`check_model_choice`.
    """
    name = resolve_model(name, scale)
    entry = None if is_external(name) else REGISTRY.get(name)
    if entry is None or entry.integer_build is None:
        return None
    check_model_choice(name, scale)
    return entry.integer_build(scale)


def default_colour(name: str | None, scale: int) -> ColourMode:
    """The colour matching a run gets when ``--color`` is not given: ``shot`` for a
    learned model (the matcher holds its colours to the source's), ``off`` for an
    interpolation baseline, whose weights sum to one per phase (it keeps the source's
    mean colour by construction, and matching its histogram would only undo some of the
    kernel's overshoot at twice the run time)."""
    name = resolve_model(name, scale)
    entry = None if is_external(name) else REGISTRY.get(name)
    return "off" if entry is not None and entry.family == "baseline" else "shot"


def has_compressed_weights(name: str | None, scale: int) -> bool:
    """Whether model ``name`` (``None``: the default) has weights trained on codec-degraded
    video at ``scale`` in ``models/weights/``."""
    name = resolve_model(name, scale)
    if is_external(name) or name not in REGISTRY:
        return False
    file = REGISTRY[name].compressed_weights.get(scale)
    return file is not None and (weights_dir() / file).is_file()


def _load(name: str, scale: int, content: WeightsKind = "clean") -> SRModel:
    if not is_external(name):
        check_model_choice(name, scale)
    elif not Path(name).is_file():  # the loaders below check the scale as they read
        raise ModelError(f"model weights file not found: {name}")
    if is_external(name):
        exported = vidsr_export(Path(name))
        if exported is None:
            from vidsr.engine.external import load_external

            return load_external(Path(name), scale)
        arch, trained_for = exported
        if trained_for is not None and trained_for != scale:
            raise ModelError(
                f"{Path(name).name} is a {arch} x{trained_for} model, not "
                f"x{scale}; use --scale {trained_for} (or leave --scale out)"
            )
        return _load_registry_weights(REGISTRY[arch], scale, Path(name))

    entry = REGISTRY[name]
    if not entry.weights:
        return wrap_entry(entry, entry.build(scale), scale, {})
    if content == "compressed":
        if not has_compressed_weights(name, scale):
            raise ModelError(
                f"{name} has no weights for compressed input at x{scale} (use --content clean)"
            )
        return _load_registry_weights(entry, scale, weights_dir() / entry.compressed_weights[scale])
    return _load_registry_weights(entry, scale, weights_dir() / entry.weights[scale])


def _load_registry_weights(entry: ModelEntry, scale: int, path: Path) -> SRModel:
    """Registry architecture ``entry`` at ``scale`` with the weights in ``path`` (a
    shipped file, or one a user exported with ``vidsr train --export``) and its card."""
    from vidsr.engine.external import read_state_dict

    net = entry.build(scale)
    try:
        net.load_state_dict(read_state_dict(path), strict=True)
    except RuntimeError as e:  # keys or shapes do not match the architecture
        first = str(e).strip().splitlines()[0]
        raise ModelError(
            f"weights {path.name} do not fit model {entry.name!r} x{scale}: {first}"
        ) from e
    return wrap_entry(entry, net, scale, read_card(path))


def wrap_entry(
    entry: ModelEntry,
    net: torch.nn.Module,
    scale: int,
    card: dict | None = None,
    name: str | None = None,
) -> SRModel:
    """``net`` (``entry``'s architecture built for ``scale``) as an :class:`SRModel` in eval
    mode, with the entry's family, colour space, size multiple, half support and receptive
    radius; named ``name`` (default: the entry's)."""
    from vidsr.models.contract import SRModel

    model = SRModel(
        net,
        name=entry.name if name is None else name,
        family=entry.family,
        scale=scale,
        colour=entry.colour,
        multiple_of=entry.multiple_of,
        supports_half=entry.supports_half,
        receptive_radius=entry.receptive_radius,
        card=card,
    )
    return model.eval()


# The model used when none is named, best first; the first with weights for the scale wins.
DEFAULT_MODELS = ("fast-ecb", "fast", "bicubic")


def default_model(scale: int) -> str:
    """Name of the default model for ``scale``: the re-parameterised fast model
    (``fast-ecb``) when its weights are shipped for that scale, else ``fast``, else the
    bicubic baseline (``vidsr models`` shows which)."""
    for name in DEFAULT_MODELS:
        entry = REGISTRY.get(name)
        if entry is not None and scale in available_scales(entry):
            return name
    return "bicubic"


def resolve_model(name: str | None, scale: int) -> str:
    """The model a run uses: ``name``, or :func:`default_model` for ``scale`` when it is
    ``None``. The one place the default is chosen: the library (``RunConfig(model=None)``)
    and the CLI (no ``--model``) both come here through :func:`load_model`."""
    return default_model(scale) if name is None else name


def model_listing() -> list[dict]:
    """One dict per registry model with weights available for at least one scale:
    name, family, scales, colour, parameters (at the smallest scale), the card's
    validation figures per scale (``validation``; ``validation_self_ensemble`` too for
    scales whose card measured ``--self-ensemble``) and ``trained_on``: the scales with
    weights trained on clean downscales and those with weights for compressed input
    (``--content compressed``)."""
    rows = []
    for name, entry in REGISTRY.items():
        scales = available_scales(entry)
        if not scales:
            continue
        params = sum(p.numel() for p in entry.build(scales[0]).parameters())
        cards = {str(s): read_card(entry.weights[s]) for s in scales if entry.weights}
        row = {
            "name": name,
            "family": entry.family,
            "scales": list(scales),
            "colour": entry.colour,
            "parameters": params,
            "description": entry.description,
            "validation": {s: card.get("validation", {}) for s, card in cards.items()},
        }
        ensembled = {
            s: card["validation_self_ensemble"]
            for s, card in cards.items()
            if "validation_self_ensemble" in card
        }
        if ensembled:
            row["validation_self_ensemble"] = ensembled
        compressed = [s for s in scales if has_compressed_weights(name, s)]
        row["trained_on"] = {
            "clean": [
                s for s in scales if not cards.get(str(s), {}).get("data", {}).get("degradations")
            ],
            "compressed": compressed,
        }
        rows.append(row)
    return rows
