"""PALM on the deep lifted Bregman model, the deep certificate and honest statuses.

Truth: exact recovery on expansive nets (noise-free data), block first-order conditions
written out with numpy's own σ (not bregmod's), a multi-start scipy L-BFGS on the reduced
problem through the network (smooth activations), an independent CVXPY model of certified
problems, and the certificate's closed form α* = ‖W_1‖² for two layers.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.special import expit

from bregmod import (
    L1,
    Box,
    Conv2d,
    Dense,
    Identity,
    Inversion,
    NonNegative,
    ReLU,
    Residual,
    Sequential,
    Sigmoid,
    Softplus,
    SquaredL2,
    Tanh,
    TotalVariation,
)
from bregmod.certificate import DeepCertificate, smallest_alpha
from bregmod.errors import SolverWarning
from bregmod.solvers.palm import continuation


def gaussian_net(rng, sizes, activation=ReLU, bias=0.1, scale=1.0):
    layers = [
        Dense(scale * rng.normal(size=(m, n)) / np.sqrt(n), bias * rng.normal(size=m), activation())
        for n, m in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    return Sequential(*layers)


def truth_point(problem, u_true):
    """The lifted point of the forward pass of u† (the deep model's states, x_L = f)."""
    states = [s.reshape(1, -1) for s in problem.network.states(u_true)]
    u, _ = problem._deep_lifted(states)
    return u[0]


def quiet_solve(problem, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverWarning)
        return problem.solve(**kwargs)


@pytest.mark.parametrize("sizes", [[6, 18, 54], [5, 15, 45, 135], [4, 12, 36, 108, 324]],
                         ids=["2 layers", "3 layers", "4 layers"])
def test_expansive_relu_nets_are_recovered(sizes):
    rng = np.random.default_rng(len(sizes))
    net = gaussian_net(rng, sizes)
    u_true = rng.normal(size=sizes[0])
    problem = Inversion(net, net(u_true), 1e-8 * SquaredL2(), fidelity="bregman")
    result = quiet_solve(problem, solver="auto", tol=1e-8)
    assert result.solver == "palm" and "palm" in result.stats["auto"]
    assert result.status == "stationary" and not result.global_optimum_claimed
    assert np.linalg.norm(result.u0 - u_true) <= 1e-3 * np.linalg.norm(u_true)
    assert result.objective <= problem.objective(truth_point(problem, u_true)) + 1e-10
    history = np.array(result.history["objective"])
    assert np.all(np.diff(history) <= 1e-12 * history[:-1])  # monotone energy


def conv_net(rng, c1=4, c2=12, size=6):
    return Sequential(
        Conv2d(rng.normal(size=(c1, 1, 3, 3)) / 3, 0.1 * rng.normal(size=c1), ReLU(),
               in_shape=(1, size, size), padding=1),
        Conv2d(rng.normal(size=(c2, c1, 3, 3)) / np.sqrt(9 * c1), 0.1 * rng.normal(size=c2),
               ReLU(), in_shape=(c1, size, size), padding=1),
    )


def square(size=6):
    u_true = np.zeros((1, size, size))
    u_true[0, 1:4, 2:5] = 1.0
    return u_true


def test_expansive_conv_net_is_recovered():
    net = conv_net(np.random.default_rng(0))
    u_true = square()
    problem = Inversion(net, net(u_true), 1e-8 * SquaredL2(), fidelity="bregman")
    result = quiet_solve(problem, solver="palm", tol=1e-7)
    assert result.status == "stationary"
    assert np.linalg.norm(result.u0 - u_true) <= 1e-3 * np.linalg.norm(u_true)
    assert result.objective <= problem.objective(truth_point(problem, u_true)) + 1e-10


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_expansive_conv_net_with_total_variation(seed):
    net = conv_net(np.random.default_rng(seed))
    u_true = square()
    problem = Inversion(net, net(u_true), 1e-6 * TotalVariation((6, 6)), fidelity="bregman")
    result = quiet_solve(problem, solver="palm", tol=1e-7)
    assert result.status == "stationary"
    assert result.stats["input_prox"].startswith("dual FISTA")
    assert np.linalg.norm(result.u0 - u_true) <= 1e-3 * np.linalg.norm(u_true)
    assert result.objective <= problem.objective(truth_point(problem, u_true)) + 1e-10


NUMPY_SIGMA = {
    Tanh: (np.tanh, np.arctanh),
    Sigmoid: (expit, lambda y: np.log(y / (1 - y))),
    Softplus: (lambda x: np.logaddexp(0, x), lambda y: np.log(np.expm1(y))),
}


@pytest.mark.parametrize("activation", [Tanh, Sigmoid, Softplus], ids=lambda a: a.__name__)
def test_smooth_activations_satisfy_the_block_first_order_conditions(activation):
    """At PALM's stationary point (non-expansive net, noisy data) every block condition holds:
    α u + W_1ᵀ(σ(W_1 u + b_1) − x_1) = 0 and
    σ⁻¹(x_l) − (W_l x_{l−1} + b_l) + W_{l+1}ᵀ(σ(W_{l+1} x_l + b_{l+1}) − x_{l+1}) = 0,
    evaluated with numpy's own σ and σ⁻¹."""
    sigma, sigma_inv = NUMPY_SIGMA[activation]
    rng = np.random.default_rng(6)
    net = gaussian_net(rng, [6, 5, 4], activation)
    f = net(rng.normal(size=6))
    noisy = np.clip(f + 0.02 * rng.normal(size=f.shape), 0.01, None)
    if activation is Sigmoid:
        noisy = np.minimum(noisy, 0.99)
    alpha = 0.05
    problem = Inversion(net, noisy, alpha * SquaredL2(), fidelity="bregman")
    result = quiet_solve(problem, solver="palm", tol=1e-8)
    assert result.status in ("stationary", "optimal")
    (W1, b1), (W2, b2) = [(layer.W, layer.b) for layer in net.layers]
    u, x1 = result.states[0], result.states[1]
    grad_u = alpha * u + W1.T @ (sigma(W1 @ u + b1) - x1)
    grad_x1 = sigma_inv(x1) - (W1 @ u + b1) + W2.T @ (sigma(W2 @ x1 + b2) - noisy)
    assert np.linalg.norm(grad_u) <= 1e-6 * max(1.0, np.linalg.norm(W1.T @ x1))
    assert np.linalg.norm(grad_x1) <= 1e-6 * max(1.0, np.linalg.norm(W1 @ u + b1))


NUMPY_SIGMA_PRIME = {
    Tanh: lambda x: 1 - np.tanh(x) ** 2,
    Sigmoid: lambda x: expit(x) * (1 - expit(x)),
    Softplus: expit,
}


def reduced_lbfgs(net, f, alpha, starts):
    """Multi-start scipy L-BFGS on the reduced problem ½‖N(u) − f‖² + α/2‖u‖², N and its
    gradient (backpropagation) written with numpy's own σ, σ′; the best of the starts."""
    from scipy.optimize import minimize

    activation = type(net.layers[0].activation)
    sigma, sigma_prime = NUMPY_SIGMA[activation][0], NUMPY_SIGMA_PRIME[activation]
    weights = [(layer.W, layer.b) for layer in net.layers]

    def value_and_gradient(u):
        pre, x = [], u
        for W, b in weights:
            pre.append(W @ x + b)
            x = sigma(pre[-1])
        residual = x - f
        g = residual
        for (W, _), p in zip(reversed(weights), reversed(pre), strict=True):
            g = W.T @ (g * sigma_prime(p))
        return 0.5 * residual @ residual + 0.5 * alpha * u @ u, g + alpha * u

    runs = [
        minimize(value_and_gradient, u0, jac=True, method="L-BFGS-B",
                 options={"ftol": 1e-30, "gtol": 1e-12, "maxiter": 20000})
        for u0 in starts
    ]
    return min(runs, key=lambda run: run.fun)


@pytest.mark.parametrize("activation", [Tanh, Sigmoid, Softplus], ids=lambda a: a.__name__)
def test_smooth_activations_agree_with_multistart_lbfgs_on_the_reduced_problem(activation):
    """Expansive net, noise-free data, tiny α: the reduced problem is well posed (N injective)
    and shares its minimiser (≈ the truth) with the lifted one; PALM's stationary point and the
    best of five L-BFGS runs through the network agree, and both recover the truth."""
    rng = np.random.default_rng(12)
    net = gaussian_net(rng, [4, 12, 36], activation)
    u_true = rng.normal(size=4)
    f = net(u_true)
    alpha = 1e-10
    result = quiet_solve(Inversion(net, f, alpha * SquaredL2(), fidelity="bregman"),
                         solver="palm", tol=1e-9)
    assert result.status == "stationary"
    best = reduced_lbfgs(net, f, alpha, [rng.normal(size=4) for _ in range(5)])
    assert best.success
    scale = np.linalg.norm(u_true)
    assert np.linalg.norm(best.x - u_true) <= 1e-4 * scale
    assert np.linalg.norm(result.u0 - best.x) <= 1e-4 * scale


def cvxpy_deep_two_layers(problem, alpha, gammas=(1.0, 1.0)):
    """Independent DCP model of the certified two-layer ReLU/identity energy
    γ_1 B_ReLU(x_1, W_1 u + b_1) + γ_2 B_Id(f, W_2 x_1 + b_2) + α/2‖u‖², with the bilinear
    −γ_1⟨x_1, W_1 u⟩ written through a factorisation of the PSD quadratic part
    [[α I, −γ_1 W_1ᵀ], [−γ_1 W_1, γ_1 I]]."""
    import cvxpy as cp

    (W1, b1), (W2, b2) = [(layer.W, layer.b) for layer in problem.network.layers]
    f = problem.data
    n0, n1 = W1.shape[1], W1.shape[0]
    g1, g2 = gammas
    H = np.block([[alpha * np.eye(n0), -g1 * W1.T], [-g1 * W1, g1 * np.eye(n1)]])
    vals, vecs = np.linalg.eigh(H)
    factor = (vecs * np.sqrt(np.maximum(vals, 0))).T
    u, x1 = cp.Variable(n0), cp.Variable(n1)
    xi = cp.hstack([u, x1])
    pre1 = W1 @ u + b1
    objective = (
        0.5 * cp.sum_squares(factor @ xi)
        - g1 * (b1 @ x1)
        + 0.5 * g1 * cp.sum_squares(cp.pos(pre1))  # Φ*_ReLU
        + 0.5 * g2 * cp.sum_squares(f - W2 @ x1 - b2)  # B_Identity
    )
    cp.Problem(cp.Minimize(objective), [x1 >= 0]).solve(
        solver="CLARABEL", tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12
    )
    return u.value, x1.value


def certified_two_layer_problem():
    """(problem, α): ReLU then identity, 4 → 6 → 5, J = α/2‖·‖² with α = 1.2‖W_1‖² (certified)."""
    rng = np.random.default_rng(7)
    net = Sequential(
        Dense(rng.normal(size=(6, 4)) / 2, 0.1 * rng.normal(size=6), ReLU()),
        Dense(rng.normal(size=(5, 6)) / 2, 0.1 * rng.normal(size=5), Identity()),
    )
    alpha = 1.2 * np.linalg.norm(net.layers[0].W, 2) ** 2
    f = net(rng.normal(size=4)) + 0.05 * rng.normal(size=5)
    return Inversion(net, f, alpha * SquaredL2(), fidelity="bregman"), alpha


def test_certified_deep_problem_agrees_with_cvxpy_and_claims_the_optimum():
    problem, alpha = certified_two_layer_problem()
    certificate = problem.certify()
    assert isinstance(certificate, DeepCertificate) and certificate.certified
    result = problem.solve("palm", tol=1e-10)
    assert result.status == "optimal" and result.global_optimum_claimed
    u, x1 = cvxpy_deep_two_layers(problem, alpha)
    np.testing.assert_allclose(result.u0, u, atol=1e-6)
    np.testing.assert_allclose(result.states[1], x1, atol=1e-6)


def test_two_layer_certificate_threshold_is_the_squared_norm_of_w1():
    rng = np.random.default_rng(8)
    net = gaussian_net(rng, [4, 7, 5])
    threshold = np.linalg.norm(net.layers[0].W, 2) ** 2
    problem = Inversion(net, np.abs(net(rng.normal(size=4))), fidelity="bregman")
    assert smallest_alpha(problem.deep) == pytest.approx(threshold, rel=1e-10)
    for factor, expected in [(0.99, False), (1.01, True)]:
        reg = factor * threshold * SquaredL2() + 0.1 * L1()
        assert bool(Inversion(net, problem.data, reg, fidelity="bregman").certify()) is expected
    text = problem.certify().explain()
    assert "NOT certified" in text and f"{threshold:.4g}" in text


def test_three_layers_with_strong_coupling_cannot_be_certified():
    rng = np.random.default_rng(9)
    net = gaussian_net(rng, [3, 6, 6, 4], scale=2.0)  # ‖W_2‖ > 1
    problem = Inversion(net, np.abs(net(rng.normal(size=3))), 1e3 * SquaredL2(),
                        fidelity="bregman")
    certificate = problem.certify()
    assert not certificate.certified and certificate.smallest_alpha is None
    assert "‖W_2‖ < 1" in certificate.advice


def test_uncertified_convergence_is_stationary_with_one_warning():
    rng = np.random.default_rng(10)
    net = gaussian_net(rng, [4, 12, 36])
    problem = Inversion(net, net(rng.normal(size=4)), 1e-6 * SquaredL2(), fidelity="bregman")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = problem.solve("palm", tol=1e-6)
    messages = [str(w.message) for w in caught if issubclass(w.category, SolverWarning)]
    assert result.status == "stationary" and not result.global_optimum_claimed
    assert len(messages) == 1
    assert "not certified convex" in messages[0] and "SquaredL2" in messages[0]


def test_no_solver_returns_optimal_on_an_uncertified_lifted_problem():
    """The quadratic lifted model of a residual net below the certifying λ."""
    rng = np.random.default_rng(11)
    net = Sequential(Residual(rng.normal(size=(5, 4)), activation=ReLU()),
                     Residual(rng.normal(size=(5, 4)), activation=ReLU()))
    problem = Inversion(net, net(rng.normal(size=4)), 0.1 * L1(), lam=0.2)
    assert not problem.certify().certified
    for solver in ("pdhg", "fista"):
        result = quiet_solve(problem, solver=solver, tol=1e-5, max_iter=20_000)
        assert result.status != "optimal" and not result.global_optimum_claimed


def test_float32_batched_and_warm_started():
    rng = np.random.default_rng(12)
    net = gaussian_net(rng, [5, 15, 45])
    u_true = rng.normal(size=(2, 5))
    problem = Inversion(net, net(u_true), 1e-8 * SquaredL2(), fidelity="bregman")
    result = quiet_solve(problem, solver="palm", tol=1e-5, dtype=np.float32)
    assert result.status == "stationary" and result.u0.shape == (2, 5)
    assert np.linalg.norm(result.u0 - u_true) <= 1e-3 * np.linalg.norm(u_true)
    again = quiet_solve(problem, solver="palm", tol=1e-5, warm_start=result)
    assert again.stats["init"] == "warm start (lifted point)"
    assert again.iterations < result.iterations / 2


def test_deep_problems_are_declared_and_refused_clearly():
    rng = np.random.default_rng(13)
    net = gaussian_net(rng, [3, 6, 9])
    f = net(rng.normal(size=3))
    with pytest.raises(ValueError, match="layer 2 of .* is Residual"):
        Inversion(Sequential(Dense(np.eye(3), activation=ReLU()),
                             Residual(np.eye(3), activation=ReLU())), np.ones(3),
                  fidelity="bregman")
    with pytest.raises(ValueError, match="outside the domain"):
        Inversion(net, -np.ones(9), fidelity="bregman")  # the last layer's ReLU
    problem = Inversion(net, f, fidelity="bregman")
    assert problem.deep.depth == 2
    with pytest.raises(AttributeError, match="2 layers"):
        problem.A  # noqa: B018
    with pytest.raises(ValueError, match="use solver='palm'"):
        problem.solve("fista")
    with pytest.raises(ValueError, match="unknown init"):
        problem.solve("palm", init="random")
    one_layer = Inversion(net.layers[0], np.abs(net.layers[0](np.ones(3))), fidelity="bregman")
    with pytest.raises(ValueError, match="palm solves the deep"):
        one_layer.solve("palm")


# --- layer weights γ_l and the continuation γ → ∞ (docs/math/deep.md, "Layer weights") ---


def test_unit_layer_weights_reproduce_the_unweighted_run_exactly():
    rng = np.random.default_rng(13)
    net = gaussian_net(rng, [3, 6, 9, 12], Tanh)
    f = np.clip(net(rng.normal(size=3)) + 0.05 * rng.normal(size=12), -0.99, 0.99)
    problems = [Inversion(net, f, 0.05 * SquaredL2(), fidelity="bregman", layer_weights=w)
                for w in (None, 1.0, [1, 1, 1])]
    assert all(p.deep.weights == (1.0, 1.0, 1.0) and not p.deep.weighted for p in problems)
    plain, unit = (quiet_solve(p, solver="palm", tol=1e-5, max_iter=20) for p in problems[:2])
    assert unit.iterations == plain.iterations
    assert np.array_equal(unit.u, plain.u)
    assert unit.history["objective"] == plain.history["objective"]


def weighted_tanh_problem(gammas):
    """Three tanh layers 4 → 8 → 12 → 16, noisy data, J = 0.05/2‖·‖², layer weights γ; also
    the data, the weights W_l and biases b_l for numpy's own checks."""
    rng = np.random.default_rng(14)
    net = gaussian_net(rng, [4, 8, 12, 16], Tanh)
    f = np.clip(net(rng.normal(size=4)) + 0.05 * rng.normal(size=16), -0.99, 0.99)
    problem = Inversion(net, f, 0.05 * SquaredL2(), fidelity="bregman", layer_weights=gammas)
    return problem, f, [layer.W for layer in net.layers], [layer.b for layer in net.layers]


def test_weighted_stationary_point_satisfies_the_weighted_block_conditions():
    """At PALM's stationary point of E_γ (three tanh layers, γ = (3, 10, 1), noisy data) every
    block condition of the weighted energy holds, with numpy's own σ and σ⁻¹:
    α u + γ_1 W_1ᵀ(σ(q_1) − x_1) = 0,
    γ_l(σ⁻¹(x_l) − q_l) + γ_{l+1} W_{l+1}ᵀ(σ(q_{l+1}) − x_{l+1}) = 0, q_l = W_l x_{l−1} + b_l;
    the energy decreases monotonically."""
    alpha, gammas = 0.05, (3.0, 10.0, 1.0)
    problem, f, W, b = weighted_tanh_problem(gammas)
    result = quiet_solve(problem, solver="palm", tol=1e-9)
    assert result.status == "stationary"
    history = np.array(result.history["objective"])
    assert np.all(np.diff(history) <= 1e-12 * np.abs(history[:-1]))
    x = [*result.states[:3], f]
    q = [None] + [W[l - 1] @ x[l - 1] + b[l - 1] for l in (1, 2, 3)]
    grad_u = alpha * x[0] + gammas[0] * W[0].T @ (np.tanh(q[1]) - x[1])
    assert np.linalg.norm(grad_u) <= 1e-7 * gammas[0] * np.linalg.norm(W[0].T @ x[1])
    for l in (1, 2):
        grad = (gammas[l - 1] * (np.arctanh(x[l]) - q[l])
                + gammas[l] * W[l].T @ (np.tanh(q[l + 1]) - x[l + 1]))
        assert np.linalg.norm(grad) <= 1e-7 * gammas[l - 1] * np.linalg.norm(q[l])
    # the objective is the weighted energy: Σ γ_l B_l + J, from the unweighted terms
    assert result.objective == pytest.approx(
        result.bregman_gaps @ np.array(gammas) + 0.5 * alpha * x[0] @ x[0], rel=1e-12)


@pytest.mark.parametrize("sweeps", [2, 5, 20])
def test_weighted_stopping_measure_bounds_the_true_stationarity_residual(sweeps):
    """After any number of sweeps the recorded residuals (the stopping rule's bounds on
    ‖∇_{x_k}E_γ‖, relative to palm's scales γ_{k+1}‖W_{k+1}‖‖x_{k+1}‖ and γ_k‖W_k x_{k−1} + b_k‖)
    are ≥ the true gradient norms of the weighted energy, computed with numpy's tanh."""
    alpha, gammas = 0.05, (3.0, 100.0, 1.0)
    problem, f, W, b = weighted_tanh_problem(gammas)
    result = quiet_solve(problem, solver="palm", tol=1e-12, max_iter=sweeps)
    x = [*result.states[:3], f]
    norms = [problem.deep.operator(l).norm_bound() for l in (1, 2, 3)]
    q = [None] + [W[l - 1] @ x[l - 1] + b[l - 1] for l in (1, 2, 3)]
    grad_u = alpha * x[0] + gammas[0] * W[0].T @ (np.tanh(q[1]) - x[1])
    true_u = np.linalg.norm(grad_u) / (gammas[0] * norms[0] * np.linalg.norm(x[1]))
    assert true_u <= result.history["dual_residual"][-1] * (1 + 1e-9)
    true_hidden = []
    for l in (1, 2):
        grad = (gammas[l - 1] * (np.arctanh(x[l]) - q[l])
                + gammas[l] * W[l].T @ (np.tanh(q[l + 1]) - x[l + 1]))
        scale = max(gammas[l] * norms[l] * np.linalg.norm(x[l + 1]),
                    gammas[l - 1] * np.linalg.norm(q[l]))
        true_hidden.append(np.linalg.norm(grad) / scale)
    assert max(true_hidden) <= result.history["primal_residual"][-1] * (1 + 1e-9)


def test_weighted_steps_keep_the_energy_monotone_where_the_lipschitz_bound_is_attained():
    """Large biases keep every ReLU active (σ′ = 1, affine output layer), so the block
    Lipschitz constants γ_{k+1}‖W_{k+1}‖² are attained: steps or descent tests that forget a
    weight γ = 100 overshoot and raise the energy; the right ones never do."""
    rng = np.random.default_rng(16)
    sizes = [4, 8, 12, 16]
    net = Sequential(*[
        Dense(rng.normal(size=(m, n)) / np.sqrt(n), np.full(m, 20.0),
              ReLU() if m < 16 else Identity())
        for n, m in zip(sizes[:-1], sizes[1:], strict=True)
    ])
    f = net(rng.normal(size=4)) + 0.5 * rng.normal(size=16)
    problem = Inversion(net, f, 0.05 * SquaredL2(), fidelity="bregman",
                        layer_weights=(100.0, 100.0, 1.0))
    result = quiet_solve(problem, solver="palm", tol=1e-9, max_iter=300)
    history = np.array(result.history["objective"])
    assert result.stats["energy_increases"] == 0
    assert np.all(np.diff(history) <= 1e-12 * np.abs(history[:-1]))


def limit_problem():
    """Three tanh layers 3 → 6 → 8 → 10, noisy data, J = 0.05/2‖·‖², and the minimiser of the
    reduced problem g(u) = Σ log cosh(q_L) − ⟨f, q_L⟩ + α/2‖u‖² (B_tanh(f, q_L) up to a
    constant, q_L = W_L N_2(u) + b_L), by the best of 20 scipy L-BFGS runs through the network
    with numpy's own tanh and backpropagation."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(11)
    net = gaussian_net(rng, [3, 6, 8, 10], Tanh)
    f = np.clip(net(rng.normal(size=3)) + 0.1 * rng.normal(size=10), -0.95, 0.95)
    alpha = 0.05
    weights = [(layer.W, layer.b) for layer in net.layers]

    def reduced(u):
        states, x = [u], u
        for W, b in weights:
            q = W @ x + b
            x = np.tanh(q)
            states.append(x)
        g = weights[-1][0].T @ (np.tanh(q) - f)
        for l in range(len(weights) - 2, -1, -1):
            g = weights[l][0].T @ (g * (1 - states[l + 1] ** 2))
        return np.sum(np.log(np.cosh(q)) - f * q) + 0.5 * alpha * u @ u, g + alpha * u

    runs = [minimize(reduced, rng.normal(size=3), jac=True, method="L-BFGS-B",
                     options={"ftol": 1e-15, "gtol": 1e-12}) for _ in range(20)]
    best = min(runs, key=lambda run: run.fun)
    assert best.success
    return Inversion(net, f, alpha * SquaredL2(), fidelity="bregman"), best.x


def test_large_hidden_weights_approach_the_reduced_minimiser():
    """γ = 1: the lifted stationary point is 0.137 away from the reduced problem's minimiser;
    γ = 10 (one stage of the continuation) cuts that to 0.024 (≈ 1/γ)."""
    problem, reduced_min = limit_problem()
    unweighted = quiet_solve(problem, solver="palm", tol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverWarning)
        weighted = continuation(problem, (10.0,), tol=1e-6)
    distance = [np.linalg.norm(r.u0 - reduced_min) for r in (unweighted, weighted)]
    assert distance[0] >= 0.1
    assert distance[1] <= 0.2 * distance[0] and distance[1] <= 0.03
    assert weighted.status == "stationary" and not weighted.global_optimum_claimed
    assert weighted.stats["continuation"][0]["layer_weights"] == [10.0, 10.0, 1.0]


@pytest.mark.slow
def test_continuation_to_gamma_100_tends_to_the_reduced_minimiser():
    """The path γ = 10 → 100: distance to the reduced minimiser 0.024 → 0.0026 (≈ 1/γ)."""
    problem, reduced_min = limit_problem()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverWarning)
        result = continuation(problem, (10.0, 100.0), tol=(1e-7, 1e-8))
    stages = result.stats["continuation"]
    assert [s["status"] for s in stages] == ["stationary", "stationary"]
    assert np.linalg.norm(result.u0 - reduced_min) <= 3e-3


def test_weighted_problems_are_certified_by_the_rescaled_form():
    """The problem of the CVXPY test has α = 1.2‖W_1‖². With weights γ = (γ_1, γ_2) its
    H_γ = [[α I, −γ_1W_1ᵀ], [−γ_1W_1, γ_1 I]] is PSD iff α ≥ γ_1‖W_1‖² (γ_2 weights the data
    term, which is not in H_γ): γ = (1.1, 2.5) is certified, and palm's "optimal" point is the
    global minimiser of the weighted energy that CVXPY finds; γ_1 = 3 is not certified, and the
    result is "stationary" with one warning that says what would certify it."""
    problem, alpha = certified_two_layer_problem()
    gammas = (1.1, 2.5)
    weighted = problem.with_layer_weights(gammas)
    certificate = weighted.certify()
    assert isinstance(certificate, DeepCertificate) and certificate.certified
    assert certificate.weights == gammas
    norm = np.linalg.norm(problem.network.layers[0].W, 2)
    assert certificate.smallest_alpha == pytest.approx(1.1 * norm**2, rel=1e-9)
    result = weighted.solve("palm", tol=1e-10)
    assert result.status == "optimal" and result.global_optimum_claimed
    u, x1 = cvxpy_deep_two_layers(problem, alpha, gammas)
    np.testing.assert_allclose(result.u0, u, atol=1e-6)
    np.testing.assert_allclose(result.states[1], x1, atol=1e-6)
    uncertified = problem.with_layer_weights(3.0)
    assert "layer_weights=('3', '1')" in repr(uncertified)
    assert not uncertified.certify().certified and problem.certify().certified
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = uncertified.solve("palm", tol=1e-8)
    messages = [str(w.message) for w in caught if issubclass(w.category, SolverWarning)]
    assert result.status == "stationary" and not result.global_optimum_claimed
    assert len(messages) == 1 and f"α ≥ {3 * norm**2:.6g}" in messages[0]


def test_layer_weights_are_refused_clearly():
    rng = np.random.default_rng(15)
    net = gaussian_net(rng, [3, 6, 9])
    f = np.abs(net(rng.normal(size=3)))
    with pytest.raises(ValueError, match="one layer"):
        Inversion(Dense(np.eye(3), activation=ReLU()), np.ones(3), fidelity="bregman",
                  layer_weights=2.0)
    with pytest.raises(ValueError, match="fidelity='quadratic'"):
        Inversion(net, f, layer_weights=2.0)
    for bad in (0.0, -1.0, np.nan, "x"):
        with pytest.raises(ValueError, match="layer_weights"):
            Inversion(net, f, fidelity="bregman", layer_weights=bad)
    with pytest.raises(ValueError, match="one γ_l per layer"):
        Inversion(net, f, fidelity="bregman", layer_weights=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="at least one stage"):
        continuation(Inversion(net, f, fidelity="bregman"), ())
    with pytest.raises(ValueError, match="2 tolerances for 1 stages"):
        continuation(Inversion(net, f, fidelity="bregman"), (10.0,), tol=(1e-5, 1e-6))


# --- the input block's inexact prox (dual FISTA, warm starts, relative error rule) ---------------


def forward_differences(size):
    """Forward differences with a zero last row (Neumann), written out for CVXPY."""
    D = np.zeros((size, size))
    D[np.arange(size - 1), np.arange(size - 1)] = -1.0
    D[np.arange(size - 1), np.arange(1, size)] = 1.0
    return np.kron(D, np.eye(size)), np.kron(np.eye(size), D)


def cvxpy_tv_prox(v, t, size, nonnegative=False):
    """prox_{t TV}(v) (isotropic, Neumann), optionally with u ≥ 0, by CVXPY + Clarabel."""
    import cvxpy as cp

    Dy, Dx = forward_differences(size)
    u = cp.Variable(size * size)
    tv = cp.sum(cp.norm(cp.vstack([Dy @ u, Dx @ u]), 2, axis=0))
    constraints = [u >= 0] if nonnegative else []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Clarabel's "may be inaccurate" at tol 1e-12
        cp.Problem(cp.Minimize(0.5 * cp.sum_squares(u - v) + t * tv), constraints).solve(
            solver="CLARABEL", tol_gap_abs=1e-12, tol_gap_rel=1e-12, tol_feas=1e-12)
    return u.value


@pytest.mark.parametrize("nonnegative", [False, True], ids=["TV", "TV + u ≥ 0"])
@pytest.mark.parametrize(("tau0", "tau1"), [(0.2, 0.3), (0.3, 0.2)], ids=["step up", "step down"])
def test_warm_started_input_prox_matches_cvxpy_in_fewer_inner_iterations(nonnegative, tau0, tau1):
    """As in a PALM sweep near a stationary point: prox at (v₀, τ₀), then at the same point u₀
    with a changed step, v₁ = u₀ + (τ₁/τ₀)(v₀ − u₀), whose prox is u₀ again and whose dual is
    the old one times τ₁/τ₀. The warm start (the rescaled dual) and a cold start both land
    within their certified error of CVXPY's prox; the warm one needs a handful of iterations
    (measured 1–23), the cold one and a warm start that is not rescaled 106–753."""
    from bregmod.solvers.palm import InputProx

    size = 8
    image = np.zeros((size, size))
    image[2:6, 3:7] = 1.0
    v0 = (image - 0.2 * nonnegative + 0.1 * np.random.default_rng(0).normal(size=image.shape))
    v0 = v0.reshape(1, -1)
    reg = 0.5 * TotalVariation((size, size))
    if nonnegative:
        reg = reg + NonNegative()
    accuracy = np.array([1e-4])

    warm = InputProx(reg, 1, np.float64)
    u0, _ = warm(v0, tau0, accuracy)
    before = warm.inner_iterations
    v1 = u0 + (tau1 / tau0) * (v0 - u0)
    reference = cvxpy_tv_prox(v1[0], 0.5 * tau1, size, nonnegative)
    u_warm, e_warm = warm(v1, tau1, accuracy)
    warm_iterations = warm.inner_iterations - before
    cold = InputProx(reg, 1, np.float64)
    u_cold, e_cold = cold(v1, tau1, accuracy)
    for u, e in ((u_warm, e_warm), (u_cold, e_cold)):
        assert e[0] <= accuracy[0]
        assert np.linalg.norm(u[0] - reference) <= e[0] + 1e-6  # CVXPY's own error ~1e-7
    assert warm_iterations <= 30
    assert cold.inner_iterations >= 100

    unscaled = InputProx(reg, 1, np.float64)
    unscaled(v0, tau0, accuracy)
    unscaled.tau = None  # forget the step: the old dual is reused as it is
    before = unscaled.inner_iterations
    unscaled(v1, tau1, accuracy)
    assert unscaled.inner_iterations - before >= 5 * warm_iterations + 50


def test_affine_dual_fista_reproduces_the_general_iteration():
    """Without a simple part the dual FISTA carries L u at the extrapolated point by linearity
    (one L and one Lᵀ per iteration); with an inactive box (prox = identity on these values)
    it takes the general path, which computes u and L u at every extrapolated point. Same
    iterates: same inner iteration counts, cold and warm, and the same points to rounding."""
    from bregmod.solvers.palm import InputProx

    rng = np.random.default_rng(1)
    v0 = rng.normal(size=(2, 36))
    v1 = v0 + 1e-3 * rng.normal(size=v0.shape)
    tv = 0.3 * TotalVariation((6, 6))
    proxes = [InputProx(reg, 2, np.float64) for reg in (tv, tv + Box(-1e3, 1e3))]
    assert proxes[0].simple is None and proxes[1].simple is not None
    runs = [[prox(v, tau, np.full(2, 1e-5)) for v, tau in ((v0, 0.5), (v1, 0.7))]
            for prox in proxes]
    assert proxes[0].inner_iterations == proxes[1].inner_iterations >= 20
    for (u_affine, e_affine), (u_general, e_general) in zip(*runs, strict=True):
        np.testing.assert_allclose(u_affine, u_general, rtol=0, atol=1e-12)
        np.testing.assert_allclose(e_affine**2, e_general**2, rtol=0, atol=1e-13)  # 2·gaps

def tv_conv_problem(gamma):
    rng = np.random.default_rng(3)
    net = conv_net(rng)
    clean = net(square())
    f = np.maximum(clean + 0.05 * np.abs(clean).mean() * rng.normal(size=clean.shape), 0.0)
    return Inversion(net, f, 0.05 * TotalVariation((6, 6)), fidelity="bregman",
                     layer_weights=gamma)


@pytest.mark.parametrize("gamma", [1.0, 10.0])
def test_inexact_input_prox_keeps_the_energy_monotone_and_the_stationarity_bound(gamma):
    """Noisy data, TV: under the relative error rule every sweep decreases the energy, and the
    recorded input residual bounds the prox-gradient mapping ‖u − prox_{μαTV}(u − μ∇h(u))‖/μ
    (≤ dist(0, ∂_u(E_γ + J))), computed with CVXPY's prox and numpy's ReLU (measured 3.2e-7 and
    6.0e-7 against recorded 9.6e-7 and 9.3e-7)."""
    problem = tv_conv_problem(gamma)
    result = quiet_solve(problem, solver="palm", tol=1e-6, max_iter=2000)
    assert result.status == "stationary"
    history = np.array(result.history["objective"])
    assert result.stats["energy_increases"] == 0
    assert np.all(np.diff(history) <= 1e-12 * history[:-1])
    u, x1 = result.u0.reshape(1, -1), result.states[1].reshape(1, -1)
    op, bias = problem.deep.operator(1), problem.deep.bias(1)
    grad = gamma * op.apply_adjoint(np.maximum(op.apply(u) + bias, 0.0) - x1)
    mu = 1.0 / (gamma * op.norm_bound() ** 2)
    mapping = np.linalg.norm(u - cvxpy_tv_prox((u - mu * grad)[0], 0.05 * mu, 6)) / mu
    relative = mapping / (gamma * op.norm_bound() * np.linalg.norm(x1))
    assert relative <= result.history["dual_residual"][-1] <= 1e-6


def test_relative_prox_error_rule_leaves_the_result_unchanged(monkeypatch):
    """The same run with a 2500× tighter inner rule (nearly exact prox) ends at the same point
    (measured 1.1e-8 relative at tol 1e-6) with over twice the inner iterations."""
    import bregmod.solvers.palm as palm

    problem = tv_conv_problem(1.0)
    loose = quiet_solve(problem, solver="palm", tol=1e-6)
    monkeypatch.setattr(palm, "RELATIVE_PROX_ERROR", 1e-4)
    tight = quiet_solve(problem, solver="palm", tol=1e-6)
    assert loose.status == tight.status == "stationary"
    assert np.linalg.norm(loose.u0 - tight.u0) <= 1e-7 * np.linalg.norm(tight.u0)
    assert 2 * loose.stats["inner_iterations"] <= tight.stats["inner_iterations"]
