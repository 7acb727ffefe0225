"""Uploads to ``impasto serve``: the multipart form read as it arrives, at most
:attr:`~.limits.Limits.max_upload_bytes` (counted while it arrives; nothing is kept of a larger
one), then told apart and checked — an image (PNG, JPEG or WebP that Pillow decodes whole, within
:attr:`~.limits.Limits.max_pixels`) or a clip (:mod:`.media`) — and kept in the store under a name
the server makes (:mod:`.store`). The client's file name is only ever shown (:func:`client_name`).
"""

from __future__ import annotations

import contextlib
import io
import unicodedata
import warnings

from PIL import Image, ImageOps
from starlette.requests import ClientDisconnect, Request

from .limits import Limits, Refused
from .media import check_clip, not_media
from .store import FORMATS, Store

DRAIN_FACTOR = 4   # an upload over the limit is read (and dropped) up to this many times the limit, so the
                   # client sees the 413 rather than a reset connection; past that the connection is closed
FORM_SLACK = 65_536  # multipart headers and small fields around the file



def _mb(n: int) -> str:
    return f"{n / 1e6:g} MB"



def client_name(raw: bytes | str | None) -> str:
    """The file name a client gave, for display only: its last part, printable, at most 100 characters."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw or ""
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(c for c in text if unicodedata.category(c)[0] != "C").strip()
    return text[:100] or "upload"


class _Form:
    """python-multipart callbacks that keep the first file of the field ``file``, up to ``cap`` bytes."""

    def __init__(self, cap: int):
        self.cap = cap
        self.found = self.over = False
        self.name, self.size, self.data = None, 0, bytearray()
        self._field, self._value, self._headers, self._in_file = bytearray(), bytearray(), {}, False

    def callbacks(self) -> dict:
        return {"on_part_begin": self._begin, "on_header_field": lambda d, s, e: self._field.extend(d[s:e]),
                "on_header_value": lambda d, s, e: self._value.extend(d[s:e]), "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished, "on_part_data": self._part_data,
                "on_part_end": self._part_end}

    def _begin(self):
        self._headers, self._in_file = {}, False

    def _header_end(self):
        self._headers[bytes(self._field).strip().lower()] = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def _headers_finished(self):
        from python_multipart.multipart import parse_options_header

        _, params = parse_options_header(self._headers.get(b"content-disposition", b""))
        if params.get(b"name") == b"file" and not self.found:
            self.found = self._in_file = True
            self.name = client_name(params.get(b"filename"))

    def _part_data(self, data, start, end):
        if not self._in_file:
            return
        self.size += end - start
        if self.size > self.cap:
            self.over = True
            self.data = bytearray()
        elif not self.over:
            self.data.extend(data[start:end])

    def _part_end(self):
        self._in_file = False


async def read_upload(request: Request, limits: Limits) -> tuple[bytes, str]:
    """The uploaded file's bytes and display name, read as they arrive; a file over the limit is
    refused (413) with nothing of it kept."""
    from python_multipart import MultipartParser
    from python_multipart.multipart import parse_options_header

    kind, params = parse_options_header(request.headers.get("content-type", ""))
    if kind != b"multipart/form-data" or not params.get(b"boundary"):
        raise Refused(415, "an upload is multipart/form-data, the image in the field 'file'")
    cap = limits.max_upload_bytes
    form = _Form(cap)
    parser = MultipartParser(params[b"boundary"], form.callbacks())
    total, bad = 0, None
    length = request.headers.get("content-length", "")
    stated = int(length) if length.isdigit() else 0
    over = stated > cap + FORM_SLACK
    if stated > cap * DRAIN_FACTOR:
        raise Refused(413, f"the upload is too large ({_mb(stated)}; the limit is {_mb(cap)})")
    try:
        async for chunk in request.stream():
            total += len(chunk)
            if total > cap * DRAIN_FACTOR:
                break
            over = over or total > cap + FORM_SLACK
            if bad is None:
                try:
                    parser.write(chunk)
                except Exception as exc:  # python-multipart's parse errors (and bugs) for a malformed body
                    bad = exc
            if over or form.over:
                form.data = bytearray()
    except ClientDisconnect:
        raise Refused(400, "the upload was cut off before it ended") from None
    if over or form.over:
        raise Refused(413, f"{form.name or 'the upload'} is too large (the limit is {_mb(cap)} per file)")
    if bad is not None:
        raise Refused(400, f"the upload is not a well-formed multipart form ({bad})")
    with contextlib.suppress(Exception):
        parser.finalize()
    if not form.found:
        raise Refused(400, "the upload has no field 'file' (the image goes in a form field named file)")
    return bytes(form.data), form.name or "upload"


def check_image(data: bytes, name: str, max_pixels: int) -> tuple[str, int, int]:
    """(format, width, height) of an upload Pillow decodes whole and the server takes (PNG, JPEG,
    WebP) within ``max_pixels``, the size as the image will be seen (EXIF orientation applied)."""
    not_image = f"{name} is not an image (PNG, JPEG, WebP)"
    if not data:
        raise Refused(415, f"{not_image}: the file is empty")
    fmt = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt, (w, h) = img.format, img.size
                if fmt not in FORMATS:
                    raise Refused(415, f"{not_image}; it is {fmt or 'of another kind'}")
                if w * h > max_pixels:
                    raise Refused(413, f"{name} is too large: {w}x{h} pixels, over the limit of "
                                       f"{max_pixels / 1e6:g} million pixels")
                if fmt == "JPEG":
                    img.draft("RGB", (max(1, w // 8), max(1, h // 8)))  # the whole stream, decoded small
                img.load()
                img = ImageOps.exif_transpose(img)
                w, h = img.size
    except Refused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Refused(413, f"{name} is too large to decode safely") from None
    except Exception:  # Pillow's many ways of saying "not this" (UnidentifiedImageError, OSError, ...)
        raise Refused(415, not_image if fmt is None else f"{not_image}: this {fmt} file is damaged or truncated") from None
    return fmt, w, h


def keep_image(store: Store, data: bytes, name: str, max_pixels: int) -> dict:
    """An upload checked (:func:`check_image`), then kept; its record."""
    fmt, w, h = check_image(data, name, max_pixels)
    return store.add_upload(data, fmt, name, w, h)



def keep_upload(store: Store, data: bytes, name: str, limits: Limits) -> dict:
    """An upload, an image (:func:`check_image`) or a clip (:func:`.media.check_clip`: a video, or a
    GIF or an animated WebP), checked, then kept; its record. Nothing is written for a refused one."""
    if not data:
        raise Refused(415, f"{not_media(name)}: the file is empty")
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt, frames = img.format, getattr(img, "n_frames", 1)
    except Image.DecompressionBombError:  # an image: check_image says how large
        return keep_image(store, data, name, limits.max_pixels)
    except Exception:  # not an image Pillow knows: a video, or nothing
        fmt = frames = None
    if fmt is None or fmt == "GIF" or (fmt == "WEBP" and frames > 1):  # a GIF of one frame: the clip check refuses it
        probe, poster = check_clip(data, name, limits)
        return store.add_clip(data, probe, name, poster)
    return keep_image(store, data, name, limits.max_pixels)
