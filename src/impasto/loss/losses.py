"""Losses of Gatys, Ecker & Bethge, "A Neural Algorithm of Artistic Style" (arXiv 1508.06576).

Pure functions on feature maps ``(1, N, h, w)`` (N filters, M = h·w positions); they compute in
fp32 whatever precision the features arrive in. Equation numbers follow the arXiv paper.
"""

from __future__ import annotations

import torch


def wide_dtype(dtype: torch.dtype) -> torch.dtype:
    """What losses and sums are computed in: fp32 for bf16/fp16/fp32; float64 stays float64 (gradcheck)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def wide(x: torch.Tensor) -> torch.Tensor:
    """``x`` in :func:`wide_dtype`."""
    return x.to(wide_dtype(x.dtype))


def feature_matrix(features: torch.Tensor) -> torch.Tensor:
    """``(1, N, h, w)`` -> F^l of shape ``(N, M)`` in fp32."""
    if features.dim() != 4 or features.shape[0] != 1:
        raise ValueError(f"expected (1, N, h, w) features, got {tuple(features.shape)}")
    return wide(features).flatten(2)[0]


def positions_matrix(features: torch.Tensor) -> torch.Tensor:
    """``(1, N, h, w)`` -> ``(F^l)ᵀ`` of shape ``(M, N)`` in fp32: one row per position.

    The network runs channels-last, where this is a view of the features as they lie in memory (the
    ``(N, M)`` of :func:`feature_matrix` would be a transposing copy of every style layer)."""
    if features.dim() != 4 or features.shape[0] != 1:
        raise ValueError(f"expected (1, N, h, w) features, got {tuple(features.shape)}")
    n = features.shape[1]
    return wide(features).permute(0, 2, 3, 1).reshape(-1, n)  # no select: its backward copies


class _Gram(torch.autograd.Function):
    """``G = Fᵀ F`` of an ``(M, N)`` matrix with the input gradient ``F (dG + dGᵀ)`` as one product.

    Autograd of ``Fᵀ @ F`` would take two products and add a transposed gradient to a contiguous one;
    this gives one ``(M, N)`` gradient in the features' own (channels-last) layout."""

    @staticmethod
    def forward(ctx, f):
        ctx.save_for_backward(f)
        return f.T @ f

    @staticmethod
    def backward(ctx, grad):
        (f,) = ctx.saved_tensors
        return f @ (grad + grad.T)


def gram_of_positions(f: torch.Tensor) -> torch.Tensor:
    """``Σ_k f_ki f_kj`` of an ``(M, N)`` matrix (rows: positions)."""
    return _Gram.apply(f)


def gram(features: torch.Tensor, normalise: bool = False) -> torch.Tensor:
    """Gram matrix ``G^l_ij = Σ_k F^l_ik F^l_jk`` (eq. 3); divided by M when ``normalise``."""
    f = positions_matrix(features)
    g = gram_of_positions(f)
    return g / f.shape[0] if normalise else g


def content_loss(features: torch.Tensor, target: torch.Tensor, normalization: str = "paper") -> torch.Tensor:
    """Content loss on one layer.

    ``paper``: ``1/2 Σ (F − P)^2`` (eq. 1). ``coursera``: ``1/(4 n_H n_W n_C) Σ (a_C − a_G)^2``
    (deeplearning.ai's formulation, SEEDS.md section 3).
    """
    diff = wide(features) - wide(target)
    total = diff.pow(2).sum()
    if normalization == "paper":
        return 0.5 * total
    if normalization == "coursera":
        return total / (4.0 * diff[0].numel())
    raise ValueError(f"normalization must be 'paper' or 'coursera', not '{normalization}'")


def style_layer_loss(features: torch.Tensor, target_gram_per_m: torch.Tensor) -> torch.Tensor:
    """Per-layer style loss ``E_l = 1/(4 N^2 M^2) Σ (G − A)^2`` (eq. 4).

    ``target_gram_per_m`` is the style's Gram matrix divided by its own M (so a style measured at
    another size compares like with like); with equal sizes this is exactly eq. 4 because
    ``Σ (G − A)^2 / M^2 = Σ (G/M − A/M)^2``. Same form in both normalisations (Coursera's
    ``1/(4 n_C^2 (n_H n_W)^2)`` is eq. 4).
    """
    g = gram(features, normalise=True)
    n = g.shape[0]
    return (g - target_gram_per_m).pow(2).sum() / (4.0 * n * n)


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Anisotropic total variation ``Σ (x_{i+1,j} − x_ij)^2 + (x_{i,j+1} − x_ij)^2`` on RGB [0, 1]."""
    dh = image[..., 1:, :] - image[..., :-1, :]
    dw = image[..., :, 1:] - image[..., :, :-1]
    return dh.pow(2).sum() + dw.pow(2).sum()


def paper_content_grad(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Analytic ∂L_content/∂F^l (eq. 2): ``(F − P)`` where ``F > 0``, else 0."""
    return torch.where(features > 0, features - target, torch.zeros_like(features))


def paper_style_grad(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """Analytic ∂E_l/∂F^l (eq. 6): ``1/(N^2 M^2) ((F^l)^T (G^l − A^l))^T`` where ``F > 0``, else 0."""
    f = feature_matrix(features)
    n, m = f.shape
    grad = ((f.T @ (f @ f.T - target_gram)).T / (n * n * m * m)).view_as(features)
    return torch.where(features > 0, grad, torch.zeros_like(grad))
