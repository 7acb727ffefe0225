"""Colour spaces and colour transfer: pure functions on ``(B, 3, H, W)`` RGB in [0, 1].

Implements the two methods of Gatys, Bethge, Hertzmann & Shechtman, "Preserving Color in Neural
Artistic Style Transfer" (arXiv 1606.05897):

- luminance-only transfer: stylise the luminance channel only, with the style's
  luminance first matched to the content's mean and standard deviation, then put the content's
  chrominance back (:func:`match_luminance`, :func:`keep_chrominance`);
- colour histogram matching: a linear map ``x' = A (x − μ_s) + μ_c`` with
  ``A Σ_s Aᵀ = Σ_c`` recolours the style before transfer (:func:`match_color`); ``A`` from the
  symmetric square roots (``pca``, the 3-D colour matching of Image Analogies) or from the
  Cholesky factors (``cholesky``).

Everything here is differentiable (``torch.autograd.gradcheck`` holds in float64).
"""

from __future__ import annotations

import torch

from ..config import COLOR_SPACES, MATCH_METHODS


# NTSC YIQ (FCC 1953) and analogue PAL YUV (BT.601 weights); row 0 is the luminance Y in both,
# and the chrominance rows sum to zero, so a gray pixel (r = g = b) has zero chrominance.
_RGB_TO = {
    "yiq": ((0.299, 0.587, 0.114), (0.595716, -0.274453, -0.321263), (0.211456, -0.522591, 0.311135)),
    "yuv": ((0.299, 0.587, 0.114), (-0.14713, -0.28886, 0.436), (0.615, -0.51499, -0.10001)),
}


def _check(image: torch.Tensor, name: str = "image") -> None:
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"{name}: expected (B, 3, H, W), got {tuple(image.shape)}")


def _matrix(space: str, inverse: bool, like: torch.Tensor) -> torch.Tensor:
    if space not in _RGB_TO:
        raise ValueError(f"colour space must be one of {', '.join(COLOR_SPACES)}, not '{space}'")
    m = torch.tensor(_RGB_TO[space], dtype=torch.float64)
    m = torch.linalg.inv(m) if inverse else m
    return m.to(dtype=like.dtype, device=like.device)


def _apply(matrix: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,bjhw->bihw", matrix, image)


def rgb_to_luma_chroma(image: torch.Tensor, space: str = "yiq") -> torch.Tensor:
    """``(B, 3, H, W)`` RGB in [0, 1] -> Y (in [0, 1]) and two chrominance channels (YIQ or YUV)."""
    _check(image)
    return _apply(_matrix(space, False, image), image)


def luma_chroma_to_rgb(image: torch.Tensor, space: str = "yiq") -> torch.Tensor:
    """Inverse of :func:`rgb_to_luma_chroma` (no clamping)."""
    _check(image)
    return _apply(_matrix(space, True, image), image)


def rgb_to_yiq(image: torch.Tensor) -> torch.Tensor:
    return rgb_to_luma_chroma(image, "yiq")


def yiq_to_rgb(image: torch.Tensor) -> torch.Tensor:
    return luma_chroma_to_rgb(image, "yiq")


def luminance(image: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB -> ``(B, 1, H, W)`` luminance Y (the same row in YIQ and YUV)."""
    _check(image)
    w = image.new_tensor(_RGB_TO["yiq"][0]).view(1, 3, 1, 1)
    return (image * w).sum(1, keepdim=True)


def gray(luma: torch.Tensor) -> torch.Tensor:
    """``(B, 1, H, W)`` luminance -> ``(B, 3, H, W)`` gray RGB whose luminance is ``luma``."""
    return luma.expand(-1, 3, -1, -1).contiguous()


def match_luminance(style_luma: torch.Tensor, content_luma: torch.Tensor,
                    style_weight: torch.Tensor | None = None,
                    content_weight: torch.Tensor | None = None) -> torch.Tensor:
    """``L_s' = σ_c / σ_s (L_s − μ_s) + μ_c`` (colour paper, luminance-only transfer).

    Luminances are ``(B, 1, H, W)``; optional weights ``(1, 1, H, W)`` restrict the statistics to a
    region (a mask). A flat style (σ_s = 0) is shifted to the content's mean only.
    """
    mu_s, sd_s = _mean_std(style_luma, style_weight)
    mu_c, sd_c = _mean_std(content_luma, content_weight)
    gain = torch.where(sd_s > 1e-6, sd_c / sd_s.clamp_min(1e-6), torch.zeros_like(sd_s))
    return gain * (style_luma - mu_s) + mu_c


def _mean_std(x: torch.Tensor, weight: torch.Tensor | None):
    w = torch.ones_like(x) if weight is None else weight.expand_as(x)
    total = w.sum().clamp_min(1e-12)
    mu = (w * x).sum() / total
    var = (w * (x - mu).pow(2)).sum() / total
    return mu, var.clamp_min(0).sqrt()


def keep_chrominance(stylised: torch.Tensor, content: torch.Tensor, space: str = "yiq") -> torch.Tensor:
    """The stylised image's luminance with the content's chrominance (colour paper, luminance-only transfer).

    Both ``(B, 3, H, W)`` RGB of the same size. Where the new luminance would push a pixel out of
    the RGB cube, the luminance is clipped instead of the chrominance, so the result lies in
    [0, 1] and its chrominance equals the content's exactly (up to float rounding).
    """
    _check(stylised, "stylised")
    _check(content, "content")
    if stylised.shape[-2:] != content.shape[-2:]:
        raise ValueError(f"sizes differ: {tuple(stylised.shape[-2:])} and {tuple(content.shape[-2:])}")
    chroma = rgb_to_luma_chroma(content, space)[:, 1:]
    # RGB = Y + offset_k(chroma) per channel k, so all channels stay in [0, 1] for
    # −min_k offset_k <= Y <= 1 − max_k offset_k; this range holds the content's own Y.
    offsets = luma_chroma_to_rgb(torch.cat([torch.zeros_like(chroma[:, :1]), chroma], 1), space)
    low, high = -offsets.amin(1, keepdim=True), 1 - offsets.amax(1, keepdim=True)
    luma = torch.minimum(torch.maximum(luminance(stylised), low), high)
    return luma + offsets


def color_statistics(image: torch.Tensor, weight: torch.Tensor | None = None):
    """Mean ``(3,)`` and covariance ``(3, 3)`` of the pixels of a ``(1, 3, H, W)`` image.

    ``weight`` ``(1, 1, H, W)`` (a soft mask) weights each pixel.
    """
    _check(image)
    x = image.permute(1, 0, 2, 3).reshape(3, -1)                        # (3, B·H·W)
    w = torch.ones_like(x[:1]) if weight is None else weight.expand(image.shape[0], 1, -1, -1).reshape(1, -1)
    total = w.sum().clamp_min(1e-12)
    mean = (w * x).sum(1) / total
    centred = x - mean[:, None]
    return mean, (w * centred) @ centred.T / total


def _sym_power(cov: torch.Tensor, power: float) -> torch.Tensor:
    """``cov^power`` through the eigendecomposition ``U Λ^power Uᵀ`` (symmetric square roots)."""
    vals, vecs = torch.linalg.eigh(cov)
    return vecs @ torch.diag(vals.clamp_min(1e-12).pow(power)) @ vecs.T


def transfer_matrix(cov_source: torch.Tensor, cov_target: torch.Tensor, method: str = "pca") -> torch.Tensor:
    """``A`` with ``A Σ_s Aᵀ = Σ_t`` (colour paper, colour histogram matching).

    ``pca``: ``A = Σ_t^{1/2} Σ_s^{-1/2}`` with symmetric square roots (Image Analogies' 3-D colour
    matching); it does not depend on the order of the colour channels. ``cholesky``:
    ``A = L_t L_s^{-1}`` with ``Σ = L Lᵀ``; the triangular factors treat red, green and blue
    differently, so permuting the channels changes the result.
    """
    if method == "pca":
        return _sym_power(cov_target, 0.5) @ _sym_power(cov_source, -0.5)
    if method == "cholesky":
        l_s, l_t = torch.linalg.cholesky(cov_source), torch.linalg.cholesky(cov_target)
        return l_t @ torch.linalg.inv(l_s)
    raise ValueError(f"colour match must be one of {', '.join(MATCH_METHODS)}, not '{method}'")


def match_color(source: torch.Tensor, target: torch.Tensor, method: str = "pca",
                source_weight: torch.Tensor | None = None, target_weight: torch.Tensor | None = None,
                eps: float = 1e-5, clamp: bool = True) -> torch.Tensor:
    """Recolour ``source`` so its mean and covariance equal ``target``'s (colour paper, eq. 1).

    ``x' = A (x − μ_s) + μ_t`` for every pixel; both ``(1, 3, H, W)`` RGB, any sizes. ``eps`` is
    added to both covariances' diagonals so that a gray (rank-one) source does not blow its
    noise up; it moves the matched covariance by about ``eps``. ``clamp`` keeps the result in [0, 1]
    (which, for pixels pushed outside, moves the statistics slightly).
    """
    mu_s, cov_s = color_statistics(source, source_weight)
    mu_t, cov_t = color_statistics(target, target_weight)
    eye = torch.eye(3, dtype=cov_s.dtype, device=cov_s.device)
    a = transfer_matrix(cov_s + eps * eye, cov_t + eps * eye, method)
    out = torch.einsum("ij,bjhw->bihw", a, source - mu_s.view(1, 3, 1, 1)) + mu_t.view(1, 3, 1, 1)
    return out.clamp(0, 1) if clamp else out
