"""Tests of impasto.cli.transfer: --style-layers-for from the command line; bad masks and presets are one line."""

from PIL import Image

from impasto.cli.main import build_parser, main
from impasto.cli.transfer import config_of
from impasto.gatys import inputs


def test_style_layers_for_from_the_command_line():
    args = build_parser().parse_args(["transfer", "c.jpg", "s1.jpg", "dir/s2.jpg", "-o", "o.png",
                                      "--style-layers-for", "s2.jpg", "relu1_1,relu2_1",
                                      "--style-layers-for", "1", "relu4_1"])
    layers = inputs.per_style_layers(config_of(args), args.styles)
    assert layers == [("relu4_1",), ("relu1_1", "relu2_1")]


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
