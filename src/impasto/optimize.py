"""The optimisation loop: only the pixels change, the network is fixed (Gatys et al., section 2).

Split into its natural steps — make the optimiser, take one step, watch for divergence and
stalling — and reporting every iteration through a callback with a :class:`Progress` event.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from .errors import DivergedError
from .lbfgs import LBFGS
from .objective import Objective

EARLY_STOP_WINDOW = 20
MAX_RESTARTS = 5  # non-finite steps survived (by restarting from the best image) before giving up


@dataclass
class Progress:
    """One iteration's report: the CLI's bar and the web page only consume these."""

    iteration: int                 # 1-based, counted over all scales
    iterations: int                # planned total over all scales
    scale: int                     # 0-based index of the current scale
    scales: int
    size: tuple[int, int]          # (width, height) at this scale
    losses: dict[str, float]       # unweighted terms and the weighted "total"
    elapsed: float                 # seconds since the run started
    image: torch.Tensor | None = field(default=None, repr=False)  # (1, 3, H, W) when requested


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a run; ``image`` holds the latest result (PIL image, full size)."""

    def __init__(self, image):
        super().__init__("interrupted")
        self.image = image


@dataclass
class LoopSettings:
    optimizer: str = "lbfgs"
    lr: float = 4.0       # Adam's step, in 0–255 pixel units
    lbfgs_history: int = 30
    line_search: bool = False
    early_stop: float = 0.0
    clamp: bool = True    # keep the variable in [0, scale] (images)
    scale: float = 255.0  # the optimiser's units per unit of the objective's input (see below)
    first_move: float = 16.0  # L-BFGS's first step moves the steepest entry by this much, in those units


# Images are optimised in 0–255 pixel units (scale 255) — the units the network was trained on
# (Caffe) and the ones the original implementations optimise in; L-BFGS's first step is given in
# them (impasto.lbfgs).


def make_optimizer(param: torch.Tensor, s: LoopSettings) -> torch.optim.Optimizer:
    return torch.optim.Adam([param], lr=s.lr)


def _stalled(history: list[float], tol: float) -> bool:
    if tol <= 0 or len(history) <= EARLY_STOP_WINDOW:
        return False
    before, now = history[-EARLY_STOP_WINDOW - 1], history[-1]
    return (before - now) <= tol * abs(before)


class Loop:
    """Minimise ``objective`` over the pixels of ``image``; keeps the best image it evaluated."""

    def __init__(self, objective: Objective, image: torch.Tensor, settings: LoopSettings):
        self.objective, self.settings = objective, settings
        self.x = image.detach().clone(memory_format=torch.contiguous_format) * settings.scale
        self.best_loss, self.best_image = math.inf, image.detach().clone()
        self.history: list[float] = []
        self.last_report: dict[str, float] = {}
        self.restarts = 0
        self.converged = False
        if settings.optimizer == "lbfgs":
            bounds = (0.0, settings.scale) if settings.clamp else None
            self.lbfgs = LBFGS(settings.lbfgs_history, settings.first_move, bounds, settings.line_search)
            self.current = None  # (loss, gradient, report) at self.x once evaluated
        else:
            self.x.requires_grad_(True)
            self.optimizer = make_optimizer(self.x, settings)

    def evaluate(self, x: torch.Tensor):
        """``(loss, gradient, report)`` at ``x`` (optimiser units), or None where the loss is not finite."""
        x = x.detach().requires_grad_(True)
        loss, report = self.objective(x / self.settings.scale)
        if not math.isfinite(report["total"]):
            return None
        loss.backward()
        if report["total"] < self.best_loss:
            self.best_loss, self.best_image = report["total"], x.detach() / self.settings.scale
        return report["total"], x.grad, report

    def step(self) -> dict[str, float]:
        """One optimiser iteration; returns the losses at the point it started from."""
        return self._lbfgs_step() if self.settings.optimizer == "lbfgs" else self._adam_step()

    def _lbfgs_step(self) -> dict[str, float]:
        if self.current is None:
            self.current = self.evaluate(self.x)
            if self.current is None:
                raise DivergedError("the optimisation diverged: the loss is NaN or inf at the start image; "
                                    "try a lower --style-weight or --content-weight")
        report = self.current[2]
        moved = self.lbfgs.step(self.x, self.current[0], self.current[1], self.evaluate)
        if moved is None:
            self.converged = True
        else:
            self.x, self.current = moved[0], moved[1:]
        self.history.append(report["total"])
        self.last_report = report
        return report

    def _adam_step(self) -> dict[str, float]:
        evaluated = []

        def closure():
            self.optimizer.zero_grad(set_to_none=True)
            loss, report = self.objective(self.x / self.settings.scale)
            if not math.isfinite(report["total"]):
                raise _NonFinite()
            loss.backward()
            evaluated.append(report)
            if report["total"] < self.best_loss:
                self.best_loss, self.best_image = report["total"], self.image()
            return loss

        try:
            self.optimizer.step(closure)
        except _NonFinite:
            self._restart()
            return self.last_report
        if self.settings.clamp:
            with torch.no_grad():
                self.x.clamp_(0, self.settings.scale)
        self.history.append(evaluated[0]["total"])
        self.last_report = evaluated[0]
        return evaluated[0]

    def _restart(self) -> None:
        """An Adam step left the finite range: go back to the best image with a fresh optimiser state."""
        self.restarts += 1
        if not math.isfinite(self.best_loss) or self.restarts > MAX_RESTARTS:
            raise DivergedError("the optimisation diverged (loss is NaN or inf); try a lower --lr "
                                "or --style-weight, or --line-search")
        with torch.no_grad():
            self.x.copy_(self.best_image * self.settings.scale)
        self.optimizer = make_optimizer(self.x, self.settings)

    def stalled(self) -> bool:
        return self.converged or _stalled(self.history, self.settings.early_stop)

    @torch.no_grad()
    def finish(self) -> torch.Tensor:
        """The better of the best evaluated image and the final one (evaluated here if it was not)."""
        if self.settings.optimizer == "lbfgs":
            return self.best_image  # L-BFGS evaluated every point it moved to
        _, report = self.objective(self.image())
        if math.isfinite(report["total"]) and report["total"] <= self.best_loss:
            self.best_loss, self.best_image = report["total"], self.image()
        return self.best_image

    def image(self) -> torch.Tensor:
        """The current pixels as ``(1, 3, H, W)`` in [0, 1] (a copy)."""
        return self.x.detach() / self.settings.scale


class CtrlC:
    """Ctrl-C noted in a flag as well as raised: a KeyboardInterrupt that lands in a finaliser (garbage
    collection) is printed and swallowed by Python, so the loop also checks the flag each iteration."""

    def __init__(self):
        self.pressed = False

    def __enter__(self):
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handler)
        return self

    def _handler(self, signum, frame):
        self.pressed = True
        raise KeyboardInterrupt

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)


def run_loop(objective: Objective, image: torch.Tensor, iterations: int, settings: LoopSettings,
             report: Callable[[dict, torch.Tensor], None] | None = None) -> torch.Tensor:
    """Run up to ``iterations`` steps, calling ``report(losses, current_image)`` after each."""
    loop = Loop(objective, image, settings)
    try:
        with CtrlC() as ctrl_c:
            for _ in range(iterations):
                if ctrl_c.pressed:
                    raise KeyboardInterrupt
                losses = loop.step()
                if report is not None:
                    report(losses, loop.image())
                if loop.stalled():
                    break
    except KeyboardInterrupt:
        raise _Stop(loop.best_image) from None
    return loop.finish()


class _NonFinite(Exception):
    """Internal: the objective was NaN or inf at the point just tried."""


class _Stop(KeyboardInterrupt):
    """Internal: carries the best image of the scale that was interrupted."""

    def __init__(self, image: torch.Tensor):
        super().__init__("interrupted")
        self.image = image


def clock() -> float:
    return time.perf_counter()
