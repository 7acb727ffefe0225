"""One image through a :class:`~impasto.fast.network.TransformNet` in float32 on CPU, on planar
``(C, H, W)`` buffers with the C kernels of :mod:`impasto.fast._transform`: the same pass as the
module's ``forward`` (tested equal), at about half its time for the narrow networks a video runs.

Each layer's instance normalisation (with the style's γ, β, Dumoulin et al. 2017), its ReLU or the
residual shortcut, the ×2 nearest upsampling of the next layer and the next convolution's reflection
padding are one pass (``_transform.norm``), which writes the next convolution's input; stride-1
convolutions with few output channels (Johnson et al.'s 9×9 first and last layers, the upsampling
layers) run as ``_transform.conv``, vectorised along the rows, the others as PyTorch's (oneDNN) on the
padded buffer. No layout copies between layers.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .network import ConvNormReLU, TransformNet

try:  # built with the package where a C compiler was found (setup.py)
    from . import _transform as _kernels
except ImportError:  # pragma: no cover - depends on the installation
    _kernels = None

# Output channels up to which a stride-1 convolution runs in C; oneDNN vectorises over channels and
# catches up above (the width-0.25 network at 320×240, one thread, AVX2 kernels: 8 -> 3 channels 9×9
# C 2.7 against oneDNN 16.5 ms, 3 -> 8 9×9 3.2 against 6.6, 16 -> 8 1.7 against 3.9, 32 -> 16 at half
# size 1.8 against 2.7, 32 -> 32 at a quarter 0.89 against 0.87).
C_MAX_OUT = 16


def available() -> bool:
    """Whether the C kernels were built (else runners use the module's own forward)."""
    return _kernels is not None


def pack_weight(weight: torch.Tensor, group: int) -> torch.Tensor:
    """(O, C, K, K) -> (ceil(O / group), C, K, K, group), the output channels zero-padded: the layout
    ``_transform.conv`` reads ``group`` channels' weights from, one after the other."""
    o, c, k, _ = weight.shape
    groups = -(-o // group)
    padded = torch.zeros(groups * group, c, k, k, dtype=torch.float32)
    padded[:o] = weight.detach().float()
    return padded.view(groups, group, c, k, k).permute(0, 2, 3, 4, 1).contiguous()


def _array(x: torch.Tensor | None):
    """A CPU tensor's memory as the C kernels take it, a NumPy view (they check its dtype, layout and size
    against the dimensions passed); None stays None."""
    return None if x is None else (x.detach() if x.requires_grad else x).numpy()


def group_of(out_channels: int) -> int:
    return 3 if out_channels == 3 else 4


class Conv:
    """A stride-1 or -2 convolution of a padded planar buffer: C kernel or PyTorch's."""

    def __init__(self, conv: torch.nn.Conv2d):
        self.weight = conv.weight.detach().float().contiguous()
        self.bias = conv.bias.detach().float().contiguous()
        self.stride = conv.stride[0]
        self.out, self.kernel = self.weight.shape[0], self.weight.shape[-1]
        self.cin = conv.in_channels
        self.c_kernel = self.stride == 1 and self.out <= C_MAX_OUT
        if self.c_kernel:
            self.group = group_of(self.out)
            self.packed = pack_weight(self.weight, self.group)
            self.packed_bias = torch.zeros(self.packed.shape[0] * self.group)
            self.packed_bias[:self.out] = self.bias
            self.arrays = _array(self.packed), _array(self.packed_bias)  # as the C kernel takes them, once

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if not self.c_kernel:
            return F.conv2d(x[None], self.weight, self.bias, self.stride)[0].contiguous()
        _, hp, wp = x.shape
        h, w = hp - self.kernel + 1, wp - self.kernel + 1
        y = torch.empty(self.out, h, w)
        _kernels.conv(_array(x), _array(y), *self.arrays, self.cin, self.out, self.kernel, h, w, self.group,
                      torch.get_num_threads())
        return y


def norm(layer: ConvNormReLU | None, y: torch.Tensor, mix: torch.Tensor, pad: int, up: int,
         skip: tuple[torch.Tensor, int] | None = None) -> torch.Tensor:
    """The layer's conditional instance norm of its convolution's output ``y`` (C, H, W), its ReLU or
    ``+ skip`` (a buffer and its padding), written ×``up`` upsampled and reflection-padded by ``pad``;
    no layer: ``y`` itself, upsampled and padded."""
    c, h, w = y.shape
    gamma = (mix @ layer.norm.scale).float().contiguous() if layer is not None else None
    beta = (mix @ layer.norm.shift).float().contiguous() if layer is not None else None
    out = torch.empty(c, h * up + 2 * pad, w * up + 2 * pad)
    skip_buffer, skip_pad = skip if skip is not None else (None, 0)
    _kernels.norm(_array(y), _array(out), _array(gamma), _array(beta), _array(skip_buffer),
                  c, h, w, up, pad, skip_pad, layer is not None and layer.relu,
                  layer.norm.norm.eps if layer is not None else 0.0, torch.get_num_threads())
    return out


class PlanarNet:
    """A network's weights made ready for the C kernels; call with ``(1, 3, H, W)`` RGB [0, 1] and a
    ``(S,)`` style mix, as the module."""

    def __init__(self, net: TransformNet):
        if _kernels is None:
            raise RuntimeError("impasto.fast._transform was not built")
        self.net = net
        self.layers = [*net.down, *(layer for block in net.res for layer in (block.a, block.b)), *net.up]
        self.convs = {id(layer): Conv(layer.conv) for layer in self.layers}
        self.out = Conv(net.out)

    def _layer(self, layer: ConvNormReLU, x: torch.Tensor, mix: torch.Tensor, nxt: ConvNormReLU | None,
               skip: tuple[torch.Tensor, int] | None = None, pad: int | None = None) -> torch.Tensor:
        """Layer ``layer`` on its padded input ``x``, written as the padded input of ``nxt`` (None: the
        output convolution), or padded by ``pad`` and not upsampled where given."""
        up = 2 if pad is None and nxt is not None and nxt.upsample else 1
        if pad is None:
            pad = nxt.conv.kernel_size[0] // 2 if nxt is not None else self.net.out.kernel_size[0] // 2
        return norm(layer, self.convs[id(layer)](x), mix, pad, up, skip)

    @torch.inference_mode()
    def encode(self, image: torch.Tensor, mix: torch.Tensor | None = None) -> torch.Tensor:
        """As :meth:`TransformNet.encode`: ``(1, 3, H, W)`` -> ``(1, c3, ⌈H/4⌉, ⌈W/4⌉)``."""
        net = self.net
        mix = net.style_mix(1, mix, image)[0]
        h, w = image.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        x = image.float().contiguous()
        x = F.pad(x, (0, pw, 0, ph), mode="reflect") if ph or pw else x
        first = net.down[0].conv.kernel_size[0] // 2
        x = F.pad(x * 2.0 - 1.0, (first,) * 4, mode="reflect")[0].contiguous()
        layers = self.layers[:3 + 2 * len(net.res)]
        for k, layer in enumerate(layers[:3]):                  # the 9×9 and the two stride-2 layers
            x = self._layer(layer, x, mix, layers[k + 1])
        for k in range(3, len(layers), 2):                      # residual blocks: x + b(a(x))
            a, b = layers[k], layers[k + 1]
            pad = a.conv.kernel_size[0] // 2
            inner = self._layer(a, x, mix, b)
            last = k + 2 == len(layers)
            x = self._layer(b, inner, mix, None if last else layers[k + 2], skip=(x, pad), pad=0 if last else None)
        return x[None]

    @torch.inference_mode()
    def decode(self, features: torch.Tensor, size: tuple[int, int], mix: torch.Tensor | None = None) -> torch.Tensor:
        """As :meth:`TransformNet.decode`: :meth:`encode`'s features -> the ``(1, 3, H, W)`` image."""
        net = self.net
        mix = net.style_mix(1, mix, features)[0]
        ups = self.layers[3 + 2 * len(net.res):]
        x = norm(None, features[0].float().contiguous(), mix, ups[0].conv.kernel_size[0] // 2, 2 if ups[0].upsample else 1)
        for k, layer in enumerate(ups):                         # the upsampling layers
            x = self._layer(layer, x, mix, ups[k + 1] if k + 1 < len(ups) else None)
        # Johnson et al.'s scaled tanh as in the module: (tanh(y) + 1) / 2 = sigmoid(2y).
        return torch.sigmoid(2.0 * self.out(x))[None, :, :size[0], :size[1]]

    def __call__(self, image: torch.Tensor, mix: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.encode(image, mix), image.shape[-2:], mix)
