"""A bounded flood on loopback, and its figures for the README (docs/serve.md): the real ``impasto
serve`` (a subprocess on 127.0.0.1, a free port) under hundreds of concurrent job submissions and
status requests, a few event streams and a few oversized uploads; printed: the requests by kind with
their answers and latencies, the server's CPU time and memory before, right after and once the queue
has drained, and the worker's. Every loop and wait is bounded; the server is stopped (Ctrl-C) at the
end and must exit by itself. tests/serve/test_flood.py runs the same flood (:func:`run`) and asserts
that the server kept answering, held its queue limit, lost no accepted job and kept its memory bounded.

Usage, from the repository root (about a minute; needs the ``serve`` extra and httpx):
    python -m benchmarks.serve_flood [--data FOLDER]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from PIL import Image

SUBMISSIONS = 300          # fast jobs at 32 px, all at once
STATUS = 300               # GET /api/jobs, /api/jobs/{id}, /api/info among them
STREAMS = 20               # pages listening to /api/events
OVERSIZED = 3              # uploads just over the 25 MB limit
CONNECTIONS = 200          # the client's concurrent connections
START_S = 90               # a cold start imports PyTorch in the worker
DRAIN_S = 180              # every accepted job finished


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


def run(folder: Path) -> dict:
    """The flood on a server whose history is under ``folder``: :func:`flood`'s figures, and the
    server's address, exit code, log and worker processes."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = folder / "server.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "impasto", "serve", "--port", str(port), "--data",
                                 str(folder / "data")], stdout=out, stderr=subprocess.STDOUT,
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
    kinds: dict = {}
    for kind, status, _ in result["rows"]:
        kinds.setdefault(kind, {}).setdefault(status, 0)
        kinds[kind][status] += 1
    return {**result, "kinds": kinds, "base": base, "code": code, "log": log.read_text(errors="replace"),
            "workers": workers, "data": folder / "data"}


def figures(done: dict) -> str:
    """The flood's figures, as the README shows them."""
    rows, accepted, kinds = done["rows"], done["accepted"], done["kinds"]
    latencies = sorted(s for _, _, s in rows)
    by_kind = {k: sorted(s for kk, _, s in rows if kk == k) for k in kinds}
    pct = lambda xs, q: xs[min(len(xs) - 1, int(q * len(xs)))] * 1000  # noqa: E731
    lines = [f"flood: {len(rows)} requests + {STREAMS} event streams in {done['flood_s']:.1f} s "
             f"({CONNECTIONS} connections; the server used {done['cpu']:.1f} s of CPU): p50 {pct(latencies, .5):.0f} ms, "
             f"p95 {pct(latencies, .95):.0f} ms, max {latencies[-1] * 1000:.0f} ms"]
    for kind, xs in by_kind.items():
        lines.append(f"  {kind:9s} {len(xs):4d}  {dict(sorted(kinds[kind].items(), key=str))}  "
                     f"p50 {pct(xs, .5):.0f} ms  p95 {pct(xs, .95):.0f} ms")
    if accepted:
        lines.append(f"  accepted {len(accepted)} jobs (mean place {statistics.mean(a['position'] for a in accepted):.1f}); "
                     f"after the flood /api/info answered in {done['alive'][1] * 1000:.0f} ms")
    lines.append(f"  server RSS {done['before']:.0f} MB before, {done['after_flood']:.0f} MB right after, "
                 f"{done['after']:.0f} MB once the queue drained (the worker process: {done['worker']:.0f} MB)")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="A bounded flood of impasto serve on loopback, and its figures.")
    parser.add_argument("--data", type=Path, help="where the server keeps its history and log (default: a "
                                                  "temporary folder, removed afterwards)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="impasto-flood-") as tmp:
        done = run(args.data or Path(tmp))
        print(figures(done))
        if done["code"] != 0:
            print(f"impasto serve exited with {done['code']}:\n{done['log']}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
