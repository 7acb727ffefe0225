"""Tests of impasto.audio.spectral: the STFT and its inverse, log-magnitude features, Griffin–Lim."""

import math

import pytest
import torch

from conftest import SR, chords, tones
from impasto.audio import spectral


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small problems, one thread


@pytest.mark.parametrize("n_fft, hop, channels, n", [(2048, 512, 1, 22050), (512, 128, 2, 10007)])
def test_stft_inverse_round_trip(n_fft, hop, channels, n):
    x = torch.randn(channels, n, generator=torch.Generator().manual_seed(1)) * 0.3
    spec = spectral.stft(x, n_fft, hop)
    assert spec.shape == (channels, n_fft // 2 + 1, 1 + n // hop)
    assert torch.allclose(spectral.istft(spec, n_fft, hop, n), x, atol=1e-5)


def test_features_of_a_tone_by_hand():
    # a Hann-windowed sine of amplitude a on bin k has |STFT| = a · Σw / 2 = a · n_fft / 4 there
    n_fft, k = 512, 40
    x = tones(1.0, (k * SR / n_fft,), amp=0.5)
    feats = spectral.features(x, n_fft, 128)
    middle = feats[0, :, 10:-10]
    assert torch.allclose(middle[k], torch.full_like(middle[k], math.log1p(0.5 * n_fft / 4)), rtol=1e-3)
    assert middle[k + 5].max() < 1e-3  # far from the tone: nothing


def test_griffin_lim_converges_with_iterations():
    x = chords(1.0) * (1 + 0.5 * torch.sin(2 * math.pi * 3 * torch.arange(SR) / SR))
    mag = spectral.stft(x, 512, 128).abs()

    def convergence(iterations, momentum):
        y = spectral.griffin_lim(mag, 512, 128, SR, iterations, momentum, torch.Generator().manual_seed(0))
        assert y.shape == x.shape
        return spectral.spectral_convergence(y, mag, 512, 128)

    classic = [convergence(i, 0.0) for i in (2, 20, 100)]
    fast = [convergence(i, 0.99) for i in (2, 20, 100)]
    assert classic[0] > classic[1] > classic[2]
    assert fast[0] > fast[1] > fast[2]
    assert fast[2] < classic[2] / 2  # the fast variant (Perraudin et al.) converges faster
