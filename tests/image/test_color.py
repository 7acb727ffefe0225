"""Colour functions (impasto.image.color) against invariants and round trips in float64 (issue 5)."""

import pytest
import torch
from PIL import Image

from impasto.config import COLOR_SPACES, MATCH_METHODS
from impasto.image import color
from impasto.image.imageio import pil_to_tensor


def _rand(*shape, seed=0):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


# ---------------------------------------------------------------- colour spaces

@pytest.mark.parametrize("space", COLOR_SPACES)
def test_rgb_luma_chroma_round_trip(space):
    x = _rand(2, 3, 5, 7)
    y = color.rgb_to_luma_chroma(x, space)
    assert torch.allclose(color.luma_chroma_to_rgb(y, space), x, atol=1e-12)
    assert torch.allclose(y[:, :1], color.luminance(x), atol=1e-12)


def test_gray_has_no_chrominance_and_white_has_luminance_one():
    g = color.gray(_rand(1, 1, 4, 4))
    assert torch.allclose(color.rgb_to_yiq(g)[:, 1:], torch.zeros(1, 2, 4, 4, dtype=torch.float64), atol=1e-6)
    assert color.luminance(torch.ones(1, 3, 1, 1)).item() == pytest.approx(1.0, abs=1e-6)


def test_colour_functions_gradcheck():
    x = _rand(1, 3, 2, 3, seed=1).requires_grad_(True)
    c = (0.2 + 0.6 * _rand(1, 3, 2, 3, seed=2)).requires_grad_(True)  # inside the gamut: smooth there
    assert torch.autograd.gradcheck(color.rgb_to_yiq, (x,))
    assert torch.autograd.gradcheck(lambda a, b: color.keep_chrominance(a, b), (x, c))
    for method in MATCH_METHODS:
        assert torch.autograd.gradcheck(lambda a, b: color.match_color(a, b, method, clamp=False), (x, c))


def test_keep_chrominance_is_exact_and_in_gamut():
    stylised, content = _rand(1, 3, 16, 16, seed=3), _rand(1, 3, 16, 16, seed=4)
    out = color.keep_chrominance(stylised, content)
    assert torch.allclose(color.rgb_to_yiq(out)[:, 1:], color.rgb_to_yiq(content)[:, 1:], atol=1e-12)
    assert out.min() >= -1e-12 and out.max() <= 1 + 1e-12
    # where the new luminance fits the gamut it is the stylised image's, untouched
    inside = (color.luminance(stylised) - color.luminance(out)).abs() < 1e-12
    assert inside.float().mean() > 0.3


def test_match_luminance_takes_content_mean_and_std():
    s, c = _rand(1, 1, 20, 20, seed=5) ** 3, 0.3 + 0.2 * _rand(1, 1, 20, 20, seed=6)
    out = color.match_luminance(s, c)
    assert out.mean().item() == pytest.approx(c.mean().item(), abs=1e-12)
    assert out.std().item() == pytest.approx(c.std().item(), rel=1e-9)


@pytest.mark.parametrize("method", MATCH_METHODS)
def test_match_color_gives_content_mean_and_covariance(small_images, method):
    style = pil_to_tensor(Image.open(small_images["starry_night"])).double()
    content = pil_to_tensor(Image.open(small_images["tubingen"])).double()
    mu_c, cov_c = color.color_statistics(content)
    for clamp, tol in ((False, 1e-3), (True, 1e-2)):  # clipping to [0, 1] moves them slightly
        mu, cov = color.color_statistics(color.match_color(style, content, method, clamp=clamp))
        assert torch.linalg.norm(mu - mu_c) <= tol * torch.linalg.norm(mu_c)
        assert torch.linalg.norm(cov - cov_c) <= tol * torch.linalg.norm(cov_c)


def test_pca_match_ignores_channel_order_and_cholesky_does_not(small_images):
    style = pil_to_tensor(Image.open(small_images["starry_night"])).double()
    content = pil_to_tensor(Image.open(small_images["kandinsky"])).double()
    p = [2, 0, 1]
    for method, same in (("pca", True), ("cholesky", False)):
        direct = color.match_color(style, content, method, clamp=False)[:, p]
        permuted = color.match_color(style[:, p], content[:, p], method, clamp=False)
        assert torch.allclose(direct, permuted, atol=1e-9) is same


def test_weighted_statistics_are_those_of_the_region():
    x, w = _rand(1, 3, 6, 6, seed=7), torch.zeros(1, 1, 6, 6, dtype=torch.float64)
    w[..., :3, :] = 1
    mu, cov = color.color_statistics(x, w)
    mu_top, cov_top = color.color_statistics(x[..., :3, :])
    assert torch.allclose(mu, mu_top) and torch.allclose(cov, cov_top)
