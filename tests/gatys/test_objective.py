"""Tests of impasto.gatys.objective: every scale of a pyramid weighs the content as the full size does."""

import pytest

from impasto import TransferConfig
from impasto.gatys.inputs import scale_sides
from impasto.gatys.objective import content_weight_scale
from impasto.image.imageio import fit_long_side
from impasto.loss.terms import pixels


@pytest.mark.parametrize("normalization", ["per-position", "paper"])
def test_every_scale_of_a_pyramid_weighs_content_as_the_full_size(normalization):
    # scale factor × the scale's pixels = the pixels the content loss stands for, the same at every scale
    photo = (640, 427)
    config = TransferConfig(size=1024, scales=0, normalization=normalization)
    stands_for = fit_long_side(photo, 512 if normalization == "per-position" else 1024)
    for side in scale_sides(config):
        size = fit_long_side(photo, side)
        assert content_weight_scale(config, size, photo) * pixels(size) == pytest.approx(pixels(stands_for))
    full = fit_long_side(photo, 1024)
    assert content_weight_scale(config.replace(normalization="paper"), full, photo) == 1.0  # eq. 1 exactly
