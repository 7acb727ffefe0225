"""A bounded flood on loopback (benchmarks/serve_flood.py, which also prints its figures): the real
``impasto serve`` under hundreds of concurrent job submissions and status requests, a few event
streams and a few oversized uploads must keep answering, hold its queue limit, lose no accepted job,
keep its memory bounded, and stop (Ctrl-C) by itself, its worker with it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("httpx")
pytest.importorskip("uvicorn")

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the flood is the benchmark's (benchmarks/, a package at the repository root)
    sys.path.insert(0, str(ROOT))

from benchmarks.serve_flood import OVERSIZED, STATUS, STREAMS, run  # noqa: E402

RSS_GROWTH_MB = 100        # the server's memory may grow this much at most over the flood


def test_a_flood_of_requests_on_loopback(tmp_path):
    done = run(tmp_path)
    kinds, accepted = done["kinds"], done["accepted"]
    assert done["code"] == 0, done["log"]
    assert f"impasto: serving on {done['base']}/ (Ctrl-C to stop)" in done["log"]
    # The worker and multiprocessing's resource tracker (spawn) go with the server; the tracker leaves
    # when it sees the server's end of its pipe close, a moment after the server itself.
    def alive(pid: int) -> bool:
        try:
            return "zombie" not in Path(f"/proc/{pid}/status").read_text()
        except OSError:  # gone
            return False

    workers = done["workers"]
    deadline = time.monotonic() + 5
    while any(alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert workers and not any(alive(w) for w in workers), "the worker outlived the server"

    # It kept answering: every request got an answer, and the one it should.
    assert set(kinds["submit"]) <= {201, 429}, kinds
    assert kinds["status"] == {200: STATUS}, kinds
    assert kinds["oversized"] == {413: OVERSIZED}, kinds
    assert done["alive"][0] == 200 and done["alive"][1] < 2.0
    assert len(done["seen"]) == STREAMS
    # The queue limit held: never more than 20 waiting.
    assert accepted and kinds["submit"][201] == len(accepted)
    assert max(a["position"] for a in accepted) <= 20
    assert max(sum(j["state"] == "queued" for j in listing) for listing in done["listings"]) <= 20
    # No accepted job was lost: each one is in the history, done.
    jobs = done["jobs"]
    assert {jid for jid in jobs} == {a["id"] for a in accepted} | {done["warm"]}
    assert all(jobs[a["id"]]["state"] == "done" for a in accepted)
    # Nothing of the oversized uploads was kept.
    uploads = [p.name for p in (done["data"] / "uploads").iterdir() if not p.name.startswith("ex-")]
    assert len(uploads) == 2, uploads  # the photo and its .json
    # Memory stayed bounded.
    growth = done["after"] - done["before"]
    assert growth < RSS_GROWTH_MB, f"the server grew by {growth:.0f} MB"
