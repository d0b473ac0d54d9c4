"""What users get: upscaling video that went through a codec, scored against the HR frames.

Each HR clip (Vid4 from ../shared by default, or any HR video given with ``--clip``) is cut to
its first ``--frames`` frames, mod-cropped to the scale and downscaled with FFmpeg's bicubic
scaler (swscale, in YUV 4:2:0, BT.601 limited range). The LR clip is stored the ways users
receive video:

    lossless   FFV1
    crfN       libx264 preset medium, CRF N (``--crfs``, default 18 23 28 33)
    mpeg2      MPEG-2 at a DVD bit rate (DVD's 0.48 bits per pixel per frame, 5 Mbit/s at
               720x576x25, applied to the LR size)

and each method runs through vidsr's own pipeline (``vidsr.pipeline.video.upscale_video``
with ``--color off`` and FFV1 output, so the encoder adds nothing): a model name, a weights
file (``--methods .../realesr-animevideov3.pth``: the spandrel path), ``bicubic``/``lanczos``.
A method written ``NAME@CONTENT`` runs with ``--content CONTENT`` (``clean``, ``compressed``
or ``auto``); for ``@auto`` each cell also shows the weights vidsr chose (``[clean]`` or
``[compr]``), so the table shows whether ``auto`` picked right for each storage.

Scores, per method and storage, averaged over clips (frames averaged within a clip):
    Y-PSNR / SSIM   on the Y plane (BT.601 studio range codes), ``scale`` pixels of border off
    TE              temporal error: mean over frames t >= 1 of
                    |(SR_t - SR_{t-1}) - (HR_t - HR_{t-1})| on Y in 8-bit codes, border off
                    (lower: less flicker and fewer crawling artefacts)
    VGG             VGG16 relu2_2 feature distance on RGB, in thousands (the mean squared
                    feature difference, Caffe convention; every 5th frame; lower is closer;
                    needs the weights in ../shared/data/weights, else "-")
    fps             frames per second of the whole vidsr run (decode + model + encode)

Never train on these clips: Vid4 is evaluation only.

Usage:
    python benchmarks/realworld.py --scales 4 --frames 30 --methods bicubic,lanczos,fast
    python benchmarks/realworld.py --scales 2 4 --storages lossless crf23 crf28 --json out.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import banner  # noqa: E402

from vidsr.config import RunConfig  # noqa: E402
from vidsr.eval.metrics import rgb_to_y, shave, ssim  # noqa: E402
from vidsr.pipeline.video import upscale_video  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
VID4 = SHARED / "video" / "Vid4"
DVD_BITS_PER_PIXEL = 5_000_000 / (720 * 576 * 25)
RATE = 25


@dataclass
class Score:
    """One method on one stored clip."""

    psnr: float
    ssim: float
    temporal: float
    vgg: float | None
    fps: float
    weights: str = ""  # the weights vidsr chose ("clean" / "compressed"), for @auto


def read_hr(path: Path, frames: int, scale: int) -> list[np.ndarray]:
    """The first ``frames`` frames as uint8 RGB ``(H, W, 3)``, mod-cropped to ``scale``."""
    out = []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            rgb = frame.to_ndarray(format="rgb24")
            h, w = rgb.shape[0] - rgb.shape[0] % scale, rgb.shape[1] - rgb.shape[1] % scale
            out.append(np.ascontiguousarray(rgb[:h, :w]))
            if len(out) == frames:
                break
    return out


def _encoder(storage: str, lr_size: tuple[int, int]) -> tuple[str, dict[str, str], int | None]:
    """(codec, options, bit rate) for a storage name."""
    if storage == "lossless":
        return "ffv1", {}, None
    if storage == "mpeg2":
        w, h = lr_size
        return "mpeg2video", {"g": "12", "bf": "2"}, int(DVD_BITS_PER_PIXEL * w * h * RATE)
    if storage.startswith("crf"):
        return "libx264", {"crf": storage[3:], "preset": "medium"}, None
    raise SystemExit(f"unknown storage {storage!r}: lossless, crfN or mpeg2")


def write_lr(hr: list[np.ndarray], scale: int, storage: str, dst: Path) -> Path:
    """Downscale the HR frames with swscale's bicubic in YUV and store them as ``storage``."""
    h, w = hr[0].shape[:2]
    lr_size = (w // scale, h // scale)
    codec, options, bit_rate = _encoder(storage, lr_size)
    with av.open(str(dst), "w") as out:
        stream = out.add_stream(codec, rate=RATE, options=options)
        stream.width, stream.height, stream.pix_fmt = lr_size[0], lr_size[1], "yuv420p"
        stream.codec_context.time_base = Fraction(1, RATE)
        if bit_rate:
            stream.codec_context.bit_rate = bit_rate
        for i, rgb in enumerate(hr):
            full = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            small = full.reformat(width=lr_size[0], height=lr_size[1], interpolation="BICUBIC")
            small.pts, small.time_base = i, Fraction(1, RATE)
            out.mux(stream.encode(small))
        out.mux(stream.encode())
    return dst


def read_output(path: Path) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The output's Y planes (uint8 codes) and RGB frames."""
    ys, rgbs = [], []
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            h = frame.height
            ys.append(frame.to_ndarray(format="yuv420p")[:h].copy())
            rgbs.append(frame.to_ndarray(format="rgb24"))
    return ys, rgbs


def temporal_error(sr: list[np.ndarray], hr: list[np.ndarray]) -> float:
    """Mean |(SR_t - SR_{t-1}) - (HR_t - HR_{t-1})| over t >= 1, in codes (float64)."""
    errors = []
    for t in range(1, len(sr)):
        d_sr = sr[t].astype(np.float64) - sr[t - 1]
        d_hr = hr[t].astype(np.float64) - hr[t - 1]
        errors.append(float(np.abs(d_sr - d_hr).mean()))
    return statistics.fmean(errors) if errors else 0.0


class Vgg:
    """VGG16 relu2_2 feature distance on uint8 RGB frames (None without the weights)."""

    def __init__(self) -> None:
        from vidsr.errors import ModelError
        from vidsr.training.losses import VGGFeatureLoss

        weights = SHARED / "weights" / "vgg16_caffe_imagenet_conv1_1-conv3_3.npz"
        try:
            self.loss: torch.nn.Module | None = VGGFeatureLoss(
                weights if weights.exists() else None
            )
        except (ModelError, OSError) as e:  # the benchmark still runs; the column says "-"
            print(f"VGG distance off: {e}", file=sys.stderr)
            self.loss = None

    def __call__(self, sr: list[np.ndarray], hr: list[np.ndarray]) -> float | None:
        if self.loss is None:
            return None
        values = []
        with torch.inference_mode():
            for a, b in list(zip(sr, hr))[::5]:
                ta = torch.from_numpy(a).permute(2, 0, 1)[None].float() / 255
                tb = torch.from_numpy(b).permute(2, 0, 1)[None].float() / 255
                values.append(float(self.loss(ta, tb)) / 1000)
        return statistics.fmean(values)


def run_method(
    method: str, lr: Path, dst: Path, scale: int, threads: int | None = None
) -> tuple[float, str]:
    """Upscale ``lr`` with ``method`` through vidsr's pipeline (``threads`` CPU model
    workers, ``None``: vidsr's default); returns the run's fps and the weights it used
    (clean or compressed)."""
    name, _, content = method.partition("@")
    fields = {f.name for f in dataclasses.fields(RunConfig)}
    extra = {"content": content} if content else {}
    if content and "content" not in fields:
        raise SystemExit(f"{method}: this vidsr has no content choice")
    config = RunConfig(
        model=name, scale=scale, colour="off", overwrite=True, cpu_workers=threads, **extra
    )
    config = dataclasses.replace(config, encode=dataclasses.replace(config.encode, codec="ffv1"))
    summary = upscale_video(lr, dst, config)
    return summary.fps, getattr(summary, "content", "")


def score(
    method: str,
    lr: Path,
    hr: list[np.ndarray],
    scale: int,
    vgg: Vgg,
    tmp: Path,
    threads: int | None = None,
) -> Score:
    out = tmp / "sr.mkv"
    fps, weights = run_method(method, lr, out, scale, threads)
    sr_y, sr_rgb = read_output(out)
    if len(sr_y) != len(hr):
        raise SystemExit(f"{method}: {len(sr_y)} frames out of {len(hr)}")
    hr_y = [rgb_to_y(f) for f in hr]
    sr_y = [shave(f, scale) for f in sr_y]
    hr_y = [shave(f, scale) for f in hr_y]
    mse = [float(np.mean((a.astype(np.float64) - b) ** 2)) for a, b in zip(sr_y, hr_y)]
    psnr = statistics.fmean(10 * np.log10(255.0**2 / max(m, 1e-10)) for m in mse)
    return Score(
        psnr=psnr,
        ssim=statistics.fmean(ssim(a, b) for a, b in zip(sr_y, hr_y)),
        temporal=temporal_error(sr_y, hr_y),
        vgg=vgg([shave(f, scale) for f in sr_rgb], [shave(f, scale) for f in hr]),
        fps=fps,
        weights=weights,
    )


def mean_scores(scores: list[Score]) -> Score:
    vggs = [s.vgg for s in scores if s.vgg is not None]
    return Score(
        psnr=statistics.fmean(s.psnr for s in scores),
        ssim=statistics.fmean(s.ssim for s in scores),
        temporal=statistics.fmean(s.temporal for s in scores),
        vgg=statistics.fmean(vggs) if vggs else None,
        fps=statistics.median(s.fps for s in scores),
        weights="/".join(sorted({s.weights for s in scores if s.weights})),
    )


def table(results: dict, methods: list[str], storages: list[str], scale: int) -> str:
    lines = [f"x{scale}: Y-PSNR dB / SSIM / temporal error / VGG (k) / fps, mean over clips"]
    head = f"{'method':<28}" + "".join(f"{s:>44}" for s in storages)
    lines.append(head)
    for m in methods:
        cells = []
        for s in storages:
            r = results[scale][s][m]
            vgg = f"{r.vgg:5.1f}" if r.vgg is not None else "-"
            chose = f" [{r.weights[:5]}]" if m.endswith("@auto") else ""
            cells.append(
                f"{r.psnr:6.2f} / {r.ssim:.4f} / {r.temporal:5.2f} / {vgg} / {r.fps:4.1f}{chose}"
            )
        label = Path(m).stem if "/" in m else m
        lines.append(f"{label:<28}" + "".join(f"{c:>44}" for c in cells))
    return "\n".join(lines)


def _positive(text: str) -> int:
    """An argparse type: an integer >= 1 (a clear usage error otherwise)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--clip",
        action="append",
        type=Path,
        default=[],
        help="HR video (repeatable); default: the four Vid4 clips",
    )
    p.add_argument("--frames", type=int, default=30, help="frames per clip (default 30)")
    p.add_argument("--scales", type=int, nargs="+", default=[4])
    p.add_argument(
        "--storages",
        nargs="+",
        default=None,
        help="lossless, crfN, mpeg2 (default: lossless, crf 18/23/28/33, mpeg2)",
    )
    p.add_argument("--crfs", type=int, nargs="+", default=[18, 23, 28, 33])
    p.add_argument(
        "--methods",
        default="bicubic,lanczos,fast",
        help="comma-separated model names, weights files or NAME@CONTENT",
    )
    p.add_argument(
        "--threads",
        type=_positive,
        default=None,
        help="CPU model workers (default: vidsr's, one per core); 1 leaves a core free",
    )
    p.add_argument("--json", type=Path, help="also write every score here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    clips = args.clip or sorted(VID4.glob("*.mkv"))
    if not clips:
        raise SystemExit(f"no clips: give --clip, or put Vid4 in {VID4}")
    storages = args.storages or ["lossless", *(f"crf{c}" for c in args.crfs), "mpeg2"]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    print(banner())
    print(f"clips: {', '.join(c.stem for c in clips)}; {args.frames} frames each")
    vgg = Vgg()
    results: dict = {}
    for scale in args.scales:
        per: dict = {s: {m: [] for m in methods} for s in storages}
        for clip in clips:
            hr = read_hr(clip, args.frames, scale)
            with tempfile.TemporaryDirectory(prefix="vidsr-realworld-") as tmp:
                for storage in storages:
                    lr = write_lr(hr, scale, storage, Path(tmp) / f"lr_{storage}.mkv")
                    for m in methods:
                        per[storage][m].append(
                            score(m, lr, hr, scale, vgg, Path(tmp), args.threads)
                        )
        results[scale] = {s: {m: mean_scores(v) for m, v in d.items()} for s, d in per.items()}
        print(table(results, methods, storages, scale), flush=True)
    if args.json:
        plain = {
            str(sc): {s: {m: dataclasses.asdict(r) for m, r in d.items()} for s, d in v.items()}
            for sc, v in results.items()
        }
        args.json.write_text(json.dumps(plain, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
