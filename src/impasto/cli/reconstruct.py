"""``impasto reconstruct content|style``: what one layer keeps (Gatys et al., figure 1)."""

from __future__ import annotations

from .main import add_config_options, add_run_options, config_from_args, image_writer, run_job
from ..config import PAPER_STYLE_LAYERS, RECONSTRUCT_CONTENT_LAYER, ReconstructConfig, parse_names
from ..image.imageio import check_output_path

LAYER_NOTE = ("conv<n>_<m> is the response before the ReLU, relu<n>_<m> after it: the paper's "
              "'conv2_1' is relu2_1 here")


def add_parser(sub) -> None:
    p = sub.add_parser("reconstruct", help="an image from white noise matching one layer's content, or a "
                       "texture matching a few layers' style (Gatys et al., figure 1)",
                       description="Reconstruct an image from white noise: its content at one layer, or its "
                       "style (Gram matrices) at a few layers.")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="{content,style}")
    c = kinds.add_parser("content", help="match only the content representation at one layer",
                         description=f"White noise -> an image matching IMAGE's response at --layer. {LAYER_NOTE}.")
    c.add_argument("image", help="the image to reconstruct")
    c.add_argument("--layer", default=RECONSTRUCT_CONTENT_LAYER,
                   help=f"the one layer whose response is matched (default: {RECONSTRUCT_CONTENT_LAYER})")
    _common(c, run=cmd_content)
    s = kinds.add_parser("style", help="texture synthesis: match only the Gram matrices of some layers",
                         description=f"White noise -> a texture matching IMAGE's Gram matrices on --layers, at any "
                                     f"output size. {LAYER_NOTE}.")
    s.add_argument("image", help="the image whose texture is synthesised")
    s.add_argument("--layers", type=parse_names, default=PAPER_STYLE_LAYERS,
                   help=f"layers whose Gram matrices are matched, comma-separated, weighted equally "
                        f"(default: {','.join(PAPER_STYLE_LAYERS)})")
    _common(s, run=cmd_style)


def _common(p, run) -> None:
    p.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .webp)")
    add_run_options(p)
    add_config_options(p, ReconstructConfig)
    p.set_defaults(run=run)


def cmd_content(args) -> int:
    from ..paper.reconstruct import reconstruct_content

    return _run(args, lambda config, show: reconstruct_content(args.image, args.layer, config, callback=show))


def cmd_style(args) -> int:
    from ..paper.reconstruct import reconstruct_style

    return _run(args, lambda config, show: reconstruct_style(args.image, args.layers, config, callback=show))


def _run(args, job) -> int:
    config = config_from_args(args, ReconstructConfig)
    output = check_output_path(args.output, (args.image,))
    return run_job(args, lambda show: job(config, show), image_writer(output), image_writer(output, interrupted=True))
