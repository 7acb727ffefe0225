"""Tests of impasto.audio.files: sound files written and read, channels and rate on loading, bad input as one error."""

import numpy as np
import pytest
import torch

from conftest import SR, bursts, chords, tones
from conftest import bad_audio_files as _bad_inputs
from conftest import write_sound as write
from impasto import ImpastoError
from impasto.audio.files import OUTPUT_PEAK, load_audio, normalise_peak, read_audio, save_audio
from impasto.audio.run import min_samples
from impasto.config import AudioConfig


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small problems, one thread


@pytest.mark.parametrize("suffix, tolerance", [(".wav", 1e-4), (".flac", 1e-4)])
def test_lossless_write_read_round_trip(tmp_path, suffix, tolerance):
    x = normalise_peak(torch.cat([chords(0.5), bursts(0.5)]))
    path = save_audio(x, SR, tmp_path / f"a{suffix}")
    y, rate = read_audio(path)
    assert rate == SR and y.shape == x.shape and (y - x).abs().max() < tolerance


def test_ogg_write_read(tmp_path):
    x = normalise_peak(chords(1.0))
    y, rate = read_audio(save_audio(x, SR, tmp_path / "a.ogg"))
    assert rate == SR and y.shape[0] == 1
    n = min(x.shape[1], y.shape[1])
    assert np.corrcoef(x[0, :n].numpy(), y[0, :n].numpy())[0, 1] > 0.95  # lossy, but the same sound


def test_load_mixes_or_keeps_channels_and_resamples(tmp_path):
    stereo = torch.cat([tones(1.0, (440,), 44100), tones(1.0, (660,), 44100)])
    path = write(tmp_path / "stereo.wav", stereo, 44100)
    mixed = load_audio(path, SR, "mix")
    kept = load_audio(path, SR, "keep")
    assert mixed.shape == (1, SR) and kept.shape == (2, SR)
    assert torch.allclose(mixed, kept.mean(0, keepdim=True), atol=1e-5)
    assert (kept[0, 2000:-2000] - tones(1.0, (440,))[0, 2000:-2000]).abs().max() < 1e-3


def test_normalise_peak_avoids_clipping():
    x = chords(0.2) * 7
    assert normalise_peak(x).abs().max().item() == pytest.approx(OUTPUT_PEAK)
    assert torch.equal(normalise_peak(torch.zeros(1, 10)), torch.zeros(1, 10))


@pytest.mark.parametrize("problem", ["silent", "too short", "empty", "not an audio file", "file not found"])
def test_bad_input_is_one_clear_error(tmp_path, problem):
    path = _bad_inputs(tmp_path)[problem]
    with pytest.raises(ImpastoError, match=problem) as caught:
        load_audio(path, SR, min_samples=min_samples(AudioConfig()))
    assert str(path) in str(caught.value)


def test_non_finite_samples_are_refused(tmp_path):
    x = chords(0.5).numpy().copy()
    x[0, 100] = np.nan
    import soundfile

    path = tmp_path / "nan.wav"
    soundfile.write(str(path), x.T, SR, subtype="FLOAT")  # float WAV keeps the NaN
    with pytest.raises(ImpastoError, match="NaN"):
        read_audio(path)
    with pytest.raises(ImpastoError, match="NaN"):
        save_audio(torch.from_numpy(x), SR, tmp_path / "out.wav")
    assert not (tmp_path / "out.wav").exists()
