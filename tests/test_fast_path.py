"""Correctness locks for the optimised video path.

vidsr never converts a luma model's frames to RGB: the model gets the decoded Y plane,
the chroma planes are upscaled by the pipeline's bicubic, and everything is rounded to
integer planes for the encoder. These tests pin that path against the straightforward
one a plain script would take (decode to RGB, RGB -> YCbCr in float, model on Y,
bicubic chroma, back to RGB, round once), and check that batching and the overlap of
decode, compute and encode keep every frame, in order, with its own timestamp.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from conftest import frame_times, read_frames

import vidsr
from vidsr import EncodeConfig, RunConfig
from vidsr.models.baselines import resize_plane

WIDTH, HEIGHT = 64, 48
SCALE = 2
BT601 = 6  # AVCOL_PRI/TRC/SPC_SMPTE170M
FULL_RANGE = 2  # AVCOL_RANGE_JPEG: code = value * 255, chroma centred on 128
TIME_BASE = Fraction(1, 1000)

# Full-range BT.601 as a plain script writes it. Not OpenCV's COLOR_RGB2YCrCb pair: its
# 3-decimal constants (0.713, 0.564 forward; 1.403, 1.773 back) are not each other's
# inverse, which moves Y by up to 0.05 code on a round trip and would blur the bounds below.
_KR, _KB = 0.299, 0.114
_KG = 1.0 - _KR - _KB
RGB_TO_YCBCR = np.array(
    [
        [_KR, _KG, _KB],
        [-_KR / (2 * (1 - _KB)), -_KG / (2 * (1 - _KB)), 0.5],
        [0.5, -_KG / (2 * (1 - _KR)), -_KB / (2 * (1 - _KR))],
    ]
)
YCBCR_TO_RGB = np.linalg.inv(RGB_TO_YCBCR)
CHROMA_OFFSET = np.array([0.0, 0.5, 0.5])


def rgb_to_ycbcr(rgb: np.ndarray) -> np.ndarray:
    """``(..., 3)`` float RGB in [0, 1] to ``(..., 3)`` float ``(Y, Cb, Cr)`` in [0, 1]."""
    return (rgb.astype(np.float64) @ RGB_TO_YCBCR.T + CHROMA_OFFSET).astype(np.float32)


def ycbcr_to_rgb(ycbcr: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycbcr`; no clamping."""
    return ((ycbcr.astype(np.float64) - CHROMA_OFFSET) @ YCBCR_TO_RGB.T).astype(np.float32)


# -- test videos --------------------------------------------------------------------------


def pattern_rgb(index: int) -> np.ndarray:
    """``(H, W, 3)`` float32 RGB in [0.1, 0.9]: smooth (band-limited, nothing clips) but
    detailed (a zone plate up to about 0.3 cycles/pixel, diagonal gratings and a blob),
    with every component moving from frame to frame."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    cx, cy = WIDTH / 2 + 3 * index, HEIGHT / 2 - 2 * index
    r2 = (xx - cx) ** 2 + (yy - cy) ** 2
    zone = np.cos(np.pi * r2 / 110.0 + 0.7 * index)
    grating = np.sin(2 * np.pi * (xx * 0.11 + yy * 0.07) + 1.3 * index)
    blob = np.exp(-((xx - 10 - 6 * index) ** 2 + (yy - 30) ** 2) / 60.0)
    r = 0.5 + 0.25 * zone + 0.1 * grating
    g = 0.5 + 0.2 * grating - 0.15 * zone * blob
    b = 0.5 + 0.3 * blob - 0.1 * zone
    rgb = np.stack([r, g, b], axis=-1)
    assert 0.1 <= rgb.min() and rgb.max() <= 0.9
    return rgb.astype(np.float32)


def encode_planes(rgb: np.ndarray, subsampled: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-range BT.601 ``(Y, Cb, Cr)`` uint8 code planes of a float RGB picture;
    4:2:0 chroma is the mean of each 2x2 block (centre-sited)."""
    ycbcr = rgb_to_ycbcr(rgb)
    y, cb, cr = (ycbcr[..., i] for i in range(3))
    if subsampled:
        cb, cr = (
            cv2.resize(c, (WIDTH // 2, HEIGHT // 2), interpolation=cv2.INTER_AREA) for c in (cb, cr)
        )
    return tuple(np.clip(np.rint(p * 255.0), 0, 255).astype(np.uint8) for p in (y, cb, cr))  # type: ignore[return-value]


def write_yuv_video(
    path: Path,
    frames: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
    pix_fmt: str,
    pts_ms: list[int],
) -> Path:
    """Lossless (FFV1) video of the given code planes, tagged full-range BT.601."""
    height, width = frames[0][0].shape
    with av.open(str(path), "w") as out:
        video = out.add_stream("ffv1", rate=25)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        video.time_base = TIME_BASE
        cc = video.codec_context
        cc.time_base = TIME_BASE
        cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = (
            BT601,
            BT601,
            BT601,
            FULL_RANGE,
        )
        for planes, pts in zip(frames, pts_ms):
            frame = av.VideoFrame(width, height, pix_fmt)
            for plane, data in zip(frame.planes, planes):
                rows = np.frombuffer(plane, np.uint8).reshape(plane.height, plane.line_size)
                rows[:, : plane.width] = data
            frame.pts, frame.time_base = pts, TIME_BASE
            frame.colorspace, frame.color_range = BT601, FULL_RANGE
            for packet in video.encode(frame):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
    return path


def frame_planes(frame: av.VideoFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The decoded frame's three 8-bit code planes, without any conversion."""
    return tuple(  # type: ignore[return-value]
        np.frombuffer(p, np.uint8).reshape(p.height, p.line_size)[:, : p.width].copy()
        for p in frame.planes[:3]
    )


# -- the straightforward RGB path, written as a plain script would ------------------------


def bicubic(planes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``(C, h, w)`` float32 planes to ``(C, H, W)`` with vidsr's chroma kernel."""
    return resize_plane(torch.from_numpy(np.ascontiguousarray(planes))[None], size)[0].numpy()


def full_ycbcr(y: np.ndarray, cb: np.ndarray, cr: np.ndarray) -> np.ndarray:
    """Code planes to ``(H, W, 3)`` float YCbCr in [0, 1]; subsampled chroma is brought to
    the luma size with the same bicubic."""
    chroma = np.stack([cb, cr]).astype(np.float32) / 255.0
    if chroma.shape[1:] != y.shape:
        chroma = bicubic(chroma, y.shape)
    return np.dstack([y.astype(np.float32) / 255.0, chroma[0], chroma[1]])


def to_rgb8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(rgb * 255.0), 0, 255).astype(np.uint8)


def reference_upscale(model: vidsr.SRModel, rgb: np.ndarray) -> np.ndarray:
    """The RGB path up to its last step: float RGB -> float YCbCr -> model on Y, bicubic on
    chroma. Returns the output's ``(H, W, 3)`` float YCbCr (RGB is one conversion away)."""
    ycbcr = rgb_to_ycbcr(rgb)
    h, w = ycbcr.shape[:2]
    with torch.inference_mode():
        big_y = model(torch.from_numpy(np.ascontiguousarray(ycbcr[..., 0]))[None, None])[
            0, 0
        ].numpy()
    big_c = bicubic(ycbcr[..., 1:].transpose(2, 0, 1), (h * SCALE, w * SCALE))
    return np.dstack([big_y, big_c[0], big_c[1]])


# -- 1. the YUV fast path against the RGB path --------------------------------------------


# Largest |vidsr plane - RGB path plane|, in 8-bit codes, at the output resolution.
# Luma: 0.5 is rounding; the bicubic model's 8-bit integer path adds up to 1/32 code per
# tap from its 4-bit intermediate (0.5 + 1.1875 / 32 = 0.54). Chroma: 0.5 is rounding,
# which the bicubic upsampling of 4:2:0 chroma (to compare at full size) can stretch by
# its kernel's 2-D absolute sum, 1.28125 ** 2 = 1.64: 0.82. Plus 0.01 for float noise.
LUMA_TOLERANCE = {"fast": 0.51, "bicubic": 0.55}
CHROMA_TOLERANCE = {"yuv444p": 0.51, "yuv420p": 0.83}
# 8-bit RGB, per sample. From the plane errors' bounds (0.54 luma, 0.82 chroma, before the
# noise allowance), |B diff| <= 0.54 + 1.772 * 0.82 = 1.99 (R and G less) before the final
# rounding, so at most 2 codes after it.
RGB_MAX_DIFF = 2
# Mean over a frame: the planes' rounding noise seen through the RGB matrix and rounded
# again averages about 0.40 codes (measured 0.398-0.404 for 4:4:4, 0.358-0.364 for 4:2:0).
RGB_MEAN_DIFF = 0.43


@pytest.mark.parametrize("pix_fmt", ["yuv444p", "yuv420p"])
@pytest.mark.parametrize("model_name", ["fast", "bicubic"])
def test_yuv_path_matches_the_rgb_path(tmp_path: Path, pix_fmt: str, model_name: str) -> None:
    """vidsr's output (Y to the model, chroma by the pipeline's bicubic, no RGB) matches
    the straightforward RGB path on a 5-frame lossless 64x48 full-range BT.601 video with
    moving detail, frame by frame, in 4:4:4 and 4:2:0, for the shipped ``fast`` model (the
    float path) and ``bicubic`` (vidsr's 8-bit integer path).

    The paths differ only in where they round: vidsr rounds its Y, Cb and Cr planes to
    8-bit codes, the RGB path rounds its RGB once. Tolerances (constants above):

    * planes: every output Y, Cb, Cr sample within 0.51 code (Y, fast), 0.55 (Y, bicubic's
      integer path), 0.51 (chroma, 4:4:4) and 0.83 (chroma, 4:2:0, compared after the same
      bicubic upsampling) of the RGB path's float plane: rounding and nothing else.
      Measured: 0.500 / 0.534 / 0.500 / 0.686 codes.
    * RGB, 8 bits: max |diff| <= 2 codes (implied by the plane bounds; measured 2, on under
      0.5% of samples),
      mean |diff| <= 0.43 codes per frame (measured 0.398-0.404 for 4:4:4, 0.358-0.364
      for 4:2:0). Swapped chroma planes or a neighbour's frame give means near 40 codes.

    Also: same frame count, timestamps and pixel format; size doubled.
    """
    n = 5
    pts_ms = [0, 40, 80, 120, 160]
    subsampled = pix_fmt == "yuv420p"
    src = write_yuv_video(
        tmp_path / "in.mkv",
        [encode_planes(pattern_rgb(i), subsampled) for i in range(n)],
        pix_fmt,
        pts_ms,
    )
    dst = tmp_path / "out.mkv"
    config = RunConfig(
        model=model_name,
        scale=SCALE,
        device="cpu",
        colour="off",
        precision="fp32",  # the RGB path below runs the model in fp32
        encode=EncodeConfig(codec="ffv1", pix_fmt=pix_fmt),
    )
    summary = vidsr.upscale_video(src, dst, config=config)
    assert summary.frames == n

    model = vidsr.load_model(model_name, SCALE).eval()
    inputs, outputs = read_frames(src), read_frames(dst)
    assert len(outputs) == n
    assert frame_times(dst) == [Fraction(p, 1000) for p in pts_ms]
    plane_tol = np.array(
        [LUMA_TOLERANCE[model_name], CHROMA_TOLERANCE[pix_fmt], CHROMA_TOLERANCE[pix_fmt]]
    )
    stats = []
    for index, (lr, sr) in enumerate(zip(inputs, outputs)):
        assert (sr.width, sr.height, sr.format.name) == (WIDTH * SCALE, HEIGHT * SCALE, pix_fmt)
        expected = reference_upscale(model, ycbcr_to_rgb(full_ycbcr(*frame_planes(lr))))
        got = full_ycbcr(*frame_planes(sr))
        plane_err = (
            np.abs(got - expected).reshape(-1, 3).max(axis=0).astype(np.float64) * 255.0
        )  # in codes
        rgb_diff = np.abs(
            to_rgb8(ycbcr_to_rgb(got)).astype(np.int16) - to_rgb8(ycbcr_to_rgb(expected))
        )
        stats.append(
            (plane_err.round(3).tolist(), round(float(rgb_diff.mean()), 3), int(rgb_diff.max()))
        )
        assert (plane_err <= plane_tol).all(), (
            f"frame {index}: |Y, Cb, Cr error| {plane_err} > {plane_tol}"
        )
        assert rgb_diff.max() <= RGB_MAX_DIFF, f"frame {index}: max RGB |diff| {rgb_diff.max()}"
        assert rgb_diff.mean() <= RGB_MEAN_DIFF, (
            f"frame {index}: mean RGB |diff| {rgb_diff.mean():.3f}"
        )
    print(
        f"{model_name} {pix_fmt}: (max |Y, Cb, Cr| error, mean, max RGB |diff|) per frame: {stats}"
    )


# -- 2. batching and overlap keep every frame, in order -----------------------------------

LEVELS = [30, 60, 90, 120, 150, 180, 210]  # one grey level per frame
VFR_PTS_MS = [0, 40, 90, 100, 180, 400, 433]  # irregular, so a frame/timestamp mix-up shows


def grey_step_planes(index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """4:2:0 planes of frame ``index``: Y at ``LEVELS[index]`` plus a smooth +-8 code
    texture that moves with the index, chroma 128 plus a smaller moving texture."""
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
    texture = (
        8 * np.sin(2 * np.pi * (xx / 23 + yy / 17) + index) * np.cos(2 * np.pi * yy / 29 - index)
    )
    y = np.rint(LEVELS[index] + texture).astype(np.uint8)
    cyy, cxx = np.mgrid[0 : HEIGHT // 2, 0 : WIDTH // 2]
    cb = np.rint(128 + 6 * np.sin(2 * np.pi * cxx / 13 + index)).astype(np.uint8)
    cr = np.rint(128 + 6 * np.cos(2 * np.pi * cyy / 11 - index)).astype(np.uint8)
    return y, cb, cr


@pytest.fixture(scope="module")
def grey_steps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """7 lossless, distinguishable frames at a variable frame rate."""
    planes = [grey_step_planes(i) for i in range(len(LEVELS))]
    return write_yuv_video(
        tmp_path_factory.mktemp("steps") / "steps.mkv", planes, "yuv420p", VFR_PTS_MS
    )


def box_down(plane: np.ndarray) -> np.ndarray:
    """Mean of each 2x2 block: an upscaled plane brought back to the input's size."""
    h, w = plane.shape
    return plane.reshape(h // 2, 2, w // 2, 2).astype(np.float64).mean(axis=(1, 3))


@pytest.mark.parametrize("model_name", ["bicubic", "fast"])
def test_batching_keeps_every_frame_in_order(
    tmp_path: Path, grey_steps: Path, model_name: str
) -> None:
    """Batches of 1, of 3 (3 + 3 + a partial 1) and the automatic size (8 here: one
    partial batch of 7), with one-slot queues so decode, compute and encode overlap as
    tightly as they can, each give exactly 7 frames where output frame i is input frame i:

    * its timestamp is VFR_PTS_MS[i] (irregular steps);
    * its mean Y is within 0.5 code of input frame i's (measured: at most 0.03; levels
      are 30 codes apart, so a neighbour's frame is off by 30);
    * each of its planes, box-filtered back to the input size, is within 0.5 code on
      average of input frame i's own plane (measured: at most 0.08 for Y, 0.05 for
      chroma; against a neighbour's planes: at least 29.9 for Y, 3.5 for chroma, whose
      texture moves with the index);

    and the three runs are identical to within 1 code (batched and single-frame
    convolutions may sum in another order; measured: bit-identical).
    """
    inputs = [grey_step_planes(i) for i in range(len(LEVELS))]
    runs = {}
    for batch_size in (1, 3, None):
        dst = tmp_path / f"b{batch_size}.mkv"
        config = RunConfig(
            model=model_name,
            scale=SCALE,
            device="cpu",
            batch_size=batch_size,
            colour="off",
            queue_size=1,
            encode=EncodeConfig(codec="ffv1", pix_fmt="yuv420p"),
        )
        summary = vidsr.upscale_video(grey_steps, dst, config=config)
        assert summary.frames == len(LEVELS), f"batch_size={batch_size}"
        frames = [frame_planes(f) for f in read_frames(dst)]
        assert len(frames) == len(LEVELS), f"batch_size={batch_size}"
        assert frame_times(dst) == [Fraction(p, 1000) for p in VFR_PTS_MS], (
            f"batch_size={batch_size}"
        )
        for index, (out, own) in enumerate(zip(frames, inputs)):
            where = f"batch_size={batch_size}, frame {index}"
            assert out[0].shape == (HEIGHT * SCALE, WIDTH * SCALE), where
            level_error = abs(out[0].mean() - own[0].mean())
            assert level_error <= 0.5, (
                f"{where}: mean Y {out[0].mean():.1f}, input's {own[0].mean():.1f}"
            )
            for name, big, small in zip(["Y", "Cb", "Cr"], out, own):
                error = np.abs(box_down(big) - small).mean()
                assert error <= 0.5, f"{where}: {name} is {error:.2f} codes from its input frame's"
        runs[batch_size] = frames
    for batch_size in (3, None):
        for index, (a, b) in enumerate(zip(runs[1], runs[batch_size])):
            for plane_a, plane_b in zip(a, b):
                assert np.abs(plane_a.astype(int) - plane_b.astype(int)).max() <= 1, (
                    f"batch_size={batch_size}: frame {index} differs from the batch_size=1 run"
                )


class _HeldBack:
    """Wraps a processor so that no batch is ``done`` when submitted, as on CUDA, where
    the runner keeps one batch in flight; the result itself is the real processor's."""

    class _Pending:
        def __init__(self, inner: object) -> None:
            self._inner = inner

        @property
        def done(self) -> bool:
            return False

        def result(self) -> list:
            return self._inner.result()  # type: ignore[attr-defined]

    def __init__(self, processor: object) -> None:
        self._processor = processor

    def submit(self, frames: list) -> object:
        return self._Pending(self._processor.submit(frames))  # type: ignore[attr-defined]


@pytest.mark.parametrize("held_back", [False, True], ids=["done-at-once", "in-flight"])
@pytest.mark.parametrize("model_name", ["bicubic", "fast"])
@pytest.mark.parametrize("batch_size", [1, 3, 6, 7, 8])
def test_run_stages_pairs_each_frame_with_its_own_planes(
    batch_size: int, model_name: str, held_back: bool
) -> None:
    """The stage runner with a real processor (bicubic: the 8-bit integer path; fast: the
    float path) and a recording sink, at the tightest queues: 7 frames in, interleaved
    with other streams' packets, come out as 7 writes in decode order, each with the
    planes computed from that same frame (its grey level, within 2 codes for the fast
    model, measured exact; its own chroma levels, exact), whatever the batch size (full
    batches, a partial last batch, one batch, fewer frames than a batch) and whether the
    processor finishes a batch at once (CPU) or leaves it in flight (CUDA); every packet
    is forwarded once, in order."""
    from vidsr.colour.convert import YuvFormat
    from vidsr.engine.processor import FrameProcessor, PlaneFormats
    from vidsr.media.planes import HostFrame
    from vidsr.media.sources import StreamPacket
    from vidsr.pipeline.runner import run_stages

    size = (8, 12)
    frames = [
        HostFrame(
            i,
            VFR_PTS_MS[i],
            10,
            (
                np.full(size, level, np.uint8),
                np.full((4, 6), 100 + i, np.uint8),
                np.full((4, 6), 150 - i, np.uint8),
            ),
        )
        for i, level in enumerate(LEVELS)
    ]
    packets = [StreamPacket(1, av.Packet(bytes([k]))) for k in range(3)]
    stream: list[object] = [
        packets[0],
        *frames[:2],
        packets[1],
        *frames[2:6],
        packets[2],
        frames[6],
    ]

    def items(stop: threading.Event) -> Iterator[object]:
        yield from stream

    class RecordingSink:
        def __init__(self) -> None:
            self.writes: list[tuple[tuple[np.ndarray, ...], HostFrame]] = []
            self.packets: list[bytes] = []
            self.opened = self.closed = False

        def open(self) -> None:
            self.opened = True

        def write_frame(self, planes, frame) -> None:
            self.writes.append((planes, frame))

        def mux_packet(self, stream_index: int, packet: av.Packet) -> None:
            assert stream_index == 1
            self.packets.append(bytes(packet))

        def close(self) -> None:
            self.closed = True

    fmt = YuvFormat(BT601, True, 8)
    formats = PlaneFormats(fmt, fmt, "yuv420p")
    processor = FrameProcessor(vidsr.load_model(model_name, SCALE), torch.device("cpu"), formats)
    sink = RecordingSink()
    run_stages(
        items,
        _HeldBack(processor) if held_back else processor,
        sink,
        batch_size=batch_size,
        queue_size=1,
    )
    assert sink.opened and sink.closed
    assert [frame.index for _, frame in sink.writes] == list(range(len(LEVELS)))
    assert all(frame is frames[i] for i, (_, frame) in enumerate(sink.writes))
    for i, ((y, cb, cr), _) in enumerate(sink.writes):
        assert y.shape == (size[0] * SCALE, size[1] * SCALE) and cb.shape == size
        assert np.abs(y.astype(int) - LEVELS[i]).max() <= 2, f"frame {i}: Y levels {np.unique(y)}"
        assert (cb == 100 + i).all() and (cr == 150 - i).all(), (
            f"frame {i}: chroma {np.unique(cb)}, {np.unique(cr)}"
        )
    assert sink.packets == [b"\x00", b"\x01", b"\x02"]
