"""The speed options keep behaviour: batches in flight, --compile, --hwaccel, NVENC options."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import make_video, read_frames, run_cli

from vidsr.config import EncodeConfig, RunConfig
from vidsr.engine.transfer import PendingBatch
from vidsr.errors import OptionError
from vidsr.media.hwaccel import nvdec_problem, nvenc_problem, plan_hardware
from vidsr.media.planes import HostFrame
from vidsr.media.probe import probe
from vidsr.media.sinks import plan_output
from vidsr.pipeline.runner import run_stages
from vidsr.pipeline.video import upscale_video

# ---------------------------------------------------------------- batches in flight


class _DeferredProcessor:
    """Acts like the CUDA processor: ``submit`` returns before the result exists. Records
    the order of submits and collects, and marks each output plane with its frame index."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def submit(self, frames: list[HostFrame]) -> PendingBatch:
        first = frames[0].index
        self.events.append(f"submit {first}")

        def collect() -> list:
            self.events.append(f"collect {first}")
            return [tuple(np.full((2, 2), f.index, np.uint8) for _ in range(3)) for f in frames]

        return PendingBatch(collect)


class _ListSink:
    def __init__(self) -> None:
        self.frames: list[tuple[int, int]] = []
        self.packets: list[int] = []

    def open(self) -> None: ...
    def close(self) -> None: ...

    def write_frame(self, planes, frame: HostFrame) -> None:
        self.frames.append((int(planes[0][0, 0]), frame.index))

    def mux_packet(self, stream_index: int, packet) -> None:
        self.packets.append(stream_index)


def test_in_flight_batches_keep_order_and_the_last_partial_batch() -> None:
    frames = [HostFrame(i, i, 1, (np.zeros((2, 2), np.uint8),) * 3) for i in range(7)]

    def items(stop: threading.Event):
        yield from frames

    processor, sink = _DeferredProcessor(), _ListSink()
    run_stages(items, processor, sink, batch_size=3, queue_size=2)
    assert sink.frames == [(i, i) for i in range(7)]  # each output with its own frame, all 7
    # batch k+1 is submitted before batch k is collected (the overlap), none collected twice
    assert processor.events == [
        "submit 0",
        "submit 3",
        "collect 0",
        "submit 6",
        "collect 3",
        "collect 6",
    ]


# ---------------------------------------------------------------- --compile


def test_compiled_model_gives_the_same_video(tmp_path: Path) -> None:
    """torch.compile (inductor, CPU) must not change the output beyond float noise:
    at most 1 code, from a different summation order."""
    src = make_video(tmp_path / "in.mkv", n=3, size=(40, 32), codec="ffv1", pix_fmt="yuv444p")
    outputs = []
    for compiled in (False, True):
        dst = tmp_path / f"out_{compiled}.mkv"
        upscale_video(
            src,
            dst,
            RunConfig(
                model="fast",
                scale=2,
                device="cpu",
                colour="off",
                compile=compiled,
                encode=EncodeConfig(codec="ffv1", pix_fmt="yuv444p"),
            ),
        )
        outputs.append([f.to_ndarray().astype(int) for f in read_frames(dst)])
    assert len(outputs[1]) == 3
    for plain, compiled in zip(*outputs):
        assert np.abs(plain - compiled).max() <= 1


# ---------------------------------------------------------------- --hwaccel and NVENC


def _no_nvdec(path: Path) -> bool:
    return nvdec_problem(path, probe(path).stream_index) is not None


@pytest.mark.slow
def test_hwaccel_auto_falls_back_to_software_and_says_so(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", n=4)
    if not _no_nvdec(src) or nvenc_problem("h264_nvenc", 128, 96) is None:
        pytest.skip("this machine has NVDEC/NVENC: the fallback cannot be seen here")
    plan = plan_hardware("auto", src, 0, None, 128, 96)
    assert (plan.hw_decode, plan.encoder) == (False, "libx264")
    assert plan.decode_note and plan.encode_note
    assert (
        plan_hardware("auto", src, 0, "ffv1", 128, 96).encoder == "ffv1"
    )  # an explicit --codec is kept
    result = run_cli(
        "upscale",
        str(src),
        "-o",
        str(tmp_path / "out.mp4"),
        "--model",
        "bicubic",
        "--hwaccel",
        "auto",
    )
    assert result.returncode == 0, result.stderr
    assert "software decode, libx264" in result.stdout
    assert len(read_frames(tmp_path / "out.mp4")) == 4


@pytest.mark.slow
def test_hwaccel_cuda_without_nvdec_is_one_line(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", n=2)
    if not _no_nvdec(src):
        pytest.skip("this machine has NVDEC")
    result = run_cli("upscale", str(src), "--model", "bicubic", "--hwaccel", "cuda")
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "hardware decoding is not available" in lines[0]
    assert not (tmp_path / "in_x2.mp4").exists()


def test_hwaccel_none_never_tries_the_hardware(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = make_video(tmp_path / "in.mp4", n=2)

    def tried(*_args) -> str:
        raise AssertionError("hardware probed with --hwaccel none")

    monkeypatch.setattr("vidsr.media.hwaccel.nvdec_problem", tried)
    monkeypatch.setattr("vidsr.media.hwaccel.nvenc_problem", tried)
    summary = upscale_video(src, tmp_path / "out.mp4", RunConfig(model="bicubic", device="cpu"))
    assert (summary.decoder, summary.encoder) == ("software", "libx264")


def test_unknown_hwaccel_mode_is_refused() -> None:
    with pytest.raises(OptionError, match="--hwaccel"):
        RunConfig(hwaccel="vaapi")


def test_crf_becomes_nvenc_constant_quality(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", n=1)
    info = probe(src)
    nvenc = plan_output(info, tmp_path / "o.mp4", EncodeConfig(codec="h264_nvenc", crf=21), 2)
    assert (
        nvenc.options["cq"] == "21" and nvenc.options["rc"] == "vbr" and "crf" not in nvenc.options
    )
    x264 = plan_output(info, tmp_path / "o.mp4", EncodeConfig(crf=21), 2)
    assert x264.codec == "libx264" and x264.options["crf"] == "21"


# ---------------------------------------------------------------- CPU model workers


@pytest.mark.parametrize("model", ["fast", "bicubic"])
def test_cpu_workers_give_the_same_video(tmp_path: Path, model: str) -> None:
    """Two CPU workers run batches side by side; frames, timestamps and the per-shot
    colour matching (which must see batches in order) come out as with one worker."""
    src = make_video(tmp_path / "in.mkv", n=9, size=(48, 32), codec="ffv1", pix_fmt="yuv444p")
    outputs = []
    for workers in (1, 2):
        dst = tmp_path / f"w{workers}.mkv"
        upscale_video(
            src,
            dst,
            RunConfig(
                model=model,
                device="cpu",
                cpu_workers=workers,
                batch_size=2,
                colour="shot",
                encode=EncodeConfig(codec="ffv1", pix_fmt="yuv444p"),
            ),
        )
        outputs.append(read_frames(dst))
    assert len(outputs[1]) == 9
    for a, b in zip(*outputs):
        assert a.pts == b.pts
        assert np.array_equal(a.to_ndarray(), b.to_ndarray())


def test_cli_cpu_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    from vidsr.device import cpu_workers_for

    monkeypatch.setattr("os.cpu_count", lambda: 6)
    assert cpu_workers_for("cpu", None) == 6
    assert cpu_workers_for("cpu", 3) == 3
    with pytest.raises(OptionError):
        cpu_workers_for("cpu", 0)


def test_cuda_batches_fit_the_free_memory() -> None:
    from vidsr.pipeline.planning import CUDA_BYTES_PER_PIXEL, auto_batch_size

    hd = (1920, 1080)
    assert auto_batch_size(*hd, on_cuda=True) == 3  # 8 M pixels per call
    plenty = auto_batch_size(*hd, on_cuda=True, free_bytes=80 * 2**30)
    scarce = auto_batch_size(*hd, on_cuda=True, free_bytes=2 * 1920 * 1080 * CUDA_BYTES_PER_PIXEL)
    assert (plenty, scarce) == (3, 1)
    assert auto_batch_size(*hd, on_cuda=True, free_bytes=0) == 1  # never below one frame


def test_tiled_luma_frames_reach_the_model_only_as_tiles() -> None:
    """With tiles, the luma plane is cut on the host and each tile uploaded alone; the
    whole plane is uploaded only as the colour stage's reference. Output = untiled."""
    import torch

    from vidsr.colour.convert import YuvFormat
    from vidsr.engine.processor import FrameProcessor, PlaneFormats, ProcessorOptions
    from vidsr.engine.upscaler import load_model

    fmt = YuvFormat(1, False, 8)
    rng = np.random.default_rng(0)
    planes = (
        rng.integers(16, 235, (48, 64), dtype=np.uint8),
        rng.integers(16, 240, (24, 32), dtype=np.uint8),
        rng.integers(16, 240, (24, 32), dtype=np.uint8),
    )
    frames = [HostFrame(0, 0, 1, planes)]
    model = load_model("fast", 2)
    formats = PlaneFormats(fmt, fmt, "yuv420p")
    whole = FrameProcessor(model, torch.device("cpu"), formats).process(frames)[0]
    tiled = FrameProcessor(model, torch.device("cpu"), formats, ProcessorOptions(tile=24))
    tiles, uploads = [], []
    real_tile, real_upload = tiled._tile_from_host, tiled.uploader.upload
    tiled._tile_from_host = lambda t: (tiles.append(tuple(t.shape)), real_tile(t))[1]
    tiled.uploader.upload = lambda arrays: (uploads.append(arrays[0].shape), real_upload(arrays))[1]
    out = tiled.process(frames)[0]
    assert len(tiles) == 6 and all(h < 48 or w < 64 for _, _, h, w in tiles)
    assert uploads == [
        (24, 32)
    ]  # chroma only: no colour stage, so the luma plane never went up whole
    for a, b in zip(whole, out):
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1


def test_queues_hold_fewer_frames_when_frames_are_huge() -> None:
    from vidsr.pipeline.planning import bounded_queue_size

    assert bounded_queue_size(16, 1280, 720, 8) == 16
    assert bounded_queue_size(16, 7680, 4320, 8) == 5  # 8K output: 50 MB a frame
    assert bounded_queue_size(16, 7680, 4320, 10) == 2
    assert bounded_queue_size(1, 1280, 720, 8) == 1  # a smaller request is kept


# ---------------------------------------------------------------- start-up and the 8-bit kernel


def test_pipeline_import_leaves_the_compiler_out() -> None:
    """Importing the video pipeline must not import ``torch._dynamo`` (about 3 s of CPU at
    start-up on a 2-core VM); ``--compile`` imports it when it compiles."""
    import subprocess
    import sys

    code = "import sys, vidsr.pipeline.video; print('torch._dynamo' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("kernel", ["bicubic", "lanczos"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_integer_kernel_is_the_float_kernel_rounded(kernel: str, scale: int) -> None:
    """The 8-bit path (vertical pass first, phases interleaved by ``cv2.merge``) gives the
    float path's plane, clipped, within rounding plus its 4-bit intermediate (0.5 +
    1.1875 / 32 = 0.54 codes for bicubic; measured 0.526-0.542 for both kernels), on an odd
    sized plane with detail up to the edges. A wrong phase order or interleave is off by
    tens of codes."""
    import torch

    from vidsr.models.baselines import PolyphaseUpsampler

    rng = np.random.default_rng(scale)
    yy, xx = np.mgrid[0:37, 0:53]
    texture = 127 + 100 * np.sin(xx / 3.0) * np.cos(yy / 2.0) + rng.normal(0, 20, yy.shape)
    plane = np.clip(texture, 0, 255).astype(np.uint8)
    net = PolyphaseUpsampler(scale, kernel)
    got = net.upsample_u8(plane)
    assert got.shape == (37 * scale, 53 * scale) and got.dtype == np.uint8
    with torch.inference_mode():
        ref = net(torch.from_numpy(plane.astype(np.float32))[None, None])[0, 0].numpy()
    assert np.abs(got - np.clip(ref, 0, 255)).max() <= 0.55
