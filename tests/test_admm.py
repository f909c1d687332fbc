"""Tests of the structure-exploiting ADMM solver (bregmod.solvers.admm).

The truth is the exact CVXPY + Clarabel solve of the same Inversion (``solver="cvxpy"``), a
different code path (DCP model, interior point) from the ADMM iteration.
"""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from bregmod.activations import ReLU, Sigmoid, SoftThreshold, Tanh
from bregmod.errors import SolverError
from bregmod.network import Conv2d, Dense
from bregmod.operators import Gradient2D, MatrixOperator
from bregmod.problem import Inversion, SolverWarning
from bregmod.regularizers import L1, L21Norm, NonNegative, SquaredL2, TotalVariation
from bregmod.solvers import _dct, admm
from bregmod.solvers._dct import CosineTransform
from bregmod.solvers.gap import DualityGap

SHAPE = (6, 6)
N_IN = SHAPE[0] * SHAPE[1]


def _data(activation, W, b, u_true, rng, noise=0.05):
    """f = σ(W u† + b) + noise, kept inside the range of σ (so inside dom Ψ)."""
    f = activation.prox(W @ u_true + b) + noise * rng.standard_normal(W.shape[0])
    if isinstance(activation, ReLU):
        return np.maximum(f, 0.0)
    if isinstance(activation, Tanh):
        return np.clip(f, -0.95, 0.95)
    if isinstance(activation, Sigmoid):
        return np.clip(f, 0.05, 0.95)
    return f


def _problem(activation, reg, m=2 * N_IN, seed=0, batch=None):
    """A random one-layer Bregman-fidelity problem on 6 × 6 images (batch: B data vectors)."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((m, N_IN)) / np.sqrt(N_IN)
    b = 0.1 * rng.standard_normal(m)
    u_true = np.zeros(SHAPE)
    u_true[1:4, 2:5] = 1.0
    u_true = u_true.ravel()
    if batch is None:
        data = _data(activation, W, b, u_true, rng)
    else:
        data = np.stack([_data(activation, W, b, u_true + 0.3 * k, rng) for k in range(batch)])
    return Inversion(Dense(W, b, activation, in_shape=SHAPE), data, reg, fidelity="bregman")


REGULARIZERS = {
    "TV": lambda: 0.05 * TotalVariation(SHAPE),
    "TV+NonNegative": lambda: 0.05 * TotalVariation(SHAPE) + NonNegative(),
    "L1": lambda: 0.05 * L1(),
    "SquaredL2": lambda: 0.2 * SquaredL2(),
}
ACTIVATIONS = {
    "ReLU": ReLU,
    "Tanh": Tanh,
    "SoftThreshold": lambda: SoftThreshold(0.1),
    "Sigmoid": Sigmoid,
}


def _exact(problem):
    return problem.solve(solver="cvxpy", tol=1e-9)


def _relative(a, b) -> float:
    return float(
        np.linalg.norm(np.ravel(a) - np.ravel(b)) / max(np.linalg.norm(np.ravel(b)), 1e-12)
    )


@pytest.mark.parametrize("reg_name", sorted(REGULARIZERS))
@pytest.mark.parametrize("act_name", sorted(ACTIVATIONS))
def test_matches_cvxpy(act_name, reg_name):
    problem = _problem(ACTIVATIONS[act_name](), REGULARIZERS[reg_name]())
    exact = _exact(problem)
    result = problem.solve(solver="admm", tol=1e-8)
    assert exact.status == "optimal"
    assert result.status == "optimal" and result.solver == "admm"
    assert result.global_optimum_claimed
    assert abs(result.objective - exact.objective) <= 1e-6 * abs(exact.objective)
    # m = 2n and strictly convex enough here: the minimiser is unique and matches.
    assert _relative(result.u0, exact.u0) <= 1e-4
    # the objective in the Result is the model's value at the returned point
    assert result.objective == pytest.approx(problem.objective(result.u), rel=1e-12)


def test_simple_part_is_exact_in_the_result():
    """With NonNegative in J the returned input lies exactly in dom J (it is v, not u)."""
    problem = _problem(ReLU(), 0.05 * TotalVariation(SHAPE) + NonNegative(), seed=3)
    exact = _exact(problem)
    result = problem.solve(solver="admm", tol=1e-7)
    assert result.status == "optimal"
    assert (result.u0 >= 0).all()
    assert abs(result.objective - exact.objective) <= 1e-6 * abs(exact.objective)


def test_underdetermined_woodbury_matches_cvxpy():
    """m ≪ n (the case Woodbury is for): 8 × 8 images, 16 measurements, ReLU + TV."""
    rng = np.random.default_rng(5)
    W = rng.standard_normal((16, 64))
    b = rng.standard_normal(16)
    u_true = np.zeros((8, 8))
    u_true[2:6, 3:7] = 1.0
    f = np.maximum(W @ u_true.ravel() + b + 0.01 * rng.standard_normal(16), 0.0)
    problem = Inversion(
        Dense(W, b, ReLU(), in_shape=(8, 8)), f, 0.2 * TotalVariation((8, 8)), fidelity="bregman"
    )
    exact = _exact(problem)
    result = problem.solve(solver="admm", tol=1e-8)
    assert result.status == "optimal"
    assert abs(result.objective - exact.objective) <= 1e-6 * abs(exact.objective)


def test_conv2d_layer_is_densified():
    """A matrix-free (convolution) A takes the to_dense path."""
    rng = np.random.default_rng(2)
    kernel = rng.standard_normal((2, 1, 3, 3))
    layer = Conv2d(kernel, b=[0.1, -0.1], activation=ReLU(), in_shape=(1, 6, 6), padding=1)
    u_true = np.abs(rng.standard_normal((1, 6, 6)))
    f = np.maximum(layer(u_true) + 0.05 * rng.standard_normal(layer.out_shape), 0.0)
    problem = Inversion(layer, f, 0.1 * L1(), fidelity="bregman")
    exact = _exact(problem)
    result = problem.solve(solver="admm", tol=1e-8)
    assert result.status == "optimal"
    assert abs(result.objective - exact.objective) <= 1e-6 * abs(exact.objective)
    assert _relative(result.u0, exact.u0) <= 1e-4


def test_batched_equals_per_problem():
    problem = _problem(ReLU(), 0.05 * TotalVariation(SHAPE), batch=3, seed=7)
    batched = problem.solve(solver="admm", tol=1e-9)
    assert batched.status == "optimal" and batched.u0.shape == (3, *SHAPE)
    for k in range(3):
        single = Inversion(problem.network, problem.data[k], problem.reg, fidelity="bregman")
        alone = single.solve(solver="admm", tol=1e-9)
        assert batched.objective[k] == pytest.approx(alone.objective, rel=1e-8)
        assert _relative(batched.u0[k], alone.u0) <= 1e-4


@pytest.mark.parametrize("reg", ["TV", "TV+NonNegative"])
def test_float32_reaches_float32_accuracy(reg):
    """Both stopping rules in float32: the duality gap (TV) and the KKT residuals (TV +
    NonNegative, where no gap is available)."""
    problem = _problem(Tanh(), REGULARIZERS[reg](), seed=4)
    exact = _exact(problem)
    result = problem.solve(solver="admm", tol=1e-5, dtype=np.float32)
    assert result.status == "optimal" and result.stats["dtype"] == "float32"
    assert result.stats["guarantee"] == ("duality gap" if reg == "TV" else "KKT residual")
    assert abs(result.objective - exact.objective) <= 1e-5 * abs(exact.objective)


@pytest.mark.parametrize(
    "options",
    [dict(memory=0, adaptive=False), dict(memory=0, relaxation=1.6), dict(memory=3)],
    ids=["plain", "over-relaxed", "short-memory"],
)
def test_variants_converge_to_the_same_optimum(options):
    problem = _problem(ReLU(), 0.05 * TotalVariation(SHAPE) + NonNegative(), seed=1)
    exact = _exact(problem)
    result = problem.solve(solver="admm", tol=1e-7, max_iter=20_000, **options)
    assert result.status == "optimal"
    assert abs(result.objective - exact.objective) <= 1e-6 * abs(exact.objective)


def test_rescue_balancing_repairs_a_bad_penalty():
    """A data penalty 10⁵× too small is rebalanced (and the optimum still found)."""
    problem = _problem(ReLU(), 0.05 * TotalVariation(SHAPE), seed=2)
    exact = _exact(problem)
    result = problem.solve(solver="admm", tol=1e-7, rho_data=1e-6, rho_reg=1e-5)
    assert result.stats["penalty_updates"] >= 2
    assert result.stats["rho_data"] > 1e-4
    assert result.status == "optimal"
    assert abs(result.objective - exact.objective) <= 1e-6 * abs(exact.objective)


def test_max_iter_gives_status_max_iter():
    problem = _problem(ReLU(), 0.05 * TotalVariation(SHAPE))
    with pytest.warns(SolverWarning, match="max_iter"):
        result = problem.solve(solver="admm", tol=1e-10, max_iter=5)
    assert result.status == "max_iter" and result.iterations == 5
    assert not result.global_optimum_claimed
    assert len(result.history["objective"]) == 5 and np.isfinite(result.objective)


def test_history_is_recorded():
    problem = _problem(Sigmoid(), 0.05 * L1())
    result = problem.solve(solver="admm", tol=1e-6)
    history = result.history
    assert len(history["primal_residual"]) == result.iterations
    assert len(history["dual_residual"]) == result.iterations
    # the stop is on the relative duality gap (the last evaluated value at every iteration)
    assert len(history["gap"]) == result.iterations
    assert history["gap"][-1] == result.stats["bound"] <= 1e-6 < history["gap"][-2]
    assert history["objective"][-1] == pytest.approx(result.objective, rel=1e-5)


def test_nan_in_data_is_refused():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((10, N_IN))
    f = np.abs(rng.standard_normal(10))
    f[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        Inversion(Dense(W, activation=ReLU(), in_shape=SHAPE), f, L1(), fidelity="bregman")


def test_nan_in_warm_start_is_refused():
    problem = _problem(ReLU(), 0.05 * L1())
    start = np.zeros(SHAPE)
    start[0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or Inf"):
        problem.solve(solver="admm", warm_start=start)


@pytest.mark.parametrize(
    "options, match",
    [
        (dict(rho_data=-1.0), "rho_data"),
        (dict(rho_reg=np.nan), "rho_reg"),
        (dict(relaxation=2.0), "relaxation"),
        (dict(memory=-1), "memory"),
        (dict(memory=2.5), "memory"),
        (dict(adaptive="yes"), "adaptive"),
        (dict(tol=0.0), "tol"),
        (dict(max_iter=0), "max_iter"),
        (dict(dtype=np.int32), "dtype"),
    ],
)
def test_bad_options_raise(options, match):
    problem = _problem(ReLU(), 0.05 * L1())
    with pytest.raises(ValueError, match=match):
        problem.solve(solver="admm", **options)


def test_unknown_option_raises_type_error():
    problem = _problem(ReLU(), 0.05 * L1())
    with pytest.raises(TypeError, match="rho"):
        problem.solve(solver="admm", rho=1.0)


def test_refuses_the_lifted_model():
    rng = np.random.default_rng(0)
    net = Dense(rng.standard_normal((8, N_IN)), activation=ReLU(), in_shape=SHAPE)
    problem = Inversion(net, np.abs(rng.standard_normal(8)), L1())
    with pytest.raises(ValueError, match="fidelity='bregman'"):
        problem.solve(solver="admm")


class _NotAGradient(TotalVariation):
    """TV whose splitting view uses a stored matrix instead of Gradient2D."""

    def split(self):
        return None, [(1.0, MatrixOperator(Gradient2D(self.shape).to_dense()), L21Norm(2))]


def test_refuses_a_composite_the_dct_cannot_diagonalise():
    problem = _problem(ReLU(), _NotAGradient(SHAPE))
    with pytest.raises(ValueError, match="Gradient2D"):
        problem.solve(solver="admm")


def test_refuses_a_too_large_matrix_free_operator(monkeypatch):
    rng = np.random.default_rng(0)
    layer = Conv2d(rng.standard_normal((1, 1, 3, 3)), activation=ReLU(), in_shape=(1, 6, 6))
    f = np.maximum(layer(rng.standard_normal((1, 6, 6))), 0.0)
    problem = Inversion(layer, f, L1(), fidelity="bregman")
    monkeypatch.setattr(admm, "DENSE_ENTRY_LIMIT", 10)
    with pytest.raises(SolverError, match="DENSE_ENTRY_LIMIT"):
        problem.solve(solver="admm")


@pytest.mark.parametrize("form", ["matrix", "fft"])
def test_dct_diagonalises_the_neumann_laplacian(form, monkeypatch):
    """T(∇ᵀ∇ x) = λ ⊙ T(x) on a non-square grid (the identity the u-step rests on), with T
    computed as C_H X C_Wᵀ (small images) and by scipy.fft (large ones)."""
    monkeypatch.setattr(_dct, "MATRIX_PIXELS", 10**9 if form == "matrix" else 0)
    shape = (5, 7)
    gradient = Gradient2D(shape)
    transform = CosineTransform(shape)
    x = np.random.default_rng(0).standard_normal((2, 35))
    lhs = transform.forward(gradient.apply_adjoint(gradient.apply(x)))
    rhs = transform.laplacian_eigenvalues() * transform.forward(x)
    np.testing.assert_allclose(lhs, rhs, atol=1e-12)
    np.testing.assert_allclose(transform.inverse(transform.forward(x)), x, atol=1e-12)
    # (∇ᵀ∇)⁺∇ᵀ∇ is the projection onto mean-zero images (the Neumann Laplacian's range)
    pinv = transform.laplacian_pinv(gradient.apply_adjoint(gradient.apply(x)))
    np.testing.assert_allclose(pinv, x - x.mean(axis=1, keepdims=True), atol=1e-10)
    # T is the orthonormal DCT-II: its first basis image is constant, 1/√n
    np.testing.assert_allclose(transform.forward(np.ones((1, 35)))[0, 0], np.sqrt(35.0))
    for dtype in (np.float32, np.float64):
        assert transform.forward(x.astype(dtype)).dtype == dtype
    np.testing.assert_array_equal(transform.forward(x, workers=2), transform.forward(x))


@pytest.mark.parametrize("rows", [1, 2, 7])  # one matrix–vector product per row below 4 rows
@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-9), (np.float32, 1e-3)])
def test_woodbury_u_step_solves_the_system(dtype, rtol, rows):
    """(ρ_y ÂᵀÂ + diag d) û = Âᵀ s + d ⊙ t̂ and Â û, against a dense solve per row (m < n), with
    each row's own penalties (ρ_y, ρ_p) (row 1 another ρ_y, row 2 another ρ_p, the others one
    shared pair), and the further rows multiplied by Âᵀ and by Â along the way."""
    rng = np.random.default_rng(1)
    shape, m = (4, 5), 7
    transform = CosineTransform(shape)
    A = rng.standard_normal((m, 20))
    d0 = transform.laplacian_eigenvalues() + 0.1
    system = admm._WoodburySystem(A, transform, d0, dtype)
    rho_y = np.where(np.arange(rows) == 1, 2.0, 0.7)
    rho_p = np.where(np.arange(rows) == 2, 0.5, 3.0)
    system.set_penalties(rho_y, rho_p)
    assert system.factorizations == len(system.groups) == min(rows, 3)
    s, t_hat = rng.standard_normal((rows, m)), rng.standard_normal((rows, 20))
    extra, forward = rng.standard_normal((rows, m)), rng.standard_normal((2 * rows, 20))
    u_hat, Au, At_extra, A_forward = system.solve(
        s.astype(dtype), t_hat.astype(dtype), extra.astype(dtype), forward.astype(dtype)
    )
    A_hat = transform.forward(A)
    expected = np.stack([
        np.linalg.solve(ry * A_hat.T @ A_hat + np.diag(rp * d0), s[b] @ A_hat + rp * d0 * t_hat[b])
        for b, (ry, rp) in enumerate(zip(rho_y, rho_p, strict=True))
    ])
    assert u_hat.dtype == Au.dtype == dtype
    np.testing.assert_allclose(u_hat, expected, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(Au, expected @ A_hat.T, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(At_extra, extra @ A_hat, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(A_forward, forward @ A_hat.T, rtol=rtol, atol=rtol)


def test_woodbury_inverses_are_kept_per_penalty_pair_in_use():
    """A pair already inverted is reused (no new factorisation); one no row holds is dropped."""
    rng = np.random.default_rng(2)
    transform = CosineTransform((3, 4))
    d0 = transform.laplacian_eigenvalues() + 0.1
    system = admm._WoodburySystem(rng.standard_normal((5, 12)), transform, d0, np.float64)
    system.set_penalties(np.array([1.0, 1.0, 2.0]), np.array([3.0, 3.0, 3.0]))
    system.set_penalties(np.array([2.0, 1.0, 2.0]), np.array([3.0, 3.0, 3.0]))
    assert system.factorizations == 2 and set(system.inverses) == {(1.0, 3.0), (2.0, 3.0)}
    system.set_penalties(np.array([2.0, 2.0]), np.array([3.0, 3.0]))
    assert system.factorizations == 2 and set(system.inverses) == {(2.0, 3.0)}
    system.set_penalties(np.array([1.0, 2.0]), np.array([3.0, 3.0]))
    assert system.factorizations == 3


@pytest.mark.parametrize("safeguard", [1e6, 0.1])  # 0.1: candidates get rejected
def test_anderson_accelerates_each_row_as_alone(safeguard, monkeypatch):
    """Rows of a batch, with their own weights, a reset of one row (a change of its penalties)
    and their own safeguard rejections, get the iterates a one-row Anderson gives each alone."""
    monkeypatch.setattr(admm, "_SAFEGUARD_D", safeguard)
    rng = np.random.default_rng(4)
    size, memory, rows = 12, 3, 3
    maps = []
    for _ in range(rows):  # affine contractions g(ζ) = M ζ + c
        Q = np.linalg.qr(rng.standard_normal((size, size)))[0]
        maps.append((Q @ np.diag(rng.uniform(-0.95, 0.95, size)) @ Q.T, rng.standard_normal(size)))
    weights = rng.uniform(0.5, 2.0, (rows, size))

    def g(zeta, which):
        return np.stack([maps[b][0] @ z + maps[b][1] for b, z in zip(which, zeta, strict=True)])

    batch = admm._Anderson(memory, rows, size, weights.copy())
    alone = [admm._Anderson(memory, 1, size, weights[b : b + 1].copy()) for b in range(rows)]
    zeta = rng.standard_normal((rows, size))
    zeta_alone = [zeta[b : b + 1].copy() for b in range(rows)]
    for step in range(15):
        if step == 6:
            batch.reset(np.array([False, True, False]))
            alone[1].reset(np.array([True]))
        zeta = batch.step(zeta, g(zeta, range(rows)))
        for b in range(rows):
            zeta_alone[b] = alone[b].step(zeta_alone[b], g(zeta_alone[b], [b]))
            np.testing.assert_allclose(zeta[b], zeta_alone[b][0], rtol=1e-9, atol=1e-12)
    assert batch.rejections == sum(a.rejections for a in alone)
    assert (batch.rejections > 0) == (safeguard < 1.0)


def test_non_finite_state_ends_with_status_diverged(monkeypatch):
    """A NaN in the state stops the run with "diverged" and the last finite iterate."""
    problem = _problem(ReLU(), 0.05 * TotalVariation(SHAPE))
    step = admm._Anderson.step
    calls = []

    def poisoned(self, zeta, g):
        calls.append(1)
        out = step(self, zeta, g)
        return out * np.nan if len(calls) == 4 else out

    monkeypatch.setattr(admm._Anderson, "step", poisoned)
    with pytest.warns(SolverWarning, match="diverged"):
        result = problem.solve(solver="admm", tol=1e-10)
    assert result.status == "diverged" and result.iterations == 5
    assert "non-finite ADMM state" in result.stats["message"]
    assert np.isfinite(result.u0).all() and np.isfinite(result.objective)


def test_float32_gram_in_a_float64_u_step():
    """G₀ by a float32 SYRK: the u-step is exact to G₀'s rounding (not to float64), the further
    rows (the gap's A u, Aᵀλ) are exact products."""
    rng = np.random.default_rng(1)
    transform = CosineTransform((4, 5))
    A = rng.standard_normal((7, 20))
    d0 = transform.laplacian_eigenvalues() + 0.1
    system = admm._WoodburySystem(A, transform, d0, np.float64, np.float32)
    assert system.approximate and system.G0.dtype == np.float64
    system.set_penalties(np.array([0.7]), np.array([3.0]))
    s, t_hat, forward = rng.standard_normal((1, 7)), *rng.standard_normal((2, 1, 20))
    u_hat, Au, _, A_forward = system.solve(s, t_hat, s[:0], forward)
    A_hat = transform.forward(A)
    d = 3.0 * d0
    expected = np.linalg.solve(0.7 * A_hat.T @ A_hat + np.diag(d), (s @ A_hat + d * t_hat).T).T
    error = np.abs(u_hat - expected).max() / np.abs(expected).max()
    assert 1e-12 < error < 1e-5
    np.testing.assert_allclose(A_forward, forward @ A_hat.T, rtol=1e-12)


@pytest.mark.parametrize("reg_name", ["TV", "L1"])
def test_float32_gram_keeps_the_certificate(reg_name, monkeypatch):
    """A float64 run with the float32 Gram (forced here) reaches tol, and its duality-gap bound,
    evaluated at A u from a product with Â, bounds the objective error against CVXPY."""
    monkeypatch.setattr(admm, "_GRAM32_FLOPS", 0.0)
    evaluate, points = DualityGap.evaluate, []

    def recorded(self, u, x, *args):
        points.append((u, x))
        return evaluate(self, u, x, *args)

    monkeypatch.setattr(DualityGap, "evaluate", recorded)
    problem = _problem(ReLU(), REGULARIZERS[reg_name]())
    reference = float(_exact(problem).objective)
    result = problem.solve(solver="admm", tol=1e-6)
    assert result.stats["gram_dtype"] == "float32" and result.status == "optimal"
    error = (float(result.objective) - reference) / abs(reference)
    assert -1e-9 <= error <= result.stats["bound"] <= 1e-6
    # the bound returned was evaluated at x = A u + β itself (the u-step's A u is off by G₀'s
    # rounding)
    u, x = points[-1]
    np.testing.assert_allclose(u[0], result.u0.ravel(), rtol=1e-15)
    np.testing.assert_allclose(x, u @ problem.network.W.T + problem.network.b, rtol=1e-12)


def _converging_rows(rng, steps=40, shape=(2, 30)):
    """Rows X_k = X* + 0.6^k R_k converging geometrically, as an iteration's do."""
    limit = rng.standard_normal(shape)
    return [limit + 0.6**k * rng.standard_normal(shape) for k in range(steps)]


def test_incremental_product_follows_the_exact_products(monkeypatch):
    """X_k M by float32 increments errs by about ε₃₂ times the increments since the last exact
    product, far below a float32 product of X_k itself once the rows settle; the product is
    exact at the first call, when the rows' number changes, when the increments since the last
    exact one exceed the refresh fraction of ‖X‖, and after _REFRESH_EVERY increments."""
    rng = np.random.default_rng(5)
    M = rng.standard_normal((30, 20))
    product = admm._IncrementalProduct(M, M.astype(np.float32))
    eps32, norm_M = float(np.finfo(np.float32).eps), float(np.linalg.norm(M))
    increments = np.zeros(2)
    late_errors, float32_errors, previous = [], [], None
    for k, X in enumerate(_converging_rows(rng)):
        exact = X @ M
        error = np.linalg.norm(product(X) - exact, axis=1)
        if k == 0:
            assert error.max() < 1e-13  # first call: exact
        else:
            increments += np.linalg.norm(X - previous, axis=1)
        refreshed = product.steps == 0  # rows whose product was exact at this call
        increments[refreshed] = 0.0
        assert (error[refreshed] < 1e-13).all()
        assert (error <= 4 * eps32 * increments * norm_M + 1e-13).all()
        assert (increments <= admm._REFRESH_FRACTION * np.linalg.norm(X, axis=1)).all()
        if k >= 30:
            late_errors.append(error.max())
            direct = X.astype(np.float32) @ M.astype(np.float32)
            float32_errors.append(np.linalg.norm(direct - exact, axis=1).max())
        previous = X
    assert product.steps[0] > 10  # the late calls were increments, not exact products
    assert max(late_errors) < 0.1 * min(float32_errors)
    # a row that jumps is recomputed exactly, the other one stays on its increments
    jumped = X + np.array([[0.0], [1.0]]) * rng.standard_normal(X.shape)
    image = product(jumped)
    assert product.steps[0] > 10 and product.steps[1] == 0
    assert np.abs(image[1] - jumped[1] @ M).max() < 1e-13
    assert 0 < np.abs(image[0] - jumped[0] @ M).max() < 4 * eps32 * increments[0] * norm_M + 1e-13
    # a batch that keeps some rows keeps their increments
    kept = admm._IncrementalProduct(M, M.astype(np.float32))
    rows = _converging_rows(rng, steps=25, shape=(3, 30))
    for X in rows[:-1]:
        kept(X)
    keep = np.array([True, False, True])
    before = kept.steps.copy()
    kept.restrict(keep)
    image = kept(rows[-1][keep])
    np.testing.assert_array_equal(kept.steps, before[keep] + 1)
    assert np.abs(image - rows[-1][keep] @ M).max() < 1e-5 * norm_M
    # fewer rows: exact again
    np.testing.assert_allclose(product(X[:1]), X[:1] @ M, rtol=1e-13, atol=1e-13)
    # at most _REFRESH_EVERY increments between exact products
    monkeypatch.setattr(admm, "_REFRESH_EVERY", 3)
    product = admm._IncrementalProduct(M, M.astype(np.float32))
    steps = [(product(X), int(product.steps[0]))[1] for X in _converging_rows(rng, steps=26)[20:]]
    assert steps == [0, 1, 2, 3, 0, 1]
    # without a float32 matrix every product is exact
    exact_only = admm._IncrementalProduct(M, None)
    for X in _converging_rows(rng, steps=5):
        np.testing.assert_allclose(exact_only(X), X @ M, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("reg_name", ["TV", "L1", "TV+NonNegative"])
def test_incremental_products_keep_the_certificate(reg_name, monkeypatch):
    """A float64 run whose products are float32 increments (forced here) reaches tol; a duality
    gap it stops on is evaluated from float64 products (x = A u + β or A v + β, Aᵀλ = Aᵀ(q − f))
    and bounds the objective error against CVXPY; under the KKT rule (TV + NonNegative, no gap)
    the dual residual's Aᵀλ is an exact product."""
    monkeypatch.setattr(admm, "_INCREMENTAL_ENTRIES", 0)
    evaluate, points = DualityGap.evaluate, []

    def recorded(self, u, x, q, At_lambda, *args):
        points.append((u, x, q, At_lambda))
        return evaluate(self, u, x, q, At_lambda, *args)

    monkeypatch.setattr(DualityGap, "evaluate", recorded)
    built = []
    system_class = admm._WoodburySystem

    def recording_system(*args, **kwargs):
        built.append(system_class(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(admm, "_WoodburySystem", recording_system)
    problem = _problem(ReLU(), REGULARIZERS[reg_name]())
    reference = float(_exact(problem).objective)
    result = problem.solve(solver="admm", tol=1e-6)
    assert result.stats["incremental_products"] and result.status == "optimal"
    error = (float(result.objective) - reference) / abs(reference)
    W, b = problem.network.W, problem.network.b
    if reg_name == "TV+NonNegative":
        assert result.stats["guarantee"] == "KKT residual" and not points
        assert built[0]._dual.M32 is None and built[0]._multiplier.M32 is not None
        assert abs(error) <= 1e-5
        return
    assert -1e-9 <= error <= result.stats["bound"] <= 1e-6
    u, x, q, At_lambda = points[-1]
    np.testing.assert_allclose(u[0], result.u0.ravel(), rtol=1e-15)
    np.testing.assert_allclose(x, u @ W.T + b, rtol=1e-12)
    np.testing.assert_allclose(At_lambda, (q - problem.data) @ W, rtol=1e-12, atol=1e-13)


def test_incremental_products_in_a_batch(monkeypatch):
    """A batch with float32-increment products (forced): every problem is certified to tol
    against its own CVXPY optimum and matches its run alone."""
    monkeypatch.setattr(admm, "_INCREMENTAL_ENTRIES", 0)
    problem = _problem(ReLU(), REGULARIZERS["TV"](), batch=4)
    result = problem.solve(solver="admm", tol=1e-6)
    assert result.stats["incremental_products"] and result.status == "optimal"
    for b in range(4):
        alone = _problem(ReLU(), REGULARIZERS["TV"](), batch=4)
        alone = Inversion(alone.network, alone.data[b], alone.reg, fidelity="bregman")
        reference = float(_exact(alone).objective)
        value = float(result.objective[b])
        assert -1e-9 <= (value - reference) / abs(reference) <= 1e-6
        single = alone.solve(solver="admm", tol=1e-6)
        assert abs(float(single.objective) - value) <= 2e-6 * abs(reference)


def test_a_large_batch_runs_as_two_halves_on_threads(monkeypatch):
    """With two idle cores a large batch is solved as two halves on two threads (forced here
    for a small one): the merged Result has every problem's input, statistics and certificate
    in the batch's order, and agrees with the batch solved in one piece."""
    monkeypatch.setattr(admm, "_SPLIT_ENTRIES", 0)
    problem = _problem(ReLU(), REGULARIZERS["TV"](), batch=5, seed=3)
    monkeypatch.setattr(admm, "idle_threads", lambda margin=0.0: 1)
    whole = problem.solve(solver="admm", tol=1e-8)
    monkeypatch.setattr(admm, "idle_threads", lambda margin=0.0: 2)
    split = problem.solve(solver="admm", tol=1e-8)
    assert [len(h) for h in split.stats["blas_threads"]["halves"]] == [3, 3]
    assert "halves" not in whole.stats["blas_threads"]
    assert split.status == "optimal" and split.global_optimum_claimed
    assert split.stats["guarantee"] == "duality gap" and split.stats["bound"] <= 1e-8
    assert split.u0.shape == whole.u0.shape == (5, *SHAPE)
    for key in ("item_iterations", "rho_data", "rho_reg", "penalty_updates"):
        assert np.shape(split.stats[key]) == (5,)
    assert split.stats["row_iterations"] == split.stats["item_iterations"].sum()
    assert split.iterations == split.stats["item_iterations"].max()
    assert len(split.history["objective"]) == split.iterations
    np.testing.assert_allclose(split.objective, whole.objective, rtol=2e-8)
    for k in range(5):  # each problem's own certificate, against its solve alone
        alone = Inversion(problem.network, problem.data[k], problem.reg, fidelity="bregman")
        np.testing.assert_allclose(
            split.objective[k], alone.solve(solver="admm", tol=1e-8).objective, rtol=2e-8
        )
    # a bad warm start is refused from inside a half, with the same error
    with pytest.raises(ValueError, match="NaN|finite"):
        problem.solve(solver="admm", warm_start=np.full((5, N_IN), np.nan))


def test_a_pinned_batch_is_not_split(monkeypatch):
    """Under one BLAS thread (the user's pin) the batch is solved in one piece."""
    monkeypatch.setattr(admm, "_SPLIT_ENTRIES", 0)
    problem = _problem(ReLU(), REGULARIZERS["TV"](), batch=4, seed=3)
    with threadpool_limits(limits=1, user_api="blas"):
        result = problem.solve(solver="admm", tol=1e-6)
    assert "halves" not in result.stats["blas_threads"] and result.status == "optimal"


@pytest.mark.parametrize(
    ("dtype", "tol", "max_iter"),
    [(np.float32, 1e-6, 3), (np.float32, 1e-6, 100), (np.float32, 1e-4, 3), (np.float64, 1e-6, 60)],
)
def test_a_float32_run_stopped_near_a_tol_below_1e_5_suggests_float64(dtype, tol, max_iter):
    """A float32 run that ends at max_iter with its gap within 100·tol of a tol below
    FLOAT32_TOL says that float32 rounding may be the limit (its gap stalls near 2e-6 on the
    inversion benchmark) and names float64; a run stopped far from tol (max_iter too small), a
    float64 run, or a float32 run at a tol it reaches, does not."""
    problem = _problem(ReLU(), REGULARIZERS["TV"]())
    with pytest.warns(SolverWarning, match="max_iter"):
        result = problem.solve(solver="admm", tol=tol, dtype=dtype, max_iter=max_iter)
    assert result.status == "max_iter"
    message = result.stats["message"]
    assert "reached before the relative duality gap" in message
    gap = result.history["gap"][-1]
    near = dtype == np.float32 and tol < 1e-5 and gap <= 100 * tol
    assert ("use dtype=numpy.float64" in message) == near
    if (dtype, max_iter) == (np.float32, 100):
        assert near  # this case exercises the hint (gap between tol and 100·tol)
