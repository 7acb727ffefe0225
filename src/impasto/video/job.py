"""``impasto video``: a clip stylised frame by frame, each frame tied to the ones before it along the
optical flow, so that the brush strokes stay on the objects instead of crawling and flickering.

Data flow: clip (frames, frame rate, audio: :mod:`.frames`) -> frames at ``--size`` -> optical flow
between the input frames and its reliability (:mod:`.flow`) -> each frame in turn:

- **optimisation** (Ruder, Dosovitskiy & Brox, "Artistic style transfer for videos", GCPR 2016,
  arXiv 1604.08610): the first frame as ``impasto transfer``; every later frame starts from the
  previous result warped to it (their initialisation "prev-warped") and adds the temporal loss
  ``λ Σ_j Σ_pixels c_j (x − ω_j)²`` (their eq. 7, short-term, j = 1; eq. 8–9, long-term, j ∈ J with
  the closest-first weights of :func:`.flow.long_term_weights`), ``ω_j`` the result of frame t − j
  warped to frame t and ``c_j`` the reliability of that flow; in 0–255 pixel units and per position
  as at 512 px, like impasto's content term, so ``--temporal-weight`` means the same at every size;
- **fast** (a trained network, :mod:`impasto.fast`): the features of the network's first half
  (after its residual blocks) blended with the previous frame's features warped to this frame where
  the flow is reliable, ``(1 − b c) f_t + b c ω(f'_{t−1})`` with ``b = --temporal-features`` (the
  flow-guided feature composition of Chen et al., "Coherent Online Video Style Transfer", ICCV 2017,
  arXiv 1703.09211, with the reliability in place of their learned mask), painted by its second half,
  then the output blended the same way, ``(1 − a c) y_t + a c ω(y'_{t−1})`` with ``a = --temporal``
  (flow-guided blending, the post-processing form of the temporal consistency of Ruder et al. 2018,
  arXiv 1708.04538, and Lai et al. 2018, arXiv 1808.00449); a frame whose reliable share falls below
  ``--scene-cut`` starts afresh;

-> each finished frame kept (a raw .npy array) in a folder beside the output named by a hash of the inputs and
settings (a re-run after Ctrl-C goes on from the next frame) -> encoded once, at the end, atomically,
with the clip's audio. Progress and stopping follow the job model (:mod:`impasto.job`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from ..atomic import atomic_write
from ..config import TransferConfig, VideoConfig, check_options
from ..errors import ImpastoError
from ..gatys.inputs import PreparedInputs, for_photo, prepare, style_long_side
from ..gatys.objective import build_objective
from ..gatys.run import finish, initial_image
from ..gatys.targets import StyleTargets, scale_style_targets
from ..image import color, imageio
from ..job import Callback, Cancel, Interrupted, Reporter, running
from ..loss.terms import REFERENCE_SIDE, Term, pixels
from ..net.vgg import VGG19, load_network
from ..optim.loop import loop_settings, run_loop
from ..runtime import set_threads
from . import flow as optical
from .frames import Clip

CACHE_FORMAT = "impasto-video-frames/1"


@dataclass
class Stylised:
    """A finished clip (``frames`` at the output size), or, as the ``partial`` of an
    :class:`Interrupted`, the frames finished so far and the folder that keeps them."""

    frames: list[np.ndarray]
    total: int
    folder: Path


# ---------------------------------------------------------------- frames, sizes and the cache

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


def fingerprint(kind: str, settings: Sequence, frames: Sequence[np.ndarray], files: Sequence) -> str:
    """SHA-256 of everything that shapes the frames: the mode, every setting, the input frames'
    pixels, the style or model files' bytes and the version."""
    from .. import __version__

    h = hashlib.sha256()
    h.update(json.dumps([CACHE_FORMAT, kind, __version__, [dataclasses.asdict(s) for s in settings]],
                        sort_keys=True, default=str).encode())
    for f in frames:
        h.update(str(f.shape).encode() + np.ascontiguousarray(f).tobytes())
    for path in files:
        if isinstance(path, Image.Image):
            h.update(path.tobytes())
        elif path is not None and Path(path).is_file():
            h.update(Path(path).read_bytes())
        else:
            h.update(str(path).encode())
    return h.hexdigest()


def cache_folder(output: str | os.PathLike, key: str) -> Path:
    out = Path(output)
    return out.with_name(f"{out.name}.frames-{key[:16]}")


def _frame_file(folder: Path, t: int) -> Path:
    return folder / f"frame_{t + 1:05d}.npy"


def _cached(folder: Path, t: int) -> np.ndarray | None:
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


def _keep(folder: Path, t: int, frame: np.ndarray) -> None:
    """Frame t into the job's own folder, atomically, as a raw array (.npy): a fast-mode frame takes
    a few milliseconds to make, and writing it as a PNG took as long again (measured at 384 px)."""
    folder.mkdir(exist_ok=True)
    atomic_write(_frame_file(folder, t), lambda tmp: np.save(tmp, np.ascontiguousarray(frame),
                                                                      allow_pickle=False))


def _tensor(frame: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(frame)).permute(2, 0, 1).unsqueeze(0).float() / 255.0


def _uint8(image: torch.Tensor) -> np.ndarray:
    return np.asarray(imageio.tensor_to_pil(image))


# ---------------------------------------------------------------- the temporal loss (Ruder et al.)

def temporal_term(previous: Sequence[tuple[torch.Tensor, torch.Tensor]], weight: float, size: tuple[int, int]) -> Term:
    """``λ s Σ_j Σ c_j (x − ω_j)²`` in 0–255 units; ``previous`` pairs ``(ω_j, c_j)``: earlier results
    warped to this frame ``(1, 3, H, W)`` in [0, 1] and their weights ``(1, 1, H, W)``; ``s`` the
    per-position factor (pixels of the frame at 512 px over its pixels)."""
    scale = pixels(imageio.fit_long_side(size, REFERENCE_SIDE)) / pixels(size)

    def fn(feats, image):
        total = image.new_zeros((), dtype=torch.float32)
        for warped, weight_map in previous:
            total = total + (weight_map * (image.float() * 255 - warped * 255) ** 2).sum()
        return total * scale

    return Term("temporal", weight, (), fn)


def earlier_results(t: int, inputs: Sequence[np.ndarray], outputs: Sequence[np.ndarray],
                    gaps: Sequence[int], device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(ω_j, c_j)`` for the frames ``t − j`` before ``t``: each result warped to frame t along the
    flow of the input frames, with its reliability, closest-first (Ruder et al. eq. 9)."""
    warped, masks = {}, {}
    for j in sorted(g for g in gaps if t - g >= 0):
        back = optical.flow(inputs[t], inputs[t - j])
        forward = optical.flow(inputs[t - j], inputs[t])
        warped[j] = optical.warp(_tensor(outputs[t - j]), back)
        masks[j] = optical.reliability(back, forward)
    weights = optical.long_term_weights(masks) if len(masks) > 1 else masks
    return [(warped[j].to(device), torch.from_numpy(np.ascontiguousarray(weights[j]))[None, None].float().to(device))
            for j in warped]


# ---------------------------------------------------------------- optimisation mode

def optimise_video(clip: Clip, styles, config: TransferConfig | None = None, video: VideoConfig | None = None,
                   output: str | os.PathLike = "video.mp4", callback: Callback | None = None,
                   network: VGG19 | None = None, cancel: Cancel | None = None) -> Stylised:
    """Gatys et al. per frame with Ruder et al.'s temporal loss; returns the stylised frames.

    The inputs are prepared, and the style targets computed, once for the clip (its first frame
    decides the recolouring of ``--color``); each frame brings only its own content. Finished frames
    are kept beside ``output`` (see :func:`cache_folder`); setting ``cancel`` (or Ctrl-C) raises
    :class:`Interrupted` whose ``partial`` is a :class:`Stylised` of the frames so far.
    """
    config, video = config or TransferConfig(), video or VideoConfig()
    styles = [styles] if isinstance(styles, (str, os.PathLike, Image.Image)) else list(styles)
    check_options(config)
    check_options(video)
    if config.masks is not None or config.scales != 1:
        raise ImpastoError("video: --masks and coarse-to-fine --scales are not supported; each frame is one scale")
    frames = sized_frames(clip, config.size)
    inputs = prepare(config, Image.fromarray(frames[0]), styles, "a frame", content_name=str(clip.source))
    key = fingerprint("optimise", [config, video], frames, styles)
    folder = cache_folder(output, key)
    set_threads()
    vgg = network or load_network(config)
    h, w = frames[0].shape[:2]
    targets = scale_style_targets(vgg, config, inputs, style_long_side(config, config.size), (w, h))
    total = config.iterations + (len(frames) - 1) * video.frame_iterations
    with running("video", total, callback, cancel) as reporter:
        return _frames_loop(frames, folder, reporter, lambda t, outs, report: _optimise_frame(
            vgg, config, video, frames, inputs, targets, outs, t, report, reporter.cancel),
            lambda t: config.iterations if t == 0 else video.frame_iterations)


def _optimise_frame(vgg: VGG19, config: TransferConfig, video: VideoConfig, frames, inputs: PreparedInputs,
                    targets: StyleTargets, outputs, t: int, report, cancel: Cancel) -> np.ndarray:
    device = next(vgg.parameters()).device
    photo = Image.fromarray(frames[t])
    inputs = for_photo(config, inputs, photo)
    content = imageio.resize_to_tensor(inputs.content)
    if t == 0 or video.temporal_weight == 0:  # the first frame, or every frame on its own
        start = initial_image(config, content, inputs.real_styles, torch.Generator().manual_seed(config.seed))
        extra, iterations = [], config.iterations
    else:
        previous = earlier_results(t, frames, outputs, _gaps(video), device)
        start = previous[0][0].clone()  # the previous result warped to this frame (Ruder et al.'s start)
        extra = [temporal_term(previous, video.temporal_weight, photo.size)] if video.temporal_weight > 0 else []
        iterations = video.frame_iterations
    objective = build_objective(vgg, config, content, inputs, max(photo.size), extra=extra, style=targets)
    image = run_loop(objective, start.to(device), iterations, loop_settings(config), report, cancel)
    return _uint8(finish(config, inputs, image.cpu()))


def _gaps(video: VideoConfig) -> tuple[int, ...]:
    return (video.temporal_frames,) if isinstance(video.temporal_frames, int) else tuple(video.temporal_frames)


# ---------------------------------------------------------------- fast mode

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
            return _frames_loop(frames, folder, reporter, lambda t, outs, report: _fast_frame(
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
            return _cached(self.folder, t - 1)
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
        photo = _tensor(frames[t])
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
            out = blend(out, _tensor(previous), *guide, video.temporal)
        frame = _uint8(out)
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


# ---------------------------------------------------------------- the loop over frames

def _frames_loop(frames, folder: Path, reporter: Reporter, make, units) -> Stylised:
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
        cached = _cached(folder, t)
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
        _keep(folder, t, frame)
        outputs.append(frame)
        made += 1
        reporter({}, f"frame {t + 1}/{n} finished", image=_tensor(frame), units=0, finished=True, **at)  # a preview
        reporter.cancel.check(lambda: Stylised(outputs, n, folder))
    return Stylised(outputs, n, folder)


def forget(result: Stylised) -> None:
    """Remove the folder of kept frames once the video is written."""
    shutil.rmtree(result.folder, ignore_errors=True)
