"""Print-size pictures (issue 26): what the exact tiled evaluation costs against the whole picture at once.

overhead: at a size where both fit (--size, 1536 px), the time of one evaluation of the objective and its
gradient (forward and backward through VGG-19 to relu5_1, the default transfer's terms) over tiles of
each --tiles side, against the whole picture at once, as a ratio; each tiled side twice: recomputing
every tile but the last in the second pass (keep 1, the least memory) and keeping as many tiles'
activations as fit in free memory (what `impasto transfer` does). Medians of --repeat evaluations after
one warm-up, the untiled evaluation timed between them to share the machine's drift. Not a test.

print: `impasto transfer` as a user runs it, a whole process at a print size (--print-size, 4096 px: a
held-out photo, Plasma's EveningGlow at 2560x1600 cut to 4:3 or --aspect, with The Starry Night), under
IMPASTO_MAX_MEMORY=--memory GiB (a laptop's share), with --avx2 on the AVX2 kernels a CPU without
native bf16 runs: wall time, peak resident memory, the final losses, and the time left the progress
showed at the start of each scale against the time it really took; and the look: the picture scaled to
512 px, scored by the paper's objective against the photo and the painting at 512 px (where The Starry
Night, 1024 px wide, is not enlarged: at 4096 px the full-size objective's style targets come from the
painting enlarged 4 times). With --limit S it is stopped with Ctrl-C after S seconds, as a user stops a
run that takes too long (one scale at the print size for the recipe's time: --extra "--scales 1").

targets: what a scale's targets cost (a forward pass without autograd over the photo and the painting,
at once and over each --tiles side, at --size), against one evaluation of the whole picture at once,
per pixel the forward pass reads: the time left's TARGETS (impasto.gatys.run). Medians of --repeat.

pairs: what keeping L-BFGS's curvature pairs in bfloat16 (as `impasto transfer` does on a scale it
evaluates over tiles, to halve the history's memory) costs in objective, against float32 pairs, at sizes
where the whole picture fits: --iterations at --pairs-size / 2 from the start image, and the print
recipe's refinement (that result upsampled, --refine iterations at --pairs-size), over the Laplacian pyramid
and over the pixels (what a refining scale uses). Tubingen × The Starry Night, the default transfer's
objective.

recipe: the print recipe against one scale at --recipe-size (2048 px, where both fit in memory), the
held-out photo below with The Starry Night, the default precision: the recipe's scales and iterations
as it would run above 2048 px (--recipe-size halved while at least 512 px; --iterations at the first,
6 at the full size, twice as many at each scale between), then one scale at the full size for up to
twice the recipe's time. Both minimise the same full-size objective; printed: the recipe's time and
final objective, one scale's objective at the same time, and when (if) one scale reaches the recipe's;
and the look of each (as the print part's) at the recipe's time.

Usage: python -m benchmarks.print [--parts overhead,targets,pairs,recipe,print] [--size 1536] [--tiles 384,512,768,1024]
       [--precision fp32] [--repeat 3] [--pairs-size 1024] [--iterations 100] [--refine 12]
       [--recipe-size 2048] [--print-size 4096] [--aspect 4:3] [--memory 8] [--avx2] [--extra "--scales 1"] [--limit S]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from benchmarks.common import EXAMPLES, Evaluator, prepare

from impasto import Cancel, Interrupted, TransferConfig, transfer
from impasto.gatys.inputs import (PRINT_FINEST, full_size_bytes, prepare as prepare_inputs, print_sides, scale_sides,
                                  tiles_held)
from impasto.gatys.objective import build_objective
from impasto.gatys.run import TARGETS, forward_area, initial_image, start, upsample
from impasto.image import imageio
from impasto.image.imageio import fit_long_side
from impasto.loss import tiled
from impasto.net.vgg import load_network
from impasto.optim.loop import Loop, loop_settings
from impasto.runtime import resolve_precision, set_threads




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


def tuning_pair(args):
    """Tubingen x The Starry Night at --size, the default terms: config, inputs, network, the photo, the layers."""
    set_threads()
    config = TransferConfig(size=args.size, precision=args.precision, tile=0)
    with tempfile.TemporaryDirectory() as tmp:
        photo, painting = prepare("tubingen", args.size, Path(tmp)), prepare("starry_night", args.size, Path(tmp))
        inputs = prepare_inputs(config, photo, [painting])
    content = imageio.resize_to_tensor(inputs.content, size=imageio.fit_long_side(inputs.content.size, args.size))
    return config, inputs, load_network(config), content, ("relu4_2", *config.style_layers)


def overhead(args) -> None:
    config, inputs, vgg, content, layers = tuning_pair(args)
    h, w = content.shape[-2:]
    whole = build_objective(vgg, config, content, inputs, args.size)
    image = content.clone()
    print(f"{w}x{h} px, {args.precision}, tubingen x starry_night, default terms; margin {tiled.margin(layers)} px",
          flush=True)
    print(f"{'tile':>6} {'tiles':>6} {'held':>5} {'tiled s':>9} {'whole s':>9} {'ratio':>7}")
    for side in [int(t) for t in args.tiles.split(",")]:
        count = len(tiled.windows(h, w, side, layers))
        held = tiles_held(config.replace(tile=side), (w, h), side, layers, full_size_bytes(config, False))
        for keep in sorted({1, held}):
            objective = build_objective(vgg, config, content, inputs, args.size, tile=side, keep=keep)
            t_tiled = seconds(objective, image, args.repeat)
            t_whole = seconds(whole, image, args.repeat)
            print(f"{side:>6} {count:>6} {keep:>5} {t_tiled:9.2f} {t_whole:9.2f} {t_tiled / t_whole:7.2f}", flush=True)


def targets(args) -> None:
    config, inputs, vgg, content, layers = tuning_pair(args)
    size = (content.shape[-1], content.shape[-2])
    sizes = [size, imageio.fit_long_side(inputs.styles[0].size, args.size)]
    whole = seconds(build_objective(vgg, config, content, inputs, args.size), content, args.repeat)
    print(f"{size[0]}x{size[1]} px, {args.precision}, tubingen x starry_night: the targets against one evaluation "
          f"of the whole picture ({whole:.2f} s) per pixel read (the time left counts {TARGETS})", flush=True)
    print(f"{'tile':>6} {'read / px':>10} {'targets s':>10} {'per px read':>12}")
    for side in [None, *(int(t) for t in args.tiles.split(","))]:
        read = sum(forward_area(s, side, layers) for s in sizes) / (size[0] * size[1])
        times = []
        for _ in range(args.repeat):
            begin = time.perf_counter()
            build_objective(vgg, config, content, inputs, args.size, tile=side)
            times.append(time.perf_counter() - begin)
        took = statistics.median(times)
        print(f"{side or 'whole':>6} {read:10.2f} {took:10.2f} {took / whole / read:12.3f}", flush=True)


def pairs(args) -> None:
    set_threads()
    config = TransferConfig(size=args.pairs_size, precision=args.precision, tile=0)
    vgg = load_network(config)
    with tempfile.TemporaryDirectory() as tmp:
        photo = prepare("tubingen", args.pairs_size, Path(tmp))
        painting = prepare("starry_night", args.pairs_size, Path(tmp))
        inputs = prepare_inputs(config, photo, [painting])
    coarse = args.pairs_size // 2
    print(f"tubingen x starry_night, {args.precision}: final objective with L-BFGS pairs in float32 / bfloat16")
    starts = {}
    for dtype in (torch.float32, torch.bfloat16):
        image, loss = optimise(vgg, config, inputs, coarse, None, args.iterations, dtype)
        starts[dtype] = image
        print(f"  {coarse} px, {args.iterations} its from the start image, {str(dtype)[6:]:>8} pairs: {loss:.4e}",
              flush=True)
    for dtype, levels in ((torch.float32, 0), (torch.bfloat16, 0), (torch.bfloat16, 1)):
        _, loss = optimise(vgg, config, inputs, args.pairs_size, starts[torch.float32], args.refine, dtype, levels)
        print(f"  {args.pairs_size} px, {args.refine} its from the {coarse} px result, {str(dtype)[6:]:>8} pairs, "
              f"{'pixels' if levels == 1 else 'pyramid'}: {loss:.4e}", flush=True)


def optimise(vgg, config, inputs, side, image, iterations, dtype, levels=0):
    """``iterations`` of the transfer's L-BFGS at ``side`` from ``image`` upsampled (None: the start image),
    with its pairs in ``dtype``, over a Laplacian pyramid (``levels`` 0: auto) or the pixels (1): the
    result and its objective."""
    size = imageio.fit_long_side(inputs.content.size, side)
    content = imageio.resize_to_tensor(inputs.content, size=size)
    objective = build_objective(vgg, config, content, inputs, side)
    if image is None:
        generator = torch.Generator().manual_seed(config.seed)
        image = start(config, inputs, initial_image(config, content, inputs.real_styles, generator), content)
    loop = Loop(objective, upsample(image, size), loop_settings(config, pairs_dtype=dtype, laplacian_levels=levels))
    for _ in range(iterations):
        loop.step()
    return loop.finish(), loop.best_loss


HELD_OUT = Path("/usr/share/wallpapers/EveningGlow/contents/images/2560x1600.jpg")  # plasma-workspace-wallpapers
AVX2 = {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2"}


def cut(photo: Path, folder: Path, aspect: str = "4:3") -> Path:
    """The photo's centre cut to ``aspect`` ("W:H"), as a PNG."""
    aw, ah = map(int, aspect.split(":"))
    image = Image.open(photo).convert("RGB")
    w, h = image.size
    cw = min(w, h * aw // ah) // aw * aw
    ch = cw * ah // aw
    left, top = (w - cw) // 2, (h - ch) // 2
    path = folder / f"{photo.stem}_{aw}x{ah}.png"
    image.crop((left, top, left + cw, top + ch)).save(path)
    return path


def resident(pid: int) -> int:
    """A process's resident bytes now (0 where it has ended)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
    except (OSError, StopIteration):
        return 0


def recipe(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        photo = cut(HELD_OUT, Path(tmp))
        look = Evaluator(*(screen(p, folder=Path(tmp)) for p in (photo, EXAMPLES / "starry_night.jpg")))
        sides = print_sides(args.recipe_size)
        iterations = [args.iterations, *(PRINT_FINEST * 2 ** k for k in reversed(range(len(sides) - 1)))]
        coarse = TransferConfig(size=args.recipe_size, scales=tuple(sides), scale_iterations=tuple(iterations))
        time_r, total_r, _, picture_r = timed(photo, coarse, math.inf)
        precision = resolve_precision("auto", torch.device("cpu"))
        print(f"{HELD_OUT.parent.parent.parent.name} x starry_night at {args.recipe_size} px, {precision}; the look: "
              f"the picture at {SCREEN} px, the paper's objective's total (one fp32 evaluator)", flush=True)
        print(f"  print recipe {','.join(map(str, sides))} px, {','.join(map(str, iterations))} its: "
              f"{time_r:.0f} s, objective {total_r:.4e}, the look {look(at_screen(picture_r))['total']:.4e}",
              flush=True)
        one = TransferConfig(size=args.recipe_size, scales=1, iterations=1000)  # stopped by time
        _, _, trace, picture_1 = timed(photo, one, 2 * time_r, picture_at=time_r)
        at_same = min((total for t, total in trace if t <= time_r), default=math.inf)
        reached = next((t for t, total in trace if total <= total_r), None)
        print(f"  one scale: objective {at_same:.4e} after {time_r:.0f} s "
              f"(recipe / one scale {total_r / at_same:.3f}), the look {look(at_screen(picture_1))['total']:.4e}; "
              + (f"the recipe's objective reached after {reached:.0f} s ({reached / time_r:.2f}x its time)"
                 if reached is not None else f"the recipe's objective not reached in {2 * time_r:.0f} s"
                 f" (at {trace[-1][0]:.0f} s: {trace[-1][1]:.4e})"), flush=True)


def at_screen(picture: Image.Image) -> Image.Image:
    """A picture scaled (Lanczos) to the screen size its look is judged at."""
    return picture.resize(fit_long_side(picture.size, SCREEN), Image.Resampling.LANCZOS)


def timed(photo: Path, config: TransferConfig, limit: float, picture_at: float = math.inf):
    """`impasto transfer` in this process for at most ``limit`` seconds: its time, the objective of its
    last iteration, each iteration's (time, objective) at the full size, and its picture: the result, or
    with ``picture_at`` the latest iteration's within that many seconds."""
    cancel, trace, kept, start = Cancel(), [], [], time.perf_counter()
    finest = f"scale {len(scale_sides(config))}/{len(scale_sides(config))}"

    def callback(progress):
        if progress.losses and ", tile" not in progress.stage:
            elapsed = time.perf_counter() - start
            if progress.stage in ("", finest):
                trace.append((elapsed, progress.losses["total"]))
            if progress.image is not None and elapsed <= picture_at:
                kept[:] = [imageio.tensor_to_pil(progress.image)]
            if elapsed > limit:
                cancel.set()

    try:
        result = transfer(photo, [EXAMPLES / "starry_night.jpg"], config, callback=callback, cancel=cancel,
                          image_every=0 if math.isinf(picture_at) else 1)
    except Interrupted as stop:
        result = stop.partial
    return time.perf_counter() - start, trace[-1][1], trace, kept[0] if kept else result


def print_run(args) -> None:
    """One whole `impasto transfer` process at the print size: its time, peak memory and time-left error."""
    with tempfile.TemporaryDirectory() as tmp:
        photo = cut(HELD_OUT, Path(tmp), args.aspect)
        out = Path(args.output or Path(tmp) / "print.png")
        env = {**os.environ, "IMPASTO_MAX_MEMORY": str(args.memory), **(AVX2 if args.avx2 else {})}
        argv = [sys.executable, "-m", "impasto", "transfer", str(photo), str(EXAMPLES / "starry_night.jpg"),
                "--size", str(args.print_size), "--precision", args.precision, "--progress", "json",
                "-o", str(out), *args.extra.split()]
        print(" ".join(argv[3:]), f"IMPASTO_MAX_MEMORY={args.memory}", "AVX2 kernels" if args.avx2 else "", flush=True)
        start = time.perf_counter()
        child = subprocess.Popen(argv, env=env, stderr=subprocess.PIPE, text=True)
        events = []
        for line in child.stderr:
            if line.startswith("{"):
                events.append(json.loads(line))
                events[-1]["rss"] = resident(child.pid)
                if args.limit and time.perf_counter() - start > args.limit and child.poll() is None:
                    child.send_signal(signal.SIGINT)  # Ctrl-C: it writes its latest picture and exits 130
                    args.limit = 0
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        if os.waitstatus_to_exitcode(status) not in (0, 130):
            raise SystemExit(f"impasto transfer failed (status {status})")
        size = Image.open(out).size
        look = Evaluator(*(screen(p, folder=Path(tmp)) for p in (photo, EXAMPLES / "starry_night.jpg")))(
            at_screen(Image.open(out).convert("RGB")))
    progress = [e for e in events if e.get("event") == "progress"]
    print(f"{size[0]}x{size[1]} px in {wall:.0f} s ({wall / 60:.1f} min), "
          f"peak resident {usage.ru_maxrss / 2**20:.2f} GiB")
    print("each scale: its end (s), iterations, evaluations over tiles (0: untiled) (its targets' time), "
          "resident memory at most "
          "(at its progress events); the time left shown at its first iteration and at its last against the "
          "time the rest really took")
    def scale(e):  # "scale 2/4, tile 5/48" -> "scale 2/4"; one scale's "tile 5/48" or "targets" -> ""
        return "" if e["stage"].startswith(("tile", "targets")) else e["stage"].split(",")[0]

    ends, took = {}, {}
    for before, e in zip([{"elapsed": 0.0}, *progress], progress):
        ends[scale(e)] = e["elapsed"]
        if e["stage"].endswith("targets"):
            took[scale(e)] = e["elapsed"] - before["elapsed"]
    for stage, end in ends.items():
        mine = [e for e in progress if scale(e) == stage]
        steps = [e for e in mine if not any(w in e["stage"] for w in ("tile", "targets"))]
        evaluations = sum(1 for e in mine if "tile 1/" in e["stage"] and "backward" not in e["stage"])
        shown = [f"{e['eta']:.0f} s against {wall - e['elapsed']:.0f} s ({e['eta'] / (wall - e['elapsed']) - 1:+.0%})"
                 for e in (steps[0], steps[-1]) if e["eta"] is not None and wall > e["elapsed"]]
        print(f"  {stage or 'one scale':<12} {end:6.0f} s {len(steps):4d} its {evaluations:3d} evaluations "
              f"(targets {took.get(stage, math.nan):.0f} s) "
              f"{max(e['rss'] for e in mine) / 2**30:5.2f} GiB; " + "; ".join(shown), flush=True)
    middle = [e for e in progress if e["eta"] is not None and 0.1 * wall < e["elapsed"] < 0.9 * wall]
    worst = max(middle, key=lambda e: abs(e["eta"] / (wall - e["elapsed"]) - 1), default=None)
    if worst is not None:
        print(f"  the time left furthest off between the first and the last tenth of the run: "
              f"at {worst['elapsed']:.0f} s "
              f"({worst['stage']}), {worst['eta']:.0f} s shown against {wall - worst['elapsed']:.0f} s", flush=True)
    print("final losses: " + ", ".join(f"{k} {v:.4g}" for k, v in progress[-1]["losses"].items()))
    print(f"the look: the picture scaled to {SCREEN} px, scored against the photo and painting at {SCREEN} px "
          "(the paper's objective, one fp32 evaluator): " + ", ".join(f"{k} {v:.4g}" for k, v in look.items()))


SCREEN = 512  # the screen size the look of a print is judged at


def screen(path: Path, folder: Path) -> Path:
    """``path`` resized (Lanczos) to the screen size, as a PNG."""
    image = Image.open(path).convert("RGB")
    out = folder / f"{Path(path).stem}_{SCREEN}.png"
    image.resize(fit_long_side(image.size, SCREEN), Image.Resampling.LANCZOS).save(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1536)
    parser.add_argument("--tiles", default="384,512,768,1024")
    parser.add_argument("--precision", default="fp32")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--parts", default="overhead,print")
    parser.add_argument("--pairs-size", type=int, default=1024)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--refine", type=int, default=12)
    parser.add_argument("--recipe-size", type=int, default=2048)
    parser.add_argument("--print-size", type=int, default=4096)
    parser.add_argument("--aspect", default="4:3", help="the print run's photo cut to this aspect (8K: 16:9)")
    parser.add_argument("--memory", type=float, default=8.0, help="IMPASTO_MAX_MEMORY of the print run, GiB")
    parser.add_argument("--avx2", action="store_true", help="the print run on AVX2 kernels")
    parser.add_argument("--extra", default="", help="more options for the print run")
    parser.add_argument("--limit", type=float, default=0, help="stop the print run (Ctrl-C) after this many seconds")
    parser.add_argument("--output", default=None, help="keep the print run's picture here")
    args = parser.parse_args()
    parts = args.parts.split(",")
    if "overhead" in parts:
        overhead(args)
    if "targets" in parts:
        targets(args)
    if "pairs" in parts:
        pairs(args)
    if "recipe" in parts:
        recipe(args)
    if "print" in parts:
        print_run(args)


if __name__ == "__main__":
    main()
