"""A clip in and out: frames, frame rate and sound.

Reading takes any container and codec FFmpeg decodes (through PyAV: .mp4 .mov .mkv .webm .avi .m4v
…), animated GIF, WebP and PNG (through Pillow: the frame durations give the frame rate) and a
folder of numbered frames (``frame_0001.png`` …, ordered by the number in the name, at
``folder_fps``). ``start``/``duration`` (seconds) take a part, the sound cut to the same span.

What :func:`read_clip` gives (and :func:`write_clip` takes):

- **frames**: a list of ``H×W×3`` uint8 RGB arrays (full range 0–255), all the same size, at the
  video's own size (odd sizes too), upright (a phone video's rotation tag is applied). YUV is
  converted with the matrix and range the stream is tagged with (BT.601 when untagged, as FFmpeg);
- **fps**: a :class:`fractions.Fraction` (25, 30000/1001 …): the stream's average rate (its nominal
  rate when they agree within 1 %), or from the mean GIF/WebP frame duration. Frames are taken as
  evenly spaced at this rate — a variable-rate source is written back at its average rate;
- **audio**: the first audio stream as float32 ``(channels, n)`` in [-1, 1] at its own rate and
  channel count, or None. It covers exactly the span of the frames: sample 0 is at the first
  frame's time and ``n == round(len(frames) / fps * rate)``, padded with silence where the sound is
  shorter. Frame ``i`` starts at sample ``round(i / fps * rate)``.

Writing is atomic (a temporary file or folder beside the output, then a rename) and keeps the frame
rate, frame count and size: .mp4/.mov/.mkv as H.264 (libx264 veryfast, crf 14; yuv420p, or yuv444p when a
side is odd, so that odd sizes are kept exactly — 4:4:4 H.264 plays in FFmpeg-based players such as
VLC and mpv, not in browsers or QuickTime) with AAC sound; .webm as VP9 with Opus sound (when this
FFmpeg build has both); animated .gif and .webp through Pillow, looping forever, **without sound**
(neither format carries audio), GIF with 256 colours per frame and its frame times in 1/100 s;
a folder (a path without an extension, or an existing folder of frames only) as ``frame_00001.png`` ….
"""

from __future__ import annotations

import math
import numbers
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from ..image import imageio
from ..atomic import TEMP_PREFIX, atomic_write
from ..errors import ImpastoError

AV_MISSING = "video needs the optional PyAV package: pip install 'impasto[video]'"

# Read through Pillow first (animated images); anything else goes to FFmpeg, then Pillow.
PILLOW_SUFFIXES = (".gif", ".webp", ".png", ".apng")
# Readable: these and anything else FFmpeg decodes (the list is for help texts and file pickers).
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
                  ".wmv", ".flv", ".3gp", ".ogv", ".gif", ".webp", ".apng")
# Images a folder of numbered frames may hold.
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm")
FRAME_NAME = re.compile(r"frame_(\d+)\.png")  # what this module writes into a folder
_NOT_VIDEO_FORMATS = {"tty"}  # FFmpeg reads a text file as ANSI art: not taken for a video

_H264 = {".mp4", ".mov", ".mkv"}
_CRF = 14
# x264's speed preset and quality: "veryfast" at CRF 14 kept more of 50 stylised frames at 320x240
# than "fast" at CRF 18 (PSNR 23.45 against 23.19 dB, 4:2:0; the round-trip test's frames too) in
# half the time (2.7 against 5.3 ms a frame, measured), in a 35 % larger file; "veryfast" at CRF 16
# or 18 lost against "fast" at 18 on small frames (the round-trip test's error bound).
_X264_PRESET = "veryfast"
_EPS = 1e-6          # in frames: a frame exactly on a boundary of --start/--duration belongs to the later side
_SEEK_AFTER = 2.0    # seconds: a later --start seeks instead of decoding from the beginning
_DEFAULT_MS = 100   # an animation frame without a duration (and a still image) lasts 100 ms


@dataclass
class Audio:
    """Sound: float32 ``(channels, n)`` samples in [-1, 1] at ``rate`` samples per second."""

    samples: np.ndarray
    rate: int


@dataclass
class Clip:
    """Frames (``H×W×3`` uint8 RGB), their rate, the sound over the same span (or None) and where
    they came from."""

    frames: list[np.ndarray]
    fps: Fraction
    audio: Audio | None
    source: str

    @property
    def duration(self) -> float:
        """Seconds: the number of frames over the frame rate."""
        return len(self.frames) / float(self.fps)


def require_av():
    """The PyAV module, or the one line saying how to install it."""
    try:
        import av
    except ImportError:
        raise ImpastoError(AV_MISSING) from None
    return av


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


# ---------------------------------------------------------------- reading

def read_clip(path: str | os.PathLike, start: float = 0.0, duration: float | None = None,
              max_pixels: int = 40_000_000, folder_fps: float = 25.0) -> Clip:
    """The frames of ``path`` from ``start`` for ``duration`` seconds (None: to the end) with their
    rate and sound — see the module's docstring for what a :class:`Clip` holds. Bad input raises one
    :class:`ImpastoError` naming the file: missing, not a video, no video stream, no frames (also
    in the part asked for), a codec this FFmpeg cannot decode, frames over ``max_pixels`` or too
    many to hold in memory, a ``start``/``duration`` that is negative, not finite or beyond the clip."""
    path = Path(path)
    start, duration = _check_span(path, start, duration)
    if not path.exists():
        raise ImpastoError(f"{path}: file not found")
    if path.is_dir():
        return _read_folder(path, start, duration, max_pixels, folder_fps)
    try:
        with open(path, "rb") as f:
            empty = not f.read(1)
    except OSError as exc:
        raise ImpastoError(f"{path}: cannot read it ({exc.strerror})") from None
    if empty:
        raise ImpastoError(f"{path}: empty file")
    if path.suffix.lower() in PILLOW_SUFFIXES:
        clip = _read_pillow(path, start, duration, max_pixels)
        if clip is not None:
            return clip
    av = require_av()
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        container = None
    if container is None:
        clip = _read_pillow(path, start, duration, max_pixels)
        if clip is None:
            raise ImpastoError(f"{path}: not a video, animated image or image that FFmpeg or Pillow can read")
        return clip
    return _read_av(av, path, container, start, duration, max_pixels)


def _check_span(path: Path, start, duration) -> tuple[float, float | None]:
    start = 0.0 if start is None else start
    for name, value in (("--start", start), ("--duration", duration)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ImpastoError(f"{path}: {name} must be a finite number of seconds, not {value!r}")
    if start < 0:
        raise ImpastoError(f"{path}: --start must be 0 or more seconds, not {start:g}")
    if duration is not None and duration <= 0:
        raise ImpastoError(f"{path}: --duration must be more than 0 seconds, not {duration:g}")
    return float(start), None if duration is None else float(duration)


def _keep(rel: float, fps: Fraction, start: float, duration: float | None) -> int:
    """-1: before the part asked for, 0: in it, 1: after it. Frames are taken on the frame grid: the
    frame nearest ``start`` is the first, and ``duration × fps`` frames are taken."""
    x = (rel - start) * float(fps)
    if x < -0.5 - _EPS:
        return -1
    if duration is not None and x >= duration * float(fps) - 0.5 - _EPS:
        return 1
    return 0


def _check_selected(path: Path, n: int, length: float, fps: Fraction, start: float, duration: float | None) -> None:
    """After reading: refuse a part beyond the clip (``length`` seconds) or one that holds no frame."""
    half = 0.5 / float(fps)
    if n == 0 and start > 0 and start >= length - half - 1e-9:
        raise ImpastoError(f"{path}: --start {start:g} s is beyond the end of the clip ({length:.3f} s long)")
    if duration is not None and start + duration > length + half + 1e-9:
        raise ImpastoError(f"{path}: --start {start:g} s + --duration {duration:g} s goes beyond the end of the "
                           f"clip ({length:.3f} s long)")
    if n == 0:
        raise ImpastoError(f"{path}: --duration {duration:g} s holds no frame at {float(fps):g} fps "
                           f"(one frame lasts {1 / float(fps):.3f} s)")


def _check_size(path: Path, w: int, h: int, max_pixels: int, what: str = "frames") -> None:
    if w <= 0 or h <= 0:
        raise ImpastoError(f"{path}: {what} have no size ({w}x{h})")
    if w * h > max_pixels:
        raise ImpastoError(f"{path}: {what} of {w}x{h} are too large ({w * h:,} pixels, over {max_pixels:,})")


def _memory_limit() -> int | None:
    """Decoded frames may take at most half of the memory this machine has free (the job needs the rest)."""
    from ..runtime import available_memory

    free = available_memory()
    return None if free is None else free // 2


def _check_memory(path: Path, n: int, w: int, h: int, limit: int | None, more: bool = False) -> None:
    need = n * w * h * 3
    if limit is not None and need > limit:
        raise ImpastoError(f"{path}: {'more than ' if more else ''}{n} frames of {w}x{h} take about "
                           f"{need / 2**30:.1f} GiB decoded, more than half of the {2 * limit / 2**30:.1f} GiB "
                           f"free; take a part with --start/--duration")


def _as_fps(value) -> Fraction:
    """A frame rate as a Fraction: exact for ints and Fractions, a float to the nearest x/1001."""
    if isinstance(value, Fraction):
        fps = value
    elif isinstance(value, int):
        fps = Fraction(value)
    else:
        fps = Fraction(float(value))
        if fps.denominator > 1001:
            fps = fps.limit_denominator(1001)
    return fps


# ------------------------------------------------ a folder of numbered frames

def _numbered(folder: Path) -> list[tuple[int, Path]]:
    frames = []
    for p in folder.iterdir():
        if p.name.startswith(".") or p.suffix.lower() not in FRAME_SUFFIXES or not p.is_file():
            continue
        digits = re.findall(r"\d+", p.stem)
        if digits:
            frames.append((int(digits[-1]), p))
    frames.sort()
    for (a, pa), (b, pb) in zip(frames, frames[1:]):
        if a == b:
            raise ImpastoError(f"{folder}: {pa.name} and {pb.name} are both frame {a}")
    return frames


def _read_folder(folder: Path, start: float, duration: float | None, max_pixels: int, folder_fps) -> Clip:
    if isinstance(folder_fps, bool) or not isinstance(folder_fps, numbers.Real) \
            or not math.isfinite(folder_fps) or not 0 < folder_fps <= 1000:
        raise ImpastoError(f"{folder}: the frame rate of a folder of frames must be a number in (0, 1000], "
                           f"not {folder_fps!r}")
    fps = _as_fps(folder_fps)
    try:
        numbered = _numbered(folder)
    except OSError as exc:
        raise ImpastoError(f"{folder}: cannot list the folder ({exc.strerror})") from None
    if not numbered:
        raise ImpastoError(f"{folder}: folder holds no numbered frames (images named like frame_0001.png)")
    files = [p for _, p in numbered]
    chosen = [p for i, p in enumerate(files) if _keep(i / float(fps), fps, start, duration) == 0]
    _check_selected(folder, len(chosen), len(files) / float(fps), fps, start, duration)
    limit = _memory_limit()
    frames: list[np.ndarray] = []
    for p in chosen:
        try:
            with Image.open(p) as probe:
                w, h = probe.size
        except (OSError, ValueError, Image.DecompressionBombError):
            w = h = 0  # open_image names the problem
        if w and h:
            _check_size(p, w, h, max_pixels, "frame")
        arr = np.asarray(imageio.open_image(p))
        if frames and arr.shape != frames[0].shape:
            raise ImpastoError(f"{p}: frame is {arr.shape[1]}x{arr.shape[0]}, the first frame {chosen[0].name} "
                               f"is {frames[0].shape[1]}x{frames[0].shape[0]}; all frames must be one size")
        frames.append(arr)
        _check_memory(folder, len(frames), arr.shape[1], arr.shape[0], limit, more=True)
    return Clip(frames, fps, None, str(folder))


# ------------------------------------------------ animated images (Pillow)

def _read_pillow(path: Path, start: float, duration: float | None, max_pixels: int) -> Clip | None:
    """An animated (or still) GIF, WebP or PNG through Pillow; None when Pillow does not know the file."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                _check_size(path, im.size[0], im.size[1], max_pixels)
                n = getattr(im, "n_frames", 1)
                shortest = 10 if im.format == "GIF" else 0  # as browsers: GIF frames of 0 or 10 ms last 100 ms
                durations = []
                for i in range(n):
                    im.seek(i)
                    if "duration" not in im.info:
                        im.load()  # WebP: the duration comes with the pixels
                    d = im.info.get("duration") or 0
                    durations.append(d if d > shortest else _DEFAULT_MS)
                fps = Fraction(1000 * n, int(round(sum(durations)))).limit_denominator(1001)
                times, t = [], 0.0
                for d in durations:
                    times.append(t / 1000)
                    t += d
                chosen = [i for i in range(n) if _keep(times[i], fps, start, duration) == 0]
                _check_selected(path, len(chosen), n / float(fps), fps, start, duration)
                _check_memory(path, len(chosen), im.size[0], im.size[1], _memory_limit())
                frames = []
                for i in chosen:
                    im.seek(i)
                    im.load()
                    frames.append(np.asarray(imageio.to_rgb(im.copy())))
    except Image.UnidentifiedImageError:
        return None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImpastoError(f"{path}: image too large to decode safely (over {imageio.MAX_PIXELS:,} pixels)") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImpastoError(f"{path}: unreadable or truncated animation ({exc})") from None
    if any(f.shape != frames[0].shape for f in frames):
        raise ImpastoError(f"{path}: frames of different sizes")
    return Clip(frames, fps, None, str(path))


# ------------------------------------------------ videos (PyAV)

def _stream_fps(stream) -> Fraction | None:
    """The average rate, or the nominal (base) rate when the two agree within 1 %."""
    avg = stream.average_rate
    base = stream.base_rate or stream.guessed_rate
    if avg and base and abs(float(avg) / float(base) - 1) < 0.01:
        return Fraction(base)
    rate = avg or base
    if not rate or not 0 < float(rate) <= 1000:
        return None
    return _as_fps(Fraction(rate))


def _seconds(value, time_base) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def _rgb(frame, size: tuple[int, int] | None) -> np.ndarray:
    """A decoded frame as upright RGB at ``size`` (the first frame's stored w, h)."""
    if size is not None and (frame.width, frame.height) != size:
        arr = frame.to_ndarray(format="rgb24", width=size[0], height=size[1])
    else:
        arr = frame.to_ndarray(format="rgb24")
    rotation = getattr(frame, "rotation", 0)  # counter-clockwise degrees (PyAV 13+)
    turns = int(round(rotation / 90)) % 4 if rotation else 0
    if turns:
        arr = np.rot90(arr, turns)
    return np.ascontiguousarray(arr)


def _read_av(av, path: Path, container, start: float, duration: float | None, max_pixels: int) -> Clip:
    with container:
        if container.format.name in _NOT_VIDEO_FORMATS:
            raise ImpastoError(f"{path}: not a video, animated image or image that FFmpeg or Pillow can read")
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams})
            held = f" (it holds {', '.join(kinds)} only)" if kinds else ""
            raise ImpastoError(f"{path}: no video stream{held}")
        vs = container.streams.video[0]
        cc = vs.codec_context
        codec = getattr(vs.codec_context, "name", None) if cc is not None else None
        codec = codec or getattr(getattr(vs, "codec", None), "name", None) or "unknown codec"
        if cc is None:
            raise ImpastoError(f"{path}: this FFmpeg build cannot decode its video ({codec})")
        if cc.width and cc.height:
            _check_size(path, cc.width, cc.height, max_pixels)
        fps = _stream_fps(vs)
        if fps is None:
            raise ImpastoError(f"{path}: its video stream has no usable frame rate")
        length = _seconds(vs.duration, vs.time_base)
        if length is None and container.duration:
            length = container.duration / 1_000_000
        if length and start > 0 and start >= length:  # before decoding anything
            raise ImpastoError(f"{path}: --start {start:g} s is beyond the end of the clip ({length:.3f} s long)")
        t0 = _seconds(vs.start_time, vs.time_base)
        seek = start > _SEEK_AFTER and t0 is not None
        decoded = None
        if seek:
            decoded = _decode_video(av, path, container, vs, fps, t0, start, duration, max_pixels, seek=True)
        if decoded is None and seek:  # the seek missed: from the beginning
            with av.open(str(path)) as again:
                decoded = _decode_video(av, path, again, again.streams.video[0], fps, None, start, duration,
                                        max_pixels, seek=False)
        elif decoded is None:
            decoded = _decode_video(av, path, container, vs, fps, None, start, duration, max_pixels, seek=False)
        frames, first, t0, clip_end, count = decoded
        if count == 0:
            raise ImpastoError(f"{path}: holds no video frames")
        if clip_end is not None or not frames:  # the end was reached, or the part holds no frame
            _check_selected(path, len(frames), clip_end if clip_end is not None else math.inf,
                            fps, start, duration)
    audio = _read_audio(av, path, t0, first, len(frames) / fps)
    return Clip(frames, fps, audio, str(path))


def _decode_video(av, path, container, vs, fps, t0, start, duration, max_pixels, seek):
    """Decode the frames of the part asked for: (frames, time of the first one relative to ``t0``,
    ``t0``, the clip's length if the end was reached or None), or None when a seek missed."""
    codec = vs.codec_context.name
    if seek:
        try:
            container.seek(int((t0 + start) / vs.time_base), stream=vs, backward=True)
        except av.error.FFmpegError:
            return None
    frames: list[np.ndarray] = []
    first = last = None
    size = None
    limit = _memory_limit()
    count = 0
    ended = True
    try:
        for frame in container.decode(vs):
            t = frame.time
            if t is None:
                t = (t0 or 0.0) + count / float(fps)
            if t0 is None:
                t0 = t
            rel = t - t0
            count += 1
            if seek and count == 1 and (rel - start) * float(fps) >= 0.5 - _EPS:
                return None  # landed after the start (a frame before it was wanted): from the beginning
            last = rel
            side = _keep(rel, fps, start, duration)
            if side < 0:
                continue
            if side > 0:
                ended = False
                break
            if size is None:
                size = (frame.width, frame.height)
                _check_size(path, frame.width, frame.height, max_pixels)
                first = rel
            frames.append(_rgb(frame, size))
            h, w = frames[0].shape[:2]
            _check_memory(path, len(frames), w, h, limit, more=True)
    except av.error.FFmpegError as exc:
        if not frames and count == 0:
            raise ImpastoError(f"{path}: cannot decode its video ({codec}): {_reason(exc)}") from None
        raise ImpastoError(f"{path}: its video is damaged after frame {count} ({codec}): {_reason(exc)}") from None
    if seek and count == 0:
        return None
    clip_end = None
    if ended:
        clip_end = last + 1 / float(fps) if last is not None else None
    return frames, first, t0, clip_end, count


def _reason(exc) -> str:
    return getattr(exc, "strerror", None) or str(exc)


def _read_audio(av, path: Path, t0: float | None, first: float | None, span: Fraction) -> Audio | None:
    """The first audio stream over ``span`` seconds from ``first`` (relative to the video's ``t0``)."""
    if first is None:
        return None
    begin = (t0 or 0.0) + first
    for seek in ((True, False) if first > _SEEK_AFTER else (False,)):
        with av.open(str(path)) as container:
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            if stream.codec_context is None:
                raise ImpastoError(f"{path}: this FFmpeg build cannot decode its audio ({stream.codec.name})")
            rate = stream.codec_context.sample_rate
            if not rate or rate <= 0:
                return None
            audio = _decode_audio(av, path, container, stream, begin, rate, int(round(span * rate)), seek)
            if audio is not None or not seek:
                return audio
    return None


def _decode_audio(av, path, container, stream, begin: float, rate: int, want: int, seek: bool) -> Audio | None:
    if seek:
        try:
            container.seek(int((begin - 1.0) / stream.time_base), stream=stream, backward=True)
        except av.error.FFmpegError:
            return None
    resampler = av.AudioResampler(format="fltp")
    out = None
    pos = None

    def place(frames):
        nonlocal out, pos
        for f in frames:
            data = f.to_ndarray()
            if out is None:
                out = np.zeros((data.shape[0], want), np.float32)
            k = data.shape[1]
            a, b = max(pos, 0), min(pos + k, want)
            if b > a and data.shape[0] == out.shape[0]:
                out[:, a:b] = data[:, a - pos:b - pos]
            pos += k

    try:
        for frame in container.decode(stream):
            if pos is None:
                t = frame.time if frame.time is not None else 0.0
                pos = int(round((t - begin) * rate))
                if seek and pos > 0:
                    return None  # the seek landed after the start: decode from the beginning
            place(resampler.resample(frame))
            if pos >= want:
                break
        if pos is not None and pos < want:
            place(resampler.resample(None))
    except av.error.FFmpegError as exc:
        raise ImpastoError(f"{path}: cannot decode its audio ({stream.codec_context.name}): {_reason(exc)}") from None
    if out is None:  # no samples (or, after a seek, none found): as no sound
        return None
    np.nan_to_num(out, copy=False)
    np.clip(out, -1.0, 1.0, out=out)
    return Audio(out, int(rate))


# ---------------------------------------------------------------- writing

def check_video_output(path: str | os.PathLike, inputs=()) -> Path:
    """Fail before any work if ``path`` cannot take the result: a known extension
    (:data:`WRITABLE_SUFFIXES`) and a writable place (:func:`impasto.imageio.check_writable`), or a
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
    return _as_fps(fps)


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
        raise ImpastoError(f"{path}: could not encode the video ({_reason(exc)})") from None


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
