"""Tests of impasto.audio.plot: spectrograms plotted side by side."""

import pytest
from PIL import Image

from conftest import SR, chords
from impasto.audio import spectral
from impasto.audio.plot import save_spectrograms


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small problems, one thread


def test_spectrogram_plot_side_by_side(tmp_path):
    spec = spectral.features(chords(0.5), 512, 128)
    path = save_spectrograms([("content", spec), ("style", spec), ("result", spec)], SR, 128, tmp_path / "p.png")
    with Image.open(path) as img:
        assert img.width > 2 * img.height
