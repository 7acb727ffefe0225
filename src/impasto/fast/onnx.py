"""Transform networks as ONNX files, and running them with onnxruntime (``pip install 'impasto[onnx]'``).

The graph has inputs ``image`` ``(1, 3, H, W)`` float32 RGB [0, 1] with H and W dynamic, and ``mix``
``(S,)`` float32 style weights (Dumoulin et al. 2017); its output ``stylised`` is ``(1, 3, H, W)``.
The style names travel in the model's metadata_props under :data:`STYLES_KEY` (a JSON list).

Export uses PyTorch's TorchScript-based exporter (``torch.onnx.export(..., dynamo=False)``): it is
quick and needs no onnxscript. A trace records one path through Python branches, so the example
input's sides are *not* multiples of 4: then :meth:`TransformNet.forward` takes its reflection-pad
branch and the pad amounts ``(-h) % 4`` and the final crop are recorded as shape arithmetic. At run
time a multiple of 4 pads by zero, which ONNX's Pad allows, so one graph serves every size.

The last layer, a 9×9 convolution to 3 channels, is written as two that compute the same sums
(:func:`split_rgb_conv`): onnxruntime's CPU convolutions vectorise over blocks of 8 or 16 output
channels, and with 3 it falls back to a path about 5× slower per multiply-add — a fifth of the whole
network's time at width 0.5.
"""

from __future__ import annotations

import copy
import io
import json
import os
import warnings
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from ..errors import ImpastoError
from ..atomic import atomic_write

if TYPE_CHECKING:  # the runner needs no PyTorch (a one-image `impasto fast`); export does
    from .model import FastModel

STYLES_KEY = "impasto_styles"
DEFAULT_OPSET = 17  # InstanceNormalization, reflect Pad and Resize as onnxruntime ≥ 1.17 runs them
# 11: Pad takes its (traced) amounts as an input; 20: the TorchScript exporter's newest (torch/onnx/_constants.py)
OPSETS = range(11, 21)
TRACE_SIZE = (37, 53)  # height, width: neither a multiple of 4 (see the module docstring)
INPUTS, OUTPUT = ("image", "mix"), "stylised"
INSTALL_HINT = "pip install 'impasto[onnx]'"


def _require(module: str):
    try:
        return __import__(module)
    except ImportError:
        raise ImpastoError(f"{module} is not installed; ONNX support needs: {INSTALL_HINT}") from None


def split_rgb_conv(conv):
    """A k×k convolution with few outputs O as two: a k×1 one to O·k channels, channel o·k + j holding
    the column sums of tap column j, ``Σ_c Σ_i W[o, c, i, j] x[c, y + i, ·]``, then a grouped 1×k one
    (one group per output) that adds column j of the window from channel o·k + j, shifted by j, with
    the bias: the same sums as the original in another order (equal within float rounding, tested)."""
    import torch
    from torch import nn

    o, c, k, _ = conv.weight.shape
    columns = nn.Conv2d(c, o * k, (k, 1), bias=False)
    shift = nn.Conv2d(o * k, o, (1, k), groups=o)
    with torch.no_grad():
        columns.weight.copy_(conv.weight.permute(0, 3, 1, 2).reshape(o * k, c, k, 1))
        shift.weight.copy_(torch.eye(k).reshape(1, k, 1, k).expand(o, k, 1, k))
        shift.bias.copy_(conv.bias)
    return nn.Sequential(columns, shift)


def _trace_to_bytes(model: FastModel, opset: int) -> bytes:
    import torch

    net = copy.deepcopy(model.net).cpu().float().eval()  # a runner may have moved it (device, channels_last)
    net.out = split_rgb_conv(net.out)
    image = torch.rand(1, 3, *TRACE_SIZE)
    mix = torch.full((len(model.styles),), 1.0 / len(model.styles))
    axes = {2: "height", 3: "width"}
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        # TracerWarnings for the pad branch (intended, see above) and the exporter's deprecation notice
        warnings.simplefilter("ignore")
        try:
            torch.onnx.export(net, (image, mix), buffer, dynamo=False, input_names=list(INPUTS),
                              output_names=[OUTPUT], dynamic_axes={"image": axes, OUTPUT: axes},
                              opset_version=opset)
        except Exception as exc:  # e.g. an opset the exporter does not support: one line
            raise ImpastoError(f"ONNX export at opset {opset} failed: {str(exc).splitlines()[0]}") from None
    return buffer.getvalue()


def export_onnx(model: FastModel, path: str | os.PathLike, opset: int = DEFAULT_OPSET) -> Path:
    """Write ``model``'s transform network as an ONNX file at ``path`` (atomically)."""
    if opset not in OPSETS:
        raise ImpastoError(f"ONNX opset must be {OPSETS.start} to {OPSETS.stop - 1}, not {opset}")
    onnx = _require("onnx")
    proto = onnx.load_from_string(_trace_to_bytes(model, opset))
    entry = proto.metadata_props.add()
    entry.key, entry.value = STYLES_KEY, json.dumps(list(model.styles))
    onnx.checker.check_model(proto)
    return atomic_write(path, lambda tmp: onnx.save(proto, tmp))


class OnnxRunner:
    """An exported model under onnxruntime on the CPU; the same call as :class:`~.runner.TorchRunner`
    (``(1, 3, H, W)`` float32 arrays in [0, 1] and a ``(S,)`` mix), without PyTorch."""

    def __init__(self, path: str | os.PathLike, threads: int = 0):
        ort = _require("onnxruntime")
        self.path = Path(path)
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        options.intra_op_num_threads = threads  # 0: onnxruntime's own choice, one thread per physical core
        try:
            self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for unreadable or foreign files
            raise ImpastoError(f"{self.path}: not a valid ONNX model ({type(exc).__name__})") from None
        self.styles = self._read_styles()

    def _read_styles(self) -> list[str]:
        names = [i.name for i in self.session.get_inputs()]
        text = self.session.get_modelmeta().custom_metadata_map.get(STYLES_KEY)
        if tuple(names) != INPUTS or text is None:
            raise ImpastoError(f"{self.path}: not an impasto ONNX model (write one with `impasto export`)")
        return [str(s) for s in json.loads(text)]

    def __call__(self, image, mix):
        """Arrays in, an array out; tensors in (the video's fast mode), a tensor out."""
        if not isinstance(image, np.ndarray):
            import torch

            return torch.from_numpy(self(image.detach().float().cpu().numpy(), np.asarray(mix, dtype=np.float32)))
        if np.shape(mix) != (len(self.styles),):
            raise ImpastoError(f"{self.path}: {tuple(np.shape(mix))} style weights for {len(self.styles)} styles")
        feed = {"image": np.ascontiguousarray(image, dtype=np.float32),
                "mix": np.asarray(mix, dtype=np.float32)}
        return np.clip(self.session.run([OUTPUT], feed)[0], 0, 1)
