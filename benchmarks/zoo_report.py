"""Quality table of every shipped model against the project's bars (issue 7), measured
with the ``vidsr eval`` protocol on the shared benchmark data.

Prints a Markdown table (Y-PSNR in dB; a bar is marked ok when met) and, with
``--json FILE``, writes every figure. Vid4 x4 (all frames, per clip and averaged) is
measured with ``--vid4``; it takes minutes per model on a CPU.

Usage: python benchmarks/zoo_report.py [--data ../shared/data] [--vid4] [--models a,b]
       [--scales 2,3,4] [--device auto] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import banner  # noqa: E402

from vidsr.device import resolve_device  # noqa: E402
from vidsr.engine.upscaler import available_scales, load_model  # noqa: E402
from vidsr.eval.evaluate import evaluate  # noqa: E402
from vidsr.models.registry import REGISTRY  # noqa: E402

# Issue 7's quality bars: family -> {(set, scale): dB}; Vid4 x4 for the quality model.
BARS: dict[str, dict[tuple[str, int], float]] = {
    "srcnn": {
        ("Set5", 2): 36.66,
        ("Set5", 3): 32.75,
        ("Set5", 4): 30.48,
        ("Set14", 2): 32.42,
        ("Set14", 3): 29.28,
        ("Set14", 4): 27.49,
    },
    "fast": {
        ("Set5", 2): 37.05,
        ("Set5", 3): 33.18,
        ("Set5", 4): 30.72,
        ("Set14", 2): 32.66,
        ("Set14", 3): 29.37,
        ("Set14", 4): 27.61,
    },
    "quality": {
        ("Set5", 2): 37.53,
        ("Set5", 3): 33.66,
        ("Set5", 4): 31.35,
        ("Set14", 2): 33.03,
        ("Set14", 3): 29.77,
        ("Set14", 4): 28.01,
        ("Vid4", 4): 25.35,
    },
}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default=str(Path(__file__).resolve().parents[2] / "shared" / "data"))
    p.add_argument(
        "--models",
        default=",".join(["bicubic", *[n for n, e in REGISTRY.items() if e.family != "baseline"]]),
    )
    p.add_argument("--scales", default="2,3,4")
    p.add_argument("--vid4", action="store_true", help="also Vid4 x4 (slow on a CPU)")
    p.add_argument("--device", default="auto")
    p.add_argument("--json", default=None, help="write all figures here")
    args = p.parse_args()

    data = Path(args.data)
    device = resolve_device(args.device)
    sets = {"Set5": [data / "images" / "Set5"], "Set14": [data / "images" / "Set14"]}
    vid4 = sorted((data / "video" / "Vid4").glob("*.mkv"))
    scales = [int(s) for s in args.scales.split(",")]
    print(banner())
    print(f"device {device}\n")

    results: list[dict] = []
    for name in args.models.split(","):
        entry = REGISTRY[name]
        for scale in scales:
            if scale not in available_scales(entry):
                continue
            model = load_model(name, scale)
            runs = dict(sets)
            if args.vid4 and scale == 4 and vid4:
                runs["Vid4"] = vid4
            for label, paths in runs.items():
                start = time.perf_counter()
                report = evaluate(model, paths, device=device)
                value = report.psnr
                bar = BARS.get(entry.family, {}).get((label, scale))
                results.append(
                    {
                        "model": name,
                        "family": entry.family,
                        "scale": scale,
                        "set": label,
                        "psnr_y": round(value, 3),
                        "ssim_y": round(report.ssim, 4),
                        "bicubic_psnr_y": round(report.bicubic_psnr, 3),
                        "bar": bar,
                        "meets_bar": None if bar is None else value >= bar,
                        "clips": {c.name: round(c.psnr, 3) for c in report.clips}
                        if label == "Vid4"
                        else None,
                        "seconds": round(time.perf_counter() - start, 1),
                    }
                )

    print("| model | set | scale | Y-PSNR | SSIM | bicubic | bar |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        bar = "" if r["bar"] is None else f"{r['bar']:.2f} {'ok' if r['meets_bar'] else 'MISSED'}"
        print(
            f"| {r['model']} | {r['set']} | x{r['scale']} | {r['psnr_y']:.2f} | "
            f"{r['ssim_y']:.4f} | {r['bicubic_psnr_y']:.2f} | {bar} |"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
