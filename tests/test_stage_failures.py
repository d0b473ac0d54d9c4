"""Any stage's exception stops the pipeline promptly, with that error, no orphan thread
and no file left under either name — even with queues of size 1 that are always full."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from conftest import make_video

from vidsr import RunConfig
from vidsr.engine.integer import IntegerProcessor
from vidsr.engine.processor import FrameProcessor
from vidsr.errors import EncodeError, InputError
from vidsr.media.sinks import FileSink
from vidsr.media.sources import FileSource
from vidsr.pipeline.output import partial_path
from vidsr.pipeline.video import upscale_video


def vidsr_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("vidsr-")]


def run_expecting(tmp_path: Path, error: type[BaseException], match: str) -> None:
    src = make_video(tmp_path / "in.mp4", n=30, size=(48, 32))
    dst = tmp_path / "out.mp4"
    config = RunConfig(model="bicubic", device="cpu", batch_size=2, queue_size=1, colour="off")
    started = time.monotonic()
    with pytest.raises(error, match=match):
        upscale_video(src, dst, config)
    assert time.monotonic() - started < 30
    assert vidsr_threads() == []
    assert not dst.exists() and not partial_path(dst).exists()


def test_model_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A compute stage that raises on its third batch (this run's is the torch-free 8-bit
    stage, ``IntegerProcessor``; a float run's is ``FrameProcessor``)."""
    calls = {"n": 0}

    def failing_in(cls: type) -> object:
        original = cls.process

        def failing(self: object, frames: list) -> list:
            calls["n"] += 1
            if calls["n"] == 3:
                raise RuntimeError("model exploded")
            return original(self, frames)

        return failing

    for cls in (FrameProcessor, IntegerProcessor):
        monkeypatch.setattr(cls, "process", failing_in(cls))
    run_expecting(tmp_path, RuntimeError, "model exploded")


def test_encoder_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = FileSink.write_frame

    def failing(self: FileSink, planes: tuple, frame: object) -> None:
        if self.frames_written == 4:
            raise EncodeError("disk full")
        original(self, planes, frame)

    monkeypatch.setattr(FileSink, "write_frame", failing)
    run_expecting(tmp_path, EncodeError, "disk full")


def test_decoder_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = FileSource.items

    def failing(self: FileSource, stop: threading.Event):  # noqa: ANN202
        for i, item in enumerate(original(self, stop)):
            if i == 5:
                raise InputError("bad sector")
            yield item

    monkeypatch.setattr(FileSource, "items", failing)
    run_expecting(tmp_path, InputError, "bad sector")
