"""Coarse-to-fine against one scale in the same wall time, from the photo and from white noise.

At each size (default 512, 1024 and 2048 px) and for each start (the photo, impasto's default; white
noise, the paper's): a coarse-to-fine run (scales a factor 2 apart from 128 px, --scales 0, its
iterations split in proportion to 1/long side: the coarse scales do the travelling) is timed; a
run with scales a factor √2 apart gets the iterations that make its planned cost the same; then
the single-scale run (--scales 1) gets exactly the first run's wall time. Every scale minimises the
full size's objective (the content term per position, the default); all three results are scored
by one fp32 evaluator of that objective at full size (benchmarks/common.py).

bf16 against fp32 after the same iterations (--bf16): only meaningful where bf16 is native (AMX,
AVX512-BF16 or a GPU); on other CPUs PyTorch emulates it, tens of times slower.
Usage: python -m benchmarks.schedule [--sizes 512,1024,2048] [--iterations 100] [--starts content,noise]
                                     [--bf16] [--bf16-size 512]
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

from benchmarks.common import Evaluator, prepare

from impasto import Cancel, Interrupted, TransferConfig, transfer
from impasto.runtime import cpu_has_native_bf16
from impasto.gatys.inputs import scale_iterations, scale_sides
from impasto.net.vgg import load_network


def run(content: Path, style: Path, config: TransferConfig, budget: float | None = None):
    """(image, seconds of the run itself, network loaded beforehand): the whole run, or stopped at the
    first iteration past ``budget`` seconds."""
    vgg = load_network(config)
    seen, cancel = [], Cancel()

    def watch(p):
        seen.append(p.elapsed)
        if budget is not None and p.elapsed >= budget:
            cancel.set()

    try:
        image = transfer(content, style, config, callback=watch, network=vgg, cancel=cancel)
    except Interrupted as stop:
        image = stop.partial
    return image, seen[-1], len(seen)


def planned_cost(config: TransferConfig) -> float:
    """Evaluations in full-size units: an iteration costs in proportion to its scale's pixels."""
    sides = scale_sides(config)
    return sum(n * (side / config.size) ** 2 for n, side in zip(scale_iterations(config), sides))


def same_cost(config: TransferConfig, cost: float) -> TransferConfig:
    """``config`` with the iterations whose planned cost is ``cost``."""
    n = 1
    while planned_cost(config.replace(iterations=n * 2)) <= cost:
        n *= 2
    low, high = n, n * 2
    while high - low > 1:
        mid = (low + high) // 2
        low, high = (mid, high) if planned_cost(config.replace(iterations=mid)) <= cost else (low, mid)
    return config.replace(iterations=low)


def compare(size: int, start: str, iterations: int, folder: Path) -> None:
    content, style = prepare("tubingen", size, folder), prepare("starry_night", size, folder)
    score = Evaluator(content, style)
    base = TransferConfig(size=size, style_scale=1.0, init=start, iterations=iterations)
    pyramid = base.replace(scales=0, scale_step=2.0)
    root2 = same_cost(base.replace(scales=0, scale_step=math.sqrt(2)), planned_cost(pyramid))
    rows = []
    image, seconds, _ = run(content, style, pyramid)
    rows.append(("coarse-to-fine x2", pyramid, image, seconds))
    image, s2, _ = run(content, style, root2)
    rows.append(("coarse-to-fine x1.41", root2, image, s2))
    image, s1, n1 = run(content, style, base.replace(scales=1, iterations=100_000), budget=seconds)
    rows.append((f"one scale ({n1} its)", base.replace(scales=1, iterations=n1), image, s1))
    best = min(score(r[2])["total"] for r in rows)
    print(f"{size:>5} px ({score.size[0]}x{score.size[1]}), start {start}:", flush=True)
    for name, config, image, secs in rows:
        total = score(image)["total"]
        sides = scale_sides(config)
        plan = ", ".join(f"{s}:{n}" for s, n in zip(sides, scale_iterations(config)))
        print(f"    {name:<22} {secs:7.1f} s  objective {total:.4e}  ({total / best:.3f} x best)  [{plan}]",
              flush=True)


def bf16_vs_fp32(size: int, iterations: int, folder: Path) -> None:
    content, style = prepare("tubingen", size, folder), prepare("starry_night", size, folder)
    score = Evaluator(content, style)
    base = TransferConfig(size=size, style_scale=1.0, scales=1, iterations=iterations)
    results = {}
    for precision in ("fp32", "bf16"):
        image, seconds, _ = run(content, style, base.replace(precision=precision))
        results[precision] = (score(image)["total"], seconds)
    (f32, t32), (b16, t16) = results["fp32"], results["bf16"]
    print(f"{size:>5}px, {iterations} iterations: fp32 {f32:.4e} ({t32:.1f} s), bf16 {b16:.4e} ({t16:.1f} s); "
          f"bf16 is {100 * (b16 / f32 - 1):+.2f} % (limit +2 %)"
          + ("" if cpu_has_native_bf16() else "  [bf16 emulated on this CPU: time not meaningful]"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="512,1024,2048")
    parser.add_argument("--iterations", type=int, default=TransferConfig.iterations,
                        help="iterations of the factor-2 coarse-to-fine run, which sets the wall time")
    parser.add_argument("--starts", default="content,noise")
    parser.add_argument("--bf16", action="store_true", help="also bf16 against fp32")
    parser.add_argument("--bf16-size", type=int, default=None, help="default: 512 with native bf16, else 128")
    parser.add_argument("--bf16-iterations", type=int, default=100)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="impasto-bench-"))
    print("coarse-to-fine against one scale in the same wall time, scored at full size:")
    for size in map(int, args.sizes.split(",")):
        for start in args.starts.split(","):
            compare(size, start, args.iterations, folder)
    if args.bf16:
        print("bf16 vs fp32 after the same iterations, scored in fp32:")
        bf16_vs_fp32(args.bf16_size or (512 if cpu_has_native_bf16() else 128), args.bf16_iterations, folder)


if __name__ == "__main__":
    main()
