"""No surprise for the person running vidsr (issue 18, items 9 and 12): where exports go,
what a URL, a .webm output, an audio track a container cannot hold, a x4 model file or a
bad preset do, what the summary and `vidsr models` say, and how train/dataset explain
their options. Inputs are synthetic (PyAV, PIL, tiny spandrel nets); nothing downloads."""

from __future__ import annotations

import argparse
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from conftest import BICUBIC_CPU, dataset_argv, make_video, train_argv, upscale_main
from PIL import Image

from vidsr.cli import build_parser, main


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("vidsr: error: "), err
    return lines[0]


def streams(path: Path) -> list[tuple[str, str]]:
    with av.open(str(path)) as c:
        return [(s.type, s.codec_context.name) for s in c.streams]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny x2 patch dataset built by `vidsr dataset build` from four PNGs."""
    root = tmp_path_factory.mktemp("polish")
    imgs = root / "imgs"
    imgs.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(imgs / f"{i}.png")
    assert main(dataset_argv(root / "ds", str(imgs))) == 0
    return root / "ds"


def _train(dataset: Path, run: Path, *extra: str) -> int:
    return main(train_argv(dataset, run, "--batch-size", "2", *extra))


# 9. exports go to ./vidsr-models, never replace silently, and load with --model PATH
def test_export_goes_to_the_working_directory_and_is_not_replaced(
    dataset: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from vidsr.engine.upscaler import weights_dir

    shipped = (weights_dir() / "fast_x2.safetensors").read_bytes()
    monkeypatch.chdir(tmp_path)
    assert _train(dataset, tmp_path / "run", "--export", "fast") == 0
    exported = Path("vidsr-models") / "fast_x2.safetensors"
    assert exported.is_file() and (Path("vidsr-models") / "fast_x2.json").is_file()
    assert (weights_dir() / "fast_x2.safetensors").read_bytes() == shipped
    capsys.readouterr()

    before = exported.read_bytes()
    assert _train(dataset, tmp_path / "run2", "--export", "fast") == 1
    out, err = capsys.readouterr()
    line = one_error_line(err)
    assert "fast_x2.safetensors exists" in line and "--overwrite" in line
    assert "step" not in out  # refused before training, not after
    assert exported.read_bytes() == before
    assert _train(dataset, tmp_path / "run2", "--export", "fast", "--overwrite") == 0

    video = make_video(tmp_path / "v.mp4", n=3)
    capsys.readouterr()
    weights = "vidsr-models/fast_x2.safetensors"
    assert upscale_main(video, tmp_path / "up.mp4", "--model", weights, "--device", "cpu") == 0
    assert "model fast_x2.safetensors x2" in capsys.readouterr().out


# 12a. a URL is shown as typed and sent to `vidsr stream`
def test_url_input_points_to_vidsr_stream(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["upscale", "https://example.com/clip.mp4"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "https://example.com/clip.mp4" in line and "vidsr stream" in line


# 12b. .webm without --codec encodes VP9; the help names libvpx-vp9
def test_webm_output_defaults_to_vp9(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = make_video(tmp_path / "a.mp4", n=4)
    out = tmp_path / "a.webm"
    assert main(["upscale", str(src), "-o", str(out), "-m", "bicubic", "--device", "cpu"]) == 0
    assert streams(out) == [("video", "vp9")]
    assert "libvpx-vp9" in capsys.readouterr().out
    assert (
        "libvpx-vp9"
        in build_parser()._subparsers._group_actions[0].choices["upscale"].format_help()
    )


# 12c. --audio copy|aac|opus|none
def test_audio_option_reencodes_or_drops_what_the_container_cannot_hold(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = make_video(tmp_path / "a.mp4", n=6, audio=True)  # AAC, language fra
    common = ["-m", "bicubic", "--device", "cpu"]
    assert main(["upscale", str(src), "-o", str(tmp_path / "c.webm"), *common]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "audio stream #1 (aac)" in line and "--audio opus" in line

    opus = tmp_path / "o.webm"
    assert main(["upscale", str(src), "-o", str(opus), "--audio", "opus", *common]) == 0
    assert streams(opus) == [("video", "vp9"), ("audio", "opus")]
    with av.open(str(src)) as a, av.open(str(opus)) as b:
        sa, sb = a.streams.audio[0], b.streams.audio[0]
        assert sb.metadata.get("language") == "fra"
        n_in = sum(f.samples for f in a.decode(sa))
        n_out = sum(f.samples for f in b.decode(sb))
        assert abs(n_out - n_in) <= 2 * 960  # the same length, give or take encoder padding
        assert float(sb.start_time * sb.time_base) < 0.05

    none = tmp_path / "n.mp4"
    assert main(["upscale", str(src), "-o", str(none), "--audio", "none", *common]) == 0
    assert streams(none) == [("video", "h264")]
    aac = tmp_path / "r.mkv"
    assert main(["upscale", str(src), "-o", str(aac), "--audio", "aac", *common]) == 0
    assert [k for k, _ in streams(aac)] == ["video", "audio"]


# 12d. a x4 community model: its scale is read from the file before any work
def test_x4_model_file_sets_or_refuses_the_scale_up_front(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from spandrel.architectures.Compact import Compact

    torch.manual_seed(0)
    net = Compact(num_feat=8, num_conv=2, upscale=4)
    model = tmp_path / "tiny_x4.pth"
    torch.save({k: v.contiguous() for k, v in net.state_dict().items()}, model)
    src = make_video(tmp_path / "a.mp4", n=3, size=(32, 24))

    out = tmp_path / "up.mp4"
    assert main(["upscale", str(src), "-m", str(model), "--device", "cpu", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert "is a x4 model: upscaling x4" in captured.err
    assert "model tiny_x4.pth x4" in captured.out
    with av.open(str(out)) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (128, 96)

    refused = tmp_path / "x2.mp4"
    assert upscale_main(src, refused, "-m", str(model), "-s", "2", "--device", "cpu") == 1
    err = capsys.readouterr().err
    assert "this model is x4, not x2: use --scale 4" in one_error_line(err)
    assert "frame" not in err  # no progress bar was started
    assert not list(tmp_path.glob("x2*"))


# 12e. where a track cannot go, the advice depends on the extension being written
def test_container_advice_depends_on_the_extension(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mov_text = make_video(tmp_path / "t.mp4", n=3, subtitles=True)  # mov_text subtitles
    srt = make_video(tmp_path / "s.mkv", n=3, subtitles=True)  # SubRip subtitles
    assert main(["upscale", str(mov_text), "-o", str(tmp_path / "o.mkv"), "-m", "bicubic"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "into a .mkv file" in line and "use .mov output" in line and ".mkv output" not in line
    assert main(["upscale", str(srt), "-o", str(tmp_path / "o.mp4"), "-m", "bicubic"]) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "into a .mp4 file" in line and "use .mkv output" in line


# 12f. an invalid --preset is refused before any work
@pytest.mark.parametrize("codec", ["libx264", "libx265", "libsvtav1"])
def test_invalid_preset_is_refused_before_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], codec: str
) -> None:
    src = make_video(tmp_path / "a.mp4", n=3)
    out = tmp_path / "o.mkv"
    bad = "bogus" if codec != "libsvtav1" else "99"
    assert upscale_main(src, out, "--codec", codec, "--preset", bad, "-m", "bicubic") == 1
    err = capsys.readouterr().err
    assert f"--preset '{bad}'" in one_error_line(err) and codec in err
    assert not list(tmp_path.glob("o*"))


# 12g. libx265 does not flood the console
def test_x265_info_lines_are_silenced(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    src = make_video(tmp_path / "a.mp4", n=3)
    out = tmp_path / "o.mp4"
    assert upscale_main(src, out, "--codec", "libx265", *BICUBIC_CPU) == 0
    captured = capfd.readouterr()
    assert "x265 [info]" not in captured.err + captured.out
    assert streams(out) == [("video", "hevc")]


# 12h. the summary names the model and the device
def test_summary_names_model_and_device(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vidsr.engine.precision import cpu_has_native_bf16

    src = make_video(tmp_path / "a.mp4", n=3)
    assert main(["upscale", str(src), "-m", "bicubic", "--device", "cpu"]) == 0
    assert ", model bicubic x2 on cpu," in capsys.readouterr().out
    assert main(["upscale", str(src), "--device", "cpu", "-o", str(tmp_path / "f.mp4")]) == 0
    arithmetic = " (bf16 convolutions)" if cpu_has_native_bf16() else ""
    assert f", model fast-ecb x2 on cpu{arithmetic}," in capsys.readouterr().out  # the default


# 12i. `vidsr models` shows the cards' figures
def test_models_table_shows_set5_set14_psnr(capsys: pytest.CaptureFixture[str]) -> None:
    from vidsr.engine.upscaler import model_listing

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "x2 Set5/Set14" in out.splitlines()[0]
    fast = next(r for r in model_listing() if r["name"] == "fast")
    v = fast["validation"]["2"]
    row = next(line for line in out.splitlines() if line.startswith("fast "))
    assert f"{v['Set5']['psnr_y']:.2f}/{v['Set14']['psnr_y']:.2f}" in row


# 12j. `train` says what it is doing from the start
def test_train_prints_its_start_up_stages(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train(dataset, tmp_path / "run", "--log-every", "2") == 0
    lines = capsys.readouterr().out.splitlines()
    stages = ["training fast x2", "dataset ", "model fast x2 built", "step 1 done", "step=2"]
    found = [next(i for i, line in enumerate(lines) if s in line) for s in stages]
    assert found == sorted(found), lines


# 12k. every option of `vidsr train` and `vidsr dataset build` has help and its default
@pytest.mark.parametrize("command", [("train",), ("dataset", "build")])
def test_train_and_dataset_options_have_help_and_defaults(command: tuple[str, ...]) -> None:
    parser: argparse.ArgumentParser = build_parser()
    for name in command:
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[name]
    text = " ".join(parser.format_help().split())
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction) or not action.option_strings:
            continue
        assert action.help, action.option_strings
        flag = isinstance(action, argparse._StoreTrueAction)
        if not (action.required or flag or action.default == []):
            shown = " ".join(f"{action.help} (default: {action.default})".split())
            assert shown in text, action.option_strings


# 12l. `upscale` takes -i, -s and -m as ffmpeg / Video2X users type them
def test_upscale_short_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = make_video(tmp_path / "a.mp4", n=3)
    out = tmp_path / "o.mp4"
    assert (
        main(
            [
                "upscale",
                "-i",
                str(src),
                "-s",
                "3",
                "-m",
                "bicubic",
                "--device",
                "cpu",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    with av.open(str(out)) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (192, 144)
    capsys.readouterr()
    assert main(["upscale", str(src), "-i", str(src)]) == 1
    assert "give the input once" in one_error_line(capsys.readouterr().err)
