"""``impasto fast``: stylise photos with a trained transform network, one forward pass each
(Johnson et al. 2016), from a ``.pt`` file, an exported ``.onnx`` file or a bundled model."""

from __future__ import annotations

import sys
from pathlib import Path

from ..cli import add_config_options, close_bar, config_from_args
from ..config import FastConfig
from ..errors import ImpastoError
from ..imageio import FORMATS, check_output_path, open_image, pil_to_tensor, resize_pil, save_image
from ..fast.data import PHOTO_SUFFIXES
from ..progress import ProgressBar


def add_parser(sub) -> None:
    from ..fast.model import bundled_models

    p = sub.add_parser("fast", help="stylise photos in a fraction of a second with a trained network",
                       description="impasto fast MODEL INPUT... -o OUT, or impasto fast --model NAME INPUT... "
                                   "-o OUT. MODEL: a .pt or .onnx file, or a bundled model's name "
                                   f"({', '.join(bundled_models()) or 'none installed'}). INPUT: images or "
                                   "folders; with several inputs or a folder, OUT is a folder.")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="[MODEL] then images or folders")
    p.add_argument("--model", help="model file or bundled model (then every positional is an input)")
    p.add_argument("-o", "--output", required=True, help="output image, or folder for several inputs")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_config_options(p, FastConfig)
    p.set_defaults(run=cmd_fast)


def _jobs(inputs: list[str], output: str) -> list[tuple[Path, Path]]:
    """(input image, output image) pairs: one file to one file, or many into the folder OUTPUT."""
    out = Path(output)
    if len(inputs) == 1 and not Path(inputs[0]).is_dir():
        return [(Path(inputs[0]), check_output_path(out))]
    if out.suffix.lower() in FORMATS:
        raise ImpastoError(f"{out}: several inputs or a folder need an output folder, not an image file")
    if out.exists() and not out.is_dir():
        raise ImpastoError(f"{out}: exists and is not a folder")
    jobs = []
    for name in inputs:
        src = Path(name)
        if src.is_dir():
            files = sorted(p for p in src.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES and p.is_file())
            jobs += [(f, out / f.relative_to(src).with_suffix(".png")) for f in files]
        else:
            jobs.append((src, out / f"{src.stem}.png"))
    targets = [t for _, t in jobs]
    if len(set(targets)) != len(targets):
        raise ImpastoError("two inputs would write the same output file (same name); give them different names")
    if not jobs:
        raise ImpastoError(f"{', '.join(inputs)}: no images found")
    return jobs


def stylise_file(runner, config: FastConfig, mix, source: Path, target: Path) -> None:
    from .. import color
    from ..fast.stylise import check_size

    photo = open_image(source)
    image = resize_pil(photo, long_side=config.size) if config.size else pil_to_tensor(photo)
    check_size(image, str(source))
    out = runner(image, mix)
    if config.color == "luminance":  # arXiv 1606.05897: the photo's chrominance under the result's luma
        out = color.keep_chrominance(out, image, config.color_space)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_image(out, target)


def cmd_fast(args) -> int:
    from ..fast.stylise import load_runner, parse_mix

    config = config_from_args(args, FastConfig)
    inputs = list(args.inputs)
    model = args.model or (inputs.pop(0) if len(inputs) > 1 else None)
    if model is None:
        raise ImpastoError("give a model (MODEL INPUT... or --model NAME INPUT...)")
    if config.size is not None and config.size < 8:
        raise ImpastoError(f"--size must be at least 8 pixels, got {config.size}")
    jobs = _jobs(inputs, args.output)
    runner = load_runner(model, config.precision, config.device)
    mix = parse_mix(config.mix, runner.styles)
    bar = ProgressBar(len(jobs), desc="impasto fast", unit="img") if len(jobs) > 1 and not args.quiet else None
    failed = 0
    for i, (source, target) in enumerate(jobs):
        try:
            stylise_file(runner, config, mix, source, target)
        except ImpastoError as exc:
            if len(jobs) == 1:
                raise
            failed += 1
            print(f"impasto: skipped: {exc}", file=sys.stderr)
        if bar is not None:
            bar(_Done(i + 1))
    close_bar(bar)
    if not args.quiet:
        written = len(jobs) - failed
        print((f"wrote {written} image(s) to {args.output}" if len(jobs) > 1 else f"wrote {args.output}")
              + (f"; {failed} input(s) skipped" if failed else ""), file=sys.stderr)
    return 2 if failed else 0


class _Done:
    """A progress event for the bar: images done so far."""

    def __init__(self, done: int):
        self.iteration, self.losses = done, {}
