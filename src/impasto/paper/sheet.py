"""Labelled contact sheets: a grid of images with column headings, row labels and a caption under
each cell, drawn with Pillow (the paper's figures 1 and 3 are laid out this way).

Labels use Pillow's default font (scalable where Pillow has FreeType) and plain ASCII text, so
the sheet reads the same on every installation. Cells of different sizes are centred in boxes of
the largest cell's size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from PIL import Image, ImageDraw, ImageFont

BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)
MUTED = (90, 90, 90)


@dataclass
class Cell:
    image: Image.Image | None   # None: an empty box (a cell not made)
    caption: str = ""


def font(size: int) -> ImageFont.ImageFont:
    """Pillow's default font at ``size`` px; the fixed bitmap font where FreeType is missing."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow < 10.1, or built without FreeType
        return ImageFont.load_default()


def _text_size(draw: ImageDraw.ImageDraw, text: str, face) -> tuple[int, int]:
    if not text:
        return 0, 0
    left, top, right, bottom = draw.multiline_textbbox((0, 0), text, font=face, spacing=2)
    return right - left, bottom - top


def wrap(draw: ImageDraw.ImageDraw, text: str, face, width: int) -> str:
    """Break ``text`` at spaces so each line fits ``width`` px (a single longer word stays whole)."""
    lines = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            trial = f"{line} {word}" if line else word
            if line and _text_size(draw, trial, face)[0] > width:
                lines.append(line)
                trial = word
            line = trial
        lines.append(line)
    return "\n".join(lines)


def _widest_word(draw: ImageDraw.ImageDraw, texts: Sequence[str], face) -> int:
    return max([_text_size(draw, w, face)[0] for t in texts for w in t.split()] + [0])


class _Layout:
    """Box, margins and wrapped labels of a sheet; boxes are as large as the largest cell (and
    as wide as the longest word of a caption or heading, so no label runs into the next)."""

    def __init__(self, rows: Sequence[Sequence[Cell]], row_labels: Sequence[str],
                 col_labels: Sequence[str], title: str):
        images = [c.image for r in rows for c in r if c.image is not None]
        box_h = max([i.height for i in images] + [16])
        self.pt = max(13, min(24, box_h // 8))            # labels readable at any cell size
        self.face, self.small = font(self.pt), font(max(11, self.pt - 2))
        self.pad = max(6, self.pt // 2)
        draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
        captions = [c.caption for r in rows for c in r]
        box_w = max([i.width for i in images] + [16, _widest_word(draw, captions, self.small),
                                                _widest_word(draw, col_labels, self.face)])
        self.box = (box_w, box_h)
        self.captions = [[wrap(draw, c.caption, self.small, box_w) for c in r] for r in rows]
        self.col_labels = [wrap(draw, t, self.face, box_w) for t in col_labels]
        self.label_w = max([_text_size(draw, t, self.face)[0] for t in row_labels] + [0])
        self.label_w = self.label_w + 2 * self.pad if self.label_w else 0
        self.head_h = max([_text_size(draw, t, self.face)[1] for t in self.col_labels] + [0]) + self.pad
        self.cap_h = max([_text_size(draw, c, self.small)[1] for r in self.captions for c in r] + [0]) + self.pad
        self.n_rows, self.n_cols = len(rows), max(len(r) for r in rows)
        width = self.label_w + self.pad + self.n_cols * (box_w + self.pad)
        self.title = wrap(draw, title, self.face, width - 2 * self.pad)
        self.title_h = _text_size(draw, self.title, self.face)[1] + 2 * self.pad if title else self.pad

    def origin(self, row: int, col: int) -> tuple[int, int]:
        """Top-left corner of cell (row, col)'s box."""
        x = self.label_w + self.pad + col * (self.box[0] + self.pad)
        y = self.title_h + self.head_h + row * (self.box[1] + self.cap_h + self.pad)
        return x, y

    def canvas_size(self) -> tuple[int, int]:
        return self.origin(self.n_rows, self.n_cols)  # one box past the last: the margins are the padding


def contact_sheet(rows: Sequence[Sequence[Cell]], row_labels: Sequence[str] = (),
                  col_labels: Sequence[str] = (), title: str = "") -> Image.Image:
    """Lay out ``rows`` of :class:`Cell` under ``col_labels``, beside ``row_labels``, below ``title``."""
    lay = _Layout(rows, row_labels, col_labels, title)
    sheet = Image.new("RGB", lay.canvas_size(), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.multiline_text((lay.pad, lay.pad), lay.title, font=lay.face, fill=INK, spacing=2)
    for col, text in enumerate(lay.col_labels):
        x, y = lay.origin(0, col)
        w, _ = _text_size(draw, text, lay.face)
        draw.multiline_text((x + (lay.box[0] - w) // 2, y - lay.head_h), text, font=lay.face, fill=INK,
                            spacing=2, align="center")
    for row, cells in enumerate(rows):
        _draw_row(sheet, draw, lay, row, cells, row_labels[row] if row < len(row_labels) else "")
    return sheet


def _draw_row(sheet: Image.Image, draw: ImageDraw.ImageDraw, lay: _Layout, row: int,
              cells: Sequence[Cell], label: str) -> None:
    box = lay.box
    if label:
        _, h = _text_size(draw, label, lay.face)
        draw.multiline_text((lay.pad, lay.origin(row, 0)[1] + (box[1] - h) // 2), label, font=lay.face,
                            fill=INK, spacing=2)
    for col, cell in enumerate(cells):
        x, y = lay.origin(row, col)
        if cell.image is not None:
            sheet.paste(cell.image, (x + (box[0] - cell.image.width) // 2, y + (box[1] - cell.image.height) // 2))
        else:
            draw.rectangle((x, y, x + box[0] - 1, y + box[1] - 1), outline=MUTED)
        caption = lay.captions[row][col]
        w, _ = _text_size(draw, caption, lay.small)
        draw.multiline_text((x + (box[0] - w) // 2, y + box[1] + lay.pad // 2), caption, font=lay.small,
                            fill=MUTED, spacing=2, align="center")
