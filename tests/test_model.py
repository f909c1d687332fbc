"""The energies of bregmod.model against independent truth.

Gradients against central finite differences of the values, Lipschitz bounds against random
pairs and against the largest eigenvalue of a finite-difference Hessian, for every activation
family, one-layer and lifted; the model's value against closed forms and the forward pass; the
proxes of the data term against numerical minimisation.
"""

from __future__ import annotations

import cvxpy as cp
import numpy as np
import pytest
from scipy.optimize import minimize, minimize_scalar

from bregmod.activations import (
    ELU,
    ISRU,
    Arctan,
    Asinh,
    Clip,
    Identity,
    Interval,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Simplex,
    Softmax,
    Softplus,
    Softsign,
    SoftThreshold,
    Sparsemax,
    Tanh,
)
from bregmod.model.lifted import Elimination, LiftedEnergy, LiftedSmooth, ReducedSmooth
from bregmod.model.onelayer import OneLayerEnergy
from bregmod.network import Dense, Residual, Sequential
from bregmod.problem import Inversion
from bregmod.regularizers import L1, Box, SquaredL2

ACTIVATIONS = [
    Identity(), ReLU(), LeakyReLU(0.2), SoftThreshold(0.5), Clip(-1.0, 2.0), Tanh(), Sigmoid(),
    ELU(0.7), Arctan(), ISRU(), Softsign(), Asinh(), Softplus(), Softmax(), Sparsemax(),
]
IDS = [f"{a.name}{i}" for i, a in enumerate(ACTIVATIONS)]


def fd_gradient(fun, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of a scalar function of a vector."""
    grad = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        grad[i] = (fun(x + e) - fun(x - e)) / (2 * h)
    return grad


def fd_hessian_max(grad, x: np.ndarray, h: float = 1e-5) -> float:
    """Largest eigenvalue of the symmetrised central-difference Jacobian of ``grad`` at x."""
    columns = []
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        columns.append((grad(x + e) - grad(x - e)) / (2 * h))
    H = np.array(columns)
    return float(np.linalg.eigvalsh(0.5 * (H + H.T))[-1])


def check_smooth(smooth, dimension: int, rng, *, lipschitz_rtol: float = 1e-4):
    """∇ against finite differences; L against random pairs and the Hessian's top eigenvalue."""

    def value(x):
        rows = x[None]
        return float(smooth.value(rows, smooth.images(rows))[0][0])

    def gradient(x):
        rows = x[None]
        return smooth.gradient(rows, smooth.images(rows))[0][0]

    for _ in range(3):
        x = rng.standard_normal(dimension)
        expected = fd_gradient(value, x)
        np.testing.assert_allclose(gradient(x), expected, rtol=1e-5,
                                   atol=1e-5 * max(1.0, np.abs(expected).max()))
    L = smooth.lipschitz
    for scale in (1e-3, 1.0, 10.0):
        x, y = rng.standard_normal(dimension), rng.standard_normal(dimension)
        y = x + scale * (y - x)
        assert np.linalg.norm(gradient(x) - gradient(y)) <= L * np.linalg.norm(x - y) * (1 + 1e-9)
    top = fd_hessian_max(gradient, rng.standard_normal(dimension))
    assert top <= L * (1 + lipschitz_rtol)
    return top


def one_layer(activation, seed: int = 0, m: int = 6, n: int = 4, reg=None) -> Inversion:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, n)) / 2
    beta = 0.3 * rng.standard_normal(m)
    data = activation.prox(A @ rng.standard_normal(n) + beta + 0.3 * rng.standard_normal(m))
    return Inversion(Dense(A, beta, activation), data, reg=reg, fidelity="bregman")


def residual(activation, seed: int = 0, n: int = 4, width: int = 3, depth: int = 2) -> Inversion:
    rng = np.random.default_rng(seed)
    layers = [Residual(0.5 * rng.standard_normal((width, n)), 0.2 * rng.standard_normal(width),
                       activation) for _ in range(depth)]
    net = Sequential(*layers)
    data = net(rng.standard_normal(n)) + 0.1 * rng.standard_normal(n)
    return Inversion(net, data, reg=0.1 * SquaredL2(), lam=2.0, rho=10.0)


# --------------------------------------------------------------------------- one layer


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=IDS)
def test_one_layer_gradient_and_lipschitz_bound(activation):
    rng = np.random.default_rng(1)
    problem = one_layer(activation)
    energy = OneLayerEnergy.of(problem)
    top = check_smooth(energy, problem.A.shape[1], rng)
    if activation.name == "Identity":  # Hessian AᵀA: the bound ‖A‖² is attained
        assert top == pytest.approx(energy.lipschitz, rel=1e-4)


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=IDS)
def test_one_layer_accurate_and_expanded_data_terms_agree(activation):
    problem = one_layer(activation, seed=2)
    energy = OneLayerEnergy.of(problem)
    u = np.random.default_rng(3).standard_normal((4, problem.A.shape[1]))
    expanded = energy.value(u, energy.images(u))[0]
    accurate = energy.data_term(energy.pre_activation(u))
    np.testing.assert_allclose(accurate, expanded, rtol=1e-8, atol=1e-10)
    assert (accurate >= 0).all()


def test_one_layer_energy_is_the_closed_form_for_relu():
    # B_Ψ(f, x) = Σ ½f² + ½max(x, 0)² − f x for ReLU (f ≥ 0), plus J = 0.3‖u‖₁.
    problem = one_layer(ReLU(), seed=4, reg=0.3 * L1())
    energy = OneLayerEnergy.of(problem)
    u = np.random.default_rng(5).standard_normal((3, 4))
    x = u @ problem.A.to_dense().T + problem.bias
    f = problem.data
    expected = (0.5 * f**2 + 0.5 * np.maximum(x, 0) ** 2 - f * x).sum(1) + 0.3 * np.abs(u).sum(1)
    np.testing.assert_allclose(energy.energy(u), expected, rtol=1e-12)
    np.testing.assert_allclose(problem.objective(np.hstack([u, np.zeros((3, 6))])[0]),
                               expected[0], rtol=1e-12)


@pytest.mark.parametrize("activation", [ReLU(), Tanh(), Sigmoid(), Softplus()], ids=str)
@pytest.mark.parametrize("t", [0.1, 1.0, 7.0])
def test_prox_of_the_data_term_minimises_its_objective(activation, t):
    """prox_{t h}(w) = argmin_y t h(y) + ½‖y − w‖², h(y) = B_Ψ(f, y) (numerical minimum)."""
    problem = one_layer(activation, seed=6)
    energy = OneLayerEnergy.of(problem)
    w = np.random.default_rng(7).standard_normal((1, 6))

    def objective(y):
        h = energy.expanded_data_term(y[None])[0][0]
        grad = activation.prox(y) - energy.data[0]
        return t * h + 0.5 * np.sum((y - w[0]) ** 2), t * grad + y - w[0]

    best = minimize(objective, w[0], jac=True, method="L-BFGS-B", tol=1e-14).x
    np.testing.assert_allclose(energy.prox_data(w, t)[0], best, atol=1e-6)
    # PDHG's dual block, by the Moreau identity for h₀(x) = h(x + β):
    # prox_{s h₀*}(v) = v − s(prox_{h/s}(v/s + β) − β)
    v, s = w, 1.0 / t
    expected = v - s * (energy.prox_data(v / s + problem.bias, 1 / s) - problem.bias)
    np.testing.assert_allclose(energy.prox_data_conj(v, s), expected, atol=1e-9)


@pytest.mark.parametrize(
    "activation", [a for a in ACTIVATIONS if not a.is_vector], ids=lambda a: a.name
)
def test_prox_of_phi_conj_by_moreau_is_the_brute_force_minimiser(activation):
    for t in (0.2, 1.0, 5.0):
        for x in (-2.5, -0.3, 0.4, 3.0):
            def objective(y, x=x, t=t):
                return t * float(activation.phi_conj(np.array(y))) + 0.5 * (y - x) ** 2

            best = minimize_scalar(objective, bracket=(x - 5, x + 5), tol=1e-12).x
            assert float(activation.prox_phi_conj(np.array(x), t)) == pytest.approx(best,
                                                                                   abs=1e-6)
            # Moreau decomposition v = prox_{tΦ}(v) + t prox_{Φ*/t}(v/t)
            total = activation.prox_phi(np.array(x), t) + t * activation.prox_phi_conj(
                np.array(x / t), 1 / t)
            assert float(total) == pytest.approx(x, abs=1e-9)


def test_projection_onto_the_domain():
    rng = np.random.default_rng(8)
    y = 3 * rng.standard_normal((5, 4))
    for activation in (Softmax(), Sparsemax()):
        assert isinstance(activation.domain, Simplex)
        projected = activation.project_domain(y)
        assert activation.domain.contains(projected).all()
        for row, p in zip(y, projected, strict=True):
            q = cp.Variable(4)
            cp.Problem(cp.Minimize(cp.sum_squares(q - row)), [q >= 0, cp.sum(q) == 1]).solve()
            np.testing.assert_allclose(p, q.value, atol=1e-6)
    open_interval = Interval(-1.0, 1.0, False, False)
    projected = Arctan().project_domain(y)
    assert open_interval.contains(projected).all()
    np.testing.assert_array_equal(projected, np.clip(y, np.nextafter(-1, 0), np.nextafter(1, 0)))
    np.testing.assert_array_equal(ReLU().project_domain(y), np.maximum(y, 0))


# --------------------------------------------------------------------------- lifted


LIFTED_ACTIVATIONS = [Identity(), ReLU(), Tanh(), Sigmoid(), SoftThreshold(0.5), Arctan(),
                      Softplus(), Softmax(), Sparsemax()]


@pytest.mark.parametrize("activation", LIFTED_ACTIVATIONS, ids=lambda a: a.name)
def test_lifted_smooth_gradient_and_lipschitz_bound(activation):
    problem = residual(activation)
    energy = LiftedEnergy.of(problem)
    rng = np.random.default_rng(9)
    # μ = 50 makes the constraint term dominate the curvature (a dropped μ‖A‖² would show)
    smooth = LiftedSmooth(energy, mu=50.0)
    check_smooth(smooth, problem.lifted.n_u + problem.lifted.n_z, rng)
    reduced = ReducedSmooth(energy, Elimination(problem.lifted))
    n0 = problem.lifted.u_blocks[0].size
    check_smooth(reduced, n0 + problem.lifted.n_z, rng)


def test_lifted_energy_at_the_forward_pass_is_data_misfit_plus_regulariser():
    problem = residual(Tanh(), seed=10)
    energy = LiftedEnergy.of(problem)
    u0 = np.random.default_rng(11).standard_normal((3, 4))
    u, z = problem.lifted.forward(u0)
    misfit = np.array([np.sum((problem.network(x) - problem.data) ** 2) for x in u0])
    expected = 0.5 * problem.lam * misfit + 0.1 * 0.5 * np.sum(u0**2, axis=1)
    np.testing.assert_allclose(energy.energy(u, z), expected, rtol=1e-10)
    np.testing.assert_allclose(energy.bregman_gaps(u, z), 0.0, atol=1e-12)
    violation, _ = energy.violation(u, z)
    np.testing.assert_allclose(violation, 0.0, atol=1e-12)
    # a point off the constraint set, or with z outside dom Ψ, has E = +inf
    shifted = u.copy()
    shifted[:, -1] += 1e-3
    assert np.isinf(energy.energy(shifted, z)).all()
    assert np.isinf(energy.energy(u, z + 2.0)).all()  # tanh: dom Ψ = [−1, 1]


def test_lifted_gaps_measure_the_activation_equations():
    problem = residual(ReLU(), seed=12)
    energy = LiftedEnergy.of(problem)
    lifted = problem.lifted
    u0 = np.random.default_rng(13).standard_normal((1, 4))
    u, z = lifted.forward(u0)
    z = z + 0.5  # still ≥ 0, no longer σ(W u + b); make u feasible again
    u = lifted.states_from(u0, z)
    x = lifted.W.apply(u) + lifted.b
    sigma = np.maximum(x, 0)
    # ReLU: B(z, x) = ½‖z − σ(x)‖² + ⟨z, σ(x) − x⟩ with σ(x) − x = max(−x, 0) ≥ 0
    per_entry = 0.5 * (z - sigma) ** 2 + z * (sigma - x)
    expected = [per_entry[:, blk.slice].sum() for blk in lifted.z_blocks]
    np.testing.assert_allclose(energy.bregman_gaps(u, z)[0], expected, rtol=1e-10)


# --------------------------------------------------------------------------- what backends read


def test_lifted_feasible_point_lands_in_dom_e_and_item_is_one_row():
    """feasible_point: u₀ clipped into dom J (the Box of J), z onto dom Ψ, M u = V z exactly,
    and the energy finite there; item(i) is the energy of data row i."""
    rng = np.random.default_rng(21)
    net = Sequential(*[Residual(0.5 * rng.standard_normal((3, 4)), 0.2 * rng.standard_normal(3),
                                Tanh()) for _ in range(2)])
    data = np.stack([net(rng.standard_normal(4)) for _ in range(3)])
    problem = Inversion(net, data, reg=0.1 * SquaredL2() + Box(-0.5, 0.5), lam=2.0, rho=10.0)
    energy = LiftedEnergy.of(problem)
    lifted = problem.lifted
    u = rng.standard_normal((3, lifted.n_u))
    z = 2.0 * rng.standard_normal((3, lifted.n_z))  # outside dom Ψ = [−1, 1] in places
    assert np.isinf(energy.energy(u, z)).all()
    fu, fz = energy.feasible_point(u, z)
    u0 = fu[:, lifted.u_blocks[0].slice]
    np.testing.assert_array_equal(u0, np.clip(u[:, lifted.u_blocks[0].slice], -0.5, 0.5))
    np.testing.assert_array_equal(fz, np.clip(z, -1.0, 1.0))
    np.testing.assert_allclose(lifted.M.apply(fu), lifted.V.apply(fz), atol=1e-12)
    values = energy.energy(fu, fz)
    assert np.isfinite(values).all()
    for i in range(3):
        assert energy.item(i).energy(fu[i : i + 1], fz[i : i + 1])[0] == values[i]
    residual_ = lifted.c - data
    np.testing.assert_allclose(energy.data_constant, np.sum(residual_**2, axis=1), rtol=1e-12)


def test_one_layer_feasible_point_and_data_constant():
    problem = one_layer(Sigmoid(), seed=22, reg=L1() + Box(0.0, 1.0))
    energy = OneLayerEnergy.of(problem)
    u0 = np.array([[-1.0, 0.5, 2.0, 0.25]])
    np.testing.assert_array_equal(energy.feasible_point(u0), [[0.0, 0.5, 1.0, 0.25]])
    f = problem.data
    # ΣΦ(f): for the sigmoid, Φ' = σ⁻¹ = logit, so Φ(u) = u log u + (1 − u) log(1 − u)
    phi = f * np.log(f) + (1 - f) * np.log1p(-f)
    np.testing.assert_allclose(energy.data_constant, [phi.sum()], rtol=1e-12)
    assert energy.item(0).data_constant == pytest.approx(energy.data_constant[0], rel=1e-15)
