"""``impasto.transfer``: Gatys et al. style transfer, from images in to a PIL image out.

Data flow: images -> sizes per scale -> targets (once per scale, no autograd) -> objective ->
optimisation loop -> next scale (upsampled) -> PIL image. Progress goes to ``callback``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from PIL import Image

from . import control, imageio
from .config import INIT_MODES, NORMALIZATIONS, TransferConfig
from .errors import ImpastoError
from .objective import (REFERENCE_SIDE, Objective, content_scale, content_style_term, content_targets,
                        content_term, layer_weights, tv_term)
from .optimize import Interrupted, LoopSettings, Progress, _Stop, clock, run_loop
from .runtime import resolve_device, resolve_precision, set_threads
from .vgg import CONVOLUTIONS, VGG19, check_layers

ImageLike = "str | os.PathLike | Image.Image"


def as_pil(image) -> Image.Image:
    if isinstance(image, Image.Image):
        return imageio._to_rgb(image)
    if isinstance(image, (str, os.PathLike)):
        return imageio.open_image(image)
    raise ImpastoError(f"expected an image path or PIL image, got {type(image).__name__}")


def load_network(config: TransferConfig, device: torch.device | None = None) -> VGG19:
    """The frozen VGG-19 for ``config`` on its device and in its precision."""
    device = device or resolve_device(config.device)
    vgg = VGG19(config.weights, pooling=config.pooling, preprocess=config.preprocess).to(device)
    vgg = vgg.set_precision(resolve_precision(config.precision, device), channels_last=True)
    return vgg.set_convolution(config.convolution)


# ---------------------------------------------------------------- validation and sizes

def validate(config: TransferConfig, n_styles: int) -> None:
    """Reject bad option values with one line each, before any work."""
    check_layers(config.content_layers)
    check_layers(config.style_layers)
    for name, value, allowed in (("normalization", config.normalization, NORMALIZATIONS),
                                 ("convolution", config.convolution, CONVOLUTIONS)):
        if value not in allowed:
            raise ImpastoError(f"--{name} must be one of {', '.join(allowed)}, not '{value}'")
    layer_weights(config.content_layers, config.content_layer_weights, 1.0)
    layer_weights(config.style_layers, config.style_layer_weights, 1.0)
    positive = {"size": config.size, "style_scale": config.style_scale, "ratio": config.ratio}
    if config.style_size is not None:
        positive["style_size"] = config.style_size
    for name, value in positive.items():
        if not value > 0:
            raise ImpastoError(f"--{name.replace('_', '-')} must be positive, got {value}")
    if not 0 <= config.content_style_weight < config.beta:  # seed 000's γ: see objective.content_style_term
        raise ImpastoError(f"--content-style-weight must be at least 0 and below the style weight "
                           f"beta = {config.beta:g}, got {config.content_style_weight:g}")
    if config.iterations < 0:
        raise ImpastoError(f"--iterations must be 0 or more, got {config.iterations}")
    if not 0 <= config.noise_ratio <= 1:
        raise ImpastoError(f"--noise-ratio must be between 0 and 1, got {config.noise_ratio}")
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


def style_long_side(config: TransferConfig, out_long: int) -> int:
    """The style is measured at ``--style-size`` (scaled with the output) or ``--style-scale`` × output."""
    if config.style_size is not None:
        return max(16, round(config.style_size * out_long / config.size))
    return max(16, round(config.style_scale * out_long))


# ---------------------------------------------------------------- start image

def initial_image(config: TransferConfig, content: torch.Tensor, styles: Sequence[Image.Image],
                  generator: torch.Generator) -> torch.Tensor:
    """White noise (the paper), the content, noisy content (Coursera), the style, or a file."""
    _, _, h, w = content.shape
    noise = torch.rand(content.shape, generator=generator)
    if config.init == "noise":
        return noise
    if config.init == "content":
        return content.clone()
    if config.init == "noisy-content":
        return config.noise_ratio * noise + (1 - config.noise_ratio) * content
    if config.init == "style":
        return imageio.resize_pil(styles[0], size=(w, h))
    return imageio.load_image(config.init, size=(w, h))


def upsample(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    w, h = size
    if image.shape[-2:] == (h, w):
        return image
    return F.interpolate(image, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


# ---------------------------------------------------------------- objective per scale

def pixels(size: tuple[int, int]) -> int:
    return size[0] * size[1]


def content_weight_scale(config: TransferConfig, size: tuple[int, int], photo_size: tuple[int, int]) -> float:
    """The content loss's factor at a scale of ``size`` (width, height): every scale minimises the
    objective of the full-size image (:func:`objective.content_scale`)."""
    full = imageio.fit_long_side(photo_size, config.size)
    reference = imageio.fit_long_side(photo_size, REFERENCE_SIDE)
    return content_scale(config.normalization, pixels(size), pixels(full), pixels(reference))


def build_objective(vgg: VGG19, config: TransferConfig, content: torch.Tensor,
                    inputs: control.Plan, out_long: int) -> Objective:
    """Targets for this scale (computed once, without autograd) and the weighted terms.

    ``inputs`` are the pre-processed images (:func:`control.prepare`): their style targets are
    blended Gram matrices, or guided ones per region when the photo has masks.
    """
    device = next(vgg.parameters()).device
    size = (content.shape[-1], content.shape[-2])
    style = control.style_targets(vgg, config, inputs, style_long_side(config, out_long), size)
    c_targets = content_targets(vgg, content.to(device), config.content_layers)
    s_targets, s_weights = style.targets, style.weights
    terms = [
        content_term(c_targets, layer_weights(config.content_layers, config.content_layer_weights, 1.0),
                     config.alpha, config.normalization,
                     scale=content_weight_scale(config, size, inputs.content.size)),
        control.style_term(style, config.beta),
        tv_term(config.tv_weight),
    ]
    if config.content_style_weight > 0:  # −γ L_style(p, x), seed 000's extension (bounded)
        terms.append(content_style_term(vgg, content.to(device), s_targets, s_weights, config.content_style_weight))
    return control.objective(vgg, terms, style, content.to(device))


def loop_settings(config: TransferConfig) -> LoopSettings:
    return LoopSettings(optimizer=config.optimizer, lr=config.lr, lbfgs_history=config.lbfgs_history,
                        line_search=config.line_search, early_stop=config.early_stop,
                        clamp=True)


# ---------------------------------------------------------------- the job

def transfer(content, styles, config: TransferConfig | None = None,
             callback: Callable[[Progress], None] | None = None, image_every: int = 0,
             network: VGG19 | None = None) -> Image.Image:
    """Paint ``content`` in the style of ``styles`` (paths or PIL images); returns a PIL image.

    ``callback`` receives a :class:`Progress` each iteration, with the current image every
    ``image_every`` iterations (0: never). Ctrl-C raises :class:`Interrupted` holding the latest
    result; a diverging run raises :class:`DivergedError`.
    """
    config = config or TransferConfig()
    styles = [styles] if isinstance(styles, (str, os.PathLike, Image.Image)) else list(styles)
    validate(config, len(styles))
    inputs = control.prepare(config, as_pil(content), styles, open_image=as_pil,
                             blend=blend_weights(config, len(styles)), style_side=style_long_side(config, config.size))
    content_img = inputs.content
    set_threads()
    vgg = network or load_network(config)
    device = next(vgg.parameters()).device
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    sides = scale_sides(config)
    plan = split_iterations(config.iterations, sides)
    final_size = imageio.fit_long_side(content_img.size, config.size)
    start, done, image = clock(), 0, None
    for k, (side, n_iter) in enumerate(zip(sides, plan)):
        size = imageio.fit_long_side(content_img.size, side)
        content_t = imageio.resize_pil(content_img, size=size)
        objective = build_objective(vgg, config, content_t, inputs, side)
        if image is None:
            image = control.start(inputs, initial_image(config, content_t, inputs.real_styles, generator), content_t)
        else:
            image = upsample(image, size)

        def report(losses, current, k=k, size=size):
            nonlocal done
            done += 1
            if callback is not None:
                want = image_every > 0 and done % image_every == 0
                callback(Progress(done, config.iterations, k, len(sides), size, losses, clock() - start,
                                  current.clone().cpu() if want else None))

        try:
            image = run_loop(objective, image.to(device), n_iter, loop_settings(config), report)
        except _Stop as stop:
            latest = control.finish(config, inputs, upsample(stop.image.cpu(), final_size))
            raise Interrupted(imageio.tensor_to_pil(latest)) from None
    return imageio.tensor_to_pil(control.finish(config, inputs, upsample(image.cpu(), final_size)))
