"""Bad and odd inputs give a correct result or one clear line, never a traceback."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import BICUBIC_CPU, make_video, read_frames, run_cli, small_tmpfs

from vidsr import RunConfig
from vidsr.colour.convert import YuvFormat
from vidsr.engine.processor import FrameProcessor, PlaneFormats
from vidsr.engine.upscaler import load_model
from vidsr.media.planes import HostFrame
from vidsr.media.probe import probe
from vidsr.models.contract import SRModel
from vidsr.pipeline.planning import AUTO_TILE_SIZE, auto_tile
from vidsr.pipeline.video import upscale_video


def one_line_error_or_success(result) -> None:  # noqa: ANN001
    assert "Traceback" not in result.stderr
    if result.returncode != 0:
        assert result.returncode == 1
        errors = [line for line in result.stderr.splitlines() if line.startswith("vidsr: error:")]
        assert len(errors) == 1, result.stderr


@pytest.mark.slow
def test_truncated_mp4_reports_lost_frames(tmp_path: Path) -> None:
    src = tmp_path / "fast.mp4"
    with av.open(str(src), "w", options={"movflags": "faststart"}) as out:
        v = out.add_stream("libx264", rate=25, options={"preset": "ultrafast", "g": "5"})
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        for i in range(40):
            img = np.random.default_rng(i).integers(0, 255, (48, 64, 3), dtype=np.uint8)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts = i
            out.mux(v.encode(frame))
        out.mux(v.encode())
    data = src.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    result = run_cli(
        "upscale", str(cut), "--model", "bicubic", "--device", "cpu", "-o", str(tmp_path / "o.mp4")
    )
    one_line_error_or_success(result)
    if result.returncode == 0:
        assert "could not be decoded" in result.stdout
        assert 0 < len(read_frames(tmp_path / "o.mp4")) < 40


@pytest.mark.slow
def test_truncated_header_is_one_line(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", n=10)
    cut = tmp_path / "head.mp4"
    cut.write_bytes(src.read_bytes()[:200])
    result = run_cli("upscale", str(cut), "-o", str(tmp_path / "o.mp4"))
    one_line_error_or_success(result)
    assert not (tmp_path / "o.mp4").exists() or result.returncode == 0


def test_one_pixel_video(tmp_path: Path) -> None:
    src = make_video(tmp_path / "dot.mkv", n=3, size=(1, 1), codec="ffv1", pix_fmt="yuv444p")
    dst = tmp_path / "dot_x2.mkv"
    upscale_video(
        src,
        dst,
        RunConfig(
            model="bicubic",
            device="cpu",
            encode=__import__("vidsr").EncodeConfig(codec="ffv1", pix_fmt="yuv444p"),
        ),
    )
    frames = read_frames(dst)
    assert len(frames) == 3 and (frames[0].width, frames[0].height) == (2, 2)


@pytest.mark.slow
def test_odd_output_for_420_is_refused_before_work(tmp_path: Path) -> None:
    src = make_video(tmp_path / "odd.mkv", n=2, size=(33, 19), codec="ffv1", pix_fmt="yuv444p")
    result = run_cli("upscale", str(src), "--scale", "3", "-o", str(tmp_path / "o.mp4"))
    one_line_error_or_success(result)
    assert result.returncode == 1 and "odd" in result.stderr


def test_444_input_defaults_to_420_output(tmp_path: Path) -> None:
    src = make_video(tmp_path / "full.mkv", n=2, size=(32, 24), codec="ffv1", pix_fmt="yuv444p")
    dst = tmp_path / "full_x2.mp4"
    upscale_video(src, dst, RunConfig(model="bicubic", device="cpu"))
    assert read_frames(dst)[0].format.name == "yuv420p"


@pytest.mark.slow
def test_missing_output_folder(tmp_path: Path, tiny_video: Path) -> None:
    result = run_cli("upscale", str(tiny_video), "-o", str(tmp_path / "nope" / "o.mp4"))
    one_line_error_or_success(result)
    assert result.returncode == 1 and "folder does not exist" in result.stderr


@pytest.mark.slow
def test_directory_as_input(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run_cli("upscale", str(tmp_path / "empty"), "-o", str(tmp_path / "o.mp4"))
    one_line_error_or_success(result)
    assert result.returncode == 1


@pytest.mark.slow
def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    result = run_cli("upscale", str(empty))
    one_line_error_or_success(result)
    assert result.returncode == 1 and "empty" in result.stderr


def test_huge_frames_are_tiled_automatically(tmp_path: Path) -> None:
    info = probe(make_video(tmp_path / "v.mp4", n=1))
    assert auto_tile(info.width, info.height, None) is None
    assert auto_tile(info.width, info.height, 64) == 64
    assert auto_tile(7680, 4320, None) == AUTO_TILE_SIZE


class _OomBelow(torch.nn.Module):
    """Upscales like lanczos but 'runs out of memory' on inputs wider than ``limit``."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.inner = load_model("lanczos", 2).net
        self.limit = limit
        self.widths: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.widths.append(x.shape[-1])
        if x.shape[-1] > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return self.inner(x)


def test_out_of_memory_retries_with_smaller_tiles() -> None:
    net = _OomBelow(limit=100)
    model = SRModel(net, name="oom", family="test", scale=2, colour="luma", receptive_radius=4)
    fmt = YuvFormat(1, False, 8)
    processor = FrameProcessor(model, torch.device("cpu"), PlaneFormats(fmt, fmt, "yuv444p"))
    rng = np.random.default_rng(0)
    planes = tuple(rng.integers(16, 235, (96, 256), dtype=np.uint8) for _ in range(3))
    out = processor.process([HostFrame(0, 0, 1, planes)])
    assert processor.tile is not None and processor.tile <= 100
    reference = FrameProcessor(
        load_model("lanczos", 2), torch.device("cpu"), PlaneFormats(fmt, fmt, "yuv444p")
    )
    expected = reference.process([HostFrame(0, 0, 1, planes)])
    assert np.abs(out[0][0].astype(int) - expected[0][0].astype(int)).max() <= 1


@pytest.mark.slow
@pytest.mark.skipif(
    __import__("os").geteuid() == 0, reason="root reads files regardless of permissions"
)
def test_unreadable_file(tmp_path: Path, tiny_video: Path) -> None:
    locked = tmp_path / "locked.mp4"
    locked.write_bytes(tiny_video.read_bytes())
    locked.chmod(0)
    result = run_cli("upscale", str(locked))
    one_line_error_or_success(result)
    assert result.returncode == 1


@pytest.mark.slow
def test_video_stream_without_frames(tmp_path: Path) -> None:
    path = tmp_path / "noframes.mkv"
    with av.open(str(path), "w") as out:
        v = out.add_stream("ffv1", rate=25)
        v.width, v.height, v.pix_fmt = 32, 24, "yuv420p"
    result = run_cli("upscale", str(path), "-o", str(tmp_path / "o.mkv"))
    one_line_error_or_success(result)
    assert result.returncode == 1 and not (tmp_path / "o.mkv").exists()


@pytest.mark.slow
@pytest.mark.parametrize("fraction", [0.3, 0.97])
def test_truncated_matroska_decodes_what_it_can(tmp_path: Path, fraction: float) -> None:
    src = make_video(tmp_path / "in.mkv", n=30, size=(48, 32))
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(src.read_bytes()[: int(src.stat().st_size * fraction)])
    out = tmp_path / "o.mkv"
    result = run_cli("upscale", str(cut), "--model", "bicubic", "--device", "cpu", "-o", str(out))
    one_line_error_or_success(result)
    if result.returncode == 0:
        decoded = len(read_frames(out))
        assert 0 < decoded <= 30
        if decoded < 29:  # lost frames are reported, estimated from the duration
            assert "could not be decoded" in result.stdout


@pytest.fixture
def tiny_filesystem(tmp_path: Path):  # noqa: ANN201
    """A 400 KiB tmpfs, so that writing fills the disk for real (needs root and mount)."""
    with small_tmpfs(tmp_path / "small", "400k") as mount_point:
        yield mount_point


@pytest.mark.slow
def test_disk_full_mid_run(tmp_path: Path, tiny_filesystem: Path) -> None:
    noise = [
        np.random.default_rng(i).integers(0, 256, (64, 96, 3), dtype=np.uint8) for i in range(30)
    ]
    src = make_video(
        tmp_path / "in.mkv", n=30, size=(96, 64), audio=True, codec="ffv1", frames=noise
    )
    out = tiny_filesystem / "out.mkv"  # 30 frames of 192x128 noise in FFV1: over 1 MB
    result = run_cli("upscale", str(src), *BICUBIC_CPU, "--codec", "ffv1", "-o", str(out))
    one_line_error_or_success(result)
    assert result.returncode == 1 and "No space left" in result.stderr
    assert list(tiny_filesystem.iterdir()) == []  # no final file, no partial left behind


@pytest.mark.slow
def test_image_named_mp4(tmp_path: Path) -> None:
    from PIL import Image

    fake = tmp_path / "photo.mp4"
    Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(fake, format="PNG")
    out = tmp_path / "o.mp4"
    result = run_cli("upscale", str(fake), "--model", "bicubic", "--device", "cpu", "-o", str(out))
    one_line_error_or_success(result)  # FFmpeg may read it as a one-frame video: also fine
    if result.returncode == 0:
        assert len(read_frames(out)) == 1


@pytest.mark.slow
def test_corrupt_bytes_mid_stream(tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mkv", n=30, size=(48, 32))
    data = bytearray(src.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 400] = bytes(
        np.random.default_rng(3).integers(0, 256, 400, dtype=np.uint8)
    )
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(bytes(data))
    out = tmp_path / "o.mkv"
    result = run_cli("upscale", str(bad), "--model", "bicubic", "--device", "cpu", "-o", str(out))
    one_line_error_or_success(result)
    if result.returncode == 0:
        assert 0 < len(read_frames(out)) <= 30
