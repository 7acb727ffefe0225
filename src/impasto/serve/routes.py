"""The HTTP side of ``impasto serve``: the Starlette application, its routes and the page's files.
The API (described in full, with examples, in docs/serve.md), every answer JSON unless said:

    GET  /                              the page (static/index.html; its files under /static/)
    GET  /api/info                      version, defaults, choices, models, examples and limits
    POST /api/uploads                   multipart, the file in the field "file": an image or a clip
                                        (:mod:`.uploads`, :mod:`.media`) -> 201 and the upload
    GET  /api/uploads/{id}              the file as uploaded; /poster: a clip's first frame (JPEG)
    POST /api/jobs                      {"method": "transfer" | "fast" | "video", "mode" (a video:
                                        "fast" | "optimisation"), "content": id, "styles": [id …] or
                                        "model": name, "options": {…}} -> 201 and the job, queued
    GET  /api/jobs, /api/jobs/{id}      every job (newest first), one job: state, place in the queue,
                                        settings, inputs, progress, losses, message and links
    GET  /api/jobs/{id}/result          PNG (a video job: MP4; ?download=1 to save it), /preview and
                                        /thumb JPEG
    POST /api/jobs/{id}/cancel          a waiting job is removed, the running one stopped (its
                                        latest image, or the frames made so far, kept)
    GET  /api/events                    server-sent events: a "hello" with every job, then each job
                                        whenever it changes (a comment line when quiet)

Every request first passes :class:`.guard.Guard` (own Host and Origin only); every refusal is one
JSON line ``{"error": "..."}`` with its status (:class:`.limits.Refused`), as the command line's
errors; the limits are :class:`.limits.Limits`; every name on disk is made by the server
(:mod:`.store`); at most :attr:`.limits.Limits.max_queue` jobs wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import asdict
from importlib import resources
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .. import __version__
from ..config import TransferConfig, check_options
from ..errors import ImpastoError
from .guard import Guard, address, own_hosts
from .limits import Limits, Refused
from .media import CLIPS, video_available
from .queue import AlreadyEnded, JobQueue, QueueFull, WorkerBroken, sse
from .store import MEDIA_TYPES, Store, new_id
from .uploads import keep_upload, read_upload
from .worker import ACCEPTED, METHODS, OPTIONS, VIDEO_MODES, build_config, kind_of

STATIC = Path(__file__).resolve().parent / "static"


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
    sized = "size" in given
    if kind in ("fast", "video-fast") and not sized:  # a network keeps the input's size: capped here
        given["size"] = min(max(content["width"], content["height"]), limits.fast_size, limits.max_size)
    try:
        config, video = build_config(method, given, mode) if method == "video" else (build_config(method, given), None)
        if kind == "video-fast" and sized:  # a video's --size has the range of impasto video's (TransferConfig)
            check_options(TransferConfig(size=config.size))
    except ImpastoError as exc:
        raise Refused(400, str(exc)) from None
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
              "styles": [s["id"] for s in styles], "model": models[model] if model else None, "options": given,
              "names": {"content": content["name"], "styles": [s["name"] for s in styles]}}
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
    from ..config import FastConfig, VideoConfig
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
