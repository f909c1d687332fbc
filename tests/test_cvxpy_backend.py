"""Tests of the exact CVXPY backend against independent truth.

* one-layer Bregman fidelity: the optimality condition 0 ∈ Wᵀ(σ(W u + b) − f) + α∂J(u) checked
  with σ written out in NumPy;
* certified residual networks: recovery of the input from exact data, z = σ(W u + b) at the
  optimum, and the optimal value reproduced by a SciPy minimisation (several starts) of the same
  model on the reduced variables (u₀, z), with objective and gradient written out here.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
from scipy.optimize import minimize

from bregmod.activations import Arctan, DCPTerm, ReLU, SoftThreshold, Tanh
from bregmod.certificate import smallest_alpha
from bregmod.errors import NoDCPFormError, NotCertifiedError
from bregmod.network import Dense, Residual, Sequential
from bregmod.problem import Inversion, SolverWarning
from bregmod.regularizers import L1, NonNegative, SquaredL2, TotalVariation

SIGMA = {
    "ReLU": lambda x: np.maximum(x, 0.0),
    "Tanh": np.tanh,
    "SoftThreshold": lambda x: np.sign(x) * np.maximum(np.abs(x) - 0.3, 0.0),
}
ACTIVATIONS = {"ReLU": ReLU(), "Tanh": Tanh(), "SoftThreshold": SoftThreshold(0.3)}


def residual_net(seed: int, depth: int = 3, n: int = 4, m: int = 3):
    """u_j = u_{j−1} + W_jᵀ ReLU(W_j u_{j−1} + b_j) (V = Wᵀ), and its weights."""
    rng = np.random.default_rng(seed)
    weights = [(0.5 * rng.standard_normal((m, n)), 0.1 * rng.standard_normal(m))
               for _ in range(depth)]
    return Sequential(*[Residual(W, b, ReLU()) for W, b in weights]), weights


class PhiOnlyReLU(ReLU):
    """ReLU that offers the DCP form of Φ only (as tanh, sigmoid, … do), not of Ψ alone."""

    name = "PhiOnlyReLU"

    def cvx_psi(self, y):
        raise NoDCPFormError(f"{self.name}: Ψ alone has no DCP form")

    def cvx_phi(self, y):
        return DCPTerm(0.5 * cp.sum_squares(y), [y >= 0])


# --- one layer, Bregman fidelity ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SIGMA))
@pytest.mark.parametrize("penalty", ["squared", "l1"])
def test_perceptron_satisfies_the_optimality_condition(name, penalty):
    rng = np.random.default_rng(11)
    m, n, alpha = 12, 6, 0.1
    W, b = rng.standard_normal((m, n)), 0.1 * rng.standard_normal(m)
    sigma = SIGMA[name]
    f = sigma(W @ rng.standard_normal(n) + b) + 0.05 * rng.standard_normal(m)
    if name == "ReLU":
        f = np.abs(f)  # dom Ψ = [0, ∞)
    if name == "Tanh":
        f = np.clip(f, -0.99, 0.99)  # dom Ψ = [−1, 1]
    reg = alpha * (SquaredL2() if penalty == "squared" else L1())
    problem = Inversion(Dense(W, b, ACTIVATIONS[name]), f, reg, fidelity="bregman")
    result = problem.solve("cvxpy", tol=1e-12)
    assert result.status == "optimal" and result.global_optimum_claimed
    u = result.u0
    g = W.T @ (sigma(W @ u + b) - f)  # ∇_u B_Ψ(f, W u + b), docs/math/solvers.md
    if penalty == "squared":
        residual = np.abs(g + alpha * u).max()
    else:  # −g/α ∈ ∂‖u‖₁
        active = np.abs(u) > 1e-8
        residual = max(
            np.abs(g[active] + alpha * np.sign(u[active])).max(initial=0.0),
            (np.abs(g[~active]) - alpha).max(initial=0.0),
        )
    assert residual <= 1e-7 * max(1.0, np.abs(W.T @ f).max())
    expected = result.objective
    assert result.stats["cvxpy_objective"] == pytest.approx(expected, rel=1e-8)
    assert result.bregman_gaps.shape == (1,) and 0 <= result.bregman_gaps[0] <= expected


def test_bregman_fidelity_with_constraints_and_tv_returns_a_point_in_dom_j():
    rng = np.random.default_rng(12)
    W = rng.standard_normal((10, 16))
    u_true = np.zeros((4, 4))
    u_true[1:3, 1:3] = 1.0
    net = Dense(W, None, ReLU(), in_shape=(4, 4))
    f = np.maximum(W @ u_true.ravel(), 0.0)
    reg = 0.05 * TotalVariation((4, 4)) + NonNegative()
    result = Inversion(net, f, reg, fidelity="bregman").solve("cvxpy", tol=1e-9)
    assert result.status == "optimal" and result.u0.shape == (4, 4)
    assert (result.u0 >= 0).all() and np.isfinite(result.objective)


# --- certified residual networks ----------------------------------------------------------------


def reduced_objective(weights, lam, alpha, f):
    """E(u₀, z) and its gradient, with u_j = u_{j−1} + W_jᵀ z_j (the reduced variables)."""
    n = weights[0][0].shape[1]
    sizes = [W.shape[0] for W, _ in weights]

    def energy(y):
        u0, zs = y[:n], np.split(y[n:], np.cumsum(sizes)[:-1])
        states, pre = [u0], []
        for (W, b), z in zip(weights, zs, strict=True):
            pre.append(W @ states[-1] + b)
            states.append(states[-1] + W.T @ z)
        value = 0.5 * lam * np.sum((states[-1] - f) ** 2) + 0.5 * alpha * u0 @ u0
        value += sum(np.sum(0.5 * z**2 + 0.5 * np.maximum(x, 0) ** 2 - x * z)
                     for z, x in zip(zs, pre, strict=True))
        g_u = lam * (states[-1] - f)
        g_z = []
        for (W, _), z, x in reversed(list(zip(weights, zs, pre, strict=True))):
            g_z.insert(0, z - x + W @ g_u)
            g_u = g_u + W.T @ (np.maximum(x, 0) - z)
        return value, np.concatenate([g_u + alpha * u0, *g_z])

    bounds = [(None, None)] * n + [(0, None)] * sum(sizes)  # dom Ψ of ReLU: z ≥ 0
    return energy, bounds


def test_residual_net_matches_a_brute_force_minimisation():
    net, weights = residual_net(seed=21)
    rng = np.random.default_rng(22)
    lam, alpha = 2.0, 0.05
    f = net(rng.standard_normal(4)) + 0.1 * rng.standard_normal(4)
    result = Inversion(net, f, alpha * SquaredL2(), lam=lam).solve("cvxpy", tol=1e-10)
    assert result.status == "optimal" and result.global_optimum_claimed
    energy, bounds = reduced_objective(weights, lam, alpha, f)
    values = []
    for _ in range(4):
        start = rng.standard_normal(len(bounds)) * 2
        start[4:] = np.abs(start[4:])
        run = minimize(energy, start, jac=True, method="L-BFGS-B", bounds=bounds,
                       options=dict(ftol=1e-15, gtol=1e-11, maxiter=20000))
        values.append(run.fun)
    assert min(values) >= result.objective - 1e-9  # the CVXPY value is the global minimum …
    np.testing.assert_allclose(values, result.objective, rtol=1e-7)  # … and every start finds it
    y = np.concatenate([result.u0, result.z])
    assert energy(y)[0] == pytest.approx(result.objective, rel=1e-10)


def test_feed_forward_net_certified_only_by_alpha_matches_l_bfgs():
    # H₀ has 0 on u₀ for a feed-forward net: only J's α/2‖u₀‖² certifies it, and the backend
    # must count that α once (in the certified quadratic part, not again in J)
    rng = np.random.default_rng(41)
    n0, n1, n2 = 4, 6, 5
    W1, b1 = rng.standard_normal((n1, n0)), 0.1 * rng.standard_normal(n1)
    W2, b2 = 0.3 * rng.standard_normal((n2, n1)), 0.1 * rng.standard_normal(n2)
    net = Sequential(Dense(W1, b1, ReLU()), Dense(W2, b2, ReLU()))
    lam = 1.0
    threshold = smallest_alpha(net.lift(), lam).value
    alpha = 1.1 * threshold
    f = net(3 * rng.standard_normal(n0)) + 0.05 * rng.standard_normal(n2)
    problem = Inversion(net, f, alpha * SquaredL2(), lam=lam)
    assert problem.certify().certified and problem.certify().alpha == alpha
    assert not Inversion(net, f, TotalVariation((2, 2)), lam=lam).certify().certified
    result = problem.solve("cvxpy", tol=1e-10)
    assert result.status == "optimal" and result.global_optimum_claimed

    def energy(y):  # E(u₀, z₁, z₂) with u_j = z_j, written out here
        u0, z1, z2 = y[:n0], y[n0 : n0 + n1], y[n0 + n1 :]
        x1, x2 = W1 @ u0 + b1, W2 @ z1 + b2
        value = 0.5 * lam * np.sum((z2 - f) ** 2) + 0.5 * alpha * u0 @ u0
        value += sum(0.5 * z @ z + 0.5 * np.sum(np.maximum(x, 0) ** 2) - z @ x
                     for z, x in ((z1, x1), (z2, x2)))
        g_u0 = W1.T @ (np.maximum(x1, 0) - z1) + alpha * u0
        g_z1 = z1 - x1 + W2.T @ (np.maximum(x2, 0) - z2)
        g_z2 = z2 - x2 + lam * (z2 - f)
        return value, np.concatenate([g_u0, g_z1, g_z2])

    bounds = [(None, None)] * n0 + [(0, None)] * (n1 + n2)
    runs = []
    for _ in range(3):
        start = rng.standard_normal(len(bounds))
        start[n0:] = np.abs(start[n0:])
        runs.append(minimize(energy, start, jac=True, method="L-BFGS-B", bounds=bounds,
                             options=dict(ftol=1e-15, gtol=1e-11, maxiter=20000)))
    best = min(runs, key=lambda run: run.fun)
    assert result.objective == pytest.approx(best.fun, rel=1e-9)
    np.testing.assert_allclose(result.u0, best.x[:n0], atol=1e-6)
    assert np.abs(result.u0).max() > 0.01  # the solution is not trivially zero
    for solver in ("pdhg", "fista"):  # first-order solvers claim the same global optimum
        other = problem.solve(solver, tol=1e-8)
        assert other.status == "optimal" and other.global_optimum_claimed
        assert other.objective == pytest.approx(best.fun, rel=1e-8)


@pytest.mark.parametrize("readout", [False, True])
def test_exact_data_and_tiny_alpha_recover_the_input(readout):
    net, weights = residual_net(seed=23, depth=2 if readout else 3)
    rng = np.random.default_rng(24)
    if readout:  # feed-forward affine output layer, folded into K
        net = Sequential(net, Dense(np.eye(4) + 0.3 * rng.standard_normal((4, 4)),
                                    0.1 * rng.standard_normal(4)))
    u_true = rng.standard_normal(4)
    result = Inversion(net, net(u_true), 1e-8 * SquaredL2(), lam=2.0).solve("cvxpy", tol=1e-10)
    assert result.status == "optimal"
    np.testing.assert_allclose(result.u0, u_true, atol=1e-5)
    # z = σ(W u + b) block by block at the optimum, computed from the returned states
    for (W, b), z, state in zip(weights, np.split(result.z, len(weights)), result.states,
                                strict=False):
        np.testing.assert_allclose(z, np.maximum(W @ state + b, 0.0), atol=1e-5)
    assert np.all(result.bregman_gaps <= 1e-8)
    np.testing.assert_allclose(result.states[-1], net.states(result.u0)[len(result.states) - 1],
                               atol=1e-5)


def test_returned_point_is_exactly_feasible():
    net, _ = residual_net(seed=25)
    problem = Inversion(net, np.ones(4), L1(), lam=2.0)
    result = problem.solve("cvxpy")
    lifted = problem.lifted
    violation = lifted.M.apply(result.u) - lifted.V.apply(result.z)
    assert np.abs(violation).max() <= 1e-12 and (result.z >= 0).all()
    assert problem.objective(result.u, result.z) == result.objective


def test_batch_is_solved_problem_by_problem():
    net, _ = residual_net(seed=26)
    rng = np.random.default_rng(27)
    data = rng.standard_normal((3, 4))
    batched = Inversion(net, data, 0.1 * SquaredL2(), lam=2.0).solve("cvxpy", tol=1e-9)
    assert batched.u0.shape == (3, 4) and batched.objective.shape == (3,)
    assert batched.bregman_gaps.shape == (3, 3) and batched.stats["statuses"] == ["optimal"] * 3
    for i in range(3):
        single = Inversion(net, data[i], 0.1 * SquaredL2(), lam=2.0).solve("cvxpy", tol=1e-9)
        np.testing.assert_allclose(batched.u0[i], single.u0, atol=1e-7)
        assert batched.objective[i] == pytest.approx(single.objective, rel=1e-9)


def test_scs_can_be_named_and_agrees_with_clarabel():
    net, _ = residual_net(seed=28)
    problem = Inversion(net, np.ones(4), 0.1 * SquaredL2(), lam=2.0)
    reference = problem.solve("cvxpy", tol=1e-10)
    scs = problem.solve("cvxpy", tol=1e-9, cvxpy_solver="SCS", warm_start=reference)
    assert scs.stats["cvxpy_solver"] == "SCS"
    assert scs.objective == pytest.approx(reference.objective, rel=1e-6)


# --- refusals -----------------------------------------------------------------------------------


def test_uncertified_problem_is_refused_with_the_explanation():
    rng = np.random.default_rng(29)
    net = Sequential(Dense(rng.standard_normal((3, 4)), None, ReLU()),
                     Dense(rng.standard_normal((2, 3)), None, ReLU()))
    problem = Inversion(net, np.ones(2), lam=10.0)
    for call in (lambda: problem.solve("cvxpy"), problem.to_cvxpy):
        with pytest.raises(NotCertifiedError) as info:
            call()
        text = str(info.value)
        assert "not certified convex at λ = 10, so the exact (convex) CVXPY backend refuses" in text
        assert "Checked H₀ = [[λKᵀK + αE₀, −Wᵀ], [−W, I]] ⪰ 0 on {M u = V z}" in text
        assert "To certify: no λ helps" in text and "change the architecture" in text
        assert "or solve with a first-order solver (solver='pdhg')" in text


def test_residual_net_below_the_certified_lambda_is_refused():
    net, _ = residual_net(seed=21)
    with pytest.raises(NotCertifiedError, match=r"(?s)NOT certified.*To certify: increase λ"):
        Inversion(net, np.ones(4), lam=0.3).solve("cvxpy")


def test_phi_only_split_is_checked_and_psi_forms_are_used_when_offered():
    psi_net, weights = residual_net(seed=0)  # built-in ReLU offers cvx_psi
    net = Sequential(*[Residual(W, b, PhiOnlyReLU()) for W, b in weights])
    f = net(np.ones(4))
    problem = Inversion(net, f, 1e-3 * SquaredL2(), lam=0.6)
    assert problem.certify().certified
    with pytest.raises(NotCertifiedError) as info:
        problem.solve("cvxpy")
    text = str(info.value)
    assert "certified convex, but the DCP form needs more" in text
    assert "z1 (layer 1, Residual) (PhiOnlyReLU)" in text
    assert "DCP form of Φ = ½‖·‖² + Ψ only" in text
    result = Inversion(psi_net, f, 1e-3 * SquaredL2(), lam=0.6).solve("cvxpy", tol=1e-10)
    assert result.status == "optimal"
    assert result.stats["dcp_split"] == {"z1": "Ψ", "z2": "Ψ", "z3": "Ψ"}
    phi = Inversion(net, f, 0.5 * SquaredL2(), lam=2.0).solve("cvxpy", tol=1e-10)
    assert phi.stats["dcp_split"] == {"z1": "Φ", "z2": "Φ", "z3": "Φ"}
    # the same model through either split (J's α = 0.5 in the quadratic part both times)
    psi = Inversion(psi_net, f, 0.5 * SquaredL2(), lam=2.0).solve("cvxpy", tol=1e-10)
    assert phi.objective == pytest.approx(psi.objective, rel=1e-8)
    np.testing.assert_allclose(phi.u0, psi.u0, atol=1e-6)


def test_activation_without_dcp_form_is_named():
    rng = np.random.default_rng(30)
    net = Dense(rng.standard_normal((5, 3)), None, Arctan())
    problem = Inversion(net, np.zeros(5), fidelity="bregman")
    with pytest.raises(NoDCPFormError, match=r"Φ\* of the layer \(Arctan.*use a first-order"):
        problem.solve("cvxpy")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(dtype=np.float32), ValueError, "the CVXPY backend computes in float64"),
        (dict(cvxpy_solver="GUROBI_X"), ValueError, "CVXPY solver 'GUROBI_X' is not installed"),
        (dict(tol=2.0), ValueError, "tol is a relative tolerance and must be < 1"),
        (dict(solver_options=[1]), TypeError, "solver_options must be a dict"),
    ],
)
def test_bad_solver_arguments(kwargs, error, message):
    net, _ = residual_net(seed=31)
    with pytest.raises(error, match=message):
        Inversion(net, np.ones(4), lam=2.0).solve("cvxpy", **kwargs)


# --- solver trouble surfaces in the status ------------------------------------------------------


def test_iteration_limit_surfaces_as_status_and_warning():
    net, _ = residual_net(seed=32)
    with pytest.warns(SolverWarning, match="cvxpy finished with status 'max_iter'"):
        result = Inversion(net, np.ones(4), lam=2.0).solve("cvxpy", max_iter=2)
    assert result.status == "max_iter" and not result.global_optimum_claimed


def test_solver_exception_gives_solver_error_and_no_point(monkeypatch):
    net, _ = residual_net(seed=33)

    def fail(self, *args, **kwargs):
        raise cp.error.SolverError("Solver 'CLARABEL' failed.")

    monkeypatch.setattr(cp.Problem, "solve", fail)
    with pytest.warns(SolverWarning, match="status 'solver_error': problem 0: Solver 'CLARABEL'"):
        result = Inversion(net, np.ones(4), lam=2.0).solve("cvxpy")
    assert result.status == "solver_error" and np.isnan(result.u0).all()
    assert np.isnan(result.objective) and not result.global_optimum_claimed


def test_value_mismatch_downgrades_the_status(monkeypatch):
    from bregmod.model.lifted import LiftedEnergy

    net, _ = residual_net(seed=34)
    feasible = LiftedEnergy.feasible_point

    def shifted(energy, u, z):
        u, z = feasible(energy, u, z)
        return u + 0.1, z  # a point that is not CVXPY's optimum

    monkeypatch.setattr(LiftedEnergy, "feasible_point", shifted)
    with pytest.warns(SolverWarning, match="differs from CVXPY's .* beyond √tol"):
        result = Inversion(net, np.ones(4), lam=2.0).solve("cvxpy")
    assert result.status == "optimal_inaccurate" and not result.global_optimum_claimed


# --- to_cvxpy -----------------------------------------------------------------------------------


def test_to_cvxpy_gives_the_model_and_named_handles():
    net, _ = residual_net(seed=35)
    problem = Inversion(net, np.ones(4), 0.1 * SquaredL2(), lam=2.0)
    cvx_problem, handles = problem.to_cvxpy()
    assert set(handles) == {"u0", "u1", "u2", "u3", "z1", "z2", "z3", "u", "z"}
    cvx_problem.solve(solver="CLARABEL")
    reference = problem.solve("cvxpy", tol=1e-9)
    assert cvx_problem.value == pytest.approx(reference.objective, rel=1e-6)
    # users add their own constraints and solve it themselves
    constrained = cp.Problem(cvx_problem.objective,
                             cvx_problem.constraints + [handles["u0"][0] == 2.0])
    constrained.solve(solver="CLARABEL")
    assert handles["u0"].value[0] == pytest.approx(2.0, abs=1e-7)
    assert constrained.value > cvx_problem.value + 1e-3


def test_to_cvxpy_for_bregman_fidelity_and_batches():
    rng = np.random.default_rng(36)
    net = Dense(rng.standard_normal((5, 3)), None, ReLU())
    data = np.abs(rng.standard_normal((2, 5)))
    problem = Inversion(net, data, 0.1 * L1(), fidelity="bregman")
    with pytest.raises(ValueError, match=r"holds a batch of 2 problems: pass index=i"):
        problem.to_cvxpy()
    with pytest.raises(ValueError, match="index 2 out of range for a batch of 2"):
        problem.to_cvxpy(index=2)
    cvx_problem, handles = problem.to_cvxpy(index=1)
    assert set(handles) == {"u0"}
    cvx_problem.solve(solver="CLARABEL")
    single = Inversion(net, data[1], 0.1 * L1(), fidelity="bregman")
    u, _ = single.lifted.forward(handles["u0"].value)
    assert cvx_problem.value == pytest.approx(single.objective(u), rel=1e-7)


def test_small_objectives_are_solved_to_the_relative_tolerance_claimed():
    # Issue 16, item 15: at tol = 1e-6 Clarabel's absolute gaps left a relative error of 8e-6
    # on an optimal value ≈ 0.005 while the result claimed "optimal" and a global optimum.
    import bregmod as bm
    from bregmod.data import phantom

    rng = np.random.default_rng(0)
    W = rng.standard_normal((48, 64)) / 8
    net = bm.Dense(W, 0.1 * rng.standard_normal(48), bm.ReLU(), in_shape=(8, 8))
    problem = bm.Inversion(net, net(phantom(8)), fidelity="bregman",
                           reg=3e-4 * bm.TotalVariation((8, 8)) + bm.Box(0, 1))
    loose = problem.solve("cvxpy", tol=1e-6)
    tight = problem.solve("cvxpy", tol=1e-11)
    assert loose.status == "optimal" and loose.global_optimum_claimed
    assert 0 < tight.objective < 0.01
    assert abs(loose.objective - tight.objective) <= 1e-6 * abs(tight.objective)
