"""Live streaming with lavfi graphs and short files as fake cameras (CPU, small frames)."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from conftest import make_video, read_frames

from vidsr.cli import main
from vidsr.config import RunConfig
from vidsr.errors import InputError, OptionError
from vidsr.media.capture import CapturedFrame, LatestSlot
from vidsr.media.sinks import is_fragmented
from vidsr.pipeline.live.server import parse_address
from vidsr.pipeline.live.stream import StreamConfig, StreamSummary, run_stream

LAVFI = "lavfi:testsrc2=size=64x48:rate=30"


def _record(source: str, out: Path, *options: str) -> int:
    """``vidsr stream`` from ``source`` recorded to ``out``, bicubic on the CPU, quiet."""
    args = ["--source", source, *options, "--record", str(out)]
    return main(["stream", *args, "--device", "cpu", "--model", "bicubic", "--quiet"])


def test_record_has_the_expected_size_and_frame_count(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "live.mp4"
    code = _record(LAVFI, out, "--frames", "6")
    assert code == 0
    assert "--frames 6 reached" in capsys.readouterr().out
    assert not [t.name for t in threading.enumerate() if t.name.startswith("vidsr")]
    frames = read_frames(out)
    assert len(frames) == 6
    assert (frames[0].width, frames[0].height) == (128, 96)
    assert not (tmp_path / "live.partial.mp4").exists()
    assert not is_fragmented(out)  # published as a regular (faststart) MP4


def test_a_webm_record_uses_vp9_without_codec_option(tmp_path: Path) -> None:
    """A .webm recording without --codec takes WebM's default (VP9), as upscale does;
    before, the recorder asked for libx264, which WebM cannot hold."""
    out = tmp_path / "live.webm"
    assert _record(LAVFI, out, "--frames", "4") == 0
    with av.open(str(out)) as c:
        assert c.streams.video[0].codec_context.name == "vp9"
    assert len(read_frames(out)) == 4


def _read_jpegs(url: str, count: int) -> tuple[str, list[np.ndarray]]:
    """The content type and the first ``count`` JPEG frames of an MJPEG stream."""
    with urllib.request.urlopen(url, timeout=20) as response:
        content_type = response.headers["Content-Type"]
        data, images = b"", []
        while len(images) < count:
            chunk = response.read1(65536)
            assert chunk, "stream ended early"
            data += chunk
            while (start := data.find(b"\xff\xd8")) >= 0 and (
                end := data.find(b"\xff\xd9", start)
            ) >= 0:
                images.append(
                    cv2.imdecode(np.frombuffer(data[start : end + 2], np.uint8), cv2.IMREAD_COLOR)
                )
                data = data[end + 2 :]
    return content_type, images


@contextlib.contextmanager
def serving() -> Iterator[str]:
    """Run a served stream of :data:`LAVFI` in a thread; yields its base URL; stops and
    joins it on exit and checks it ended cleanly."""
    ready = threading.Event()
    urls: list[str] = []
    stop = threading.Event()
    result: list[StreamSummary | BaseException] = []

    def serve() -> None:
        def on_ready(url: str | None) -> None:
            urls.append(url or "")
            ready.set()

        try:
            result.append(
                run_stream(
                    StreamConfig(
                        source=LAVFI,
                        run=RunConfig(model="bicubic", device="cpu", colour="off"),
                        serve=("127.0.0.1", 0),
                        duration=120,
                    ),
                    on_ready=on_ready,
                    stop=stop,
                )
            )
        except BaseException as e:  # noqa: BLE001 - reported by the test thread
            result.append(e)
            ready.set()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        assert ready.wait(60) and urls, result
        assert urls[0].startswith("http://127.0.0.1:")
        yield urls[0]
    finally:
        stop.set()
        thread.join(60)
    assert not thread.is_alive()
    assert isinstance(result[0], StreamSummary) and result[0].end_reason == "stopped"


def test_mjpeg_endpoints_page_and_404() -> None:
    before = set(threading.enumerate())
    with serving() as base:
        content_type, images = _read_jpegs(base + "stream.mjpg", 2)
        assert content_type.startswith("multipart/x-mixed-replace")
        assert all(img is not None and img.shape == (96, 128, 3) for img in images)
        _, split = _read_jpegs(base + "split.mjpg", 1)
        assert split[0].shape == (96, 256, 3)  # bicubic | vidsr
        with urllib.request.urlopen(base, timeout=10) as page:
            html = page.read().decode()
        assert "/stream.mjpg" in html and "/split.mjpg" in html
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(base + "etc/passwd", timeout=10)
        assert missing.value.code == 404
    assert set(threading.enumerate()) <= before  # capture, HTTP and handler threads all joined


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="needs a headless browser: Debian's chromium package (apt-get install chromium)",
)
def test_page_plays_the_stream_in_a_headless_browser(tmp_path: Path) -> None:
    with serving() as base:
        # --timeout stops loading (the MJPEG response never ends) and then dumps the DOM,
        # in which the page's script has marked the picture as playing.
        result = subprocess.run(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--no-first-run",
                f"--user-data-dir={tmp_path / 'profile'}",
                "--timeout=5000",
                "--dump-dom",
                base,
            ],
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
    assert 'id="status">live<' in result.stdout, result.stdout[-2000:] + result.stderr[-2000:]


def test_source_that_ends_mid_stream_finishes_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_video(tmp_path / "short.mp4", n=8, size=(32, 24))
    out = tmp_path / "rec.mkv"
    code = _record(str(src), out)
    assert code == 0
    assert "source ended" in capsys.readouterr().out
    frames = read_frames(out)  # finalised: decodable to the end
    assert 1 <= len(frames) <= 8
    assert (frames[0].width, frames[0].height) == (64, 48)


@pytest.mark.parametrize("source", ["missing.mp4", "lavfi:nosuchfilter=1", "/dev/video99"])
def test_unopenable_source_fails_at_once_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], source: str
) -> None:
    spec = str(tmp_path / source) if source.endswith(".mp4") else source
    code = main(["stream", "--source", spec, "--device", "cpu", "--model", "bicubic"])
    assert code == 1
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("vidsr: error: ") and spec in err[0]
    with pytest.raises(InputError):
        run_stream(StreamConfig(source=spec, run=RunConfig(model="bicubic", device="cpu")))


def test_latest_slot_keeps_the_newest_frame_and_counts_drops() -> None:
    slot = LatestSlot()
    planes = (np.zeros((2, 2), np.uint8),) * 3
    for i in range(3):
        slot.put(CapturedFrame(i, float(i), planes))
    got = slot.take(timeout=0.01)
    assert got is not None and got.index == 2
    assert slot.dropped == 2 and slot.captured == 3
    assert slot.take(timeout=0.01) is None and not slot.ended
    slot.finish("end of stream")
    assert slot.take(timeout=1.0) is None and slot.ended


def test_serve_address_defaults_to_localhost() -> None:
    assert parse_address("8080") == ("127.0.0.1", 8080)
    assert parse_address(":0") == ("127.0.0.1", 0)
    assert parse_address("0.0.0.0:9000") == ("0.0.0.0", 9000)
    with pytest.raises(OptionError, match="not an address"):
        parse_address("localhost:http")


def test_duration_bounds_a_run() -> None:
    summary = run_stream(
        StreamConfig(
            source=LAVFI, run=RunConfig(model="bicubic", device="cpu", colour="frame"), duration=0.5
        )
    )
    assert summary.end_reason.startswith("--duration")
    assert summary.stats.frames >= 1 and summary.seconds < 30
