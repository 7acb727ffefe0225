"""Tests of impasto.gatys.targets: per-style layers, scales and masks pick each style's Gram targets (issue 5)."""

import torch
from PIL import Image

from conftest import _mask
from impasto import TransferConfig
from impasto.gatys import inputs, targets
from impasto.image.imageio import resize_to_tensor
from impasto.loss import losses


FAST = dict(size=32, precision="fp32", device="cpu")


def test_style_layers_for_and_scales_pick_each_style_targets(small_images, vgg):
    a, b = small_images["starry_night"], small_images["kandinsky"]
    config = TransferConfig(**FAST, style_scales=(1.0, 0.5),
                            style_layers_for=(("starry_night.png", "relu1_1,relu2_1"), ("2", ("relu3_1", "relu4_1"))))
    plan = inputs.prepare(config, small_images["tubingen"], [a, b])
    style = targets.scale_style_targets(vgg, config, plan, 48, (48, 36))
    assert list(style.targets) == ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]
    assert style.weights == [0.25] * 4
    feats_a = vgg(resize_to_tensor(Image.open(a), long_side=48), ["relu1_1"])
    feats_b = vgg(resize_to_tensor(Image.open(b), long_side=24), ["relu3_1"])   # measured at half size
    assert torch.allclose(style.targets["relu1_1"], losses.gram(feats_a["relu1_1"], normalise=True))
    assert torch.allclose(style.targets["relu3_1"], losses.gram(feats_b["relu3_1"], normalise=True))


def test_style_mask_picks_its_part_of_the_style_image(small_images, vgg, tmp_path):
    a, b = Image.open(small_images["starry_night"]), Image.open(small_images["kandinsky"]).resize((64, 40))
    both = Image.new("RGB", (128, 40))
    both.paste(a.resize((64, 40)), (0, 0))
    both.paste(b, (64, 0))
    both.save(tmp_path / "both.png")
    left = _mask(tmp_path / "left.png", (128, 40), (0, 0, 0.5, 1))
    config = TransferConfig(**FAST, style_layers=("relu1_1", "relu2_1"), style_masks=(str(left),))
    plan = inputs.prepare(config, a, [tmp_path / "both.png"])
    got = targets.style_grams(vgg, plan, 0, 128)
    for l in config.style_layers:
        own = {name: losses.gram(vgg(resize_to_tensor(img, size=(64, 40)), [l])[l], normalise=True) for name, img in
               (("a", a), ("b", b))}
        assert (got[l] - own["a"]).norm() < (got[l] - own["b"]).norm() / 2
