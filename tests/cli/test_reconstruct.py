"""Tests of impasto.cli.reconstruct: `impasto reconstruct style` end to end, at any texture size."""

from PIL import Image

from conftest import run_cli


def test_cli_reconstruct_style(small_images, tmp_path):
    """The installed entry point, end to end: any texture size."""
    out = tmp_path / "texture.png"
    code, _, err = run_cli("reconstruct", "style", small_images["starry_night"], "--layers", "relu1_1,relu2_1",
                           "--size", 32, "--iterations", 2, "--texture-size", "40,24", "--quiet", "-o", out)
    assert code == 0, err
    assert Image.open(out).size == (40, 24)
