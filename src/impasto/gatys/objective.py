"""The Gatys objective of one scale of ``impasto transfer``: eq. 7, ``α L_content + β L_style
(+ λ_tv TV − γ L_style(p, x))``, assembled from the terms of :mod:`impasto.loss.terms` with this
scale's targets: the content's features, and the style targets of :mod:`.targets`; and the ink
mode's terms (:mod:`impasto.loss.ink`, issue 25) where their weights ask for them.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import torch

from ..config import TransferConfig
from ..image import imageio
from ..image.ink import void_mask
from ..loss import guided
from ..loss.ink import edge_target, edge_term, ink_term
from ..loss.terms import (REFERENCE_SIDE, HeldObjective, Objective, Term, content_scale, content_style_term,
                          content_targets, content_term, guided_style_term, layer_weights, per_position_scale, pixels,
                          style_term,
                          tv_term)
from ..net.vgg import VGG19
from .inputs import PreparedInputs, style_long_side, style_side
from .targets import StyleTargets, scale_style_targets


def content_weight_scale(config: TransferConfig, size: tuple[int, int], photo_size: tuple[int, int]) -> float:
    """The content loss's factor at a scale of ``size`` (width, height): every scale minimises the
    objective of the full-size image (:func:`content_scale`)."""
    full = imageio.fit_long_side(photo_size, config.size)
    reference = imageio.fit_long_side(photo_size, REFERENCE_SIDE)
    return content_scale(config.normalization, pixels(size), pixels(full), pixels(reference))


def gatys_style_term(style: StyleTargets, beta: float) -> Term:
    """The paper's style term (eq. 5), or its guided variant when the photo has regions (1611.07865)."""
    if style.regions is None:
        return style_term(style.targets, style.weights, beta)
    return guided_style_term(style.regions, dict(zip(style.targets, style.weights)), beta)


def build_objective(vgg: VGG19, config: TransferConfig, content: torch.Tensor,
                    inputs: PreparedInputs, out_long: int, extra: Sequence[Term] = (),
                    style: StyleTargets | None = None, tile: int | None = None, keep: int = 1) -> Objective:
    """Eq. 7 at one scale of ``impasto transfer``: targets computed once (no autograd), then the terms.

    ``content`` is the photo at this scale; ``inputs`` the pre-processed images
    (:func:`inputs.prepare`), whose style targets are blended Gram matrices, or guided ones per
    region when the photo has masks (then the keep region is held to the photo). ``style``: targets
    already computed for this size (a video's frames share them); ``extra``: more terms (a video's
    temporal loss); ``tile``: the side of the tiles the objective and the targets are evaluated over
    (:mod:`impasto.loss.tiled`), None for the whole picture at once; ``keep``: how many tiles'
    activations the evaluation may hold at once.
    """
    device = next(vgg.parameters()).device
    content = content.to(device)
    size = (content.shape[-1], content.shape[-2])
    if style is None:
        style = scale_style_targets(vgg, config, inputs, style_long_side(config, out_long), size, tile)
    void = voids(config, content)
    ink = ink_terms(vgg, config, inputs, content, out_long, void, tile)
    if void is not None:
        style = without_voids(style, void)
    terms = [
        content_term(content_targets(vgg, content, config.content_layers, tile),
                     layer_weights(config.content_layers, config.content_layer_weights, 1.0),
                     config.alpha, config.normalization,
                     scale=content_weight_scale(config, size, inputs.content.size)),
        gatys_style_term(style, config.beta),
        tv_term(config.tv_weight),
    ]
    if config.content_style_weight > 0:  # −γ L_style(p, x), seed 000's extension (bounded)
        terms.append(content_style_term(vgg, content, style.targets, style.weights, config.content_style_weight,
                                        tile=tile))
    terms += ink + list(extra)
    holds = holds_of(style.keep, content, void, inputs.paper)
    if not holds:
        return Objective(vgg, terms, tile, keep)
    return HeldObjective(vgg, terms, holds, tile, keep)


def holds_of(keep: torch.Tensor | None, content: torch.Tensor, void: torch.Tensor | None,
             paper: torch.Tensor | None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """What the network is shown instead of the optimised pixels: the keep region of ``--masks`` held to
    the photo, the voids of ``--void-share`` held to the paper."""
    holds = [] if keep is None else [(keep, content.to(keep.device))]
    if void is not None:
        holds.append((void, paper.to(void)))
    return holds



# ---------------------------------------------------------------- the ink mode (issue 25)

EDGE_SIGMA = 1.0    # px at 512 px (scaled with the picture): the DoG's inner Gaussian, a brush line's width
EDGE_GAIN = 2.0     # the strokes drawn twice as dark as the photo's edges are
INK_LAYERS = ("relu1_1", "relu2_1")  # the ink constraint's layers: ink edges are a fine-scale texture


def voids(config: TransferConfig, content: torch.Tensor) -> torch.Tensor | None:
    """The voids of ``content`` (the photo as the network sees it), ``(1, 1, H, W)``: its flattest
    ``--void-share`` (:func:`impasto.image.ink.void_mask`) times ``--void-weight`` (1: bare paper there),
    or None without --void-share."""
    if config.void_share <= 0:
        return None
    return config.void_weight * void_mask(content, config.void_share)


def ink_terms(vgg: VGG19, config: TransferConfig, inputs: PreparedInputs, content: torch.Tensor,
              out_long: int, void: torch.Tensor | None, tile: int | None = None) -> list[Term]:
    """The edge and ink terms this run's weights ask for, at this scale (``content``: the photo as the
    network sees it; ``void``: its voids, None without --void-share)."""
    size = (content.shape[-1], content.shape[-2])
    scale, terms = per_position_scale(size), []
    if config.edge_weight > 0:
        sigma = EDGE_SIGMA * max(size) / REFERENCE_SIDE
        target, strength = edge_target(content, sigma, EDGE_GAIN)
        terms.append(edge_term(target, strength, sigma, config.edge_weight, scale))
    if config.ink_weight > 0:
        i = inputs.styled.index(True)
        side = style_side(style_long_side(config, out_long), inputs.scales[i])
        painting = imageio.resize_to_tensor(inputs.styles[i], long_side=side).to(content.device)
        terms.append(ink_term(vgg, painting, INK_LAYERS, config.ink_weight,
                              outside=None if void is None else 1 - void, tile=tile))
    return terms


def without_voids(style: StyleTargets, void: torch.Tensor) -> StyleTargets:
    """The output's style statistics measured outside the voids (guided Gram matrices with 1 − v,
    arXiv 1611.07865): no style texture is asked of the paper left bare (and held there)."""
    outside = 1 - void
    if style.regions is None:
        regions = [(style.targets, guided.layer_masks(outside, style.targets))]
    else:
        regions = [(g, {l: m * guided.layer_mask(outside, l) for l, m in layer_masks.items()})
                   for g, layer_masks in style.regions]
    return dataclasses.replace(style, regions=regions)
