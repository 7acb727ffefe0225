"""Coarse-to-fine vs single-scale in the same wall time, and bf16 vs fp32 after the same iterations.

1. At each size (default 512 and 1024 px): impasto's default run (coarse-to-fine, --iterations N)
   is timed; then the paper's single-scale run (--scales 1) gets exactly that wall time. Both are
   scored by one fp32 evaluator of the paper's objective at full size.
2. bf16 vs fp32: the same run (single-scale, same seed and iterations) in each precision, both scored
   in fp32. On a CPU without native bf16 PyTorch emulates it (tens of times slower, same rounding),
   so this part runs at a small size there.
Usage: python benchmarks/schedule.py [--sizes 512,1024] [--iterations 300] [--bf16-size 128]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import Evaluator, prepare

from impasto import Interrupted, TransferConfig, transfer
from impasto.runtime import cpu_has_native_bf16
from impasto.transfer import load_network


def run(content: Path, style: Path, config: TransferConfig, budget: float | None = None):
    """(image, seconds of the run itself, network loaded beforehand): the whole run, or stopped at the
    first iteration past ``budget`` seconds."""
    vgg = load_network(config)
    seen = []

    def watch(p):
        seen.append(p.elapsed)
        if budget is not None and p.elapsed >= budget:
            raise KeyboardInterrupt

    try:
        image = transfer(content, style, config, callback=watch, network=vgg)
    except Interrupted as stop:
        image = stop.image
    return image, seen[-1]


def coarse_vs_single(size: int, iterations: int, folder: Path) -> None:
    content, style = prepare("tubingen", size, folder), prepare("starry_night", size, folder)
    score = Evaluator(content, style)
    base = TransferConfig(size=size, style_scale=1.0, iterations=iterations)
    image, seconds = run(content, style, base)
    single, single_s = run(content, style, base.replace(scales=1, iterations=100_000), budget=seconds)
    c2f, one = score(image)["total"], score(single)["total"]
    print(f"{size:>5}px  coarse-to-fine {c2f:.4e} in {seconds:6.1f} s | single-scale {one:.4e} in "
          f"{single_s:6.1f} s | single/coarse = {one / c2f:.3f}", flush=True)


def bf16_vs_fp32(size: int, iterations: int, folder: Path) -> None:
    content, style = prepare("tubingen", size, folder), prepare("starry_night", size, folder)
    score = Evaluator(content, style)
    base = TransferConfig(size=size, style_scale=1.0, scales=1, iterations=iterations)
    results = {}
    for precision in ("fp32", "bf16"):
        image, seconds = run(content, style, base.replace(precision=precision))
        results[precision] = (score(image)["total"], seconds)
    (f32, t32), (b16, t16) = results["fp32"], results["bf16"]
    print(f"{size:>5}px, {iterations} iterations: fp32 {f32:.4e} ({t32:.1f} s), bf16 {b16:.4e} ({t16:.1f} s); "
          f"bf16 is {100 * (b16 / f32 - 1):+.2f} % (limit +2 %)"
          + ("" if cpu_has_native_bf16() else "  [bf16 emulated on this CPU: time not meaningful]"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="512,1024")
    parser.add_argument("--iterations", type=int, default=TransferConfig.iterations)
    parser.add_argument("--bf16-size", type=int, default=None, help="default: 512 with native bf16, else 128")
    parser.add_argument("--bf16-iterations", type=int, default=100)
    parser.add_argument("--skip", default="", help="'schedule' or 'bf16' to skip a part")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="impasto-bench-"))
    if "schedule" not in args.skip:
        print("coarse-to-fine (impasto's default) vs single-scale (the paper) in the same wall time:")
        for size in map(int, args.sizes.split(",")):
            coarse_vs_single(size, args.iterations, folder)
    if "bf16" not in args.skip:
        print("bf16 vs fp32 after the same iterations, scored in fp32:")
        bf16_vs_fp32(args.bf16_size or (512 if cpu_has_native_bf16() else 128), args.bf16_iterations, folder)


if __name__ == "__main__":
    main()
