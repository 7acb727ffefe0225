"""Clips uploaded to ``impasto serve``: checked by the one set of checks ``impasto video`` runs on a
clip (:func:`impasto.video.read.probe_clip`: its video and sound decoded, only its first frame kept,
as the poster; PyAV and Pillow, no PyTorch), within the server's own limits —
:attr:`~.limits.Limits.max_clip_seconds`, :attr:`~.limits.Limits.max_clip_frames` and
:attr:`~.limits.Limits.max_clip_pixels` a frame — and in the formats a browser plays back (MP4, MOV,
WebM, animated GIF and WebP), so that the page can show the upload and the worker can read it. A
clip the command line refuses is refused here with the same line, naming the upload by the name the
client gave it.
"""

from __future__ import annotations

import importlib.util

from PIL import Image

from ..errors import ImpastoError
from ..video.read import AV_MISSING, FormatNotTaken, NotAClip, OverLimit, StillImage, probe_clip
from .limits import Limits, Refused

CLIPS = "MP4, MOV, WebM, animated GIF or WebP"
# The formats taken (FFmpeg's container names, Pillow's for animations) and the extension each is kept under.
CLIP_FORMATS = {"mov": ".mp4", "mp4": ".mp4", "webm": ".webm", "matroska": ".webm", "GIF": ".gif", "WEBP": ".webp"}
SHOWN = {".mp4": "MP4", ".mov": "MOV", ".webm": "WebM", ".gif": "GIF", ".webp": "WEBP"}


def not_media(name: str) -> str:
    return f"{name} is not an image (PNG, JPEG, WebP) or a clip ({CLIPS})"


def video_available() -> bool:
    """Whether the video extra (PyAV, OpenCV) is installed; looked up, not imported."""
    return all(importlib.util.find_spec(m) is not None for m in ("av", "cv2"))


def check_clip(data: bytes, name: str, limits: Limits) -> tuple[dict, Image.Image]:
    """A clip's probe (format, ext, width, height, frames, fps, duration, audio and, for a video, its
    codec) and its first frame; a refused one raises :class:`~.limits.Refused`: 413 past a limit, 415
    for the rest."""
    try:
        info = probe_clip(data, name, max_pixels=limits.max_clip_pixels, max_frames=limits.max_clip_frames,
                          max_seconds=limits.max_clip_seconds, formats=CLIP_FORMATS)
    except StillImage as exc:
        if exc.format == "GIF":
            raise Refused(415, f"{name} is not an image (PNG, JPEG, WebP); it is a GIF of one frame "
                               f"(a GIF is taken as a clip when it is animated)") from None
        raise Refused(415, not_media(name)) from None
    except NotAClip:
        raise Refused(415, not_media(name)) from None
    except FormatNotTaken as exc:
        raise Refused(415, f"{name} is a video in the {exc.format} format; a clip is {CLIPS}") from None
    except OverLimit as exc:
        raise Refused(413, str(exc)) from None
    except ImpastoError as exc:
        if str(exc) == AV_MISSING:
            raise Refused(415, f"{not_media(name)} (a clip needs PyAV: pip install 'impasto[video]')") from None
        raise Refused(415, str(exc)) from None
    names = info.format.split(",")
    ext = next(CLIP_FORMATS[n] for n in CLIP_FORMATS if n in names)
    if ext == ".mp4" and name.lower().endswith(".mov"):
        ext = ".mov"
    probe = {"format": SHOWN[ext], "ext": ext, "width": info.width, "height": info.height, "frames": info.frames,
             "fps": round(float(info.fps), 3), "duration": round(info.duration, 3), "audio": info.audio}
    if info.codec is not None:
        probe["codec"] = info.codec
    return probe, info.poster
