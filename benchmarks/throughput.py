"""Throughput of the vidsr pipeline against its physical floor, in one run.

Measures, on the same input and encoder settings:
  1. decode -> resize -> encode with PyAV alone (swscale bicubic; what an FFmpeg user runs),
  2. decode alone, and encode alone at the output size,
  3. vidsr with the ``bicubic`` model,
  4. the model forward pass alone on pre-loaded tensors, and vidsr end to end with it,
  5. peak resident memory of vidsr on a clip and on one 10x longer (subprocesses).

Usage: python benchmarks/throughput.py [--size 640x360] [--frames 100] [--model fast] [--repeats 3]
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
from vidsr.pipeline import upscale_video  # noqa: E402
from vidsr.upscaler import load_model  # noqa: E402


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
            big = frame.reformat(width=vout.width, height=vout.height, format="yuv420p", interpolation="BICUBIC")
            big.pts, big.time_base = frame.pts, frame.time_base
            out.mux(vout.encode(big))
            n += 1
        out.mux(vout.encode())
    return n


def one_frame_at_a_time(src: Path, dst: Path, model_name: str, scale: int, encode: EncodeConfig) -> int:
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
            rgb = torch.from_numpy(frame.to_ndarray(format="rgb24")).permute(2, 0, 1)[None].float() / 255
            with torch.inference_mode():
                if model.colour == "luma":  # Y through the model, chroma bicubic: as vidsr does
                    ycc = rgb_to_ycc(rgb)
                    y = model(ycc[:, :1])
                    cc = torch.nn.functional.interpolate(ycc[:, 1:], scale_factor=scale, mode="bicubic")
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
    from vidsr.colour import YuvFormat, rgb_to_yuv

    y, uv = rgb_to_yuv(rgb, YuvFormat(6, False, 8))
    return torch.cat([y, uv], 1)


def ycc_to_rgb(ycc: torch.Tensor) -> torch.Tensor:
    from vidsr.colour import YuvFormat, yuv_to_rgb

    return yuv_to_rgb(ycc[:, :1], ycc[:, 1:], YuvFormat(6, False, 8))


def decode_only(src: Path) -> int:
    with av.open(str(src)) as inp:
        inp.streams.video[0].thread_type = "AUTO"
        return sum(1 for _ in inp.decode(video=0))


def encode_only(frames: list[av.VideoFrame], dst: Path, encode: EncodeConfig, rate: Fraction) -> int:
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


def model_only(model_name: str, scale: int, size: tuple[int, int], frames: int) -> float:
    """Frames per second of the model forward alone on pre-loaded CPU tensors, with the
    batch size and tiling the pipeline itself chooses for this frame size."""
    from vidsr.pipeline import CPU_CACHE_TILE, auto_batch_size
    from vidsr.tiling import tiled_apply

    model = load_model(model_name, scale).eval()
    fake = type("Size", (), {"width": size[0], "height": size[1]})()
    batch = auto_batch_size(fake, on_cuda=False, learned=model.family != "baseline")  # type: ignore[arg-type]
    x = torch.rand(batch, model.in_channels, size[1], size[0])
    tile = CPU_CACHE_TILE if model.family != "baseline" and max(size) > CPU_CACHE_TILE else None

    def forward() -> None:
        if tile:
            tiled_apply(model, x, scale, tile, model.receptive_radius)
        else:
            model(x)

    calls = max(1, frames // batch)
    with torch.inference_mode():
        forward()  # warm-up
        t, _ = median_time(lambda: [forward() for _ in range(calls)], 1)
    return calls * batch / t


def peak_rss_mb(src: Path, model: str, scale: int) -> float:
    """Peak resident memory (MB) of a vidsr run in a fresh subprocess."""
    code = (
        "import resource,sys;from vidsr.pipeline import upscale_video;from vidsr.config import RunConfig;"
        f"upscale_video(sys.argv[1], sys.argv[2], RunConfig(model={model!r}, scale={scale}, device='cpu', overwrite=True));"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(src), str(src.with_suffix(".mem.mp4"))],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="640x360")
    p.add_argument("--frames", type=int, default=100)
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--model", default=None, help="learned model to measure (default: fast if shipped)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--preset", default="veryfast")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    encode = EncodeConfig(codec="libx264", crf=23, preset=args.preset)
    from vidsr.upscaler import default_model

    learned = args.model or default_model(args.scale)
    print(banner())
    print(f"input {w}x{h} x{args.scale} -> {w * args.scale}x{h * args.scale}, {args.frames} frames, "
          f"libx264 crf 23 preset {args.preset}, medians of {args.repeats} runs")
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmpd = Path(tmp)
        src = render_clip(tmpd / "in.mp4", args.frames, (w, h))
        n = args.frames

        t, _ = median_time(lambda: ffmpeg_style(src, tmpd / "ff.mp4", args.scale, encode), args.repeats)
        results["decode_resize_encode_fps"] = n / t
        t, _ = median_time(lambda: decode_only(src), args.repeats)
        results["decode_only_fps"] = n / t
        with av.open(str(src)) as inp:
            big = [f.reformat(width=w * args.scale, height=h * args.scale, format="yuv420p") for f in inp.decode(video=0)]
        t, _ = median_time(lambda: encode_only(big, tmpd / "enc.mp4", encode, Fraction(25)), args.repeats)
        results["encode_only_fps"] = n / t
        del big

        def vidsr_run(model: str) -> None:
            upscale_video(src, tmpd / f"v_{model}.mp4",
                          RunConfig(model=model, scale=args.scale, device="cpu", overwrite=True, colour="off", encode=encode))

        t, _ = median_time(lambda: vidsr_run("bicubic"), args.repeats)
        results["vidsr_bicubic_fps"] = n / t
        if learned != "bicubic":
            results[f"model_only_{learned}_fps"] = model_only(learned, args.scale, (w, h), n)
            t, _ = median_time(lambda: vidsr_run(learned), args.repeats)
            results[f"vidsr_{learned}_fps"] = n / t
            t, _ = median_time(lambda: one_frame_at_a_time(src, tmpd / "loop.mp4", learned, args.scale, encode), args.repeats)
            results[f"one_frame_loop_{learned}_fps"] = n / t
            t, _ = median_time(lambda: upscale_video(src, tmpd / "v_shot.mp4", RunConfig(
                model=learned, scale=args.scale, device="cpu", overwrite=True, colour="shot", encode=encode)), args.repeats)
            results[f"vidsr_{learned}_colour_shot_fps"] = n / t

        if not args.skip_memory:
            long_src = render_clip(tmpd / "long.mp4", args.frames * 10, (w, h))
            results["peak_rss_mb_short"] = peak_rss_mb(src, "bicubic", args.scale)
            results["peak_rss_mb_10x_longer"] = peak_rss_mb(long_src, "bicubic", args.scale)

    for key, value in results.items():
        print(f"{key:>36}: {value:8.1f}")
    ratio = results["vidsr_bicubic_fps"] / results["decode_resize_encode_fps"]
    print(f"{'vidsr bicubic / decode-resize-encode':>36}: {ratio:8.1%}")
    if learned != "bicubic":
        floor = min(results["decode_only_fps"], results["encode_only_fps"], results[f"model_only_{learned}_fps"])
        print(f"{'vidsr ' + learned + ' / slowest stage':>36}: {results[f'vidsr_{learned}_fps'] / floor:8.1%}")
    if "peak_rss_mb_short" in results:
        growth = results["peak_rss_mb_10x_longer"] / results["peak_rss_mb_short"] - 1
        print(f"{'peak memory growth, 10x longer':>36}: {growth:8.1%}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
