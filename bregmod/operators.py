"""Linear operators for the lifted form N(u₀) = K u + c, M u = V z, z = prox_Ψ(W u + b).

Every operator is an :class:`Operator`, a subclass of :class:`scipy.sparse.linalg.LinearOperator`
(so ``matvec``, ``rmatvec``, ``matmat``, ``.T``, ``.H`` and ``@`` work), with

* ``apply(x)`` / ``apply_adjoint(y)``: batched maps, x of shape (n,) or (B, n) ↦ (m,) or (B, m)
  (one BLAS-3 call per batch for matrices); the floating dtype of the input is kept
  (float32 in, float32 out);
* ``norm_bound()``: an upper bound on the spectral norm ‖A‖₂ — analytic where known, else a
  Lanczos estimate inflated by a stated safety margin; cached;
* ``to_dense()``, ``is_zero`` and ``matrix_free`` (True when there is no stored matrix, so the
  adjoint is code that :func:`dot_test` should check).

Operators are real: ``.T`` and ``.H`` are the same adjoint operator.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from numpy.lib.stride_tricks import sliding_window_view
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, svds

from bregmod._checks import finite_array, from_tensor, positive_scalar, storage_dtype
from bregmod.errors import AdjointError, ConversionWarning, ShapeError, SolverError

__all__ = [
    "NORM_ESTIMATE_MARGIN",
    "BlockOperator",
    "Conv2dOperator",
    "Gradient2D",
    "IdentityOperator",
    "MatrixOperator",
    "Operator",
    "ZeroOperator",
    "as_operator",
    "block_diag",
    "dot_test",
]

#: Relative safety margin of estimated norm bounds: bound = (1 + margin) · estimate.
NORM_ESTIMATE_MARGIN = 0.05
#: Relative slack added to every norm bound, so that values exact in real arithmetic stay upper
#: bounds after floating-point rounding.
_ROUNDING_SLACK = 1e-12
#: Matrices with at most this many entries (so min(m, n) ≤ 2000) get their exact norm.
_DENSE_NORM_ENTRIES = 4 * 10**6
#: Matrix-free operators with min(m, n) at most this size are densified for an exact norm.
_MATRIX_FREE_DENSE_LIMIT = 200
#: Entries of one im2col buffer in Conv2dOperator (images are processed in chunks this size).
_IM2COL_BUDGET = 2**18
#: Largest kernel spectrum (C_out·C_in·frequencies) for which Conv2dOperator uses the DFT bound.
_FOURIER_ENTRIES = 2**22


def _estimated_norm(op: LinearOperator) -> float:
    """Upper bound (1 + NORM_ESTIMATE_MARGIN) · σ̂_max(A) from a Lanczos (ARPACK) estimate σ̂_max.

    Lanczos Ritz values never exceed σ_max, so the estimate is from below; the margin covers
    the remaining convergence error (a deterministic start vector keeps results reproducible).
    """
    v0 = np.random.default_rng(0).standard_normal(min(op.shape))
    try:
        sigma = svds(op, k=1, tol=1e-6, v0=v0, maxiter=5000, return_singular_vectors=False)
    except ArpackNoConvergence as exc:
        raise SolverError(f"norm estimate of {op!r} did not converge: {exc}") from None
    return float((1.0 + NORM_ESTIMATE_MARGIN) * sigma[0])


def _read_only(x, name: str, dtype=np.float64) -> np.ndarray:
    """``x`` as a finite ``dtype`` array that the operator owns (copied if shared) and freezes."""
    x = from_tensor(x, name)
    arr = finite_array(x, name, dtype)
    if np.may_share_memory(arr, x):
        arr = arr.copy()
    arr.flags.writeable = False
    return arr


def _check_no_overflow(entries: np.ndarray, name: str) -> float:
    """Return ‖A‖_F² = Σ a_ij² (summed in float64); refuse a matrix for which it overflows.

    ‖A‖₂² ≤ ‖A‖_F², so then products such as AᵀA (certificates, norm bounds, Gram matrices of
    the solvers) may be ±inf or NaN; better said here than deep inside an eigensolver.
    """
    flat = entries.ravel()
    with np.errstate(over="ignore"):
        total = float(np.einsum("i,i->", flat, flat, dtype=np.float64))
    if not np.isfinite(total):
        largest = float(np.max(np.abs(entries)))
        raise ValueError(
            f"{name} is too large for float64 arithmetic: its entries reach {largest:.3g} and "
            f"‖{name}‖_F² = Σ a_ij² overflows (> {np.finfo(float).max:.3g}), so products such as "
            "AᵀA in the certificate and the solvers would be inf or NaN; rescale the weights "
            "(e.g. divide W and b by a common factor and scale the data accordingly)"
        )
    return total


def _positive_int(value, name: str) -> int:
    """Return ``value`` as an int, raising ``ValueError`` unless it is an integer >= 1."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


class Operator(LinearOperator):
    """Real linear operator A : ℝⁿ → ℝᵐ with batched application and a norm bound.

    Subclasses implement ``_apply(X)`` and ``_apply_adjoint(Y)`` on 2-D batches
    (X of shape (B, n) ↦ A X row-wise, shape (B, m); Y of shape (B, m) ↦ Aᵀ Y, shape (B, n)),
    returning arrays of the input's dtype, and may override ``_norm_bound`` (default: exact
    from the dense matrix for min(m, n) ≤ 200, else a Lanczos estimate × (1 + 0.05)).

    Parameters
    ----------
    shape : tuple of int
        (m, n).
    matrix_free : bool
        True when the operator has no stored matrix (its adjoint is hand-written code).
    """

    def __init__(self, shape: tuple[int, int], matrix_free: bool = False) -> None:
        m = _positive_int(shape[0], "number of rows")
        n = _positive_int(shape[1], "number of columns")
        super().__init__(dtype=np.dtype(np.float64), shape=(m, n))
        self.matrix_free = bool(matrix_free)
        self._cached_norm_bound: float | None = None

    def cache_as(self, dtype) -> None:
        """Prepare repeated products in ``dtype`` (a solver's iterates); nothing to do here.

        Operators that store a matrix keep a copy in ``dtype`` (:meth:`MatrixOperator.cache_as`);
        composite operators pass the request on to their parts.
        """

    # --- batched application -------------------------------------------------------------
    def _as_batch(self, x, size: int, method: str) -> tuple[np.ndarray, bool]:
        """Check x of shape (size,) or (B, size); return it 2-D (float32/64) and if it was 1-D."""
        arr = np.asarray(x)
        if arr.dtype.kind == "c":
            raise TypeError(f"{self!r}.{method}: operators are real, got a complex input")
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"{self!r}.{method}: input must be numeric, got dtype {arr.dtype}")
        if arr.dtype not in (np.float32, np.float64):
            arr = arr.astype(np.float64)
        if arr.ndim not in (1, 2) or arr.shape[-1] != size:
            raise ShapeError(
                f"{self!r}.{method}: expected an input of shape ({size},) or (B, {size}), "
                f"got {arr.shape}"
            )
        return (arr[None, :], True) if arr.ndim == 1 else (arr, False)

    def apply(self, x) -> np.ndarray:
        """Forward map A x for x of shape (n,) or a batch of rows X of shape (B, n) ↦ X Aᵀ."""
        X, single = self._as_batch(x, self.shape[1], "apply")
        out = self._apply(X)
        return out[0] if single else out

    def apply_adjoint(self, y) -> np.ndarray:
        """Adjoint map Aᵀ y for y of shape (m,) or a batch of rows Y of shape (B, m) ↦ Y A."""
        Y, single = self._as_batch(y, self.shape[0], "apply_adjoint")
        out = self._apply_adjoint(Y)
        return out[0] if single else out

    def _apply(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement _apply")

    def _apply_adjoint(self, Y: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must implement _apply_adjoint")

    # --- scipy LinearOperator interface ----------------------------------------------------
    def _matvec(self, x):
        return self.apply(np.ravel(x))

    def _rmatvec(self, x):
        return self.apply_adjoint(np.ravel(x))

    def _matmat(self, X):
        return self.apply(np.asarray(X).T).T

    def _rmatmat(self, X):
        return self.apply_adjoint(np.asarray(X).T).T

    def _adjoint(self) -> Operator:
        return _AdjointOperator(self)

    _transpose = _adjoint

    # --- properties ------------------------------------------------------------------------
    def norm_bound(self) -> float:
        """Upper bound on the spectral norm ‖A‖₂ = σ_max(A) (computed once, then cached).

        The value from ``_norm_bound`` is inflated by a relative 1e-12 for rounding.
        """
        if self._cached_norm_bound is None:
            self._cached_norm_bound = (1.0 + _ROUNDING_SLACK) * float(self._norm_bound())
        return self._cached_norm_bound

    def _norm_bound(self) -> float:
        m, n = self.shape
        if min(m, n) <= _MATRIX_FREE_DENSE_LIMIT:
            return float(np.linalg.norm(self.to_dense(), 2))
        return _estimated_norm(self)

    def to_dense(self) -> np.ndarray:
        """The dense m × n matrix (for small operators and tests), built column- or row-wise."""
        m, n = self.shape
        if n <= m:
            return self._apply(np.eye(n)).T
        return self._apply_adjoint(np.eye(m))

    @property
    def is_zero(self) -> bool:
        """True if the operator is identically zero."""
        return False

    def __repr__(self) -> str:
        m, n = self.shape
        return f"{type(self).__name__}({m}×{n})"


class _AdjointOperator(Operator):
    """The adjoint Aᵀ of an operator A (apply ↔ apply_adjoint); its adjoint is A again."""

    def __init__(self, parent: Operator) -> None:
        super().__init__((parent.shape[1], parent.shape[0]), matrix_free=parent.matrix_free)
        self.parent = parent

    def _apply(self, X):
        return self.parent._apply_adjoint(X)

    def _apply_adjoint(self, Y):
        return self.parent._apply(Y)

    def _adjoint(self) -> Operator:
        return self.parent

    _transpose = _adjoint

    def cache_as(self, dtype) -> None:
        self.parent.cache_as(dtype)

    def norm_bound(self) -> float:
        """‖Aᵀ‖₂ = ‖A‖₂: the parent's bound."""
        return self.parent.norm_bound()

    def to_dense(self) -> np.ndarray:
        return self.parent.to_dense().T

    @property
    def is_zero(self) -> bool:
        return self.parent.is_zero

    def __repr__(self) -> str:
        return f"{self.parent!r}.T"


class MatrixOperator(Operator):
    """A stored matrix A (dense ndarray or scipy.sparse), x ↦ A x.

    Batches use one matrix product, X Aᵀ (BLAS-3 for dense A). The matrix is copied into a
    read-only array (or CSR array) and checked for NaN/Inf. Its dtype is kept when it is
    float32 (half the memory; :attr:`storage_dtype`) and float64 otherwise (integers, booleans
    and float16 become float64). A product in the other dtype converts the matrix for that
    product only (exact: float32 values are float64 values), unless a solver asked for a
    cached copy (:meth:`cache_as`) because it will iterate in that dtype.

    Norm bound: for m·n ≤ 4·10⁶ (hence min(m, n) ≤ 2000) the exact ‖A‖₂ (``np.linalg.norm(A, 2)``,
    sparse matrices densified); otherwise min(‖A‖_F, (1 + 0.05) · σ̂_max) with σ̂_max a
    Lanczos (``svds``) estimate — the Frobenius norm is a guaranteed bound, the estimate
    carries the 5 % safety margin ``NORM_ESTIMATE_MARGIN``.

    Parameters
    ----------
    A : array_like (2-D) or scipy.sparse matrix/array
        The matrix.
    name : str, optional
        Used in ``repr`` and error messages.
    """

    def __init__(self, A, name: str = "matrix") -> None:
        dtype = storage_dtype(A)
        if sp.issparse(A):
            matrix = sp.csr_array(A, dtype=dtype, copy=True)
            finite_array(matrix.data, f"{name} (sparse entries)")
            matrix.data.flags.writeable = False
            self._sparse = True
        else:
            matrix = _read_only(A, name, dtype)
            if matrix.ndim != 2:
                raise ShapeError(f"{name} must be a 2-D matrix, got shape {matrix.shape}")
            self._sparse = False
        if 0 in matrix.shape:
            raise ShapeError(f"{name} must have at least one row and column, got {matrix.shape}")
        self._frobenius_sq = _check_no_overflow(matrix.data if self._sparse else matrix, name)
        super().__init__(matrix.shape, matrix_free=False)
        self.name = name
        #: The dtype the matrix is stored in: float32 when A was float32, else float64.
        self.storage_dtype = matrix.dtype
        self._by_dtype = {matrix.dtype: matrix}

    @property
    def matrix(self):
        """The stored matrix (read-only ndarray, or a scipy.sparse CSR array) in
        :attr:`storage_dtype`."""
        return self._by_dtype[self.storage_dtype]

    @staticmethod
    def _float_dtype(dtype) -> np.dtype:
        dtype = np.dtype(dtype)
        if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        return dtype

    def matrix_as(self, dtype):
        """The matrix in ``dtype``: the stored one, a cached copy, or a new temporary copy."""
        dtype = self._float_dtype(dtype)
        cached = self._by_dtype.get(dtype)
        return self.matrix.astype(dtype) if cached is None else cached

    def cache_as(self, dtype) -> None:
        """Keep a copy of the matrix in ``dtype`` for the products of an iterative solver.

        A float64 copy of float32 weights doubles their memory and is announced by a
        ``ConversionWarning`` (solve with ``dtype=np.float32`` to iterate in the weights' dtype).
        """
        dtype = self._float_dtype(dtype)
        if dtype in self._by_dtype:
            return
        if dtype == np.float64:
            m, n = self.shape
            warnings.warn(
                f"{self.name} ({m}×{n}) is stored in float32; solving in float64 keeps a "
                f"float64 copy ({self.matrix.data.nbytes * 2 / 2**20:.3g} MiB more); "
                "solve(dtype=np.float32) iterates in the weights' dtype with one copy",
                ConversionWarning,
                stacklevel=5,
            )
        self._by_dtype[dtype] = self.matrix.astype(dtype)

    def _apply(self, X):
        A = self.matrix_as(X.dtype)
        return (A @ X.T).T if self._sparse else X @ A.T

    def _apply_adjoint(self, Y):
        A = self.matrix_as(Y.dtype)
        return (A.T @ Y.T).T if self._sparse else Y @ A

    def _norm_bound(self) -> float:
        m, n = self.shape
        if m * n <= _DENSE_NORM_ENTRIES:
            # σ_max(A)² = λ_max of the smaller Gram matrix: exact to rounding, and several
            # times faster than the full SVD behind np.linalg.norm(A, 2) for m ≪ n
            A = self.to_dense()
            gram = A @ A.T if m <= n else A.T @ A
            k = gram.shape[0]
            if k == 0:
                return 0.0
            top = scipy.linalg.eigvalsh(gram, subset_by_index=[k - 1, k - 1])[0]
            return float(np.sqrt(max(top, 0.0)))
        frobenius = float(np.sqrt(self._frobenius_sq))
        if frobenius == 0.0:
            return 0.0
        return min(frobenius, _estimated_norm(self))

    def to_dense(self) -> np.ndarray:
        """A float64 copy of the matrix (dense)."""
        dense = self.matrix.toarray() if self._sparse else self.matrix
        return np.array(dense, dtype=np.float64)

    @property
    def is_zero(self) -> bool:
        A = self.matrix
        return not (A.data.any() if self._sparse else A.any())

    def __repr__(self) -> str:
        m, n = self.shape
        kind = f"sparse, nnz={self.matrix.nnz}" if self._sparse else "dense"
        return f"MatrixOperator({self.name}: {m}×{n}, {kind})"


class IdentityOperator(Operator):
    """Scaled identity x ↦ s·x on ℝⁿ; ‖s I‖₂ = |s| (exact). Self-adjoint.

    Parameters
    ----------
    n : int
        Dimension.
    scale : float, optional
        The factor s (finite; default 1).
    """

    def __init__(self, n: int, scale: float = 1.0) -> None:
        n = _positive_int(n, "n")
        super().__init__((n, n))
        scale = finite_array(scale, "scale")
        if scale.ndim != 0:
            raise ValueError(f"scale must be a scalar, got an array of shape {scale.shape}")
        self.scale = float(scale)

    def _apply(self, X):
        return X * X.dtype.type(self.scale)

    _apply_adjoint = _apply

    def _adjoint(self) -> Operator:
        return self

    _transpose = _adjoint

    def _norm_bound(self) -> float:
        return abs(self.scale)

    def to_dense(self) -> np.ndarray:
        return self.scale * np.eye(self.shape[0])

    @property
    def is_zero(self) -> bool:
        return self.scale == 0.0

    def __repr__(self) -> str:
        n = self.shape[0]
        return (
            f"IdentityOperator({n})"
            if self.scale == 1.0
            else f"{self.scale!r}·IdentityOperator({n})"
        )


class ZeroOperator(Operator):
    """The zero map ℝⁿ → ℝᵐ (‖0‖₂ = 0).

    Parameters
    ----------
    m, n : int
        Numbers of rows and columns.
    """

    def __init__(self, m: int, n: int) -> None:
        super().__init__((m, n))

    def _apply(self, X):
        return np.zeros((X.shape[0], self.shape[0]), dtype=X.dtype)

    def _apply_adjoint(self, Y):
        return np.zeros((Y.shape[0], self.shape[1]), dtype=Y.dtype)

    def _adjoint(self) -> Operator:
        return ZeroOperator(self.shape[1], self.shape[0])

    _transpose = _adjoint

    def _norm_bound(self) -> float:
        return 0.0

    def to_dense(self) -> np.ndarray:
        return np.zeros(self.shape)

    @property
    def is_zero(self) -> bool:
        return True

    def __repr__(self) -> str:
        return f"ZeroOperator({self.shape[0]}, {self.shape[1]})"


class Gradient2D(Operator):
    """Forward-difference gradient ∇ on H × W images with Neumann boundary (matrix-free).

    For u of shape (H, W) (flattened row-major), ∇u has layout (2, H, W) flattened, ``[dx; dy]``:

        dx[i, j] = u[i+1, j] − u[i, j]  (i < H−1),   dx[H−1, j] = 0   (along axis 0, rows)
        dy[i, j] = u[i, j+1] − u[i, j]  (j < W−1),   dy[i, W−1] = 0   (along axis 1, columns)

    The adjoint is ∇ᵀ = −div (:meth:`divergence`). Since ∇ᵀ∇ = D_HᵀD_H ⊗ I + I ⊗ D_WᵀD_W with
    eig(DₙᵀDₙ) = {4 sin²(πk/(2n)) : k = 0..n−1}, the norm is known exactly:

        ‖∇‖₂² = 4 sin²(π(H−1)/(2H)) + 4 sin²(π(W−1)/(2W)) ≤ 8,

    which :meth:`norm_bound` returns (square-rooted).

    Parameters
    ----------
    shape : tuple of int
        Image shape (H, W).
    """

    def __init__(self, shape: Sequence[int]) -> None:
        if len(shape) != 2:
            raise ShapeError(f"Gradient2D needs an image shape (H, W), got {tuple(shape)}")
        H = _positive_int(shape[0], "image height H")
        W = _positive_int(shape[1], "image width W")
        super().__init__((2 * H * W, H * W), matrix_free=True)
        self.in_shape = (H, W)
        self.out_shape = (2, H, W)

    def _apply(self, X):
        U = X.reshape(-1, *self.in_shape)
        G = np.zeros((U.shape[0], *self.out_shape), dtype=X.dtype)
        np.subtract(U[:, 1:, :], U[:, :-1, :], out=G[:, 0, :-1, :])
        np.subtract(U[:, :, 1:], U[:, :, :-1], out=G[:, 1, :, :-1])
        return G.reshape(U.shape[0], -1)

    def _apply_adjoint(self, Y):
        P = Y.reshape(-1, *self.out_shape)
        px, py = P[:, 0, :-1, :], P[:, 1, :, :-1]
        R = np.zeros((P.shape[0], *self.in_shape), dtype=Y.dtype)
        R[:, :-1, :] -= px
        R[:, 1:, :] += px
        R[:, :, :-1] -= py
        R[:, :, 1:] += py
        return R.reshape(P.shape[0], -1)

    def divergence(self, p) -> np.ndarray:
        """div p = −∇ᵀp for p of shape (2HW,) or (B, 2HW) (layout [px; py] as the gradient)."""
        return -self.apply_adjoint(p)

    def _norm_bound(self) -> float:
        return float(
            np.sqrt(sum(4 * np.sin(np.pi * (n - 1) / (2 * n)) ** 2 for n in self.in_shape))
        )

    def __repr__(self) -> str:
        return f"Gradient2D(shape={self.in_shape})"


def _pair(value, name: str, minimum: int) -> tuple[int, int]:
    """An int or a pair of ints ≥ ``minimum`` as a pair."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or any(
        isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < minimum for v in pair
    ):
        raise ValueError(f"{name} must be an integer >= {minimum} or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


class Conv2dOperator(Operator):
    """Multi-channel 2-D cross-correlation (PyTorch ``conv2d`` semantics, no bias), matrix-free.

        y[o, i, j] = Σ_c Σ_{p,q} k[o, c, p, q] · x[c, i·s + p − pad_top, j·s + q − pad_left]

    with x zero outside its C × H × W support. Input and output are flattened row-major from
    shapes ``in_shape = (C, H, W)`` and ``out_shape = (C_out, H_out, W_out)``,
    H_out = ⌊(H + pad_top + pad_bottom − kh)/s⌋ + 1 (same for W). The adjoint is the transposed
    convolution (scatter-add of k[:, :, p, q]ᵀ y into the strided positions), exact.
    Batches have a leading axis; the forward map is one im2col matrix product per chunk of
    images, the adjoint one product and kh·kw strided scatter-adds.

    Norm bound: A = R C E with E the zero-padding embedding (an isometry), C the circular
    correlation on the padded grid and R the (strided) restriction (‖R‖ ≤ 1), so

        ‖A‖₂ ≤ ‖C‖₂ = max_ω σ_max(k̂(ω)),

    k̂(ω) the C_out × C_in matrix of the kernel's DFT on the padded grid (:meth:`fourier_bound`)
    — a guaranteed bound, tight up to boundary effects for stride 1, which is what stride-1
    operators return. Small operators (min(m, n) ≤ 200) return min(that, exact ‖A‖₂ from the
    dense matrix). Larger operators with stride > 1 (where the DFT bound can be loose by about
    the stride) return min(DFT bound, (1 + 0.05) · σ̂_max) with σ̂_max a Lanczos estimate — an
    estimate inflated by the 5 % margin ``NORM_ESTIMATE_MARGIN``, not a guarantee; so does any
    operator whose kernel spectrum would exceed 2²² entries, without the DFT term.

    Parameters
    ----------
    kernel : array_like, shape (C_out, C_in, kh, kw)
        Finite filter weights.
    in_shape : tuple of int
        (C_in, H, W).
    stride : int or (int, int), optional
    padding : int, (int, int), (int, int, int, int) or "same", optional
        Zero padding on both sides of each axis, or (top, bottom, left, right) as in
        :attr:`padding` (so ``Conv2dOperator(k, A.in_shape, A.stride, A.padding)`` has the
        geometry of ``A``); "same" (stride 1 only) pads kh − 1 rows, ⌊(kh − 1)/2⌋ on top and
        the rest at the bottom (as PyTorch), likewise columns.
    """

    def __init__(self, kernel, in_shape: Sequence[int], stride=1, padding=0) -> None:
        kernel = _read_only(kernel, "convolution kernel")
        if kernel.ndim != 4:
            raise ShapeError(
                f"convolution kernel must have shape (C_out, C_in, kh, kw), got {kernel.shape}"
            )
        if 0 in kernel.shape:
            raise ShapeError(f"convolution kernel has an empty axis: shape {kernel.shape}")
        if len(in_shape) != 3:
            raise ShapeError(f"in_shape must be (C, H, W), got {tuple(in_shape)}")
        C, H, W = (_positive_int(v, "in_shape entry") for v in in_shape)
        C_out, C_in, kh, kw = kernel.shape
        if C_in != C:
            raise ShapeError(
                f"kernel expects C_in={C_in} input channels, but in_shape {tuple(in_shape)} "
                f"has C={C}"
            )
        sh, sw = _pair(stride, "stride", 1)
        if isinstance(padding, str):
            if padding != "same":
                raise ValueError(
                    "padding must be an int, a pair of ints, (top, bottom, left, right) or "
                    f"'same', got {padding!r}"
                )
            if (sh, sw) != (1, 1):
                raise ValueError(f"padding='same' needs stride 1, got stride {(sh, sw)}")
            pads = ((kh - 1) // 2, kh - 1 - (kh - 1) // 2, (kw - 1) // 2, kw - 1 - (kw - 1) // 2)
        elif not isinstance(padding, (int, np.integer)) and len(tuple(padding)) == 4:
            top, bottom = _pair(tuple(padding)[:2], "padding (top, bottom)", 0)
            left, right = _pair(tuple(padding)[2:], "padding (left, right)", 0)
            pads = (top, bottom, left, right)
        else:
            ph, pw = _pair(padding, "padding", 0)
            pads = (ph, ph, pw, pw)
        Hp, Wp = H + pads[0] + pads[1], W + pads[2] + pads[3]
        if Hp < kh or Wp < kw:
            raise ShapeError(
                f"kernel {kh}×{kw} is larger than the padded input {Hp}×{Wp} "
                f"(in_shape {(C, H, W)}, padding {pads})"
            )
        H_out, W_out = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
        super().__init__((C_out * H_out * W_out, C * H * W), matrix_free=True)
        self.kernel = kernel
        self.in_shape = (C, H, W)
        self.out_shape = (C_out, H_out, W_out)
        self.stride = (sh, sw)
        self.padding = pads
        self._padded_shape = (Hp, Wp)
        self._flat_kernels: dict[np.dtype, np.ndarray] = {}

    def _flat_kernel_as(self, dtype) -> np.ndarray:
        """The kernel as a C_out × (C_in·kh·kw) matrix in ``dtype`` (cached per dtype)."""
        dtype = np.dtype(dtype)
        if dtype not in self._flat_kernels:
            self._flat_kernels[dtype] = self.kernel.reshape(self.kernel.shape[0], -1).astype(dtype)
        return self._flat_kernels[dtype]

    def _chunks(self, B: int):
        """Slices of the batch whose im2col buffers hold about ``_IM2COL_BUDGET`` entries."""
        _, H_out, W_out = self.out_shape
        per_image = self.kernel[0].size * H_out * W_out
        step = max(1, _IM2COL_BUDGET // per_image)
        return (slice(start, start + step) for start in range(0, B, step))

    def _windows(self, p: int, q: int) -> tuple[slice, slice]:
        """Padded-grid rows and columns that kernel offset (p, q) meets, one per output pixel."""
        (sh, sw), (_, H_out, W_out) = self.stride, self.out_shape
        return slice(p, p + sh * (H_out - 1) + 1, sh), slice(q, q + sw * (W_out - 1) + 1, sw)

    def _patch_view(self, X: np.ndarray, dtype) -> np.ndarray:
        """patches[b, c, i, j, p, q] = Xp[b, c, i·s + p, j·s + q], Xp the zero-padded rows X
        in ``dtype`` (a view of Xp)."""
        C, H, W = self.in_shape
        top, _, left, _ = self.padding
        (_, _, kh, kw), (sh, sw) = self.kernel.shape, self.stride
        Xp = np.zeros((X.shape[0], C, *self._padded_shape), dtype=dtype)
        Xp[:, :, top : top + H, left : left + W] = X.reshape(-1, C, H, W)
        return sliding_window_view(Xp, (kh, kw), axis=(2, 3))[:, :, ::sh, ::sw]

    def patches(self, x) -> np.ndarray:
        """The im2col matrix P of rows x, shape (B·H_out·W_out, C_in·kh·kw): one row per sample
        and output pixel (i, j), P[(b, i, j), (c, p, q)] = x_b[c, i·s + p − pad_top,
        j·s + q − pad_left] (0 in the padding), so that (A_k x_b)[o, i, j] = P[(b, i, j)] ·
        vec k[o]; the Hessian of ½ Σ_b ‖A_k x_b‖² in each vec k[o] is PᵀP.
        """
        X, _ = self._as_batch(x, self.shape[1], "patches")
        columns = self._patch_view(X, X.dtype).transpose(0, 2, 3, 1, 4, 5)  # (b, i, j, c, p, q)
        return columns.reshape(-1, self.kernel[0].size)

    def _apply(self, X):
        B = X.shape[0]
        K = self._flat_kernel_as(X.dtype)
        patches = self._patch_view(X, X.dtype)
        Y = np.empty((B, self.out_shape[0], self.out_shape[1] * self.out_shape[2]), dtype=X.dtype)
        for batch in self._chunks(B):
            columns = patches[batch].transpose(0, 1, 4, 5, 2, 3)  # (b, c, p, q, i, j)
            np.matmul(K, columns.reshape(columns.shape[0], K.shape[1], -1), out=Y[batch])
        return Y.reshape(B, -1)

    def _apply_adjoint(self, Y):
        B = Y.shape[0]
        C, H, W = self.in_shape
        top, _, left, _ = self.padding
        (C_out, _, kh, kw), (_, H_out, W_out) = self.kernel.shape, self.out_shape
        K = self._flat_kernel_as(Y.dtype)
        Yr = Y.reshape(B, C_out, H_out * W_out)
        Xp = np.zeros((B, C, *self._padded_shape), dtype=Y.dtype)
        for batch in self._chunks(B):
            columns = (K.T @ Yr[batch]).reshape(-1, C, kh, kw, H_out, W_out)
            for p in range(kh):
                for q in range(kw):
                    rows, cols = self._windows(p, q)
                    Xp[batch, :, rows, cols] += columns[:, :, p, q]
        return Xp[:, :, top : top + H, left : left + W].reshape(B, -1)

    def kernel_gradient(self, x, y) -> np.ndarray:
        """∂/∂k Σ_b ⟨y_b, A_k x_b⟩, shape (C_out, C_in, kh, kw): the kernel gradient

            G[o, c, p, q] = Σ_b Σ_{i,j} y_b[o, i, j] · x_b[c, i·s + p − pad_top, j·s + q − pad_left]

        (A_k is linear in k). ``x`` has rows (B, n) of inputs, ``y`` rows (B, m) of outputs.
        """
        X, _ = self._as_batch(x, self.shape[1], "kernel_gradient (x)")
        Y, _ = self._as_batch(y, self.shape[0], "kernel_gradient (y)")
        if X.shape[0] != Y.shape[0]:
            raise ShapeError(
                f"kernel_gradient: x has {X.shape[0]} rows, y has {Y.shape[0]}; they must match"
            )
        B, C_out = X.shape[0], self.kernel.shape[0]
        dtype = np.result_type(X, Y)
        patches = self._patch_view(X, dtype)
        Yr = Y.reshape(B, C_out, -1).astype(dtype, copy=False)
        G = np.zeros((C_out, self.kernel[0].size), dtype=dtype)
        for batch in self._chunks(B):
            columns = patches[batch].transpose(0, 1, 4, 5, 2, 3)  # (b, c, p, q, i, j)
            columns = columns.reshape(columns.shape[0], G.shape[1], -1)
            G += np.einsum("bos,bks->ok", Yr[batch], columns)
        return G.reshape(self.kernel.shape)

    def fourier_bound(self) -> float:
        """max_ω σ_max(k̂(ω)) over the DFT grid of the padded input: a guaranteed bound on ‖A‖₂."""
        spectrum = np.fft.rfft2(self.kernel, s=self._padded_shape, axes=(2, 3))
        per_frequency = np.moveaxis(spectrum, (0, 1), (-2, -1))
        if min(self.kernel.shape[:2]) == 1:
            return float(np.sqrt((np.abs(per_frequency) ** 2).sum(axis=(-2, -1)).max()))
        return float(np.linalg.svd(per_frequency, compute_uv=False)[..., 0].max())

    def _norm_bound(self) -> float:
        C_out, C_in, _, _ = self.kernel.shape
        Hp, Wp = self._padded_shape
        if C_out * C_in * Hp * (Wp // 2 + 1) > _FOURIER_ENTRIES:
            return super()._norm_bound()
        bound = self.fourier_bound()
        large = min(self.shape) > _MATRIX_FREE_DENSE_LIMIT
        if bound == 0.0 or (self.stride == (1, 1) and large):
            return bound
        return min(bound, super()._norm_bound())

    @property
    def is_zero(self) -> bool:
        return not self.kernel.any()

    def __repr__(self) -> str:
        return (
            f"Conv2dOperator(kernel={self.kernel.shape}, in_shape={self.in_shape}, "
            f"stride={self.stride}, padding={self.padding}, out_shape={self.out_shape})"
        )


def as_operator(A) -> Operator:
    """Return A as an :class:`Operator`: operators unchanged, matrices wrapped in MatrixOperator."""
    if isinstance(A, Operator):
        return A
    if sp.issparse(A) or isinstance(A, (np.ndarray, list, tuple)):
        return MatrixOperator(A)
    raise TypeError(
        f"expected a bregmod Operator, an ndarray or a scipy.sparse matrix, got {type(A).__name__}"
    )


class BlockOperator(Operator):
    """Block operator A = [A_ij] from a grid of operators, ``None`` for zero blocks.

    (A x)_i = Σ_j A_ij x_j with x split by ``col_slices`` and A x by ``row_slices``; covers
    block-diagonal and block-bidiagonal structure. Sizes are inferred from the blocks; a row or
    column made only of ``None`` needs ``row_sizes`` / ``col_sizes``. Matrix-free iff some block is.

    Norm bound: ‖A‖₂ ≤ ‖N‖₂ with N_ij = (bound on ‖A_ij‖₂), the spectral norm of the small
    matrix of block bounds (a valid upper bound; max_i N_ii for block-diagonal A).

    Parameters
    ----------
    blocks : list of list of (Operator, ndarray, sparse matrix or None)
        The grid; every row has the same length. Matrices are wrapped in MatrixOperator.
    row_sizes, col_sizes : sequence of int, optional
        Block sizes, checked against the blocks.
    """

    def __init__(
        self,
        blocks: Sequence[Sequence[Operator | None]],
        row_sizes: Sequence[int] | None = None,
        col_sizes: Sequence[int] | None = None,
    ) -> None:
        grid = [list(row) for row in blocks]
        if not grid or not grid[0]:
            raise ShapeError("BlockOperator needs a non-empty grid of blocks")
        n_cols = len(grid[0])
        for i, row in enumerate(grid):
            if len(row) != n_cols:
                raise ShapeError(f"block row {i} has {len(row)} blocks, but row 0 has {n_cols}")
        grid = [[None if blk is None else as_operator(blk) for blk in row] for row in grid]
        rows = self._sizes(grid, row_sizes, axis=0)
        cols = self._sizes([list(col) for col in zip(*grid, strict=True)], col_sizes, axis=1)
        super().__init__(
            (sum(rows), sum(cols)),
            matrix_free=any(blk is not None and blk.matrix_free for row in grid for blk in row),
        )
        self.blocks = grid
        self.row_slices = self._slices(rows)
        self.col_slices = self._slices(cols)

    def cache_as(self, dtype) -> None:
        for row in self.blocks:
            for blk in row:
                if blk is not None:
                    blk.cache_as(dtype)

    @staticmethod
    def _sizes(lines, given, axis: int) -> list[int]:
        """Sizes of the block rows (axis 0) or columns (axis 1), inferred and checked."""
        what = "row" if axis == 0 else "column"
        if given is not None:
            given = [_positive_int(s, f"block {what} size") for s in given]
            if len(given) != len(lines):
                raise ShapeError(
                    f"{len(given)} block {what} sizes given for {len(lines)} block {what}s"
                )
        sizes = []
        for i, line in enumerate(lines):
            found = {(j, blk.shape[axis]) for j, blk in enumerate(line) if blk is not None}
            distinct = {size for _, size in found}
            if given is not None:
                distinct.add(given[i])
            if len(distinct) > 1:
                detail = ", ".join(
                    f"block ({i}, {j}) has {size}" if axis == 0 else f"block ({j}, {i}) has {size}"
                    for j, size in sorted(found)
                )
                extra = f"; {what}_sizes says {given[i]}" if given is not None else ""
                raise ShapeError(f"block {what} {i} has inconsistent sizes: {detail}{extra}")
            if not distinct:
                raise ShapeError(
                    f"block {what} {i} holds only None blocks; give {what}_sizes to fix its size"
                )
            sizes.append(distinct.pop())
        return sizes

    @staticmethod
    def _slices(sizes: list[int]) -> list[slice]:
        ends = np.cumsum(sizes)
        return [slice(int(e - s), int(e)) for s, e in zip(sizes, ends, strict=True)]

    def _nonzero(self):
        for i, row in enumerate(self.blocks):
            for j, blk in enumerate(row):
                if blk is not None and not blk.is_zero:
                    yield self.row_slices[i], self.col_slices[j], blk

    def _apply(self, X):
        out = np.zeros((X.shape[0], self.shape[0]), dtype=X.dtype)
        for rows, cols, blk in self._nonzero():
            out[:, rows] += blk._apply(X[:, cols])
        return out

    def _apply_adjoint(self, Y):
        out = np.zeros((Y.shape[0], self.shape[1]), dtype=Y.dtype)
        for rows, cols, blk in self._nonzero():
            out[:, cols] += blk._apply_adjoint(Y[:, rows])
        return out

    def _norm_bound(self) -> float:
        bounds = np.array(
            [[0.0 if blk is None else blk.norm_bound() for blk in row] for row in self.blocks]
        )
        return float(np.linalg.norm(bounds, 2))

    def to_dense(self) -> np.ndarray:
        dense = np.zeros(self.shape)
        for rows, cols, blk in self._nonzero():
            dense[rows, cols] = blk.to_dense()
        return dense

    @property
    def is_zero(self) -> bool:
        return next(self._nonzero(), None) is None

    def __repr__(self) -> str:
        m, n = self.shape
        nb = sum(blk is not None for row in self.blocks for blk in row)
        return (
            f"BlockOperator({m}×{n}, {len(self.blocks)}×{len(self.blocks[0])} grid, "
            f"{nb} nonzero blocks)"
        )


def block_diag(*ops: Operator) -> BlockOperator:
    """Block-diagonal operator diag(A_1, …, A_k) (off-diagonal blocks zero)."""
    if not ops:
        raise ShapeError("block_diag needs at least one operator")
    k = len(ops)
    return BlockOperator([[ops[i] if i == j else None for j in range(k)] for i in range(k)])


def dot_test(op: Operator, rng=None, trials: int = 3, rtol: float = 1e-10) -> float:
    """Randomized adjoint test: worst relative mismatch over ``trials`` Gaussian pairs (x, y),

        |⟨A x, y⟩ − ⟨x, Aᵀ y⟩| / (‖A x‖ ‖y‖ + ‖x‖ ‖Aᵀ y‖)   (0 when the denominator is 0),

    computed in float64. Raises ``AdjointError`` (naming the operator and the mismatch) when it
    exceeds ``rtol``; a correct adjoint gives a value at rounding level (~1e-16).

    Parameters
    ----------
    op : Operator
    rng : None, int or numpy.random.Generator, optional
    trials : int, optional
    rtol : float, optional

    Returns
    -------
    float
        The worst mismatch.
    """
    if not isinstance(op, Operator):
        raise TypeError(f"dot_test needs a bregmod Operator, got {type(op).__name__}")
    trials = _positive_int(trials, "trials")
    rtol = positive_scalar(rtol, "rtol")
    rng = np.random.default_rng(rng)
    m, n = op.shape
    worst = 0.0
    for _ in range(trials):
        x, y = rng.standard_normal(n), rng.standard_normal(m)
        Ax, ATy = op.apply(x), op.apply_adjoint(y)
        if Ax.shape != (m,) or ATy.shape != (n,):
            raise AdjointError(
                f"{op!r}: apply returned shape {Ax.shape} (expected {(m,)}) and apply_adjoint "
                f"{ATy.shape} (expected {(n,)})"
            )
        if not (np.isfinite(Ax).all() and np.isfinite(ATy).all()):
            raise AdjointError(f"{op!r} returned NaN or Inf on a finite random input")
        norm = np.linalg.norm
        denominator = norm(Ax) * norm(y) + norm(x) * norm(ATy)
        gap = abs(float(Ax @ y) - float(x @ ATy))
        worst = max(worst, gap / denominator if denominator > 0 else 0.0)
    if worst > rtol:
        raise AdjointError(
            f"{op!r} failed the adjoint dot-test: relative mismatch "
            f"|<Ax, y> - <x, A^T y>| / (|Ax||y| + |x||A^T y|) = {worst:.3e} > rtol = {rtol:.1e}; "
            "its apply_adjoint is not the adjoint of apply"
        )
    return worst
