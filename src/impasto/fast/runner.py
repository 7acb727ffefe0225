"""A trained transform network in PyTorch, for :mod:`.stylise` and the video's fast mode: on a device,
in fp32 or with bf16 autocast where native; one image in fp32 on the CPU through :mod:`.planar`'s C
kernels where they were built.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from ..runtime import resolve_device, resolve_precision
from . import planar
from .model import FastModel


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
    def __call__(self, image, mix):
        """``(1, 3, H, W)`` in [0, 1] -> the stylised image: arrays in, an array out (as
        :class:`~.onnx.OnnxRunner`); tensors in, a tensor out."""
        if isinstance(image, np.ndarray):
            return self(torch.from_numpy(image), torch.as_tensor(mix)).numpy()
        mix = torch.as_tensor(mix)
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
        mix = torch.as_tensor(mix)
        if self.planar is not None:
            return self.planar.encode(image, mix)
        x = image.to(self.device).contiguous(memory_format=torch.channels_last)
        with self._autocast():
            return self.net.encode(x, mix.to(self.device)).float()

    @torch.inference_mode()
    def decode(self, features: torch.Tensor, size: tuple[int, int], mix: torch.Tensor) -> torch.Tensor:
        """:meth:`encode`'s features (blended or not) -> the ``(1, 3, H, W)`` image on the CPU."""
        mix = torch.as_tensor(mix)
        if self.planar is not None:
            return self.planar.decode(features, size, mix).clamp(0, 1)
        with self._autocast():
            out = self.net.decode(features.to(self.device), size, mix.to(self.device))
        return out.float().clamp(0, 1).cpu()
