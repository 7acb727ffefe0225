"""Chinese ink painting: how much a result looks like ink (issue 25), for the defaults and the ink presets.

For every pair of a photo (--photos) and an ink painting (--paintings, by default the shipped ink-wash
and blue-green landscapes of ../shared/images), each configuration (--configs: the defaults and the
presets named) is run and scored on what makes ink look like ink:
- chroma: the output's mean chroma (YIQ's |IQ|) over the painting's (1: the painting's colourfulness;
  the photo's colours kept show as a ratio far above 1 on an ink-wash painting);
- voids: of the photo's flattest 20 % (local contrast), the share the output leaves at the paper's tone
  (luminance within 0.08 of the painting's paper) and untextured (local contrast below the photo's own
  20 % quantile there);
- strokes: how much darker the output's darkest pixel within 2 px is than its surroundings (Gaussian
  σ = 3 px mean) along the photo's strongest 5 % of edges, beyond what it is over the whole picture
  (0-255 grey levels; above 0: dark lines drawn where the photo has edges);
- style: the paper's style loss (fp32 evaluator) over the plain transfer's on the same pair.
Prints one line per configuration with the means over the pairs, and writes a sheet (--sheet): per
pair the photo, the painting and each configuration's result. Not a test.
Usage: python -m benchmarks.ink [--size 384] [--photos a.jpg,b.jpg] [--paintings 5,3,1,2]
                                [--configs default,ink,ink-silk] [--presets-file mine.toml]
                                [--sheet docs/images/ink-sheet.jpg]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import torch
from PIL import Image

from benchmarks.common import EXAMPLES, ROOT, Evaluator
from benchmarks.fast import resized, write_sheet

from impasto import TransferConfig, transfer
from impasto.image.color import luminance, rgb_to_yiq
from impasto.image.imageio import pil_to_tensor
from impasto.image.ink import gaussian_blur, local_contrast, paper_tone
from impasto.presets import config_for

SHARED = ROOT.parent / "shared" / "images"
FLAT_SHARE, EDGE_SHARE = 0.2, 0.05
PAPER_TOLERANCE = 0.08


def chroma(image: torch.Tensor) -> float:
    return float(rgb_to_yiq(image)[:, 1:].pow(2).sum(1).sqrt().mean())


def void_share(photo: torch.Tensor, out: torch.Tensor, paper: torch.Tensor) -> float:
    sigma = max(photo.shape[-2:]) / 100
    contrast = local_contrast(photo, sigma).flatten()
    flat = contrast <= torch.quantile(contrast, FLAT_SHARE)
    bare = (luminance(out) - luminance(paper)).abs().flatten() <= PAPER_TOLERANCE
    calm = local_contrast(out, sigma).flatten() <= torch.quantile(contrast, FLAT_SHARE)
    return float((bare & calm)[flat].float().mean())


def stroke_darkness(photo: torch.Tensor, out: torch.Tensor) -> float:
    edges = local_contrast(photo, 0).flatten()
    strong = edges >= torch.quantile(edges, 1 - EDGE_SHARE)
    y = luminance(out)
    darkest = -torch.nn.functional.max_pool2d(-y, 5, stride=1, padding=2)
    depth = (gaussian_blur(y, 3.0) - darkest).flatten()
    return float((depth[strong].mean() - depth.mean()) * 255)


def configs(names: list[str], size: int, presets_file: str | None) -> dict[str, TransferConfig]:
    return {name: (TransferConfig() if name == "default" else config_for(name, presets_file)).replace(size=size)
            for name in names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=384)
    parser.add_argument("--photos", default=str(EXAMPLES / "tubingen.jpg"), help="photos, comma-separated")
    parser.add_argument("--paintings", default="5,3,1,2", help="guohua_landscape_N of ../shared/images")
    parser.add_argument("--configs", default="default", help="'default' and preset names, comma-separated")
    parser.add_argument("--presets-file", help="presets of your own (TOML), e.g. candidates being tuned")
    parser.add_argument("--sheet", help="write a JPEG sheet: per pair the photo, the painting and each result")
    args = parser.parse_args()
    runs = configs(args.configs.split(","), args.size, args.presets_file)
    scores = {name: {"chroma": [], "voids": [], "strokes": [], "style": []} for name in runs}
    pictures = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for source in [Path(p) for p in args.photos.split(",")]:
            for n in args.paintings.split(","):
                photo_path = resized(source, args.size, folder)
                painting_path = resized(SHARED / f"guohua_landscape_{n}.png", args.size, folder)
                photo, painting = (pil_to_tensor(Image.open(p).convert("RGB")) for p in (photo_path, painting_path))
                score = Evaluator(photo_path, painting_path)
                plain = score(transfer(photo_path, painting_path, TransferConfig(size=args.size)))["style"]
                row = pictures.setdefault(f"{source.stem} / {n}", {"photo": Image.open(photo_path).convert("RGB"),
                                                                   "painting": Image.open(painting_path).convert("RGB")})
                for name, config in runs.items():
                    result = transfer(photo_path, painting_path, config)
                    out = pil_to_tensor(result)
                    s = scores[name]
                    s["chroma"].append(chroma(out) / max(chroma(painting), 1e-6))
                    s["voids"].append(void_share(photo, out, paper_tone(painting)))
                    s["strokes"].append(stroke_darkness(photo, out))
                    s["style"].append(score(result)["style"] / plain)
                    row[name] = result
                print(f"{source.stem} / guohua_landscape_{n}: done", flush=True)
    print(f"\n{len(pictures)} pairs at {args.size} px; means over the pairs")
    print(f"{'configuration':<16} {'chroma/painting':>16} {'voids kept':>11} {'stroke darkness':>16} {'style/plain':>12}")
    for name, s in scores.items():
        print(f"{name:<16} {statistics.mean(s['chroma']):16.2f} {statistics.mean(s['voids']):11.2f} "
              f"{statistics.mean(s['strokes']):16.1f} {statistics.mean(s['style']):12.2f}")
    if args.sheet:
        write_sheet(pictures, Path(args.sheet))


if __name__ == "__main__":
    main()
