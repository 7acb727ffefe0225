"""The fixtures of the serve tests, on the harness in tests/serve/helpers.py: an app without a worker
and with small limits for each test (``bare``), and one with the real worker process (``served``),
started once for each module that uses it, with a photo and a painting uploaded to it (``pictures``).
The jobs are real and tiny (32 px, a few iterations; the fast model at 32 px).
"""

from __future__ import annotations

import os

import pytest

from impasto.serve.limits import Limits


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
    from serve.helpers import Served

    s = Served(tmp_path_factory.mktemp("served") / "data", Limits(preview_every=1, cancel_wait_s=30))
    yield s
    s.close()


@pytest.fixture
def bare(tmp_path):
    """An app without a worker (jobs stay queued) and with small limits, one per test."""
    from serve.helpers import Served

    s = Served(tmp_path / "data", Limits(max_upload_bytes=200_000, max_pixels=250_000, max_queue=3, max_size=256,
                                         ping_s=0.3, max_clip_frames=30, max_clip_seconds=2.0,
                                         max_clip_pixels=10_000), start_worker=False)
    yield s
    s.close()


@pytest.fixture(scope="module")
def pictures(served):
    """A photo and a painting uploaded to the module's app: their upload ids."""
    from serve.helpers import png

    photo = served.upload("photo.png", png((64, 48)))
    painting = served.upload("painting.png", png((48, 48), (230, 200, 60)))
    assert photo.status_code == painting.status_code == 201, (photo.text, painting.text)
    return photo.json()["id"], painting.json()["id"]
