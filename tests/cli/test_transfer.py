"""Tests of impasto.cli.transfer: --style-layers-for from the command line; bad masks and presets are one line;
finished scales kept beside the output."""

import json
import subprocess
import sys
import time

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


def test_kill_9_loses_at_most_the_scale_in_progress(small_images, tmp_path):
    """A run of two scales killed (SIGKILL) in its second: no output written, the first scale kept
    beside it; the same command again goes on from it, writes the output and removes the kept scales."""
    out = tmp_path / "out.png"
    argv = [sys.executable, "-m", "impasto", "transfer", str(small_images["tubingen"]), str(small_images["starry_night"]),
            "-o", str(out), "--size", "64", "--scales", "32,64", "--iterations", "150", "--precision", "fp32",
            "--progress", "json"]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not list(tmp_path.glob("out.png.scales-*/scale_1.npy")) and time.time() < deadline:
        time.sleep(0.05)
    proc.kill()
    proc.communicate(timeout=60)
    assert list(tmp_path.glob("out.png.scales-*/scale_1.npy")) and not out.exists()
    again = subprocess.run(argv, stderr=subprocess.PIPE, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    first = json.loads(again.stderr.splitlines()[0])
    assert first["stage"] == "scale 1/2 (kept)" and first["done"] == 100
    assert Image.open(out).size == (64, 48) and sorted(p.name for p in tmp_path.iterdir()) == ["out.png"]
