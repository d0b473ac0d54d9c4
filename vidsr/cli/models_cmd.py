"""``vidsr models [--json]``: list the models this install can use."""

from __future__ import annotations

import argparse
import json

from vidsr.cli.options import add_command

# Benchmarks shown as columns, from each card's ``validation`` figures.
SHOWN_SETS = ("Set5", "Set14")


def register(sub: argparse._SubParsersAction) -> None:
    parser = add_command(sub, "models", run)
    parser.add_argument("--json", action="store_true", help="print a JSON list")


def figures(validation: dict, scale: int) -> str:
    """``36.66/32.48`` (Set5/Set14 Y-PSNR in dB) for one scale of a card, ``-`` where a
    set was not measured."""
    sets = validation.get(str(scale), validation.get(scale, {}))
    cells = [
        f"{sets[name]['psnr_y']:.2f}" if "psnr_y" in sets.get(name, {}) else "-"
        for name in SHOWN_SETS
    ]
    return "/".join(cells)


def run(args: argparse.Namespace) -> int:
    """list available models

    List the models this install can load, with the Y-PSNR (dB) their cards measured on Set5
    and Set14 per scale.
    """
    from vidsr.engine.upscaler import model_listing
    from vidsr.models.registry import REGISTRY

    rows = model_listing()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    sets = "/".join(SHOWN_SETS)
    head = "  ".join(f"{f'x{s} {sets}':<14}" for s in (2, 3, 4))
    print(
        f"{'name':<16} {'family':<11} {'colour':<6} {'scales':<8} {'params':>9}  {head}  "
        f"{'compressed':<10}  description"
    )
    for row in rows:
        scales = ",".join(str(s) for s in row["scales"]) or "-"
        cells = "  ".join(
            f"{figures(row['validation'], s) if s in row['scales'] else '':<14}" for s in (2, 3, 4)
        )
        compressed = ",".join(str(s) for s in row["trained_on"]["compressed"]) or "-"
        print(
            f"{row['name']:<16} {row['family']:<11} {row['colour']:<6} {scales:<8} "
            f"{row['parameters']:>9}  {cells}  {compressed:<10}  "
            f"{REGISTRY[row['name']].description}"
        )
    print(
        f"Y-PSNR in dB from each model's card ({sets}; - not measured); "
        "`vidsr models --json` has SSIM and bicubic references too. compressed: scales with "
        "weights trained on codec-degraded video (--content compressed; auto picks them "
        "for lossy input)."
    )
    return 0
