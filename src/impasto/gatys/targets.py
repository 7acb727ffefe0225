"""The style targets of one scale: Gram matrices of the style images (Gatys et al., eq. 3), blended,
or guided per region (spatial control, arXiv 1611.07865), computed once without autograd.

:func:`scale_style_targets` takes the prepared inputs (:mod:`.inputs`) and the scale's size; the
objective (:mod:`.objective`) holds what it returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..config import TransferConfig
from ..image import imageio
from ..loss import guided, terms
from ..net.vgg import LAYER_INDEX, VGG19
from .inputs import PreparedInputs, regions_at, style_mask_at, style_side


@dataclass
class StyleTargets:
    """One scale's style targets."""

    targets: dict[str, torch.Tensor]      # blended Gram targets A^l / M^l of all styles, per layer
    weights: list[float]                  # w_l, in the order of ``targets``
    regions: list[tuple[dict, dict]] | None = None  # per styled region: guided targets, layer masks
    keep: torch.Tensor | None = None      # (1, 1, h, w) weight of the photo, None if nothing is kept


def style_layer_weights(config: TransferConfig, plan: PreparedInputs) -> dict[str, float]:
    """w_l of every layer some style uses: ``--style-layer-weights`` for ``--style-layers``, else 1/count."""
    used = {l for layers, s in zip(plan.layers, plan.styles) if s is not None for l in layers}
    order = [l for l in config.style_layers if l in used]
    order += sorted(used - set(order), key=LAYER_INDEX.__getitem__)
    given = dict(zip(config.style_layers, config.style_layer_weights or ()))
    return {l: given.get(l, 1.0 / len(order)) for l in order}


@torch.no_grad()
def style_grams(vgg: VGG19, plan: PreparedInputs, i: int, side: int, tile: int | None = None) -> dict[str, torch.Tensor]:
    """Gram matrices per M of style ``i`` on its layers, guided by its style mask when it has one; over
    tiles of side ``tile`` when the style image is larger (:mod:`impasto.loss.tiled`)."""
    device = next(vgg.parameters()).device
    image = imageio.resize_to_tensor(plan.styles[i], long_side=style_side(side, plan.scales[i])).to(device)
    tile = tile if tile is not None and tile < max(image.shape[-2:]) else None
    mask = style_mask_at(plan, i, image)
    if mask is None:
        return terms.grams(vgg, image, plan.layers[i], tile)
    return terms.guided_grams(vgg, image, mask.to(device), plan.layers[i], tile)


def _blend(grams: list[dict | None], blend: Sequence[float], order: Sequence[str]) -> dict[str, torch.Tensor]:
    """``Σ_s b_s A_s^l`` per layer over the styles that use it, their weights rescaled to sum to 1."""
    out = {}
    for l in order:
        users = [i for i, g in enumerate(grams) if g is not None and l in g]
        total = sum(blend[i] for i in users)
        out[l] = 0.0
        for i in users:
            out[l] = out[l] + (blend[i] / total) * grams[i][l]
    return out


@torch.no_grad()
def scale_style_targets(vgg: VGG19, config: TransferConfig, plan: PreparedInputs, side: int,
                        size: tuple[int, int], tile: int | None = None) -> StyleTargets:
    """This scale's targets: blended Gram matrices, and per region guided ones when there are masks.

    ``size`` is the content's (w, h) at this scale.
    """
    weights = style_layer_weights(config, plan)
    grams = [None if s is None else style_grams(vgg, plan, i, side, tile) for i, s in enumerate(plan.styles)]
    if plan.masks is None:
        targets = _blend(grams, plan.blend, list(weights))
        return StyleTargets(targets, [weights[l] for l in targets])
    device = next(vgg.parameters()).device
    scaled, keep = regions_at(plan, size)
    share = [float(scaled[i].mean()) + 1e-12 for i in range(len(grams))]
    targets = _blend(grams, share, list(weights))
    regions = [(g, guided.layer_masks(scaled[i:i + 1].to(device), g)) for i, g in enumerate(grams) if g is not None]
    return StyleTargets(targets, [weights[l] for l in targets], regions,
                        keep.to(device) if keep.max() > 0 else None)

