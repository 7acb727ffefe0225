"""Tests of impasto.image.ink: the painting's tones, its paper, the photo's voids, the painting's seals and
inscriptions."""

import pytest
import torch

from impasto.image.color import luminance, rgb_to_yiq
from impasto.image.ink import (TONE_BINS, _interp, border_mask, calligraphy_mask, colorize, gaussian_blur, in_ink_tones, ink_tones,
                               local_contrast, match_tones, paper_tone, seal_mask, void_mask)

PAPER = (0.92, 0.88, 0.78)
INK = (0.12, 0.11, 0.10)


def _two_tone(h=8, w=8):
    """Left half paper, right half ink."""
    image = torch.empty(1, 3, h, w)
    image[..., : w // 2] = torch.tensor(PAPER).view(1, 3, 1, 1)
    image[..., w // 2:] = torch.tensor(INK).view(1, 3, 1, 1)
    return image


def test_interp_is_numpys():
    xp, fp = torch.tensor([0.0, 1.0, 3.0]), torch.tensor([0.0, 2.0, 0.0])
    x = torch.tensor([-1.0, 0.5, 2.0, 5.0])
    assert torch.allclose(_interp(x, xp, fp), torch.tensor([0.0, 1.0, 1.0, 0.0]))


def test_tones_of_a_two_tone_painting():
    tones = ink_tones(_two_tone())
    paper, ink = (rgb_to_yiq(torch.tensor(c).view(1, 3, 1, 1)).flatten() for c in (PAPER, INK))
    assert torch.allclose(tones.chroma[int(paper[0] * TONE_BINS)], paper[1:], atol=1e-6)
    assert torch.allclose(tones.chroma[int(ink[0] * TONE_BINS)], ink[1:], atol=1e-6)
    assert tones.quantiles[0] == pytest.approx(float(ink[0]), abs=1e-6)
    assert tones.quantiles[-1] == pytest.approx(float(paper[0]), abs=1e-6)
    assert torch.allclose(paper_tone(_two_tone()).flatten(), torch.tensor(PAPER))


def test_match_tones_reads_ranks_off_the_paintings_distribution():
    linear = ink_tones(torch.linspace(0, 1, 4096).view(1, 1, 64, 64).expand(1, 3, 64, 64))
    luma = torch.tensor([0.1, 0.5, 0.9, 0.3]).view(1, 1, 2, 2)
    assert torch.allclose(match_tones(luma, linear).flatten(), torch.tensor([0.0, 2 / 3, 1.0, 1 / 3]), atol=1e-3)


def test_colorize_keeps_luminance_and_takes_the_paintings_colour():
    tones = ink_tones(_two_tone())
    luma = torch.rand(1, 1, 5, 7)
    rgb = colorize(luma, tones)
    assert torch.allclose(luminance(rgb), luma, atol=1e-6)
    photo = torch.rand(1, 3, 16, 16)
    toned = in_ink_tones(photo, tones, match=True)
    assert toned.min() >= 0 and toned.max() <= 1
    # matched to a painting of two tones: nearly every pixel is the paper or the ink (a few step between)
    levels = torch.tensor([float(luminance(torch.tensor(c).view(1, 3, 1, 1))) for c in (INK, PAPER)])
    near = (luminance(toned).reshape(-1, 1) - levels).abs().min(dim=1).values < 1e-3
    assert near.float().mean() > 0.95


def test_gaussian_blur_keeps_constants_and_mass():
    flat = torch.full((1, 2, 9, 11), 0.3, dtype=torch.float64)
    assert torch.allclose(gaussian_blur(flat, 1.5), flat)
    dot = torch.zeros(1, 1, 21, 21, dtype=torch.float64)
    dot[..., 10, 10] = 1
    blurred = gaussian_blur(dot, 1.0)
    assert blurred.sum().item() == pytest.approx(1.0, abs=1e-12) and blurred[..., 10, 10] == blurred.max()
    assert torch.allclose(blurred[0, 0], blurred[0, 0].T)
    assert torch.autograd.gradcheck(lambda x: gaussian_blur(x, 0.8), torch.rand(1, 1, 6, 7, dtype=torch.float64,
                                                                             requires_grad=True))


def test_local_contrast_of_a_ramp_is_its_slope():
    ramp = torch.linspace(0, 0.5, 11).view(1, 1, 1, 11).expand(1, 3, 9, 11)
    inner = local_contrast(ramp, 0)[..., 1:-1]
    assert torch.allclose(inner, torch.full_like(inner, 0.05), atol=1e-6)
    assert local_contrast(torch.full((1, 3, 5, 5), 0.4), 1.0).max() == 0


def test_void_mask_leaves_the_flat_half():
    torch.manual_seed(0)
    photo = torch.full((1, 3, 40, 80), 0.6)
    photo[..., 40:] = torch.rand(1, 3, 40, 40)
    mask = void_mask(photo, 0.3, sigma=1.0)
    assert mask[..., :, :30].min() > 0.99 and mask[..., :, 50:].max() < 0.01
    assert void_mask(photo, 0.0).max() == 0


def test_seal_mask_finds_a_red_seal_on_brown_silk():
    painting = torch.tensor([0.55, 0.42, 0.28]).view(1, 3, 1, 1).expand(1, 3, 60, 60).clone()
    painting[..., 40:48, 10:18] = torch.tensor([0.75, 0.15, 0.12]).view(1, 3, 1, 1)
    mask = seal_mask(painting)
    assert mask[..., 40:48, 10:18].min() == 1 and mask[..., 38:50, 8:20].sum() == mask.sum()
    assert mask[..., :30, :].max() == 0
    painting[..., :, :30] = torch.tensor([0.75, 0.15, 0.12]).view(1, 3, 1, 1)  # half the painting red: its colour
    assert seal_mask(painting).max() == 0


def test_seal_mask_skips_scattered_red():
    """Dark brown silk speckled with red pixels (no solid block of red) has no seal."""
    painting = torch.tensor([0.55, 0.42, 0.28]).view(1, 3, 1, 1).expand(1, 3, 60, 60).clone()
    painting[..., ::4, ::4] = torch.tensor([0.75, 0.15, 0.12]).view(1, 3, 1, 1)
    assert seal_mask(painting).max() == 0


def _paper_with_column(strokes_left: int) -> torch.Tensor:
    """White paper, 200 px square, with a column of eight 6×6 'characters' (dark marks 3 px apart)
    whose left edge is at ``strokes_left``."""
    painting = torch.full((1, 3, 200, 200), 0.9)
    for k in range(8):
        top = 20 + 9 * k
        painting[..., top:top + 6, strokes_left:strokes_left + 6] = 0.1
        painting[..., top + 2, strokes_left - 1:strokes_left + 7] = 0.1
    return painting


def test_calligraphy_mask_finds_a_column_on_bare_paper():
    painting = _paper_with_column(30)
    mask = calligraphy_mask(painting)
    assert mask[..., 20:90, 30:36].min() == 1                      # every character
    assert mask[..., 100:, :].max() == 0 and mask[..., :, 60:].max() == 0


def test_calligraphy_mask_ignores_a_wide_dark_mass_and_crowded_strokes():
    painting = _paper_with_column(30)
    painting[..., 20:90, 40:44] = 0.1                               # a trunk beside it: no bare paper there
    assert calligraphy_mask(painting).max() == 0
    rock = torch.full((1, 3, 200, 200), 0.9)
    rock[..., 50:150, 50:150] = 0.1                                 # a rock: far too wide for a column
    assert calligraphy_mask(rock).max() == 0


def test_border_mask_finds_a_mount_and_leaves_a_painting_without_one():
    painting = torch.rand(1, 3, 100, 120, generator=torch.Generator().manual_seed(0)) * 0.3 + 0.3
    bare = border_mask(painting)
    assert bare.max() == 0                                           # no frame: nothing
    painting[..., :4, :] = 0.95                                      # a light mount along the top …
    painting[..., :, -6:] = 0.95                                     # … and the right
    mask = border_mask(painting)
    assert mask[..., :4, :].min() == 1 and mask[..., :, -6:].min() == 1
    assert mask[..., 8:, :-10].max() == 0                            # the painting itself kept
    paper = torch.full((1, 3, 100, 120), 0.92)
    paper[..., 3:5, ::3] = 0.1                                       # strokes just inside a bare edge
    paper[..., 10:40:4, 20:100] = 0.1
    assert border_mask(paper).max() == 0                             # the paper's edge is no frame
