"""Tests of impasto.loss.tiled: the objective over tiles equals the objective of the whole picture, term
by term, value and gradient (issue 26)."""

import pytest
import torch

from impasto.image import imageio
from impasto.loss import guided, tiled
from impasto.loss.ink import edge_target, edge_term, ink_term
from impasto.net.vgg import VGG19
from impasto.loss.terms import (HeldObjective, Objective, content_style_term, content_targets, content_term,
                                guided_style_term, style_targets, style_term, tv_term)

pytestmark = pytest.mark.usefixtures("jobs_on_one_thread")

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


# ---------------------------------------------------------------- geometry

def test_receptive_fields_by_hand():
    # conv1_1: 3 px, reaching 1 px left; pool1 doubles the stride; relu5_1: 156 px at stride 16, reach 70
    assert tiled._walk("relu1_1") == (3, 1, 1)
    assert tiled._walk("pool1") == (6, 2, 2)
    assert tiled._walk("relu2_1") == (10, 2, 4)
    assert tiled._walk("relu5_1") == (156, 16, 70)
    assert tiled.margin(["relu5_1"]) == 80 and tiled.alignment(STYLE_LAYERS) == 16
    assert tiled.margin(["relu1_1"]) == 1 and tiled.margin(["relu2_1"]) == 4


@pytest.mark.parametrize("height, width, side", [(96, 96, 32), (75, 101, 40), (50, 33, 16), (64, 48, 512)])
def test_tiles_own_every_position_once_on_every_layer(height, width, side):
    tiles = tiled.windows(height, width, side, STYLE_LAYERS)
    if side >= max(height, width):
        assert len(tiles) == 1
    for layer in ("relu1_1", "relu3_1", "relu5_1"):
        s = tiled.stride(layer)
        count = torch.zeros(height // s, width // s)
        for w in tiles:
            assert w.y0 % 16 == 0 and w.x0 % 16 == 0 and w.iy0 % 16 == 0 and w.ix0 % 16 == 0
            assert (w.iy0, w.ix0) == (max(0, w.y0 - 80), max(0, w.x0 - 80))       # margins clipped at borders
            assert (w.iy1, w.ix1) == (min(height, w.y1 + 80), min(width, w.x1 + 80))
            w.crop(count, layer).add_(1)
        assert torch.equal(count, torch.ones_like(count))


# ---------------------------------------------------------------- exactness, term by term

def _pictures(h=96, w=80):
    gen = torch.Generator().manual_seed(1)
    photo = torch.rand(1, 3, h, w, generator=gen) * 0.5 + torch.linspace(0, 0.5, w).view(1, 1, 1, w)
    painting = torch.rand(1, 3, 64, 64, generator=gen)
    image = (photo + 0.2 * torch.rand(1, 3, h, w, generator=gen)).clamp(0, 1)
    return photo, painting, image


def _terms(vgg, kind, photo, painting):
    targets = style_targets(vgg, [painting], [1.0], STYLE_LAYERS)
    weights = [0.2] * 5
    if kind == "content":
        return [content_term(content_targets(vgg, photo, ["relu4_2"]), [1.0], 1.0, "paper", scale=0.5)]
    if kind == "content-coursera":
        return [content_term(content_targets(vgg, photo, ["relu2_1", "relu4_2"]), [1.0, 2.0], 1.0, "coursera")]
    if kind == "style":
        return [style_term(targets, weights, 1e3)]
    if kind == "guided":
        left = torch.zeros(1, 1, *photo.shape[-2:])
        left[..., : photo.shape[-1] // 3] = 1
        other = style_targets(vgg, [painting.flip(-1)], [1.0], STYLE_LAYERS)
        regions = [(targets, guided.layer_masks(left, targets)), (other, guided.layer_masks(1 - left, other))]
        return [guided_style_term(regions, dict(zip(STYLE_LAYERS, weights)), 1e3)]
    if kind == "content-style":
        return [style_term(targets, weights, 1e3), content_style_term(vgg, photo, targets, weights, 50.0)]
    if kind == "pixels":
        target, strength = edge_target(photo, 1.0, 2.0)
        return [tv_term(10.0), edge_term(target, strength, 1.0, 3.0, 0.5), style_term(targets, weights, 1e3)]
    if kind == "ink":
        outside = torch.ones(1, 1, *photo.shape[-2:])
        outside[..., :20, :] = 0.2
        return [ink_term(vgg, painting, ("relu1_1", "relu2_1"), 1e3, outside=outside),
                content_term(content_targets(vgg, photo, ["relu4_2"]), [1.0], 1.0)]
    raise ValueError(kind)


def _loss_and_grad(objective, image):
    x = image.clone().requires_grad_(True)
    loss, report = objective(x)
    loss.backward()
    return loss.item(), x.grad, report


@pytest.mark.parametrize("kind", ["content", "content-coursera", "style", "guided", "content-style", "pixels",
                                  "ink", "held"])
def test_tiled_objective_and_gradient_equal_the_untiled(vgg, kind):
    photo, painting, image = _pictures()
    if kind == "held":
        keep, void = torch.zeros(1, 1, *photo.shape[-2:]), torch.zeros(1, 1, *photo.shape[-2:])
        keep[..., 40:, 50:] = 1
        void[..., :20, :] = 0.8
        holds = [(keep, photo), (void, torch.tensor([0.9, 0.85, 0.8]).view(1, 3, 1, 1))]
        terms = _terms(vgg, "content", photo, painting) + _terms(vgg, "style", photo, painting)
        whole, tiles = (HeldObjective(vgg, terms, holds, tile=t) for t in (None, 32))
    else:
        terms = _terms(vgg, kind, photo, painting)
        whole, tiles = Objective(vgg, terms), Objective(vgg, terms, tile=32)
    assert len(tiled.tiles_of(image, 32, tiles.layers)) == 9
    loss, grad, report = _loss_and_grad(whole, image)
    tiled_loss, tiled_grad, tiled_report = _loss_and_grad(tiles, image)
    assert tiled_loss == pytest.approx(loss, rel=1e-5)
    assert set(report) == set(tiled_report)
    for name in report:
        assert tiled_report[name] == pytest.approx(report[name], rel=1e-5, abs=1e-9), name
    assert float(tiled_grad.norm()) == pytest.approx(float(grad.norm()), rel=1e-4)
    assert float(tiled_grad.abs().max()) == pytest.approx(float(grad.abs().max()), rel=1e-4)
    assert float((tiled_grad - grad).abs().max()) <= 1e-4 * float(grad.abs().max())


def test_tiled_targets_equal_the_whole_pictures(vgg):
    photo, painting, _ = _pictures(75, 101)
    whole = content_targets(vgg, photo, ["relu2_1", "relu4_2"])
    tiles = content_targets(vgg, photo, ["relu2_1", "relu4_2"], tile=32)
    for layer in whole:
        assert tiles[layer].shape == whole[layer].shape
        assert float((tiles[layer] - whole[layer]).abs().max()) <= 1e-5 * float(whole[layer].abs().max())
    grams, tiled_grams = (style_targets(vgg, [photo], [1.0], STYLE_LAYERS, tile=t) for t in (None, 48))
    for layer in STYLE_LAYERS:
        assert torch.allclose(tiled_grams[layer], grams[layer], rtol=1e-4, atol=1e-6 * float(grams[layer].abs().max()))


def test_gradcheck_of_the_tiled_objective_in_float64():
    """The gradient handed back by the tiled pass is the objective's derivative (finite differences)."""
    net = VGG19(pooling="avg").double()
    gen = torch.Generator().manual_seed(2)
    photo = torch.rand(1, 3, 10, 12, dtype=torch.float64, generator=gen)
    painting = torch.rand(1, 3, 10, 12, dtype=torch.float64, generator=gen)
    layers = ("relu1_1", "relu2_1")
    targets = {l: g.double() for l, g in style_targets(net, [painting], [1.0], layers).items()}
    content = {l: f.double() for l, f in content_targets(net, photo, ["relu2_1"]).items()}
    objective = Objective(net, [style_term(targets, [0.5, 0.5], 10.0), content_term(content, [1.0], 1e-3)], tile=4)
    assert len(tiled.tiles_of(photo, 4, objective.layers)) == 9

    def f(x):
        return objective(x)[0]

    x = torch.rand(1, 3, 10, 12, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-6, rtol=1e-4)


def test_tiles_held_from_the_first_pass_change_nothing(vgg):
    """Keeping some or all tiles' activations from the first pass gives the same value and gradient as
    computing every tile again."""
    photo, painting, image = _pictures()
    terms = _terms(vgg, "content", photo, painting) + _terms(vgg, "style", photo, painting)
    results = [_loss_and_grad(Objective(vgg, terms, tile=32, keep=keep), image) for keep in (1, 4, 9)]
    for loss, grad, _ in results[1:]:
        assert loss == pytest.approx(results[0][0], rel=1e-6)
        assert float((grad - results[0][1]).abs().max()) <= 1e-5 * float(results[0][1].abs().max())


def test_the_share_of_an_evaluation_follows_the_work_of_its_tile_passes():
    """Two tiles of 100 and 300 px read, the last held: the forward passes cost FORWARD of their area, the
    held tile's backward the rest of its area, the first tile's pass again its whole area."""
    from types import SimpleNamespace

    from impasto.loss.tiled import FORWARD, pass_shares

    tiles = [SimpleNamespace(iy0=0, iy1=10, ix0=0, ix1=10), SimpleNamespace(iy0=0, iy1=10, ix0=10, ix1=40)]
    work = [FORWARD * 100, FORWARD * 300, (1 - FORWARD) * 300, 100]
    done = [0, work[0], work[0] + work[1], work[0] + work[1] + work[2]]
    assert pass_shares(tiles, keep=1) == pytest.approx([d / sum(work) for d in done])
    assert pass_shares(tiles, keep=2) == pytest.approx([0, FORWARD / 4, FORWARD, FORWARD + (1 - FORWARD) / 4])
