"""A transfer's inputs, read and checked once before any work: options, images, sizes, memory.

- Options: each in its type, range and choices (:func:`impasto.config.check_options`), then what
  depends on several of them (:func:`validate`).
- Colour (Gatys, Bethge, Hertzmann & Shechtman, arXiv 1606.05897): ``--color luminance`` stylises
  the luminance only (the photo's chrominance comes back in :func:`impasto.gatys.run.finish`);
  ``--color match`` recolours the style images to the photo's colour statistics before the targets
  are computed.
- Spatial control (Gatys, Ecker, Bethge, Hertzmann & Shechtman, arXiv 1611.07865): ``--masks``
  give each style image a region of the photo, matched with guided Gram matrices; a region whose
  style is ``none``, and whatever no mask covers, keeps the photo.
- Ink (issue 25): ``--color ink`` takes the photo's colours away: its luminance matched to the
  painting's distribution and each tone coloured as the painting colours it (:mod:`impasto.image.ink`);
  ``--seals mask`` leaves the paintings' red seals, calligraphy columns and borders out of their
  style statistics.
- Scale control (ibid.): ``--style-scales`` measures each style image at its own size;
  ``--style-layers-for`` lets a style fill only some layers, e.g. the fine texture of one painting
  on relu1_1 and relu2_1 under the coarse structure of another on the deeper layers.
- Sizes: every scale's long side (:func:`scale_sides`), each image large enough for the deepest
  layer it passes through (:func:`check_sizes`), the output within free memory, over tiles where it
  does not fit at once (:func:`tile_side`, issue 26).

:func:`prepare` does all of it; a video's frames share one preparation (:func:`for_photo`).
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image

from ..config import INIT_MODES, TransferConfig, check_options
from ..errors import ImpastoError
from ..image import color, imageio, ink, masks
from ..loss import tiled
from ..loss.terms import layer_weights
from ..net.vgg import check_layers, deepest, min_side
from ..runtime import (TILED_BASE_BYTES, available_memory, check_image_memory, free_words, full_bytes_per_pixel,
                       image_job_bytes, resolve_device, resolve_precision, tile_bytes_per_pixel, tiled_job_bytes)

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
    tones: ink.InkTones | None = None     # --color ink: the first painting's tones
    paper: torch.Tensor | None = None     # (1, 3, 1, 1) the first painting's paper colour (--void-share)

    @property
    def styled(self) -> list[bool]:
        return [s is not None for s in self.styles]

    @property
    def real_styles(self) -> list[Image.Image]:
        return [s for s in self.styles if s is not None]


# ---------------------------------------------------------------- the one preparation

def prepare(config: TransferConfig, content, styles: Sequence, what: str = "the output",
            content_name: str | None = None) -> PreparedInputs:
    """Check the options, read the photo, the styles ('none' stays None) and the masks, recolour as
    ``--color`` asks, and check every size against the network and the output against free memory:
    one line naming the problem and the file before any work.

    ``content`` and ``styles`` are paths or PIL images; ``what`` names the output in a memory error,
    ``content_name`` the photo in a size error (its path, or "the image given").
    """
    styles = list(styles)
    validate(config, styles)
    photo = imageio.as_pil(content)
    style_imgs = [None if masks.is_none(s) else imageio.as_pil(s) for s in styles]
    mask_imgs = None if config.masks is None else [masks.load_mask(p) for p in config.masks]
    style_masks = [None if str(p).strip().lower() == WHOLE else masks.load_mask(p) for p in config.style_masks or ()]
    if not style_masks and config.seals == "mask":
        style_masks = [None if s is None else _seals_out(s) for s in style_imgs]
    plan = PreparedInputs(photo, photo, style_imgs, per_style_layers(config, styles),
                          list(config.style_scales or [1.0] * len(styles)), blend_weights(config, len(styles)),
                          mask_imgs, style_masks or [None] * len(styles))
    if config.color == "ink" or config.void_share > 0:
        plan = _ink_ground(config, plan, style_long_side(config, config.size))
    if config.color != "transfer":
        plan = _recolor(config, plan, style_long_side(config, config.size))
    check_sizes(config, plan, content_name or _name(content), [_name(s) for s in styles])
    check_memory_and_tiles(config, imageio.fit_long_side(photo.size, config.size),
                           network_layers(config, plan.layers), what)
    return plan


def for_photo(config: TransferConfig, plan: PreparedInputs, photo: Image.Image) -> PreparedInputs:
    """The same styles, recoloured once, for another photo of the same size (a video's next frame):
    only what the network sees of the photo changes, so the style targets can be shared."""
    if config.color not in ("luminance", "ink"):
        return dataclasses.replace(plan, content=photo, original=photo)
    pixels = imageio.resize_to_tensor(photo, size=imageio.fit_long_side(photo.size, config.size))
    return dataclasses.replace(plan, content=imageio.tensor_to_pil(_seen(config, plan, pixels)), original=photo)


# ---------------------------------------------------------------- options

def validate(config: TransferConfig, styles: Sequence) -> None:
    """Reject bad option values with one line each, before any work: every option in its type, range
    and choices (:func:`impasto.config.check_options`), then what depends on several of them."""
    check_options(config)
    check_layers(config.content_layers)
    check_layers(config.style_layers)
    layer_weights(config.content_layers, config.content_layer_weights, 1.0)
    layer_weights(config.style_layers, config.style_layer_weights, 1.0)
    if not math.isfinite(config.beta):
        raise ImpastoError(f"--ratio {config.ratio:g} makes the style weight alpha/ratio infinite; give a larger --ratio")
    if 0 < config.content_style_weight and not config.content_style_weight < config.beta:  # seed 000's γ
        raise ImpastoError(f"--content-style-weight must be below the style weight beta = {config.beta:g}, "
                           f"got {config.content_style_weight:g}")
    if config.laplacian_levels > 1 and config.optimizer != "lbfgs":
        raise ImpastoError("--laplacian-levels above 1 needs --optimizer lbfgs (0, auto, means the pixels with Adam)")
    if config.init not in INIT_MODES and not Path(config.init).is_file():
        raise ImpastoError(f"--init must be one of {', '.join(INIT_MODES)} or an image file; "
                           f"{config.init}: file not found")
    n_styles = len(styles)
    if n_styles < 1:
        raise ImpastoError("at least one style image is needed")
    if config.style_blend is not None and len(config.style_blend) != n_styles:
        raise ImpastoError(f"--style-blend has {len(config.style_blend)} weights for {n_styles} style images")
    if config.style_blend is not None and (min(config.style_blend) < 0 or sum(config.style_blend) <= 0):
        raise ImpastoError("--style-blend weights must be non-negative and not all zero")
    scale_iterations(config)
    layers = network_layers(config, per_style_layers(config, styles))
    if config.tile and config.tile < tiled.alignment(layers):
        raise ImpastoError(f"--tile {config.tile}: a tile must be at least {tiled.alignment(layers)} px, the cell "
                           f"of {deepest(layers)} (tiles start on its grid); 0 never tiles")
    _check_control(config, styles)


def _check_control(config: TransferConfig, styles: Sequence) -> None:
    """Reject bad control options with one line each, before any image is read."""
    n, real = len(styles), [not masks.is_none(s) for s in styles]
    if not any(real):
        raise ImpastoError("at least one style image is needed ('none' paints nothing)")
    if not all(real) and config.masks is None:
        raise ImpastoError("the style 'none' needs --masks: it names the region that keeps the photo")
    for name in ("masks", "style_masks", "style_scales"):
        value = getattr(config, name)
        if value is not None and len(value) != n:
            raise ImpastoError(f"--{name.replace('_', '-')} has {len(value)} entries for {n} style images")
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


AUTO_COARSEST = 128  # long side of the coarsest scale when --scales is 0 (auto)
# The print recipe (issue 26, docs/print.md): the default above PRINT_SIDE. Its first scale, between
# PRINT_START and twice that, is the screen-size job (--iterations there decides the look); each finer
# scale, twice the last, refines it with few iterations: PRINT_FINEST at the full size, twice as many at
# each coarser one (each of which costs a quarter of the time per iteration).
PRINT_SIDE = 2048
PRINT_START = 512
PRINT_FINEST = 6


def scale_sides(config: TransferConfig) -> list[int]:
    """Long side of each scale, coarse to fine, the last one being ``config.size``.

    Not given (None): one scale up to :data:`PRINT_SIDE`, the print recipe's halvings above it
    (4096 -> 512, 1024, 2048, 4096). 0 (auto): divide the size by ``scale_step`` while the coarsest
    stays at least 128 px (512 px in steps of 2: 128, 256, 512), as Gatys et al.'s high-resolution
    recipe and later tools go coarse to fine; N: N scales ``scale_step`` apart. Every scale minimises
    the full size's objective (:func:`content_weight_scale`). One scale is the default up to 2048 px:
    benchmarks/schedule.py measured it reaching a lower objective in the same wall time at 512 and
    1024 px, from the photo and from white noise (README, Speed), and benchmarks/print.py at 2048 px.
    """
    step = config.scale_step
    if not (math.isfinite(step) and step > 1):
        raise ImpastoError(f"--scale-step must be a number above 1, got {step}")
    if config.scales is None:
        return print_sides(config.size) if config.size > PRINT_SIDE else [config.size]
    if isinstance(config.scales, int):
        if config.scales < 0:
            raise ImpastoError(f"--scales must be 0 (auto) or more, got {config.scales}")
        count = config.scales or max(1, 1 + int(math.log(config.size / AUTO_COARSEST, step) + 1e-9))
        sides = [max(16, round(config.size / step ** k)) for k in reversed(range(count))]
    else:
        sides = [int(s) for s in config.scales]
        if not sides or min(sides) < 16 or sides != sorted(sides):
            raise ImpastoError("--scales must be increasing long sides of at least 16 px")
        sides[-1] = config.size
    return sides


def print_sides(size: int) -> list[int]:
    """The print recipe's scales: ``size`` halved while the half stays at least :data:`PRINT_START`."""
    sides = [size]
    while sides[0] // 2 >= PRINT_START:
        sides.insert(0, round(sides[0] / 2))
    return sides


def scale_iterations(config: TransferConfig) -> list[int]:
    """Iterations of each scale (:func:`scale_sides`), coarse to fine: ``--scale-iterations``; the print
    recipe's (``--iterations`` at the first scale, :data:`PRINT_FINEST` at the full size and twice as
    many at each coarser one); or ``--iterations`` in proportion to 1 / long side (4:2:1 for three
    scales a factor 2 apart: an iteration costs in proportion to the pixels, so the coarse scales do
    the travelling and the full size refines; the rounding remainder goes to the finest)."""
    sides = scale_sides(config)
    if config.scale_iterations is not None:
        if len(config.scale_iterations) != len(sides):
            raise ImpastoError(f"--scale-iterations has {len(config.scale_iterations)} counts for {len(sides)} "
                               f"scales ({', '.join(map(str, sides))} px)")
        return list(config.scale_iterations)
    if config.scales is None and len(sides) > 1:
        finer = [PRINT_FINEST * 2 ** k for k in reversed(range(len(sides) - 1))]
        return [config.iterations, *finer]
    weights = [sides[-1] / side for side in sides]
    share = [int(config.iterations * w / sum(weights)) for w in weights]
    share[-1] += config.iterations - sum(share)
    return share


def blend_weights(config: TransferConfig, n_styles: int) -> list[float]:
    raw = list(config.style_blend) if config.style_blend is not None else [1.0] * n_styles
    return [b / sum(raw) for b in raw]


# ---------------------------------------------------------------- memory and tiles (issue 26)

MIN_TILE = 64  # the smallest tile chosen automatically: below it a tile is mostly margin
SHORT_HISTORY = 5  # the L-BFGS history a memory error suggests when the curvature pairs fill memory


def network_layers(config: TransferConfig, style_layers: Sequence[Sequence[str]]) -> tuple[str, ...]:
    """Every layer the result passes through: the content layers and each style's layers
    (:func:`per_style_layers`)."""
    return tuple(dict.fromkeys([*config.content_layers, *(l for ls in style_layers for l in ls)]))


def curvature_pairs(config: TransferConfig) -> int:
    """The optimiser's full-size vector pairs at the finest scale: L-BFGS's history (never more than the
    scale's iterations), or Adam's two moments."""
    if config.optimizer != "lbfgs":
        return 1
    return max(1, min(config.lbfgs_history, scale_iterations(config)[-1]))


# A scale that refines the previous one's result (upsampled) is optimised over its pixels, not over a
# Laplacian pyramid, unless --laplacian-levels says otherwise: its look is set and the detail is what is
# left (benchmarks/print.py, part pairs, tubingen x Starry Night at 1024 px from the 512 px result: 12
# its 6.67e10 over the pixels against 7.10e10 over the pyramid; 24 its 5.13e10 against 5.28e10); and the
# pixels' vectors are 3/4 of the pyramid's, half its memory in all (the memory of a print, runtime.py)
REFINE_LEVELS = 1


def scale_levels(config: TransferConfig, refining: bool) -> int:
    """A scale's ``--laplacian-levels``: as given, or for auto (0) the pyramid (0) at a first scale and
    the pixels (:data:`REFINE_LEVELS`) at one that refines the previous scale's result."""
    return config.laplacian_levels or (REFINE_LEVELS if refining else 0)


def full_size_bytes(config: TransferConfig, refining: bool, pairs: int | None = None) -> int:
    """Bytes per pixel of a tiled scale's full-size vectors (:func:`impasto.runtime.full_bytes_per_pixel`),
    with ``pairs`` curvature pairs (None: :func:`curvature_pairs`)."""
    pyramid = config.optimizer == "lbfgs" and scale_levels(config, refining) != 1
    return full_bytes_per_pixel(curvature_pairs(config) if pairs is None else pairs, pyramid)


def tile_for(config: TransferConfig, plan: PreparedInputs, size: tuple[int, int],
             refining: bool = False) -> tuple[int | None, int]:
    """The tile side of a scale of ``size`` (w, h) of this run (:func:`tile_side`), and how many tiles'
    activations fit in memory at once (:func:`tiles_held`); ``refining``: the scale starts from the
    previous one's result."""
    layers = network_layers(config, plan.layers)
    per_pixel = full_size_bytes(config, refining)
    side = tile_side(config, size, layers, per_pixel)
    return side, tiles_held(config, size, side, layers, per_pixel)


def tiles_held(config: TransferConfig, size: tuple[int, int], side: int | None, layers: Sequence[str],
               per_pixel: int) -> int:
    """How many tiles' activations fit in free memory beside the full-size vectors: the tiled
    evaluation keeps that many from its first pass instead of computing them again (at least 1)."""
    device = resolve_device(config.device)
    free = available_memory() if device.type == "cpu" else None
    if side is None or free is None:
        return 1
    w, h = size
    precision = resolve_precision(config.precision, device)
    tiles = tiled.windows(h, w, side, layers)
    largest = max((t.iy1 - t.iy0) * (t.ix1 - t.ix0) for t in tiles)
    room = free - tiled_job_bytes(w * h, largest, per_pixel, precision)
    return max(1, min(len(tiles), 1 + int(room // (tile_bytes_per_pixel(precision) * largest))))


def tile_side(config: TransferConfig, size: tuple[int, int], layers: Sequence[str], per_pixel: int) -> int | None:
    """The tile side for a picture of ``size`` (w, h): ``--tile`` (None where one tile covers it), or
    where it does not fit in free memory at once the largest that does beside ``per_pixel`` bytes of
    full-size vectors; None: evaluated at once."""
    w, h = size
    if config.tile is not None:
        return None if config.tile == 0 or config.tile >= max(w, h) else config.tile
    device = resolve_device(config.device)
    free = available_memory() if device.type == "cpu" else None
    precision = resolve_precision(config.precision, device)
    if free is None or image_job_bytes(w * h, precision) <= free:
        return None
    return largest_tile(free, w * h, layers, per_pixel, precision)


def largest_tile(free: int, pixels: int, layers: Sequence[str], per_pixel: int, precision: str) -> int | None:
    """The largest tile side (a multiple of the layers' cell) whose job fits in ``free`` bytes beside the
    full-size vectors of a ``pixels`` picture, or None below :data:`MIN_TILE`."""
    room = free - tiled_job_bytes(pixels, 0, per_pixel, precision)
    if room <= 0:
        return None
    side = int(math.sqrt(room / tile_bytes_per_pixel(precision))) - 2 * tiled.margin(layers)
    side -= side % tiled.alignment(layers)
    return side if side >= MIN_TILE else None


def check_memory_and_tiles(config: TransferConfig, size: tuple[int, int], layers: Sequence[str], what: str) -> None:
    """Refuse, before any work, a picture that does not fit in free memory even over tiles (or at once,
    with ``--tile 0``): one line with the largest ``--size`` that fits."""
    if config.tile == 0:
        return check_image_memory(config, size, what, "--size")
    device = resolve_device(config.device)
    free = available_memory()
    if device.type != "cpu" or free is None:
        return None
    precision = resolve_precision(config.precision, device)
    w, h = size
    refining = len(scale_sides(config)) > 1  # the full size refines the scale before it
    side = tile_side(config, size, layers, full_size_bytes(config, refining))
    if side is None and image_job_bytes(w * h, precision) <= free:
        return None
    extra = 2 * tiled.margin(layers)
    tile_pixels = (min(side or MIN_TILE, h) + extra) * (min(side or MIN_TILE, w) + extra)
    needed = tiled_job_bytes(w * h, tile_pixels, full_size_bytes(config, refining), precision)
    if side is not None and needed <= free:
        return None

    def largest(pairs: int) -> int:
        room = free - TILED_BASE_BYTES - tile_bytes_per_pixel(precision) * tile_pixels
        per_pixel = full_size_bytes(config, refining, pairs)
        return max(16, int(max(w, h) * math.sqrt(max(0, room) / per_pixel / (w * h))))

    shorter = (f", or about {largest(SHORT_HISTORY)} with --lbfgs-history {SHORT_HISTORY}"
               if config.optimizer == "lbfgs" and curvature_pairs(config) > SHORT_HISTORY else "")
    raise ImpastoError(f"{what} ({w}x{h} px) needs about {needed / 2**30:.1f} GiB of memory even over "
                       f"{side or MIN_TILE} px tiles and {free_words(free)}; the largest --size that "
                       f"fits is about {largest(curvature_pairs(config))}{shorter}")


# ---------------------------------------------------------------- sizes

def _name(image) -> str:
    return "the image given" if isinstance(image, Image.Image) else str(image)


def check_sizes(config: TransferConfig, inputs: PreparedInputs, content_name: str,
                style_names: Sequence[str]) -> None:
    """Every image at every scale large enough for the deepest layer it passes through (VGG-19's
    poolings halve it four or five times): one line naming the file, the size and what to change."""
    used = {l for layers, s in zip(inputs.layers, inputs.styles) if s is not None for l in layers}
    result_layers = set(config.content_layers) | used  # the result passes through every layer
    need = min_side(result_layers)
    for side in scale_sides(config):
        at = "--size" if side == config.size else f"its {side} px scale"
        w, h = imageio.fit_long_side(inputs.content.size, side)
        if min(w, h) < need:
            raise ImpastoError(f"{content_name}: {w}x{h} px at {at}; {deepest(result_layers)} needs a short side of "
                               f"at least {need} px (a larger --size{'' if len(scale_sides(config)) == 1 else ' or fewer --scales'}, or a less elongated image)")
        for i, style in enumerate(inputs.styles):
            if style is None:
                continue
            sw, sh = imageio.fit_long_side(style.size, style_side(style_long_side(config, side),
                                                                          inputs.scales[i]))
            if min(sw, sh) < min_side(inputs.layers[i]):
                raise ImpastoError(f"{style_names[i]}: measured at {sw}x{sh} px at {at}; "
                                   f"{deepest(inputs.layers[i])} needs a short side of at least "
                                   f"{min_side(inputs.layers[i])} px (a larger --style-scale, --style-size or "
                                   f"--style-scales)")


# ---------------------------------------------------------------- style sides, regions and colour

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


def regions_at(plan: PreparedInputs, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Content regions ``(R, 1, h, w)`` and the keep weight ``(1, 1, h, w)`` at ``size`` (w, h)."""
    stack = torch.cat([masks.mask_tensor(m, size) for m in plan.masks])
    return masks.regions(stack, plan.styled)


def style_mask_at(plan: PreparedInputs, i: int, image: torch.Tensor) -> torch.Tensor | None:
    mask = plan.style_masks[i]
    return None if mask is None else masks.mask_tensor(mask, (image.shape[-1], image.shape[-2]))


def _recolor(config: TransferConfig, plan: PreparedInputs, style_side: int) -> PreparedInputs:
    """Colour pre-processing at the output's size (colour paper: histogram matching, luminance-only transfer)."""
    photo = imageio.resize_to_tensor(plan.original, size=imageio.fit_long_side(plan.original.size, config.size))
    regions = regions_at(plan, (photo.shape[-1], photo.shape[-2]))[0] if plan.masks else None
    styles = []
    for i, style in enumerate(plan.styles):
        if style is None:
            styles.append(None)
            continue
        image = imageio.resize_to_tensor(style, long_side=_side(style_side, plan.scales[i]))
        region = None if regions is None or regions[i].sum() < 1 else regions[i:i + 1]  # lost at this size: all
        recoloured = _recolor_style(config, image, photo, style_mask_at(plan, i, image), region)
        styles.append(imageio.tensor_to_pil(recoloured))
    return dataclasses.replace(plan, content=imageio.tensor_to_pil(_seen(config, plan, photo)), styles=styles)


def _seen(config: TransferConfig, plan: PreparedInputs, photo: torch.Tensor) -> torch.Tensor:
    """What the network sees of the photo: its luminance (``luminance``), in the painting's tones (``ink``)."""
    if config.color == "luminance":
        return color.gray(color.luminance(photo))
    if config.color == "ink":
        return ink.in_ink_tones(photo, plan.tones, match=True)
    return photo


def _seals_out(style: Image.Image) -> Image.Image | None:
    """The part of a painting to copy without its seals, inscriptions and border (``--seals mask``), or
    None (none found)."""
    painting = imageio.pil_to_tensor(style)
    marks = torch.maximum(torch.maximum(ink.seal_mask(painting), ink.calligraphy_mask(painting)),
                          ink.border_mask(painting))
    return None if marks.max() == 0 else imageio.tensor_to_pil(color.gray(1 - marks))


def _ink_ground(config: TransferConfig, plan: PreparedInputs, style_side: int) -> PreparedInputs:
    """The first painting's tones and paper colour, measured at its size in this run (without its
    seals, or outside its style mask)."""
    i = plan.styled.index(True)
    painting = imageio.resize_to_tensor(plan.styles[i], long_side=_side(style_side, plan.scales[i]))
    weight = style_mask_at(plan, i, painting)
    return dataclasses.replace(plan, tones=ink.ink_tones(painting, weight), paper=ink.paper_tone(painting, weight))


def _recolor_style(config, style: torch.Tensor, photo: torch.Tensor, style_mask, region) -> torch.Tensor:
    if config.color == "ink":  # the painting keeps its own colours: the photo comes to them
        return style
    if config.color == "match":  # colour paper: colour histogram matching
        return color.match_color(style, photo, config.color_match, style_mask, region)
    # colour paper, luminance-only transfer: the style's luminance matched to the photo's
    luma = color.match_luminance(color.luminance(style), color.luminance(photo), style_mask, region)
    return color.gray(luma.clamp(0, 1))
