"""The paper's figures (Gatys et al. figures 1 and 3), the −γ extension of seed 000, the contact
sheet and the `reconstruct`/`figure` commands — on the real VGG-19 and tiny images."""

import numpy as np
import pytest
import torch
from PIL import Image

from impasto import Cancel, ImpastoError, Interrupted, TransferConfig, transfer
from impasto.image import imageio
from impasto.cli.main import main
from impasto.config import PAPER_STYLE_LAYERS, GridConfig, ReconstructConfig
from impasto.loss.terms import CONTENT_STYLE_CEILING, content_style_term, style_targets, style_term
from impasto.gatys import run as gatys_run
from impasto.paper import figures, reconstruct
from impasto.paper.sheet import Cell, contact_sheet

from conftest import EXAMPLES, run_cli


@pytest.fixture(autouse=True)
def one_thread(monkeypatch):
    """One intra-op thread: on a CPU shared with other jobs, two threads per process are many
    times slower (threads wait on each other). ``set_threads`` is what the jobs call on entry."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setattr(reconstruct, "set_threads", lambda: None)
    monkeypatch.setattr(gatys_run, "set_threads", lambda: None)
    yield
    torch.set_num_threads(before)


def style_distance(vgg, image: torch.Tensor, reference: torch.Tensor, layers=PAPER_STYLE_LAYERS) -> float:
    """L_style(reference, image) (eq. 5, w_l = 1/len(layers))."""
    term = style_term(style_targets(vgg, [reference], [1.0], layers), [1.0 / len(layers)] * len(layers), 1.0)
    with torch.no_grad():
        return float(term.fn(vgg(image, layers), image))


def correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pixel correlation of two (1, 3, H, W) images, each channel centred on its own mean (so
    that matching colours alone, which a texture should, do not count as a copy)."""
    a, b = a - a.mean((2, 3), keepdim=True), b - b.mean((2, 3), keepdim=True)
    return float((a * b).sum() / (a.norm() * b.norm()))


# ---------------------------------------------------------------- figure 1: reconstructions

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


def test_figure_reconstructions_sheet(vgg, small_images, tmp_path):
    events = []
    sheet = figures.figure_reconstructions(small_images["tubingen"], small_images["starry_night"],
                                         ReconstructConfig(size=32, iterations=2), cache_dir=tmp_path / "cells",
                                         callback=events.append, network=vgg)
    assert sorted({cell(e) for e in events}) == list(range(10)) and events[-1].done == 20
    assert len(list((tmp_path / "cells").glob("*.png"))) == 10
    assert sheet.width > 6 * 32 and sheet.height > 2 * 32


# ---------------------------------------------------------------- figure 3: the grid, and resuming it

def grid(small_images, tmp_path, vgg, callback, **changes):
    config = GridConfig(size=32, iterations=3, depths=(1, 3), ratios=(1e-4, 1e-2)).replace(**changes)
    return figures.figure_grid(small_images["tubingen"], small_images["starry_night"], config,
                             cache_dir=tmp_path / "grid.png.cells", callback=callback, network=vgg)


def cell(event) -> int:
    """The 0-based cell of a figure's progress event ("cell 3/4 (c) 1e-3" -> 2)."""
    return int(event.stage.split()[1].split("/")[0]) - 1


def cached(event) -> bool:
    return event.stage.endswith("(cached)")


def test_grid_resumes_after_interruption(vgg, small_images, tmp_path):
    cancel = Cancel()

    def stop_in_third_cell(event):
        if cell(event) == 2:
            cancel.set()

    config = GridConfig(size=32, iterations=3, depths=(1, 3), ratios=(1e-4, 1e-2))
    with pytest.raises(Interrupted) as stopped:
        figures.figure_grid(small_images["tubingen"], small_images["starry_night"], config,
                          cache_dir=tmp_path / "grid.png.cells", callback=stop_in_third_cell, network=vgg,
                          cancel=cancel)
    assert [c.size for c in stopped.value.partial] == [(32, 24)] * 2  # the finished cells
    assert len(list((tmp_path / "grid.png.cells").glob("*.png"))) == 2

    resumed = []
    first = grid(small_images, tmp_path, vgg, resumed.append)
    assert {cell(e) for e in resumed if cached(e)} == {0, 1}
    assert {cell(e) for e in resumed if not cached(e)} == {2, 3}
    assert resumed[-1].done == resumed[-1].total == 12

    again = []
    second = grid(small_images, tmp_path, vgg, again.append)
    assert all(cached(e) for e in again) and len(again) == 4
    assert first.tobytes() == second.tobytes()

    changed = []
    grid(small_images, tmp_path, vgg, changed.append, seed=1)  # another argument: nothing reused
    assert not any(cached(e) for e in changed)


def test_grid_cells_converge_and_sheet_is_labelled(vgg, small_images, tmp_path):
    events = []
    sheet = grid(small_images, tmp_path, vgg, events.append, iterations=15)
    for k in range(4):  # each cell is a real transfer: its loss falls well below the noise's
        totals = [e.losses["total"] for e in events if cell(e) == k]
        assert len(totals) == 15 and min(totals) < 0.5 * totals[0]
    gray = np.asarray(sheet.convert("L"))
    w, h = imageio.fit_long_side(Image.open(small_images["tubingen"]).size, 32)
    assert sheet.width >= 2 * w and sheet.height >= 2 * h
    assert (gray[: sheet.height // 5] < 100).any()       # title and column headings drawn
    assert (gray[:, : sheet.width // 5] < 100).any()     # row labels drawn


# ---------------------------------------------------------------- the −γ extension (seed 000)

def test_gamma_pushes_away_from_the_photos_style(vgg, small_images):
    config = TransferConfig(size=32, iterations=20, init="noise", scales=1, precision="fp32")
    photo = imageio.load_image(small_images["tubingen"], long_side=32)
    distance = {}
    for gamma in (0.0, 0.3 * config.beta):
        out = transfer(small_images["tubingen"], small_images["starry_night"],
                       config.replace(content_style_weight=gamma), network=vgg)
        distance[gamma] = style_distance(vgg, imageio.pil_to_tensor(out), photo)
    assert distance[0.3 * config.beta] > 1.2 * distance[0.0]


def test_gamma_term_is_bounded(vgg, small_images):
    photo = imageio.load_image(small_images["tubingen"], long_side=32)
    painting = imageio.load_image(small_images["starry_night"], long_side=32)
    layers = ("relu1_1", "relu2_1")
    targets = style_targets(vgg, [painting], [1.0], layers)
    term = content_style_term(vgg, photo, targets, [0.5, 0.5], gamma=7.0)
    assert term.weight == -7.0 and term.layers == layers
    ceiling = CONTENT_STYLE_CEILING * style_distance(vgg, photo, painting, layers)
    with torch.no_grad():
        assert float(term.fn(vgg(photo, layers), photo)) == pytest.approx(0.0, abs=1e-3)
    far = (torch.rand(photo.shape, generator=torch.Generator().manual_seed(0)) * 40 - 20).requires_grad_()
    value = term.fn(vgg(far, layers), far)
    assert value.item() == pytest.approx(ceiling, rel=1e-5)
    value.backward()
    assert float(far.grad.abs().max()) == 0.0  # beyond the bound nothing pushes further


def test_gamma_must_stay_below_beta(small_images):
    with pytest.raises(ImpastoError, match="content-style-weight"):
        transfer(small_images["tubingen"], small_images["starry_night"],
                 TransferConfig(size=32, iterations=1, content_style_weight=1000.0))


# ---------------------------------------------------------------- labels and the contact sheet

def test_labels():
    assert figures.paper_name("relu3_1") == "conv3_1" and figures.paper_name("conv4_2") == "conv4_2"
    assert figures.subset_label(1) == "conv1_1"
    assert figures.subset_label(2) == "conv1_1, conv2_1"
    assert figures.subset_label(5) == "conv1_1 ... conv5_1"
    assert [figures.ratio_label(r) for r in (1e-5, 8e-4, 5e-3, 1e-2)] == ["1e-5", "8e-4", "5e-3", "1e-2"]


def test_contact_sheet_places_cells_and_draws_labels():
    red, blue = Image.new("RGB", (40, 30), (255, 0, 0)), Image.new("RGB", (20, 30), (0, 0, 255))
    sheet = contact_sheet([[Cell(red, "a"), Cell(blue, "b")], [Cell(None, "empty"), Cell(red, "d")]],
                          ["row one", "row two"], ["col A", "col B"], "A title")
    pixels = sheet.load()
    reds = [(x, y) for x in range(sheet.width) for y in range(sheet.height) if pixels[x, y] == (255, 0, 0)]
    assert len(reds) == 2 * 40 * 30                        # both red cells pasted whole
    blues = [(x, y) for x in range(sheet.width) for y in range(sheet.height) if pixels[x, y] == (0, 0, 255)]
    assert len(blues) == 20 * 30
    x0 = min(x for x, _ in reds)
    dark_left = [(x, y) for x in range(x0) for y in range(sheet.height) if sum(pixels[x, y]) < 200]
    assert dark_left                                       # row labels drawn left of the cells


# ---------------------------------------------------------------- the commands

def test_cli_reconstruct_style(small_images, tmp_path):
    """The installed entry point, end to end: any texture size."""
    out = tmp_path / "texture.png"
    code, _, err = run_cli("reconstruct", "style", small_images["starry_night"], "--layers", "relu1_1,relu2_1",
                           "--size", 32, "--iterations", 2, "--texture-size", "40,24", "--quiet", "-o", out)
    assert code == 0, err
    assert Image.open(out).size == (40, 24)


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
