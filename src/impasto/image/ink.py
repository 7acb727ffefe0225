"""What makes Chinese ink painting look like ink, as operations on images (issue 25; read with ChipGAN,
Liang et al., IJCAI 2021): the painting's *ink tones* — a few shades of one ink on its paper or silk,
each shade with the colour it has in the painting — instead of the photo's colours; *voids* — the
photo's flat parts (sky, water, mist) left as bare paper; and the painting's *seals* kept out of its
style statistics. Pure functions on ``(1, 3, H, W)`` RGB in [0, 1] (masks ``(1, 1, H, W)`` in [0, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .color import luma_chroma_to_rgb, luminance, rgb_to_luma_chroma

TONE_BINS = 32         # luminance bins of the painting's tone table
TONE_QUANTILES = 256   # points of the painting's luminance distribution kept for tone matching
PAPER_QUANTILE = 0.75  # the paper's colour: the median of the painting's pixels above this luminance quantile


@dataclass(frozen=True)
class InkTones:
    """A painting's tones: its luminance distribution (``quantiles``, ``(Q,)`` ascending) and the mean
    chrominance (YIQ's I and Q) of its pixels at each luminance (``chroma``, ``(TONE_BINS, 2)``, bin b
    covering luminance [b, b + 1) / TONE_BINS; empty bins interpolated from their neighbours)."""

    quantiles: torch.Tensor
    chroma: torch.Tensor


def _pixels(image: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """``(P, 3)`` YIQ of the pixels a mask keeps (weight above one half), or of all."""
    yiq = rgb_to_luma_chroma(image.float()).reshape(3, -1).T
    if weight is None:
        return yiq
    keep = weight.reshape(-1) > 0.5
    return yiq[keep] if keep.any() else yiq


def ink_tones(painting: torch.Tensor, weight: torch.Tensor | None = None) -> InkTones:
    """The tones of ``painting`` (over the pixels ``weight`` keeps: no seal, no inscription)."""
    yiq = _pixels(painting, weight)
    y = yiq[:, 0].clamp(0, 1)
    levels = torch.linspace(0, 1, TONE_QUANTILES, dtype=y.dtype)
    quantiles = torch.quantile(y, levels) if y.numel() <= 2**24 else torch.quantile(y[:: y.numel() // 2**24 + 1], levels)
    bins = (y * TONE_BINS).long().clamp(max=TONE_BINS - 1)
    count = torch.zeros(TONE_BINS, dtype=y.dtype).index_add_(0, bins, torch.ones_like(y))
    sums = torch.zeros(TONE_BINS, 2, dtype=y.dtype).index_add_(0, bins, yiq[:, 1:])
    filled = count > 0
    centres = (torch.arange(TONE_BINS, dtype=y.dtype) + 0.5) / TONE_BINS
    chroma = torch.stack([_interp(centres, centres[filled], (sums[filled, k] / count[filled]))
                          for k in range(2)], dim=1)
    return InkTones(quantiles, chroma)


def _interp(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear interpolation of ``(xp, fp)`` at ``x`` (``xp`` ascending), constant beyond its
    ends (numpy.interp); differentiable in ``x``."""
    if xp.numel() == 1:
        return fp.expand_as(x).clone()
    i = torch.searchsorted(xp, x.contiguous()).clamp(1, xp.numel() - 1)
    x0, x1, f0, f1 = xp[i - 1], xp[i], fp[i - 1], fp[i]
    t = ((x - x0) / (x1 - x0).clamp_min(1e-12)).clamp(0, 1)
    return f0 + t * (f1 - f0)


def match_tones(luma: torch.Tensor, tones: InkTones) -> torch.Tensor:
    """``(1, 1, H, W)`` luminance histogram-matched to the painting's: each pixel's rank among the
    photo's luminances, read off the painting's luminance distribution (ties keep their order)."""
    flat = luma.reshape(-1)
    order = torch.argsort(flat, stable=True)
    rank = torch.empty_like(flat).index_put_((order,), torch.linspace(0, 1, flat.numel(), dtype=flat.dtype))
    levels = torch.linspace(0, 1, tones.quantiles.numel(), dtype=flat.dtype)
    return _interp(rank, levels, tones.quantiles.to(flat.dtype)).reshape(luma.shape)


def colorize(luma: torch.Tensor, tones: InkTones) -> torch.Tensor:
    """``(1, 1, H, W)`` luminance -> RGB with the chrominance the painting has at that luminance."""
    centres = (torch.arange(TONE_BINS, dtype=luma.dtype, device=luma.device) + 0.5) / TONE_BINS
    chroma = [_interp(luma.reshape(-1), centres, tones.chroma[:, k].to(luma)).reshape(luma.shape) for k in range(2)]
    return luma_chroma_to_rgb(torch.cat([luma, *chroma], dim=1))


def in_ink_tones(image: torch.Tensor, tones: InkTones, match: bool = False) -> torch.Tensor:
    """``image`` in the painting's tones: its luminance (matched to the painting's distribution when
    ``match``: the start image) coloured as the painting colours that luminance (the finish)."""
    luma = luminance(image.float()).clamp(0, 1)
    if match:
        luma = match_tones(luma, tones)
    return colorize(luma, tones).clamp(0, 1)


def paper_tone(painting: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """The colour of the painting's ground, ``(1, 3, 1, 1)``: the per-channel median of its pixels whose
    luminance is above its :data:`PAPER_QUANTILE` quantile (paper white, or silk's brown)."""
    rgb = painting.float().reshape(3, -1).T
    y = luminance(painting.float()).reshape(-1)
    if weight is not None and (weight.reshape(-1) > 0.5).any():
        keep = weight.reshape(-1) > 0.5
        rgb, y = rgb[keep], y[keep]
    bright = rgb[y >= torch.quantile(y, PAPER_QUANTILE)]
    return bright.median(dim=0).values.reshape(1, 3, 1, 1)


# ---------------------------------------------------------------- voids: the photo's flat parts

def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur (kernel radius 3σ, reflect padding), per channel; differentiable."""
    if sigma <= 0:
        return image
    radius = max(1, int(3 * sigma + 0.5))
    x = torch.arange(-radius, radius + 1, dtype=image.dtype, device=image.device)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    c = image.shape[1]
    pad_h, pad_w = min(radius, image.shape[-2] - 1), min(radius, image.shape[-1] - 1)
    out = F.pad(image, (pad_w, pad_w, 0, 0), mode="reflect") if pad_w else image
    out = F.conv2d(out, k[radius - pad_w: radius + pad_w + 1].view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    out = F.pad(out, (0, 0, pad_h, pad_h), mode="reflect") if pad_h else out
    return F.conv2d(out, k[radius - pad_h: radius + pad_h + 1].view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def local_contrast(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """``sqrt(G_σ * |∇Y|²)``: the luminance's gradient energy around each pixel, ``(1, 1, H, W)``
    (central differences, zero at the borders' outer half-step)."""
    y = luminance(image.float())
    gx = F.pad(y[..., :, 2:] - y[..., :, :-2], (1, 1, 0, 0)) / 2
    gy = F.pad(y[..., 2:, :] - y[..., :-2, :], (0, 0, 1, 1)) / 2
    return gaussian_blur(gx * gx + gy * gy, sigma).clamp_min(0).sqrt()


def void_mask(photo: torch.Tensor, share: float, sigma: float | None = None) -> torch.Tensor:
    """Where the photo is flat enough to be left as paper, ``(1, 1, H, W)`` in [0, 1]: 1 on the
    ``share`` of its pixels with the lowest :func:`local_contrast` (σ: 1 % of the long side), falling
    linearly to 0 at the contrast of the 1.5·``share`` quantile, then softened by the same blur."""
    if share <= 0:
        return torch.zeros_like(photo[:, :1])
    sigma = sigma if sigma is not None else max(photo.shape[-2:]) / 100
    contrast = local_contrast(photo, sigma)
    flat = contrast.reshape(-1)
    sample = flat[:: max(1, flat.numel() // 2**20)]
    low, high = torch.quantile(sample, torch.tensor([share, min(1.0, 1.5 * share)], dtype=sample.dtype))
    mask = ((high - contrast) / (high - low).clamp_min(1e-8)).clamp(0, 1)
    return gaussian_blur(mask, sigma).clamp(0, 1)


# ---------------------------------------------------------------- seals

SEAL_HUE = 20.0         # degrees either side of red
SEAL_SATURATION = 0.4   # HSV saturation at least
SEAL_VALUE = 0.3        # HSV value at least (dark browns are not seals)
SEAL_DENSITY = 0.6      # a seal's red is solid: this share of every 3×3 around its pixels red
SEAL_MAX_SHARE = 0.05   # a red region larger than this share of the painting is painting, not a seal


def seal_mask(painting: torch.Tensor) -> torch.Tensor:
    """The painting's seals, ``(1, 1, H, W)`` (1: seal): saturated red (HSV hue within
    :data:`SEAL_HUE` degrees of red, saturation and value above their floors), grown by 2 px to take
    the seal's anti-aliased edge; empty when that red covers more than :data:`SEAL_MAX_SHARE` of the
    painting (then it is the painting's own colour)."""
    rgb = painting.float()[0]
    top, bottom = rgb.max(0).values, rgb.min(0).values
    chroma = top - bottom
    r, g, b = rgb
    hue = torch.where(top == r, ((g - b) / chroma.clamp_min(1e-8)) * 60.0, torch.full_like(r, 180.0))
    red = (hue.abs() <= SEAL_HUE) & (chroma / top.clamp_min(1e-8) >= SEAL_SATURATION) & (top >= SEAL_VALUE) \
        & (chroma > 0)
    dense = F.avg_pool2d(red.float()[None, None], 3, stride=1, padding=1, count_include_pad=False) >= SEAL_DENSITY
    mask = F.max_pool2d(dense.float(), 5, stride=1, padding=2)
    return torch.zeros_like(mask) if mask.mean() > SEAL_MAX_SHARE else mask


# ---------------------------------------------------------------- calligraphy columns

TEXT_DARK = 0.2        # a written stroke: luminance at least this far below the paper's
TEXT_WIDTH = 0.06      # a column at most this share of the painting's long side wide …
TEXT_ASPECT = 3.0      # … and at least this many times as tall as wide
TEXT_CLEAR = 0.02      # the paper around a column (one column width each side) at most this share inked …
TEXT_PAPER = 0.85      # … and this share of the rest within 0.1 of the paper's luminance (bare paper)
TEXT_WORK_SIDE = 512   # found on the painting at most this long side (then scaled back)


def _components(ink: torch.Tensor) -> torch.Tensor:
    """Labels ``(H, W)`` of the 8-connected components of a boolean map (0: background; each component
    the largest of its pixels' indices + 1), by propagating the maximum until nothing changes."""
    h, w = ink.shape
    start = (torch.arange(1, h * w + 1, dtype=torch.float64).reshape(1, 1, h, w)) * ink
    labels, inside = start, ink.to(torch.float64)[None, None]
    while True:
        grown = F.max_pool2d(labels, 3, stride=1, padding=1) * inside
        if torch.equal(grown, labels):
            return labels[0, 0].long()
        labels = grown


def _boxes(labels: torch.Tensor) -> dict[int, tuple[int, int, int, int]]:
    """``label -> (x0, y0, x1, y1)`` (inclusive) of every component."""
    ys, xs = torch.nonzero(labels, as_tuple=True)
    ids = labels[ys, xs]
    boxes = {}
    for label in torch.unique(ids).tolist():
        sel = ids == label
        boxes[label] = (int(xs[sel].min()), int(ys[sel].min()), int(xs[sel].max()), int(ys[sel].max()))
    return boxes


def _chains(boxes: list[tuple[int, int, int, int]], width: float) -> list[tuple[int, int, int, int]]:
    """Boxes joined into vertical chains (x-ranges overlapping, vertical gap below a column width):
    the bounding box of each chain."""
    parent = list(range(len(boxes)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, a in enumerate(boxes):
        for j in range(i + 1, len(boxes)):
            b = boxes[j]
            overlap = min(a[2], b[2]) - max(a[0], b[0]) >= 0
            gap = max(a[1], b[1]) - min(a[3], b[3])
            if overlap and gap <= width:
                parent[root(i)] = root(j)
    groups: dict[int, list[tuple[int, int, int, int]]] = {}
    for i, box in enumerate(boxes):
        groups.setdefault(root(i), []).append(box)
    return [(min(b[0] for b in g), min(b[1] for b in g), max(b[2] for b in g), max(b[3] for b in g))
            for g in groups.values()]


def _on_bare_paper(ink: torch.Tensor, y: torch.Tensor, paper: float, box: tuple[int, int, int, int]) -> bool:
    """Whether the strips one column width left and right of ``box`` are bare paper."""
    x0, y0, x1, y1 = box
    cw = x1 - x0 + 1
    strips = [s for s in (slice(max(0, x0 - cw), x0), slice(x1 + 1, x1 + 1 + cw)) if s.start < s.stop]
    if not strips:
        return False
    inked = torch.cat([ink[y0:y1 + 1, s].reshape(-1) for s in strips]) > 0
    tone = torch.cat([y[y0:y1 + 1, s].reshape(-1) for s in strips])
    if inked.numel() == 0 or inked.float().mean() > TEXT_CLEAR or inked.all():
        return False
    return bool(((tone[~inked] - paper).abs() < 0.1).float().mean() >= TEXT_PAPER)


def calligraphy_mask(painting: torch.Tensor) -> torch.Tensor:
    """The painting's inscriptions, ``(1, 1, H, W)`` (1: text): columns of written strokes on bare
    paper. Strokes are pixels :data:`TEXT_DARK` below the paper's luminance (:func:`paper_tone`), joined
    by a dilation of about 1/256 of the long side into characters; characters narrower than
    :data:`TEXT_WIDTH` of the long side that stack into a column at least :data:`TEXT_ASPECT` times as
    tall as wide, with bare paper on both sides (:data:`TEXT_CLEAR`, :data:`TEXT_PAPER`), are text.
    Trees, rocks and houses fail the width, the stacking or the bare paper; a line of birds fails the
    stacking. (On the eight shipped landscapes: painting 1's inscription, and nothing else.)"""
    _, _, h0, w0 = painting.shape
    scale = min(1.0, TEXT_WORK_SIDE / max(h0, w0))
    image = painting.float() if scale == 1 else F.interpolate(
        painting.float(), scale_factor=scale, mode="area")
    _, _, h, w = image.shape
    y = luminance(image)
    paper = float(luminance(paper_tone(image)))
    ink = (y < paper - TEXT_DARK).float()
    reach = max(1, round(max(h, w) / 256))
    joined = F.max_pool2d(ink, 2 * reach + 1, stride=1, padding=reach)[0, 0] > 0
    widest = TEXT_WIDTH * max(h, w)
    pieces = [b for b in _boxes(_components(joined)).values() if b[2] - b[0] + 1 <= widest]
    mask = torch.zeros(1, 1, h, w)
    for x0, y0, x1, y1 in _chains(pieces, widest) if len(pieces) <= 2000 else []:
        cw, ch = x1 - x0 + 1, y1 - y0 + 1
        if cw > widest or ch < TEXT_ASPECT * cw:
            continue
        if _on_bare_paper(ink[0, 0], y[0, 0], paper, (x0, y0, x1, y1)):
            mask[..., max(0, y0 - reach):y1 + reach + 1, max(0, x0 - reach):x1 + reach + 1] = 1
    return mask if scale == 1 else (F.interpolate(mask, size=(h0, w0), mode="nearest"))


# ---------------------------------------------------------------- borders

BORDER_DEPTH = 0.06    # a frame or mount is at most this share of the side deep
BORDER_STEP = 0.1      # a border line's mean luminance differs by more than this from the painting's
BORDER_FLAT = 0.05     # the outermost line of a border is uniform: its luminance's spread at most this


def border_mask(painting: torch.Tensor) -> torch.Tensor:
    """The painting's frame or mount, ``(1, 1, H, W)`` (1: border): on each side, the lines (rows or
    columns, full length) from the edge inward whose mean luminance differs by more than
    :data:`BORDER_STEP` from the painting's just inside (the median pixel beyond
    :data:`BORDER_DEPTH` of the side), when the outermost line is uniform (:data:`BORDER_FLAT`): a
    scan's mount or frame, not a mountain that meets the edge."""
    y = luminance(painting.float())[0, 0]
    h, w = y.shape
    mask = torch.zeros(1, 1, h, w)
    for lines, length, place in ((y, h, lambda d: (slice(None), slice(None), slice(0, d))),
                                 (y.flip(0), h, lambda d: (slice(None), slice(None), slice(h - d, h))),
                                 (y.T, w, lambda d: (slice(None), slice(None), slice(None), slice(0, d))),
                                 (y.T.flip(0), w, lambda d: (slice(None), slice(None), slice(None), slice(w - d, w)))):
        depth = _border_depth(lines, max(2, round(BORDER_DEPTH * length)))
        if depth:
            mask[place(depth)] = 1
    return mask


def _border_depth(lines: torch.Tensor, deepest: int) -> int:
    """How many of ``lines`` (rows from an edge inward) are border, at most ``deepest``: those out to
    the last whose mean differs from the painting's just inside (the median pixel of the next
    3 × ``deepest`` lines: strokes there do not move it)."""
    inner = lines[deepest:4 * deepest]
    if inner.shape[0] < 4 or lines.shape[0] < 2 * deepest + 4 or float(lines[0].std()) > BORDER_FLAT:
        return 0
    inside = float(inner.median())
    far = (lines[:deepest].mean(dim=1) - inside).abs() > BORDER_STEP
    return int(far.nonzero().max()) + 1 if far[0] else 0  # the outermost line is the frame's own
