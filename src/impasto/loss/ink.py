"""The terms of the ink mode (issue 25), beside the paper's eq. 7: the photo's strong edges drawn as ink,
and soft ink edges (ChipGAN's ink constraint, Liang et al., IJCAI 2021, adapted to Gatys et al.'s
optimisation). Pixel terms are on 0-255 values and summed per position as at 512 px, as the video's
temporal term, so a weight means the same at every size. (The voids are held at the paper's colour:
:func:`impasto.gatys.objective.holds_of`.)
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from . import guided, terms
from ..image.color import luminance
from ..image.ink import gaussian_blur
from ..net.vgg import VGG19
from .terms import Term

DOG_RATIO = 1.6  # the two Gaussians of the difference of Gaussians (Marr & Hildreth's 1.6)


def dog(luma: torch.Tensor, sigma: float) -> torch.Tensor:
    """Difference of Gaussians ``G_σ * Y − G_1.6σ * Y``: negative on a dark line, a ± pair across a step."""
    return gaussian_blur(luma, sigma) - gaussian_blur(luma, DOG_RATIO * sigma)


def edge_target(photo: torch.Tensor, sigma: float, gain: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The strokes to draw: ``gain`` × the photo's DoG, and each pixel's weight, the DoG's magnitude
    over its 99th percentile (clipped at 1): strong edges count fully, texture little, flat parts not."""
    response = dog(luminance(photo), sigma)
    magnitude = response.abs()
    top = torch.quantile(magnitude.reshape(-1)[:: max(1, magnitude.numel() // 2**20)], 0.99).clamp_min(1e-8)
    return gain * response, (magnitude / top).clamp(max=1)


def edge_term(target: torch.Tensor, strength: torch.Tensor, sigma: float, weight: float, scale: float) -> Term:
    """``λ s Σ e (DoG(Y(x)) − t)²`` (0-255): the output's edges, where the photo's are strong (``e``),
    as dark and as sharp as ``t`` (:func:`edge_target`)."""

    def fn(feats, image):
        return scale * (strength * ((dog(luminance(image), sigma) - target) * 255).pow(2)).sum()

    return Term("edges", weight, (), fn)


def ink_filter(image: torch.Tensor, erode: int, sigma: float) -> torch.Tensor:
    """ChipGAN's view of ink: a grey-scale erosion (minimum over ``erode`` × ``erode`` pixels: dark ink
    spreads) then a Gaussian blur (wet edges soften)."""
    eroded = -F.max_pool2d(-image, erode, stride=1, padding=erode // 2) if erode > 1 else image
    return gaussian_blur(eroded, sigma)


def ink_term(vgg: VGG19, painting: torch.Tensor, layers: Sequence[str], weight: float, erode: int = 3,
             sigma: float = 1.0, outside: torch.Tensor | None = None, tile: int | None = None) -> Term:
    """``λ Σ_l E_l(ink(x), ink(a)) / count``: the Gram matrices of the output's :func:`ink_filter` view
    matched to the painting's (eq. 4 on the filtered images), so the output's ink has the painting's
    soft edges, not only its strokes. One more pass of the network (the term's view), up to the deepest
    of ``layers``. ``outside``: ``(1, 1, H, W)`` weights of the output's positions to measure (1 − the
    void mask: no ink asked of the paper left bare), as guided Gram matrices (arXiv 1611.07865)."""
    layers, view = tuple(layers), (lambda image: ink_filter(image, erode, sigma))
    targets = terms.grams(vgg, ink_filter(painting.float(), erode, sigma), layers, tile)
    weights = [1.0 / len(layers)] * len(layers)
    if outside is None:
        return terms.style_term(targets, weights, weight, name="ink", view=view)
    regions = [(targets, guided.layer_masks(outside, layers))]
    return terms.guided_style_term(regions, dict(zip(layers, weights)), weight, name="ink", view=view)
