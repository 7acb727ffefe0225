"""Tests of impasto.cli.figure: `impasto figure grid` keeps its cells; bad input to figure, reconstruct, transfer is one line."""

import pytest

from conftest import EXAMPLES, run_cli
from impasto.cli.main import main

pytestmark = pytest.mark.usefixtures("jobs_on_one_thread")  # conftest: one thread, set_threads a no-op


def test_cli_figure_grid_keeps_cells(small_images, tmp_path, capsys):
    sheet = tmp_path / "grid.png"
    argv = ["figure", "grid", str(small_images["tubingen"]), str(small_images["starry_night"]), "--depths", "2",
            "--ratios", "1e-3", "--size", "32", "--iterations", "2", "-o", str(sheet)]
    assert main(argv) == 0
    assert "grid.png.cells" in capsys.readouterr().err
    assert sheet.is_file() and len(list((tmp_path / "grid.png.cells").glob("d2-r0.001-*.png"))) == 1


@pytest.mark.parametrize("argv, message", [
    (("reconstruct", "content", "missing.jpg", "-o", "out.png"), "missing.jpg: file not found"),
    (("reconstruct", "content", EXAMPLES / "tubingen.jpg", "--layer", "conv9_1", "-o", "out.png"), "unknown layer"),
    (("reconstruct", "style", EXAMPLES / "tubingen.jpg", "--texture-size", "8", "-o", "out.png"), "--texture-size"),
    (("figure", "grid", EXAMPLES / "tubingen.jpg", EXAMPLES / "starry_night.jpg", "--depths", "0,6",
      "-o", "g.png"), "--depths"),
    (("figure", "grid", EXAMPLES / "tubingen.jpg", "missing.jpg", "-o", "g.png"), "missing.jpg: file not found"),
    (("figure", "reconstructions", EXAMPLES / "tubingen.jpg", "-o", "sheet.gif"), "sheet.gif: output must end"),
    (("figure", "reconstructions", EXAMPLES / "tubingen.jpg", "--size", "8", "-o", "s.png"), "--size"),
    (("transfer", EXAMPLES / "tubingen.jpg", EXAMPLES / "starry_night.jpg", "--content-style-weight", "-1",
      "-o", "out.png"), "--content-style-weight"),
])
def test_cli_bad_input(argv, message, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_cli_bad_input_no_traceback(tmp_path):
    code, _, err = run_cli("figure", "grid", "missing.jpg", EXAMPLES / "starry_night.jpg", "-o", tmp_path / "g.png")
    assert code == 2 and err.startswith("impasto: error: missing.jpg") and "Traceback" not in err
