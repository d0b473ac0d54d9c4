"""Evaluate a model under the published SR protocol (what ``vidsr eval`` runs).

For every HR image (a file in a folder, or every decoded frame of a video): mod-crop to
the scale, make the LR image with MATLAB-compatible bicubic
(:func:`vidsr.eval.resize.bicubic_downscale`), upscale it with the model, and score Y-PSNR and
Y-SSIM (:mod:`vidsr.eval.metrics`) with ``scale`` border pixels cropped, next to the bicubic
baseline on the same LR image.

Luma models get the LR image's Y (MATLAB ``rgb2ycbcr``, code value / 255, not rounded),
and their Y output is rounded to integer codes before scoring, as the MATLAB scripts do;
RGB models get LR RGB, and their output is rounded to uint8 RGB before taking Y.
Grayscale images are their own Y (see :func:`vidsr.eval.metrics.luma`): luma models get the
grey plane, RGB models get it replicated and their output's Y is mapped back to full
range. Whole images are processed at once: benchmark images are small enough for the CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from vidsr.config import IMAGE_EXTENSIONS as IMAGE_SUFFIXES
from vidsr.errors import InputError
from vidsr.eval.metrics import luma, psnr, rgb_to_y, shave, ssim
from vidsr.eval.resize import bicubic_downscale, modcrop
from vidsr.models.contract import SRModel

FeatureDistance = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class _Scores:
    """Y-channel scores of the model and of the bicubic baseline; the feature distances
    (lower is better) only when one was asked for."""

    name: str
    psnr: float
    ssim: float
    bicubic_psnr: float
    bicubic_ssim: float
    feature: float | None = None
    bicubic_feature: float | None = None


@dataclass(frozen=True)
class ImageScore(_Scores):
    """Scores of one HR image (or video frame)."""


@dataclass(frozen=True, kw_only=True)
class ClipScore(_Scores):
    """Mean scores of one video or image folder, over its ``frames`` images.

    ``temporal_error`` (a clip scored as a video, see :func:`evaluate`): the mean over
    consecutive frames of ``mean |(SR_t - SR_{t-1}) - (HR_t - HR_{t-1})|`` on the scored
    Y plane (code values, border cropped), i.e. flicker the ground truth does not have;
    ``bicubic_temporal_error`` the same for the baseline."""

    frames: int
    temporal_error: float | None = None
    bicubic_temporal_error: float | None = None


@dataclass(frozen=True)
class EvalReport:
    """The result of :func:`evaluate`: per-image scores, per-source means, overall means.

    ``psnr``/``ssim`` average the per-image figures (the papers' convention for image
    sets; for videos, the mean over all frames). ``clips`` holds one row per video (one
    row for an image folder); ``clip_mean_*`` average the clip means (video papers often
    report Vid4 this way). ``self_ensemble`` says whether the model averaged the eight
    flips and rotations of each input (the baseline never does).
    """

    model: str
    family: str
    scale: int
    images: list[ImageScore]
    clips: list[ClipScore]
    psnr: float
    ssim: float
    bicubic_psnr: float
    bicubic_ssim: float
    clip_mean_psnr: float = math.nan
    clip_mean_bicubic_psnr: float = math.nan
    feature: float | None = None
    bicubic_feature: float | None = None
    self_ensemble: bool = False
    protocol: dict = field(default_factory=dict)
    temporal_error: float | None = None
    bicubic_temporal_error: float | None = None

    def to_dict(self) -> dict:
        """JSON-ready dict (infinite PSNR of a perfect match becomes the string "inf")."""
        return _json_safe(asdict(self))


def _json_safe(obj: object) -> object:
    if isinstance(obj, float) and math.isinf(obj):
        return "inf"
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    return obj


def iter_hr_images(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    """Yield ``(name, image)`` for every HR image under ``path``.

    ``path`` is a folder of images or frames (sorted by name; subfolders ignored) or a
    video file (every decoded frame, named ``<stem>/<index>``). Images are ``(H, W, 3)``
    uint8 RGB, or ``(H, W)`` uint8 for grayscale files.

    Raises:
        InputError: missing path, empty folder, unreadable image or video.
    """
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {path}")
        for file in files:
            yield file.name, _read_image(file)
    elif path.is_file():
        if path.suffix.lower() in IMAGE_SUFFIXES:
            yield path.name, _read_image(path)
        else:
            yield from _read_video(path)
    else:
        raise InputError(f"no such file or folder: {path}")


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode not in ("L", "RGB"):
                im = im.convert("RGB")
            return np.asarray(im, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as e:
        raise InputError(f"cannot read image {path}: {e}") from e


def _read_video(path: Path) -> Iterator[tuple[str, np.ndarray]]:
    from vidsr.media.sources import iter_rgb_frames

    for index, frame in enumerate(iter_rgb_frames(path)):
        yield f"{path.stem}/{index:04d}", frame


def upscale_y(model: SRModel, lr: np.ndarray, device: torch.device) -> np.ndarray:
    """Upscale one LR image with ``model`` and return the plane the protocol scores.

    Args:
        model: an :class:`SRModel` on ``device``.
        lr: ``(h, w, 3)`` uint8 RGB, or ``(h, w)`` uint8 grayscale.

    Returns:
        ``(s*h, s*w)`` float64 in integer code values: Y of the result for RGB input, the
        grey level for grayscale input (as :func:`vidsr.eval.metrics.luma` reads the HR image).
    """
    grey = lr.ndim == 2
    if model.colour == "luma":
        y = lr.astype(np.float64) if grey else rgb_to_y(lr, round_to_code=False)
        x = torch.from_numpy(y / 255.0).to(device=device, dtype=torch.float32)[None, None]
        with torch.inference_mode():
            out = model(x)[0, 0].double().cpu().numpy()
        return np.round(out * 255.0)
    rgb_in = np.repeat(lr[:, :, None], 3, axis=2) if grey else lr
    x = torch.tensor(rgb_in, device=device).permute(2, 0, 1)[None]
    with torch.inference_mode():
        out = model(x.float() / 255.0)[0]
    rgb = (out * 255.0).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    if grey:  # studio-range Y back to the grey scale of the HR plane
        return np.round((rgb_to_y(rgb, round_to_code=False) - 16.0) * 255.0 / 219.0)
    return rgb_to_y(rgb)


def upscale_rgb(model: SRModel, lr: np.ndarray, device: torch.device | str = "cpu") -> np.ndarray:
    """Upscale one LR image to a viewable RGB image.

    RGB models map RGB to RGB. Luma models upscale the Y plane (BT.601 studio range, as
    in training); Cb and Cr are upscaled with MATLAB bicubic, as the video pipeline does.

    Args:
        model: an :class:`SRModel` on ``device``.
        lr: ``(h, w, 3)`` uint8 RGB, or ``(h, w)`` uint8 grayscale (replicated).

    Returns:
        ``(s*h, s*w, 3)`` uint8 RGB.
    """
    from vidsr.colour.convert import YuvFormat, rgb_to_yuv, yuv_to_rgb
    from vidsr.models.baselines import bicubic_upsample

    rgb_in = np.repeat(lr[:, :, None], 3, axis=2) if lr.ndim == 2 else lr
    x = torch.tensor(rgb_in, device=device).permute(2, 0, 1)[None].float() / 255.0
    with torch.inference_mode():
        if model.colour == "rgb":
            out = model(x)
        else:
            bt601 = YuvFormat(matrix=6, full_range=False, bits=8)
            y, uv = rgb_to_yuv(x, bt601)
            out = yuv_to_rgb(model(y), bicubic_upsample(uv, model.scale), bt601)
    out = (out[0] * 255.0).round().clamp(0, 255).to(torch.uint8)
    return out.permute(1, 2, 0).cpu().numpy()


def evaluate(
    model: SRModel,
    paths: list[Path],
    *,
    baseline: SRModel | None = None,
    device: torch.device | str = "cpu",
    feature_distance: FeatureDistance | None = None,
    clips: bool | None = None,
) -> EvalReport:
    """Score ``model`` on every HR image under ``paths`` (folders or videos).

    A path scored as a clip (``clips``; None: video files are clips, folders are not) is
    one sequence in frame order: a stateful (recurrent) model carries its state from each
    frame to the next (reset at the clip's first frame and when the frame size changes),
    and the temporal error of the model and the baseline is measured (see
    :class:`ClipScore`). Otherwise every image is upscaled on its own, a recurrent model
    from its reset state.

    Args:
        model: the model to evaluate (moved to ``device``).
        paths: image folders, frame folders, image files or video files.
        baseline: the reference model (default: the registry's ``bicubic`` at the same
            scale).
        device: where to run both models.
        feature_distance: optional perceptual distance ``(sr, hr) -> float`` on
            ``(H, W, 3)`` uint8 RGB with the border cropped, e.g. a VGG feature distance
            (``vidsr eval --vgg-weights``); models are then also run to RGB.

    Raises:
        InputError: a path cannot be read, or an image is too small for the scale.
    """
    from vidsr.engine.upscaler import load_model

    device = torch.device(device)
    scale = model.scale
    model = model.to(device).eval()
    if baseline is None:
        baseline = load_model("bicubic", scale)
    baseline = baseline.to(device).eval()

    images: list[ImageScore] = []
    rows: list[ClipScore] = []
    runs: list[_ClipRun] = []
    for path in paths:
        first = len(images)
        run = _ClipRun(Path(path).is_file() if clips is None else clips)
        for name, hr in iter_hr_images(Path(path)):
            score = _score_image(name, hr, model, baseline, device, feature_distance, run)
            images.append(replace(score, name=_image_name(path, name, len(paths))))
        rows.append(run.summary(_mean_clip(Path(path).stem or str(path), images[first:])))
        runs.append(run)

    overall = _mean_clip("all", images)
    te, bic_te = _ClipRun.pooled(runs)
    return EvalReport(
        model=model.name,
        family=model.family,
        scale=scale,
        images=images,
        clips=rows,
        psnr=overall.psnr,
        ssim=overall.ssim,
        bicubic_psnr=overall.bicubic_psnr,
        bicubic_ssim=overall.bicubic_ssim,
        clip_mean_psnr=float(np.mean([c.psnr for c in rows])),
        clip_mean_bicubic_psnr=float(np.mean([c.bicubic_psnr for c in rows])),
        feature=overall.feature,
        bicubic_feature=overall.bicubic_feature,
        self_ensemble=model.self_ensemble,
        protocol=_protocol(device, feature_distance),
        temporal_error=te,
        bicubic_temporal_error=bic_te,
    )


def upscale_y_step(
    model: SRModel, lr: np.ndarray, device: torch.device, state: torch.Tensor | None
) -> tuple[np.ndarray, torch.Tensor]:
    """:func:`upscale_y` for the next frame of a clip with a recurrent luma model.

    Args:
        state: what the previous frame's call returned, or None (reset).

    Returns:
        ``(plane, state)``: the scored ``(s*h, s*w)`` float64 plane in integer code values,
        and the state for the next frame.

    Raises:
        InputError: the model is not a recurrent luma model.
    """
    if not model.stateful or model.colour != "luma":
        raise InputError(f"{model.name}: clip evaluation with state needs a recurrent luma model")
    y = lr.astype(np.float64) if lr.ndim == 2 else rgb_to_y(lr, round_to_code=False)
    x = torch.from_numpy(y / 255.0).to(device=device, dtype=torch.float32)[None, None]
    with torch.inference_mode():
        out, state = model.step(x, state)
    return np.round(out[0, 0].double().cpu().numpy() * 255.0), state


class _ClipRun:
    """One path being scored: a recurrent model's state (carried when the path is a clip)
    and the previous frame's planes, for the temporal error."""

    def __init__(self, is_clip: bool) -> None:
        self.is_clip = is_clip
        self.state: torch.Tensor | None = None
        self.prev: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.errors: list[tuple[float, float]] = []

    def upscale(self, model: SRModel, lr: np.ndarray, device: torch.device) -> np.ndarray:
        """The scored plane of ``lr``; a recurrent model continues the clip's state."""
        if not (self.is_clip and model.stateful):
            return upscale_y(model, lr, device)
        if self.state is not None and tuple(self.state.shape[-2:]) != lr.shape[:2]:
            self.state = None  # another frame size cannot continue the clip
        plane, self.state = upscale_y_step(model, lr, device, self.state)
        return plane

    def record(self, y_sr: np.ndarray, y_bic: np.ndarray, y_hr: np.ndarray) -> None:
        """Add one frame's scored planes (model, baseline, ground truth)."""
        if not self.is_clip:
            return
        if self.prev is not None and self.prev[2].shape == y_hr.shape:
            p_sr, p_bic, p_hr = self.prev
            d_hr = y_hr - p_hr
            self.errors.append(
                (
                    float(np.abs(y_sr - p_sr - d_hr).mean()),
                    float(np.abs(y_bic - p_bic - d_hr).mean()),
                )
            )
        self.prev = (y_sr, y_bic, y_hr)

    def summary(self, row: ClipScore) -> ClipScore:
        """``row`` with this clip's temporal errors (None when not a clip of 2+ frames)."""
        te, bic = _ClipRun.pooled([self])
        return replace(row, temporal_error=te, bicubic_temporal_error=bic)

    @staticmethod
    def pooled(runs: list[_ClipRun]) -> tuple[float | None, float | None]:
        """Mean temporal errors over every frame pair of ``runs``."""
        pairs = [e for run in runs for e in run.errors]
        if not pairs:
            return None, None
        return float(np.mean([p[0] for p in pairs])), float(np.mean([p[1] for p in pairs]))


def _score_image(
    name: str,
    hr: np.ndarray,
    model: SRModel,
    baseline: SRModel,
    device: torch.device,
    feature_distance: FeatureDistance | None,
    run: _ClipRun | None = None,
) -> ImageScore:
    """Score one HR image under the protocol (mod-crop, bicubic LR, Y with border cropped);
    within ``run``, the next frame of a clip."""
    scale = model.scale
    hr = modcrop(hr, scale)
    if min(hr.shape[:2]) < 2 * scale + 11:
        raise InputError(f"{name}: {hr.shape[1]}x{hr.shape[0]} is too small to score")
    lr = bicubic_downscale(hr, scale)
    y_hr = shave(luma(hr), scale)
    run = run or _ClipRun(False)
    y_sr = shave(run.upscale(model, lr, device), scale)
    y_bic = y_sr if baseline is model else shave(upscale_y(baseline, lr, device), scale)
    run.record(y_sr, y_bic, y_hr)
    feats: dict[str, float] = {}
    if feature_distance is not None:
        feats = _feature_scores(feature_distance, model, baseline, lr, hr, device)
    return ImageScore(
        name=name,
        psnr=psnr(y_sr, y_hr),
        ssim=ssim(y_sr, y_hr),
        bicubic_psnr=psnr(y_bic, y_hr),
        bicubic_ssim=ssim(y_bic, y_hr),
        **feats,
    )


def _protocol(device: torch.device, feature_distance: FeatureDistance | None) -> dict:
    """The evaluation protocol, as recorded in :attr:`EvalReport.protocol`."""
    return {
        "lr": "MATLAB-compatible bicubic downscale of the mod-cropped HR",
        "metric": "Y (BT.601 studio, rgb2ycbcr), border of scale pixels cropped",
        "ssim": "Gaussian 11x11 sigma 1.5, K1 0.01, K2 0.03, L 255",
        "device": str(device),
        "feature": getattr(feature_distance, "description", None)
        if feature_distance is not None
        else None,
    }


def _feature_scores(
    distance: FeatureDistance,
    model: SRModel,
    baseline: SRModel,
    lr: np.ndarray,
    hr: np.ndarray,
    device: torch.device,
) -> dict[str, float]:
    """Feature distances of the model's and the baseline's RGB output to ``hr``."""
    border = model.scale
    hr_rgb = shave(hr if hr.ndim == 3 else np.repeat(hr[:, :, None], 3, axis=2), border)
    sr = shave(upscale_rgb(model, lr, device), border)
    feature = float(distance(sr, hr_rgb))
    if baseline is model:
        return {"feature": feature, "bicubic_feature": feature}
    bic = shave(upscale_rgb(baseline, lr, device), border)
    return {"feature": feature, "bicubic_feature": float(distance(bic, hr_rgb))}


def _image_name(path: Path, name: str, n_paths: int) -> str:
    """Prefix the folder when several folders are scored (video frames carry their stem)."""
    return f"{Path(path).name}/{name}" if n_paths > 1 and Path(path).is_dir() else name


def _mean_clip(name: str, scores: list[ImageScore]) -> ClipScore:
    if not scores:
        raise InputError(f"no images or frames found in {name}")

    def mean(key: str) -> float:
        return float(np.mean([getattr(s, key) for s in scores]))

    has_features = all(s.feature is not None for s in scores)
    return ClipScore(
        name=name,
        frames=len(scores),
        psnr=mean("psnr"),
        ssim=mean("ssim"),
        bicubic_psnr=mean("bicubic_psnr"),
        bicubic_ssim=mean("bicubic_ssim"),
        feature=mean("feature") if has_features else None,
        bicubic_feature=mean("bicubic_feature") if has_features else None,
    )


def format_table(report: EvalReport, *, per_image: bool = True) -> str:
    """A plain-text table of the report: one row per image (optional), per clip, and
    the mean; PSNR in dB, SSIM to four decimals, feature distances when measured."""
    feats = report.feature is not None
    head = f"{'image':<28} {'PSNR':>7} {'SSIM':>7} {'bicubic':>8} {'SSIM':>7} {'gain':>6}"
    if feats:
        head += f" {'feat':>9} {'bic feat':>9}"
    title = f"{report.model} ({report.family}) x{report.scale}"
    if report.self_ensemble:
        title += " with x8 self-ensemble"
    lines = [f"{title}, Y channel", head, "-" * len(head)]

    def row(name: str, sc: ImageScore | ClipScore) -> str:
        text = (
            f"{name[:28]:<28} {sc.psnr:7.2f} {sc.ssim:7.4f} {sc.bicubic_psnr:8.2f} "
            f"{sc.bicubic_ssim:7.4f} {sc.psnr - sc.bicubic_psnr:+6.2f}"
        )
        if feats and sc.feature is not None and sc.bicubic_feature is not None:
            text += f" {sc.feature:9.4g} {sc.bicubic_feature:9.4g}"
        return text

    if per_image:
        lines += [row(im.name, im) for im in report.images]
        lines.append("-" * len(head))
    if len(report.clips) > 1:
        lines += [row(f"{c.name} ({c.frames})", c) for c in report.clips]
        lines.append("-" * len(head))
    lines.append(
        row(
            f"mean ({len(report.images)})",
            ClipScore(
                name="all",
                frames=len(report.images),
                psnr=report.psnr,
                ssim=report.ssim,
                bicubic_psnr=report.bicubic_psnr,
                bicubic_ssim=report.bicubic_ssim,
                feature=report.feature,
                bicubic_feature=report.bicubic_feature,
            ),
        )
    )
    if report.temporal_error is not None and report.bicubic_temporal_error is not None:
        lines.append(
            f"temporal error (Y, mean |dSR - dHR| per frame pair): "
            f"{report.temporal_error:.3f}, bicubic {report.bicubic_temporal_error:.3f}"
        )
    if len(report.clips) > 1:
        lines.append(
            f"{'mean of clip means':<28} {report.clip_mean_psnr:7.2f} {'':7} "
            f"{report.clip_mean_bicubic_psnr:8.2f} {'':7} "
            f"{report.clip_mean_psnr - report.clip_mean_bicubic_psnr:+6.2f}"
        )
    return "\n".join(lines)
