"""Re-measure the CPU inference time recorded in shipped model cards.

The trainer measures ``cpu_inference_ms_640x360`` in the training process, which on a
machine shared with other jobs can be far off. This re-times each card's weights alone
(one torch thread, median of 5, one 640x360 LR frame) and rewrites that field, noting
the machine and date in ``cpu_inference_note``.

Usage: python -m vidsr.training.card_speed models/weights/NAME_xS.json [...]
"""

from __future__ import annotations

import datetime
import json
import platform
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from vidsr.training.export import cpu_inference_ms


def remeasure(card_path: Path) -> float:
    """Time the card's weights on the CPU and write the figure into the card."""
    from vidsr.models.registry import REGISTRY

    card = json.loads(card_path.read_text())
    entry = REGISTRY[card["architecture"]]
    net = entry.build(card["scale"])
    net.load_state_dict(load_file(str(card_path.with_suffix(".safetensors"))))
    ms = cpu_inference_ms(net, 1 if entry.colour == "luma" else 3, repeats=5)
    card["cpu_inference_ms_640x360"] = round(ms, 1)
    card["cpu_threads"] = torch.get_num_threads()
    card["cpu_inference_note"] = (
        f"re-measured alone on {platform.machine()} "
        f"({torch.get_num_threads()} thread) on {datetime.date.today()}"
    )
    card_path.write_text(json.dumps(card, indent=1) + "\n")
    return ms


def main(argv: list[str] | None = None) -> int:
    torch.set_num_threads(1)
    for name in argv if argv is not None else sys.argv[1:]:
        print(f"{name}: {remeasure(Path(name)):.1f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
