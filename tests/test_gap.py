"""Tests of the duality gap (bregmod.solvers.gap): ``tol`` bounds the relative objective error.

The truth is CVXPY + Clarabel at tol 1e-9 on the same Inversion (a DCP model solved by an
interior-point method, independent of the gap's formulas), and brute-force conjugates.
"""

from __future__ import annotations

import numpy as np
import pytest

from bregmod.activations import ReLU, Sigmoid, SoftThreshold, Tanh
from bregmod.model.onelayer import OneLayerEnergy
from bregmod.network import Dense
from bregmod.problem import Inversion
from bregmod.regularizers import L1, Box, NonNegative, SquaredL2, TotalVariation
from bregmod.solvers.gap import DualityGap, relative_bound

SHAPE = (6, 6)
N_IN = SHAPE[0] * SHAPE[1]


def _problem(activation, reg, m=2 * N_IN, seed=0, batch=None):
    """A random one-layer Bregman problem on 6 × 6 images, data inside the range of σ."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((m, N_IN)) / np.sqrt(N_IN)
    b = 0.1 * rng.standard_normal(m)
    u_true = np.zeros(SHAPE)
    u_true[1:4, 2:5] = 1.0

    def data(shift):
        f = activation.prox(W @ (u_true.ravel() + shift) + b) + 0.05 * rng.standard_normal(m)
        lo, hi = {ReLU: (0.0, np.inf), Tanh: (-0.95, 0.95), Sigmoid: (0.05, 0.95)}.get(
            type(activation), (-np.inf, np.inf)
        )
        return np.clip(f, lo, hi)

    f = data(0.0) if batch is None else np.stack([data(0.3 * k) for k in range(batch)])
    return Inversion(Dense(W, b, activation, in_shape=SHAPE), f, reg, fidelity="bregman")


REGULARIZERS = {
    "TV": lambda: 0.05 * TotalVariation(SHAPE),
    "TV+L1": lambda: 0.05 * TotalVariation(SHAPE) + 0.02 * L1(),
    "TV+Box": lambda: 0.05 * TotalVariation(SHAPE) + Box(-0.5, 1.5),
    "L1": lambda: 0.05 * L1(),
    "SquaredL2+Box": lambda: 0.2 * SquaredL2() + Box(-0.2, 0.8),
}
ACTIVATIONS = {"ReLU": ReLU, "Tanh": Tanh, "SoftThreshold": lambda: SoftThreshold(0.1)}


_REFERENCES: dict = {}


def _reference(problem) -> float:
    """F* from CVXPY + Clarabel (cached per problem: several tests share one)."""
    key = (problem.network.activation.name, problem.reg.name, np.asarray(problem.data).tobytes())
    if key not in _REFERENCES:
        exact = problem.solve(solver="cvxpy", tol=1e-9)
        assert exact.status == "optimal"
        _REFERENCES[key] = float(np.sum(exact.objective))
    return _REFERENCES[key]


@pytest.mark.parametrize("tol", [1e-4, 1e-6])
@pytest.mark.parametrize("reg_name", sorted(REGULARIZERS))
@pytest.mark.parametrize("solver", ["admm", "pdhg"])
def test_tol_bounds_the_relative_objective_error(solver, reg_name, tol):
    """A user asking tol gets a relative objective error ≤ tol, and the reported bound."""
    problem = _problem(ReLU(), REGULARIZERS[reg_name]())
    reference = _reference(problem)
    result = problem.solve(solver=solver, tol=tol)
    assert result.status == "optimal"
    assert result.stats["guarantee"] == "duality gap"
    error = (result.objective - reference) / abs(reference)
    # The reference itself is accurate to ≈ 1e-9 relative.
    assert error <= result.stats["bound"] + 1e-9
    assert result.stats["bound"] <= tol
    assert error <= tol


@pytest.mark.parametrize("act_name", sorted(ACTIVATIONS))
def test_tol_holds_for_other_activations(act_name):
    problem = _problem(ACTIVATIONS[act_name](), REGULARIZERS["TV"](), seed=3)
    reference = _reference(problem)
    result = problem.solve(solver="admm", tol=1e-6)
    assert result.status == "optimal" and result.stats["guarantee"] == "duality gap"
    assert (result.objective - reference) / abs(reference) <= 1e-6


def _duality(problem):
    simple, composites = problem.reg.split()
    energy = OneLayerEnergy.of(problem)
    duality, why = DualityGap.of(energy, simple, composites)
    assert duality is not None, why
    return energy, duality, composites


@pytest.mark.parametrize(
    ("act_name", "reg_name"),
    [("ReLU", reg) for reg in sorted(REGULARIZERS)]
    + [("Tanh", "TV"), ("SoftThreshold", "TV+L1"), ("Tanh", "SquaredL2+Box")],
)
def test_gap_is_an_upper_bound_far_from_the_optimum(act_name, reg_name):
    """At perturbed points with rough duals, P(u) − G ≤ P* (a dropped factor or a wrong sign in
    a Fenchel–Young term breaks this, or the solver's gap then never closes in the tol tests)."""
    problem = _problem(ACTIVATIONS[act_name](), REGULARIZERS[reg_name](), seed=5)
    reference = _reference(problem)
    exact = problem.solve(solver="cvxpy", tol=1e-9)
    energy, duality, composites = _duality(problem)
    simple = problem.reg.split()[0]
    rng = np.random.default_rng(11)
    grad = composites[0][1] if composites else None
    for scale in (1e-1, 1e-2, 1e-3, 1e-4):
        u = exact.u0.reshape(1, -1) + scale * rng.standard_normal((1, N_IN))
        if simple is not None:
            u = simple.prox(u.reshape(1, *SHAPE), 1e-12).reshape(1, -1)  # back into dom s
        x = energy.pre_activation(u)
        q = energy.activation.prox(x + scale * rng.standard_normal(x.shape))
        At = energy.A.apply_adjoint(q - energy.data)
        tv_dual = tv_image = None
        if grad is not None:
            weight = sum(w for w, _, _ in composites)
            tv_dual = 1.5 * weight * np.clip(rng.standard_normal((1, 2 * N_IN)), -1, 1)
            tv_image = grad.apply(u)
        objective, gap, bound = duality.evaluate(u, x, q, At, tv_dual, tv_image)
        assert objective[0] == pytest.approx(energy.energy(u)[0], rel=1e-10)
        assert objective[0] - gap[0] <= reference + 1e-9 * abs(reference)
        assert (objective[0] - reference) / abs(reference) <= bound[0] + 1e-9


@pytest.mark.parametrize(
    ("act_name", "reg_name"),
    [("ReLU", "TV"), ("Tanh", "TV"), ("ReLU", "TV+L1"), ("SoftThreshold", "TV+Box"),
     ("ReLU", "L1"), ("Tanh", "SquaredL2+Box")],
)
def test_the_gap_is_primal_minus_an_independently_evaluated_feasible_dual(act_name, reg_name):
    """The dual point is feasible (checked with its own product Aᵀλ*) and G = P(u) − D(λ*, p*)
    with D from the dual's definition ⟨λ, β⟩ − Σ(Φ(λ + f) − Φ(f)) − s*(v)."""
    problem = _problem(ACTIVATIONS[act_name](), REGULARIZERS[reg_name](), seed=2)
    energy, duality, composites = _duality(problem)
    simple = problem.reg.split()[0]
    activation, f, beta = energy.activation, energy.data, energy.beta
    rng = np.random.default_rng(4)
    u = 0.3 * rng.standard_normal((1, N_IN))
    if simple is not None:
        u = simple.prox(u.reshape(1, *SHAPE), 1e-12).reshape(1, -1)
    x = energy.pre_activation(u)
    q = activation.prox(x + 0.3 * rng.standard_normal(x.shape))
    At = energy.A.apply_adjoint(q - f)
    tv_dual = tv_image = None
    if composites:
        weight = sum(w for w, _, _ in composites)
        tv_dual = 1.5 * weight * np.clip(rng.standard_normal((1, 2 * N_IN)), -1, 1)  # infeasible
        tv_image = composites[0][1].apply(u)
    q_star, p_star, v_star = duality.feasible_dual(q, At, tv_dual)
    lam = q_star - f
    residual = -energy.A.apply_adjoint(lam)
    if composites:
        grouped = p_star.reshape(2, -1)
        assert np.sqrt((grouped**2).sum(axis=0)).max() <= weight * (1 + 1e-12)
        residual = residual - composites[0][1].apply_adjoint(p_star)
    if simple is None:
        assert np.abs(residual).max() <= 1e-10 * np.abs(At).max()  # Aᵀλ* + ∇ᵀp* = 0
        conj = 0.0
    else:
        np.testing.assert_allclose(v_star, residual, rtol=1e-10, atol=1e-12)
        conj = simple.conjugate(v_star)[0]
        assert np.isfinite(conj)
    h_conj = float(np.sum(activation.phi(q_star)) - np.sum(activation.phi(f)))
    dual = float(lam[0] @ beta) - h_conj - conj
    objective, gap, _ = duality.evaluate(u, x, q, At, tv_dual, tv_image)
    assert objective[0] == pytest.approx(energy.energy(u)[0], rel=1e-10)
    assert gap[0] == pytest.approx(objective[0] - dual, rel=1e-8, abs=1e-10)
    assert gap[0] > 0


@pytest.mark.parametrize("reg_name", ["TV", "TV+L1"])
def test_converged_batch_items_are_frozen_and_equal_their_single_solves(reg_name):
    """Items leave the active set once certified (fewer row-iterations than B × iterations);
    each returned item is within tol of its own optimum, as its single solve is."""
    tol, batch = 1e-6, 4
    problem = _problem(ReLU(), REGULARIZERS[reg_name](), batch=batch, seed=7)
    result = problem.solve(solver="admm", tol=tol)
    assert result.status == "optimal" and result.stats["bound"] <= tol
    assert result.stats["row_iterations"] < batch * result.iterations
    for k in range(batch):
        single = Inversion(problem.network, problem.data[k], problem.reg, fidelity="bregman")
        reference = _reference(single)
        alone = single.solve(solver="admm", tol=tol)
        assert 0 <= (result.objective[k] - reference) / abs(reference) + 1e-9 <= tol + 1e-9
        assert abs(result.objective[k] - alone.objective) <= 2 * tol * abs(reference)
        # the returned item (from the frozen store, in the batch's order) has that objective
        energy = OneLayerEnergy.of(single)
        value = energy.energy(result.u0[k].reshape(1, -1))[0]
        assert value == pytest.approx(result.objective[k], rel=1e-10)


def _perceptron_batch(size: int, shifts, noises, simple=None) -> Inversion:
    """The benchmark's ReLU perceptron + TV on size × size images (m = size²/8), one item per
    (shift, noise): the phantom shifted by that many pixels, noise of that relative level."""
    from bregmod.data import phantom

    rng = np.random.default_rng(3)
    n = size * size
    W, b = rng.standard_normal((n // 8, n)), rng.standard_normal(n // 8)
    data = []
    for shift, noise in zip(shifts, noises, strict=True):
        x = W @ np.roll(phantom(size), shift, axis=(0, 1)).ravel() + b
        data.append(np.maximum(0.0, x + noise * np.mean(np.abs(x)) * rng.standard_normal(x.size)))
    reg = 0.015 * (n // 8) * TotalVariation((size, size))
    reg = reg if simple is None else reg + simple
    network = Dense(W, b, ReLU(), in_shape=(size, size))
    return Inversion(network, np.stack(data), reg, fidelity="bregman")


@pytest.mark.parametrize("simple", [None, Box(-1.0, 2.0)], ids=["TV", "TV+Box"])
def test_batch_items_follow_their_own_penalty_schedules(simple):
    """Each item of a batch changes its penalties when and as it would alone (its own late
    increase and catch-up), so it needs about as many iterations as alone: a few more, since the
    batch evaluates the gap every _GAP_EVERY = 5 iterations until all its items are near tol
    (with one schedule shared by the batch, these items needed 150–230 more). Its result agrees
    with its single solve and is certified within tol of CVXPY's optimum."""
    tol = 1e-6
    problem = _perceptron_batch(16, shifts=[0, 3, 7, 11], noises=[0.01, 0.03, 0.003, 0.01],
                                simple=simple)
    result = problem.solve(solver="admm", tol=tol)
    assert result.status == "optimal" and result.stats["bound"] <= tol
    alone = []
    for k in range(4):
        single = Inversion(problem.network, problem.data[k], problem.reg, fidelity="bregman")
        alone.append((single, single.solve(solver="admm", tol=tol)))
    # the items' schedules differ alone (so a shared schedule would move some of them)
    changes = [tuple(np.flatnonzero(np.diff(a.history["rho_data"]))) for _, a in alone]
    assert len(set(changes)) > 1 and all(len(c) == 2 for c in changes)
    for k, (single, a) in enumerate(alone):
        assert result.stats["penalty_updates"][k] == a.stats["penalty_updates"] == 2
        assert result.stats["rho_data"][k] == pytest.approx(a.stats["rho_data"], rel=1e-12)
        assert result.stats["rho_reg"][k] == pytest.approx(a.stats["rho_reg"], rel=1e-12)
        assert abs(result.stats["item_iterations"][k] - a.iterations) <= 15
        reference = _reference(single)
        error = (result.objective[k] - reference) / abs(reference)
        assert -1e-9 <= error <= result.stats["bound"] + 1e-9
        assert abs(result.objective[k] - a.objective) <= 2 * tol * abs(reference)
    assert result.stats["row_iterations"] == sum(result.stats["item_iterations"])
    assert result.stats["row_iterations"] <= 1.05 * sum(a.iterations for _, a in alone)
    assert result.iterations == max(result.stats["item_iterations"])


def test_without_a_gap_the_guarantee_is_the_kkt_residual():
    """TV + NonNegative: dom s* = (−∞, 0] is not reached by scaling; the KKT rule stops."""
    problem = _problem(ReLU(), 0.05 * TotalVariation(SHAPE) + NonNegative())
    for solver in ("admm", "pdhg"):
        result = problem.solve(solver=solver, tol=1e-6)
        assert result.status == "optimal"
        assert result.stats["guarantee"] == "KKT residual"
        assert result.stats["bound"] <= 1e-6
        assert "NonNegative" in result.stats["guarantee_note"]


def test_max_iter_reports_the_bound_at_the_returned_point():
    problem = _problem(ReLU(), REGULARIZERS["TV"]())
    reference = _reference(problem)
    with pytest.warns(UserWarning, match="duality gap"):
        result = problem.solve(solver="admm", tol=1e-10, max_iter=12)
    assert result.status == "max_iter" and result.stats["guarantee"] == "duality gap"
    assert len(result.history["gap"]) == 12 and result.history["gap"][-1] == result.stats["bound"]
    assert 1e-10 < result.stats["bound"] < np.inf
    assert (result.objective - reference) / abs(reference) <= result.stats["bound"]


def test_relative_bound_closed_forms():
    # P = 10, G = 1: P* ∈ [9, 10], error ≤ 1/9.
    assert relative_bound(np.array([10.0]), np.array([1.0]))[0] == pytest.approx(1 / 9)
    # P = −10, G = 1: P* ∈ [−11, −10], error ≤ 1/10.
    assert relative_bound(np.array([-10.0]), np.array([1.0]))[0] == pytest.approx(0.1)
    # The interval holds 0: no relative bound.
    assert relative_bound(np.array([0.5]), np.array([1.0]))[0] == np.inf


# --------------------------------------------------------------------------- conjugates
SEPARABLE = {
    "L1": lambda: 0.3 * L1(),
    "SquaredL2": lambda: 2.0 * SquaredL2(),
    "Box": lambda: Box(-0.5, 2.0),
    "NonNegative": NonNegative,
    "L1+SquaredL2+Box": lambda: 0.3 * L1() + 0.5 * SquaredL2() + Box(-1.0, 0.7),
    "L1+NonNegative": lambda: 0.4 * L1() + NonNegative(),
    "SquaredL2+Box": lambda: 1.5 * SquaredL2() + Box(0.2, 0.9),
}


@pytest.mark.parametrize("name", sorted(SEPARABLE))
def test_separable_conjugate_matches_a_brute_force_supremum(name):
    """J*(q) = sup_t q t − J(t) entrywise, on a fine grid wide enough for the maximiser."""
    reg = SEPARABLE[name]()
    q = np.linspace(-3.0, 3.0, 61) + 0.013  # off the domain boundaries
    # a fine grid plus every kink and box bound of the entries of SEPARABLE
    t = np.union1d(np.linspace(-20.0, 20.0, 400_001), [-1.0, -0.5, 0.0, 0.2, 0.7, 0.9, 2.0])
    f_t = reg._values(t.reshape(-1, 1))  # J(t) of every grid point (+inf off the box)
    conjugate = reg.conjugate(q.reshape(-1, 1))
    q_lo, q_hi = reg.conjugate_domain()
    for qi, ci in zip(q, conjugate, strict=True):
        brute = np.max(qi * t - f_t)
        if q_lo < qi < q_hi:
            assert ci == pytest.approx(brute, abs=1e-6)
        elif not q_lo <= qi <= q_hi:
            assert ci == np.inf
            assert brute > 0.2  # 20 × (distance to the domain ≥ 0.013): grows with the grid
