"""A small trainer you can read top to bottom (in the spirit of nanoGPT's train.py).

``train(config)``: settle device/dtype, build the net from the registry, read the shard
dataset, then loop: batch -> loss -> Adam step, with a cosine or step learning-rate
schedule, periodic validation Y-PSNR, dict checkpoints, and optional export of
``<name>_x<s>.safetensors`` plus its JSON card (see :mod:`vidsr.training.export`).
With ``ema`` set, an exponential moving average of the weights (torch's ``AveragedModel``)
is what gets validated, kept as ``best.pt`` and exported.

A recurrent net (``stateful = True``, e.g. the ``temporal`` family) trains on a sequence
set (``vidsr dataset build --frames T``): each sample runs from the reset state through its
``T`` frames and the loss covers every frame from ``skip_frames`` on, back-propagated
through the whole sequence (truncated back-propagation through time, truncated at the
sample's length); its validation set is a sequence set too.

Batches depend only on ``(seed, step)`` and checkpoints hold the model, optimizer, step,
config and best PSNR, so ``resume=True`` continues exactly where a run stopped.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from vidsr.config import PRECISIONS, Precision
from vidsr.device import autocast_dtype, inference_context, resolve_device
from vidsr.engine.precision import cpu_has_native_bf16
from vidsr.errors import ModelError, OptionError
from vidsr.models.contract import ModelEntry
from vidsr.training.losses import VGGFeatureLoss, pixel_loss, total_variation
from vidsr.training.shards import SequenceDataset, ShardDataset
from vidsr.training.validate import evaluate, evaluate_sequences, load_pairs

log = logging.getLogger(__name__)
CHECKPOINT = "ckpt.pt"


@dataclass(frozen=True)
class TrainConfig:
    """Everything a run depends on; stored in every checkpoint and in the model card."""

    arch: str
    scale: int
    data: str
    out: str = "runs/train"
    steps: int = 10_000
    batch_size: int = 32
    lr: float = 1e-3
    schedule: str = "cosine"  # "cosine" (to lr * min_lr_ratio) or "step" (x0.5 every lr_step)
    min_lr_ratio: float = 0.01
    lr_step: int = 0  # step schedule period; 0: steps // 3
    loss: str = "mse"  # "mse", "l1" or "perceptual"
    pixel_weight: float = 1.0  # perceptual only: weight of the MSE term
    feature_weight: float = 1.0  # perceptual only: weight of the VGG term (features / 255)
    tv_weight: float = 0.0
    vgg_weights: str | None = None
    vgg_layers: tuple[str, ...] = ("relu2_2",)
    val: str | None = None
    val_limit: int = 0  # use only the first N validation images (0: all)
    skip_frames: int = 0  # recurrent nets: leave the first N frames of a sequence out of the loss
    val_every: int = 500
    log_every: int = 50
    ckpt_every: int = 500
    max_minutes: float = 0.0  # stop (and checkpoint) after this wall time; 0: no limit
    device: str = "auto"
    precision: Precision = "auto"  # "auto" (fp16 AMP on CUDA, fp32 on CPU), "fp32" or "bf16"
    seed: int = 0
    resume: bool = False
    init: str | None = None  # warm start: weights file whose matching tensors seed the net
    ema: float = 0.0  # weight EMA decay per step (e.g. 0.999); 0: validate/export the raw weights
    command: str = ""  # the exact command line, recorded in the model card

    def __post_init__(self) -> None:
        if self.steps < 1 or self.batch_size < 1 or self.lr <= 0:
            raise OptionError("steps and batch size must be >= 1 and lr > 0")
        if self.schedule not in ("cosine", "step"):
            raise OptionError(f"schedule must be 'cosine' or 'step', got {self.schedule!r}")
        if self.loss not in ("mse", "l1", "perceptual"):
            raise OptionError(f"loss must be mse, l1 or perceptual, got {self.loss!r}")
        if self.precision not in PRECISIONS:
            raise OptionError(f"precision must be auto, fp32 or bf16, got {self.precision!r}")
        if not 0.0 <= self.ema < 1.0:
            raise OptionError(f"ema decay must be in [0, 1), got {self.ema}")
        if self.skip_frames < 0:
            raise OptionError(f"skip_frames must be >= 0, got {self.skip_frames}")


@dataclass
class TrainResult:
    """What a run produced."""

    step: int
    loss: float
    best_psnr: float | None
    wall_s: float
    device: str
    history: list[dict] = field(default_factory=list)
    net: torch.nn.Module | None = None


def lr_at(step: int, cfg: TrainConfig, time_fraction: float = 0.0) -> float:
    """Learning rate for ``step`` (0-based).

    ``time_fraction`` (elapsed / ``max_minutes``) lets a time-limited run finish its cosine
    decay by the deadline: progress is the larger of the step and time fractions. (A run
    limited by wall time therefore does not resume bit-exactly.)
    """
    if cfg.schedule == "step":
        period = cfg.lr_step or max(1, cfg.steps // 3)
        return cfg.lr * 0.5 ** (step // period)
    progress = min(1.0, max(step / max(1, cfg.steps), time_fraction))
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (cfg.lr - floor) * (1.0 + math.cos(math.pi * progress))


def resolve_entry(arch: str) -> ModelEntry:
    """The registry row for ``arch``; raises :class:`ModelError` when unknown or untrainable."""
    from vidsr.models.registry import REGISTRY

    entry = REGISTRY.get(arch)
    if entry is None:
        raise ModelError(f"unknown architecture {arch!r}; available: {', '.join(sorted(REGISTRY))}")
    if entry.family == "baseline":
        raise ModelError(f"{arch!r} is a fixed interpolation baseline; nothing to train")
    return entry


def make_loss(
    cfg: TrainConfig, device: torch.device
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The training objective as ``loss(pred, target) -> scalar``; tensors ``(N, C, H, W)``."""
    if cfg.loss in ("mse", "l1"):
        if cfg.tv_weight == 0:
            return lambda p, t: pixel_loss(p, t, cfg.loss)
        return lambda p, t: pixel_loss(p, t, cfg.loss) + cfg.tv_weight * total_variation(p)
    vgg = VGGFeatureLoss(cfg.vgg_weights, tuple(cfg.vgg_layers)).to(device)
    # Caffe features are in 0..255 units: divide the squared distance by 255**2 so that the
    # feature and pixel terms start at comparable sizes.
    norm = 255.0**2 if vgg.convention == "caffe" else 1.0

    def perceptual(p: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return (
            cfg.feature_weight * vgg(p, t) / norm
            + cfg.pixel_weight * pixel_loss(p, t)
            + cfg.tv_weight * total_variation(p)
        )

    return perceptual


def save_checkpoint(
    path: Path,
    net: torch.nn.Module,
    opt: torch.optim.Optimizer,
    step: int,
    cfg: TrainConfig,
    best_psnr: float | None,
    wall_s: float,
    ema: AveragedModel | None = None,
) -> None:
    """Write a plain-dict checkpoint atomically (tmp file, then rename)."""
    tmp = path.with_suffix(".tmp")
    state = {
        "model": net.state_dict(),
        "optimizer": opt.state_dict(),
        "step": step,
        "config": asdict(cfg),
        "best_psnr": best_psnr,
        "wall_s": wall_s,
        "device": str(next(net.parameters()).device),
    }
    if ema is not None:
        state["ema"] = ema.state_dict()
    torch.save(state, tmp)
    tmp.replace(path)


def make_ema(net: torch.nn.Module, decay: float) -> AveragedModel:
    """An exponential moving average of ``net``'s parameters and buffers.

    After each optimizer step, ``ema.update_parameters(net)`` sets every averaged tensor to
    ``decay * average + (1 - decay) * current``; the first update copies ``net``.
    """
    return AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def ema_state(ckpt: dict) -> dict[str, torch.Tensor] | None:
    """The averaged net's own state dict from a checkpoint's ``"ema"`` entry (None if absent)."""
    if "ema" not in ckpt:
        return None
    return {k.removeprefix("module."): v for k, v in ckpt["ema"].items() if k != "n_averaged"}


def warm_start(net: torch.nn.Module, path: Path) -> list[str]:
    """Copy into ``net`` every tensor of the weights file ``path`` whose name and shape match.

    This starts an x3/x4 model from its trained x2 sibling (the body transfers, the
    upsampling tail does not), the way EDSR trains its larger scales. A recurrent net with
    a ``load_single_frame`` method, given a single-frame net's weights (a ``head.weight``
    with fewer input channels than its own), is warm-started by that method instead, so it
    starts out equal to the single-frame net. A re-parameterised net with a
    ``load_folded`` method, given its folded (shipped) form's weights, is warm-started by
    that method, so it starts out computing the folded net. ``path`` is a
    ``.safetensors`` file or a plain state dict saved by torch (``best.pt``), loaded with
    ``weights_only=True``.

    Returns:
        the names that were copied.

    Raises:
        ModelError: the file cannot be read, or none of its tensors fit ``net``.
    """
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # any read failure is the user's file, reported in one line
        raise ModelError(f"cannot read --init weights {path}: {exc}") from exc
    own = net.state_dict()
    if _folded_into_reparameterised(net, state):
        try:
            copied = getattr(net, "load_folded")(state)
        except ValueError as exc:
            raise ModelError(f"--init {path}: {exc}") from exc
        log.info("warm start from %s: folded net copied into the re-parameterised net", path)
        return sorted(copied)
    if _single_frame_into_recurrent(net, state):
        try:
            getattr(net, "load_single_frame")(state)
        except ValueError as exc:
            raise ModelError(f"--init {path}: {exc}") from exc
        log.info("warm start from %s: single-frame net copied into the recurrent net", path)
        return sorted(state)
    fits = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not fits:
        raise ModelError(f"--init {path}: no tensor fits this network")
    net.load_state_dict(fits, strict=False)
    skipped = sorted(set(own) - set(fits))
    log.info(
        "warm start from %s: %d tensors copied, %d left fresh (%s)",
        path,
        len(fits),
        len(skipped),
        ", ".join(skipped) or "none",
    )
    return sorted(fits)


def _folded_into_reparameterised(net: torch.nn.Module, state: dict) -> bool:
    """Whether ``state`` is a folded (plain) net's to load with ``net.load_folded``."""
    if not callable(getattr(net, "load_folded", None)):
        return False
    return "convs.0.weight" in state and "convs.0.weight" not in net.state_dict()


def _single_frame_into_recurrent(net: torch.nn.Module, state: dict) -> bool:
    """Whether ``state`` is a single-frame net's to load with ``net.load_single_frame``."""
    if not callable(getattr(net, "load_single_frame", None)):
        return False
    own, theirs = net.state_dict().get("head.weight"), state.get("head.weight")
    return own is not None and theirs is not None and theirs.shape[1] < own.shape[1]


def load_checkpoint(path: Path) -> dict:
    """Read a checkpoint safely (``weights_only=True``: tensors and plain containers only)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def load_trained(run_dir: Path, entry: ModelEntry, scale: int) -> tuple[torch.nn.Module, dict]:
    """The net of a finished (or stopped) run: ``best.pt`` if validated, else ``ckpt.pt``
    (its weight average when the run kept one).

    Returns ``(net, info)``; ``info`` holds the config, step, wall time and device of the
    run as recorded in its checkpoint, for the model card.

    Raises:
        OptionError: ``run_dir`` holds no checkpoint, or one for another arch/scale.
    """
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        raise OptionError(f"no checkpoint {path}; train first")
    ckpt = load_checkpoint(path)
    if (ckpt["config"]["arch"], ckpt["config"]["scale"]) != (entry.name, scale):
        raise OptionError(
            f"{path} holds {ckpt['config']['arch']} x{ckpt['config']['scale']}, "
            f"not {entry.name} x{scale}"
        )
    net = entry.build_trainable(scale)
    best = Path(run_dir) / "best.pt"
    if best.is_file():
        state = torch.load(best, map_location="cpu", weights_only=True)
    else:
        state = ema_state(ckpt) or ckpt["model"]
    net.load_state_dict(state)
    info = {
        "config": ckpt["config"],
        "steps": ckpt["step"],
        "wall_s": ckpt.get("wall_s", 0.0),
        "device": ckpt.get("device", "cpu"),
        "command": ckpt["config"].get("command", ""),
        "best_val_psnr": ckpt.get("best_psnr"),
    }
    return net.eval(), info


def autocast_for(
    precision: Precision, dev: torch.device, supports_half: bool
) -> tuple[AbstractContextManager, torch.amp.GradScaler, bool]:
    """The forward pass's autocast context, the gradient scaler and whether to use
    channels-last, for ``precision`` on ``dev``.

    The dtype is :func:`vidsr.device.autocast_dtype`'s, the policy inference uses too.
    ``auto``: fp16 autocast with gradient scaling on CUDA (when the net supports half),
    plain fp32 on the CPU. ``bf16``: bfloat16 autocast on either device, no scaling (bf16
    has fp32's range), channels-last on the CPU, where oneDNN's bf16 convolutions run
    about 2.3x faster than fp32 on AVX512-BF16 cores (measured on the project's EPYC
    host: quality x2 step 0.32 s -> 0.14 s). Weights, optimizer state, loss and
    validation stay fp32 in every mode. ``fp32``: no autocast.
    """
    dtype = autocast_dtype(dev, supports_half, precision)  # the one policy, as for inference
    scaler = torch.amp.GradScaler(dev.type, enabled=dtype == torch.float16)
    channels_last = dtype == torch.bfloat16 and dev.type == "cpu"
    return inference_context(dev, dtype), scaler, channels_last


def resume_run(
    out: Path,
    cfg: TrainConfig,
    net: torch.nn.Module,
    opt: torch.optim.Optimizer,
    ema: AveragedModel | None,
) -> tuple[int, float | None, float]:
    """Load ``out/ckpt.pt`` into ``net``, ``opt`` and ``ema`` when ``cfg.resume`` asks for it.

    Returns:
        ``(step, best_psnr, wall_s)`` to continue from: ``(0, None, 0.0)`` for a fresh run,
        or a resumed one that finds no checkpoint (a warning says so).

    Raises:
        OptionError: the checkpoint is of another architecture or scale.
    """
    if not cfg.resume:
        return 0, None, 0.0
    if not (out / CHECKPOINT).is_file():
        log.warning("--resume: no checkpoint in %s, starting from step 0", out)
        return 0, None, 0.0
    ckpt = load_checkpoint(out / CHECKPOINT)
    if (ckpt["config"]["arch"], ckpt["config"]["scale"]) != (cfg.arch, cfg.scale):
        raise OptionError(
            f"checkpoint in {out} is {ckpt['config']['arch']} "
            f"x{ckpt['config']['scale']}, not {cfg.arch} x{cfg.scale}"
        )
    net.load_state_dict(ckpt["model"])
    opt.load_state_dict(ckpt["optimizer"])
    log.info("resumed %s at step %d", out / CHECKPOINT, ckpt["step"])
    if ema is not None and "ema" in ckpt:
        ema.load_state_dict(ckpt["ema"])
    elif ema is not None:
        log.info("--ema: the checkpoint has no average yet; it starts from the resumed weights")
    elif "ema" in ckpt:
        log.warning(
            "the checkpoint keeps a weight average but --ema is off: it is dropped, "
            "and validation and export use the raw weights from here on"
        )
    return ckpt["step"], ckpt["best_psnr"], ckpt.get("wall_s", 0.0)


def _run_dir(cfg: TrainConfig) -> Path:
    """Create ``cfg.out``; a fresh run must not inherit an older run's log or best weights."""
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if not cfg.resume:
        for stale in ("log.jsonl", "best.pt"):
            (out / stale).unlink(missing_ok=True)
    return out


def _build_net(
    cfg: TrainConfig, entry: ModelEntry, dev: torch.device, channels_last: bool
) -> torch.nn.Module:
    """``entry``'s net for ``cfg.scale``, seeded by ``cfg.seed`` (warm-started from
    ``cfg.init`` unless a checkpoint is resumed: a ``--resume`` run that finds none starts
    fresh, and warm), on ``dev`` in the memory layout the precision wants."""
    torch.manual_seed(cfg.seed)
    net = entry.build_trainable(cfg.scale)
    resuming = cfg.resume and (Path(cfg.out) / CHECKPOINT).is_file()
    if cfg.init and not resuming:
        warm_start(net, Path(cfg.init))
    net = net.to(dev)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net


class _RunLog:
    """The run's log records: kept in ``history``, appended to ``path`` as JSON lines and
    passed to ``on_log``."""

    def __init__(self, path: Path, on_log: Callable[[dict], None] | None) -> None:
        self.path, self.on_log = path, on_log
        self.history: list[dict] = []

    def __call__(self, record: dict) -> None:
        self.history.append(record)
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        if self.on_log is not None:
            self.on_log(record)


def _open_data(
    cfg: TrainConfig, entry: ModelEntry, stateful: bool
) -> ShardDataset | SequenceDataset:
    """The training set: sequences for a recurrent net, patch pairs otherwise.

    Raises:
        OptionError: the folder holds the other kind of dataset (or none).
    """
    try:
        if stateful:
            return SequenceDataset(cfg.data, colour=entry.colour, augment=True, seed=cfg.seed)
        return ShardDataset(cfg.data, colour=entry.colour, augment=True, seed=cfg.seed)
    except ValueError as exc:
        raise OptionError(f"--data {cfg.data}: {exc}") from exc


def _open_val(cfg: TrainConfig, entry: ModelEntry, stateful: bool) -> list | SequenceDataset:
    """The validation set: a sequence set (built with ``--frames``) for a recurrent net,
    HR images otherwise; ``[]`` when ``cfg.val`` is unset."""
    if not cfg.val:
        return []
    if not stateful:
        return load_pairs(cfg.val, cfg.scale, cfg.val_limit)
    try:
        val = SequenceDataset(cfg.val, colour=entry.colour, augment=False)
    except (ValueError, FileNotFoundError) as exc:
        msg = f"--val {cfg.val}: a recurrent net validates on sequences: {exc}"
        raise OptionError(msg) from exc
    if val.scale != cfg.scale:
        raise OptionError(f"--val {cfg.val} was built for x{val.scale}, not x{cfg.scale}")
    return val


def _validate(
    kept: torch.nn.Module,
    val_pairs: list | SequenceDataset,
    entry: ModelEntry,
    cfg: TrainConfig,
    dev: torch.device,
    step: int,
    emit: _RunLog,
    best_psnr: float | None,
    best_path: Path,
) -> float | None:
    """Measure ``kept`` on the validation pairs and log it at ``step``; a new best Y-PSNR
    saves ``kept``'s state to ``best_path``. Returns the best Y-PSNR so far."""
    if isinstance(val_pairs, SequenceDataset):
        metrics = evaluate_sequences(kept, val_pairs, dev)
    else:
        metrics = evaluate(kept, val_pairs, entry.colour, cfg.scale, dev)
    emit({"step": step, "val_psnr": metrics["psnr"], "val_ssim": metrics["ssim"]})
    # PSNR picks the best checkpoint for pixel losses; a perceptual model keeps its last state.
    select_best = cfg.loss != "perceptual"
    if select_best and (best_psnr is None or metrics["psnr"] > best_psnr):
        best_psnr = metrics["psnr"]
        torch.save({k: v.detach().cpu() for k, v in kept.state_dict().items()}, best_path)
    return best_psnr


def _handed_back(
    kept: torch.nn.Module, best_psnr: float | None, best_path: Path
) -> torch.nn.Module:
    """``kept`` on the CPU in eval mode, with the best validated weights when a validation
    saved them (else its last ones)."""
    final = kept.cpu()
    if best_psnr is not None and best_path.is_file():
        final.load_state_dict(torch.load(best_path, weights_only=True))
    return final.eval()


@dataclass
class _Stepper:
    """One optimisation step: batch ``step`` -> forward (under ``ctx``) -> fp32 loss ->
    scaled backward -> Adam at ``lr`` -> weight average update.

    A sequence batch ``(B, T, C, h, w)`` (recurrent nets) is scored on its frames from
    ``skip_frames`` on, each frame one term of the loss."""

    net: torch.nn.Module
    opt: torch.optim.Optimizer
    ema: AveragedModel | None
    data: ShardDataset | SequenceDataset
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    ctx: AbstractContextManager
    scaler: torch.amp.GradScaler
    dev: torch.device
    channels_last: bool
    batch_size: int
    skip_frames: int = 0

    def __call__(self, step: int, lr: float) -> float:
        """Run step ``step`` at learning rate ``lr``; returns its loss."""
        for group in self.opt.param_groups:
            group["lr"] = lr
        lr_batch, hr_batch = self.data.batch(step, self.batch_size)
        lr_batch = lr_batch.to(self.dev, non_blocking=True)
        hr_batch = hr_batch.to(self.dev, non_blocking=True)
        if self.channels_last and lr_batch.ndim == 4:
            lr_batch = lr_batch.contiguous(memory_format=torch.channels_last)
        with self.ctx:
            pred = self.net(lr_batch)
        pred = pred.float()
        if pred.ndim == 5:  # (B, T, C, H, W): every frame from skip_frames on is a sample
            pred = pred[:, self.skip_frames :].flatten(0, 1)
            hr_batch = hr_batch[:, self.skip_frames :].flatten(0, 1)
        loss = self.loss_fn(pred, hr_batch)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        if self.ema is not None:
            self.ema.update_parameters(self.net)
        return float(loss.detach())


def train(
    cfg: TrainConfig,
    entry: ModelEntry | None = None,
    on_log: Callable[[dict], None] | None = None,
    on_status: Callable[[str], None] | None = None,
) -> TrainResult:
    """Train ``cfg.arch`` (or the given registry-style ``entry``) on ``cfg.data``.

    Args:
        cfg: the run configuration.
        entry: overrides the registry lookup (tests pass a tiny net this way).
        on_log: called with each log record (``{"step", "loss", "lr", ...}``).
        on_status: called with a line at each start-up stage (dataset opened, model
            built, first step done), so a caller can show that work has begun.

    Returns:
        :class:`TrainResult`; the trained net (best validation state if measured) is in
        ``result.net``, on the CPU.
    """
    # 1. device and precision
    entry = entry or resolve_entry(cfg.arch)
    dev = resolve_device(cfg.device)
    ctx, scaler, channels_last = autocast_for(cfg.precision, dev, entry.supports_half)
    if cfg.precision == "bf16" and dev.type == "cpu" and not cpu_has_native_bf16():
        log.warning(
            "--precision bf16: this CPU has no native bf16 (AMX or AVX-512 BF16), so bf16 "
            "is emulated and slower than fp32 (measured on an AVX2 EPYC: temporal x4 step "
            "above 15 s in bf16, 6-9 s in fp32); use --precision fp32 here"
        )

    # 2. data, model, optimizer, loss
    net = _build_net(cfg, entry, dev, channels_last)
    stateful = getattr(net, "stateful", False) is True
    data = _open_data(cfg, entry, stateful)
    if data.scale != cfg.scale:
        raise OptionError(f"dataset {cfg.data} was built for x{data.scale}, not x{cfg.scale}")
    status = on_status or (lambda line: None)
    what = f"sequences of {data.frames} frames" if stateful else "patch pairs"
    status(f"dataset {cfg.data}: {len(data)} {what} of {data.patch} px, x{data.scale}")
    params = sum(p.numel() for p in net.parameters())
    status(
        f"model {entry.name} x{cfg.scale} built: {params} parameters, on {dev} "
        f"({cfg.precision} precision)"
    )
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    ema = make_ema(net, cfg.ema) if cfg.ema > 0 else None
    run_step = _Stepper(
        net, opt, ema, data, make_loss(cfg, dev), ctx, scaler, dev, channels_last, cfg.batch_size
    )
    run_step.skip_frames = cfg.skip_frames
    val_pairs = _open_val(cfg, entry, stateful)
    out = _run_dir(cfg)

    # 3. resume: model, optimizer, step and best PSNR come back from the checkpoint
    step, best_psnr, wall_before = resume_run(out, cfg, net, opt, ema)
    start = step

    # 4. the loop
    emit = _RunLog(out / "log.jsonl", on_log)
    t0 = time.perf_counter()
    running, loss_value = 0.0, float("nan")
    net.train()
    kept = ema.module if ema is not None else net  # what is validated and handed back

    def wall() -> float:
        return wall_before + time.perf_counter() - t0

    while step < cfg.steps:
        lr = lr_at(step, cfg, wall() / (cfg.max_minutes * 60) if cfg.max_minutes > 0 else 0.0)
        loss_value = run_step(step, lr)
        step += 1
        running += loss_value
        if step == start + 1:
            status(
                f"step {step} done after {wall() - wall_before:.1f} s; a log line every "
                f"{cfg.log_every} steps, {cfg.steps} steps in all"
            )

        timed_out = cfg.max_minutes > 0 and wall() > cfg.max_minutes * 60
        last = step == cfg.steps or timed_out
        if step % cfg.log_every == 0 or last:
            n = step % cfg.log_every or cfg.log_every
            emit({"step": step, "loss": running / n, "lr": lr, "wall_s": round(wall(), 1)})
            running = 0.0
        if val_pairs and (step % cfg.val_every == 0 or last):
            best_psnr = _validate(
                kept, val_pairs, entry, cfg, dev, step, emit, best_psnr, out / "best.pt"
            )
        if step % cfg.ckpt_every == 0 or last:
            save_checkpoint(out / CHECKPOINT, net, opt, step, cfg, best_psnr, wall(), ema)
        if timed_out:
            log.info("stopping at step %d: max_minutes=%g reached", step, cfg.max_minutes)
            break

    # 5. hand back the best validated weights (or the last ones when nothing was validated)
    final = _handed_back(kept, best_psnr, out / "best.pt")
    return TrainResult(
        step=step,
        loss=loss_value,
        best_psnr=best_psnr,
        wall_s=wall(),
        device=str(dev),
        history=emit.history,
        net=final,
    )
