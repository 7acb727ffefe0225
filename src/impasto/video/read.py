"""A clip in: frames, frame rate and sound — and the one set of checks every clip passes.

Reading takes any container and codec FFmpeg decodes (through PyAV: .mp4 .mov .mkv .webm .avi .m4v
…), animated GIF, WebP and PNG (through Pillow: the frame durations give the frame rate; told by
their content, not their name) and a folder of numbered frames (``frame_0001.png`` …, ordered by the
number in the name, at ``folder_fps``). ``start``/``duration`` (seconds) take a part, the sound cut
to the same span.

What :func:`read_clip` gives (and :func:`.write.write_clip` takes):

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

The checks. A clip is refused — one :class:`~impasto.errors.ImpastoError` line naming it — when it is
missing or empty; not a video or animation FFmpeg or Pillow reads (:class:`NotAClip`); a still
image, such as a GIF of one frame (:class:`StillImage`: ``impasto transfer`` and ``impasto fast``
take images); without a video stream, or one this FFmpeg cannot decode, or without a usable frame
rate, or without frames; damaged anywhere in its video or in its audio (every frame and the sound of
the part read are decoded); over ``max_pixels`` a frame, or ``max_frames`` frames or
``max_seconds`` long (:class:`OverLimit`); in a container that is not one of ``formats``
(:class:`FormatNotTaken`). :func:`read_clip` (``impasto video``, the server's worker) and
:func:`probe_clip` (``impasto serve``'s upload check, which keeps only the first frame, as a poster)
run the same code, so the two accept and refuse the same clips. PyTorch is not imported here (the
server process never loads it); reading a folder of frames loads :mod:`impasto.image.imageio`.
"""

from __future__ import annotations

import io
import math
import numbers
import os
import re
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import ImpastoError

AV_MISSING = "video needs the optional PyAV package: pip install 'impasto[video]'"

# Animations read through Pillow (by the format Pillow finds in the file); everything else goes to FFmpeg.
PILLOW_FORMATS = ("GIF", "WEBP", "PNG")
# Readable: these and anything else FFmpeg decodes (the list is for help texts and file pickers).
VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mts", ".m2ts",
                  ".wmv", ".flv", ".3gp", ".ogv", ".gif", ".webp", ".apng")
# Images a folder of numbered frames may hold.
FRAME_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".ppm")
MAX_PIXELS = 40_000_000  # a frame, width x height, unless the caller says otherwise
_NOT_VIDEO_FORMATS = {"tty"}  # FFmpeg reads a text file as ANSI art: not taken for a video
_STILL_FORMATS = {"image2", "image2pipe"}  # FFmpeg's still-image demuxers (and every "*_pipe" one)
_EPS = 1e-6          # in frames: a frame exactly on a boundary of --start/--duration belongs to the later side
_SEEK_AFTER = 2.0    # seconds: a later --start seeks instead of decoding from the beginning
_DEFAULT_MS = 100   # an animation frame without a duration lasts 100 ms
CLIP_KINDS = "a video, an animated GIF, WebP or PNG, or a folder of numbered frames"


class NotAClip(ImpastoError):
    """Neither a video nor an animation that FFmpeg or Pillow reads."""


class StillImage(NotAClip):
    """An image of one frame (``format``: Pillow's or FFmpeg's name for it), not a clip."""

    def __init__(self, message: str, format: str):
        super().__init__(message)
        self.format = format


class OverLimit(ImpastoError):
    """Frames too large, or a clip too long, for the limits asked for."""


class FormatNotTaken(ImpastoError):
    """A video in a container (``format``: FFmpeg's name) that is not one of the formats asked for."""

    def __init__(self, message: str, format: str):
        super().__init__(message)
        self.format = format


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


@dataclass
class ClipInfo:
    """What :func:`probe_clip` found in a clip that passed every check."""

    format: str             # FFmpeg's container name ("mov,mp4,m4a,3gp,3g2,mj2"), Pillow's ("GIF"), or "folder"
    width: int              # a frame, upright
    height: int
    frames: int
    fps: Fraction
    audio: bool             # it has sound that decodes
    codec: str | None       # the video codec (None for an animation or a folder)
    poster: Image.Image = field(repr=False)  # the first frame, RGB, upright

    @property
    def duration(self) -> float:
        """Seconds: the number of frames over the frame rate."""
        return self.frames / float(self.fps)


@dataclass(frozen=True)
class _Limits:
    max_pixels: int = MAX_PIXELS
    max_frames: int | None = None
    max_seconds: float | None = None
    formats: frozenset[str] | None = None


@dataclass
class _Read:
    """What a reader found: the frames kept (only the first when probing), how many frames the part
    read holds, their rate, the sound, the format and the video codec."""

    frames: list[np.ndarray]
    count: int
    fps: Fraction
    audio: Audio | None
    format: str
    codec: str | None = None


def require_av():
    """The PyAV module, or the one line saying how to install it."""
    try:
        import av
    except ImportError:
        raise ImpastoError(AV_MISSING) from None
    return av


# ---------------------------------------------------------------- reading and probing

def read_clip(path: str | os.PathLike, start: float = 0.0, duration: float | None = None,
              max_pixels: int = MAX_PIXELS, folder_fps: float = 25.0, name: str | None = None,
              sound: bool = True) -> Clip:
    """The frames of ``path`` from ``start`` for ``duration`` seconds (None: to the end) with their
    rate and sound — see the module's docstring for what a :class:`Clip` holds and the checks. Bad
    input raises one :class:`ImpastoError` naming the clip as ``name`` (default: its path); besides
    the checks, frames too many to hold in memory and a ``start``/``duration`` that is negative,
    not finite or beyond the clip. ``sound=False``: the sound is not read (a clip whose sound cannot be
    decoded, e.g. a damaged track, is then taken)."""
    path = Path(path)
    name = name or str(path)
    start, duration = _check_span(name, start, duration)
    got = _read(path, name, start, duration, _Limits(max_pixels), folder_fps, keep=True, sound=sound)
    return Clip(got.frames, got.fps, got.audio, str(path))


def probe_clip(source: str | os.PathLike | bytes, name: str | None = None, *, max_pixels: int = MAX_PIXELS,
               max_frames: int | None = None, max_seconds: float | None = None,
               formats=None) -> ClipInfo:
    """Every check :func:`read_clip` makes on the whole of ``source`` (a path, or the file's bytes),
    keeping only its first frame: its size, frame count, rate, whether it has sound, and a poster.
    ``max_frames``/``max_seconds`` (None: any) refuse a longer clip as soon as its frames pass the
    limit; ``formats`` (None: any) are the container names taken — FFmpeg's ("mp4", "webm" …) or
    Pillow's for an animation ("GIF", "WEBP"). Raises what :func:`read_clip` raises, named ``name``."""
    data = isinstance(source, (bytes, bytearray, memoryview))
    name = name or ("the clip" if data else str(source))
    limits = _Limits(max_pixels, max_frames, max_seconds, None if formats is None else frozenset(formats))
    got = _read(bytes(source) if data else Path(source), name, 0.0, None, limits, 25.0, keep=False)
    first = got.frames[0]
    return ClipInfo(got.format, first.shape[1], first.shape[0], got.count, got.fps, got.audio is not None,
                    got.codec, Image.fromarray(first))


def _read(source: Path | bytes, name: str, start: float, duration: float | None, limits: _Limits,
          folder_fps, keep: bool, sound: bool = True) -> _Read:
    if isinstance(source, Path):
        if not source.exists():
            raise ImpastoError(f"{name}: file not found")
        if source.is_dir():
            return _read_folder(source, name, start, duration, limits, folder_fps)
        try:
            with open(source, "rb") as f:
                empty = not f.read(1)
        except OSError as exc:
            raise ImpastoError(f"{name}: cannot read it ({exc.strerror})") from None
    else:
        empty = not source
    if empty:
        raise ImpastoError(f"{name}: empty file")
    fmt = _pillow_format(source)
    if fmt in PILLOW_FORMATS:
        got = _read_pillow(source, name, start, duration, limits, keep)
        if got is not None:
            return got
    av = require_av()
    try:
        container = _open_av(av, source)
    except (av.error.FFmpegError, OSError, ValueError, UnicodeDecodeError):
        if fmt is not None:  # an image Pillow knows and FFmpeg does not
            raise StillImage(f"{name}: a still image ({fmt}), not a clip ({CLIP_KINDS})", fmt) from None
        raise NotAClip(f"{name}: not a video, animated image or image that FFmpeg or Pillow can read") from None
    return _read_av(av, source, name, container, start, duration, limits, keep, sound)


def _pillow_format(source: Path | bytes) -> str | None:
    """The format Pillow finds in the file (None: none); one too large for Pillow counts as its own."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(_file(source)) as im:
                return im.format
    except Image.DecompressionBombError:
        return PILLOW_FORMATS[0]  # _read_pillow says how large
    except Exception:  # Pillow's many ways of saying "not this"
        return None


def _file(source: Path | bytes):
    return io.BytesIO(source) if isinstance(source, bytes) else source


def _open_av(av, source: Path | bytes):
    return av.open(io.BytesIO(source) if isinstance(source, bytes) else str(source), metadata_errors="ignore")


def _check_span(name: str, start, duration) -> tuple[float, float | None]:
    start = 0.0 if start is None else start
    for option, value in (("--start", start), ("--duration", duration)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ImpastoError(f"{name}: {option} must be a finite number of seconds, not {value!r}")
    if start < 0:
        raise ImpastoError(f"{name}: --start must be 0 or more seconds, not {start:g}")
    if duration is not None and duration <= 0:
        raise ImpastoError(f"{name}: --duration must be more than 0 seconds, not {duration:g}")
    return float(start), None if duration is None else float(duration)


def _side(rel: float, fps: Fraction, start: float, duration: float | None) -> int:
    """-1: before the part asked for, 0: in it, 1: after it. Frames are taken on the frame grid: the
    frame nearest ``start`` is the first, and ``duration × fps`` frames are taken."""
    x = (rel - start) * float(fps)
    if x < -0.5 - _EPS:
        return -1
    if duration is not None and x >= duration * float(fps) - 0.5 - _EPS:
        return 1
    return 0


def _check_selected(name: str, n: int, length: float, fps: Fraction, start: float, duration: float | None) -> None:
    """After reading: refuse a part beyond the clip (``length`` seconds) or one that holds no frame."""
    half = 0.5 / float(fps)
    if n == 0 and start > 0 and start >= length - half - 1e-9:
        raise ImpastoError(f"{name}: --start {start:g} s is beyond the end of the clip ({length:.3f} s long)")
    if duration is not None and start + duration > length + half + 1e-9:
        raise ImpastoError(f"{name}: --start {start:g} s + --duration {duration:g} s goes beyond the end of the "
                           f"clip ({length:.3f} s long)")
    if n == 0:
        raise ImpastoError(f"{name}: --duration {duration:g} s holds no frame at {float(fps):g} fps "
                           f"(one frame lasts {1 / float(fps):.3f} s)")


def _check_size(name: str, w: int, h: int, max_pixels: int) -> None:
    if w <= 0 or h <= 0:
        raise ImpastoError(f"{name}: its frames have no size ({w}x{h})")
    if w * h > max_pixels:
        raise OverLimit(f"{name} is too large: {w}x{h} pixels a frame, over the limit of {max_pixels / 1e6:g} "
                        f"million pixels per frame of a clip")


def _check_length(name: str, frames: int, seconds: float, limits: _Limits, counted: bool = False) -> None:
    """Past ``limits.max_frames`` or ``limits.max_seconds``; ``counted``: the count stops at the first one over."""
    more = "more than " if counted else ""
    if limits.max_frames is not None and frames > limits.max_frames:
        shown = limits.max_frames if counted else frames
        raise OverLimit(f"{name} is too long: {more}{shown} frames (the limit is {limits.max_frames} frames per clip)")
    if limits.max_seconds is not None and seconds > limits.max_seconds + 1e-6:
        shown = f"{limits.max_seconds:g}" if counted else f"{seconds:.1f}"
        raise OverLimit(f"{name} is too long: {more}{shown} s (the limit is {limits.max_seconds:g} s per clip)")


def _memory_limit() -> int | None:
    """Decoded frames may take at most half of the memory this machine has free (the job needs the rest)."""
    from ..runtime import available_memory

    free = available_memory()
    return None if free is None else free // 2


def _check_memory(name: str, n: int, w: int, h: int, limit: int | None, more: bool = False) -> None:
    need = n * w * h * 3
    if limit is not None and need > limit:
        raise ImpastoError(f"{name}: {'more than ' if more else ''}{n} frames of {w}x{h} take about "
                           f"{need / 2**30:.1f} GiB decoded, more than half of the {2 * limit / 2**30:.1f} GiB "
                           f"free; take a part with --start/--duration")


def as_fps(value) -> Fraction:
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


def reason(exc) -> str:
    """An FFmpeg error's words."""
    return getattr(exc, "strerror", None) or str(exc)


# ------------------------------------------------ a folder of numbered frames

def _numbered(folder: Path, name: str) -> list[tuple[int, Path]]:
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
            raise ImpastoError(f"{name}: {pa.name} and {pb.name} are both frame {a}")
    return frames


def _read_folder(folder: Path, name: str, start: float, duration: float | None, limits: _Limits, folder_fps) -> _Read:
    from ..image import imageio

    if isinstance(folder_fps, bool) or not isinstance(folder_fps, numbers.Real) \
            or not math.isfinite(folder_fps) or not 0 < folder_fps <= 1000:
        raise ImpastoError(f"{name}: the frame rate of a folder of frames must be a number in (0, 1000], "
                           f"not {folder_fps!r}")
    fps = as_fps(folder_fps)
    try:
        numbered = _numbered(folder, name)
    except OSError as exc:
        raise ImpastoError(f"{name}: cannot list the folder ({exc.strerror})") from None
    if not numbered:
        raise ImpastoError(f"{name}: folder holds no numbered frames (images named like frame_0001.png)")
    files = [p for _, p in numbered]
    chosen = [p for i, p in enumerate(files) if _side(i / float(fps), fps, start, duration) == 0]
    _check_selected(name, len(chosen), len(files) / float(fps), fps, start, duration)
    _check_length(name, len(chosen), len(chosen) / float(fps), limits)
    limit = _memory_limit()
    frames: list[np.ndarray] = []
    for p in chosen:
        try:
            with Image.open(p) as probe:
                w, h = probe.size
        except (OSError, ValueError, Image.DecompressionBombError):
            w = h = 0  # open_image names the problem
        if w and h:
            _check_size(str(p), w, h, limits.max_pixels)
        arr = np.asarray(imageio.open_image(p))
        if frames and arr.shape != frames[0].shape:
            raise ImpastoError(f"{p}: frame is {arr.shape[1]}x{arr.shape[0]}, the first frame {chosen[0].name} "
                               f"is {frames[0].shape[1]}x{frames[0].shape[0]}; all frames must be one size")
        frames.append(arr)
        _check_memory(name, len(frames), arr.shape[1], arr.shape[0], limit, more=True)
    return _Read(frames, len(frames), fps, None, "folder")


# ------------------------------------------------ animated images (Pillow)

def _read_pillow(source: Path | bytes, name: str, start: float, duration: float | None, limits: _Limits,
                 keep: bool) -> _Read | None:
    """An animated GIF, WebP or PNG through Pillow (every frame decoded; kept, or only the first when
    probing); None when Pillow does not know the file."""
    fmt = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(_file(source)) as im:
                fmt, (w, h), n = im.format, im.size, getattr(im, "n_frames", 1)
                if n < 2:
                    raise StillImage(f"{name}: a {fmt} of one frame is a still image, not a clip ({CLIP_KINDS})", fmt)
                if limits.formats is not None and fmt not in limits.formats:
                    raise FormatNotTaken(f"{name}: an animated {fmt} is not taken here", fmt)
                _check_size(name, w, h, limits.max_pixels)
                _check_length(name, n, 0.0, limits)
                shortest = 10 if fmt == "GIF" else 0  # as browsers: GIF frames of 0 or 10 ms last 100 ms
                durations = []
                for i in range(n):
                    im.seek(i)
                    if "duration" not in im.info:
                        im.load()  # WebP: the duration comes with the pixels
                    d = im.info.get("duration") or 0
                    durations.append(d if d > shortest else _DEFAULT_MS)
                _check_length(name, n, sum(durations) / 1000, limits)
                fps = Fraction(1000 * n, int(round(sum(durations)))).limit_denominator(1001)
                times, t = [], 0.0
                for d in durations:
                    times.append(t / 1000)
                    t += d
                chosen = [i for i in range(n) if _side(times[i], fps, start, duration) == 0]
                _check_selected(name, len(chosen), n / float(fps), fps, start, duration)
                if keep:
                    _check_memory(name, len(chosen), w, h, _memory_limit())
                if keep:
                    from ..image.imageio import to_rgb  # (PyTorch comes with it: not when probing)
                frames = []
                for i in chosen:
                    im.seek(i)
                    im.load()
                    if keep:
                        frames.append(np.asarray(to_rgb(im.copy())))
                    elif not frames:  # the poster
                        frames.append(np.asarray(im.convert("RGB")))
    except Image.UnidentifiedImageError:
        return None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise OverLimit(f"{name} is too large to decode safely (over {Image.MAX_IMAGE_PIXELS:,} pixels)") from None
    except (OSError, ValueError, SyntaxError, EOFError) as exc:
        raise ImpastoError(f"{name}: unreadable or truncated animation ({exc})") from None
    if any(f.shape != frames[0].shape for f in frames):
        raise ImpastoError(f"{name}: frames of different sizes")
    return _Read(frames, len(chosen), fps, None, fmt)


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
    return as_fps(Fraction(rate))


def _seconds(value, time_base) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def _codec_name(stream) -> str:
    """A stream's codec, by name, also when this FFmpeg cannot decode it (PyAV has no context then)."""
    for part in ("codec_context", "codec"):
        try:
            found = getattr(getattr(stream, part), "name", None)
        except AttributeError:  # PyAV passes unknown attributes to a codec context that is not there
            found = None
        if found:
            return found
    return "unknown codec"


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


def _read_av(av, source: Path | bytes, name: str, container, start: float, duration: float | None,
             limits: _Limits, keep: bool, sound: bool = True) -> _Read:
    with container:
        fmt = container.format.name or ""
        names = set(fmt.split(","))
        if names & _NOT_VIDEO_FORMATS or not container.streams:
            raise NotAClip(f"{name}: not a video, animated image or image that FFmpeg or Pillow can read")
        if names & _STILL_FORMATS or any(n.endswith("_pipe") for n in names):
            raise StillImage(f"{name}: a still image, not a clip ({CLIP_KINDS})", fmt)
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams})
            raise ImpastoError(f"{name}: no video stream (it holds {', '.join(kinds)} only)")
        if limits.formats is not None and not names & limits.formats:
            raise FormatNotTaken(f"{name}: a video in the {fmt} format is not taken here", fmt)
        vs = container.streams.video[0]
        cc = vs.codec_context
        codec = _codec_name(vs)
        if cc is None:
            raise ImpastoError(f"{name}: this FFmpeg build cannot decode its video ({codec})")
        if cc.width and cc.height:
            _check_size(name, cc.width, cc.height, limits.max_pixels)
        fps = _stream_fps(vs)
        if fps is None:
            raise ImpastoError(f"{name}: its video stream has no usable frame rate")
        length = _seconds(vs.duration, vs.time_base)
        if length is None and container.duration:
            length = container.duration / 1_000_000
        if length and start > 0 and start >= length:  # before decoding anything
            raise ImpastoError(f"{name}: --start {start:g} s is beyond the end of the clip ({length:.3f} s long)")
        t0 = _seconds(vs.start_time, vs.time_base)
        seek = start > _SEEK_AFTER and t0 is not None
        decoded = None
        if seek:
            decoded = _decode_video(av, name, container, vs, codec, fps, t0, start, duration, limits, keep, seek=True)
        if decoded is None and seek:  # the seek missed: from the beginning
            with _open_av(av, source) as again:
                decoded = _decode_video(av, name, again, again.streams.video[0], codec, fps, None, start, duration,
                                        limits, keep, seek=False)
        elif decoded is None:
            decoded = _decode_video(av, name, container, vs, codec, fps, None, start, duration, limits, keep,
                                    seek=False)
        if decoded.count == 0:
            raise ImpastoError(f"{name}: holds no video frames")
        if decoded.end is not None or not decoded.taken:  # the end was reached, or the part holds no frame
            _check_selected(name, decoded.taken, decoded.end if decoded.end is not None else math.inf,
                            fps, start, duration)
    audio = _read_audio(av, source, name, decoded.t0, decoded.first, decoded.taken / fps) if sound else None
    return _Read(decoded.frames, decoded.taken, fps, audio, fmt, codec)


@dataclass
class _Decoded:
    frames: list[np.ndarray]   # the frames of the part asked for (only the first when probing)
    taken: int                 # how many frames the part holds
    first: float | None        # the time of its first frame relative to t0
    t0: float | None           # the time of the first frame decoded
    end: float | None          # the clip's length, if its end was reached
    count: int                 # frames decoded


def _decode_video(av, name, container, vs, codec, fps, t0, start, duration, limits: _Limits, keep: bool,
                  seek: bool) -> _Decoded | None:
    """Decode the frames of the part asked for, or None when a seek missed."""
    if seek:
        try:
            container.seek(int((t0 + start) / vs.time_base), stream=vs, backward=True)
        except av.error.FFmpegError:
            return None
    frames: list[np.ndarray] = []
    first = last = None
    size = None
    limit = _memory_limit() if keep else None
    count = taken = 0
    ended = True
    bounded = limits.max_frames is not None or limits.max_seconds is not None
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
            side = _side(rel, fps, start, duration)
            if side < 0:
                continue
            if side > 0:
                ended = False
                break
            taken += 1
            if bounded:
                _check_length(name, taken, taken / float(fps), limits, counted=True)
            if size is None:
                size = (frame.width, frame.height)
                _check_size(name, frame.width, frame.height, limits.max_pixels)
                first = rel
            if keep or not frames:
                frames.append(_rgb(frame, size))
            if keep:
                h, w = frames[0].shape[:2]
                _check_memory(name, len(frames), w, h, limit, more=True)
    except av.error.FFmpegError as exc:
        if count == 0:
            raise ImpastoError(f"{name}: cannot decode its video ({codec}): {reason(exc)}") from None
        raise ImpastoError(f"{name}: its video is damaged after frame {count} ({codec}): {reason(exc)}") from None
    if seek and count == 0:
        return None
    end = last + 1 / float(fps) if ended and last is not None else None
    return _Decoded(frames, taken, first, t0, end, count)


def _read_audio(av, source, name: str, t0: float | None, first: float | None, span: Fraction) -> Audio | None:
    """The first audio stream over ``span`` seconds from ``first`` (relative to the video's ``t0``)."""
    if first is None:
        return None
    begin = (t0 or 0.0) + first
    for seek in ((True, False) if first > _SEEK_AFTER else (False,)):
        with _open_av(av, source) as container:
            if not container.streams.audio:
                return None
            stream = container.streams.audio[0]
            if stream.codec_context is None:
                raise ImpastoError(f"{name}: this FFmpeg build cannot decode its audio ({_codec_name(stream)})")
            rate = stream.codec_context.sample_rate
            if not rate or rate <= 0:
                return None
            audio = _decode_audio(av, name, container, stream, begin, rate, int(round(span * rate)), seek)
            if audio is not None or not seek:
                return audio
    return None


def _decode_audio(av, name: str, container, stream, begin: float, rate: int, want: int, seek: bool) -> Audio | None:
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
        raise ImpastoError(f"{name}: cannot decode its audio ({_codec_name(stream)}): {reason(exc)}") from None
    if out is None:  # no samples (or, after a seek, none found): as no sound
        return None
    np.nan_to_num(out, copy=False)
    np.clip(out, -1.0, 1.0, out=out)
    return Audio(out, int(rate))
