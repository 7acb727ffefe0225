"""Winograd convolution for the frozen VGG-19 (Lavin & Gray 2015, arXiv 1509.09308).

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", section 4, the nested 2-D form::

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A

computes an m×m output tile ``Y`` of a 3×3 correlation from an α×α input tile ``d`` (α = m + 2) with
α² instead of 9m² multiplies; summing over input channels *before* the output transform (ibid.)
turns the α² element-wise products into α² matrix products ``M_ξν = U_ξν V_ξν``. Two tile sizes:

- F(6×6, 3×3), α = 8: 64 products per 36 outputs (1.78 per output, against 9 for the direct
  convolution), the tile transforms in C (:mod:`impasto.net._winograd`, built with the package); used
  for fp32 on CPU wherever that module exists. Its matrices are those of the interpolation points
  0, ±1, ±2, ±1/2, ∞ (the Toom-Cook construction of the paper's section 4, as NNPACK uses them);
  fp32 error measured about 2e-6 relative on VGG-19's layers (tests: ≤ 1e-4).
- F(4×4, 3×3), α = 6: 36 per 16 (2.25), points 0, ±1, ±2, ∞, the matrices printed in the paper;
  its transforms written as single GEMMs with the Kronecker matrices ``Bᵀ⊗Bᵀ`` and ``Aᵀ⊗Aᵀ``
  (``vec(P X Q) = (Qᵀ⊗P) vec(X)``) in PyTorch: the form used where the C module did not build (and
  for float64). The PyTorch form runs either tile size; the C one F(6×6, 3×3).

The weights are frozen, so ``U = G g Gᵀ`` (the filter transform) is computed once. The input gradient
of a stride-1 padding-1 3×3 correlation is itself one, with the kernel flipped spatially and its
in/out channels swapped (``∂L/∂x = conv(∂L/∂y, rot180(g)ᵀ)``), so the backward pass runs the same
routine with that kernel's own pre-transformed ``U′``.

Layout: tensors are handled as NHWC (channels last) internally, which is what ``VGG19`` runs in;
the output is returned channels-last. The 36 or 64 products are ``V (T×C) @ U (C×Cout)`` per point.
"""

from __future__ import annotations

import torch
from torch import nn

try:  # the tile transforms in C, built with the package where a C compiler was found (setup.py)
    from . import _winograd as _kernels
except ImportError:  # pragma: no cover - depends on the installation
    _kernels = None

# F(4×4, 3×3), interpolation points 0, ±1, ±2, ∞: Bᵀ, G, Aᵀ as printed in Lavin & Gray 2015, section 4.
F4_MATRICES = (
    ((4, 0, -5, 0, 1, 0),
     (0, -4, -4, 1, 1, 0),
     (0, 4, -4, -1, 1, 0),
     (0, -2, -1, 2, 1, 0),
     (0, 2, -1, -2, 1, 0),
     (0, 4, 0, -5, 0, 1)),
    ((1 / 4, 0, 0),
     (-1 / 6, -1 / 6, -1 / 6),
     (-1 / 6, 1 / 6, -1 / 6),
     (1 / 24, 1 / 12, 1 / 6),
     (1 / 24, -1 / 12, 1 / 6),
     (0, 0, 1)),
    ((1, 1, 1, 1, 1, 0),
     (0, 1, -1, 2, -2, 0),
     (0, 1, 1, 4, 4, 0),
     (0, 1, -1, 8, -8, 1)),
)
# F(6×6, 3×3), points 0, −1, 1, 1/2, −1/2, 2, −2, ∞ in G's and Aᵀ's columns (Aᵀ[i, j] = p_jⁱ,
# G's rows ∝ (1, p, p²)); Bᵀ completes the Toom-Cook identity (checked exactly in the tests).
F6_MATRICES = (
    ((1, 0, -21 / 4, 0, 21 / 4, 0, -1, 0),
     (0, 1, 1, -17 / 4, -17 / 4, 1, 1, 0),
     (0, -1, 1, 17 / 4, -17 / 4, -1, 1, 0),
     (0, 1 / 2, 1 / 4, -5 / 2, -5 / 4, 2, 1, 0),
     (0, -1 / 2, 1 / 4, 5 / 2, -5 / 4, -2, 1, 0),
     (0, 2, 4, -5 / 2, -5, 1 / 2, 1, 0),
     (0, -2, 4, 5 / 2, -5, -1 / 2, 1, 0),
     (0, -1, 0, 21 / 4, 0, -21 / 4, 0, 1)),
    ((1, 0, 0),
     (-2 / 9, -2 / 9, -2 / 9),
     (-2 / 9, 2 / 9, -2 / 9),
     (1 / 90, 1 / 45, 2 / 45),
     (1 / 90, -1 / 45, 2 / 45),
     (32 / 45, 16 / 45, 8 / 45),
     (32 / 45, -16 / 45, 8 / 45),
     (0, 0, 1)),
    ((1, 1, 1, 1, 1, 1, 1, 0),
     (0, 1, -1, 2, -2, 1 / 2, -1 / 2, 0),
     (0, 1, 1, 4, 4, 1 / 4, 1 / 4, 0),
     (0, 1, -1, 8, -8, 1 / 8, -1 / 8, 0),
     (0, 1, 1, 16, 16, 1 / 16, 1 / 16, 0),
     (0, 1, -1, 32, -32, 1 / 32, -1 / 32, 1)),
)
MATRICES = {4: F4_MATRICES, 6: F6_MATRICES}  # output tile m -> (Bᵀ, G, Aᵀ); input tile α = m + 2
C_TILE = 6  # the tile the C transforms compute
PANEL = 16  # output channels per panel of the fused path's packed U (NR in _winograd.c)
# The fused C path (transforms and products per block of tiles, no full-size V and M in memory) for
# layers with Cin·Cout up to this; above it U no longer stays in cache between blocks and the batched
# matrix multiply wins. Measured at 1024×768 on AVX2 kernels, fused against unfused, forward:
# 64→64 1.69×, 64→128 and 128→64 2.0×, 128→128 1.56×, 128→256 and 256→128 1.27×, 256→256 1.08×,
# 512→512 0.72×.
FUSED_MAX_WEIGHTS = 128 * 256


def c_transforms() -> bool:
    """Whether the C tile transforms (:mod:`impasto.net._winograd`) were built and are used for fp32 on CPU."""
    return _kernels is not None


def default_tile() -> int:
    """The output tile :class:`WinogradConv2d` uses: F(6×6) where the C transforms exist, else F(4×4)."""
    return C_TILE if c_transforms() else 4


def fused(cin: int, cout: int) -> bool:
    """Whether a ``cin → cout`` layer runs the fused C path (where the C module exists)."""
    return c_transforms() and cin * cout <= FUSED_MAX_WEIGHTS


def pack_weight(u: torch.Tensor) -> torch.Tensor:
    """``U (α², Cin, Cout)`` as the fused path reads it: ``(α², ⌈Cout/16⌉, Cin, 16)``, zero-padded panels."""
    points, cin, cout = u.shape
    panels = -(-cout // PANEL)
    padded = u.new_zeros((points, cin, panels * PANEL))
    padded[:, :, :cout] = u
    return padded.view(points, cin, panels, PANEL).permute(0, 2, 1, 3).contiguous()


def transform_matrices(dtype=torch.float64, device=None, tile: int = 4):
    """``(Bᵀ, G, Aᵀ)`` of F(tile×tile, 3×3) as tensors of ``dtype`` (α×α, α×3, tile×α; α = tile + 2)."""
    kw = dict(dtype=dtype, device=device)
    return tuple(torch.tensor(rows, **kw) for rows in MATRICES[tile])


def _tile_of(u: torch.Tensor) -> int:
    """The output tile of transformed weights ``u`` (α², Cin, Cout)."""
    return {36: 4, 64: 6}[u.shape[0]]


_KRON_CACHE: dict = {}


def _kron_matrices(dtype, device, tile: int):
    """``(Bᵀ⊗Bᵀ, Aᵀ⊗Aᵀ)``: α²×α² and tile²×α², cached per dtype, device and tile."""
    key = (dtype, device, tile)
    if key not in _KRON_CACHE:
        bt, _, at = transform_matrices(torch.float64, tile=tile)
        _KRON_CACHE[key] = (torch.kron(bt, bt).to(dtype=dtype, device=device).contiguous(),
                            torch.kron(at, at).to(dtype=dtype, device=device).contiguous())
    return _KRON_CACHE[key]


def transform_weight(weight: torch.Tensor, tile: int = 4) -> torch.Tensor:
    """``U = G g Gᵀ`` for a ``(Cout, Cin, 3, 3)`` kernel, laid out ``(α², Cin, Cout)`` (α = tile + 2).

    Computed in float64 and returned in the weight's dtype (Lavin & Gray: the filter transform).
    """
    cout, cin, kh, kw = weight.shape
    if (kh, kw) != (3, 3):
        raise ValueError(f"Winograd F({tile}x{tile},3x3) needs a 3x3 kernel, got {kh}x{kw}")
    _, g, _ = transform_matrices(torch.float64, weight.device, tile)
    alpha = tile + 2
    u = torch.empty((alpha, alpha, cin, cout), dtype=weight.dtype, device=weight.device)
    for start in range(0, cout, 32):  # in slices: small float64 temporaries (fresh pages are slow)
        part = weight[start:start + 32].double()
        # U[a, b] = Σ_kl G[a, k] g[k, l] G[b, l]: two GEMMs over the last axes, giving (o, i, b, a).
        part = torch.tensordot(torch.tensordot(part, g, dims=([3], [1])), g, dims=([2], [1]))
        u[:, :, :, start:start + 32] = part.permute(3, 2, 1, 0)
    return u.view(alpha * alpha, cin, cout)


def flipped_weight(weight: torch.Tensor) -> torch.Tensor:
    """Kernel whose stride-1 padding-1 correlation is the input gradient: rot180, in/out swapped."""
    return weight.flip(-1, -2).transpose(0, 1).contiguous()


_WORKSPACE: dict = {}


def _buffer(role: str, numel: int, dtype, device) -> torch.Tensor:
    """A reused flat scratch buffer: large fresh allocations cost page faults on every call
    (measured: 220 -> 120 ms on a 64-channel 384×512 layer), so the intermediates live here."""
    key = (role, dtype, device)
    buf = _WORKSPACE.get(key)
    if buf is None or buf.numel() < numel:
        _WORKSPACE.pop(key, None)
        buf = _WORKSPACE[key] = torch.empty(numel, dtype=dtype, device=device)
    return buf[:numel]


def clear_workspace() -> None:
    """Free the scratch buffers (they grow to the largest layer seen, plus one padded input per shape)."""
    _WORKSPACE.clear()


def winograd_conv2d(x: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None = None,
                    packed: torch.Tensor | None = None, relu: bool = False,
                    mask: torch.Tensor | None = None) -> torch.Tensor:
    """3×3 stride-1 padding-1 correlation of ``x (B, C, H, W)`` with pre-transformed ``u (α², C, Cout)``
    (:func:`transform_weight`; its tile size follows from α², 36 or 64), plus ``bias``, through a ReLU
    if ``relu``; ``x`` is first zeroed where ``mask`` (same shape) is not positive (a ReLU's gradient).

    Returns ``(B, Cout, H, W)`` in channels-last memory format. Any ``H, W ≥ 1``: the input is
    zero-padded to whole output tiles and the output cropped back. The tile transforms of F(6×6, 3×3)
    run in C (:mod:`impasto.net._winograd`) for float32 on CPU where it was built, else as the GEMMs below;
    given ``packed`` (:func:`pack_weight` of ``u``) there, transforms and products run fused in C.
    The mask and the ReLU are applied inside the C transforms, as the tiles are read and written.
    """
    if (_kernels is not None and _tile_of(u) == C_TILE and x.dtype == torch.float32
            and x.device.type == "cpu" and (mask is None or mask.dtype == torch.float32)):
        if packed is not None and packed.dtype == torch.float32 and packed.device.type == "cpu":
            return _conv_fused(x, packed, u.shape[2], bias, relu, mask)
        return _conv_c(x, u, bias, relu, mask)
    if mask is not None:  # zero where the mask is not positive; a NaN keeps x, as threshold_backward does
        x = torch.where(mask <= 0, torch.zeros_like(x), x)
    y = _conv_torch(x, u, bias)
    return torch.relu(y) if relu else y


def _nhwc(x: torch.Tensor | None) -> torch.Tensor | None:
    """A (B, C, H, W) tensor as contiguous NHWC: a view of a channels-last one, no copy."""
    return x.permute(0, 2, 3, 1).contiguous() if x is not None else None


def _array(x: torch.Tensor | None):
    """A CPU tensor's memory as the C kernels take it, a NumPy view (they check its dtype, layout and size
    against the dimensions passed); None stays None."""
    return None if x is None else (x.detach() if x.requires_grad else x).numpy()


def _conv_fused(x: torch.Tensor, packed: torch.Tensor, cout: int, bias: torch.Tensor | None = None,
                relu: bool = False, mask: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`winograd_conv2d` fused in C: per block of tiles, V, the 64 products and the output transform."""
    batch, cin, height, width = x.shape
    x, mask = _nhwc(x), _nhwc(mask)
    out = torch.empty((batch, height, width, cout), dtype=x.dtype, device=x.device)
    b = bias.to(x.dtype).contiguous() if bias is not None else None
    _kernels.fused_conv(_array(x), _array(out), _array(packed), _array(b), _array(mask),
                        batch, height, width, cin, cout, torch.get_num_threads(), relu)
    return out.permute(0, 3, 1, 2)


def _conv_c(x: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None = None, relu: bool = False,
            mask: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`winograd_conv2d` with the C tile transforms (F(6×6, 3×3)): image -> V, the 64 products, -> image."""
    batch, cin, height, width = x.shape
    cout, points = u.shape[2], u.shape[0]
    tiles = batch * -(-height // C_TILE) * -(-width // C_TILE)
    threads = torch.get_num_threads()
    x, mask = _nhwc(x), _nhwc(mask)
    v = _buffer("b", points * tiles * cin, x.dtype, x.device).view(points, tiles, cin)
    _kernels.input_transform(_array(x), _array(v), _array(mask), batch, height, width, cin, threads)
    m = _buffer("a", points * tiles * cout, x.dtype, x.device).view(points, tiles, cout)
    torch.bmm(v, u, out=m)  # M_ξν = V_ξν U_ξν (Lavin & Gray section 4), summing over channels
    out = torch.empty((batch, height, width, cout), dtype=x.dtype, device=x.device)
    b = bias.to(x.dtype).contiguous() if bias is not None else None
    _kernels.output_transform(_array(m), _array(out), _array(b), batch, height, width, cout, threads, relu)
    return out.permute(0, 3, 1, 2)


def _conv_torch(x: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """:func:`winograd_conv2d` in PyTorch operations: gathered tiles and Kronecker-matrix transforms."""
    batch, cin, height, width = x.shape
    cout = u.shape[2]
    tile = _tile_of(u)
    alpha = tile + 2
    th, tw = -(-height // tile), -(-width // tile)
    tiles = batch * th * tw
    dtype, device = x.dtype, x.device
    btb, ata = _kron_matrices(dtype, device, tile)
    # Zero-padded NHWC copy: 1 row/column before, up to tile·t + 2 in all.
    hp, wp = tile * th + 2, tile * tw + 2
    key = ("pad", batch, height, width, cin, tile, dtype, device)
    xp = _WORKSPACE.get(key)
    if xp is None:  # one per input shape: its zero border is written once, only the interior each call
        xp = _WORKSPACE[key] = torch.zeros((batch, hp, wp, cin), dtype=dtype, device=device)
    xp[:, 1:height + 1, 1:width + 1].copy_(x.permute(0, 2, 3, 1))
    # Overlapping α×α tiles with stride m, gathered as d (α, α, B, th, tw, C) = (α², T·C).
    d = _buffer("a", alpha * alpha * tiles * cin, dtype, device).view(alpha * alpha, tiles * cin)
    d.view(alpha, alpha, batch, th, tw, cin).copy_(
        xp.unfold(1, alpha, tile).unfold(2, alpha, tile).permute(4, 5, 0, 1, 2, 3))
    # Input transform vec(Bᵀ d B) = (Bᵀ⊗Bᵀ) vec(d): one GEMM for every tile and channel.
    v = _buffer("b", alpha * alpha * tiles * cin, dtype, device).view(alpha * alpha, tiles * cin)
    torch.mm(btb, d, out=v)
    # The α² independent products M_ξν = V_ξν U_ξν (Lavin & Gray section 4), summing over channels.
    m = _buffer("a", alpha * alpha * tiles * cout, dtype, device).view(alpha * alpha, tiles, cout)
    torch.bmm(v.view(alpha * alpha, tiles, cin), u, out=m)
    # Output transform vec(Aᵀ m A) = (Aᵀ⊗Aᵀ) vec(m), then tiles back into the image (+ bias).
    y = _buffer("b", tile * tile * tiles * cout, dtype, device).view(tile * tile, tiles * cout)
    torch.mm(ata, m.view(alpha * alpha, tiles * cout), out=y)
    y = y.view(tile, tile, batch, th, tw, cout).permute(2, 3, 0, 4, 1, 5)
    out = torch.empty((batch, th, tile, tw, tile, cout), dtype=dtype, device=device)
    if bias is not None:
        torch.add(y, bias.to(dtype), out=out)
    else:
        out.copy_(y)
    out = out.view(batch, tile * th, tile * tw, cout)
    if tile * th != height or tile * tw != width:
        out = out[:, :height, :width].contiguous()
    return out.permute(0, 3, 1, 2)


class _WinogradConvFunction(torch.autograd.Function):
    """Forward: Winograd conv with ``U`` (and the ReLU if asked); backward: the ReLU's mask, then the
    input gradient with the flipped kernel's ``U′``."""

    @staticmethod
    def forward(ctx, x, u, u_back, bias, packed, packed_back, relu):
        y = winograd_conv2d(x, u, bias, packed, relu)
        ctx.save_for_backward(u_back, packed_back, y if relu else None)
        return y

    @staticmethod
    def backward(ctx, grad_out):
        u_back, packed_back, y = ctx.saved_tensors
        grad_x = None
        if ctx.needs_input_grad[0]:  # ∂L/∂x = conv(∂L/∂y ⊙ [y > 0], rot180(g)ᵀ)
            grad_x = winograd_conv2d(grad_out, u_back, None, packed_back, mask=y)
        return grad_x, None, None, None, None, None, None  # frozen network: no weight or bias gradients


def winograd_conv(x: torch.Tensor, u: torch.Tensor, u_back: torch.Tensor, bias: torch.Tensor | None = None,
                  packed: torch.Tensor | None = None, packed_back: torch.Tensor | None = None,
                  relu: bool = False) -> torch.Tensor:
    """Differentiable (w.r.t. ``x`` only) Winograd 3×3 convolution, through a ReLU if ``relu``
    (``packed``: see :func:`winograd_conv2d`)."""
    return _WinogradConvFunction.apply(x, u, u_back, bias, packed, packed_back, relu)


class WinogradConv2d(nn.Module):
    """A frozen 3×3 stride-1 padding-1 ``nn.Conv2d`` run as Winograd F(tile×tile, 3×3)
    (``tile``: :func:`default_tile` unless given, 4 or 6).

    ``U`` (forward) and ``U′`` (input gradient) are buffers, so ``.to(device/dtype)`` moves them.
    """

    def __init__(self, conv: nn.Conv2d, tile: int | None = None):
        super().__init__()
        if not is_winograd_compatible(conv):
            raise ValueError("WinogradConv2d needs a 3x3, stride 1, padding 1, dilation 1, groups 1 Conv2d")
        weight = conv.weight.detach()
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.tile = tile or default_tile()
        self.register_buffer("u", transform_weight(weight, self.tile), persistent=False)
        self.register_buffer("u_back", transform_weight(flipped_weight(weight), self.tile), persistent=False)
        bias = conv.bias.detach().clone() if conv.bias is not None else None
        self.register_buffer("bias", bias, persistent=False)
        pack = self.tile == C_TILE and fused(self.in_channels, self.out_channels)  # both directions' shapes
        self.register_buffer("packed", pack_weight(self.u) if pack else None, persistent=False)
        self.register_buffer("packed_back", pack_weight(self.u_back) if pack else None, persistent=False)

    def forward(self, x: torch.Tensor, relu: bool = False) -> torch.Tensor:
        """The convolution of ``x``, followed by the network's ReLU if ``relu`` (applied in the kernels)."""
        return winograd_conv(x, self.u, self.u_back, self.bias, self.packed, self.packed_back, relu)

    def extra_repr(self) -> str:
        fused_c = ", fused" if self.packed is not None else ""
        return f"{self.in_channels}, {self.out_channels}, F({self.tile}x{self.tile}, 3x3){fused_c}"


def is_winograd_compatible(conv: nn.Module) -> bool:
    return (isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3) and conv.stride == (1, 1)
            and conv.padding in ((1, 1), "same") and conv.dilation == (1, 1) and conv.groups == 1
            and conv.padding_mode == "zeros")
