"""Tests of impasto.loss.ink: the ink mode's terms by hand, against autograd, and on the real VGG-19."""

import pytest
import torch

from impasto.loss.terms import Objective
from impasto.loss.ink import dog, edge_target, edge_term, ink_filter, ink_term


def test_dog_of_a_dark_line_is_negative_on_it():
    luma = torch.ones(1, 1, 21, 21, dtype=torch.float64)
    luma[..., :, 10] = 0.0
    response = dog(luma, 1.0)
    assert response[0, 0, 10, 10] < 0 and response[0, 0, 10, 8] > 0  # the line, and its bright flank
    assert dog(torch.full((1, 1, 9, 9), 0.7), 1.0).abs().max() < 1e-6


def test_edge_term_is_zero_on_the_photo_and_its_gradient_is_autograds():
    torch.manual_seed(1)
    photo = torch.rand(1, 3, 12, 14, dtype=torch.float64)
    target, strength = edge_target(photo, 1.0, gain=1.0)
    assert strength.max() == 1 and strength.min() >= 0
    term = edge_term(target, strength, 1.0, weight=1.0, scale=1.0)
    assert term.fn({}, photo).item() == pytest.approx(0.0, abs=1e-18)
    other = torch.rand(1, 3, 12, 14, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: term.fn({}, x), other)


def test_ink_filter_spreads_a_dark_pixel_then_blurs_it():
    image = torch.ones(1, 1, 7, 7, dtype=torch.float64)
    image[..., 3, 3] = 0.0
    eroded = ink_filter(image, 3, 0.0)
    assert eroded[..., 2:5, 2:5].max() == 0 and eroded.sum() == 49 - 9
    soft = ink_filter(image, 3, 1.0)
    assert 0 < soft[0, 0, 3, 3] < soft[0, 0, 3, 5] < soft[0, 0, 3, 6] <= 1
    x = torch.rand(1, 3, 8, 9, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: ink_filter(t, 3, 0.7), x)


def test_ink_term_on_the_real_network(vgg):
    torch.manual_seed(0)
    painting = torch.rand(1, 3, 32, 32)
    objective = Objective(vgg, [ink_term(vgg, painting, ["relu1_1", "relu2_1"], weight=1.0)])
    assert objective(painting)[1]["ink"] == pytest.approx(0.0, abs=1e-6)
    image = torch.full((1, 3, 32, 32), 0.5, requires_grad=True)
    loss, _ = objective(image)
    loss.backward()
    assert loss.item() > 0 and torch.isfinite(image.grad).all() and image.grad.abs().sum() > 0
