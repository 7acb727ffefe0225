"""The image as the levels of a Laplacian pyramid: what the optimiser changes instead of the pixels.

``x = z₀ + U(z₁ + U(z₂ + … + U(z_{K−1})))``, ``U`` a bilinear ×2 upsampling, and level ``k`` stored
as ``z_k = gain^k · r_k`` (``r`` the optimiser's variable). The objective sees ``x``; the gradient of
level ``k`` is the full-size gradient summed over blocks of ``2^k × 2^k`` pixels (``Uᵀ``), so one step
moves whole regions as well as single pixels — large structures travel at every full-size iteration
instead of only at coarse scales of a pyramid of images. This is the multi-resolution
parameterisation of STROTSS (Kolkin, Salavon & Shakhnarovich, CVPR 2019, which optimises a
Laplacian pyramid) and of "Differentiable Image Parameterizations" (Mordvintsev et al., Distill 2018);
for L-BFGS it is a preconditioner that favours low frequencies. ``gain`` 0.5 keeps a smooth image's
step per level about equal (``gain² · 4^k`` per level); measured at 1024 px against pixels in
benchmarks/schedule.py (README, Speed).

The start is exact: ``r₀ = x`` and every other level 0 give back ``x`` bit for bit.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

GAIN = 0.5            # z_k = GAIN^k r_k (see above)
AUTO_COARSEST = 64    # levels 0 (auto): halve the long side while the coarsest level keeps 64 px


def auto_levels(long_side: int) -> int:
    """Levels for ``--laplacian-levels 0``: 1024 px -> 5 (down to 64 px), 512 -> 4, 64 or less -> 1."""
    return max(1, 1 + int(math.log2(max(long_side, 1) / AUTO_COARSEST) + 1e-9))


class LaplacianImage:
    """Maps the optimiser's flat variable to an image ``(1, C, H, W)`` and back (for the start)."""

    def __init__(self, shape: torch.Size | tuple[int, ...], levels: int, gain: float = GAIN):
        n, c, h, w = shape
        self.channels, self.gain = c, gain
        self.shapes = [(h, w)]
        for _ in range(levels - 1):
            h, w = (h + 1) // 2, (w + 1) // 2
            self.shapes.append((h, w))
        self.sizes = [n * c * h * w for h, w in self.shapes]

    def start(self, image: torch.Tensor) -> torch.Tensor:
        """The variable that composes to ``image`` exactly: the image as level 0, the rest zero."""
        v = image.new_zeros(sum(self.sizes))
        v[:self.sizes[0]] = image.flatten()
        return v

    def compose(self, v: torch.Tensor) -> torch.Tensor:
        """``x = z₀ + U(z₁ + U(… z_{K−1}))`` from the flat variable (differentiable)."""
        levels, offset = [], 0
        for k, ((h, w), size) in enumerate(zip(self.shapes, self.sizes)):
            z = v[offset:offset + size].view(1, self.channels, h, w)
            levels.append(z if k == 0 else z * self.gain ** k)
            offset += size
        x = levels[-1]
        for z in reversed(levels[:-1]):
            x = z + F.interpolate(x, size=z.shape[-2:], mode="bilinear", align_corners=False)
        return x
