"""Spectrogram figures: content, style and result side by side, because audio results are judged by
looking at spectrograms as much as by listening. matplotlib is imported only here, when needed."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch

from ..atomic import atomic_write
from ..image.imageio import check_writable

PLOT_FORMATS = (".png", ".jpg", ".jpeg", ".pdf", ".svg")


def check_plot_output(path: str | os.PathLike, inputs=()) -> Path:
    """Fail before any work if matplotlib cannot write this kind of file, or it cannot be written, or
    it is an input."""
    return check_writable(path, PLOT_FORMATS, "plot", inputs)


def spectrogram_figure(panels: Sequence[tuple[str, torch.Tensor]], sample_rate: int, hop: int):
    """One panel per ``(title, log1p|STFT| (C, bins, T))``, channels averaged, on one shared colour scale.

    Time in seconds on x, frequency in kHz on y (linear, 0 to Nyquist).
    """
    from matplotlib.figure import Figure

    images = [spec.float().mean(0).cpu().numpy() for _, spec in panels]
    top = max(float(img.max()) for img in images) or 1.0
    fig = Figure(figsize=(4.2 * len(panels), 3.4), layout="constrained")
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for ax, (title, _), img in zip(axes, panels, images):
        seconds = img.shape[1] * hop / sample_rate
        shown = ax.imshow(img, origin="lower", aspect="auto", cmap="magma", vmin=0, vmax=top,
                          extent=(0, seconds, 0, sample_rate / 2000), interpolation="nearest")
        ax.set_title(title)
        ax.set_xlabel("time (s)")
    axes[0].set_ylabel("frequency (kHz)")
    fig.colorbar(shown, ax=list(axes), label="log(1 + |STFT|)", shrink=0.9)
    return fig


def save_spectrograms(panels: Sequence[tuple[str, torch.Tensor]], sample_rate: int, hop: int,
                      path: str | os.PathLike, dpi: int = 100) -> Path:
    """Draw :func:`spectrogram_figure` and write it atomically; the format follows the extension."""
    path = check_plot_output(path)
    fig = spectrogram_figure(panels, sample_rate, hop)
    fmt = path.suffix.lower().lstrip(".").replace("jpg", "jpeg")
    return atomic_write(path, lambda tmp: fig.savefig(tmp, format=fmt, dpi=dpi))
