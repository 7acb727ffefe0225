"""A clip out: frames, frame rate and sound written to a video, an animation or a folder of frames.

Writing is atomic (a temporary file or folder beside the output, then a rename) and keeps the frame
rate, frame count and size: .mp4/.mov/.mkv as H.264 (libx264 veryfast, crf 14; yuv420p, or yuv444p when a
side is odd, so that odd sizes are kept exactly — 4:4:4 H.264 plays in FFmpeg-based players such as
VLC and mpv, not in browsers or QuickTime) with AAC sound; .webm as VP9 with Opus sound (when this
FFmpeg build has both); animated .gif and .webp through Pillow, looping forever, **without sound**
(neither format carries audio), GIF with 256 colours per frame and its frame times in 1/100 s;
a folder (a path without an extension, or an existing folder of frames only) as ``frame_00001.png`` ….
What :func:`write_clip` takes is what :func:`.read.read_clip` gives (see :mod:`.read`).
"""

from __future__ import annotations

import math
import numbers
import os
import re
import shutil
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from ..atomic import TEMP_PREFIX, atomic_write
from ..errors import ImpastoError
from ..image import imageio
from .read import Audio, as_fps, reason, require_av

FRAME_NAME = re.compile(r"frame_(\d+)\.png")  # what this module writes into a folder

_CRF = 14
# x264's speed preset and quality: "veryfast" at CRF 14 kept more of 50 stylised frames at 320x240
# than "fast" at CRF 18 (PSNR 23.45 against 23.19 dB, 4:2:0; the round-trip test's frames too) in
# half the time (2.7 against 5.3 ms a frame, measured), in a 35 % larger file; "veryfast" at CRF 16
# or 18 lost against "fast" at 18 on small frames (the round-trip test's error bound).
_X264_PRESET = "veryfast"


def _writable_suffixes() -> tuple[str, ...]:
    suffixes = [".mp4", ".mov", ".mkv"]
    try:
        import av

        if {"libvpx-vp9", "libopus"} <= set(av.codecs_available):
            suffixes.append(".webm")
    except ImportError:  # writing any FFmpeg format then says how to install PyAV
        suffixes.append(".webm")
    return (*suffixes, ".gif", ".webp")


WRITABLE_SUFFIXES = _writable_suffixes()
SOUND_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm")  # the outputs that carry the audio track


def keeps_sound(path: str | os.PathLike) -> bool:
    """Whether an output written to ``path`` carries the clip's audio (not GIF, WebP or a folder)."""
    return Path(path).suffix.lower() in SOUND_SUFFIXES


def check_video_output(path: str | os.PathLike, inputs=()) -> Path:
    """Fail before any work if ``path`` cannot take the result: a known extension
    (:data:`WRITABLE_SUFFIXES`) and a writable place (:func:`impasto.image.imageio.check_writable`), or a
    folder — a path without an extension or an existing folder holding only ``frame_NNNNN.png``
    files — whose parent can be written; and not one of the ``inputs``."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in WRITABLE_SUFFIXES:
        return imageio.check_writable(path, WRITABLE_SUFFIXES, kind="video output", inputs=inputs)
    is_dir = imageio.is_dir(path)
    if suffix and not is_dir:
        raise ImpastoError(f"{path}: video output must end in {', '.join(WRITABLE_SUFFIXES)}, or be a folder "
                           f"(a name without an extension)")
    imageio.check_name(path)
    if is_dir:
        try:
            others = sorted(p.name for p in path.iterdir() if not FRAME_NAME.fullmatch(p.name))
        except OSError as exc:
            raise ImpastoError(f"{path}: cannot list the folder ({exc.strerror})") from None
        if others:
            raise ImpastoError(f"{path}: folder holds other files ({others[0]}); frames are written to a new "
                               f"folder, an empty one or one holding only frame_NNNNN.png")
        imageio.check_folder(path / "frame_00001.png")
    elif path.exists():
        raise ImpastoError(f"{path}: is a file; a folder of frames needs a new name or an existing folder")
    else:
        imageio.check_folder(path)
    for given in inputs:
        if given is None:
            continue
        given = Path(given)
        inside = given.exists() and imageio.same_file(path, given.parent) and FRAME_NAME.fullmatch(given.name)
        if imageio.same_file(path, given) or inside:
            raise ImpastoError(f"{path}: is also an input; writing it would destroy {given} — choose another output")
    return path


def write_clip(frames: list[np.ndarray], fps, audio: Audio | None, path: str | os.PathLike) -> Path:
    """Write ``frames`` (``H×W×3`` uint8 RGB, one size) at ``fps`` with ``audio`` (None: silent) to
    ``path``, atomically; see the module's docstring for the formats. The sound is cut to the
    frames' span (``len(frames) / fps`` seconds); .gif, .webp and folders carry no sound. GIF and WebP
    encoders fold a frame identical to the one before it into a longer frame (the timing is kept)."""
    path = check_video_output(path)
    frames = _check_frames(frames)
    fps = _check_fps(fps)
    if audio is not None:
        audio = _check_audio(audio)
    suffix = path.suffix.lower()
    if suffix in (".gif", ".webp"):
        return _write_pillow(path, frames, fps)
    if suffix in WRITABLE_SUFFIXES:
        return _write_av(path, frames, fps, audio)
    return _write_folder(path, frames)


def _check_frames(frames) -> list[np.ndarray]:
    frames = list(frames)
    if not frames:
        raise ImpastoError("no frames to write")
    shape = None
    for i, f in enumerate(frames):
        f = np.asarray(f)
        if f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3:
            raise ImpastoError(f"frame {i}: frames must be H×W×3 uint8 RGB arrays, not {f.dtype} {f.shape}")
        if shape is None:
            shape = f.shape
        elif f.shape != shape:
            raise ImpastoError(f"frame {i} is {f.shape[1]}x{f.shape[0]}, frame 0 {shape[1]}x{shape[0]}; "
                               f"all frames must be one size")
        frames[i] = np.ascontiguousarray(f)
    return frames


def _check_fps(fps) -> Fraction:
    if isinstance(fps, bool) or not isinstance(fps, numbers.Real) or not math.isfinite(fps) \
            or not 0 < fps <= 1000:
        raise ImpastoError(f"the frame rate must be a number in (0, 1000], not {fps!r}")
    return as_fps(fps)


def _check_audio(audio: Audio) -> Audio:
    samples = np.asarray(audio.samples, dtype=np.float32)
    if samples.ndim == 1:
        samples = samples[None]
    if samples.ndim != 2 or not 1 <= samples.shape[0] <= 8:
        raise ImpastoError(f"audio must be (channels, samples) with 1 to 8 channels, not {samples.shape}")
    if not np.isfinite(samples).all():
        raise ImpastoError("the audio holds NaN or inf samples; refusing to write it")
    if not isinstance(audio.rate, (int, np.integer)) or not 1000 <= audio.rate <= 384_000:
        raise ImpastoError(f"the audio sample rate must be a whole number of Hz in [1000, 384000], not {audio.rate!r}")
    return Audio(np.clip(samples, -1.0, 1.0), int(audio.rate))


_LAYOUTS = {1: "mono", 2: "stereo", 3: "3.0", 4: "quad", 5: "5.0", 6: "5.1", 7: "6.1", 8: "7.1"}


def _write_av(path: Path, frames: list[np.ndarray], fps: Fraction, audio: Audio | None) -> Path:
    av = require_av()
    from av.video.reformatter import ColorRange, Colorspace

    webm = path.suffix.lower() == ".webm"
    vcodec, acodec = ("libvpx-vp9", "libopus") if webm else ("libx264", "aac")
    for name in (vcodec, acodec if audio is not None else vcodec):
        if name not in av.codecs_available:
            raise ImpastoError(f"{path}: this FFmpeg build has no {name} encoder")
    h, w = frames[0].shape[:2]
    pix = "yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p"
    if webm:
        voptions = {"crf": "24", "b": "0", "deadline": "good", "cpu-used": "4", "row-mt": "1"}
    else:
        # x264's cpu-independent: without it two encodings of the same frames in one process differed
        # now and then (by up to 32 levels once decoded; one encoder thread did not help), with it they
        # are the same bytes, at the same speed (measured at 320x240 and 960x720).
        voptions = {"crf": str(_CRF), "preset": _X264_PRESET, "x264-params": "cpu-independent=1"}
    time_base = 1 / fps

    def write(tmp: str) -> None:
        container_options = {"movflags": "+faststart"} if path.suffix.lower() in (".mp4", ".mov") else {}
        with av.open(tmp, "w", container_options=container_options) as out:
            vs = out.add_stream(vcodec, rate=fps, options=voptions)
            vs.width, vs.height, vs.pix_fmt = w, h, pix
            cc = vs.codec_context
            cc.time_base = time_base
            cc.color_range, cc.colorspace, cc.color_primaries, cc.color_trc = 1, 1, 1, 1  # MPEG range, BT.709
            astream = edges = None
            if audio is not None:
                rates = av.Codec(acodec, "w").audio_rates
                arate = audio.rate if not rates or audio.rate in rates else 48000
                channels = audio.samples.shape[0]
                layout = _LAYOUTS[channels]
                astream = out.add_stream(acodec, rate=arate)
                astream.codec_context.layout = layout
                astream.codec_context.bit_rate = min(64000 * channels, 320000)
                # Frame i's sound starts at sample round(i / fps * rate); the rest after the last frame.
                edges = [int(round(i / fps * audio.rate)) for i in range(len(frames) + 1)]
            for i, arr in enumerate(frames):
                frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
                frame = frame.reformat(format=pix, dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG)
                frame.pts = i
                frame.time_base = time_base
                out.mux(vs.encode(frame))
                if astream is not None:
                    a, b = edges[i], min(edges[i + 1], audio.samples.shape[1])
                    if b > a:
                        chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(audio.samples[:, a:b]),
                                                           format="fltp", layout=layout)
                        chunk.sample_rate = audio.rate
                        chunk.pts = a
                        chunk.time_base = Fraction(1, audio.rate)
                        out.mux(astream.encode(chunk))
            out.mux(vs.encode(None))
            if astream is not None:
                out.mux(astream.encode(None))

    try:
        return atomic_write(path, write)
    except av.error.FFmpegError as exc:
        raise ImpastoError(f"{path}: could not encode the video ({reason(exc)})") from None


def _durations_ms(n: int, fps: Fraction, step: int) -> list[int]:
    """Frame durations in whole ``step`` ms whose running sum stays on the frame grid (30 fps in GIF's
    1/100 s: 30, 40, 30 ms …), so that the mean duration is the frame rate."""
    edges = [round(Fraction(i * 1000) / fps / step) * step for i in range(n + 1)]
    return [max(step, b - a) for a, b in zip(edges, edges[1:])]


def _write_pillow(path: Path, frames: list[np.ndarray], fps: Fraction) -> Path:
    images = [Image.fromarray(f) for f in frames]
    if path.suffix.lower() == ".gif":
        fmt, options = "GIF", {"duration": _durations_ms(len(frames), fps, 10)}
    else:
        fmt, options = "WEBP", {"duration": _durations_ms(len(frames), fps, 1), "quality": 90, "method": 4}

    def write(tmp: str) -> None:
        images[0].save(tmp, fmt, save_all=True, append_images=images[1:], loop=0, **options)

    try:
        return atomic_write(path, write)
    except (OSError, ValueError) as exc:
        raise ImpastoError(f"{path}: could not write the animation ({exc})") from None


def _write_folder(path: Path, frames: list[np.ndarray]) -> Path:
    """Frames into a new folder beside ``path``, renamed into place; into an existing folder (of
    frames only) file by file, the frames beyond the new count removed."""
    parent = path.parent
    tmp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX, dir=parent))
    try:
        for i, f in enumerate(frames):
            Image.fromarray(f).save(tmp / f"frame_{i + 1:05d}.png", "PNG")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        if not path.exists():
            os.rename(tmp, path)
            return path
        for p in sorted(tmp.iterdir()):
            os.replace(p, path / p.name)
        for p in path.iterdir():
            m = FRAME_NAME.fullmatch(p.name)
            if m and int(m.group(1)) > len(frames):
                p.unlink()
        tmp.rmdir()
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ImpastoError(f"{path}: could not write the frames ({exc.strerror or exc})") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path
