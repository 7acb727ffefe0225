"""``impasto serve``'s HTTP API (:mod:`impasto.serve.routes`): /api/info, a job's settings checked before it is
queued (images and clips), malformed requests, unknown paths and the page. In-process, without a worker
(the harness: tests/serve/helpers.py; the fixtures: tests/serve/conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("httpx")
pytest.importorskip("starlette")

from impasto.config import TransferConfig  # noqa: E402
from serve.helpers import JSON, Served, _uploads, clip, files_under, png  # noqa: E402


def test_info_gives_the_defaults_of_the_config_and_what_can_be_chosen(bare):
    r = bare.get("/api/info")
    assert r.status_code == 200
    info = r.json()
    defaults = TransferConfig()
    assert {k: v for k, v in info["defaults"].items() if k != "video"} == {
        "size": defaults.size, "ratio": defaults.ratio, "iterations": defaults.iterations, "color": defaults.color,
        "preset": None}
    assert info["choices"]["color"] == ["transfer", "luminance", "match", "ink"]
    assert info["choices"]["method"] == ["transfer", "fast", "video"]
    assert info["choices"]["video_mode"] == ["fast", "optimisation"]
    assert info["defaults"]["video"] == {"temporal_features": 0.5, "temporal": 0.05, "frame_iterations": 20,
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
    ({"options": {"color": "sepia"}}, 400, "--color must be one of transfer, luminance, match, ink, not 'sepia'"),
    ({"options": {"preset": "nope"}}, 400, "unknown preset 'nope': choose from paper, balanced, keep-colors, ink, ink-silk, "
                                           "blue-green (impasto presets lists them)"),
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
