"""Masks and guided Gram matrices (impasto.masks) against hand-computed values (issue 5)."""

import pytest
import torch
from PIL import Image

from conftest import _mask
from impasto import ImpastoError
from impasto.loss import losses
from impasto.loss import guided
from impasto.image import masks


# ---------------------------------------------------------------- masks and guided Gram matrices

def test_guided_gram_by_hand():
    # F = [[1, 2, 3], [4, 5, 6]] over M = 3 positions; mask (1, 0, 1): G = Σ over positions 0 and 2 / 2
    f = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]).view(1, 2, 1, 3)
    t = torch.tensor([1.0, 0.0, 1.0]).view(1, 1, 1, 3)
    expected = torch.tensor([[1 + 9, 4 + 18], [4 + 18, 16 + 36]]) / 2.0
    assert torch.allclose(guided.guided_gram(f, t), expected)
    ones = torch.ones(1, 1, 1, 3)
    assert torch.allclose(guided.guided_gram(f, ones), losses.gram(f, normalise=True))
    target = torch.rand(2, 2)
    assert torch.allclose(guided.guided_style_loss(f, ones, target), losses.style_layer_loss(f, target))


def test_layer_masks_have_every_feature_map_size(vgg):
    image = torch.rand(1, 3, 37, 45)  # odd sizes: floored at every pooling
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_2", "relu5_1", "pool2", "pool5"]
    feats = vgg(image, layers)
    mask = torch.ones(1, 1, 37, 45)
    for name in layers:
        assert guided.layer_mask(mask, name).shape[-2:] == feats[name].shape[-2:], name


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
