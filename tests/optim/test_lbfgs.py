"""impasto.optim.lbfgs on small problems with known minimisers (no network: milliseconds)."""

import torch

from impasto.optim.lbfgs import LBFGS


def quadratic(a: torch.Tensor, b: torch.Tensor):
    """f(x) = ½ xᵀAx − bᵀx, gradient Ax − b; counts its evaluations."""
    calls = []

    def evaluate(x):
        calls.append(x.clone())
        return float(0.5 * x @ a @ x - b @ x), a @ x - b

    return evaluate, calls


def minimise(opt: LBFGS, evaluate, x, iterations, gtol=0.0):
    f, g = evaluate(x)
    for minimise.iterations in range(1, iterations + 1):
        moved = opt.step(x, f, g, evaluate)
        if moved is None:
            break
        x, f, g = moved
        if float(g.abs().max()) <= gtol:
            break
    return x, f


def spd(n: int, condition: float, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    return q @ torch.diag(torch.logspace(0, torch.log10(torch.tensor(condition)).item(), n, dtype=torch.float64)) @ q.T


def test_converges_on_an_ill_conditioned_quadratic():
    a, b = spd(40, 1e3), torch.linspace(-1, 1, 40, dtype=torch.float64)
    evaluate, calls = quadratic(a, b)
    x, _ = minimise(LBFGS(history=10, first_move=1.0), evaluate, torch.zeros(40, dtype=torch.float64), 300, 1e-9)
    assert torch.allclose(x, torch.linalg.solve(a, b), atol=1e-8)
    assert minimise.iterations < 300           # (gradient descent would need thousands)
    assert len(calls) <= 1.3 * minimise.iterations     # mostly one evaluation per iteration


def test_first_step_moves_the_steepest_entry_by_first_move():
    a, b = torch.eye(5, dtype=torch.float64) * 1e-3, torch.tensor([1.0, -4.0, 2.0, 0.5, 0.0], dtype=torch.float64)
    evaluate, calls = quadratic(a, b)
    x0 = torch.zeros(5, dtype=torch.float64)
    f, g = evaluate(x0)
    x1, _, _ = LBFGS(history=5, first_move=3.0).step(x0, f, g, evaluate)
    assert torch.allclose(x1, b / 4.0 * 3.0)   # −g scaled so that max |Δx| = 3 (entry 1: −4 -> 3 units)
    assert len(calls) == 2                     # accepted at once: one evaluation


def test_steps_that_raise_the_loss_are_shortened():
    a, b = torch.eye(3, dtype=torch.float64), torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    evaluate, calls = quadratic(a, b)
    x0 = torch.zeros(3, dtype=torch.float64)
    f, g = evaluate(x0)
    x1, f1, _ = LBFGS(history=5, first_move=100.0).step(x0, f, g, evaluate)  # 100 overshoots the minimum at 3
    assert f1 < f and len(calls) > 2
    assert f1 <= f + 1e-4 * float(g @ (x1 - x0))   # Armijo


def test_bounds_are_respected_and_the_box_minimum_found():
    target = torch.tensor([-3.0, 0.5, 7.0, 255.5], dtype=torch.float64)
    evaluate, calls = quadratic(torch.eye(4, dtype=torch.float64), target)   # minimum at `target`
    x, _ = minimise(LBFGS(history=5, first_move=1.0, bounds=(0.0, 1.0)), evaluate,
                    torch.full((4,), 0.5, dtype=torch.float64), 50)
    assert all(float(c.min()) >= 0.0 and float(c.max()) <= 1.0 for c in calls)  # only points in the box
    assert torch.allclose(x, target.clamp(0, 1), atol=1e-9)


def test_rosenbrock():
    def evaluate(v):
        v = v.detach().requires_grad_(True)
        f = (1 - v[0]) ** 2 + 100 * (v[1] - v[0] ** 2) ** 2
        f.backward()
        return float(f.detach()), v.grad

    x, f = minimise(LBFGS(history=10, first_move=0.5, search=True), evaluate,
                    torch.tensor([-1.2, 1.0], dtype=torch.float64), 200)
    assert f < 1e-10 and torch.allclose(x, torch.ones(2, dtype=torch.float64), atol=1e-5)


def test_non_finite_points_are_stepped_back_from():
    a, b = torch.eye(2, dtype=torch.float64), torch.tensor([2.0, 2.0], dtype=torch.float64)
    inner, _ = quadratic(a, b)

    def evaluate(x):  # NaN beyond 2.5: the first trial (first_move 10) lands there
        return None if float(x.max()) > 2.5 else inner(x)

    x0 = torch.zeros(2, dtype=torch.float64)
    f, g = inner(x0)
    x1, f1, _ = LBFGS(history=5, first_move=10.0).step(x0, f, g, evaluate)
    assert f1 < f and float(x1.max()) <= 2.5


def test_stops_at_a_minimum():
    evaluate, _ = quadratic(torch.eye(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64))
    x, f = minimise(LBFGS(history=5, first_move=1.0), evaluate, torch.tensor([1.0, -1.0], dtype=torch.float64), 100)
    assert f < 1e-20


def test_pairs_kept_in_bfloat16_give_the_recursion_of_the_rounded_pairs():
    """``storage``: the pairs are kept rounded to bfloat16 (half the memory at print sizes, issue 26), and
    the direction is the two-loop recursion (Nocedal & Wright, Algorithm 7.4) of those rounded pairs,
    computed here by hand as ``−H g`` with H from the BFGS update of γI (eq. 7.19–7.20)."""
    gen = torch.Generator().manual_seed(3)
    opt = LBFGS(history=3, first_move=1.0, storage=torch.bfloat16)
    for _ in range(3):
        s = torch.randn(6, generator=gen)
        opt._remember(s, s * torch.linspace(1, 4, 6) + 0.01 * torch.randn(6, generator=gen))
    assert len(opt.pairs) == 3 and all(s.dtype == y.dtype == torch.bfloat16 for s, y, _ in opt.pairs)
    pairs = [(s.double(), y.double()) for s, y, _ in opt.pairs]
    s, y = pairs[-1]
    h = (s @ y) / (y @ y) * torch.eye(6, dtype=torch.float64)
    for s, y in pairs:  # H <- (I − ρ s yᵀ) H (I − ρ y sᵀ) + ρ s sᵀ
        rho = 1 / (s @ y)
        v = torch.eye(6, dtype=torch.float64) - rho * torch.outer(y, s)
        h = v.T @ h @ v + rho * torch.outer(s, s)
    g = torch.randn(6, generator=gen)
    assert torch.allclose(opt.direction(g).double(), -h @ g.double(), rtol=1e-5, atol=1e-6)


def test_bfloat16_pairs_converge_as_fast_as_float32_ones_on_an_ill_conditioned_quadratic():
    a, b = spd(40, 1e3).float(), torch.linspace(-1, 1, 40)
    evaluate, _ = quadratic(a, b)
    best = evaluate(torch.linalg.solve(a.double(), b.double()).float())[0]
    counts = {}
    for storage in (None, torch.bfloat16):
        _, f = minimise(LBFGS(history=10, first_move=1.0, storage=storage), evaluate, torch.zeros(40), 300, 1e-4)
        counts[storage] = minimise.iterations
        assert f - best <= 1e-4 * abs(best)
    assert counts[torch.bfloat16] <= 1.5 * counts[None]
