"""``impasto figure reconstructions|grid``: the paper's figures 1 and 3 as labelled contact sheets."""

from __future__ import annotations

from pathlib import Path

from .main import add_config_options, add_run_options, config_from_args, run_job
from ..config import GridConfig, ReconstructConfig
from ..image.imageio import check_output_path, save_image

CACHE_NOTE = ("Finished cells are kept in OUTPUT.cells/ beside the sheet; the same command run again "
              "(after Ctrl-C, say) reuses them and goes on where it stopped.")


def add_parser(sub) -> None:
    p = sub.add_parser("figure", help="the paper's figures: reconstructions (fig. 1), alpha/beta x layers grid (fig. 3)",
                       description="Make one of Gatys et al.'s figures as a labelled contact sheet.")
    kinds = p.add_subparsers(dest="kind", required=True, metavar="{reconstructions,grid}")
    r = kinds.add_parser("reconstructions", help="figure 1: content and style reconstructions, conv1_1 ... conv5_1",
                         description="Figure 1: content reconstructions of IMAGE from conv1_1 ... conv5_1 (a-e) and "
                                     "style reconstructions of PAINTING from the growing subsets (a)-(e). The "
                                     "paper's convN_1 is the post-ReLU response, reluN_1 in impasto. " + CACHE_NOTE)
    r.add_argument("image", help="the photo whose content is reconstructed")
    r.add_argument("--style", metavar="PAINTING", help="the image whose style is reconstructed (default: IMAGE)")
    _common(r, ReconstructConfig, cmd_reconstructions)
    g = kinds.add_parser("grid", help="figure 3: rows of style-layer subsets, columns of alpha/beta ratios",
                         description="Figure 3: CONTENT in the style of STYLE, one transfer per style-layer subset "
                                     "(rows, --depths) and alpha/beta ratio (columns, --ratios), each from the "
                                     "same white noise. " + CACHE_NOTE)
    g.add_argument("content", help="content photo")
    g.add_argument("style", help="style image")
    _common(g, GridConfig, cmd_grid)


def _common(p, cls, run) -> None:
    p.add_argument("-o", "--output", required=True, help="output sheet (.png recommended)")
    add_run_options(p)
    add_config_options(p, cls)
    p.set_defaults(run=run)


def cmd_reconstructions(args) -> int:
    from ..paper.figures import figure_reconstructions

    config = config_from_args(args, ReconstructConfig)
    return _run(args, lambda cache, show: figure_reconstructions(
        args.image, args.style, config, cache_dir=cache, callback=show))


def cmd_grid(args) -> int:
    from ..paper.figures import figure_grid, grid_axes

    config = config_from_args(args, GridConfig)
    grid_axes(config)  # bad rows or columns: one line before anything runs
    return _run(args, lambda cache, show: figure_grid(args.content, args.style, config, cache_dir=cache, callback=show))


def _run(args, job) -> int:
    output = check_output_path(args.output, [getattr(args, n, None) for n in ("image", "style", "content")])
    cache = Path(f"{output}.cells")

    def write(sheet) -> str:
        save_image(sheet, output)
        return f"wrote {output} ({sheet.width}x{sheet.height}; cells in {cache})"

    def keep(cells) -> str:  # the finished cells are already in the cache
        return f"{len(cells)} finished cell(s) kept in {cache}; run the same command again to go on"

    return run_job(args, lambda show: job(cache, show), write, keep)
