"""Does torch.compile speed up the network's forward+backward on this CPU? Eager vs compiled, same run.

Prints seconds per forward+backward (VGG-19 up to relu5_1, fp32 channels-last) and the ratio.
Usage: python -m benchmarks.compile [--size 256] [--repeats 5]
"""

from __future__ import annotations

import argparse

import torch
from benchmarks.common import Timer

from impasto.config import PAPER_CONTENT_LAYERS, PAPER_STYLE_LAYERS
from impasto.net.vgg import VGG19

LAYERS = sorted({*PAPER_CONTENT_LAYERS, *PAPER_STYLE_LAYERS})  # relu1_1 … relu5_1 with relu4_2


def step(net, x):
    feats = net(x, LAYERS)
    loss = sum(f.float().pow(2).mean() for f in feats.values())
    loss.backward()


def time_it(fn, x, repeats: int) -> float:
    fn(x)  # warm-up (and compilation)
    with Timer() as t:
        for _ in range(repeats):
            x.grad = None
            fn(x)
    return t.seconds / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    net = VGG19().set_precision("fp32", channels_last=True)
    x = torch.rand(1, 3, args.size * 3 // 4, args.size, requires_grad=True)
    eager = time_it(lambda img: step(net, img), x, args.repeats)
    compiled_net = torch.compile(net)
    with Timer() as c:
        step(compiled_net, x)
    compiled = time_it(lambda img: step(compiled_net, img), x, args.repeats)
    print(f"size {args.size}px: eager {eager:.3f} s, compiled {compiled:.3f} s "
          f"(compilation {c.seconds:.0f} s), compiled/eager = {compiled / eager:.2f}")


if __name__ == "__main__":
    main()
