"""Tests of impasto.net.vgg: the VGG-19 feature extractor on the real weights."""

import pytest
import torch

from impasto.net.vgg import LAYERS, VGG19


def test_layer_names():
    assert len(LAYERS) == 37
    assert sum(n.startswith("conv") for n in LAYERS) == 16
    assert sum(n.startswith("relu") for n in LAYERS) == 16
    assert [n for n in LAYERS if n.startswith("pool")] == ["pool1", "pool2", "pool3", "pool4", "pool5"]
    assert LAYERS[:5] == ("conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1")
    assert LAYERS[-3:] == ("conv5_4", "relu5_4", "pool5")


def test_shapes_and_truncation(vgg):
    calls = []
    hooks = [conv.register_forward_hook(lambda m, i, o, n=name: calls.append(n)) for name, conv in vgg.convs.items()]
    try:
        x = torch.rand(1, 3, 48, 64)
        out = vgg(x, ["relu1_1", "pool2", "conv4_2", "relu4_2"])
    finally:
        for h in hooks:
            h.remove()
    assert set(out) == {"relu1_1", "pool2", "conv4_2", "relu4_2"}
    assert out["relu1_1"].shape == (1, 64, 48, 64)
    assert out["pool2"].shape == (1, 128, 12, 16)
    assert out["relu4_2"].shape == (1, 512, 6, 8)
    assert torch.equal(out["relu4_2"], out["conv4_2"].relu())
    assert calls[-1] == "conv4_2" and "conv4_3" not in calls and len(calls) == 10


def test_frozen_and_gradient_reaches_pixels(vgg):
    assert all(not p.requires_grad for p in vgg.parameters())
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    vgg(x, ["relu2_1"])["relu2_1"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_caffe_preprocessing(vgg):
    x = torch.zeros(1, 3, 2, 2)
    x[:, 0] = 1.0  # pure red
    y = vgg.normalise(x)
    # BGR order, 0–255, minus the mean pixel (103.939, 116.779, 123.68)
    assert torch.allclose(y[0, :, 0, 0], torch.tensor([-103.939, -116.779, 255 - 123.68]))


def test_avg_and_max_pooling_differ():
    x = torch.rand(1, 3, 32, 32)
    avg = VGG19(pooling="avg")(x, ["pool1"])["pool1"]
    mx = VGG19(pooling="max")(x, ["pool1"])["pool1"]
    assert (mx >= avg - 1e-4).all() and not torch.allclose(mx, avg)


def test_bf16_and_fp32_give_nearly_equal_losses(small_images):
    """bf16 autocast for the network only (Grams and losses in fp32): the paper's losses within 3 %."""
    from impasto.image.imageio import load_image
    from impasto.loss.terms import Objective, content_targets, content_term, style_targets, style_term

    content = load_image(small_images["tubingen"], long_side=48)
    style = load_image(small_images["starry_night"], long_side=48)
    torch.manual_seed(0)
    x = (content + 0.1 * torch.randn_like(content)).clamp(0, 1)
    losses = {}
    for precision in ("fp32", "bf16"):
        net = VGG19().set_precision(precision, channels_last=True)
        terms = [content_term(content_targets(net, content, ["relu4_2"]), [1.0], 1.0),
                 style_term(style_targets(net, [style], [1.0], ["relu1_1", "relu3_1", "relu5_1"]), [1 / 3] * 3, 1e3)]
        losses[precision] = Objective(net, terms)(x)[1]
    for key in ("content", "style", "total"):
        assert losses["bf16"][key] == pytest.approx(losses["fp32"][key], rel=0.03), key  # measured: 0.3 %
    assert losses["bf16"]["total"] != losses["fp32"]["total"]  # bf16 really ran
