"""Tests of impasto.cli.fast: `impasto fast` keeps colours, runs the bundled models; bad input (train's too) is one line."""

import os

import pytest
import torch
from PIL import Image

from conftest import EXAMPLES, run_cli
from impasto.fast.model import FastModel, load_model, save_model
from impasto.fast.network import TransformNet


def test_fast_keeps_colours_with_luminance(tmp_path):
    from impasto.image import color
    from impasto.image.imageio import load_image

    torch.manual_seed(2)
    model = save_model(FastModel(TransformNet(0.25), ["s"]), tmp_path / "m.pt")
    photo = tmp_path / "photo.png"
    Image.open(EXAMPLES / "tubingen.jpg").convert("RGB").resize((40, 30)).save(photo)
    code, _, err = run_cli("fast", model, photo, "-o", tmp_path / "out.png", "--color", "luminance")
    assert code == 0, err
    chroma_in = color.rgb_to_yiq(load_image(photo))[:, 1:]
    chroma_out = color.rgb_to_yiq(load_image(tmp_path / "out.png"))[:, 1:]
    assert (chroma_in - chroma_out).abs().mean() < 0.02


@pytest.mark.parametrize("args, message", [
    (["fast", "nomodel", "photo.png", "-o", "o.png"], "nomodel: no such model file or bundled model"),
    (["fast", "M", "missing.jpg", "-o", "o.png"], "missing.jpg: file not found"),
    (["fast", "M", "photo.png", "-o", "o.png", "--mix", "0.5,0.5"], "--mix: 2 weights for a model of 1 styles"),
    (["fast", "M", "photo.png", "photo.png", "-o", "o.png"], "need an output folder"),
    (["train", "S", "--data", "nodir", "-o", "m.pt"], "nodir: no such folder of training photos"),
    (["train", "S", "--data", ".", "-o", "m.txt"], "m.txt: model file must end in .pt"),
    (["train", "nostyle.jpg", "--data", ".", "-o", "m.pt"], "nostyle.jpg: file not found"),
])
def test_bad_input_is_one_line(tmp_path, style, args, message):
    torch.manual_seed(3)
    save_model(FastModel(TransformNet(0.25), ["s"]), tmp_path / "M")
    Image.new("RGB", (20, 20)).save(tmp_path / "photo.png")
    args = [str(style) if a == "S" else a for a in args]
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        code, out, err = run_cli(*args)
    finally:
        os.chdir(cwd)
    assert code == 2
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_bundled_models_work_out_of_the_box(tmp_path, small_images):
    from impasto.fast.model import bundled_models
    from impasto.image.imageio import load_image

    assert {"starry_night", "kandinsky"} <= set(bundled_models())
    for name in ("starry_night", "kandinsky"):
        model = load_model(name)
        assert model.styles == [name] and model.net.width == 0.5
        out = tmp_path / f"{name}.png"
        code, _, err = run_cli("fast", "--model", name, small_images["tubingen"], "-o", out)
        assert code == 0, err
        photo, painted = (load_image(p) for p in (small_images["tubingen"], out))
        assert painted.shape == photo.shape
        assert (painted - photo).abs().mean() > 0.04  # really restyled, not a copy of the photo
