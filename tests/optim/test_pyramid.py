"""Tests of impasto.optim.pyramid: the Laplacian pyramid composes exactly, its coarse levels move regions, its depth."""

import pytest
import torch

from impasto.optim.loop import PIXEL_SCALE
from impasto.optim.pyramid import GAIN, LaplacianImage, auto_levels

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("shape", [(1, 3, 4, 5), (1, 3, 37, 50), (1, 1, 16, 16)])
def test_laplacian_start_composes_to_the_image_exactly(shape):
    image = torch.rand(shape, generator=torch.Generator().manual_seed(1)) * PIXEL_SCALE
    pyramid = LaplacianImage(image.shape, 4)
    assert torch.equal(pyramid.compose(pyramid.start(image)), image)
    assert pyramid.shapes[1] == ((shape[2] + 1) // 2, (shape[3] + 1) // 2)


def test_laplacian_coarse_level_moves_whole_regions():
    """A unit on the coarsest level moves every pixel under it, by gain^k (the preconditioning)."""
    pyramid = LaplacianImage((1, 1, 8, 8), 4)
    v = torch.zeros(sum(pyramid.sizes))
    v[-1] = 1.0  # the single 1x1 pixel of level 3
    assert torch.allclose(pyramid.compose(v), torch.full((1, 1, 8, 8), GAIN ** 3))


def test_auto_levels_halve_down_to_64_px():
    assert [auto_levels(s) for s in (32, 64, 127, 128, 512, 1024, 2048)] == [1, 1, 1, 2, 4, 5, 6]
