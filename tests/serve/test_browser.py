"""The page of ``impasto serve`` in a real browser: Debian's Chromium, headless, driven by Playwright.

The server is the real one (``python -m impasto serve --port P --data TMP``, a subprocess on
127.0.0.1); the pictures are tiny PNGs made here (and one short MP4, made with PyAV), so every job
is small (64 px) and the file runs in
well under two minutes on two slow cores. Every wait has a deadline.

``python tests/test_serve_browser.py docs/images/serve.png`` takes the README's screenshot from a
real session with the bundled examples instead (larger, slower: a minute or a few).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from impasto.config import VideoConfig

CHROMIUM = os.environ.get("IMPASTO_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
SERVER_START_S = 90          # a cold start imports torch and starts the worker process
WAIT_MS = 30_000             # a page reacting to the server
JOB_MS = 90_000              # a small job from submission to its end (the first one loads VGG-19)
VIEWPORT = {"width": 1280, "height": 800}

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # the test extra installs it; a missing one must not pass silently
    sync_playwright = None
else:
    expect.set_options(timeout=WAIT_MS)   # every expect(...) waits this long unless told otherwise


# ------------------------------------------------------------------ the server and the browser

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(data: Path, log: Path):
    """``impasto serve`` on a free port, answering; stopped (and waited for) afterwards."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "impasto", "serve", "--port", str(port), "--data", str(data)],
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"impasto serve exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
            try:
                with urllib.request.urlopen(url + "api/info", timeout=2) as r:
                    info = json.load(r)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"impasto serve did not answer within {SERVER_START_S} s:\n"
                                f"{log.read_text(errors='replace')}")
                time.sleep(0.2)
        yield url, info
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@contextlib.contextmanager
def chromium():
    if sync_playwright is None:
        pytest.fail("the browser tests need the playwright package (pip install -e '.[test]', or make test)")
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: `make test` installs Debian's (apt-get install chromium); "
                    "or point IMPASTO_CHROMIUM at one")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("serve")
    with running_server(folder / "data", folder / "server.log") as (url, info):
        yield url, info


@pytest.fixture(scope="module")
def browser():
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    open_page(page, server[0])
    yield page
    context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


def open_page(page, url):
    page.goto(url)
    page.wait_for_selector("body[data-ready=true]")
    expect(page.locator("#connection")).to_have_attribute("data-state", "live")


# ------------------------------------------------------------------ pictures and page helpers

@pytest.fixture(scope="module")
def pictures(tmp_path_factory):
    """A photo (64x48: sky, hill, house) and two 'paintings' (stripes, dots), as PNG files."""
    folder = tmp_path_factory.mktemp("pictures")
    photo = Image.new("RGB", (64, 48), (150, 190, 230))
    d = ImageDraw.Draw(photo)
    d.ellipse((-20, 28, 90, 80), fill=(90, 140, 70))
    d.rectangle((34, 20, 50, 34), fill=(200, 170, 120))
    d.polygon([(32, 20), (42, 12), (52, 20)], fill=(150, 60, 40))
    stripes = Image.new("RGB", (48, 48), (30, 50, 120))
    d = ImageDraw.Draw(stripes)
    for x in range(-48, 48, 8):
        d.line((x, 0, x + 48, 48), fill=(230, 200, 60), width=3)
    dots = Image.new("RGB", (48, 40), (240, 230, 210))
    d = ImageDraw.Draw(dots)
    for i in range(0, 48, 9):
        for j in range(0, 40, 9):
            d.ellipse((i, j, i + 5, j + 5), fill=(180, 40, 40) if (i + j) % 2 else (20, 20, 20))
    paths = {}
    for name, img in (("photo", photo), ("stripes", stripes), ("dots", dots)):
        paths[name] = folder / f"{name}.png"
        img.save(paths[name])
    return paths


def submit(page) -> str:
    """Press Paint; the new job's id from the server's answer."""
    with page.expect_response(lambda r: r.url.endswith("/api/jobs") and r.request.method == "POST") as answer:
        page.click("#start")
    assert answer.value.status == 201, answer.value.text()
    return answer.value.json()["id"]


def card(page, jid):
    return page.locator(f'#history-list li[data-job="{jid}"]')


def watch_live_image(page):
    """Record every src the canvas image takes from now on (window.__srcs)."""
    page.evaluate("""() => {
        const img = document.querySelector('#live');
        window.__srcs = img.getAttribute('src') ? [img.getAttribute('src')] : [];
        new MutationObserver(() => window.__srcs.push(img.getAttribute('src')))
            .observe(img, {attributes: true, attributeFilter: ['src']});
    }""")


def seen_previews(page, jid) -> set[str]:
    return {s for s in page.evaluate("window.__srcs") if s and f"/api/jobs/{jid}/preview" in s}


def wait_for(predicate, timeout_s: float, what: str):
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)


def image_loaded(locator) -> bool:
    return locator.evaluate("img => img.complete && img.naturalWidth > 0")


def upload_pictures(page, pictures):
    page.set_input_files("#content-file", pictures["photo"])
    expect(page.locator("#content-chosen .chip:not(.pending)")).to_have_count(1)
    expect(page.locator("#content-chosen")).to_contain_text("photo.png")
    page.set_input_files("#style-files", [pictures["stripes"], pictures["dots"]])
    expect(page.locator("#styles-chosen .chip:not(.pending)")).to_have_count(2)
    expect(page.locator("#form-error")).to_be_hidden()


# ------------------------------------------------------------------ the tests

def test_pictures_dropped_on_the_page_are_uploaded(page, pictures):
    def drop(target, *names):
        files = [{"name": f"dropped-{n}.png", "bytes": list(pictures[n].read_bytes())} for n in names]
        transfer = page.evaluate_handle("""files => {
            const dt = new DataTransfer();
            for (const f of files) dt.items.add(new File([new Uint8Array(f.bytes)], f.name, {type: 'image/png'}));
            return dt;
        }""", files)
        page.dispatch_event(target, "dragenter", {"dataTransfer": transfer})
        page.dispatch_event(target, "drop", {"dataTransfer": transfer})

    drop("#content-drop", "photo")
    expect(page.locator("#content-chosen .chip:not(.pending)")).to_have_count(1)
    expect(page.locator("#content-chosen")).to_contain_text("dropped-photo.png")
    drop("#styles-drop", "stripes", "dots")
    expect(page.locator("#styles-chosen .chip:not(.pending)")).to_have_count(2)
    expect(page.locator("#styles-drop")).not_to_have_class(re.compile("over"))
    expect(page.locator("#form-error")).to_be_hidden()


def test_an_upload_that_is_not_an_image_is_refused_in_the_page(page):
    page.set_input_files("#content-file", files=[{"name": "notes.txt", "mimeType": "text/plain",
                                                   "buffer": b"a shopping list, not a picture\n"}])
    error = page.locator("#form-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("not an image")
    expect(error).to_contain_text("notes.txt")
    expect(page.locator("#content-chosen .chip")).to_have_count(0)


def test_a_file_over_the_upload_limit_is_refused_in_the_page(page, server, tmp_path):
    limit = (server[1].get("limits") or {}).get("max_upload_bytes") or 25_000_000
    big = tmp_path / "huge.png"
    with open(big, "wb") as f:           # sparse: limit + 1 bytes without writing them
        f.truncate(limit + 1)
    page.set_input_files("#style-files", big)
    error = page.locator("#form-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text(re.compile("too large", re.I))
    expect(page.locator("#styles-chosen .chip")).to_have_count(0)

    # The page checks the size before sending; the server's own 413 reaches the page as clearly.
    def info_without_the_limit(route):
        body = route.fetch().json()
        body.get("limits", {}).pop("max_upload_bytes", None)
        route.fulfill(json=body)

    page.route("**/api/info", info_without_the_limit)
    open_page(page, server[0])
    page.locator("#form-error").evaluate("e => { e.hidden = true; e.textContent = ''; }")
    with page.expect_response(lambda r: r.url.endswith("/api/uploads")) as answer:
        page.set_input_files("#style-files", big)
    assert answer.value.status == 413
    expect(error).to_be_visible()
    expect(error).to_contain_text(re.compile("too large", re.I))
    expect(error).to_contain_text("huge.png")
    expect(page.locator("#styles-chosen .chip")).to_have_count(0)


def test_bad_options_are_refused_in_the_page(page, pictures):
    upload_pictures(page, pictures)
    jobs_before = page.locator("#history-list li").count()
    page.fill("#size", "3")
    with page.expect_response(lambda r: r.url.endswith("/api/jobs") and r.request.method == "POST") as answer:
        page.click("#start")
    assert answer.value.status == 400
    error = page.locator("#form-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("size")
    expect(page.locator("#history-list li")).to_have_count(jobs_before)


def test_a_session(page, server, pictures, tmp_path):
    url, info = server
    upload_pictures(page, pictures)

    # A fast job (a bundled model): its result appears at once.
    assert info["models"], "no bundled fast model"
    page.check("input[name=method][value=fast]")
    expect(page.locator("#styles-section")).to_be_hidden()
    page.select_option("#model", info["models"][0])
    page.fill("#size", "64")
    fast = submit(page)
    expect(card(page, fast)).to_have_attribute("data-state", "done", timeout=JOB_MS)
    live = page.locator("#live")
    expect(live).to_have_attribute("src", re.compile(rf"/api/jobs/{fast}/result"))
    wait_for(lambda: image_loaded(live), 10, "the fast result to load")
    expect(page.locator("#live-download")).to_be_visible()

    # An optimisation job: the live image changes while it runs, then the result appears.
    page.check("input[name=method][value=transfer]")
    expect(page.locator("#styles-section")).to_be_visible()
    page.fill("#size", "64")
    page.fill("#iterations", "20")
    page.fill("#strength", "4")                       # alpha/beta 1e-4: more painting
    expect(page.locator("#ratio-out")).to_have_text("α/β 1e-4")
    watch_live_image(page)
    transfer = submit(page)
    expect(card(page, transfer)).to_have_attribute("data-state", "done", timeout=JOB_MS)
    expect(live).to_have_attribute("src", re.compile(rf"/api/jobs/{transfer}/result"))
    previews = seen_previews(page, transfer)
    assert len(previews) >= 2, f"the live preview did not change while the job ran: {previews}"
    expect(page.locator("#live-iter")).to_contain_text("20 of 20")
    for loss in ("#live-content", "#live-style", "#live-total"):
        expect(page.locator(loss)).not_to_have_text("–")
    wait_for(lambda: image_loaded(live), 10, "the optimisation result to load")
    shot = Path(os.environ.get("IMPASTO_SERVE_SCREENSHOT") or tmp_path / "serve.png")
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000

    # The queue: a long job runs, a second one waits with its place; cancel the waiting one.
    page.fill("#iterations", "5000")
    long_run = submit(page)
    waiting = submit(page)
    queue = page.locator("#queue-list")
    expect(queue.locator(f'li[data-job="{long_run}"]')).to_have_class(re.compile("state-running"), timeout=JOB_MS)
    expect(queue.locator(f'li[data-job="{waiting}"] .place')).to_have_text("#1")
    queue.locator(f'li[data-job="{waiting}"] button').click()
    expect(card(page, waiting)).to_have_attribute("data-state", "cancelled")
    expect(queue.locator(f'li[data-job="{waiting}"]')).to_have_count(0)

    # A reloaded page reconnects to the running job's live preview and shows the history.
    page.reload()
    page.wait_for_selector("body[data-ready=true]")
    expect(page.locator("#studio")).to_have_attribute("data-state", "running")
    expect(page.locator("#live-state")).to_contain_text("painting")
    watch_live_image(page)
    wait_for(lambda: len(seen_previews(page, long_run)) >= 2, JOB_MS / 1000, "the live preview after a reload")
    for jid in (fast, transfer, waiting, long_run):
        expect(card(page, jid)).to_have_count(1)
    for jid in (fast, transfer):
        thumb = card(page, jid).locator(".thumb img")
        expect(thumb).to_have_attribute("src", re.compile(rf"/api/jobs/{jid}/"))
        thumb.scroll_into_view_if_needed()
        wait_for(lambda: image_loaded(thumb), 10, "a thumbnail to load")

    # The running job stops within an iteration; its partial result is kept.
    page.click("#live-cancel")
    expect(card(page, long_run)).to_have_attribute("data-state", "cancelled", timeout=JOB_MS)
    expect(card(page, long_run).locator(".thumb img")).to_have_attribute("src", re.compile(rf"/api/jobs/{long_run}/"))
    expect(page.locator("#queue-empty")).to_be_visible()

    # The full-size viewer and the download link of a finished job.
    card(page, transfer).get_by_role("button", name="Open", exact=True).click()
    viewer = page.locator("#viewer")
    expect(viewer).to_be_visible()
    wait_for(lambda: image_loaded(page.locator("#viewer-image")), 10, "the full-size result")
    expect(page.locator("#viewer-download")).to_have_attribute("href", re.compile(r"download=1"))
    viewer.get_by_role("button", name="Close").click()
    expect(viewer).to_be_hidden()

    # "Use these settings again" fills the form with the optimisation job's settings.
    page.check("input[name=method][value=fast]")
    page.fill("#size", "300")
    page.click("#content-chosen .chip-remove")
    page.check("input[name=method][value=transfer]")
    page.locator("#styles-chosen .chip-remove").first.click()
    expect(page.locator("#styles-chosen .chip")).to_have_count(1)
    page.check("input[name=method][value=fast]")
    card(page, transfer).get_by_role("button", name="Use these settings again").click()
    expect(page.locator("input[name=method][value=transfer]")).to_be_checked()
    expect(page.locator("#size")).to_have_value("64")
    expect(page.locator("#iterations")).to_have_value("20")
    expect(page.locator("#strength")).to_have_value("4")
    expect(page.locator("#ratio-out")).to_have_text("α/β 1e-4")
    expect(page.locator("#content-chosen .chip")).to_have_count(1)
    expect(page.locator("#styles-chosen .chip")).to_have_count(2)

    # And those settings paint again.
    again = submit(page)
    expect(card(page, again)).to_have_attribute("data-state", "done", timeout=JOB_MS)


def test_a_full_queue_is_refused_in_the_page(page, server, pictures):
    url, info = server
    upload_pictures(page, pictures)
    page.fill("#size", "64")
    page.fill("#iterations", "5000")
    made = []
    for _ in range(info["limits"]["max_queue"] + 1):   # one runs, the rest wait
        made.append(submit(page))
    try:
        with page.expect_response(lambda r: r.url.endswith("/api/jobs") and r.request.method == "POST") as answer:
            page.click("#start")
        assert answer.value.status == 429
        error = page.locator("#form-error")
        expect(error).to_be_visible()
        expect(error).to_contain_text("queue is full")
        expect(page.locator("#queue-list li")).to_have_count(len(made))
    finally:
        for jid in reversed(made):                      # the waiting ones first, so none starts
            request = urllib.request.Request(f"{url}api/jobs/{jid}/cancel", data=b"{}", method="POST",
                                             headers={"Content-Type": "application/json"})
            with contextlib.suppress(OSError):
                urllib.request.urlopen(request, timeout=30).close()
    expect(page.locator("#queue-empty")).to_be_visible()


def write_clip(path: Path, frames: int, size=(64, 48), fps=25) -> Path:
    """A small MP4 made with PyAV: a yellow bar moving over a gradient."""
    import av
    import numpy as np

    w, h = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(frames):
            a = np.zeros((h, w, 3), np.uint8)
            a[..., 0] = np.linspace(20, 200, w, dtype=np.uint8)[None]
            a[..., 2] = 120
            x = i % (w - 8)
            a[:, x:x + 8] = (250, 230, 40)
            for packet in stream.encode(av.VideoFrame.from_ndarray(a, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def test_a_video_job_shows_its_frames_arrive_and_plays_its_result(page, server, tmp_path):
    url, info = server
    assert "video" in info["choices"]["method"], "the video extra (PyAV, OpenCV) is not installed"
    frames = 120
    page.set_input_files("#content-file", write_clip(tmp_path / "walk.mp4", frames))
    chip = page.locator("#content-chosen .chip:not(.pending)")
    expect(chip).to_have_count(1)
    expect(chip).to_have_attribute("data-kind", "clip")
    expect(chip).to_contain_text(f"{frames} frames")
    expect(page.locator("input[name=method][value=video]")).to_be_checked()     # a clip chooses Video
    wait_for(lambda: image_loaded(chip.locator("img")), 10, "the clip's poster")
    page.select_option("#video-mode", "fast")
    expect(page.locator("#model")).to_be_visible()
    expect(page.locator("#temporal")).to_be_visible()
    expect(page.locator("#temporal-features")).to_have_value(str(VideoConfig.temporal_features))  # the default
    expect(page.locator("#styles-section")).to_be_hidden()
    page.select_option("#model", info["models"][0])
    page.fill("#size", "64")
    watch_live_image(page)
    jid = submit(page)
    expect(card(page, jid)).to_have_attribute("data-state", "done", timeout=JOB_MS)
    previews = seen_previews(page, jid)
    assert len(previews) >= 2, f"the frames did not arrive on the canvas: {previews}"
    expect(page.locator("#video-frame")).to_have_text(f"{frames} of {frames}")
    expect(page.locator("#video-fpm")).not_to_have_text("–")

    # The result plays on the canvas and in the history; it downloads as an MP4.
    live = page.locator("#live-video")
    expect(live).to_be_visible()
    expect(live).to_have_attribute("src", f"/api/jobs/{jid}/result")
    expect(page.locator("#live")).to_be_hidden()
    wait_for(lambda: live.evaluate("v => v.readyState >= 1 && v.videoWidth === 64 && Math.round(v.duration * 25) === "
                                   f"{frames}"), 20, "the result video to load in the browser")
    kept = card(page, jid).locator("video")
    expect(kept).to_have_count(1)
    expect(kept).to_have_attribute("controls", "")
    expect(page.locator("#live-download")).to_have_attribute("href", f"/api/jobs/{jid}/result?download=1")

    # "Use these settings again" brings back the clip, the video mode and its options.
    page.check("input[name=method][value=transfer]")
    page.fill("#size", "300")
    card(page, jid).get_by_role("button", name="Use these settings again").click()
    expect(page.locator("input[name=method][value=video]")).to_be_checked()
    expect(page.locator("#video-mode")).to_have_value("fast")
    expect(page.locator("#size")).to_have_value("64")
    expect(page.locator("#content-chosen .chip")).to_have_attribute("data-kind", "clip")


# ------------------------------------------------------------------ the README's screenshot

def take_readme_screenshot(target: Path) -> None:
    """A real session with the bundled examples: a fast job, then an optimisation at 384 px; the
    whole page (1280 px wide)."""
    with tempfile.TemporaryDirectory() as tmp, running_server(Path(tmp) / "data", Path(tmp) / "server.log") as (url, info), \
            chromium() as browser:
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(WAIT_MS)
        open_page(page, url)
        photo = next(e for e in info["examples"] if e["kind"] == "photo")
        paintings = [e for e in info["examples"] if e["kind"] == "painting"]
        starry = next((e for e in paintings if "starry" in e["name"]), paintings[0])
        page.locator(f'#content-examples button[data-upload="{photo["upload"]}"]').click()
        model = next((m for m in info["models"] if "kandinsky" in m), info["models"][0])
        page.check("input[name=method][value=fast]")
        page.select_option("#model", model)
        page.fill("#size", "384")
        expect(card(page, submit(page))).to_have_attribute("data-state", "done", timeout=JOB_MS * 2)
        page.check("input[name=method][value=transfer]")
        page.locator(f'#styles-examples button[data-upload="{starry["upload"]}"]').click()
        page.fill("#size", "384")
        page.fill("#iterations", "80")
        expect(card(page, submit(page))).to_have_attribute("data-state", "done", timeout=600_000)
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_timeout(500)
        page.screenshot(path=str(target), full_page=True)
        print(f"wrote {target}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python tests/test_serve_browser.py OUTPUT.png")
    take_readme_screenshot(Path(sys.argv[1]))
