"""The paper's figures as library functions (Gatys, Ecker & Bethge, arXiv 1508.06576).

Figure 1: a sheet of the reconstructions of :mod:`.reconstruct`, one per layer. Figure 3: one transfer per style-layer subset (rows) and α/β
ratio (columns), every cell from the same white noise, with targets computed once per sheet.

The paper's "conv1_1 … conv5_1" are the post-ReLU responses, ``relu1_1 … relu5_1`` here; the
sheets label them with the paper's names. Nothing here prints or reads arguments: progress goes
to callbacks (:mod:`impasto.job`), and the only files written are a sheet's finished cells
(:class:`CellCache`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch
from PIL import Image

from ..image import imageio
from ..config import PAPER_FIGURE_LAYERS, GridConfig, ReconstructConfig
from ..errors import ImpastoError
from ..job import Callback, Cancel, Interrupted, Reporter, running
from ..loss.terms import content_targets, content_term, style_targets, style_term
from ..runtime import check_image_memory
from .reconstruct import MIN_SIDE, check_run, measured, network_on_device, solve, texture_shape, white_noise
from .sheet import Cell, contact_sheet
from ..net.vgg import VGG19, check_layers, min_side

LETTERS = "abcde"      # the paper's panel letters, by number of style layers / content layer depth


def paper_name(layer: str) -> str:
    """``relu2_1`` -> ``conv2_1``: the paper's name of a post-ReLU response; others unchanged."""
    return "conv" + layer[4:] if layer.startswith("relu") else layer


def subset_label(depth: int, sep: str = " ") -> str:
    """Figure 1 and 3's style subsets: conv1_1 (a); conv1_1, conv2_1 (b); conv1_1 ... conv3_1 (c) …"""
    names = [paper_name(l) for l in PAPER_FIGURE_LAYERS[:depth]]
    if depth <= 2:
        return ("," + sep).join(names)
    return f"{names[0]}{sep}...{sep}{names[-1]}"


def ratio_label(ratio: float) -> str:
    """1e-05 -> '1e-5', 0.0008 -> '8e-4' (the paper's way of writing α/β)."""
    mantissa, exponent = f"{ratio:e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def grid_axes(config: GridConfig) -> tuple[tuple[int, ...], tuple[float, ...]]:
    """Figure 3's rows (style depths 1–5) and columns (α/β ratios), checked."""
    depths = (config.depths,) if isinstance(config.depths, int) else tuple(config.depths)
    ratios = tuple(config.ratios)
    if not depths or any(d not in range(1, 6) for d in depths) or len(set(depths)) != len(depths):
        raise ImpastoError(f"--depths must be distinct numbers from 1 to 5, got {','.join(map(str, depths))}")
    if not ratios or min(ratios) <= 0 or len(set(ratios)) != len(ratios):
        raise ImpastoError(f"--ratios must be distinct positive numbers, got {','.join(map(str, ratios))}")
    check_layers(config.content_layers)
    return depths, ratios


@dataclass
class CellJob:
    key: str                                        # file-name stem, unique within the sheet
    label: str
    make: Callable[[Callable, Cancel], torch.Tensor]  # (report, cancel) -> (1, 3, H, W) image


class CellCache:
    """A sheet's finished cells as PNGs in ``folder``, each named by its cell and a fingerprint of
    everything that shapes it (inputs' pixels, every option, the version). Written atomically, so a
    sheet stopped and started again with the same arguments goes on where it stopped."""

    def __init__(self, folder: str | Path, fingerprint: str):
        self.folder, self.fingerprint = Path(folder), fingerprint

    def path(self, key: str) -> Path:
        return self.folder / f"{key}-{self.fingerprint[:16]}.png"

    def get(self, key: str) -> Image.Image | None:
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            return imageio.open_image(path)
        except ImpastoError:  # unreadable: made again
            return None

    def put(self, key: str, image: Image.Image) -> None:
        try:
            self.folder.mkdir(exist_ok=True)
        except OSError as exc:
            raise ImpastoError(f"{self.folder}: cannot create the cell cache ({exc.strerror})") from None
        imageio.save_image(image, self.path(key))


def fingerprint(kind: str, config, images: Sequence[torch.Tensor], skip: Sequence[str] = ()) -> str:
    """SHA-256 of the sheet's kind, the options (less ``skip``), the inputs' pixels and the version."""
    from .. import __version__  # here: the package imports its modules before defining it

    h = hashlib.sha256()
    options = {k: v for k, v in asdict(config).items() if k not in skip}
    h.update(json.dumps([kind, __version__, options], sort_keys=True, default=str).encode())
    for image in images:
        pixels = (image.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
        h.update(str(tuple(pixels.shape)).encode() + pixels.numpy().tobytes())
    return h.hexdigest()


def run_cells(jobs: Sequence[CellJob], iterations: int, cache: CellCache | None = None,
              callback: Callback | None = None, cancel: Cancel | None = None) -> list[Image.Image]:
    """Each cell in turn (cached ones read back), reporting over the whole sheet.

    Stopped by ``cancel`` (or Ctrl-C): :class:`Interrupted` whose ``partial`` is the list of the
    cells finished so far, in sheet order (all of them also in ``cache``).
    """
    images = []
    with running("figure", len(jobs) * iterations, callback, cancel) as reporter:
        for index, job in enumerate(jobs):
            stage = f"cell {index + 1}/{len(jobs)} {job.label}"
            image = cache.get(job.key) if cache is not None else None
            if image is not None:
                reporter.skip(iterations, stage + " (cached)")
            else:
                image = _make_cell(job, stage, reporter, iterations, reporter.cancel, images)
                if cache is not None:
                    cache.put(job.key, image)
            images.append(image)
    return images


def _make_cell(job: CellJob, stage: str, reporter: Reporter, iterations: int, cancel: Cancel,
               finished: list[Image.Image]) -> Image.Image:
    """One cell's optimisation; its report counts over the sheet (a cell that stops early, by
    ``--early-stop``, still counts its planned iterations)."""
    end = reporter.done + iterations
    try:
        image = job.make(lambda losses, current: reporter(losses, stage), cancel)
    except Interrupted:
        raise Interrupted(list(finished)) from None
    if reporter.done < end:
        reporter({}, stage, units=end - reporter.done)
    return imageio.tensor_to_pil(image.cpu())


def figure_reconstructions(image, style=None, config: ReconstructConfig | None = None,
                           cache_dir: str | Path | None = None,
                           callback: Callback | None = None, network: VGG19 | None = None,
                           cancel: Cancel | None = None) -> Image.Image:
    """Figure 1: content reconstructions of ``image`` from conv1_1 … conv5_1 (a–e) and style
    reconstructions of ``style`` (default: ``image``) from the growing subsets (a)–(e), one sheet."""
    config = config or ReconstructConfig()
    check_run(config)
    photo = measured(image, config.size)
    painting = photo if style is None else measured(style, config.size)
    w, h = texture_shape(config, (painting.shape[-1], painting.shape[-2]))
    check_image_memory(config, (w, h), "a style panel", "--texture-size side")
    check_image_memory(config, (photo.shape[-1], photo.shape[-2]), "a content panel", "--size")
    vgg, device = network_on_device(config, network)
    photo, painting = photo.to(device), painting.to(device)
    jobs = _content_jobs(vgg, photo, config) + _style_jobs(vgg, painting, (1, 3, h, w), config)
    cache = None if cache_dir is None else CellCache(cache_dir, fingerprint("reconstructions", config,
                                                                            [photo, painting]))
    cells = run_cells(jobs, config.iterations, cache, callback, cancel)
    return _reconstruction_sheet(cells, photo, painting, _name(image), _name(image if style is None else style))


def _content_jobs(vgg: VGG19, photo: torch.Tensor, config: ReconstructConfig) -> list[CellJob]:
    targets = content_targets(vgg, photo, PAPER_FIGURE_LAYERS)
    return [CellJob(f"content-{layer}", paper_name(layer),
                    lambda report, cancel, l=layer: solve(vgg, [content_term({l: targets[l]}, [1.0], 1.0)],
                                                          white_noise(photo.shape, config.seed).to(photo.device),
                                                          config, report, cancel))
            for layer in PAPER_FIGURE_LAYERS]


def _style_jobs(vgg: VGG19, painting: torch.Tensor, shape, config: ReconstructConfig) -> list[CellJob]:
    targets = style_targets(vgg, [painting], [1.0], PAPER_FIGURE_LAYERS)

    def job(depth: int) -> CellJob:
        subset = {l: targets[l] for l in PAPER_FIGURE_LAYERS[:depth]}
        term = style_term(subset, [1.0 / depth] * depth, 1.0)  # w_l = 1/|subset| (paper: 1/5 for all five)
        return CellJob(f"style-{depth}", subset_label(depth),
                       lambda report, cancel: solve(vgg, [term], white_noise(shape, config.seed).to(painting.device),
                                                    config, report, cancel))

    return [job(d) for d in range(1, len(PAPER_FIGURE_LAYERS) + 1)]


def _name(image) -> str:
    return "image" if isinstance(image, Image.Image) else Path(image).name


def _reconstruction_sheet(cells: list[Image.Image], photo: torch.Tensor, painting: torch.Tensor,
                          photo_name: str, painting_name: str) -> Image.Image:
    n = len(PAPER_FIGURE_LAYERS)
    content_row = [Cell(imageio.tensor_to_pil(photo), "input")] + [
        Cell(img, paper_name(l)) for img, l in zip(cells[:n], PAPER_FIGURE_LAYERS)]
    style_row = [Cell(imageio.tensor_to_pil(painting), "input")] + [
        Cell(img, subset_label(d)) for img, d in zip(cells[n:], range(1, n + 1))]
    return contact_sheet([content_row, style_row], ["content", "style"],
                         [""] + [f"({c})" for c in LETTERS[:n]],
                         f"Gatys et al., figure 1: reconstructions from white noise of the content of "
                         f"{photo_name} and the style of {painting_name}. convN_1 is the post-ReLU "
                         f"response (reluN_1 in impasto)")


def figure_grid(content, style, config: GridConfig | None = None, cache_dir: str | Path | None = None,
                callback: Callback | None = None, network: VGG19 | None = None,
                cancel: Cancel | None = None) -> Image.Image:
    """Figure 3: rows are the style subsets conv1_1 … conv<d>_1, columns the ratios α/β; every
    cell is ``α L_content + β L_style`` (eq. 7) from the same white noise, with shared targets."""
    config = config or GridConfig()
    depths, ratios = grid_axes(config)
    check_run(config)
    photo = measured(content, config.size, max(MIN_SIDE, min_side([*config.content_layers, *PAPER_FIGURE_LAYERS[:max(depths)]])))
    painting = measured(style, config.size)  # the style at the cell's long side
    check_image_memory(config, (photo.shape[-1], photo.shape[-2]), "a cell", "--size")
    vgg, device = network_on_device(config, network)
    photo, painting = photo.to(device), painting.to(device)
    c_targets = content_targets(vgg, photo, config.content_layers)
    s_targets = style_targets(vgg, [painting], [1.0], PAPER_FIGURE_LAYERS[:max(depths)])
    jobs = [_grid_job(vgg, c_targets, s_targets, photo, d, r, config) for d in depths for r in ratios]
    cache = None if cache_dir is None else CellCache(
        cache_dir, fingerprint("grid", config, [photo, painting], skip=("ratios", "depths")))
    cells = run_cells(jobs, config.iterations, cache, callback, cancel)
    return _grid_sheet(cells, depths, ratios, _name(content), _name(style))


def _grid_job(vgg: VGG19, c_targets: dict, s_targets: dict, photo: torch.Tensor, depth: int, ratio: float,
              config: GridConfig) -> CellJob:
    subset = {l: s_targets[l] for l in PAPER_FIGURE_LAYERS[:depth]}
    terms = [content_term(c_targets, [1.0] * len(c_targets), 1.0),          # α = 1
             style_term(subset, [1.0 / depth] * depth, 1.0 / ratio)]        # β = α / ratio, w_l = 1/|subset|
    return CellJob(f"d{depth}-r{ratio!r}", f"({LETTERS[depth - 1]}) {ratio_label(ratio)}",
                   lambda report, cancel: solve(vgg, terms, white_noise(photo.shape, config.seed).to(photo.device),
                                                config, report, cancel))


def _grid_sheet(cells: list[Image.Image], depths, ratios, content_name: str, style_name: str) -> Image.Image:
    k = len(ratios)
    rows = [[Cell(cells[i * k + j], f"({LETTERS[d - 1]}) {ratio_label(r)}") for j, r in enumerate(ratios)]
            for i, d in enumerate(depths)]
    return contact_sheet(rows, [f"({LETTERS[d - 1]})\n" + subset_label(d, sep="\n") for d in depths],
                         [f"alpha/beta\n{ratio_label(r)}" for r in ratios],
                         f"Gatys et al., figure 3: {content_name} in the style of {style_name}. "
                         f"Rows: style layers; columns: alpha/beta")

