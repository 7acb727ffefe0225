"""Winograd F(4×4, 3×3) convolution for the frozen VGG-19 (Lavin & Gray 2015, arXiv 1509.09308).

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", section 4, the nested 2-D form::

    Y = Aᵀ [ (G g Gᵀ) ⊙ (Bᵀ d B) ] A

computes a 4×4 output tile ``Y`` of a 3×3 correlation from a 6×6 input tile ``d`` with 36 instead
of 144 multiplies; summing over input channels *before* the output transform (ibid.) turns the 36 element-wise products into 36 matrix products ``M_ξν = U_ξν V_ξν``.

Here the weights are frozen, so ``U = G g Gᵀ`` (the filter transform) is computed once.
The input transform ``Bᵀ d B`` and the output transform ``Aᵀ m A`` are written as single GEMMs with
the Kronecker matrices ``Bᵀ⊗Bᵀ`` (36×36) and ``Aᵀ⊗Aᵀ`` (16×36), since ``vec(P X Q) = (Qᵀ⊗P) vec(X)``.

The input gradient of a stride-1 padding-1 3×3 correlation is itself one, with the kernel flipped
spatially and its in/out channels swapped (``∂L/∂x = conv(∂L/∂y, rot180(g)ᵀ)``), so the backward
pass runs the same routine with that kernel's own pre-transformed ``U′``.

Layout: tensors are handled as NHWC (channels last) internally, which is what ``VGG19`` runs in;
the output is returned channels-last. The tile gather then reads whole channel rows, and the 36
products are ``V (T×C) @ Uᵀ (C×Cout)`` per Winograd point.
"""

from __future__ import annotations

import torch
from torch import nn

# F(4×4, 3×3) with interpolation points 0, ±1, ±2, ∞: the F(4, 3) matrices Bᵀ, G, Aᵀ printed in
# Lavin & Gray 2015, section 4 (Toom-Cook / Chinese-remainder construction), nested for 2-D.
BT_ROWS = (
    (4, 0, -5, 0, 1, 0),
    (0, -4, -4, 1, 1, 0),
    (0, 4, -4, -1, 1, 0),
    (0, -2, -1, 2, 1, 0),
    (0, 2, -1, -2, 1, 0),
    (0, 4, 0, -5, 0, 1),
)
G_ROWS = (
    (1 / 4, 0, 0),
    (-1 / 6, -1 / 6, -1 / 6),
    (-1 / 6, 1 / 6, -1 / 6),
    (1 / 24, 1 / 12, 1 / 6),
    (1 / 24, -1 / 12, 1 / 6),
    (0, 0, 1),
)
AT_ROWS = (
    (1, 1, 1, 1, 1, 0),
    (0, 1, -1, 2, -2, 0),
    (0, 1, 1, 4, 4, 0),
    (0, 1, -1, 8, -8, 1),
)
TILE, ALPHA = 4, 6  # output tile m = 4, input tile α = m + r − 1 = 6


def transform_matrices(dtype=torch.float64, device=None):
    """``(Bᵀ, G, Aᵀ)`` as tensors of ``dtype`` (6×6, 6×3, 4×6)."""
    kw = dict(dtype=dtype, device=device)
    return torch.tensor(BT_ROWS, **kw), torch.tensor(G_ROWS, **kw), torch.tensor(AT_ROWS, **kw)


_KRON_CACHE: dict = {}


def _kron_matrices(dtype, device):
    """``(Bᵀ⊗Bᵀ, Aᵀ⊗Aᵀ)``: 36×36 and 16×36, cached per dtype and device."""
    key = (dtype, device)
    if key not in _KRON_CACHE:
        bt, _, at = transform_matrices(torch.float64)
        _KRON_CACHE[key] = (torch.kron(bt, bt).to(dtype=dtype, device=device).contiguous(),
                            torch.kron(at, at).to(dtype=dtype, device=device).contiguous())
    return _KRON_CACHE[key]


def transform_weight(weight: torch.Tensor) -> torch.Tensor:
    """``U = G g Gᵀ`` for a ``(Cout, Cin, 3, 3)`` kernel, laid out ``(36, Cin, Cout)``.

    Computed in float64 and returned in the weight's dtype (Lavin & Gray: the filter transform).
    """
    cout, cin, kh, kw = weight.shape
    if (kh, kw) != (3, 3):
        raise ValueError(f"Winograd F(4x4,3x3) needs a 3x3 kernel, got {kh}x{kw}")
    _, g, _ = transform_matrices(torch.float64, weight.device)
    u = torch.empty((ALPHA, ALPHA, cin, cout), dtype=weight.dtype, device=weight.device)
    for start in range(0, cout, 32):  # in slices: small float64 temporaries (fresh pages are slow)
        part = weight[start:start + 32].double()
        # U[a, b] = Σ_kl G[a, k] g[k, l] G[b, l]: two GEMMs over the last axes, giving (o, i, b, a).
        part = torch.tensordot(torch.tensordot(part, g, dims=([3], [1])), g, dims=([2], [1]))
        u[:, :, :, start:start + 32] = part.permute(3, 2, 1, 0)
    return u.view(ALPHA * ALPHA, cin, cout)


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


def winograd_conv2d(x: torch.Tensor, u: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """3×3 stride-1 padding-1 correlation of ``x (B, C, H, W)`` with pre-transformed ``u (36, C, Cout)``.

    Returns ``(B, Cout, H, W)`` in channels-last memory format. Any ``H, W ≥ 1``: the input is
    zero-padded to whole 4×4 output tiles and the output cropped back.
    """
    batch, cin, height, width = x.shape
    cout = u.shape[2]
    th, tw = -(-height // TILE), -(-width // TILE)
    tiles = batch * th * tw
    dtype, device = x.dtype, x.device
    btb, ata = _kron_matrices(dtype, device)
    # Zero-padded NHWC copy: 1 row/column before, up to 4·t + 2 in all.
    hp, wp = TILE * th + 2, TILE * tw + 2
    key = ("pad", batch, height, width, cin, dtype, device)
    xp = _WORKSPACE.get(key)
    if xp is None:  # one per input shape: its zero border is written once, only the interior each call
        xp = _WORKSPACE[key] = torch.zeros((batch, hp, wp, cin), dtype=dtype, device=device)
    xp[:, 1:height + 1, 1:width + 1].copy_(x.permute(0, 2, 3, 1))
    # Overlapping 6×6 tiles with stride 4, gathered as d (6, 6, B, th, tw, C) = (36, T·C).
    d = _buffer("a", ALPHA * ALPHA * tiles * cin, dtype, device).view(ALPHA * ALPHA, tiles * cin)
    d.view(ALPHA, ALPHA, batch, th, tw, cin).copy_(
        xp.unfold(1, ALPHA, TILE).unfold(2, ALPHA, TILE).permute(4, 5, 0, 1, 2, 3))
    # Input transform vec(Bᵀ d B) = (Bᵀ⊗Bᵀ) vec(d): one GEMM for every tile and channel.
    v = _buffer("b", ALPHA * ALPHA * tiles * cin, dtype, device).view(ALPHA * ALPHA, tiles * cin)
    torch.mm(btb, d, out=v)
    # The 36 independent products M_ξν = V_ξν U_ξν (Lavin & Gray section 4), summing over channels.
    m = _buffer("a", ALPHA * ALPHA * tiles * cout, dtype, device).view(ALPHA * ALPHA, tiles, cout)
    torch.bmm(v.view(ALPHA * ALPHA, tiles, cin), u, out=m)
    # Output transform vec(Aᵀ m A) = (Aᵀ⊗Aᵀ) vec(m), then tiles back into the image (+ bias).
    y = _buffer("b", TILE * TILE * tiles * cout, dtype, device).view(TILE * TILE, tiles * cout)
    torch.mm(ata, m.view(ALPHA * ALPHA, tiles * cout), out=y)
    y = y.view(TILE, TILE, batch, th, tw, cout).permute(2, 3, 0, 4, 1, 5)
    out = torch.empty((batch, th, TILE, tw, TILE, cout), dtype=dtype, device=device)
    if bias is not None:
        torch.add(y, bias.to(dtype), out=out)
    else:
        out.copy_(y)
    out = out.view(batch, TILE * th, TILE * tw, cout)
    if TILE * th != height or TILE * tw != width:
        out = out[:, :height, :width].contiguous()
    return out.permute(0, 3, 1, 2)


class _WinogradConvFunction(torch.autograd.Function):
    """Forward: Winograd conv with ``U``; backward: input gradient with the flipped kernel's ``U′``."""

    @staticmethod
    def forward(ctx, x, u, u_back, bias):
        ctx.save_for_backward(u_back)
        return winograd_conv2d(x, u, bias)

    @staticmethod
    def backward(ctx, grad_out):
        (u_back,) = ctx.saved_tensors
        grad_x = winograd_conv2d(grad_out, u_back) if ctx.needs_input_grad[0] else None
        return grad_x, None, None, None  # frozen network: no weight or bias gradients


def winograd_conv(x: torch.Tensor, u: torch.Tensor, u_back: torch.Tensor,
                  bias: torch.Tensor | None = None) -> torch.Tensor:
    """Differentiable (w.r.t. ``x`` only) Winograd 3×3 convolution."""
    return _WinogradConvFunction.apply(x, u, u_back, bias)


class WinogradConv2d(nn.Module):
    """A frozen 3×3 stride-1 padding-1 ``nn.Conv2d`` run as Winograd F(4×4, 3×3).

    ``U`` (forward) and ``U′`` (input gradient) are buffers, so ``.to(device/dtype)`` moves them.
    """

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        if not is_winograd_compatible(conv):
            raise ValueError("WinogradConv2d needs a 3x3, stride 1, padding 1, dilation 1, groups 1 Conv2d")
        weight = conv.weight.detach()
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.register_buffer("u", transform_weight(weight), persistent=False)
        self.register_buffer("u_back", transform_weight(flipped_weight(weight)), persistent=False)
        bias = conv.bias.detach().clone() if conv.bias is not None else None
        self.register_buffer("bias", bias, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return winograd_conv(x, self.u, self.u_back, self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, F(4x4, 3x3)"


def is_winograd_compatible(conv: nn.Module) -> bool:
    return (isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3) and conv.stride == (1, 1)
            and conv.padding in ((1, 1), "same") and conv.dilation == (1, 1) and conv.groups == 1
            and conv.padding_mode == "zeros")
