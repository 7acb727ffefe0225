"""The ``recolor`` command (issue 5)."""

import torch
from PIL import Image

from impasto.image import color
from impasto.cli.main import main
from impasto.image.imageio import pil_to_tensor


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
