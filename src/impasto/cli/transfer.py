"""``impasto transfer``: the main job (Gatys, Ecker & Bethge)."""

from __future__ import annotations

import shutil
from pathlib import Path

from .main import add_config_options, add_run_options, config_from_args, image_writer, run_job
from ..config import TransferConfig
from ..errors import ImpastoError
from ..image.imageio import check_output_path, save_image


def add_parser(sub) -> None:
    p = sub.add_parser("transfer", help="paint a photo in the style of one or more artworks (Gatys et al.)",
                       description="Paint CONTENT in the style of STYLE (several styles are blended).")
    p.add_argument("content", help="content photo")
    p.add_argument("styles", nargs="+", metavar="style", help="style image(s)")
    p.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .webp)")
    add_run_options(p)
    p.add_argument("--save-every", type=int, default=0, metavar="N",
                   help="also write numbered intermediate images every N iterations")
    p.add_argument("--preset", metavar="NAME",
                   help="start from a named set of options (impasto presets lists them); options given here win")
    p.add_argument("--presets-file", metavar="FILE", help="your own presets (TOML, same form as the shipped file)")
    add_config_options(p, TransferConfig)
    p.set_defaults(run=cmd_transfer)


def _intermediate_writer(output: Path, every: int):
    def write(progress):
        if progress.image is not None:
            save_image(progress.image, output.with_name(f"{output.stem}_{progress.done:05d}{output.suffix}"))
    return write if every > 0 else None


def _chain(*callbacks):
    live = [c for c in callbacks if c is not None]
    return (lambda event: [c(event) for c in live]) if live else None


def config_of(args) -> TransferConfig:
    """Defaults < the preset < the options given on the command line."""
    from ..presets import config_for

    return config_from_args(args, TransferConfig, base=config_for(args.preset, args.presets_file))


def cmd_transfer(args) -> int:
    from ..gatys.inputs import scale_sides
    from ..gatys.run import scales_folder, transfer

    config = config_of(args)
    inputs = [args.content, *args.styles, *(config.masks or ()), *(config.style_masks or ()), config.init]
    output = check_output_path(args.output, inputs)
    if args.save_every < 0:
        raise ImpastoError(f"--save-every must be 0 or more, got {args.save_every}")
    # a run of several scales keeps each finished one beside the output: the same command goes on from it
    kept = scales_folder(output, config, inputs) if len(scale_sides(config)) > 1 else None

    def job(show):
        return transfer(args.content, args.styles, config, callback=_chain(show, _intermediate_writer(
            output, args.save_every)), image_every=args.save_every, keep_scales=kept)

    code = run_job(args, job, image_writer(output), image_writer(output, interrupted=True))
    if code == 0 and kept is not None:
        shutil.rmtree(kept, ignore_errors=True)
    return code
