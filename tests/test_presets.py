"""Presets (impasto.presets) and the ``presets`` command (issue 5)."""

import pytest
import torch

from conftest import run_cli
from impasto import TransferConfig, presets, transfer
from impasto.image import imageio
from impasto.image.color import luminance, rgb_to_yiq
from impasto.cli.main import build_parser, main
from impasto.cli.transfer import config_of
from impasto.config import PAPER_CONTENT_LAYERS, PAPER_STYLE_LAYERS
from impasto.gatys.inputs import validate


def test_shipped_presets_are_valid_and_paper_is_the_paper():
    found = presets.available()
    assert {"paper", "balanced", "keep-colors", "ink", "ink-silk", "blue-green"} <= set(found)
    for name, preset in found.items():
        assert preset.description, name
        config = presets.config_for(name)
        validate(config, ["style.jpg"])
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


def _synthetic_pair():
    """A coloured photo-like picture (a flat blue sky over a textured red-brown field, the horizon its
    main edge, at row 16) and a grey ink painting (paper 0.92 with dark strokes)."""
    gen = torch.Generator().manual_seed(0)
    photo = torch.empty(1, 3, 48, 64)
    photo[..., :16, :] = torch.tensor([0.45, 0.65, 0.95]).view(1, 3, 1, 1)
    field = torch.tensor([0.6, 0.35, 0.2]).view(1, 3, 1, 1) + 0.12 * torch.randn(1, 1, 32, 64, generator=gen)
    photo[..., 16:, :] = field.clamp(0, 1)
    painting = torch.full((1, 3, 64, 64), 0.92)
    for _ in range(40):
        y, x = (int(v) for v in torch.randint(2, 60, (2,), generator=gen))
        painting[..., y:y + 2, max(0, x - 6):x + 6] = 0.15
    return imageio.tensor_to_pil(photo), imageio.tensor_to_pil(painting)


def test_ink_preset_paints_a_synthetic_pair_in_ink(vgg):
    """The ink preset: the painting's chroma (none), the flat sky left near the paper's tone and
    untextured, and a dark stroke along the horizon."""
    photo, painting = _synthetic_pair()
    config = presets.config_for("ink").replace(size=64, precision="fp32", device="cpu")
    out = imageio.pil_to_tensor(transfer(photo, [painting], config, network=vgg))
    chroma = float(rgb_to_yiq(out)[:, 1:].pow(2).sum(1).sqrt().mean())
    assert chroma < 0.02, chroma                                    # the painting's grey, not the photo's blue
    y = luminance(out)[0, 0]
    sky = y[2:12, 4:60]
    assert abs(float(sky.mean()) - 0.92) < 0.08 and float(sky.std()) < 0.05, (float(sky.mean()), float(sky.std()))
    horizon, field = float(y[15:19].mean()), float(y[26:44].mean())
    assert horizon < field - 0.05, (horizon, field)                 # drawn as a dark line
