"""The CLI as a user meets it: exit codes, one-line errors, Ctrl-C, the summary line."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from conftest import SLOW_UPSCALE, make_video, read_frames, run_cli, start_cli

from vidsr.cli import main


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("vidsr: error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.slow
def test_upscale_writes_default_output_and_summary(tmp_path: Path) -> None:
    src = make_video(tmp_path / "movie.mp4", n=6, audio=True)
    result = run_cli("upscale", str(src), "--scale", "2", "--model", "bicubic", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "movie_x2.mp4"
    assert out.is_file()
    assert "6 frames" in result.stdout and "fps" in result.stdout and "MB" in result.stdout
    assert len(read_frames(out)) == 6


@pytest.mark.slow
def test_missing_file(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("upscale", str(tmp_path / "nope.mp4")), "not found")


@pytest.mark.slow
def test_text_file_named_mp4(tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("this is not a video\n" * 20)
    assert_one_line_error(run_cli("upscale", str(fake)), "notes.mp4")


@pytest.mark.slow
def test_file_without_video_stream(tmp_path: Path) -> None:
    import av
    import numpy as np

    path = tmp_path / "audio_only.m4a"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=48000)
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 48000, i * 1024
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    assert_one_line_error(
        run_cli("upscale", str(path), "-o", str(tmp_path / "o.mp4")), "no video stream"
    )


@pytest.mark.slow
def test_unknown_model(tmp_path: Path, tiny_video: Path) -> None:
    result = run_cli(
        "upscale", str(tiny_video), "--model", "nonesuch", "-o", str(tmp_path / "o.mp4")
    )
    assert_one_line_error(result, "unknown model", "nonesuch")
    assert not (tmp_path / "o.mp4").exists()


@pytest.mark.slow
def test_unsupported_scale_is_a_one_line_usage_error(tiny_video: Path) -> None:
    result = run_cli("upscale", str(tiny_video), "--scale", "5")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("vidsr: error: ")
    assert "invalid choice" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    "option,value", [("--batch-size", "0"), ("--tile", "-8"), ("--crf", "-1"), ("--gop", "0")]
)
def test_zero_or_negative_values(tmp_path: Path, tiny_video: Path, option: str, value: str) -> None:
    out = tmp_path / "o.mp4"
    assert_one_line_error(
        run_cli("upscale", str(tiny_video), option, value, "-o", str(out)), option
    )
    assert not out.exists()


@pytest.mark.slow
def test_codec_that_cannot_go_in_container(tmp_path: Path, tiny_video: Path) -> None:
    result = run_cli(
        "upscale", str(tiny_video), "--codec", "prores_ks", "-o", str(tmp_path / "o.webm")
    )
    assert_one_line_error(result, "prores_ks", ".webm")


@pytest.mark.slow
def test_unknown_codec(tmp_path: Path, tiny_video: Path) -> None:
    result = run_cli(
        "upscale", str(tiny_video), "--codec", "h265000", "-o", str(tmp_path / "o.mp4")
    )
    assert_one_line_error(result, "unknown encoder")


@pytest.mark.slow
def test_existing_output_needs_overwrite(tmp_path: Path, tiny_video: Path) -> None:
    out = tmp_path / "o.mp4"
    out.write_bytes(b"x")
    assert_one_line_error(run_cli("upscale", str(tiny_video), "-o", str(out)), "--overwrite")


def test_models_json_lists_baselines(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    by_name = {r["name"]: r for r in rows}
    assert {"bicubic", "lanczos"} <= set(by_name)
    for row in rows:
        assert {"name", "family", "scales", "colour", "parameters"} <= set(row)
        assert row["colour"] in ("luma", "rgb")


def test_models_json_carries_card_figures(capsys: pytest.CaptureFixture[str]) -> None:
    """Shipped models carry their cards' Set5/Set14 figures; the quality model also its
    measured --self-ensemble figures, which beat the single-pass ones."""
    assert main(["models", "--json"]) == 0
    by_name = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    for family in ("srcnn", "fast", "quality", "perceptual"):
        row = by_name[family]
        assert row["family"] == family and row["scales"] == [2, 3, 4]
        for scale in ("2", "3", "4"):
            assert {"Set5", "Set14"} <= set(row["validation"][scale])
    quality = by_name["quality"]
    for scale in ("2", "3", "4"):
        plain, ensembled = quality["validation"][scale], quality["validation_self_ensemble"][scale]
        assert ensembled["Set5"]["psnr_y"] > plain["Set5"]["psnr_y"]
    assert "validation_self_ensemble" not in by_name["fast"]


@pytest.mark.slow
def test_ctrl_c_leaves_partial_file_and_exits_130(tmp_path: Path) -> None:
    src = make_video(tmp_path / "long.mp4", n=240, size=(160, 120))
    out = tmp_path / "long_x4.mp4"
    partial = tmp_path / "long_x4.partial.mp4"
    proc = start_cli(
        "upscale",
        str(src),
        "-o",
        str(out),
        *SLOW_UPSCALE,
        # A shell starts background jobs with SIGINT ignored, and Python keeps an ignored
        # SIGINT ignored: give the child the default handler, as a terminal would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    while not partial.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    time.sleep(0.5)
    assert proc.poll() is None, "run finished before it could be interrupted"
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert not out.exists()
    assert partial.exists()
    assert 0 < len(read_frames(partial)) < 240  # flushed, playable, plainly partial


@pytest.mark.slow
def test_sigterm_exits_143_without_final_file(tmp_path: Path) -> None:
    src = make_video(tmp_path / "long.mp4", n=240, size=(160, 120))
    out = tmp_path / "t_x4.mp4"
    proc = start_cli("upscale", str(src), "-o", str(out), *SLOW_UPSCALE)
    deadline = time.monotonic() + 60
    while not (tmp_path / "t_x4.partial.mp4").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert not out.exists()


def test_library_and_cli_defaults_are_the_same_run() -> None:
    """`vidsr upscale a.mp4` and `vidsr.upscale_video("a.mp4")` build the same RunConfig,
    whose model (None) resolves in one place: the fast model where its weights ship."""
    from vidsr import RunConfig
    from vidsr.cli import build_parser
    from vidsr.cli.upscale_cmd import config_from_args
    from vidsr.engine.upscaler import default_model, load_model, resolve_model

    args = build_parser().parse_args(["upscale", "a.mp4"])
    assert config_from_args(args) == RunConfig()
    assert RunConfig().model is None
    assert resolve_model(None, 2) == default_model(2) == "fast-ecb"
    assert resolve_model("bicubic", 2) == "bicubic"
    assert load_model(None, 3).name == "fast-ecb"
