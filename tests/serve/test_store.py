"""The history on disk (:mod:`impasto.serve.store`), through the HTTP API: what a stopped server left running or
waiting is marked interrupted, keeping its last image, and the models in DATA/models are offered.
"""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

pytest.importorskip("httpx")
pytest.importorskip("starlette")

from serve.helpers import Served, _uploads, clip  # noqa: E402


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
