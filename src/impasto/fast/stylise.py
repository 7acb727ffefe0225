"""Stylising with a trained transform network: one forward pass per image (Johnson et al. 2016),
in PyTorch (``.pt`` models, :mod:`.runner`) or onnxruntime (``.onnx``, :mod:`.onnx`; and the bundled
models for a one-off command, through the ONNX twin shipped beside each).

A *runner* has ``styles`` (names) and ``__call__(image, mix) -> image`` on ``(1, 3, H, W)`` RGB
[0, 1] float32 arrays, ``mix`` a ``(S,)`` weight vector over the styles (Dumoulin et al. 2017).
Nothing here imports PyTorch: a one-image command on onnxruntime never loads it.
"""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import FastConfig
from ..errors import ImpastoError
from ..image.imageio import open_image, pil_to_array, resized, save_image
from ..job import Callback, Cancel, running
from .model import bundled_dir, resolve_model_path

MIN_SIDE = 8  # the 9×9 reflection padding needs more than 4 pixels per side


def parse_mix(text: str | None, styles: list[str]) -> np.ndarray:
    """``--mix 0.7,0.3`` -> normalised float32 weights over the model's styles; None -> the first style."""
    mix = np.zeros(len(styles), dtype=np.float32)
    if text is None:
        mix[0] = 1.0
        return mix
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ImpastoError(f"--mix: expected comma-separated weights, got '{text}'") from None
    if len(values) != len(styles):
        raise ImpastoError(f"--mix: {len(values)} weights for a model of {len(styles)} styles "
                           f"({', '.join(styles)})")
    if not all(math.isfinite(v) for v in values):
        raise ImpastoError(f"--mix: weights must be finite numbers, got '{text}'")
    if any(v < 0 for v in values) or sum(values) <= 0:
        raise ImpastoError("--mix: weights must be non-negative with a positive sum")
    mix = np.asarray(values, dtype=np.float32)
    return mix / mix.sum()


def load_runner(name: str | os.PathLike, precision: str = "auto", device: str = "auto", quick: bool = False):
    """A runner for a model file (``.pt`` or ``.onnx``) or a bundled model's name.

    ``quick``: a bundled model runs on onnxruntime (its ONNX twin, exported from the same ``.pt``)
    where onnxruntime is installed and the run is fp32 on the CPU as ``auto`` allows — no PyTorch to
    load, which is most of a one-image command's time; the video's fast mode, which splits the
    network in two, and a long-lived server keep PyTorch.
    """
    path = resolve_model_path(name)
    if path.suffix.lower() == ".onnx":
        from .onnx import OnnxRunner

        return OnnxRunner(path)
    twin = path.with_suffix(".onnx")
    if quick and path.parent == bundled_dir() and twin.is_file() and device in ("auto", "cpu") \
            and precision in ("auto", "fp32") and importlib.util.find_spec("onnxruntime") is not None:
        from .onnx import OnnxRunner

        return OnnxRunner(twin)
    from .model import load_model
    from .runner import TorchRunner

    return TorchRunner(load_model(path), precision, device)


def check_size(image: np.ndarray, source: str) -> None:
    h, w = image.shape[-2:]
    if min(h, w) < MIN_SIDE:
        raise ImpastoError(f"{source}: {w}x{h} is too small (at least {MIN_SIDE} pixels per side)")


# ---------------------------------------------------------------- the job: many files, one pass each

@dataclass
class Written:
    """What a run over files produced (also the ``partial`` of its :class:`Interrupted`)."""

    written: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)   # one line per input that could not be stylised


def stylise_file(runner, config: FastConfig, mix: np.ndarray, source: Path, target: Path) -> None:
    """Read ``source``, stylise it (at ``--size``, colours as ``--color`` asks) and write ``target``."""
    photo = open_image(source)
    image = pil_to_array(resized(photo, long_side=config.size) if config.size else photo)
    check_size(image, str(source))
    out = runner(image, mix)
    if config.color == "luminance":  # arXiv 1606.05897: the photo's chrominance under the result's luma
        out = _keep_chrominance(out, image, config.color_space)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_image(out, target)


def _keep_chrominance(out: np.ndarray, photo: np.ndarray, space: str) -> np.ndarray:
    import torch

    from ..image import color

    return color.keep_chrominance(torch.from_numpy(out), torch.from_numpy(photo), space).numpy()


def stylise_files(runner, config: FastConfig, mix: np.ndarray, pairs: list[tuple[Path, Path]],
                  callback: Callback | None = None, cancel: Cancel | None = None) -> Written:
    """Each ``(source, target)`` in turn, one Progress event (unit "img") per file. With several files
    a bad one is skipped and named in ``skipped``; a single bad file raises its error. Setting
    ``cancel`` (or Ctrl-C) raises :class:`Interrupted` with the files written so far."""
    done = Written()
    with running("fast", len(pairs), callback, cancel, unit="img") as reporter:
        for source, target in pairs:
            reporter.cancel.check(lambda: done)
            try:
                stylise_file(runner, config, mix, source, target)
                done.written.append(target)
            except ImpastoError as exc:
                if len(pairs) == 1:
                    raise
                done.skipped.append(str(exc))
            reporter({}, source.name)
    return done
