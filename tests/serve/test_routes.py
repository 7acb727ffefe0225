"""``impasto serve``'s HTTP API, in-process: the Starlette app of :func:`impasto.serve.routes.create_app`
on an event loop of its own (a thread), its lifespan entered, requests through httpx's ASGI
transport; the event stream read straight from the ASGI app (httpx's transport would wait for its
end). The jobs are real and tiny (32 px, a few iterations; the fast model at 32 px) on the real
worker process, started once for most of the file. Every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")

from impasto.config import TransferConfig  # noqa: E402
from impasto.serve.guard import own_hosts  # noqa: E402
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


@pytest.fixture(scope="module")
def one_thread_env():
    """The worker process (spawned) reads OMP_NUM_THREADS: one thread for these tiny images."""
    before = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    yield
    if before is None:
        os.environ.pop("OMP_NUM_THREADS", None)
    else:
        os.environ["OMP_NUM_THREADS"] = before


@pytest.fixture(scope="module")
def served(tmp_path_factory, one_thread_env):
    """The app with its worker: one for the module (the worker loads PyTorch and VGG-19 once)."""
    s = Served(tmp_path_factory.mktemp("served") / "data", Limits(preview_every=1, cancel_wait_s=30))
    yield s
    s.close()


@pytest.fixture
def bare(tmp_path):
    """An app without a worker (jobs stay queued) and with small limits, one per test."""
    s = Served(tmp_path / "data", Limits(max_upload_bytes=200_000, max_pixels=250_000, max_queue=3, max_size=256,
                                         ping_s=0.3, max_clip_frames=30, max_clip_seconds=2.0,
                                         max_clip_pixels=10_000), start_worker=False)
    yield s
    s.close()


@pytest.fixture(scope="module")
def pictures(served):
    """A photo and a painting uploaded to the module's app: their upload ids."""
    photo = served.upload("photo.png", png((64, 48)))
    painting = served.upload("painting.png", png((48, 48), (230, 200, 60)))
    assert photo.status_code == painting.status_code == 201, (photo.text, painting.text)
    return photo.json()["id"], painting.json()["id"]


def transfer_body(pictures, **options):
    return {"method": "transfer", "content": pictures[0], "styles": [pictures[1]],
            "options": {"size": 32, "iterations": 5, **options}}


# ------------------------------------------------------------------ info, uploads, limits

def test_info_gives_the_defaults_of_the_config_and_what_can_be_chosen(bare):
    r = bare.get("/api/info")
    assert r.status_code == 200
    info = r.json()
    defaults = TransferConfig()
    assert {k: v for k, v in info["defaults"].items() if k != "video"} == {
        "size": defaults.size, "ratio": defaults.ratio, "iterations": defaults.iterations, "color": defaults.color,
        "preset": None}
    assert info["choices"]["color"] == ["transfer", "luminance", "match"]
    assert info["choices"]["method"] == ["transfer", "fast", "video"]
    assert info["choices"]["video_mode"] == ["fast", "optimisation"]
    assert info["defaults"]["video"] == {"temporal_features": 0.7, "temporal": 0.1, "frame_iterations": 20,
                                         "temporal_weight": 30.0}
    assert (info["limits"]["max_clip_frames"], info["limits"]["max_clip_seconds"]) == (30, 2.0)
    assert "paper" in info["choices"]["preset"]
    assert "starry_night" in info["models"]
    assert info["limits"]["max_upload_bytes"] == 200_000 and info["limits"]["max_queue"] == 3
    kinds = {e["name"]: e["kind"] for e in info["examples"]}
    assert kinds["tubingen"] == "photo" and kinds["starry_night"] == "painting"
    example = next(e for e in info["examples"] if e["name"] == "tubingen")
    assert example["upload"] == "ex-tubingen"
    image = bare.get(example["url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert image.content == (Path(__file__).resolve().parents[2] / "examples" / "tubingen.jpg").read_bytes()


def test_an_upload_is_kept_under_a_name_the_server_makes(bare):
    data = png((40, 30))
    r = bare.upload("../../../etc/evil name.png", data)
    assert r.status_code == 201, r.text
    up = r.json()
    assert len(up["id"]) == 16 and int(up["id"], 16) >= 0
    assert (up["name"], up["width"], up["height"], up["url"]) == ("evil name.png", 40, 30, f"/api/uploads/{up['id']}")
    assert up["kind"] == "image"
    uploads = bare.data / "uploads"
    assert (uploads / f"{up['id']}.png").read_bytes() == data
    assert not any("evil" in name for name in files_under(bare.data.parent))
    got = bare.get(up["url"])
    assert got.status_code == 200 and got.headers["content-type"] == "image/png" and got.content == data


def test_a_client_name_is_only_shown():
    from impasto.serve.uploads import client_name

    assert client_name(b"C:\\Users\\me\\..\\x\x07y\x1b.png") == "xy.png"
    assert client_name("a/b/" + "n" * 300) == "n" * 100
    assert client_name(None) == client_name(b"../") == "upload"


def test_jpeg_and_webp_are_taken(bare):
    for fmt, mime in (("JPEG", "image/jpeg"), ("WEBP", "image/webp")):
        r = bare.upload(f"x.{fmt.lower()}", png((20, 10), fmt=fmt), mime)
        assert r.status_code == 201, r.text
        assert bare.get(r.json()["url"]).headers["content-type"] == mime


def _gif() -> bytes:
    out = io.BytesIO()
    Image.new("P", (8, 8)).save(out, "GIF")
    return out.getvalue()


@pytest.mark.parametrize("name, data, message", [
    ("notes.txt", b"a shopping list, not a picture\n", "notes.txt is not an image (PNG, JPEG, WebP) or a clip "
                                                       "(MP4, MOV, WebM, animated GIF or WebP)"),
    ("cut.png", png((64, 48))[:300], "cut.png is not an image (PNG, JPEG, WebP): this PNG file is damaged or truncated"),
    ("still.gif", _gif(), "still.gif is not an image (PNG, JPEG, WebP); it is a GIF of one frame (a GIF is taken as "
                          "a clip when it is animated)"),
    ("empty.png", b"", "empty.png is not an image (PNG, JPEG, WebP) or a clip (MP4, MOV, WebM, animated GIF or WebP): "
                       "the file is empty"),
])
def test_what_is_not_an_image_is_refused_and_nothing_is_written(bare, name, data, message):
    before = files_under(bare.data)
    r = bare.upload(name, data)
    assert (r.status_code, r.json()) == (415, {"error": message})
    assert files_under(bare.data) == before


def test_an_upload_over_the_size_limit_is_refused_while_it_arrives(bare):
    before = files_under(bare.data)
    r = bare.upload("big.png", os.urandom(200_001))
    assert (r.status_code, r.json()) == (413, {"error": "big.png is too large (the limit is 0.2 MB per file)"})

    async def chunks():  # no Content-Length: counted as it streams
        head = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="stream.png"\r\n'
                b"Content-Type: image/png\r\n\r\n")
        yield head
        for _ in range(30):
            yield b"\0" * 10_000
        yield b"\r\n--b--\r\n"

    r = bare.post("/api/uploads", content=chunks(), headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert (r.status_code, r.json()) == (413, {"error": "stream.png is too large (the limit is 0.2 MB per file)"})
    assert files_under(bare.data) == before


def test_an_image_over_the_pixel_limit_is_refused(bare):
    before = files_under(bare.data)
    r = bare.upload("wide.png", png((600, 500)))  # 300,000 pixels over 250,000, a few kB
    assert (r.status_code, r.json()) == (413, {"error": "wide.png is too large: 600x500 pixels, over the limit "
                                                        "of 0.25 million pixels"})
    assert files_under(bare.data) == before


def test_malformed_uploads_and_posts_are_refused(bare):
    before = files_under(bare.data)
    r = bare.post("/api/uploads", files={"picture": ("a.png", png((8, 8)), "image/png")})
    assert (r.status_code, r.json()["error"]) == (400, "the upload has no field 'file' (the image goes in a form "
                                                       "field named file)")
    r = bare.post("/api/uploads", content=b"x", headers={"Content-Type": "text/plain"})
    assert (r.status_code, r.json()["error"]) == (415, "a POST must be application/json or multipart/form-data")
    r = bare.post("/api/uploads", content=b"file=x", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415
    r = bare.post("/api/uploads", json={"file": "x"})
    assert (r.status_code, r.json()["error"]) == (415, "an upload is multipart/form-data, the image in the field 'file'")
    r = bare.post("/api/jobs", content=b"{not json", headers=JSON)
    assert (r.status_code, r.json()["error"]) == (400, "the body is not valid JSON")
    r = bare.post("/api/jobs", content=b'{"a": "' + b"x" * 70_000 + b'"}', headers=JSON)
    assert (r.status_code, r.json()["error"]) == (413, "the request is too large (over 65536 bytes)")
    assert files_under(bare.data) == before


@pytest.mark.parametrize("headers, status", [
    ({"Host": f"localhost:{PORT}"}, 200),
    ({"Host": f"[::1]:{PORT}"}, 200),
    ({"Host": f"127.0.0.1:{PORT}", "Origin": f"http://127.0.0.1:{PORT}"}, 200),
    ({"Host": f"evil.example:{PORT}"}, 403),         # DNS rebinding: a name of another site pointed here
    ({"Host": "127.0.0.1:9999"}, 403),               # not this server's port
    ({"Host": f"127.0.0.1:{PORT}", "Origin": "http://evil.example"}, 403),
    ({"Host": f"127.0.0.1:{PORT}", "Origin": "null"}, 403),
    ({"Host": f"127.0.0.1:{PORT}", "Origin": f"https://127.0.0.1:{PORT}"}, 403),
])
def test_only_its_own_host_and_origin_are_answered(bare, headers, status):
    r = bare.get("/api/info", headers=headers)
    assert r.status_code == status, r.text
    if status == 403:
        assert set(r.json()) == {"error"} and "only" in r.json()["error"]
    else:
        assert r.headers["x-frame-options"] == "DENY" and r.headers["cross-origin-resource-policy"] == "same-origin"


def test_a_post_from_another_origin_changes_nothing(bare):
    photo = bare.upload("p.png", png((32, 32))).json()["id"]
    before = files_under(bare.data)
    r = bare.post("/api/jobs", json={"method": "fast", "content": photo, "model": "starry_night"},
                  headers={"Origin": "http://evil.example"})
    assert r.status_code == 403
    r = bare.upload("q.png", png((32, 32)), headers={"Host": "evil.example"})
    assert r.status_code == 403
    assert files_under(bare.data) == before
    assert bare.get("/api/jobs").json() == {"jobs": []}
    s, messages = bare.events(lambda m: True, timeout=5, headers=[(b"host", b"evil.example")])
    assert s == 403


def test_every_interface_adds_the_machines_own_names():
    import socket

    assert f"{socket.gethostname().lower()}:{PORT}" in own_hosts("0.0.0.0", PORT)
    assert own_hosts("127.0.0.1", PORT) == {f"127.0.0.1:{PORT}", f"localhost:{PORT}", f"[::1]:{PORT}"}
    assert "[::1]:80" in own_hosts("::1", 80) and "localhost" in own_hosts("::1", 80)


def _uploads(s):
    return s.upload("p.png", png((32, 24))).json()["id"], s.upload("s.png", png((24, 24), (9, 9, 9))).json()["id"]


@pytest.mark.parametrize("change, status, message", [
    ({"method": "paint"}, 400, "method must be transfer, fast or video, not 'paint'"),
    ({"content": "../../etc/passwd"}, 400, "content: no such upload '../../etc/passwd' (upload the image first)"),
    ({"content": "0123456789abcdef"}, 400, "content: no such upload '0123456789abcdef' (upload the image first)"),
    ({"styles": []}, 400, "styles: give at least one painting (a list of upload ids)"),
    ({"styles": "x"}, 400, "styles: give at least one painting (a list of upload ids)"),
    ({"options": {"size": 3}}, 400, "--size must be from 16 to 65536, got 3"),
    ({"options": {"size": 2000}}, 400, "--size must be at most 256 on this server, got 2000"),
    ({"options": {"size": 64.5}}, 400, "--size must be int, got 64.5"),
    ({"options": {"ratio": "lots"}}, 400, "--ratio must be float, got 'lots'"),
    ({"options": {"ratio": -1}}, 400, "--ratio must be above 0, got -1"),
    ({"options": {"size": 32, "iterations": 10**6}}, 400, "--iterations must be at most 5000 on this server, got 1000000"),
    ({"options": {"color": "sepia"}}, 400, "--color must be one of transfer, luminance, match, not 'sepia'"),
    ({"options": {"preset": "nope"}}, 400, "unknown preset 'nope': choose from paper, balanced, keep-colors, ink "
                                           "(impasto presets lists them)"),
    ({"options": {"lr": 1}}, 400, "unknown option 'lr' (the options are preset, size, ratio, iterations, color, seed)"),
    ({"options": [1]}, 400, "options must be a JSON object"),
    ({"method": "fast", "model": "nope"}, 400, "model: no model 'nope' (these are: "),
    ({"method": "fast", "model": "../../etc/passwd"}, 400, "model: no model '../../etc/passwd'"),
    ({"method": "fast", "model": "starry_night", "options": {"color": "match"}}, 400,
     "--color must be one of transfer, luminance, not 'match'"),
])
def test_bad_jobs_are_refused_with_one_line_and_nothing_is_queued(bare, change, status, message):
    photo, style = _uploads(bare)
    body = {"method": "transfer", "content": photo, "styles": [style], "options": {"size": 32}, **change}
    before = files_under(bare.data)
    r = bare.submit(body)
    assert r.status_code == status
    assert r.json()["error"].startswith(message), r.json()
    assert files_under(bare.data) == before
    assert bare.get("/api/jobs").json() == {"jobs": []}


def test_unknown_jobs_and_files_are_404(bare):
    for path in ("/api/jobs/0123456789abcdef", "/api/jobs/..%2F..%2Fetc", "/api/jobs/0123456789abcdef/result",
                 "/api/uploads/0123456789abcdef", "/api/uploads/..%2Fjobs", "/static/..%2Fapp.py", "/api/nothing"):
        r = bare.get(path)
        assert r.status_code == 404, path
        assert "error" in r.json()
    assert bare.post("/api/jobs/0123456789abcdef/cancel", json={}).status_code == 404
    assert (bare.post("/api/info", json={}).status_code, bare.post("/api/info", json={}).json()) == (
        405, {"error": "method not allowed"})


def test_the_page_is_served(tmp_path):
    from impasto.serve.routes import STATIC

    if not (STATIC / "index.html").is_file():
        pytest.skip("the page's files are not in this checkout yet")
    s = Served(tmp_path / "data", start_worker=False)
    try:
        r = s.get("/")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert s.get("/static/app.js").status_code == 200
    finally:
        s.close()


# ------------------------------------------------------------------ the queue without a worker

def test_jobs_wait_in_order_and_the_queue_limit_holds(bare):
    photo, style = _uploads(bare)
    body = {"method": "transfer", "content": photo, "styles": [style], "options": {"size": 32, "iterations": 2}}
    made = [bare.submit(body) for _ in range(3)]
    assert [(r.status_code, r.json()["state"], r.json()["position"]) for r in made] == [
        (201, "queued", 1), (201, "queued", 2), (201, "queued", 3)]
    ids = [r.json()["id"] for r in made]
    full = bare.submit(body)
    assert (full.status_code, full.json()) == (429, {"error": "the queue is full (3 jobs waiting); try again when "
                                                              "one has finished"})
    listed = bare.get("/api/jobs").json()["jobs"]
    assert [j["id"] for j in listed] == ids[::-1]          # newest first
    assert listed[0]["settings"] == {**body, "options": {"size": 32, "iterations": 2}}
    assert listed[0]["inputs"] == {"content": f"/api/uploads/{photo}", "styles": [f"/api/uploads/{style}"]}

    r = bare.post(f"/api/jobs/{ids[1]}/cancel", json={})
    assert r.status_code == 200
    assert (r.json()["state"], r.json()["position"], r.json()["started"]) == ("cancelled", None, None)
    assert bare.get(f"/api/jobs/{ids[2]}").json()["position"] == 2
    assert bare.post(f"/api/jobs/{ids[1]}/cancel", json={}).status_code == 409
    record = json.loads((bare.data / "jobs" / ids[1] / "job.json").read_text())
    assert record["state"] == "cancelled"
    assert bare.submit(body).status_code == 201            # room again


def test_the_event_stream_says_hello_pings_and_tells_every_change(bare):
    photo, style = _uploads(bare)
    body = {"method": "transfer", "content": photo, "styles": [style], "options": {"size": 32}}
    first = bare.submit(body).json()["id"]
    status, messages = bare.events(lambda m: any(x.get("comment") == "ping" for x in m), timeout=10)
    assert status == 200
    assert messages[0]["type"] == "hello" and [j["id"] for j in messages[0]["jobs"]] == [first]

    async def submit_while_listening():
        listening = asyncio.create_task(read_events(bare.app, lambda m: bool(second) and ended(second[0])(m), 10))
        await asyncio.sleep(0.1)
        r = await bare.client.post("/api/jobs", json=body)
        second.append(r.json()["id"])
        await bare.client.post(f"/api/jobs/{second[0]}/cancel", json={})
        return await listening

    second: list = []
    _, messages = bare.call(submit_while_listening())
    states = [(j["state"], j["position"]) for j in job_events(messages, second[0])]
    # (a stream keeps only the latest event of each job it has not sent yet: "queued" may be skipped)
    assert states[-1] == ("cancelled", None) and set(states) <= {("queued", 2), ("cancelled", None)}


def test_a_slow_page_skips_stale_events_and_never_holds_the_server_up():
    from impasto.serve.queue import Hub

    async def run():
        hub = Hub()
        slow = hub.subscribe()
        for done in range(10_000):                      # a job's progress while the page reads nothing
            hub.publish("a", {"job": "a", "done": done})
        hub.publish("b", {"job": "b", "state": "done"})
        hub.publish("a", {"job": "a", "state": "done"})
        got = [await slow.next(1), await slow.next(1)]
        with pytest.raises(asyncio.TimeoutError):
            await slow.next(0.05)
        hub.close()
        return got, await slow.next(1)

    got, after_close = asyncio.run(run())
    assert [json.loads(text[6:]) for text in got] == [{"job": "b", "state": "done"}, {"job": "a", "state": "done"}]
    assert after_close is None


def test_a_restarted_server_marks_what_it_left_running_and_keeps_the_history(tmp_path):
    """As a killed server leaves it: a job.json still "running" with its live image, one "queued"."""
    data = tmp_path / "data"
    s = Served(data, start_worker=False)
    photo, style = _uploads(s)
    body = {"method": "transfer", "content": photo, "styles": [style], "options": {"size": 32}}
    running, waiting = s.submit(body).json()["id"], s.submit(body).json()["id"]
    s.close()
    for jid, state in ((running, "running"), (waiting, "queued")):
        path = data / "jobs" / jid / "job.json"
        record = json.loads(path.read_text())
        record.update(state=state, message=None, ended=None, result=False, thumb=False)
        path.write_text(json.dumps(record))
    Image.new("RGB", (32, 24), (10, 200, 30)).save(data / "jobs" / running / "preview.jpg")

    s = Served(data, start_worker=False)
    try:
        jobs = {j["id"]: j for j in s.get("/api/jobs").json()["jobs"]}
        assert jobs[running]["state"] == jobs[waiting]["state"] == "interrupted"
        assert jobs[running]["message"] == "the server stopped while this job was running"
        assert jobs[waiting]["message"] == "the server stopped while this job was waiting"
        assert jobs[running]["result"] == f"/api/jobs/{running}/result" and jobs[waiting]["result"] is None
        image = Image.open(io.BytesIO(s.get(jobs[running]["result"]).content))
        assert image.format == "PNG" and image.size == (32, 24) and image.getpixel((16, 12))[1] > 150
        assert s.get(jobs[running]["thumb"]).headers["content-type"] == "image/jpeg"
        assert json.loads((data / "jobs" / running / "job.json").read_text())["state"] == "interrupted"
        assert s.post(f"/api/jobs/{running}/cancel", json={}).status_code == 409
    finally:
        s.close()


# ------------------------------------------------------------------ real jobs on the worker

def test_a_transfer_job_streams_its_progress_and_keeps_its_result(served, pictures):
    async def run():
        listening = asyncio.create_task(read_events(served.app, lambda m: made and ended(made[0])(m), JOB_S))
        await asyncio.sleep(0.05)
        r = await served.client.post("/api/jobs", json=transfer_body(pictures))
        assert r.status_code == 201, r.text
        made.append(r.json()["id"])
        return r.json(), await listening

    made: list = []
    answer, (_, messages) = served.call(run(), JOB_S + 10)
    jid = answer["id"]
    assert (answer["state"], answer["position"]) == ("queued", 1)
    seen = job_events(messages, jid)
    states = [j["state"] for j in seen]
    assert states[0] == "queued" and states[-1] == "done" and "running" in states
    progress = [j["progress"]["done"] for j in seen if j["progress"] and j["state"] == "running"]
    assert progress == sorted(progress) and progress[-1] == 5
    assert {j["progress"]["total"] for j in seen if j["progress"]} == {5}
    totals = [j["losses"]["total"] for j in seen if j["losses"]]
    assert totals[-1] < totals[0], "the loss did not fall"
    previews = [j["preview"] for j in seen if j["preview"]]
    assert len(set(previews)) >= 2 and previews[-1].endswith("?v=5")

    job = seen[-1]
    assert job["result"] == f"/api/jobs/{jid}/result" and job["message"] == "painted at 32x24"
    folder = served.data / "jobs" / jid
    assert {"job.json", "content.png", "style-1.png", "preview.jpg", "result.png", "thumb.jpg"} <= set(
        os.listdir(folder))
    record = json.loads((folder / "job.json").read_text())
    assert record["state"] == "done" and record["losses"]["total"] == totals[-1]
    r = served.get(job["result"])
    assert r.headers["content-type"] == "image/png" and Image.open(io.BytesIO(r.content)).size == (32, 24)
    d = served.get(job["result"] + "?download=1")
    assert d.headers["content-disposition"] == f'attachment; filename="impasto-{jid}.png"'
    assert served.get(job["thumb"]).headers["content-type"] == "image/jpeg"
    assert served.get(job["preview"]).headers["content-type"] == "image/jpeg"


def test_a_fast_job_paints_with_a_bundled_model(served, pictures):
    r = served.submit({"method": "fast", "content": pictures[0], "model": "starry_night",
                       "options": {"size": 32, "ratio": 0.01, "seed": 3}})
    assert r.status_code == 201, r.text
    job = served.wait(r.json()["id"], lambda j: j["state"] not in ("queued", "running"), "the fast job")
    assert job["state"] == "done", job
    assert job["progress"]["unit"] == "img" and job["settings"]["options"] == {"size": 32, "ratio": 0.01, "seed": 3}
    assert Image.open(io.BytesIO(served.get(job["result"]).content)).size == (32, 24)


def test_a_model_the_user_trained_is_offered_and_paints(served, pictures):
    """A model put in DATA/models (impasto train -o DATA/models/NAME.pt) is listed without a restart
    and runs; a file there with an unsafe name is not offered."""
    import shutil

    from impasto.fast.model import resolve_model_path

    models = served.data / "models"
    shutil.copy(resolve_model_path("starry_night_small"), models / "mine.pt")
    (models / "-bad name.pt").write_bytes(b"")
    listed = served.get("/api/info").json()["models"]
    assert "mine (yours)" in listed and "starry_night" in listed
    assert not any("bad" in m for m in listed)
    r = served.submit({"method": "fast", "content": pictures[0], "model": "mine (yours)", "options": {"size": 32}})
    assert r.status_code == 201, r.text
    job = served.wait(r.json()["id"], lambda j: j["state"] not in ("queued", "running"), "the fast job")
    assert job["state"] == "done", job
    assert job["settings"]["model"] == "mine (yours)"  # what "use these settings again" sends back
    assert Image.open(io.BytesIO(served.get(job["result"]).content)).size == (32, 24)


def test_cancel_removes_a_waiting_job_and_stops_the_running_one_keeping_its_image(served, pictures):
    long = served.submit(transfer_body(pictures, iterations=5000)).json()["id"]
    waiting = served.submit(transfer_body(pictures)).json()
    assert waiting["position"] == 1
    served.wait(long, lambda j: j["state"] == "running" and (j["progress"] or {}).get("done", 0) >= 3,
                "the long job to run")

    # A page that connects now (a reload) is told the running job and then its progress.
    _, messages = served.events(lambda m: len(job_events(m, long)) >= 2, timeout=60)
    hello = {j["id"]: j for j in messages[0]["jobs"]}
    assert hello[long]["state"] == "running" and hello[waiting["id"]]["position"] == 1
    assert job_events(messages, long)[-1]["progress"]["done"] > hello[long]["progress"]["done"]

    r = served.post(f"/api/jobs/{waiting['id']}/cancel", json={})
    assert r.status_code == 200 and (r.json()["state"], r.json()["started"]) == ("cancelled", None)
    assert served.get(f"/api/jobs/{long}").json()["state"] == "running"

    r = served.post(f"/api/jobs/{long}/cancel", json={})
    assert r.status_code == 200
    job = r.json()
    assert job["state"] == "cancelled", job
    done = job["progress"]["done"]
    assert 3 <= done < 5000 and job["message"] == f"stopped at iteration {done} of 5000; the latest image is kept"
    assert Image.open(io.BytesIO(served.get(job["result"]).content)).size == (32, 24)
    assert (served.data / "jobs" / long / "result.png").is_file()
    assert served.post(f"/api/jobs/{long}/cancel", json={}).status_code == 409
    assert served.get(f"/api/jobs/{waiting['id']}").json()["started"] is None


def test_a_worker_that_dies_fails_its_job_and_a_new_one_takes_the_next(served, pictures):
    long = served.submit(transfer_body(pictures, iterations=5000)).json()["id"]
    served.wait(long, lambda j: (j["progress"] or {}).get("done", 0) >= 2, "the long job to run")
    os.kill(served.app.state.jobs.worker.pid, signal.SIGKILL)
    job = served.wait(long, lambda j: j["state"] != "running", "the job of the killed worker")
    assert job["state"] == "failed"
    assert job["message"] == "the worker process stopped (exit code -9) while running this job"
    nxt = served.submit(transfer_body(pictures, iterations=2)).json()["id"]
    assert served.wait(nxt, lambda j: j["state"] not in ("queued", "running"), "a job on the new worker")[
        "state"] == "done"


def test_stopping_the_server_interrupts_the_running_job_and_a_new_one_shows_it(tmp_path, one_thread_env):
    data = tmp_path / "data"
    s = Served(data, Limits(preview_every=1))
    try:
        photo, style = _uploads(s)
        body = {"method": "transfer", "content": photo, "styles": [style], "options": {"size": 32, "iterations": 5000}}
        running = s.submit(body).json()["id"]
        waiting = s.submit(body).json()["id"]
        s.wait(running, lambda j: j["preview"] is not None, "a live image")
    finally:
        s.close()
    s = Served(data, start_worker=False)
    try:
        jobs = {j["id"]: j for j in s.get("/api/jobs").json()["jobs"]}
        assert (jobs[running]["state"], jobs[waiting]["state"]) == ("interrupted", "interrupted")
        assert jobs[running]["progress"]["total"] == 5000
        assert Image.open(io.BytesIO(s.get(jobs[running]["result"]).content)).size == (32, 24)
        assert jobs[waiting]["result"] is None
    finally:
        s.close()


# ------------------------------------------------------------------ clips and video jobs

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


def test_clips_are_taken_as_their_own_kind_of_upload(bare):
    data = clip()
    r = bare.upload("walk.mp4", data, "video/mp4")
    assert r.status_code == 201, r.text
    up = r.json()
    assert {k: up[k] for k in ("kind", "name", "width", "height", "frames", "fps", "duration", "audio")} == {
        "kind": "clip", "name": "walk.mp4", "width": 48, "height": 32, "frames": 6, "fps": 12.0, "duration": 0.5,
        "audio": False}
    got = bare.get(up["url"])
    assert got.headers["content-type"] == "video/mp4" and got.content == data
    poster = bare.get(up["poster"])
    assert poster.headers["content-type"] == "image/jpeg" and Image.open(io.BytesIO(poster.content)).size == (48, 32)
    assert (bare.data / "uploads" / f"{up['id']}.mp4").is_file()
    webm = bare.upload("walk.webm", clip(fmt="webm", codec="libvpx-vp9"), "video/webm").json()
    assert (webm["kind"], webm["frames"]) == ("clip", 6)
    animated = bare.upload("loop.gif", gif(), "image/gif").json()
    assert (animated["kind"], animated["frames"], animated["fps"], animated["width"]) == ("clip", 4, 20.0, 20)
    assert bare.get(animated["url"]).headers["content-type"] == "image/gif"
    assert bare.get(f"/api/uploads/{bare.upload('p.png', png((8, 8))).json()['id']}/poster").status_code == 404


def _avi() -> bytes:
    return clip(fmt="avi", codec="mpeg4")


@pytest.mark.parametrize("name, make, status, message", [
    ("long.mp4", lambda: clip(frames=31, fps=25), 413,
     "long.mp4 is too long: more than 30 frames (the limit is 30 frames per clip)"),
    ("slow.mp4", lambda: clip(frames=6, fps=2), 413, "slow.mp4 is too long: more than 2 s (the limit is 2 s per clip)"),
    ("long.gif", lambda: gif(frames=31), 413, "long.gif is too long: 31 frames (the limit is 30 frames per clip)"),
    ("wide.mp4", lambda: clip(frames=2, size=(128, 96)), 413,
     "wide.mp4 is too large: 128x96 pixels a frame, over the limit of 0.01 million pixels per frame of a clip"),
    ("big.mp4", lambda: os.urandom(200_001), 413, "big.mp4 is too large (the limit is 0.2 MB per file)"),
    ("old.avi", _avi, 415, "old.avi is a video in the avi format; a clip is MP4, MOV, WebM, animated GIF or WebP"),
    ("cut.mp4", lambda: clip()[:400], 415, "cut.mp4 is not an image (PNG, JPEG, WebP) or a clip (MP4, MOV, WebM, "
                                          "animated GIF or WebP)"),
    # its index whole, its last packets gone: the video decodes, the sound does not (impasto video refuses it too)
    ("short.mp4", lambda: (lambda data: data[:int(len(data) * 0.8)])(clip(frames=12, audio=True, faststart=True)), 415,
     "short.mp4: cannot decode its audio (aac): Invalid data found when processing input"),
])
def test_clips_too_long_too_large_or_not_taken_are_refused_and_nothing_is_written(bare, name, make, status, message):
    before = files_under(bare.data)
    r = bare.upload(name, make(), "video/mp4")
    assert (r.status_code, r.json()) == (status, {"error": message})
    assert files_under(bare.data) == before


@pytest.mark.parametrize("change, message", [
    ({"mode": "slow"}, "mode must be fast or optimisation for a video, not 'slow'"),
    ({"content": "PHOTO"}, "content: p.png is an image; a video job takes a clip (MP4, MOV, WebM, animated GIF or WebP)"),
    ({"options": {"temporal": 2}}, "--temporal must be from 0 to 1, got 2"),
    ({"options": {"temporal": "x"}}, "--temporal must be float, got 'x'"),
    ({"options": {"size": 2000}}, "--size must be at most 256 on this server, got 2000"),
    ({"options": {"size": 8}}, "--size must be from 16 to 65536, got 8"),          # as impasto video --model
    ({"options": {"brush": 1}}, "unknown option 'brush' (the options are preset, size, ratio, iterations, color, seed, "
                                "temporal_features, temporal, frame_iterations, temporal_weight)"),
    ({"options": {"temporal_features": -0.5}}, "--temporal-features must be from 0 to 1, got -0.5"),
    ({"mode": "optimisation", "styles": ["PHOTO"], "options": {"frame_iterations": -1}},
     "--frame-iterations must be from 0 to 10000000, got -1"),
    ({"mode": "optimisation", "styles": ["PHOTO"], "options": {"size": 32, "frame_iterations": 6000}},
     "--frame-iterations must be at most 5000 on this server, got 6000"),
    ({"mode": "optimisation", "styles": ["CLIP"]}, "styles: walk.mp4 is a clip; a clip is painted by the method video"),
    ({"method": "transfer", "styles": ["PHOTO"]}, "content: walk.mp4 is a clip; a clip is painted by the method video"),
])
def test_bad_video_jobs_are_refused_with_one_line(bare, change, message):
    photo = bare.upload("p.png", png((32, 24))).json()["id"]
    walk = bare.upload("walk.mp4", clip(frames=3), "video/mp4").json()["id"]
    ids = {"PHOTO": photo, "CLIP": walk}
    body = {"method": "video", "mode": "fast", "content": walk, "model": "starry_night", "options": {"size": 32}}
    body.update({k: ([ids.get(x, x) for x in v] if isinstance(v, list) else ids.get(v, v) if isinstance(v, str) else v)
                 for k, v in change.items()})
    before = files_under(bare.data)
    r = bare.submit(body)
    assert (r.status_code, r.json()["error"]) == (400, message)
    assert files_under(bare.data) == before


def test_a_restarted_server_marks_a_running_video_job_keeping_its_last_frame_as_the_thumb(tmp_path):
    data = tmp_path / "data"
    s = Served(data, start_worker=False)
    walk = s.upload("walk.mp4", clip(frames=3), "video/mp4").json()["id"]
    jid = s.submit({"method": "video", "mode": "fast", "content": walk, "model": "starry_night"}).json()["id"]
    s.close()
    folder = data / "jobs" / jid
    record = json.loads((folder / "job.json").read_text())
    record.update(state="running")
    (folder / "job.json").write_text(json.dumps(record))
    Image.new("RGB", (48, 32), (10, 200, 30)).save(folder / "preview.jpg")
    (folder / "result.mp4.frames-0123456789abcdef").mkdir()
    s = Served(data, start_worker=False)
    try:
        job = s.get(f"/api/jobs/{jid}").json()
        assert (job["state"], job["result"], job["result_type"]) == ("interrupted", None, None)
        assert job["thumb"] == f"/api/jobs/{jid}/thumb" and job["inputs"]["poster"] == f"/api/uploads/{walk}/poster"
        assert not list(folder.glob("result.mp4.frames-*"))
    finally:
        s.close()


def test_a_fast_video_job_paints_every_frame_and_keeps_an_mp4_browsers_play(served):
    up = served.upload("walk.mp4", clip(frames=6, audio=True), "video/mp4").json()
    assert (up["kind"], up["frames"], up["audio"]) == ("clip", 6, True)
    r = served.submit({"method": "video", "mode": "fast", "content": up["id"], "model": "starry_night",
                       "options": {"size": 45, "temporal": 0.5, "temporal_features": 0.6, "color": "luminance"}})
    assert r.status_code == 201, r.text
    jid = r.json()["id"]
    job = served.wait(jid, lambda j: j["state"] not in ("queued", "running"), "the fast video job")
    assert job["state"] == "done", job
    assert job["message"] == "painted 6 frames at 44x30, 12 fps, with the clip's audio"
    p = job["progress"]
    assert (p["unit"], p["done"], p["total"], p["frames"], p["frame"]) == ("frame", 6, 6, 6, 6)
    assert p["stage"].startswith("frame 6/6") and p["fpm"] > 0
    assert int(job["preview"].rsplit("v=", 1)[1]) >= 4, "the frames did not arrive as previews"   # frames 1..5
    assert job["result_type"] == "video/mp4" and job["mode"] == "fast"
    result = served.get(job["result"])
    assert result.headers["content-type"] == "video/mp4"
    assert decoded(result.content) == {"codec": "h264", "pix_fmt": "yuv420p", "size": (44, 30), "frames": 6,
                                       "audio": True, "format": "mov,mp4,m4a,3gp,3g2,mj2"}
    d = served.get(job["result"] + "?download=1")
    assert d.headers["content-disposition"] == f'attachment; filename="impasto-{jid}.mp4"'
    assert Image.open(io.BytesIO(served.get(job["thumb"]).content)).size == (44, 30)
    assert Image.open(io.BytesIO(served.get(job["preview"]).content)).size == (44, 30)
    folder = served.data / "jobs" / jid
    assert not list(folder.glob("*.frames-*")), "the kept frames were not removed"
    assert json.loads((folder / "job.json").read_text())["settings"]["mode"] == "fast"


def test_an_optimisation_video_job_paints_a_clip_after_paintings(served, pictures):
    walk = served.upload("walk.mp4", clip(frames=3), "video/mp4").json()["id"]
    r = served.submit({"method": "video", "mode": "optimisation", "content": walk, "styles": [pictures[1]],
                       "options": {"size": 32, "iterations": 2, "frame_iterations": 2, "temporal_weight": 10}})
    assert r.status_code == 201, r.text
    job = served.wait(r.json()["id"], lambda j: j["state"] not in ("queued", "running"), "the optimisation video")
    assert job["state"] == "done", job
    assert (job["progress"]["done"], job["progress"]["total"], job["progress"]["unit"]) == (6, 6, "it")
    assert decoded(served.get(job["result"]).content)["frames"] == 3
    assert decoded(served.get(job["result"]).content)["size"] == (32, 20)          # 32x21, cropped to even


def test_cancelling_a_running_video_job_keeps_the_frames_made_so_far_as_a_shorter_mp4(served, pictures):
    walk = served.upload("walk.mp4", clip(frames=3), "video/mp4").json()["id"]
    jid = served.submit({"method": "video", "mode": "optimisation", "content": walk, "styles": [pictures[1]],
                         "options": {"size": 32, "iterations": 2, "frame_iterations": 5000}}).json()["id"]
    served.wait(jid, lambda j: j["preview"] is not None and (j["progress"] or {}).get("frame") == 2,
                "the first frame to be finished")
    r = served.post(f"/api/jobs/{jid}/cancel", json={})
    assert r.status_code == 200
    job = r.json()
    assert job["state"] == "cancelled", job
    assert job["message"] == "stopped at frame 2 of 3; the 1 frame made so far is kept as a shorter video"
    assert job["result_type"] == "video/mp4"
    assert decoded(served.get(job["result"]).content)["frames"] == 1
    assert served.get(job["thumb"]).status_code == 200
    assert not list((served.data / "jobs" / jid).glob("*.frames-*"))


def test_a_video_job_that_fails_in_the_worker_names_the_upload_never_a_server_path(served):
    """An upload checked when it came, then damaged on disk before its job ran: the worker's read of
    the clip fails, and the page is told the client's name for it, not where the server keeps it."""
    up = served.upload("walk.mp4", clip(frames=12, audio=True, faststart=True), "video/mp4").json()
    assert up["kind"] == "clip", up
    kept = served.data / "uploads" / f"{up['id']}.mp4"
    with open(kept, "r+b") as f:  # in place: the job's input is a link to it
        f.truncate(int(kept.stat().st_size * 0.8))
    r = served.submit({"method": "video", "mode": "fast", "content": up["id"], "model": "starry_night",
                       "options": {"size": 32}})
    assert r.status_code == 201, r.text
    job = served.wait(r.json()["id"], lambda j: j["state"] not in ("queued", "running"), "the damaged video job")
    assert job["state"] == "failed", job
    assert job["message"].startswith("walk.mp4: cannot decode its audio (aac)"), job["message"]
    assert str(served.data) not in job["message"] and "content.mp4" not in job["message"]


def test_a_workers_message_shows_no_path_of_the_servers(tmp_path):
    from impasto.serve.worker import public_message

    folder = tmp_path / "data" / "jobs" / "0123456789abcdef"
    names = {"content.png": "my photo.png", "style-1.jpg": "monet.jpg"}
    assert public_message(f"{folder / 'content.png'}: unreadable image", folder, names) == "my photo.png: unreadable image"
    assert public_message(f"{folder / 'style-1.jpg'} and {folder / 'result.mp4'}: no room", folder, names) == (
        "monet.jpg and result.mp4: no room")
    assert public_message(f"cannot write {folder}", folder, names) == "cannot write the job's folder"
    assert public_message(f"no model {tmp_path / 'data' / 'models' / 'x.pt'}", folder, names) == "no model models/x.pt"
    assert public_message("painted at 32x24", folder, names) == "painted at 32x24"
    assert public_message(None, folder, names) is None


# ------------------------------------------------------------------ the command

def test_the_command_refuses_a_port_in_use_and_a_bad_port_with_one_line(tmp_path):
    import socket

    from conftest import run_cli

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, out, err = run_cli("serve", "--port", port, "--data", tmp_path / "data")
    assert (code, err) == (2, f"impasto: error: --port {port}: already in use on 127.0.0.1; choose another port\n")
    code, out, err = run_cli("serve", "--port", 70000, "--data", tmp_path / "data")
    assert (code, err) == (2, "impasto: error: --port must be from 1 to 65535, got 70000\n")


def test_loopback_addresses_are_told_from_others():
    from impasto.serve.guard import is_loopback

    assert all(map(is_loopback, ("127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost")))
    assert not any(map(is_loopback, ("0.0.0.0", "::", "192.168.1.5", "example.com")))
