"""Optical flow between video frames, backward warping, the reliability of a flow field, and the
warping error of a stylised clip.

Ruder, Dosovitskiy & Brox, "Artistic style transfer for videos" (GCPR 2016, arXiv 1604.08610),
sections 3.2-3.3, and their code (github.com/manuelruder/artistic-videos: ``consistencyChecker``,
``processFlowWeights`` in ``artistic_video.lua``); Lai et al., "Learning Blind Video Temporal
Consistency" (ECCV 2018, arXiv 1808.00449), section 5 (E_warp) and ``evaluate_WarpError.py``.

Conventions (the video job relies on them exactly):

- **Frames** are numpy ``uint8`` H×W×3 RGB arrays. Stylised frames that are warped may also be
  float32 torch tensors ``(1, 3, H, W)`` in [0, 1].
- **Flow** ``f = flow(a, b)`` is a float32 ``(H, W, 2)`` array from frame ``a`` to frame ``b``:
  ``a(x) ≈ b(x + f(x))``; ``f[..., 0]`` is the x (column) displacement, ``f[..., 1]`` the y (row)
  displacement, in pixels. DIS optical flow (OpenCV, MEDIUM preset) on the grayscale frames.
- **Warping** is backward: ``warp(image, f)(x) = image(x + f(x))``, bilinear, border replicate
  (sample positions clamped to the image), pixel centres at integer positions (``align_corners=True``).
  So ``warp(b, flow(a, b)) ≈ a``: the next frame pulled back onto the previous one; the stylised
  frame t−1 is carried to frame t with ``warp(out[t-1], flow(frame_t, frame_{t-1}))``.
- **Reliability** of frame t: ``reliability(backward, forward)`` with ``backward = flow(frame_t,
  frame_{t-1})`` (ŵ) and ``forward = flow(frame_{t-1}, frame_t)`` (w), an (H, W) float32 map in
  [0, 1] over frame t's pixels: 0 where frame t-1 has no trustworthy counterpart (disocclusions,
  motion boundaries, points that come from outside the frame), 1 elsewhere, then blurred as in
  Ruder et al.'s ``consistencyChecker`` (below).
- **Long-term weights** (section 3.3): ``long_term_weights({j: c(t, t-j)})`` -> ``{j: c_long}``,
  closest first.
- **Warping error** (Lai et al.): ``warping_error(outputs, inputs)``, both lists of uint8 H×W×3
  frames; the flow and the mask come from the *input* frames only.

The consistency check, as in ``consistencyChecker.cpp`` (which follows Sundaram, Brox & Keutzer,
ECCV 2010). With w̃(x) = w(x + ŵ(x)), the forward flow brought to frame t by bilinear
interpolation:

- a pixel whose counterpart ``x + ŵ(x)`` lies outside frame t-1 gets 0;
- disocclusion: ``|w̃ + ŵ|² >= 0.01 (|w̃|² + |ŵ|²) + 0.5`` gets -1 (the code's -255 of 255: a
  negative value so that the blur spreads the zero *outward*, into the reliable neighbours);
- otherwise, motion boundary: ``|∇û|² + |∇v̂|² > 0.01 |ŵ|² + 0.002`` gets 0, the derivatives
  central differences ``(f(x+1) - f(x-1)) / 2`` with mirrored borders (the code's
  ``CDerivative(3)``);
- everything else 1;
- then a separable Gaussian blur, σ = 0.8, 5 taps (radius ``ceil(2σ)`` = 2, the code's
  ``CSmooth(0.8, 2.0)``, normalised to sum 1), mirrored borders (edge pixel repeated), and
  clipping to [0, 1]. A disoccluded band two or more pixels wide stays exactly 0; its reliable
  neighbours drop to about 0.5; a one-pixel motion boundary rises to about 0.5.

Deliberate differences from the C++: the outside-the-frame test is ``x + ŵ(x)`` outside
``[0, W-1] × [0, H-1]`` (the code's ``floor(x) + 1 >= W`` also drops the last column and row
even for zero flow); interpolation is exact float bilinear. Lai et al.'s E_warp uses the same
check unblurred (a binary mask), which :func:`warping_error` does through ``blur=False``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import ImpastoError

try:  # the reliability in C, built with the package where a C compiler was found (setup.py)
    from . import _flow as _kernels
except ImportError:  # pragma: no cover - depends on the installation
    _kernels = None

# Ruder et al. / Sundaram et al. constants (consistencyChecker.cpp, paper section 3.2)
DISOCCLUSION_REL = 0.01    # |w̃ + ŵ|² >= 0.01 (|w̃|² + |ŵ|²) + 0.5
DISOCCLUSION_ABS = 0.5
BOUNDARY_REL = 0.01        # |∇û|² + |∇v̂|² > 0.01 |ŵ|² + 0.002
BOUNDARY_ABS = 0.002
BLUR_SIGMA = 0.8           # SMOOTH_STRENGH, CSmooth(0.8, 2.0): radius ceil(2 · 0.8) = 2
BLUR_PRECISION = 2.0
MIN_FLOW_SIDE = 16         # smaller frames are padded for DIS (which wants a side of 12 px or more)


def _gaussian_taps(sigma: float = BLUR_SIGMA, precision: float = BLUR_PRECISION) -> np.ndarray:
    radius = int(math.ceil(precision * sigma))
    i = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-(i * i) / (2.0 * sigma * sigma))
    return taps / taps.sum()


# ---------------------------------------------------------------- optical flow

def require_opencv():
    """The OpenCV module, or one line saying how to install it (as read.require_av)."""
    try:
        import cv2
    except ImportError:
        raise ImpastoError("video needs the optional OpenCV package: pip install 'impasto[video]'") from None
    return cv2


def _gray(frame: np.ndarray) -> np.ndarray:
    cv2 = require_opencv()

    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise TypeError(f"flow() wants uint8 frames, got {frame.dtype}")
    if frame.ndim == 2:
        return np.ascontiguousarray(frame)
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2GRAY)
    raise ValueError(f"flow() wants H×W×3 RGB (or H×W gray) frames, got shape {frame.shape}")


def flow(a: np.ndarray, b: np.ndarray, preset: str = "medium") -> np.ndarray:
    """Optical flow from frame ``a`` to frame ``b`` (uint8 H×W×3 RGB): a float32 (H, W, 2) array
    ``f`` with ``a(x) ≈ b(x + f(x))``, ``f[..., 0]`` along x (columns), ``f[..., 1]`` along y (rows).

    DIS (Kroeger et al. 2016, OpenCV's ``DISOpticalFlow``; ``preset`` ultrafast, fast or medium:
    fewer patch iterations and pyramid levels, quicker and coarser) on the grayscale frames; a frame
    under 16 px on a side is padded (edge repeated) for DIS and the flow cropped back."""
    cv2 = require_opencv()

    ga, gb = _gray(a), _gray(b)
    if ga.shape != gb.shape:
        raise ValueError(f"frames differ in size: {ga.shape} and {gb.shape}")
    h, w = ga.shape
    ph, pw = max(0, MIN_FLOW_SIDE - h), max(0, MIN_FLOW_SIDE - w)
    if ph or pw:  # DIS refuses tiny frames: pad by repeating the edge, then crop
        ga = cv2.copyMakeBorder(ga, 0, ph, 0, pw, cv2.BORDER_REPLICATE)
        gb = cv2.copyMakeBorder(gb, 0, ph, 0, pw, cv2.BORDER_REPLICATE)
    dis = cv2.DISOpticalFlow_create(getattr(cv2, f"DISOPTICAL_FLOW_PRESET_{preset.upper()}"))
    f = dis.calc(ga, gb, None)
    return np.ascontiguousarray(f[:h, :w], dtype=np.float32)


def flows(frames: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Both flows of each consecutive pair, each computed once: entry ``t - 1`` (t = 1 … n-1) is
    ``(backward, forward) = (flow(frames[t], frames[t-1]), flow(frames[t-1], frames[t]))``, so
    ``reliability(*flows(frames)[t - 1])`` is frame t's reliability and
    ``warp(x, flows(frames)[t - 1][0])`` carries frame t-1's ``x`` to frame t."""
    return [(flow(frames[t], frames[t - 1]), flow(frames[t - 1], frames[t])) for t in range(1, len(frames))]


# ---------------------------------------------------------------- warping

def _check_flow(f, h: int, w: int) -> None:
    if tuple(f.shape) != (h, w, 2):
        raise ValueError(f"flow of shape {tuple(f.shape)} for an image of {h}×{w}: want ({h}, {w}, 2)")


def _warp_numpy(image: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Exact float bilinear backward warp of an (H, W, C) float array, border replicate."""
    h, w = image.shape[:2]
    f = np.asarray(f, dtype=np.float64)
    xs = np.clip(np.arange(w, dtype=np.float64)[None, :] + f[..., 0], 0.0, w - 1)
    ys = np.clip(np.arange(h, dtype=np.float64)[:, None] + f[..., 1], 0.0, h - 1)
    x0 = np.minimum(xs.astype(np.intp), max(w - 2, 0))  # truncation is floor here: xs, ys ≥ 0
    y0 = np.minimum(ys.astype(np.intp), max(h - 2, 0))
    ax, ay = (xs - x0).ravel(), (ys - y0).ravel()
    # The four neighbours by one linear index each (several times quicker than image[y, x]), per
    # channel plane (numpy's loops over a trailing axis of 2 or 3 are slow); the right/lower one is the
    # next column/row, or the same pixel on an image one pixel wide/high.
    planes = image.reshape(h * w, -1).T
    i00 = (y0 * w + x0).ravel()
    dx, dy = (1 if w > 1 else 0), (w if h > 1 else 0)
    at = lambda i: np.take(planes, i, axis=1)  # noqa: E731
    top = at(i00) * (1 - ax) + at(i00 + dx) * ax
    bottom = at(i00 + dy) * (1 - ax) + at(i00 + dy + dx) * ax
    out = (top * (1 - ay) + bottom * ay).T
    return out.astype(image.dtype, copy=False).reshape(image.shape)


def _warp_torch(image, f):
    import torch
    import torch.nn.functional as F

    if image.ndim != 4:
        raise ValueError(f"warp() wants a (N, C, H, W) tensor, got shape {tuple(image.shape)}")
    n, _, h, w = image.shape
    f = torch.as_tensor(np.asarray(f) if not torch.is_tensor(f) else f)
    if f.ndim == 4:  # a flow per image
        if tuple(f.shape) != (n, h, w, 2):
            raise ValueError(f"flows of shape {tuple(f.shape)} for images of {tuple(image.shape)}: want ({n}, {h}, {w}, 2)")
    else:
        _check_flow(f, h, w)
        f = f[None]
    f = f.to(device=image.device, dtype=image.dtype)
    ys, xs = torch.meshgrid(torch.arange(h, device=image.device, dtype=image.dtype),
                            torch.arange(w, device=image.device, dtype=image.dtype), indexing="ij")
    gx = (xs + f[..., 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys + f[..., 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack((gx, gy), dim=-1).expand(n, h, w, 2)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


def warp(image, f):
    """Backward warp: ``out(x) = image(x + f(x))``, bilinear, border replicate.

    ``image`` is a numpy (H, W, C) or (H, W) array (uint8 becomes float32, values kept in 0–255;
    float stays float) or a torch float tensor (N, C, H, W) (``grid_sample``, ``align_corners=True``,
    differentiable); ``f`` is an (H, W, 2) flow (numpy, or a tensor for the torch path; there also
    (N, H, W, 2), a flow per image). The result
    has the type and layout of ``image``."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None
    if torch is not None and torch.is_tensor(image):
        return _warp_torch(image, f)
    image = np.asarray(image)
    if image.dtype == np.uint8 or not np.issubdtype(image.dtype, np.floating):
        image = image.astype(np.float32)
    if torch is not None and torch.is_tensor(f):
        f = f.detach().cpu().numpy()
    flat = image.ndim == 2
    if flat:
        image = image[..., None]
    if image.ndim != 3:
        raise ValueError(f"warp() wants an (H, W, C) array, got shape {image.shape}")
    _check_flow(np.asarray(f), *image.shape[:2])
    out = _warp_numpy(image, f)
    return out[..., 0] if flat else out


# ---------------------------------------------------------------- reliability

def _norm_sq(f: np.ndarray) -> np.ndarray:
    """|f|² of an (H, W, 2) flow (two products: numpy's sum over a last axis of 2 is several times slower)."""
    return f[..., 0] * f[..., 0] + f[..., 1] * f[..., 1]


def _central_gradient_sq(c: np.ndarray) -> np.ndarray:
    """(∂c/∂x)² + (∂c/∂y)², central differences, mirrored borders (CDerivative(3))."""
    p = np.pad(c, 1, mode="symmetric")
    dx = 0.5 * (p[1:-1, 2:] - p[1:-1, :-2])
    dy = 0.5 * (p[2:, 1:-1] - p[:-2, 1:-1])
    return dx * dx + dy * dy


def _blur(m: np.ndarray) -> np.ndarray:
    """Separable Gaussian (σ 0.8, 5 taps), mirrored borders (edge pixel repeated)."""
    taps = _gaussian_taps()
    r = len(taps) // 2
    h, w = m.shape
    p = np.pad(m, ((0, 0), (r, r)), mode="symmetric")
    out = sum(t * p[:, k:k + w] for k, t in enumerate(taps))
    p = np.pad(out, ((r, r), (0, 0)), mode="symmetric")
    return sum(t * p[k:k + h, :] for k, t in enumerate(taps))


def reliability(backward: np.ndarray, forward: np.ndarray, *, blur: bool = True) -> np.ndarray:
    """Frame t's reliability, an (H, W) float32 map in [0, 1], from ``backward = flow(frame_t,
    frame_{t-1})`` (ŵ) and ``forward = flow(frame_{t-1}, frame_t)`` (w): Ruder et al. section 3.2
    as their ``consistencyChecker`` computes it (see the module docstring). ``blur=False`` gives the
    binary mask before the blur (1 reliable, 0 not), as Lai et al.'s E_warp uses it. In C
    (:mod:`impasto.image._flow`) where it was built, else :func:`_reliability_numpy`: the same values."""
    shapes = np.shape(backward), np.shape(forward)
    if len(shapes[0]) != 3 or shapes[0][2] != 2 or shapes[1] != shapes[0]:
        raise ValueError(f"want two (H, W, 2) flows of one size, got {shapes[0]} and {shapes[1]}")
    if _kernels is None:
        return _reliability_numpy(backward, forward, blur=blur)
    bw, fw = (np.ascontiguousarray(f, dtype=np.float64) for f in (backward, forward))
    h, w = bw.shape[:2]
    out, taps = np.empty((h, w), dtype=np.float32), np.ascontiguousarray(_gaussian_taps())
    _kernels.reliability(bw, fw, out, h, w, taps, len(taps) // 2,
                         DISOCCLUSION_REL, DISOCCLUSION_ABS, BOUNDARY_REL, BOUNDARY_ABS, blur)
    return out


def _reliability_numpy(backward: np.ndarray, forward: np.ndarray, *, blur: bool = True) -> np.ndarray:
    """:func:`reliability` in NumPy (float64)."""
    bw = np.asarray(backward, dtype=np.float64)
    fw = np.asarray(forward, dtype=np.float64)
    h, w = bw.shape[:2]
    bx = np.arange(w, dtype=np.float64)[None, :] + bw[..., 0]
    by = np.arange(h, dtype=np.float64)[:, None] + bw[..., 1]
    outside = (bx < 0) | (bx > w - 1) | (by < 0) | (by > h - 1)
    fw_warped = _warp_numpy(fw, bw)  # w̃(x) = w(x + ŵ(x))

    bw_sq = _norm_sq(bw)
    disoccluded = _norm_sq(fw_warped + bw) >= DISOCCLUSION_REL * (_norm_sq(fw_warped) + bw_sq) + DISOCCLUSION_ABS
    edge = _central_gradient_sq(bw[..., 0]) + _central_gradient_sq(bw[..., 1])
    boundary = edge > BOUNDARY_REL * bw_sq + BOUNDARY_ABS

    if not blur:
        return (~(outside | disoccluded | boundary)).astype(np.float32)
    c = np.ones((h, w), dtype=np.float64)
    c[boundary] = 0.0
    c[disoccluded] = -1.0  # the blur then spreads the hole outward; clipped below
    c[outside] = 0.0
    return np.clip(_blur(c), 0.0, 1.0).astype(np.float32)


def long_term_weights(masks_by_gap: dict[int, np.ndarray], *, scheme: str = "paper") -> dict[int, np.ndarray]:
    """Ruder et al. section 3.3, eq. 9 ("closest first"): for the frames ``t - j``, ``j ∈ J`` (the
    keys, any set, e.g. 1, 2, 4) with reliabilities ``c(t, t-j)``,
    ``c_long(t, t-j) = max(c(t, t-j) - Σ_{k ∈ J, k < j} c(t, t-k), 0)``: each pixel counts for the
    nearest reliable earlier frame only. The smallest gap keeps its map. New float32 arrays; the
    inputs are not changed.

    ``scheme="original"`` instead subtracts the already reduced weights ``c_long(t, t-k)``, as
    ``processFlowWeights(..., 'closestFirst')`` in their Lua code does (equal for binary masks;
    for soft masks the weights of a pixel then add up to the largest of its ``c``)."""
    if scheme not in ("paper", "original"):
        raise ValueError(f"scheme must be 'paper' or 'original', not {scheme!r}")
    out: dict[int, np.ndarray] = {}
    raw_sum = None
    long_sum = None
    for j in sorted(masks_by_gap):
        c = np.asarray(masks_by_gap[j], dtype=np.float32)
        if raw_sum is None:
            out[j] = c.copy()
            raw_sum, long_sum = c.copy(), c.copy()
            continue
        taken = raw_sum if scheme == "paper" else long_sum
        out[j] = np.maximum(c - taken, 0.0).astype(np.float32)
        raw_sum = raw_sum + c
        long_sum = long_sum + out[j]
    return out


# ---------------------------------------------------------------- the fast mode's guide

def guide(frame: np.ndarray, previous: np.ndarray, side: int = 0, preset: str = "medium"):
    """``(backward flow, reliability)`` of ``frame`` against ``previous`` (uint8 H×W×3), both at the
    frames' size, for blending a fast-mode output with the previous one.

    ``side`` > 0: both are computed with the frames shrunk to that long side (area averaging) and
    brought back — the flow scaled and bilinearly resized, the reliability resized — so their cost
    stops growing with the frame; a blend wants the motion of regions, not of single pixels."""
    cv2 = require_opencv()

    h, w = frame.shape[:2]
    scale = side / max(h, w) if side > 0 else 1.0
    if scale >= 1.0:
        back = flow(frame, previous, preset)
        return back, reliability(back, flow(previous, frame, preset))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small, small_prev = (cv2.resize(np.ascontiguousarray(f), size, interpolation=cv2.INTER_AREA)
                         for f in (frame, previous))
    back = flow(small, small_prev, preset)
    mask = reliability(back, flow(small_prev, small, preset))
    back = cv2.resize(back, (w, h), interpolation=cv2.INTER_LINEAR) * np.array(
        [w / size[0], h / size[1]], dtype=np.float32)
    return back, np.clip(cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)


def shrink(back: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """:func:`guide`'s flow and reliability brought to ``size`` (H, W), e.g. a network's features at a
    quarter of the frame: area-averaged, the flow scaled to the new pixels."""
    cv2 = require_opencv()

    h, w = back.shape[:2]
    small = cv2.resize(back, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    small *= np.array([size[1] / w, size[0] / h], dtype=np.float32)
    return small, np.clip(cv2.resize(mask, (size[1], size[0]), interpolation=cv2.INTER_AREA), 0.0, 1.0)


# ---------------------------------------------------------------- warping error

def _unit(frame) -> np.ndarray:
    a = np.asarray(frame)
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    return a.astype(np.float64)


def warping_error(outputs: Sequence[np.ndarray], inputs: Sequence[np.ndarray],
                  pairs: Sequence[tuple[np.ndarray, np.ndarray]] | None = None) -> float:
    """Lai et al.'s warping error E_warp of a processed clip ``outputs`` given the original clip
    ``inputs`` (lists of uint8 H×W×3 frames; float frames are taken as already in [0, 1]).

    For each consecutive pair t, t+1, on the *input* frames: ``f = flow(in_t, in_{t+1})`` and
    ``M_t = reliability(f, flow(in_{t+1}, in_t), blur=False)`` (frame t's non-occluded pixels
    w.r.t. t+1); ``E_t = Σ_x M_t(x) mean_RGB (O_t(x) - warp(O_{t+1}, f)(x))² / Σ_x M_t(x)`` with
    colours in [0, 1] (0 when no pixel is reliable, as in their code); E_warp is the mean over t.
    ``pairs`` may pass ``flows(inputs)`` computed already."""
    if len(outputs) != len(inputs):
        raise ValueError(f"{len(outputs)} output frames for {len(inputs)} input frames")
    if len(inputs) < 2:
        raise ValueError("the warping error needs at least two frames")
    if pairs is None:
        pairs = flows(inputs)
    if len(pairs) != len(inputs) - 1:
        raise ValueError(f"{len(pairs)} flow pairs for {len(inputs)} frames")
    errors = []
    for t, (backward, forward) in enumerate(pairs):
        o_t, o_next = _unit(outputs[t]), _unit(outputs[t + 1])
        if o_t.shape != o_next.shape or o_t.shape[:2] != tuple(forward.shape[:2]):
            raise ValueError(f"frame {t}: output {o_t.shape} / {o_next.shape} vs flow {forward.shape}")
        mask = reliability(forward, backward, blur=False).astype(np.float64)
        diff = o_t - warp(o_next, forward)
        per_pixel = (diff * diff).mean(axis=2) if diff.ndim == 3 else diff * diff
        total = mask.sum()
        errors.append(float((mask * per_pixel).sum() / total) if total > 0 else 0.0)
    return float(np.mean(errors))
