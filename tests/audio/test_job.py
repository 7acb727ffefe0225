"""Audio style transfer (Ulyanov & Lebedev 2016) on clips synthesised here: tones, chords, noise bursts.

Small STFTs (n_fft 512) and 256 random filters keep each run to seconds; the behaviour is the real one.
"""

import math

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import run_cli
from impasto import Cancel, ImpastoError, Interrupted
from impasto.audio import synthesise
from impasto.audio import spectral
from impasto.audio.files import OUTPUT_PEAK, load_audio, match_channels, normalise_peak, read_audio, save_audio
from impasto.audio.job import MAGNITUDE_FLOOR, from_features, initial_log_magnitude, min_samples, to_features
from impasto.audio.network import RandomNet, content_loss, filter_std, gram, style_loss
from impasto.audio.plot import save_spectrograms
from impasto.audio.resample import resample, resampled_length
from impasto.config import AudioConfig

SR = 22050
FAST = dict(n_fft=512, hop=128, filters=256, griffin_lim_iterations=60, device="cpu")


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small problems, one thread


# ---------------------------------------------------------------- synthesised clips, (C, N) float32

def tones(seconds, freqs, rate=SR, amp=0.2):
    t = torch.arange(round(seconds * rate), dtype=torch.float64) / rate
    return sum(amp * torch.sin(2 * math.pi * f * t) for f in freqs).float()[None]


def chords(seconds, rate=SR):
    """C major then D major, half the clip each."""
    first, second = tones(seconds, (262, 330, 392), rate), tones(seconds, (294, 370, 440), rate)
    return torch.where(torch.arange(first.shape[1]) < first.shape[1] // 2, first, second)


def bursts(seconds, seed=0):
    """White-noise bursts switched on and off 8 times a second."""
    n = round(seconds * SR)
    noise = torch.randn(n, generator=torch.Generator().manual_seed(seed)) * 0.3
    return (noise * ((torch.arange(n) // (SR // 8)) % 2 == 0).float())[None]


def write(path, x, rate=SR):
    import soundfile

    soundfile.write(str(path), np.asarray(x, dtype=np.float32).T, rate)
    return path


def distances(result, config):
    """Gram distance ‖G − A‖ to the style and feature distance ‖F − P‖ to the content, of a spectrogram."""
    net = RandomNet(config.n_fft // 2 + 1, config.filters, config.kernel_width, config.seed)
    a = gram(net(result.spectrograms["style"]))
    p = net(result.spectrograms["content"]) if "content" in result.spectrograms else None

    def measure(spec):
        feats = net(spec)
        return float((gram(feats) - a).norm()), None if p is None else float((feats - p).norm())
    return measure


def run(style, content=None, **changes):
    config = AudioConfig(**{**FAST, "iterations": 60, **changes})
    events = []
    result = synthesise(style, content, config, callback=events.append)
    return result, events, config


# ---------------------------------------------------------------- STFT, features, Griffin–Lim

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


# ---------------------------------------------------------------- resampling

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


# ---------------------------------------------------------------- the random network and the losses

def test_random_network_is_fixed_by_its_seed():
    a, b, c = RandomNet(257, 64, 11, seed=3), RandomNet(257, 64, 11, seed=3), RandomNet(257, 64, 11, seed=4)
    assert torch.equal(a.weight, b.weight) and not torch.equal(a.weight, c.weight)
    assert a.weight.shape == (64, 257, 11)
    assert filter_std(257, 64, 11) == math.sqrt(2) * math.sqrt(2 / ((257 + 64) * 11))
    assert float(a.weight.std()) == pytest.approx(filter_std(257, 64, 11), rel=0.01)
    out = a(spectral.features(chords(0.5), 512, 128))
    assert out.shape == (1, 64, 1 + round(0.5 * SR) // 128)  # circular in time: one output per frame
    assert out.min() >= 0 and out.max() > 0                        # after the ReLU
    assert not a.weight.requires_grad and not list(a.parameters())  # never trained
    x = spectral.features(chords(0.5), 512, 128)
    assert torch.allclose(a(x.roll(7, -1)), a(x).roll(7, -1), atol=1e-5)  # wraps around in time


def test_losses_by_hand():
    # one channel, 2 filters, 2 frames: F = [[1, 2], [3, 4]], G = F Fᵀ / 2 = [[2.5, 5.5], [5.5, 12.5]]
    f = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    assert torch.equal(gram(f), torch.tensor([[[2.5, 5.5], [5.5, 12.5]]]))
    # 2·l2(G − 0) = Σ G² = 6.25 + 30.25 + 30.25 + 156.25
    assert style_loss(f, torch.zeros(1, 2, 2)).item() == 223.0
    # 2·l2(F − P) = Σ (F − P)² = 1 + 0 + 4 + 0
    assert content_loss(f, torch.tensor([[[0.0, 2.0], [5.0, 4.0]]])).item() == 5.0


def test_optimised_variable_is_a_realisable_magnitude():
    theta = torch.linspace(-20, 20, 101)
    assert torch.allclose(to_features(theta), torch.log1p(torch.exp(theta)))  # log1p(|S|) with |S| = e^θ
    x = spectral.features(chords(0.5), 512, 128)
    floor = math.log1p(MAGNITUDE_FLOOR)
    assert torch.allclose(to_features(from_features(x)), x.clamp(min=floor), rtol=1e-4)


# ---------------------------------------------------------------- the optimisation, end to end

def test_texture_from_noise_matches_the_style():
    style = bursts(1.0)
    result, events, config = run(style, seconds=1.0)
    start, end = math.sqrt(events[0].losses["style"]), math.sqrt(result.losses["style"])
    assert start / end >= 10                       # the optimised spectrogram's Gram distance
    measure = distances(result, config)
    heard = measure(result.spectrograms["result"])[0]
    assert heard < start / 3                       # and still after Griffin–Lim, in the audio itself
    assert result.samples.shape == (1, SR) and result.sample_rate == SR
    assert result.samples.abs().max().item() == pytest.approx(OUTPUT_PEAK)
    rms = result.samples[0].reshape(10, -1).pow(2).mean(1).sqrt()  # as loud at the ends as inside
    for end in (rms[0], rms[-1]):
        assert rms.median() / 2 < end < 2 * rms.median()


def test_transfer_keeps_the_content_and_takes_the_style():
    content, style = chords(1.37), bursts(1.37)  # a length that is no multiple of the hop
    result, events, config = run(style, content)
    assert result.samples.shape == content.shape  # the output has the content's length
    assert math.sqrt(events[0].losses["style"] / result.losses["style"]) >= 10
    measure = distances(result, config)
    style_clip = measure(result.spectrograms["style"])[1]
    assert math.sqrt(result.losses["content"]) < style_clip          # the optimised spectrogram
    assert measure(result.spectrograms["result"])[1] < style_clip    # the audio
    heavier, _, _ = run(style, content, content_weight=1.0)          # α weighs content against style
    assert heavier.losses["content"] < 0.7 * result.losses["content"]


def test_grinstein_variant_starts_from_the_content():
    content, style = chords(1.0), bursts(1.0)
    result, events, config = run(style, content, init="content", content_weight=0.0, iterations=40)
    start = initial_log_magnitude(config, (1, 257, 1 + SR // 128), result.spectrograms["content"], None)
    content_floored = result.spectrograms["content"].clamp(min=math.log1p(MAGNITUDE_FLOOR))
    assert torch.allclose(to_features(start), content_floored, rtol=1e-4)  # starts at the content
    assert events[0].losses["total"] == events[0].losses["style"]         # style loss only
    assert math.sqrt(events[0].losses["style"] / result.losses["style"]) >= 10
    measure = distances(result, config)
    assert measure(result.spectrograms["result"])[0] < measure(result.spectrograms["content"])[0] / 3


def test_long_content_is_processed_whole():
    content = chords(12.0)  # longer than the recipe's window of 430 frames (~10 s at n_fft 2048)
    result, _, _ = run(bursts(1.0), content, filters=16, iterations=2, griffin_lim_iterations=2)
    assert result.samples.shape == content.shape


def test_stereo_channels_are_stylised_each():
    content = torch.cat([chords(0.6), tones(0.6, (523,))])
    result, _, _ = run(match_channels(bursts(0.6), 2), content, iterations=3, griffin_lim_iterations=3)
    assert result.samples.shape == (2, content.shape[1])
    assert result.spectrograms["result"].shape[0] == 2


def test_interrupt_returns_the_best_result_so_far():
    cancel = Cancel()

    def stop_at_third(event):
        if event.done == 3:
            cancel.set()

    config = AudioConfig(**{**FAST, "seconds": 0.5})
    with pytest.raises(Interrupted) as caught:
        synthesise(bursts(0.5), None, config, callback=stop_at_third, cancel=cancel)
    samples = caught.value.partial.samples
    assert samples.shape == (1, round(0.5 * SR)) and torch.isfinite(samples).all()


# ---------------------------------------------------------------- files

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


def _bad_inputs(folder):
    out = {
        "silent": write(folder / "silent.wav", torch.zeros(1, SR)),
        "too short": write(folder / "short.wav", tones(1000 / SR, (440,))),  # < 10 hops of 128 or 512
        "empty": folder / "empty.wav",
        "not an audio file": folder / "notes.wav",
        "file not found": folder / "missing.wav",
    }
    out["empty"].write_bytes(b"")
    out["not an audio file"].write_text("these are words, not samples\n")
    return out


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


def test_spectrogram_plot_side_by_side(tmp_path):
    spec = spectral.features(chords(0.5), 512, 128)
    path = save_spectrograms([("content", spec), ("style", spec), ("result", spec)], SR, 128, tmp_path / "p.png")
    with Image.open(path) as img:
        assert img.width > 2 * img.height


# ---------------------------------------------------------------- the command line

TINY = ["--n-fft", "512", "--hop", "128", "--filters", "32", "--iterations", "5", "--griffin-lim-iterations", "5",
        "--device", "cpu", "--quiet"]


@pytest.mark.parametrize("problem", ["silent", "too short", "empty", "not an audio file", "file not found"])
def test_cli_bad_input_one_line_exit_2_no_output(tmp_path, capsys, problem):
    from impasto.cli.main import main

    bad = _bad_inputs(tmp_path)[problem]
    style = write(tmp_path / "style.wav", bursts(0.5))
    out = tmp_path / "out.wav"
    assert main(["audio", str(bad), str(style), "-o", str(out), *TINY]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("impasto: error: ") and str(bad) in err and problem in err
    assert not out.exists()


def test_cli_process_reports_bad_input_in_one_line(tmp_path):
    bad = _bad_inputs(tmp_path)["not an audio file"]
    out = tmp_path / "out.wav"
    code, _, err = run_cli("audio", "--texture", bad, "-o", out, *TINY)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"impasto: error: {bad}: not an audio file")
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["a.wav"], "expected CONTENT STYLE"),
    (["a.wav", "b.wav", "--texture", "b.wav"], "not both"),
    (["a.wav", "b.wav", "--seconds", "3"], "--seconds applies to --texture only"),
    (["--texture", "b.wav", "--init", "content"], "--init content needs a content clip"),
    (["a.wav", "b.wav", "--hop", "2000"], "--hop must be between"),
    (["--texture", "b.wav", "-o", "out.mp4"], "output must end in"),
])
def test_cli_bad_options(tmp_path, capsys, argv, message):
    from impasto.cli.main import main

    for name in ("a.wav", "b.wav"):
        write(tmp_path / name, chords(0.5))
    argv = [str(tmp_path / a) if a.endswith(".wav") else a for a in argv]
    if "-o" not in argv:
        argv += ["-o", str(tmp_path / "out.wav")]
    assert main(["audio", *TINY, *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert not any(p.name.startswith("out") for p in tmp_path.iterdir())


def test_cli_transfer_and_texture(tmp_path):
    import soundfile

    from impasto.cli.main import main

    content = write(tmp_path / "content.flac", torch.cat([chords(0.8, 44100), tones(0.8, (523,), 44100)]), 44100)
    style = write(tmp_path / "style.ogg", bursts(0.8))
    out, plot = tmp_path / "out.wav", tmp_path / "spectra.png"
    code, _, err = run_cli("audio", content, style, "-o", out, "--plot", plot, "--channels", "keep", *TINY)
    assert code == 0, err
    info = soundfile.info(str(out))
    assert (info.samplerate, info.channels, info.frames) == (SR, 2, resampled_length(round(0.8 * 44100), 44100, SR))
    with Image.open(plot) as img:
        assert img.width > 2 * img.height
    texture = tmp_path / "texture.flac"
    assert main(["audio", "--texture", str(style), "--seconds", "0.6", "-o", str(texture), *TINY]) == 0
    assert soundfile.info(str(texture)).frames == round(0.6 * SR)


def test_cli_interrupt_writes_the_latest_result(tmp_path, monkeypatch):
    import impasto.audio
    from impasto.cli.main import main

    real = impasto.audio.audio_transfer

    def interrupted_at_second(content, style, config, callback=None):
        cancel = Cancel()

        def stop(event):
            if event.done == 2:
                cancel.set()
        return real(content, style, config, callback=stop, cancel=cancel)

    monkeypatch.setattr(impasto.audio, "audio_transfer", interrupted_at_second)
    style = write(tmp_path / "style.wav", bursts(0.5))
    out = tmp_path / "out.wav"
    assert main(["audio", "--texture", str(style), "--seconds", "0.5", "-o", str(out), *TINY]) == 130
    y, rate = read_audio(out)
    assert rate == SR and y.shape == (1, round(0.5 * SR))


def test_griffin_lim_momentum_range_is_checked():
    """The range lived inside the help text once, and went unchecked."""
    from impasto.config import AudioConfig, check_options

    check_options(AudioConfig(griffin_lim_momentum=0.0))
    for bad in (1.0, -0.1):
        with pytest.raises(ImpastoError, match="--griffin-lim-momentum must be at least 0 and below 1"):
            check_options(AudioConfig(griffin_lim_momentum=bad))
