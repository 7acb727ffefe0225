"""The transform network of Johnson, Alahi & Fei-Fei, "Perceptual Losses for Real-Time Style
Transfer and Super-Resolution" (arXiv 1603.08155, supplementary table 1), with the two changes
later tools made standard: instance normalisation instead of batch normalisation (Ulyanov et al.
2016) and nearest-neighbour upsampling followed by a convolution instead of transposed convolutions
(Odena et al. 2016, no checkerboard artefacts). Reflection padding throughout.

Several styles share one network through conditional instance normalisation (Dumoulin, Shlens &
Kudlur, "A Learned Representation for Artistic Style", 2017): every style owns only the scale γ_s and
shift β_s of each normalisation layer; a mix of styles uses the weighted sums Σ w_s γ_s, Σ w_s β_s.

Input and output: RGB in [0, 1], any height and width (inputs are reflection-padded to a multiple of
4 for the two stride-2 convolutions and the output cropped back).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# Johnson et al.'s widths at --width 1.0: 9×9 conv 32, stride-2 convs 64 and 128, five residual
# blocks of 128, upsample+conv 64 and 32, 9×9 conv to RGB.
BASE_CHANNELS = (32, 64, 128)
RESIDUAL_BLOCKS = 5
WIDTHS = (1.0, 0.5, 0.25)


class CondInstanceNorm(nn.Module):
    """Instance normalisation with one (γ, β) per style, mixed by style weights ``(B, S)``."""

    def __init__(self, channels: int, styles: int):
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.scale = nn.Parameter(torch.ones(styles, channels))
        self.shift = nn.Parameter(torch.zeros(styles, channels))

    def forward(self, x: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        gamma, beta = mix @ self.scale, mix @ self.shift  # (B, C)
        if gamma.shape[0] == 1:  # one image (stylising): γ, β inside the normalisation, one pass less
            return F.instance_norm(x, weight=gamma[0].to(x.dtype), bias=beta[0].to(x.dtype), eps=self.norm.eps)
        return self.norm(x) * gamma[:, :, None, None].to(x.dtype) + beta[:, :, None, None].to(x.dtype)


class ConvNormReLU(nn.Module):
    """Reflection pad, convolution (optionally after ×2 nearest upsampling), norm, optional ReLU."""

    def __init__(self, cin: int, cout: int, kernel: int, styles: int, stride: int = 1,
                 upsample: bool = False, relu: bool = True):
        super().__init__()
        self.upsample, self.relu = upsample, relu
        self.pad = nn.ReflectionPad2d(kernel // 2)
        self.conv = nn.Conv2d(cin, cout, kernel, stride)
        self.norm = CondInstanceNorm(cout, styles)

    def forward(self, x: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = self.norm(self.conv(self.pad(x)), mix)
        return F.relu(x) if self.relu else x


class ResidualBlock(nn.Module):
    """Two 3×3 conv-norm layers and an identity shortcut (He et al. 2016; Johnson's supplement)."""

    def __init__(self, channels: int, styles: int):
        super().__init__()
        self.a = ConvNormReLU(channels, channels, 3, styles)
        self.b = ConvNormReLU(channels, channels, 3, styles, relu=False)

    def forward(self, x: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        return x + self.b(self.a(x, mix), mix)


def channels_for(width: float) -> tuple[int, int, int]:
    if width <= 0 or width > 4:
        raise ValueError(f"width must be in (0, 4], not {width}")
    return tuple(max(4, int(round(c * width))) for c in BASE_CHANNELS)


class TransformNet(nn.Module):
    """Image in, stylised image out, one forward pass. ``styles`` > 1: conditional instance norm."""

    def __init__(self, width: float = 1.0, styles: int = 1):
        super().__init__()
        c1, c2, c3 = channels_for(width)
        self.width, self.styles = width, styles
        self.down = nn.ModuleList([
            ConvNormReLU(3, c1, 9, styles),
            ConvNormReLU(c1, c2, 3, styles, stride=2),
            ConvNormReLU(c2, c3, 3, styles, stride=2),
        ])
        self.res = nn.ModuleList([ResidualBlock(c3, styles) for _ in range(RESIDUAL_BLOCKS)])
        self.up = nn.ModuleList([
            ConvNormReLU(c3, c2, 3, styles, upsample=True),
            ConvNormReLU(c2, c1, 3, styles, upsample=True),
        ])
        self.pad_out = nn.ReflectionPad2d(4)
        self.out = nn.Conv2d(c1, 3, 9)

    def style_mix(self, batch: int, mix: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
        """Style weights ``(B, S)``: one-hot/weights per image; ``None`` -> the first style."""
        if mix is None:
            mix = torch.zeros(self.styles, device=like.device)
            mix[0] = 1.0
        mix = mix.to(device=like.device, dtype=torch.float32)
        if mix.dim() == 1:
            mix = mix.expand(batch, -1)
        if mix.shape != (batch, self.styles):
            raise ValueError(f"style weights of shape {tuple(mix.shape)}, expected ({batch}, {self.styles})")
        return mix

    def encode(self, image: torch.Tensor, mix: torch.Tensor | None = None) -> torch.Tensor:
        """The features after the residual blocks, ``(B, c3, ⌈H/4⌉, ⌈W/4⌉)``: what a video blends
        along the flow before :meth:`decode` paints them (:mod:`impasto.video.fast`)."""
        mix = self.style_mix(image.shape[0], mix, image)
        h, w = image.shape[-2:]
        ph, pw = (-h) % 4, (-w) % 4
        x = F.pad(image, (0, pw, 0, ph), mode="reflect") if ph or pw else image
        x = x * 2.0 - 1.0
        for layer in self.down:
            x = layer(x, mix)
        for block in self.res:
            x = block(x, mix)
        return x

    def decode(self, features: torch.Tensor, size: tuple[int, int], mix: torch.Tensor | None = None) -> torch.Tensor:
        """:meth:`encode`'s features -> the image of ``size`` (H, W)."""
        mix = self.style_mix(features.shape[0], mix, features)
        x = features
        for layer in self.up:
            x = layer(x, mix)
        # Johnson et al. end in a scaled tanh; (tanh(y) + 1) / 2 = sigmoid(2y) maps onto [0, 1].
        x = torch.sigmoid(2.0 * self.out(self.pad_out(x)))
        return x[..., :size[0], :size[1]]

    def forward(self, image: torch.Tensor, mix: torch.Tensor | None = None) -> torch.Tensor:
        return self.decode(self.encode(image, mix), image.shape[-2:], mix)
