"""Tests of impasto.paper.figures: the sheet of figure 1 and the grid of figure 3 (resumed from kept cells), the labels."""

import numpy as np
import pytest
from PIL import Image

from impasto import Cancel, Interrupted
from impasto.config import GridConfig, ReconstructConfig
from impasto.image import imageio
from impasto.paper import figures

pytestmark = pytest.mark.usefixtures("jobs_on_one_thread")  # conftest: one thread, set_threads a no-op


# ---------------------------------------------------------------- figure 1: reconstructions

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


# ---------------------------------------------------------------- labels

def test_labels():
    assert figures.paper_name("relu3_1") == "conv3_1" and figures.paper_name("conv4_2") == "conv4_2"
    assert figures.subset_label(1) == "conv1_1"
    assert figures.subset_label(2) == "conv1_1, conv2_1"
    assert figures.subset_label(5) == "conv1_1 ... conv5_1"
    assert [figures.ratio_label(r) for r in (1e-5, 8e-4, 5e-3, 1e-2)] == ["1e-5", "8e-4", "5e-3", "1e-2"]
