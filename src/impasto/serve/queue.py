"""The server's side of the jobs: the waiting ones in order, the running one, cancelling, the worker
process's messages, and the fan-out of every change to the pages listening (server-sent events).

Everything here runs in the server's event loop (the worker's messages arrive there through
:class:`~.worker.WorkerProcess`), so no lock is needed. A job's record (:mod:`.store`) is written
to its job.json at every change of state and at most once a second while it runs.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import sys
import time

from .store import ENDED, Store, now
from .worker import WorkerProcess

SAVE_EVERY_S = 1.0          # job.json of a running job: at most this often (every change of state at once)
RESTARTS = 3                # a worker that dies this many times in a row before it is ready is not restarted
BROKEN = "the worker process fails to start (its error is in the server's terminal); restart impasto serve"


class QueueFull(Exception):
    pass


class AlreadyEnded(Exception):
    pass


class WorkerBroken(Exception):
    pass


def public(record: dict, position: int | None) -> dict:
    """A job as the API shows it (GET /api/jobs/{id}; docs/serve.md): its settings, inputs, progress and links."""
    jid = record["id"]
    base = f"/api/jobs/{jid}"
    video = record["method"] == "video"
    content = f"/api/uploads/{record['content']}"
    return {"id": jid, "method": record["method"], "mode": record.get("mode"), "state": record["state"],
            "position": position if record["state"] == "queued" else None,
            "settings": record["settings"],
            "inputs": {"content": content, "styles": [f"/api/uploads/{uid}" for uid in record["styles"]],
                       **({"poster": f"{content}/poster"} if video else {})},
            "result_type": ("video/mp4" if video else "image/png") if record.get("result") else None,
            "progress": record.get("progress"), "losses": record.get("losses"), "message": record.get("message"),
            "created": record["created"], "started": record.get("started"), "ended": record.get("ended"),
            "preview": f"{base}/preview?v={record['preview']}" if record.get("preview") else None,
            "result": f"{base}/result" if record.get("result") else None,
            "thumb": f"{base}/thumb" if record.get("thumb") else None}


def sse(message: dict) -> str:
    """One server-sent event: ``data: <json>`` and a blank line."""
    return f"data: {json.dumps(message, separators=(',', ':'), allow_nan=False)}\n\n"


# ---------------------------------------------------------------- the fan-out to the pages

class Subscriber:
    """One page's stream. It keeps only the latest event of each job not yet sent, so a slow page
    skips stale progress (never the latest state of any job) and the server never waits for it."""

    def __init__(self):
        self.pending: collections.OrderedDict[str, str] = collections.OrderedDict()
        self.wake = asyncio.Event()
        self.closed = False

    def push(self, key: str, text: str) -> None:
        self.pending.pop(key, None)
        self.pending[key] = text
        self.wake.set()

    async def next(self, timeout: float) -> str | None:
        """The next event's text; None once closed; raises TimeoutError after ``timeout`` s of quiet."""
        while not self.pending and not self.closed:
            self.wake.clear()
            await asyncio.wait_for(self.wake.wait(), timeout)
        if self.closed:
            return None
        return self.pending.popitem(last=False)[1]


class Hub:
    def __init__(self):
        self.subscribers: set[Subscriber] = set()

    def subscribe(self) -> Subscriber:
        sub = Subscriber()
        self.subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.subscribers.discard(sub)

    def publish(self, key: str, message: dict) -> None:
        if not self.subscribers:
            return
        text = sse(message)  # encoded once for every page
        for sub in self.subscribers:
            sub.push(key, text)

    def close(self) -> None:
        for sub in self.subscribers:
            sub.closed = True
            sub.wake.set()


# ---------------------------------------------------------------- the queue

class JobQueue:
    def __init__(self, store: Store, max_queue: int, preview_every: int, start_worker: bool = True,
                 max_frames: int | None = None):
        self.store, self.max_queue, self.preview_every = store, max_queue, preview_every
        self.max_frames = max_frames
        self.start_worker = start_worker
        self.hub = Hub()
        self.jobs: dict[str, dict] = {}
        self.waiting: collections.deque[str] = collections.deque()
        self.running: str | None = None
        self.worker: WorkerProcess | None = None
        self.ready = False
        self.failed_starts = 0
        self.broken = False
        self.closing = False
        self._saved: dict[str, float] = {}
        self._ended: dict[str, asyncio.Event] = {}
        self._seq = 0
        self.loop: asyncio.AbstractEventLoop | None = None

    # ---------------------------------------------------------- start and stop

    def start(self) -> None:
        """Read the history; a job an earlier server left running or waiting is marked interrupted."""
        self.loop = asyncio.get_running_loop()
        for record in self.store.load_jobs():
            if record["state"] == "running":
                self.store.interrupt(record, "the server stopped while this job was running")
            elif record["state"] == "queued":
                self.store.interrupt(record, "the server stopped while this job was waiting")
            self.jobs[record["id"]] = record
            self._seq = max(self._seq, record.get("seq", 0))
        if self.start_worker:
            self._spawn()

    def stop(self) -> None:
        """Stop the worker; the running and waiting jobs are marked interrupted (the running one keeps
        its last live image), as a later start would find them."""
        self.closing = True
        self.hub.close()
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.stop()
        for jid in [*([self.running] if self.running else []), *self.waiting]:
            record = self.jobs[jid]
            what = "running" if record["state"] == "running" else "waiting"
            self.store.interrupt(record, f"the server stopped while this job was {what}")
        self.running = None
        self.waiting.clear()
        for event in self._ended.values():  # a cancel waiting for the worker answers now
            event.set()

    def close_streams_threadsafe(self) -> None:
        """End every page's event stream, from any thread or a signal handler (the server is stopping)."""
        if self.loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed already
                self.loop.call_soon_threadsafe(self.hub.close)

    def _spawn(self) -> None:
        self.ready = False
        self.worker = WorkerProcess(self.loop, self._on_message, self._on_exit)

    # ---------------------------------------------------------- what the API asks

    def view(self, jid: str) -> dict:
        return public(self.jobs[jid], self.position(jid))

    def position(self, jid: str) -> int | None:
        try:
            return self.waiting.index(jid) + 1
        except ValueError:
            return None

    def all(self) -> list[dict]:
        """Every job, newest first."""
        return [self.view(jid) for jid in sorted(self.jobs, key=lambda j: -self.jobs[j]["seq"])]

    def submit(self, record: dict, content: dict, styles: list[dict]) -> dict:
        """Queue a new job (already checked); raises :class:`QueueFull` past ``max_queue`` waiting."""
        if self.broken:
            raise WorkerBroken(BROKEN)
        if len(self.waiting) >= self.max_queue:
            raise QueueFull(f"the queue is full ({self.max_queue} jobs waiting); try again when one has finished")
        self._seq += 1
        record.update(seq=self._seq, state="queued", created=now(), started=None, ended=None, progress=None,
                      losses=None, message=None, preview=0, result=False, thumb=False)
        self.store.create_job(record, content, styles)
        self.jobs[record["id"]] = record
        self.waiting.append(record["id"])
        self._changed(record["id"])
        self.loop.call_soon(self._dispatch)  # the answer says "queued", place k; the stream tells the start
        return self.view(record["id"])

    async def cancel(self, jid: str, wait_s: float) -> dict:
        """A waiting job is removed at once; the running one is stopped by the worker within an
        iteration (waited for up to ``wait_s``). Raises :class:`AlreadyEnded`."""
        record = self.jobs[jid]
        if record["state"] in ENDED:
            raise AlreadyEnded(f"job {jid} has already ended ({record['state']})")
        if record["state"] == "queued":
            self.waiting.remove(jid)
            self._end(record, "cancelled", "cancelled before it started")
            self._positions_changed()
            return self.view(jid)
        ended = self._ended.setdefault(jid, asyncio.Event())
        if self.worker is not None:
            self.worker.send({"op": "cancel", "id": jid})
        try:
            await asyncio.wait_for(ended.wait(), wait_s)
        except asyncio.TimeoutError:
            pass  # still stopping: the stream will tell
        return self.view(jid)

    # ---------------------------------------------------------- the worker's messages

    def _dispatch(self) -> None:
        if self.closing or self.running is not None or not self.ready or not self.waiting:
            return
        jid = self.waiting.popleft()
        record = self.jobs[jid]
        record.update(state="running", started=now())
        self.running = jid
        self._save(record)
        self._changed(jid)
        self._positions_changed()
        files, names = record["files"], record.get("names") or {}
        shown = dict(zip([files["content"], *files["styles"]], [names.get("content"), *names.get("styles", [])]))
        self.worker.send({"op": "run", "id": jid, "dir": str(self.store.jobs / jid), "method": record["method"],
                          "mode": record.get("mode"), "options": record["options"], "content": files["content"],
                          "styles": files["styles"], "model": record.get("model"),
                          "names": {file: name for file, name in shown.items() if name},
                          "preview_every": self.preview_every, "max_frames": self.max_frames})

    def _on_message(self, worker: WorkerProcess, message: dict) -> None:
        if worker is not self.worker or self.closing:
            return
        kind = message.get("type")
        if kind == "ready":
            self.ready, self.failed_starts = True, 0
            self._dispatch()
            return
        record = self.jobs.get(message.get("id"))
        if record is None or record["id"] != self.running:
            return
        if kind == "progress":
            record["progress"] = message["progress"]
            if message.get("losses"):
                record["losses"] = message["losses"]
            if message.get("preview"):
                record["preview"] += 1
            if time.monotonic() - self._saved.get(record["id"], 0.0) >= SAVE_EVERY_S:
                self._save(record)
            self._changed(record["id"])
        elif kind == "ended":
            record["result"] = record["thumb"] = bool(message.get("result"))
            self.running = None
            self._end(record, message["state"], message.get("message"))
            self._dispatch()

    def _on_exit(self, worker: WorkerProcess, code) -> None:
        if worker is not self.worker or self.closing or worker.stopping:
            return
        self.worker, self.ready = None, False
        if self.running is not None:
            record, self.running = self.jobs[self.running], None
            self._end(record, "failed", f"the worker process stopped (exit code {code}) while running this job")
        print(f"impasto: warning: the worker process stopped (exit code {code}); starting a new one", file=sys.stderr)
        self.failed_starts += 1
        if self.failed_starts > RESTARTS:
            self.broken = True
            print(f"impasto: error: {BROKEN}", file=sys.stderr)
            while self.waiting:
                self._end(self.jobs[self.waiting.popleft()], "failed", BROKEN)
            return
        self._spawn()

    # ---------------------------------------------------------- records

    def _end(self, record: dict, state: str, message: str | None) -> None:
        record.update(state=state, message=message, ended=now())
        self._save(record)
        self._changed(record["id"])
        event = self._ended.pop(record["id"], None)
        if event is not None:
            event.set()

    def _save(self, record: dict) -> None:
        self.store.save_job(record)
        self._saved[record["id"]] = time.monotonic()
        if record["state"] in ENDED:
            self._saved.pop(record["id"], None)

    def _changed(self, jid: str) -> None:
        self.hub.publish(jid, {"type": "job", "job": self.view(jid)})

    def _positions_changed(self) -> None:
        for jid in self.waiting:
            self._changed(jid)
