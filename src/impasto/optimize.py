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
    lbfgs_history: int = 100
    line_search: bool = False
    early_stop: float = 0.0
    clamp: bool = True    # keep the variable in [0, scale] after each step (images)
    scale: float = 255.0  # the optimiser's units per unit of the objective's input (see below)
    searched_start: int = 5  # L-BFGS iterations with a line search even when line_search is off


# Images are optimised in 0–255 pixel units (scale 255) — the units the network was trained on
# (Caffe) and the ones the original implementations optimise in. L-BFGS is invariant to that scale
# except for its first step, min(1, 1/‖g‖₁)·g, which is far too short in [0, 1] units when starting
# from the content photo: the curvature pairs it then collects are noise and the run stalls.


def make_optimizer(param: torch.Tensor, s: LoopSettings) -> torch.optim.Optimizer:
    if s.optimizer == "adam":
        return torch.optim.Adam([param], lr=s.lr)
    # max_iter=1: one L-BFGS iteration per step() call; its history lives on in the state.
    # torch caps the strong-Wolfe search at max_eval − 1 evaluations and max_eval defaults to
    # 5/4 · max_iter = 1, which leaves it none: it would stall at the first rejected step. Give it
    # torch's own 25 (max_ls) on top of the iteration's first evaluation.
    return torch.optim.LBFGS([param], lr=1.0, max_iter=1, max_eval=1 + 25, history_size=s.lbfgs_history,
                             line_search_fn="strong_wolfe" if s.line_search else None,
                             tolerance_grad=0.0, tolerance_change=0.0)


def _stalled(history: list[float], tol: float) -> bool:
    if tol <= 0 or len(history) <= EARLY_STOP_WINDOW:
        return False
    before, now = history[-EARLY_STOP_WINDOW - 1], history[-1]
    return (before - now) <= tol * abs(before)


class Loop:
    """Minimise ``objective`` over the pixels of ``image``; keeps the best image it evaluated."""

    def __init__(self, objective: Objective, image: torch.Tensor, settings: LoopSettings):
        self.objective, self.settings = objective, settings
        start = image.detach().clone(memory_format=torch.contiguous_format) * settings.scale
        self.param = start.requires_grad_(True)
        self.optimizer = make_optimizer(self.param, settings)
        self.best_loss, self.best_image = math.inf, image.detach().clone()
        self.history: list[float] = []
        self.last_report: dict[str, float] = {}
        self.restarts = 0

    def _closure(self):
        self.optimizer.zero_grad(set_to_none=True)
        loss, report = self.objective(self.param / self.settings.scale)
        if not math.isfinite(report["total"]):
            raise _NonFinite()
        loss.backward()
        self._evaluated.append((report, self.image()))
        return loss

    def _restart(self) -> None:
        """A step left the finite range: go back to the best image with a fresh optimiser state."""
        self.restarts += 1
        if not math.isfinite(self.best_loss) or self.restarts > MAX_RESTARTS:
            raise DivergedError("the optimisation diverged (loss is NaN or inf); try a lower --lr "
                                "or --style-weight, or --line-search")
        with torch.no_grad():
            self.param.copy_(self.best_image * self.settings.scale)
        self.optimizer = make_optimizer(self.param, self.settings)

    def _choose_line_search(self) -> None:
        """L-BFGS's first steps measure curvature from tiny moves; a line search keeps them from
        overshooting (from a photo the third step can jump a hundredfold and never recover). After
        ``searched_start`` iterations the history is good and plain unit steps are cheaper."""
        if isinstance(self.optimizer, torch.optim.LBFGS):
            searched = self.settings.line_search or len(self.history) < self.settings.searched_start
            self.optimizer.param_groups[0]["line_search_fn"] = "strong_wolfe" if searched else None

    def step(self) -> dict[str, float]:
        """One optimiser iteration; returns the losses at the point it started from."""
        self._evaluated = []
        self._choose_line_search()
        try:
            self.optimizer.step(self._closure)
            failed = False
        except _NonFinite:
            failed = True
        for rep, img in self._evaluated:
            if rep["total"] < self.best_loss:
                self.best_loss, self.best_image = rep["total"], img
        if failed:
            self._restart()
        if not self._evaluated:
            return self.last_report
        if self.settings.clamp:
            with torch.no_grad():
                self.param.clamp_(0, self.settings.scale)
        report = self._evaluated[0][0]
        self.history.append(report["total"])
        self.last_report = report
        return report

    def stalled(self) -> bool:
        return _stalled(self.history, self.settings.early_stop)

    @torch.no_grad()
    def finish(self) -> torch.Tensor:
        """The better of the best evaluated image and the final, not yet evaluated, one."""
        _, report = self.objective(self.image())
        if math.isfinite(report["total"]) and report["total"] <= self.best_loss:
            self.best_loss, self.best_image = report["total"], self.image()
        return self.best_image

    def image(self) -> torch.Tensor:
        """The current pixels as ``(1, 3, H, W)`` in [0, 1] (a copy)."""
        return self.param.detach() / self.settings.scale


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
