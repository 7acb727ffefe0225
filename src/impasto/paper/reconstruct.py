"""The paper's reconstructions (Gatys, Ecker & Bethge, arXiv 1508.06576, Fig. 1): an image found
from white noise that matches only the content representation of one layer (content
reconstruction, eq. 1), or only the Gram matrices of a few layers (style reconstruction, i.e.
texture synthesis, eq. 5). The paper's "conv1_1 … conv5_1" are the post-ReLU responses,
``relu1_1 … relu5_1`` here. The sheets of :mod:`.figures` are made of these.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from PIL import Image

from ..image import imageio
from ..config import ReconstructConfig, check_options
from ..errors import ImpastoError
from ..job import Callback, Cancel, Interrupted, running
from ..loss.terms import Objective, Term, content_targets, content_term, style_targets, style_term
from ..optim.loop import loop_settings, run_loop
from ..runtime import check_image_memory, set_threads
from ..net.vgg import VGG19, check_layers, load_network, min_side

MIN_SIDE = 16          # relu5_1 sits after four 2×2 poolings: 16 px leave it one position


def check_run(config) -> None:
    check_options(config)  # --size at least MIN_SIDE, iterations not negative, … (the fields' ranges)


def fit(image: Image.Image, long_side: int, name: str, need: int = MIN_SIDE) -> tuple[int, int]:
    """(w, h) of ``image`` at ``long_side``; refuses shapes too thin for the deepest layer (``need``)."""
    w, h = imageio.fit_long_side(image.size, long_side)
    if min(w, h) < need:
        raise ImpastoError(f"{name}: {w}x{h} px at --size {long_side}; its short side must be at least "
                           f"{need} px here (try a larger --size)")
    return w, h


def texture_shape(config: ReconstructConfig, style_shape: tuple[int, int]) -> tuple[int, int]:
    """(w, h) of a style reconstruction: ``--texture-size`` (any size) or the style's own shape."""
    given = config.texture_size
    if given is None:
        return style_shape
    sides = (given, given) if isinstance(given, int) else tuple(given)
    if len(sides) != 2 or min(sides) < MIN_SIDE:
        raise ImpastoError(f"--texture-size takes WIDTH,HEIGHT or one side, each at least {MIN_SIDE} px; "
                           f"got {','.join(map(str, sides))}")
    return sides


def white_noise(shape: Sequence[int], seed: int) -> torch.Tensor:
    """The paper's start image: uniform noise in [0, 1], the same for a given seed and shape."""
    return torch.rand(tuple(shape), generator=torch.Generator().manual_seed(seed))


def solve(vgg: VGG19, terms: Sequence[Term], start: torch.Tensor, config,
          report: Callable[[dict, torch.Tensor], None] | None = None, cancel: Cancel | None = None) -> torch.Tensor:
    """Minimise the weighted ``terms`` over the pixels, from ``start`` (paper section 2), pixels kept
    in the valid range as in ``impasto transfer``: the image written is the one whose loss was
    minimised."""
    return run_loop(Objective(vgg, terms), start, config.iterations, loop_settings(config), report, cancel)


def network_on_device(config, network: VGG19 | None) -> tuple[VGG19, torch.device]:
    set_threads()
    vgg = network or load_network(config)
    return vgg, next(vgg.parameters()).device


def measured(image, long_side: int, need: int = MIN_SIDE) -> torch.Tensor:
    """An input (path or PIL image) as ``(1, 3, H, W)`` at ``long_side``: read and checked before
    the network is loaded, so bad input fails at once."""
    pil = imageio.as_pil(image)
    name = str(image) if not isinstance(image, Image.Image) else "image"
    return imageio.resize_to_tensor(pil, size=fit(pil, long_side, name, need))


def reconstruct_content(image, layer: str, config: ReconstructConfig | None = None,
                        callback: Callback | None = None, network: VGG19 | None = None,
                        cancel: Cancel | None = None) -> Image.Image:
    """White noise -> an image whose ``layer`` response matches ``image``'s (figure 1, content; eq. 1).

    Low layers give back the pixels almost exactly, high ones keep the arrangement and lose detail.
    Setting ``cancel`` (or Ctrl-C) raises :class:`Interrupted` with the best image so far.
    """
    config = config or ReconstructConfig()
    check_layers([layer])
    check_run(config)
    photo = measured(image, config.size, max(MIN_SIDE, min_side([layer])))
    check_image_memory(config, (photo.shape[-1], photo.shape[-2]), "the reconstruction", "--size")
    vgg, device = network_on_device(config, network)
    photo = photo.to(device)
    term = content_term(content_targets(vgg, photo, [layer]), [1.0], 1.0)
    return _run_one(vgg, term, photo.shape, config, callback, cancel)


def reconstruct_style(image, layers: Sequence[str], config: ReconstructConfig | None = None,
                      callback: Callback | None = None, network: VGG19 | None = None,
                      cancel: Cancel | None = None) -> Image.Image:
    """White noise -> a texture whose Gram matrices on ``layers`` match ``image``'s (figure 1, style).

    ``L_style`` of eq. 5 with w_l = 1/len(layers); the output has ``config.texture_size`` (any size:
    the targets are Gram matrices per position, so they do not depend on the input's shape).
    """
    config = config or ReconstructConfig()
    layers = tuple(check_layers(layers))
    if not layers:
        raise ImpastoError("at least one style layer is needed")
    check_run(config)
    painting = measured(image, config.size)
    w, h = texture_shape(config, (painting.shape[-1], painting.shape[-2]))
    check_image_memory(config, (w, h), "the texture", "--texture-size side")
    vgg, device = network_on_device(config, network)
    painting = painting.to(device)
    term = style_term(style_targets(vgg, [painting], [1.0], layers), [1.0 / len(layers)] * len(layers), 1.0)
    return _run_one(vgg, term, (1, 3, h, w), config, callback, cancel)


def _run_one(vgg: VGG19, term: Term, shape, config, callback, cancel: Cancel | None) -> Image.Image:
    start = white_noise(shape, config.seed).to(next(vgg.parameters()).device)
    try:
        with running("reconstruct", config.iterations, callback, cancel) as reporter:
            image = solve(vgg, [term], start, config, lambda losses, current: reporter(losses), reporter.cancel)
    except Interrupted as stop:
        raise Interrupted(imageio.tensor_to_pil(stop.partial.cpu())) from None
    return imageio.tensor_to_pil(image.cpu())

