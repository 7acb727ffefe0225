"""Tests of impasto.audio.run: audio style transfer (Ulyanov & Lebedev 2016) end to end on clips synthesised in conftest."""

import math

import pytest
import torch

from conftest import SR, bursts, chords, tones
from impasto import Cancel, Interrupted
from impasto.audio import spectral, synthesise
from impasto.audio.files import OUTPUT_PEAK, match_channels
from impasto.audio.run import MAGNITUDE_FLOOR, from_features, initial_log_magnitude, to_features
from impasto.audio.network import RandomNet, gram
from impasto.config import AudioConfig


FAST = dict(n_fft=512, hop=128, filters=256, griffin_lim_iterations=60, device="cpu")


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small problems, one thread


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


# ---------------------------------------------------------------- the optimised variable

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
