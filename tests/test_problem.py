"""Tests of bregmod.problem: the Inversion model, its validation, make_result and dispatch.

The model values are checked against formulas written out here in NumPy, independent of
bregmod.activations and bregmod.lifted.
"""

from __future__ import annotations

import types
import warnings

import numpy as np
import pytest

from bregmod.activations import ReLU
from bregmod.certificate import Certificate
from bregmod.errors import DomainError, NoDCPFormError, ShapeError, SolverError
from bregmod.network import Conv2d, Dense, Residual, Sequential
from bregmod.problem import (
    DEFAULT_RHO,
    Inversion,
    Result,
    SolverWarning,
    StructuralCertificate,
)
from bregmod.regularizers import L1, NonNegative, SquaredL2, TotalVariation
from bregmod.solvers import registry

N_IN, WIDTH = 4, 3


def relu_bregman(y, x):
    """Σ B_ReLU(y, x) = Σ ½y² + ½max(x, 0)² − x y for y ≥ 0 (docs/math/activations.md,
    docs/math/bregman.md)."""
    assert np.all(y >= 0)
    return float(np.sum(0.5 * y**2 + 0.5 * np.maximum(x, 0.0) ** 2 - x * y))


@pytest.fixture
def residual():
    """Two residual ReLU layers u_j = u_{j−1} + W_jᵀ ReLU(W_j u_{j−1} + b_j) and their weights."""
    rng = np.random.default_rng(0)
    weights = [(0.5 * rng.standard_normal((WIDTH, N_IN)), 0.1 * rng.standard_normal(WIDTH))
               for _ in range(2)]
    net = Sequential(*[Residual(W, b, ReLU()) for W, b in weights])
    return net, weights


@pytest.fixture
def perceptron():
    rng = np.random.default_rng(1)
    W, b = rng.standard_normal((6, N_IN)), 0.1 * rng.standard_normal(6)
    return Dense(W, b, ReLU()), W, b


def lifted_point(weights, u0, zs):
    """Stacked (u, z) of the residual chain for given u₀ and z blocks (so that M u = V z)."""
    states = [u0]
    for (W, _), z in zip(weights, zs, strict=True):
        states.append(states[-1] + W.T @ z)
    return np.concatenate(states), np.concatenate(zs), states


# --- construction and validation ----------------------------------------------------------------


def test_declaration_is_read_only_and_defaults(residual):
    net, _ = residual
    problem = Inversion(net, np.zeros(N_IN))
    assert problem.lam == 1.0 and problem.rho == DEFAULT_RHO and problem.batch_size is None
    assert problem.fidelity == "quadratic" and problem.reg is None
    assert problem.lifted.n_u == 3 * N_IN
    with pytest.raises(AttributeError):
        problem.lam = 2.0


def test_batched_data_sets_batch_size(residual):
    net, _ = residual
    problem = Inversion(net, np.zeros((5, N_IN)))
    assert problem.batch_size == 5


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (np.zeros(N_IN + 1), ShapeError, r"data has shape \(5,\), but the network's output has "
                                         r"shape \(4,\)"),
        (np.zeros((2, 3, N_IN)), ShapeError, r"data has shape \(2, 3, 4\)"),
        (np.array([0.0, np.nan, 1.0, 2.0]), ValueError, r"data contains NaN or Inf: 1 entry, "
                                                         r"first at indices \[1\]"),
        ("abc", ValueError, "data must be a numeric array"),
    ],
)
def test_bad_data_is_rejected_with_a_clear_message(residual, data, error, message):
    net, _ = residual
    with pytest.raises(error, match=message):
        Inversion(net, data)


def test_bregman_data_outside_dom_psi_names_the_entries(perceptron):
    net, _, _ = perceptron
    data = np.array([0.5, -0.25, 1.0, 0.0, -2.0, 3.0])
    with pytest.raises(DomainError) as info:
        Inversion(net, data, fidelity="bregman")
    text = str(info.value)
    assert "data f^δ (fidelity='bregman') is outside the domain [0, inf)" in text
    assert "ReLU" in text and "2 entries, first at indices [1, 4] with values [-0.25, -2.0]" in text


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(fidelity="l2"), ValueError, r"unknown fidelity 'l2'; choose one of"),
        (dict(lam=0.0), ValueError, r"lam \(the data weight λ\) must be a finite positive"),
        (dict(lam=-1.0), ValueError, r"lam \(the data weight λ\) must be a finite positive"),
        (dict(rho=np.inf), ValueError, r"rho \(the penalty ρ\) must be a finite positive"),
        (dict(reg="l1"), TypeError, r"reg must be a bregmod Regularizer .* got str"),
        (dict(reg=TotalVariation((2, 3))), ShapeError,
         r"acts on items of shape \(2, 3\), but the network input u₀ has shape \(4,\)"),
    ],
)
def test_bad_arguments_are_rejected(residual, kwargs, error, message):
    net, _ = residual
    with pytest.raises(error, match=message):
        Inversion(net, np.zeros(N_IN), **kwargs)


def test_regulariser_grid_must_match_the_input_shape_not_only_its_size():
    # Issue 16, item 12: TV on a 2×8 grid of a 4×4 image was accepted.
    rng = np.random.default_rng(0)
    net = Dense(rng.standard_normal((32, 16)), rng.standard_normal(32), ReLU(), in_shape=(4, 4))
    f = net(rng.random((4, 4)))
    with pytest.raises(ShapeError, match=r"shape \(2, 8\), but the network input u₀ has shape "
                                         r"\(4, 4\) \(same size, different grid"):
        Inversion(net, f, reg=0.1 * TotalVariation((2, 8)), fidelity="bregman")
    assert Inversion(net, f, reg=0.1 * TotalVariation((4, 4)), fidelity="bregman").reg
    flat = Dense(net.W, net.b, ReLU())  # a flat input declares no grid: TV picks one
    assert Inversion(flat, f, reg=0.1 * TotalVariation((2, 8)), fidelity="bregman").reg
    grey = Conv2d(rng.standard_normal((2, 1, 3, 3)), None, ReLU(), in_shape=(1, 6, 6))
    assert Inversion(grey, grey(rng.random((1, 6, 6))), reg=TotalVariation((6, 6)),
                     fidelity="bregman").reg


def test_network_must_be_a_network():
    with pytest.raises(TypeError, match="network must be a bregmod network"):
        Inversion(np.eye(3), np.zeros(3))


def test_bregman_fidelity_rejects_lam_rho_and_deep_networks(residual, perceptron):
    net, _, _ = perceptron
    with pytest.raises(ValueError, match=r"fidelity='bregman' has no λ or ρ .*alpha \* J"):
        Inversion(net, np.ones(6), lam=2.0, fidelity="bregman")
    with pytest.raises(ValueError, match=r"fidelity='bregman' has no λ or ρ"):
        Inversion(net, np.ones(6), rho=10.0, fidelity="bregman")
    deep, _ = residual
    with pytest.raises(ValueError, match=r"needs a feed-forward network of Dense and Conv2d .* "
                       r"layer 1 of .* is Residual"):
        Inversion(deep, np.ones(N_IN), fidelity="bregman")


def test_bregman_layer_attributes(perceptron, residual):
    net, W, b = perceptron
    problem = Inversion(net, np.ones(6), fidelity="bregman")
    np.testing.assert_array_equal(problem.A.to_dense(), W)
    np.testing.assert_array_equal(problem.bias, b)
    assert isinstance(problem.activation, ReLU)
    assert problem.lam == 1.0 and problem.rho is None
    deep, _ = residual
    with pytest.raises(AttributeError, match="describe the single layer of fidelity='bregman'"):
        _ = Inversion(deep, np.ones(N_IN)).A


# --- the objective ------------------------------------------------------------------------------


def test_quadratic_objective_matches_the_formula(residual):
    net, weights = residual
    rng = np.random.default_rng(2)
    f = rng.standard_normal(N_IN)
    lam, alpha = 1.7, 0.3
    u0 = rng.standard_normal(N_IN)
    zs = [np.abs(rng.standard_normal(WIDTH)) for _ in weights]  # feasible, not the forward pass
    u, z, states = lifted_point(weights, u0, zs)
    expected = 0.5 * lam * np.sum((states[-1] - f) ** 2) + 0.5 * alpha * u0 @ u0
    for (W, b), zj, previous in zip(weights, zs, states[:-1], strict=True):
        expected += relu_bregman(zj, W @ previous + b)
    problem = Inversion(net, f, alpha * SquaredL2(), lam=lam)
    assert problem.objective(u, z) == pytest.approx(expected, rel=1e-12)


def test_objective_is_j_alone_at_the_forward_pass_of_exact_data(residual):
    net, _ = residual
    u_true = np.array([0.3, -1.0, 0.5, 2.0])
    problem = Inversion(net, net(u_true), L1(), lam=3.0)
    u, z = problem.lifted.forward(u_true)
    assert problem.objective(u, z) == pytest.approx(np.abs(u_true).sum(), rel=1e-12)


def test_objective_is_infinite_off_the_model_domain(residual):
    net, weights = residual
    problem = Inversion(net, np.zeros(N_IN), NonNegative())
    u, z, _ = lifted_point(weights, np.ones(N_IN), [np.ones(WIDTH), np.ones(WIDTH)])
    assert np.isfinite(problem.objective(u, z))
    off_constraint = u.copy()
    off_constraint[-1] += 1e-4  # M u ≠ V z
    assert problem.objective(off_constraint, z) == np.inf
    negative_z = z.copy()
    negative_z[0] = -0.1  # outside dom Ψ of ReLU
    u_neg, _, _ = lifted_point(weights, np.ones(N_IN), [negative_z[:WIDTH], negative_z[WIDTH:]])
    assert problem.objective(u_neg, negative_z) == np.inf
    u_bad, z_bad, _ = lifted_point(weights, -np.ones(N_IN), [np.ones(WIDTH), np.ones(WIDTH)])
    assert problem.objective(u_bad, z_bad) == np.inf  # u₀ ∉ dom J


def test_objective_penalty_term_counts_inside_the_tolerance(residual):
    net, weights = residual
    u, z, _ = lifted_point(weights, np.ones(N_IN), [np.ones(WIDTH), np.ones(WIDTH)])
    u[-1] += 1e-9  # ‖M u − V z‖ = 1e-9 ≤ 1e-8 · scale: feasible within the tolerance
    stiff = Inversion(net, np.zeros(N_IN), rho=1e12).objective(u, z)
    soft = Inversion(net, np.zeros(N_IN), rho=1.0).objective(u, z)
    assert stiff - soft == pytest.approx(0.5 * (1e12 - 1.0) * 1e-18, rel=1e-5)


def test_bregman_objective_matches_the_formula(perceptron):
    net, W, b = perceptron
    rng = np.random.default_rng(3)
    f = np.abs(rng.standard_normal(6))
    u0 = rng.standard_normal(N_IN)
    problem = Inversion(net, f, 0.2 * L1(), fidelity="bregman")
    u, z = problem.lifted.forward(u0)
    expected = relu_bregman(f, W @ u0 + b) + 0.2 * np.abs(u0).sum()
    assert problem.objective(u, z) == pytest.approx(expected, rel=1e-12)
    assert problem.objective(u) == pytest.approx(expected, rel=1e-12)  # z is ignored


def test_batched_objective_has_one_value_per_problem(residual):
    net, _ = residual
    rng = np.random.default_rng(4)
    data = rng.standard_normal((3, N_IN))
    batched = Inversion(net, data, SquaredL2(), lam=2.0)
    u0 = rng.standard_normal((3, N_IN))
    u, z = batched.lifted.forward(u0)
    values = batched.objective(u, z)
    assert values.shape == (3,)
    for i in range(3):
        single = Inversion(net, data[i], SquaredL2(), lam=2.0)
        assert values[i] == pytest.approx(single.objective(u[i], z[i]), rel=1e-12)


def test_objective_rejects_bad_points(residual):
    net, _ = residual
    problem = Inversion(net, np.zeros(N_IN))
    u, z = problem.lifted.forward(np.zeros(N_IN))
    with pytest.raises(ValueError, match="objective needs z for fidelity='quadratic'"):
        problem.objective(u)
    with pytest.raises(ShapeError, match=r"u must have shape \(12,\), got \(11,\)"):
        problem.objective(u[:-1], z)
    bad = u.copy()
    bad[0] = np.nan
    with pytest.raises(ValueError, match="u contains NaN or Inf"):
        problem.objective(bad, z)


# --- certificates -------------------------------------------------------------------------------


def test_certify_is_cached_and_method_specific(residual):
    net, _ = residual
    problem = Inversion(net, np.zeros(N_IN), lam=2.0)
    exact = problem.certify()
    assert isinstance(exact, Certificate) and exact.method == "exact" and exact.certified
    assert (exact.lam, exact.rho) == (2.0, DEFAULT_RHO)
    assert problem.certify("exact") is exact
    assert problem.certify("paper").method == "paper"
    assert not Inversion(net, np.zeros(N_IN), lam=0.1).certify().certified


def test_certify_counts_j_and_uses_the_chain_above_the_dense_limit():
    # a feed-forward net: H₀ is 0 on u₀, so only J's α certifies; 40 + 2·(600 + 500) = 2240
    # unknowns > DENSE_LIMIT, so the default check is the factorised one along the chain
    rng = np.random.default_rng(5)
    W1 = rng.standard_normal((600, 40)) / np.sqrt(40)
    W2 = 0.3 * rng.standard_normal((500, 600)) / np.sqrt(600)
    net = Sequential(Dense(W1, None, ReLU()), Dense(W2, None, ReLU()))
    data = np.ones(500)
    plain = Inversion(net, data, TotalVariation((5, 8)), lam=1.0).certify()
    assert plain.factorised and not plain.certified and plain.alpha == 0.0
    alpha = 1.01 * plain.smallest_alpha
    certified = Inversion(net, data, alpha * SquaredL2() + TotalVariation((5, 8)), lam=1.0)
    assert certified.certify().alpha == pytest.approx(alpha) and certified.certify().certified
    below = Inversion(net, data, 0.99 * plain.smallest_alpha * SquaredL2(), lam=1.0).certify()
    assert not below.certified and below.method == "exact"


def test_bregman_fidelity_is_convex_by_structure(perceptron):
    net, _, _ = perceptron
    certificate = Inversion(net, np.ones(6), fidelity="bregman").certify()
    assert isinstance(certificate, StructuralCertificate) and certificate
    assert "CERTIFIED by structure" in certificate.explain()


# --- make_result ----------------------------------------------------------------------------------


def test_make_result_fills_every_field(residual):
    net, weights = residual
    rng = np.random.default_rng(5)
    f = rng.standard_normal(N_IN)
    problem = Inversion(net, f, SquaredL2(), lam=2.0)
    zs = [np.abs(rng.standard_normal(WIDTH)) for _ in weights]
    u, z, states = lifted_point(weights, rng.standard_normal(N_IN), zs)
    result = problem.make_result(
        u, z, status="optimal", solver="test", iterations=7, stats={"a": 1}, wall_time=0.5,
        history={"objective": [1.0]},
    )
    assert isinstance(result, Result)
    np.testing.assert_array_equal(result.u0, states[0])
    for got, expected in zip(result.states, states, strict=True):
        np.testing.assert_array_equal(got, expected)
    assert result.objective == pytest.approx(problem.objective(u, z))
    gaps = [
        relu_bregman(zj, W @ s + b)
        for (W, b), zj, s in zip(weights, zs, states[:-1], strict=True)
    ]
    np.testing.assert_allclose(result.bregman_gaps, gaps, rtol=1e-12)
    assert (result.solver, result.iterations, result.wall_time) == ("test", 7, 0.5)
    assert result.stats["a"] == 1 and result.history == {"objective": [1.0]}
    assert result.stats["constraint_violation"] <= 1e-15
    assert result.certificate.certified and result.global_optimum_claimed


def test_make_result_warns_about_an_infeasible_point(residual):
    net, weights = residual
    problem = Inversion(net, np.zeros(N_IN), lam=2.0)
    u, z, _ = lifted_point(weights, np.ones(N_IN), [np.ones(WIDTH), np.ones(WIDTH)])
    u[-1] += 1e-3
    with pytest.warns(SolverWarning, match=r"t: the model's value at the returned point is \+inf "
                                           r"for 1 problem\(s\).*relative violation 0.000"):
        result = problem.make_result(u, z, status="optimal", solver="t")
    assert result.objective == np.inf and not result.global_optimum_claimed
    lifted = problem.lifted
    scale = max(1.0, np.linalg.norm(lifted.M.apply(u)), np.linalg.norm(lifted.V.apply(z)))
    assert result.stats["constraint_violation"] == pytest.approx(1e-3 / scale, rel=1e-6)


def test_make_result_claims_only_certified_optimal_results(residual):
    net, _ = residual
    u, z = Inversion(net, np.zeros(N_IN)).lifted.forward(np.ones(N_IN))
    uncertified = Inversion(net, np.zeros(N_IN), lam=0.1)
    assert not uncertified.make_result(u, z, status="optimal", solver="t").global_optimum_claimed
    certified = Inversion(net, np.zeros(N_IN), lam=2.0)
    vetoed = certified.make_result(u, z, status="optimal", solver="t", global_optimum_claimed=False)
    assert not vetoed.global_optimum_claimed
    with pytest.warns(SolverWarning, match=r"t finished with status 'max_iter': ran out"):
        stopped = certified.make_result(
            u, z, status="max_iter", solver="t", stats={"message": "ran out"}
        )
    assert not stopped.global_optimum_claimed


def test_make_result_marks_unsolved_problems_with_nan(residual):
    net, _ = residual
    rng = np.random.default_rng(6)
    problem = Inversion(net, rng.standard_normal((2, N_IN)), lam=2.0)
    u, z = problem.lifted.forward(rng.standard_normal((2, N_IN)))
    u[1], z[1] = np.nan, np.nan
    with pytest.warns(SolverWarning):
        result = problem.make_result(u, z, status="solver_error", solver="t")
    assert np.isfinite(result.objective[0]) and np.isnan(result.objective[1])
    assert np.isnan(result.u0[1]).all() and np.isnan(result.bregman_gaps[1]).all()
    assert not result.global_optimum_claimed
    with pytest.warns(SolverWarning):
        nothing = problem.make_result(None, np.full((2, 6), np.nan), status="solver_error",
                                      solver="t")
    assert np.isnan(nothing.objective).all()
    with pytest.raises(ValueError, match="status 'optimal' needs a point u for every problem"):
        problem.make_result(u, z, status="optimal", solver="t")
    half = u.copy()
    half[0, 0] = np.nan
    with pytest.raises(ValueError, match="u contains NaN or Inf"):
        problem.make_result(half, z, status="solver_error", solver="t")


def test_make_result_rejects_unknown_status(residual):
    net, _ = residual
    problem = Inversion(net, np.zeros(N_IN))
    u, z = problem.lifted.forward(np.zeros(N_IN))
    with pytest.raises(ValueError, match="unknown status 'done'; use one of"):
        problem.make_result(u, z, status="done", solver="t")


def test_make_result_for_bregman_fidelity_uses_the_forward_pass(perceptron):
    net, W, b = perceptron
    f = np.array([0.0, 1.0, 0.5, 2.0, 0.0, 0.1])
    problem = Inversion(net, f, fidelity="bregman")
    u0 = np.array([0.2, -0.4, 1.0, 0.3])
    u = np.concatenate([u0, np.zeros(6)])  # only the u₀ block is read
    result = problem.make_result(u, status="optimal", solver="t")
    np.testing.assert_allclose(result.states[1], np.maximum(W @ u0 + b, 0.0), rtol=1e-14)
    np.testing.assert_allclose(result.bregman_gaps, [relu_bregman(f, W @ u0 + b)], rtol=1e-12)
    assert result.global_optimum_claimed


# --- dispatch -------------------------------------------------------------------------------------


def test_unknown_solver_name(residual):
    net, _ = residual
    with pytest.raises(ValueError, match=r"unknown solver 'newton'; choose one of \('auto'"):
        Inversion(net, np.zeros(N_IN)).solve("newton")


def test_missing_solver_module_is_named(residual, monkeypatch):
    import importlib

    def missing(name):
        raise ModuleNotFoundError(f"No module named {name!r}", name=name)

    monkeypatch.setattr(importlib, "import_module", missing)
    with pytest.raises(SolverError, match=r"solver 'pdhg' is not available: the module "
                                          r"bregmod.solvers.pdhg is missing"):
        Inversion(residual[0], np.zeros(N_IN)).solve("pdhg")


def fake_solvers(monkeypatch, calls, refuse=None):
    """Replace the solver modules by recorders returning a dummy Result (or raising ``refuse``)."""

    load = registry.load

    def module(name):
        def solve(problem, **kwargs):
            calls.append((name, kwargs))
            if name == "cvxpy" and refuse is not None:
                raise refuse
            u, z = problem.lifted.forward(np.zeros(problem.lifted.input_shape))
            return problem.make_result(u, z, status="optimal", solver=name)

        return types.SimpleNamespace(solve=solve, supports=load(name).supports)

    monkeypatch.setattr(registry, "load", module)


def test_named_solver_gets_the_arguments(residual, monkeypatch):
    calls = []
    fake_solvers(monkeypatch, calls)
    Inversion(residual[0], np.zeros(N_IN)).solve("fista", tol=1e-4, max_iter=9, step=0.5)
    assert calls == [("fista", dict(tol=1e-4, max_iter=9, warm_start=None, progress=False,
                                     dtype=np.float64, step=0.5))]


def test_auto_picks_cvxpy_for_small_certified_problems(residual, monkeypatch):
    calls = []
    fake_solvers(monkeypatch, calls)
    result = Inversion(residual[0], np.zeros(N_IN), lam=2.0).solve()
    assert calls[0][0] == "cvxpy" and "certified convex" in result.stats["auto"]


def test_auto_falls_back_when_the_exact_backend_refuses(residual, monkeypatch):
    calls = []
    fake_solvers(monkeypatch, calls, refuse=NoDCPFormError("z1: Arctan has no DCP form"))
    result = Inversion(residual[0], np.zeros(N_IN), lam=2.0).solve()
    assert [name for name, _ in calls] == ["cvxpy", "pdhg"]
    assert result.stats["auto"] == (
        "the exact backend refused (z1: Arctan has no DCP form); fell back to pdhg"
    )


@pytest.mark.parametrize(
    ("lam", "dtype", "reason"),
    [(0.1, np.float64, "not certified convex"), (2.0, np.float32, "dtype float32")],
)
def test_auto_picks_a_first_order_solver_otherwise(residual, monkeypatch, lam, dtype, reason):
    calls = []
    fake_solvers(monkeypatch, calls)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = Inversion(residual[0], np.zeros(N_IN), lam=lam).solve(dtype=dtype)
    assert calls[0][0] == "pdhg" and reason in result.stats["auto"]
    # converged on an uncertified problem: a stationary point, said once
    uncertified = lam == 0.1
    assert result.status == ("stationary" if uncertified else "optimal")
    assert len([w for w in caught if "not certified convex" in str(w.message)]) == uncertified


def test_auto_for_bregman_fidelity_chooses_by_regulariser(monkeypatch):
    calls = []
    fake_solvers(monkeypatch, calls)
    rng = np.random.default_rng(7)
    net = Dense(rng.standard_normal((3, 16)), None, ReLU())
    f = np.ones(3)
    Inversion(net, f, L1(), fidelity="bregman").solve(dtype=np.float32)
    tv = 0.1 * TotalVariation((4, 4))
    Inversion(net, f, tv, fidelity="bregman").solve(dtype=np.float32)
    assert [name for name, _ in calls] == ["fista", "admm"]


def test_total_variation_on_a_single_channel_convolution_input():
    """TV of shape (H, W) acts on the (1, H, W) input of a Conv2d layer."""
    rng = np.random.default_rng(11)
    net = Conv2d(rng.standard_normal((2, 1, 3, 3)), None, ReLU(), in_shape=(1, 6, 6), padding=1)
    u = np.zeros((1, 6, 6))
    u[0, 1:4, 2:5] = 1.0
    tv = TotalVariation((6, 6))
    problem = Inversion(net, net(u), reg=0.1 * tv, fidelity="bregman")
    # the data are exact, so the Bregman misfit vanishes and the objective is 0.1·TV(u)
    assert problem.objective(problem.lifted.forward(u)[0]) == pytest.approx(0.1 * tv(u[0]))
    exact = problem.solve("cvxpy", tol=1e-9)
    iterative = problem.solve("admm", tol=1e-8)
    assert exact.u0.shape == (1, 6, 6)
    assert iterative.objective == pytest.approx(exact.objective, rel=1e-6)


# --- data projection and per-output scale (issue 16, items 16, 17) ----------------------------


def test_domain_error_names_the_data_projection_remedy(perceptron):
    net, _, _ = perceptron
    data = np.array([0.5, -0.25, 1.0, 0.0, -2.0, 3.0])
    with pytest.raises(DomainError, match=r"data_projection='domain'\) projects f\^δ onto"):
        Inversion(net, data, fidelity="bregman")


def test_data_projection_clips_onto_the_range_of_relu_warns_and_records(perceptron):
    net, _, _ = perceptron
    data = np.array([0.5, -0.25, 1.0, 0.0, -2.0, 3.0])
    with pytest.warns(UserWarning, match=r"2 of 6 entries .*distance moved .* = 2\.016"):
        problem = Inversion(net, data, reg=0.1 * L1(), fidelity="bregman",
                            data_projection="domain")
    np.testing.assert_array_equal(problem.data, np.maximum(data, 0.0))
    expected = {"entries": 2, "distance": float(np.hypot(0.25, 2.0))}
    assert problem.data_projection_record == pytest.approx(expected)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = problem.solve("fista", tol=1e-6, max_iter=5000)
    assert result.stats["data_projection"] == pytest.approx(expected)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # data already in the domain: nothing moved, no warning
        clean = Inversion(net, np.abs(data), fidelity="bregman", data_projection="domain")
    assert clean.data_projection_record is None
    with pytest.raises(ValueError, match="data_projection applies to fidelity='bregman'"):
        Inversion(net, data, data_projection="domain")
    with pytest.raises(ValueError, match="data_projection must be None or 'domain'"):
        Inversion(net, data, fidelity="bregman", data_projection="clip")


def test_per_output_scale_is_the_mean_fidelity_of_the_talk(perceptron):
    net, _, _ = perceptron
    data = np.abs(np.array([0.5, -0.25, 1.0, 0.0, -2.0, 3.0]))
    m = data.size
    alpha = 0.05
    mean_form = Inversion(net, data, reg=alpha * L1(), fidelity="bregman", scale="per_output")
    assert mean_form.reg.terms[0][0] == pytest.approx(alpha * m)
    # independent truth: CVXPY on the mean form min (1/m) Σ B_ReLU(f, W u + b) + α‖u‖₁
    import cvxpy as cp

    v = cp.Variable(N_IN)
    pre = net.W @ v + net.b
    mean = cp.sum(0.5 * data**2 + 0.5 * cp.square(cp.pos(pre)) - cp.multiply(data, pre)) / m
    cp.Problem(cp.Minimize(mean + alpha * cp.norm1(v))).solve(
        solver=cp.CLARABEL, tol_gap_abs=1e-10, tol_gap_rel=1e-10, tol_feas=1e-10)
    result = mean_form.solve("cvxpy", tol=1e-9)
    np.testing.assert_allclose(result.u0, v.value, atol=1e-6)
    # the reported objective is the sum form: m times the mean form
    assert result.objective == pytest.approx(
        m * (relu_bregman(data, net.W @ result.u0 + net.b) / m + alpha * np.abs(result.u0).sum()),
        rel=1e-9)
    with pytest.raises(ValueError, match="scale must be 'sum' or 'per_output'"):
        Inversion(net, data, fidelity="bregman", scale="mean")
