"""VGG-19 feature extractor (Gatys et al. 2016, section 2: the 16 conv and 5 pool layers, no FC).

Input: float ``(B, 3, H, W)`` RGB in [0, 1]. The Caffe pre-processing the original weights
expect (BGR, 0–255, minus the ImageNet mean pixel) happens inside :meth:`VGG19.forward`, so
no caller ever sees it. Layer names: ``conv1_1 … conv5_4`` (pre-ReLU), ``relu1_1 … relu5_4``
(post-ReLU: what the paper's "conv4_2" means, its gradients hold only where F > 0) and
``pool1 … pool5``. Only layers up to the deepest requested one are run.
"""

from __future__ import annotations

import contextlib
from typing import Iterable

import torch
import torch.nn.functional as F
from torch import nn

from ..config import CONVOLUTIONS
from ..errors import ImpastoError
from .weights import CONV_SHAPES, load_vgg19_weights
from . import winograd
from .winograd import WinogradConv2d

# "auto" runs Winograd (Lavin & Gray 2015; impasto.net.winograd) on CPU for the layers with at least these
# many (input, output) channels. Where it wins depends on the vector unit PyTorch's kernels use and on
# whether the tile transforms run in C (impasto._winograd) or as PyTorch GEMMs (its fallback):
# measured forward+backward per layer at 1024×768, 2 threads (benchmarks/roofline.py, README Speed).
# AVX2 with the C kernels (F(6×6), fused up to 128 → 256 channels): 2.13× on conv1_2, 1.73× on
# conv2_1, 1.7–2.9× from conv2_2 on; AVX-512 with them (their vectors stay AVX2's, oneDNN's direct
# convolution uses AVX-512): 1.29× on conv1_2, 1.09× on conv2_1, 0.99–1.13× on conv2_2 and conv3_1,
# 1.24–2.14× from conv3_2 on; the PyTorch transforms (F(4×4)) start winning a layer later (measured
# before the fused path). conv1_1 (3 input channels) is slower as Winograd (0.86–0.88×).
AUTO_MIN_CHANNELS = {  # (capability, C transforms) -> (input, output) channels
    ("AVX2", True): (64, 64), ("AVX512", True): (64, 64),
    ("AVX2", False): (128, 128), ("AVX512", False): (128, 256),
}


def auto_winograd(cin: int, cout: int, capability: str | None = None, c_transforms: bool | None = None) -> bool:
    """Whether ``auto`` runs a ``cin → cout`` 3×3 layer as Winograd on this CPU. ``capability``:
    ``torch.backends.cpu.get_cpu_capability()`` (``ATEN_CPU_CAPABILITY`` can lower it; other values
    count as AVX2); ``c_transforms``: whether :mod:`impasto._winograd` was built."""
    capability = capability or torch.backends.cpu.get_cpu_capability()
    c_transforms = winograd.c_transforms() if c_transforms is None else c_transforms
    wide = "AVX512" if capability.startswith("AVX512") else "AVX2"
    low_in, low_out = AUTO_MIN_CHANNELS[wide, c_transforms]
    return cin >= low_in and cout >= low_out


# Caffe mean pixel in BGR order (Simonyan & Zisserman's release notes).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
# torchvision's ImageNet statistics, RGB in [0, 1].
TORCH_MEAN_RGB = (0.485, 0.456, 0.406)
TORCH_STD_RGB = (0.229, 0.224, 0.225)


def _layer_sequence() -> list[str]:
    names: list[str] = []
    for conv in CONV_SHAPES:
        suffix = conv[4:]
        names += [conv, f"relu{suffix}"]
        block, idx = suffix.split("_")
        if (block, idx) in {("1", "2"), ("2", "2"), ("3", "4"), ("4", "4"), ("5", "4")}:
            names.append(f"pool{block}")
    return names


LAYERS: tuple[str, ...] = tuple(_layer_sequence())
LAYER_INDEX = {name: i for i, name in enumerate(LAYERS)}


def check_layers(names: Iterable[str]) -> list[str]:
    """Validate layer names; raise a one-line error naming the unknown one."""
    names = list(names)
    for name in names:
        if name not in LAYER_INDEX:
            raise ImpastoError(f"unknown layer '{name}': expected conv1_1 … conv5_4, "
                               "relu1_1 … relu5_4 or pool1 … pool5")
    return names


def min_side(layers: Iterable[str]) -> int:
    """The smallest image side that leaves every layer of ``layers`` at least one position: a layer
    behind k 2×2 poolings needs 2^k pixels (relu4_2: 8, relu5_1: 16, pool5: 32)."""
    def poolings(name: str) -> int:
        return sum(1 for layer in LAYERS[:LAYER_INDEX[name] + 1] if layer.startswith("pool"))
    return max((2 ** poolings(name) for name in layers), default=1)


def deepest(layers: Iterable[str]) -> str:
    return max(layers, key=LAYER_INDEX.__getitem__)


class VGG19(nn.Module):
    """Frozen VGG-19 feature network returning a dict of the requested layers."""

    def __init__(self, weights_path=None, pooling: str = "avg", preprocess: str = "caffe"):
        super().__init__()
        if pooling not in ("avg", "max"):
            raise ImpastoError(f"pooling must be 'avg' or 'max', not '{pooling}'")
        if preprocess not in ("caffe", "torchvision"):
            raise ImpastoError(f"preprocess must be 'caffe' or 'torchvision', not '{preprocess}'")
        self.pooling, self.preprocess = pooling, preprocess
        weights = load_vgg19_weights(weights_path)
        self.convs = nn.ModuleDict()
        for name, (cin, cout) in CONV_SHAPES.items():
            conv = nn.Conv2d(cin, cout, 3, padding=1)
            conv.weight.data.copy_(weights[name][0])
            conv.bias.data.copy_(weights[name][1])
            self.convs[name] = conv
        self.requires_grad_(False)
        self.eval()
        self.precision, self.channels_last = "fp32", False
        self.convolution = "direct"
        self.winograd = nn.ModuleDict()  # name -> WinogradConv2d, built by set_convolution

    def set_convolution(self, mode: str) -> "VGG19":
        """How the 3×3 convolutions run: ``direct`` (``nn.Conv2d``), ``winograd`` (:class:`WinogradConv2d`,
        F(6×6, 3×3) where the C transforms were built, else F(4×4, 3×3), on every layer) or ``auto``
        (Winograd on CPU where :func:`auto_winograd` says it is faster, direct elsewhere and on CUDA,
        whose cuDNN picks its own Winograd). bf16 precision always runs direct. The Winograd layers transform
        the current ``convs[name]`` weights once, here: call again after changing those weights."""
        if mode not in CONVOLUTIONS:
            raise ImpastoError(f"convolution must be one of {', '.join(CONVOLUTIONS)}, not '{mode}'")
        self.convolution = mode
        self.winograd = nn.ModuleDict()
        if mode != "direct":
            for name, conv in self.convs.items():
                cin, cout = conv.in_channels, conv.out_channels
                if mode == "winograd" or auto_winograd(cin, cout):
                    self.winograd[name] = WinogradConv2d(conv)
        return self

    def set_precision(self, precision: str, channels_last: bool = True) -> "VGG19":
        """``fp32`` or ``bf16`` (autocast for the convolutions only); channels-last memory format."""
        self.precision, self.channels_last = precision, channels_last
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        return self.to(memory_format=fmt)

    def normalise(self, image: torch.Tensor) -> torch.Tensor:
        """RGB [0, 1] -> the input the weights were trained on."""
        if self.preprocess == "torchvision":
            mean = image.new_tensor(TORCH_MEAN_RGB).view(1, 3, 1, 1)
            std = image.new_tensor(TORCH_STD_RGB).view(1, 3, 1, 1)
            return (image - mean) / std
        mean = image.new_tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
        return image.flip(1) * 255.0 - mean  # RGB -> BGR, 0–255, minus mean pixel

    def _autocast(self, device: torch.device):
        if self.precision == "bf16":
            return torch.autocast(device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def forward(self, image: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
        """``(B, 3, H, W)`` RGB in [0, 1] -> ``{layer: (B, C, h, w)}`` for each requested layer."""
        if image.dim() != 4 or image.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W) RGB, got {tuple(image.shape)}")
        wanted = set(check_layers(layers))
        last = max(LAYER_INDEX[name] for name in wanted)
        x = self.normalise(image)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        out: dict[str, torch.Tensor] = {}
        names = LAYERS[: last + 1]
        fused_relu = None
        with self._autocast(image.device):
            for i, name in enumerate(names):
                if name == fused_relu:
                    pass  # it ran inside the Winograd convolution before it
                elif self._fuses_relu(name, names[i + 1:i + 2], wanted, x):
                    x, fused_relu = self.winograd[name](x, relu=True), names[i + 1]
                else:
                    x = self._run_layer(name, x)
                if name in wanted:
                    out[name] = x
        return out

    def _fuses_relu(self, name: str, following: tuple[str, ...], wanted: set[str], x: torch.Tensor) -> bool:
        """Whether conv ``name`` runs as Winograd with the ReLU that follows it inside (the convolution's
        own output not asked for): one pass less over the activations each way."""
        return (name in self.winograd and following[:1] == ("relu" + name[4:],) and name not in wanted
                and self._use_winograd(x))

    def _use_winograd(self, x: torch.Tensor) -> bool:
        if self.precision == "bf16" or x.dtype not in (torch.float32, torch.float64):
            return False
        return self.convolution == "winograd" or x.device.type == "cpu"

    def _run_layer(self, name: str, x: torch.Tensor) -> torch.Tensor:
        if name.startswith("conv"):
            if name in self.winograd and self._use_winograd(x):
                return self.winograd[name](x)
            return self.convs[name](x)
        if name.startswith("relu"):
            return F.relu(x)
        pool = F.avg_pool2d if self.pooling == "avg" else F.max_pool2d
        return pool(x, 2, 2)


def load_network(config, device: torch.device | None = None) -> VGG19:
    """The frozen VGG-19 of a job's ``config`` (its weights, pooling, input convention, precision,
    convolution and device fields), on its device and in its precision."""
    from ..runtime import resolve_device, resolve_precision

    device = device or resolve_device(config.device)
    vgg = VGG19(config.weights, pooling=config.pooling, preprocess=config.preprocess).to(device)
    vgg = vgg.set_precision(resolve_precision(config.precision, device), channels_last=True)
    return vgg.set_convolution(config.convolution)
