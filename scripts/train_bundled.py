"""Train the bundled fast models (src/impasto/data/models/*.pt) on photos the project can obtain
offline: the example photo (examples/tubingen.jpg), the colour sample photos that ship inside
scikit-image's wheel (astronaut, chelsea, coffee, rocket, motorcycle, …) and matplotlib's
grace_hopper.jpg. Random crops, scales and flips (impasto.fast.data) stretch them into many views.

Usage (needs `pip install scikit-image`; matplotlib comes with the test extra):
    python scripts/train_bundled.py [--styles starry_night,kandinsky] [--steps 600] [--crop 128] [--width 0.5]
It prints the training time of each model; the README quotes it.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from importlib import resources
from pathlib import Path

from impasto.config import TrainConfig
from impasto.fast.train import Trainer, train
from impasto.cli.progress import ProgressBar

ROOT = Path(__file__).resolve().parent.parent
SKIMAGE_PHOTOS = ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
                  "grass.png", "gravel.png", "brick.png")
# Width 0.5 (a few hundred kB); 128 px crops, batch 4: what two CPU cores train in well under an hour.
BUNDLED = TrainConfig(width=0.5, crop=128, batch=4, steps=600, style_size=256, checkpoint_every=100,
                      preview_every=100)


def gather_photos(folder: Path) -> int:
    """Copy every offline photo into ``folder``; returns how many."""
    sources = [ROOT / "examples" / "tubingen.jpg"]
    try:
        data = resources.files("skimage") / "data"
        sources += [Path(str(data / name)) for name in SKIMAGE_PHOTOS if (data / name).is_file()]
    except ModuleNotFoundError:
        print("scikit-image not installed: training on fewer photos (pip install scikit-image)")
    try:
        sources.append(Path(str(resources.files("matplotlib") / "mpl-data" / "sample_data" / "grace_hopper.jpg")))
    except ModuleNotFoundError:
        pass
    for src in sources:
        if src.is_file():
            shutil.copy(src, folder / src.name)
    return len(list(folder.iterdir()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--styles", default="starry_night,kandinsky")
    parser.add_argument("--steps", type=int, default=BUNDLED.steps)
    parser.add_argument("--crop", type=int, default=BUNDLED.crop)
    parser.add_argument("--width", type=float, default=BUNDLED.width, help="channel width (0.25 for the fastest)")
    parser.add_argument("--out", default=str(ROOT / "src" / "impasto" / "data" / "models"))
    args = parser.parse_args()
    photos = Path(tempfile.mkdtemp(prefix="impasto-photos-"))
    print(f"{gather_photos(photos)} training photos in {photos}")
    config = BUNDLED.replace(steps=args.steps, crop=args.crop, width=args.width)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    for name in args.styles.split(","):
        output = Path(args.out) / f"{name}.pt"
        trainer = Trainer(config, [ROOT / "examples" / f"{name}.jpg"], photos, output)
        bar = ProgressBar()
        start = time.perf_counter()
        train(trainer, callback=bar)
        bar.close()
        Path(f"{output}.ckpt").unlink(missing_ok=True)
        preview = output.with_name(f"{name}.preview.png")
        if preview.exists():
            shutil.move(preview, photos.parent / preview.name)
        print(f"{name}: {config.steps} steps of {config.batch}x{config.crop}px, width {config.width}, "
              f"{time.perf_counter() - start:.0f} s -> {output} ({output.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
