"""The recurrent model against the best single-frame one on Vid4 (the video SR protocol).

Each clip of Vid4 (../shared/data/video/Vid4, 171 frames in all) is one sequence: every
ground-truth frame is mod-cropped, downscaled with MATLAB-compatible bicubic, upscaled, and
scored on Y (``rgb2ycbcr``, ``scale`` border pixels off), by ``vidsr.eval.evaluate`` with
``clips=True``: a recurrent model sees the frames in order with its state carried (reset
at each clip's first frame). Printed per model, side by side:

    PSNR   Y-PSNR averaged over all frames (the VESPCN / TOFlow convention)
    clips  the mean of the four clip means
    TE     temporal error: mean over frame pairs of |(SR_t - SR_{t-1}) - (HR_t - HR_{t-1})|
           on Y in 8-bit codes, border off (lower: less flicker)
    s/f    CPU seconds per frame of the model alone on the Y plane (median over the first
           ``--time-frames`` LR frames of the first clip, state carried), at --threads

Never train on Vid4: it is evaluation only.

Usage:
    python benchmarks/temporal_vid4.py --scale 4 \\
        --models quality /work/runs/temporal_x4/export/temporal_x4.safetensors
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import banner  # noqa: E402

from vidsr.engine.upscaler import load_model  # noqa: E402
from vidsr.eval.evaluate import evaluate, iter_hr_images  # noqa: E402
from vidsr.eval.metrics import rgb_to_y  # noqa: E402
from vidsr.eval.resize import bicubic_downscale, modcrop  # noqa: E402
from vidsr.models.contract import SRModel  # noqa: E402

VID4 = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "Vid4"
TARGETS = "targets (issue 20): PSNR >= 25.35 (VESPCN), moonshot 25.9 (TOFlow); TE >= 10% lower"


def seconds_per_frame(model: SRModel, clip: Path, frames: int) -> float:
    """Median seconds of one model call on the Y of ``clip``'s first LR frames."""
    times, state = [], None
    for i, (_name, hr) in enumerate(iter_hr_images(clip)):
        if i == frames:
            break
        lr = bicubic_downscale(modcrop(hr, model.scale), model.scale)
        x = torch.from_numpy(rgb_to_y(lr, round_to_code=False) / 255.0).float()[None, None]
        start = time.perf_counter()
        with torch.inference_mode():
            if model.stateful:
                _, state = model.step(x, state)
            else:
                model(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def score(name: str, scale: int, clips: list[Path], time_frames: int) -> dict:
    """One model's Vid4 figures: PSNR (all frames), clip mean, TE, s/frame, frames."""
    model = load_model(name, scale)
    report = evaluate(model, clips, clips=True)
    return {
        "model": name,
        "stateful": model.stateful,
        "psnr": report.psnr,
        "clip_mean_psnr": report.clip_mean_psnr,
        "te": report.temporal_error,
        "bicubic_psnr": report.bicubic_psnr,
        "bicubic_te": report.bicubic_temporal_error,
        "s_per_frame": seconds_per_frame(model, clips[0], time_frames),
        "frames": len(report.images),
        "per_clip": {c.name: (round(c.psnr, 3), c.temporal_error) for c in report.clips},
    }


def table(rows: list[dict]) -> str:
    """Side-by-side text table; TE change relative to the first row."""
    head = f"{'model':<44} {'PSNR':>7} {'clips':>7} {'TE':>7} {'dTE':>7} {'s/f':>6} {'n':>4}"
    lines = [head, "-" * len(head)]
    ref = rows[0]["te"]
    for r in rows:
        d = f"{100 * (r['te'] / ref - 1):+6.1f}%" if ref else "-"
        lines.append(
            f"{Path(r['model']).name[:44]:<44} {r['psnr']:7.3f} {r['clip_mean_psnr']:7.3f} "
            f"{r['te']:7.3f} {d:>7} {r['s_per_frame']:6.2f} {r['frames']:4d}"
        )
    b = rows[0]
    lines.append(f"{'bicubic':<44} {b['bicubic_psnr']:7.3f} {'':7} {b['bicubic_te']:7.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--models", nargs="+", default=["quality", "temporal"], help="names or files")
    p.add_argument("--vid4", type=Path, default=VID4, help="folder of the four Vid4 clips")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--time-frames", type=int, default=10, help="frames timed for s/f")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    clips = sorted(args.vid4.glob("*.mkv"))
    if not clips:
        print(f"no Vid4 clips under {args.vid4}", file=sys.stderr)
        return 1
    print(banner())
    print(f"Vid4 x{args.scale}: {', '.join(c.stem for c in clips)}; MATLAB bicubic LR, Y")
    rows = [score(m, args.scale, clips, args.time_frames) for m in args.models]
    print(table(rows))
    print(TARGETS)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
