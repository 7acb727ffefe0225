"""The recipe's feature network and losses (Ulyanov & Lebedev 2016, "Audio texture synthesis and
style transfer"): one 1-D convolution over time with random, never trained filters, then ReLU.

The log-spectrogram ``(C, bins, T)`` is read as C independent 1-D signals of ``bins`` channels;
features are ``(C, filters, T)``. The Gram matrix and content loss are the image path's
(:mod:`impasto.loss.losses`), applied per channel.

Departure from the reference code: the convolution wraps around in time (circular padding) instead
of being "valid". With "valid", the last frames are seen by fewer windows and the optimiser piles the
style's energy there — on a 1 s noise-burst texture (n_fft 512) the last tenth came out 5× louder
than the rest, and peak normalisation then made the whole result quiet. Wrapped, every frame is seen
by ``width`` windows alike (and a synthesised texture loops seamlessly).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ..loss import losses


def filter_std(n_bins: int, n_filters: int, width: int) -> float:
    """The recipe's ``sqrt(2) · sqrt(2 / ((n_bins + n_filters) · width))``: Glorot's variance
    ``2 / (fan_in + fan_out)`` with the He factor 2 for the ReLU that follows."""
    return math.sqrt(2.0) * math.sqrt(2.0 / ((n_bins + n_filters) * width))


def random_filters(n_bins: int, n_filters: int, width: int, seed: int) -> torch.Tensor:
    """``(n_filters, n_bins, width)`` Gaussian filters drawn on the CPU from ``seed``: the same seed
    gives the same network on every device."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n_filters, n_bins, width, generator=generator) * filter_std(n_bins, n_filters, width)


class RandomNet(torch.nn.Module):
    """``ReLU(conv1d(X, W))`` without bias, W fixed, circular in time: ``(C, bins, T)`` -> ``(C, filters, T)``."""

    def __init__(self, n_bins: int, n_filters: int = 4096, width: int = 11, seed: int = 0):
        super().__init__()
        self.register_buffer("weight", random_filters(n_bins, n_filters, width, seed))

    @property
    def width(self) -> int:
        return self.weight.shape[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.weight.shape[1]:
            raise ValueError(f"expected (C, {self.weight.shape[1]}, T) log-spectrograms, got {tuple(x.shape)}")
        half = self.width // 2
        wrapped = F.pad(x, (half, self.width - 1 - half), mode="circular")  # (C, bins, T + width − 1)
        return F.relu(F.conv1d(wrapped, self.weight))


def _as_map(f: torch.Tensor) -> torch.Tensor:
    """One channel's ``(filters, T')`` as the ``(1, N, 1, M)`` feature map :mod:`impasto.loss.losses` takes."""
    return f[None, :, None, :]


def gram(features: torch.Tensor) -> torch.Tensor:
    """Style statistics: ``G = F Fᵀ / T`` per channel, ``(C, filters, T)`` -> ``(C, filters, filters)``
    (divided by the number of frames, as the reference code, so clips of any length compare)."""
    return torch.stack([losses.gram(_as_map(f), normalise=True) for f in features])


def style_loss(features: torch.Tensor, target_gram: torch.Tensor) -> torch.Tensor:
    """``2 · l2(G − A) = Σ (G − A)²`` summed over channels (the recipe's ``2 * tf.nn.l2_loss``,
    ``l2(x) = ½ Σ x²``); ``target_gram`` is ``(C, filters, filters)`` from :func:`gram`."""
    return (gram(features) - target_gram).pow(2).sum()


def content_loss(features: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``2 · l2(F − P) = Σ (F − P)²``: twice Gatys et al.'s eq. 1 (the recipe's ``2 * tf.nn.l2_loss``)."""
    return 2 * sum(losses.content_loss(_as_map(f), _as_map(p), "paper") for f, p in zip(features, target))
