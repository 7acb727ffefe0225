"""The fast networks' pass on planar float32 images (impasto.fast.planar, C kernels in
impasto.fast._transform) against PyTorch: each kernel on hand-made shapes (row tails, channel groups,
padding, upsampling, the residual shortcut), the whole network and its two halves against the
module's forward, and the runners using it."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from impasto.fast import planar
from impasto.fast.network import ConvNormReLU, TransformNet
from impasto.fast.runner import TorchRunner
from impasto.fast.model import FastModel

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_kernels_were_built():
    assert planar.available(), "impasto.fast._transform did not build: is a C compiler installed?"


def test_pack_weight_by_hand():
    w = torch.arange(5 * 2 * 1 * 1, dtype=torch.float32).view(5, 2, 1, 1)  # w[o, c] = 2 o + c
    packed = planar.pack_weight(w, 4)
    assert packed.shape == (2, 2, 1, 1, 4)
    assert packed[0, 1, 0, 0].tolist() == [1, 3, 5, 7]        # group 0, input channel 1: outputs 0-3
    assert packed[1, 0, 0, 0].tolist() == [8, 0, 0, 0]        # group 1: output 4, then zero padding


@pytest.mark.parametrize("cin,cout,kernel,height,width", [
    (3, 8, 9, 5, 40),    # two groups of 4, rows of 5 vectors: blocks of 3, one single, no tail
    (8, 3, 9, 3, 23),    # groups of 3 (RGB), a 7-pixel tail
    (16, 8, 3, 4, 1),    # one pixel per row
    (2, 5, 3, 3, 33),    # 5 channels: a group of 4 and one zero-padded
    (1, 16, 3, 2, 8),
    (4, 4, 1, 3, 10),
])
def test_conv_matches_pytorch(cin, cout, kernel, height, width):
    g = torch.Generator().manual_seed(cin * 100 + cout)
    x = torch.randn(cin, height + kernel - 1, width + kernel - 1, generator=g)
    weight, bias = torch.randn(cout, cin, kernel, kernel, generator=g), torch.randn(cout, generator=g)
    conv = torch.nn.Conv2d(cin, cout, kernel)
    with torch.no_grad():
        conv.weight.copy_(weight), conv.bias.copy_(bias)
    ours = planar.Conv(conv)
    assert ours.c_kernel
    expected = F.conv2d(x[None].double(), weight.double(), bias.double())[0].float()
    # sums of up to 243 products of order 1, accumulated in float32 in another order
    torch.testing.assert_close(ours(x), expected, rtol=1e-5, atol=1e-4)


def test_conv_with_many_outputs_or_a_stride_is_pytorchs():
    assert not planar.Conv(torch.nn.Conv2d(8, 32, 3)).c_kernel
    assert not planar.Conv(torch.nn.Conv2d(8, 8, 3, stride=2)).c_kernel


def _raises(error, match, call, *args):
    with pytest.raises(error, match=match):
        call(*args)


def test_c_entry_points_check_their_arrays():
    """A wrong call of the C kernels (too small an array, another dtype or shape, a strided or missing
    one, a tensor instead of its .numpy(), impossible sizes) raises instead of reading or writing past
    a buffer."""
    k = planar._kernels
    assert k is not None, "impasto.fast._transform did not build"
    zeros = lambda *shape: np.zeros(shape, np.float32)
    c, o, kernel, h, w = 3, 5, 3, 4, 10                   # 5 outputs: groups of 4, the second zero-padded
    x, y, packed, bias = zeros(c, h + 2, w + 2), zeros(o, h, w), zeros(2, c, kernel, kernel, 4), zeros(8)
    k.conv(x, y, packed, bias, c, o, kernel, h, w, 4, 1)  # the right call runs
    dims = (c, o, kernel, h, w, 4, 1)
    _raises(ValueError, "x has 60 items where the dimensions given want 216", k.conv,
            x[:, :2, :10].copy(), y, packed, bias, *dims)
    _raises(ValueError, "y has", k.conv, x, y[:4], packed, bias, *dims)
    _raises(ValueError, "w has", k.conv, x, y, packed[:1], bias, *dims)
    _raises(ValueError, "bias has", k.conv, x, y, packed, bias[:5], *dims)  # the packed bias has 8
    _raises(ValueError, "x has 216 items where the dimensions given want 252", k.conv, x, y, packed, bias,
            c, o, kernel, h + 1, w, 4, 1)  # another shape
    _raises(TypeError, "y must be float32", k.conv, x, y.astype(np.float64), packed, bias, *dims)
    _raises(TypeError, "x must be a float32 array", k.conv, torch.from_numpy(x), y, packed, bias, *dims)
    _raises(TypeError, "bias must be a float32 array", k.conv, x, y, packed, None, *dims)
    _raises(ValueError, "x must be C-contiguous", k.conv, x[:, :, ::-1], y, packed, bias, *dims)
    _raises(ValueError, "3 or 4", k.conv, x, y, packed, bias, c, o, kernel, h, w, 8, 1)
    _raises(ValueError, "kernel size", k.conv, x, y, packed, bias, c, o, 0, h, w, 4, 1)

    up, pad, eps = 2, 1, 1e-5
    src, gamma, beta, skip = zeros(c, h, w), zeros(c), zeros(c), zeros(c, h + 4, w + 4)
    out = zeros(c, up * h + 2 * pad, up * w + 2 * pad)
    k.norm(src, out, gamma, beta, skip, c, h, w, up, pad, 2, True, eps, 1)  # the right calls run
    k.norm(src, out, None, None, None, c, h, w, up, pad, 0, False, eps, 1)
    dims = (c, h, w, up, pad, 2, True, eps, 1)
    _raises(ValueError, "y has", k.norm, src, out[:, :-1].copy(), gamma, beta, skip, *dims)
    _raises(ValueError, "y has", k.norm, src, out, gamma, beta, skip, c, h, w, 1, pad, 2, True, eps, 1)  # not upsampled
    _raises(ValueError, "gamma has", k.norm, src, out, gamma[:2], beta, skip, *dims)
    _raises(TypeError, "beta must be a float32 array", k.norm, src, out, gamma, None, skip, *dims)  # gamma wants a beta
    _raises(ValueError, "skip has", k.norm, src, out, gamma, beta, skip[:, 1:-1, 1:-1].copy(), *dims)
    _raises(TypeError, "x must be float32", k.norm, src.astype(np.float64), out, gamma, beta, skip, *dims)
    _raises(ValueError, "up must be 1 or 2", k.norm, src, out, gamma, beta, skip, c, h, w, 3, pad, 2, True, eps, 1)
    _raises(ValueError, "padding smaller", k.norm, src, out, gamma, beta, skip, c, h, w, 1, h, 2, True, eps, 1)
    _raises(ValueError, "negative", k.norm, src, out, gamma, beta, skip, c, h, w, up, pad, -1, True, eps, 1)


def reference_norm(y, gamma, beta, relu, pad, up, skip=None):
    out = F.instance_norm(y[None], weight=gamma, bias=beta, eps=1e-5)
    if skip is not None:
        out = out + skip[None]
    if relu:
        out = F.relu(out)
    if up > 1:
        out = F.interpolate(out, scale_factor=float(up), mode="nearest")
    return F.pad(out, (pad,) * 4, mode="reflect")[0] if pad else out[0]


def layer_with_styles(c: int, relu: bool, g: torch.Generator) -> ConvNormReLU:
    """A conv-norm layer of two styles whose scales and shifts differ (only its norm is used)."""
    layer = ConvNormReLU(c, c, 3, styles=2, relu=relu)
    with torch.no_grad():
        layer.norm.scale.copy_(torch.randn(2, c, generator=g)), layer.norm.shift.copy_(torch.randn(2, c, generator=g))
    return layer


@pytest.mark.parametrize("relu,pad,up,with_skip", [
    (True, 1, 1, False), (False, 4, 1, False), (True, 1, 2, False), (False, 0, 1, True), (False, 1, 2, True),
    (True, 3, 2, False)])
def test_norm_matches_pytorch(relu, pad, up, with_skip):
    g = torch.Generator().manual_seed(pad * 10 + up)
    c, h, w = 5, 6, 9
    y = torch.randn(c, h, w, generator=g) * 3 + 2
    layer = layer_with_styles(c, relu, g)
    mix = torch.tensor([0.25, 0.75])
    gamma, beta = (mix @ layer.norm.scale).detach(), (mix @ layer.norm.shift).detach()
    skip, skip_buffer = None, None
    if with_skip:
        skip = torch.randn(c, h, w, generator=g)
        skip_buffer = F.pad(skip[None], (2,) * 4, mode="reflect")[0].contiguous()  # padded by 2, as a buffer
    out = planar.norm(layer, y, mix, pad, up, (skip_buffer, 2) if with_skip else None)
    torch.testing.assert_close(out, reference_norm(y, gamma, beta, relu, pad, up, skip), rtol=1e-5, atol=1e-5)


def test_norm_without_a_layer_only_upsamples_and_pads():
    y = torch.arange(2 * 3 * 4, dtype=torch.float32).view(2, 3, 4)
    out = planar.norm(None, y, torch.ones(1), 1, 2, None)
    expected = F.pad(F.interpolate(y[None], scale_factor=2.0, mode="nearest"), (1,) * 4, mode="reflect")[0]
    assert torch.equal(out, expected)


@pytest.mark.parametrize("width,styles,shape", [(0.25, 1, (1, 3, 36, 52)), (0.25, 2, (1, 3, 37, 53)),
                                                  (0.5, 3, (1, 3, 8, 9)), (1.0, 1, (1, 3, 20, 16))])
def test_planar_pass_matches_the_module(width, styles, shape):
    torch.manual_seed(int(width * 8) + styles)
    net = TransformNet(width, styles).eval()
    with torch.no_grad():  # untrained norms are the identity: give them scales and shifts to apply
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    image, mix = torch.rand(shape), torch.softmax(torch.randn(styles), 0)
    fast = planar.PlanarNet(net)
    with torch.no_grad():
        expected = net(image, mix)
        features = net.encode(image, mix)
    torch.testing.assert_close(fast(image, mix), expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fast.encode(image, mix), features, rtol=1e-4, atol=1e-4)  # features of order 1-10
    torch.testing.assert_close(fast.decode(features, shape[-2:], mix), expected, rtol=1e-4, atol=1e-5)


def test_the_fp32_cpu_runner_uses_the_planar_pass():
    torch.manual_seed(0)
    net = TransformNet(0.25, 1).eval()
    runner = TorchRunner(FastModel(net, ["s"]), "fp32", "cpu")
    assert runner.planar is not None
    image, mix = torch.rand(1, 3, 24, 30), torch.ones(1)
    with torch.no_grad():
        expected = net(image, mix).clamp(0, 1)
    torch.testing.assert_close(runner(image, mix), expected, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(runner.decode(runner.encode(image, mix), (24, 30), mix), expected, rtol=1e-4, atol=1e-5)
    batch = torch.rand(2, 3, 24, 30)  # batches go through the module
    with torch.no_grad():
        torch.testing.assert_close(runner(batch, mix), net(batch, mix).clamp(0, 1), rtol=1e-4, atol=1e-5)
