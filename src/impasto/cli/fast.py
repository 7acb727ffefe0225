"""``impasto fast``: stylise photos with a trained transform network, one forward pass each
(Johnson et al. 2016), from a ``.pt`` file, an exported ``.onnx`` file or a bundled model."""

from __future__ import annotations

import sys
from pathlib import Path

from .main import add_config_options, add_run_options, config_from_args, run_job
from ..config import FastConfig, check_options
from ..errors import ImpastoError
from ..image.imageio import FORMATS, PHOTO_SUFFIXES, check_output_path


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
    add_run_options(p)
    add_config_options(p, FastConfig)
    p.set_defaults(run=cmd_fast)


def _jobs(inputs: list[str], output: str) -> list[tuple[Path, Path]]:
    """(input image, output image) pairs: one file to one file, or many into the folder OUTPUT."""
    out = Path(output)
    if len(inputs) == 1 and not Path(inputs[0]).is_dir():
        return [(Path(inputs[0]), check_output_path(out, inputs))]
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
    clash = next((s for s, t in jobs if t.exists() and t.resolve() == s.resolve()), None)
    if clash is not None:
        raise ImpastoError(f"{out}: writing {clash.name} there would destroy the input {clash}; choose another folder")
    if len(set(targets)) != len(targets):
        raise ImpastoError("two inputs would write the same output file (same name); give them different names")
    if not jobs:
        raise ImpastoError(f"{', '.join(inputs)}: no images found")
    return jobs


def cmd_fast(args) -> int:
    from ..fast.stylise import load_runner, parse_mix, stylise_files

    config = config_from_args(args, FastConfig)
    check_options(config)
    inputs = list(args.inputs)
    model = args.model or (inputs.pop(0) if len(inputs) > 1 else None)
    if model is None:
        raise ImpastoError("give a model (MODEL INPUT... or --model NAME INPUT...)")
    pairs = _jobs(inputs, args.output)
    runner = load_runner(model, config.precision, config.device, quick=len(pairs) == 1)  # one image: no PyTorch
    mix = parse_mix(config.mix, runner.styles)
    skipped = []

    def write(done) -> str:  # stylise_files wrote each image as it went
        skipped.extend(done.skipped)
        lines = [f"impasto: skipped: {reason}" for reason in done.skipped]
        if args.quiet and lines:  # the runner prints nothing more with --quiet; bad inputs are still named
            print("\n".join(lines), file=sys.stderr)
        count = f"wrote {len(done.written)} image(s) to {args.output}" if len(pairs) > 1 else f"wrote {args.output}"
        return "\n".join(lines + [count + (f"; {len(done.skipped)} input(s) skipped" if done.skipped else "")])

    code = run_job(args, lambda show: stylise_files(runner, config, mix, pairs, show if len(pairs) > 1 else None),
                   write)
    return 2 if code == 0 and skipped else code
