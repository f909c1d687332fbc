"""First-order solvers (pdhg, fista, cd) against independent CVXPY optima, plus their status paths.

Truth comes from CVXPY/Clarabel at tight tolerances: ``problem.solve(solver="cvxpy")`` for the
certified models, and — for shallow sums, whose lifted model is never certified convex (H₀ has
no u₀ curvature) — a global search over the scalar u₀ whose inner problem in the hidden state h
is convex and solved by CVXPY directly (independent of the package's backend).
"""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import cvxpy as cp
import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from bregmod.activations import (
    ELU,
    ISRU,
    Clip,
    LeakyReLU,
    ReLU,
    Sigmoid,
    SoftThreshold,
    Tanh,
)
from bregmod.errors import ShapeError, SolverError
from bregmod.lifted import LiftedNetwork
from bregmod.model.lifted import Elimination
from bregmod.network import Dense, Residual, Sequential, ShallowSum
from bregmod.operators import BlockOperator, IdentityOperator
from bregmod.problem import Inversion, SolverWarning
from bregmod.regularizers import L1, Box, NonNegative, SquaredL2, TotalVariation

REL_TOL = 1e-6  # required relative objective agreement with CVXPY
SOLVER_TOL = 1e-8  # residual tolerance given to the first-order solvers
CVXPY_OPTIONS = dict(tol=1e-10)


def relative_gap(value: float, reference: float) -> float:
    return abs(value - reference) / max(1.0, abs(reference))


def solve_quietly(problem: Inversion, solver: str, **options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverWarning)
        return problem.solve(solver=solver, **options)


# --------------------------------------------------------------------------- instances


def perceptron(seed: int, activation, reg, m: int = 14, n: int = 6, image=None) -> Inversion:
    """One layer u₀ ↦ σ(W u₀ + b) with Bregman fidelity; data σ(W u† + b + noise) ∈ range σ."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((m, n)) / np.sqrt(n)
    b = 0.3 * rng.standard_normal(m)
    u_true = rng.standard_normal(n)
    data = activation.prox(W @ u_true + b + 0.05 * rng.standard_normal(m))
    layer = Dense(W, b, activation, in_shape=image)
    return Inversion(layer, data, reg=reg, fidelity="bregman")


def residual_net(seed: int, depth: int, activation, reg, n: int = 5, width: int = 4) -> Inversion:
    """A certified residual chain (λ = 1, V = Wᵀ) with quadratic fidelity."""
    rng = np.random.default_rng(seed)
    weights = [0.4 * rng.standard_normal((width, n)) for _ in range(depth)]
    layers = [Residual(W, 0.3 * rng.standard_normal(width), activation) for W in weights]
    net = Sequential(*layers)
    data = net(rng.standard_normal(n)) + 0.01 * rng.standard_normal(n)
    problem = Inversion(net, data, reg=reg, lam=1.0)
    assert problem.certify().certified, "test instance must be certified"
    return problem


def shallow_sum(seed: int, m: int = 6, alpha: float = 0.05) -> Inversion:
    """Σ_j c_j ReLU(w_j u + b_j) with positive c, w (monotone in u) and J = α/2 u²."""
    rng = np.random.default_rng(seed)
    w = rng.uniform(0.5, 1.5, m)
    b = rng.uniform(-1.0, 0.5, m)
    c = rng.uniform(0.2, 1.0, m)
    net = ShallowSum(w, b, c, ReLU())
    data = np.array(float(net(rng.uniform(0.2, 1.0))) + 0.01)
    return Inversion(net, data, reg=alpha * SquaredL2())


def talk_shallow_example() -> Inversion:
    """The talk's example: 25 ReLU units, w_j = 1, b_j = −(j−1)·3/50, α = 1e−4.

    The outer weights c interpolate K(u) = u (2u/3)^{3u} on [0, 1.5] (least squares); data
    N(1) + 10⁻³.
    """
    m, h = 25, 3 / 50
    w, b = np.ones(m), -np.arange(m) * h
    grid = np.linspace(0.0, 1.5, 301)
    features = np.maximum(np.outer(grid, w) + b, 0.0)
    c = np.linalg.lstsq(features, grid * (2 * grid / 3) ** (3 * grid), rcond=None)[0]
    net = ShallowSum(w, b, c, ReLU())
    return Inversion(net, np.array(float(net(1.0)) + 1e-3), reg=1e-4 * SquaredL2())


def shallow_reference(problem: Inversion, lo: float = -1.0, hi: float = 3.0):
    """Global minimum over scalar u₀ of min_h E(u₀, h), the inner problem solved by CVXPY.

    For fixed u₀, E is convex in h: λ/2(f − cᵀh)² + Σ_j [Φ(h_j) − h_j x_j] + const with
    x = w u₀ + b (Φ*(x) is a constant). A grid over [lo, hi] brackets the global minimiser,
    a bounded scalar search refines it. Returns (objective, u₀).
    """
    lifted = problem.lifted
    w = lifted.W.to_dense()[:, 0]
    bias = lifted.b
    c = lifted.K.to_dense()[0, 1:]
    activation = lifted.activations[0]
    alpha = float(problem.reg.terms[0][0])
    f = float(problem.data)
    h = cp.Variable(w.size)
    x = cp.Parameter(w.size)
    phi = activation.cvx_phi(h)
    inner = cp.Problem(
        cp.Minimize(0.5 * problem.lam * cp.square(f - c @ h) + phi.expr - x @ h), phi.constraints
    )

    def value(u0: float) -> float:
        x.value = w * u0 + bias
        inner.solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
        conj = float(np.sum(activation.phi_conj(x.value)))
        return inner.value + conj + 0.5 * alpha * u0**2

    grid = np.linspace(lo, hi, 81)
    values = [value(u) for u in grid]
    k = int(np.argmin(values))
    best = minimize_scalar(
        value,
        bounds=(grid[max(k - 1, 0)], grid[min(k + 1, grid.size - 1)]),
        method="bounded",
        options={"xatol": 1e-10},
    )
    return float(best.fun), float(best.x)


# --------------------------------------------------------------------------- differential sweep

ACTIVATIONS = [
    ReLU(),
    LeakyReLU(0.2),
    Sigmoid(),
    Tanh(),
    SoftThreshold(0.3),
    ISRU(),
    ELU(),
    Clip(-1.0, 1.0),
]
SIMPLE_REGS = [0.05 * L1(), 0.2 * SquaredL2(), 0.1 * SquaredL2() + Box(-1.5, 1.5)]


def _bregman_cases():
    cases = []
    for i, activation in enumerate(ACTIVATIONS):
        for j, reg in enumerate(SIMPLE_REGS):
            cases.append(pytest.param(i, j, id=f"{activation.name}-{reg.name}"))
    return cases


def _check_against(problem: Inversion, reference, solvers, **options) -> None:
    for solver in solvers:
        result = solve_quietly(problem, solver, tol=SOLVER_TOL, max_iter=50_000, **options)
        assert result.status == "optimal", (solver, result.stats["message"])
        gap = relative_gap(result.objective, reference.objective)
        assert gap <= REL_TOL, (solver, result.objective, reference.objective)
        scale = 1.0 + np.abs(reference.u0).max()
        np.testing.assert_allclose(result.u0, reference.u0, atol=1e-3 * scale, err_msg=solver)
        assert result.global_optimum_claimed


@pytest.mark.parametrize("act, reg", _bregman_cases())
def test_perceptron_bregman_fidelity_matches_cvxpy(act, reg):
    problem = perceptron(100 + 7 * act + reg, ACTIVATIONS[act], SIMPLE_REGS[reg])
    reference = problem.solve(solver="cvxpy", **CVXPY_OPTIONS)
    assert reference.status == "optimal"
    _check_against(problem, reference, ("fista", "pdhg"))


@pytest.mark.parametrize("dualize_data", [True, False])
@pytest.mark.parametrize("act", [0, 1, 3, 5])
def test_perceptron_with_total_variation_matches_cvxpy(act, dualize_data):
    reg = 0.05 * TotalVariation((3, 3)) + (NonNegative() if act == 0 else Box(-2.0, 2.0))
    problem = perceptron(200 + act, ACTIVATIONS[act], reg, m=16, n=9, image=(3, 3))
    reference = problem.solve(solver="cvxpy", **CVXPY_OPTIONS)
    _check_against(problem, reference, ("pdhg",), dualize_data=dualize_data)


RESIDUAL_CASES = [
    (1, ReLU(), 0.1 * SquaredL2()),
    (2, ReLU(), 0.05 * L1()),
    (2, LeakyReLU(0.1), 0.1 * SquaredL2()),
    (3, ReLU(), 0.1 * SquaredL2() + Box(-2.0, 2.0)),
    (2, Clip(-0.5, 0.5), 0.1 * SquaredL2()),
    (1, SoftThreshold(0.2), 0.05 * L1()),
]


@pytest.mark.parametrize("case", range(len(RESIDUAL_CASES)))
@pytest.mark.parametrize("seed", [0, 1, pytest.param(2, marks=pytest.mark.slow)])
def test_residual_net_matches_cvxpy(case, seed):
    depth, activation, reg = RESIDUAL_CASES[case]
    problem = residual_net(300 + 10 * case + seed, depth, activation, reg)
    reference = problem.solve(solver="cvxpy", **CVXPY_OPTIONS)
    assert reference.status == "optimal"
    _check_against(problem, reference, ("fista", "pdhg"))


def test_residual_net_pdhg_with_dual_constraint_matches_cvxpy():
    problem = residual_net(400, 2, ReLU(), 0.1 * SquaredL2())
    reference = problem.solve(solver="cvxpy", **CVXPY_OPTIONS)
    result = solve_quietly(problem, "pdhg", tol=SOLVER_TOL, max_iter=50_000, constraint="dual")
    assert result.status == "optimal"
    assert result.stats["constraint"].startswith("dual")
    assert result.stats["mu"] == problem.certify().mu
    assert relative_gap(result.objective, reference.objective) <= REL_TOL
    np.testing.assert_allclose(result.u0, reference.u0, atol=1e-4)


@pytest.mark.parametrize("seed", range(6))
def test_shallow_sum_matches_global_cvxpy_search(seed):
    problem = shallow_sum(500 + seed)
    assert not problem.certify().certified  # the lifted shallow sum is never certified
    objective, u0 = shallow_reference(problem)
    for solver in ("cd", "fista", "pdhg"):
        result = solve_quietly(problem, solver, tol=SOLVER_TOL, max_iter=50_000)
        # converged, but on an uncertified problem: a stationary point, never "optimal"
        assert result.status == "stationary", (solver, result.stats["message"])
        assert relative_gap(result.objective, objective) <= REL_TOL, (solver, result.objective)
        assert abs(float(result.u0) - u0) <= 1e-4, solver
        assert not result.global_optimum_claimed


@pytest.mark.slow
@pytest.mark.parametrize("act", range(len(ACTIVATIONS)))
@pytest.mark.parametrize("seed", range(3))
def test_perceptron_sweep_more_seeds(act, seed):
    for j, reg in enumerate(SIMPLE_REGS):
        problem = perceptron(1000 + 100 * seed + 10 * act + j, ACTIVATIONS[act], reg)
        reference = problem.solve(solver="cvxpy", **CVXPY_OPTIONS)
        _check_against(problem, reference, ("fista", "pdhg"))


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6, 16))
def test_shallow_sum_sweep_more_seeds(seed):
    test_shallow_sum_matches_global_cvxpy_search(seed)


@pytest.mark.parametrize("seed", range(3))
def test_feed_forward_net_local_methods_agree_on_a_local_minimum(seed):
    # Feed-forward lifted models are never certified (u₀ enters H₀ only through −⟨z₁, W₁u₀⟩),
    # so there is no CVXPY truth: fista and pdhg must reach the same point, and it must be a
    # local minimum of E + J over the feasible set {u₁ = z₁} (random feasible perturbations).
    rng = np.random.default_rng(800 + seed)
    net = Sequential(
        Dense(rng.standard_normal((6, 4)) / 2, 0.3 * rng.standard_normal(6), Tanh()),
        Dense(rng.standard_normal((3, 6)) / 2),
    )
    problem = Inversion(net, net(rng.standard_normal(4)) + 0.01 * rng.standard_normal(3),
                        reg=0.1 * SquaredL2())
    assert not problem.certify().certified
    fista = solve_quietly(problem, "fista", tol=1e-10, max_iter=50_000)
    pdhg = solve_quietly(problem, "pdhg", tol=1e-10, max_iter=50_000)
    assert fista.status == pdhg.status == "stationary"  # converged, uncertified
    assert relative_gap(fista.objective, pdhg.objective) <= 1e-9
    np.testing.assert_allclose(fista.u0, pdhg.u0, atol=1e-6)
    for _ in range(20):
        d0, dz = 1e-4 * rng.standard_normal(4), 1e-4 * rng.standard_normal(6)
        z = fista.z + dz
        u = np.concatenate([fista.u0 + d0, z])
        assert problem.objective(u, z) >= fista.objective - 1e-12


def test_talk_shallow_example_cd_agrees_with_pdhg_and_cvxpy():
    problem = talk_shallow_example()
    objective, u0 = shallow_reference(problem, lo=0.0, hi=1.5)
    cd = solve_quietly(problem, "cd", tol=SOLVER_TOL)
    pdhg = solve_quietly(problem, "pdhg", tol=SOLVER_TOL)
    for result in (cd, pdhg):
        assert result.status == "stationary"  # converged; the lifted shallow sum is uncertified
        assert relative_gap(result.objective, objective) <= REL_TOL
        assert abs(float(result.u0) - u0) <= 1e-4
    assert abs(float(cd.u0) - float(pdhg.u0)) <= 1e-4
    assert abs(float(cd.u0) - 1.0) < 0.05  # recovers u† = 1 up to the data error


# --------------------------------------------------------------------------- status and errors


def test_max_iter_reached_gives_status_and_warning():
    problem = residual_net(600, 2, ReLU(), 0.1 * SquaredL2())
    for solver in ("pdhg", "fista"):
        with pytest.warns(SolverWarning, match="max_iter = 3 reached"):
            result = problem.solve(solver=solver, tol=1e-10, max_iter=3)
        assert result.status == "max_iter"
        assert result.iterations == 3
        assert len(result.history["primal_residual"]) == 3
        assert np.isfinite(result.u).all()
        assert not result.global_optimum_claimed


def test_fista_bad_user_step_diverges_with_clear_status():
    problem = perceptron(601, LeakyReLU(0.5), 0.01 * SquaredL2())
    bound = problem.A.norm_bound() ** 2
    with pytest.warns(SolverWarning, match="diverged"):
        result = problem.solve(solver="fista", step=50.0 / bound, max_iter=5000)
    assert result.status == "diverged"
    assert "NOT satisfied" in result.stats["step_condition"]
    assert not result.stats["step_condition_satisfied"]
    assert np.isfinite(result.u0).all() and np.isfinite(result.objective)
    assert result.iterations < 5000


def test_pdhg_bad_user_steps_diverge_with_clear_status():
    problem = perceptron(602, ReLU(), 0.05 * TotalVariation((3, 3)), m=16, n=9, image=(3, 3))
    with pytest.warns(SolverWarning, match="diverged"):
        result = problem.solve(solver="pdhg", tau=20.0, sigma=20.0, max_iter=5000)
    assert result.status == "diverged"
    assert "NOT satisfied" in result.stats["step_condition"]
    assert np.isfinite(result.u0).all()


def test_nan_in_data_is_rejected_by_name():
    net = Dense(np.eye(3), np.zeros(3), ReLU())
    with pytest.raises(ValueError, match=r"data contains NaN or Inf: 1 entry"):
        Inversion(net, np.array([1.0, np.nan, 0.5]), fidelity="bregman")
    problem = Inversion(net, np.array([1.0, 2.0, 0.5]), reg=0.1 * L1(), fidelity="bregman")
    problem.data[1] = np.nan  # corrupted after construction: the solver checks again
    for solver in ("pdhg", "fista"):
        with pytest.raises(ValueError, match=r"data contains NaN or Inf: 1 entry, first at.*\[1\]"):
            problem.solve(solver=solver)


@pytest.mark.parametrize(
    "options, error, message",
    [
        (dict(tol=0.0), ValueError, r"tol must be a finite positive number, got 0.0"),
        (dict(tol=2.0), ValueError, r"tol is a relative tolerance and must be < 1, got 2.0"),
        (dict(tol=1e-9, dtype=np.float32), ValueError, r"tol=1e-09 is below what float32"),
        (dict(max_iter=0), ValueError, r"max_iter must be a positive integer, got 0"),
        (dict(max_iter=2.5), ValueError, r"max_iter must be a positive integer, got 2.5"),
        (dict(dtype=np.int64), ValueError, r"dtype must be numpy.float64 or numpy.float32, got"),
        (dict(warm_start=np.zeros(4)), ShapeError, r"warm_start \(u₀\) has shape \(4,\), expected"),
        (dict(warm_start=(np.zeros(3),)), ValueError, r"lifted pair \(u, z\), got 1 items"),
        (dict(warm_start=np.full(6, np.inf)), ValueError, r"warm_start \(u₀\) contains NaN or Inf"),
        (dict(tau=-1.0), ValueError, r"tau \(primal step\) must be a finite positive number"),
        (dict(constraint="penalty"), ValueError, r"constraint must be one of"),
    ],
)
def test_bad_arguments_are_rejected_with_specific_messages(options, error, message):
    problem = perceptron(603, ReLU(), 0.1 * L1())
    with pytest.raises(error, match=message):
        problem.solve(solver="pdhg", **options)


def test_pdhg_dualize_data_needs_the_bregman_fidelity():
    problem = residual_net(608, 1, ReLU(), 0.1 * SquaredL2())
    with pytest.raises(ValueError, match=r"dualize_data=True needs fidelity='bregman'"):
        problem.solve(solver="pdhg", dualize_data=True)


def test_pdhg_defaults_handle_quadratic_fidelity_with_total_variation():
    """Regression: TV made the default dualize_data=True, which the lifted model refuses."""
    problem = residual_net(610, 2, ReLU(), 0.05 * TotalVariation((2, 2)), n=4)
    reference = problem.solve(solver="cvxpy", **CVXPY_OPTIONS)
    assert reference.status == "optimal"
    _check_against(problem, reference, ("pdhg",))


def test_fista_refuses_regularisers_with_a_linear_operator():
    problem = perceptron(604, ReLU(), 0.05 * TotalVariation((3, 3)), m=16, n=9, image=(3, 3))
    message = r"fista needs a regulariser without a linear operator.*use solver='pdhg'"
    with pytest.raises(ValueError, match=message):
        problem.solve(solver="fista")


def test_fista_step_condition_is_checked_for_user_step():
    problem = perceptron(605, ReLU(), 0.1 * L1())
    bound = problem.A.norm_bound() ** 2
    result = solve_quietly(problem, "fista", step=0.5 / bound, tol=1e-8, max_iter=50_000)
    assert result.stats["step_condition"].endswith("0.5 ≤ 1")
    assert result.stats["step_condition_satisfied"]


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: perceptron(606, ReLU(), None), r"got fidelity='bregman'"),
        (lambda: residual_net(606, 1, ReLU(), None), r"got the network Sequential\(Residual"),
        (
            lambda: Inversion(shallow_sum(606).network, np.array(1.0), reg=0.1 * L1()),
            r"got J = 0.1·L1",
        ),
    ],
)
def test_cd_refuses_other_problems_naming_what_it_supports(make, message):
    problem = make()
    supported = r"cd solves the lifted quadratic-fidelity model of a single ShallowSum layer.*"
    with pytest.raises(ValueError, match=supported + message):
        problem.solve(solver="cd")


def test_elimination_refuses_a_constraint_of_another_form():
    # u₁ = 2 z is not of the aligned unit-triangular form u_{1:} − N u_{1:} = V z − M₀ u₀.
    lifted = shallow_sum(607).lifted
    M = BlockOperator([[None, IdentityOperator(lifted.n_z, 2.0)]], [lifted.n_z], [1, lifted.n_z])
    broken = SimpleNamespace(
        M=M, V=lifted.V, u_blocks=lifted.u_blocks, n_u=lifted.n_u, n_z=lifted.n_z, n_c=lifted.n_c
    )
    broken.complete_states = lambda u, Vz: LiftedNetwork.complete_states(broken, u, Vz)
    with pytest.raises(SolverError, match=r"cannot be eliminated .*constraint='dual'"):
        Elimination(broken)


# --------------------------------------------------------------------------- batches, starts


def batched(problem: Inversion, data) -> Inversion:
    return Inversion(
        problem.network, data, reg=problem.reg, lam=problem.lam, rho=problem.rho,
        fidelity=problem.fidelity,
    ) if problem.fidelity == "quadratic" else Inversion(
        problem.network, data, reg=problem.reg, fidelity="bregman"
    )


@pytest.mark.parametrize("solver", ["pdhg", "fista"])
def test_batch_solves_each_problem_as_if_alone(solver):
    base = residual_net(700, 2, ReLU(), 0.1 * SquaredL2())
    rng = np.random.default_rng(7)
    data = base.data + 0.05 * rng.standard_normal((4, base.data.size))
    batch = solve_quietly(batched(base, data), solver, tol=SOLVER_TOL)
    assert batch.status == "optimal"
    assert batch.u0.shape == (4, 5) and batch.objective.shape == (4,)
    for i in range(4):
        alone = batched(base, data[i]).solve(solver="cvxpy", **CVXPY_OPTIONS)
        assert relative_gap(batch.objective[i], alone.objective) <= REL_TOL
        np.testing.assert_allclose(batch.u0[i], alone.u0, atol=1e-4)


def test_cd_batch_and_float32_agree_with_single_float64_solves():
    base = shallow_sum(709)
    data = float(base.data) + np.array([-0.05, 0.0, 0.08])
    batch = solve_quietly(batched(base, data), "cd", tol=SOLVER_TOL)
    single = solve_quietly(batched(base, data), "cd", tol=1e-5, dtype=np.float32)
    assert batch.status == single.status == "stationary"  # converged, uncertified
    for i in range(3):
        alone = solve_quietly(batched(base, np.array(data[i])), "cd", tol=SOLVER_TOL)
        assert relative_gap(batch.objective[i], alone.objective) <= 1e-10
        assert relative_gap(single.objective[i], alone.objective) <= 1e-4


def test_batch_of_bregman_problems_with_total_variation():
    base = perceptron(701, ReLU(), 0.05 * TotalVariation((3, 3)), m=16, n=9, image=(3, 3))
    rng = np.random.default_rng(8)
    data = np.maximum(base.data + 0.05 * rng.standard_normal((3, base.data.size)), 0.0)
    batch = solve_quietly(batched(base, data), "pdhg", tol=SOLVER_TOL)
    assert batch.status == "optimal" and batch.u0.shape == (3, 3, 3)
    for i in range(3):
        alone = batched(base, data[i]).solve(solver="cvxpy", **CVXPY_OPTIONS)
        assert relative_gap(batch.objective[i], alone.objective) <= REL_TOL


@pytest.mark.parametrize("solver", ["pdhg", "fista"])
def test_float32_iterates_reach_single_precision_accuracy(solver):
    problem = perceptron(702, Sigmoid(), 0.1 * SquaredL2())
    reference = problem.solve(solver="cvxpy", **CVXPY_OPTIONS)
    result = solve_quietly(problem, solver, tol=1e-5, dtype=np.float32)
    assert result.status == "optimal"
    assert result.stats["dtype"] == "float32"
    assert relative_gap(result.objective, reference.objective) <= 1e-4
    np.testing.assert_allclose(result.u0, reference.u0, atol=1e-2)


def test_warm_start_from_a_result_and_from_a_point():
    problem = residual_net(703, 2, ReLU(), 0.1 * SquaredL2())
    cold = solve_quietly(problem, "fista", tol=SOLVER_TOL)
    warm = solve_quietly(problem, "fista", tol=1e-6, warm_start=cold)
    assert warm.iterations <= 2
    assert relative_gap(warm.objective, cold.objective) <= 1e-9
    from_u0 = solve_quietly(problem, "pdhg", tol=SOLVER_TOL, warm_start=cold.u0)
    assert from_u0.iterations < solve_quietly(problem, "pdhg", tol=SOLVER_TOL).iterations
    pair = solve_quietly(problem, "pdhg", tol=SOLVER_TOL, warm_start=(cold.u, cold.z))
    assert relative_gap(pair.objective, cold.objective) <= REL_TOL


def test_history_records_every_iteration_and_the_step_condition():
    problem = perceptron(704, ReLU(), 0.05 * TotalVariation((3, 3)), m=16, n=9, image=(3, 3))
    result = solve_quietly(problem, "pdhg", tol=SOLVER_TOL)
    for key in ("objective", "primal_residual", "dual_residual", "gap", "tau"):
        assert len(result.history[key]) == result.iterations, key
    # ReLU + TV: the stop is on the relative duality gap, which bounds the objective error
    assert result.stats["guarantee"] == "duality gap"
    assert result.history["gap"][-1] == result.stats["bound"] <= SOLVER_TOL
    assert result.history["objective"][-1] == pytest.approx(result.objective, rel=1e-10)
    assert result.stats["step_condition"].startswith("τ(L_f/2 + Σ_i σ_i‖L_i‖²) ≤ θ = 0.99: 0.99")
    assert result.stats["step_condition_satisfied"]


def test_cd_decreases_the_objective_monotonically():
    result = solve_quietly(shallow_sum(705), "cd", tol=SOLVER_TOL)
    objective = np.array(result.history["objective"])
    assert (np.diff(objective) <= 1e-12 * abs(objective[0])).all()
    assert "step · L = 1 ≤ 1" in result.stats["step_condition"]


def test_uncertified_problem_runs_as_a_local_method():
    problem = shallow_sum(706)
    result = solve_quietly(problem, "fista", tol=SOLVER_TOL)
    assert result.status == "stationary"
    assert not result.global_optimum_claimed
    assert "no global optimality is claimed" in result.stats["note"]


def test_progress_bar_is_optional(capsys):
    problem = perceptron(707, ReLU(), 0.1 * L1())
    solve_quietly(problem, "fista", tol=1e-6, progress=True)
    assert "fista" in capsys.readouterr().err
    solve_quietly(problem, "fista", tol=1e-6)
    assert capsys.readouterr().err == ""
