"""Seconds per iteration and peak memory at 256, 512, 1024 and 2048 px (long side), fp32 vs bf16.

Each (size, precision) runs in a fresh child process so that its peak resident memory is its own.
One iteration = one evaluation of the paper's objective at that size (network up to relu5_1,
forward and backward) and one optimiser update: Adam, so that no line search makes some steps cost
several evaluations (an L-BFGS step without a line search costs the same). bf16 is only timed where it is native (AMX / AVX512-BF16) unless --force-bf16:
on CPUs without it PyTorch emulates bf16 and one step costs tens of times the fp32 one (the first
row printed says how much, at the smallest size).
Usage: python -m benchmarks.scaling [--sizes 256,512,1024,2048] [--iterations 3] [--force-bf16]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]  # the children run as `python -m benchmarks.scaling` from here


def child(size: int, precision: str, iterations: int) -> dict:
    from benchmarks.common import EXAMPLES, Timer, peak_rss_mb

    from impasto import TransferConfig, transfer

    config = TransferConfig(size=size, scales=1, iterations=iterations + 1, precision=precision, optimizer="adam")
    times = []
    with Timer():
        transfer(EXAMPLES / "tubingen.jpg", EXAMPLES / "starry_night.jpg", config,
                 callback=lambda p: times.append(p.elapsed))
    per = (times[-1] - times[0]) / max(1, len(times) - 1)  # the first step includes target set-up
    return {"size": size, "precision": precision, "seconds_per_iteration": per, "peak_mb": peak_rss_mb()}


def measure(size: int, precision: str, iterations: int) -> dict:
    out = subprocess.run([sys.executable, "-m", "benchmarks.scaling", "--child", f"{size},{precision},{iterations}"],
                         capture_output=True, text=True, cwd=ROOT)
    if out.returncode != 0:
        return {"size": size, "precision": precision, "error": out.stderr.strip().splitlines()[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="256,512,1024,2048")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--force-bf16", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        size, precision, iterations = args.child.split(",")
        print(json.dumps(child(int(size), precision, int(iterations))))
        return
    from impasto.runtime import cpu_has_native_bf16

    native = cpu_has_native_bf16()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"native bf16 on this CPU: {native}")
    print(f"{'size':>6} {'fp32 s/it':>10} {'fp32 peak MB':>13} {'bf16 s/it':>10} {'bf16 peak MB':>13} {'bf16/fp32':>9}")
    for i, size in enumerate(sizes):
        fp32 = measure(size, "fp32", args.iterations)
        run_bf16 = native or args.force_bf16 or i == 0
        bf16 = measure(size, "bf16", 1 if not native else args.iterations) if run_bf16 else None
        row = f"{size:>6} {fp32.get('seconds_per_iteration', float('nan')):>10.2f} {fp32.get('peak_mb', 0):>13.0f}"
        if bf16 and "error" not in bf16:
            ratio = bf16["seconds_per_iteration"] / fp32["seconds_per_iteration"]
            row += f" {bf16['seconds_per_iteration']:>10.2f} {bf16['peak_mb']:>13.0f} {ratio:>9.2f}"
        else:
            row += f" {'skipped (emulated bf16)':>38}"
        print(row, flush=True)
        for r in (fp32, bf16):
            if r and "error" in r:
                print(f"       {r['precision']} at {size}px failed: {r['error']}")


if __name__ == "__main__":
    main()
