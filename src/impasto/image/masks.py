"""Region masks as images, for spatial control (Gatys, Ecker, Bethge, Hertzmann & Shechtman,
"Controlling Perceptual Factors in Neural Style Transfer", arXiv 1611.07865): read, resized to the
image, overlaps shared out, and the region that keeps the photo. Their guided Gram matrices on the
network's layers are :mod:`impasto.loss.guided`.

A mask is any image Pillow reads: white (255) is inside the region, black outside, grays are soft
edges (transparent pixels count as white). Masks are ``(1, 1, H, W)`` tensors in [0, 1].
"""

from __future__ import annotations

import os

import torch
from PIL import Image

from . import imageio
from ..errors import ImpastoError

NONE = "none"  # a style argument that paints nothing: its region keeps the photo


def is_none(style) -> bool:
    """True for ``None`` or the word ``none`` in the style list."""
    return style is None or (isinstance(style, str) and style.strip().lower() == NONE)


def load_mask(path: str | os.PathLike) -> Image.Image:
    """Read a mask as an 8-bit gray image; an unreadable or all-black mask is an error."""
    img = imageio.open_image(path).convert("L")
    if img.getextrema()[1] == 0:
        raise ImpastoError(f"{path}: mask is empty (all black); white marks the region")
    return img


def mask_tensor(mask: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """Gray mask -> ``(1, 1, h, w)`` in [0, 1] at ``size`` (w, h).

    A mask of another size is stretched to the image's (bilinear, antialiased when shrinking,
    so hard edges become soft rather than jagged).
    """
    if mask.size != size:
        mask = mask.resize(size, Image.Resampling.BILINEAR)
    return imageio.pil_to_tensor(mask)[:, :1]


def regions(masks: torch.Tensor, styled: list[bool]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(R, 1, H, W)`` masks -> (the same, scaled where they overlap; the keep-the-photo weight).

    Where masks overlap (their sum exceeds 1) they are scaled to sum to 1, so the styles blend;
    whatever the styled masks leave uncovered (``1 − Σ``, including regions whose style is
    ``none``) keeps the photo.
    """
    scaled = masks / masks.sum(0, keepdim=True).clamp_min(1.0)
    flags = torch.tensor(styled, dtype=scaled.dtype).view(-1, 1, 1, 1)
    keep = (1 - (scaled * flags).sum(0, keepdim=True)).clamp(0, 1)
    return scaled, keep


def hold(image: torch.Tensor, keep: torch.Tensor, photo: torch.Tensor) -> torch.Tensor:
    """``k · photo + (1 − k) · image``: the keep region shows the photo, soft edges blend."""
    return keep * photo + (1 - keep) * image

