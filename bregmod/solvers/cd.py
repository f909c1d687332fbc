r"""Implicit/explicit coordinate descent ("cd") for ``ShallowSum`` networks (docs/math/solvers.md).

Model: N(u₀) = Σ_j c_j σ_j(w_jᵀ u₀ + b_j), lifted with the hidden state h = (u₁, …, u_m) = z,
quadratic fidelity and J(u₀) = α/2‖u₀‖²:

    E(u₀, h) = λ/2 (f^δ − Σ_j c_j h_j)² + Σ_j B_{Ψ_j}(h_j, w_jᵀ u₀ + b_j) + α/2‖u₀‖².

Iteration (the talk's implicit/explicit scheme, written for any λ and a vector u₀; with λ = 1
and scalar u₀ it is docs/math/solvers.md verbatim). With x = w u₀ + b and a_l = 1 + λ c_l²:

* implicit, exact Gauss–Seidel minimisation over each h_l (the others fixed):

      h_l ← prox_{Ψ_l / a_l}((λ c_l r_l + x_l) / a_l),
      r_l = f^δ − Σ_{j<l} c_j h_j⁺ − Σ_{j>l} c_j h_j;

* explicit, one proximal-gradient step in u₀ with step 1/L, L = ‖w‖₂² (the Lipschitz
  constant of ∇_{u₀} B = wᵀ(σ(w u₀ + b) − h), since σ is 1-Lipschitz; σ′ is never needed):

      u₀ ← (1 + α/L)⁻¹ (u₀ − L⁻¹ wᵀ(σ(w u₀ + b) − h⁺)).

Convergence: each h_l-step minimises E exactly and the u₀-step is a proximal-gradient step
with step 1/L on an L-smooth term, so E decreases monotonically (block coordinate descent); the
checked step condition step · L ≤ 1 is recorded in ``Result.stats["step_condition"]``. The
lifted model of a shallow sum is not certified convex (its H₀ has no u₀ curvature), so the
method is a local one and the Result claims no global optimum.

Stopping (shared policy): the residual of the optimality conditions at the new point,
(∂_h E, ∇_{u₀} E) with the ∂Ψ_l elements taken from the h_l-steps — exactly
λ c_l Σ_{j>l} c_j (h_j⁺ − h_j) + (x_l − x_l⁺) for h_l and wᵀ(σ(x⁺) − h⁺) + α u₀⁺ for u₀ — relative
to the largest norm of the terms of those conditions, must be ≤ tol.
"""

from __future__ import annotations

import numpy as np

from bregmod.regularizers import SquaredL2, WeightedSum
from bregmod.solvers._common import (
    Monitor,
    all_finite,
    batch_norm,
    finish,
    prepare,
    relative_residual,
)

__all__ = ["NAME", "solve", "supports"]

#: The solver's name in the registry (:mod:`bregmod.solvers.registry`).
NAME = "cd"

DEFAULT_MAX_ITER = 20_000

_SUPPORTED = (
    "cd solves the lifted quadratic-fidelity model of a single ShallowSum layer with entrywise "
    "activations and J = α/2‖u₀‖² (reg = alpha * SquaredL2(), or None) — docs/math/solvers.md"
)


def _alpha(reg) -> float:
    """α of J = α/2‖u₀‖², or ValueError for any other regulariser."""
    if reg is None:
        return 0.0
    if isinstance(reg, SquaredL2):
        return 1.0
    if isinstance(reg, WeightedSum) and all(isinstance(r, SquaredL2) for _, r in reg.terms):
        return float(sum(w for w, _ in reg.terms))
    raise ValueError(f"{_SUPPORTED}; got J = {reg.name}: use solver='pdhg' or 'fista'")


def _shallow_structure(lifted) -> str | None:
    """Why the compiled network is not a shallow sum N(u₀) = Σ_j c_j h_j, h = z,
    z = prox_Ψ(w u₀ + b), or None.

    Read from the compiled operators (never from the declared layers): two u blocks (u₀ and
    the hidden units h), a scalar output K u + c = cᵀh (c = 0, K zero on u₀), W acting on u₀
    only and the constraint M u = V z reading h = z (M zero on u₀, M on h equal to V).
    """
    if len(lifted.u_blocks) != 2 or lifted.n_out != 1:
        return f"{len(lifted.u_blocks)} state blocks and {lifted.n_out} outputs, not (u₀, h) → ℝ"
    u0, hidden = lifted.u_blocks[0].slice, lifted.u_blocks[1].slice
    if not lifted.n_c == lifted.n_z == hidden.stop - hidden.start:
        return "the hidden block, the z blocks and the constraint rows differ in size"
    M, V = lifted.M.to_dense(), lifted.V.to_dense()
    if M[:, u0].any() or not np.array_equal(M[:, hidden], V):
        return "the compiled constraint is not h = z"
    if lifted.W.to_dense()[:, hidden].any() or lifted.K.to_dense()[:, u0].any():
        return "the pre-activation depends on h or the output on u₀"
    if np.any(lifted.c):
        return "the output has a constant term"
    return None


def _check(problem) -> float:
    """α of J = α/2‖u₀‖²; ValueError for every other problem (the message says what is
    supported)."""
    if problem.fidelity != "quadratic":
        raise ValueError(f"{_SUPPORTED}; got fidelity={problem.fidelity!r}")
    detail = _shallow_structure(problem.lifted)
    if detail is not None:
        raise ValueError(f"{_SUPPORTED}; got the network {problem.network!r} ({detail})")
    vector = [a.name for a in problem.lifted.activations if a.is_vector]
    if vector:
        raise ValueError(f"{_SUPPORTED}; got the vector activation {vector[0]}")
    return _alpha(problem.reg)


def supports(problem) -> str | None:
    """None when the coordinate descent applies (see ``_SUPPORTED``), else the reason."""
    try:
        _check(problem)
    except ValueError as exc:
        return str(exc)
    return None


def solve(
    problem,
    tol: float = 1e-6,
    max_iter: int | None = None,
    warm_start=None,
    progress: bool = False,
    dtype=np.float64,
):
    """Solve a ``ShallowSum`` inversion with the implicit/explicit coordinate descent.

    Iteration: exact Gauss–Seidel steps h_l ← prox_{Ψ_l/a_l}((λ c_l r_l + x_l)/a_l), then the
    proximal-gradient step u₀ ← (1 + α/L)⁻¹(u₀ − L⁻¹ wᵀ(σ(w u₀ + b) − h)), L = ‖w‖² (module
    docstring). E decreases monotonically (step · L = 1 ≤ 1); stops when the relative residual
    of the optimality conditions is ≤ ``tol``.

    Parameters
    ----------
    problem : Inversion
        Quadratic fidelity, network = one ``ShallowSum`` with entrywise activations,
        ``reg`` = α·SquaredL2() or None.
    tol : float
        Relative tolerance of the optimality residual.
    max_iter : int, optional
        Iteration limit (default 20 000).
    warm_start : None, array_like, (u, z) or Result
        Starting point (default: forward pass of u₀ = 0).
    progress : bool
        Show a tqdm progress bar.
    dtype : numpy.float64 or numpy.float32
        Floating dtype of the iterates.

    Returns
    -------
    Result
        ``global_optimum_claimed`` is False unless the problem is certified convex.

    Raises
    ------
    ValueError
        For any other problem (the message says what is supported), bad arguments, NaN/Inf in
        the data.
    """
    alpha = _check(problem)
    setup = prepare(
        problem,
        solver="cd",
        tol=tol,
        max_iter=max_iter,
        warm_start=warm_start,
        dtype=dtype,
        default_max_iter=DEFAULT_MAX_ITER,
    )
    lifted = problem.lifted
    u0_slice, hidden = lifted.u_blocks[0].slice, lifted.u_blocks[1].slice
    w = lifted.W.to_dense()[:, u0_slice].astype(setup.dtype)
    b = np.asarray(lifted.b, dtype=setup.dtype)
    c = lifted.K.to_dense()[0, hidden]
    lam = float(problem.lam)
    L = float(np.linalg.norm(w, 2)) ** 2
    if L == 0.0:
        raise ValueError(f"{_SUPPORTED}; all inner weights w are zero, u₀ is not identifiable")
    units = [
        (j, activation)
        for block, activation in zip(lifted.z_blocks, lifted.activations, strict=True)
        for j in range(block.slice.start, block.slice.stop)
    ]
    a = 1.0 + lam * c**2
    f = setup.data[:, 0].astype(np.float64)
    u0 = setup.u0.copy()
    h = setup.u[:, hidden].copy()
    x = u0 @ w.T + b
    sigma = lifted.prox(x).astype(setup.dtype)
    energy = setup.energy()
    u = np.empty((setup.batch, lifted.n_u), dtype=setup.dtype)
    monitor = Monitor(setup, progress)
    for k in range(1, setup.max_iter + 1):
        h_new = h.copy()
        subgradient = np.empty_like(h)  # a_l (v_l − h_l⁺) ∈ ∂Ψ_l(h_l⁺)
        r = f - h @ c
        for j, activation in units:
            r_j = r + c[j] * h[:, j]
            v = (lam * c[j] * r_j + x[:, j]) / a[j]
            h_new[:, j] = activation.prox_scaled(v, 1.0 / a[j])
            subgradient[:, j] = a[j] * (v - h_new[:, j])
            r = r_j - c[j] * h_new[:, j]
        u0_new = (u0 - (sigma - h_new) @ w / L) / (1.0 + alpha / L)
        x_new = u0_new @ w.T + b
        if not all_finite(u0_new, x_new, h_new):
            monitor.non_finite(k, "iterate")
            break
        sigma_new = lifted.prox(x_new).astype(setup.dtype)
        change = (h_new - h) * c
        tail = np.cumsum(change[:, ::-1], axis=1)[:, ::-1] - change  # Σ_{j>l} c_j (h_j⁺ − h_j)
        res_h = lam * c * tail + (x - x_new)
        res_u0 = (sigma_new - h_new) @ w + alpha * u0_new
        residual = np.sqrt(batch_norm(res_h) ** 2 + batch_norm(res_u0) ** 2)
        scale = np.maximum.reduce(
            [
                batch_norm(lam * c[None, :] * (h_new @ c - f)[:, None]),
                batch_norm(h_new),
                batch_norm(x_new),
                batch_norm(subgradient),
                batch_norm(sigma_new @ w),
                batch_norm(h_new @ w),
                batch_norm(alpha * u0_new),
            ]
        )
        u[:, u0_slice], u[:, hidden] = u0_new, h_new
        objective = float(np.sum(energy.energy(u, h_new)))
        stop = monitor.record(
            k,
            primal_residual=relative_residual(residual, scale),
            objective=objective,
        )
        if monitor.diverged:
            break
        u0, h, x, sigma = u0_new, h_new, x_new, sigma_new
        if stop:
            break
    u[:, u0_slice], u[:, hidden] = u0, h
    stats = {
        "step_condition": (
            f"u₀-step 1/L with L = ‖w‖₂² = {L:.6g}: step · L = 1 ≤ 1; h-steps exact minimisations"
        ),
        "step_condition_satisfied": True,
        "alpha": alpha,
        "lipschitz": f"L = ‖w‖₂² = {L:.6g} (Lipschitz constant of ∇_{{u₀}} B)",
    }
    return finish(setup, monitor, u=u, z=h, stats=stats)
