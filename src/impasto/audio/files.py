"""Audio input and output through soundfile (libsndfile): WAV, FLAC and OGG/Vorbis.

Samples are float32 ``(C, N)`` in [-1, 1] at the rate given with them. Reading refuses what cannot
be used — missing, empty, non-audio, NaN-holding or silent files — with one :class:`ImpastoError`
naming the file; writing is atomic and refuses non-finite samples.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from ..errors import ImpastoError
from ..atomic import atomic_write
from ..image.imageio import check_writable
from .resample import resample

# Extension -> (libsndfile format, subtype).
FORMATS = {".wav": ("WAV", "PCM_16"), ".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS")}
SILENCE = 1e-4     # a peak below −80 dBFS is silence (16-bit audio resolves about −96 dBFS)
OUTPUT_PEAK = 0.9  # results are scaled to this peak (−0.9 dBFS): loud enough, never clipped


def read_audio(path: str | os.PathLike) -> tuple[torch.Tensor, int]:
    """Decode ``path`` -> (``(C, N)`` float32 samples, sample rate), or one clear :class:`ImpastoError`."""
    import soundfile

    path = Path(path)
    if not path.exists():
        raise ImpastoError(f"{path}: file not found")
    if path.is_dir():
        raise ImpastoError(f"{path}: is a folder, not an audio file")
    if path.stat().st_size == 0:
        raise ImpastoError(f"{path}: empty file")
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, OSError) as exc:  # soundfile.LibsndfileError is a RuntimeError
        raise ImpastoError(f"{path}: not an audio file soundfile can read (WAV, FLAC, OGG): {exc}") from None
    if data.shape[0] == 0:
        raise ImpastoError(f"{path}: holds no samples")
    if not np.isfinite(data).all():
        raise ImpastoError(f"{path}: holds NaN or inf samples")
    return torch.from_numpy(np.ascontiguousarray(data.T)), int(rate)


def mix_down(x: torch.Tensor) -> torch.Tensor:
    """``(C, N)`` -> ``(1, N)``: the mean of the channels."""
    return x.mean(0, keepdim=True)


def match_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """``(C, N)`` -> ``(channels, N)``: kept when C matches, else mixed down and repeated."""
    if x.shape[0] == channels:
        return x
    return mix_down(x).expand(channels, -1).contiguous()


def load_audio(path, sample_rate: int, channels: str = "mix", min_samples: int = 1) -> torch.Tensor:
    """Read ``path`` as ``(C, N)`` at ``sample_rate`` (mixed to mono unless ``channels == "keep"``).

    Refuses silence and clips shorter than ``min_samples`` at ``sample_rate``.
    """
    x, rate = read_audio(path)
    if float(x.abs().max()) < SILENCE:
        raise ImpastoError(f"{path}: is silent (peak below -80 dBFS)")
    if channels == "mix":
        x = mix_down(x)
    x = resample(x, rate, sample_rate)
    if x.shape[-1] < min_samples:
        raise ImpastoError(f"{path}: too short ({x.shape[-1] / sample_rate:.2f} s); at least "
                           f"{min_samples / sample_rate:.2f} s is needed with these STFT and kernel sizes")
    return x


def normalise_peak(x: torch.Tensor, peak: float = OUTPUT_PEAK) -> torch.Tensor:
    """Scale ``(C, N)`` so that its largest absolute sample is ``peak`` (all-zero input stays zero)."""
    top = float(x.abs().max()) if x.numel() else 0.0
    return x * (peak / top) if top > 0 else x.clone()


def check_audio_output(path: str | os.PathLike, inputs=()) -> Path:
    """Fail before any work if the output's format is unknown, it cannot be written or it is an input."""
    return check_writable(path, FORMATS, "output", inputs)


def save_audio(x: torch.Tensor, sample_rate: int, path: str | os.PathLike) -> Path:
    """Write ``(C, N)`` samples in [-1, 1] atomically; the format follows the extension."""
    import soundfile

    path = check_audio_output(path)
    x = x.detach().float().cpu()
    if not torch.isfinite(x).all():
        raise ImpastoError("the audio holds NaN or inf samples; refusing to write it")
    data = x.clamp(-1, 1).T.contiguous().numpy()
    fmt, subtype = FORMATS[path.suffix.lower()]
    return atomic_write(path, lambda tmp: soundfile.write(tmp, data, sample_rate, format=fmt, subtype=subtype))
