"""Control over what is transferred: colour, regions, scale and presets (issue 5).

Colour functions against invariants and round trips in float64; masks and guided Gram matrices
against hand-computed values; short end-to-end runs on 32 px images with the real VGG-19.
"""

import pytest
import torch
from PIL import Image

from conftest import run_cli
from impasto import ImpastoError, TransferConfig, color, control, losses, masks, presets, transfer
from impasto.cli import build_parser, main
from impasto.commands.transfer import config_of
from impasto.config import PAPER_CONTENT_LAYERS, PAPER_STYLE_LAYERS
from impasto.imageio import pil_to_tensor, resize_pil
from impasto.transfer import validate

FAST = dict(size=32, precision="fp32", device="cpu")


def _rand(*shape, seed=0):
    return torch.rand(shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _mask(path, size, box):
    """A white rectangle ``box`` (x0, y0, x1, y1 as fractions) on black, saved as PNG."""
    w, h = size
    img = Image.new("L", size, 0)
    img.paste(255, (round(box[0] * w), round(box[1] * h), round(box[2] * w), round(box[3] * h)))
    img.save(path)
    return path


# ---------------------------------------------------------------- colour spaces

@pytest.mark.parametrize("space", color.SPACES)
def test_rgb_luma_chroma_round_trip(space):
    x = _rand(2, 3, 5, 7)
    y = color.rgb_to_luma_chroma(x, space)
    assert torch.allclose(color.luma_chroma_to_rgb(y, space), x, atol=1e-12)
    assert torch.allclose(y[:, :1], color.luminance(x), atol=1e-12)


def test_gray_has_no_chrominance_and_white_has_luminance_one():
    g = color.gray(_rand(1, 1, 4, 4))
    assert torch.allclose(color.rgb_to_yiq(g)[:, 1:], torch.zeros(1, 2, 4, 4, dtype=torch.float64), atol=1e-6)
    assert color.luminance(torch.ones(1, 3, 1, 1)).item() == pytest.approx(1.0, abs=1e-6)


def test_colour_functions_gradcheck():
    x = _rand(1, 3, 2, 3, seed=1).requires_grad_(True)
    c = (0.2 + 0.6 * _rand(1, 3, 2, 3, seed=2)).requires_grad_(True)  # inside the gamut: smooth there
    assert torch.autograd.gradcheck(color.rgb_to_yiq, (x,))
    assert torch.autograd.gradcheck(lambda a, b: color.keep_chrominance(a, b), (x, c))
    for method in color.MATCH_METHODS:
        assert torch.autograd.gradcheck(lambda a, b: color.match_color(a, b, method, clamp=False), (x, c))


def test_keep_chrominance_is_exact_and_in_gamut():
    stylised, content = _rand(1, 3, 16, 16, seed=3), _rand(1, 3, 16, 16, seed=4)
    out = color.keep_chrominance(stylised, content)
    assert torch.allclose(color.rgb_to_yiq(out)[:, 1:], color.rgb_to_yiq(content)[:, 1:], atol=1e-12)
    assert out.min() >= -1e-12 and out.max() <= 1 + 1e-12
    # where the new luminance fits the gamut it is the stylised image's, untouched
    inside = (color.luminance(stylised) - color.luminance(out)).abs() < 1e-12
    assert inside.float().mean() > 0.3


def test_match_luminance_takes_content_mean_and_std():
    s, c = _rand(1, 1, 20, 20, seed=5) ** 3, 0.3 + 0.2 * _rand(1, 1, 20, 20, seed=6)
    out = color.match_luminance(s, c)
    assert out.mean().item() == pytest.approx(c.mean().item(), abs=1e-12)
    assert out.std().item() == pytest.approx(c.std().item(), rel=1e-9)


@pytest.mark.parametrize("method", color.MATCH_METHODS)
def test_match_color_gives_content_mean_and_covariance(small_images, method):
    style = pil_to_tensor(Image.open(small_images["starry_night"])).double()
    content = pil_to_tensor(Image.open(small_images["tubingen"])).double()
    mu_c, cov_c = color.color_statistics(content)
    for clamp, tol in ((False, 1e-3), (True, 1e-2)):  # clipping to [0, 1] moves them slightly
        mu, cov = color.color_statistics(color.match_color(style, content, method, clamp=clamp))
        assert torch.linalg.norm(mu - mu_c) <= tol * torch.linalg.norm(mu_c)
        assert torch.linalg.norm(cov - cov_c) <= tol * torch.linalg.norm(cov_c)


def test_pca_match_ignores_channel_order_and_cholesky_does_not(small_images):
    style = pil_to_tensor(Image.open(small_images["starry_night"])).double()
    content = pil_to_tensor(Image.open(small_images["kandinsky"])).double()
    p = [2, 0, 1]
    for method, same in (("pca", True), ("cholesky", False)):
        direct = color.match_color(style, content, method, clamp=False)[:, p]
        permuted = color.match_color(style[:, p], content[:, p], method, clamp=False)
        assert torch.allclose(direct, permuted, atol=1e-9) is same


def test_weighted_statistics_are_those_of_the_region():
    x, w = _rand(1, 3, 6, 6, seed=7), torch.zeros(1, 1, 6, 6, dtype=torch.float64)
    w[..., :3, :] = 1
    mu, cov = color.color_statistics(x, w)
    mu_top, cov_top = color.color_statistics(x[..., :3, :])
    assert torch.allclose(mu, mu_top) and torch.allclose(cov, cov_top)


# ---------------------------------------------------------------- masks and guided Gram matrices

def test_guided_gram_by_hand():
    # F = [[1, 2, 3], [4, 5, 6]] over M = 3 positions; mask (1, 0, 1): G = Σ over positions 0 and 2 / 2
    f = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]).view(1, 2, 1, 3)
    t = torch.tensor([1.0, 0.0, 1.0]).view(1, 1, 1, 3)
    expected = torch.tensor([[1 + 9, 4 + 18], [4 + 18, 16 + 36]]) / 2.0
    assert torch.allclose(masks.guided_gram(f, t), expected)
    ones = torch.ones(1, 1, 1, 3)
    assert torch.allclose(masks.guided_gram(f, ones), losses.gram(f, normalise=True))
    target = torch.rand(2, 2)
    assert torch.allclose(masks.guided_style_loss(f, ones, target), losses.style_layer_loss(f, target))


def test_layer_masks_have_every_feature_map_size(vgg):
    image = torch.rand(1, 3, 37, 45)  # odd sizes: floored at every pooling
    layers = ["relu1_1", "relu2_1", "relu3_1", "relu4_2", "relu5_1", "pool2", "pool5"]
    feats = vgg(image, layers)
    mask = torch.ones(1, 1, 37, 45)
    for name in layers:
        assert masks.layer_mask(mask, name).shape[-2:] == feats[name].shape[-2:], name


def test_regions_share_overlaps_and_keep_the_rest():
    m = torch.zeros(3, 1, 1, 4)
    m[0, 0, 0] = torch.tensor([1.0, 1.0, 0.0, 0.0])
    m[1, 0, 0] = torch.tensor([0.0, 1.0, 0.5, 0.0])
    m[2, 0, 0] = torch.tensor([0.0, 0.0, 0.5, 0.0])    # a 'none' region: keeps the photo
    scaled, keep = masks.regions(m, [True, True, False])
    assert torch.allclose(scaled[:, 0, 0, 1], torch.tensor([0.5, 0.5, 0.0]))  # overlap shared
    assert torch.allclose(keep.flatten(), torch.tensor([0.0, 0.0, 0.5, 1.0]))


def test_mask_of_another_size_is_resized(tmp_path):
    path = _mask(tmp_path / "m.png", (10, 20), (0, 0, 0.5, 1))
    t = masks.mask_tensor(masks.load_mask(path), (64, 48))
    assert t.shape == (1, 1, 48, 64)
    assert t[..., :, :28].min() > 0.99 and t[..., :, 36:].max() < 0.01   # left half, soft in between


def test_bad_masks_are_clear_errors(tmp_path):
    text = tmp_path / "sky.txt"
    text.write_text("not an image")
    with pytest.raises(ImpastoError, match="sky.txt: not an image"):
        masks.load_mask(text)
    Image.new("L", (8, 8), 0).save(tmp_path / "black.png")
    with pytest.raises(ImpastoError, match="black.png: mask is empty"):
        masks.load_mask(tmp_path / "black.png")
    with pytest.raises(ImpastoError, match="missing.png: file not found"):
        masks.load_mask(tmp_path / "missing.png")


def test_control_option_errors(small_images):
    styles = [small_images["starry_night"], small_images["kandinsky"]]
    cases = [
        (dict(), [styles[0], "none"], "'none' needs --masks"),
        (dict(masks=("a.png",)), styles, "--masks has 1 entries for 2 style images"),
        (dict(masks=("a.png", "b.png"), style_blend=(1.0, 1.0)), styles, "--style-blend does not combine"),
        (dict(style_scales=(1.0, 0.0)), styles, "--style-scales must be positive"),
        (dict(style_layers_for=(("monet.jpg", "relu1_1"),)), styles, "monet.jpg: not one of the style images"),
        (dict(style_layers_for=(("2", "relu9_9"),)), styles, "unknown layer 'relu9_9'"),
        (dict(masks=("a.png",)), ["none"], "at least one style image"),
    ]
    for changes, given, message in cases:
        with pytest.raises(ImpastoError, match=message):
            control.validate(TransferConfig(**changes), given)


# ---------------------------------------------------------------- scale control

def test_style_layers_for_and_scales_pick_each_style_targets(small_images, vgg):
    a, b = small_images["starry_night"], small_images["kandinsky"]
    config = TransferConfig(**FAST, style_scales=(1.0, 0.5),
                            style_layers_for=(("starry_night.png", "relu1_1,relu2_1"), ("2", ("relu3_1", "relu4_1"))))
    plan = control.prepare(config, Image.open(small_images["tubingen"]), [a, b], open_image=Image.open,
                           style_side=48, blend=[0.5, 0.5])
    style = control.style_targets(vgg, config, plan, 48, (48, 36))
    assert list(style.targets) == ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]
    assert style.weights == [0.25] * 4
    feats_a = vgg(resize_pil(Image.open(a), long_side=48), ["relu1_1"])
    feats_b = vgg(resize_pil(Image.open(b), long_side=24), ["relu3_1"])   # measured at half size
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
    plan = control.prepare(config, a, [tmp_path / "both.png"], open_image=Image.open, style_side=128, blend=[1.0])
    got = control.style_grams(vgg, plan, 0, 128)
    for l in config.style_layers:
        own = {name: losses.gram(vgg(resize_pil(img, size=(64, 40)), [l])[l], normalise=True) for name, img in
               (("a", a), ("b", b))}
        assert (got[l] - own["a"]).norm() < (got[l] - own["b"]).norm() / 2


def test_colour_preprocessing_of_the_inputs(small_images):
    content, style = Image.open(small_images["tubingen"]), Image.open(small_images["starry_night"])
    photo = resize_pil(content, size=(32, 24)).double()
    plan = control.prepare(TransferConfig(**FAST, color="match"), content, [style], open_image=lambda s: s,
                           style_side=32, blend=[1.0])
    mu, cov = color.color_statistics(pil_to_tensor(plan.styles[0]).double())
    mu_c, cov_c = color.color_statistics(photo)
    assert torch.linalg.norm(mu - mu_c) < 0.02 * torch.linalg.norm(mu_c)      # after 8-bit rounding
    assert torch.linalg.norm(cov - cov_c) < 0.05 * torch.linalg.norm(cov_c)
    plan = control.prepare(TransferConfig(**FAST, color="luminance"), content, [style], open_image=lambda s: s,
                           style_side=32, blend=[1.0])
    seen, painted = pil_to_tensor(plan.content).double(), pil_to_tensor(plan.styles[0]).double()
    assert color.rgb_to_yiq(seen)[:, 1:].abs().max() < 1e-6 and color.rgb_to_yiq(painted)[:, 1:].abs().max() < 1e-6
    y_c, y_s = color.luminance(photo), color.luminance(painted)
    assert y_s.mean().item() == pytest.approx(y_c.mean().item(), abs=0.01)
    assert y_s.std().item() == pytest.approx(y_c.std().item(), rel=0.05)


def test_style_layers_for_from_the_command_line():
    args = build_parser().parse_args(["transfer", "c.jpg", "s1.jpg", "dir/s2.jpg", "-o", "o.png",
                                      "--style-layers-for", "s2.jpg", "relu1_1,relu2_1",
                                      "--style-layers-for", "1", "relu4_1"])
    layers = control.per_style_layers(config_of(args), args.styles)
    assert layers == [("relu4_1",), ("relu1_1", "relu2_1")]


# ---------------------------------------------------------------- end to end

def _run(small_images, vgg, styles, **changes):
    config = TransferConfig(**{**FAST, "iterations": 20, "init": "noise", **changes})
    return transfer(small_images["tubingen"], styles, config, network=vgg)


def test_luminance_output_has_the_content_chrominance(small_images, vgg):
    out = _run(small_images, vgg, [small_images["starry_night"]], color="luminance", iterations=5)
    content = resize_pil(Image.open(small_images["tubingen"]), size=out.size).double()
    got = color.rgb_to_yiq(pil_to_tensor(out).double())
    want = color.rgb_to_yiq(content)
    assert (got[:, 1:] - want[:, 1:]).abs().max() < 1.5 / 255            # rounding to 8 bits only
    assert (got[:, :1] - want[:, :1]).abs().mean() > 0.03                # the luminance is stylised


def test_region_without_style_keeps_the_photo(small_images, vgg, tmp_path):
    sky = _mask(tmp_path / "left.png", (20, 15), (0, 0, 0.5, 1))           # not the content's size
    out = _run(small_images, vgg, [small_images["starry_night"], "none"], iterations=5,
               masks=(str(sky), str(_mask(tmp_path / "right.png", (20, 15), (0.5, 0, 1, 1)))))
    photo = resize_pil(Image.open(small_images["tubingen"]), size=out.size)[0]
    error = (pil_to_tensor(out)[0] - photo).abs()
    assert error[:, :, 19:].mean() < 1 / 255          # the 'none' half, away from the soft edge
    assert error[:, :, :13].mean() > 0.05             # the styled half is painted


def test_each_region_is_closer_to_its_own_style(small_images, vgg, tmp_path):
    a, b = small_images["starry_night"], small_images["kandinsky"]
    left = _mask(tmp_path / "left.png", (48, 36), (0, 0, 0.5, 1))
    right = _mask(tmp_path / "right.png", (48, 36), (0.5, 0, 1, 1))
    out = _run(small_images, vgg, [a, b], masks=(str(left), str(right)))
    layers = ["relu1_1", "relu2_1", "relu3_1"]
    feats = vgg(pil_to_tensor(out), layers)
    grams = {s: vgg(resize_pil(Image.open(s), long_side=32), layers) for s in (a, b)}

    def distance(mask_path, style):
        mask = masks.mask_tensor(masks.load_mask(mask_path), out.size)
        return sum(float((masks.guided_gram(feats[l], masks.layer_mask(mask, l))
                          - losses.gram(grams[style][l], normalise=True)).pow(2).sum()) for l in layers)

    assert distance(left, a) < distance(left, b)
    assert distance(right, b) < distance(right, a)


# ---------------------------------------------------------------- presets

def test_shipped_presets_are_valid_and_paper_is_the_paper():
    found = presets.available()
    assert {"paper", "balanced", "keep-colors", "ink"} <= set(found)
    for name, preset in found.items():
        assert preset.description, name
        config = presets.config_for(name)
        validate(config, 1)
        control.validate(config, ["style.jpg"])
    paper = presets.config_for("paper")
    assert (paper.content_layers, paper.style_layers) == (PAPER_CONTENT_LAYERS, PAPER_STYLE_LAYERS)
    assert (paper.ratio, paper.init, paper.pooling, paper.color, paper.tv_weight) == (1e-3, "noise", "avg",
                                                                                     "transfer", 0.0)
    assert presets.config_for("keep-colors").color == "luminance"


def test_preset_precedence_defaults_then_preset_then_options(tmp_path):
    user = tmp_path / "mine.toml"
    user.write_text('[mine]\ndescription = "test"\niterations = 7\nratio = 1\nstyle_layers = "relu1_1,relu2_1"\n'
                    'scales = [32, 64]\n')
    parse = build_parser().parse_args
    base = ["transfer", "c.jpg", "s.jpg", "-o", "o.png", "--presets-file", str(user), "--preset", "mine"]
    config = config_of(parse(base))
    assert (config.iterations, config.ratio, config.style_layers, config.scales) == (7, 1.0, ("relu1_1", "relu2_1"),
                                                                                    (32, 64))
    assert config.size == TransferConfig().size                       # untouched by the preset: the default
    assert config_of(parse([*base, "--iterations", "9"])).iterations == 9   # given explicitly: wins


@pytest.mark.parametrize("text, message", [
    ('[x]\ndescription = "d"\nlearning_rate = 1\n', "[x] learning_rate: unknown option"),
    ('[x]\ndescription = "d"\niterations = "many"\n', "[x] iterations: expected int"),
    ('[x]\ndescription = "d"\ncolor = "sepia"\n', "[x] color: must be one of"),
    ("[x\n", "not valid TOML"),
])
def test_bad_presets_file_is_one_line_exit_2(tmp_path, capsys, text, message):
    user = tmp_path / "bad.toml"
    user.write_text(text)
    assert main(["presets", "--presets-file", str(user)]) == 2
    err = capsys.readouterr().err
    assert message in err and "bad.toml" in err and err.count("\n") == 1


def test_presets_command_lists_names_and_descriptions():
    code, out, err = run_cli("presets")
    assert code == 0, err
    lines = dict(line.split(None, 1) for line in out.strip().splitlines())
    assert {"paper", "balanced", "keep-colors", "ink"} <= set(lines) and all(lines.values())


# ---------------------------------------------------------------- CLI bad input and recolor

def test_transfer_cli_bad_masks_and_presets(small_images, tmp_path, capsys):
    c, s = small_images["tubingen"], small_images["starry_night"]
    (tmp_path / "notes.txt").write_text("sky")
    Image.new("L", (4, 4), 0).save(tmp_path / "black.png")
    out = tmp_path / "o.png"
    cases = [
        (["--masks", str(tmp_path / "notes.txt")], "notes.txt: not an image"),
        (["--masks", str(tmp_path / "black.png")], "black.png: mask is empty"),
        (["--masks", f"{tmp_path / 'black.png'},{tmp_path / 'black.png'}"], "--masks has 2 entries for 1"),
        (["--preset", "watercolour"], "unknown preset 'watercolour'"),
        (["--presets-file", str(tmp_path / "nope.toml"), "--preset", "x"], "nope.toml: file not found"),
    ]
    for extra, message in cases:
        assert main(["transfer", str(c), str(s), "-o", str(out), "--quiet", *extra]) == 2, extra
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not out.exists()


def test_recolor_command(small_images, tmp_path, capsys):
    content = Image.open(small_images["tubingen"])
    stylised = tmp_path / "stylised.png"
    Image.open(small_images["starry_night"]).resize(content.size).save(stylised)
    out = tmp_path / "out.png"
    assert main(["recolor", str(stylised), str(small_images["tubingen"]), "-o", str(out)]) == 0
    got = color.rgb_to_yiq(pil_to_tensor(Image.open(out)).double())
    assert (got[:, 1:] - color.rgb_to_yiq(pil_to_tensor(content).double())[:, 1:]).abs().max() < 1.5 / 255
    assert main(["recolor", str(stylised), str(small_images["tubingen"]), "-o", str(out), "--color", "match"]) == 0
    mu, _ = color.color_statistics(pil_to_tensor(Image.open(out)))
    assert torch.allclose(mu, color.color_statistics(pil_to_tensor(content))[0], atol=0.01)
    capsys.readouterr()
    assert main(["recolor", str(stylised), str(small_images["kandinsky"]), "-o", str(out)]) == 2
    assert "aspect ratio" in capsys.readouterr().err
