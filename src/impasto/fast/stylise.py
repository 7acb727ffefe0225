"""Stylising with a trained transform network: one forward pass per image (Johnson et al. 2016),
in PyTorch (``.pt`` and bundled models) or onnxruntime (``.onnx``, see :mod:`impasto.fast.onnx`).

A *runner* has ``styles`` (names) and ``__call__(image, mix) -> image`` on ``(1, 3, H, W)`` RGB
[0, 1] tensors, ``mix`` a ``(S,)`` weight vector over the styles (Dumoulin et al. 2017).
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..config import FastConfig
from ..errors import ImpastoError
from ..image.imageio import open_image, pil_to_tensor, resize_to_tensor, save_image
from ..job import Callback, Cancel, running
from ..runtime import resolve_device, resolve_precision
from . import planar
from .model import FastModel, load_model, resolve_model_path

MIN_SIDE = 8  # the 9×9 reflection padding needs more than 4 pixels per side


def parse_mix(text: str | None, styles: list[str]) -> torch.Tensor:
    """``--mix 0.7,0.3`` -> normalised weights over the model's styles; None -> the first style."""
    mix = torch.zeros(len(styles))
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
    mix = torch.tensor(values)
    return mix / mix.sum()


class TorchRunner:
    """A :class:`FastModel` on a device, in fp32 or with bf16 autocast where native; one image in fp32
    on CPU goes through :mod:`.planar`'s C kernels where they were built."""

    def __init__(self, model: FastModel, precision: str = "auto", device: str = "auto"):
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.model, self.styles = model, model.styles
        self.net = model.net.to(self.device).to(memory_format=torch.channels_last)
        use_planar = self.device.type == "cpu" and self.precision == "fp32" and planar.available()
        self.planar = planar.PlanarNet(self.net) if use_planar else None

    def _autocast(self):
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @torch.inference_mode()
    def __call__(self, image: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        if self.planar is not None and image.shape[0] == 1:
            return self.planar(image, mix).clamp(0, 1)
        x = image.to(self.device).contiguous(memory_format=torch.channels_last)
        with self._autocast():
            out = self.net(x, mix.to(self.device))
        return out.float().clamp(0, 1).cpu()

    # The network in two halves, for a video that blends the features between them (impasto.video.fast).
    @torch.inference_mode()
    def encode(self, image: torch.Tensor, mix: torch.Tensor) -> torch.Tensor:
        """``(1, 3, H, W)`` -> the features after the residual blocks, float32 on the runner's device."""
        if self.planar is not None:
            return self.planar.encode(image, mix)
        x = image.to(self.device).contiguous(memory_format=torch.channels_last)
        with self._autocast():
            return self.net.encode(x, mix.to(self.device)).float()

    @torch.inference_mode()
    def decode(self, features: torch.Tensor, size: tuple[int, int], mix: torch.Tensor) -> torch.Tensor:
        """:meth:`encode`'s features (blended or not) -> the ``(1, 3, H, W)`` image on the CPU."""
        if self.planar is not None:
            return self.planar.decode(features, size, mix).clamp(0, 1)
        with self._autocast():
            out = self.net.decode(features.to(self.device), size, mix.to(self.device))
        return out.float().clamp(0, 1).cpu()


def load_runner(name: str | os.PathLike, precision: str = "auto", device: str = "auto"):
    """A runner for a model file (``.pt`` or ``.onnx``) or a bundled model's name."""
    path = resolve_model_path(name)
    if path.suffix.lower() == ".onnx":
        from .onnx import OnnxRunner

        return OnnxRunner(path)
    return TorchRunner(load_model(path), precision, device)


def check_size(image: torch.Tensor, source: str) -> None:
    h, w = image.shape[-2:]
    if min(h, w) < MIN_SIDE:
        raise ImpastoError(f"{source}: {w}x{h} is too small (at least {MIN_SIDE} pixels per side)")


# ---------------------------------------------------------------- the job: many files, one pass each

@dataclass
class Written:
    """What a run over files produced (also the ``partial`` of its :class:`Interrupted`)."""

    written: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)   # one line per input that could not be stylised


def stylise_file(runner, config: FastConfig, mix: torch.Tensor, source: Path, target: Path) -> None:
    """Read ``source``, stylise it (at ``--size``, colours as ``--color`` asks) and write ``target``."""
    from ..image import color

    photo = open_image(source)
    image = resize_to_tensor(photo, long_side=config.size) if config.size else pil_to_tensor(photo)
    check_size(image, str(source))
    out = runner(image, mix)
    if config.color == "luminance":  # arXiv 1606.05897: the photo's chrominance under the result's luma
        out = color.keep_chrominance(out, image, config.color_space)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_image(out, target)


def stylise_files(runner, config: FastConfig, mix: torch.Tensor, pairs: list[tuple[Path, Path]],
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
