"""Presets (impasto.presets) and the ``presets`` command (issue 5)."""

import pytest

from conftest import run_cli
from impasto import TransferConfig, presets
from impasto.cli.main import build_parser, main
from impasto.cli.transfer import config_of
from impasto.config import PAPER_CONTENT_LAYERS, PAPER_STYLE_LAYERS
from impasto.gatys.inputs import validate


def test_shipped_presets_are_valid_and_paper_is_the_paper():
    found = presets.available()
    assert {"paper", "balanced", "keep-colors", "ink"} <= set(found)
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
