"""Tests of impasto.optim.loop: L-BFGS and Adam driven on a toy quadratic, restarts, early stop, cancel, clamping."""

import math
import threading
import time
from types import SimpleNamespace

import pytest
import torch

from impasto.errors import DivergedError
from impasto.job import Cancel, Interrupted
from impasto.optim.loop import EARLY_STOP_WINDOW, FIRST_MOVE, MAX_RESTARTS, PIXEL_SCALE, Loop, LoopSettings, loop_settings, run_loop

pytestmark = pytest.mark.usefixtures("one_thread")

SHAPE = (1, 3, 4, 5)
SIZE = math.prod(SHAPE)


def problem(seed: int = 0, low: float = 0.15, high: float = 0.85):
    """Curvatures ``a`` log-spaced over [1, 50] (condition number 50), shuffled; target ``t`` in (low, high)."""
    gen = torch.Generator().manual_seed(seed)
    a = torch.logspace(0, math.log10(50), SIZE)[torch.randperm(SIZE, generator=gen)].reshape(SHAPE)
    t = low + (high - low) * torch.rand(SHAPE, generator=gen)
    return a, t


def start(value: float = 0.5) -> torch.Tensor:
    return torch.full(SHAPE, value)


class Quadratic:
    """``f(x) = ½ Σ a (x − t)²`` as an objective (loss tensor, report); records every call.

    ``nan_at``: 1-based call numbers whose loss is NaN; ``nan_from``: NaN from that call on;
    ``sleep``: seconds each call takes (so that another thread gets in).
    """

    def __init__(self, a, t, nan_at=(), nan_from=None, sleep=0.0):
        self.a, self.t, self.nan_at, self.nan_from, self.sleep = a, t, set(nan_at), nan_from, sleep
        self.images: list[torch.Tensor] = []
        self.losses: list[float] = []

    def value(self, image: torch.Tensor) -> torch.Tensor:
        return 0.5 * (self.a * (image - self.t) ** 2).sum()

    def __call__(self, image: torch.Tensor):
        n = len(self.images) + 1
        self.images.append(image.detach().clone())
        if self.sleep:
            time.sleep(self.sleep)
        loss = self.value(image)
        if n in self.nan_at or (self.nan_from is not None and n >= self.nan_from):
            loss = loss * float("nan")
        total = float(loss.detach())
        self.losses.append(total)
        return loss, {"quadratic": total, "total": total}

    def best(self, calls: int | None = None) -> tuple[torch.Tensor, float]:
        """The image with the lowest finite loss among the first ``calls`` calls (the first such, as the
        loop keeps the first of equal losses), and that loss."""
        losses = self.losses[:calls]
        i = min((i for i, v in enumerate(losses) if math.isfinite(v)), key=lambda i: losses[i])
        return self.images[i], losses[i]


def settings(optimizer="lbfgs", lr=None, line_search=False, early_stop=0.0, clamp=True, history=10,
             levels=1) -> LoopSettings:
    config = SimpleNamespace(optimizer=optimizer, lr=lr, lbfgs_history=history, line_search=line_search,
                             early_stop=early_stop, laplacian_levels=levels)
    return loop_settings(config, clamp=clamp)


def max_error(image, target) -> float:
    return float((image - target).abs().max())


def steps(loop: Loop, objective: Quadratic, n: int) -> list[int]:
    """Run ``n`` iterations of ``loop`` (stopping where the loop says it stalled, as run_loop does);
    the number of objective calls each one made."""
    per = []
    for _ in range(n):
        before = len(objective.images)
        loop.step()
        per.append(len(objective.images) - before)
        if loop.stalled():
            break
    return per


# ---------------------------------------------------------------------------------------------- settings

def test_loop_settings_come_from_the_config_and_fixed_values_win():
    config = SimpleNamespace(optimizer="adam", lr=3.0, lbfgs_history=7, line_search=True, early_stop=1e-4,
                             laplacian_levels=1, unrelated="ignored")
    s = loop_settings(config, clamp=False)
    assert s == LoopSettings("adam", 3.0, 7, True, 1e-4, False, PIXEL_SCALE, FIRST_MOVE)
    s = loop_settings(config, optimizer="lbfgs", line_search=False)
    assert (s.optimizer, s.lr, s.lbfgs_history, s.line_search, s.early_stop, s.clamp) == \
        ("lbfgs", 3.0, 7, False, 1e-4, True)


# ---------------------------------------------------------------------------------------------- L-BFGS

def test_lbfgs_minimises_the_quadratic():
    a, t = problem()
    f = Quadratic(a, t)
    out = run_loop(f, start(), 35, settings())
    assert out.shape == SHAPE and out.dtype == torch.float32
    assert max_error(out, t) < 1e-3
    assert f.losses[-1] < 1e-6 * f.losses[0]
    best, best_loss = f.best()
    assert torch.equal(out, best)                 # L-BFGS hands back the best point it evaluated
    assert best_loss == min(f.losses)


def test_plain_lbfgs_evaluates_once_per_iteration():
    a, t = problem()
    f = Quadratic(a, t)
    loop = Loop(f, start(), settings(line_search=False))
    per = steps(loop, f, 30)
    assert per == [2] + [1] * 29                  # the start point, then every unit step is accepted at once
    assert len(f.images) == 31
    assert torch.equal(f.images[0], start())
    # the first step is steepest descent moving the steepest pixel by FIRST_MOVE grey levels
    assert max_error(f.images[1], f.images[0]) == pytest.approx(FIRST_MOVE / PIXEL_SCALE, rel=1e-5)
    g = a * (f.images[0] - t)
    expected = f.images[0] - g / g.abs().max() * FIRST_MOVE / PIXEL_SCALE
    assert torch.allclose(f.images[1], expected, rtol=0, atol=1e-6)
    # history holds the loss at the point each iteration started from
    assert loop.history == f.losses[:30]


def test_searched_lbfgs_lengthens_the_first_step_as_the_slope_says_and_converges():
    # Far from a target near 1 the first step (FIRST_MOVE grey levels) is short: along the first
    # direction d the loss is φ(τ) = f + τ·slope + ½τ²·c, minimal at τ* = −slope / c. The search
    # lengthens τ (×4) while φ'(τ) < 0.9·slope, i.e. while τ < 0.1·τ*, and every such lengthening lowers
    # φ (4τ < 0.4·τ* < 2τ*), so it makes k = #{τ = 1, 4, 16, … : τ < 0.1·τ*} extra evaluations.
    a, t = problem(low=0.8, high=0.95)
    x0 = start(0.05)
    g = a * (x0 - t) / PIXEL_SCALE                              # the gradient in the loop's units
    d = -g / g.abs().max() * FIRST_MOVE
    slope, c = float((g * d).sum()), float((a * d * d).sum()) / PIXEL_SCALE ** 2
    tau_star = -slope / c
    k, tau = 0, 1.0
    while tau < 0.1 * tau_star:
        tau, k = 4 * tau, k + 1
    assert k >= 1                                               # (the problem is chosen to need one)
    assert float((x0 * PIXEL_SCALE + tau * d).max()) < PIXEL_SCALE   # no bound in the way

    plain, searched = Quadratic(a, t), Quadratic(a, t)
    plain_loop = Loop(plain, x0, settings(line_search=False))
    searched_loop = Loop(searched, x0, settings(line_search=True))
    assert steps(plain_loop, plain, 1) == [2]
    assert steps(searched_loop, searched, 1) == [2 + k]
    assert torch.equal(searched.images[1], plain.images[1])    # both try the same unit step first
    assert torch.allclose(searched_loop.image(), x0 + tau * d / PIXEL_SCALE, rtol=0, atol=1e-6)
    assert searched.losses[-1] == min(searched.losses) < plain.losses[-1]
    assert searched.losses[-1] == pytest.approx(0.5 * float((a * (x0 - t) ** 2).sum())
                                                + (tau * slope + 0.5 * tau * tau * c), rel=1e-5)

    f = Quadratic(a, t)
    out = run_loop(f, x0, 45, settings(line_search=True))
    assert max_error(out, t) < 1e-3
    assert torch.equal(out, f.best()[0])


def test_lbfgs_steps_back_from_a_single_nan_trial_point():
    a, t = problem()
    f = Quadratic(a, t, nan_at={5})
    loop = Loop(f, start(), settings())
    per = steps(loop, f, 35)
    # call 5 is the 4th iteration's unit step (from call 4's point): NaN, so that iteration tries a tenth
    # of the step instead (accepted): two evaluations, no restart, and the run goes on to the minimum
    assert per[:4] == [2, 1, 1, 2] and loop.restarts == 0
    x, unit = f.images[3], f.images[4] - f.images[3]
    assert torch.allclose(f.images[5], x + 0.1 * unit, rtol=0, atol=1e-6)
    assert math.isfinite(f.losses[5]) and f.losses[5] < f.losses[3]
    assert max_error(loop.finish(), t) < 1e-3


def test_lbfgs_nan_at_the_start_image_raises():
    a, t = problem()
    f = Quadratic(a, t, nan_at={1})
    with pytest.raises(DivergedError, match="start image"):
        run_loop(f, start(), 10, settings())
    assert len(f.images) == 1


def test_lbfgs_started_at_the_exact_minimum_stops_there():
    a, t = problem()
    f = Quadratic(a, t)
    out = run_loop(f, t.clone(), 10, settings())
    assert torch.equal(out, t)


# ---------------------------------------------------------------------------------------------- Adam

ADAM_LR = 4.0          # grey levels per step: 4/255 in the objective's units


def test_adam_restarts_from_the_best_image_after_a_nan_step():
    a, t = problem()
    f = Quadratic(a, t, nan_at={4})
    loop = Loop(f, start(), settings("adam", lr=ADAM_LR))
    for _ in range(200):
        loop.step()
    out = loop.finish()
    assert loop.restarts == 1
    assert math.isnan(f.losses[3]) and all(math.isfinite(v) for i, v in enumerate(f.losses) if i != 3)
    assert len(loop.history) == 199                           # the NaN step left no loss behind
    best, _ = f.best(3)
    assert torch.allclose(f.images[4], best, rtol=0, atol=1e-7)   # back to the best image (×255 ÷255)
    # with a fresh Adam state: its first step moves every pixel by lr·g / (|g| + eps)
    g = a * (f.images[4] - t) / PIXEL_SCALE
    expected = f.images[4] - ADAM_LR * g / (g.abs() + 1e-8) / PIXEL_SCALE
    assert torch.allclose(f.images[5], expected, rtol=0, atol=1e-6)
    assert max_error(out, t) < 1e-3


def test_adam_gives_up_after_max_restarts():
    a, t = problem()
    nan_from = 10
    f = Quadratic(a, t, nan_from=nan_from)
    loop = Loop(f, start(), settings("adam", lr=ADAM_LR))
    with pytest.raises(DivergedError, match="diverged"):
        for _ in range(1000):
            loop.step()
    # MAX_RESTARTS restarts survived; the next non-finite step raises
    assert len(f.images) == nan_from + MAX_RESTARTS
    assert sum(math.isnan(v) for v in f.losses) == MAX_RESTARTS + 1
    assert loop.restarts == MAX_RESTARTS + 1                  # (counted before it gives up)
    best, _ = f.best()
    for image in f.images[nan_from:]:                         # every restart went back to the best image
        assert torch.allclose(image, best, rtol=0, atol=1e-7)

    f = Quadratic(a, t, nan_from=nan_from)
    with pytest.raises(DivergedError):
        run_loop(f, start(), 1000, settings("adam", lr=ADAM_LR))
    assert len(f.images) == nan_from + MAX_RESTARTS


def test_adam_nan_at_the_start_image_raises_at_once():
    a, t = problem()
    f = Quadratic(a, t, nan_at={1})
    with pytest.raises(DivergedError):
        run_loop(f, start(), 10, settings("adam", lr=ADAM_LR))
    assert len(f.images) == 1                                  # no best image to go back to


# ---------------------------------------------------------------------------------------------- early stop

class OneSided(Quadratic):
    """``½ Σ a · max(t − x, 0)²``: zero (and flat) once every pixel is at or above its target. Adam's
    gradient never points down, so from below it only climbs: the loss falls, reaches exactly 0 and
    stays there."""

    def value(self, image):
        return 0.5 * (self.a * torch.relu(self.t - image) ** 2).sum()


def test_early_stop_window_stops_a_flat_run():
    a, t = problem()
    tol, budget = 1e-3, 400
    f = OneSided(a, t)
    loop = Loop(f, start(0.05), settings("adam", lr=ADAM_LR, early_stop=tol))
    steps(loop, f, budget)
    h = loop.history
    flat = h.index(0.0)                                        # the first iteration whose loss is 0
    assert 0 < flat < budget - 2 * EARLY_STOP_WINDOW
    assert all(v > 0 for v in h[:flat]) and all(v == 0 for v in h[flat:])
    # it stops on the first iteration whose loss is no lower than EARLY_STOP_WINDOW iterations before
    assert len(h) == flat + EARLY_STOP_WINDOW + 1

    f = OneSided(a, t)
    run_loop(f, start(0.05), budget, settings("adam", lr=ADAM_LR, early_stop=tol))
    assert len(f.images) == flat + EARLY_STOP_WINDOW + 1 + 1   # + the final image, evaluated by finish()

    f = OneSided(a, t)
    run_loop(f, start(0.05), budget, settings("adam", lr=ADAM_LR, early_stop=0.0))
    assert len(f.images) == budget + 1                         # no early stop: the whole budget


# ---------------------------------------------------------------------------------------------- cancel

@pytest.mark.parametrize("optimizer, calls", [("lbfgs", 4), ("adam", 3)])
def test_cancel_from_the_report_stops_after_that_iteration_with_the_best_image(optimizer, calls):
    a, t = problem()
    f = Quadratic(a, t)
    cancel, reports = Cancel(), []

    def report(losses, image):
        reports.append(losses)
        assert image.shape == SHAPE
        if len(reports) == 3:
            cancel.set()

    with pytest.raises(Interrupted) as stopped:
        run_loop(f, start(), 100, settings(optimizer, lr=ADAM_LR), report, cancel)
    assert len(reports) == 3
    assert len(f.images) == calls                               # L-BFGS: the start point + 3 steps
    assert [r["total"] for r in reports] == f.losses[:3]        # each the loss where its step started
    best, best_loss = f.best()
    assert torch.equal(stopped.value.partial, best)
    assert float(f.value(stopped.value.partial)) == best_loss == min(f.losses)


def test_cancel_set_before_the_run_hands_back_the_start():
    a, t = problem()
    f = Quadratic(a, t)
    cancel = Cancel()
    cancel.set()
    with pytest.raises(Interrupted) as stopped:
        run_loop(f, start(0.3), 100, settings(), cancel=cancel)
    assert f.images == [] and torch.equal(stopped.value.partial, start(0.3))


def test_cancel_from_another_thread_stops_within_one_iteration():
    a, t = problem()
    f = Quadratic(a, t, sleep=0.002)
    cancel, at_set = Cancel(), []

    def stop_soon():
        while len(f.images) < 10 and not cancel.is_set():  # (set by the finally below if the run failed)
            time.sleep(0.001)
        cancel.set()
        at_set.append(len(f.images))

    thread = threading.Thread(target=stop_soon)
    thread.start()
    began = time.perf_counter()
    try:
        with pytest.raises(Interrupted) as stopped:
            run_loop(f, start(), 5000, settings("adam", lr=ADAM_LR), cancel=cancel)
    finally:
        cancel.set()
        thread.join()
    assert time.perf_counter() - began < 5
    assert len(f.images) - at_set[0] <= 1                       # at most the evaluation of the step under way
    best, best_loss = f.best()
    assert torch.equal(stopped.value.partial, best)
    assert float(f.value(stopped.value.partial)) == best_loss == min(f.losses)


# ---------------------------------------------------------------------------------------------- clamping

def clamped_problem():
    a, t = problem()
    t[0, 0, 0, :4] = torch.tensor([-0.3, -0.05, 1.05, 1.4])
    t[0, 2, 3, :2] = torch.tensor([-0.2, 1.2])
    outside = (t < 0) | (t > 1)
    assert int(outside.sum()) == 6
    return a, t, outside


@pytest.mark.parametrize("optimizer, iterations", [("lbfgs", 40), ("adam", 300)])
def test_clamping_keeps_the_image_in_the_box_and_finds_the_box_minimum(optimizer, iterations):
    a, t, outside = clamped_problem()
    f = Quadratic(a, t)
    out = run_loop(f, start(), iterations, settings(optimizer, lr=ADAM_LR, clamp=True))
    assert all(float(image.min()) >= 0.0 and float(image.max()) <= 1.0 for image in f.images)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert torch.equal(out[outside], t.clamp(0, 1)[outside])    # exactly on the bound
    assert max_error(out, t.clamp(0, 1)) < 1e-3

    f = Quadratic(a, t)
    out = run_loop(f, start(), iterations, settings(optimizer, lr=ADAM_LR, clamp=False))
    assert max_error(out, t) < 1e-3                             # unclamped: the target, outside the box


# ---------------------------------------------------------------------------------------------- Laplacian pyramid

def test_lbfgs_over_the_pyramid_minimises_the_quadratic_and_stays_in_range():
    a, t, _ = clamped_problem()
    f = Quadratic(a, t)
    loop = Loop(f, start(), settings(levels=3))
    assert loop.pyramid is not None and loop.lbfgs.bounds is None  # the range is kept in the image
    for _ in range(80):
        loop.step()
    out = loop.finish()
    assert all(float(im.min()) >= 0 and float(im.max()) <= 1 for im in f.images)
    assert max_error(out, t.clamp(0, 1)) < 2e-3
