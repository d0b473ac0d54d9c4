"""Patch shards on disk: a writer that flushes fixed-size shards, and a reader.

A dataset folder holds ``manifest.json`` and ``shard_00000.safetensors``, ... Each shard
stores two uint8 arrays:

* ``hr``: ``(N, P, P, 3)`` RGB high-resolution patches,
* ``lr``: ``(N, P/s, P/s, 3)`` RGB low-resolution patches (bicubic, then degradations; or
  cut from codec-degraded sequences, see ``manifest["lr_method"]``).

safetensors is used (not ``.npz``) because its bytes depend only on the arrays, so the
same seed gives byte-identical shards, and because its raw layout can be memory-mapped.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import save_file

from vidsr.training.luma import rgb_u8_to_y

MANIFEST = "manifest.json"
FORMAT = "vidsr-patches/1"
SEQ_FORMAT = "vidsr-sequences/1"  # hr (N, T, P, P, 3), lr (N, T, p, p, 3)


class ShardWriter:
    """Collects patch pairs and writes a shard every ``shard_size`` pairs.

    Memory stays bounded by one shard. Call :meth:`close` to flush the last partial shard.
    """

    def __init__(self, out_dir: Path, shard_size: int = 1024) -> None:
        if shard_size < 1:
            raise ValueError(f"shard_size must be >= 1, got {shard_size}")
        self.out_dir = out_dir
        self.shard_size = shard_size
        self.shards: list[dict] = []
        self._hr: list[np.ndarray] = []
        self._lr: list[np.ndarray] = []
        self._pending = 0

    @property
    def count(self) -> int:
        return sum(s["count"] for s in self.shards) + self._pending

    def add(self, hr: np.ndarray, lr: np.ndarray) -> None:
        """Add ``(n, P, P, 3)`` HR and ``(n, p, p, 3)`` LR uint8 patches."""
        self._hr.append(hr)
        self._lr.append(lr)
        self._pending += len(hr)
        while self._pending >= self.shard_size:
            self._flush(self.shard_size)

    def close(self) -> list[dict]:
        """Flush what is left; returns the shard list for the manifest."""
        if self._pending:
            self._flush(self._pending)
        return self.shards

    def _flush(self, n: int) -> None:
        hr = np.concatenate(self._hr)
        lr = np.concatenate(self._lr)
        name = f"shard_{len(self.shards):05d}.safetensors"
        save_file(
            {"hr": np.ascontiguousarray(hr[:n]), "lr": np.ascontiguousarray(lr[:n])},
            str(self.out_dir / name),
        )
        self.shards.append({"file": name, "count": int(n)})
        self._hr, self._lr = ([hr[n:]], [lr[n:]]) if len(hr) > n else ([], [])
        self._pending = len(hr) - n


def memmap_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Memory-map the uint8 tensors of a safetensors file (read-only, nothing copied)."""
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
    base = 8 + header_len
    out: dict[str, np.ndarray] = {}
    for key, info in header.items():
        if key == "__metadata__":
            continue
        if info["dtype"] != "U8":
            raise ValueError(f"{path}: tensor {key} is {info['dtype']}, expected U8")
        start, end = info["data_offsets"]
        shape = tuple(info["shape"])
        if end > start:
            out[key] = np.memmap(path, np.uint8, "r", offset=base + start, shape=shape)
        else:
            out[key] = np.zeros(shape, np.uint8)
    return out


def read_manifest(root: Path, formats: tuple[str, ...] = (FORMAT,)) -> dict:
    """Read ``manifest.json`` in a dataset folder and check its format is one of
    ``formats``."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"{root} is not a vidsr dataset (no {MANIFEST}); build one with `vidsr dataset build`"
        )
    manifest = json.loads(path.read_text())
    if manifest.get("format") not in formats:
        hint = (
            " (a sequence set: for recurrent models)"
            if manifest.get("format") == SEQ_FORMAT
            else " (a patch set: build one with --frames for recurrent models)"
            if manifest.get("format") == FORMAT
            else ""
        )
        raise ValueError(
            f"{path}: format {manifest.get('format')!r}{hint}, want {' or '.join(formats)}"
        )
    return manifest


def to_tensor(x: np.ndarray, colour: str) -> torch.Tensor:
    """``(..., H, W, 3)`` uint8 RGB -> ``(..., C, H, W)`` float32 in [0, 1]: Y / 255 (C=1)
    for ``colour="luma"``, RGB (C=3) otherwise."""
    if colour == "luma":
        y = rgb_u8_to_y(x) / 255.0
        return torch.from_numpy(np.ascontiguousarray(y[..., None, :, :], np.float32))
    chw = np.moveaxis(x, -1, -3).astype(np.float32) / 255.0
    return torch.from_numpy(np.ascontiguousarray(chw))


def _dihedral(x: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 flips/rotations of a ``(H, W, C)`` patch: rot90 ``k % 4`` then flip."""
    x = np.rot90(x, k % 4, axes=(0, 1))
    return x[:, ::-1] if k >= 4 else x


class ShardDataset(torch.utils.data.Dataset):
    """Patch pairs read back from shards, memory-mapped, with random flips/rot90.

    ``dataset[i]`` returns ``(lr, hr)`` float32 tensors in ``[0, 1]``: ``(C, p, p)`` and
    ``(C, P, P)``, RGB (C=3) when ``colour="rgb"``, MATLAB Y / 255 (C=1) when
    ``colour="luma"``. :meth:`batch` draws a batch that depends only on ``(seed, step)``,
    so a resumed run sees exactly the batches it would have seen.
    """

    def __init__(
        self, root: Path | str, *, colour: str = "rgb", augment: bool = True, seed: int = 0
    ) -> None:
        if colour not in ("rgb", "luma"):
            raise ValueError(f"colour must be 'rgb' or 'luma', got {colour!r}")
        self.root = Path(root)
        self.manifest = read_manifest(self.root)
        self.scale: int = int(self.manifest["scale"])
        self.patch: int = int(self.manifest["patch"])
        self.colour = colour
        self.augment = augment
        self.seed = seed
        self._shards = [memmap_safetensors(self.root / s["file"]) for s in self.manifest["shards"]]
        counts = [len(s["hr"]) for s in self._shards]
        self._offsets = np.cumsum([0] + counts)
        if self._offsets[-1] == 0:
            raise ValueError(f"dataset {self.root} holds no patches")

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def _pair(self, index: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        shard = int(np.searchsorted(self._offsets, index, side="right") - 1)
        local = index - int(self._offsets[shard])
        lr = np.asarray(self._shards[shard]["lr"][local])
        hr = np.asarray(self._shards[shard]["hr"][local])
        if k:
            lr, hr = _dihedral(lr, k), _dihedral(hr, k)
        return lr, hr

    def _to_tensor(self, x: np.ndarray) -> torch.Tensor:
        return to_tensor(x, self.colour)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(index)
        k = int(np.random.default_rng([self.seed, index]).integers(8)) if self.augment else 0
        lr, hr = self._pair(index, k)
        return self._to_tensor(lr), self._to_tensor(hr)

    def batch(self, step: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A random batch for training step ``step``: ``(B, C, p, p)`` LR, ``(B, C, P, P)`` HR.

        Indices and augmentations come from ``numpy.random.default_rng([seed, step])``.
        """
        rng = np.random.default_rng([self.seed, step])
        idx = rng.integers(0, len(self), size=batch_size)
        ks = rng.integers(0, 8, size=batch_size) if self.augment else np.zeros(batch_size, int)
        pairs = [self._pair(int(i), int(k)) for i, k in zip(idx, ks)]
        lr = np.stack([p[0] for p in pairs])
        hr = np.stack([p[1] for p in pairs])
        return self._to_tensor(lr), self._to_tensor(hr)


class SequenceDataset:
    """Sequence samples (``vidsr dataset build --frames T``) read back, memory-mapped.

    :meth:`batch` returns ``(lr, hr)`` float32 in ``[0, 1]``: ``(B, T, C, p, p)`` and
    ``(B, T, C, P, P)``, MATLAB Y / 255 (C=1) for ``colour="luma"`` or RGB (C=3). With
    ``augment``, one of the 8 flips/rot90 and a random time reversal apply to the whole
    sequence. A batch depends only on ``(seed, step)``.
    """

    def __init__(
        self, root: Path | str, *, colour: str = "luma", augment: bool = True, seed: int = 0
    ) -> None:
        self.root = Path(root)
        self.manifest = read_manifest(self.root, (SEQ_FORMAT,))
        self.scale: int = int(self.manifest["scale"])
        self.patch: int = int(self.manifest["patch"])
        self.frames: int = int(self.manifest["settings"]["frames"])
        if colour not in ("rgb", "luma"):
            raise ValueError(f"colour must be 'rgb' or 'luma', got {colour!r}")
        self.colour, self.augment, self.seed = colour, augment, seed
        self._shards = [memmap_safetensors(self.root / s["file"]) for s in self.manifest["shards"]]
        self._offsets = np.cumsum([0] + [len(s["hr"]) for s in self._shards])
        if self._offsets[-1] == 0:
            raise ValueError(f"dataset {self.root} holds no sequences")

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def sequence(self, index: int, k: int = 0, reverse: bool = False) -> tuple:
        """Sequence ``index`` as ``(lr, hr)`` uint8 ``(T, p, p, 3)``, ``(T, P, P, 3)``,
        transformed by dihedral ``k`` and optionally reversed in time."""
        shard = int(np.searchsorted(self._offsets, index, side="right") - 1)
        local = index - int(self._offsets[shard])
        lr = np.asarray(self._shards[shard]["lr"][local])
        hr = np.asarray(self._shards[shard]["hr"][local])
        if k:
            lr = np.stack([_dihedral(f, k) for f in lr])
            hr = np.stack([_dihedral(f, k) for f in hr])
        if reverse:
            lr, hr = lr[::-1], hr[::-1]
        return lr, hr

    def to_tensor(self, x: np.ndarray) -> torch.Tensor:
        """``(..., H, W, 3)`` uint8 RGB -> ``(..., C, H, W)`` float32 in [0, 1]."""
        return to_tensor(x, self.colour)

    def batch(self, step: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A random batch for training step ``step``: ``(B, T, C, p, p)`` LR and
        ``(B, T, C, P, P)`` HR; indices and augmentations from ``default_rng([seed, step])``."""
        rng = np.random.default_rng([self.seed, step])
        idx = rng.integers(0, len(self), size=batch_size)
        ks = rng.integers(0, 8, size=batch_size)
        rev = rng.random(batch_size) < 0.5
        if not self.augment:
            ks, rev = np.zeros(batch_size, int), np.zeros(batch_size, bool)
        seqs = [self.sequence(int(i), int(k), bool(r)) for i, k, r in zip(idx, ks, rev)]
        lr = np.stack([s[0] for s in seqs])
        hr = np.stack([s[1] for s in seqs])
        return self.to_tensor(lr), self.to_tensor(hr)
