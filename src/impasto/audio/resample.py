"""Sample-rate conversion by band-limited interpolation (J. O. Smith, "Digital Audio Resampling Home
Page", CCRMA): each output sample is a Kaiser-windowed-sinc weighted sum of the input samples near its
time. For rational ratios the fractional offsets repeat, so the filter is tabulated once per phase.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

ZERO_CROSSINGS = 24   # sinc zero crossings kept on each side of the centre
ROLLOFF = 0.945       # cutoff as a fraction of the lower Nyquist frequency (anti-aliasing margin)
KAISER_BETA = 8.6     # Kaiser window shape: about 90 dB stop-band attenuation
CHUNK = 1 << 15       # output samples computed at a time (bounds memory on long files)


def resampled_length(n: int, orig_rate: int, new_rate: int) -> int:
    """Samples after resampling ``n`` samples: ``ceil(n · new / orig)``."""
    return -(-n * new_rate // orig_rate)


def _filter_bank(up: int, cutoff: float, half: int) -> torch.Tensor:
    """``(up, 2·half)`` taps: row ``p`` weights the inputs ``i−half+1 … i+half`` for an output at
    ``i + p/up`` input samples; ``cutoff`` in cycles per input sample × 2 (1 = input Nyquist)."""
    k = torch.arange(-half + 1, half + 1, dtype=torch.float64)
    t = (torch.arange(up, dtype=torch.float64) / up)[:, None] - k[None, :]  # output time − input time
    window = torch.special.i0(KAISER_BETA * torch.sqrt((1 - (t / half) ** 2).clamp(min=0)))
    return cutoff * torch.sinc(cutoff * t) * window / torch.special.i0(torch.tensor(KAISER_BETA, dtype=torch.float64))


def resample(x: torch.Tensor, orig_rate: int, new_rate: int) -> torch.Tensor:
    """``(C, N)`` at ``orig_rate`` -> ``(C, ceil(N · new_rate / orig_rate))`` at ``new_rate``.

    Low-pass at ``ROLLOFF`` × the lower of the two Nyquist frequencies (so downsampling does not
    alias); zeros are assumed outside the signal. Same dtype out as in.
    """
    if x.dim() != 2:
        raise ValueError(f"expected (C, N) samples, got {tuple(x.shape)}")
    if orig_rate == new_rate:
        return x.clone()
    g = math.gcd(orig_rate, new_rate)
    up, down = new_rate // g, orig_rate // g
    cutoff = ROLLOFF * min(1.0, up / down)
    half = math.ceil(ZERO_CROSSINGS / cutoff)
    bank = _filter_bank(up, cutoff, half).to(x.dtype)
    windows = F.pad(x, (half - 1, half)).unfold(-1, 2 * half, 1)   # (C, N, 2·half): window of input i
    n_out = resampled_length(x.shape[-1], orig_rate, new_rate)
    out = x.new_empty(x.shape[0], n_out)
    for start in range(0, n_out, CHUNK):
        n = torch.arange(start, min(start + CHUNK, n_out)) * down    # output times × up, in input samples
        base, phase = n // up, n % up
        out[:, start:start + len(n)] = (windows[:, base] * bank[phase]).sum(-1)
    return out
