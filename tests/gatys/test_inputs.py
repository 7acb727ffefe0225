"""Control over what is transferred: colour, regions and scale (impasto.control, issue 5).

Option checks, per-style layers and scales, style masks and colour pre-processing against the real VGG-19;
short end-to-end runs on 32 px images.
"""

import pytest
import torch
from PIL import Image

from conftest import _mask
from impasto import ImpastoError, TransferConfig, transfer
from impasto.image import color
from impasto.loss import losses
from impasto.cli.main import build_parser, main
from impasto.cli.transfer import config_of
from impasto.image.imageio import pil_to_tensor, resize_to_tensor
from impasto.gatys import inputs
from impasto.gatys import targets
from impasto.image import masks
from impasto.loss import guided

FAST = dict(size=32, precision="fp32", device="cpu")


# ---------------------------------------------------------------- options

def test_control_option_errors(small_images):
    styles = [small_images["starry_night"], small_images["kandinsky"]]
    cases = [
        (dict(), [styles[0], "none"], "'none' needs --masks"),
        (dict(masks=("a.png",)), styles, "--masks has 1 entries for 2 style images"),
        (dict(masks=("a.png", "b.png"), style_blend=(1.0, 1.0)), styles, "--style-blend does not combine"),
        (dict(style_scales=(1.0, 0.0)), styles, "--style-scales must be above 0"),
        (dict(style_layers_for=(("monet.jpg", "relu1_1"),)), styles, "monet.jpg: not one of the style images"),
        (dict(style_layers_for=(("2", "relu9_9"),)), styles, "unknown layer 'relu9_9'"),
        (dict(masks=("a.png",)), ["none"], "at least one style image"),
    ]
    for changes, given, message in cases:
        with pytest.raises(ImpastoError, match=message):
            inputs.validate(TransferConfig(**changes), given)


# ---------------------------------------------------------------- scale control

def test_style_layers_for_and_scales_pick_each_style_targets(small_images, vgg):
    a, b = small_images["starry_night"], small_images["kandinsky"]
    config = TransferConfig(**FAST, style_scales=(1.0, 0.5),
                            style_layers_for=(("starry_night.png", "relu1_1,relu2_1"), ("2", ("relu3_1", "relu4_1"))))
    plan = inputs.prepare(config, small_images["tubingen"], [a, b])
    style = targets.scale_style_targets(vgg, config, plan, 48, (48, 36))
    assert list(style.targets) == ["relu1_1", "relu2_1", "relu3_1", "relu4_1"]
    assert style.weights == [0.25] * 4
    feats_a = vgg(resize_to_tensor(Image.open(a), long_side=48), ["relu1_1"])
    feats_b = vgg(resize_to_tensor(Image.open(b), long_side=24), ["relu3_1"])   # measured at half size
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
    plan = inputs.prepare(config, a, [tmp_path / "both.png"])
    got = targets.style_grams(vgg, plan, 0, 128)
    for l in config.style_layers:
        own = {name: losses.gram(vgg(resize_to_tensor(img, size=(64, 40)), [l])[l], normalise=True) for name, img in
               (("a", a), ("b", b))}
        assert (got[l] - own["a"]).norm() < (got[l] - own["b"]).norm() / 2


def test_colour_preprocessing_of_the_inputs(small_images):
    content, style = Image.open(small_images["tubingen"]), Image.open(small_images["starry_night"])
    photo = resize_to_tensor(content, size=(32, 24)).double()
    plan = inputs.prepare(TransferConfig(**FAST, color="match"), content, [style])
    mu, cov = color.color_statistics(pil_to_tensor(plan.styles[0]).double())
    mu_c, cov_c = color.color_statistics(photo)
    assert torch.linalg.norm(mu - mu_c) < 0.02 * torch.linalg.norm(mu_c)      # after 8-bit rounding
    assert torch.linalg.norm(cov - cov_c) < 0.05 * torch.linalg.norm(cov_c)
    plan = inputs.prepare(TransferConfig(**FAST, color="luminance"), content, [style])
    seen, painted = pil_to_tensor(plan.content).double(), pil_to_tensor(plan.styles[0]).double()
    assert color.rgb_to_yiq(seen)[:, 1:].abs().max() < 1e-6 and color.rgb_to_yiq(painted)[:, 1:].abs().max() < 1e-6
    y_c, y_s = color.luminance(photo), color.luminance(painted)
    assert y_s.mean().item() == pytest.approx(y_c.mean().item(), abs=0.01)
    assert y_s.std().item() == pytest.approx(y_c.std().item(), rel=0.05)


def test_style_layers_for_from_the_command_line():
    args = build_parser().parse_args(["transfer", "c.jpg", "s1.jpg", "dir/s2.jpg", "-o", "o.png",
                                      "--style-layers-for", "s2.jpg", "relu1_1,relu2_1",
                                      "--style-layers-for", "1", "relu4_1"])
    layers = inputs.per_style_layers(config_of(args), args.styles)
    assert layers == [("relu4_1",), ("relu1_1", "relu2_1")]


# ---------------------------------------------------------------- end to end

def _run(small_images, vgg, styles, **changes):
    config = TransferConfig(**{**FAST, "iterations": 20, "init": "noise", **changes})
    return transfer(small_images["tubingen"], styles, config, network=vgg)


def test_luminance_output_has_the_content_chrominance(small_images, vgg):
    out = _run(small_images, vgg, [small_images["starry_night"]], color="luminance", iterations=5)
    content = resize_to_tensor(Image.open(small_images["tubingen"]), size=out.size).double()
    got = color.rgb_to_yiq(pil_to_tensor(out).double())
    want = color.rgb_to_yiq(content)
    assert (got[:, 1:] - want[:, 1:]).abs().max() < 1.5 / 255            # rounding to 8 bits only
    assert (got[:, :1] - want[:, :1]).abs().mean() > 0.03                # the luminance is stylised


def test_region_without_style_keeps_the_photo(small_images, vgg, tmp_path):
    sky = _mask(tmp_path / "left.png", (20, 15), (0, 0, 0.5, 1))           # not the content's size
    out = _run(small_images, vgg, [small_images["starry_night"], "none"], iterations=5,
               masks=(str(sky), str(_mask(tmp_path / "right.png", (20, 15), (0.5, 0, 1, 1)))))
    photo = resize_to_tensor(Image.open(small_images["tubingen"]), size=out.size)[0]
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
    grams = {s: vgg(resize_to_tensor(Image.open(s), long_side=32), layers) for s in (a, b)}

    def distance(mask_path, style):
        mask = masks.mask_tensor(masks.load_mask(mask_path), out.size)
        return sum(float((guided.guided_gram(feats[l], guided.layer_mask(mask, l))
                          - losses.gram(grams[style][l], normalise=True)).pow(2).sum()) for l in layers)

    assert distance(left, a) < distance(left, b)
    assert distance(right, b) < distance(right, a)


# ---------------------------------------------------------------- CLI bad input

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
