"""Tests of impasto.gatys.run: transfer end to end on 32 and 64 px images with the real VGG-19 weights."""

import numpy as np
import pytest
from PIL import Image

from conftest import EXAMPLES, _mask, style_distance
from impasto import Cancel, ImpastoError, Interrupted, TransferConfig, transfer
from impasto.image import color, imageio, masks
from impasto.image.imageio import pil_to_tensor, resize_to_tensor
from impasto.loss import guided, losses


FAST = dict(size=64, precision="fp32", device="cpu")


def _gray(img, size=(32, 24)):
    a = np.asarray(img.convert("L").resize(size, Image.Resampling.BILINEAR), dtype=np.float64)
    return (a - a.mean()) / (a.std() + 1e-9)


def _corr(a, b):
    return float((_gray(a) * _gray(b.resize(a.size))).mean())


def _run(small_images, vgg, styles=("starry_night",), **changes):
    losses = []
    config = TransferConfig(**{**FAST, "iterations": 40, **changes})
    out = transfer(small_images["tubingen"], [small_images[s] for s in styles], config,
                   callback=lambda p: losses.append(p.losses), network=vgg)
    return out, losses


def test_loss_falls_tenfold_from_white_noise(small_images, vgg):
    out, losses = _run(small_images, vgg, iterations=100, init="noise", scales=1)  # the paper: α/β = 1e-3
    assert losses[0]["total"] / losses[-1]["total"] > 10
    assert losses[-1]["style"] < losses[0]["style"] / 10
    assert out.size == (64, 48) and out.mode == "RGB"


def test_content_structure_is_kept(small_images, vgg):
    out, losses = _run(small_images, vgg, iterations=80, ratio=1.0)
    content = Image.open(small_images["tubingen"])
    style = Image.open(small_images["starry_night"])
    assert _corr(out, content) > 0.45
    assert _corr(out, content) > _corr(out, style) + 0.1


@pytest.mark.parametrize("init", ["content", "recolored", "noisy-content", "style", "file"])
def test_init_modes(small_images, vgg, init):
    start = str(small_images["kandinsky"]) if init == "file" else init
    out, losses = _run(small_images, vgg, iterations=15, init=start)
    assert losses[-1]["total"] < losses[0]["total"]
    reference = {"content": "tubingen", "recolored": "tubingen", "noisy-content": "tubingen", "style": "starry_night",
                 "file": "kandinsky"}[init]
    # few iterations from that start: the result still resembles it
    assert _corr(out, Image.open(small_images[reference])) > 0.3


def test_recolored_start_has_the_paintings_colour_statistics():
    """The default start: the photo recoloured so its colour mean and covariance are the style's."""
    import torch

    from impasto.image.color import color_statistics
    from impasto.gatys.run import recolored
    from impasto.image.imageio import resize_to_tensor

    g = torch.Generator().manual_seed(0)
    photo = 0.25 + 0.5 * torch.rand(1, 3, 24, 32, generator=g)
    pixels = (torch.rand(40, 30, 3, generator=g) ** 2 * 255).round().to(torch.uint8).numpy()
    painting = Image.fromarray(pixels)
    start = recolored(photo, [painting])
    assert start.shape == photo.shape
    mu_s, cov_s = color_statistics(start)
    mu_p, cov_p = color_statistics(resize_to_tensor(painting, size=(32, 24)))  # the painting at the photo's size
    assert torch.allclose(mu_s, mu_p, atol=0.02) and torch.allclose(cov_s, cov_p, atol=0.01)
    assert not torch.allclose(mu_s, color_statistics(photo)[0], atol=0.05)  # it did move


def test_recolored_start_begins_with_a_lower_style_loss(small_images, vgg):
    _, content = _run(small_images, vgg, iterations=1, init="content")
    _, recolor = _run(small_images, vgg, iterations=1, init="recolored")
    assert recolor[0]["style"] < 0.8 * content[0]["style"]


def test_content_init_starts_at_zero_content_loss(small_images, vgg):
    _, losses = _run(small_images, vgg, iterations=2, init="content")
    assert losses[0]["content"] == pytest.approx(0.0, abs=1e-3)


def test_several_styles_blend(small_images, vgg):
    out, losses = _run(small_images, vgg, styles=("starry_night", "kandinsky"), iterations=30,
                       style_blend=(0.7, 0.3))
    assert losses[-1]["style"] < losses[0]["style"] / 5
    with pytest.raises(ImpastoError, match="2 style images"):
        _run(small_images, vgg, styles=("starry_night", "kandinsky"), style_blend=(1.0,))


def test_same_seed_same_output(small_images, vgg):
    a, _ = _run(small_images, vgg, iterations=10, seed=7, init="noise")
    b, _ = _run(small_images, vgg, iterations=10, seed=7, init="noise")
    c, _ = _run(small_images, vgg, iterations=10, seed=8, init="noise")
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_adam_and_coursera_normalisation(small_images, vgg):
    _, losses = _run(small_images, vgg, iterations=30, optimizer="adam", lr=10.0,
                     normalization="coursera", init="noisy-content")
    assert losses[-1]["total"] < losses[0]["total"] / 2


def test_style_size_and_total_variation(small_images, vgg):
    from impasto.image.imageio import pil_to_tensor
    from impasto.loss.losses import total_variation

    smooth, l1 = _run(small_images, vgg, iterations=20, tv_weight=1e9, style_size=48)
    rough, l2 = _run(small_images, vgg, iterations=20, style_size=48)
    assert "tv" in l1[-1] and "tv" not in l2[-1]
    assert total_variation(pil_to_tensor(smooth)) < total_variation(pil_to_tensor(rough))


def test_early_stop_ends_run(small_images, vgg):
    _, losses = _run(small_images, vgg, iterations=200, init="content", early_stop=0.5)
    assert len(losses) < 200


def test_interrupt_keeps_latest_result(small_images, vgg):
    cancel, seen = Cancel(), []

    def stop_at_five(progress):
        seen.append(progress.done)
        if progress.done == 5:
            cancel.set()

    config = TransferConfig(**{**FAST, "iterations": 50})
    with pytest.raises(Interrupted) as info:
        transfer(small_images["tubingen"], small_images["starry_night"], config, callback=stop_at_five,
                 network=vgg, cancel=cancel)
    assert seen == [1, 2, 3, 4, 5]  # stopped before the sixth iteration
    assert info.value.partial.size == (64, 48) and info.value.image is info.value.partial


def test_callback_gets_images_on_request(small_images, vgg):
    events = []
    config = TransferConfig(**{**FAST, "iterations": 6})
    transfer(small_images["tubingen"], small_images["starry_night"], config, callback=events.append,
             image_every=3, network=vgg)
    assert [e.done for e in events] == [1, 2, 3, 4, 5, 6] and {e.job for e in events} == {"transfer"}
    assert [e.image is not None for e in events] == [False, False, True, False, False, True]
    assert events[2].image.shape == (1, 3, 48, 64)
    assert set(events[0].losses) >= {"content", "style", "total"}


def test_bad_option_values(small_images, vgg):
    for bad in (dict(size=0), dict(style_layers=("relu9_9",)), dict(iterations=-1), dict(noise_ratio=2.0),
                dict(init="no-such-file.png"), dict(style_layer_weights=(1.0,)), dict(normalization="sum"),
                dict(convolution="fft"), dict(scale_step=1.0), dict(scale_step=float("nan"))):
        with pytest.raises(ImpastoError):
            _run(small_images, vgg, **bad)


def test_the_look_does_not_change_with_size(tmp_path, vgg):
    # per position, one --ratio gives about the same balance of content and style at 48 and 96 px;
    # the paper's sum gives the photo about 4 times more weight at twice the size (its reported
    # content loss, a sum, also grows 4 times: the two effects multiply)
    paths = {}
    for name in ("tubingen", "starry_night"):
        img = Image.open(EXAMPLES / f"{name}.jpg").convert("RGB")
        img.thumbnail((96, 96), Image.Resampling.LANCZOS)
        img.save(tmp_path / f"{name}.png")
        paths[name] = tmp_path / f"{name}.png"

    def balance(size, normalization):
        losses = []
        config = TransferConfig(**{**FAST, "size": size, "iterations": 30, "normalization": normalization})
        transfer(paths["tubingen"], [paths["starry_night"]], config, callback=lambda p: losses.append(p.losses),
                 network=vgg)
        return losses[-1]["content"] / losses[-1]["style"]

    change = {n: balance(96, n) / balance(48, n) for n in ("per-position", "paper")}
    assert 0.7 < change["per-position"] < 1.45
    assert change["paper"] > 4 * change["per-position"]


# ---------------------------------------------------------------- control: colour and regions, end to end (issue 5)

def _run_at_32(small_images, vgg, styles, **changes):
    """The runs of the control tests: 32 px from noise, the styles given as paths (or 'none')."""
    config = TransferConfig(**{**FAST, "size": 32, "iterations": 20, "init": "noise", **changes})
    return transfer(small_images["tubingen"], styles, config, network=vgg)


def test_luminance_output_has_the_content_chrominance(small_images, vgg):
    out = _run_at_32(small_images, vgg, [small_images["starry_night"]], color="luminance", iterations=5)
    content = resize_to_tensor(Image.open(small_images["tubingen"]), size=out.size).double()
    got = color.rgb_to_yiq(pil_to_tensor(out).double())
    want = color.rgb_to_yiq(content)
    assert (got[:, 1:] - want[:, 1:]).abs().max() < 1.5 / 255            # rounding to 8 bits only
    assert (got[:, :1] - want[:, :1]).abs().mean() > 0.03                # the luminance is stylised


def test_region_without_style_keeps_the_photo(small_images, vgg, tmp_path):
    sky = _mask(tmp_path / "left.png", (20, 15), (0, 0, 0.5, 1))           # not the content's size
    out = _run_at_32(small_images, vgg, [small_images["starry_night"], "none"], iterations=5,
               masks=(str(sky), str(_mask(tmp_path / "right.png", (20, 15), (0.5, 0, 1, 1)))))
    photo = resize_to_tensor(Image.open(small_images["tubingen"]), size=out.size)[0]
    error = (pil_to_tensor(out)[0] - photo).abs()
    assert error[:, :, 19:].mean() < 1 / 255          # the 'none' half, away from the soft edge
    assert error[:, :, :13].mean() > 0.05             # the styled half is painted


def test_each_region_is_closer_to_its_own_style(small_images, vgg, tmp_path):
    a, b = small_images["starry_night"], small_images["kandinsky"]
    left = _mask(tmp_path / "left.png", (48, 36), (0, 0, 0.5, 1))
    right = _mask(tmp_path / "right.png", (48, 36), (0.5, 0, 1, 1))
    out = _run_at_32(small_images, vgg, [a, b], masks=(str(left), str(right)))
    layers = ["relu1_1", "relu2_1", "relu3_1"]
    feats = vgg(pil_to_tensor(out), layers)
    grams = {s: vgg(resize_to_tensor(Image.open(s), long_side=32), layers) for s in (a, b)}

    def distance(mask_path, style):
        mask = masks.mask_tensor(masks.load_mask(mask_path), out.size)
        return sum(float((guided.guided_gram(feats[l], guided.layer_mask(mask, l))
                          - losses.gram(grams[style][l], normalise=True)).pow(2).sum()) for l in layers)

    assert distance(left, a) < distance(left, b)
    assert distance(right, b) < distance(right, a)


# ---------------------------------------------------------------- the −γ extension (seed 000)

@pytest.mark.usefixtures("jobs_on_one_thread")  # as in the paper's tests: jobs on one thread
def test_gamma_pushes_away_from_the_photos_style(vgg, small_images):
    config = TransferConfig(size=32, iterations=20, init="noise", scales=1, precision="fp32")
    photo = imageio.load_image(small_images["tubingen"], long_side=32)
    distance = {}
    for gamma in (0.0, 0.3 * config.beta):
        out = transfer(small_images["tubingen"], small_images["starry_night"],
                       config.replace(content_style_weight=gamma), network=vgg)
        distance[gamma] = style_distance(vgg, imageio.pil_to_tensor(out), photo)
    assert distance[0.3 * config.beta] > 1.2 * distance[0.0]


@pytest.mark.usefixtures("jobs_on_one_thread")  # as in the paper's tests: jobs on one thread
def test_gamma_must_stay_below_beta(small_images):
    with pytest.raises(ImpastoError, match="content-style-weight"):
        transfer(small_images["tubingen"], small_images["starry_night"],
                 TransferConfig(size=32, iterations=1, content_style_weight=1000.0))


def test_ink_mode_runs_every_term_and_paints_in_the_paintings_tones(small_images, vgg):
    """--color ink with voids, edges, the ink constraint and seals masked: every term reported and
    falling, every pixel of the result has the chrominance the painting gives its luminance, and the
    voids (the flattest share of the photo) are the paper's colour."""
    from impasto.gatys.inputs import prepare
    from impasto.image.ink import ink_tones, colorize, paper_tone, void_mask

    out, losses = _run(small_images, vgg, iterations=20, color="ink", void_share=0.3, edge_weight=1.0,
                       ink_weight=1.0, seals="mask")
    assert {"content", "style", "edges", "ink"} <= set(losses[0])
    assert losses[-1]["total"] < losses[0]["total"]
    painting = resize_to_tensor(Image.open(small_images["starry_night"]).convert("RGB"), long_side=64)
    result = pil_to_tensor(out)
    expected = colorize(color.luminance(result).clamp(0, 1), ink_tones(painting))
    assert (result - expected).abs().max() < 3 / 255  # the 8-bit rounding of the saved image
    config = TransferConfig(**{**FAST, "color": "ink", "void_share": 0.3, "seals": "mask"})
    seen = pil_to_tensor(prepare(config, small_images["tubingen"], [small_images["starry_night"]]).content)
    bare = void_mask(seen, 0.3) > 0.999
    paper = colorize(color.luminance(paper_tone(painting)), ink_tones(painting))
    assert bare.sum() > 0.1 * bare.numel()
    assert (result - paper).abs().amax(1, keepdim=True)[bare].max() < 4 / 255


def test_a_tiled_run_paints_the_untiled_picture(small_images, vgg):
    """A few L-BFGS iterations over 32 px tiles (issue 26) give the picture of the whole-image run within
    a grey level: the tiled objective and gradient are the same."""
    whole, _ = _run(small_images, vgg, iterations=5, tile=0)
    stages = []
    config = TransferConfig(**{**FAST, "iterations": 5, "tile": 32})
    tiles = transfer(small_images["tubingen"], [small_images["starry_night"]], config, network=vgg,
                     callback=lambda p: stages.append((p.done, p.stage, p.losses)))
    losses = [l for done, stage, l in stages if l]
    assert losses[-1]["total"] < losses[0]["total"]
    assert stages[:2] == [(0, "targets", {}), (0, "tile 1/4", {})]  # 64x48: 2x2 tiles
    assert (1, "tile 4/4, backward", losses[0]) in stages
    difference = np.abs(np.asarray(whole, dtype=np.int16) - np.asarray(tiles, dtype=np.int16))
    assert difference.max() <= 1, difference.max()


def test_a_run_stopped_in_its_last_scale_goes_on_from_the_kept_scale(small_images, vgg, tmp_path):
    """Finished scales are kept (issue 26): stopped during the second of two scales, the same run
    started again skips the first and paints the picture of a run never stopped."""
    from impasto.gatys.run import KeptScales

    config = TransferConfig(**{**FAST, "iterations": 12, "scales": (32, 64)})
    args = (small_images["tubingen"], [small_images["starry_night"]], config)
    straight = transfer(*args, network=vgg)
    folder, cancel = tmp_path / "scales", Cancel()

    def stop_in_scale_2(event):
        if event.stage.startswith("scale 2/2"):
            cancel.set()

    with pytest.raises(Interrupted):
        transfer(*args, callback=stop_in_scale_2, network=vgg, cancel=cancel, keep_scales=folder)
    assert [p.name for p in folder.iterdir()] == ["scale_1.npy"]
    events = []
    resumed = transfer(*args, callback=events.append, network=vgg, keep_scales=folder)
    assert events[0].stage == "scale 1/2 (kept)" and events[0].done == 8   # 12 iterations split 8:4
    assert np.array_equal(np.asarray(resumed), np.asarray(straight))
    np.save(folder / "scale_1.npy", np.zeros((1, 3, 5, 5), dtype=np.float32))  # damaged: made again
    assert KeptScales(folder).last(1, lambda k: (32, 24)) is None


def test_the_time_left_counts_a_tiled_evaluation_by_its_tiles_margins_and_recomputed_tiles():
    """Two tiles side by side (a 64x32 picture, 32 px tiles): each reads its 32 px plus the margin m on
    the side it shares, so together 2·32·(32 + m) px; with one held, the first is computed again."""
    from impasto.gatys.run import RECOMPUTE, TILE_OVERHEAD, tiled_cost
    from impasto.loss import tiled

    layers = ("relu1_1", "relu2_1")
    m = tiled.margin(layers)
    assert len(tiled.windows(32, 64, 32, layers)) == 2
    area = 32 * (32 + m)
    assert tiled_cost((64, 32), 32, 2, layers, "fp32") == pytest.approx(TILE_OVERHEAD * 2 * area / (64 * 32))
    for precision in ("fp32", "bf16"):
        assert tiled_cost((64, 32), 32, 1, layers, precision) == pytest.approx(
            TILE_OVERHEAD * (2 + RECOMPUTE[precision]) * area / (64 * 32))


def test_the_time_left_weighs_each_scales_first_iteration_by_its_targets_and_start(small_images):
    """Each iteration counts by its scale's pixels; a scale's first one also evaluates the start image
    (FIRST_EVALUATIONS times as much) after computing the targets: TARGETS a pixel of the photo and the
    painting at that scale."""
    from impasto.gatys.inputs import prepare
    from impasto.gatys.run import FIRST_EVALUATIONS, TARGETS, iteration_costs, scale_costs
    from impasto.image.imageio import fit_long_side

    config = TransferConfig(**{**FAST, "scales": (32, 64), "scale_iterations": (3, 2), "tile": 0})
    inputs = prepare(config, small_images["tubingen"], [small_images["starry_night"]])
    small, large = (w * h for w, h in (fit_long_side(inputs.content.size, side) for side in (32, 64)))
    painting = [w * h for w, h in (fit_long_side(inputs.styles[0].size, side) for side in (32, 64))]
    first = FIRST_EVALUATIONS
    costs = scale_costs(config, inputs)
    expected = [TARGETS * (small + painting[0]), TARGETS * (large + painting[1])]
    assert [c.targets for c in costs] == pytest.approx(expected)
    assert iteration_costs(costs, (3, 2)) == pytest.approx([costs[0].targets + first * small, small, small,
                                                            costs[1].targets + first * large, large])


def test_a_tiled_forward_pass_reads_its_tiles_margins():
    """The targets' forward pass reads a picture no larger than a tile at once, else its tiles with margins."""
    from impasto.gatys.run import forward_area
    from impasto.loss import tiled

    layers = ("relu1_1", "relu2_1")
    m = tiled.margin(layers)
    assert forward_area((64, 32), None, layers) == forward_area((64, 32), 64, layers) == 64 * 32
    assert forward_area((64, 32), 32, layers) == 2 * 32 * (32 + m)


def test_the_first_iterations_share_runs_from_its_targets_through_its_evaluations():
    """The share of a scale's first iteration told tile by tile: the targets' share once they are done,
    then each evaluation's tiles in turn (a new evaluation at share 0), never going back; the next
    iterations count their evaluations alone."""
    from impasto.gatys.run import FIRST_EVALUATIONS, IterationShares, ScaleCost

    cost = ScaleCost(each=10.0, targets=5.0)
    shares = IterationShares(cost)
    told = [shares.at(s) for s in (0.0, 0.5, 0.0, 0.5)]  # the start image's evaluation, then the first step's
    whole = 5 + 10 * FIRST_EVALUATIONS
    assert told == pytest.approx([5 / whole, 10 / whole, 15 / whole, 20 / whole])
    assert shares.targets == pytest.approx(5 / whole) and told == sorted(told)
    shares.next_iteration()
    assert [shares.at(s) for s in (0.0, 0.5)] == pytest.approx([0.0, 0.5])


def test_an_evaluation_beyond_those_planned_makes_the_iteration_cost_one_more():
    """A third evaluation in a scale's first iteration, or a second in a later one (L-BFGS shortened its
    step), is told to ``extend`` as one evaluation more, and the share goes on from the same cost done."""
    from impasto.gatys.run import FIRST_EVALUATIONS, IterationShares, ScaleCost

    extended = []
    shares = IterationShares(ScaleCost(each=10.0, targets=5.0), extended.append)
    planned = 5 + 10 * FIRST_EVALUATIONS
    assert [shares.at(s) for s in (0.0, 0.0)] == pytest.approx([5 / planned, 15 / planned]) and extended == []
    assert shares.at(0.0) == pytest.approx(25 / (planned + 10)) and extended == [10.0]
    shares.next_iteration()
    assert [shares.at(s) for s in (0.0, 1.0)] == pytest.approx([0.0, 1.0]) and extended == [10.0]
    assert [shares.at(s) for s in (0.0, 0.5)] == pytest.approx([0.5, 0.75]) and extended == [10.0, 10.0]


@pytest.mark.parametrize("levels, expected", [(0, [0, 1, 1]), (3, [3, 3, 3])])
def test_scales_that_refine_a_result_are_optimised_over_the_pixels(small_images, vgg, monkeypatch, levels, expected):
    """--laplacian-levels 0 (auto): the pyramid at the first scale, the pixels (1) at the scales that refine
    its result (measured better there, and 3/4 of the pyramid's memory); a given count holds at every scale."""
    from impasto.gatys import run
    from impasto.optim.loop import Loop

    seen = []

    class Watched(Loop):
        def __init__(self, objective, image, settings):
            seen.append(settings.laplacian_levels)
            super().__init__(objective, image, settings)

    monkeypatch.setattr(run, "Loop", Watched)
    _run(small_images, vgg, iterations=6, scales=(32, 48, 64), laplacian_levels=levels)
    assert seen == expected
