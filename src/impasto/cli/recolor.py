"""``impasto recolor``: give a stylised image the photo's colours afterwards (arXiv 1606.05897)."""

from __future__ import annotations

import sys

from .main import add_config_options, config_from_args
from ..config import RecolorConfig
from ..errors import ImpastoError
from ..image.imageio import check_output_path, open_image, pil_to_tensor, resize_to_tensor, save_image, tensor_to_pil

ASPECT_TOLERANCE = 0.02


def add_parser(sub) -> None:
    p = sub.add_parser("recolor", help="give a stylised image the photo's colours (after the fact)",
                       description="Recolour STYLISED with the colours of CONTENT: its chrominance under the "
                                   "stylised luminance (luminance), or its colour mean and covariance (match).")
    p.add_argument("stylised", help="the stylised image")
    p.add_argument("content", help="the photo whose colours to use")
    p.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .webp)")
    add_config_options(p, RecolorConfig)
    p.set_defaults(run=cmd_recolor)


def cmd_recolor(args) -> int:
    from ..image import color

    config = config_from_args(args, RecolorConfig)
    output = check_output_path(args.output, (args.stylised, args.content))
    stylised, content = open_image(args.stylised), open_image(args.content)
    x = pil_to_tensor(stylised)
    if config.color == "match":
        out = color.match_color(x, pil_to_tensor(content), config.color_match)
    else:
        _check_aspect(args, stylised.size, content.size)
        out = color.keep_chrominance(x, resize_to_tensor(content, size=stylised.size), config.color_space)
    written = save_image(tensor_to_pil(out), output)
    print(f"wrote {written}", file=sys.stderr)
    return 0


def _check_aspect(args, a: tuple[int, int], b: tuple[int, int]) -> None:
    """Luminance mode lays the photo's chrominance over the result pixel by pixel: same framing needed."""
    ra, rb = a[0] / a[1], b[0] / b[1]
    if abs(ra - rb) > ASPECT_TOLERANCE * rb:
        raise ImpastoError(f"{args.content}: aspect ratio {b[0]}x{b[1]} differs from {args.stylised}'s "
                           f"{a[0]}x{a[1]}; --color luminance needs the same framing (try --color match)")
