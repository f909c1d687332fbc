"""Optimality of the solvers' returned points, checked independently of the solvers.

For the one-layer problem min_u B_Ψ(f, W u + b) + α TV(u) (ReLU, isotropic TV with forward
differences and Neumann boundary) a point u is optimal iff

    0 = Wᵀ(σ(W u + b) − f) + α Dᵀ p   for some p with p_i = (D u)_i / ‖(D u)_i‖ where
    (D u)_i ≠ 0 and ‖p_i‖ ≤ 1 where (D u)_i = 0,

D the 2-D difference matrix built here in numpy (not bregmod's Gradient2D). The KKT residual
is min_p ‖Wᵀ(σ(W u + b) − f) + α Dᵀ p‖ over that set (a small least-squares problem with
second-order-cone constraints, solved with CVXPY), relative to ‖Wᵀ(σ(W u + b) − f)‖. Pixels
with ‖(D u)_i‖ ≤ ZERO · max(1, ‖u‖∞) count as zero. The solvers' own residuals play no role.

Also here: real (not mocked) solves through ``solver="auto"``'s size limit, and pdhg's fallback
to the dual constraint on a network whose constraint really cannot be eliminated.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest

from bregmod.activations import ReLU
from bregmod.errors import SolverError
from bregmod.network import Dense, Residual
from bregmod.operators import IdentityOperator
from bregmod.problem import Inversion
from bregmod.regularizers import TotalVariation
from bregmod.solvers import registry

SHAPE = (6, 6)
N = SHAPE[0] * SHAPE[1]
ALPHA = 0.2  # about half of the pixels have ∇u = 0 at the solution: both kinds are checked
#: Gradient vectors below ZERO · max(1, ‖u‖∞) count as zero.
ZERO = 1e-4


def difference_matrices(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Forward differences along rows and columns, zero in the last row / column (Neumann)."""
    H, W = shape
    index = np.arange(H * W).reshape(H, W)
    D1, D2 = np.zeros((H * W, H * W)), np.zeros((H * W, H * W))
    for i in range(H):
        for j in range(W):
            k = index[i, j]
            if i < H - 1:
                D1[k, index[i + 1, j]], D1[k, k] = 1.0, -1.0
            if j < W - 1:
                D2[k, index[i, j + 1]], D2[k, k] = 1.0, -1.0
    return D1, D2


D1, D2 = difference_matrices(SHAPE)


def tv_relu_problem(alpha: float = ALPHA, seed: int = 0):
    """(problem, W, b, f): ReLU layer 36 → 72, f = σ(W u† + b) + noise clipped to ≥ 0."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((2 * N, N)) / np.sqrt(N)
    b = 0.1 * rng.standard_normal(2 * N)
    u_true = np.zeros(SHAPE)
    u_true[1:4, 2:5] = 1.0
    f = np.maximum(np.maximum(W @ u_true.ravel() + b, 0.0) + 0.05 * rng.standard_normal(2 * N), 0.0)
    reg = alpha * TotalVariation(SHAPE)
    return Inversion(Dense(W, b, ReLU(), in_shape=SHAPE), f, reg, fidelity="bregman"), W, b, f


def kkt_residual(u, W, b, f, alpha: float = ALPHA) -> float:
    """min_p ‖Wᵀ(σ(W u + b) − f) + α Dᵀp‖ / ‖Wᵀ(σ(W u + b) − f)‖ (see the module docstring)."""
    u = np.ravel(u)
    gradient = W.T @ (np.maximum(W @ u + b, 0.0) - f)
    gx, gy = D1 @ u, D2 @ u
    norms = np.hypot(gx, gy)
    free = norms <= ZERO * max(1.0, np.abs(u).max())
    fixed = ~free
    px, py = cp.Variable(N), cp.Variable(N)
    constraints = [px[fixed] == gx[fixed] / norms[fixed], py[fixed] == gy[fixed] / norms[fixed]]
    if free.any():
        constraints.append(cp.norm(cp.vstack([px[free], py[free]]), 2, axis=0) <= 1)
    residual = gradient + alpha * (D1.T @ px + D2.T @ py)
    projection = cp.Problem(cp.Minimize(cp.sum_squares(residual)), constraints)
    projection.solve(solver="CLARABEL")
    assert projection.status == "optimal"
    return float(np.sqrt(max(projection.value, 0.0)) / np.linalg.norm(gradient))


@pytest.fixture(scope="module")
def tv_problem():
    return tv_relu_problem()


def test_the_numpy_tv_matches_bregmods(tv_problem):
    """The independent D has bregmod's convention (else the KKT check would test nothing)."""
    u = np.random.default_rng(1).standard_normal(N)
    tv = TotalVariation(SHAPE)(u.reshape(SHAPE))
    assert tv == pytest.approx(np.sum(np.hypot(D1 @ u, D2 @ u)), rel=1e-12)


def test_kkt_check_rejects_a_perturbed_solution(tv_problem):
    problem, W, b, f = tv_problem
    exact = problem.solve(solver="cvxpy", tol=1e-9).u0
    assert kkt_residual(exact, W, b, f) < 3e-7  # measured 9.8e-8
    shifted = np.ravel(exact) + 1e-5 * np.random.default_rng(2).standard_normal(N)
    assert kkt_residual(shifted, W, b, f) > 3e-5  # measured 1.6e-4


# Measured (2026-12-02, tol = 1e-8): admm 1.0e-7 (327 iterations), pdhg 9.6e-8 (335), the
# exact CVXPY solve 9.8e-8.
@pytest.mark.parametrize("solver", ["admm", "pdhg"])
def test_first_order_solution_satisfies_kkt(tv_problem, solver):
    problem, W, b, f = tv_problem
    result = problem.solve(solver=solver, tol=1e-8)
    assert result.status == "optimal"
    assert kkt_residual(result.u0, W, b, f) < 3e-7


# --- solver="auto": the size limit, exercised by real solves ------------------------------------


def test_auto_within_the_size_limit_solves_exactly(tv_problem):
    problem, W, b, f = tv_problem
    result = problem.solve(tol=1e-8)
    assert result.solver == "cvxpy" and result.status == "optimal"
    assert kkt_residual(result.u0, W, b, f) < 3e-7


def test_auto_beyond_the_size_limit_uses_a_first_order_solver(tv_problem, monkeypatch):
    problem, W, b, f = tv_problem
    monkeypatch.setattr(registry, "AUTO_EXACT_LIMIT", 10)
    result = problem.solve(tol=1e-8)
    assert result.solver == "admm" and result.status == "optimal"
    assert "AUTO_EXACT_LIMIT = 10" in result.stats["auto"]
    assert kkt_residual(result.u0, W, b, f) < 3e-7


# --- pdhg: fallback to the dual constraint where elimination really fails --------------------


class HalfResidual(Residual):
    """u ↦ (u + V σ(W u + b))/2, lowered as 2 u₁ − u₀ = V z₁: not the unit-triangular form
    that :class:`~bregmod.solvers._common.Elimination` needs (a user-defined layer)."""

    def _evaluate(self, x, folded):
        evaluation = super()._evaluate(x, folded)
        z = evaluation[0][0]
        out = 0.5 * (x + self.V_operator.apply(z))
        return type(evaluation)([z], [out], out)

    def _lower(self, builder, u_in, label, last):
        u = super()._lower(builder, u_in, label, last)
        builder.M[len(builder.constraint_blocks) - 1, u] = IdentityOperator(
            self.W.shape[1], scale=2.0
        )
        return u


@pytest.fixture(scope="module")
def half_residual_problem():
    rng = np.random.default_rng(0)
    W, b = 0.3 * rng.standard_normal((6, 4)), 0.1 * rng.standard_normal(6)
    network = HalfResidual(W, b, ReLU())
    data = network(rng.standard_normal(4)) + 0.01 * rng.standard_normal(4)
    problem = Inversion(network, data, lam=10.0)
    u, z = problem.lifted.forward(rng.standard_normal(4))
    assert np.allclose(problem.lifted.M.apply(u), problem.lifted.V.apply(z))  # lowering is right
    assert problem.certify().certified
    return problem


def test_pdhg_falls_back_to_the_dual_constraint(half_residual_problem):
    problem = half_residual_problem
    with pytest.raises(SolverError, match="cannot be eliminated"):
        problem.solve(solver="pdhg", constraint="eliminate")
    result = problem.solve(solver="pdhg", tol=1e-8)
    assert result.status == "optimal"
    assert result.stats["constraint"] == "dual (the constraint cannot be eliminated)"
    exact = problem.solve(solver="cvxpy", tol=1e-9)
    np.testing.assert_allclose(result.u0, exact.u0, atol=1e-6)
    lifted = problem.lifted
    u, z = np.ravel(result.u), np.ravel(result.z)
    assert np.linalg.norm(lifted.M.apply(u) - lifted.V.apply(z)) < 1e-6 * np.linalg.norm(u)
