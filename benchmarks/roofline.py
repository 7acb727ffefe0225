"""Roofline of the VGG-19 convolutions on this CPU: direct (oneDNN) vs Winograd (impasto.net.winograd's default tile).

Prints the machine's fp32 GEMM rate (1 and 2 threads), then per layer up to relu5_1 the forward and
backward (input gradient only: the network is frozen) times of both methods, their "effective" rate
(direct FLOPs 2·H·W·Cin·Cout·9 / time) as a fraction of the GEMM rate, and the speed-up; finally the
whole forward+backward pass to relu5_1 with ``set_convolution("direct")`` vs ``"auto"`` (whose
Winograd layers also run their ReLU inside the kernels). Per layer, "auto" says which path runs:
F = fused in C, W = C transforms and a batched product, - = direct.
Timings interleave the two methods (A B A B …) and report medians: the machine is shared.

    .venv/bin/python -m benchmarks.roofline --sizes 256,512,1024
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from impasto.config import PAPER_STYLE_LAYERS
from impasto.runtime import cpu_has_native_bf16, keep_freed_memory
from impasto.net.vgg import VGG19, auto_winograd
from impasto.net.weights import CONV_SHAPES
from impasto.net.winograd import WinogradConv2d

LAST = "relu5_1"
STYLE = PAPER_STYLE_LAYERS
LAYERS = [name for name in CONV_SHAPES if name <= "conv5_1"]  # conv1_1 … conv5_1


def gemm_rate(threads: int, n: int = 2048, runs: int = 4) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = min(_seconds(lambda: torch.mm(a, b)) for _ in range(runs))
    return 2 * n**3 / best / 1e9


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(fns: list, repeats: int) -> list[float]:
    """Median seconds of each function, run A B A B … after one warm-up each."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            times[i].append(_seconds(fn))
    return [statistics.median(t) for t in times]


def layer_size(name: str, height: int, width: int) -> tuple[int, int]:
    block = int(name[4])
    return height >> (block - 1), width >> (block - 1)


def auto_rule(cin: int, cout: int) -> bool:
    return auto_winograd(cin, cout)


def mark(use: bool, wino: WinogradConv2d) -> str:
    """auto's choice: F = Winograd fused in C (transforms and products per block of tiles), W = Winograd
    with the batched product, - = direct."""
    return ("F" if wino.packed is not None else "W") if use else "-"


def per_layer(vgg: VGG19, height: int, width: int, rate: float, repeats: int) -> None:
    print(f"\n== {width}x{height}: per layer, ms (fwd / bwd = input gradient), effective GFLOP/s as % of "
          f"the {rate:.0f} GFLOP/s GEMM rate ==")
    print(f"{'layer':8} {'Cin>Cout':>9} {'HxW':>9} {'GFLOP':>6} | {'dir fwd':>7} {'bwd':>7} {'eff%':>5} | "
          f"{'wino fwd':>8} {'bwd':>7} {'eff%':>5} | {'speed-up':>8} {'auto':>4}")
    totals = {"direct": 0.0, "wino": 0.0, "auto": 0.0}
    for name in LAYERS:
        conv = vgg.convs[name]
        wino = WinogradConv2d(conv)
        cin, cout = conv.in_channels, conv.out_channels
        h, w = layer_size(name, height, width)
        x = torch.randn(1, cin, h, w).contiguous(memory_format=torch.channels_last).requires_grad_()
        grad = torch.randn(1, cout, h, w).contiguous(memory_format=torch.channels_last)
        outs = {}

        def fwd(module, key):
            def run():
                outs[key] = module(x)
            return run

        def bwd(key):
            def run():
                torch.autograd.grad(outs[key], x, grad, retain_graph=True)
            return run

        fd, fw = interleaved([fwd(conv, "d"), fwd(wino, "w")], repeats)
        bd, bw = interleaved([bwd("d"), bwd("w")], repeats)
        flop = 2 * h * w * cin * cout * 9
        gf = flop / 1e9
        eff_d = 2 * flop / (fd + bd) / 1e9 / rate * 100
        eff_w = 2 * flop / (fw + bw) / 1e9 / rate * 100
        use = auto_rule(cin, cout)
        totals["direct"] += fd + bd
        totals["wino"] += fw + bw
        totals["auto"] += (fw + bw) if use else (fd + bd)
        print(f"{name:8} {cin:>4}>{cout:<4} {h:>4}x{w:<4} {gf:6.2f} | {fd*1e3:7.1f} {bd*1e3:7.1f} {eff_d:5.0f} | "
              f"{fw*1e3:8.1f} {bw*1e3:7.1f} {eff_w:5.0f} | {(fd+bd)/(fw+bw):7.2f}x {mark(use, wino):>4}")
    print(f"sum of conv fwd+bwd: direct {totals['direct']*1e3:.0f} ms, all-Winograd {totals['wino']*1e3:.0f} ms, "
          f"auto {totals['auto']*1e3:.0f} ms ({totals['direct']/totals['auto']:.2f}x)")


def pass_flops(height: int, width: int) -> float:
    """Direct-convolution FLOPs of one forward and one input-gradient pass to relu5_1."""
    total = 0.0
    for name in LAYERS:
        h, w = layer_size(name, height, width)
        cin, cout = CONV_SHAPES[name]
        total += 2 * (2 * h * w * cin * cout * 9)
    return total


def whole_pass(height: int, width: int, repeats: int, rate: float) -> None:
    """Forward to relu5_1 and backward to the input image, as one optimisation iteration does; fp32
    direct and auto, and bf16 (direct) where this CPU computes it natively."""
    modes = {"fp32 direct": ("fp32", "direct"), "fp32 auto": ("fp32", "auto")}
    if cpu_has_native_bf16() and torch.backends.cpu.get_cpu_capability().startswith("AVX512"):
        modes["bf16 direct"] = ("bf16", "direct")  # not where ATEN_CPU_CAPABILITY=avx2 emulates it
    nets = {name: VGG19(pooling="avg").set_precision(p, channels_last=True).set_convolution(c)
            for name, (p, c) in modes.items()}
    image = torch.rand(1, 3, height, width, requires_grad=True)

    def step(net):
        def run():
            feats = net(image, STYLE)
            loss = sum(f.float().square().mean() for f in feats.values())
            torch.autograd.grad(loss, image)
        return run

    times = interleaved([step(net) for net in nets.values()], repeats)
    flops = pass_flops(height, width)
    print(f"whole pass fwd+bwd to {LAST} at {width}x{height} ({flops / 1e9:.0f} GFLOP of direct convolution):")
    for name, t in zip(nets, times):
        print(f"    {name:<12} {t * 1e3:7.0f} ms  {flops / t / 1e9:6.0f} GFLOP/s effective = "
              f"{100 * flops / t / 1e9 / rate:4.0f} % of the fp32 GEMM rate  ({times[0] / t:.2f}x fp32 direct)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="512", help="long sides, comma-separated (4:3 landscape)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-layers", action="store_true", help="only the whole-pass timing")
    args = parser.parse_args()
    keep_freed_memory()  # the heap as a transfer runs it: no page faults per pass
    rates = {t: gemm_rate(t) for t in (1, 2)}
    print("fp32 GEMM 2048^3: " + ", ".join(f"{t} thread{'s' if t > 1 else ''} {r:.0f} GFLOP/s"
                                            for t, r in rates.items()))
    torch.set_num_threads(args.threads)
    rate = rates.get(args.threads) or gemm_rate(args.threads)
    vgg = VGG19(pooling="avg").set_precision("fp32", channels_last=True)
    for size in (int(s) for s in args.sizes.split(",")):
        height, width = size * 3 // 4, size
        if not args.no_layers:
            per_layer(vgg, height, width, rate, args.repeats)
        whole_pass(height, width, args.repeats, rate)


if __name__ == "__main__":
    with torch.inference_mode(False):
        main()
