"""Tests of impasto.cli.main, the ``impasto`` command line run as a subprocess: a good run, every kind of
bad input, Ctrl-C, and --help listing every option of the config."""

import signal
import subprocess
import sys
import time

from PIL import Image

from conftest import ctrl_c_reaches_it, run_cli


def test_transfer_writes_output(tmp_path, small_images):
    out = tmp_path / "out.webp"
    code, _, err = run_cli("transfer", small_images["tubingen"], small_images["starry_night"], "-o", out,
                           "--size", 48, "--iterations", 5, "--save-every", 5)
    assert code == 0, err
    assert Image.open(out).size == (48, 36)
    assert (tmp_path / "out_00005.webp").exists()
    assert "5/5" in err  # the progress bar


def _bad_inputs(tmp_path, small_images):
    c, s = small_images["tubingen"], small_images["starry_night"]
    (tmp_path / "text.jpg").write_text("not an image")
    Image.new("RGB", (64, 64)).save(tmp_path / "full.jpg")
    (tmp_path / "cut.jpg").write_bytes((tmp_path / "full.jpg").read_bytes()[:300])
    return {
        "missing": ([tmp_path / "missing.jpg", s], "missing.jpg: file not found"),
        "not image": ([tmp_path / "text.jpg", s], "text.jpg: not an image"),
        "truncated": ([c, tmp_path / "cut.jpg"], "cut.jpg: unreadable or truncated"),
        "layer": ([c, s, "--style-layers", "relu1_1,relu9_9"], "unknown layer 'relu9_9'"),
        "value": ([c, s, "--size", "-5"], "--size must be from 16 to 65536, got -5"),
        "type": ([c, s, "--iterations", "many"], "invalid int value"),
        "choice": ([c, s, "--optimizer", "sgd"], "invalid choice"),
        "init": ([c, s, "--init", tmp_path / "nofile.png"], "--init must be one of"),
        "weights": ([c, s, "--weights", tmp_path / "text.jpg"], "text.jpg: not a PyTorch weight file"),
    }


def test_bad_input_one_line_exit_2_no_output(tmp_path, small_images):
    out = tmp_path / "out.png"
    for name, (args, message) in _bad_inputs(tmp_path, small_images).items():
        code, _, err = run_cli("transfer", "-o", out, "--size", 32, "--iterations", 2, "--quiet", *args)
        assert code == 2, (name, err)
        assert message in err, (name, err)
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, (name, err)
        assert not out.exists(), name


def test_bad_output_path(tmp_path, small_images):
    for out, message in ((tmp_path / "o.gif", "must end in"), (tmp_path / "no" / "o.png", "does not exist")):
        code, _, err = run_cli("transfer", small_images["tubingen"], small_images["starry_night"], "-o", out)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_diverging_run_writes_nothing(tmp_path, small_images):
    out = tmp_path / "out.png"
    code, _, err = run_cli("transfer", small_images["tubingen"], small_images["starry_night"], "-o", out,
                           "--size", 32, "--iterations", 5, "--style-weight", "1e40", "--quiet")
    assert code == 1 and "diverged" in err and "Traceback" not in err
    assert not out.exists()


def test_ctrl_c_keeps_latest_result(tmp_path, small_images):
    out = tmp_path / "out.png"
    proc = subprocess.Popen([sys.executable, "-m", "impasto", "transfer", str(small_images["tubingen"]),
                             str(small_images["starry_night"]), "-o", str(out), "--size", "48",
                             "--iterations", "100000", "--save-every", "2", "--quiet"],
                            stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_reaches_it)
    deadline = time.time() + 120
    while not (tmp_path / "out_00002.png").exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert Image.open(out).size == (48, 36)


def test_help_lists_every_config_option():
    from impasto.config import TransferConfig, option_fields

    code, out, _ = run_cli("transfer", "--help")
    assert code == 0
    for f in option_fields(TransferConfig):
        assert "--" + f.name.replace("_", "-") in out


def test_a_command_alone_parses_as_the_whole_command_line():
    """main() builds only the sub-command it is given (a quicker start); the options are the same."""
    from impasto.cli.main import COMMANDS, build_parser

    def options(parser, name):
        sub = next(a for a in parser._actions if a.dest == "command").choices[name]
        return sorted((a.dest, tuple(a.option_strings), repr(a.default)) for a in sub._actions)

    whole = build_parser()
    for name in COMMANDS:
        alone = build_parser(name)
        assert list(next(a for a in alone._actions if a.dest == "command").choices) == [name]
        assert options(alone, name) == options(whole, name), name
