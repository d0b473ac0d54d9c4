"""Throughput of the vidsr pipeline against its physical floor, in one run.

Measures, on the same input and encoder settings:
  1. decode -> resize -> encode with PyAV alone (swscale bicubic; what an FFmpeg user runs),
  2. decode alone, and encode alone at the output size,
  3. vidsr with the ``bicubic`` model,
  4. the model forward pass alone on pre-loaded tensors, and vidsr end to end with it,
  5. peak resident memory of vidsr on a clip and on one 10x longer (subprocesses).

vidsr runs as the command line runs it: on the CPU with one model worker per core
(``--threads``), each with one torch thread; the model-alone figure is the faster of one
call with all cores' threads and that many one-thread workers side by side.

Usage: python benchmarks/throughput.py [--size 640x360] [--frames 100] [--model fast]
       [--repeats 3] [--device auto|cpu|cuda] [--threads N] [--compile] [--preset veryfast]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import banner, median_time, render_clip  # noqa: E402

from vidsr.config import EncodeConfig, RunConfig  # noqa: E402
from vidsr.engine.upscaler import load_model  # noqa: E402
from vidsr.pipeline.video import upscale_video  # noqa: E402


def ffmpeg_style(src: Path, dst: Path, scale: int, encode: EncodeConfig) -> int:
    """decode -> swscale bicubic resize -> encode, single loop, PyAV threads on."""
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vin.thread_type = "AUTO"
        vout = out.add_stream(encode.codec, rate=vin.average_rate, options=_options(encode))
        vout.width, vout.height, vout.pix_fmt = vin.width * scale, vin.height * scale, "yuv420p"
        vout.codec_context.time_base = vin.time_base
        vout.codec_context.thread_type = "AUTO"
        n = 0
        for frame in inp.decode(vin):
            big = frame.reformat(
                width=vout.width, height=vout.height, format="yuv420p", interpolation="BICUBIC"
            )
            big.pts, big.time_base = frame.pts, frame.time_base
            out.mux(vout.encode(big))
            n += 1
        out.mux(vout.encode())
    return n


def one_frame_at_a_time(
    src: Path, dst: Path, model_name: str, scale: int, encode: EncodeConfig
) -> int:
    """The loop popular video scripts use (Real-ESRGAN's inference_realesrgan_video.py):
    decode a frame to RGB on the host, run the model on it alone, wait for the result,
    convert back and encode, all on one thread."""
    model = load_model(model_name, scale).eval()
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        vout = out.add_stream(encode.codec, rate=vin.average_rate, options=_options(encode))
        vout.width, vout.height, vout.pix_fmt = vin.width * scale, vin.height * scale, "yuv420p"
        n = 0
        for frame in inp.decode(vin):
            rgb = (
                torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)[None].float()
                / 255
            )
            with torch.inference_mode():
                if model.colour == "luma":  # Y through the model, chroma bicubic: as vidsr does
                    ycc = rgb_to_ycc(rgb)
                    y = model(ycc[:, :1])
                    cc = torch.nn.functional.interpolate(
                        ycc[:, 1:], scale_factor=scale, mode="bicubic"
                    )
                    sr = ycc_to_rgb(torch.cat([y, cc], 1))
                else:
                    sr = model(rgb)
            img = (sr[0].permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()
            big = av.VideoFrame.from_ndarray(img, format="rgb24")
            big.pts = n
            out.mux(vout.encode(big))
            n += 1
        out.mux(vout.encode())
    return n


def rgb_to_ycc(rgb: torch.Tensor) -> torch.Tensor:
    from vidsr.colour.convert import YuvFormat, rgb_to_yuv

    y, uv = rgb_to_yuv(rgb, YuvFormat(6, False, 8))
    return torch.cat([y, uv], 1)


def ycc_to_rgb(ycc: torch.Tensor) -> torch.Tensor:
    from vidsr.colour.convert import YuvFormat, yuv_to_rgb

    return yuv_to_rgb(ycc[:, :1], ycc[:, 1:], YuvFormat(6, False, 8))


def decode_only(src: Path) -> int:
    with av.open(str(src)) as inp:
        inp.streams.video[0].thread_type = "AUTO"
        return sum(1 for _ in inp.decode(video=0))


def encode_only(
    frames: list[av.VideoFrame], dst: Path, encode: EncodeConfig, rate: Fraction
) -> int:
    with av.open(str(dst), "w") as out:
        v = out.add_stream(encode.codec, rate=rate, options=_options(encode))
        v.width, v.height, v.pix_fmt = frames[0].width, frames[0].height, "yuv420p"
        v.codec_context.thread_type = "AUTO"
        for i, f in enumerate(frames):
            f.pts = i
            out.mux(v.encode(f))
        out.mux(v.encode())
    return len(frames)


def _options(encode: EncodeConfig) -> dict[str, str]:
    opts = {}
    if encode.crf is not None:
        opts["crf"] = str(encode.crf)
    if encode.preset is not None:
        opts["preset"] = encode.preset
    return opts


def model_only(
    model_name: str,
    scale: int,
    size: tuple[int, int],
    frames: int,
    device: torch.device,
    workers: int = 1,
    compile_model: bool = False,
) -> float:
    """Frames per second of the model forward alone on pre-loaded tensors on ``device``,
    with the batch size and tiling the pipeline itself chooses for this frame size. On
    the CPU, ``workers`` threads run calls side by side (as the pipeline's workers do);
    on CUDA, under the pipeline's autocast, synchronised at the end."""
    from concurrent.futures import ThreadPoolExecutor

    from vidsr.device import autocast_dtype, inference_context
    from vidsr.engine.tiling import tiled_apply
    from vidsr.pipeline.planning import auto_batch_size, auto_tile

    model = load_model(model_name, scale).eval().to(device).to(memory_format=torch.channels_last)
    net = torch.compile(model, dynamic=True) if compile_model else model
    cuda = device.type == "cuda"
    batch = auto_batch_size(*size, on_cuda=cuda, learned=model.family != "baseline")
    tile = auto_tile(*size, None, device, model)
    half = autocast_dtype(device, model.supports_half)
    inputs = [
        torch.rand(batch, model.in_channels, size[1], size[0], device=device)
        for _ in range(workers)
    ]

    def forward(x: torch.Tensor) -> None:
        with torch.inference_mode(), inference_context(device, half):
            if tile:
                tiled_apply(net, x, scale, tile, max(model.receptive_radius, 4))
            else:
                net(x)

    calls = max(workers, frames // batch)
    with ThreadPoolExecutor(workers) as pool:

        def run_all() -> None:
            list(pool.map(forward, [inputs[i % workers] for i in range(calls)]))
            if cuda:
                torch.cuda.synchronize()

        run_all()  # warm-up (and compilation)
        t, _ = median_time(run_all, 1)
    return calls * batch / t


def peak_rss_mb(src: Path, model: str, scale: int) -> float:
    """Peak resident memory (MB) of a vidsr run in a fresh subprocess."""
    code = (
        "import resource,sys;from vidsr.pipeline.video import upscale_video;from vidsr.config "
        "import RunConfig;"
        f"upscale_video(sys.argv[1], sys.argv[2], RunConfig(model={model!r}, scale={scale}, "
        "device='cpu', overwrite=True));"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(src), str(src.with_suffix(".mem.mp4"))],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--size", default="640x360")
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--scale", type=int, default=2)
    p.add_argument(
        "--model", default=None, help="learned model to measure (default: fast if shipped)"
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--preset", default="veryfast")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    p.add_argument("--device", default="auto")
    p.add_argument(
        "--threads", type=int, default=None, help="CPU model workers (default: one per core)"
    )
    p.add_argument(
        "--compile", action="store_true", help="also measure the model under torch.compile"
    )
    args = p.parse_args()
    from vidsr.device import cpu_workers_for, resolve_device

    device = resolve_device(args.device)
    workers = cpu_workers_for(args.device, args.threads)
    cores = torch.get_num_threads()
    w, h = (int(v) for v in args.size.split("x"))
    encode = EncodeConfig(codec="libx264", crf=23, preset=args.preset)
    from vidsr.engine.upscaler import default_model

    learned = args.model or default_model(args.scale)
    print(banner())
    print(
        f"input {w}x{h} x{args.scale} -> {w * args.scale}x{h * args.scale}, {args.frames} frames, "
        f"libx264 crf 23 preset {args.preset}, medians of {args.repeats} runs, device {device}"
        + (f", {workers} CPU model workers x 1 thread" if workers else "")
    )
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        src = render_clip(tmpd / "in.mp4", args.frames, (w, h))
        n = args.frames

        t, _ = median_time(
            lambda: ffmpeg_style(src, tmpd / "ff.mp4", args.scale, encode), args.repeats
        )
        results["decode_resize_encode_fps"] = n / t
        t, _ = median_time(lambda: decode_only(src), args.repeats)
        results["decode_only_fps"] = n / t
        with av.open(str(src)) as inp:
            big = [
                f.reformat(width=w * args.scale, height=h * args.scale, format="yuv420p")
                for f in inp.decode(video=0)
            ]
        t, _ = median_time(
            lambda: encode_only(big, tmpd / "enc.mp4", encode, Fraction(25)), args.repeats
        )
        results["encode_only_fps"] = n / t
        big.clear()  # the frames are big at 4K; the list is not used again

        def vidsr_run(model: str, colour: str = "off", compile_model: bool = False) -> None:
            if workers:
                torch.set_num_threads(1)  # as the CLI does on the CPU
            try:
                upscale_video(
                    src,
                    tmpd / f"v_{model}.mp4",
                    RunConfig(
                        model=model,
                        scale=args.scale,
                        device=str(device),
                        overwrite=True,
                        colour=colour,
                        encode=encode,
                        cpu_workers=workers,
                        compile=compile_model,
                    ),
                )
            finally:
                torch.set_num_threads(cores)

        t, _ = median_time(lambda: vidsr_run("bicubic"), args.repeats)
        results["vidsr_bicubic_fps"] = n / t
        if learned != "bicubic":
            key = f"model_only_{learned}_fps"
            results[key] = model_only(learned, args.scale, (w, h), n, device)
            if workers and workers > 1:
                torch.set_num_threads(1)
                side_by_side = model_only(learned, args.scale, (w, h), n, device, workers)
                torch.set_num_threads(cores)
                print(
                    f"model alone: {results[key]:.1f} fps as one call with {cores} threads, "
                    f"{side_by_side:.1f} fps as {workers} one-thread workers"
                )
                results[key] = max(results[key], side_by_side)
            t, _ = median_time(lambda: vidsr_run(learned), args.repeats)
            results[f"vidsr_{learned}_fps"] = n / t
            t, _ = median_time(
                lambda: one_frame_at_a_time(src, tmpd / "loop.mp4", learned, args.scale, encode),
                args.repeats,
            )
            results[f"one_frame_loop_{learned}_fps"] = n / t
            t, _ = median_time(lambda: vidsr_run(learned, colour="shot"), args.repeats)
            results[f"vidsr_{learned}_colour_shot_fps"] = n / t
            if args.compile:
                results[f"model_only_{learned}_compiled_fps"] = model_only(
                    learned, args.scale, (w, h), n, device, compile_model=True
                )
                vidsr_run(learned, compile_model=True)  # compile once; later runs reuse the cache
                t, _ = median_time(lambda: vidsr_run(learned, compile_model=True), args.repeats)
                results[f"vidsr_{learned}_compiled_fps"] = n / t

        if not args.skip_memory:
            long_src = render_clip(tmpd / "long.mp4", args.frames * 10, (w, h))
            results["peak_rss_mb_short"] = peak_rss_mb(src, "bicubic", args.scale)
            results["peak_rss_mb_10x_longer"] = peak_rss_mb(long_src, "bicubic", args.scale)

    for key, value in results.items():
        print(f"{key:>36}: {value:8.1f}")
    ratio = results["vidsr_bicubic_fps"] / results["decode_resize_encode_fps"]
    print(f"{'vidsr bicubic / decode-resize-encode':>36}: {ratio:8.1%}")
    if learned != "bicubic":
        floor = min(results["decode_resize_encode_fps"], results[f"model_only_{learned}_fps"])
        print(
            f"{'vidsr ' + learned + ' / slowest stage':>36}: "
            f"{results[f'vidsr_{learned}_fps'] / floor:8.1%}"
        )
        if device.type == "cpu":
            # On the CPU the stages share the cores, so they cannot all run at full speed
            # at once: the best possible is when the cores never idle, 1 / (1/a + 1/b).
            shared = 1 / (
                1 / results["decode_resize_encode_fps"] + 1 / results[f"model_only_{learned}_fps"]
            )
            print(
                f"{'cores-shared ceiling':>36}: {shared:8.1f} fps ({shared / floor:.1%} of the "
                "slowest stage); "
                f"vidsr reaches {results[f'vidsr_{learned}_fps'] / shared:.1%} of it"
            )
    if "peak_rss_mb_short" in results:
        growth = results["peak_rss_mb_10x_longer"] / results["peak_rss_mb_short"] - 1
        print(f"{'peak memory growth, 10x longer':>36}: {growth:8.1%}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
