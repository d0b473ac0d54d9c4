"""Build a patch training set from videos and image folders.

Steps, per input (in sorted order, so a seed always gives the same bytes):

1. Frames: images are read with Pillow; videos are decoded with PyAV, streaming. A video
   frame is kept only if it is not black, not flat, and differs enough from the last kept
   frame (a cheap test on a 32x32 grey thumbnail), which drops static and duplicate
   frames. When the frames per video are capped (``max_frames``, ``frames_per_shot``), a
   first pass finds the video's shots (:func:`vidsr.media.shot_scan.detect_shots`) and the
   budget is spread evenly over the shots and over the length of each shot
   (:func:`plan_targets`), so a capped sample covers the whole video rather than its opening.
2. Patches: the frame is mod-cropped, downscaled once with MATLAB-compatible bicubic
   (:func:`vidsr.eval.resize.bicubic_downscale`), and aligned HR/LR patches are cut at random
   LR-grid positions, so no patch suffers a border effect of its own.
3. Degradations (optional, :mod:`vidsr.training.degrade`) are applied to each frame's LR
   patches.

   Codec mode (``config.codec``, :mod:`vidsr.training.sequences`) replaces steps 2-3: each
   image gives ``sequences`` short sequences moved by smooth sub-pixel motion, each kept video
   frame starts a run of consecutive frames, and every sequence is downscaled, encoded and
   decoded as a whole (:mod:`vidsr.training.codec_degrade`) before patches are cut from its
   decoded frames; the point degradations, if any, follow on the LR patches.
4. Shards of ``shard_size`` pairs are flushed as they fill (memory stays bounded); the
   manifest is written last.

The patches are read back with :class:`vidsr.training.shards.ShardDataset`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from vidsr.config import IMAGE_EXTENSIONS
from vidsr.errors import InputError, OptionError, OutputExistsError
from vidsr.eval.resize import bicubic_downscale, modcrop
from vidsr.media.decoding import decode_first_video
from vidsr.media.shot_scan import detect_shots
from vidsr.training import codec_degrade, degrade, seqbuild, sequences
from vidsr.training.codec_degrade import CodecSpec
from vidsr.training.shards import FORMAT, MANIFEST, SEQ_FORMAT, ShardDataset, ShardWriter

__all__ = [
    "DatasetConfig",
    "FrameFilter",
    "ShardDataset",
    "build_dataset",
    "list_inputs",
    "plan_targets",
]

VIDEO_SUFFIXES = (".mkv", ".mp4", ".avi", ".mov", ".webm", ".y4m", ".ts", ".m4v", ".mpg", ".nut")

Progress = Callable[[str, int], None]


@dataclass(frozen=True)
class DatasetConfig:
    """How to cut a training set. Sizes are in HR pixels.

    Attributes:
        scale: integer SR factor; ``patch`` must be a multiple of it.
        patch: HR patch side ``P``; LR patches are ``P / scale``.
        seed: seeds every random choice (patch positions, noise).
        max_patches: at most this many patches per image or kept video frame.
        coverage: patches per frame ~ ``coverage * H * W / P**2`` (capped by ``max_patches``).
        frame_step: consider only every ``frame_step``-th decoded video frame.
        max_frames: keep at most this many frames per video (0: no limit), spread
            evenly over its shots.
        frames_per_shot: keep at most this many frames per shot (0: no limit), spread
            evenly over the shot.
        black_level: frames whose mean grey level (0..255) is below this are skipped.
        min_std: frames whose grey standard deviation is below this (flat) are skipped.
        min_diff: frames whose mean absolute thumbnail difference from the last kept frame
            is below this (duplicates, static shots) are skipped.
        shard_size: patch pairs per shard file.
        degradations: applied to LR patches in order.
        codec: when set, LR patches come from codec-degraded sequences (see module doc);
            ``max_patches`` and ``coverage`` then count per sequence and its window.
        sequences: codec mode, sequences per image (each with its own motion and codec);
            sequence mode, sequences per image or per run of video frames.
        frames: sequence mode when >= 2: each sample is ``frames`` consecutive aligned
            LR/HR frames of one patch (:mod:`vidsr.training.seqbuild`), for recurrent nets;
            0: single patches.
        cut_rate: sequence mode, the share of still sequences that cut to another image.
    """

    scale: int
    patch: int = 48
    seed: int = 0
    max_patches: int = 64
    coverage: float = 2.0
    frame_step: int = 1
    max_frames: int = 0
    frames_per_shot: int = 0
    black_level: float = 12.0
    min_std: float = 3.0
    min_diff: float = 3.0
    shard_size: int = 1024
    degradations: tuple[degrade.Degradation, ...] = field(default_factory=tuple)
    codec: CodecSpec | None = None
    sequences: int = 1
    frames: int = 0
    cut_rate: float = 0.1

    def __post_init__(self) -> None:
        if self.scale < 1:
            raise OptionError(f"scale must be >= 1, got {self.scale}")
        if self.patch < self.scale or self.patch % self.scale:
            raise OptionError(f"patch {self.patch} must be a multiple of scale {self.scale}")
        if self.max_patches < 1 or self.frame_step < 1 or self.shard_size < 1:
            raise OptionError("max_patches, frame_step and shard_size must be >= 1")
        if self.sequences < 1:
            raise OptionError(f"sequences must be >= 1, got {self.sequences}")
        if self.frames == 1 or self.frames < 0 or self.frames > 255:
            raise OptionError(f"frames must be 0 (patches) or 2..255, got {self.frames}")
        if not 0.0 <= self.cut_rate <= 1.0:
            raise OptionError(f"cut_rate must be in [0, 1], got {self.cut_rate}")
        if self.frames and self.codec is not None and (self.patch // self.scale) % 2:
            raise OptionError("sequence mode with a codec needs an even LR patch side")
        if self.max_frames < 0 or self.frames_per_shot < 0:
            raise OptionError("max_frames and frames_per_shot must be >= 0 (0: no limit)")

    @property
    def capped(self) -> bool:
        """Whether video frames are sampled to a budget (which needs the shot pass)."""
        return self.max_frames > 0 or self.frames_per_shot > 0


class FrameFilter:
    """Decides whether a video frame is worth sampling (stateful: remembers the last kept)."""

    def __init__(self, black_level: float, min_std: float, min_diff: float) -> None:
        self.black_level = black_level
        self.min_std = min_std
        self.min_diff = min_diff
        self._last: np.ndarray | None = None
        self.skipped = {"black": 0, "flat": 0, "duplicate": 0}

    def keep(self, rgb: np.ndarray) -> bool:
        """``rgb``: ``(H, W, 3)`` uint8. Returns False (and counts why) for useless frames."""
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        thumb = cv2.resize(grey, (32, 32), interpolation=cv2.INTER_AREA).astype(np.float32)
        if thumb.mean() < self.black_level:
            self.skipped["black"] += 1
            return False
        if thumb.std() < self.min_std:
            self.skipped["flat"] += 1
            return False
        if self._last is not None and np.abs(thumb - self._last).mean() < self.min_diff:
            self.skipped["duplicate"] += 1
            return False
        self._last = thumb
        return True


def list_inputs(inputs: Sequence[Path | str]) -> list[tuple[Path, str]]:
    """Expand files and folders into sorted ``(path, "image"|"video")`` pairs.

    Raises:
        InputError: a path does not exist, or a folder holds no image or video.
    """
    found: list[tuple[Path, str]] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file())
            items = [(p, _kind(p)) for p in files if _kind(p)]
            if not items:
                raise InputError(f"no images or videos in folder {path}")
            found.extend(items)
        elif path.is_file():
            found.append((path, _kind(path) or "video"))  # unknown suffix: let PyAV try
        else:
            raise InputError(f"input not found: {path}")
    return found


def _kind(path: Path) -> str:
    suffix = path.suffix.lower()
    return "image" if suffix in IMAGE_EXTENSIONS else "video" if suffix in VIDEO_SUFFIXES else ""


def _read_image(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except OSError as e:
        raise InputError(f"cannot read image {path}: {e}") from e


def cut_patches(
    frame: np.ndarray, config: DatasetConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Cut aligned HR/LR patch pairs from one ``(H, W, 3)`` uint8 RGB frame.

    Returns ``(hr, lr)``: ``(n, P, P, 3)`` and ``(n, P/s, P/s, 3)`` uint8 RGB; ``n`` is 0
    when the frame is smaller than a patch.
    """
    s, P = config.scale, config.patch
    p = P // s
    hr_full = modcrop(frame, s)
    h, w = hr_full.shape[:2]
    if h < P or w < P:
        return np.zeros((0, P, P, 3), np.uint8), np.zeros((0, p, p, 3), np.uint8)
    lr_full = bicubic_downscale(np.ascontiguousarray(hr_full), s)
    n = min(config.max_patches, max(1, math.ceil(config.coverage * h * w / (P * P))))
    ys = rng.integers(0, h // s - p + 1, size=n)
    xs = rng.integers(0, w // s - p + 1, size=n)
    hr = np.stack([hr_full[y * s : y * s + P, x * s : x * s + P] for y, x in zip(ys, xs)])
    lr = np.stack([lr_full[y : y + p, x : x + p] for y, x in zip(ys, xs)])
    return hr, lr


def plan_targets(shot_lengths: Sequence[int], max_frames: int, frames_per_shot: int) -> list[int]:
    """Pick the frame indices to sample from a video with shots of ``shot_lengths`` frames.

    Each shot may give at most ``frames_per_shot`` frames (0: all of them); a total budget
    ``max_frames`` (0: none) is shared out as evenly as the shots allow: with fewer frames
    than shots, one frame each from evenly spaced shots. Within a shot the picks sit at
    the middles of equal stretches. Returns sorted indices counted from the video's first
    frame.
    """
    caps = [min(n, frames_per_shot) if frames_per_shot else n for n in shot_lengths]
    if max_frames and sum(caps) > max_frames:
        if max_frames < len(caps):
            chosen = set(np.linspace(0, len(caps) - 1, max_frames).round().astype(int).tolist())
            counts = [1 if i in chosen else 0 for i in range(len(caps))]
        else:
            counts = [0] * len(caps)
            left = max_frames
            while left:  # one more frame to every shot that can take one, in turn
                for i, cap in enumerate(caps):
                    if left and counts[i] < cap:
                        counts[i] += 1
                        left -= 1
    else:
        counts = caps
    targets: list[int] = []
    start = 0
    for n, k in zip(shot_lengths, counts):
        targets += [start + int((j + 0.5) * n / k) for j in range(k)]
        start += n
    return targets


class _TargetCursor:
    """Walks a capped video's planned targets: a decoded frame is wanted from a target's
    index on until one is used, so a frame the filter rejects passes its turn to the
    next (up to the next target)."""

    def __init__(self, targets: list[int]) -> None:
        self._targets = targets
        self._next = 0
        self._pending = False

    def wants(self, index: int) -> bool:
        while self._next < len(self._targets) and self._targets[self._next] <= index:
            self._pending = True
            self._next += 1
        return self._pending

    def taken(self) -> None:
        self._pending = False


def _sample_input(
    path: Path,
    kind: str,
    config: DatasetConfig,
    rng: np.random.Generator,
    writer: ShardWriter,
    progress: Progress | None,
    input_index: int = 0,
) -> dict:
    """Cut patches from one image or video (input number ``input_index``) into ``writer``; returns
    its manifest record (``shots`` and the used ``frame_indices`` too for a capped video)."""
    record: dict = {
        "path": str(path),
        "kind": kind,
        "frames_seen": 0,
        "frames_used": 0,
        "patches": 0,
    }
    out = _Output(config, writer, progress, path, record)
    if config.codec is not None:
        return _sample_codec(out, kind, input_index)
    if kind == "image":
        record["frames_seen"] = 1
        _cut_into(_read_image(path), out, rng)
        return record
    cursor = None
    if config.capped:
        shots = detect_shots(path)
        record["shots"] = len(shots)
        record["frame_indices"] = []
        cursor = _TargetCursor(
            plan_targets([shot.frames for shot in shots], config.max_frames, config.frames_per_shot)
        )
    frame_filter = FrameFilter(config.black_level, config.min_std, config.min_diff)
    frames = decode_first_video(path)
    try:
        for index, (frame, _rate) in enumerate(frames):
            if (cursor is not None and not cursor.wants(index)) or index % config.frame_step:
                continue
            record["frames_seen"] += 1
            rgb = frame.to_ndarray(format="rgb24")
            if not frame_filter.keep(rgb) or not _cut_into(rgb, out, rng):
                continue
            if cursor is not None:
                cursor.taken()
                record["frame_indices"].append(index)
            if config.max_frames and record["frames_used"] >= config.max_frames:
                break
    finally:
        frames.close()  # stop decoding, close the container
    record["skipped"] = dict(frame_filter.skipped)
    return record


@dataclass(frozen=True)
class _Output:
    """Where one input's patches go: the shards, the progress report and the input's
    manifest record (``path``'s)."""

    config: DatasetConfig
    writer: ShardWriter
    progress: Progress | None
    path: Path
    record: dict

    def store(self, hr: np.ndarray, lr: np.ndarray, rng: np.random.Generator) -> None:
        """Apply the point degradations to the ``lr`` patches, write the pairs, count them
        in the record and report them."""
        if self.config.degradations:
            lr = degrade.apply(lr, self.config.degradations, rng)
        self.writer.add(hr, lr)
        self.record["patches"] += len(hr)
        if self.progress is not None:
            self.progress(self.path.name, len(hr))


def _cut_into(frame: np.ndarray, out: _Output, rng: np.random.Generator) -> bool:
    """Cut, degrade and store one frame's patches; False when it is smaller than a patch."""
    hr, lr = cut_patches(frame, out.config, rng)
    if len(hr) == 0:
        return False
    out.store(hr, lr, rng)
    out.record["frames_used"] += 1
    return True


def build_dataset(
    inputs: Sequence[Path | str],
    out_dir: Path | str,
    config: DatasetConfig,
    *,
    overwrite: bool = False,
    progress: Progress | None = None,
) -> dict:
    """Build a shard dataset in ``out_dir`` from images, image folders and videos.

    Args:
        inputs: files or folders (searched recursively for images and videos).
        out_dir: created if missing; must be empty unless ``overwrite``. A build that fails
            (or is interrupted) removes the shards it wrote, and the folder if it made it.
        config: patch size, scale, seed, frame filter and degradations.
        progress: called as ``progress(name, n_patches)`` after each image or video frame.

    Returns:
        The manifest dict (also written to ``out_dir/manifest.json``).

    Raises:
        InputError: an input is missing, unreadable, or yields no patches at all.
        OutputExistsError: ``out_dir`` holds files and ``overwrite`` is False.
    """
    items = list_inputs(inputs)
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise OutputExistsError(f"{out} is not empty; pass --overwrite or pick a new folder")
        for old in list(out.glob("shard_*.safetensors")) + [out / MANIFEST]:
            old.unlink(missing_ok=True)
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)

    rng = np.random.default_rng(config.seed)
    writer = ShardWriter(out, config.shard_size)
    try:
        if config.frames:
            records = _sample_sequences(items, config, writer, progress)
        else:
            records = [
                _sample_input(path, kind, config, rng, writer, progress, i)
                for i, (path, kind) in enumerate(items)
            ]
        shards = writer.close()
        if writer.count == 0:
            raise InputError(f"no patches of {config.patch}px could be cut from the inputs")
    except BaseException:
        # No manifest means no dataset: take back the shards this run wrote (and the folder
        # when this run made it), so a failed or interrupted build leaves nothing behind.
        _remove_partial(out, writer, created)
        raise

    settings = asdict(config)
    settings["degradations"] = [d.spec() for d in config.degradations]
    if config.codec is not None:
        settings["degradations"].insert(0, config.codec.spec())
    manifest = {
        "format": SEQ_FORMAT if config.frames else FORMAT,
        "scale": config.scale,
        "patch": config.patch,
        "lr_patch": config.patch // config.scale,
        "seed": config.seed,
        "count": writer.count,
        "layout": _SEQ_LAYOUT if config.frames else _LAYOUT,
        "lr_method": _lr_method(config),
        "degradations": settings.pop("degradations"),
        "settings": settings,
        "inputs": records,
        "shards": shards,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return manifest


def _store_sample(patches: sequences.Patches, out: _Output, rng: np.random.Generator) -> None:
    """Store one codec sample's patches (point degradations after) and note what it drew."""
    out.store(patches.hr, patches.lr, rng)
    record = out.record
    record["samples"].append(patches.params.record())
    for t in patches.types:
        record["picture_types"][t] = record["picture_types"].get(t, 0) + 1


def _sample_codec(out: _Output, kind: str, index: int) -> dict:
    """Codec mode: ``config.sequences`` sequences per image, one per kept video frame, of
    input number ``index``; returns its record."""
    config, path, record = out.config, out.path, out.record
    assert config.codec is not None
    record.update(samples=[], picture_types={})
    if kind == "video":
        return _codec_video(out, index)
    image = _read_image(path)
    record["frames_seen"] = 1
    p = config.patch // config.scale
    for k in range(config.sequences):
        rng = sequences.sample_rng(config.seed, index, k)
        patches = sequences.from_still(
            image,
            config.scale,
            p,
            config.codec,
            coverage=config.coverage,
            max_patches=config.max_patches,
            rng=rng,
        )
        if patches is None:
            break
        _store_sample(patches, out, rng)
    record["frames_used"] = min(1, len(record["samples"]))
    return record


class _Chunk:
    """A run of consecutive video frames being collected for one codec sample."""

    def __init__(
        self,
        rng: np.random.Generator,
        params: codec_degrade.SampleParams,
        crop: tuple[int, int, int, int],
    ) -> None:
        self.rng, self.params, self.crop = rng, params, crop
        self.frames: list[np.ndarray] = []

    def add(self, rgb: np.ndarray) -> bool:
        """Add an ``(H, W, 3)`` frame (cropped here); True once the run is full."""
        y, x, h, w = self.crop
        self.frames.append(np.ascontiguousarray(rgb[y : y + h, x : x + w]))
        return len(self.frames) >= self.params.frames


def _codec_video(out: _Output, index: int) -> dict:
    """Each kept (and, when capped, planned) frame of input number ``index`` starts a run of
    ``frames`` consecutive frames, cropped to one window; ``frames_used`` counts runs."""
    config, path, record = out.config, out.path, out.record
    assert config.codec is not None
    spec, p = config.codec, config.patch // config.scale
    cursor = None
    if config.capped:
        shots = detect_shots(path)
        record.update(shots=len(shots), frame_indices=[])
        cursor = _TargetCursor(
            plan_targets([shot.frames for shot in shots], config.max_frames, config.frames_per_shot)
        )
    frame_filter = FrameFilter(config.black_level, config.min_std, config.min_diff)
    chunk: _Chunk | None = None

    def finish(run: _Chunk) -> None:
        params = replace(run.params, frames=len(run.frames))
        patches = sequences.from_frames(
            np.stack(run.frames),
            config.scale,
            p,
            params,
            coverage=config.coverage,
            max_patches=config.max_patches,
            rng=run.rng,
        )
        _store_sample(patches, out, run.rng)

    frames = decode_first_video(path)
    try:
        for i, (frame, _rate) in enumerate(frames):
            if chunk is None:
                if (cursor is not None and not cursor.wants(i)) or i % config.frame_step:
                    continue
                if config.max_frames and record["frames_used"] >= config.max_frames:
                    break
                record["frames_seen"] += 1
                rgb = frame.to_ndarray(format="rgb24")
                rng = sequences.sample_rng(config.seed, index, record["frames_used"])
                params = codec_degrade.draw_params(spec, rng)
                crop = sequences.video_crop(rgb.shape[:2], config.scale, p, spec, rng)
                if crop is None or not frame_filter.keep(rgb):
                    continue
                chunk = _Chunk(rng, params, crop)
                record["frames_used"] += 1
                if cursor is not None:
                    cursor.taken()
                    record["frame_indices"].append(i)
            else:
                rgb = frame.to_ndarray(format="rgb24")
            if chunk.add(rgb):
                finish(chunk)
                chunk = None
        if chunk is not None:  # the video ended inside a run: use what there is
            finish(chunk)
    finally:
        frames.close()
    record["skipped"] = dict(frame_filter.skipped)
    return record


_LR_METHOD = "modcrop, MATLAB-compatible bicubic (PIL) of the whole frame, then crop"
_LR_METHOD_CODEC = (
    "codec sequences: stills moved by smooth sub-pixel motion (Lanczos-4 warp) "
    "or consecutive video frames, cropped to a window; blur, antialiased "
    "downscale (drawn kernel), noise, YUV 4:2:0, one in-memory encode + decode "
    "per sequence (drawn codec settings, see inputs[].samples); patches cut "
    "from random decoded frames"
)


_LAYOUT = "hr (N, P, P, 3) uint8 RGB; lr (N, P/scale, P/scale, 3) uint8 RGB"
_SEQ_LAYOUT = "hr (N, T, P, P, 3) uint8 RGB; lr (N, T, P/scale, P/scale, 3) uint8 RGB"
_LR_METHOD_SEQ = (
    "sequences of one patch: stills moved by smooth sub-pixel motion (Lanczos-4 warp of a "
    "window with a {m}-LR-pixel margin, pan <= {v} LR px/frame, zoom {z}, rotation {r} deg, "
    "cut to another image in cut_rate of them), or runs of consecutive video frames; "
    "LR by {lr}, margin cropped"
)


def _lr_method(config: DatasetConfig) -> str:
    """The manifest's ``lr_method`` line for ``config``."""
    if not config.frames:
        return _LR_METHOD_CODEC if config.codec else _LR_METHOD
    lr = "the codec in the loop per sequence" if config.codec else "MATLAB bicubic per frame"
    return _LR_METHOD_SEQ.format(
        m=seqbuild.MARGIN, v=seqbuild.SPEED_LR, z=seqbuild.ZOOM, r=seqbuild.ROTATE, lr=lr
    )


def _sample_sequences(
    items: list[tuple[Path, str]],
    config: DatasetConfig,
    writer: ShardWriter,
    progress: Progress | None,
) -> list[dict]:
    """Sequence mode: ``config.sequences`` sequences per image (a cut goes to the previous
    image) or per run of ``config.frames`` video frames; returns the inputs' records.
    Memory: one image, the previous one and one video run."""
    records = []
    previous: np.ndarray | None = None
    for index, (path, kind) in enumerate(items):
        record: dict = {"path": str(path), "kind": kind, "frames_seen": 0, "frames_used": 0}
        record.update(patches=0, cuts=0)
        out = _Output(config, writer, progress, path, record)
        if kind == "image":
            image = _read_image(path)
            _still_sequences(image, image if previous is None else previous, out, index)
            previous = image
        else:
            _video_sequences(out, index)
        records.append(record)
    return records


def _store_sequence(sample: seqbuild.SeqSample, out: _Output, rng: np.random.Generator) -> None:
    """Store one sequence (point degradations on its LR frames) and count its cut."""
    lr = sample.lr
    if out.config.degradations:
        lr = degrade.apply(lr, out.config.degradations, rng)
    out.writer.add(sample.hr[None], lr[None])
    out.record["patches"] += 1
    out.record["cuts"] += int(sample.cut > 0)
    if out.progress is not None:
        out.progress(out.path.name, 1)


def _still_sequences(image: np.ndarray, other: np.ndarray, out: _Output, index: int) -> None:
    """``config.sequences`` moving-window sequences of ``image`` (input ``index``)."""
    config = out.config
    out.record["frames_seen"] = 1
    for k in range(config.sequences):
        rng = seqbuild.sample_rng(config.seed, index, k)
        sample = seqbuild.from_still(
            image,
            other,
            scale=config.scale,
            lr_patch=config.patch // config.scale,
            frames=config.frames,
            cut_rate=config.cut_rate,
            codec=config.codec,
            rng=rng,
        )
        if sample is None:
            break
        _store_sequence(sample, out, rng)
        out.record["frames_used"] = 1


def _video_sequences(out: _Output, index: int) -> None:
    """Each kept video frame (every ``frame_step``-th, up to ``max_frames`` runs) starts a
    run of ``config.frames`` consecutive frames; ``config.sequences`` windows per run."""
    config = out.config
    frame_filter = FrameFilter(config.black_level, config.min_std, config.min_diff)
    run: list[np.ndarray] = []
    frames = decode_first_video(out.path)
    try:
        for i, (frame, _rate) in enumerate(frames):
            if not run and i % config.frame_step:
                continue
            rgb = frame.to_ndarray(format="rgb24")
            if not run:
                out.record["frames_seen"] += 1
                if not frame_filter.keep(rgb):
                    continue
            run.append(rgb)
            if len(run) < config.frames:
                continue
            rng = seqbuild.sample_rng(config.seed, index, out.record["frames_used"])
            samples = seqbuild.from_run(
                np.stack(run),
                scale=config.scale,
                lr_patch=config.patch // config.scale,
                count=config.sequences,
                rng=rng,
            )
            run = []
            for sample in samples:
                _store_sequence(sample, out, rng)
            out.record["frames_used"] += 1
            if config.max_frames and out.record["frames_used"] >= config.max_frames:
                break
    finally:
        frames.close()
    out.record["skipped"] = dict(frame_filter.skipped)


def _remove_partial(out: Path, writer: ShardWriter, created: bool) -> None:
    """Delete the shard files ``writer`` wrote to ``out``, and ``out`` itself if this build
    created it and it is now empty."""
    for shard in writer.shards:
        (out / shard["file"]).unlink(missing_ok=True)
    if created and not any(out.iterdir()):
        out.rmdir()
