"""The recurrent (temporal) model through every pipeline: frames in order, state reset at
cuts, gaps and dropped frames, tiles and CPU workers, refused where it cannot work.

Random-initialised nets (no shipped weights yet), made "lively" (the recurrent inputs at
full strength, not near zero as the warm-start init has them) so the state visibly
changes the output."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_lossless_video
from PIL import Image
from safetensors.torch import save_file

from vidsr.colour.convert import YuvFormat, codes_to_norm, norm_to_codes
from vidsr.config import RunConfig
from vidsr.engine.processor import FrameProcessor, PlaneFormats, ProcessorOptions
from vidsr.engine.recurrent import StatefulRunner, TileGrid, even_tile, fixed_spans
from vidsr.engine.tiling import tile_spans
from vidsr.engine.upscaler import load_model
from vidsr.errors import OptionError
from vidsr.media.capture import CapturedFrame
from vidsr.media.planes import HostFrame
from vidsr.models.contract import SRModel
from vidsr.models.temporal import RecurrentSR
from vidsr.pipeline.folders import upscale_folder, video_to_folder
from vidsr.pipeline.live.stream import StreamConfig, _Session

FMT = YuvFormat(1, False, 8)
FORMATS = PlaneFormats(FMT, FMT, "yuv444p")


def lively(net: RecurrentSR) -> RecurrentSR:
    """Undo the near-single-frame init: the state then matters."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in net.parameters():
            p.normal_(0.0, 0.08)
    return net.eval()


def tiny(scale: int) -> SRModel:
    torch.manual_seed(0)
    net = lively(RecurrentSR(scale, feats=8, blocks=1, hidden=4))
    model = SRModel(
        net, name="temporal", family="temporal", scale=scale, colour="luma", receptive_radius=6
    )
    return model.eval()


def weights_file(folder: Path, scale: int) -> Path:
    """A ``vidsr train --export``-style file of the registry's temporal net (``--model FILE``)."""
    path = folder / f"temporal_x{scale}.safetensors"
    state = {k: v.contiguous() for k, v in lively(RecurrentSR(scale)).state_dict().items()}
    save_file(state, str(path), metadata={"arch": "temporal", "scale": str(scale)})
    return path


def shot(kind: int, n: int, size: tuple[int, int] = (48, 32)) -> list[np.ndarray]:
    """``n`` RGB frames of one smooth shot: a picture drifting 1 px per frame."""
    w, h = size
    yy, xx = np.mgrid[0 : h + n, 0 : w + n].astype(np.float32)
    if kind == 0:
        img = np.stack([xx * 4, yy * 5, 255 - xx * 3], -1)
    else:
        img = 128 + 100 * np.stack([np.sin(xx / 3), np.cos(yy / 4), np.sin((xx + yy) / 5)], -1)
    img = np.clip(img, 0, 255).astype(np.uint8)
    return [np.ascontiguousarray(img[i : i + h, i : i + w]) for i in range(n)]


def no_reset_at_cuts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The runner resets only at its first frame and at size changes: cuts ignored."""
    original = StatefulRunner.resets_at
    monkeypatch.setattr(
        StatefulRunner, "resets_at", lambda self, _shot, size: original(self, False, size)
    )


def hand_stepped(model: SRModel, frames: list[np.ndarray], tile: int | None) -> list[np.ndarray]:
    """Reference: the net stepped by hand over ``frames`` (Y codes) in order, each tile
    window (as single-frame tiling cuts them, cores evened out along each axis) with its
    own state; 8-bit codes out."""
    h, w = frames[0].shape
    s = model.scale
    overlap = max(model.receptive_radius, 4)
    rows = list(tile_spans(h, even_tile(h, tile), overlap)) if tile else [(0, h, 0, h)]
    cols = list(tile_spans(w, even_tile(w, tile), overlap)) if tile else [(0, w, 0, w)]
    states: dict[tuple[int, int], torch.Tensor | None] = {}
    out = []
    with torch.inference_mode():
        for y in frames:
            x = codes_to_norm(torch.from_numpy(y), 8)[None, None]
            big = torch.zeros((s * h, s * w))
            for i, r in enumerate(rows):
                for j, c in enumerate(cols):
                    sr, states[i, j] = model.step(
                        x[..., r[2] : r[3], c[2] : c[3]], states.get((i, j))
                    )
                    top, left = (r[0] - r[2]) * s, (c[0] - c[2]) * s
                    big[r[0] * s : r[1] * s, c[0] * s : c[1] * s] = sr[
                        0, 0, top : top + (r[1] - r[0]) * s, left : left + (c[1] - c[0]) * s
                    ]
            out.append(norm_to_codes(big, 8).numpy())
    return out


def host_frames(ys: list[np.ndarray], cut_at: int | None = None) -> list[HostFrame]:
    grey = np.full_like(ys[0], 128)
    return [
        HostFrame(i, i, 1, (y, grey, grey), new_shot=i == 0 or i == cut_at)
        for i, y in enumerate(ys)
    ]


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_step_shapes_and_constant_state(scale: int) -> None:
    model = tiny(scale)
    x = torch.rand(2, 1, 13, 17)
    state = None
    for _ in range(3):
        with torch.inference_mode():
            sr, state = model.step(x, state)
        assert sr.shape == (2, 1, 13 * scale, 17 * scale)
        assert float(sr.min()) >= 0.0 and float(sr.max()) <= 1.0
        assert state.shape == (2, 1 + 4 + scale * scale, 13, 17)  # one frame's worth
    runner = StatefulRunner(model, tile=16)
    held = []
    for _ in range(4):
        out = runner.run(torch.rand(3, 1, 40, 52), [False, False, False])
        assert out.shape == (3, 1, 40 * scale, 52 * scale)
        held.append(sum(st.numel() for st in runner._states if st is not None))
    assert len(runner._states) == len(TileGrid.tiled(40, 52, 16, 6, same_size=False)) == 12
    # one frame's worth (its tiles' overlap included), whatever the number of frames
    assert len(set(held)) == 1 and held[0] <= 3 * (1 + 4 + scale * scale) * 40 * 52
    assert runner.resets == 1  # the first frame only


def test_fixed_spans_cover_the_axis_with_equal_windows() -> None:
    for length, tile, overlap in [(100, 30, 8), (64, 16, 16), (40, 100, 4), (57, 10, 3)]:
        spans = fixed_spans(length, tile, overlap)
        assert spans[0][0] == 0 and spans[-1][1] == length
        assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
        assert len({e - s for *_, s, e in spans}) == 1
        for core_s, core_e, ctx_s, ctx_e in spans:
            assert ctx_s <= core_s and core_e <= ctx_e and 0 <= ctx_s and ctx_e <= length
            assert ctx_s == 0 or core_s - ctx_s >= overlap
            assert ctx_e == length or ctx_e - core_e >= overlap


@pytest.mark.parametrize(("tile", "workers", "batch"), [(None, 1, 1), (None, 2, 4), (12, 2, 3)])
def test_frame_order_kept_through_workers_tiles_and_batches(
    tile: int | None, workers: int, batch: int
) -> None:
    model = tiny(2)
    rng = np.random.default_rng(0)
    ys = [rng.integers(0, 256, (30, 44), dtype=np.uint8) for _ in range(7)]
    # fp32: the reference below steps the model by hand in fp32
    options = ProcessorOptions(tile=tile, cpu_workers=workers, precision="fp32")
    processor = FrameProcessor(model, torch.device("cpu"), FORMATS, options)
    # the processor's own copy of the net (folded reconstruction, channels-last)
    expected = hand_stepped(processor.model, ys, tile)
    assert processor.recurrent is not None and processor.max_in_flight == 1
    frames = host_frames(ys)
    got = []
    try:
        pending = [processor.submit(frames[i : i + batch]) for i in range(0, len(frames), batch)]
        got = [planes[0] for p in pending for planes in p.result()]
    finally:
        processor.close()
    for i, (a, b) in enumerate(zip(got, expected, strict=True)):
        assert np.array_equal(a, b), f"frame {i}: {np.abs(a.astype(int) - b).max()}"
    # the state matters: a frame stepped from the reset state differs from frame 3's output
    assert not np.array_equal(hand_stepped(processor.model, ys[3:4], tile)[0], expected[3])


def test_tiles_grouped_per_call_equal_one_tile_per_call() -> None:
    """On a GPU tiles of a frame (all of one size) go through one call; each still keeps
    its own state."""
    model = tiny(3)
    x = torch.rand(5, 1, 40, 52)
    one_by_one = StatefulRunner(model, tile=10, call_pixels=1)
    one = one_by_one.run(x, [False] * 5)
    assert len(one_by_one._chunks) == len(one_by_one._grid) > 4
    grouped = StatefulRunner(model, tile=10, call_pixels=10**6)
    assert len(grouped._chunks) == 0
    out = grouped.run(x, [False] * 5)
    assert len(grouped._chunks) == 1 and len(grouped._grid) > 4
    assert torch.allclose(one, out, atol=1e-5)


def _two_shot_clip(tmp_path: Path) -> tuple[Path, Path, int]:
    first, second = shot(0, 12), shot(1, 5)  # the detector wants shots of 10+ frames
    both = write_lossless_video(tmp_path / "both.mkv", first + second)
    alone = write_lossless_video(tmp_path / "second.mkv", second)
    return both, alone, len(first)


def _pngs(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))]


def test_no_bleed_across_a_cut(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    both, alone, cut = _two_shot_clip(tmp_path)
    config = RunConfig(model=str(weights_file(tmp_path, 2)), scale=2, device="cpu", colour="off")
    resets: list[int] = []
    original = StatefulRunner.reset
    monkeypatch.setattr(
        StatefulRunner, "reset", lambda self, size: (resets.append(1), original(self, size))[1]
    )
    video_to_folder(both, tmp_path / "both", config)
    assert len(resets) == 2  # the clip's first frame and the cut, nothing else
    video_to_folder(alone, tmp_path / "alone", config)
    out_both, out_alone = _pngs(tmp_path / "both"), _pngs(tmp_path / "alone")
    assert len(out_both) == cut + len(out_alone)
    for i, frame in enumerate(out_alone):
        assert np.array_equal(out_both[cut + i], frame), f"frame {cut + i} after the cut"

    no_reset_at_cuts(monkeypatch)  # the same run with the reset at the cut switched off
    video_to_folder(both, tmp_path / "bleed", config)
    bled = _pngs(tmp_path / "bleed")
    assert np.array_equal(bled[cut - 1], out_both[cut - 1])  # same before the cut
    assert not np.array_equal(bled[cut], out_alone[0])  # the first shot leaks into the second


def test_video_file_end_to_end_at_x4(tmp_path: Path) -> None:
    from vidsr.pipeline.video import upscale_video

    src = write_lossless_video(tmp_path / "in.mkv", shot(0, 5))
    config = RunConfig(model=str(weights_file(tmp_path, 4)), scale=4, device="cpu")
    summary = upscale_video(src, tmp_path / "out.mkv", config)
    assert summary.frames == 5


def _save(folder: Path, names: list[str], frames: list[np.ndarray]) -> Path:
    folder.mkdir()
    for name, frame in zip(names, frames, strict=True):
        Image.fromarray(frame).save(folder / f"{name}.png")
    return folder


def test_folder_is_one_clip_in_name_order_and_a_size_change_resets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = str(weights_file(tmp_path, 2))
    config = RunConfig(model=model, scale=2, device="cpu", colour="off")
    frames = shot(0, 6)
    odd = shot(1, 1, size=(40, 24))[0]  # another size between frames 3 and 4
    # natural order img9 < img10 (name order would put img10.. first)
    names = [f"img{i}" for i in range(9, 16)]
    mixed = _save(tmp_path / "mixed", names, frames[:4] + [odd] + frames[4:])
    upscale_folder(mixed, tmp_path / "mixed_x2", config)
    out = {n: np.asarray(Image.open(tmp_path / "mixed_x2" / f"{n}.png")) for n in names}

    plain = _save(tmp_path / "plain", [f"a{i}" for i in range(4)], frames[:4])
    upscale_folder(plain, tmp_path / "plain_x2", config)
    for i, ref in enumerate(_pngs(tmp_path / "plain_x2")):
        assert np.array_equal(out[names[i]], ref), f"{names[i]}: frames out of name order"

    tail = _save(tmp_path / "tail", ["b0", "b1"], frames[4:])
    upscale_folder(tail, tmp_path / "tail_x2", config)
    for name, ref in zip(names[5:], _pngs(tmp_path / "tail_x2"), strict=True):
        assert np.array_equal(out[name], ref), f"{name}: state carried over the other size"

    no_reset_at_cuts(monkeypatch)  # the gap is then not a reset: frame 4 continues frame 3
    upscale_folder(mixed, tmp_path / "carried", config)
    carried = np.asarray(Image.open(tmp_path / "carried" / f"{names[5]}.png"))
    assert not np.array_equal(carried, out[names[5]])


def test_stream_resets_after_dropped_frames(tmp_path: Path) -> None:
    run = RunConfig(model=str(weights_file(tmp_path, 2)), scale=2, device="cpu", colour="off")
    session = _Session(StreamConfig("lavfi:testsrc2=size=32x24:rate=30", run), threading.Event())
    processor = FrameProcessor(load_model(run.model, 2), torch.device("cpu"), FORMATS)
    session.processor = processor
    y = np.full((24, 32), 100, np.uint8)
    uv = np.full((12, 16), 128, np.uint8)
    try:
        assert processor.recurrent is not None
        for index in [0, 1, 2, 5, 6, 7, 9]:  # captures 3, 4 and 8 were dropped
            session._output(CapturedFrame(index, time.perf_counter(), (y, uv, uv)))
        assert processor.recurrent.resets == 3  # the first frame, after 4 and after 8
    finally:
        session.close()


def test_self_ensemble_and_compile_refused_in_one_line(tmp_path: Path) -> None:
    model = weights_file(tmp_path, 2)
    with pytest.raises(OptionError, match="--self-ensemble does not work with the recurrent"):
        load_model(str(model), 2, self_ensemble=True)
    with pytest.raises(OptionError, match="--compile does not work with the recurrent"):
        FrameProcessor(tiny(2), torch.device("cpu"), FORMATS, ProcessorOptions(compile_model=True))


def test_cli_refuses_self_ensemble_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from vidsr.cli import main

    src = write_lossless_video(tmp_path / "in.mkv", shot(0, 2))
    model = str(weights_file(tmp_path, 2))
    code = main(["upscale", str(src), "--model", model, "--self-ensemble", "--device", "cpu"])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert code != 0 and len(err) == 1 and "--self-ensemble does not work" in err[0]


def test_resumed_video_to_folder_restarts_after_the_frames_skipped() -> None:
    from vidsr.pipeline.folders import _skip_done

    grey = np.zeros((2, 2), np.uint8)
    frames = [HostFrame(i, i, 1, (grey, grey, grey), new_shot=i == 0) for i in range(6)]
    written = {0, 1, 3}  # outputs already there
    for restart, expected in [(True, [2, 4]), (False, [2])]:  # frame 0's mark moves to 2
        for f in frames:
            f.new_shot = f.index == 0
        items = _skip_done(
            lambda _stop: iter(frames), lambda f: f.index in written, restart=restart
        )
        kept = list(items(threading.Event()))
        assert [f.index for f in kept] == [2, 4, 5]
        assert [f.index for f in kept if f.new_shot] == expected


def test_recurrent_tiles_are_evened_out_for_the_workers() -> None:
    # 640 px at tile 384: two cores of 320 (windows of equal work), not 384 + 256.
    assert even_tile(640, 384) == 320 and even_tile(360, 384) == 360
    assert even_tile(1080, 192) == 180 and even_tile(100, 7) == 7
    grid = TileGrid.tiled(360, 640, 384, 24, same_size=False)
    widths = [c[3] - c[2] for c in grid.cols]
    assert [c[:2] for c in grid.cols] == [(0, 320), (320, 640)] and widths == [344, 344]
    assert grid.rows == ((0, 360, 0, 360),)
