"""Community weights through spandrel: tiny random-init nets saved in the test, plus
corrupt, unknown, non-SR and malicious files. Nothing is downloaded."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from spandrel.architectures.Compact import Compact
from spandrel.architectures.DnCNN import DnCNN
from spandrel.architectures.ESRGAN import ESRGAN

from vidsr.engine.external import load_external
from vidsr.engine.upscaler import load_model
from vidsr.errors import ModelError


def _compact(scale: int) -> torch.nn.Module:
    torch.manual_seed(0)
    return Compact(num_feat=8, num_conv=2, upscale=scale)


def _save(net: torch.nn.Module, path: Path) -> Path:
    sd = {k: v.contiguous() for k, v in net.state_dict().items()}
    if path.suffix == ".safetensors":
        save_file(sd, str(path))
    else:
        torch.save(sd, path)
    return path


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
@pytest.mark.parametrize("scale", [2, 4])
def test_compact_loads_and_matches_the_raw_net(tmp_path: Path, suffix: str, scale: int) -> None:
    net = _compact(scale).eval()
    path = _save(net, tmp_path / f"compact_x{scale}{suffix}")
    model = load_external(path, scale)
    assert model.family == "external" and model.colour == "rgb" and model.scale == scale
    assert model.card["architecture"] == "RealESRGAN Compact"
    x = torch.rand(1, 3, 13, 7)
    with torch.inference_mode():
        y = model(x)
        ref = net(x).clamp(0, 1)
    assert y.shape == (1, 3, 13 * scale, 7 * scale)
    torch.testing.assert_close(y, ref)


def test_esrgan_rrdb_with_wrapped_checkpoint(tmp_path: Path) -> None:
    """Real-ESRGAN checkpoints wrap the state dict in {'params_ema': ...}."""
    torch.manual_seed(0)
    net = ESRGAN(num_filters=8, num_blocks=1, scale=2)
    path = tmp_path / "esrgan.pth"
    torch.save({"params_ema": net.state_dict()}, path)
    model = load_external(path, 2)
    assert model.card["architecture"] == "ESRGAN"
    with torch.inference_mode():
        y = model(torch.rand(1, 3, 9, 10))
    assert y.shape == (1, 3, 18, 20)


def test_load_model_routes_paths_to_external(tmp_path: Path) -> None:
    path = _save(_compact(2), tmp_path / "c.safetensors")
    assert load_model(str(path), 2).family == "external"


def test_wrong_scale_is_one_clear_line(tmp_path: Path) -> None:
    path = _save(_compact(4), tmp_path / "c.pth")
    with pytest.raises(ModelError, match=r"this model is x4, not x2: use --scale 4"):
        load_external(path, 2)


def test_restoration_model_is_not_super_resolution(tmp_path: Path) -> None:
    path = _save(DnCNN(nc=8, nb=17), tmp_path / "dncnn.pth")
    with pytest.raises(ModelError, match="not a super-resolution model"):
        load_external(path, 2)


def test_inconsistent_weights_of_a_known_architecture(tmp_path: Path) -> None:
    sd = {k: v.contiguous() for k, v in _compact(2).state_dict().items()}
    last = max(k for k in sd if k.endswith(".weight"))
    sd[last] = sd[last][:5]  # the upsampler conv loses channels: scale cannot be derived
    path = tmp_path / "broken.safetensors"
    save_file(sd, str(path))
    with pytest.raises(ModelError) as info:
        load_external(path, 2)
    assert "\n" not in str(info.value)


def test_unknown_architecture(tmp_path: Path) -> None:
    path = _save(torch.nn.Conv2d(3, 3, 3), tmp_path / "conv.safetensors")
    with pytest.raises(ModelError, match="unknown model architecture"):
        load_external(path, 2)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_corrupt_and_truncated_files(tmp_path: Path, suffix: str) -> None:
    good = _save(_compact(2), tmp_path / f"good{suffix}")
    truncated = tmp_path / f"truncated{suffix}"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    paths = [truncated]
    for seed in range(8):  # random bytes make torch.load fail in many different ways
        garbage = tmp_path / f"garbage{seed}{suffix}"
        garbage.write_bytes(np.random.default_rng(seed).bytes(4096))
        paths.append(garbage)
    for path in paths:
        with pytest.raises(ModelError, match="cannot read") as info:
            load_external(path, 2)
        assert "\n" not in str(info.value)


def test_missing_file_and_bad_suffix(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        load_external(tmp_path / "nope.pth", 2)
    onnx = tmp_path / "m.onnx"
    onnx.write_bytes(b"x")
    with pytest.raises(ModelError, match="unsupported model file type"):
        load_external(onnx, 2)


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated")
def test_torchscript_archive_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "scripted.pt"
    torch.jit.script(torch.nn.Conv2d(3, 12, 3)).save(str(path))
    with pytest.raises(ModelError, match="refusing to load scripted.pt: TorchScript"):
        load_external(path, 2)


class _Payload:
    """Unpickling this would call os.system and create the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: D105
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("suffix", [".pth", ".pt", ".ckpt"])
def test_malicious_pickle_never_runs(tmp_path: Path, suffix: str) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / f"evil{suffix}"
    sd = dict(_compact(2).state_dict())
    sd["payload"] = _Payload(marker)  # type: ignore[assignment]
    torch.save(sd, evil)  # the zip format torch.load reads
    raw = tmp_path / f"evil_raw{suffix}"
    raw.write_bytes(pickle.dumps(_Payload(marker), protocol=2))  # a bare legacy pickle
    for path in (evil, raw):
        with pytest.raises(ModelError, match="refusing to load") as info:
            load_external(path, 2)
        assert "\n" not in str(info.value)
        assert not marker.exists()


def test_inpainting_descriptor_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A masked (inpainting) model, e.g. LaMa, is not an SR model. LaMa's real weights
    are ~200 MB, so the loader's answer is stood in for."""
    from types import SimpleNamespace

    import spandrel

    fake = SimpleNamespace(architecture=SimpleNamespace(name="LaMa"), purpose="Inpainting")
    monkeypatch.setattr(spandrel.ModelLoader, "load_from_state_dict", lambda self, sd: fake)
    path = _save(_compact(2), tmp_path / "lama.pth")
    with pytest.raises(ModelError, match=r"^lama.pth is a LaMa Inpainting model, not a super"):
        load_external(path, 2)
