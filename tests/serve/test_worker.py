"""The worker process (:mod:`impasto.serve.worker`): real, tiny jobs (32 px, a few iterations; the fast model
at 32 px) on it, started once for the module: transfer, fast and video jobs, their progress, previews and
results, a cancelled video kept as a shorter one, and no path of the server's in its messages.
"""

from __future__ import annotations

import asyncio
import io
import json
import os

import pytest
from PIL import Image

pytest.importorskip("httpx")
pytest.importorskip("starlette")

from serve.helpers import JOB_S, clip, decoded, ended, job_events, read_events, transfer_body  # noqa: E402


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
