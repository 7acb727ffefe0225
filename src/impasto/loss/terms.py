"""The objective ``L = α L_content + β L_style (+ λ_tv TV)`` (Gatys et al., eq. 7) as weighted terms.

Each term is a tiny function of the network's features (and the image) with its targets held
inside; the objective runs the network once, up to the deepest layer any term needs, and
reports every term's value so the progress bar and callbacks can show them.

A network term is written as sums over positions and a value of those sums (the content loss is a
sum; a style loss a function of Gram matrices, which are sums): evaluated on the whole picture at
once, or exactly over tiles when the picture does not fit in memory (:mod:`.tiled`, issue 26).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from . import guided, losses, tiled
from ..errors import ImpastoError
from ..image import masks
from ..net.vgg import VGG19, check_layers
from .tiled import Sums, SumsFn, ValueFn, Window

# The −γ term stops at 4 L_style(p, a): twice the painting's Gram distance from the photo.
CONTENT_STYLE_CEILING = 4.0


TermFn = Callable[[dict, torch.Tensor], torch.Tensor]
View = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class Term:
    name: str                 # reported as this ("content", "style", "tv", …)
    weight: float             # α, β, λ …
    layers: tuple[str, ...]   # network layers the term reads
    fn: TermFn                # (features, image) -> scalar, unweighted
    sums: SumsFn | None = None    # a network term as sums over positions (own features, window) …
    value: ValueFn | None = None  # … and its value from the picture's sums: :func:`network_term`
    view: View | None = None      # the network reads view(image) for this term (None: the image)


def network_term(name: str, weight: float, layers: Sequence[str], sums: SumsFn, value: ValueFn,
                 view: View | None = None) -> Term:
    """A term of the network's features given as sums over positions and a value of them: on the whole
    picture ``value(sums(features, whole picture))``, over tiles the same sums added up (:mod:`.tiled`)."""
    layers = tuple(layers)

    def fn(feats, image):
        return value(sums({l: feats[l] for l in layers}, tiled.WHOLE))

    return Term(name, weight, layers, fn, sums, value, view)


def _gram_sums(feats: dict, layers: Sequence[str]) -> Sums:
    """``G_l = Σ_positions f fᵀ`` and the count ``M_l`` of each layer (eq. 3, unnormalised)."""
    out = {}
    for l in layers:
        f = losses.positions_matrix(feats[l])
        out[f"G:{l}"] = losses.gram_of_positions(f)
        out[f"M:{l}"] = f.new_tensor(float(f.shape[0]))
    return out


def _style_value(sums: Sums, targets: dict[str, torch.Tensor], weights: Sequence[float]) -> torch.Tensor:
    """``Σ_l w_l Σ (G_l/M_l − A_l)² / (4 N_l²)`` (eq. 4–5; :func:`losses.style_layer_loss`)."""
    total = 0.0
    for l, w in zip(targets, weights):
        g = sums[f"G:{l}"] / sums[f"M:{l}"]
        total = total + w * (g - targets[l]).pow(2).sum() / (4.0 * g.shape[0] ** 2)
    return total


def layer_weights(layers: Sequence[str], weights: Sequence[float] | None, default: float) -> list[float]:
    if weights is None:
        return [default] * len(layers)
    if len(weights) != len(layers):
        raise ImpastoError(f"{len(weights)} layer weights given for {len(layers)} layers")
    return list(weights)


@torch.no_grad()
def content_targets(vgg: VGG19, image: torch.Tensor, layers: Sequence[str],
                    tile: int | None = None) -> dict[str, torch.Tensor]:
    """P^l for each layer, computed once (no autograd), kept in the network's precision (bf16's values
    are exact in fp32, where the loss compares them: :func:`content_term`; at 8K relu4_2 is 0.5 GB in
    bf16); over tiles of side ``tile`` when given (:func:`tiled.features`)."""
    if tile is not None:
        return tiled.features(vgg, image, layers, tiled.tiles_of(image, tile, layers))
    feats = vgg(image, layers)
    return {name: feats[name] for name in layers}


@torch.no_grad()
def grams(vgg: VGG19, image: torch.Tensor, layers: Sequence[str], tile: int | None = None) -> dict[str, torch.Tensor]:
    """``G_l / M_l`` of ``image`` on each layer (eq. 3), over tiles of side ``tile`` when given."""
    tiles = tiled.tiles_of(image, tile, layers)
    sums = tiled.statistics(vgg, image, tiles, layers, [lambda feats, window: _gram_sums(feats, layers)])[0]
    return {l: sums[f"G:{l}"] / sums[f"M:{l}"] for l in layers}


@torch.no_grad()
def guided_grams(vgg: VGG19, image: torch.Tensor, mask: torch.Tensor, layers: Sequence[str],
                 tile: int | None = None) -> dict[str, torch.Tensor]:
    """``Σ (T F)(T F)ᵀ / Σ T²`` of ``image`` on each layer under ``mask`` ``(1, 1, H, W)``
    (:func:`guided.guided_gram`), over tiles of side ``tile`` when given."""
    regions = [({l: None for l in layers}, guided.layer_masks(mask, layers))]
    tiles = tiled.tiles_of(image, tile, layers)
    sums = tiled.statistics(vgg, image, tiles, layers, [lambda feats, window: guided_sums(feats, window, regions)])[0]
    return {l: sums[f"G:0:{l}"] / sums[f"T:0:{l}"].clamp_min(1e-8) for l in layers}


@torch.no_grad()
def style_targets(vgg: VGG19, images: Sequence[torch.Tensor], blend: Sequence[float],
                  layers: Sequence[str], tile: int | None = None) -> dict[str, torch.Tensor]:
    """Blended ``Σ_s b_s A_s^l / M_s^l`` per layer.

    Blending the Gram targets is exact: with Σ b_s = 1, ``Σ_s b_s ‖G − A_s‖²`` and ``‖G − Σ_s b_s A_s‖²``
    differ by a constant, so both have the same minimiser and gradient.
    """
    out = {name: 0.0 for name in layers}
    for image, b in zip(images, blend):
        for name, g in grams(vgg, image, layers, tile).items():
            out[name] = out[name] + b * g
    return out


# --normalization per-position: the content loss means at every size what the paper's eq. 1 means at
# an image of this long side (the paper's figures are 512 px wide).
REFERENCE_SIDE = 512


def content_scale(normalization: str, scale_pixels: int, full_pixels: int, reference_pixels: int) -> float:
    """Factor on the content loss of one scale so that every scale minimises the same objective.

    The paper's content loss (eq. 1) is a sum over positions while its style loss (eq. 4–5) is not,
    so one α/β paints a small image more than a large one. Scaling ``½ Σ (F − P)²`` by the pixel
    count of the image it should stand for over the pixel count it is measured at makes it a
    per-position loss: ``per-position`` stands for the image at :data:`REFERENCE_SIDE` px (the paper's
    α/β then means the same at every ``--size``); ``paper`` stands for the full size, so the full
    scale is eq. 1 exactly and each coarser scale of a pyramid is weighted by the full size's share of
    its positions; ``coursera`` is already per position (``1/(4 n_H n_W n_C)``).
    """
    if normalization == "per-position":
        return reference_pixels / scale_pixels
    if normalization == "paper":
        return full_pixels / scale_pixels
    if normalization == "coursera":
        return 1.0
    raise ImpastoError(f"--normalization must be per-position, paper or coursera, not '{normalization}'")


def content_term(targets: dict[str, torch.Tensor], weights: Sequence[float], alpha: float,
                 normalization: str = "paper", name: str = "content", scale: float = 1.0) -> Term:
    """``α · scale · Σ_l w_l L_content^l`` (eq. 1, or Coursera's form); ``scale``: :func:`content_scale`."""
    layers = tuple(targets)
    coursera = normalization == "coursera"

    def sums(feats, window: Window):
        return {l: (losses.wide(feats[l]) - losses.wide(window.crop(targets[l], l))).pow(2).sum() for l in layers}

    def value(total):  # eq. 1: ½ Σ (F − P)²; Coursera: Σ (F − P)² / (4 n_H n_W n_C)
        return scale * sum(w * (total[l] / (4.0 * targets[l][0].numel()) if coursera else 0.5 * total[l])
                           for l, w in zip(layers, weights))

    return network_term(name, alpha, layers, sums, value)


def style_term(targets: dict[str, torch.Tensor], weights: Sequence[float], beta: float,
               name: str = "style", view: View | None = None) -> Term:
    """``β Σ_l w_l E_l`` (eq. 4–5) against the Gram targets ``A_l / M_l``."""
    layers = tuple(targets)
    return network_term(name, beta, layers, lambda feats, window: _gram_sums(feats, layers),
                        lambda sums: _style_value(sums, targets, weights), view)


def guided_style_term(regions: Sequence[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]],
                      weights: dict[str, float], beta: float, name: str = "style",
                      view: View | None = None) -> Term:
    """Spatial control (Gatys et al. 2017, arXiv 1611.07865, spatial control): ``Σ_r Σ_l w_l E_l^r``.

    ``regions`` holds, per region, its style's guided Gram targets and its mask on each layer's
    grid (:mod:`impasto.loss.guided`); a region reads only the layers it has targets for.
    """
    layers = tuple(dict.fromkeys(l for targets, _ in regions for l in targets))
    return network_term(name, beta, layers, lambda feats, window: guided_sums(feats, window, regions),
                        lambda sums: guided_value(sums, regions, weights), view)


def guided_sums(feats: dict, window: Window, regions) -> Sums:
    """Per region r and layer l: ``Σ (T F)(T F)ᵀ``, ``Σ T²`` and the layer's count M_l."""
    out = {}
    for r, (targets, region_masks) in enumerate(regions):
        for l in targets:
            f = losses.positions_matrix(feats[l])
            t = window.crop(region_masks[l], l).reshape(-1, 1).to(f.dtype)
            out[f"G:{r}:{l}"] = losses.gram_of_positions(f * t)
            out[f"T:{r}:{l}"] = t.pow(2).sum()
            out[f"M:{l}"] = f.new_tensor(float(f.shape[0]))
    return out


def guided_value(sums: Sums, regions, weights: dict[str, float]) -> torch.Tensor:
    """``Σ_r Σ_l w_l (Σ T²/M) Σ (G_r/Σ T² − A_r)² / (4 N²)`` (:func:`guided.guided_style_loss`)."""
    total = 0.0
    for r, (targets, _) in enumerate(regions):
        for l in targets:
            weight = sums[f"T:{r}:{l}"]
            g = sums[f"G:{r}:{l}"] / weight.clamp_min(1e-8)
            share = weight / sums[f"M:{l}"]
            total = total + weights[l] * share * (g - targets[l]).pow(2).sum() / (4.0 * g.shape[0] ** 2)
    return total


@torch.no_grad()
def content_style_term(vgg: VGG19, content: torch.Tensor, targets: dict[str, torch.Tensor],
                       weights: Sequence[float], gamma: float, name: str = "content_style",
                       tile: int | None = None) -> Term:
    """Seed 000's extension (SEEDS.md section 2), bounded: ``−γ min(L_style(p, x), 4 L_style(p, a))``.

    ``targets`` are the painting's Gram targets A^l (per M); the term measures, on the same layers
    with the same w_l, how far the result's Gram matrices are from the content photo's own. Left
    unbounded, ``−γ L_style(p, x)`` rewards ever larger Gram matrices; clamped, the push stops once
    the result is twice as far (in Gram distance, hence 4× in the squared loss) from the photo's
    style as the painting is: above that the term is constant, with zero gradient, and the
    total never falls below ``−4γ L_style(p, a)``. (With γ < β, which :func:`impasto.gatys.inputs.validate`
    requires, ``β‖G − A‖² − γ‖G − P‖²`` is a bowl around ``(βA − γP)/(β − γ)`` per layer.)
    """
    layers = tuple(targets)
    own = style_targets(vgg, [content], [1.0], layers, tile)
    to_painting = float(sum(w * (own[l] - targets[l]).pow(2).sum() / (4.0 * own[l].shape[0] ** 2)
                            for l, w in zip(layers, weights)))
    ceiling = CONTENT_STYLE_CEILING * to_painting
    return network_term(name, -gamma, layers, lambda feats, window: _gram_sums(feats, layers),
                        lambda sums: _style_value(sums, own, weights).clamp(max=ceiling))


def tv_term(weight: float) -> Term:
    return Term("tv", weight, (), lambda feats, image: losses.total_variation(image))


class Objective:
    """Sum of weighted terms over one pass of the network per view (the image itself, and e.g. the ink
    mode's filtered copy); over tiles of side ``tile`` (:mod:`.tiled`) when given, exactly."""

    def __init__(self, vgg: VGG19, terms: Sequence[Term], tile: int | None = None, keep: int = 1):
        self.vgg, self.terms = vgg, [t for t in terms if t.weight != 0 or t.name != "tv"]
        self.layers = tuple(dict.fromkeys(l for t in self.terms for l in t.layers))
        check_layers(self.layers)
        self.tile, self.keep = tile, keep  # keep: tiles whose activations are held from the first pass
        self.on_tile: Callable[[str, float], None] | None = None  # told each tile as it starts (progress)
        if tile is not None:
            untileable = [t.name for t in self.terms if (t.layers or t.view) and t.sums is None]
            if untileable:
                raise ImpastoError(f"the term(s) {', '.join(untileable)} cannot be evaluated over tiles")

    def views(self) -> dict[View | None, tuple[str, ...]]:
        """Each view the network reads, with the layers its terms need."""
        out: dict = {}
        for t in self.terms:
            if t.layers:
                out[t.view] = tuple(dict.fromkeys(out.get(t.view, ()) + t.layers))
        return out

    def prepare(self, image: torch.Tensor) -> torch.Tensor:
        """What every term sees of the optimised image (:class:`HeldObjective`: the keep region held)."""
        return image

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        image = self.prepare(image)
        total = image.new_zeros((), dtype=losses.wide_dtype(image.dtype))
        report: dict[str, float] = {}
        if self.tile is None:
            feats = {view: self.vgg(image if view is None else view(image), layers)
                     for view, layers in self.views().items()}
            terms = self.terms
        else:
            total, report = self._tiled(image)
            feats, terms = {}, [t for t in self.terms if not t.layers]
        for term in terms:
            value = term.fn(feats.get(term.view, {}), image)
            total = total + float(term.weight) * value
            report[term.name] = report.get(term.name, 0.0) + float(value.detach())
        report["total"] = float(total.detach())
        return total, report

    def _tiled(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """The network terms over tiles: per view, their weighted sum with its exact gradient."""
        total, report = image.new_zeros((), dtype=losses.wide_dtype(image.dtype)), {}
        for view, layers in self.views().items():
            terms = [t for t in self.terms if t.layers and t.view is view]
            seen = image if view is None else view(image)
            tiles = tiled.tiles_of(seen, self.tile, layers)
            value, values = _TiledTerms.run(self.vgg, seen, tiles, layers, terms, self.keep, self.on_tile)
            total = total + value
            for t, v in zip(terms, values):
                report[t.name] = report.get(t.name, 0.0) + v
        return total, report


class _TiledTerms(torch.autograd.Function):
    """``Σ_t w_t value_t`` of network terms over tiles, its gradient computed with it (:func:`tiled.evaluate`)
    and handed back in the backward pass."""

    @staticmethod
    def forward(ctx, seen, vgg, tiles, layers, terms, keep, on_tile, out):
        values, gradient = tiled.evaluate(vgg, seen.detach(), tiles, layers, [t.sums for t in terms],
                                          [t.value for t in terms], [float(t.weight) for t in terms], keep, on_tile)
        ctx.save_for_backward(gradient)
        out.extend(values)
        return seen.new_tensor(sum(float(t.weight) * v for t, v in zip(terms, values)), dtype=gradient.dtype)

    @staticmethod
    def backward(ctx, grad):
        (gradient,) = ctx.saved_tensors
        return (grad * gradient).to(gradient.dtype), None, None, None, None, None, None, None

    @classmethod
    def run(cls, vgg, seen, tiles, layers, terms, keep, on_tile) -> tuple[torch.Tensor, list[float]]:
        values: list[float] = []
        return cls.apply(seen, vgg, tiles, layers, terms, keep, on_tile, values), values


def pixels(size: tuple[int, int]) -> int:
    return size[0] * size[1]


def per_position_scale(size: tuple[int, int]) -> float:
    """The pixels of a ``size`` (w, h) picture at :data:`REFERENCE_SIDE` px over its own: the factor
    that makes a sum over its positions mean what it means at 512 px (``per-position``)."""
    from ..image.imageio import fit_long_side

    return pixels(fit_long_side(size, REFERENCE_SIDE)) / pixels(size)


class HeldObjective(Objective):
    """The network sees ``k · p + (1 − k) · x`` for each held region ``k`` and its picture ``p``, in turn:
    the keep region of ``--masks`` stays the photo during the run, the voids of the ink mode the paper,
    and the regions beside them see them across the edge."""

    def __init__(self, vgg: VGG19, terms: Sequence[Term], holds: Sequence[tuple[torch.Tensor, torch.Tensor]],
                 tile: int | None = None, keep: int = 1):
        super().__init__(vgg, terms, tile, keep)
        self.holds = list(holds)

    def prepare(self, image: torch.Tensor) -> torch.Tensor:
        for held, picture in self.holds:
            image = masks.hold(image, held, picture)
        return image

