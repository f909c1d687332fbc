"""Tests of bregmod.certificate against independent dense numpy truth.

The truth is built by hand from the layer weights (never from the lifted operators): the
residual layout of docs/math/lifted.md, Q = λKᵀK − ρ⁻¹I − M − Mᵀ, and H₀ = [[λKᵀK, −Wᵀ], [−W, I]]
restricted to the feasible set through the explicit parametrisation (u₀, z) ↦ u_j =
u₀ + Σ_{i≤j} V_i z_i, orthonormalised by QR (the certificate uses an SVD null space).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg as sla

from bregmod.activations import Identity, ReLU, Tanh
from bregmod.certificate import (
    DENSE_LIMIT,
    TOL_FACTOR,
    Certificate,
    certify,
    smallest_alpha,
    smallest_lambda,
    smallest_rho,
)
from bregmod.network import Conv2d, Dense, Residual, Sequential, ShallowSum

EPS = np.finfo(np.float64).eps


# --- independent dense truth ------------------------------------------------------------------


class Dense3:
    """Hand-built dense K, M, V, W of a residual chain u_j = u_{j−1} + V_j σ(W_j u_{j−1} + b_j),
    optionally followed by a folded affine output N = W_out u_L + b_out."""

    def __init__(self, Ws, Vs, W_out=None):
        n = Ws[0].shape[1]
        L = len(Ws)
        ms = [W.shape[0] for W in Ws]
        self.n, self.L = n, L
        self.n_u, self.n_z = (L + 1) * n, sum(ms)
        z_start = np.concatenate([[0], np.cumsum(ms)])
        self.M = np.zeros((self.n_u, self.n_u))
        self.V = np.zeros((self.n_u, self.n_z))
        self.W = np.zeros((self.n_z, self.n_u))
        for j in range(1, L + 1):
            rows = slice((j - 1) * n, j * n)
            zs = slice(z_start[j - 1], z_start[j])
            self.M[rows, (j - 1) * n : j * n] = -np.eye(n)
            self.M[rows, j * n : (j + 1) * n] = np.eye(n)
            self.V[rows, zs] = Vs[j - 1]
            self.W[zs, (j - 1) * n : j * n] = Ws[j - 1]
        last = np.eye(n) if W_out is None else W_out
        self.K = np.hstack([np.zeros((last.shape[0], L * n)), last])
        # feasible parametrisation (u0, z) -> (u, z)
        P = np.zeros((self.n_u + self.n_z, n + self.n_z))
        for j in range(L + 1):
            P[j * n : (j + 1) * n, :n] = np.eye(n)
            for i in range(1, j + 1):
                P[j * n : (j + 1) * n, n + z_start[i - 1] : n + z_start[i]] = Vs[i - 1]
        P[self.n_u :, n:] = np.eye(self.n_z)
        self.basis = np.linalg.qr(P)[0]

    def Q(self, lam, rho):
        return lam * self.K.T @ self.K - np.eye(self.n_u) / rho - self.M - self.M.T

    def H0(self, lam):
        return np.block([[lam * self.K.T @ self.K, -self.W.T], [-self.W, np.eye(self.n_z)]])

    def A(self):
        return np.hstack([self.M, -self.V])

    def restricted_min(self, lam):
        return np.linalg.eigvalsh(self.basis.T @ self.H0(lam) @ self.basis)[0]


def residual_chain(rng, depth, n=3, m=2, v="wt", weight=1.0, out=None):
    """A random residual chain (lifted) and its hand-built dense truth."""
    Ws = [weight * rng.standard_normal((m, n)) for _ in range(depth)]
    if v == "wt":
        Vs = [W.T for W in Ws]
    elif v == "minus_wt":
        Vs = [-W.T for W in Ws]
    else:
        Vs = [rng.standard_normal((n, m)) for _ in range(depth)]
    layers = [
        Residual(W, rng.standard_normal(m), ReLU(), V=None if v == "wt" else V)
        for W, V in zip(Ws, Vs, strict=True)
    ]
    W_out = None
    if out is not None:
        W_out = rng.standard_normal((out, n))
        layers.append(Dense(W_out, np.zeros(out), Identity()))
    return Sequential(*layers).lift(), Dense3(Ws, Vs, W_out)


def paper_rho_closed_form(depth):
    """1 / λ_min(λKᵀK − M − Mᵀ) at λ = 1: λ_min = 4 sin²(π / (2(2L + 3)))."""
    return 1.0 / (4.0 * math.sin(math.pi / (2 * (2 * depth + 3))) ** 2)


# --- the compiled layout the structured path relies on -----------------------------------------


def test_lifted_residual_layout_matches_hand_built_matrices():
    lifted, truth = residual_chain(np.random.default_rng(0), depth=3, out=2)
    for name in ("K", "M", "V", "W"):
        np.testing.assert_array_equal(getattr(lifted, name).to_dense(), getattr(truth, name))
    assert lifted.v_is_wt


# --- paper certificate -----------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_paper_matches_dense_numpy(seed):
    rng = np.random.default_rng(seed)
    lifted, truth = residual_chain(rng, depth=int(rng.integers(1, 5)), n=int(rng.integers(2, 5)))
    lam, rho = rng.uniform(0.2, 3.0), 10 ** rng.uniform(-1, 3)
    cert = certify(lifted, lam, rho, method="paper")
    expected = np.linalg.eigvalsh(truth.Q(lam, rho))[0]
    assert cert.method == "paper"
    assert "T ⊗ I" in cert.solver  # identity blocks: the scalar pattern was used
    assert cert.min_eig == pytest.approx(expected, abs=1e-12)
    assert cert.certified == (expected >= 0)
    assert cert.dimension == truth.n_u


@pytest.mark.parametrize("dense_limit, solver", [(2000, "dense eigh"), (0, "eigsh")])
def test_paper_with_folded_output_matches_dense_numpy(dense_limit, solver):
    # a trailing affine layer makes K = [0 … 0 W_out]: no scalar pattern, general path
    lifted, truth = residual_chain(np.random.default_rng(7), depth=3, n=4, out=2)
    lam, rho = 2.5, 30.0
    cert = certify(lifted, lam, rho, method="paper", dense_limit=dense_limit)
    assert solver in cert.solver
    Q = truth.Q(lam, rho)
    assert cert.min_eig == pytest.approx(np.linalg.eigvalsh(Q)[0], abs=1e-9)
    assert not cert.certified
    w = cert.witness
    assert w.shape == (truth.n_u,)
    assert np.linalg.norm(w) == pytest.approx(1.0)
    assert w @ Q @ w == pytest.approx(cert.min_eig, abs=1e-9)
    assert w @ Q @ w < 0


def test_paper_refuses_with_witness_along_which_q_decreases():
    lifted, truth = residual_chain(np.random.default_rng(1), depth=5, n=3)
    lam, rho = 1.0, 5.0
    cert = certify(lifted, lam, rho, method="paper")
    assert not cert.certified and not cert
    w = cert.witness
    Q = truth.Q(lam, rho)
    assert w @ Q @ w == pytest.approx(cert.min_eig, abs=1e-12)
    assert w @ Q @ w < -1e-3
    # the block carrying most of the witness is the one named
    norms = [np.linalg.norm(w[blk.slice]) for blk in lifted.u_blocks]
    assert cert.witness_block == lifted.u_blocks[int(np.argmax(norms))].name
    assert cert.mu is None


def test_paper_refuses_networks_without_v_equal_wt():
    lifted, _ = residual_chain(np.random.default_rng(2), depth=2, v="random")
    with pytest.raises(ValueError, match=r"method='paper' needs V = Wᵀ.*use method='exact'"):
        certify(lifted, 1.0, 10.0, method="paper")
    ff = Sequential(
        Dense(np.ones((2, 2)), activation=ReLU()), Dense(np.ones((2, 2)), activation=ReLU())
    )
    with pytest.raises(ValueError, match="needs V = Wᵀ"):
        smallest_rho(ff.lift(), 1.0, method="paper")


# --- tolerance policy ------------------------------------------------------------------------


def test_tolerance_passes_rounding_noise_on_a_singular_psd_q_and_rejects_a_tiny_negative():
    lifted, truth = residual_chain(np.random.default_rng(3), depth=4)
    lam = 1.0
    P = truth.Q(lam, np.inf)  # λKᵀK − M − Mᵀ
    rho_star = 1.0 / np.linalg.eigvalsh(P)[0]
    at = certify(lifted, lam, rho_star, method="paper")
    # Q is PSD and singular at ρ*: the computed eigenvalue is rounding noise of either sign
    assert abs(at.min_eig) < 1e-14
    assert at.certified
    norm_M = np.linalg.norm(truth.M, 2)
    scale = lam * np.linalg.norm(truth.K, 2) ** 2 + 1 / rho_star + 2 * norm_M
    assert at.scale == pytest.approx(scale, rel=1e-9)
    assert at.tolerance == pytest.approx(TOL_FACTOR * truth.n_u * EPS * scale, rel=1e-9)
    assert at.tol_policy == "relative" and at.tol_factor == TOL_FACTOR
    assert at.tolerance > 1e-16
    # a truly indefinite Q, even barely (−1e-9·λ_min(P)), never passes
    below = certify(lifted, lam, rho_star / (1 + 1e-9), method="paper")
    assert below.min_eig == pytest.approx(-1e-9 / rho_star, rel=1e-3)
    assert not below.certified
    # an explicit absolute tolerance replaces the policy
    loose = certify(lifted, lam, rho_star / (1 + 1e-9), method="paper", tol=1e-6)
    assert loose.certified and loose.tol_policy == "absolute" and loose.tolerance == 1e-6
    assert loose.tol_factor is None


# --- exact certificate -----------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("v", ["wt", "random", "minus_wt"])
def test_exact_matches_dense_numpy(seed, v):
    rng = np.random.default_rng(seed)
    lifted, truth = residual_chain(rng, depth=int(rng.integers(1, 4)), v=v, weight=0.5)
    lam = rng.uniform(0.0, 3.0)
    cert = certify(lifted, lam, 10.0, method="exact")
    expected = truth.restricted_min(lam)
    assert cert.min_eig == pytest.approx(expected, abs=1e-10)
    assert cert.certified == (expected >= 0)
    assert cert.dimension == truth.n_u + truth.n_z


def test_exact_does_not_depend_on_rho():
    lifted, _ = residual_chain(np.random.default_rng(4), depth=3, v="random")
    values = {certify(lifted, 0.7, rho).min_eig for rho in (1e-3, 1.0, 1e4)}
    assert max(values) - min(values) < 1e-12


def test_exact_holds_for_every_residual_net_with_v_equal_wt_at_lam_one():
    # on {M u = V z}, V = Wᵀ: xᵀH₀x = (λ−1)‖u_L‖² + ‖u₀‖² + Σ‖W_jᵀ z_j‖² + ‖z‖² (telescoping)
    rng = np.random.default_rng(5)
    for _ in range(5):
        lifted, truth = residual_chain(rng, depth=4, weight=3.0)
        cert = certify(lifted, 1.0, 1.0)
        assert cert.certified
        y = rng.standard_normal(truth.basis.shape[1])
        x = truth.basis @ y
        u, z = x[: truth.n_u], x[truth.n_u :]
        # V is block diagonal with disjoint row blocks, so Σ‖V_j z_j‖² = ‖V z‖²
        identity = np.linalg.norm(u[: truth.n]) ** 2 + np.linalg.norm(truth.V @ z) ** 2 + z @ z
        assert x @ truth.H0(1.0) @ x == pytest.approx(identity, rel=1e-10)


@pytest.mark.parametrize("seed", range(6))
def test_exact_contains_paper(seed):
    # on {M u = V z} with V = Wᵀ: xᵀH₀x = Δuᵀ(Q + ρ⁻¹I)Δu + ‖Δz‖² ≥ min(λ_min(Q) + 1/ρ, 1)‖x‖²
    rng = np.random.default_rng(100 + seed)
    lifted, _ = residual_chain(rng, depth=int(rng.integers(1, 6)), weight=2.0)
    for lam, rho in zip(rng.uniform(0.3, 3.0, 5), 10 ** rng.uniform(0, 3, 5), strict=True):
        paper = certify(lifted, lam, rho, method="paper")
        exact = certify(lifted, lam, rho, method="exact")
        assert exact.min_eig >= min(paper.min_eig + 1 / rho, 1.0) - 1e-10
        if paper.certified:
            assert exact.certified


def test_exact_refuses_an_indefinite_example_with_a_feasible_decreasing_witness():
    # u_j = u_{j−1} − W_jᵀ σ(…) (the talk's second example) with ‖W‖ > 1: indefinite on ker K
    lifted, truth = residual_chain(np.random.default_rng(6), depth=3, v="minus_wt", weight=2.0)
    lam = 1.0
    cert = certify(lifted, lam, 10.0)
    assert not cert.certified
    x = cert.witness
    assert x.shape == (truth.n_u + truth.n_z,)
    assert np.linalg.norm(x) == pytest.approx(1.0)
    np.testing.assert_allclose(truth.A() @ x, 0.0, atol=1e-12)  # feasible: M u = V z
    quadratic = 0.5 * x @ truth.H0(lam) @ x  # the quadratic part of E along x
    assert quadratic == pytest.approx(0.5 * cert.min_eig, abs=1e-12)
    assert quadratic < -0.1
    names = [blk.name for blk in lifted.u_blocks + lifted.z_blocks]
    assert cert.witness_block in names
    # no λ helps: the form is indefinite on the feasible directions the output does not see
    threshold = smallest_lambda(lifted, 10.0)
    assert threshold.value is None
    Z = truth.basis @ sla.null_space(truth.K @ truth.basis[: truth.n_u])
    on_ker_K = np.linalg.eigvalsh(Z.T @ truth.H0(0.0) @ Z)[0]
    assert on_ker_K < -1.0
    assert f"smallest eigenvalue is {on_ker_K:.3g}" in threshold.reason
    assert "no λ certifies at ρ = 10: on ker K" in threshold.reason


def test_paper_smallest_lambda_is_none_when_q_is_indefinite_on_ker_k():
    lifted, truth = residual_chain(np.random.default_rng(19), depth=3)
    rho = 0.1  # on ker K = {u_L = 0}: −(M + Mᵀ) − ρ⁻¹I has smallest eigenvalue < 0
    head = slice(0, 3 * truth.n)
    on_ker_K = np.linalg.eigvalsh(-(truth.M + truth.M.T)[head, head])[0] - 1 / rho
    result = smallest_lambda(lifted, rho, method="paper")
    assert result.value is None
    assert f"smallest eigenvalue is {on_ker_K:.3g}" in result.reason
    assert "λ alone cannot help" in certify(lifted, 1e3, rho, method="paper").advice
    assert smallest_lambda(lifted, 100.0, method="paper").value is not None


def test_exact_refuses_a_feed_forward_net_and_explains():
    rng = np.random.default_rng(8)
    W1, W2 = rng.standard_normal((3, 2)), rng.standard_normal((2, 3))
    lifted = Sequential(Dense(W1, activation=ReLU()), Dense(W2, activation=ReLU())).lift()
    cert = certify(lifted, 1.0, 1.0)
    assert not cert.certified
    # independent truth: z_j = u_j, H₀ with W = [[W1, 0, 0], [0, W2, 0]], K = [0, 0, I]
    W = np.zeros((5, 7))
    W[:3, :2], W[3:, 2:5] = W1, W2
    K = np.hstack([np.zeros((2, 5)), np.eye(2)])
    H0 = np.block([[K.T @ K, -W.T], [-W, np.eye(5)]])
    x = cert.witness
    np.testing.assert_allclose(x[2:7], x[7:], atol=1e-12)  # u₁ = z₁, u₂ = z₂
    assert x @ H0 @ x == pytest.approx(cert.min_eig, abs=1e-12)
    assert x @ H0 @ x < 0
    text = cert.explain()
    assert "NOT certified" in text and "H₀ = [[λKᵀK + αE₀, −Wᵀ], [−W, I]]" in text
    assert cert.witness_block in text and "no λ helps" in text and "V = Wᵀ" in text
    assert "smallest_alpha" in text


# --- Finsler's μ ------------------------------------------------------------------------------


def test_mu_makes_the_augmented_quadratic_psd_and_mu_min_is_tight():
    lifted, truth = residual_chain(np.random.default_rng(9), depth=3, weight=1.5)
    cert = certify(lifted, 1.0, 1.0)
    assert cert.certified and cert.mu_min > 0 and cert.mu == 2 * cert.mu_min
    H0, A = truth.H0(1.0), truth.A()
    assert np.linalg.eigvalsh(H0)[0] < -0.1  # H₀ alone is indefinite
    assert np.linalg.eigvalsh(H0 + cert.mu * A.T @ A)[0] >= -cert.tolerance
    assert np.linalg.eigvalsh(H0 + cert.mu_min * A.T @ A)[0] >= -1e-9
    assert np.linalg.eigvalsh(H0 + 0.99 * cert.mu_min * A.T @ A)[0] < -1e-6
    assert "μ_min" in cert.explain()


def test_mu_is_none_when_the_restricted_form_is_singular_and_coupled():
    # u₁ = u₀ (V = 0), K u = u₁, W = 1: on the feasible set E₂ = u₀² − 2 z u₀ + z² = (u₀ − z)²,
    # PSD and singular, but H₀ (1, 1, 1) = (−1, 1, 0) is not orthogonal to range Aᵀ
    lifted = Residual(np.ones((1, 1)), activation=ReLU(), V=np.zeros((1, 1))).lift()
    cert = certify(lifted, 1.0, 1.0)
    assert cert.certified and abs(cert.min_eig) < 1e-14
    assert cert.mu is None and cert.mu_min is None
    assert "no finite μ exists" in cert.mu_note
    assert "no finite μ" in cert.explain()


# --- smallest λ, smallest ρ ------------------------------------------------------------------

#: smallest ρ at λ = 1 (paper) for the talk's residual example, independent of the weights
DEPTH_TABLE = {1: 2.618034, 2: 5.048917, 5: 17.206857, 10: 53.682317, 20: 187.426224}


@pytest.mark.parametrize("depth", sorted(DEPTH_TABLE))
def test_smallest_rho_depth_table_of_the_talk_example(depth):
    rng = np.random.default_rng(depth)
    for n, m in ((3, 2), (5, 7)):  # Q does not depend on the weights or the width
        lifted, truth = residual_chain(rng, depth=depth, n=n, m=m)
        result = smallest_rho(lifted, 1.0, method="paper")
        assert result.parameter == "rho" and result.method == "paper"
        assert result.value == pytest.approx(paper_rho_closed_form(depth), rel=2e-6)
        assert result.value == pytest.approx(DEPTH_TABLE[depth], rel=2e-6)
        assert result.certificate.certified and result.certificate.rho == result.value
        assert np.linalg.eigvalsh(truth.Q(1.0, result.value / (1 + 1e-4)))[0] < 0


def test_smallest_rho_is_none_below_lam_l_over_l_plus_one():
    lifted, _ = residual_chain(np.random.default_rng(10), depth=4)
    result = smallest_rho(lifted, 0.79, method="paper")  # 4/5 = 0.8 is needed
    assert result.value is None
    assert "increase λ" in result.reason
    assert smallest_rho(lifted, 0.81, method="paper").value is not None


@pytest.mark.parametrize("method", ["paper", "exact"])
def test_smallest_lambda_is_the_threshold_of_the_dense_truth(method):
    lifted, truth = residual_chain(np.random.default_rng(11), depth=3, weight=1.2)
    rho = 50.0
    result = smallest_lambda(lifted, rho, method=method)
    lam = result.value
    assert lam is not None and result.certificate.lam == lam

    def min_eig(lam):
        if method == "paper":
            return np.linalg.eigvalsh(truth.Q(lam, rho))[0]
        return truth.restricted_min(lam)

    assert min_eig(lam) >= -1e-12
    assert min_eig(lam * (1 - 1e-4)) < 0
    below = certify(lifted, lam * (1 - 1e-3), rho, method=method)
    assert not below.certified and "increase" in below.advice and "λ" in below.advice


def test_smallest_lambda_is_zero_without_weights_and_paper_tends_to_l_over_l_plus_one():
    n = 2
    lifted = Sequential(*[Residual(np.zeros((1, n))) for _ in range(3)]).lift()
    zero = smallest_lambda(lifted, 1.0)
    assert zero.value == 0.0 and "λ = 0" in zero.reason
    lifted, _ = residual_chain(np.random.default_rng(12), depth=3)
    assert smallest_lambda(lifted, 1e9, method="paper").value == pytest.approx(0.75, rel=1e-5)


def test_smallest_rho_exact_is_zero_or_none():
    lifted, _ = residual_chain(np.random.default_rng(13), depth=2)
    every = smallest_rho(lifted, 1.0, method="exact")
    assert every.value == 0.0 and "every ρ > 0 certifies" in every.reason
    none = smallest_rho(lifted, 0.0, method="exact")
    assert none.value is None and "does not depend on ρ" in none.reason


# --- large residual networks -------------------------------------------------------------------


def test_deep_wide_residual_uses_the_scalar_pattern():
    rng = np.random.default_rng(14)
    depth, width = 20, 4096
    net = Sequential(*[Residual(rng.standard_normal((4, width))) for _ in range(depth)])
    lifted = net.lift()
    cert = certify(lifted, 1.0, 100.0, method="paper")
    assert "21×21 pattern T" in cert.solver and cert.dimension == 21 * width
    assert cert.min_eig == pytest.approx(1 / paper_rho_closed_form(depth) - 1 / 100.0, rel=1e-10)
    assert not cert.certified
    # the witness is t ⊗ e: Q w = λ_min w, checked with the operators
    w = cert.witness
    Qw = lifted.K.rmatvec(lifted.K.matvec(w)) - w / 100.0 - lifted.M.matvec(w) - lifted.M.rmatvec(w)
    np.testing.assert_allclose(Qw, cert.min_eig * w, atol=1e-12)
    assert smallest_rho(lifted, 1.0).value == pytest.approx(DEPTH_TABLE[20], rel=2e-6)


# --- explain and validation --------------------------------------------------------------------


def test_explain_states_check_result_tolerance_and_remedy():
    lifted, _ = residual_chain(np.random.default_rng(15), depth=2)
    failed = certify(lifted, 1.0, 1.0, method="paper")
    text = failed.explain()
    assert "Q = λKᵀK + αE₀ − ρ⁻¹I − M − Mᵀ ⪰ 0" in text and "λ = 1, ρ = 1, α = 0" in text
    assert "NOT certified" in text and f"{failed.min_eig:.6g}" in text
    assert "tolerance = 10·n·eps·scale" in text and failed.witness_block in text
    assert "increase ρ, λ or J's strong-convexity modulus α" in text
    passed = certify(lifted, 1.0, 100.0, method="paper").explain()
    assert "CERTIFIED" in passed and "To certify" not in passed


def test_certificate_is_a_rich_object():
    lifted, _ = residual_chain(np.random.default_rng(16), depth=1)
    cert = certify(lifted, 1.0, 100.0)
    assert isinstance(cert, Certificate) and bool(cert) is True
    assert cert.witness is None and cert.witness_block is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"lam": -1.0}, r"lam \(the data weight λ\) must be a finite number ≥ 0, got -1.0"),
        ({"lam": np.nan}, r"lam \(the data weight λ\) must be a finite number ≥ 0, got nan"),
        ({"lam": "a"}, r"lam \(the data weight λ\) must be a number ≥ 0, got 'a'"),
        ({"rho": 0.0}, r"rho \(the penalty weight ρ\) must be a finite positive number, got 0.0"),
        ({"rho": np.inf}, r"rho \(the penalty weight ρ\) must be a finite positive number"),
        (
            {"method": "fast"},
            r"unknown certificate method 'fast'; choose one of \('exact', 'paper'\)",
        ),
        ({"tol": -1e-3}, r"tol \(absolute eigenvalue tolerance\) must be a finite number ≥ 0"),
        ({"dense_limit": 1.5}, r"dense_limit must be an integer ≥ 0, got 1.5"),
        ({"alpha": -1.0}, r"alpha \(J's strong-convexity modulus α\) must be a finite number ≥ 0"),
    ],
)
def test_certify_rejects_bad_input(kwargs, message):
    lifted, _ = residual_chain(np.random.default_rng(17), depth=1)
    args = {"lam": 1.0, "rho": 1.0} | kwargs
    with pytest.raises(ValueError, match=message):
        certify(lifted, **args)


def test_threshold_functions_and_certify_reject_bad_input():
    lifted, _ = residual_chain(np.random.default_rng(18), depth=1)
    with pytest.raises(TypeError, match="expected a LiftedNetwork .* got dict"):
        certify({}, 1.0, 1.0)
    with pytest.raises(ValueError, match="rho .* must be a finite positive number, got -2.0"):
        smallest_lambda(lifted, -2.0)
    with pytest.raises(ValueError, match=r"lam \(the data weight λ\) must be a finite number ≥ 0"):
        smallest_rho(lifted, -1.0)
    with pytest.raises(ValueError, match="rtol must be a finite positive number"):
        smallest_rho(lifted, 1.0, rtol=0.0)
    with pytest.raises(ValueError, match="unknown certificate method"):
        smallest_lambda(lifted, 1.0, method="dense")


# --- J's strong convexity and the factorised path above dense_limit ----------------------------


def feed_forward_truth(layers_W, W_out=None):
    """Hand-built K, W and an orthonormal basis of {u_j = z_j} for a feed-forward chain
    u_j = σ(W_j u_{j−1} + b_j), optionally followed by a folded affine output W_out u_L."""
    sizes = [layers_W[0].shape[1]] + [W.shape[0] for W in layers_W]
    n_u, n_z = sum(sizes), sum(sizes[1:])
    starts = np.concatenate([[0], np.cumsum(sizes)])
    W = np.zeros((n_z, n_u))
    for j, Wj in enumerate(layers_W):
        W[starts[j + 1] - sizes[0] : starts[j + 2] - sizes[0], starts[j] : starts[j + 1]] = Wj
    last = np.eye(sizes[-1]) if W_out is None else W_out
    K = np.hstack([np.zeros((last.shape[0], n_u - sizes[-1])), last])
    P = np.zeros((n_u + n_z, sizes[0] + n_z))  # (u₀, z) ↦ (u₀, u = z, z)
    P[: sizes[0], : sizes[0]] = np.eye(sizes[0])
    P[sizes[0] : n_u, sizes[0] :] = np.eye(n_z)
    P[n_u:, sizes[0] :] = np.eye(n_z)
    return K, W, sizes[0], np.linalg.qr(P)[0]


def restricted_truth(K, W, n_0, basis, lam):
    """α ↦ λ_min(Bᵀ H₀(λ, α) B) with H₀ = [[λKᵀK + αE₀, −Wᵀ], [−W, I]]."""
    n_z, n_u = W.shape
    H = np.block([[lam * K.T @ K, -W.T], [-W, np.eye(n_z)]])
    E_0 = np.zeros(n_u + n_z)
    E_0[:n_0] = 1.0

    def smallest(alpha):
        return np.linalg.eigvalsh(basis.T @ (H + np.diag(alpha * E_0)) @ basis)[0]

    return smallest


def alpha_where(smallest, target):
    """The α with λ_min(α) = target (λ_min is nondecreasing in α), by bisection."""
    lo, hi = 0.0, 1.0
    while smallest(hi) < target:
        hi *= 2
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if smallest(mid) < target else (lo, mid)
    return hi


def chain_cases():
    """(name, lifted, λ, truth λ_min(α) at λ) of small chains: feed-forward (with and without
    a folded output), residual with V ≠ Wᵀ and V = Wᵀ, a convolution."""
    rng = np.random.default_rng(30)
    W1, W2 = rng.standard_normal((5, 3)), 0.4 * rng.standard_normal((4, 5))
    ff = Sequential(Dense(W1, activation=ReLU()), Dense(W2, activation=ReLU())).lift()
    W_out = rng.standard_normal((2, 4))
    ff_out = Sequential(
        Dense(W1, activation=ReLU()), Dense(W2, activation=ReLU()), Dense(W_out)
    ).lift()
    res, res_truth = residual_chain(np.random.default_rng(31), depth=2, v="random", weight=0.5)
    res_wt, res_wt_truth = residual_chain(np.random.default_rng(32), depth=2, weight=0.5)
    kernel = rng.standard_normal((2, 1, 3, 3))
    conv = Sequential(
        Conv2d(kernel, activation=ReLU(), in_shape=(1, 4, 4), padding=1),
        Dense(0.1 * rng.standard_normal((5, 32)), activation=ReLU(), in_shape=(2, 4, 4)),
    ).lift()
    conv_W1 = conv.W.blocks[0][0].to_dense()
    conv_W2 = conv.W.blocks[1][1].to_dense()

    def residual(truth, lam):
        E = np.zeros((truth.n_u + truth.n_z,) * 2)
        E[: truth.n, : truth.n] = np.eye(truth.n)
        B = truth.basis
        return lambda a: np.linalg.eigvalsh(B.T @ (truth.H0(lam) + a * E) @ B)[0]

    return [
        ("feed-forward", ff, 1.0, restricted_truth(*feed_forward_truth([W1, W2]), 1.0)),
        ("folded output", ff_out, 2.0, restricted_truth(*feed_forward_truth([W1, W2], W_out), 2.0)),
        ("residual V ≠ Wᵀ", res, 1.0, residual(res_truth, 1.0)),
        ("residual V = Wᵀ", res_wt, 0.3, residual(res_wt_truth, 0.3)),
        ("conv", conv, 1.0, restricted_truth(*feed_forward_truth([conv_W1, conv_W2]), 1.0)),
    ]


@pytest.mark.parametrize("case", range(5))
def test_factorised_verdict_agrees_with_dense_eigvalsh_just_above_and_below_the_threshold(case):
    name, lifted, lam, smallest = chain_cases()[case]
    threshold = alpha_where(smallest, 0.0)
    assert threshold > 0.01, name  # J's α is what certifies these
    for alpha in (threshold * (1 + 1e-4), threshold * (1 - 1e-4)):
        chain = certify(lifted, lam, 1.0, alpha=alpha, dense_limit=0)
        dense = certify(lifted, lam, 1.0, alpha=alpha)
        assert chain.factorised and not dense.factorised
        assert dense.min_eig == pytest.approx(smallest(alpha), abs=1e-10)
        assert chain.certified == dense.certified == (alpha > threshold), (name, alpha)
    assert chain.smallest_alpha == pytest.approx(threshold, rel=1e-8)
    found = smallest_alpha(lifted, lam, dense_limit=0)
    assert found.value == pytest.approx(threshold, rel=2e-6) and found.certificate.certified
    assert smallest_alpha(lifted, lam).value == pytest.approx(threshold, rel=2e-6)


@pytest.mark.parametrize("case", [0, 1, 2])
def test_factorised_verdict_is_a_margin_of_exactly_tol(case):
    # certified iff λ_min(Nᵀ H₀ N) > −tol (every entry of u and z shifted): −1.05 tol fails,
    # −0.95 tol passes
    name, lifted, lam, smallest = chain_cases()[case]
    tol = 1e-6
    for target, expected in ((-2 * tol, False), (-0.95 * tol, True), (-1.05 * tol, False)):
        alpha = alpha_where(smallest, target)
        cert = certify(lifted, lam, 1.0, tol=tol, alpha=alpha, dense_limit=0)
        assert cert.certified is expected, (name, target)


def test_factorised_certificate_states_a_verified_margin_not_an_eigenvalue():
    name, lifted, lam, smallest = chain_cases()[0]
    threshold = alpha_where(smallest, 0.0)
    passed = certify(lifted, lam, 1.0, alpha=2 * threshold, dense_limit=0)
    assert passed.min_eig is None and passed.witness is None and passed.mu is None
    text = passed.explain()
    assert "verified margin: H₀ + tol·I ≻ 0" in text and "was not computed" in text
    assert "smallest eigenvalue -" not in text and "block LDLᵀ" in text
    failed = certify(lifted, lam, 1.0, alpha=threshold / 2, dense_limit=0).explain()
    assert "NOT certified" in failed and "is not positive definite" in failed
    assert f"α ≥ {threshold:.6g}" in failed


def test_a_network_that_is_not_a_chain_is_refused_above_dense_limit():
    net = ShallowSum(np.ones(4), np.zeros(4), np.ones(4), [ReLU(), ReLU(), Tanh(), Tanh()])
    with pytest.raises(ValueError, match="needs the chain structure .* constraint row 0 is not"):
        certify(net.lift(), 1.0, 1.0, dense_limit=3)


@pytest.mark.parametrize("seed", range(3))
def test_paper_and_exact_count_alpha_on_the_input_block(seed):
    rng = np.random.default_rng(40 + seed)
    lifted, truth = residual_chain(rng, depth=2, weight=0.8)
    lam, rho, alpha = 0.6, 3.0, rng.uniform(0.1, 2.0)
    E = np.zeros((truth.n_u,) * 2)
    E[: truth.n, : truth.n] = np.eye(truth.n)
    paper = certify(lifted, lam, rho, method="paper", alpha=alpha)
    assert paper.min_eig == pytest.approx(np.linalg.eigvalsh(truth.Q(lam, rho) + alpha * E)[0])
    H = truth.H0(lam)
    H[: truth.n, : truth.n] += alpha * np.eye(truth.n)
    exact = certify(lifted, lam, rho, alpha=alpha)
    expected = np.linalg.eigvalsh(truth.basis.T @ H @ truth.basis)[0]
    assert exact.min_eig == pytest.approx(expected, abs=1e-10) and exact.alpha == alpha


# --- α acts on u₀ only: it never certifies a form that is indefinite where u₀ = 0 --------------


def input_free_truth(truth, lam):
    """λ_min of H₀ on the feasible directions with u₀ = 0 (hand-built basis, α-free)."""
    B = truth.basis @ sla.null_space(truth.basis[: truth.n])
    return np.linalg.eigvalsh(B.T @ truth.H0(lam) @ B)[0]


@pytest.mark.parametrize("dense_limit", [0, DENSE_LIMIT])
def test_no_alpha_certifies_a_form_indefinite_where_alpha_does_not_act(dense_limit):
    """Residual net (V = Wᵀ, depth 2) at λ = 0.3: H₀ is indefinite on {M u = V z, u₀ = 0}
    (−0.0229), where α has no effect. A tolerance scaled with α (10·n·eps·α = 0.029 at
    α = 1e12, n = 13) used to pass it there, and smallest_alpha reported α* ≈ 7.9e11 on the
    dense path; both paths must say that no α certifies."""
    lifted, truth = residual_chain(np.random.default_rng(32), depth=2, weight=0.8)
    lam = 0.3
    free = input_free_truth(truth, lam)
    assert -0.03 < free < -0.02
    found = smallest_alpha(lifted, lam, dense_limit=dense_limit)
    assert found.value is None and not found.certificate.certified
    for alpha in (1e6, 1e12):
        cert = certify(lifted, lam, 1.0, alpha=alpha, dense_limit=dense_limit)
        assert not cert.certified and cert.tolerance < 1e-12
        if not cert.factorised:  # the reported eigenvalue is at most the α-free one
            assert cert.min_eig <= free + 1e-12
    if dense_limit:
        assert "u₀ = 0, where α has no effect" in found.reason
        assert found.reason.count(f"{free:.3g}") == 1


def test_alpha_free_check_of_the_paper_form():
    """Q restricted to u₁, u₂ (u₀ = 0) is indefinite at λ = 0.3, ρ = 1: no α certifies."""
    lifted, truth = residual_chain(np.random.default_rng(32), depth=2, weight=0.8)
    Q = truth.Q(0.3, 1.0)
    free = np.linalg.eigvalsh(Q[truth.n :, truth.n :])[0]
    assert free < -0.1
    found = smallest_alpha(lifted, 0.3, 1.0, method="paper")
    assert found.value is None and f"{free:.3g}" in found.reason
    assert certify(lifted, 0.3, 1.0, method="paper", alpha=1e12).min_eig <= free + 1e-12


def test_where_alpha_certifies_both_paths_agree_with_the_dense_truth():
    """Same net with larger weights and λ = 0.5: H₀ ≻ 0 on {u₀ = 0} (+0.0121), so a finite α*
    exists; the dense bisection and the chain elimination find the one of the hand-built
    restricted H₀."""
    lifted, truth = residual_chain(np.random.default_rng(32), depth=2, weight=3.0)
    lam = 0.5
    assert input_free_truth(truth, lam) > 0.01
    E = np.zeros((truth.n_u + truth.n_z,) * 2)
    E[: truth.n, : truth.n] = np.eye(truth.n)
    B = truth.basis
    threshold = alpha_where(lambda a: np.linalg.eigvalsh(B.T @ (truth.H0(lam) + a * E) @ B)[0], 0)
    assert threshold == pytest.approx(15.905, rel=1e-4)
    dense = smallest_alpha(lifted, lam)
    chain = smallest_alpha(lifted, lam, dense_limit=0)
    assert dense.value == pytest.approx(threshold, rel=2e-6)
    assert chain.value == pytest.approx(threshold, rel=2e-6)
    assert dense.certificate.certified and chain.certificate.certified
