"""A bounded flood on loopback: the real ``impasto serve`` (a subprocess on 127.0.0.1, a free port)
under hundreds of concurrent job submissions and status requests, a few event streams and a few
oversized uploads. It must keep answering, hold its queue limit, lose no accepted job and keep its
memory bounded; the figures (requests, latencies, memory) are printed for the README. Every loop
and wait is bounded; the server is stopped (Ctrl-C) at the end and must exit by itself.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

httpx = pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

SUBMISSIONS = 300          # fast jobs at 32 px, all at once
STATUS = 300               # GET /api/jobs, /api/jobs/{id}, /api/info among them
STREAMS = 20               # pages listening to /api/events
OVERSIZED = 3              # uploads just over the 25 MB limit
CONNECTIONS = 200          # the client's concurrent connections
START_S = 90               # a cold start imports PyTorch in the worker
DRAIN_S = 180              # every accepted job finished
RSS_GROWTH_MB = 100        # the server's memory may grow this much at most over the flood


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def photo_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (120, 170, 220)).save(out, "PNG")
    return out.getvalue()


class Timed:
    """Every request's status (or error) and latency."""

    def __init__(self, client):
        self.client, self.rows = client, []

    async def __call__(self, kind: str, method: str, url: str, **kw):
        start = time.perf_counter()
        try:
            r = await self.client.request(method, url, **kw)
            self.rows.append((kind, r.status_code, time.perf_counter() - start))
            return r
        except httpx.HTTPError as exc:
            self.rows.append((kind, type(exc).__name__, time.perf_counter() - start))
            return None


async def wait_answering(base: str, proc) -> None:
    deadline = time.monotonic() + START_S
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"impasto serve exited with {proc.returncode}")
            try:
                if (await client.get("/api/info")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"impasto serve did not answer within {START_S} s")
            await asyncio.sleep(0.2)


async def wait_jobs(client, ids, timeout: float) -> dict:
    """Every job of ``ids`` as listed once none of them is queued or running (or the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = {j["id"]: j for j in (await client.get("/api/jobs")).json()["jobs"]}
        if all(jid in jobs and jobs[jid]["state"] not in ("queued", "running") for jid in ids):
            return jobs
        if time.monotonic() > deadline:
            left = [jid for jid in ids if jobs.get(jid, {}).get("state") in ("queued", "running", None)]
            raise AssertionError(f"{len(left)} accepted jobs not finished after {timeout} s")
        await asyncio.sleep(0.25)


async def listen(base: str, seen: list) -> None:
    """One page: the hello, then events until one about a job (at most 20 s)."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        async with asyncio.timeout(20):
            async with client.stream("GET", "/api/events") as r:
                assert r.status_code == 200
                async for line in r.aiter_lines():
                    if line.startswith('data: {"type":"job"'):
                        seen.append(True)
                        return


async def flood(base: str, pid: int) -> dict:
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        timed = Timed(client)
        photo = (await client.post("/api/uploads", files={"file": ("photo.png", photo_png(), "image/png")})).json()["id"]
        body = {"method": "fast", "content": photo, "model": "starry_night", "options": {"size": 32}}
        warm = (await client.post("/api/jobs", json=body)).json()["id"]     # the worker loads the model once
        await wait_jobs(client, [warm], START_S)
        before = rss_mb(pid)
        accepted, listings, seen = [], [], []
        huge = b"\0" * 25_000_100

        async def submit():
            r = await timed("submit", "POST", "/api/jobs", json=body)
            if r is not None and r.status_code == 201:
                accepted.append(r.json())

        async def status(i):
            if i % 3 == 0:
                r = await timed("status", "GET", "/api/jobs")
                if r is not None and r.status_code == 200:
                    listings.append(r.json()["jobs"])
            elif i % 3 == 1 and accepted:
                await timed("status", "GET", f"/api/jobs/{accepted[i % len(accepted)]['id']}")
            else:
                await timed("status", "GET", "/api/info")

        async def oversized():
            await timed("oversized", "POST", "/api/uploads", files={"file": ("huge.png", huge, "image/png")})

        started, cpu = time.perf_counter(), cpu_s(pid)
        await asyncio.gather(*[submit() for _ in range(SUBMISSIONS)], *[status(i) for i in range(STATUS)],
                             *[oversized() for _ in range(OVERSIZED)], *[listen(base, seen) for _ in range(STREAMS)])
        flood_s, flood_cpu = time.perf_counter() - started, cpu_s(pid) - cpu
        after_flood = rss_mb(pid)
        jobs = await wait_jobs(client, [a["id"] for a in accepted], DRAIN_S)
        t = time.perf_counter()
        alive = (await client.get("/api/info")).status_code
        alive_s = time.perf_counter() - t
        worker = max((rss_mb(c) for c in children(pid) if Path(f"/proc/{c}").exists()), default=0.0)
        return {"rows": timed.rows, "worker": worker, "cpu": flood_cpu, "accepted": accepted, "listings": listings, "jobs": jobs, "seen": seen,
                "before": before, "after_flood": after_flood, "after": rss_mb(pid), "flood_s": flood_s,
                "alive": (alive, alive_s), "warm": warm}


def test_a_flood_of_requests_on_loopback(tmp_path, capsys):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "impasto", "serve", "--port", str(port), "--data",
                                 str(tmp_path / "data")], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env)
    try:
        asyncio.run(wait_answering(base, proc))
        workers = children(proc.pid)
        result = asyncio.run(flood(base, proc.pid))
        proc.send_signal(signal.SIGINT)  # Ctrl-C
        code = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    rows, accepted = result["rows"], result["accepted"]
    kinds: dict = {}
    for kind, status, _ in rows:
        kinds.setdefault(kind, {}).setdefault(status, 0)
        kinds[kind][status] += 1
    latencies = sorted(s for _, _, s in rows)
    by_kind = {k: sorted(s for kk, _, s in rows if kk == k) for k in kinds}
    pct = lambda xs, q: xs[min(len(xs) - 1, int(q * len(xs)))] * 1000  # noqa: E731
    with capsys.disabled():
        print(f"\nflood: {len(rows)} requests + {STREAMS} event streams in {result['flood_s']:.1f} s "
              f"({CONNECTIONS} connections; the server used {result['cpu']:.1f} s of CPU): p50 {pct(latencies, .5):.0f} ms, p95 {pct(latencies, .95):.0f} ms, "
              f"max {latencies[-1] * 1000:.0f} ms")
        for kind, xs in by_kind.items():
            print(f"  {kind:9s} {len(xs):4d}  {dict(sorted(kinds[kind].items(), key=str))}  "
                  f"p50 {pct(xs, .5):.0f} ms  p95 {pct(xs, .95):.0f} ms")
        print(f"  accepted {len(accepted)} jobs (mean place {statistics.mean(a['position'] for a in accepted):.1f}); "
              f"after the flood /api/info answered in {result['alive'][1] * 1000:.0f} ms")
        print(f"  server RSS {result['before']:.0f} MB before, {result['after_flood']:.0f} MB right after, "
              f"{result['after']:.0f} MB once the queue drained (the worker process: {result['worker']:.0f} MB)")

    text = log.read_text(errors="replace")
    assert code == 0, text
    assert f"impasto: serving on {base}/ (Ctrl-C to stop)" in text
    # The worker and multiprocessing's resource tracker (spawn) go with the server; the tracker leaves
    # when it sees the server's end of its pipe close, a moment after the server itself.
    def alive(pid: int) -> bool:
        try:
            return "zombie" not in Path(f"/proc/{pid}/status").read_text()
        except OSError:  # gone
            return False

    deadline = time.monotonic() + 5
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert workers and not any(alive(w) for w in workers), "the worker outlived the server"

    # It kept answering: every request got an answer, and the one it should.
    assert set(kinds["submit"]) <= {201, 429}, kinds
    assert kinds["status"] == {200: STATUS}, kinds
    assert kinds["oversized"] == {413: OVERSIZED}, kinds
    assert result["alive"][0] == 200 and result["alive"][1] < 2.0
    assert len(result["seen"]) == STREAMS
    # The queue limit held: never more than 20 waiting.
    assert accepted and kinds["submit"][201] == len(accepted)
    assert max(a["position"] for a in accepted) <= 20
    assert max(sum(j["state"] == "queued" for j in listing) for listing in result["listings"]) <= 20
    # No accepted job was lost: each one is in the history, done.
    jobs = result["jobs"]
    assert {jid for jid in jobs} == {a["id"] for a in accepted} | {result["warm"]}
    assert all(jobs[a["id"]]["state"] == "done" for a in accepted)
    # Nothing of the oversized uploads was kept.
    uploads = [p.name for p in (tmp_path / "data" / "uploads").iterdir() if not p.name.startswith("ex-")]
    assert len(uploads) == 2, uploads  # the photo and its .json
    # Memory stayed bounded.
    growth = result["after"] - result["before"]
    assert growth < RSS_GROWTH_MB, f"the server grew by {growth:.0f} MB"

