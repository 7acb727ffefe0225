"""Tests of impasto.audio.network: the random network is fixed by its seed; its Gram matrix and losses by hand."""

import math

import pytest
import torch

from conftest import SR, chords
from impasto.audio import spectral
from impasto.audio.network import RandomNet, content_loss, filter_std, gram, style_loss


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small problems, one thread


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
