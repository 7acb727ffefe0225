"""Tests of impasto.paper.reconstruct: content and style reconstructions from white noise (figure 1), their input checks."""

import pytest
import torch
from PIL import Image

from conftest import style_distance
from impasto import ImpastoError
from impasto.config import GridConfig, ReconstructConfig
from impasto.image import imageio
from impasto.paper import figures, reconstruct

pytestmark = pytest.mark.usefixtures("jobs_on_one_thread")  # conftest: one thread, set_threads a no-op


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pixel correlation of two (1, 3, H, W) images, each channel centred on its own mean (so
    that matching colours alone, which a texture should, do not count as a copy)."""
    a, b = a - a.mean((2, 3), keepdim=True), b - b.mean((2, 3), keepdim=True)
    return float((a * b).sum() / (a.norm() * b.norm()))


def test_content_reconstruction_low_layer_keeps_pixels(vgg, small_images):
    """Paper, figure 1: conv1_1 gives the pixels back almost exactly, conv5_1 does not."""
    config = ReconstructConfig(size=40, iterations=30, seed=0)
    photo = imageio.load_image(small_images["tubingen"], long_side=40)
    errors = {}
    for layer in ("relu1_1", "relu5_1"):
        out = reconstruct.reconstruct_content(small_images["tubingen"], layer, config, network=vgg)
        assert out.size == (photo.shape[-1], photo.shape[-2])
        errors[layer] = float((imageio.pil_to_tensor(out) - photo).pow(2).mean())
    noise_error = float((reconstruct.white_noise(photo.shape, 0) - photo).pow(2).mean())
    assert errors["relu1_1"] < 0.03 < noise_error
    assert errors["relu1_1"] * 4 < errors["relu5_1"]


def test_style_reconstruction_is_a_texture_not_a_copy(vgg, small_images):
    layers = ("relu1_1", "relu2_1", "relu3_1")
    painting = imageio.load_image(small_images["starry_night"], long_side=64)
    events = []
    out = reconstruct.reconstruct_style(small_images["starry_night"], layers,
                                  ReconstructConfig(size=64, iterations=30), callback=events.append, network=vgg)
    result = imageio.pil_to_tensor(out)
    assert result.shape == painting.shape
    start = reconstruct.white_noise(painting.shape, 0)
    assert style_distance(vgg, result, painting, layers) * 10 <= style_distance(vgg, start, painting, layers)
    assert abs(correlation(result, painting)) < 0.2 and correlation(painting, painting) == pytest.approx(1.0)
    assert [e.done for e in events] == list(range(1, 31)) and events[-1].total == 30


def test_style_reconstruction_any_output_size(vgg, small_images):
    config = ReconstructConfig(size=48, iterations=2, texture_size=(70, 20))
    out = reconstruct.reconstruct_style(small_images["starry_night"], ["relu1_1"], config, network=vgg)
    assert out.size == (70, 20)
    square = reconstruct.reconstruct_style(small_images["starry_night"], ["relu1_1"],
                                     config.replace(texture_size=24), network=vgg)
    assert square.size == (24, 24)


def test_reconstruction_input_errors(vgg, small_images):
    config = ReconstructConfig(size=48, iterations=1)
    with pytest.raises(ImpastoError, match="unknown layer 'conv9_1'"):
        reconstruct.reconstruct_content(small_images["tubingen"], "conv9_1", config, network=vgg)
    with pytest.raises(ImpastoError, match="--texture-size"):
        reconstruct.reconstruct_style(small_images["tubingen"], ["relu1_1"], config.replace(texture_size=(8, 40)),
                                network=vgg)
    with pytest.raises(ImpastoError, match="short side must be at least 16"):
        reconstruct.reconstruct_content(Image.new("RGB", (200, 10)), "relu1_1", config, network=vgg)
    with pytest.raises(ImpastoError, match="--depths"):
        figures.grid_axes(GridConfig(depths=(1, 6)))
    with pytest.raises(ImpastoError, match="--ratios"):
        figures.grid_axes(GridConfig(ratios=(1e-3, 1e-3)))
