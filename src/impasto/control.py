"""What is transferred where: colour, regions and scale, around the loop of Gatys et al.

- Colour (Gatys, Bethge, Hertzmann & Shechtman, arXiv 1606.05897): ``--color luminance`` stylises
  the luminance only and puts the photo's chrominance back after the loop; ``--color match``
  recolours the style images to the photo's colour statistics before the targets are computed.
- Spatial control (Gatys, Ecker, Bethge, Hertzmann & Shechtman, arXiv 1611.07865):
  ``--masks`` give each style image a region of the photo, matched with guided Gram matrices; a
  region whose style is ``none``, and whatever no mask covers, keeps the photo.
- Scale control (ibid.): ``--style-scales`` measures each style image at its own size;
  ``--style-layers-for`` lets a style fill only some layers, e.g. the fine texture of one painting
  on relu1_1 and relu2_1 under the coarse structure of another on the deeper layers.

:func:`prepare` runs once before the scales, :func:`scale_style_targets` once per scale (the
objective is built from them in :func:`impasto.objective.build_objective`) and :func:`finish` after
the loop.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from PIL import Image

from . import color, imageio, losses, masks
from .config import COLOR_MODES, TransferConfig
from .errors import ImpastoError
from .vgg import LAYER_INDEX, VGG19, check_layers

WHOLE = "all"  # a --style-masks entry meaning "the whole style image"


@dataclass
class PreparedInputs:
    """The inputs of one run after pre-processing, one entry per style argument."""

    content: Image.Image                  # what the network sees (gray for --color luminance)
    original: Image.Image                 # the photo as given: its chrominance comes back at the end
    styles: list[Image.Image | None]      # recoloured as --color asks; None: the style 'none'
    layers: list[tuple[str, ...]]         # style layers of each style image
    scales: list[float]                   # long-side factor of each style image
    blend: list[float]                    # blend weight of each style image (no masks)
    masks: list[Image.Image] | None       # gray region of the photo per style image, or None
    style_masks: list[Image.Image | None]  # gray region of each style image to copy, None: all

    @property
    def styled(self) -> list[bool]:
        return [s is not None for s in self.styles]

    @property
    def real_styles(self) -> list[Image.Image]:
        return [s for s in self.styles if s is not None]


@dataclass
class StyleTargets:
    """One scale's style targets."""

    targets: dict[str, torch.Tensor]      # blended Gram targets A^l / M^l of all styles, per layer
    weights: list[float]                  # w_l, in the order of ``targets``
    regions: list[tuple[dict, dict]] | None = None  # per styled region: guided targets, layer masks
    keep: torch.Tensor | None = None      # (1, 1, h, w) weight of the photo, None if nothing is kept


# ---------------------------------------------------------------- validation

def validate(config: TransferConfig, styles: Sequence) -> None:
    """Reject bad control options with one line each, before any image is read."""
    for name, value, allowed in (("color", config.color, COLOR_MODES),
                                 ("color-match", config.color_match, color.MATCH_METHODS),
                                 ("color-space", config.color_space, color.SPACES)):
        if value not in allowed:
            raise ImpastoError(f"--{name} must be one of {', '.join(allowed)}, not '{value}'")
    n, real = len(styles), [not masks.is_none(s) for s in styles]
    if not any(real):
        raise ImpastoError("at least one style image is needed ('none' paints nothing)")
    if not all(real) and config.masks is None:
        raise ImpastoError("the style 'none' needs --masks: it names the region that keeps the photo")
    for name in ("masks", "style_masks", "style_scales"):
        value = getattr(config, name)
        if value is not None and len(value) != n:
            raise ImpastoError(f"--{name.replace('_', '-')} has {len(value)} entries for {n} style images")
    if config.style_scales is not None and not min(config.style_scales) > 0:
        raise ImpastoError(f"--style-scales must be positive, got {','.join(map(str, config.style_scales))}")
    if config.masks is not None and config.style_blend is not None:
        raise ImpastoError("--style-blend does not combine with --masks: each region has its own style")
    per_style_layers(config, styles)


def per_style_layers(config: TransferConfig, styles: Sequence) -> list[tuple[str, ...]]:
    """``--style-layers`` for every style image, except those named by ``--style-layers-for``.

    ``config.style_layers_for`` is a dict or pairs ``(style, layers)``: the style as given, its file
    name or its position (1-based); the layers comma-separated or a sequence.
    """
    layers = [tuple(config.style_layers)] * len(styles)
    pairs = config.style_layers_for or ()
    for key, names in (pairs.items() if isinstance(pairs, dict) else pairs):
        names = tuple(n.strip() for n in names.split(",") if n.strip()) if isinstance(names, str) else tuple(names)
        if not names:
            raise ImpastoError(f"--style-layers-for {key}: no layers given")
        layers[_style_index(key, styles)] = tuple(check_layers(names))
    return layers


def _style_index(key, styles: Sequence) -> int:
    text = str(key)
    for i, style in enumerate(styles):
        named = isinstance(style, (str, os.PathLike)) and text in (str(style), Path(style).name)
        if named or text == str(i + 1):
            return i
    raise ImpastoError(f"--style-layers-for {text}: not one of the style images (give its path, name or position)")


def style_layer_weights(config: TransferConfig, plan: PreparedInputs) -> dict[str, float]:
    """w_l of every layer some style uses: ``--style-layer-weights`` for ``--style-layers``, else 1/count."""
    used = {l for layers, s in zip(plan.layers, plan.styles) if s is not None for l in layers}
    order = [l for l in config.style_layers if l in used]
    order += sorted(used - set(order), key=LAYER_INDEX.__getitem__)
    given = dict(zip(config.style_layers, config.style_layer_weights or ()))
    return {l: given.get(l, 1.0 / len(order)) for l in order}


# ---------------------------------------------------------------- before the loop

def prepare(config: TransferConfig, content: Image.Image, styles: Sequence, *,
            open_image: Callable[[object], Image.Image], style_side: int, blend: Sequence[float]) -> PreparedInputs:
    """Read masks and styles ('none' stays None) and recolour as ``--color`` asks.

    ``style_side`` is the style's long side at the finest scale (before ``--style-scales``).
    """
    validate(config, styles)
    style_imgs = [None if masks.is_none(s) else open_image(s) for s in styles]
    mask_imgs = None if config.masks is None else [masks.load_mask(p) for p in config.masks]
    style_masks = [None if str(p).strip().lower() == WHOLE else masks.load_mask(p) for p in config.style_masks or ()]
    plan = PreparedInputs(content, content, style_imgs, per_style_layers(config, styles),
                list(config.style_scales or [1.0] * len(styles)), list(blend), mask_imgs,
                style_masks or [None] * len(styles))
    return plan if config.color == "transfer" else _recolor(config, plan, style_side)


def style_long_side(config: TransferConfig, out_long: int) -> int:
    """The style is measured at ``--style-size`` (scaled with the output) or ``--style-scale`` × output."""
    if config.style_size is not None:
        return max(16, round(config.style_size * out_long / config.size))
    return max(16, round(config.style_scale * out_long))


def style_side(style_side: float, scale: float) -> int:
    """Long side of a style image measured at ``style_side`` times its ``--style-scales`` factor."""
    return _side(style_side, scale)


def _side(style_side: float, scale: float) -> int:
    return max(16, round(style_side * scale))


def _regions_at(plan: PreparedInputs, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Content regions ``(R, 1, h, w)`` and the keep weight ``(1, 1, h, w)`` at ``size`` (w, h)."""
    stack = torch.cat([masks.mask_tensor(m, size) for m in plan.masks])
    return masks.regions(stack, plan.styled)


def _style_mask_at(plan: PreparedInputs, i: int, image: torch.Tensor) -> torch.Tensor | None:
    mask = plan.style_masks[i]
    return None if mask is None else masks.mask_tensor(mask, (image.shape[-1], image.shape[-2]))


def _recolor(config: TransferConfig, plan: PreparedInputs, style_side: int) -> PreparedInputs:
    """Colour pre-processing at the output's size (colour paper: histogram matching, luminance-only transfer)."""
    photo = imageio.resize_to_tensor(plan.original, size=imageio.fit_long_side(plan.original.size, config.size))
    regions = _regions_at(plan, (photo.shape[-1], photo.shape[-2]))[0] if plan.masks else None
    styles = []
    for i, style in enumerate(plan.styles):
        if style is None:
            styles.append(None)
            continue
        image = imageio.resize_to_tensor(style, long_side=_side(style_side, plan.scales[i]))
        region = None if regions is None or regions[i].sum() < 1 else regions[i:i + 1]  # lost at this size: all
        recoloured = _recolor_style(config, image, photo, _style_mask_at(plan, i, image), region)
        styles.append(imageio.tensor_to_pil(recoloured))
    content = color.gray(color.luminance(photo)) if config.color == "luminance" else photo
    return dataclasses.replace(plan, content=imageio.tensor_to_pil(content), styles=styles)


def _recolor_style(config, style: torch.Tensor, photo: torch.Tensor, style_mask, region) -> torch.Tensor:
    if config.color == "match":  # colour paper: colour histogram matching
        return color.match_color(style, photo, config.color_match, style_mask, region)
    # colour paper, luminance-only transfer: the style's luminance matched to the photo's
    luma = color.match_luminance(color.luminance(style), color.luminance(photo), style_mask, region)
    return color.gray(luma.clamp(0, 1))


# ---------------------------------------------------------------- targets and terms per scale

@torch.no_grad()
def style_grams(vgg: VGG19, plan: PreparedInputs, i: int, style_side: int) -> dict[str, torch.Tensor]:
    """Gram matrices per M of style ``i`` on its layers, guided by its style mask when it has one."""
    device = next(vgg.parameters()).device
    image = imageio.resize_to_tensor(plan.styles[i], long_side=_side(style_side, plan.scales[i])).to(device)
    feats = vgg(image, plan.layers[i])
    mask = _style_mask_at(plan, i, image)
    if mask is None:
        return {l: losses.gram(feats[l], normalise=True) for l in plan.layers[i]}
    mask = mask.to(device)
    return {l: masks.guided_gram(feats[l], masks.layer_mask(mask, l)) for l in plan.layers[i]}


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
def scale_style_targets(vgg: VGG19, config: TransferConfig, plan: PreparedInputs, style_side: int,
                  size: tuple[int, int]) -> StyleTargets:
    """This scale's targets: blended Gram matrices, and per region guided ones when there are masks.

    ``size`` is the content's (w, h) at this scale.
    """
    weights = style_layer_weights(config, plan)
    grams = [None if s is None else style_grams(vgg, plan, i, style_side) for i, s in enumerate(plan.styles)]
    if plan.masks is None:
        targets = _blend(grams, plan.blend, list(weights))
        return StyleTargets(targets, [weights[l] for l in targets])
    device = next(vgg.parameters()).device
    scaled, keep = _regions_at(plan, size)
    share = [float(scaled[i].mean()) + 1e-12 for i in range(len(grams))]
    targets = _blend(grams, share, list(weights))
    regions = [(g, masks.layer_masks(scaled[i:i + 1].to(device), g)) for i, g in enumerate(grams) if g is not None]
    return StyleTargets(targets, [weights[l] for l in targets], regions,
                        keep.to(device) if keep.max() > 0 else None)


# ---------------------------------------------------------------- start and finish

def start(plan: PreparedInputs, image: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The start image with the keep region set to the photo (so intermediate images show it)."""
    if plan.masks is None:
        return image
    keep = _regions_at(plan, (image.shape[-1], image.shape[-2]))[1]
    return masks.hold(image, keep, content)


def finish(config: TransferConfig, plan: PreparedInputs, image: torch.Tensor) -> torch.Tensor:
    """Post-processing of the final ``(1, 3, H, W)`` image: the keep region, then the colour."""
    size = (image.shape[-1], image.shape[-2])
    if plan.masks is not None:
        image = masks.hold(image, _regions_at(plan, size)[1], imageio.resize_to_tensor(plan.content, size=size))
    if config.color == "luminance":  # colour paper, luminance-only transfer: the photo's chrominance back
        image = color.keep_chrominance(image.clamp(0, 1), imageio.resize_to_tensor(plan.original, size=size),
                                       config.color_space)
    return image
