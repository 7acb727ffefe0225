"""The objective ``L = α L_content + β L_style (+ λ_tv TV)`` (Gatys et al., eq. 7) as weighted terms.

Each term is a tiny function of the network's features (and the image) with its targets held
inside; the objective runs the network once, up to the deepest layer any term needs, and
reports every term's value so the progress bar and callbacks can show them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import torch

from . import losses
from ..errors import ImpastoError
from ..net.vgg import VGG19, check_layers
from . import guided
from ..image import masks

# The −γ term stops at 4 L_style(p, a): twice the painting's Gram distance from the photo.
CONTENT_STYLE_CEILING = 4.0


TermFn = Callable[[dict, torch.Tensor], torch.Tensor]


@dataclass
class Term:
    name: str                 # reported as this ("content", "style", "tv", …)
    weight: float             # α, β, λ …
    layers: tuple[str, ...]   # network layers the term reads
    fn: TermFn                # (features, image) -> scalar, unweighted


def layer_weights(layers: Sequence[str], weights: Sequence[float] | None, default: float) -> list[float]:
    if weights is None:
        return [default] * len(layers)
    if len(weights) != len(layers):
        raise ImpastoError(f"{len(weights)} layer weights given for {len(layers)} layers")
    return list(weights)


@torch.no_grad()
def content_targets(vgg: VGG19, image: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """P^l for each layer, computed once (no autograd), stored in fp32."""
    feats = vgg(image, layers)
    return {name: feats[name].float() for name in layers}


@torch.no_grad()
def style_targets(vgg: VGG19, images: Sequence[torch.Tensor], blend: Sequence[float],
                  layers: Sequence[str]) -> dict[str, torch.Tensor]:
    """Blended ``Σ_s b_s A_s^l / M_s^l`` per layer.

    Blending the Gram targets is exact: with Σ b_s = 1, ``Σ_s b_s ‖G − A_s‖²`` and ``‖G − Σ_s b_s A_s‖²``
    differ by a constant, so both have the same minimiser and gradient.
    """
    out = {name: 0.0 for name in layers}
    for image, b in zip(images, blend):
        feats = vgg(image, layers)
        for name in layers:
            out[name] = out[name] + b * losses.gram(feats[name], normalise=True)
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
    kind = "coursera" if normalization == "coursera" else "paper"

    def fn(feats, image):
        return scale * sum(w * losses.content_loss(feats[l], targets[l], kind) for l, w in zip(layers, weights))

    return Term(name, alpha, layers, fn)


def style_term(targets: dict[str, torch.Tensor], weights: Sequence[float], beta: float,
               name: str = "style") -> Term:
    layers = tuple(targets)

    def fn(feats, image):
        return sum(w * losses.style_layer_loss(feats[l], targets[l]) for l, w in zip(layers, weights))

    return Term(name, beta, layers, fn)


def guided_style_term(regions: Sequence[tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]],
                      weights: dict[str, float], beta: float, name: str = "style") -> Term:
    """Spatial control (Gatys et al. 2017, arXiv 1611.07865, spatial control): ``Σ_r Σ_l w_l E_l^r``.

    ``regions`` holds, per region, its style's guided Gram targets and its mask on each layer's
    grid (:mod:`impasto.loss.guided`); a region reads only the layers it has targets for.
    """
    layers = tuple(dict.fromkeys(l for targets, _ in regions for l in targets))

    def fn(feats, image):
        return sum(weights[l] * guided.guided_style_loss(feats[l], region_masks[l], targets[l])
                   for targets, region_masks in regions for l in targets)

    return Term(name, beta, layers, fn)


@torch.no_grad()
def content_style_term(vgg: VGG19, content: torch.Tensor, targets: dict[str, torch.Tensor],
                       weights: Sequence[float], gamma: float, name: str = "content_style") -> Term:
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
    own = style_targets(vgg, [content], [1.0], layers)
    to_painting = float(style_term(targets, weights, 1.0).fn(vgg(content, layers), content))
    ceiling = CONTENT_STYLE_CEILING * to_painting
    inner = style_term(own, weights, 1.0)

    def fn(feats, image):
        return inner.fn(feats, image).clamp(max=ceiling)

    return Term(name, -gamma, layers, fn)


def tv_term(weight: float) -> Term:
    return Term("tv", weight, (), lambda feats, image: losses.total_variation(image))


class Objective:
    """Sum of weighted terms over one pass of the network."""

    def __init__(self, vgg: VGG19, terms: Sequence[Term]):
        self.vgg, self.terms = vgg, [t for t in terms if t.weight != 0 or t.name != "tv"]
        self.layers = tuple(dict.fromkeys(l for t in self.terms for l in t.layers))
        check_layers(self.layers)

    def __call__(self, image: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        feats = self.vgg(image, self.layers) if self.layers else {}
        total = image.new_zeros((), dtype=torch.float32)
        report: dict[str, float] = {}
        for term in self.terms:
            value = term.fn(feats, image)
            total = total + term.weight * value
            report[term.name] = report.get(term.name, 0.0) + float(value.detach())
        report["total"] = float(total.detach())
        return total, report


def pixels(size: tuple[int, int]) -> int:
    return size[0] * size[1]


def per_position_scale(size: tuple[int, int]) -> float:
    """The pixels of a ``size`` (w, h) picture at :data:`REFERENCE_SIDE` px over its own: the factor
    that makes a sum over its positions mean what it means at 512 px (``per-position``)."""
    from ..image.imageio import fit_long_side

    return pixels(fit_long_side(size, REFERENCE_SIDE)) / pixels(size)


class HeldObjective(Objective):
    """The network sees ``k · photo + (1 − k) · x``: the keep region stays the photo during the run,
    and the regions beside it see the photo across the edge."""

    def __init__(self, vgg: VGG19, terms: Sequence[Term], keep: torch.Tensor, photo: torch.Tensor):
        super().__init__(vgg, terms)
        self.keep, self.photo = keep, photo

    def __call__(self, image: torch.Tensor):
        return super().__call__(masks.hold(image, self.keep, self.photo))

