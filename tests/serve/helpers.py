"""The harness of the serve tests (tests/serve/test_*.py import it; tests/serve/conftest.py builds its
fixtures on it): :func:`impasto.serve.routes.create_app`'s Starlette app on an event loop of its own (a
thread), its lifespan entered, requests through httpx's ASGI transport; the event stream read straight
from the ASGI app (httpx's transport would wait for its end); the pictures and clips the tests upload.
Every wait has a deadline. (A module of helpers, not the tests of a module of the package.)
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import threading
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")

from impasto.serve.limits import Limits  # noqa: E402
from impasto.serve.routes import create_app  # noqa: E402

PORT = 8765
BASE = f"http://127.0.0.1:{PORT}"
JSON = {"Content-Type": "application/json"}
JOB_S = 120          # a job from submission to its end (the first one starts the worker and loads VGG-19)
CALL_S = 30          # one request


# ------------------------------------------------------------------ an app on a loop of its own

class Served:
    """``create_app(data, ...)`` running on an event loop in a thread, its lifespan entered."""

    def __init__(self, data: Path, limits: Limits | None = None, start_worker: bool = True, host: str = "127.0.0.1"):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.data = data
        self.app = create_app(data, host=host, port=PORT, limits=limits, start_worker=start_worker)
        self.stack = contextlib.AsyncExitStack()
        self.call(self._enter())

    async def _enter(self):
        await self.stack.enter_async_context(self.app.router.lifespan_context(self.app))
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE)

    def call(self, coro, timeout: float = CALL_S):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def get(self, path, **kw) -> httpx.Response:
        return self.call(self.client.get(path, **kw))

    def post(self, path, **kw) -> httpx.Response:
        return self.call(self.client.post(path, **kw))

    def upload(self, name: str, data: bytes, mime: str = "image/png", **kw) -> httpx.Response:
        return self.post("/api/uploads", files={"file": (name, data, mime)}, **kw)

    def submit(self, body: dict) -> httpx.Response:
        return self.post("/api/jobs", json=body)

    def events(self, until, timeout: float = JOB_S, headers=None):
        """The event stream's status and messages until ``until(messages)`` is true (or it ends)."""
        return self.call(read_events(self.app, until, timeout, headers), timeout + 5)

    def wait(self, jid: str, predicate, what: str, timeout: float = JOB_S) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(f"/api/jobs/{jid}").json()
            if predicate(job):
                return job
            if time.monotonic() > deadline:
                pytest.fail(f"timed out after {timeout} s waiting for {what}: {job}")
            time.sleep(0.05)

    def close(self):
        async def leave():
            await self.client.aclose()
            await self.stack.aclose()

        try:
            self.call(leave())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


async def read_events(app, until, timeout: float, headers=None):
    """GET /api/events straight on the ASGI app: (status, messages), each message a JSON object or
    ``{"comment": text}``; stops when ``until(messages)`` holds, the stream ends or ``timeout``."""
    chunks: asyncio.Queue = asyncio.Queue()
    gone = asyncio.Event()

    async def receive():
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message):
        await chunks.put(message)

    raw = headers or [(b"host", f"127.0.0.1:{PORT}".encode())]
    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": "/api/events", "raw_path": b"/api/events",
             "query_string": b"", "root_path": "", "headers": raw, "client": ("127.0.0.1", 50000),
             "server": ("127.0.0.1", PORT)}
    task = asyncio.create_task(app(scope, receive, send))
    messages, buffer, status = [], "", None
    try:
        async with asyncio.timeout(timeout):
            while True:
                message = await chunks.get()
                if message["type"] == "http.response.start":
                    status = message["status"]
                    continue
                buffer += message.get("body", b"").decode()
                while "\n\n" in buffer:
                    block, buffer = buffer.split("\n\n", 1)
                    messages.append(json.loads(block[6:]) if block.startswith("data: ") else {"comment": block[2:]})
                    if until(messages):
                        return status, messages
                if not message.get("more_body"):
                    return status, messages
    except TimeoutError:
        pytest.fail(f"the event stream did not show what was waited for within {timeout} s: {messages[-3:]}")
    finally:
        gone.set()
        task.cancel()
        with contextlib.suppress(BaseException):
            await task


def job_events(messages, jid):
    return [m["job"] for m in messages if m.get("type") == "job" and m["job"]["id"] == jid]


def ended(jid):
    return lambda messages: any(j["state"] not in ("queued", "running") for j in job_events(messages, jid))


# ------------------------------------------------------------------ pictures

def png(size, colour=(120, 160, 200), fmt="PNG") -> bytes:
    img = Image.new("RGB", size, colour)
    d = ImageDraw.Draw(img)
    w, h = size
    d.ellipse((w // 4, h // 4, 3 * w // 4, 3 * h // 4), fill=(200, 90, 40))
    for x in range(0, w, 6):
        d.line((x, 0, x + h, h), fill=(30, 40, 90), width=2)
    out = io.BytesIO()
    img.save(out, fmt)
    return out.getvalue()


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def transfer_body(pictures, **options):
    return {"method": "transfer", "content": pictures[0], "styles": [pictures[1]],
            "options": {"size": 32, "iterations": 5, **options}}


def _uploads(s):
    return s.upload("p.png", png((32, 24))).json()["id"], s.upload("s.png", png((24, 24), (9, 9, 9))).json()["id"]


# ------------------------------------------------------------------ clips

def clip(frames=6, size=(48, 32), fps=12, fmt="mp4", codec="libx264", audio=False, faststart=False) -> bytes:
    """A tiny clip made with PyAV: a bright bar moving right over a gradient (and a tone);
    ``faststart``: its index before its packets, as a file meant for the web is written."""
    import av
    import numpy as np

    import tempfile

    w, h = size
    if faststart:  # FFmpeg moves the index by rewriting a file
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"clip.{fmt}"
            path.write_bytes(clip(frames, size, fps, fmt, codec, audio))
            with av.open(str(path)) as source, av.open(str(path.with_name("fast." + fmt)), "w", format=fmt,
                                                       options={"movflags": "+faststart"}) as out:
                for stream in source.streams:
                    out.add_stream_from_template(stream)
                for packet in source.demux():
                    if packet.dts is not None:
                        packet.stream = out.streams[packet.stream.index]
                        out.mux(packet)
            return path.with_name("fast." + fmt).read_bytes()
    out = io.BytesIO()
    with av.open(out, "w", format=fmt) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        sound = None
        if audio:
            sound = container.add_stream("aac", rate=16000)
            sound.codec_context.layout = "mono"
        for i in range(frames):
            a = np.zeros((h, w, 3), np.uint8)
            a[..., 0] = np.linspace(20, 200, w, dtype=np.uint8)[None]
            a[..., 2] = 120
            x = (i * 4) % max(1, w - 8)
            a[:, x:x + 8] = (250, 230, 40)
            for packet in stream.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                container.mux(packet)
        if sound is not None:
            n = int(16000 * frames / fps)
            tone = (0.2 * np.sin(np.arange(n) * 2 * np.pi * 440 / 16000)).astype(np.float32)[None]
            for start in range(0, n, 1024):
                chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(tone[:, start:start + 1024]), format="fltp",
                                                   layout="mono")
                chunk.sample_rate, chunk.pts = 16000, start
                for packet in sound.encode(chunk):
                    container.mux(packet)
            for packet in sound.encode(None):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def gif(frames=4, size=(20, 12)) -> bytes:
    images = [Image.new("RGB", size, ((40 * i) % 256, 90, (7 * i) % 256)) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=50, loop=0)
    return out.getvalue()


def decoded(data: bytes) -> dict:
    """What a player sees of an MP4: codec, pixel format, size, frame count, audio."""
    import av

    with av.open(io.BytesIO(data)) as container:
        vs = container.streams.video[0]
        frames = list(container.decode(vs))
        return {"codec": vs.codec_context.name, "pix_fmt": vs.codec_context.pix_fmt,
                "size": (frames[0].width, frames[0].height), "frames": len(frames),
                "audio": bool(container.streams.audio), "format": container.format.name}
