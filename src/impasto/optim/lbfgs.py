"""L-BFGS over an image's pixels, with a first step in pixel units and projected, checked steps.

Nocedal & Wright, "Numerical Optimization" (2nd ed. 2006): the two-loop recursion (Algorithm 7.4)
gives ``d = −H g`` from the last ``history`` curvature pairs ``(s, y)`` with ``H₀ = γI``,
``γ = sᵀy / yᵀy`` (eq. 7.20); a step is accepted when it lowers the loss enough (the Armijo condition,
eq. 3.6a, ``c₁ = 1e-4``) and shortened by quadratic interpolation (section 3.5) when it does not.

Why not ``torch.optim.LBFGS`` (which impasto used before, as pastiche does):

- its first step moves by ``g / ‖g‖₁`` — from a photo in 0–255 units a few thousandths of a grey
  level per pixel, so the first curvature pair is rounding noise and the next unit step explodes
  (measured at 128 px: 3.2e11 → 5.7e13, the loss never recovered). Here the first step moves the
  pixel with the largest gradient by ``first_move`` grey levels;
- driven one iteration per ``step()`` call it evaluates every line-searched iterate twice; here every
  point is evaluated once;
- clamping the pixels after its step makes its curvature pairs describe a step that was not taken;
  here each trial point is projected into the box *before* it is evaluated, and the pair is the
  projected step (a simple projected L-BFGS; the bound-constrained L-BFGS-B of Byrd, Lu, Nocedal &
  Zhu 1995 would also bend the direction at the bounds).

The curvature pairs can be kept in a narrower ``storage`` dtype (bfloat16: half the memory of the
history, which at print sizes is most of what the optimiser holds, issue 26); every product is then
taken in the gradient's dtype and ``1 / sᵀy`` from the stored pair, so the update stays the exact
two-loop recursion of the rounded pairs (and H stays positive definite).
"""

from __future__ import annotations

from typing import Callable

import torch

ARMIJO = 1e-4          # c₁ of the sufficient-decrease condition (Nocedal & Wright's value)
CURVATURE = 0.9        # c₂: with ``search``, a step is lengthened while the slope is still this steep
MAX_TRIES = 12         # evaluations one iteration may spend shortening or lengthening its step
# x -> (loss, gradient, anything the caller wants back with the accepted point), None where not finite
Evaluate = Callable[[torch.Tensor], "tuple | None"]


class LBFGS:
    """Minimise ``f`` over ``x`` (any shape), optionally within ``bounds``; one :meth:`step` per iteration."""

    def __init__(self, history: int, first_move: float, bounds: tuple[float, float] | None = None,
                 search: bool = False, storage: torch.dtype | None = None):
        self.history, self.first_move, self.bounds, self.search = history, first_move, bounds, search
        self.storage = storage  # the pairs' dtype; None: the gradient's
        self.pairs: list[tuple[torch.Tensor, torch.Tensor, float]] = []  # (s, y, 1 / sᵀy), oldest first

    def direction(self, g: torch.Tensor) -> torch.Tensor:
        """``−H g`` by the two-loop recursion (Algorithm 7.4)."""
        q = -g.clone()
        alphas = []
        for s, y, rho in reversed(self.pairs):
            a = rho * _dot(s, q)
            q.add_(y.to(q.dtype), alpha=-a)
            alphas.append(a)
        if self.pairs:
            s, y, _ = self.pairs[-1]
            q.mul_(_dot(s, y) / _dot(y, y))
        else:  # no curvature known yet: move the steepest pixel by first_move
            q.mul_(self.first_move / max(float(g.abs().max()), 1e-30))
        for (s, y, rho), a in zip(self.pairs, reversed(alphas)):
            b = rho * _dot(y, q)
            q.add_(s.to(q.dtype), alpha=a - b)
        return q

    def project(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (a fresh tensor: clamped in place, no full-size copy) within the bounds."""
        return x if self.bounds is None else x.clamp_(*self.bounds)

    def step(self, x: torch.Tensor, f: float, g: torch.Tensor, evaluate: Evaluate):
        """One iteration from ``x`` (loss ``f``, gradient ``g``): ``(x, f, g, …)`` of the accepted point
        (``…``: the rest of what ``evaluate`` returned there), or ``None`` when no step along the
        direction lowers the loss (a minimum, as far as it can tell)."""
        d = self.direction(g)
        slope = float(torch.vdot(g.flatten(), d.flatten()))
        if slope == 0 and not self.pairs:  # a zero gradient: at a minimum (or a flat spot) already
            return None
        if slope >= 0 and self.pairs:  # not a descent direction: forget the curvature, go downhill
            self.pairs.clear()
            return self.step(x, f, g, evaluate)
        accepted = self._search(x, f, g, d, slope, evaluate)
        if accepted is None:
            if not self.pairs:
                return None
            self.pairs.clear()  # the curvature led nowhere: one more try from steepest descent
            return self.step(x, f, g, evaluate)
        self._remember(accepted[0] - x, accepted[2] - g)
        return accepted

    def _search(self, x, f, g, d, slope, evaluate):
        """The unit step (Nocedal & Wright: L-BFGS's natural step), shortened until it lowers the loss
        enough; with ``search`` also lengthened while the loss keeps falling steeply."""
        t, best, tries = 1.0, None, 0
        while tries < MAX_TRIES:
            tries += 1
            x_new = self.project(torch.add(x, d, alpha=t))
            result = evaluate(x_new)
            decrease = float(torch.vdot(g.flatten(), (x_new - x).flatten()))
            if result is not None and result[0] < f and result[0] <= f + ARMIJO * decrease:
                best = (x_new, *result)
                break
            if result is None:
                t *= 0.1
            else:  # minimiser of the quadratic through f, the slope and the new value (section 3.5)
                curve = 2 * (result[0] - f - slope * t)
                t = min(0.5 * t, max(0.1 * t, -slope * t * t / curve)) if curve > 0 else 0.1 * t
        if best is None or not self.search:
            return best
        while tries < MAX_TRIES and float(torch.vdot(best[2].flatten(), d.flatten())) < CURVATURE * slope:
            tries += 1
            t *= 4.0
            x_new = self.project(torch.add(x, d, alpha=t))
            result = evaluate(x_new)
            if result is None or result[0] >= best[1]:
                break
            best = (x_new, *result)
        return best

    def _remember(self, s: torch.Tensor, y: torch.Tensor) -> None:
        if self.storage is not None:
            s, y = s.to(self.storage), y.to(self.storage)
        sy = _dot(s, y)
        if sy <= 1e-10 * _dot(y, y):
            return  # no positive curvature along s: keep H positive definite
        if len(self.pairs) == self.history:
            self.pairs.pop(0)
        self.pairs.append((s, y, 1.0 / sy))


def _dot(a: torch.Tensor, b: torch.Tensor) -> float:
    """``aᵀb`` in the wider of the two dtypes (at least float32)."""
    dtype = torch.promote_types(torch.promote_types(a.dtype, b.dtype), torch.float32)
    return float(torch.vdot(a.flatten().to(dtype), b.flatten().to(dtype)))
