"""Gatys et al. style transfer (``impasto.transfer``), from images in to a PIL image out.

Data flow: images -> pre-processed inputs (:mod:`impasto.control`) -> sizes per scale -> the
objective of each scale (:func:`impasto.objective.build_objective`) -> optimisation loop
(:mod:`impasto.optimize`) -> next scale (upsampled) -> PIL image. Progress and stopping follow the
job model (:mod:`impasto.job`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from . import color, control, imageio
from .config import INIT_MODES, NORMALIZATIONS, TransferConfig, check_options
from .errors import ImpastoError
from .job import Callback, Cancel, Interrupted, Reporter, ctrl_c_sets
from .objective import build_objective, layer_weights
from .optimize import loop_settings, run_loop
from .runtime import check_image_memory, set_threads
from .vgg import CONVOLUTIONS, VGG19, check_layers, deepest, load_network, min_side

# ---------------------------------------------------------------- validation and sizes

def validate(config: TransferConfig, n_styles: int) -> None:
    """Reject bad option values with one line each, before any work: every option in its type and
    range (:func:`impasto.config.check_options`), then what depends on several of them."""
    check_options(config)
    check_layers(config.content_layers)
    check_layers(config.style_layers)
    for name, value, allowed in (("normalization", config.normalization, NORMALIZATIONS),
                                 ("convolution", config.convolution, CONVOLUTIONS)):
        if value not in allowed:
            raise ImpastoError(f"--{name} must be one of {', '.join(allowed)}, not '{value}'")
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
    if n_styles < 1:
        raise ImpastoError("at least one style image is needed")
    if config.style_blend is not None and len(config.style_blend) != n_styles:
        raise ImpastoError(f"--style-blend has {len(config.style_blend)} weights for {n_styles} style images")
    if config.style_blend is not None and (min(config.style_blend) < 0 or sum(config.style_blend) <= 0):
        raise ImpastoError("--style-blend weights must be non-negative and not all zero")
    scale_sides(config)


AUTO_COARSEST = 128  # long side of the coarsest scale when --scales is 0 (auto)


def scale_sides(config: TransferConfig) -> list[int]:
    """Long side of each scale, coarse to fine, the last one being ``config.size``.

    0 (auto): divide the size by ``scale_step`` while the coarsest stays at least 128 px (512 px in
    steps of 2: 128, 256, 512), as Gatys et al.'s high-resolution recipe and later tools go coarse to
    fine; N: N scales ``scale_step`` apart. Every scale minimises the full size's objective
    (:func:`content_weight_scale`). The default is 1 (one scale): benchmarks/schedule.py measured it
    reaching a lower objective in the same wall time at 512 and 1024 px, from the photo and from
    white noise (README, Speed).
    """
    step = config.scale_step
    if not (math.isfinite(step) and step > 1):
        raise ImpastoError(f"--scale-step must be a number above 1, got {step}")
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


def split_iterations(total: int, sides: Sequence[int]) -> list[int]:
    """Iterations per scale, in proportion to 1 / long side (4:2:1 for three scales a factor 2 apart).

    An iteration costs in proportion to the pixels, so each finer scale spends more time on fewer
    iterations: the coarse scales do the travelling and the full size refines; the rounding
    remainder goes to the finest.
    """
    weights = [sides[-1] / side for side in sides]
    share = [int(total * w / sum(weights)) for w in weights]
    share[-1] += total - sum(share)
    return share


def blend_weights(config: TransferConfig, n_styles: int) -> list[float]:
    raw = list(config.style_blend) if config.style_blend is not None else [1.0] * n_styles
    return [b / sum(raw) for b in raw]


def _name(image) -> str:
    return "the image given" if isinstance(image, Image.Image) else str(image)


def check_sizes(config: TransferConfig, inputs: control.PreparedInputs, content_name: str,
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
            sw, sh = imageio.fit_long_side(style.size, control.style_side(control.style_long_side(config, side),
                                                                          inputs.scales[i]))
            if min(sw, sh) < min_side(inputs.layers[i]):
                raise ImpastoError(f"{style_names[i]}: measured at {sw}x{sh} px at {at}; "
                                   f"{deepest(inputs.layers[i])} needs a short side of at least "
                                   f"{min_side(inputs.layers[i])} px (a larger --style-scale, --style-size or "
                                   f"--style-scales)")


# ---------------------------------------------------------------- start image

def initial_image(config: TransferConfig, content: torch.Tensor, styles: Sequence[Image.Image],
                  generator: torch.Generator) -> torch.Tensor:
    """White noise (the paper), the content, the content recoloured, noisy content (Coursera), the
    style, or a file."""
    _, _, h, w = content.shape
    noise = torch.rand(content.shape, generator=generator)
    if config.init == "noise":
        return noise
    if config.init == "content":
        return content.clone()
    if config.init == "recolored":
        return recolored(content, styles, config.color_match)
    if config.init == "noisy-content":
        return config.noise_ratio * noise + (1 - config.noise_ratio) * content
    if config.init == "style":
        return imageio.resize_to_tensor(styles[0], size=(w, h))
    return imageio.load_image(config.init, size=(w, h))


def recolored(content: torch.Tensor, styles: Sequence[Image.Image], method: str = "pca") -> torch.Tensor:
    """The photo with the colour mean and covariance of the style images' pixels (all of them
    pooled, each at the photo's size): the colour matching of the colour paper (arXiv 1606.05897,
    eq. 1; :func:`impasto.color.match_color`) turned around, the photo matched to the painting, as a
    start image.
    The style loss's lowest layer (relu1_1) is mostly about colour, so this start is closer to the
    optimum than the photo itself at the price of nothing."""
    _, _, h, w = content.shape
    pooled = torch.cat([imageio.resize_to_tensor(s, size=(w, h)) for s in styles], dim=-1)
    return color.match_color(content, pooled, method)


def upsample(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    w, h = size
    if image.shape[-2:] == (h, w):
        return image
    return F.interpolate(image, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


# ---------------------------------------------------------------- the job

def transfer(content, styles, config: TransferConfig | None = None, callback: Callback | None = None,
             image_every: int = 0, network: VGG19 | None = None, cancel: Cancel | None = None) -> Image.Image:
    """Paint ``content`` in the style of ``styles`` (paths or PIL images); returns a PIL image.

    ``callback`` receives a :class:`~impasto.job.Progress` each iteration, with the current image
    every ``image_every`` iterations (0: never). Setting ``cancel`` (or Ctrl-C) raises
    :class:`~impasto.job.Interrupted` whose ``partial`` is the latest result as a PIL image; a
    diverging run raises :class:`DivergedError`.
    """
    config = config or TransferConfig()
    styles = [styles] if isinstance(styles, (str, os.PathLike, Image.Image)) else list(styles)
    validate(config, len(styles))
    inputs = control.prepare(config, imageio.as_pil(content), styles, open_image=imageio.as_pil,
                             blend=blend_weights(config, len(styles)),
                             style_side=control.style_long_side(config, config.size))
    check_sizes(config, inputs, _name(content), [_name(s) for s in styles])
    check_image_memory(config, imageio.fit_long_side(inputs.content.size, config.size), "the output", "--size")
    set_threads()
    vgg = network or load_network(config)
    cancel = cancel or Cancel()
    with ctrl_c_sets(cancel):
        return _walk_scales(vgg, config, inputs, Reporter("transfer", config.iterations, callback), image_every, cancel)


def _walk_scales(vgg: VGG19, config: TransferConfig, inputs: control.PreparedInputs, reporter: Reporter,
                 image_every: int, cancel: Cancel) -> Image.Image:
    """Each scale in turn, coarse to fine, each starting from the previous one's result upsampled."""
    device = next(vgg.parameters()).device
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    sides = scale_sides(config)
    final_size = imageio.fit_long_side(inputs.content.size, config.size)
    image = None
    for k, (side, n_iter) in enumerate(zip(sides, split_iterations(config.iterations, sides))):
        size = imageio.fit_long_side(inputs.content.size, side)
        content = imageio.resize_to_tensor(inputs.content, size=size)
        objective = build_objective(vgg, config, content, inputs, side)
        if image is None:
            image = control.start(inputs, initial_image(config, content, inputs.real_styles, generator), content)
        else:
            image = upsample(image, size)
        stage = f"scale {k + 1}/{len(sides)}" if len(sides) > 1 else ""

        def report(losses, current, stage=stage):
            want = image_every > 0 and (reporter.done + 1) % image_every == 0
            reporter(losses, stage, current.clone().cpu() if want else None)

        try:
            image = run_loop(objective, image.to(device), n_iter, loop_settings(config), report, cancel)
        except Interrupted as stop:
            latest = control.finish(config, inputs, upsample(stop.partial.cpu(), final_size))
            raise Interrupted(imageio.tensor_to_pil(latest)) from None
    return imageio.tensor_to_pil(control.finish(config, inputs, upsample(image.cpu(), final_size)))
