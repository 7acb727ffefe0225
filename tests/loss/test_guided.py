"""Tests of impasto.loss.guided: guided Gram matrices and per-layer masks against hand-computed values (issue 5)."""

import torch

from impasto.loss import guided, losses


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
