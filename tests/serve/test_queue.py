"""The jobs' queue (:mod:`impasto.serve.queue`): jobs wait in order within the queue limit, the event stream
tells every change (a slow page skips stale events), cancel, a worker that dies, a server that stops.
Without a worker, then on the real worker process (tiny jobs, started once for the module).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal

import pytest
from PIL import Image

pytest.importorskip("httpx")
pytest.importorskip("starlette")

from impasto.serve.limits import Limits  # noqa: E402
from serve.helpers import Served, _uploads, ended, job_events, read_events, transfer_body  # noqa: E402


# ------------------------------------------------------------------ without a worker

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


# ------------------------------------------------------------------ on the worker

# The worker dies first: the cancel test after it counts on a worker that is ready (its long job starts
# at once, the next one waits first in line), as the transfer test of test_worker.py counts on a cold one.

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
