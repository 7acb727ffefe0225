"""Tests of impasto.gatys.inputs: option checks, colour pre-processing of the inputs (issue 5), the coarse-to-fine plan."""

import pytest
import torch
from PIL import Image

from impasto import ImpastoError, TransferConfig
from impasto.gatys import inputs
from impasto.gatys.inputs import scale_iterations, scale_sides
from impasto.image import color
from impasto.image.imageio import pil_to_tensor, resize_to_tensor


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


# ---------------------------------------------------------------- colour

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


# ---------------------------------------------------------------- scales

def test_coarse_to_fine_plan():
    assert scale_sides(TransferConfig(size=512, scales=3)) == [128, 256, 512]
    assert scale_sides(TransferConfig(size=512, scales=(200, 512))) == [200, 512]
    assert scale_iterations(TransferConfig(size=512, scales=3)) == [57, 28, 15]   # 4:2:1
    assert scale_sides(TransferConfig(size=512, scales=0, scale_step=2 ** 0.5)) == [128, 181, 256, 362, 512]
    assert scale_sides(TransferConfig(size=1024, scales=3, scale_step=2 ** 0.5)) == [512, 724, 1024]
    assert scale_sides(TransferConfig(size=512)) == [512]  # the default: one scale
    assert scale_sides(TransferConfig(size=512, scales=0)) == [128, 256, 512]  # auto coarse-to-fine
    assert scale_sides(TransferConfig(size=200)) == [200]
    assert scale_sides(TransferConfig(size=1024, scales=1)) == [1024]
    with pytest.raises(ImpastoError):
        scale_sides(TransferConfig(size=512, scales=(300, 200, 512)))


def test_print_recipe_above_2048_px():
    """Not given, --scales is one scale up to 2048 px and the print recipe above: the screen-size job
    first (all of --iterations), then halvings refined with 6 iterations at the full size, twice as
    many at each coarser scale."""
    assert scale_sides(TransferConfig(size=2048)) == [2048]
    assert scale_sides(TransferConfig(size=4096)) == [512, 1024, 2048, 4096]
    assert scale_iterations(TransferConfig(size=4096)) == [100, 24, 12, 6]
    assert scale_sides(TransferConfig(size=3000)) == [750, 1500, 3000]
    assert scale_iterations(TransferConfig(size=3000, iterations=60)) == [60, 12, 6]
    assert scale_sides(TransferConfig(size=4096, scales=1)) == [4096]          # asked for: one scale
    assert scale_iterations(TransferConfig(size=4096, scales=1)) == [100]


def test_scale_iterations_given():
    config = TransferConfig(size=512, scales=(256, 512), scale_iterations=(30, 4))
    assert scale_iterations(config) == [30, 4]
    with pytest.raises(ImpastoError, match="2 counts for 3 scales"):
        scale_iterations(config.replace(scales=3))
