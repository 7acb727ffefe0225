"""The job model every long job shares: one progress event, one cancel token, one way to stop.

Every job — ``transfer``, ``reconstruct``, the paper's ``figure`` sheets, ``audio``, ``train`` and
``fast`` over many files — reports each unit of work (an iteration, a training step, an image) as one
:class:`Progress`, checks one :class:`Cancel` token between units, and when the token is set raises
:class:`Interrupted` holding its own partial result. The terminal bar, the ``--progress json`` lines
and a web page consume the same events; Ctrl-C, a web page's stop button and a test's thread stop a
job the same way: by setting the token. (One event for the terminal and the browser, as crowsonkb's
style-transfer-pytorch feeds both; one logger for image and model optimisation, as pystiche.)
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

if TYPE_CHECKING:
    import torch


@dataclass
class Progress:
    """One unit of a job done: what the bar, the JSON lines and the web page show."""

    job: str                       # "transfer", "reconstruct", "figure", "audio", "train", "fast"
    done: int                      # units done so far (iterations, images), 1-based
    total: int                     # units planned
    stage: str                     # where in the job: "scale 2/3", "cell 4/20 (c) 1e-3", "step 1200/40000"
    losses: dict[str, float]       # the loss terms and the weighted "total" (empty where there are none)
    elapsed: float                 # seconds since the job started
    eta: float | None              # seconds left at the rate so far (None before the rate is known)
    unit: str = "it"               # what ``done`` counts: "it" (iterations), "img" (images), "frame"
    image: torch.Tensor | None = field(default=None, repr=False)  # (1, 3, H, W) in [0, 1] when asked for
    frame: int | None = None       # a video: the frame being made (1-based), or the one just finished
    frames: int | None = None      # a video: how many frames it has
    finished: bool = False         # a video: this event hands over a finished frame (``image``), no unit done
    extra: dict[str, float] = field(default_factory=dict)  # other figures that are no loss (a flow's "reliable" share)

    def to_dict(self) -> dict:
        """The event as JSON-ready values (no image; a non-finite number becomes None, as JSON has no NaN)."""
        out = {"event": "progress", "job": self.job, "done": self.done, "total": self.total,
               "stage": self.stage, "unit": self.unit,
               "losses": {k: _finite(v) for k, v in self.losses.items()},
               "elapsed": round(self.elapsed, 3), "eta": None if self.eta is None else round(self.eta, 1)}
        if self.frames is not None:
            out.update(frame=self.frame, frames=self.frames, finished=self.finished)
        if self.extra:
            out["extra"] = {k: _finite(v) for k, v in self.extra.items()}
        return out

    def to_json(self) -> str:
        """One JSON line: :meth:`to_dict`."""
        return json.dumps(self.to_dict())


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


Callback = Callable[[Progress], None]


class Interrupted(KeyboardInterrupt):
    """A job stopped by its cancel token (Ctrl-C, a stop button); ``partial`` is the job's own partial
    result: a PIL image (transfer, reconstruct), the finished cells (figure), an AudioResult (audio),
    the checkpoint written (train), the files written (fast)."""

    def __init__(self, partial: Any = None):
        super().__init__("interrupted")
        self.partial = partial

    @property
    def image(self):
        """``partial`` under its name before version 0.2 (image jobs)."""
        return self.partial


class Cancel:
    """A request to stop, safe to set from any thread (or a signal handler); jobs check it between
    units of work and stop within one."""

    def __init__(self):
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()

    def check(self, partial: Callable[[], Any]) -> None:
        """Raise :class:`Interrupted` with ``partial()`` if a stop was asked for."""
        if self._event.is_set():
            raise Interrupted(partial())


@contextlib.contextmanager
def ctrl_c_sets(cancel: Cancel):
    """While a job runs in the main thread, Ctrl-C sets ``cancel`` (the job then stops after the unit
    it is in, keeping its result); a second Ctrl-C interrupts at once. Elsewhere: nothing to do."""
    if threading.current_thread() is not threading.main_thread():
        yield cancel
        return

    def handler(signum, frame):
        if cancel.is_set():
            raise KeyboardInterrupt
        cancel.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield cancel
    finally:
        signal.signal(signal.SIGINT, previous)


PARTIAL_AT_MOST = 0.9  # an iteration may take more than one evaluation: never count one as done by its tiles


class Reporter:
    """Counts a job's units and hands each one to ``callback`` as a :class:`Progress`; holds the job's
    :class:`Cancel` token.

    ``done`` starts above 0 for a job that resumes (a training run, a figure with cached cells);
    the time left is estimated from the units done in this run only. ``cost``: each unit's relative
    cost where they differ (a transfer's iterations at its scales: their pixels), so that the time
    left is the time so far per cost times the cost left. A :meth:`phase` (a transfer's scale) is
    timed at its own rate once its first unit is done (a blend on the way there): the costs of
    different phases are a model (tiled against whole, one size against another) that can be off, the
    costs within a phase less so.
    """

    def __init__(self, job: str, total: int, callback: Callback | None = None, unit: str = "it", done: int = 0,
                 cancel: Cancel | None = None, cost: Sequence[float] | None = None):
        self.job, self.total, self.callback, self.unit = job, total, callback, unit
        self.cancel = cancel or Cancel()
        self.done = self.first = done
        self.start = time.perf_counter()
        self.cost = None if cost is None else [0.0, *itertools.accumulate(cost)]  # cost of the first n units
        self.partial = 0.0  # share of the next unit done (an iteration part-way through its tiles)
        self.phase_units = (done, done)  # the current phase's first unit and the unit after its last
        self.phase_start = 0.0  # elapsed when it began

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def _cost(self, units: int) -> float:
        if self.cost is None:
            return float(units)
        return self.cost[max(0, min(units, len(self.cost) - 1))]

    def eta(self) -> float | None:
        part = self.partial * (self._cost(self.done + 1) - self._cost(self.done))
        ran = self._cost(self.done) - self._cost(self.first) + part
        if ran <= 0:
            return None
        elapsed, left = self.elapsed(), self._cost(self.total) - self._cost(self.done) - part
        first, end = self.phase_units
        phase_ran = self._cost(self.done) - self._cost(first) + part
        if not first <= self.done < end or phase_ran <= 0:  # no phase or nothing of it done: the run's rate
            return max(0.0, elapsed / ran * left)
        share = min(1.0, phase_ran / (self._cost(first + 1) - self._cost(first)))  # of its first unit
        phase_rate = share * (elapsed - self.phase_start) / phase_ran + (1 - share) * elapsed / ran
        phase_left = self._cost(end) - self._cost(self.done) - part
        return max(0.0, phase_rate * phase_left + elapsed / ran * (left - phase_left))

    def phase(self, units: int) -> None:
        """The next ``units`` units are one phase: its own rate, from the whole run's, as its first unit
        is done, times the rest of the phase."""
        self.phase_units, self.phase_start = (self.done, self.done + units), self.elapsed()

    def __call__(self, losses: dict[str, float], stage: str = "", image: torch.Tensor | None = None,
                 units: int = 1, partial: float = 0.0, **fields) -> None:
        """``units`` more done, and ``partial`` (below 1) of the next one; ``fields``: the typed extras of
        :class:`Progress` (``frame``, ``extra`` …)."""
        self.done += units
        self.partial = min(max(partial, 0.0), PARTIAL_AT_MOST)
        if self.callback is not None:
            self.callback(Progress(self.job, self.done, self.total, stage, dict(losses), self.elapsed(),
                                   self.eta(), self.unit, image, **fields))

    def extend(self, extra: float) -> None:
        """The next unit costs ``extra`` more than planned (an iteration that needs another evaluation)."""
        if self.cost is not None:
            self.cost[self.done + 1:] = [c + extra for c in self.cost[self.done + 1:]]

    def skip(self, units: int, stage: str, **fields) -> None:
        """Units found already done (a cached figure cell): counted, but not in the rate."""
        self.first += units
        self({}, stage, units=units, **fields)


@contextlib.contextmanager
def running(job: str, total: int, callback: Callback | None = None, cancel: Cancel | None = None,
            unit: str = "it", done: int = 0, cost: Sequence[float] | None = None):
    """How every job starts: its :class:`Reporter` (progress to ``callback``; ``cost``: each unit's
    relative cost), its :class:`Cancel` token (``cancel``, or a new one: ``reporter.cancel``), and
    Ctrl-C setting that token while the job runs in the main thread (:func:`ctrl_c_sets`)."""
    reporter = Reporter(job, total, callback, unit, done, cancel, cost)
    with ctrl_c_sets(reporter.cancel):
        yield reporter


# ---------------------------------------------------------------- work kept beside an output

KEPT_FORMAT = "impasto-kept/1"


def fingerprint(kind: str, settings, arrays=(), files=()) -> str:
    """SHA-256 of everything that shapes a job's kept work (a video's frames, a transfer's finished
    scales): the kind, every setting (dataclasses), the input arrays' pixels, the input files' bytes
    (PIL images: their pixels; anything else: its text) and the version."""
    import dataclasses
    import hashlib
    from pathlib import Path

    import numpy as np
    from PIL import Image

    from . import __version__

    h = hashlib.sha256()
    h.update(json.dumps([KEPT_FORMAT, kind, __version__, [dataclasses.asdict(s) for s in settings]],
                        sort_keys=True, default=str).encode())
    for a in arrays:
        h.update(str(a.shape).encode() + np.ascontiguousarray(a).tobytes())
    for item in files:
        if isinstance(item, Image.Image):
            h.update(item.tobytes())
        elif item is not None and Path(item).is_file():
            h.update(Path(item).read_bytes())
        else:
            h.update(str(item).encode())
    return h.hexdigest()


def kept_folder(output, key: str, what: str):
    """Where a job writing ``output`` keeps its finished ``what`` (frames, scales): beside it, named by
    the ``key`` (:func:`fingerprint`), so the same command goes on from them after Ctrl-C or a crash."""
    from pathlib import Path

    out = Path(output)
    return out.with_name(f"{out.name}.{what}-{key[:16]}")
