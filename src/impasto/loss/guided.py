"""Guided Gram matrices: spatial control on the network's layers.

Gatys, Ecker, Bethge, Hertzmann & Shechtman, "Controlling Perceptual Factors in Neural Style
Transfer" (arXiv 1611.07865), "spatial control": each region r has a guidance channel ``T_r`` (a
mask, :mod:`impasto.image.masks`); it is propagated to every layer l as ``T_r^l``, the guided
feature maps are ``F_r^l = T_r^l ∘ F^l`` and each region's Gram matrix ``G_r^l = F_r^l F_r^lᵀ`` is
matched to the (guided) Gram matrix of that region's style.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import losses
from ..net.vgg import LAYER_INDEX, LAYERS


def pools_before(layer: str) -> int:
    """How many 2×2 poolings the network has applied by ``layer`` (relu3_1: 2, pool3: 3)."""
    return sum(1 for name in LAYERS[: LAYER_INDEX[layer] + 1] if name.startswith("pool"))


def layer_mask(mask: torch.Tensor, layer: str) -> torch.Tensor:
    """The mask on ``layer``'s grid: averaged over the 2×2 cells of every pooling before it.

    The 3×3 convolutions are padded and keep the size, so this reproduces each feature map's
    size exactly (odd sizes are floored, as the network does), and a position's weight is the
    share of the region in the image patch that pools into it. This is the paper's simple
    propagation; it does not shrink regions by the receptive field (its "eroded" variant).
    """
    for _ in range(pools_before(layer)):
        mask = F.avg_pool2d(mask, 2, 2)
    return mask


def layer_masks(mask: torch.Tensor, layers) -> dict[str, torch.Tensor]:
    return {name: layer_mask(mask, name) for name in layers}


def guided_gram(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``G_r = (T ∘ F)(T ∘ F)ᵀ / Σ_k T_k²`` for ``(1, N, h, w)`` features and a ``(1, 1, h, w)`` mask.

    The division makes it a mean over the region (the paper's guided Gram divided by the region's
    weight), so a mask of ones gives :func:`losses.gram` ``/ M`` and regions of any size compare
    like with like, as in :func:`losses.style_layer_loss`.
    """
    f = losses.positions_matrix(features)                               # (M, N)
    t = mask.reshape(-1, 1).to(f.dtype)                                 # (M, 1)
    return losses.gram_of_positions(f * t) / t.pow(2).sum().clamp_min(1e-8)


def region_share(mask: torch.Tensor) -> torch.Tensor:
    """``Σ_k T_k² / M``: the region's share of the layer."""
    return mask.float().pow(2).mean()


def guided_style_loss(features: torch.Tensor, mask: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """One region's ``E_l = Σ (G_r − A_r)² / (4 N²)``, weighted by the region's share of the layer.

    The weight keeps the style's pull on each pixel what it is without masks: with one mask of
    ones this is exactly :func:`losses.style_layer_loss`.
    """
    g = guided_gram(features, mask)
    n = g.shape[0]
    return region_share(mask) * (g - target).pow(2).sum() / (4.0 * n * n)

