"""Winograd F(4×4, 3×3) and F(6×6, 3×3) convolution (Lavin & Gray 2015) against F.conv2d, and in the VGG-19."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from impasto.net import winograd
from impasto.net.weights import load_vgg19_weights
from impasto.net.winograd import WinogradConv2d, flipped_weight, pack_weight, transform_matrices, transform_weight, winograd_conv, winograd_conv2d


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest: small problems, one thread


def _rel(a, b):
    """‖a − b‖ / ‖b‖ (Frobenius)."""
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("tile", [4, 6])
def test_matrices_give_exact_1d_correlation(tile):
    """F(m, 3): Aᵀ[(G g) ⊙ (Bᵀ d)] equals the m-output correlation of an (m + 2)-vector with a 3-tap
    filter, for every basis pair (so the identity holds exactly, not just for one draw)."""
    bt, g, at = transform_matrices(torch.float64, tile=tile)
    eye_d, eye_k = torch.eye(tile + 2, dtype=torch.float64), torch.eye(3, dtype=torch.float64)
    for d in eye_d:
        for k in eye_k:
            ref = torch.stack([(d[i:i + 3] * k).sum() for i in range(tile)])
            assert torch.allclose(at @ ((g @ k) * (bt @ d)), ref, rtol=0, atol=1e-13)


@pytest.mark.parametrize("batch,height,width", [(1, 1, 1), (1, 2, 3), (1, 5, 7), (1, 9, 13), (2, 8, 12), (2, 5, 7)])
@pytest.mark.parametrize("with_bias", [False, True])
@pytest.mark.parametrize("tile", [4, 6])
def test_forward_matches_conv2d_float64(batch, height, width, with_bias, tile):
    torch.manual_seed(height * 100 + width)
    x = torch.randn(batch, 3, height, width, dtype=torch.float64)
    w = torch.randn(5, 3, 3, 3, dtype=torch.float64)
    b = torch.randn(5, dtype=torch.float64) if with_bias else None
    out = winograd_conv2d(x, transform_weight(w, tile), b)
    ref = F.conv2d(x, w, b, padding=1)
    assert out.shape == ref.shape and out.dtype == torch.float64
    assert _rel(out, ref) < 1e-10


def test_c_transforms_are_built():
    # setup.py builds them with the package (make installs a C compiler's output); without
    # them fp32 falls back to the PyTorch form, correct but slower.
    assert winograd._kernels is not None, "impasto.net._winograd did not build: is a C compiler installed?"


@pytest.mark.parametrize("batch,cin,cout,height,width", [(1, 3, 5, 1, 1), (1, 8, 16, 4, 4), (2, 13, 9, 5, 7),
                                                          (1, 64, 24, 9, 14), (2, 17, 3, 11, 6)])
@pytest.mark.parametrize("with_bias", [False, True])
def test_c_and_torch_transforms_match_conv2d_fp32(batch, cin, cout, height, width, with_bias):
    """The C transforms (F(6×6)) and the PyTorch ones (F(6×6) and F(4×4)), fp32, odd sizes and
    channel counts that are not a multiple of the C code's 8 lanes: within fp32 rounding of F.conv2d."""
    gen = torch.Generator().manual_seed(cin * 31 + width)
    x = torch.randn(batch, cin, height, width, generator=gen).contiguous(memory_format=torch.channels_last)
    w = torch.randn(cout, cin, 3, 3, generator=gen)
    b = torch.randn(cout, generator=gen) if with_bias else None
    ref = F.conv2d(x.double(), w.double(), b.double() if with_bias else None, padding=1)
    ours = winograd._conv_c(x, transform_weight(w, 6), b)
    assert ours.shape == ref.shape and ours.is_contiguous(memory_format=torch.channels_last)
    assert _rel(ours.double(), ref) < 1e-5
    for tile in (4, 6):
        assert _rel(winograd._conv_torch(x, transform_weight(w, tile), b).double(), ref) < 1e-5
    assert torch.equal(winograd_conv2d(x, transform_weight(w, 6), b), ours)  # fp32 on CPU: the C path


@pytest.mark.parametrize("batch,cin,cout,height,width", [(1, 3, 5, 1, 1), (1, 8, 16, 4, 4), (2, 13, 9, 5, 7),
                                                          (1, 64, 24, 9, 14), (2, 17, 33, 41, 29)])
@pytest.mark.parametrize("with_bias", [False, True])
def test_fused_c_path_matches_conv2d_fp32(batch, cin, cout, height, width, with_bias):
    """Transforms and products fused per block of tiles (U packed in 16-channel panels): odd sizes,
    channel counts off the 8 lanes and the 16-channel panels, tile counts off the 12-tile blocks (the
    last one 41×29 has 7·5 = 35 per image, two images)."""
    gen = torch.Generator().manual_seed(cin * 37 + width)
    x = torch.randn(batch, cin, height, width, generator=gen).contiguous(memory_format=torch.channels_last)
    w = torch.randn(cout, cin, 3, 3, generator=gen)
    b = torch.randn(cout, generator=gen) if with_bias else None
    ref = F.conv2d(x.double(), w.double(), b.double() if with_bias else None, padding=1)
    u = transform_weight(w, 6)
    ours = winograd._conv_fused(x, pack_weight(u), cout, b)
    assert ours.shape == ref.shape and ours.is_contiguous(memory_format=torch.channels_last)
    assert _rel(ours.double(), ref) < 1e-5
    assert torch.equal(winograd_conv2d(x, u, b, pack_weight(u)), ours)  # fp32 on CPU, packed: the fused path


def _raises(error, match, call, *args):
    with pytest.raises(error, match=match):
        call(*args)


def test_c_entry_points_check_their_arrays():
    """A wrong call of the C kernels (too small an array, another dtype or shape, a strided, read-only
    or missing one, a tensor instead of its .numpy()) raises instead of reading or writing past a buffer."""
    k = winograd._kernels
    assert k is not None, "impasto.net._winograd did not build"
    b, h, w, cin, cout = 2, 7, 9, 5, 20
    tiles = b * 2 * 2
    zeros = lambda *shape: np.zeros(shape, np.float32)
    x, mask, v = zeros(b, h, w, cin), zeros(b, h, w, cin), zeros(64, tiles, cin)
    m, y, bias, packed = zeros(64, tiles, cout), zeros(b, h, w, cout), zeros(cout), zeros(64, 2, cin, 16)
    # the right calls run
    k.input_transform(x, v, mask, b, h, w, cin, 1)
    k.output_transform(m, y, bias, b, h, w, cout, 1, True)
    k.fused_conv(x, y, packed, bias, None, b, h, w, cin, cout, 1, False)
    dims = (b, h, w, cin, 1)
    _raises(ValueError, "v has 2240 items where the dimensions given want 2560", k.input_transform,
            x, v[:, :-1].copy(), None, *dims)
    _raises(ValueError, "x has", k.input_transform, x, v, None, b, h + 6, w, cin, 1)  # another shape
    _raises(ValueError, "mask has", k.input_transform, x, v, mask[:1], *dims)
    _raises(TypeError, "x must be float32", k.input_transform, x.astype(np.float64), v, None, *dims)
    _raises(TypeError, "x must be a float32 array", k.input_transform, torch.from_numpy(x), v, None, *dims)
    _raises(TypeError, "v must be a float32 array", k.input_transform, x, None, None, *dims)
    _raises(ValueError, "x must be C-contiguous", k.input_transform, x.transpose(0, 2, 1, 3), v, None,
            b, w, h, cin, 1)
    v.flags.writeable = False
    _raises(ValueError, "v is written", k.input_transform, x, v, None, *dims)
    _raises(ValueError, "negative", k.input_transform, x, v, None, b, -h, w, cin, 1)
    _raises(ValueError, "too large", k.input_transform, x, v, None, b, h, w, 1 << 40, 1)
    _raises(ValueError, "m has", k.output_transform, m[:, :1].copy(), y, bias, b, h, w, cout, 1, False)
    _raises(ValueError, "y has", k.output_transform, m, y[:1], bias, b, h, w, cout, 1, False)
    _raises(ValueError, "bias has", k.output_transform, m, y, bias[:-1], b, h, w, cout, 1, False)
    fused = (b, h, w, cin, cout, 1, False)
    _raises(ValueError, "y has", k.fused_conv, x, y[..., :-1].copy(), packed, bias, None, *fused)
    _raises(ValueError, "packed has", k.fused_conv, x, y, packed[:, :1].copy(), bias, None, *fused)
    _raises(ValueError, "bias has", k.fused_conv, x, y, packed, bias[:3], None, *fused)
    _raises(ValueError, "mask has", k.fused_conv, x, y, packed, bias, mask[..., :1].copy(), *fused)
    _raises(TypeError, "packed must be float32", k.fused_conv, x, y, packed.astype(np.float16), bias, None, *fused)


def test_pack_weight_layout():
    """Panel p, input channel k, lane l holds U[·, k, 16 p + l]; lanes past Cout are zero."""
    u = torch.randn(64, 5, 20)
    packed = pack_weight(u)
    assert packed.shape == (64, 2, 5, 16)
    assert torch.equal(packed[:, 0], u[:, :, :16]) and torch.equal(packed[:, 1, :, :4], u[:, :, 16:])
    assert not packed[:, 1, :, 4:].any()


@pytest.mark.parametrize("path", ["c", "fused"])
def test_c_paths_give_the_same_answer_on_any_number_of_threads(path):
    x = torch.randn(2, 16, 23, 17).contiguous(memory_format=torch.channels_last)
    u, b = transform_weight(torch.randn(8, 16, 3, 3), 6), torch.randn(8)
    conv = (lambda: winograd._conv_c(x, u, b)) if path == "c" else (lambda: winograd._conv_fused(x, pack_weight(u), 8, b))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = conv()
        torch.set_num_threads(3)
        three = conv()
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, three)


@pytest.mark.parametrize("path", ["torch", "c", "fused"])
def test_relu_and_mask_inside_the_convolution(path):
    """``relu=True`` equals relu(conv(x)) and ``mask=y`` equals conv(x ⊙ [y > 0]), on every path."""
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2, 13, 11, 14, generator=gen).contiguous(memory_format=torch.channels_last)
    y = torch.randn(2, 13, 11, 14, generator=gen).contiguous(memory_format=torch.channels_last)
    w, b = torch.randn(20, 13, 3, 3, generator=gen), torch.randn(20, generator=gen)
    u = transform_weight(w, 6 if path != "torch" else 4)
    if path == "torch":
        u = u.double()
        x, y, w, b = x.double(), y.double(), w.double(), b.double()
    packed = pack_weight(u) if path == "fused" else None
    pre = F.conv2d(x.double(), w.double(), b.double(), padding=1)
    mask_ref = F.conv2d((x * (y > 0)).double(), w.double(), b.double(), padding=1)
    relu_out = winograd_conv2d(x, u, b, packed, relu=True)
    mask_out = winograd_conv2d(x, u, b, packed, mask=y)
    assert _rel(relu_out.double(), pre.relu()) < 1e-5 and _rel(mask_out.double(), mask_ref) < 1e-5
    assert (relu_out[pre < -1e-3] == 0).all() and (relu_out[pre > 1e-3] > 0).all()  # zero exactly, not ≈
    if path != "torch":  # a NaN goes through, as torch.relu and its gradient let it
        bad = x.clone()
        bad[0, :, 5, 5] = float("nan")
        assert winograd_conv2d(bad, u, b, packed, relu=True)[0, :, 5, 5].isnan().all()
        nan_mask, keep_mask = y.clone(), y.clone()
        nan_mask[1, :, 3, 4], keep_mask[1, :, 3, 4] = float("nan"), 1.0
        assert torch.equal(winograd_conv2d(x, u, b, packed, mask=nan_mask),
                           winograd_conv2d(x, u, b, packed, mask=keep_mask))  # a NaN in the mask keeps x there


def test_conv_relu_gradient_against_autograd():
    """The fused conv + ReLU Function: its input gradient (the ReLU's mask applied in the backward
    convolution's input transform) equals autograd of relu(F.conv2d), fp32 through the fused C path
    and float64 (gradcheck) through the PyTorch one."""
    torch.manual_seed(3)
    w, b = torch.randn(24, 16, 3, 3), torch.randn(24)
    module = WinogradConv2d(torch.nn.Conv2d(16, 24, 3, padding=1).requires_grad_(False))
    module.u.copy_(transform_weight(w, module.tile))
    module.u_back.copy_(transform_weight(flipped_weight(w), module.tile))
    module.packed.copy_(pack_weight(module.u))
    module.packed_back.copy_(pack_weight(module.u_back))
    module.bias.copy_(b)
    x = torch.randn(1, 16, 19, 23).contiguous(memory_format=torch.channels_last).requires_grad_()
    r = torch.randn(1, 24, 19, 23)
    (ours,) = torch.autograd.grad(module(x, relu=True), x, r)
    (ref,) = torch.autograd.grad(F.conv2d(x, w, b, padding=1).relu(), x, r)
    assert _rel(ours, ref) < 1e-5
    w64, b64 = w[:4, :3].double(), b[:4].double()
    u, u_back = transform_weight(w64, 4), transform_weight(flipped_weight(w64), 4)
    x64 = torch.randn(2, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: winograd_conv(t, u, u_back, b64, relu=True), (x64,))


def test_fused_path_by_layer_size():
    """The fused C path for layers up to FUSED_MAX_WEIGHTS (U stays in cache), the batched product above."""
    small = WinogradConv2d(torch.nn.Conv2d(64, 128, 3, padding=1))
    large = WinogradConv2d(torch.nn.Conv2d(256, 256, 3, padding=1))
    assert small.packed is not None and small.packed_back is not None and "fused" in repr(small)
    assert large.packed is None and large.packed_back is None


def test_channels_last_and_contiguous_inputs_agree():
    x = torch.randn(1, 4, 10, 6, dtype=torch.float64)
    w = torch.randn(6, 4, 3, 3, dtype=torch.float64)
    u = transform_weight(w)
    a = winograd_conv2d(x, u)
    b = winograd_conv2d(x.contiguous(memory_format=torch.channels_last), u)
    assert torch.equal(a, b)


def test_flipped_kernel_gives_input_gradient():
    """∂/∂x ⟨conv(x, g), r⟩ = conv(r, rot180(g) with in/out swapped), padding 1."""
    x = torch.randn(1, 3, 6, 5, dtype=torch.float64, requires_grad=True)
    w, r = torch.randn(4, 3, 3, 3, dtype=torch.float64), torch.randn(1, 4, 6, 5, dtype=torch.float64)
    (grad,) = torch.autograd.grad(F.conv2d(x, w, padding=1), x, r)
    assert _rel(F.conv2d(r, flipped_weight(w), padding=1), grad) < 1e-12


@pytest.mark.parametrize("tile", [4, 6])
def test_gradcheck_float64(tile):
    torch.manual_seed(0)
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    b = torch.randn(4, dtype=torch.float64)
    u, u_back = transform_weight(w, tile), transform_weight(flipped_weight(w), tile)
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: winograd_conv(t, u, u_back, b), (x,))


def test_module_from_conv_and_dtype_move():
    conv = torch.nn.Conv2d(3, 4, 3, padding=1).double()
    module = WinogradConv2d(conv)
    x = torch.randn(1, 3, 7, 9, dtype=torch.float64)
    ref = F.conv2d(x, conv.weight, conv.bias, padding=1)
    assert module.u.dtype == torch.float64 and _rel(module(x), ref) < 1e-10
    module.float()  # buffers move with the module
    assert module.u.dtype == module.u_back.dtype == module.bias.dtype == torch.float32
    assert _rel(module(x.float()), ref.float()) < 1e-5
    assert module.state_dict() == {}
    with pytest.raises(ValueError):
        WinogradConv2d(torch.nn.Conv2d(3, 4, 3, padding=1, stride=2))


@pytest.fixture(scope="module")
def vgg_weights():
    return load_vgg19_weights()


def test_every_vgg_layer_fp32(vgg_weights):
    """Real weights and channel counts, fp32, 20×27 (27 is not a whole number of 4-wide tiles, neither side of 6-wide ones):
    forward and input gradient within 1e-4 of F.conv2d, as ‖diff‖ / ‖ref‖ (Frobenius, relative)."""
    torch.manual_seed(0)
    for name, (weight, bias) in vgg_weights.items():
        cout, cin = weight.shape[:2]
        conv = torch.nn.Conv2d(cin, cout, 3, padding=1)
        conv.weight.data.copy_(weight)
        conv.bias.data.copy_(bias)
        conv.requires_grad_(False)
        wino = WinogradConv2d(conv)
        scale = 1.0 if cin == 3 else 10.0  # activations of VGG layers are O(1–100)
        x = (torch.rand(1, cin, 20, 27) * scale).contiguous(memory_format=torch.channels_last).requires_grad_()
        r = torch.randn(1, cout, 20, 27)
        ref = conv(x)
        out = wino(x)
        assert _rel(out, ref) <= 1e-4, name
        (g_ref,) = torch.autograd.grad(ref, x, r)
        (g_out,) = torch.autograd.grad(out, x, r)
        assert _rel(g_out, g_ref) <= 1e-4, name


def test_vgg_winograd_matches_direct(vgg):
    layers = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    torch.manual_seed(1)
    image = torch.rand(1, 3, 40, 52)
    results = {}
    for mode in ("direct", "winograd", "auto"):
        vgg.set_convolution(mode)
        x = image.clone().requires_grad_()
        feats = vgg(x, layers)
        loss = sum(f.square().mean() for f in feats.values())
        (grad,) = torch.autograd.grad(loss, x)
        results[mode] = ({k: v.detach() for k, v in feats.items()}, grad)
    vgg.set_convolution("direct")
    for mode in ("winograd", "auto"):
        feats, grad = results[mode]
        for name in layers:
            assert _rel(feats[name], results["direct"][0][name]) < 1e-4, (mode, name)
        assert _rel(grad, results["direct"][1]) < 1e-4, mode


def test_vgg_relu_inside_winograd_only_where_the_convolution_output_is_not_asked_for(vgg):
    """conv2_2 asked for: it runs plain and relu2_2 after it, exactly its ReLU; relu3_1 (from conv3_1
    with the ReLU inside the Winograd kernels) matches the direct network."""
    x = torch.rand(1, 3, 28, 36)
    layers = ["conv2_2", "relu2_2", "relu3_1"]
    try:
        auto = vgg.set_convolution("auto")(x, layers)
        direct = vgg.set_convolution("direct")(x, layers)
    finally:
        vgg.set_convolution("direct")
    assert torch.equal(auto["relu2_2"], auto["conv2_2"].relu())
    assert auto["conv2_2"].min() < 0  # a real pre-activation, not a ReLU output
    assert _rel(auto["relu3_1"], direct["relu3_1"]) < 1e-4


def test_set_convolution_choices(vgg):
    from impasto.errors import ImpastoError

    vgg.set_convolution("auto")
    assert "conv1_1" not in vgg.winograd
    assert {"conv3_1", "conv4_2", "conv5_4"} <= set(vgg.winograd)
    vgg.set_convolution("winograd")
    assert set(vgg.winograd) == set(vgg.convs)
    vgg.set_convolution("direct")
    assert len(vgg.winograd) == 0
    with pytest.raises(ImpastoError):
        vgg.set_convolution("fft")


def test_auto_rule_by_vector_unit_and_transforms():
    from impasto.net.vgg import auto_winograd

    # With the C kernels every layer but conv1_1, on AVX2 and AVX-512; with the PyTorch transforms
    # from conv2_2 (128 -> 128) on AVX2 and from conv3_1 on AVX-512.
    assert auto_winograd(64, 64, "AVX2", True) and not auto_winograd(3, 64, "AVX2", True)
    assert auto_winograd(64, 64, "AVX512", True) and not auto_winograd(3, 64, "AVX512", True)
    assert auto_winograd(128, 128, "AVX2", False) and not auto_winograd(64, 128, "AVX2", False)
    assert auto_winograd(128, 256, "AVX512", False) and not auto_winograd(128, 128, "AVX512", False)
    assert auto_winograd(64, 64, "DEFAULT", True) and not auto_winograd(64, 64, "DEFAULT", False)


def test_bf16_runs_direct(vgg):
    vgg.set_convolution("winograd").set_precision("bf16")
    try:
        out = vgg(torch.rand(1, 3, 16, 16), ["relu2_1"])["relu2_1"]
        assert out.dtype == torch.bfloat16
    finally:
        vgg.set_precision("fp32").set_convolution("direct")
