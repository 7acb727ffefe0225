"""Shared pieces of the benchmarks: pre-resized inputs and one fp32 evaluator of the paper's objective."""

from __future__ import annotations

import time
from pathlib import Path

import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

from impasto.image.imageio import fit_long_side, pil_to_tensor
from impasto.config import PAPER_CONTENT_LAYERS as PAPER_CONTENT, PAPER_STYLE_LAYERS as PAPER_STYLE
from impasto.loss.terms import REFERENCE_SIDE, Objective, content_scale, content_targets, pixels, content_term, style_targets, style_term
from impasto.net.vgg import VGG19

EXAMPLES = ROOT / "examples"
ALPHA, BETA = 1.0, 1e3  # α/β = 1e-3


def prepare(name: str, long_side: int, folder: Path) -> Path:
    """``examples/<name>.jpg`` resized once (Lanczos) to ``long_side``, as a PNG both tools read unchanged."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}_{long_side}.png"
    if not path.exists():
        img = Image.open(EXAMPLES / f"{name}.jpg").convert("RGB")
        img.resize(fit_long_side(img.size, long_side), Image.Resampling.LANCZOS).save(path)
    return path


class Evaluator:
    """The objective α·s·½Σ(F−P)² + β·Σ_l ⅕·E_l (Gatys et al. eq. 1, 4, 5, 7) in fp32, average pooling, on
    fixed images. ``s`` is impasto's default per-position factor (512 px image's pixels / this one's),
    so at 512 px it is the paper's objective exactly; ``normalization="paper"``: s = 1 at every size."""

    def __init__(self, content: Path, style: Path, normalization: str = "per-position"):
        self.vgg = VGG19(pooling="avg").set_precision("fp32", channels_last=True)
        c = pil_to_tensor(Image.open(content).convert("RGB"))
        s = pil_to_tensor(Image.open(style).convert("RGB"))
        self.size = (c.shape[-1], c.shape[-2])
        area = self.size[0] * self.size[1]
        self.scale = content_scale(normalization, area, area, pixels(fit_long_side(self.size, REFERENCE_SIDE)))
        terms = [content_term(content_targets(self.vgg, c, PAPER_CONTENT), [1.0], ALPHA, scale=self.scale),
                 style_term(style_targets(self.vgg, [s], [1.0], PAPER_STYLE), [0.2] * 5, BETA)]
        self.objective = Objective(self.vgg, terms)

    @torch.no_grad()
    def __call__(self, image) -> dict[str, float]:
        """Score an 8-bit PIL image (what the user gets) or a (1, 3, H, W) tensor in [0, 1]."""
        if isinstance(image, Image.Image):
            image = pil_to_tensor(image)
        return self.objective(image)[1]


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
