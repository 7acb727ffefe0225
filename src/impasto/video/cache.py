"""The frames of a video job: sized for the job, kept one by one as they are finished, and the one
loop over them that both modes share.

Each finished frame is kept (a raw .npy array) in a folder beside the output named by a hash of the
inputs and settings (:func:`impasto.job.fingerprint`, :func:`cache_folder`), so a run stopped by Ctrl-C goes on
from the next frame when it is started again; :func:`forget` removes the folder once the video is
written. :func:`frames_loop` reads a frame back from there when it was finished before, and makes
and keeps it otherwise, reporting every step through the job model (:mod:`impasto.job`).
"""

from __future__ import annotations

import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from ..atomic import atomic_write
from ..image import imageio
from ..job import Interrupted, Reporter, fingerprint, kept_folder
from .read import Clip

@dataclass
class Stylised:
    """A finished clip (``frames`` at the output size), or, as the ``partial`` of an
    :class:`Interrupted`, the frames finished so far and the folder that keeps them."""

    frames: list[np.ndarray]
    total: int
    folder: Path


# ---------------------------------------------------------------- frames for the job

def sized_frames(clip: Clip, long_side: int | None) -> list[np.ndarray]:
    """The clip's frames at ``long_side`` (Lanczos; aspect kept), or as they are (None); resized on as
    many threads as PyTorch has (Pillow lets go of the GIL while it resizes)."""
    if long_side is None:
        return list(clip.frames)
    h, w = clip.frames[0].shape[:2]
    size = imageio.fit_long_side((w, h), long_side)
    if size == (w, h):
        return list(clip.frames)
    with ThreadPoolExecutor(max(1, torch.get_num_threads())) as pool:
        return list(pool.map(lambda f: np.asarray(Image.fromarray(f).resize(size, Image.Resampling.LANCZOS)),
                             clip.frames))


def to_tensor(frame: np.ndarray) -> torch.Tensor:
    """A uint8 H×W×3 frame as a ``(1, 3, H, W)`` tensor in [0, 1]."""
    return torch.from_numpy(np.array(frame)).permute(2, 0, 1).unsqueeze(0).float() / 255.0


def to_frame(image: torch.Tensor) -> np.ndarray:
    """A ``(1, 3, H, W)`` image in [0, 1] as a uint8 H×W×3 frame."""
    return np.asarray(imageio.tensor_to_pil(image))


# ---------------------------------------------------------------- the folder of kept frames

def cache_folder(output: str | os.PathLike, key: str) -> Path:
    """Where a job writing ``output`` keeps its finished frames: beside it, named by the ``key``."""
    return kept_folder(output, key, "frames")


def _frame_file(folder: Path, t: int) -> Path:
    return folder / f"frame_{t + 1:05d}.npy"


def kept_frame(folder: Path, t: int) -> np.ndarray | None:
    """Frame t kept by an earlier run, or None (none, or damaged: then made again)."""
    path = _frame_file(folder, t)
    if not path.is_file():
        return None
    try:
        frame = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    ok = frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    return frame if ok else None


def keep_frame(folder: Path, t: int, frame: np.ndarray) -> None:
    """Frame t into the job's own folder, atomically, as a raw array (.npy): a fast-mode frame takes
    a few milliseconds to make, and writing it as a PNG took as long again (measured at 384 px)."""
    folder.mkdir(exist_ok=True)
    atomic_write(_frame_file(folder, t), lambda tmp: np.save(tmp, np.ascontiguousarray(frame), allow_pickle=False))


def forget(result: Stylised) -> None:
    """Remove the folder of kept frames once the video is written."""
    shutil.rmtree(result.folder, ignore_errors=True)


# ---------------------------------------------------------------- the loop over frames

def frames_loop(frames, folder: Path, reporter: Reporter, make, units) -> Stylised:
    """Each frame in turn: read back from ``folder`` if finished before, else made and kept there.

    ``make(t, outputs, report)`` makes frame t (``report(losses, image=None, **fields)`` per unit of
    work); ``units(t)`` is how many units frame t counts for. Every event says its ``frame`` and
    ``frames``; each finished frame is reported once more, counting no unit, as ``finished`` with the
    frame as the event's ``image``.
    """
    outputs: list[np.ndarray] = []
    began, made, n = time.perf_counter(), 0, len(frames)
    for t in range(n):
        at = {"frame": t + 1, "frames": n}
        stage = f"frame {t + 1}/{n}"
        cached = kept_frame(folder, t)
        if cached is not None:
            outputs.append(cached)
            reporter.skip(units(t), stage + " (kept)", **at)
            continue
        if made:
            stage += f", {made / (time.perf_counter() - began) * 60:.1f} frames/min"
        end = reporter.done + units(t)
        try:
            frame = make(t, outputs, lambda losses, *rest, stage=stage, **fields: reporter(losses, stage, **at, **fields))
        except Interrupted:
            raise Interrupted(Stylised(outputs, n, folder)) from None
        if reporter.done < end:  # a frame that stopped early (converged) still counts its share
            reporter({}, stage, units=end - reporter.done, **at)
        keep_frame(folder, t, frame)
        outputs.append(frame)
        made += 1
        reporter({}, f"frame {t + 1}/{n} finished", image=to_tensor(frame), units=0, finished=True, **at)  # a preview
        reporter.cancel.check(lambda: Stylised(outputs, n, folder))
    return Stylised(outputs, n, folder)
