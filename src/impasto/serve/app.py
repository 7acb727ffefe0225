"""The HTTP side of ``impasto serve``: the API of /work/notes/serve-contract.md (a Starlette app), the
page's files, and the safety rules every request passes first:

- the Host header must name this server (127.0.0.1, localhost, [::1] or --host, with its port), so a
  page elsewhere cannot reach it through a DNS name of its own pointed at 127.0.0.1 (DNS rebinding);
- a request with an Origin header must come from a page of this server (no other site may post);
- a POST is JSON or a multipart upload (a plain cross-site form cannot send either without an Origin);
- uploads: at most :attr:`Limits.max_upload_bytes` (counted while they arrive; nothing is kept of a
  larger one) and :attr:`Limits.max_pixels`, only PNG, JPEG and WebP that Pillow decodes whole; or a
  short clip (MP4, MOV, WebM through PyAV; animated GIF and WebP through Pillow) of at most
  :attr:`Limits.max_clip_seconds`, :attr:`Limits.max_clip_frames` and :attr:`Limits.max_clip_pixels`
  a frame, probed here without decoding it (its packets counted, its first frame decoded for the
  poster: PyAV is light, PyTorch stays out of the server);
- every name on disk is made by the server (:mod:`.store`); at most :attr:`Limits.max_queue` waiting.

Every refusal is one JSON line ``{"error": "..."}`` with its status, as the command line's errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import json
import socket
import unicodedata
import warnings
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from PIL import Image, ImageOps
from starlette.applications import Starlette
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import __version__
from ..errors import ImpastoError
from .queue import AlreadyEnded, JobQueue, QueueFull, WorkerBroken, sse
from .store import FORMATS, MEDIA_TYPES, Store, new_id
from .worker import ACCEPTED, METHODS, OPTIONS, VIDEO_MODES, build_config, kind_of

STATIC = Path(__file__).resolve().parent / "static"


@dataclass(frozen=True)
class Limits:
    """The server's limits and timings: the one place for its defaults."""

    max_upload_bytes: int = 25_000_000   # one uploaded file
    max_pixels: int = 40_000_000         # one uploaded image, width x height
    max_queue: int = 20                  # jobs waiting (the running one not counted); 429 past it
    max_size: int = 1024                 # a job's output long side (--size)
    max_iterations: int = 5000           # an optimisation's --iterations
    max_styles: int = 4                  # paintings of one job
    max_json_bytes: int = 65_536         # a job's JSON body
    preview_every: int = 2               # iterations between live images (preview.jpg)
    ping_s: float = 15.0                 # a comment line on a quiet event stream
    cancel_wait_s: float = 10.0          # POST .../cancel waits this long for the running job to stop
    image_checks: int = 2                # uploads decoded at once (each up to max_pixels x 3 bytes)
    max_clip_seconds: float = 10.0       # one uploaded clip: its length (frames over the frame rate)
    max_clip_frames: int = 250           # ... its frames
    max_clip_pixels: int = 2_100_000     # ... one frame, width x height (1920x1080 fits); the bytes: max_upload_bytes


DRAIN_FACTOR = 4   # an upload over the limit is read (and dropped) up to this many times the limit, so the
                   # client sees the 413 rather than a reset connection; past that the connection is closed
FORM_SLACK = 65_536  # multipart headers and small fields around the file


class Refused(Exception):
    """A request refused: its status and one line saying why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def _mb(n: int) -> str:
    return f"{n / 1e6:g} MB"


# ---------------------------------------------------------------- the server's own names

def own_hosts(host: str, port: int) -> frozenset[str]:
    """The Host header values that name this server: the loopback names and ``host``, with the port
    (also without it on port 80). Listening on every interface (0.0.0.0, ::) adds this machine's
    host name and its addresses."""
    names = {"127.0.0.1", "localhost", "[::1]", _bracket(host)}
    if host in ("0.0.0.0", "::", ""):
        hostname = socket.gethostname()
        names |= {hostname, socket.getfqdn()}
        with contextlib.suppress(OSError):
            names |= {_bracket(info[4][0]) for info in socket.getaddrinfo(hostname, None)}
    names = {n.lower() for n in names if n}
    hosts = {f"{n}:{port}" for n in names}
    return frozenset(hosts | names if port == 80 else hosts)


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def address(host: str, port: int) -> str:
    """The page's address for a server listening on ``host:port`` (an IPv6 host in brackets)."""
    return f"http://{_bracket(host)}:{port}/"


def is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Guard:
    """ASGI middleware: the Host, Origin and POST Content-Type rules, and headers that keep other
    sites from framing the page or embedding its images."""

    HEADERS = {"x-content-type-options": "nosniff", "x-frame-options": "DENY", "referrer-policy": "no-referrer",
               "cross-origin-resource-policy": "same-origin"}

    def __init__(self, app, hosts: frozenset[str], address: str):
        self.app, self.hosts, self.address = app, hosts, address
        self.origins = frozenset(f"http://{h}" for h in hosts)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        refusal = self.refusal(scope["method"], Headers(scope=scope))
        if refusal is not None:
            return await JSONResponse({"error": refusal.message}, refusal.status)(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for k, v in self.HEADERS.items():
                    headers.setdefault(k, v)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def refusal(self, method: str, headers: Headers) -> Refused | None:
        host = headers.get("host", "").lower()
        if host not in self.hosts:
            return Refused(403, f"this server answers only at its own address ({self.address}), not as '{host}'")
        origin = headers.get("origin")
        if origin is not None and origin.lower() not in self.origins:
            return Refused(403, f"requests from {origin} are refused: only this server's own page may use it")
        if method == "POST":
            kind = headers.get("content-type", "").split(";")[0].strip().lower()
            if kind not in ("application/json", "multipart/form-data"):
                return Refused(415, "a POST must be application/json or multipart/form-data")
        return None


# ---------------------------------------------------------------- uploads

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


CLIPS = "MP4, MOV, WebM, animated GIF or WebP"
CLIP_CONTAINERS = {"mov": ".mp4", "mp4": ".mp4", "webm": ".webm", "matroska": ".webm"}


def not_media(name: str) -> str:
    return f"{name} is not an image (PNG, JPEG, WebP) or a clip ({CLIPS})"


def video_available() -> bool:
    """Whether the video extra (PyAV, OpenCV) is installed; looked up, not imported."""
    return all(importlib.util.find_spec(m) is not None for m in ("av", "cv2"))


def keep_upload(store: Store, data: bytes, name: str, limits: Limits) -> dict:
    """An upload, an image (:func:`check_image`) or a clip (:func:`check_clip`), checked, then kept;
    its record. Nothing is written for a refused one."""
    if not data:
        raise Refused(415, f"{not_media(name)}: the file is empty")
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt, frames = img.format, getattr(img, "n_frames", 1)
    except Image.DecompressionBombError:  # an image: check_image says how large
        return keep_image(store, data, name, limits.max_pixels)
    except Exception:  # not an image Pillow knows: a video, or nothing
        fmt = frames = None
    if fmt is None:
        probe, poster = check_clip(data, name, limits)
        return store.add_clip(data, probe, name, poster)
    if fmt in ("GIF", "WEBP") and frames > 1:
        probe, poster = check_animation(data, name, limits)
        return store.add_clip(data, probe, name, poster)
    if fmt == "GIF":
        raise Refused(415, f"{name} is not an image (PNG, JPEG, WebP); it is a GIF of one frame "
                           f"(a GIF is taken as a clip when it is animated)")
    return keep_image(store, data, name, limits.max_pixels)


def _check_clip_size(name: str, w: int, h: int, limits: Limits) -> None:
    if w <= 0 or h <= 0:
        raise Refused(415, f"{name}: its frames have no size ({w}x{h})")
    if w * h > limits.max_clip_pixels:
        raise Refused(413, f"{name} is too large: {w}x{h} pixels a frame, over the limit of "
                           f"{limits.max_clip_pixels / 1e6:g} million pixels per frame of a clip")


def _check_clip_length(name: str, frames: int, seconds: float, limits: Limits, counted: bool = False) -> None:
    """413 past the frames or seconds of a clip; ``counted``: the count stopped at the first one over."""
    more = "more than " if counted else ""
    if frames > limits.max_clip_frames:
        shown = limits.max_clip_frames if counted else frames
        raise Refused(413, f"{name} is too long: {more}{shown} frames (the limit is {limits.max_clip_frames} "
                           f"frames per clip)")
    if seconds > limits.max_clip_seconds + 1e-6:
        shown = f"{limits.max_clip_seconds:g}" if counted else f"{seconds:.1f}"
        raise Refused(413, f"{name} is too long: {more}{shown} s (the limit is {limits.max_clip_seconds:g} s per clip)")


def check_animation(data: bytes, name: str, limits: Limits) -> tuple[dict, Image.Image]:
    """An animated GIF or WebP: (its probe, its first frame), through Pillow, as impasto.video.frames
    reads it (a frame of 0 ms, or 10 ms in a GIF, lasts 100 ms)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                fmt, (w, h), n = img.format, img.size, img.n_frames
                _check_clip_size(name, w, h, limits)
                _check_clip_length(name, n, 0.0, limits)
                shortest = 10 if fmt == "GIF" else 0
                total = 0
                for i in range(n):
                    img.seek(i)
                    if "duration" not in img.info:
                        img.load()
                    d = img.info.get("duration") or 0
                    total += d if d > shortest else 100
                img.seek(0)
                poster = img.convert("RGB")
    except Refused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Refused(413, f"{name} is too large to decode safely") from None
    except Exception:
        raise Refused(415, f"{not_media(name)}: this {fmt} animation is damaged or truncated") from None
    seconds = total / 1000
    _check_clip_length(name, n, seconds, limits)
    ext = ".gif" if fmt == "GIF" else ".webp"
    return {"format": fmt, "ext": ext, "width": w, "height": h, "frames": n, "fps": round(n / seconds, 3),
            "duration": round(seconds, 3), "audio": False}, poster


def check_clip(data: bytes, name: str, limits: Limits) -> tuple[dict, Image.Image]:
    """A video clip (MP4, MOV, WebM): (its probe, its first frame), through PyAV: the container and
    its first video stream read, its packets counted (not decoded: the frames, and the length at the
    stream's frame rate, within the limits whatever the header says), the first frame decoded."""
    try:
        import av
    except ImportError:
        raise Refused(415, f"{not_media(name)} (a clip needs PyAV: pip install 'impasto[video]')") from None
    try:
        container = av.open(io.BytesIO(data), metadata_errors="ignore")
    except Exception:  # FFmpeg's many ways of saying "not this"
        raise Refused(415, not_media(name)) from None
    with container:
        names = set((container.format.name or "").split(","))
        ext = next((CLIP_CONTAINERS[n] for n in ("mov", "mp4", "webm", "matroska") if n in names), None)
        if not container.streams.video or container.format.name in ("tty", "image2", "image2pipe"):
            if ext is None and not container.streams.audio:
                raise Refused(415, not_media(name))
            raise Refused(415, f"{name} is not a clip: it holds no video stream")
        if ext is None:
            raise Refused(415, f"{name} is a video in the {container.format.name} format; a clip is {CLIPS}")
        if ext == ".mp4" and name.lower().endswith(".mov"):
            ext = ".mov"
        vs = container.streams.video[0]
        codec = getattr(getattr(vs, "codec", None), "name", None) or "an unknown codec"
        if vs.codec_context is None:
            raise Refused(415, f"{name}: its video ({codec}) cannot be decoded here")
        w, h = vs.codec_context.width, vs.codec_context.height
        if w and h:
            _check_clip_size(name, w, h, limits)
        rate = vs.average_rate or vs.base_rate or vs.guessed_rate
        if not rate or not 0 < float(rate) <= 1000:
            raise Refused(415, f"{name}: its video stream has no usable frame rate")
        fps = float(rate)
        first, count = None, 0
        try:
            for packet in container.demux(vs):
                if packet.size == 0:
                    continue
                count += 1
                _check_clip_length(name, count, count / fps, limits, counted=True)
                if first is None:
                    first = next(iter(packet.decode()), None)
            if first is None:
                first = next(iter(vs.codec_context.decode(None)), None)
        except Refused:
            raise
        except Exception:
            if first is None:
                raise Refused(415, f"{name}: its video ({codec}) cannot be decoded") from None
            raise Refused(415, f"{name}: its video is damaged after frame {count}") from None
        if first is None or count == 0:
            raise Refused(415, f"{name} is not a clip: it holds no video frames")
        w, h = first.width, first.height
        _check_clip_size(name, w, h, limits)
        poster = first.to_image().convert("RGB")
        audio = bool(container.streams.audio)
    return {"format": {".mp4": "MP4", ".mov": "MOV", ".webm": "WebM"}[ext], "ext": ext, "width": w, "height": h,
            "frames": count, "fps": round(fps, 3), "duration": round(count / fps, 3), "codec": codec,
            "audio": audio}, poster


# ---------------------------------------------------------------- jobs

def check_job(body, store: Store, limits: Limits, models: dict[str, str]) -> tuple[dict, dict, list[dict]]:
    """A job's record from a POSTed body, every id and option checked (400 with the reason); returns
    (record, content upload, style uploads)."""
    if not isinstance(body, dict):
        raise Refused(400, "the job must be a JSON object")
    method = body.get("method")
    methods = METHODS if video_available() else METHODS[:2]
    if method not in methods:
        raise Refused(400, f"method must be {', '.join(methods[:-1])} or {methods[-1]}, not {method!r}")
    mode = None
    if method == "video":
        mode = body.get("mode")
        if mode not in VIDEO_MODES:
            raise Refused(400, f"mode must be {' or '.join(VIDEO_MODES)} for a video, not {mode!r}")
    kind = kind_of(method, mode)
    content = _upload(store, body.get("content"), "content", "clip" if method == "video" else "image")
    styles, model = [], None
    if kind in ("transfer", "video-optimisation"):
        ids = body.get("styles")
        if not isinstance(ids, list) or not ids:
            raise Refused(400, "styles: give at least one painting (a list of upload ids)")
        if len(ids) > limits.max_styles:
            raise Refused(400, f"styles: at most {limits.max_styles} paintings, got {len(ids)}")
        styles = [_upload(store, uid, "styles", "image") for uid in ids]
    else:
        model = body.get("model")
        if not isinstance(model, str) or model not in models:
            shown = model if isinstance(model, str) and len(model) <= 80 else type(model).__name__
            raise Refused(400, f"model: no model {shown!r} (these are: {', '.join(models) or 'none'})")
    options = body.get("options") or {}
    if not isinstance(options, dict):
        raise Refused(400, "options must be a JSON object")
    accepted = ACCEPTED[method]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise Refused(400, f"unknown option '{unknown[0]}' (the options are {', '.join(accepted)})")
    given = {k: v for k, v in options.items() if v is not None and k in OPTIONS[kind]}
    if kind in ("fast", "video-fast") and "size" not in given:  # a network keeps the input's size: capped here
        given["size"] = min(max(content["width"], content["height"]), limits.max_size)
    try:
        config = build_config(method, given, mode)
    except ImpastoError as exc:
        raise Refused(400, str(exc)) from None
    config, video = config if method == "video" else (config, None)
    if config.size > limits.max_size:
        raise Refused(400, f"--size must be at most {limits.max_size} on this server, got {config.size}")
    if kind in ("transfer", "video-optimisation") and config.iterations > limits.max_iterations:
        raise Refused(400, f"--iterations must be at most {limits.max_iterations} on this server, "
                           f"got {config.iterations}")
    if kind == "video-optimisation" and video.frame_iterations > limits.max_iterations:
        raise Refused(400, f"--frame-iterations must be at most {limits.max_iterations} on this server, "
                           f"got {video.frame_iterations}")
    settings = {"method": method, **({"mode": mode} if mode else {}), "content": content["id"],
                **({"styles": [s["id"] for s in styles]} if styles else {}),
                **({"model": model} if model else {}), "options": dict(options)}
    record = {"id": new_id(), "method": method, "mode": mode, "settings": settings, "content": content["id"],
              "styles": [s["id"] for s in styles], "model": models[model] if model else None, "options": given}
    return record, content, styles


def _upload(store: Store, uid, what: str, kind: str = "image") -> dict:
    meta = store.upload(uid)
    if meta is None:
        shown = uid if isinstance(uid, str) and len(uid) <= 64 else type(uid).__name__
        raise Refused(400, f"{what}: no such upload {shown!r} (upload the {'clip' if kind == 'clip' else 'image'} first)")
    if meta["kind"] != kind:
        if kind == "clip":
            raise Refused(400, f"{what}: {meta['name']} is an image; a video job takes a clip ({CLIPS})")
        raise Refused(400, f"{what}: {meta['name']} is a clip; a clip is painted by the method video")
    return meta


async def read_json(request: Request, cap: int):
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/json":
        raise Refused(415, "send the job as application/json")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > cap:
            raise Refused(413, f"the request is too large (over {cap} bytes)")
    try:
        return json.loads(body or b"null")
    except ValueError:
        raise Refused(400, "the body is not valid JSON") from None


# ---------------------------------------------------------------- the application

def available_models(store: Store) -> dict[str, str]:
    """Every fast model the page offers, by its shown name: the bundled ones (the worker loads them by
    name) and the user's own in ``DATA/models`` (by the path the server found; never a client's)."""
    return {**{name: name for name in bundled_models()},
            **{name: str(path) for name, path in store.trained_models().items()}}


def bundled_models() -> list[str]:
    """:func:`impasto.fast.model.bundled_models`, read here without importing PyTorch."""
    folder = resources.files("impasto") / "data" / "models"
    return sorted(p.name[:-3] for p in folder.iterdir() if p.name.endswith(".pt")) if folder.is_dir() else []


def examples_folder() -> Path | None:
    """The repository's ``examples/`` when running from a checkout (they are not package data)."""
    root = Path(__file__).resolve().parents[3]
    folder = root / "examples"
    return folder if (root / "pyproject.toml").is_file() and folder.is_dir() else None


def info(limits: Limits, models: list[str], examples: list[dict]) -> dict:
    from ..config import FastConfig, TransferConfig, VideoConfig
    from ..presets import available

    defaults, video = TransferConfig(), VideoConfig()
    has_video = video_available()
    return {"version": __version__,
            "defaults": {"size": defaults.size, "ratio": defaults.ratio, "iterations": defaults.iterations,
                         "color": defaults.color, "preset": None,
                         "video": {"temporal_features": video.temporal_features, "temporal": video.temporal,
                                   "frame_iterations": video.frame_iterations,
                                   "temporal_weight": video.temporal_weight}},
            "choices": {"color": list(TransferConfig.__dataclass_fields__["color"].metadata["choices"]),
                        "fast_color": list(FastConfig.__dataclass_fields__["color"].metadata["choices"]),
                        "preset": list(available()), "method": list(METHODS if has_video else METHODS[:2]),
                        "video_mode": list(VIDEO_MODES) if has_video else []},
            "models": models, "examples": examples,
            "limits": {k: v for k, v in asdict(limits).items() if k.startswith("max_")}}


def create_app(data_dir: Path, *, host: str, port: int, limits: Limits | None = None,
               start_worker: bool = True) -> Starlette:
    """The server's application on ``data_dir``; the lifespan reads the history (jobs an earlier
    server left running are marked interrupted), adds the examples and starts the worker."""
    limits = limits or Limits()
    store = Store(data_dir)
    jobs = JobQueue(store, limits.max_queue, limits.preview_every, start_worker, limits.max_clip_frames)
    state = {"examples": []}
    checking = asyncio.Semaphore(limits.image_checks)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        state["examples"] = store.add_examples(examples_folder())
        state["info"] = info(limits, [], state["examples"])
        jobs.start()
        try:
            yield
        finally:
            jobs.stop()

    async def page(request):
        index = STATIC / "index.html"
        if not index.is_file():
            raise Refused(404, "the page's files are not installed (impasto/serve/static)")
        return FileResponse(index, media_type="text/html", headers={"Cache-Control": "no-cache"})

    async def get_info(request):
        return _json({**state["info"], "models": list(available_models(store))})

    async def post_upload(request):
        data, name = await read_upload(request, limits)
        async with checking:
            meta = await asyncio.to_thread(keep_upload, store, data, name, limits)
        return _json(upload_view(meta), 201)

    async def get_upload(request):
        meta = store.upload(request.path_params["uid"])
        if meta is None:
            raise Refused(404, "no such upload")
        return FileResponse(meta["path"], media_type=MEDIA_TYPES[meta["ext"]], headers={"Cache-Control": "max-age=86400"})

    async def get_poster(request):
        path = store.poster(request.path_params["uid"])
        if path is None:
            raise Refused(404, "no such clip")
        return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})

    async def post_job(request):
        record, content, styles = check_job(await read_json(request, limits.max_json_bytes), store, limits,
                                            available_models(store))
        try:
            return _json(jobs.submit(record, content, styles), 201)
        except QueueFull as exc:
            raise Refused(429, str(exc)) from None
        except WorkerBroken as exc:
            raise Refused(503, str(exc)) from None

    async def list_jobs(request):
        return _json({"jobs": jobs.all()})

    def _job_id(request) -> str:
        jid = request.path_params["jid"]
        if jid not in jobs.jobs:
            raise Refused(404, "no such job")
        return jid

    async def get_job(request):
        return _json(jobs.view(_job_id(request)))

    async def job_file(request, name: str, media: str):
        path = store.job_file(_job_id(request), name)
        if path is None:
            raise Refused(404, f"this job has no {name.split('.')[0]}")
        headers = {"Cache-Control": "no-cache"}
        if request.query_params.get("download") == "1":
            headers["Content-Disposition"] = f'attachment; filename="impasto-{request.path_params["jid"]}{path.suffix}"'
        return FileResponse(path, media_type=media, headers=headers)

    async def result(request):
        if jobs.jobs[_job_id(request)]["method"] == "video":
            return await job_file(request, "result.mp4", "video/mp4")
        return await job_file(request, "result.png", "image/png")

    async def preview(request):
        return await job_file(request, "preview.jpg", "image/jpeg")

    async def thumb(request):
        return await job_file(request, "thumb.jpg", "image/jpeg")

    async def cancel_job(request):
        jid = _job_id(request)
        try:
            return _json(await jobs.cancel(jid, limits.cancel_wait_s))
        except AlreadyEnded as exc:
            raise Refused(409, str(exc)) from None

    async def events(request):
        sub = jobs.hub.subscribe()

        async def stream():
            try:
                yield sse({"type": "hello", "jobs": jobs.all()})
                while True:
                    try:
                        text = await sub.next(limits.ping_s)
                    except asyncio.TimeoutError:
                        yield ": ping\n\n"
                        continue
                    if text is None:
                        return
                    yield text
            finally:
                jobs.hub.unsubscribe(sub)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    routes = [
        Route("/", page),
        Route("/api/info", get_info),
        Route("/api/uploads", post_upload, methods=["POST"]),
        Route("/api/uploads/{uid}", get_upload),
        Route("/api/uploads/{uid}/poster", get_poster),
        Route("/api/jobs", post_job, methods=["POST"]),
        Route("/api/jobs", list_jobs),
        Route("/api/jobs/{jid}", get_job),
        Route("/api/jobs/{jid}/result", result),
        Route("/api/jobs/{jid}/preview", preview),
        Route("/api/jobs/{jid}/thumb", thumb),
        Route("/api/jobs/{jid}/cancel", cancel_job, methods=["POST"]),
        Route("/api/events", events),
        Mount("/static", StaticFiles(directory=STATIC, check_dir=False)),
    ]
    app = Starlette(routes=routes, lifespan=lifespan,
                    middleware=[Middleware(Guard, hosts=own_hosts(host, port), address=address(host, port))],
                    exception_handlers={Refused: _refused, HTTPException: _http_error, Exception: _server_error})
    app.state.store, app.state.jobs, app.state.limits = store, jobs, limits
    return app


def upload_view(meta: dict) -> dict:
    """An upload as the API shows it; a clip also has its frames, rate, length and poster."""
    uid = meta["id"]
    view = {"id": uid, "kind": meta.get("kind", "image"), "name": meta["name"], "width": meta["width"],
            "height": meta["height"], "url": f"/api/uploads/{uid}"}
    if view["kind"] == "clip":
        view.update(frames=meta["frames"], fps=meta["fps"], duration=meta["duration"], audio=meta.get("audio", False),
                    poster=f"/api/uploads/{uid}/poster")
    return view


def _json(value, status: int = 200) -> JSONResponse:
    return JSONResponse(value, status, headers={"Cache-Control": "no-store"})


async def _refused(request, exc: Refused) -> Response:
    return JSONResponse({"error": exc.message}, exc.status)


async def _http_error(request, exc: HTTPException) -> Response:
    words = {404: "not found", 405: "method not allowed"}
    return JSONResponse({"error": words.get(exc.status_code, str(exc.detail))}, exc.status_code)


async def _server_error(request, exc: Exception) -> Response:
    return JSONResponse({"error": f"internal error: {type(exc).__name__}: {exc}".splitlines()[0]}, 500)
