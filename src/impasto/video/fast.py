"""``impasto video CLIP --model NAME``: a trained network (:mod:`impasto.fast`) on every frame,
blended along the optical flow (:mod:`.flow`) so that its strokes stay on the objects.

The features of the network's first half (after its residual blocks) are blended with the previous
frame's features warped to this frame where the flow is reliable, ``(1 − b c) f_t + b c ω(f'_{t−1})``
with ``b = --temporal-features`` (the flow-guided feature composition of Chen et al., "Coherent
Online Video Style Transfer", ICCV 2017, arXiv 1703.09211, with the reliability in place of their
learned mask), painted by its second half, then the output blended the same way,
``(1 − a c) y_t + a c ω(y'_{t−1})`` with ``a = --temporal`` (flow-guided blending, the
post-processing form of the temporal consistency of Ruder et al. 2018, arXiv 1708.04538, and Lai et
al. 2018, arXiv 1808.00449); a frame whose reliable share falls below ``--scene-cut`` starts afresh.
The frames are made a few ahead on worker threads (:class:`_Ahead`) and kept in order through
:func:`.cache.frames_loop`.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from ..atomic import atomic_write
from ..config import VideoConfig, check_options
from ..image import color
from ..job import Callback, Cancel, Interrupted, running
from ..image import flow as optical
from .cache import Stylised, cache_folder, fingerprint, frames_loop, kept_frame, sized_frames, to_frame, to_tensor
from .read import Clip


def fast_video(clip: Clip, runner, mix: torch.Tensor, size: int | None = None, video: VideoConfig | None = None,
               output: str | os.PathLike = "video.mp4", callback: Callback | None = None,
               cancel: Cancel | None = None, keep_colors: str | None = None, model_key: str = "") -> Stylised:
    """A trained network on every frame, its features and its output blended with the previous
    frame's along the flow.

    ``runner``: :func:`impasto.fast.stylise.load_runner`'s (one without ``encode``/``decode``, an
    ``.onnx`` model, blends the outputs only); ``keep_colors``: a colour space (yiq, yuv) to keep the
    frame's chrominance, None for the network's colours.
    """
    video = video or VideoConfig()
    check_options(video)
    frames = sized_frames(clip, size)
    key = fingerprint("fast", [video], frames, [model_key, str(mix.tolist()), str(keep_colors)])
    folder = cache_folder(output, key)
    features = video.temporal_features > 0 and hasattr(runner, "encode")
    chains = _Chains(folder, features)
    work = lambda t: _fast_work(runner, mix, video, frames, chains, keep_colors, t)  # noqa: E731
    with running("video", len(frames), callback, cancel, unit="frame") as reporter, \
            _Ahead(work, len(frames), getattr(runner, "device", None), chains.expect) as ahead:
        try:
            return frames_loop(frames, folder, reporter, lambda t, outs, report: _fast_frame(
                ahead(t), chains, t, report), lambda t: 1)
        except Interrupted as stopped:
            chains.save_features(len(stopped.partial.frames) - 1)
            raise


class _Ahead:
    """The fast mode's frames made on as many worker threads as PyTorch had threads, each running
    PyTorch on one, up to :attr:`FRAMES` frames ahead of the one being kept: a small network keeps the
    cores busier that way than one pass at a time on all of them (width 0.25 at 320×240, two cores:
    22.4 against 25.5 ms a frame in fp32, 10.4 against 12.7 in bf16, measured), and the
    single-threaded flow guide runs beside a network pass; what a frame needs of the one before (its
    blended features, the finished frame) it waits for (:class:`_Chains`). On a GPU: one worker,
    PyTorch's threads unchanged. ``ahead(t)`` waits for frame t's result; frames are asked for, and
    submitted (``before(k)`` just before), in order."""

    FRAMES = 4

    def __init__(self, work, count: int, device: torch.device | None = None, before=None):
        self.work, self.count, self.before = work, count, before
        self.cpu = device is None or device.type == "cpu"
        self.threads = torch.get_num_threads()
        self.pool = ThreadPoolExecutor(max(1, self.threads) if self.cpu else 1)
        self.futures: dict = {}

    def __enter__(self) -> "_Ahead":
        if self.cpu:
            torch.set_num_threads(1)
        return self

    def __exit__(self, *exc) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)  # Ctrl-C: the frames under way finish first
        if self.cpu:
            torch.set_num_threads(self.threads)

    def __call__(self, t: int):
        for k in range(t, min(t + self.FRAMES, self.count)):
            if k not in self.futures:
                if self.before is not None:
                    self.before(k)
                self.futures[k] = self.pool.submit(self.work, k)
        return self.futures.pop(t).result()


class _Chains:
    """What frame t's work needs of frame t − 1's, shared by the worker threads: its blended
    features and the finished frame. Frame t waits for them if frame t − 1 was submitted in this run;
    else they come from the job's folder (a run going on after Ctrl-C: the frame kept there, and the
    features saved with the last finished frame), or there are none and frame t starts afresh."""

    FEATURES = "features.npz"

    def __init__(self, folder: Path, features: bool):
        self.folder, self.features = folder, features
        self.lock = threading.Lock()
        self.futures: dict[tuple[str, int], Future] = {}

    def expect(self, t: int) -> None:
        """Frame t's work is about to be submitted."""
        with self.lock:
            self.futures["features", t], self.futures["frame", t] = Future(), Future()

    def publish(self, kind: str, t: int, value) -> None:
        self.futures[kind, t].set_result(value)

    def fail(self, t: int, exc: BaseException) -> None:
        """Frame t's work failed: what it did not publish fails in the frame after it too."""
        for kind in ("features", "frame"):
            if not self.futures[kind, t].done():
                self.futures[kind, t].set_exception(exc)

    def previous(self, kind: str, t: int):
        """Frame t − 1's blended features (a tensor) or finished frame (uint8 H×W×3), or None."""
        with self.lock:
            waiting = self.futures.get((kind, t - 1))
        if waiting is not None:
            return waiting.result()
        if kind == "frame":
            return kept_frame(self.folder, t - 1)
        try:
            with np.load(self.folder / self.FEATURES, allow_pickle=False) as kept:
                if int(kept["frame"]) == t - 1:
                    return torch.from_numpy(kept["features"])
        except (OSError, ValueError, KeyError):
            pass
        return None

    def done(self, t: int) -> None:
        """Frame t is kept: what the frames before it left is no longer needed."""
        with self.lock:
            for key in [key for key in self.futures if key[1] < t]:
                del self.futures[key]

    def save_features(self, t: int) -> None:
        """Frame t's blended features into the job's folder (the job stopped after frame t)."""
        with self.lock:
            kept = self.futures.get(("features", t))
        if not self.features or kept is None or not kept.done() or kept.exception() is not None:
            return
        self.folder.mkdir(exist_ok=True)
        atomic_write(self.folder / self.FEATURES, lambda tmp: np.savez(
            tmp, frame=np.int64(t), features=kept.result().cpu().numpy()))


def _fast_work(runner, mix, video: VideoConfig, frames, chains: _Chains, keep_colors, t: int):
    """Frame t, on a worker thread: the features of the network's first half blended with frame t − 1's
    (Chen et al. 2017, arXiv 1703.09211: warped along the flow, where it is reliable) and painted by its
    second half (or the whole network, where there are no features to blend), then the output
    blended with the previous frame the same way. Returns (the frame, the flow's reliable share)."""
    try:
        photo = to_tensor(frames[t])
        blends = t > 0 and (video.temporal > 0 or chains.features)
        guide = optical.guide(frames[t], frames[t - 1], flow_side(video, frames[t]), video.fast_flow) if blends else None
        share = float(guide[1].mean()) if guide is not None else 0.0
        fresh = guide is None or share < video.scene_cut  # a cut: nothing of the previous frame is blended in
        if chains.features:
            features, previous = runner.encode(photo, mix), None if fresh else chains.previous("features", t)
            if previous is not None:
                features = blend(features, previous, *optical.shrink(*guide, features.shape[-2:]),
                                 video.temporal_features)
            chains.publish("features", t, features)
            out = runner.decode(features, frames[t].shape[:2], mix)
        else:
            out = runner(photo, mix)
        if keep_colors is not None:  # arXiv 1606.05897: the frame's chrominance under the result's luminance
            out = color.keep_chrominance(out, photo, keep_colors)
        previous = None if fresh or video.temporal == 0 else chains.previous("frame", t)
        if previous is not None:
            out = blend(out, to_tensor(previous), *guide, video.temporal)
        frame = to_frame(out)
    except BaseException as exc:
        chains.fail(t, exc)
        raise
    chains.publish("frame", t, frame)
    return frame, share


def flow_side(video: VideoConfig, frame: np.ndarray) -> int:
    """The long side of the fast mode's flow: ``--fast-flow-side``, at most half the frame's (0: the
    frame's own). A blend wants the motion of regions; on small frames the flow guide's fixed costs
    would otherwise weigh as much as the network (measured at 192×144: 96 px, the same E_warp as at
    160 px, 11.7 against 13.8 ms a frame)."""
    return min(video.fast_flow_side, max(frame.shape[:2]) // 2) if video.fast_flow_side > 0 else 0


def _fast_frame(ahead, chains: _Chains, t: int, report) -> np.ndarray:
    frame, share = ahead
    chains.done(t)
    report({}, extra={"reliable": share})
    return frame


def blend(current: torch.Tensor, previous: torch.Tensor, back: np.ndarray, mask: np.ndarray, weight: float) -> torch.Tensor:
    """``(1 − a c) current + a c ω(previous)``: ``previous`` warped to this frame along the backward
    flow ``back``, ``c`` the flow's reliability ``mask``, ``a`` the ``weight`` (flow-guided blending)."""
    a = weight * torch.from_numpy(np.ascontiguousarray(mask))[None, None].to(current.device, torch.float32)
    return (1 - a) * current + a * optical.warp(previous.to(current.device), back)
