"""Tests of impasto.paper.sheet: the contact sheet places its cells and draws the labels."""

from PIL import Image

from impasto.paper.sheet import Cell, contact_sheet


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
