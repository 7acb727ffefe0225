"""Make the images of docs/control.md from the bundled examples.

    .venv/bin/python docs/make_control_images.py [--size 256] [--iterations 150]

Writes docs/images/control-colors.png (each --color mode), control-masks.png (two regions) and the
inputs it made: the sky/ground masks of the Tübingen photo. (The ink presets' sheet comes from
`python -m benchmarks.ink`, on real ink paintings.)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from impasto import TransferConfig, transfer
from impasto.image import color
from impasto.image.imageio import resize_to_tensor, tensor_to_pil
from impasto.presets import config_for
from impasto.net.vgg import load_network

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES, OUT = ROOT / "examples", ROOT / "docs" / "images"
PHOTO, STARRY, SCREAM = EXAMPLES / "tubingen.jpg", EXAMPLES / "starry_night.jpg", EXAMPLES / "the_scream.jpg"
LABEL_H, GAP = 18, 4


def sky_mask(photo: Path = PHOTO) -> Image.Image:
    """The sky of the Tübingen photo: blue, bright pixels in the upper part, cleaned and softened."""
    img = Image.open(photo).convert("RGB")
    a = np.asarray(img, dtype=np.float64) / 255
    r, b = a[..., 0], a[..., 2]
    rows = np.arange(a.shape[0])[:, None] < 0.62 * a.shape[0]
    sky = (b > r + 0.12) & (b > 0.45) & rows
    mask = Image.fromarray((sky * 255).astype(np.uint8), "L")
    mask = mask.filter(ImageFilter.MedianFilter(9)).filter(ImageFilter.GaussianBlur(3))
    return mask


def cell(img: Image.Image, label: str, height: int) -> Image.Image:
    img = img.convert("RGB")
    img = img.resize((round(img.width * height / img.height), height), Image.Resampling.LANCZOS)
    out = Image.new("RGB", (img.width, height + LABEL_H), "white")
    out.paste(img, (0, LABEL_H))
    ImageDraw.Draw(out).text((2, 3), label, fill="black")
    return out


def sheet(cells: list[tuple[Image.Image, str]], height: int, path: Path) -> None:
    tiles = [cell(img, label, height) for img, label in cells]
    out = Image.new("RGB", (sum(t.width for t in tiles) + GAP * (len(tiles) - 1), height + LABEL_H), "white")
    x = 0
    for t in tiles:
        out.paste(t, (x, 0))
        x += t.width + GAP
    out.save(path, optimize=True)
    print(f"wrote {path.relative_to(ROOT)} ({path.stat().st_size // 1024} KiB)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="long side of each result")
    parser.add_argument("--iterations", type=int, default=150)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    common = dict(size=args.size, iterations=args.iterations)
    balanced = config_for("balanced").replace(**common)
    vgg = load_network(balanced)
    photo = Image.open(PHOTO)

    def run(label, styles, config):
        start = time.perf_counter()
        img = transfer(PHOTO, styles, config, network=vgg)
        print(f"  {label}: {time.perf_counter() - start:.0f} s", flush=True)
        return img, label

    # 1. colour modes, same photo and painting, the balanced preset otherwise; then the painting
    #    recoloured by --color match with each variant (what the network sees as the style)
    photo_t = resize_to_tensor(photo, long_side=args.size)
    starry_t = resize_to_tensor(Image.open(STARRY), long_side=args.size)
    sheet([(photo, "photo"), (Image.open(STARRY), "style"),
           run("--color transfer", STARRY, balanced),
           run("--color luminance", STARRY, balanced.replace(color="luminance")),
           run("--color match", STARRY, balanced.replace(color="match")),
           (tensor_to_pil(color.match_color(starry_t, photo_t, "pca")), "style, match pca"),
           (tensor_to_pil(color.match_color(starry_t, photo_t, "cholesky")), "style, match cholesky")],
          args.size * 3 // 4, OUT / "control-colors.png")

    # 2. two regions: the sky in one painting's style, the ground in another's, or kept
    sky = sky_mask()
    ground = Image.eval(sky, lambda v: 255 - v)
    sky.save(OUT / "tubingen-sky.png")
    ground.save(OUT / "tubingen-ground.png")
    masks = (str(OUT / "tubingen-sky.png"), str(OUT / "tubingen-ground.png"))
    sheet([(photo, "photo"), (sky, "sky mask"),
           run("sky: Starry Night, ground: Scream", [STARRY, SCREAM], balanced.replace(masks=masks)),
           run("sky: Starry Night, ground: none", [STARRY, "none"], balanced.replace(masks=masks))],
          args.size * 3 // 4, OUT / "control-masks.png")


if __name__ == "__main__":
    main()
