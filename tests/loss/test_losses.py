"""Losses of Gatys et al. against hand-computed values and the paper's analytic gradients."""

import torch

from impasto.loss import losses


def test_gram_by_hand():
    # F = [[1, 2], [3, 4]] as a (1, 2, 1, 2) feature map: G = F Fᵀ = [[5, 11], [11, 25]]
    feats = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)
    assert torch.equal(losses.gram(feats), torch.tensor([[5.0, 11.0], [11.0, 25.0]]))
    assert torch.equal(losses.gram(feats, normalise=True), torch.tensor([[2.5, 5.5], [5.5, 12.5]]))


def test_content_loss_paper_and_coursera():
    f = torch.tensor([1.0, 2.0, 3.0, 4.0]).view(1, 1, 2, 2)
    p = torch.tensor([0.0, 2.0, 5.0, 4.0]).view(1, 1, 2, 2)
    # Σ (F − P)^2 = 1 + 0 + 4 + 0 = 5
    assert losses.content_loss(f, p, "paper").item() == 2.5          # 1/2 · 5
    assert losses.content_loss(f, p, "coursera").item() == 5 / 16    # 5 / (4 · 2 · 2 · 1)


def test_style_loss_by_hand():
    # N = 2 filters, M = 2 positions. G = [[5, 11], [11, 25]]; A = 0.
    feats = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 2, 1, 2)
    a = torch.zeros(2, 2)
    # E = Σ (G − A)^2 / (4 N^2 M^2) = (25 + 121 + 121 + 625) / 64 = 892 / 64
    assert abs(losses.style_layer_loss(feats, a / 2).item() - 892 / 64) < 1e-5


def test_style_loss_compares_like_with_like_across_sizes():
    torch.manual_seed(0)
    small = torch.rand(1, 4, 3, 3)
    tiled = small.repeat(1, 1, 2, 2)  # same statistics, 4× the positions
    target = losses.gram(small, normalise=True)
    assert losses.style_layer_loss(tiled, target).item() < 1e-10


def test_total_variation_by_hand():
    img = torch.tensor([[0.0, 1.0], [1.0, 3.0]]).view(1, 1, 2, 2)
    # vertical: (1-0)^2 + (3-1)^2 = 5; horizontal: (1-0)^2 + (3-1)^2 = 5
    assert losses.total_variation(img).item() == 10.0


def _relu_features(seed, shape=(1, 3, 4, 5)):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=torch.float64).relu().requires_grad_(True)


def test_content_gradient_matches_paper_eq2():
    f = _relu_features(1)
    p = torch.randn(f.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    losses.content_loss(f, p).backward()
    expected = losses.paper_content_grad(f.detach(), p)
    # autograd gives (F − P) everywhere; the paper's formula restricts to F > 0, where they agree
    mask = f.detach() > 0
    assert torch.allclose(f.grad[mask], expected[mask])
    assert (expected[~mask] == 0).all()


def test_style_gradient_matches_paper_eq6():
    f = _relu_features(3)
    n, m = 3, 20
    b = torch.rand(n, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    a = b @ b.T  # a style Gram matrix: symmetric, as eq. 6 assumes
    losses.style_layer_loss(f, a / m).backward()
    expected = losses.paper_style_grad(f.detach(), a)
    mask = f.detach() > 0
    assert torch.allclose(f.grad[mask], expected[mask])


def test_losses_gradcheck_float64():
    f = _relu_features(5)
    a = torch.rand(3, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: losses.style_layer_loss(x, a), (f,))
    p = torch.rand(f.shape, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: losses.content_loss(x, p), (f,))


def test_content_scale_per_normalisation():
    from impasto.loss.terms import content_scale

    # per-position: the pixels of the 512 px image over this one's; paper: the full size's over this one's
    assert content_scale("per-position", 512 * 384, 1024 * 768, 512 * 384) == 1.0
    assert content_scale("per-position", 1024 * 768, 1024 * 768, 512 * 384) == 0.25
    assert content_scale("paper", 256 * 192, 1024 * 768, 512 * 384) == 16.0
    assert content_scale("paper", 1024 * 768, 1024 * 768, 512 * 384) == 1.0   # eq. 1 exactly at full size
    assert content_scale("coursera", 256 * 192, 1024 * 768, 512 * 384) == 1.0


def test_paper_normalisation_is_equation_1_exactly():
    from impasto.loss.terms import content_term

    gen = torch.Generator().manual_seed(0)
    f, p = torch.randn(1, 4, 3, 5, generator=gen), torch.randn(1, 4, 3, 5, generator=gen)
    term = content_term({"relu4_2": p}, [1.0], alpha=2.0, normalization="paper")
    assert term.weight == 2.0 and term.fn({"relu4_2": f}, None).item() == (0.5 * (f - p).pow(2).sum()).item()
    scaled = content_term({"relu4_2": p}, [1.0], alpha=2.0, normalization="per-position", scale=0.25)
    assert scaled.fn({"relu4_2": f}, None).item() == (0.125 * (f - p).pow(2).sum()).item()


def test_gram_gradient_equals_autograd_and_keeps_channels_last():
    # The one-product backward F (dG + dGᵀ) against autograd of Fᵀ F, for a non-symmetric dG,
    # and the gradient laid out as the (channels-last) features are, so autograd adds like to like.
    gen = torch.Generator().manual_seed(6)
    feats = torch.randn(1, 4, 3, 5, generator=gen, dtype=torch.float64)
    feats = feats.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    upstream = torch.randn(4, 4, generator=gen, dtype=torch.float64)
    (ours,) = torch.autograd.grad((losses.gram(feats) * upstream).sum(), feats)
    plain = feats.detach().clone().requires_grad_(True)
    f = plain.flatten(2)[0]
    (reference,) = torch.autograd.grad(((f @ f.T) * upstream).sum(), plain)
    assert torch.allclose(ours, reference)
    assert ours.is_contiguous(memory_format=torch.channels_last)
    assert torch.autograd.gradcheck(losses.gram_of_positions, (torch.randn(6, 3, dtype=torch.float64,
                                                                            requires_grad=True),))
