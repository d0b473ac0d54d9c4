"""Registry models load from models/weights/ (pointed at a temporary folder here):
state dicts round-trip through safetensors, cards are read, mismatches are ModelErrors,
and the CLI reports unshipped weights in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from vidsr.cli import main
from vidsr.engine.upscaler import available_scales, load_model
from vidsr.errors import ModelError
from vidsr.models.registry import REGISTRY

LEARNED = [n for n, e in REGISTRY.items() if e.family != "baseline"]


@pytest.fixture
def weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr("vidsr.engine.upscaler.weights_dir", lambda: tmp_path)
    return tmp_path


def _ship(folder: Path, name: str, scale: int, seed: int = 1) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    state = {k: v.contiguous() for k, v in REGISTRY[name].build(scale).state_dict().items()}
    save_file(state, str(folder / REGISTRY[name].weights[scale]))
    card = {"name": name, "scale": scale, "validation": {"Set5": {"psnr_y": 1.0}}}
    (folder / f"{name}_x{scale}.json").write_text(json.dumps(card))
    return state


@pytest.mark.parametrize("name", LEARNED)
def test_weights_round_trip_and_card(weights: Path, name: str) -> None:
    state = _ship(weights, name, 3)
    assert available_scales(REGISTRY[name]) == (3,)
    model = load_model(name, 3)
    assert not model.training and model.family == REGISTRY[name].family
    assert model.card["validation"]["Set5"]["psnr_y"] == 1.0
    for key, value in model.net.state_dict().items():
        assert torch.equal(value, state[key]), key


def test_weights_of_another_scale_do_not_fit(weights: Path) -> None:
    _ship(weights, "fast", 2)
    (weights / "fast_x2.safetensors").rename(weights / "fast_x4.safetensors")
    with pytest.raises(ModelError, match=r"fast_x4.safetensors do not fit model 'fast'"):
        load_model("fast", 4)


def test_corrupt_shipped_weights(weights: Path) -> None:
    (weights / "quality_x2.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="cannot read quality_x2.safetensors: corrupt"):
        load_model("quality", 2)


def test_cli_eval_without_weights_is_one_line(
    weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "--model", "perceptual", "--scale", "4", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "vidsr: error: no trained weights shipped for 'perceptual' x4 yet (available: none); "
        "train them with `vidsr train --arch perceptual --scale 4 --export perceptual` "
        "(see training/README.md) and pass --model vidsr-models/perceptual_x4.safetensors"
    )


def _export_like_vidsr_train(folder: Path, name: str, scale: int) -> tuple[Path, dict]:
    """A weights file with the metadata and card beside it that `vidsr train --export` writes."""
    torch.manual_seed(3)
    state = {k: v.contiguous() for k, v in REGISTRY[name].build(scale).state_dict().items()}
    path = folder / f"mine_{name}_x{scale}.safetensors"
    save_file(state, str(path), metadata={"arch": name, "scale": str(scale)})
    path.with_suffix(".json").write_text(json.dumps({"name": name, "scale": scale, "steps": 7}))
    return path, state


@pytest.mark.parametrize("name", ["srcnn-tutorial", "quality"])
def test_user_exported_weights_load_by_path_into_their_architecture(
    weights: Path, tmp_path: Path, name: str
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    path, state = _export_like_vidsr_train(mine, name, 3)
    model = load_model(str(path), 3)
    assert model.name == name and model.family == REGISTRY[name].family
    assert model.card["steps"] == 7 and not model.training
    for key, value in model.net.state_dict().items():
        assert torch.equal(value, state[key]), key
    with pytest.raises(ModelError, match=rf"is a {name} x3 model, not x2; use --scale 3"):
        load_model(str(path), 2)


def test_cli_evaluates_user_exported_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    path, _ = _export_like_vidsr_train(tmp_path, "srcnn", 2)
    Image.new("RGB", (48, 40), (90, 120, 40)).save(tmp_path / "in.png")
    assert (
        main(["eval", "--model", str(path), "--scale", "2", "--json", str(tmp_path / "in.png")])
        == 0
    )
    out = capsys.readouterr().out
    assert '"srcnn"' in out and "in.png" in out
