"""Tests of impasto.image.masks: regions share their overlaps, masks are resized, bad masks are clear errors (issue 5)."""

import pytest
import torch
from PIL import Image

from conftest import _mask
from impasto import ImpastoError
from impasto.image import masks


def test_regions_share_overlaps_and_keep_the_rest():
    m = torch.zeros(3, 1, 1, 4)
    m[0, 0, 0] = torch.tensor([1.0, 1.0, 0.0, 0.0])
    m[1, 0, 0] = torch.tensor([0.0, 1.0, 0.5, 0.0])
    m[2, 0, 0] = torch.tensor([0.0, 0.0, 0.5, 0.0])    # a 'none' region: keeps the photo
    scaled, keep = masks.regions(m, [True, True, False])
    assert torch.allclose(scaled[:, 0, 0, 1], torch.tensor([0.5, 0.5, 0.0]))  # overlap shared
    assert torch.allclose(keep.flatten(), torch.tensor([0.0, 0.0, 0.5, 1.0]))


def test_mask_of_another_size_is_resized(tmp_path):
    path = _mask(tmp_path / "m.png", (10, 20), (0, 0, 0.5, 1))
    t = masks.mask_tensor(masks.load_mask(path), (64, 48))
    assert t.shape == (1, 1, 48, 64)
    assert t[..., :, :28].min() > 0.99 and t[..., :, 36:].max() < 0.01   # left half, soft in between


def test_bad_masks_are_clear_errors(tmp_path):
    text = tmp_path / "sky.txt"
    text.write_text("not an image")
    with pytest.raises(ImpastoError, match="sky.txt: not an image"):
        masks.load_mask(text)
    Image.new("L", (8, 8), 0).save(tmp_path / "black.png")
    with pytest.raises(ImpastoError, match="black.png: mask is empty"):
        masks.load_mask(tmp_path / "black.png")
    with pytest.raises(ImpastoError, match="missing.png: file not found"):
        masks.load_mask(tmp_path / "missing.png")
