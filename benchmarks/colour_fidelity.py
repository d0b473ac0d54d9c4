"""Colour fidelity and temporal stability of ColourMatcher off / frame / shot on Vid4.

    .venv/bin/python benchmarks/colour_fidelity.py [--data ../shared/data] [--device cpu]
        [--models perceptual,fast,quality]

Each Vid4 clip is one shot (the four are fed as one stream, batches of 8, with a cut flag
at each clip's first frame). LR = MATLAB-style bicubic x4 downscale of the ground truth
(``vidsr.eval.resize``). Upscaled outputs under test, all planar YUV 4:2:0 code-normalised:

* ``gt``: the ground truth itself (a perfect network: matching should do no harm);
* ``bicubic``: bicubic x4 upscale of the LR frames (the baseline);
* ``cast``: the ground truth through a simulated network colour error, the same on every
  frame: a luma tone curve (gamma 0.9) and a chroma cast (+4 Cb, -3 Cr codes);
* ``flicker``: ``cast`` plus a per-frame luma offset (normal, 1.5 codes) and gain wobble
  (normal, 1 %), a network whose colour pumps from frame to frame;
* each model named with ``--models`` (registry name; needs its trained weights): luma
  models on Y with bicubic chroma, RGB models on the LR RGB frames.

Figures (8-bit code values; all means over frames):

* colour error: output downscaled to the LR size vs the LR input: |mean shift| and
  |std shift| per channel, averaged over Y, Cb, Cr;
* stability: within each shot, the standard deviation over frames of
  ``mean(out) - mean(bicubic reference)`` for Y and for chroma (Cb, Cr averaged);
* PSNR of Y against the ground truth.
"""

from __future__ import annotations

import argparse
import platform
from pathlib import Path

import av
import cv2
import numpy as np
import torch
import torch.nn.functional as F

from vidsr.colour.matching import ColourMatcher
from vidsr.errors import VidsrError
from vidsr.eval.resize import bicubic_downscale, modcrop

SCALE = 4  # set from --scale in main(); a script-level setting, read by the helpers below
Planes = tuple[torch.Tensor, torch.Tensor]  # y (1, 1, H, W), uv (1, 2, H/2, W/2) in [0, 1]


def rgb_to_planes(rgb: np.ndarray) -> Planes:
    h, w = rgb.shape[:2]
    i420 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).astype(np.float32) / 255
    y = torch.from_numpy(i420[:h]).reshape(1, 1, h, w)
    uv = torch.from_numpy(i420[h:]).reshape(1, 2, h // 2, w // 2)
    return y, uv


def load(data: Path) -> tuple[list[Planes], list[Planes], list[bool], list[np.ndarray]]:
    """Ground-truth and LR planes of the four clips, shot-start flags, LR RGB frames."""
    hr, lr, flags, lr_rgb = [], [], [], []
    for name in ("calendar", "city", "foliage", "walk"):
        with av.open(str(data / "video" / "Vid4" / f"{name}.mkv")) as container:
            for i, frame in enumerate(container.decode(video=0)):
                rgb = modcrop(frame.to_ndarray(format="rgb24"), 2 * SCALE)
                hr.append(rgb_to_planes(rgb))
                lr_rgb.append(bicubic_downscale(rgb, SCALE))
                lr.append(rgb_to_planes(lr_rgb[-1]))
                flags.append(i == 0)
    return hr, lr, flags, lr_rgb


def model_outputs(name: str, lr: list[Planes], lr_rgb: list[np.ndarray], device: torch.device):
    """Outputs of a registry model: luma nets on Y (chroma bicubic), RGB nets on RGB."""
    from vidsr.engine.upscaler import load_model

    model = load_model(name, SCALE).to(device)
    outputs: list[Planes] = []
    with torch.no_grad():
        for planes, rgb in zip(lr, lr_rgb):
            if model.colour == "luma":
                y = model(planes[0].to(device)).clamp(0, 1).cpu()
                outputs.append((y, upscale(planes)[1]))
            else:
                x = torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).float().div(255)
                sr = model(x.to(device)).clamp(0, 1)[0].permute(1, 2, 0).cpu().numpy()
                outputs.append(rgb_to_planes((sr * 255).round().astype(np.uint8)))
    return outputs


def upscale(p: Planes) -> Planes:
    up = [
        F.interpolate(t, scale_factor=SCALE, mode="bicubic", align_corners=False).clamp(0, 1)
        for t in p
    ]
    return up[0], up[1]


def downscale(p: Planes, like: Planes) -> Planes:
    down = [
        F.interpolate(t, size=r.shape[-2:], mode="bicubic", antialias=True).clamp(0, 1)
        for t, r in zip(p, like)
    ]
    return down[0], down[1]


def cast(p: Planes, rng: np.random.Generator | None) -> Planes:
    y, uv = p
    flicker, wobble = (
        (0.0, 1.0) if rng is None else (rng.normal(0, 1.5) / 255, 1 + rng.normal(0, 0.01))
    )
    y = (y.clamp(0, 1) ** 0.9 * wobble + flicker).clamp(0, 1)
    uv = (uv + torch.tensor([4 / 255, -3 / 255]).reshape(1, 2, 1, 1)).clamp(0, 1)
    return y, uv


def run(
    outputs: list[Planes],
    lr: list[Planes],
    hr: list[Planes],
    flags: list[bool],
    mode: str,
    device: torch.device,
):
    matcher = ColourMatcher(mode)  # type: ignore[arg-type]
    corrected: list[Planes] = []
    start = 0
    while start < len(outputs):
        # Vid4 clips differ in size, so a batch never spans two clips here.
        stop = min(
            start + 8, len(outputs), *(k for k in range(start + 1, len(outputs)) if flags[k])
        )
        sl = range(start, stop)
        ref_y = torch.cat([lr[i][0] for i in sl]).to(device)
        ref_uv = torch.cat([lr[i][1] for i in sl]).to(device)
        out_y = torch.cat([outputs[i][0] for i in sl]).to(device)
        out_uv = torch.cat([outputs[i][1] for i in sl]).to(device)
        y, uv = matcher.apply(ref_y, ref_uv, out_y, out_uv, [flags[i] for i in sl])
        assert uv is not None
        corrected += [(y[k : k + 1].cpu(), uv[k : k + 1].cpu()) for k in range(len(sl))]
        start = stop
    mean_err, std_err, psnr = [], [], []
    drift: list[list[np.ndarray]] = []
    for out, ref, gt, flag in zip(corrected, lr, hr, flags):
        small = downscale(out, ref)
        o = [small[0][0, 0] * 255, small[1][0, 0] * 255, small[1][0, 1] * 255]
        r = [ref[0][0, 0] * 255, ref[1][0, 0] * 255, ref[1][0, 1] * 255]
        mean_err.append(np.mean([float((a.mean() - b.mean()).abs()) for a, b in zip(o, r)]))
        std_err.append(np.mean([float((a.std() - b.std()).abs()) for a, b in zip(o, r)]))
        psnr.append(float(10 * torch.log10(1 / F.mse_loss(out[0], gt[0]))))
        bic = upscale(ref)
        d = np.array(
            [
                float((out[0].mean() - bic[0].mean()) * 255),
                float((out[1].mean((0, 2, 3)) - bic[1].mean((0, 2, 3))).mean() * 255),
            ]
        )
        if flag:
            drift.append([])
        drift[-1].append(d)
    stab = np.mean([np.std(np.stack(shot), axis=0) for shot in drift], axis=0)
    return np.mean(mean_err), np.mean(std_err), stab[0], stab[1], np.mean(psnr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--models", default="", help="comma-separated registry models to test (need weights)"
    )
    parser.add_argument("--scale", type=int, default=4, choices=(2, 3, 4))
    args = parser.parse_args()
    global SCALE
    SCALE = args.scale
    device = torch.device(args.device)
    print(
        f"device {device}; python {platform.python_version()}; torch {torch.__version__}, PyAV "
        f"{av.__version__}"
    )
    hr, lr, flags, lr_rgb = load(args.data)
    rng = np.random.default_rng(0)
    cases = {
        "gt": hr,
        "bicubic": [upscale(p) for p in lr],
        "cast": [cast(p, None) for p in hr],
        "flicker": [cast(p, rng) for p in hr],
    }
    for model_name in [m for m in args.models.split(",") if m]:
        try:
            cases[model_name] = model_outputs(model_name, lr, lr_rgb, device)
        except VidsrError as e:  # e.g. weights not trained yet
            print(f"model {model_name!r} skipped: {e}")
    print(f"Vid4, {len(hr)} frames, 4 shots, x{SCALE}; 8-bit code values")
    print(
        f"{'output':8} {'mode':6} {'|d mean|':>9} {'|d std|':>8} {'stab Y':>7} {'stab C':>7} "
        f"{'PSNR-Y':>7}"
    )
    for name, outputs in cases.items():
        for mode in ("off", "frame", "shot"):
            m, s, sy, sc, p = run(outputs, lr, hr, flags, mode, device)
            print(f"{name:8} {mode:6} {m:9.3f} {s:8.3f} {sy:7.3f} {sc:7.3f} {p:7.2f}")


if __name__ == "__main__":
    main()
