"""Cut detection precision/recall and the cost of detection + colour matching.

    .venv/bin/python benchmarks/cut_detection.py [--data ../shared/data] [--device cpu]

Test sets (ground-truth cuts known by construction):

a. the four Vid4 clips concatenated (calendar, city, foliage, walk; resized to 704x576):
   3 hard cuts;
b. pans (slow, fast, diagonal) and zooms cut out of the Set5 + Set14 still images: each
   sequence on its own (no cuts), and all of them concatenated (a cut at each join);
c. synthetic: hard cuts, single- and two-frame flashes, fade out/in, cross-dissolve.

A detected cut counts as correct when it falls on the true cut frame exactly. The
ablations switch off motion compensation (max_shift=0) and the flash checks
(flash_ratio=0), to show what each part buys.

Timing: thumbnail + detection per 1080p 4:2:0 frame (host numpy, as in the decode
thread), and ColourMatcher("shot") on a batch of 8 1080p outputs with a 960x540 source,
median of several runs.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from dataclasses import replace
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from vidsr.colour.matching import ColourMatcher
from vidsr.colour.shots import ShotConfig, ShotDetector, make_thumbnail

Frame = tuple[np.ndarray, np.ndarray, np.ndarray]  # Y, Cb, Cr uint8 planes, 4:2:0


def rgb_to_planes(rgb: np.ndarray) -> Frame:
    """RGB uint8 (H, W, 3), even H and W -> (Y, Cb, Cr) 4:2:0 planes (OpenCV's BT.601)."""
    h, w = rgb.shape[:2]
    i420 = cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420)
    y = i420[:h]
    chroma = i420[h:].reshape(2, h // 2, w // 2)
    return y, chroma[0], chroma[1]


def vid4_concat(data: Path) -> tuple[list[Frame], set[int]]:
    frames: list[Frame] = []
    cuts: set[int] = set()
    for name in ("calendar", "city", "foliage", "walk"):
        if frames:
            cuts.add(len(frames))
        with av.open(str(data / "video" / "Vid4" / f"{name}.mkv")) as container:
            for frame in container.decode(video=0):
                rgb = cv2.resize(
                    frame.to_ndarray(format="rgb24"), (704, 576), interpolation=cv2.INTER_AREA
                )
                frames.append(rgb_to_planes(rgb))
    return frames, cuts


def _camera(
    image: np.ndarray, n: int, kind: str, size: tuple[int, int] = (128, 176)
) -> list[Frame]:
    """Frames of a virtual camera moving over ``image`` (RGB); size (H, W)."""
    ih, iw = image.shape[:2]
    h, w = size
    out = []
    rng = np.random.default_rng(ih * iw)
    pos, vel = np.array([(ih - h) / 2, (iw - w) / 2]), np.zeros(2)
    for i in range(n):
        t = i / (n - 1)
        if kind == "shake":
            # handheld: a random walk of the velocity, with jitter, clipped to the image
            vel = 0.8 * vel + rng.normal(0, 3, 2)
            pos = np.clip(pos + vel + rng.normal(0, 1.5, 2), 0, [ih - h, iw - w])
            ch, cw = h, w
            y0, x0 = int(pos[0]), int(pos[1])
        elif kind == "zoom":
            scale = 1.0 - 0.5 * t  # zoom in to half the field of view
            ch, cw = int(ih * scale), int(ih * scale * w / h)
            cw = min(cw, iw)
            y0, x0 = (ih - ch) // 2, (iw - cw) // 2
        else:
            ch, cw = h, w
            dy, dx = {"pan": (0, 1), "fast_pan": (0, 1), "diagonal": (1, 1), "tilt": (1, 0)}[kind]
            y0 = int(t * (ih - ch)) if dy else (ih - ch) // 2
            x0 = int(t * (iw - cw)) if dx else (iw - cw) // 2
        crop = image[y0 : y0 + ch, x0 : x0 + cw]
        out.append(rgb_to_planes(cv2.resize(crop, (w, h), interpolation=cv2.INTER_AREA)))
    return out


def still_motion(data: Path) -> list[tuple[str, list[Frame]]]:
    """Pans and zooms over every Set5/Set14 image (n frames chosen per speed)."""
    sequences = []
    for path in sorted((data / "images").glob("Set*/*.png")):
        image = cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
        if min(image.shape[:2]) < 200:
            image = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
        for kind, n in (
            ("pan", 40),
            ("fast_pan", 12),
            ("diagonal", 30),
            ("tilt", 25),
            ("zoom", 30),
            ("shake", 40),
        ):
            sequences.append((f"{path.stem}:{kind}", _camera(image, n, kind)))
    return sequences


def synthetic() -> tuple[list[Frame], set[int]]:
    """Hard cuts, flashes, a fade out/in and a cross-dissolve on smooth random textures."""
    rng = np.random.default_rng(0)

    def picture() -> np.ndarray:
        small = rng.uniform(20, 235, (12, 16, 3)).astype(np.float32)
        return cv2.resize(small, (176, 128), interpolation=cv2.INTER_CUBIC)

    def noisy(image: np.ndarray) -> Frame:
        return rgb_to_planes(
            np.clip(image + rng.normal(0, 2, image.shape), 0, 255).astype(np.uint8)
        )

    frames: list[Frame] = []
    cuts: set[int] = set()
    a, b, c, d, e = (picture() for _ in range(5))
    frames += [noisy(a) for _ in range(20)]
    cuts.add(len(frames))
    frames += [noisy(b) for _ in range(8)]
    frames += [noisy(np.full_like(b, 250.0))]  # one-frame flash
    frames += [noisy(b) for _ in range(8)]
    frames += [noisy(np.clip(b * 1.8, 0, 255)) for _ in range(2)]  # two-frame flash
    frames += [noisy(b) for _ in range(8)]
    black = np.full_like(a, 16.0)
    frames += [noisy(b + (black - b) * t) for t in np.linspace(0, 1, 12)]  # fade out
    fade_in = [noisy(black + (c - black) * t) for t in np.linspace(0, 1, 12)]
    frames += fade_in + [noisy(c) for _ in range(15)]  # fade in: no cut counted
    cuts.add(len(frames))
    frames += [noisy(d) for _ in range(15)]
    frames += [noisy(d + (e - d) * t) for t in np.linspace(0, 1, 15)]  # cross-dissolve
    frames += [noisy(e) for _ in range(15)]
    return frames, cuts


def detect(frames: list[Frame], config: ShotConfig) -> set[int]:
    detector = ShotDetector(config)
    decided: list[tuple[int, bool]] = []
    for y, u, v in frames:
        decided += detector.push(make_thumbnail(y, u, v, thumb_size=config.thumb_size))
    decided += detector.flush()
    return {i for i, cut in decided if cut and i > 0}


def score(found: set[int], truth: set[int]) -> tuple[int, int, int]:
    hits = len(found & truth)
    return hits, len(found) - hits, len(truth) - hits


def fmt(tp: int, fp: int, fn: int) -> str:
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return f"precision {p:.3f}  recall {r:.3f}  (tp {tp}, fp {fp}, fn {fn})"


def median_ms(fn, runs: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def time_costs(device: torch.device, runs: int) -> float:
    """Print the costs; return thumbnail + detection + shot matching per frame, in ms."""
    rng = np.random.default_rng(0)
    y = rng.integers(16, 236, (1080, 1920), dtype=np.uint8)
    u = rng.integers(16, 241, (540, 960), dtype=np.uint8)
    detector = ShotDetector()
    for _ in range(8):
        detector.push(make_thumbnail(y, u, u))
    thumb_ms = median_ms(lambda: make_thumbnail(y, u, u), runs)
    push_ms = median_ms(lambda: detector.push(make_thumbnail(y, u, u)), runs)
    print(f"thumbnail per 1080p frame: {thumb_ms:.2f} ms; thumbnail + detection: {push_ms:.2f} ms")

    g = torch.Generator().manual_seed(0)
    ref_y = torch.rand(8, 1, 540, 960, generator=g).to(device)
    ref_uv = torch.rand(8, 2, 270, 480, generator=g).to(device)
    out_y = torch.rand(8, 1, 1080, 1920, generator=g).to(device)
    out_uv = torch.rand(8, 2, 540, 960, generator=g).to(device)
    flags = [False] * 8
    match_ms = {}
    for mode in ("frame", "shot"):
        matcher = ColourMatcher(mode)  # type: ignore[arg-type]
        matcher.apply(ref_y, ref_uv, out_y, out_uv, [True] + flags[1:])

        def step(matcher: ColourMatcher = matcher) -> None:
            matcher.apply(ref_y, ref_uv, out_y, out_uv, flags)
            if device.type == "cuda":
                torch.cuda.synchronize()

        ms = median_ms(step, runs)
        match_ms[mode] = ms / 8
        print(
            f"ColourMatcher({mode!r}) 1080p 4:2:0, batch 8: {ms:.1f} ms/batch = {ms / 8:.2f} "
            "ms/frame"
        )
    return push_ms + match_ms["shot"]


def time_models(names: list[str], device: torch.device, ours_ms: float) -> None:
    """Per-frame forward time of registry networks (random weights) at 960x540 -> 1080p."""
    from vidsr.models.registry import REGISTRY

    x = torch.rand(1, 1, 540, 960, device=device)
    for name in names:
        net = REGISTRY[name].build(2).eval().to(device)
        with torch.no_grad():
            ms = median_ms(lambda net=net: net(x), 3)
        share = ours_ms / (ms + ours_ms)
        print(
            f"model {name!r} x2 to 1080p (luma net only): {ms:.0f} ms/frame; "
            f"detection + shot matching = {share:.1%} of the two"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--skip-timing", action="store_true")
    parser.add_argument(
        "--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)"
    )
    parser.add_argument(
        "--models", default="fast,srcnn", help="registry models to time for context"
    )
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads > 0:
        # On a small, shared CPU, one thread can beat two: each op's thread barrier waits
        # for a core another process holds.
        torch.set_num_threads(args.threads)
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or "cpu"
    )
    print(
        f"device {device} ({name}); {torch.get_num_threads()} torch threads; python "
        f"{platform.python_version()}"
    )
    print(
        f"torch {torch.__version__}, PyAV {av.__version__}, numpy {np.__version__}, OpenCV "
        f"{cv2.__version__}"
    )
    base = ShotConfig()
    print(f"config {base}")

    vid4, vid4_cuts = vid4_concat(args.data)
    motion = still_motion(args.data)
    joined = [f for _, seq in motion for f in seq]
    joined_cuts, pos = set(), 0
    for _, seq in motion[:-1]:
        pos += len(seq)
        joined_cuts.add(pos)
    synth, synth_cuts = synthetic()
    variants = {
        "default": base,
        "no motion compensation (max_shift=0)": replace(base, max_shift=0),
        "no flash checks (flash_ratio=0)": replace(base, flash_ratio=0.0),
    }
    for label, config in variants.items():
        print(f"\n[{label}]")
        print(
            f"a. Vid4 concatenated ({len(vid4)} frames, 3 cuts): "
            f"{fmt(*score(detect(vid4, config), vid4_cuts))}"
        )
        false = [(n, sorted(detect(seq, config))) for n, seq in motion]
        n_frames = sum(len(seq) for _, seq in motion)
        bad = [(n, f) for n, f in false if f]
        print(
            f"b. {len(motion)} pans/zooms over Set5+Set14 ({n_frames} frames, no cuts): "
            f"{sum(len(f) for _, f in bad)} false cuts in {len(bad)} sequences {bad[:4]}"
        )
        print(
            f"b. the same concatenated ({len(joined_cuts)} cuts): "
            f"{fmt(*score(detect(joined, config), joined_cuts))}"
        )
        found = detect(synth, config)
        print(
            f"c. synthetic ({len(synth)} frames; cuts, flashes, fade, dissolve): "
            f"{fmt(*score(found, synth_cuts))}  found {sorted(found)} truth {sorted(synth_cuts)}"
        )
    if not args.skip_timing:
        print()
        ours = time_costs(device, args.runs)
        time_models([m for m in args.models.split(",") if m], device, ours)


if __name__ == "__main__":
    main()
