"""Tests of bregmod.theory: the error estimate of the one-layer Bregman inversion
(docs/math/error-estimate.md).

Independent truths used here: closed-form Ψ and B_Ψ written out in the tests, the closed-form
Tikhonov minimiser for σ = identity and J = ½‖·‖², closed-form minimal-norm source elements
for W = I, and a synthetic power law for the slope fit.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

from bregmod.activations import Identity, ReLU, Sigmoid, Softmax, SoftThreshold, Tanh
from bregmod.data import phantom
from bregmod.errors import DomainError, ShapeError, SolverError
from bregmod.network import Conv2d, Dense, Sequential
from bregmod.problem import SolverWarning
from bregmod.regularizers import L1, SquaredL2, TotalVariation
from bregmod.theory import (
    SourceConditionError,
    _loglog_slope,
    bregman_noise,
    check_bound,
    error_bound,
    rate_experiment,
    source_element,
    source_solution,
)


def relu_problem(seed: int = 0, m: int = 30, n: int = 12):
    """A ReLU layer (m > n), J = ½‖·‖², the minimal-norm v† supported where f > 0.3 (so the
    Burbea–Rao part vanishes for small α), and a noise direction into dom Ψ where f = 0."""
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((m, n))
    net = Dense(W, rng.standard_normal(m) + 1.0, ReLU())
    u_true = 0.3 * rng.standard_normal(n)
    f = net(u_true)
    v = source_element(net, SquaredL2(), u_true, support=f > 0.3)
    d = rng.standard_normal(m)
    d[f == 0] = np.abs(d[f == 0])
    return net, u_true, v, d, f


# --- the bound ----------------------------------------------------------------------------------


def test_error_bound_relu_classical_and_infinite_entries():
    net = Dense(np.eye(3), activation=ReLU())
    f_delta = np.array([1.0, 0.5, 0.0])
    v = np.array([2.0, -1.0, 0.0])
    alpha, delta = 0.1, 0.2
    terms = error_bound(net, f_delta, v, alpha, delta)
    assert terms.classical == pytest.approx(2 * delta**2 / alpha + alpha * 5.0, rel=1e-14)
    assert terms.burbea_rao == 0.0 and terms.bound == terms.classical
    assert terms.infinite_entries == ()
    # f^δ + αv leaves [0, ∞) at entry 1 (0.5 − 0.6) and f^δ − αv at entry 2 (0 − 1e-4)
    terms = error_bound(net, f_delta, np.array([2.0, -6.0, 1e-3]), alpha, delta)
    assert terms.burbea_rao == np.inf and terms.bound == np.inf
    assert terms.infinite_entries == (1, 2)


def test_error_bound_tanh_and_soft_threshold_against_closed_forms():
    rng = np.random.default_rng(1)
    f_delta = rng.uniform(-0.8, 0.8, 10)
    v = rng.standard_normal(10)
    alpha, delta = 1e-2, 0.05

    def psi_tanh(u):
        return 0.5 * ((1 + u) * np.log1p(u) + (1 - u) * np.log1p(-u)) - 0.5 * u * u

    net = Dense(np.eye(10), activation=Tanh())
    br = (
        np.sum(
            psi_tanh(f_delta + alpha * v) + psi_tanh(f_delta - alpha * v) - 2 * psi_tanh(f_delta)
        )
        / alpha
    )
    terms = error_bound(net, f_delta, v, alpha, delta)
    assert terms.burbea_rao == pytest.approx(br, rel=1e-8)
    # second-order Taylor: Ψ''(u) = u²/(1 − u²), so BR ≈ α Σ Ψ''(f) v² > 0
    taylor = alpha * np.sum(f_delta**2 / (1 - f_delta**2) * v**2)
    assert terms.burbea_rao > 0
    assert terms.burbea_rao == pytest.approx(taylor, rel=2e-2)

    theta = 0.3
    net = Dense(np.eye(10), activation=SoftThreshold(theta))
    br = (
        theta
        * np.sum(np.abs(f_delta + alpha * v) + np.abs(f_delta - alpha * v) - 2 * np.abs(f_delta))
        / alpha
    )
    assert error_bound(net, f_delta, v, alpha, delta).burbea_rao == pytest.approx(br, abs=1e-12)


@pytest.mark.parametrize("activation", [ReLU(), Tanh(), SoftThreshold(0.2), Sigmoid()])
def test_derivation_is_an_identity_with_three_bregman_gaps(activation):
    """Steps 1–3 of the module docstring as an identity, for any u and v (no solve, no premise):

        α (bound − ⟨p(u) − Wᵀv, u − u†⟩)
            = B_Ψ(σ(x), x†) + B_Ψ(f^δ − αv, x) + B_Ψ(f^δ + αv, x†)  ≥ 0,

    with x = W u + b, p(u) = Wᵀ(f^δ − σ(x))/α and δ² = B_Ψ(f^δ, x†). Hence the bound holds for
    the symmetric distance ⟨p_α − p†, u_α − u†⟩ (the talk's open "which subgradient"), and every
    factor of ``error_bound`` is pinned down."""
    rng = np.random.default_rng(8)
    for _ in range(100):
        m, n = 12, 5
        W = rng.standard_normal((m, n))
        net = Dense(W, rng.standard_normal(m), activation)
        u_true, u = rng.standard_normal(n), rng.standard_normal(n)
        x_true, x = W @ u_true + net.bias, W @ u + net.bias
        f_delta = activation.prox(x_true + 0.3 * rng.standard_normal(m))  # in dom Ψ
        alpha = 10 ** rng.uniform(-3, 0)
        room = np.minimum(f_delta - activation.domain.lo, activation.domain.hi - f_delta)
        v = rng.uniform(-0.9, 0.9, m) * np.minimum(room, 1.0) / alpha  # f^δ ± αv ∈ dom Ψ
        number = (W.T @ (f_delta - activation.prox(x)) / alpha - W.T @ v) @ (u - u_true)
        delta = np.sqrt(activation.bregman(f_delta, x_true))
        bound = error_bound(net, f_delta, v, alpha, delta).bound
        gaps = (
            activation.bregman(activation.prox(x), x_true)
            + activation.bregman(f_delta - alpha * v, x)
            + activation.bregman(f_delta + alpha * v, x_true)
        )
        scale = alpha * (abs(bound) + abs(number)) + gaps
        assert alpha * (bound - number) == pytest.approx(gaps, abs=1e-11 * scale)


def test_error_bound_rejects_data_outside_the_domain():
    net = Dense(np.eye(2), activation=ReLU())
    with pytest.raises(DomainError, match="f_delta is outside the domain"):
        error_bound(net, [1.0, -0.5], [0.0, 0.0], 0.1, 0.1)
    with pytest.raises(ValueError, match="alpha must be a finite positive number"):
        error_bound(net, [1.0, 0.5], [0.0, 0.0], -1.0, 0.1)


# --- noise --------------------------------------------------------------------------------------


@pytest.mark.parametrize("activation", [ReLU(), Tanh(), SoftThreshold(0.2), Sigmoid(), Identity()])
@pytest.mark.parametrize("delta", [1e-5, 1e-3, 3e-2])
def test_bregman_noise_hits_the_level(activation, delta):
    # δ = 1e-5 failed for Tanh and Sigmoid while their penalties were differences of O(1)
    # entropy terms (relative rounding ~1e-16/δ² > rtol = 1e-10 below δ ≈ 1e-3)
    rng = np.random.default_rng(2)
    W = rng.standard_normal((15, 6)) / 3
    net = Dense(W, rng.standard_normal(15), activation)
    u_true = rng.standard_normal(6)
    x = W @ u_true + net.bias
    f = activation.prox(x)
    d = rng.standard_normal(15)
    if activation == ReLU():
        d[f == 0] = np.abs(d[f == 0])
    f_delta = bregman_noise(net, u_true, delta, d)
    assert activation.bregman(f_delta, x) == pytest.approx(delta**2, rel=1e-10)
    t = np.median((f_delta - f) / d)
    np.testing.assert_allclose(f_delta, f + t * d, rtol=0, atol=1e-15)  # on the ray f + t d
    if activation == ReLU():  # B written out: ½‖y − x₊‖² + ⟨x₋, y⟩
        relu = 0.5 * np.sum((f_delta - np.maximum(x, 0)) ** 2) + np.maximum(-x, 0) @ f_delta
        assert relu == pytest.approx(delta**2, rel=1e-10)
    if activation == Identity():  # B = ½t²‖d‖²
        assert t == pytest.approx(np.sqrt(2) * delta / np.linalg.norm(d), rel=1e-9)


def test_bregman_noise_errors_name_the_limit():
    # the remaining limit is the data: f^δ rounded to float64 moves B by a relative
    # ~eps·|f|/δ, here 7e-9 even for the exact penalty ½(y − x)² of Identity
    net = Dense(np.eye(3), activation=Identity())
    with pytest.raises(SolverError, match=r"for Identity at δ = 1e-08: the rounding of f\^δ"):
        bregman_noise(net, np.array([0.3, -0.7, 0.9]), 1e-8, [1.0, 2.0, -0.5])
    net = Dense(np.eye(3), np.array([1.0, -1.0, 0.5]), ReLU())  # f = (1, 0, 0.5)
    with pytest.raises(DomainError, match=r"leaves dom Ψ = \[0, inf\) of ReLU at t = 0 "):
        bregman_noise(net, np.zeros(3), 0.1, [1.0, -1.0, 0.0])
    # tanh: f + t d reaches 1 before B = δ² for a large δ
    net = Dense(np.eye(2), activation=Tanh())
    with pytest.raises(DomainError, match=r"before B_Ψ\(f\^δ, W u† \+ b\) reaches δ² = 100.*δ ≤"):
        bregman_noise(net, np.zeros(2), 10.0, [1.0, 0.0])
    net_softmax = Dense(np.eye(3), activation=Softmax())
    with pytest.raises(DomainError, match="each vector of the direction must sum to 0"):
        bregman_noise(net_softmax, np.zeros(3), 0.1, [1.0, 0.0, 0.0])
    f_delta = bregman_noise(net_softmax, np.zeros(3), 0.1, [1.0, -0.5, -0.5])
    assert Softmax().bregman(f_delta, np.zeros(3)) == pytest.approx(0.01, rel=1e-10)
    with pytest.raises(ValueError, match="direction is zero"):
        bregman_noise(net, np.zeros(2), 0.1, [0.0, 0.0])
    with pytest.raises(ValueError, match="delta must be a finite positive number"):
        bregman_noise(net, np.zeros(2), 0.0, [1.0, 0.0])
    with pytest.raises(ShapeError, match=r"direction must have shape \(2,\)"):
        bregman_noise(net, np.zeros(2), 0.1, [1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="one layer"):
        bregman_noise(Sequential(net, net), np.zeros(2), 0.1, [1.0, 0.0])
    with pytest.raises(TypeError, match="network must be a bregmod network"):
        bregman_noise(np.eye(2), np.zeros(2), 0.1, [1.0, 0.0])


# --- source elements ----------------------------------------------------------------------------


def test_source_element_l2_recovers_the_unique_element():
    rng = np.random.default_rng(3)
    W = rng.standard_normal((8, 20))  # m < n: Wᵀv = u† has at most one solution
    net = Dense(W, activation=ReLU())
    v0 = rng.standard_normal(8)
    v = source_element(net, SquaredL2(), W.T @ v0)
    np.testing.assert_allclose(v, v0, atol=1e-6)
    with pytest.raises(
        SourceConditionError,
        match=r"source condition fails for SquaredL2.*"
        r"min_v dist\(Wᵀv, ∂J\(u†\)\) = [0-9.e+-]+ > tol/2",
    ):
        source_element(net, SquaredL2(), rng.standard_normal(20))


def test_source_element_l1_and_weighted_sum_closed_forms():
    # W = I: v ∈ ∂J(u†) itself, so the minimal-norm element is known entrywise.
    u_true = np.array([1.5, 0.0, -2.0, 0.0, 0.3])
    net = Dense(np.eye(5), activation=SoftThreshold(0.1))
    np.testing.assert_allclose(source_element(net, L1(), u_true), np.sign(u_true), atol=1e-7)
    J = L1() + 0.5 * SquaredL2()
    expected = np.sign(u_true) + 0.5 * u_true
    np.testing.assert_allclose(source_element(net, J, u_true), expected, atol=1e-7)
    # forbidding v on a support entry of u† makes the condition fail
    support = np.array([True, True, False, True, True])
    with pytest.raises(SourceConditionError, match="supported on the 4 allowed entries"):
        source_element(net, L1(), u_true, support=support)


def test_source_element_tv_is_feasible_and_no_larger_than_a_known_subgradient():
    u_true = np.zeros((5, 5))
    u_true[1:4, 2:4] = 1.0
    J = TotalVariation((5, 5))
    net = Dense(np.eye(25), activation=Tanh(), in_shape=(5, 5))
    v = source_element(net, J, u_true)
    assert J.in_subdifferential(v, u_true, tol=1e-6).is_member
    assert np.linalg.norm(v) <= np.linalg.norm(J.subgradient(u_true)) + 1e-7


def test_source_element_tv_fails_for_a_wide_dense_layer():
    # m = n/2 rows: range(Wᵀ) misses ∂TV(u†) for the phantom (the talk's 512 × 4096 case is wider)
    W = np.random.default_rng(6).standard_normal((32, 64))
    net = Dense(W, activation=ReLU(), in_shape=(8, 8))
    with pytest.raises(SourceConditionError, match=r"fails for TotalVariation\(shape=\(8, 8\)\)"):
        source_element(net, TotalVariation((8, 8)), phantom(8))


def test_source_element_rejects_bad_input():
    net = Dense(np.eye(3), activation=ReLU())
    with pytest.raises(ValueError, match="support is empty"):
        source_element(net, SquaredL2(), np.ones(3), support=np.zeros(3, dtype=bool))
    with pytest.raises(ShapeError, match="support must be a boolean mask with 3 entries"):
        source_element(net, SquaredL2(), np.ones(3), support=[1, 0, 1])
    with pytest.raises(TypeError, match="J must be a bregmod Regularizer"):
        source_element(net, "l2", np.ones(3))
    with pytest.raises(ShapeError, match=r"u_true must have shape \(3,\)"):
        source_element(net, SquaredL2(), np.ones(4))


def test_source_solution_by_design():
    rng = np.random.default_rng(4)
    W = rng.standard_normal((6, 15))
    net = Dense(W, activation=ReLU())
    v0 = rng.standard_normal(6)
    u_true, v = source_solution(net, SquaredL2(), 2 * W.T @ v0)
    np.testing.assert_allclose(u_true, W.T @ v0, rtol=1e-14)
    np.testing.assert_allclose(v, v0, rtol=1e-10)
    # ℓ1 needs Wᵀ onto: m ≥ n
    W = rng.standard_normal((20, 8))
    net = Dense(W, activation=ReLU())
    u_true, v = source_solution(net, L1(), 2 * rng.standard_normal(8))
    assert (u_true == 0).any() and (u_true != 0).any()
    assert L1().in_subdifferential(W.T @ v, u_true, tol=1e-10).is_member
    with pytest.raises(SourceConditionError, match="is not in the range of Wᵀ"):
        source_solution(Dense(W.T, activation=ReLU()), L1(), 2 * rng.standard_normal(20))


# --- the check ----------------------------------------------------------------------------------


def test_identity_l2_matches_the_closed_form_tikhonov_solution():
    rng = np.random.default_rng(5)
    W = rng.standard_normal((12, 5))
    b = rng.standard_normal(12)
    net = Dense(W, b, Identity())
    u_true, v = source_solution(net, SquaredL2(), 2 * W.T @ rng.standard_normal(12))
    delta, alpha = 0.05, 0.02
    f_delta = bregman_noise(net, u_true, delta, rng.standard_normal(12))
    check = check_bound(net, SquaredL2(), u_true, v, f_delta, delta, alpha)
    u_alpha = np.linalg.solve(W.T @ W + alpha * np.eye(5), W.T @ (f_delta - b))
    np.testing.assert_allclose(check.u_alpha, u_alpha, rtol=1e-8)
    error = np.sum((u_alpha - u_true) ** 2)
    assert check.d_j == pytest.approx(error, rel=1e-6)  # D^sym of ½‖·‖² is ‖u_α − u†‖²
    assert check.d_j_talk == pytest.approx(error / 2, rel=1e-6)
    assert check.d_j_source == pytest.approx(error / 2, rel=1e-6)
    assert check.noise_level == pytest.approx(0.5 * np.sum((f_delta - W @ u_true - b) ** 2))
    assert check.bound == pytest.approx(2 * delta**2 / alpha + alpha * v @ v, rel=1e-12)
    assert check.verdict == "verified" and check.holds


def _random_case(kind: str, seed: int):
    """(net, J, u†, v†, noise direction) of a random size for the randomized check."""
    rng = np.random.default_rng(seed)
    m, n = int(rng.integers(20, 40)), int(rng.integers(5, 12))
    W = rng.standard_normal((m, n)) / np.sqrt(n)
    b = 0.5 * rng.standard_normal(m)
    activation, J = {
        "tanh-l1": (Tanh(), L1()),
        "soft-l1": (SoftThreshold(0.2), L1()),
        "sigmoid-l1+l2": (Sigmoid(), L1() + 0.5 * SquaredL2()),
        "tanh-tv": (Tanh(), TotalVariation((4, 4))),
    }[kind]
    if kind == "tanh-tv":
        W = rng.standard_normal((m + 16, 16)) / 4
        b = 0.3 * rng.standard_normal(m + 16)
        net = Dense(W, b, activation, in_shape=(4, 4))
        u_true = np.zeros((4, 4))
        u_true[1:3, 1:4] = 1.0
        v = source_element(net, J, u_true)
    else:
        net = Dense(W, b, activation)
        u_true, _ = source_solution(net, J, 1.5 * rng.standard_normal(n))
        v = source_element(net, J, u_true)
    return net, J, u_true, v, rng.standard_normal(W.shape[0])


@pytest.mark.parametrize("kind", ["relu-l2", "tanh-l1", "soft-l1", "sigmoid-l1+l2", "tanh-tv"])
@pytest.mark.parametrize("seed", [0, 1])
def test_realised_distance_never_exceeds_the_bound(kind, seed):
    if kind == "relu-l2":
        net, u_true, v, d, _ = relu_problem(seed)
        J = SquaredL2()
    else:
        net, J, u_true, v, d = _random_case(kind, seed)
    zero_tol = 1e-6 if kind == "tanh-tv" else 1e-10
    for delta in (1e-4, 3e-2):
        f_delta = bregman_noise(net, u_true, delta, d)
        alpha = delta * np.sqrt(2) / np.linalg.norm(v)
        check = check_bound(net, J, u_true, v, f_delta, delta, alpha, zero_tol=zero_tol)
        assert check.holds, check.summary()
        assert check.d_j <= check.bound + check.solver_tolerance
        assert check.d_j == pytest.approx(check.d_j_talk + check.d_j_source)
        # both parts are Bregman distances up to the tolerance term
        assert min(check.d_j_talk, check.d_j_source) >= -check.solver_tolerance
        if np.isfinite(check.bound):
            assert check.verdict == "verified"
        else:
            assert check.verdict.startswith("vacuous") and check.infinite_entries
        if kind == "tanh-l1":
            assert check.burbea_rao > 0  # tanh: the Burbea–Rao part does not vanish


def test_unrestricted_relu_source_element_makes_the_bound_vacuous():
    net, u_true, _, d, f = relu_problem(0)
    v = source_element(net, SquaredL2(), u_true)  # not zero where f = 0
    delta = 1e-3
    f_delta = bregman_noise(net, u_true, delta, d)
    check = check_bound(net, SquaredL2(), u_true, v, f_delta, delta, 1e-2)
    assert check.verdict.startswith("vacuous") and check.bound == np.inf
    outside = (f_delta + 1e-2 * v < 0) | (f_delta - 1e-2 * v < 0)
    assert check.infinite_entries == tuple(np.flatnonzero(outside))
    assert "Burbea–Rao part infinite at" in check.summary()


def test_convolutional_layer_shapes():
    rng = np.random.default_rng(7)
    net = Conv2d(
        rng.standard_normal((3, 1, 3, 3)) / 3,
        [0.1, 0.2, 0.3],
        SoftThreshold(0.05),
        in_shape=(1, 5, 5),
        padding=1,
    )
    u_true, _ = source_solution(net, SquaredL2(), rng.standard_normal((1, 5, 5)))
    v = source_element(net, SquaredL2(), u_true)
    f_delta = bregman_noise(net, u_true, 1e-2, rng.standard_normal((3, 5, 5)))
    assert f_delta.shape == (3, 5, 5)
    check = check_bound(net, SquaredL2(), u_true, v, f_delta, 1e-2, 1e-2)
    assert check.u_alpha.shape == (1, 5, 5)
    assert check.verdict == "verified", check.summary()


def test_noise_above_delta_is_a_violated_premise_and_breaks_the_inequality():
    net, u_true, v, d, _ = relu_problem(0)
    f_delta = bregman_noise(net, u_true, 0.2, d)  # true level 0.2
    delta = 1e-5  # claimed
    check = check_bound(
        net, SquaredL2(), u_true, v, f_delta, delta, delta * np.sqrt(2) / np.linalg.norm(v)
    )
    assert check.verdict.startswith("premise violated: noise level B_Ψ(f^δ, W u† + b) = 0.04")
    assert not check.holds
    assert check.d_j > check.bound  # the conclusion really fails: "verified" would be wrong
    assert "VERIFIED" not in check.summary().upper().replace("PREMISE VIOLATED", "")


def test_violated_source_condition_is_reported_and_breaks_the_inequality():
    net, u_true, _, d, _ = relu_problem(1)
    delta = 1e-3
    f_delta = bregman_noise(net, u_true, delta, d)
    v = np.zeros(net.bias.size)  # claims 0 ∈ ∂J(u†) = {u†}: false
    check = check_bound(net, SquaredL2(), u_true, v, f_delta, delta, 1.0)
    assert check.verdict.startswith("premise violated: source condition: dist(Wᵀv†, ∂J(u†)) =")
    assert check.source_residual == pytest.approx(np.linalg.norm(u_true), rel=1e-12)
    assert not check.holds
    assert check.d_j_talk > check.bound  # D_J(u†, u_α) exceeds 2δ²/α without the premise


def test_inaccurate_solve_is_inconclusive_not_verified():
    net, u_true, v, d, _ = relu_problem(2)
    delta = 1e-2
    f_delta = bregman_noise(net, u_true, delta, d)
    alpha = delta * np.sqrt(2) / np.linalg.norm(v)
    with pytest.warns(SolverWarning):
        check = check_bound(
            net,
            SquaredL2(),
            u_true,
            v,
            f_delta,
            delta,
            alpha,
            solver="pdhg",
            polish=0,
            solver_options={"max_iter": 2},
        )
    assert check.solver_status == "max_iter"
    assert check.optimality_residual > 1.0
    assert check.verdict.startswith("inconclusive: |D_J^sym − bound|")
    assert not check.holds


def test_check_bound_rejects_bad_input():
    net, u_true, v, d, f = relu_problem(0)
    J = SquaredL2()
    with pytest.raises(DomainError, match="f_delta is outside the domain"):
        check_bound(net, J, u_true, v, f - 1.0, 0.1, 0.1)
    with pytest.raises(ValueError, match="delta must be a finite positive number"):
        check_bound(net, J, u_true, v, f, np.nan, 0.1)
    with pytest.raises(ValueError, match="polish must be a number of steps ≥ 0"):
        check_bound(net, J, u_true, v, f, 0.1, 0.1, polish=-1)
    with pytest.raises(ShapeError, match=r"v must have shape \(30,\)"):
        check_bound(net, J, u_true, v[:-1], f, 0.1, 0.1)


def test_summary_reports_terms_and_verdict():
    net, u_true, v, d, _ = relu_problem(0)
    f_delta = bregman_noise(net, u_true, 0.01, d)
    check = check_bound(net, SquaredL2(), u_true, v, f_delta, 0.01, 0.01)
    text = check.summary()
    assert text.startswith("error estimate at δ = 0.01, α = 0.01: verified")
    assert f"{check.bound:.6g}" in text and "Burbea–Rao = 0" in text


# --- rates --------------------------------------------------------------------------------------


def test_relu_rate_two_decades(tmp_path):
    net, u_true, v, d, _ = relu_problem(0)
    deltas = np.logspace(-4, -2, 5)
    table = rate_experiment(net, SquaredL2(), u_true, v, d, deltas, plot=tmp_path / "rate.png")
    constant = 2 * np.sqrt(2) * np.linalg.norm(v)
    for row, check in zip(table.rows, table.checks, strict=True):
        assert row.alpha == pytest.approx(row.delta * np.sqrt(2) / np.linalg.norm(v))
        assert check.burbea_rao == 0.0
        assert row.d_j <= constant * row.delta  # the talk's D_J ≤ 2√2‖v†‖δ
        assert check.verdict == "verified"
    assert table.bound_slope == pytest.approx(1.0, abs=1e-9)  # bound = 2√2‖v†‖δ exactly
    assert table.slope is not None and np.isfinite(table.slope)  # observed, not asserted ≥ 1
    print(f"observed ReLU/ℓ2 slope of D_J: {table.slope:.3f}")
    assert (tmp_path / "rate.png").stat().st_size > 1000
    assert "fitted log–log slope: D_J" in str(table)


def test_loglog_slope_against_a_power_law():
    delta = np.logspace(-3, -1, 7)
    assert _loglog_slope(delta, 0.3 * delta**1.7) == pytest.approx(1.7, rel=1e-12)
    d_j = 0.3 * delta**1.7
    d_j[0] = -1e-12  # a rounding-level negative value is left out, not logged
    assert _loglog_slope(delta, d_j) == pytest.approx(1.7, rel=1e-12)
    assert _loglog_slope(delta[:2], np.array([0.0, 1.0])) is None


def test_rate_experiment_rejects_bad_input(monkeypatch, tmp_path):
    net, u_true, v, d, _ = relu_problem(0)
    with pytest.raises(ValueError, match="at least two distinct positive noise levels"):
        rate_experiment(net, SquaredL2(), u_true, v, d, [1e-3])
    with pytest.raises(ValueError, match=r"v† = 0 \(u† minimises J\)"):
        rate_experiment(net, SquaredL2(), u_true, 0 * v, d, [1e-3, 1e-2])
    table = rate_experiment(net, SquaredL2(), u_true, v, d, [1e-3, 1e-2])
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"needs matplotlib: pip install 'bregmod\[plot\]'"):
        table.plot(tmp_path / "x.png")


@pytest.fixture(autouse=True)
def _no_cvxpy_inaccuracy_noise():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Solution may be inaccurate", UserWarning)
        yield


def test_rate_plot_marks_rows_with_nonpositive_distance_instead_of_dropping_them(tmp_path,
                                                                               monkeypatch):
    # Issue 16, item 23: rows with D_J ≤ 0 (zero to rounding) vanished from the log plot.
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    from bregmod.theory import RateRow, RateTable

    saved = []
    original = Figure.savefig
    monkeypatch.setattr(Figure, "savefig",
                        lambda self, *a, **k: (saved.append(self), original(self, *a, **k))[1])
    rows = tuple(RateRow(d, d / 2, dj, b, dj / b) for d, dj, b in
                 [(1e-3, -7e-11, 0.28), (1e-2, -7e-10, 0.33), (1e-1, 1.2e-3, 1.1),
                  (1.0, 0.42, 9.8)])
    RateTable(rows, (), 2.55, 0.52, ()).plot(tmp_path / "rate.png")
    ax = saved[0].axes[0]
    by_label = {line.get_label(): line for line in ax.lines}
    realised = next(line for label, line in by_label.items() if label.startswith("$D_J$ realised"))
    np.testing.assert_array_equal(realised.get_xdata(), [1e-1, 1.0])
    assert "fitted to its 2 points > 0" in realised.get_label()  # the slope's basis is said
    marked = next(line for label, line in by_label.items() if "zero to rounding" in label)
    np.testing.assert_array_equal(marked.get_xdata(), [1e-3, 1e-2])
    assert np.all(marked.get_ydata() == pytest.approx(1.2e-4))  # a decade below the smallest
