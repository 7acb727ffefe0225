"""``impasto video CLIP STYLE…``: optimisation with a temporal loss (Ruder, Dosovitskiy & Brox,
"Artistic style transfer for videos", GCPR 2016, arXiv 1604.08610).

The first frame is painted as ``impasto transfer`` paints a photo; every later frame starts from the
previous result warped to it (their initialisation "prev-warped") and adds the temporal loss
``λ Σ_j Σ_pixels c_j (x − ω_j)²`` (their eq. 7, short-term, j = 1; eq. 8–9, long-term, j ∈ J with
the closest-first weights of :func:`.flow.long_term_weights`), ``ω_j`` the result of frame t − j
warped to frame t along the flow of the input frames and ``c_j`` the reliability of that flow
(:mod:`.flow`); in 0–255 pixel units and per position as at 512 px, like impasto's content term, so
``--temporal-weight`` means the same at every size. The inputs are prepared, and the style targets
computed, once for the clip (:mod:`impasto.gatys`); each frame brings only its own content. The
frames go through :func:`.cache.frames_loop` (kept as they are finished).
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from ..config import TransferConfig, VideoConfig, check_options
from ..errors import ImpastoError
from ..gatys.inputs import PreparedInputs, for_photo, prepare, style_long_side, tile_for
from ..gatys.objective import build_objective
from ..gatys.run import finish, initial_image
from ..gatys.targets import StyleTargets, scale_style_targets
from ..image import imageio
from ..job import Callback, Cancel, running
from ..loss.terms import Term, per_position_scale
from ..net.vgg import VGG19, load_network
from ..optim.loop import loop_settings, run_loop
from ..runtime import set_threads
from ..image import flow as optical
from .cache import Stylised, cache_folder, fingerprint, frames_loop, sized_frames, to_frame, to_tensor
from .read import Clip


# ---------------------------------------------------------------- the temporal loss (Ruder et al.)

def temporal_term(previous: Sequence[tuple[torch.Tensor, torch.Tensor]], weight: float, size: tuple[int, int]) -> Term:
    """``λ s Σ_j Σ c_j (x − ω_j)²`` in 0–255 units; ``previous`` pairs ``(ω_j, c_j)``: earlier results
    warped to this frame ``(1, 3, H, W)`` in [0, 1] and their weights ``(1, 1, H, W)``; ``s`` the
    per-position factor (pixels of the frame at 512 px over its pixels)."""
    scale = per_position_scale(size)

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
        warped[j] = optical.warp(to_tensor(outputs[t - j]), back)
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
    are kept beside ``output`` (see :func:`.cache.cache_folder`); setting ``cancel`` (or Ctrl-C) raises
    :class:`~impasto.job.Interrupted` whose ``partial`` is a :class:`.cache.Stylised` of the frames so far.
    """
    config, video = config or TransferConfig(), video or VideoConfig()
    styles = [styles] if isinstance(styles, (str, os.PathLike, Image.Image)) else list(styles)
    check_options(config)
    check_options(video)
    if config.masks is not None or config.scales not in (None, 1):
        raise ImpastoError("video: --masks and coarse-to-fine --scales are not supported; each frame is one scale")
    frames = sized_frames(clip, config.size)
    inputs = prepare(config, Image.fromarray(frames[0]), styles, "a frame", content_name=str(clip.source))
    key = fingerprint("optimise", [config, video], frames, styles)
    folder = cache_folder(output, key)
    set_threads()
    vgg = network or load_network(config)
    h, w = frames[0].shape[:2]
    targets = scale_style_targets(vgg, config, inputs, style_long_side(config, config.size), (w, h),
                                  tile_for(config, inputs, (w, h))[0])
    total = config.iterations + (len(frames) - 1) * video.frame_iterations
    with running("video", total, callback, cancel) as reporter:
        return frames_loop(frames, folder, reporter, lambda t, outs, report: _optimise_frame(
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
    tile, keep = tile_for(config, inputs, photo.size)
    objective = build_objective(vgg, config, content, inputs, max(photo.size), extra=extra, style=targets,
                                tile=tile, keep=keep)
    image = run_loop(objective, start.to(device), iterations, loop_settings(config), report, cancel)
    return to_frame(finish(config, inputs, image.cpu()))


def _gaps(video: VideoConfig) -> tuple[int, ...]:
    return (video.temporal_frames,) if isinstance(video.temporal_frames, int) else tuple(video.temporal_frames)
