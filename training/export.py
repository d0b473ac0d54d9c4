"""Export a trained net: ``<name>_x<s>.safetensors`` plus a JSON model card beside it.

The weights file holds the bare network's ``state_dict`` (what
:func:`vidsr.engine.upscaler.load_model` loads into ``entry.build(scale)``). The card records how
the weights were made and what they measure, so ``vidsr models --json`` can show it.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn

from vidsr.errors import OutputExistsError
from vidsr.models.contract import ModelEntry
from vidsr.models.folding import fold_reconstruction
from vidsr.training.shards import FORMAT, SEQ_FORMAT, read_manifest


@torch.no_grad()
def cpu_inference_ms(
    net: nn.Module, channels: int, size: tuple[int, int] = (360, 640), repeats: int = 3
) -> float:
    """Median CPU milliseconds for one ``(1, C, H, W)`` LR frame (default 640x360), the
    net run as the pipeline runs it (a linear sub-pixel reconstruction folded,
    :func:`~vidsr.models.folding.fold_reconstruction`)."""
    net = fold_reconstruction(net.cpu().eval())[0]
    x = torch.rand(1, channels, *size)
    net(x)  # warm-up (allocations, oneDNN kernel choice)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        net(x)
        times.append((time.perf_counter() - t) * 1000.0)
    return sorted(times)[len(times) // 2]


def measure(
    net: nn.Module, entry: ModelEntry, scale: int, folders: dict[str, str]
) -> tuple[dict, dict]:
    """``vidsr eval`` figures on each named HR folder, e.g. ``{"Set5": path}``.

    Returns ``(summary, per_image)``: mean Y-PSNR/SSIM of the model and of bicubic per
    folder, and each image's Y-PSNR per folder.
    """
    from vidsr.eval.evaluate import evaluate
    from vidsr.models.contract import SRModel

    model = SRModel(
        net.cpu().eval(), name=entry.name, family=entry.family, scale=scale, colour=entry.colour
    )
    out: dict = {}
    per_image: dict = {}
    for label, folder in folders.items():
        report = evaluate(model, [Path(folder)], device="cpu")
        out[label] = {
            "psnr_y": round(report.psnr, 3),
            "ssim_y": round(report.ssim, 4),
            "bicubic_psnr_y": round(report.bicubic_psnr, 3),
            "bicubic_ssim_y": round(report.bicubic_ssim, 4),
            "images": len(report.images),
        }
        per_image[label] = {s.name: round(s.psnr, 3) for s in report.images}
    return out, per_image


def _fold(net: nn.Module) -> nn.Module:
    """The plain form of a re-parameterisable net (its ``fold()``)."""
    fold = getattr(net, "fold", None)
    if not callable(fold):
        raise TypeError(f"{type(net).__name__} has a training form but no fold()")
    plain = fold()
    assert isinstance(plain, nn.Module)
    return plain


def card_data(root: str | Path | None) -> dict:
    """The card's ``data`` block from a dataset folder's manifest: path, patches (or
    ``sequences`` and their ``frames`` for a sequence set), patch,
    ``degradations`` (spec strings, a codec spec first when the set was built with one),
    ``lr_method`` and the input folders/videos. Only ``path`` when there is no manifest."""
    data: dict = {"path": None if root is None else str(root)}
    try:
        manifest = read_manifest(Path(str(root)), (FORMAT, SEQ_FORMAT))
        data.update(
            patches=manifest["count"],
            patch=manifest["patch"],
            degradations=manifest["degradations"],
            inputs=sorted(
                {
                    str(Path(i["path"]).parent) if i["kind"] == "image" else i["path"]
                    for i in manifest["inputs"]
                }
            ),
        )
        if manifest["format"] == SEQ_FORMAT:
            data.update(sequences=data.pop("patches"), frames=manifest["settings"]["frames"])
        if "lr_method" in manifest:
            data["lr_method"] = manifest["lr_method"]
    except (KeyError, OSError, ValueError, TypeError):
        pass
    return data


def export_paths(
    out_dir: Path, name: str, scale: int, *, overwrite: bool = False
) -> tuple[Path, Path]:
    """``(weights, card)`` paths an export of ``name`` at ``scale`` writes in ``out_dir``.

    Raises:
        OutputExistsError: one of them exists and ``overwrite`` is false.
    """
    stem = f"{name}_x{scale}"
    paths = out_dir / f"{stem}.safetensors", out_dir / f"{stem}.json"
    existing = [p for p in paths if p.exists()]
    if existing and not overwrite:
        raise OutputExistsError(
            f"{existing[0]} exists: add --overwrite to replace it, or "
            "export under another --export NAME or --export-dir"
        )
    return paths


def export_model(
    net: nn.Module,
    entry: ModelEntry,
    *,
    scale: int,
    name: str,
    out_dir: Path,
    train_info: dict,
    report: dict[str, str] | None = None,
    overwrite: bool = False,
) -> tuple[Path, Path]:
    """Write ``out_dir/<name>_x<scale>.safetensors`` and ``<name>_x<scale>.json``.

    Args:
        net: the trained bare network (as built by ``entry.build_trainable(scale)``); a
            re-parameterisable net is folded here into its plain form (``entry.build``).
        entry: its registry row (family, colour).
        train_info: run facts for the card (config, steps, wall time, device, command).
        report: folders of HR images to measure Y-PSNR/SSIM on, by label.
        overwrite: replace an existing weights file or card of the same name.

    Returns:
        ``(weights_path, card_path)``.

    Raises:
        OutputExistsError: the weights or card exist and ``overwrite`` is false.
    """
    weights_path, card_path = export_paths(out_dir, name, scale, overwrite=overwrite)
    out_dir.mkdir(parents=True, exist_ok=True)
    net = net.cpu().eval()
    if entry.train_build is not None:
        net = _fold(net)
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    save_file(state, str(weights_path), metadata={"arch": entry.name, "scale": str(scale)})

    cfg = train_info.get("config", {})
    data = card_data(cfg.get("data"))
    validation, per_image = measure(net, entry, scale, report or {})
    card = {
        "name": name,
        "architecture": entry.name,
        "family": entry.family,
        "description": entry.description,
        "scale": scale,
        "colour": entry.colour,
        "parameters": sum(p.numel() for p in net.parameters()),
        "data": data,
        "loss": cfg.get("loss"),
        "steps": train_info.get("steps"),
        "batch_size": cfg.get("batch_size"),
        "lr": cfg.get("lr"),
        "schedule": cfg.get("schedule"),
        "wall_time_s": round(float(train_info.get("wall_s", 0.0)), 1),
        "device": train_info.get("device"),
        "precision": cfg.get("precision", "auto"),
        "init": cfg.get("init"),
        "ema": cfg.get("ema", 0.0),
        "command": train_info.get("command") or cfg.get("command"),
        "torch": torch.__version__,
        "host": platform.processor() or platform.machine(),
        "validation": validation,
        "validation_per_image_psnr_y": per_image,
        "validation_protocol": "vidsr eval: modcrop, MATLAB bicubic LR, Y (rgb2ycbcr) "
        "PSNR/SSIM with `scale` border pixels cropped",
        "cpu_inference_ms_640x360": round(
            cpu_inference_ms(net, 1 if entry.colour == "luma" else 3), 1
        ),
        "cpu_threads": torch.get_num_threads(),
        "notes": train_info.get("notes", ""),
    }
    card_path.write_text(json.dumps(card, indent=1) + "\n")
    return weights_path, card_path
