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
from ..image.imageio import PHOTO_SUFFIXES, open_image, pil_to_tensor


def find_photos(folder: str | os.PathLike) -> list[Path]:
    """Every image file under ``folder`` (by suffix), sorted, so the order is the same everywhere."""
    root = Path(folder)
    if not root.is_dir():
        raise ImpastoError(f"{root}: no such folder of training photos")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())
    if not files:
        raise ImpastoError(f"{root}: no photos found (looked for {', '.join(sorted(PHOTO_SUFFIXES))})")
    return files


SCALE_JITTER = (0.8, 1.25)  # the photo's long side is --side times a factor drawn from this range


def scaled_size(size: tuple[int, int], side: int, crop: int, g: torch.Generator) -> tuple[int, int]:
    """A photo's ``(width, height)`` scaled so that its long side is ``side``·s (s drawn uniformly in
    :data:`SCALE_JITTER`): the network sees things at about the size they have in a ``side`` px
    picture, the size its style is measured at. Never below ``crop`` on the short side."""
    low, high = SCALE_JITTER
    s = low + (high - low) * torch.rand((), generator=g).item()
    factor = max(side * s / max(size), crop / min(size))
    return max(crop, round(size[0] * factor)), max(crop, round(size[1] * factor))


def random_crop(img: Image.Image, crop: int, side: int, g: torch.Generator) -> torch.Tensor:
    """:func:`scaled_size`, then a random ``crop``² window and a random flip."""
    w, h = scaled_size(img.size, side, crop, g)
    img = img.resize((w, h), Image.Resampling.BICUBIC)
    left = int(torch.randint(0, w - crop + 1, (), generator=g))
    top = int(torch.randint(0, h - crop + 1, (), generator=g))
    x = pil_to_tensor(img.crop((left, top, left + crop, top + crop)))[0]
    return x.flip(-1) if torch.rand((), generator=g).item() < 0.5 else x


class PhotoBatches:
    """``batch(step)`` -> ``(batch, 3, crop, crop)`` for this rank; deterministic in (seed, step)."""

    def __init__(self, folder, crop: int = 256, batch: int = 4, seed: int = 0, rank: int = 0, world: int = 1,
                 side: int = 512):
        self.files = find_photos(folder)
        self.crop, self.size, self.seed, self.rank, self.world, self.side = crop, batch, seed, rank, world, side
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
            return random_crop(img, self.crop, self.side, g)
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


# ---------------------------------------------------------------- frame pairs for the temporal loss

FRAME_CACHE_BYTES = 1 << 30  # at most this much of cropped pairs, flows and masks is kept (oldest dropped)


def find_frame_pairs(folder: str | os.PathLike) -> list[tuple[Path, Path]]:
    """Every pair of consecutive frames under ``folder``: images ``NAME_0`` (frame t-1) and ``NAME_1``
    (frame t) in one folder (any photo suffix), as ``scripts/gather_photos.py`` writes them into
    ``DIR/frames/{train,val}``; sorted, so the order is the same everywhere. Unpaired files are ignored."""
    root = Path(folder)
    if not root.is_dir():
        raise ImpastoError(f"{root}: no such folder of frame pairs")
    found: dict[tuple[Path, str], dict[str, Path]] = {}
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() in PHOTO_SUFFIXES and p.stem[-2:] in ("_0", "_1") and p.is_file():
            found.setdefault((p.parent, p.stem[:-2]), {})[p.stem[-1]] = p
    pairs = [(f["0"], f["1"]) for _, f in sorted(found.items()) if "0" in f and "1" in f]
    if not pairs:
        raise ImpastoError(f"{root}: no frame pairs found (images NAME_0 and NAME_1: frames t-1 and t, as "
                           f"scripts/gather_photos.py writes them into DIR/frames/train)")
    return pairs


def crop_pair(a: Image.Image, b: Image.Image, crop: int, side: int, g: torch.Generator) -> tuple[Image.Image, Image.Image]:
    """:func:`random_crop` of two frames of one size with the same draw: the same scale, window and
    flip on both, so the motion between them is kept (only scaled)."""
    if a.size != b.size:
        raise ImpastoError(f"the frames of a pair differ in size: {a.size} and {b.size}")
    w, h = scaled_size(a.size, side, crop, g)
    left = int(torch.randint(0, w - crop + 1, (), generator=g))
    top = int(torch.randint(0, h - crop + 1, (), generator=g))
    flip = torch.rand((), generator=g).item() < 0.5
    out = []
    for img in (a, b):
        img = img.resize((w, h), Image.Resampling.BICUBIC).crop((left, top, left + crop, top + crop))
        out.append(img.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if flip else img)
    return out[0], out[1]


class FramePairs:
    """``batch(step)`` -> ``(previous, current, backward, mask)`` for this rank: frames t-1 and t
    ``(batch, 3, crop, crop)`` in [0, 1], the backward flow of the inputs (t -> t-1) ``(batch, crop,
    crop, 2)`` and frame t's reliability ``(batch, 1, crop, crop)`` (:mod:`impasto.image.flow`: DIS,
    Ruder et al.'s consistency check).

    Deterministic in (seed, step) as :class:`PhotoBatches`: the pair order of each epoch is a
    permutation drawn from the seed. Each pair's crop (scale, window, flip, the same on both frames)
    is drawn from (seed, pair) once for the whole run, so its flow and reliability are computed once,
    at crop size, and kept (up to :data:`FRAME_CACHE_BYTES`; a dropped one is computed again, the same).
    Pairs with an unreadable frame are skipped (the next pair in the order takes their place) and
    their files counted in :attr:`skipped`."""

    def __init__(self, folder, crop: int = 256, batch: int = 4, seed: int = 0, rank: int = 0, world: int = 1,
                 side: int = 512, preset: str = "medium"):
        from ..image.flow import require_opencv

        require_opencv()  # one clear line now, not at the first step
        self.pairs = find_frame_pairs(folder)
        self.crop, self.size, self.seed, self.rank, self.world, self.preset = crop, batch, seed, rank, world, preset
        self.side = side
        self.skipped: set[Path] = set()
        self._orders: dict[int, torch.Tensor] = {}
        self._cache: dict[int, tuple[torch.Tensor, ...]] = {}
        per_pair = crop * crop * (2 * 3 * 4 + 2 * 4 + 4)  # two float frames, the flow, the mask
        self._room = max(1, FRAME_CACHE_BYTES // per_pair)

    def _order(self, epoch: int) -> torch.Tensor:
        if epoch not in self._orders:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch + 7_777_777)
            self._orders = {epoch: torch.randperm(len(self.pairs), generator=g)}
        return self._orders[epoch]

    def _pair(self, index: int) -> int:
        n = len(self.pairs)
        return int(self._order(index // n)[index % n])

    def prepared(self, k: int) -> tuple[torch.Tensor, ...] | None:
        """Pair ``k`` (of :attr:`pairs`) cropped, with its flow and mask; None if a frame is unreadable."""
        if k in self._cache:
            return self._cache[k]
        import numpy as np

        from ..image.flow import flow, reliability

        paths = self.pairs[k]
        if any(p in self.skipped for p in paths):
            return None
        try:
            a, b = (open_image(p) for p in paths)
            g = torch.Generator().manual_seed(self.seed * 7_919 + k + 3_333_331)
            a, b = (np.asarray(img.convert("RGB")) for img in crop_pair(a, b, self.crop, self.side, g))
        except ImpastoError:
            self.skipped.update(paths)
            return None
        backward = flow(b, a, self.preset)
        mask = reliability(backward, flow(a, b, self.preset))
        item = (pil_to_tensor(Image.fromarray(a))[0], pil_to_tensor(Image.fromarray(b))[0],
                torch.from_numpy(backward), torch.from_numpy(mask)[None])
        if len(self._cache) >= self._room:
            del self._cache[next(iter(self._cache))]
        self._cache[k] = item
        return item

    def _load(self, index: int) -> tuple[torch.Tensor, ...]:
        """The pair at position ``index`` of the stream, or the next readable one."""
        for offset in range(len(self.pairs)):
            item = self.prepared(self._pair(index + offset))
            if item is not None:
                return item
        raise ImpastoError(f"none of the {len(self.pairs)} frame pairs under the frames folder could be read")

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        first = (step * self.world + self.rank) * self.size
        items = [self._load(first + i) for i in range(self.size)]
        return tuple(torch.stack(parts) for parts in zip(*items))
