"""Print-size pictures (issue 26): what the exact tiled evaluation costs against the whole picture at once.

overhead: at a size where both fit (--size, 1536 px), the time of one evaluation of the objective and its
gradient (forward and backward through VGG-19 to relu5_1, the default transfer's terms) over tiles of
each --tiles side, against the whole picture at once, as a ratio; each tiled side twice: recomputing
every tile but the last in the second pass (keep 1, the least memory) and keeping as many tiles'
activations as fit in free memory (what `impasto transfer` does). Medians of --repeat evaluations after
one warm-up, the untiled evaluation timed between them to share the machine's drift. Not a test.
Usage: python -m benchmarks.print [--size 1536] [--tiles 384,512,768,1024] [--precision fp32] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmarks.common import prepare

from impasto import TransferConfig
from impasto.gatys.inputs import prepare as prepare_inputs, tiles_held
from impasto.gatys.objective import build_objective
from impasto.image import imageio
from impasto.loss import tiled
from impasto.net.vgg import load_network
from impasto.runtime import set_threads


def seconds(objective, image: torch.Tensor, repeat: int) -> float:
    """Median wall time of one evaluation with its gradient (after a warm-up)."""
    times = []
    for k in range(repeat + 1):
        x = image.clone().requires_grad_(True)
        start = time.perf_counter()
        loss, _ = objective(x)
        loss.backward()
        if k:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def overhead(args) -> None:
    set_threads()
    config = TransferConfig(size=args.size, precision=args.precision, tile=0)
    with tempfile.TemporaryDirectory() as tmp:
        photo, painting = prepare("tubingen", args.size, Path(tmp)), prepare("starry_night", args.size, Path(tmp))
        inputs = prepare_inputs(config, photo, [painting])
    vgg = load_network(config)
    content = imageio.resize_to_tensor(inputs.content, size=imageio.fit_long_side(inputs.content.size, args.size))
    h, w = content.shape[-2:]
    layers = ("relu4_2", *config.style_layers)
    whole = build_objective(vgg, config, content, inputs, args.size)
    image = content.clone()
    print(f"{w}x{h} px, {args.precision}, tubingen x starry_night, default terms; margin {tiled.margin(layers)} px",
          flush=True)
    print(f"{'tile':>6} {'tiles':>6} {'held':>5} {'tiled s':>9} {'whole s':>9} {'ratio':>7}")
    for side in [int(t) for t in args.tiles.split(",")]:
        count = len(tiled.windows(h, w, side, layers))
        for keep in sorted({1, tiles_held(config.replace(tile=side), (w, h), side, layers)}):
            objective = build_objective(vgg, config, content, inputs, args.size, tile=side, keep=keep)
            t_tiled = seconds(objective, image, args.repeat)
            t_whole = seconds(whole, image, args.repeat)
            print(f"{side:>6} {count:>6} {keep:>5} {t_tiled:9.2f} {t_whole:9.2f} {t_tiled / t_whole:7.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1536)
    parser.add_argument("--tiles", default="384,512,768,1024")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--repeat", type=int, default=3)
    overhead(parser.parse_args())


if __name__ == "__main__":
    main()
