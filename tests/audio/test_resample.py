"""Tests of impasto.audio.resample: a tone resampled is the tone at the new rate, less what that rate cannot hold."""

import pytest

from conftest import SR, tones
from impasto.audio.resample import resample, resampled_length


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small problems, one thread


@pytest.mark.parametrize("rate", [44100, 48000, 16000, 8000])
def test_resample_matches_the_tone_at_the_new_rate(rate):
    freqs = (440, 3000)
    y = resample(tones(1.0, freqs, rate), rate, SR)
    assert y.shape == (1, SR) == (1, resampled_length(rate, rate, SR))
    expected = tones(1.0, freqs, SR)
    assert (y - expected)[:, 2000:-2000].abs().max() < 1e-3


def test_resample_removes_what_the_new_rate_cannot_hold():
    y = resample(tones(1.0, (15000,), 44100, amp=1.0), 44100, SR)  # above 11025 Hz, the new Nyquist
    assert y[:, 2000:-2000].abs().max() < 1e-3
