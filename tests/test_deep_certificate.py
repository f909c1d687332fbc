"""The deep model's certificate at scale: the block LDLᵀ path of ``certify_deep`` against the
dense eigen-decomposition (same verdict, same smallest eigenvalue), a near-singular form that
must not pass, the threshold α* against an independent numpy Schur complement, and the
refusal beyond BLOCK_LIMIT.
"""

from __future__ import annotations

import numpy as np
import pytest

import bregmod.certificate as certificate
from bregmod.activations import ReLU
from bregmod.certificate import certify_deep, smallest_alpha
from bregmod.model.deep import DeepBregman
from bregmod.operators import Conv2dOperator, MatrixOperator
from bregmod.regularizers import SquaredL2


def dense_model(rng, sizes, scale=0.5):
    ops = [
        MatrixOperator(scale * rng.normal(size=(m, n)) / np.sqrt(n))
        for n, m in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    return DeepBregman(ops, [None] * len(ops), [ReLU()] * len(ops))


def hessian(model, alpha):
    """H₀ written out with numpy from the weights (block-tridiagonal)."""
    sizes = model.sizes[: model.depth]
    offsets = np.cumsum([0, *sizes])
    H = np.eye(offsets[-1])
    H[: sizes[0], : sizes[0]] *= alpha
    for l in range(1, model.depth):
        W = model.operator(l).to_dense()
        H[offsets[l] : offsets[l + 1], offsets[l - 1] : offsets[l]] = -W
        H[offsets[l - 1] : offsets[l], offsets[l] : offsets[l + 1]] = -W.T
    return H


CASES = [(0, [6, 5, 3, 4, 2]), (1, [4, 6, 2]), (2, [2, 7, 7, 3, 6]), (3, [3, 7, 5, 4, 2]),
         (4, [8, 3, 5, 6, 8]), (5, [5, 9, 9, 9, 9, 4])]


@pytest.mark.parametrize(("seed", "sizes"), CASES)
@pytest.mark.parametrize("alpha", [0.0, 0.5, 2.0, 10.0])
def test_block_path_agrees_with_the_dense_eigenvalues(seed, sizes, alpha):
    model = dense_model(np.random.default_rng(seed), sizes)
    truth = np.linalg.eigvalsh(hessian(model, alpha))[0]
    reg = alpha * SquaredL2() if alpha else None
    dense = certify_deep(model, reg)
    block = certify_deep(model, reg, dense_limit=0)
    assert "block LDLᵀ" in block.solver and "dense" in dense.solver
    assert block.certified == dense.certified == (truth >= -dense.tolerance)
    assert block.min_eig == pytest.approx(truth, abs=1e-8)
    if dense.smallest_alpha is None:
        assert block.smallest_alpha is None
    else:
        assert block.smallest_alpha == pytest.approx(dense.smallest_alpha, rel=1e-9)


def test_convolutional_chain_block_path_matches_dense():
    rng = np.random.default_rng(7)
    k1, k2 = rng.normal(size=(3, 1, 3, 3)), 0.1 * rng.normal(size=(4, 3, 3, 3))
    ops = [Conv2dOperator(k1, (1, 5, 5), padding="same"),
           Conv2dOperator(k2, (3, 5, 5), padding="same"),
           Conv2dOperator(rng.normal(size=(1, 4, 3, 3)), (4, 5, 5), padding=1)]
    model = DeepBregman(ops, [None] * 3, [ReLU()] * 3)
    threshold = smallest_alpha(model)
    for factor, expected in [(1.001, True), (0.999, False)]:
        reg = factor * threshold * SquaredL2()
        truth = np.linalg.eigvalsh(hessian(model, factor * threshold))[0]
        block = certify_deep(model, reg, dense_limit=0)
        assert block.certified is expected == (truth >= 0)
        assert block.min_eig == pytest.approx(truth, abs=1e-8)


@pytest.mark.parametrize("dense_limit", [0, certificate.DENSE_LIMIT])
@pytest.mark.parametrize(("lam_min", "expected"), [(-1e-8, False), (1e-8, True)])
def test_near_singular_form_is_never_passed(dense_limit, lam_min, expected):
    """Two layers: [[α, −σ], [−σ, 1]] has smallest eigenvalue λ iff α = σ²/(1 − λ) + λ."""
    model = dense_model(np.random.default_rng(3), [5, 8, 3], scale=1.0)
    sigma = np.linalg.norm(model.operator(1).to_dense(), 2)
    alpha = sigma**2 / (1 - lam_min) + lam_min
    assert np.linalg.eigvalsh(hessian(model, alpha))[0] == pytest.approx(lam_min, abs=1e-13)
    cert = certify_deep(model, alpha * SquaredL2(), dense_limit=dense_limit)
    assert cert.tolerance < 1e-12
    assert cert.certified is expected


def test_smallest_alpha_is_the_schur_complement_threshold():
    """α* = λ_max(Bᵀ T⁻¹ B), T the hidden block of H₀, B = [W_1; 0; …] (numpy, independent)."""
    model = dense_model(np.random.default_rng(11), [4, 6, 5, 7, 3])
    H = hessian(model, 0.0)
    n_0 = model.sizes[0]
    T, B = H[n_0:, n_0:], H[n_0:, :n_0]
    expected = np.linalg.eigvalsh(B.T @ np.linalg.solve(T, B))[-1]
    assert smallest_alpha(model) == pytest.approx(expected, rel=1e-10)
    for factor, sign in [(1 + 1e-6, 1), (1 - 1e-6, -1)]:
        assert sign * np.linalg.eigvalsh(hessian(model, factor * expected))[0] > 0
        cert = certify_deep(model, factor * expected * SquaredL2(), dense_limit=0)
        assert cert.factorised and bool(cert) is (sign > 0)
        pivots = "is positive definite" if sign > 0 else "is not positive definite"
        assert pivots in cert.explain() and "upper bound" in cert.explain()


def test_hidden_part_indefinite_has_no_threshold():
    model = dense_model(np.random.default_rng(9), [3, 6, 6, 4], scale=4.0)
    assert np.linalg.eigvalsh(hessian(model, 0.0)[3:, 3:])[0] < 0
    assert smallest_alpha(model) is None
    cert = certify_deep(model, 1e6 * SquaredL2(), dense_limit=0)
    assert not cert.certified and cert.smallest_alpha is None and "‖W_2‖" in cert.advice


def test_beyond_the_block_limit_nothing_is_claimed(monkeypatch):
    model = dense_model(np.random.default_rng(1), [6, 9, 4])
    monkeypatch.setattr(certificate, "BLOCK_LIMIT", 5)
    assert certify_deep(model, SquaredL2(), dense_limit=0) is None
    with pytest.raises(ValueError, match="BLOCK_LIMIT"):
        smallest_alpha(model)
    # the last free state (9 entries) may exceed the limit: it is eliminated first, matrix-free
    monkeypatch.setattr(certificate, "BLOCK_LIMIT", 6)
    assert certify_deep(model, 100 * SquaredL2(), dense_limit=0).certified


@pytest.mark.slow
def test_wide_deep_chain_is_certified_with_block_path():
    """20 dense layers of width 500 (n ≈ 10⁴, above DENSE_LIMIT): verdicts on both sides of α*."""
    rng = np.random.default_rng(0)
    sizes = [300] + [500] * 20
    ops = [MatrixOperator(rng.normal(size=(sizes[1], sizes[0])))]
    for n, m in zip(sizes[1:-1], sizes[2:], strict=True):
        W = rng.normal(size=(m, n))
        ops.append(MatrixOperator(0.45 * W / np.linalg.norm(W, 2)))
    model = DeepBregman(ops, [None] * len(ops), [ReLU()] * len(ops))
    threshold = smallest_alpha(model)
    above = certify_deep(model, 1.01 * threshold * SquaredL2())
    below = certify_deep(model, 0.99 * threshold * SquaredL2())
    assert above.dimension > certificate.DENSE_LIMIT and "block LDLᵀ" in above.solver
    assert above.certified and not below.certified
    assert below.min_eig < -below.tolerance < 0 < above.min_eig


# --- layer weights: the congruence D⁻¹H_γD⁻¹ (docs/math/deep.md, "Layer weights") -----------


def weighted_hessian(model, alpha, gammas):
    """H_γ written out with numpy: α on x_0, γ_l I on x_l, −γ_l W_l at (l, l−1), l < L (the
    quadratic part of Σ γ_l B_{Ψ_l}(x_l, W_l x_{l−1} + b_l) + α/2‖x_0‖², x_L fixed)."""
    sizes = model.sizes[: model.depth]
    offsets = np.cumsum([0, *sizes])
    H = np.zeros((offsets[-1],) * 2)
    H[: sizes[0], : sizes[0]] = alpha * np.eye(sizes[0])
    for l in range(1, model.depth):
        rows, cols = slice(offsets[l], offsets[l + 1]), slice(offsets[l - 1], offsets[l])
        H[rows, rows] = gammas[l - 1] * np.eye(sizes[l])
        W = gammas[l - 1] * model.operator(l).to_dense()
        H[rows, cols], H[cols, rows] = -W, -W.T
    return H


def schur_threshold(H, n_0):
    """α* = λ_max(Bᵀ T⁻¹ B) of H = [[0, Bᵀ], [B, T]] + α E₀ (T ≻ 0), or None (T not ≻ 0)."""
    T, B = H[n_0:, n_0:], H[n_0:, :n_0]
    if np.linalg.eigvalsh(T)[0] <= 0:
        return None
    return np.linalg.eigvalsh(B.T @ np.linalg.solve(T, B))[-1]


# (seed, sizes, scale, γ): with unit weights the first is certifiable (α* = 0.14) and the third
# is not (a hidden Schur complement is indefinite); the weights reverse both
WEIGHTED = [(0, [6, 5, 3, 4, 2], 0.3, (2.0, 0.5, 3.0, 7.0)),
            (4, [8, 3, 5, 6, 8], 0.3, (5.0, 5.0, 0.2, 0.1)),
            (4, [8, 3, 5, 6, 8], 0.5, (5.0, 5.0, 0.2, 0.1)),
            (1, [4, 6, 2], 0.8, (3.0, 9.0))]


@pytest.mark.parametrize(("seed", "sizes", "scale", "gammas"), WEIGHTED)
@pytest.mark.parametrize("dense_limit", [0, certificate.DENSE_LIMIT])
def test_weighted_verdict_and_threshold_are_those_of_the_weighted_hessian(
    seed, sizes, scale, gammas, dense_limit
):
    model = dense_model(np.random.default_rng(seed), sizes, scale).with_weights(gammas)
    n_0 = model.sizes[0]
    expected = schur_threshold(weighted_hessian(model, 0.0, gammas), n_0)
    threshold = smallest_alpha(model)
    if expected is None:
        assert threshold is None
        cert = certify_deep(model, 1e6 * SquaredL2(), dense_limit=dense_limit)
        assert not cert.certified and cert.smallest_alpha is None
        return
    assert threshold == pytest.approx(expected, rel=1e-9)
    for factor in (1 + 1e-6, 1 - 1e-6):
        alpha = factor * expected
        truth = np.linalg.eigvalsh(weighted_hessian(model, alpha, gammas))[0]
        cert = certify_deep(model, alpha * SquaredL2(), dense_limit=dense_limit)
        assert cert.certified is bool(truth > 0) is (factor > 1)
        assert cert.weights == gammas and "congruent unit-weight form" in cert.explain()
    # γ_L weights the data term, which H_γ does not contain
    assert smallest_alpha(model.with_weights((*gammas[:-1], 50.0))) == pytest.approx(threshold)


def test_weighted_two_layer_threshold_is_gamma_1_times_the_squared_norm():
    model = dense_model(np.random.default_rng(5), [4, 7, 3], scale=1.0)
    norm = np.linalg.norm(model.operator(1).to_dense(), 2)
    assert smallest_alpha(model.with_weights((2.5, 4.0))) == pytest.approx(2.5 * norm**2)


@pytest.mark.parametrize("dense_limit", [0, certificate.DENSE_LIMIT])
def test_a_huge_alpha_does_not_certify_an_indefinite_hidden_part(dense_limit):
    """‖W_2‖ = 1.01: the hidden block [[I, −W_2ᵀ], [−W_2, I]] has λ_min = −0.01, which α does
    not touch. The tolerance leaves α out (one that grew with α, 10·n·eps·α ≈ 0.03 at
    α = 1e12, would pass it)."""
    model = dense_model(np.random.default_rng(4), [4, 6, 5, 3])
    W2 = model.operator(2).to_dense()
    model = DeepBregman([model.operator(1), MatrixOperator(1.01 * W2 / np.linalg.norm(W2, 2)),
                         model.operator(3)], [None] * 3, [ReLU()] * 3)
    assert np.linalg.eigvalsh(hessian(model, 0.0)[4:, 4:])[0] == pytest.approx(-0.01)
    assert smallest_alpha(model) is None
    cert = certify_deep(model, 1e12 * SquaredL2(), dense_limit=dense_limit)
    assert not cert.certified and cert.tolerance < 1e-12
    assert cert.min_eig <= -0.01 + 1e-9
