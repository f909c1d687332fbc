r"""Accelerated proximal gradient ("fista") with backtracking and adaptive restart.

Problem: min_ξ F(ξ) = f(ξ) + g(ξ), f convex and smooth, g prox-friendly — for problems
without a linear operator inside J (ℓ1, ½‖·‖², box, non-negativity and their sums; TV needs
``"pdhg"``):

* ``fidelity="bregman"``: ξ = u₀, f(u₀) = B_Ψ(f^δ, A u₀ + β), ∇f = Aᵀ(σ(A u₀ + β) − f^δ)
  (σ only), g = J.
* ``fidelity="quadratic"``: the constraint M u = V z is eliminated: ξ = (u₀, z) and
  (u, z) = P ξ (:class:`~bregmod.model.lifted.Elimination`, exact for every compiled
  architecture), f(ξ) = λ/2‖K u + c − f^δ‖² + ½‖z‖² − ⟨z, W u + b⟩ + Σ Φ*(W u + b) at P ξ with
  ∇f(ξ) = Pᵀ(λKᵀ(K u + c − f^δ) + Wᵀ(σ(W u + b) − z), z − (W u + b)), and g(ξ) = J(u₀) + Ψ(z)
  (prox blockwise). f is convex exactly when the certificate holds (Pᵀ H₀ P ⪰ 0; no μ is
  needed); L_f ≤ ‖G‖², G ξ = (√λ K u, W u − z) (``ReducedSmooth``).

Iteration (Beck–Teboulle FISTA with the backtracking of Calatroni–Chambolle, which may also
decrease L, and the gradient restart of O'Donoghue–Candès), per problem of a batch:

    ξ⁺ = prox_{g/L}(y − ∇f(y)/L),
         L ← min(2L, L_f) until f(ξ⁺) ≤ f(y) + ⟨∇f(y), ξ⁺ − y⟩ + L/2‖ξ⁺ − y‖² (+ slack),
    t⁺ = (1 + √(1 + 4 (L⁺/L) t²)) / 2,   y⁺ = ξ⁺ + (t − 1)/t⁺ (ξ⁺ − ξ),
    restart (t = 1, y⁺ = ξ⁺) when ⟨y − ξ⁺, ξ⁺ − ξ⟩ > 0.

L starts at L_f/10 and shrinks by 0.95 before every backtracking (unless the last test was
below the rounding level), so it follows the local curvature. Convergence condition: the
sufficient-decrease test above, checked at every step (recorded in
``Result.stats["step_condition"]``); it holds for every L ≥ L_f (descent lemma), so L = L_f is
accepted without the test and backtracking stops. The slack, 10⁴·eps·Σ|terms of f|, only
absorbs rounding (without it L would grow without bound once the predicted decrease falls below
the rounding error of f). With a user-supplied ``step`` (no backtracking) the condition is
step · L_f ≤ 1, checked against the bound L_f (Bregman fidelity: ‖A‖²; lifted: ‖G‖²).

Stopping (shared policy): the fixed-point residual of the prox-gradient map at y,
‖L(y − ξ⁺)‖ = ‖∇f(y) + ζ‖ with ζ = L(y − ξ⁺) − ∇f(y) ∈ ∂g(ξ⁺), relative to
max(‖∇f(y)‖, ‖ζ‖), must be ≤ tol (there is no dual variable, so no dual residual is
recorded).
"""

from __future__ import annotations

import numpy as np

from bregmod._checks import positive_scalar
from bregmod.errors import SolverError
from bregmod.model.lifted import Elimination, ReducedSmooth
from bregmod.solvers._common import (
    Monitor,
    ProxPart,
    all_finite,
    batch_dot,
    batch_norm,
    finish,
    prepare,
    relative_residual,
)

__all__ = ["NAME", "solve", "supports"]

#: The solver's name in the registry (:mod:`bregmod.solvers.registry`).
NAME = "fista"

DEFAULT_MAX_ITER = 20_000
#: Factor by which L may shrink at the start of every backtracking (Calatroni–Chambolle).
_SHRINK = 0.95
#: L starts at this fraction of the bound L_f (backtracking raises it where the curvature is).
_INITIAL_FRACTION = 0.1
#: Slack of the sufficient-decrease test in units of eps · (Σ |terms of f|): below it the
#: test cannot tell rounding from a violation, and L must not grow because of rounding.
_ROUNDING_UNITS = 1e4


def _composite_refusal(problem) -> str | None:
    """Why J does not fit FISTA (it has a linear operator inside), or None."""
    simple, composites = (None, []) if problem.reg is None else problem.reg.split()
    if not composites:
        return None
    return (
        f"fista needs a regulariser without a linear operator inside (ℓ1, ½‖·‖², box, "
        f"non-negativity); {problem.reg.name} has the composite term(s) "
        f"{[type(L).__name__ for _, L, _ in composites]}: use solver='pdhg'"
    )


def supports(problem) -> str | None:
    """None when FISTA applies: J without a linear operator inside and, for the quadratic
    fidelity, a lifted constraint that :class:`~bregmod.model.lifted.Elimination` can
    eliminate; else the reason."""
    refusal = _composite_refusal(problem)
    if refusal is None and problem.fidelity == "quadratic":
        try:
            Elimination(problem.lifted)
        except SolverError as exc:
            return str(exc)
    return refusal


def solve(
    problem,
    tol: float = 1e-6,
    max_iter: int | None = None,
    warm_start=None,
    progress: bool = False,
    dtype=np.float64,
    *,
    step: float | None = None,
    restart: bool = True,
):
    """Solve an :class:`~bregmod.problem.Inversion` whose J has no linear operator with FISTA.

    Iteration ξ⁺ = prox_{g/L}(y − ∇f(y)/L) with backtracking on L and momentum
    y⁺ = ξ⁺ + (t − 1)/t⁺ (ξ⁺ − ξ) (see the module docstring); converges for convex problems
    because every accepted step satisfies the sufficient-decrease condition; stops when the
    relative fixed-point residual ‖L(y − ξ⁺)‖ is ≤ ``tol``.

    Parameters
    ----------
    problem : Inversion
        Bregman fidelity (any network of one layer) or quadratic fidelity (any compiled
        network); J must have no composite term (``J.split()`` without linear operators).
    tol : float
        Relative tolerance of the fixed-point residual.
    max_iter : int, optional
        Iteration limit (default 20 000).
    warm_start : None, array_like, (u, z) or Result
        Starting point (default: forward pass of u₀ = 0).
    progress : bool
        Show a tqdm progress bar.
    dtype : numpy.float64 or numpy.float32
        Floating dtype of the iterates.
    step : float, optional
        Fixed step 1/L (disables backtracking); convergence needs step ≤ 1/L_f.
    restart : bool
        Adaptive (gradient) restart of the momentum.

    Returns
    -------
    Result
        ``stats`` holds ``step_condition``, the final ``L`` and the number of ``restarts`` and
        ``backtracks``.

    Raises
    ------
    ValueError
        If J has a composite term (names it and points to ``"pdhg"``), bad arguments, NaN/Inf
        in the data.
    SolverError
        If the lifted constraint cannot be eliminated (then use ``"pdhg"``).
    """
    refusal = _composite_refusal(problem)
    if refusal is not None:
        raise ValueError(refusal)
    simple = None if problem.reg is None else problem.reg.split()[0]
    setup = prepare(
        problem,
        solver="fista",
        tol=tol,
        max_iter=max_iter,
        warm_start=warm_start,
        dtype=dtype,
        default_max_iter=DEFAULT_MAX_ITER,
    )
    step = None if step is None else positive_scalar(step, "step")
    if problem.fidelity == "bregman":
        smooth = setup.energy()
        xi = setup.u0.copy()
        prox = ProxPart(setup, simple, None)
    else:
        elimination = Elimination(problem.lifted)
        smooth = ReducedSmooth(setup.energy(), elimination)
        xi = np.concatenate([setup.u0, setup.z], axis=1)
        prox = ProxPart(setup, simple, elimination.n0)
    bound = smooth.lipschitz
    monitor = Monitor(setup, progress)
    B = setup.batch
    images = smooth.images(xi)
    if not all_finite(*images):
        raise ValueError("the warm start gives non-finite operator images; start elsewhere")
    L = 1.0 / step if step is not None else _INITIAL_FRACTION * bound
    rounding = _ROUNDING_UNITS * float(np.finfo(setup.dtype).eps)
    t = np.ones(B)
    y, y_images = xi, images
    restarts = backtracks = 0
    resolved = True
    for k in range(1, setup.max_iter + 1):
        grad, grad_scale = smooth.gradient(y, y_images)
        backtrack = step is None
        if backtrack:
            f_y, size_y = smooth.value(y, y_images)
            L_old, L = L, (_SHRINK * L if resolved else L)
        failure = None
        while True:
            v = y - grad / L
            if not all_finite(v):
                failure = "iterate"
                break
            xi_new = prox.prox(v, 1.0 / L)
            images_new = smooth.images(xi_new)
            if not all_finite(*images_new):
                failure = "operator images of the iterate"
                break
            if not backtrack or L >= bound:  # the descent lemma holds for every L ≥ L_f
                break
            f_new, size_new = smooth.value(xi_new, images_new)
            d = xi_new - y
            quadratic = 0.5 * L * batch_norm(d) ** 2
            slack = rounding * (size_y + size_new)
            # Below the rounding level the test cannot tell a good L from a too small one:
            # then L is kept (not shrunk) at the next iteration.
            resolved = bool((quadratic > slack).all())
            if (f_new <= f_y + batch_dot(grad, d) + quadratic + slack).all():
                break
            L = min(2.0 * L, bound)
            backtracks += 1
        if failure is not None:
            monitor.non_finite(k, failure)
            break
        mapping = L * (y - xi_new)
        primal = relative_residual(batch_norm(mapping), grad_scale, batch_norm(mapping - grad))
        objective = float(np.sum(smooth.objective(xi_new, images_new))) + prox.total(xi_new)
        stop = monitor.record(k, primal_residual=primal, objective=objective, L=L)
        if monitor.diverged:
            break
        ratio = L / L_old if backtrack else 1.0
        t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * ratio * t**2))
        beta = (t - 1.0) / t_new
        if restart:
            reset = batch_dot(y - xi_new, xi_new - xi) > 0
            restarts += int(reset.sum())
            beta = np.where(reset, 0.0, beta)
            t_new = np.where(reset, 1.0, t_new)
        y = xi_new + beta[:, None] * (xi_new - xi)
        y_images = tuple(
            a + beta[:, None] * (a - b) for a, b in zip(images_new, images, strict=True)
        )
        xi, images, t = xi_new, images_new, t_new
        if stop:
            break
    if step is None:
        condition = (
            "f(ξ⁺) ≤ f(y) + ⟨∇f(y), ξ⁺ − y⟩ + L/2‖ξ⁺ − y‖² at every accepted step "
            f"(backtracking, L ≤ L_f ≤ {bound:.6g} where it holds by the descent lemma; "
            f"final L = {L:.6g})"
        )
        satisfied = True
    else:
        satisfied = step * bound <= 1.0
        condition = f"step · L_f ≤ 1 with L_f ≤ {bound:.6g}: {step * bound:.6g} " + (
            "≤ 1" if satisfied else "> 1 — NOT satisfied (user-supplied step): no guarantee"
        )
    stats = {
        "step_condition": condition,
        "step_condition_satisfied": satisfied,
        "L": L,
        "restarts": restarts,
        "backtracks": backtracks,
        "lipschitz": smooth.lipschitz_note,
    }
    if problem.fidelity == "bregman":
        return finish(setup, monitor, u0=xi, stats=stats)
    x = elimination.apply(xi)
    return finish(setup, monitor, u=x[:, : elimination.n_u], z=x[:, elimination.n_u :], stats=stats)
