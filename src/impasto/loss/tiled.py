"""The objective of a picture too large for memory, evaluated exactly over tiles (issue 26).

Every term of the objective depends on the network's features only through sums over positions: the
content loss (eq. 1) is one, and each style loss (eq. 4–5) is a function of Gram matrices
``G_l = Σ_positions f fᵀ`` (eq. 3), which are sums too. VGG-19 sees a bounded window around each position
(its receptive field), so a tile of the picture read with a margin as wide as that window reaching out
has, at its own positions, exactly the features the whole picture has there: the network pads only at
the picture's real borders, which the tiles keep, and tile corners on multiples of the deepest layer's
stride keep every pooling grid aligned.

So the objective and its gradient come from two passes over the tiles (:func:`evaluate`):

1. each tile's sums over its own positions (no autograd), added up: the picture's statistics;
2. the objective of those statistics and its gradient with respect to each of them (autograd on a few
   small tensors), then for each tile the backward pass of ``Σ_k ⟨∂L/∂S_k, S_k(tile)⟩``: its pixel
   gradient, added into one full-size gradient.

Nothing is approximated: the result equals the untiled objective and gradient to rounding, while
memory is bounded by one tile's activations. Tiles whose activations fit beside the others are kept
from the first pass instead of being computed again (``keep``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from ..net.vgg import LAYER_INDEX, LAYERS
from .losses import wide_dtype


# ---------------------------------------------------------------- geometry: what a position sees

def _walk(layer: str) -> tuple[int, int, int]:
    """``(receptive field, stride, left reach)`` of ``layer``'s positions in pixels: a position ``r`` of
    it reads pixels ``[r·stride − reach, r·stride − reach + field)`` (3×3 convolutions padded by one,
    2×2 poolings with stride 2)."""
    field, stride, reach = 1, 1, 0
    for name in LAYERS[:LAYER_INDEX[layer] + 1]:
        if name.startswith("conv"):
            field, reach = field + 2 * stride, reach + stride
        elif name.startswith("pool"):
            field, stride = field + stride, stride * 2
    return field, stride, reach


def stride(layer: str) -> int:
    return _walk(layer)[1]


def alignment(layers: Sequence[str]) -> int:
    """Tile corners fall on multiples of this: the largest stride among ``layers`` (16 for relu5_1)."""
    return max((stride(l) for l in layers), default=1)


def margin(layers: Sequence[str]) -> int:
    """Pixels a tile reads beyond its own on each side so that its own positions on every layer of
    ``layers`` see exactly what they see in the whole picture (relu5_1: a 156 px field reaching 70 px
    either side of its 16 px cell, so 80), rounded up to :func:`alignment`."""
    align = alignment(layers)
    need = max((max(reach, field - s - reach) for field, s, reach in map(_walk, layers)), default=0)
    return math.ceil(need / align) * align


@dataclass(frozen=True)
class Window:
    """A tile: the picture's pixel rows ``[y0, y1)`` and columns ``[x0, x1)`` it owns (its positions on
    every layer are those whose cell starts there), read from rows ``[iy0, iy1)`` and columns
    ``[ix0, ix1)``, in a picture of ``height`` × ``width``. The whole picture is :data:`WHOLE`."""

    y0: int
    y1: int
    x0: int
    x1: int
    iy0: int
    iy1: int
    ix0: int
    ix1: int
    height: int
    width: int

    def rows(self, layer: str) -> tuple[int, int]:
        """The own positions' rows on ``layer``'s grid of the whole picture."""
        s = stride(layer)
        return self.y0 // s, (self.y1 // s if self.y1 < self.height else self.height // s)

    def cols(self, layer: str) -> tuple[int, int]:
        s = stride(layer)
        return self.x0 // s, (self.x1 // s if self.x1 < self.width else self.width // s)

    def crop(self, grid: torch.Tensor, layer: str) -> torch.Tensor:
        """``grid``, a tensor ``(…, h, w)`` on ``layer``'s grid of the whole picture (targets, masks),
        at the own positions."""
        (r0, r1), (c0, c1) = self.rows(layer), self.cols(layer)
        return grid[..., r0:r1, c0:c1]

    def own(self, features: torch.Tensor, layer: str) -> torch.Tensor:
        """The tile's ``features`` on ``layer`` (computed from its input) at its own positions."""
        s = stride(layer)
        (r0, r1), (c0, c1) = self.rows(layer), self.cols(layer)
        return features[..., r0 - self.iy0 // s:r1 - self.iy0 // s, c0 - self.ix0 // s:c1 - self.ix0 // s]

    def input(self, image: torch.Tensor) -> torch.Tensor:
        return image[..., self.iy0:self.iy1, self.ix0:self.ix1]


class Whole(Window):
    """The whole picture as one window: nothing is cropped."""

    def __init__(self):
        super().__init__(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    def crop(self, grid: torch.Tensor, layer: str) -> torch.Tensor:
        return grid

    def own(self, features: torch.Tensor, layer: str) -> torch.Tensor:
        return features

    def input(self, image: torch.Tensor) -> torch.Tensor:
        return image


WHOLE = Whole()


def _cuts(length: int, side: int, align: int) -> list[int]:
    """Boundaries ``0 = b_0 < … < b_n = length`` of about equal bands no longer than ``side`` (inner
    boundaries on multiples of ``align``)."""
    count = max(1, math.ceil(length / side))
    inner = sorted({round(k * length / count / align) * align for k in range(1, count)} - {0})
    return [0, *[b for b in inner if b < length], length]


def windows(height: int, width: int, side: int, layers: Sequence[str]) -> list[Window]:
    """The tiles of a ``height`` × ``width`` picture, own bands at most about ``side`` px, each read with
    :func:`margin` around it (clipped at the picture's borders)."""
    align, extra = alignment(layers), margin(layers)
    side = max(align, side)
    ys, xs = _cuts(height, side, align), _cuts(width, side, align)
    return [Window(y0, y1, x0, x1, max(0, y0 - extra), min(height, y1 + extra),
                   max(0, x0 - extra), min(width, x1 + extra), height, width)
            for y0, y1 in zip(ys, ys[1:]) for x0, x1 in zip(xs, xs[1:])]


# ---------------------------------------------------------------- the two passes

Sums = dict[str, torch.Tensor]
SumsFn = Callable[[dict[str, torch.Tensor], Window], Sums]   # own features, window -> sums over its positions
ValueFn = Callable[[Sums], torch.Tensor]                     # the picture's sums -> the term's value


def _add(into: dict, key, value: torch.Tensor) -> None:
    into[key] = value if key not in into else into[key] + value


def _tile_sums(vgg, tile: torch.Tensor, window: Window, layers: Sequence[str],
               sums: Sequence[SumsFn]) -> list[Sums]:
    """Each term's sums over the own positions of ``window``, whose input is ``tile``."""
    feats = vgg(tile, layers)
    own = {l: window.own(f, l) for l, f in feats.items()}
    return [fn(own, window) for fn in sums]


def statistics(vgg, image: torch.Tensor, tiles: Sequence[Window], layers: Sequence[str],
               sums: Sequence[SumsFn]) -> list[Sums]:
    """Each term's sums over the whole picture, added up tile by tile (no autograd)."""
    total: list[Sums] = [{} for _ in sums]
    with torch.no_grad():
        for window in tiles:
            for into, part in zip(total, _tile_sums(vgg, window.input(image), window, layers, sums)):
                for key, value in part.items():
                    _add(into, key, value)
    return total


# What a forward pass without autograd costs per pixel, as a share of a forward and backward pass with it
# (benchmarks/print.py, part targets: 0.33-0.38 at 1536 px, fp32); it weighs each tile pass in the progress
FORWARD = 0.35


def pass_shares(tiles: Sequence[Window], keep: int) -> list[float]:
    """The share of an evaluation's work done before each of its tile passes, in the order of
    :func:`evaluate`: every tile's forward pass (FORWARD of its area), the held tiles' backward passes
    (the rest), then the others' forward and backward passes again (their whole area)."""
    areas = [(t.iy1 - t.iy0) * (t.ix1 - t.ix0) for t in tiles]
    first_kept = len(tiles) - min(keep, len(tiles))
    costs = [FORWARD * a for a in areas] + [(1 - FORWARD) * a for a in areas[first_kept:]] + areas[:first_kept]
    done = list(itertools.accumulate(costs, initial=0.0))
    return [d / done[-1] for d in done[:-1]]


def evaluate(vgg, image: torch.Tensor, tiles: Sequence[Window], layers: Sequence[str],
             sums: Sequence[SumsFn], values: Sequence[ValueFn], weights: Sequence[float],
             keep: int = 1, on_tile: Callable[[str, float], None] | None = None) -> tuple[list[float], torch.Tensor]:
    """The terms' values and the gradient of ``Σ_t weight_t · value_t`` with respect to ``image``
    (``(1, 3, H, W)``, no autograd history needed), over ``tiles``. The last ``keep`` tiles' graphs
    are kept from the first pass (their activations held at once, then freed before the others are
    computed again) instead of being computed again. ``on_tile`` is told each tile as it starts
    ("tile 3/12", "tile 3/12, backward") with the share of the evaluation's work done before it
    (:func:`pass_shares`), for a progress display."""
    kept: list[tuple[Window, torch.Tensor, list[Sums]]] = []
    total: list[Sums] = [{} for _ in sums]
    shares = iter(pass_shares(tiles, keep))
    tell = (lambda where: on_tile(where, next(shares))) if on_tile else (lambda where: None)
    for n, window in enumerate(tiles):
        tell(f"tile {n + 1}/{len(tiles)}")
        if n >= len(tiles) - keep:
            x = window.input(image).detach().requires_grad_(True)
            with torch.enable_grad():
                parts = _tile_sums(vgg, x, window, layers, sums)
            kept.append((window, x, parts))
        else:
            with torch.no_grad():
                parts = _tile_sums(vgg, window.input(image), window, layers, sums)
        for into, part in zip(total, parts):
            for key, value in part.items():
                _add(into, key, value.detach())
    term_values, grads = _outer(total, values, weights)
    gradient = torch.zeros_like(image, dtype=wide_dtype(image.dtype))
    first_kept = len(tiles) - len(kept)
    for n, (window, x, parts) in enumerate(kept):  # first: their activations freed before any tile is recomputed
        tell(f"tile {first_kept + n + 1}/{len(tiles)}, backward")
        _add_gradient(gradient, window, x, parts, grads)
    kept.clear()
    for n, window in enumerate(tiles[:first_kept]):
        tell(f"tile {n + 1}/{len(tiles)}, backward")
        x = window.input(image).detach().requires_grad_(True)
        with torch.enable_grad():
            parts = _tile_sums(vgg, x, window, layers, sums)
        _add_gradient(gradient, window, x, parts, grads)
    return term_values, gradient


def _add_gradient(gradient: torch.Tensor, window: Window, x: torch.Tensor, parts: list[Sums], grads) -> None:
    """The tile's pixel gradient (the backward pass of its sums against the picture's ``grads``) added
    into the full-size ``gradient`` where the tile reads."""
    with torch.enable_grad():
        _backward(parts, grads)
    if x.grad is not None:  # none where no term depends on the pixels through these sums
        window.input(gradient).add_(x.grad)


def _outer(total: list[Sums], values: Sequence[ValueFn], weights: Sequence[float]):
    """The terms' values from the picture's sums, and ``∂(Σ w_t value_t)/∂S`` for every sum."""
    leaves = [{k: v.detach().to(wide_dtype(v.dtype)).requires_grad_(True) for k, v in part.items()} for part in total]
    with torch.enable_grad():
        terms = [fn(part) for fn, part in zip(values, leaves)]
        objective = sum(w * t for w, t in zip(weights, terms))
        flat = [v for part in leaves for v in part.values()]
        grads = torch.autograd.grad(objective, flat, allow_unused=True)
    it = iter(grads)
    return [float(t.detach()) for t in terms], [{k: next(it) for k in part} for part in leaves]


def _backward(parts: list[Sums], grads: list[dict[str, torch.Tensor | None]]) -> None:
    """Backward of ``Σ ⟨g_k, S_k⟩`` over the sums that have a gradient."""
    pairs = [(part[k], g) for part, gs in zip(parts, grads) for k, g in gs.items()
             if g is not None and part[k].requires_grad]
    if pairs:
        torch.autograd.backward([s.to(g.dtype) for s, g in pairs], [g for _, g in pairs])


def features(vgg, image: torch.Tensor, layers: Sequence[str], tiles: Sequence[Window]) -> dict[str, torch.Tensor]:
    """The whole picture's features on ``layers``, assembled from the tiles' own positions (no autograd)."""
    out: dict[str, torch.Tensor] = {}
    height, width = image.shape[-2:]
    with torch.no_grad():
        for window in tiles:
            for l, f in vgg(window.input(image), layers).items():
                if window is WHOLE:
                    out[l] = f
                    continue
                if l not in out:
                    s = stride(l)
                    out[l] = f.new_zeros(1, f.shape[1], height // s, width // s)
                window.crop(out[l], l).copy_(window.own(f, l))
    return out


def tiles_of(image: torch.Tensor, side: int | None, layers: Sequence[str]) -> list[Window]:
    """The windows of ``image``: the whole picture for ``side`` None, else :func:`windows`."""
    height, width = image.shape[-2:]
    return [WHOLE] if side is None else windows(height, width, side, layers)
