"""Tests of bregmod.operators against independent truth (np.diff, naive loops, scipy.signal)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import scipy.signal
import scipy.sparse as sp
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.sparse.linalg import aslinearoperator

from bregmod.errors import AdjointError, ShapeError
from bregmod.operators import (
    NORM_ESTIMATE_MARGIN,
    BlockOperator,
    Conv2dOperator,
    Gradient2D,
    IdentityOperator,
    MatrixOperator,
    Operator,
    ZeroOperator,
    as_operator,
    block_diag,
    dot_test,
)

RNG = np.random.default_rng(20240607)


def _gaussian(*shape):
    return RNG.standard_normal(shape)


def _operators() -> dict[str, Operator]:
    """One instance of every kind of operator (small enough for dense truth)."""
    A = _gaussian(5, 7)
    S = sp.random(6, 4, density=0.4, random_state=3, format="coo")
    grad = Gradient2D((4, 3))
    conv = Conv2dOperator(_gaussian(3, 2, 3, 2), (2, 6, 5), stride=(2, 1), padding=(1, 2))
    return {
        "dense": MatrixOperator(A),
        "sparse": MatrixOperator(S),
        "identity": IdentityOperator(4),
        "scaled_identity": IdentityOperator(3, scale=-2.5),
        "zero": ZeroOperator(3, 5),
        "gradient": grad,
        "gradient_row": Gradient2D((1, 6)),
        "gradient_pixel": Gradient2D((1, 1)),
        "conv": conv,
        "conv_same_even": Conv2dOperator(_gaussian(2, 3, 4, 2), (3, 5, 6), padding="same"),
        "conv_1x1": Conv2dOperator(_gaussian(4, 3, 1, 1), (3, 2, 3)),
        "adjoint_of_conv": conv.T,
        "block_diag": block_diag(MatrixOperator(A), grad, IdentityOperator(2, 0.5)),
        "block_bidiag": BlockOperator(
            [
                [MatrixOperator(A), MatrixOperator(_gaussian(5, 12)), None],
                [None, grad, MatrixOperator(_gaussian(24, 60))],
                [None, None, conv],
            ]
        ),
        "nested_block": BlockOperator(
            [[block_diag(grad, MatrixOperator(S)), None], [None, ZeroOperator(2, 3)]]
        ),
    }


OPERATORS = _operators()
ALL = pytest.mark.parametrize("name", sorted(OPERATORS))


def naive_conv2d(x, k, stride, pads):
    """Direct evaluation of y[o,i,j] = Σ_c Σ_{p,q} k[o,c,p,q] x[c, i·s+p−top, j·s+q−left]."""
    C, H, W = x.shape
    C_out, _, kh, kw = k.shape
    (sh, sw), (top, bottom, left, right) = stride, pads
    H_out = (H + top + bottom - kh) // sh + 1
    W_out = (W + left + right - kw) // sw + 1
    y = np.zeros((C_out, H_out, W_out))
    for o in range(C_out):
        for i in range(H_out):
            for j in range(W_out):
                for c in range(C):
                    for p in range(kh):
                        for q in range(kw):
                            r, s = i * sh + p - top, j * sw + q - left
                            if 0 <= r < H and 0 <= s < W:
                                y[o, i, j] += k[o, c, p, q] * x[c, r, s]
    return y


def scipy_conv2d(x, k, stride, pads):
    """Cross-correlation by scipy.signal.correlate2d on the zero-padded input, then striding."""
    top, bottom, left, right = pads
    out = []
    for k_o in k:
        acc = sum(
            scipy.signal.correlate2d(np.pad(x_c, ((top, bottom), (left, right))), k_oc, "valid")
            for x_c, k_oc in zip(x, k_o, strict=True)
        )
        out.append(acc[:: stride[0], :: stride[1]])
    return np.array(out)


# --- adjoints ---------------------------------------------------------------------------------


@ALL
def test_dot_test_passes(name):
    op = OPERATORS[name]
    assert 0.0 <= dot_test(op, rng=0, trials=5) < 1e-13


@ALL
def test_apply_matches_dense_and_batch_matches_loop(name):
    op = OPERATORS[name]
    m, n = op.shape
    dense = op.to_dense()
    X, Y = _gaussian(4, n), _gaussian(4, m)
    np.testing.assert_allclose(op.apply(X), X @ dense.T, atol=1e-12)
    np.testing.assert_allclose(op.apply_adjoint(Y), Y @ dense, atol=1e-12)
    # batches (BLAS-3) and single vectors (BLAS-2) may round differently, nothing more
    looped = np.array([op.apply(x) for x in X])
    np.testing.assert_allclose(op.apply(X), looped, rtol=1e-13, atol=1e-13)
    looped_adjoint = np.array([op.apply_adjoint(y) for y in Y])
    np.testing.assert_allclose(op.apply_adjoint(Y), looped_adjoint, rtol=1e-13, atol=1e-13)


@ALL
def test_scipy_linear_operator_interop(name):
    op = OPERATORS[name]
    m, n = op.shape
    dense = op.to_dense()
    x, y, X = _gaussian(n), _gaussian(m), _gaussian(n, 3)
    assert aslinearoperator(op) is op
    np.testing.assert_allclose(op @ x, dense @ x, atol=1e-12)
    np.testing.assert_allclose(op.matvec(x[:, None]), (dense @ x)[:, None], atol=1e-12)
    np.testing.assert_allclose(op.rmatvec(y), dense.T @ y, atol=1e-12)
    np.testing.assert_allclose(op.T @ y, dense.T @ y, atol=1e-12)
    np.testing.assert_allclose(op.H @ y, dense.T @ y, atol=1e-12)
    np.testing.assert_allclose(op @ X, dense @ X, atol=1e-12)
    np.testing.assert_allclose(op.rmatmat(_gaussian(m, 2)).shape, (n, 2))
    np.testing.assert_allclose((2.0 * op) @ x, 2.0 * dense @ x, atol=1e-12)
    assert isinstance(op.T, Operator) and op.T.shape == (n, m)
    np.testing.assert_array_equal(op.T.T.to_dense(), dense)
    assert op.T.norm_bound() == op.norm_bound()


@ALL
def test_norm_bound_is_an_upper_bound(name):
    op = OPERATORS[name]
    true = np.linalg.norm(op.to_dense(), 2)
    bound = op.norm_bound()
    assert bound >= true
    assert bound <= (1 + NORM_ESTIMATE_MARGIN) * true + 1e-12 or name.startswith("block")
    assert op.norm_bound() == bound  # cached


@ALL
def test_float32_inputs_keep_their_dtype(name):
    op = OPERATORS[name]
    x = _gaussian(op.shape[1])
    y = op.apply(x.astype(np.float32))
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, op.apply(x), rtol=1e-4, atol=1e-4)
    assert op.apply_adjoint(np.ones((2, op.shape[0]), np.float32)).dtype == np.float32


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("dense", "MatrixOperator(matrix: 5×7, dense)"),
        ("sparse", "MatrixOperator(matrix: 6×4, sparse, nnz="),
        ("scaled_identity", "-2.5·IdentityOperator(3)"),
        ("identity", "IdentityOperator(4)"),
        ("zero", "ZeroOperator(3, 5)"),
        ("gradient", "Gradient2D(shape=(4, 3))"),
        ("conv", "Conv2dOperator(kernel=(3, 2, 3, 2), in_shape=(2, 6, 5), stride=(2, 1), "),
        ("block_bidiag", "BlockOperator(101×79, 3×3 grid, 5 nonzero blocks)"),
    ],
)
def test_repr_is_readable(name, expected):
    assert repr(OPERATORS[name]).startswith(expected)
    assert repr(OPERATORS["adjoint_of_conv"]) == repr(OPERATORS["conv"]) + ".T"


class _BrokenBoundaryGradient(Gradient2D):
    """Adjoint that forgets the Neumann boundary: it also uses the last row of p_x."""

    def _apply_adjoint(self, Y):
        out = super()._apply_adjoint(Y)
        P = Y.reshape(-1, *self.out_shape)
        out.reshape(-1, *self.in_shape)[:, -1, :] -= P[:, 0, -1, :]
        return out


class _SlightlyWrongMatrix(MatrixOperator):
    """Adjoint off by a relative 1e-7."""

    def _apply_adjoint(self, Y):
        return (1 + 1e-7) * super()._apply_adjoint(Y)


def test_dot_test_catches_a_wrong_boundary_in_the_adjoint():
    op = _BrokenBoundaryGradient((5, 4))
    with pytest.raises(
        AdjointError,
        match=r"Gradient2D\(shape=\(5, 4\)\) failed the adjoint "
        r"dot-test: relative mismatch .* = \d\.\d+e-0\d > rtol = 1\.0e-10",
    ):
        dot_test(op, rng=1)
    # the scipy view of the same operator is equally wrong: rmatvec goes through the adjoint
    y = _gaussian(op.shape[0])
    assert not np.allclose(op.rmatvec(y), Gradient2D((5, 4)).rmatvec(y))


def test_dot_test_catches_a_tiny_error_and_respects_rtol():
    op = _SlightlyWrongMatrix(_gaussian(6, 4))
    with pytest.raises(AdjointError, match=r"MatrixOperator\(matrix: 6×4, dense\) failed"):
        dot_test(op, rng=2)
    assert 1e-9 < dot_test(op, rng=2, rtol=1e-6) < 1e-6


def test_dot_test_inside_a_block_operator_catches_the_broken_block():
    broken = BlockOperator([[IdentityOperator(20), _BrokenBoundaryGradient((5, 4)).T]])
    assert broken.matrix_free
    with pytest.raises(AdjointError, match=r"BlockOperator\(20×60"):
        dot_test(broken, rng=3)


def test_dot_test_validates_its_arguments():
    with pytest.raises(TypeError, match="needs a bregmod Operator, got ndarray"):
        dot_test(np.eye(3))
    with pytest.raises(ValueError, match="trials must be a positive integer, got 0"):
        dot_test(IdentityOperator(2), trials=0)
    with pytest.raises(ValueError, match="rtol must be a finite positive number"):
        dot_test(IdentityOperator(2), rtol=-1.0)


def test_dot_test_reports_non_finite_output():
    class Exploding(IdentityOperator):
        def _apply(self, X):
            return X / 0.0

    with pytest.raises(AdjointError, match="returned NaN or Inf on a finite random input"):
        with np.errstate(divide="ignore", invalid="ignore"):
            dot_test(Exploding(3), rng=0)


def test_matrix_free_flags():
    assert not OPERATORS["dense"].matrix_free and not OPERATORS["sparse"].matrix_free
    assert OPERATORS["gradient"].matrix_free and OPERATORS["conv"].matrix_free
    assert OPERATORS["adjoint_of_conv"].matrix_free
    assert OPERATORS["block_diag"].matrix_free
    assert not block_diag(IdentityOperator(2), MatrixOperator(np.ones((2, 2)))).matrix_free


# --- MatrixOperator, identity, zero ---------------------------------------------------------------


def test_matrix_operator_dense_and_sparse_agree():
    A = sp.random(30, 20, density=0.2, random_state=0, format="csc")
    op_sparse, op_dense = MatrixOperator(A), MatrixOperator(A.toarray())
    X = _gaussian(3, 20)
    np.testing.assert_allclose(op_sparse.apply(X), X @ A.toarray().T, atol=1e-13)
    np.testing.assert_allclose(op_dense.apply(X), op_sparse.apply(X), atol=1e-13)
    assert isinstance(op_sparse.apply(X), np.ndarray)
    assert sp.issparse(op_sparse.matrix) and op_sparse.matrix.format == "csr"
    assert op_sparse.norm_bound() == pytest.approx(op_dense.norm_bound(), rel=1e-10)


def test_matrix_operator_owns_a_read_only_copy():
    A = _gaussian(3, 3)
    op = MatrixOperator(A)
    bound = op.norm_bound()
    A[:] = 0.0
    assert op.norm_bound() == bound and op.matrix.any()
    with pytest.raises(ValueError, match="read-only"):
        op.matrix[0, 0] = 1.0
    S = sp.csr_array(A + 1.0)
    op_sparse = MatrixOperator(S)
    S.data[:] = 0.0
    assert not op_sparse.is_zero
    with pytest.raises(ValueError, match="read-only"):
        op_sparse.matrix.data[0] = 1.0


def test_matrix_operator_int_input_becomes_float64():
    op = MatrixOperator(np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(op.apply(np.array([1, 0, 2])), [4.0, 13.0])
    assert op.apply(np.array([1, 0, 2])).dtype == np.float64


def test_matrix_operator_norm_estimate_for_large_sparse_matrix():
    # P diag(d) has singular values |d|: the true norm is max |d| (independent of any SVD).
    n = 2500
    d = RNG.uniform(-1.0, 1.0, n)
    d[17] = 3.0
    A = sp.csr_array(sp.diags(d))[RNG.permutation(n)]
    bound = MatrixOperator(A).norm_bound()
    assert 3.0 <= bound <= 3.0 * (1 + NORM_ESTIMATE_MARGIN) * (1 + 1e-9)


@pytest.mark.slow
def test_matrix_operator_norm_estimate_for_large_dense_matrix():
    A = _gaussian(2100, 2100)
    true = np.linalg.norm(A, 2)
    assert true <= MatrixOperator(A).norm_bound() <= (1 + NORM_ESTIMATE_MARGIN) * true * (1 + 1e-9)


def test_matrix_operator_rejects_bad_matrices():
    bad = np.ones((2, 3))
    bad[1, 2] = np.nan
    with pytest.raises(
        ValueError, match=r"weights contains NaN or Inf: 1 entry, first at .*\(1, 2\)"
    ):
        MatrixOperator(bad, name="weights")
    with pytest.raises(ValueError, match=r"matrix \(sparse entries\) contains NaN or Inf"):
        MatrixOperator(sp.csr_array(np.array([[0.0, np.inf]])))
    with pytest.raises(ShapeError, match=r"matrix must be a 2-D matrix, got shape \(3,\)"):
        MatrixOperator(np.ones(3))
    with pytest.raises(ShapeError, match=r"at least one row and column, got \(0, 3\)"):
        MatrixOperator(np.ones((0, 3)))
    with pytest.raises(ValueError, match="must be a numeric array"):
        MatrixOperator([["a", "b"]])


def test_identity_and_zero():
    op = IdentityOperator(3, scale=2.0)
    np.testing.assert_array_equal(op.apply(np.ones(3)), [2.0, 2.0, 2.0])
    assert op.T is op and op.scale == 2.0 and op.norm_bound() == pytest.approx(2.0)
    assert not op.is_zero and IdentityOperator(3, scale=0.0).is_zero
    zero = ZeroOperator(2, 5)
    assert zero.is_zero and zero.norm_bound() == 0.0 and zero.T.shape == (5, 2)
    assert dot_test(zero) == 0.0
    assert MatrixOperator(sp.csr_array((3, 3))).is_zero and MatrixOperator(np.zeros((2, 2))).is_zero
    assert not MatrixOperator(np.eye(2)).is_zero
    with pytest.raises(ValueError, match="n must be a positive integer, got 0"):
        IdentityOperator(0)
    with pytest.raises(ValueError, match="scale contains NaN or Inf"):
        IdentityOperator(2, scale=np.inf)
    with pytest.raises(ValueError, match=r"scale must be a scalar, got an array of shape \(2,\)"):
        IdentityOperator(2, scale=[1.0, 2.0])
    with pytest.raises(ValueError, match="number of rows must be a positive integer, got -1"):
        ZeroOperator(-1, 2)


def test_as_operator():
    op = IdentityOperator(2)
    assert as_operator(op) is op
    assert isinstance(as_operator(np.eye(2)), MatrixOperator)
    assert isinstance(as_operator(sp.eye(2)), MatrixOperator)
    with pytest.raises(TypeError, match="expected a bregmod Operator, an ndarray or a scipy"):
        as_operator("matrix")


# --- input validation -------------------------------------------------------------------------


def test_apply_rejects_wrong_shapes_and_types():
    op = MatrixOperator(np.ones((5, 7)))
    with pytest.raises(
        ShapeError,
        match=r"\.apply: expected an input of shape \(7,\) or \(B, 7\), "
        r"got \(5,\)",
    ):
        op.apply(np.ones(5))
    with pytest.raises(
        ShapeError, match=r"apply_adjoint: expected .* \(5,\) or \(B, 5\), got \(2, 7\)"
    ):
        op.apply_adjoint(np.ones((2, 7)))
    with pytest.raises(ShapeError, match=r"got \(2, 2, 7\)"):
        op.apply(np.ones((2, 2, 7)))
    with pytest.raises(TypeError, match="operators are real, got a complex input"):
        op.apply(np.ones(7, dtype=complex))
    with pytest.raises(TypeError, match="input must be numeric, got dtype <U1"):
        op.apply(np.array(list("abcdefg")))
    grad = Gradient2D((3, 4))
    with pytest.raises(ShapeError, match=r"Gradient2D\(shape=\(3, 4\)\)\.apply: .*got \(3, 4\)"):
        grad.apply(np.ones((3, 4)))


# --- Gradient2D -------------------------------------------------------------------------------


def np_diff_gradient(u):
    """[dx; dy] with np.diff and a zero last difference (Neumann)."""
    dx = np.diff(u, axis=0, append=u[-1:, :])
    dy = np.diff(u, axis=1, append=u[:, -1:])
    return np.stack([dx, dy])


def np_diff_divergence(p):
    """Backward differences of p with its last row/column ignored (Chambolle's divergence)."""
    px, py = p[0].copy(), p[1].copy()
    px[-1, :] = 0.0
    py[:, -1] = 0.0
    return np.diff(px, axis=0, prepend=0.0) + np.diff(py, axis=1, prepend=0.0)


@settings(max_examples=30, deadline=None)
@given(H=st.integers(1, 9), W=st.integers(1, 9), B=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_gradient_matches_np_diff(H, W, B, seed):
    rng = np.random.default_rng(seed)
    op = Gradient2D((H, W))
    U, P = rng.standard_normal((B, H, W)), rng.standard_normal((B, 2, H, W))
    expected = np.array([np_diff_gradient(u) for u in U]).reshape(B, -1)
    np.testing.assert_allclose(op.apply(U.reshape(B, -1)), expected, atol=1e-13)
    div = np.array([np_diff_divergence(p) for p in P]).reshape(B, -1)
    np.testing.assert_allclose(op.divergence(P.reshape(B, -1)), div, atol=1e-13)
    assert dot_test(op, rng=rng) < 1e-13
    assert op.out_shape == (2, H, W) and op.in_shape == (H, W)


@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (2, 2), (3, 7), (8, 8), (16, 5), (20, 20)])
def test_gradient_norm_bound_is_exact_and_at_most_sqrt8(shape):
    op = Gradient2D(shape)
    true = np.linalg.norm(op.to_dense(), 2)
    assert true <= op.norm_bound() <= np.sqrt(8.0)
    assert op.norm_bound() == pytest.approx(true, rel=1e-10, abs=1e-12)


def test_gradient_norm_approaches_sqrt8_on_large_images():
    assert Gradient2D((256, 256)).norm_bound() == pytest.approx(np.sqrt(8.0), rel=1e-4)


def test_gradient_of_a_linear_ramp():
    u = np.add.outer(2.0 * np.arange(4), -np.arange(3))  # u[i, j] = 2i − j
    g = Gradient2D((4, 3)).apply(u.ravel()).reshape(2, 4, 3)
    np.testing.assert_array_equal(g[0], np.vstack([np.full((3, 3), 2.0), np.zeros((1, 3))]))
    np.testing.assert_array_equal(g[1], np.hstack([np.full((4, 2), -1.0), np.zeros((4, 1))]))


def test_gradient_rejects_bad_shapes():
    with pytest.raises(ShapeError, match=r"needs an image shape \(H, W\), got \(3, 4, 5\)"):
        Gradient2D((3, 4, 5))
    with pytest.raises(ValueError, match="image width W must be a positive integer, got 0"):
        Gradient2D((3, 0))
    with pytest.raises(ValueError, match="image height H must be a positive integer, got 2.5"):
        Gradient2D((2.5, 3))


# --- Conv2dOperator ---------------------------------------------------------------------------


def test_conv_matches_naive_loop_and_dense_matrix():
    k = _gaussian(3, 2, 3, 4)
    op = Conv2dOperator(k, (2, 7, 6), stride=(2, 1), padding=(1, 2))
    X = _gaussian(2, 2, 7, 6)
    naive = np.array([naive_conv2d(x, k, (2, 1), (1, 1, 2, 2)) for x in X])
    assert op.out_shape == naive.shape[1:]
    np.testing.assert_allclose(op.apply(X.reshape(2, -1)), naive.reshape(2, -1), atol=1e-12)
    # adjoint against the transpose of the naive map's matrix, built column by column
    basis = np.eye(op.shape[1]).reshape(-1, 2, 7, 6)
    naive_dense = np.array([naive_conv2d(e, k, (2, 1), (1, 1, 2, 2)).ravel() for e in basis]).T
    Y = _gaussian(2, op.shape[0])
    np.testing.assert_allclose(op.apply_adjoint(Y), Y @ naive_dense, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(
    C=st.integers(1, 3),
    C_out=st.integers(1, 3),
    H=st.integers(1, 9),
    W=st.integers(1, 9),
    kh=st.integers(1, 4),
    kw=st.integers(1, 4),
    sh=st.integers(1, 3),
    sw=st.integers(1, 3),
    ph=st.integers(0, 2),
    pw=st.integers(0, 2),
    B=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_conv_matches_scipy_correlate2d(C, C_out, H, W, kh, kw, sh, sw, ph, pw, B, seed):
    assume(H + 2 * ph >= kh and W + 2 * pw >= kw)
    rng = np.random.default_rng(seed)
    k = rng.standard_normal((C_out, C, kh, kw))
    op = Conv2dOperator(k, (C, H, W), stride=(sh, sw), padding=(ph, pw))
    X = rng.standard_normal((B, C, H, W))
    expected = np.array([scipy_conv2d(x, k, (sh, sw), (ph, ph, pw, pw)) for x in X])
    assert op.out_shape == expected.shape[1:]
    np.testing.assert_allclose(op.apply(X.reshape(B, -1)), expected.reshape(B, -1), atol=1e-12)
    assert dot_test(op, rng=rng) < 1e-13
    assert op.norm_bound() >= np.linalg.norm(op.to_dense(), 2)


@pytest.mark.parametrize(("kh", "kw", "centre"), [(3, 3, (1, 1)), (2, 2, (0, 0)), (4, 5, (1, 2))])
def test_same_padding_follows_pytorch(kh, kw, centre):
    # PyTorch pads ⌊(k−1)/2⌋ before: a delta at that offset reproduces the input.
    k = np.zeros((1, 1, kh, kw))
    k[0, 0, centre[0], centre[1]] = 1.0
    op = Conv2dOperator(k, (1, 6, 7), padding="same")
    x = _gaussian(42)
    assert op.out_shape == (1, 6, 7)
    np.testing.assert_array_equal(op.apply(x), x)


def test_conv_batch_chunks_give_the_same_result(monkeypatch):
    op = Conv2dOperator(_gaussian(2, 2, 3, 3), (2, 8, 8), stride=2, padding=1)
    X, Y = _gaussian(5, op.shape[1]), _gaussian(5, op.shape[0])
    full, full_adj = op.apply(X), op.apply_adjoint(Y)
    monkeypatch.setattr("bregmod.operators._IM2COL_BUDGET", 1)  # one image per chunk
    np.testing.assert_allclose(op.apply(X), full, atol=1e-13)
    np.testing.assert_allclose(op.apply_adjoint(Y), full_adj, atol=1e-13)


def test_conv_fourier_bound_is_tight_for_stride_one():
    op = Conv2dOperator(_gaussian(2, 3, 3, 3), (3, 14, 14), padding=1)
    true = np.linalg.norm(op.to_dense(), 2)  # min(m, n) = 392 > 200: the DFT bound is returned
    assert true <= op.norm_bound() <= 1.05 * true
    assert op.norm_bound() == pytest.approx(op.fourier_bound(), rel=1e-9)


def test_conv_fourier_bound_single_channel_is_max_abs_dft():
    k = _gaussian(1, 1, 3, 3)
    op = Conv2dOperator(k, (1, 10, 12), padding=1)
    assert op.fourier_bound() == pytest.approx(np.abs(np.fft.fft2(k[0, 0], s=(12, 14))).max())


def test_conv_norm_estimate_for_strided_operator():
    op = Conv2dOperator(_gaussian(1, 1, 3, 3), (1, 32, 32), stride=2, padding=1)
    true = np.linalg.norm(op.to_dense(), 2)
    assert min(op.shape) > 200  # the Lanczos estimate path
    assert true <= op.norm_bound() <= (1 + NORM_ESTIMATE_MARGIN) * true * (1 + 1e-9)
    assert op.norm_bound() <= op.fourier_bound() * (1 + 1e-9)


def test_conv_without_fourier_bound_falls_back_to_dense_or_estimate(monkeypatch):
    monkeypatch.setattr("bregmod.operators._FOURIER_ENTRIES", 0)
    small = Conv2dOperator(_gaussian(2, 1, 3, 3), (1, 6, 6))  # min(m, n) = 32: exact
    assert small.norm_bound() == pytest.approx(np.linalg.norm(small.to_dense(), 2), rel=1e-10)
    large = Conv2dOperator(_gaussian(1, 1, 3, 3), (1, 16, 16), padding=1)  # Lanczos estimate
    true = np.linalg.norm(large.to_dense(), 2)
    assert true <= large.norm_bound() <= (1 + NORM_ESTIMATE_MARGIN) * true * (1 + 1e-9)


def test_conv_rejects_bad_arguments():
    k = _gaussian(2, 3, 3, 3)
    with pytest.raises(ShapeError, match=r"must have shape \(C_out, C_in, kh, kw\), got \(3, 3\)"):
        Conv2dOperator(np.ones((3, 3)), (1, 5, 5))
    with pytest.raises(
        ShapeError, match=r"C_in=3 input channels, but in_shape \(2, 5, 5\) has C=2"
    ):
        Conv2dOperator(k, (2, 5, 5))
    with pytest.raises(ShapeError, match=r"in_shape must be \(C, H, W\), got \(5, 5\)"):
        Conv2dOperator(k, (5, 5))
    with pytest.raises(ShapeError, match=r"kernel 3×3 is larger than the padded input 2×5"):
        Conv2dOperator(k, (3, 2, 5))
    with pytest.raises(ValueError, match="padding='same' needs stride 1, got stride \\(2, 2\\)"):
        Conv2dOperator(k, (3, 5, 5), stride=2, padding="same")
    with pytest.raises(ValueError, match="padding must be an int, a pair of ints, .*or 'same'"):
        Conv2dOperator(k, (3, 5, 5), padding="valid")
    with pytest.raises(
        ValueError, match=r"stride must be an integer >= 1 or a pair of them, got 0"
    ):
        Conv2dOperator(k, (3, 5, 5), stride=0)
    with pytest.raises(ValueError, match=r"padding must be an integer >= 0 .* got \(1, -1\)"):
        Conv2dOperator(k, (3, 5, 5), padding=(1, -1))
    bad = k.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="convolution kernel contains NaN or Inf"):
        Conv2dOperator(bad, (3, 5, 5))


def test_conv_uneven_padding_and_patches_match_naive_loop():
    k = _gaussian(3, 2, 3, 2)
    op = Conv2dOperator(k, (2, 6, 5), stride=(1, 2), padding=(0, 2, 1, 0))
    assert op.padding == (0, 2, 1, 0)
    X = _gaussian(2, 2, 6, 5)
    naive = np.array([naive_conv2d(x, k, (1, 2), (0, 2, 1, 0)) for x in X])
    np.testing.assert_allclose(op.apply(X.reshape(2, -1)), naive.reshape(2, -1), atol=1e-12)
    # The same geometry from its own attributes.
    again = Conv2dOperator(k, op.in_shape, op.stride, op.padding)
    np.testing.assert_array_equal(again.apply(X.reshape(2, -1)), op.apply(X.reshape(2, -1)))
    # im2col: (A_k x_b)[o, i, j] = P[(b, i, j)] · vec k[o], and P is linear in x (a unit kernel
    # entry picks one column of P).
    P = op.patches(X.reshape(2, -1))
    H_out, W_out = op.out_shape[1:]
    assert P.shape == (2 * H_out * W_out, k[0].size)
    np.testing.assert_allclose(
        P @ k.reshape(3, -1).T, naive.transpose(0, 2, 3, 1).reshape(-1, 3), atol=1e-12
    )
    with pytest.raises(ValueError, match=r"padding \(left, right\) must be an integer >= 0"):
        Conv2dOperator(k, (2, 6, 5), padding=(0, 1, -1, 0))


def test_conv_kernel_is_a_private_copy():
    k = _gaussian(1, 1, 2, 2)
    op = Conv2dOperator(k, (1, 3, 3))
    before = op.apply(np.ones(9))
    k[:] = 0.0
    np.testing.assert_array_equal(op.apply(np.ones(9)), before)
    assert Conv2dOperator(np.zeros((1, 1, 2, 2)), (1, 3, 3)).is_zero


# --- BlockOperator ----------------------------------------------------------------------------


def test_block_operator_assembles_to_the_dense_block_matrix():
    A, B, C = _gaussian(3, 4), _gaussian(3, 2), _gaussian(5, 2)
    grad = Gradient2D((2, 2))  # 8 × 4
    op = BlockOperator([[A, B, None], [None, C, None], [None, None, grad]])
    expected = np.block(
        [
            [A, B, np.zeros((3, 4))],
            [np.zeros((5, 4)), C, np.zeros((5, 4))],
            [np.zeros((8, 6)), np_dense_gradient_2x2()],
        ]
    )
    np.testing.assert_allclose(op.to_dense(), expected, atol=1e-15)
    x = _gaussian(10)
    np.testing.assert_allclose(op.apply(x), expected @ x, atol=1e-13)
    assert op.shape == (16, 10)
    assert op.row_slices == [slice(0, 3), slice(3, 8), slice(8, 16)]
    assert op.col_slices == [slice(0, 4), slice(4, 6), slice(6, 10)]
    assert op.blocks[0][2] is None and op.blocks[2][2] is grad
    assert op.norm_bound() >= np.linalg.norm(expected, 2)


def np_dense_gradient_2x2():
    """The 8 × 4 forward-difference matrix on a 2 × 2 image, from np_diff_gradient."""
    return np.array([np_diff_gradient(e.reshape(2, 2)).ravel() for e in np.eye(4)]).T


def test_block_diag_matches_scipy_and_its_norm_is_the_max():
    A, B = _gaussian(3, 2), 5.0 * _gaussian(2, 4)
    op = block_diag(MatrixOperator(A), MatrixOperator(B))
    np.testing.assert_allclose(op.to_dense(), scipy.linalg.block_diag(A, B))
    assert op.norm_bound() == pytest.approx(max(np.linalg.norm(A, 2), np.linalg.norm(B, 2)))


def test_block_bidiagonal_residual_structure():
    # M = [[−I, I, 0], [0, −I, I], [0, 0, 0]] as in docs/math/lifted.md for a residual net
    n = 4
    I, minus_I = IdentityOperator(n), IdentityOperator(n, scale=-1.0)
    M = BlockOperator(
        [[minus_I, I, None], [None, minus_I, I], [None, None, None]], row_sizes=[n, n, n]
    )
    shift = np.eye(3, k=1) - np.eye(3)
    shift[2, 2] = 0.0
    expected = np.kron(shift, np.eye(n))
    np.testing.assert_array_equal(M.to_dense(), expected)
    assert np.linalg.norm(expected, 2) <= M.norm_bound() <= 2.0 + 1e-9
    assert not M.is_zero and BlockOperator([[None]], [2], [3]).is_zero


def test_block_operator_shape_errors():
    A, B = np.ones((3, 2)), np.ones((4, 2))
    with pytest.raises(
        ShapeError,
        match=r"block row 0 has inconsistent sizes: block \(0, 0\) has 3, "
        r"block \(0, 1\) has 4",
    ):
        BlockOperator([[A, B]])
    with pytest.raises(
        ShapeError,
        match=r"block column 1 has inconsistent sizes: block \(0, 1\) has "
        r"2, block \(1, 1\) has 3",
    ):
        BlockOperator([[A, A], [None, np.ones((3, 3))]])
    with pytest.raises(ShapeError, match="block row 1 holds only None blocks; give row_sizes"):
        BlockOperator([[A], [None]])
    with pytest.raises(ShapeError, match=r"block row 0 .* block \(0, 0\) has 3; row_sizes says 5"):
        BlockOperator([[A]], row_sizes=[5])
    with pytest.raises(ShapeError, match="2 block column sizes given for 1 block columns"):
        BlockOperator([[A]], col_sizes=[2, 2])
    with pytest.raises(ShapeError, match="block row 1 has 1 blocks, but row 0 has 2"):
        BlockOperator([[A, A], [A]])
    with pytest.raises(ShapeError, match="needs a non-empty grid"):
        BlockOperator([])
    with pytest.raises(ShapeError, match="block_diag needs at least one operator"):
        block_diag()


@pytest.mark.parametrize("scale", [1e200, 1e160])
def test_weights_whose_products_overflow_are_refused_up_front(scale):
    # Issue 16, item 10: weights × 1e200 reached scipy's eigh inside the certificate.
    import bregmod as bm

    rng = np.random.default_rng(0)
    W = rng.standard_normal((3, 4)) * scale
    with pytest.raises(ValueError, match=r"W of Residual is too large for float64 .*"
                                         r"‖W of Residual‖_F² = Σ a_ij² overflows"):
        bm.Residual(W, np.zeros(3), bm.ReLU())
    with pytest.raises(ValueError, match="W of Dense is too large"):
        bm.Dense(W, None, bm.ReLU())
    bm.Dense(W / scale * 1e150, None, bm.ReLU())  # large but Σ a² = 1e301·… is finite
