"""The default transfer: tubingen in the style of starry_night at 512 px, as `make demo` runs it.

Prints seconds per iteration, total seconds, peak memory and the final losses. Not a test.
Usage: python -m benchmarks.transfer [--size 512] [--iterations N]
"""

from __future__ import annotations

import argparse

from benchmarks.common import EXAMPLES, Timer, peak_rss_mb

from impasto import TransferConfig, transfer
from impasto.image.imageio import save_image
from impasto.runtime import resolve_device, resolve_precision
from impasto.net.vgg import load_network


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=TransferConfig.size)
    parser.add_argument("--iterations", type=int, default=TransferConfig.iterations)
    parser.add_argument("--precision", default=TransferConfig.precision, help="auto, fp32 or bf16")
    parser.add_argument("--save", help="also write the result here (the README's sample image)")
    args = parser.parse_args()
    config = TransferConfig(size=args.size, iterations=args.iterations, precision=args.precision)
    device = resolve_device(config.device)
    print(f"device {device}, precision {resolve_precision(config.precision, device)}, size {config.size}px, "
          f"convolution {config.convolution}, iterations {config.iterations}, scales {config.scales}, "
          f"init {config.init}, normalization {config.normalization}")
    with Timer() as load:
        vgg = load_network(config)
    events = []
    with Timer() as run:
        image = transfer(EXAMPLES / "tubingen.jpg", EXAMPLES / "starry_night.jpg", config, callback=events.append,
                 network=vgg)
    last = events[-1].losses
    print(f"network load       {load.seconds:8.2f} s")
    print(f"total              {run.seconds:8.2f} s for {len(events)} iterations")
    print(f"seconds/iteration  {run.seconds / max(1, len(events)):8.3f} (all scales)")
    for stage in dict.fromkeys(e.stage for e in events if e.stage):  # "scale k/n" of a coarse-to-fine run
        at = [e for e in events if e.stage == stage]
        if len(at) > 1:
            per = (at[-1].elapsed - at[0].elapsed) / (len(at) - 1)
            print(f"  {stage}: {len(at)} iterations, {per:.3f} s/iteration")
    print(f"peak memory        {peak_rss_mb():8.0f} MB (resident)")
    print("final losses       " + ", ".join(f"{k} {v:.4e}" for k, v in last.items()))
    if args.save:
        save_image(image, args.save)


if __name__ == "__main__":
    main()
