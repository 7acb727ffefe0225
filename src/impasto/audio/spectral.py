"""Spectrograms and phase recovery (Ulyanov & Lebedev 2016; Griffin & Lim 1984).

Signals are ``(C, N)`` float samples (C channels); complex STFTs are ``(C, bins, T)`` with
``bins = n_fft // 2 + 1`` and ``T = 1 + N // hop`` frames (periodic Hann window, frames centred on
multiples of ``hop``, zero padding at the ends — librosa's defaults, which the recipe used).
"""

from __future__ import annotations

from typing import Callable

import torch


def _window(n_fft: int, like: torch.Tensor) -> torch.Tensor:
    return torch.hann_window(n_fft, periodic=True, dtype=like.real.dtype, device=like.device)


def stft(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """``(C, N)`` samples -> complex ``(C, n_fft//2 + 1, 1 + N//hop)``."""
    return torch.stft(x, n_fft, hop, window=_window(n_fft, x), center=True, pad_mode="constant",
                      return_complex=True)


def istft(spec: torch.Tensor, n_fft: int, hop: int, length: int) -> torch.Tensor:
    """Complex ``(C, bins, T)`` -> ``(C, length)`` samples: least-squares overlap-add inverse of :func:`stft`."""
    return torch.istft(spec, n_fft, hop, window=_window(n_fft, spec), center=True, length=length)


def features(x: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    """The recipe's input: ``log1p(|STFT|)``, ``(C, bins, T)``; the bins are the channels of a 1-D
    signal over the T frames."""
    return torch.log1p(stft(x, n_fft, hop).abs())


def spectral_convergence(x: torch.Tensor, mag: torch.Tensor, n_fft: int, hop: int) -> float:
    """``‖ |STFT(x)| − A ‖_F / ‖A‖_F``: how well the signal ``x`` realises the magnitude ``A``."""
    return float((stft(x, n_fft, hop).abs() - mag).norm() / mag.norm().clamp(min=1e-12))


def griffin_lim(mag: torch.Tensor, n_fft: int, hop: int, length: int, iterations: int,
                momentum: float = 0.0, generator: torch.Generator | None = None,
                callback: Callable[[int], None] | None = None) -> torch.Tensor:
    """A ``(C, length)`` signal whose STFT magnitude approaches ``mag`` ``(C, bins, T)``.

    Griffin & Lim (1984): from random phase, alternate ``x = ISTFT(A·e^{iφ})`` and ``φ = ∠STFT(x)``;
    the recipe runs 500 such iterations. ``momentum > 0`` is the fast variant of Perraudin, Balazs &
    Søndergaard (2013), which extrapolates the phase (0.99 is librosa's default).
    """
    phase = torch.rand(mag.shape, generator=generator, dtype=mag.dtype).to(mag.device) * (2 * torch.pi)
    angles = torch.polar(torch.ones_like(mag), phase)
    previous = torch.zeros_like(angles)
    for i in range(iterations):
        rebuilt = stft(istft(mag * angles, n_fft, hop, length), n_fft, hop)
        angles = rebuilt - (momentum / (1 + momentum)) * previous
        angles = angles / angles.abs().clamp(min=1e-16)
        previous = rebuilt
        if callback is not None:
            callback(i + 1)
    return istft(mag * angles, n_fft, hop, length)
