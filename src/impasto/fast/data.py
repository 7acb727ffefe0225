"""Training photos for the transform network: any folder tree of images (MS-COCO for a full run).

Batches are a pure function of (seed, step, rank): the photo order of each epoch is a permutation
drawn from the seed, and each crop's position and flip from (seed, index). So a resumed run sees
exactly the batches an uninterrupted run would, and DDP ranks see disjoint photos. Files that cannot
be decoded are skipped (the next photo in the order takes their place) and counted.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from PIL import Image

from ..errors import ImpastoError
from ..image.imageio import open_image, pil_to_tensor

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}


def find_photos(folder: str | os.PathLike) -> list[Path]:
    """Every image file under ``folder`` (by suffix), sorted, so the order is the same everywhere."""
    root = Path(folder)
    if not root.is_dir():
        raise ImpastoError(f"{root}: no such folder of training photos")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())
    if not files:
        raise ImpastoError(f"{root}: no photos found (looked for {', '.join(sorted(PHOTO_SUFFIXES))})")
    return files


def random_crop(img: Image.Image, crop: int, g: torch.Generator) -> torch.Tensor:
    """Shorter side scaled to ``crop``·s (s in [1, 1.5]), a random ``crop``² window, random flip."""
    scale = 1.0 + 0.5 * torch.rand((), generator=g).item()
    short = min(img.size)
    factor = crop * scale / short
    w, h = max(crop, round(img.width * factor)), max(crop, round(img.height * factor))
    img = img.resize((w, h), Image.Resampling.BICUBIC)
    left = int(torch.randint(0, w - crop + 1, (), generator=g))
    top = int(torch.randint(0, h - crop + 1, (), generator=g))
    x = pil_to_tensor(img.crop((left, top, left + crop, top + crop)))[0]
    return x.flip(-1) if torch.rand((), generator=g).item() < 0.5 else x


class PhotoBatches:
    """``batch(step)`` -> ``(batch, 3, crop, crop)`` for this rank; deterministic in (seed, step)."""

    def __init__(self, folder, crop: int = 256, batch: int = 4, seed: int = 0, rank: int = 0, world: int = 1):
        self.files = find_photos(folder)
        self.crop, self.size, self.seed, self.rank, self.world = crop, batch, seed, rank, world
        self.skipped: set[Path] = set()
        self._orders: dict[int, torch.Tensor] = {}

    def _order(self, epoch: int) -> torch.Tensor:
        if epoch not in self._orders:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._orders = {epoch: torch.randperm(len(self.files), generator=g)}
        return self._orders[epoch]

    def _file(self, index: int) -> Path:
        n = len(self.files)
        return self.files[int(self._order(index // n)[index % n])]

    def _load(self, index: int) -> torch.Tensor:
        """The photo at position ``index`` of the stream, or the next readable one."""
        for offset in range(len(self.files)):
            path = self._file(index + offset)
            if path in self.skipped:
                continue
            try:
                img = open_image(path)
            except ImpastoError:
                self.skipped.add(path)
                continue
            g = torch.Generator().manual_seed(self.seed * 7_919 + index)
            return random_crop(img, self.crop, g)
        raise ImpastoError(f"none of the {len(self.files)} photos under the data folder could be read")

    def first_photo(self):
        """The first readable photo in file order (the default preview)."""
        for path in self.files:
            try:
                return open_image(path)
            except ImpastoError:
                self.skipped.add(path)
        raise ImpastoError(f"none of the {len(self.files)} photos under the data folder could be read")

    def batch(self, step: int) -> torch.Tensor:
        first = (step * self.world + self.rank) * self.size
        return torch.stack([self._load(first + i) for i in range(self.size)])
