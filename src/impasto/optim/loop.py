"""The optimisation loop: only the pixels change, the network is fixed (Gatys et al., section 2).

Split into its natural steps — make the optimiser, take one step, watch for divergence and
stalling — reporting every iteration to a callback and checking a cancel token (:mod:`impasto.job`)
before each.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import torch

from ..errors import DivergedError
from ..job import Cancel
from .lbfgs import LBFGS
from ..loss.terms import Objective
from .pyramid import LaplacianImage, auto_levels

EARLY_STOP_WINDOW = 20
MAX_RESTARTS = 5  # non-finite steps survived (by restarting from the best image) before giving up


# Images are optimised in 0–255 pixel units — the units the network was trained on (Caffe) and the
# ones the original implementations optimise in; L-BFGS's first step is given in them (impasto.optim.lbfgs).
PIXEL_SCALE = 255.0
FIRST_MOVE = 16.0  # L-BFGS's first step moves the steepest entry by this much, in those units


@dataclass(frozen=True)
class LoopSettings:
    """The loop's settings; built from a job's config by :func:`loop_settings` only (its defaults are
    the config's)."""

    optimizer: str          # "lbfgs" or "adam"
    lr: float | None        # Adam's step, in the optimiser's units (L-BFGS: unused)
    lbfgs_history: int
    line_search: bool
    early_stop: float
    clamp: bool             # keep the image in [0, scale]
    scale: float = PIXEL_SCALE       # the optimiser's units per unit of the objective's input
    first_move: float = FIRST_MOVE
    laplacian_levels: int = 1  # L-BFGS over a Laplacian pyramid's levels (impasto.optim.pyramid); 1: pixels, 0: auto
    pairs_dtype: torch.dtype | None = None  # L-BFGS's curvature pairs kept in this dtype (None: the image's)


def loop_settings(config, *, clamp: bool = True, pairs_dtype: torch.dtype | None = None, **fixed) -> LoopSettings:
    """The optimiser settings of a job's ``config`` (TransferConfig, ReconstructConfig, GridConfig,
    AudioConfig); ``fixed`` gives those a job does not offer as options (audio: L-BFGS only)."""
    names = ("optimizer", "lr", "lbfgs_history", "line_search", "early_stop", "laplacian_levels")
    return LoopSettings(**{n: fixed[n] if n in fixed else getattr(config, n) for n in names}, clamp=clamp,
                        pairs_dtype=pairs_dtype)


def make_optimizer(param: torch.Tensor, s: LoopSettings) -> torch.optim.Optimizer:
    if s.lr is None:
        raise ValueError("Adam needs a learning rate")
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
        self.best_loss, self.best_image = math.inf, image.detach()  # never written in place: no copy
        self.history: list[float] = []
        self.last_report: dict[str, float] = {}
        self.restarts = 0
        self.converged = False
        self.pyramid = None
        if settings.optimizer == "lbfgs":
            bounds = (0.0, settings.scale) if settings.clamp else None
            levels = settings.laplacian_levels or auto_levels(max(image.shape[-2:]))
            if levels > 1:  # the variable is the pyramid; the image is kept in range in pixels()
                self.pyramid, bounds = LaplacianImage(image.shape, levels), None
                self.x = self.pyramid.start(self.x)
            self.lbfgs = LBFGS(settings.lbfgs_history, settings.first_move, bounds, settings.line_search,
                               settings.pairs_dtype)
            self.current = None  # (loss, gradient, report) at self.x once evaluated
        else:
            self.x.requires_grad_(True)
            self.optimizer = make_optimizer(self.x, settings)

    def pixels(self, x: torch.Tensor) -> torch.Tensor:
        """The image (optimiser units) of the variable ``x``: ``x`` itself, or the pyramid's
        composition kept in range (the objective then sees only valid images)."""
        if self.pyramid is None:
            return x
        image = self.pyramid.compose(x)
        return image.clamp(0, self.settings.scale) if self.settings.clamp else image

    def evaluate(self, x: torch.Tensor):
        """``(loss, gradient, report)`` at ``x`` (optimiser units), or None where the loss is not finite."""
        x = x.detach().requires_grad_(True)
        image = self.pixels(x) / self.settings.scale
        loss, report = self.objective(image)
        if not math.isfinite(report["total"]):
            return None
        loss.backward()
        if report["total"] < self.best_loss:
            self.best_loss, self.best_image = report["total"], image.detach()
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
        with torch.no_grad():
            return self.pixels(self.x.detach()) / self.settings.scale

    def run(self, iterations: int, report: Callable[[dict, torch.Tensor], None] | None = None,
            cancel: Cancel | None = None) -> torch.Tensor:
        """Up to ``iterations`` steps, as :func:`run_loop`; the best image."""
        for _ in range(iterations):
            if cancel is not None:
                cancel.check(lambda: self.best_image)
            losses = self.step()
            if report is not None:
                report(losses, self.image())
            if self.stalled():
                break
        return self.finish()


def run_loop(objective: Objective, image: torch.Tensor, iterations: int, settings: LoopSettings,
             report: Callable[[dict, torch.Tensor], None] | None = None,
             cancel: Cancel | None = None) -> torch.Tensor:
    """Run up to ``iterations`` steps, calling ``report(losses, current_image)`` after each.

    ``cancel`` is checked before every step: once set, :class:`~impasto.job.Interrupted` is raised
    with the best image evaluated so far as its ``partial`` (``(1, 3, H, W)``, on the loop's device).
    """
    return Loop(objective, image, settings).run(iterations, report, cancel)


class _NonFinite(Exception):
    """Internal: the objective was NaN or inf at the point just tried."""


def clock() -> float:
    return time.perf_counter()
