"""Image input and output at the product's one tensor convention: float ``(1, 3, H, W)`` RGB in [0, 1].

Reading accepts anything Pillow decodes (first frame of animations), applies EXIF orientation and
converts grayscale, palette, CMYK, alpha (composited on white) and 16-bit images to 8-bit RGB.
Writing is atomic — a temporary file beside the target, then a rename — so an output is never
half-written, and it refuses non-finite pixels.

The same images are NumPy arrays of that shape (``pil_to_array``, ``array_to_pil``), and PyTorch
tensors are made from those: PyTorch is imported by the functions that make or read tensors only, so
the command line and a one-image run on onnxruntime never load it (about a second).
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps

from ..atomic import TEMP_PREFIX, atomic_write
from ..errors import ImpastoError

if TYPE_CHECKING:
    import torch

# Decoding larger images is refused (Pillow's decompression-bomb guard, made an error).
MAX_PIXELS = 100_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
# What is read as a photo where a folder is given (training photos, `impasto fast` on a folder).
PHOTO_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"})


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow mode as 8-bit RGB: 16-bit and float scaled, palettes expanded, alpha over white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        img = Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    elif img.mode == "F":
        arr = np.nan_to_num(np.asarray(img, dtype=np.float64))
        img = Image.fromarray(np.clip(arr * (255.0 if arr.max() <= 1 else 1) + 0.5, 0, 255).astype(np.uint8), "L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    return img.convert("RGB")


def open_image(path: str | os.PathLike) -> Image.Image:
    """Decode ``path`` to an 8-bit RGB Pillow image, or raise one clear :class:`ImpastoError`."""
    path = Path(path)
    if not path.exists():
        raise ImpastoError(f"{path}: file not found")
    if path.is_dir():
        raise ImpastoError(f"{path}: is a folder, not an image")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                img.seek(0)
                img.load()
                img = ImageOps.exif_transpose(img)
                return to_rgb(img)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImpastoError(f"{path}: image too large to decode safely (over {MAX_PIXELS:,} pixels)") from None
    except Image.UnidentifiedImageError:
        raise ImpastoError(f"{path}: not an image Pillow can read") from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImpastoError(f"{path}: unreadable or truncated image ({exc})") from None


def as_pil(image) -> Image.Image:
    """An image argument of the Python API — a path or a PIL image — as an 8-bit RGB PIL image."""
    if isinstance(image, Image.Image):
        return to_rgb(image)
    if isinstance(image, (str, os.PathLike)):
        return open_image(image)
    raise ImpastoError(f"expected an image path or PIL image, got {type(image).__name__}")


def fit_long_side(size: tuple[int, int], long_side: int) -> tuple[int, int]:
    """(width, height) scaled so that the longer side is ``long_side`` (aspect ratio kept)."""
    w, h = size
    scale = long_side / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def pil_to_array(img: Image.Image) -> np.ndarray:
    """8-bit RGB image -> ``(1, 3, H, W)`` float32 array in [0, 1]."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return np.ascontiguousarray(arr.transpose(2, 0, 1)[None])


def array_to_pil(image: np.ndarray) -> Image.Image:
    """``(1, 3, H, W)`` or ``(3, H, W)`` float array in [0, 1] -> 8-bit RGB image (clamped, rounded half
    to even)."""
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 4:
        image = image[0]
    if not np.isfinite(image).all():
        raise ImpastoError("the image holds NaN or inf values; refusing to write it")
    arr = np.round(np.clip(image, 0, 1) * np.float32(255.0)).astype(np.uint8).transpose(1, 2, 0)
    return Image.fromarray(np.ascontiguousarray(arr), "RGB")


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """8-bit RGB image -> ``(1, 3, H, W)`` float32 tensor in [0, 1]."""
    import torch

    return torch.from_numpy(pil_to_array(img))


def tensor_to_pil(image: torch.Tensor) -> Image.Image:
    """``(1, 3, H, W)`` or ``(3, H, W)`` tensor in [0, 1] -> 8-bit RGB image (clamped, rounded)."""
    return array_to_pil(image.detach().float().cpu().numpy())


def load_image(path, long_side: int | None = None, size: tuple[int, int] | None = None) -> torch.Tensor:
    """Read ``path`` as ``(1, 3, H, W)`` in [0, 1], resized to ``size`` (w, h) or to ``long_side``."""
    img = open_image(path)
    return resize_to_tensor(img, long_side, size)


def resized(img: Image.Image, long_side: int | None = None, size: tuple[int, int] | None = None) -> Image.Image:
    """A PIL image resized (Lanczos) to ``size`` (w, h) or ``long_side`` (itself when it has that size)."""
    if size is None and long_side is not None:
        size = fit_long_side(img.size, long_side)
    if size is not None and size != img.size:
        img = img.resize(size, Image.Resampling.LANCZOS)
    return img


def resize_to_tensor(img: Image.Image, long_side: int | None = None, size: tuple[int, int] | None = None) -> torch.Tensor:
    """A PIL image resized (Lanczos) to ``size`` (w, h) or ``long_side``, as ``(1, 3, H, W)`` in [0, 1]."""
    return pil_to_tensor(resized(img, long_side, size))


def check_writable(path: str | os.PathLike, suffixes, kind: str = "output", inputs=()) -> Path:
    """Fail before any work — not after a long run — if ``path`` cannot be written: a wrong extension,
    a folder, a missing folder or one under a file, a name too long for the file system, a folder
    where nothing can be written (tried with the temporary file :func:`atomic_write` will use), or one
    of the job's ``inputs`` (it would be overwritten)."""
    path = Path(path)
    if path.suffix.lower() not in suffixes:
        raise ImpastoError(f"{path}: {kind} must end in {', '.join(suffixes)}")
    check_name(path)
    if path.is_dir():
        raise ImpastoError(f"{path}: is a folder")
    check_folder(path)
    for given in inputs:
        if given is not None and same_file(path, Path(given)):
            raise ImpastoError(f"{path}: is also an input; writing it would destroy {given} — choose another output")
    return path


def check_name(path: Path) -> None:
    folder = next((p for p in [path.parent, *path.parent.parents] if is_dir(p)), Path("."))
    try:
        name_max = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        name_max = 255
    for part in path.parts:
        if len(os.fsencode(part)) > name_max:
            raise ImpastoError(f"{path}: the name {part[:24]}… is {len(os.fsencode(part))} bytes, longer than "
                               f"this file system allows ({name_max})")


def is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:
        return False


def check_folder(path: Path) -> None:
    folder = path.parent
    if not folder.is_dir():
        above = next((p for p in [folder, *folder.parents] if p.exists()), None)
        if above is not None and not above.is_dir():
            raise ImpastoError(f"{path}: {above} is a file, not a folder")
        raise ImpastoError(f"{path}: output folder {folder} does not exist")
    try:
        fd, probe = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=path.suffix or ".tmp", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise ImpastoError(f"{path}: cannot write in {folder} ({exc.strerror})") from None


def same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def check_output_path(path: str | os.PathLike, inputs=()) -> Path:
    """An image output: .png, .jpg, .jpeg or .webp, writable, and none of ``inputs``."""
    return check_writable(path, tuple(FORMATS), inputs=inputs)


def save_image(image, path: str | os.PathLike) -> Path:
    """Write a PIL image, an array or a tensor atomically; the format follows the extension."""
    path = check_output_path(path)
    if isinstance(image, Image.Image):
        img = image
    else:
        img = array_to_pil(image) if isinstance(image, np.ndarray) else tensor_to_pil(image)
    fmt = FORMATS[path.suffix.lower()]
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    return atomic_write(path, lambda tmp: img.save(tmp, fmt, **options))
