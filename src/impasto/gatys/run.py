"""``impasto.transfer`` (the function): Gatys et al. style transfer, from images in to a PIL image out.

Top-down: the inputs read and checked once (:func:`.inputs.prepare`) -> for each scale, coarse to
fine: the targets and the objective (:func:`.objective.build_objective`), the start image (white
noise, the photo, … or the previous scale's result upsampled), the loop (:mod:`impasto.optim`) ->
the finish (the keep region of ``--masks`` and the voids of ``--void-share`` held, the photo's colours
for ``--color luminance``) -> a PIL image. Progress and stopping follow the job model (:mod:`impasto.job`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..atomic import atomic_write
from ..config import TransferConfig
from ..image import color, imageio, ink, masks
from ..job import Callback, Cancel, Interrupted, Reporter, fingerprint, kept_folder, running
from ..loss import tiled
from ..net.vgg import VGG19, load_network
from ..optim.loop import Loop, loop_settings
from ..runtime import map_large_blocks, resolve_device, resolve_precision, set_threads
from .inputs import (PreparedInputs, network_layers, prepare, regions_at, scale_iterations, scale_levels, scale_sides,
                     style_long_side, style_side, tile_for)
from .objective import build_objective, holds_of, voids


# ---------------------------------------------------------------- the job

# An evaluation over tiles against the whole picture at once, for the time left (benchmarks/print.py,
# part overhead at 1536 px, 4 to 12 tiles: within 10 % of this model in fp32 and bf16): the tiles' area
# with their margins, over the picture's; each tile computed again in the second pass adds RECOMPUTE
# of its area (its forward pass with autograd again: measured to cost less of an evaluation in bf16);
# TILE_OVERHEAD for the rest (the sums, each tile's small layers, the gradient's assembly).
RECOMPUTE = {"fp32": 0.45, "bf16": 0.3}
TILE_OVERHEAD = 1.25
# A scale's first iteration evaluates its start image, then L-BFGS's first step: two evaluations after
# its targets (4096 px print, fp32 on AVX2 kernels: the last scale's first iteration took 305 s, 36 s
# of them its targets, each later one 129 s)
FIRST_EVALUATIONS = 2
# Before it, the scale's targets: a forward pass without autograd over the photo and each painting at
# that scale (over the tiles' areas, margins included, where it is tiled), each pixel TARGETS of an
# evaluation of the whole picture at once (benchmarks/print.py, part targets)
TARGETS = tiled.FORWARD
# A scale evaluated over tiles is bound by memory, most of it the optimiser's full-size vectors: L-BFGS
# keeps its curvature pairs in bfloat16 there (half their bytes; benchmarks/print.py, part pairs)
TILED_PAIRS = torch.bfloat16


def transfer(content, styles, config: TransferConfig | None = None, callback: Callback | None = None,
             image_every: int = 0, network: VGG19 | None = None, cancel: Cancel | None = None,
             keep_scales: str | os.PathLike | None = None) -> Image.Image:
    """Paint ``content`` in the style of ``styles`` (paths or PIL images); returns a PIL image.

    ``callback`` receives a :class:`~impasto.job.Progress` each iteration, with the current image
    every ``image_every`` iterations (0: never). Setting ``cancel`` (or Ctrl-C) raises
    :class:`~impasto.job.Interrupted` whose ``partial`` is the latest result as a PIL image; a
    diverging run raises :class:`DivergedError`. ``keep_scales``: a folder where each finished scale
    but the last is kept, and from whose last kept scale the run goes on (the command line keeps
    them beside the output: :func:`scales_folder`).
    """
    config = config or TransferConfig()
    styles = [styles] if isinstance(styles, (str, os.PathLike, Image.Image)) else list(styles)
    inputs = prepare(config, content, styles)
    set_threads()
    vgg = network or load_network(config)
    kept = None if keep_scales is None else KeptScales(keep_scales)
    costs = scale_costs(config, inputs)
    with running("transfer", sum(scale_iterations(config)), callback, cancel,
                 cost=iteration_costs(costs, scale_iterations(config))) as reporter:
        return _walk_scales(vgg, config, inputs, reporter, image_every, kept, costs)


@dataclass(frozen=True)
class ScaleCost:
    """What a scale's work costs, for the time left, in pixels of evaluations of the whole picture at once."""

    each: float     # one evaluation: its pixels, times :func:`tiled_cost` where it is tiled
    targets: float  # its targets, computed before its first iteration

    @property
    def first(self) -> float:
        """The first iteration: the targets, the start image's evaluation and L-BFGS's first step."""
        return self.targets + self.each * FIRST_EVALUATIONS


def scale_costs(config: TransferConfig, inputs: PreparedInputs) -> list[ScaleCost]:
    """Each scale's :class:`ScaleCost`."""
    layers = network_layers(config, inputs.layers)
    precision = resolve_precision(config.precision, resolve_device(config.device))
    costs = []
    for k, side in enumerate(scale_sides(config)):
        w, h = imageio.fit_long_side(inputs.content.size, side)
        tile, keep = tile_for(config, inputs, (w, h), refining=k > 0)
        each = w * h * (1.0 if tile is None else tiled_cost((w, h), tile, keep, layers, precision))
        paintings = [imageio.fit_long_side(s.size, style_side(style_long_side(config, side), scale))
                     for s, scale in zip(inputs.styles, inputs.scales) if s is not None]
        read = sum(forward_area(size, tile, layers) for size in [(w, h), *paintings])
        costs.append(ScaleCost(each, TARGETS * read))
    return costs


def iteration_costs(costs: Sequence[ScaleCost], iterations: Sequence[int]) -> list[float]:
    """Each iteration's relative cost, for the time left: its scale's evaluation, the first one's with
    the targets and the start image (:class:`ScaleCost`)."""
    return [c for cost, n in zip(costs, iterations) for c in ([cost.first] + [cost.each] * (n - 1) if n else [])]


class IterationShares:
    """The share of the current iteration done, for the time left: a scale's first iteration is its
    targets, then its evaluations (the start image's, L-BFGS's first step's), each told tile by tile.
    An evaluation beyond those planned (a step L-BFGS shortened or lengthened) makes the iteration cost
    one evaluation more, told to ``extend`` (:meth:`~impasto.job.Reporter.extend`)."""

    def __init__(self, cost: ScaleCost, extend: Callable[[float], None] = lambda extra: None):
        self.each, self.extend = cost.each, extend
        self.before, self.whole = cost.targets, cost.first  # costs of the targets, the iteration
        self.planned = FIRST_EVALUATIONS
        self.evaluations = 0  # begun in this iteration

    @property
    def targets(self) -> float:
        """The share of the targets (0 after the first iteration)."""
        return self.before / self.whole

    def at(self, share: float) -> float:
        """The iteration's share done with ``share`` of its current evaluation's tile passes done (0
        at an evaluation's first tile)."""
        if share == 0:
            self.evaluations += 1
            if self.evaluations > self.planned:
                self.planned += 1
                self.whole += self.each
                self.extend(self.each)
        return (self.before + self.each * (self.evaluations - 1 + share)) / self.whole

    def next_iteration(self) -> None:
        self.before, self.whole, self.planned, self.evaluations = 0.0, self.each, 1, 0


def forward_area(size: tuple[int, int], tile: int | None, layers) -> int:
    """Pixels a forward pass over a picture of ``size`` (w, h) reads: its own, with the margins of its
    tiles where tiled (a picture no larger than one tile is read at once)."""
    w, h = size
    if tile is None or tile >= max(w, h):
        return w * h
    return sum((t.iy1 - t.iy0) * (t.ix1 - t.ix0) for t in tiled.windows(h, w, tile, layers))


def tiled_cost(size: tuple[int, int], side: int, keep: int, layers, precision: str) -> float:
    """An evaluation over tiles of ``side`` (``keep`` of them held from the first pass) against the
    whole picture of ``size`` (w, h) at once, in ``precision`` (fp32, bf16)."""
    w, h = size
    tiles = tiled.windows(h, w, side, layers)
    areas = [(t.iy1 - t.iy0) * (t.ix1 - t.ix0) for t in tiles]
    again = sum(areas[:max(0, len(areas) - keep)])  # the last ``keep`` tiles' graphs are held
    return TILE_OVERHEAD * (sum(areas) + RECOMPUTE[precision] * again) / (w * h)


def scales_folder(output: str | os.PathLike, config: TransferConfig, inputs) -> Path:
    """Where the command line keeps the finished scales of a run writing ``output``: beside it, named by
    a fingerprint of the settings and the input files (``inputs``: paths or PIL images)."""
    return kept_folder(output, fingerprint("transfer", [config], files=inputs), "scales")


class KeptScales:
    """Finished scales as raw arrays (``scale_K.npy``, the image in [0, 1] as float32), written
    atomically: a run stopped by Ctrl-C, a crash or kill -9 loses at most the scale in progress."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)

    def _file(self, k: int) -> Path:
        return self.folder / f"scale_{k + 1}.npy"

    def keep(self, k: int, image: torch.Tensor) -> None:
        self.folder.mkdir(exist_ok=True)
        array = image.detach().float().cpu().numpy()
        atomic_write(self._file(k), lambda tmp: np.save(tmp, array, allow_pickle=False))

    def last(self, before: int, size_of) -> tuple[int, torch.Tensor] | None:
        """The finest kept scale below ``before`` and its image, or None; a file that does not read
        back whole at the size that scale has (``size_of(k)``: (w, h)) is made again."""
        for k in reversed(range(before)):
            path = self._file(k)
            if not path.is_file():
                continue
            try:
                array = np.load(path, allow_pickle=False)
            except (OSError, ValueError):
                continue
            w, h = size_of(k)
            if array.shape == (1, 3, h, w) and array.dtype == np.float32 and np.isfinite(array).all():
                return k, torch.from_numpy(array)
        return None


def _walk_scales(vgg: VGG19, config: TransferConfig, inputs: PreparedInputs, reporter: Reporter,
                 image_every: int, kept: KeptScales | None, costs: Sequence[ScaleCost]) -> Image.Image:
    """Each scale in turn, coarse to fine, each starting from the previous one's result upsampled (or
    from the last one ``kept`` from an earlier run, the scales up to it counted as done)."""
    device = next(vgg.parameters()).device
    generator = torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    sides = scale_sides(config)
    iterations = scale_iterations(config)
    final_size = imageio.fit_long_side(inputs.content.size, config.size)
    image, first = None, 0
    last: dict[str, float] = {}  # the latest iteration's losses, shown again with each tile's progress
    found = kept.last(len(sides) - 1, lambda k: imageio.fit_long_side(inputs.content.size, sides[k])) if kept else None
    if found is not None:
        first, image = found[0] + 1, found[1]
        reporter.skip(sum(iterations[:first]), f"scale {first}/{len(sides)} (kept)")
    for k, (side, n_iter) in enumerate(zip(sides, iterations)):
        if k < first:
            continue
        reporter.phase(n_iter)  # the time left within a scale at its own rate once it has an iteration done
        size = imageio.fit_long_side(inputs.content.size, side)
        content = imageio.resize_to_tensor(inputs.content, size=size)
        refining = image is not None
        tile, keep = tile_for(config, inputs, size, refining)
        if tile is not None:
            map_large_blocks()  # full-size blocks given back when freed: no heap grown by their holes
        stage = f"scale {k + 1}/{len(sides)}" if len(sides) > 1 else ""
        objective = build_objective(vgg, config, content, inputs, side, tile=tile, keep=keep)
        shares = IterationShares(costs[k], reporter.extend)
        begin = upsample(image, size) if refining else start(
            config, inputs, initial_image(config, content, inputs.real_styles, generator), content)
        if tile is not None:  # the targets, then each tile of an evaluation, take a while: say so (no unit
            # counted, their share of the iteration counted for the time left)
            reporter(last, ", ".join(filter(None, [stage, "targets"])), units=0, partial=shares.targets)
            objective.on_tile = lambda where, share, stage=stage, shares=shares: reporter(
                last, ", ".join(filter(None, [stage, where])), units=0, partial=shares.at(share))

        def report(losses, current, stage=stage, shares=shares):
            want = image_every > 0 and (reporter.done + 1) % image_every == 0
            last.clear()
            last.update(losses)
            shares.next_iteration()
            reporter(losses, stage, current.clone().cpu() if want else None)

        settings = loop_settings(config, pairs_dtype=None if tile is None else TILED_PAIRS,
                                 laplacian_levels=scale_levels(config, refining))
        loop = Loop(objective, begin.to(device), settings)
        del begin, content  # the loop holds the only copies it needs (at 8K each full-size image is 0.4 GB)
        try:
            image = loop.run(n_iter, report, reporter.cancel)
        except Interrupted as stop:
            latest = finish(config, inputs, upsample(stop.partial.cpu(), final_size))
            raise Interrupted(imageio.tensor_to_pil(latest)) from None
        finally:
            if tile is not None:
                map_large_blocks(False)
        del loop  # its full-size vectors freed before the next scale's targets or the finish
        if kept is not None and k < len(sides) - 1:
            kept.keep(k, image)
    return imageio.tensor_to_pil(finish(config, inputs, upsample(image.cpu(), final_size)))


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
    eq. 1; :func:`impasto.image.color.match_color`) turned around, the photo matched to the painting, as a
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


# ---------------------------------------------------------------- start and finish (spatial control, colour)

def held(config: TransferConfig, plan: PreparedInputs, image: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """``image`` with what the objective holds (:func:`.objective.holds_of`) set: the keep region of
    ``--masks`` to the photo ``content`` (as the network sees it, at the image's size), the voids of
    ``--void-share`` to the paper."""
    keep = regions_at(plan, (image.shape[-1], image.shape[-2]))[1] if plan.masks is not None else None
    for mask, picture in holds_of(keep, content, voids(config, content), plan.paper):
        image = masks.hold(image, mask, picture)
    return image


def start(config: TransferConfig, plan: PreparedInputs, image: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """The start image with what the objective holds set (so intermediate images show it)."""
    return held(config, plan, image, content)


def finish(config: TransferConfig, plan: PreparedInputs, image: torch.Tensor) -> torch.Tensor:
    """Post-processing of the final ``(1, 3, H, W)`` image: the keep region and the voids, then the colour."""
    size = (image.shape[-1], image.shape[-2])
    image = held(config, plan, image, imageio.resize_to_tensor(plan.content, size=size))
    if config.color == "luminance":  # colour paper, luminance-only transfer: the photo's chrominance back
        image = color.keep_chrominance(image.clamp(0, 1), imageio.resize_to_tensor(plan.original, size=size),
                                       config.color_space)
    if config.color == "ink":  # each tone in the colour the painting gives it (issue 25)
        image = ink.in_ink_tones(image.clamp(0, 1), plan.tones)
    return image
