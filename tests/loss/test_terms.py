"""Tests of impasto.loss.terms: the −γ content-style term of seed 000 is bounded."""

import pytest
import torch

from conftest import style_distance
from impasto.image import imageio
from impasto.loss.terms import CONTENT_STYLE_CEILING, content_style_term, style_targets

pytestmark = pytest.mark.usefixtures("jobs_on_one_thread")  # conftest: one thread, as in the paper's tests


def test_gamma_term_is_bounded(vgg, small_images):
    photo = imageio.load_image(small_images["tubingen"], long_side=32)
    painting = imageio.load_image(small_images["starry_night"], long_side=32)
    layers = ("relu1_1", "relu2_1")
    targets = style_targets(vgg, [painting], [1.0], layers)
    term = content_style_term(vgg, photo, targets, [0.5, 0.5], gamma=7.0)
    assert term.weight == -7.0 and term.layers == layers
    ceiling = CONTENT_STYLE_CEILING * style_distance(vgg, photo, painting, layers)
    with torch.no_grad():
        assert float(term.fn(vgg(photo, layers), photo)) == pytest.approx(0.0, abs=1e-3)
    far = (torch.rand(photo.shape, generator=torch.Generator().manual_seed(0)) * 40 - 20).requires_grad_()
    value = term.fn(vgg(far, layers), far)
    assert value.item() == pytest.approx(ceiling, rel=1e-5)
    value.backward()
    assert float(far.grad.abs().max()) == 0.0  # beyond the bound nothing pushes further
