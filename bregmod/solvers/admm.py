r"""Structure-exploiting ADMM ("admm") for the one-layer Bregman-fidelity inversion.

Problem
-------
``Inversion(Dense(A, β, σ) or Conv2d(...), f, reg=J, fidelity="bregman")``
(docs/math/error-estimate.md, docs/math/solvers.md)::

    min_u  h(A u + β) + J(u),    h(y) = Σ Φ*(y) − ⟨f, y⟩ + Σ Φ(f)   (h(A u + β) = B_Ψ(f, A u + β)),

with ``J.split()`` = (s, [(w_k, L_k, g_k)]), J(u) = s(u) + Σ_k w_k g_k(L_k u), every L_k the
Neumann forward-difference gradient ∇ (:class:`~bregmod.operators.Gradient2D`, i.e. TV).

Splitting
---------
y = A u + β (penalty ρ_y), p_k = L_k u (penalty ρ_p) and v = u (penalty ρ_v = κ ρ_p): the
constraint E u + c = z with E = [A; L_1; …; I], c = (β, 0, …, 0), z = (y, p_1, …, v), and
F(z) = h(y) + Σ_k w_k g_k(p_k) + s(v). Without a simple part s = 0 and the v block is a
proximal term that makes the u-system invertible along the constants (κ = the smallest nonzero
eigenvalue of Σ_k L_kᵀL_k, so that d₀ below is no worse conditioned than the Laplacian itself;
κ = 1 with a simple part or without TV). ADMM runs as Douglas–Rachford on the state ζ = E u + c + μ
(μ the scaled multiplier), with relaxation θ (default 1):

    z  = prox_{F/ρ}(ζ),   μ = ζ − z,   λ = ρ μ,
    u  = argmin_u ‖E u + c − (z − μ)‖²_ρ,  i.e.  (ρ_y AᵀA + ρ_p Σ_k L_kᵀL_k + ρ_v I) u = r,
    ζ⁺ = θ (E u + c) + (1 − θ) z + μ.

The proxes are closed form: prox_{h/ρ_y}(ζ) = prox_{tΦ*}(ζ + t f), t = 1/ρ_y, from the model
(:meth:`~bregmod.model.onelayer.OneLayerEnergy.prox_data`, by the Moreau identity
prox_{tΦ*}(w) = w − t prox_{Φ/t}(w/t) of :meth:`~bregmod.activations.Activation.prox_phi_conj`);
prox of w_k g_k (group soft thresholding for TV) and of s come from :mod:`bregmod.regularizers`.

The u-step
----------
With T the orthonormal 2-D DCT-II (the identity without TV), ∇ᵀ∇ = Tᵀ diag(λ) T with
λ_ij = 4 sin²(πi/2H) + 4 sin²(πj/2W), so ρ_p Σ_k L_kᵀL_k + ρ_v I = Tᵀ diag(d) T, d = ρ_p d₀,
d₀ = K λ + κ (K TV terms). With Â = A Tᵀ (the DCT of every row of A) and û = T u, Woodbury
through the m × m matrix C = I/ρ_y + Â diag(1/d) Âᵀ (the Gram part G₀ = Â diag(1/d₀) Âᵀ
formed once by SYRK, m²n flops, in float32 for large float64 runs at tol ≥ 1e-6, see
``_GRAM32_FLOPS``; C⁻¹ from its Cholesky factor, m³ flops, when a penalty changes):

    s = ρ_y (y − μ_y − β),   t̂ = T(ρ_p Σ_k L_kᵀ(p_k − μ_k) + ρ_v (v − μ_v)) / d,
    e = C⁻¹(s/ρ_y − Â t̂),   û = Âᵀ e / d + t̂,   A u = (s − e)/ρ_y

(e = ρ_y(y − μ_y − β − A u) is the data block's u-step multiplier): one product with Â and one
with Âᵀ per iteration — the two that an iteration cannot avoid — and A u for free.
A batch (leading axis of the data) shares A, so both products are BLAS-3 (below 4 rows, one
matrix–vector product per row, which OpenBLAS runs faster); each problem keeps its own penalties
(below), so C⁻¹ is kept per distinct pair (ρ_y, ρ_p) in use and applied to the rows that hold it
(2mn flops per row for the products with Â, 2m² for C⁻¹). The vector work of the loop runs the
unchecked kernels of the proxes and norms (the solver's input is validated once, at entry).

A batch whose state has at least ``_SPLIT_ENTRIES`` entries runs, unless more than one of two
cores is busy with other work (the idle-core rule of :mod:`bregmod.solvers._threads` with a
margin of one core; it also respects a pinned BLAS), as two halves on two threads with BLAS
pinned to one thread each (:func:`_solve_halves`): its iteration is vector work over the rows,
which numpy runs outside the GIL. The Result is merged as if the batch ran in one piece
(per-problem statistics in the batch's order); a problem may stop a few iterations apart from a
one-piece run, as the gap's evaluation schedule is shared by the problems of a run.

In a float64 run with m·n ≥ ``_INCREMENTAL_ENTRIES`` the products with Â, Âᵀ and C⁻¹ are
float32 increments of the previous iteration's (:class:`_IncrementalProduct`: X_k M = X_{k−1} M
+ (X_k − X_{k−1}) M₃₂, recomputed exactly in float64 once the increments add up to 0.1‖X_k‖ or
after 100 of them): the float32 matrices stream half the bytes (at 64 × 64, 8 MB against
17 MB, which the 32 MB L3 cache holds while the loop runs; a float64 matrix–vector product took
0.7 ms there, a float32 one 0.15–0.22 ms), and the error, float32 rounding of the increments,
vanishes as the iterates converge. A duality gap the run may stop on is evaluated again from
float64 products with A (A u or A v, and Aᵀλ_y), so the certificate is exact; under the KKT
rule the dual residual's product is exact at every evaluation (``stats["incremental_products"]``).

Acceleration and penalties
--------------------------
Type-II Anderson acceleration (memory ``memory``, Tikhonov-regularised least squares) extrapolates
ζ ↦ ζ⁺ in the ρ-weighted norm; a candidate is rejected (the plain step taken, the memory cleared)
when its fixed-point residual exceeds D‖r₀‖(j + 1)^{−(1+ε)} (Zhang, O'Donoghue & Boyd 2020), j
the number of accepted candidates. Each problem of a batch has its own coefficients, weights,
memory and safeguard: a rejection or a penalty change clears that problem's memory only.

Penalties start at ρ_y = 0.1 and ρ_p = ρ_y ‖A‖_F²/(4 min(m, n)) (the mean nonzero eigenvalue of
AᵀA against ‖∇‖² ≤ 8, doubled). With ``adaptive=True`` they change per problem, from that
problem's own residuals, so that a problem of a batch follows the schedule it follows alone (on
the 64 × 64 benchmark at tol 1e-6, shared penalties — raised when the worst problem's
residuals allowed, lowered when the largest ones did — made the 64 problems of a batch need 629
iterations each on average; per-problem penalties 389, against 384 for each solved alone: the
batch evaluates the gap, and with it the dual residual that the catch-up waits for, every
``_GAP_EVERY`` iterations until all its problems are near tol, see Stopping):

* rescue balancing (Boyd et al. 2011, §3.4.1) at iterations 20, 40, 80, …: a block whose
  relative primal and dual (ρ_b‖E_bᵀΔz_b‖) residuals differ by more than 100× gets
  ρ_b ← ρ_b √(ratio), at most 10× per change (so exactly 10× up or down);
* a late increase: once the KKT residuals fall below 10⁻⁴ (the active structure — zero TV
  groups, the activation's active set — is found), both penalties grow 30×, once;
* a catch-up: large penalties converge the primal side fast and the multipliers slowly, so the
  increase is undone once the primal residual is ≤ tol while the dual one is 10× larger.

Measured on the ReLU/TV benchmark (benchmarks/bench_inversion.py): balancing towards equal
residuals slows this problem down (the fast penalties leave the dual residual 2–5× above the
primal one), while small penalties find the structure fast and large ones converge fast on it.
Every change clears the problem's Anderson memory and costs one m × m inversion unless another
problem of the batch holds the new pair already (the factors are discrete — 10^{±1}, 30^{±1} —
so a batch holds few distinct pairs: 2 at a time and 3 factorisations in all for the 64
problems of the 64 × 64 benchmark at tol 1e-6).

Stopping
--------
Where J is TV and/or a separable simple part whose conjugate domain contains 0 inside
(:mod:`bregmod.solvers.gap`), the run stops when the *relative duality gap* is ≤ tol: a
certified bound on the relative objective error of the returned input (``stats["guarantee"]``
= ``"duality gap"``, ``stats["bound"]`` the bound reached). The gap is evaluated every
``_GAP_EVERY`` iterations and at every iteration once it is ≤ ``_GAP_NEAR``·tol, at the point the
run returns (u, or v with a simple part) with the dual point built from λ_y = ρ_y μ_y = σ(z_y) − f
(its Aᵀλ_y is one more row of the u-step's product with Âᵀ; A v one more row of the product
with Â) and the TV multipliers ρ_p μ_k. Elsewhere (e.g. J with NonNegative) the shared KKT
policy of :mod:`bregmod.solvers._common` stops the run (``stats["guarantee"]`` = ``"KKT
residual"``): at (u, z, λ) — u from the previous u-step, (z, λ) from the proxes, which satisfy
λ_b ∈ ∂F_b(z_b) exactly — the relative primal residual ‖E_b u + c_b − z_b‖ / max(‖E_b u + c_b‖,
‖z_b‖) (worst of the data and regulariser blocks) and the relative dual residual ‖Eᵀλ‖ /
max(‖Aᵀλ_y‖, ‖ρ_p Σ_k L_kᵀμ_k + ρ_v μ_v‖) must be ≤ tol; Aᵀλ_y rides along with the u-step's
product with Âᵀ every 5 iterations and whenever the primal residual is ≤ tol and the last dual
one ≤ 10·tol (the history repeats the last dual value in between). The residuals also drive the
penalty policy in both cases. On the 64 × 64 benchmark the relative objective error is below
10⁻⁶ after 150–200 iterations; the gap certifies it after ≈ 400 (it is first order in the
multipliers' error, the objective error second order in the primal one), the KKT residuals
after 300–360.
The returned input is that u, or v = prox_{s/ρ_v}(ζ_v) ∈ dom s when J has a simple part (e.g.
exactly non-negative). The recorded objective is h(A u + β) + Σ_k w_k g_k(L_k u) + s(v).
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse
from scipy.linalg import blas, lapack
from threadpoolctl import threadpool_limits

from bregmod._checks import positive_scalar
from bregmod.errors import SolverError
from bregmod.model.onelayer import OneLayerEnergy, regularizer_rows
from bregmod.operators import Gradient2D, MatrixOperator
from bregmod.regularizers import L21Norm
from bregmod.solvers._common import (
    Monitor,
    all_finite,
    batch_norm,
    finish,
    prepare,
    relative_residual,
)
from bregmod.solvers._dct import CosineTransform
from bregmod.solvers._threads import LoopThreads, blas_threads, idle_threads
from bregmod.solvers.gap import DualityGap, guarantee

__all__ = [
    "DEFAULT_MAX_ITER",
    "DENSE_ENTRY_LIMIT",
    "MAX_PENALTY_UPDATES",
    "NAME",
    "solve",
    "supports",
]

#: The solver's name in the registry (:mod:`bregmod.solvers.registry`).
NAME = "admm"

#: Iteration limit when ``max_iter`` is None.
DEFAULT_MAX_ITER = 5000
#: A matrix-free A (e.g. a convolution) is densified up to this many entries m·n.
DENSE_ENTRY_LIMIT = 2 * 10**7
#: The penalties change at most this many times (then ADMM runs with fixed penalties).
MAX_PENALTY_UPDATES = 8

_SUPPORTED = (
    "solver 'admm' solves the one-layer Bregman-fidelity problem "
    "B_Ψ(f, A u + β) + J(u) (Inversion(..., fidelity='bregman') of a single Dense or Conv2d "
    "layer), with J = a simple regulariser (L1, SquaredL2, NonNegative, Box, their sums) "
    "plus TV terms whose operator is Gradient2D"
)
#: Default initial ρ_y.
_RHO_DATA = 0.1
#: Rescue balancing: first check, imbalance that triggers a change, largest factor of one change.
_FIRST_CHECK, _BALANCE, _MAX_FACTOR = 20, 100.0, 10.0
#: Late increase of both penalties: KKT residual that triggers it, and its factor; it is undone
#: once the primal residual is ≤ tol and the dual one more than _CATCH_UP_RATIO times larger.
_LATE_THRESHOLD, _LATE_FACTOR, _CATCH_UP_RATIO = 1e-4, 30.0, 10.0
#: The dual residual (another row in the product with Âᵀ) is evaluated every this many
#: iterations, and (KKT rule) whenever the primal residual is ≤ tol and the last dual one ≤
#: 10·tol.
_DUAL_EVERY = 5
#: The duality gap (one more row in the product with Âᵀ, and with Â for a simple part) is
#: evaluated every _GAP_EVERY iterations, and at every iteration once it is ≤ _GAP_NEAR·tol
#: (it is not monotone near the end: on the 64 × 64 benchmark at tol 1e-6 it oscillates
#: between 1e-6 and 4e-6 over its last 60 iterations, so evaluating it only where its trend
#: predicts ≤ tol stopped after 453 iterations instead of 415, and took longer).
_GAP_EVERY, _GAP_NEAR = 5, 10.0
#: Anderson safeguard constants D and ε, and the Tikhonov weight of its least squares.
_SAFEGUARD_D, _SAFEGUARD_EPS, _AA_REGULARIZATION = 1e6, 1e-6, 1e-10
#: Columns of Â processed per SYRK call when forming G₀ (bounds the temporary memory).
_SYRK_COLUMNS = 4096
#: A float64 run forms G₀ by a float32 SYRK (half the time; 1.1 s against 2.4 s for m = 2048,
#: n = 16384 on one core) when that SYRK has at least _GRAM32_FLOPS = m²n flops and tol ≥
#: _GRAM32_TOL. The u-step then solves a system perturbed by G₀'s rounding (relative 1e-7 to
#: 1e-5), which moves ADMM's fixed point by about as much: measured on the perceptron + TV
#: benchmark, tol 1e-6 was certified after 416 iterations (64 × 64, 415 with the float64 Gram)
#: and 470 (128 × 128). The certificate stays exact: a duality gap ≤ tol (one the run may stop
#: on) is evaluated again at A u from a product with Â, not from the u-step's Woodbury identity.
_GRAM32_FLOPS, _GRAM32_TOL = 1e10, 1e-6
#: A float64 run with m·n ≥ _INCREMENTAL_ENTRIES keeps Â also in float32 and computes the
#: iteration's products with Â and Âᵀ by float32 increments (:class:`_IncrementalProduct`): they
#: stream half the bytes of the float64 matrix, which at 64 × 64 (m·n = 2.1e6, 17 MB in float64)
#: stays in the 32 MB L3 cache while the float64 one does not: inside the loop a float64
#: matrix–vector product took 0.7 ms, a float32 one 0.15–0.19 ms (one thread). At 32 × 32
#: (m·n = 1.3e5, 1 MB) the float64 products are cache-resident and the increments gain nothing.
_INCREMENTAL_ENTRIES = 2**20
#: An incremental product is recomputed exactly once the increments since the last exact one sum
#: (in norm, per row) to more than _REFRESH_FRACTION times the current rows' norm, and at least
#: every _REFRESH_EVERY products.
_REFRESH_FRACTION, _REFRESH_EVERY = 0.1, 100
#: A batch whose state has at least _SPLIT_ENTRIES entries in all (B·(m + K·2n + n)) runs as
#: two halves on two Python threads, BLAS pinned to one thread each, unless more than one core
#: is busy with other work (:func:`_solve_halves`): the iteration of a large batch is vector
#: work over its rows, which numpy runs outside the GIL; a batch of 64 at 64 × 64 (8.2e5
#: entries) took 4.5 s as two halves against 6.2 s as one batch on two BLAS threads (tol 1e-4),
#: and with one of the two cores kept busy by another process 6.8 s against 7.6–10.2 s in one
#: piece (three threads then share the two cores).
_SPLIT_ENTRIES = 2**19
#: Products of fewer rows than this with Â or Âᵀ run one matrix–vector product per row:
#: OpenBLAS's matrix–matrix product of 2–3 rows took 2–4× the time of as many matrix–vector
#: products (512 × 4096, one thread), from 4 rows on it is as fast or faster.
_GEMV_ROWS = 4


# --------------------------------------------------------------------------- problem checks
def _check_densifiable(A) -> bool:
    """True when A is stored densely; raise SolverError when densifying it is too large."""
    m, n = A.shape
    if isinstance(A, MatrixOperator) and not scipy.sparse.issparse(A.matrix):
        return True
    if m * n > DENSE_ENTRY_LIMIT:
        raise SolverError(
            f"{_SUPPORTED}; the layer's operator {A!r} has m·n = {m * n} entries, more than "
            f"DENSE_ENTRY_LIMIT = {DENSE_ENTRY_LIMIT} that the Woodbury u-step densifies: "
            "use solver='pdhg'"
        )
    return False


def _dense_operator(A) -> np.ndarray:
    """A as a dense float64 matrix (stored matrix, or a densified matrix-free operator)."""
    return A.matrix if _check_densifiable(A) else A.to_dense()


def supports(problem) -> str | None:
    """None when :func:`solve` applies to ``problem``, else why it would refuse it."""
    try:
        _split(problem)
        _check_densifiable(problem.A)
    except (ValueError, SolverError) as exc:
        return str(exc)
    return None


def _split(problem) -> tuple:
    """(simple, composites, image shape or None), refusing what the u-step cannot diagonalise."""
    if problem.fidelity != "bregman":
        raise ValueError(f"{_SUPPORTED}; got fidelity={problem.fidelity!r}: use solver='pdhg'")
    simple, composites = problem.reg.split() if problem.reg is not None else (None, [])
    n = problem.A.shape[1]
    shapes = set()
    for weight, L, g in composites:
        if not isinstance(L, Gradient2D) or L.shape[1] != n or not isinstance(g, L21Norm):
            raise ValueError(
                f"{_SUPPORTED}; J = {problem.reg.name} has the composite term "
                f"{weight:g}·{g!r}({L!r} u): the u-step needs Gradient2D (diagonalised by the "
                "DCT) and the ℓ2,1 norm of TV: use solver='pdhg'"
            )
        shapes.add(L.in_shape)
    if len(shapes) > 1:
        raise ValueError(f"{_SUPPORTED}; the TV terms of J act on different shapes {shapes}")
    return simple, composites, (shapes.pop() if shapes else None)


def _check_options(rho_data, rho_reg, relaxation, memory, adaptive) -> tuple:
    """Validate the solver options; returns them normalised."""
    if rho_data is not None:
        rho_data = positive_scalar(rho_data, "rho_data (the penalty ρ_y of y = A u + β)")
    if rho_reg is not None:
        rho_reg = positive_scalar(rho_reg, "rho_reg (the penalty ρ_p of p = ∇u)")
    relaxation = positive_scalar(relaxation, "relaxation")
    if not relaxation < 2.0:
        raise ValueError(f"relaxation must lie in (0, 2), got {relaxation}")
    if isinstance(memory, bool) or not isinstance(memory, (int, np.integer)) or memory < 0:
        raise ValueError(f"memory (Anderson) must be an integer ≥ 0, got {memory!r}")
    if not isinstance(adaptive, (bool, np.bool_)):
        raise ValueError(f"adaptive must be True or False, got {adaptive!r}")
    return rho_data, rho_reg, relaxation, int(memory), bool(adaptive)


# --------------------------------------------------------------------------- the u-step
def _rows_times(X: np.ndarray, M: np.ndarray) -> np.ndarray:
    """X M for rows X (k, p): one matrix–vector product per row below ``_GEMV_ROWS`` rows."""
    if X.shape[0] >= _GEMV_ROWS:
        return X @ M
    out = np.empty((X.shape[0], M.shape[1]), dtype=np.result_type(X, M))
    for row, x in zip(out, X, strict=True):
        np.matmul(x, M, out=row)
    return out


class _WoodburySystem:
    """Solver of (ρ_y ÂᵀÂ + diag(d)) û = Âᵀ s + d ⊙ t̂, d = ρ_p d₀, through an m × m system.

    With G = Â diag(1/d) Âᵀ = G₀/ρ_p and C = I/ρ_y + G (Woodbury):

        e = C⁻¹(s/ρ_y − Â t̂),   û = Âᵀ e / d + t̂,   Â û = (s − e)/ρ_y

    (the last from C e = s/ρ_y − Â t̂, so G e = (s − e)/ρ_y − Â t̂). Holds Â = A Tᵀ (iterate
    dtype), d₀, the upper triangle of G₀ (float64, formed once by SYRK in ``gram_dtype``, m²n
    flops; ``approximate`` when that is float32 in a float64 run: then the returned A u differs
    from Â û by G₀'s rounding times e) and, per change of the penalties, C⁻¹ (float64 Cholesky
    factorisation and inversion, m³ flops, stored in the iterate dtype): applying it is one
    matrix–vector product per problem, which OpenBLAS runs 3–7× faster than the two triangular
    solves with the Cholesky factor (one thread: 0.03 against 0.13 ms at m = 512; at m = 2048
    0.9 ms, or 0.36 ms in float32, against 2.6 ms), so the inversion (0.27 s at m = 2048) pays
    for itself within about 150 iterations, and runs in practice once to three times.

    The problems of a batch have their own penalties (ρ_y, ρ_p)_b: C⁻¹ is kept per distinct
    pair in use (a problem whose penalties change to a pair another one holds shares its
    inverse) and applied to the group of rows holding it; d is then one row per problem.
    """

    def __init__(
        self,
        A: np.ndarray,
        transform: CosineTransform,
        d0: np.ndarray,
        dtype,
        gram_dtype=None,
        incremental: bool = False,
        exact_dual: bool = False,
        workers: int | None = None,
    ) -> None:
        m, n = A.shape
        self.A_hat = np.ascontiguousarray(transform.forward(A.astype(dtype, copy=False), workers))
        A_hat32 = self.A_hat.astype(np.float32) if incremental else None
        self.iteration_matrix = self.A_hat if A_hat32 is None else A_hat32
        self._image = _IncrementalProduct(self.A_hat.T, None if A_hat32 is None else A_hat32.T)
        self._forward = _IncrementalProduct(self.A_hat.T, None if A_hat32 is None else A_hat32.T)
        self._multiplier = _IncrementalProduct(self.A_hat, A_hat32)
        self._dual = _IncrementalProduct(self.A_hat, None if exact_dual else A_hat32)
        self.d0 = d0.astype(dtype)
        self.frobenius_sq = float(np.einsum("ij,ij->", self.A_hat, self.A_hat, dtype=np.float64))
        self.gram_dtype = np.dtype(dtype if gram_dtype is None else gram_dtype)
        syrk = blas.ssyrk if self.gram_dtype == np.float32 else blas.dsyrk
        scale = (1.0 / np.sqrt(d0)).astype(self.gram_dtype)
        source = self.iteration_matrix if self.gram_dtype == np.float32 else self.A_hat
        G0 = np.zeros((m, m), dtype=self.gram_dtype, order="F")
        for start in range(0, n, _SYRK_COLUMNS):
            columns = slice(start, start + _SYRK_COLUMNS)
            scaled = source[:, columns].astype(self.gram_dtype, copy=False) * scale[columns]
            # SYRK of the Fortran-ordered view scaledᵀ (trans=1: C = scaled scaledᵀ): scipy
            # copies a C-ordered argument first (1.2 s against 0.73 s at m = 2048, n = 16384)
            G0 = syrk(1.0, scaled.T, trans=1, beta=1.0, c=G0, overwrite_c=True)
        self.G0 = G0.astype(np.float64, order="F")  # upper triangle (SYRK's, and potrf's)
        self.dtype = np.dtype(dtype)
        self.incremental = incremental
        self.approximate = self.gram_dtype != self.dtype or incremental
        self.factorizations = 0
        self.inverses: dict[tuple[float, float], tuple] = {}

    def set_penalties(self, rho_y: np.ndarray, rho_p: np.ndarray) -> None:
        """Per-problem penalties (B,): group the rows by their pair (ρ_y, ρ_p), invert C for
        the pairs not yet inverted, and drop the inverses no row holds any more."""
        inverses = {}
        self.groups = []
        for pair, rows in _row_groups(np.stack([rho_y, rho_p], axis=1)):
            inverses[pair] = self.inverses[pair] if pair in self.inverses else self._invert(*pair)
            self.groups.append((rows, _IncrementalProduct(*inverses[pair])))
        self.inverses = inverses
        self.rho_y = rho_y[:, None].astype(self.dtype)
        self.d = self.d0 * rho_p[:, None].astype(self.dtype)

    def restrict(self, keep: np.ndarray, rho_y: np.ndarray, rho_p: np.ndarray) -> None:
        """Keep the problems ``keep`` of the batch, whose penalties are then (ρ_y, ρ_p)."""
        for product in (self._image, self._forward, self._multiplier, self._dual):
            product.restrict(keep)
        self.set_penalties(rho_y, rho_p)

    def _invert(self, rho_y: float, rho_p: float) -> tuple[np.ndarray, np.ndarray | None]:
        """C⁻¹ = (I/ρ_y + G₀/ρ_p)⁻¹ (through its Cholesky factor), and its float32 copy for
        float32 increments (None without them)."""
        C = self.G0 / rho_p  # Fortran order, as LAPACK takes it; strict lower triangle zero
        C[np.diag_indices_from(C)] += 1.0 / rho_y
        factor, info = lapack.dpotrf(C, lower=0, overwrite_a=1)
        if info != 0:
            raise SolverError(
                f"the Woodbury capacitance matrix I/ρ_y + G is not numerically positive definite "
                f"(ρ_y = {rho_y:.3g}, ρ_p = {rho_p:.3g}): the penalties are too extreme"
            )
        inverse = lapack.dpotri(factor, lower=0, overwrite_c=1)[0]
        self.factorizations += 1
        inverse = _symmetric(inverse).astype(self.dtype, copy=False)
        return inverse, inverse.astype(np.float32) if self.incremental else None

    def solve(self, s: np.ndarray, t_hat: np.ndarray, dual: np.ndarray, forward: np.ndarray):
        """(û, Â û, Âᵀ dual, Â forward) for rows s (B, m), t̂ (B, n) of a batch.

        ``dual`` (B or 0, m) and ``forward`` (B or 0, n) are the dual multipliers and the
        primal points multiplied by Âᵀ and by Â along the way (each kind of row by its own
        :class:`_IncrementalProduct`).
        """
        target = s / self.rho_y
        residual = target - self._image(t_hat)
        e = np.empty_like(residual)
        for rows, inverse in self.groups:  # C⁻¹ of each row's penalties (symmetric)
            e[rows] = inverse(residual[rows])
        u_hat = self._multiplier(e) / self.d
        u_hat += t_hat
        Au = target - e / self.rho_y
        return u_hat, Au, self._dual(dual) if dual.size else dual[:, :0], (
            self._forward(forward) if forward.size else forward[:, :0]
        )


class _IncrementalProduct:
    r"""Rows X ↦ X M for one kind of row of the iteration (the u-step's t̂, C⁻¹'s argument and
    e, the dual multipliers, the primal points of the gap), from the previous call's by a
    float32 increment:

        X_k M = X_{k−1} M + (X_k − X_{k−1}) M₃₂    (M₃₂ = M in float32, the increment's product
                                                  in float32),

    and exactly, with M, at the first call, when the number of rows changes, and for a row
    once its increments since its last exact product sum in norm to more than
    ``_REFRESH_FRACTION`` times its norm, or after ``_REFRESH_EVERY`` increments. A row's error
    is the float32 rounding of those increments, about ε₃₂ Σ_j ‖ΔX_j‖‖M‖ ≤ 0.1 ε₃₂ ‖X_k‖‖M‖,
    and since the sum restarts at every exact product it vanishes with the increments as the
    iterates converge; a float32 product of X_k itself errs by ε₃₂ ‖X_k‖‖M‖ at every iteration,
    which made the 64 × 64 benchmark need 1623 iterations instead of 415 to certify tol 1e-6
    (with the increments: 402–437). With M₃₂ None every product is exact.
    """

    def __init__(self, M: np.ndarray, M32: np.ndarray | None) -> None:
        self.M, self.M32 = M, M32
        self.rows = self.image = self.drift = self.steps = None

    def restrict(self, keep: np.ndarray) -> None:
        """Keep the rows ``keep`` (the problems of a batch still iterating) and their state."""
        if self.rows is not None:
            self.rows, self.image = self.rows[keep], self.image[keep]
            self.drift, self.steps = self.drift[keep], self.steps[keep]

    def __call__(self, X: np.ndarray) -> np.ndarray:
        if self.M32 is None:
            return _rows_times(X, self.M)
        if self.rows is None or self.rows.shape != X.shape:
            self.rows, self.image = X.copy(), _rows_times(X, self.M)
            self.drift, self.steps = np.zeros(len(X)), np.zeros(len(X), dtype=np.intp)
            return self.image
        delta = X - self.rows
        self.drift += batch_norm(delta)
        self.steps += 1
        exact = (self.drift > _REFRESH_FRACTION * batch_norm(X)) | (self.steps > _REFRESH_EVERY)
        if not exact.any():
            image = self.image + _rows_times(delta.astype(np.float32), self.M32)
        elif exact.all():
            image = _rows_times(X, self.M)
        else:  # rows of a batch: each refreshed on its own schedule
            image = np.empty_like(self.image)
            image[~exact] = self.image[~exact] + _rows_times(
                delta[~exact].astype(np.float32), self.M32
            )
            image[exact] = _rows_times(X[exact], self.M)
        self.drift[exact], self.steps[exact] = 0.0, 0
        self.rows, self.image = X.copy(), image
        return image


def _row_groups(values: np.ndarray) -> list[tuple[tuple, slice | np.ndarray]]:
    """The groups of equal rows of ``values`` (B, k): (the row as a tuple of floats, the indices
    of its rows, or ``slice(None)`` when all rows are equal)."""
    keys, index = np.unique(values, axis=0, return_inverse=True)
    if len(keys) == 1:
        return [(tuple(keys[0].tolist()), slice(None))]
    index = index.ravel()
    return [(tuple(key), np.flatnonzero(index == g)) for g, key in enumerate(keys.tolist())]


def _symmetric(upper: np.ndarray) -> np.ndarray:
    """The symmetric matrix whose upper triangle ``upper`` holds; its strict lower triangle must
    be zero (as in :class:`_WoodburySystem`: SYRK, potrf and potri write the upper triangle
    only). One pass, U + Uᵀ with the diagonal restored: 33 ms at m = 2048, against 80–250 ms
    for masking the lower triangle with ``np.triu`` first."""
    full = upper + upper.T
    np.fill_diagonal(full, np.diagonal(upper))
    return full


class _Anderson:
    """Type-II Anderson acceleration of ζ ↦ g(ζ), one coefficient vector per batch row.

    The memory holds the last ``memory`` differences ΔF, ΔG of the weighted residuals
    f = weights ⊙ (g(ζ) − ζ) and of g (stored (B, memory, D) in float32: they are differences of
    converging iterates, so their rounding error vanishes with them and only the coefficients,
    never the fixed point, feel it), with the Gram matrix ΔFᵀΔF and ΔFᵀf updated incrementally
    (ΔFᵀf_new = ΔFᵀf_old + ΔFᵀδ, δ the newest difference): two passes over the memory per step.
    Every row has its own memory (``count`` differences in its first slots, written in turn),
    weights (its penalties) and safeguard: a rejected candidate, or a change of the row's
    penalties, clears that row's memory only, so that a problem of a batch is accelerated as it
    is alone.
    """

    def __init__(self, memory: int, batch: int, size: int, weights: np.ndarray) -> None:
        self.memory = memory
        self.weights = weights
        self.dF = np.zeros((batch, memory, size), dtype=np.float32)
        self.dG = np.zeros((batch, memory, size), dtype=np.float32)
        self.gram = np.zeros((batch, memory, memory))
        self.rhs = np.zeros((batch, memory))
        self.count = np.zeros(batch, dtype=np.intp)
        self.next = np.zeros(batch, dtype=np.intp)
        self.has_prev = np.zeros(batch, dtype=bool)
        self.candidate = np.zeros(batch, dtype=bool)
        self.f_prev = self.g_prev = None
        self.accepted = np.zeros(batch)
        self.reference = None
        self.rejections = 0

    def restrict(self, keep: np.ndarray) -> None:
        """Keep only the rows ``keep`` of the batch (the others converged)."""
        for name in ("weights", "dF", "dG", "gram", "rhs", "count", "next", "has_prev",
                     "candidate", "f_prev", "g_prev", "accepted", "reference"):
            if getattr(self, name) is not None:
                setattr(self, name, getattr(self, name)[keep])

    def reset(self, rows: np.ndarray) -> None:
        """Clear the memory of the rows ``rows`` (boolean mask), after a rejection or a change
        of their map."""
        self.count[rows] = self.next[rows] = 0
        self.has_prev[rows] = self.candidate[rows] = False

    def step(self, zeta: np.ndarray, g: np.ndarray) -> np.ndarray:
        """The next state from ζ and g(ζ): per row the extrapolation, or g(ζ) without history."""
        f = np.subtract(g, zeta)
        f *= self.weights
        norm = batch_norm(f)
        if self.reference is None:
            self.reference = np.maximum(norm, np.finfo(np.float64).tiny)
        bound = _SAFEGUARD_D * self.reference * (self.accepted + 1.0) ** -(1.0 + _SAFEGUARD_EPS)
        rejected = self.candidate & (norm > bound)
        self.accepted += self.candidate & ~rejected
        if rejected.any():
            # These rows take the plain step from their last point and restart their memory.
            self.rejections += int(rejected.sum())
            plain = self.g_prev[rejected]
            self.reset(rejected)
        index = np.flatnonzero(self.has_prev)
        if index.size:
            rows = slice(None) if index.size == len(f) else index
            k, slot = self.count[index], self.next[index]
            delta = f[rows] - self.f_prev[rows]
            delta32 = delta.astype(np.float32)
            column = np.matmul(self.dF[rows], delta32[:, :, None])[..., 0]
            column = column.astype(np.float64)
            # ⟨ΔF_i, f⟩ = ⟨ΔF_i, f_prev⟩ + ⟨ΔF_i, δ⟩ for the row's differences i < k
            self.rhs[rows] += np.where(np.arange(self.memory) < k[:, None], column, 0.0)
            self.dF[index, slot] = delta32
            self.dG[index, slot] = g[rows] - self.g_prev[rows]
            column[np.arange(index.size), slot] = batch_norm(delta) ** 2
            self.gram[index, slot, :] = column
            self.gram[index, :, slot] = column
            self.rhs[index, slot] = np.einsum("bd,bd->b", delta, f[rows], dtype=np.float64)
            self.count[index] = np.minimum(k + 1, self.memory)
            self.next[index] = (slot + 1) % self.memory
        self.rhs[~self.has_prev] = 0.0
        self.f_prev, self.g_prev = f, g
        self.has_prev = ~rejected
        self.candidate = self.count > 0
        out = g
        if self.candidate.any():
            k = int(self.count.max())
            gram, rhs = self.gram[:, :k, :k].copy(), self.rhs[:, :k]
            # Slots a row has not filled since its last reset: coefficient 0 (identity block).
            empty = np.arange(k) >= self.count[:, None]
            if empty.any():
                gram[empty[:, :, None] | empty[:, None, :]] = 0.0
                rhs = np.where(empty, 0.0, rhs)
            scale = np.einsum("bii->b", gram) / np.maximum(self.count, 1)
            scale = np.maximum(scale, np.finfo(np.float64).tiny)
            gram[:, np.arange(k), np.arange(k)] += _AA_REGULARIZATION * scale[:, None] + empty
            gamma = np.linalg.solve(gram, rhs[:, :, None]).astype(np.float32)
            out = g - np.matmul(gamma.transpose(0, 2, 1), self.dG[:, :k])[:, 0]
        if rejected.any():
            out = out.copy() if out is g else out
            out[rejected] = plain
        return out


# --------------------------------------------------------------------------- the splitting
class _Splitting:
    """The blocks z = (y | p_1 … p_K | v) of the state, their penalties and proxes, and E.

    Parameters
    ----------
    energy : OneLayerEnergy
        The model (activation, bias, data rows; its prox of the data term h).
    simple : Regularizer or None
        The simple part s of J.
    composites : list of (weight, Gradient2D, outer function)
        The TV terms of J.
    kappa : float
        ρ_v / ρ_p.
    dtype : numpy dtype
        Iterate dtype.
    """

    def __init__(self, energy: OneLayerEnergy, simple, composites, kappa: float, dtype) -> None:
        self.energy = energy
        self.input_shape = energy.input_shape
        self.beta = energy.beta
        self.simple, self.composites, self.kappa = simple, composites, kappa
        self.dtype = dtype
        m, n = energy.A.shape
        sizes = [m] + [L.shape[0] for _, L, _ in composites] + [n]
        ends = np.cumsum(sizes)
        self.blocks = [slice(int(e - s), int(e)) for s, e in zip(sizes, ends, strict=True)]
        self.y, self.v = self.blocks[0], self.blocks[-1]
        self.reg = slice(m, int(ends[-1]))
        self.size = int(ends[-1])
        # per-problem penalties (B,), set by the solver
        self.rho_y, self.rho_p = np.ones(energy.data.shape[0]), np.ones(energy.data.shape[0])

    def column(self, values: np.ndarray) -> np.ndarray:
        """Per-problem values (B,) as a column (B, 1) in the iterate dtype, to scale rows by."""
        return values[:, None].astype(self.dtype)

    def weights(self) -> np.ndarray:
        """√ρ per entry of the state, one row per problem (the norm in which ADMM is
        nonexpansive)."""
        rho = np.repeat(self.rho_p[:, None], self.size, axis=1)
        rho[:, self.y] = self.rho_y[:, None]
        rho[:, self.v] = (self.kappa * self.rho_p)[:, None]
        return np.sqrt(rho).astype(self.dtype)

    def images(self, u: np.ndarray, Au: np.ndarray) -> np.ndarray:
        """E u + c = (A u + β | L_k u | u) for u (B, n) with A u known."""
        parts = [Au + self.beta, *(L._apply(u) for _, L, _ in self.composites), u]
        return np.concatenate(parts, axis=1)

    def prox(self, zeta: np.ndarray) -> np.ndarray:
        """z = prox_{F/ρ}(ζ), blockwise."""
        z = np.empty_like(zeta)
        z[:, self.y] = self.energy.prox_data(zeta[:, self.y], 1.0 / self.rho_y[:, None])
        for (weight, _, g), block in zip(self.composites, self.blocks[1:-1], strict=True):
            shrunk = g._shrink(self._groups(g, zeta[:, block]), weight / self.rho_p[:, None])
            z[:, block] = shrunk.reshape(zeta.shape[0], -1)
        if self.simple is None:
            z[:, self.v] = zeta[:, self.v]
        else:
            for (rho_p,), rows in _row_groups(self.rho_p[:, None]):  # a scalar step per group
                V = zeta[rows, self.v].reshape(-1, *self.input_shape)
                prox = self.simple.prox(V, 1.0 / (self.kappa * rho_p))
                z[rows, self.v] = np.asarray(prox, dtype=self.dtype).reshape(V.shape[0], -1)
        return z

    def reg_adjoint(self, P: np.ndarray) -> np.ndarray:
        """ρ_p Σ_k L_kᵀ P_k + ρ_v P_v: the regulariser blocks of Eᵀ diag(ρ) P."""
        out = self.column(self.kappa * self.rho_p) * P[:, self.v]
        for (_, L, _), block in zip(self.composites, self.blocks[1:-1], strict=True):
            out += self.column(self.rho_p) * L._apply_adjoint(P[:, block])
        return out

    @staticmethod
    def _groups(g, Y: np.ndarray) -> np.ndarray:
        """Rows Y (B, c·m) of a TV block as the groups (B, c, m) of its norm g."""
        return Y.reshape(Y.shape[0], g.components, -1)

    def objective(self, Eu: np.ndarray, z: np.ndarray) -> float:
        """Batch total of h(A u + β) + Σ_k w_k g_k(L_k u) + s(v)."""
        return float(np.sum(self.objective_rows(Eu, z)))

    def objective_rows(self, Eu: np.ndarray, z: np.ndarray) -> np.ndarray:
        """h(A u + β) + Σ_k w_k g_k(L_k u) + s(v) per problem (B,)."""
        value = np.asarray(self.energy.expanded_data_term(Eu[:, self.y])[0], dtype=np.float64)
        for (weight, _, g), block in zip(self.composites, self.blocks[1:-1], strict=True):
            value = value + weight * g._norms(self._groups(g, Eu[:, block])).sum(axis=1)
        if self.simple is not None:
            value = value + regularizer_rows(self.simple, z[:, self.v], self.input_shape)
        return value

    def restrict(self, keep: np.ndarray) -> None:
        """Keep only the problems (rows) ``keep`` of the batch: the model with their data, and
        their penalties."""
        e = self.energy
        self.energy = OneLayerEnergy(
            e.A, e.beta, e.activation, e.data[keep], e.reg, e.input_shape, e.dtype
        )
        self.rho_y, self.rho_p = self.rho_y[keep], self.rho_p[keep]

    def gap(self, duality, u, Eu, z, mu, q, At_lambda, A_point) -> np.ndarray:
        """Relative duality-gap bound per problem at the point the run would return: u (no
        simple part; ∇u from E u + c, and A u + β too unless ``A_point`` gives A u from a
        product with Â) or v = z_v ∈ dom s (``A_point`` = A v from the u-step's product), with
        λ_y = σ(z_y) − f (q = σ(z_y), Aᵀλ_y from the u-step) and the TV multipliers
        Σ_k ρ_p μ_k."""
        tv_dual = tv_image = None
        if self.composites:
            tv_dual = self.column(self.rho_p) * sum(mu[:, block] for block in self.blocks[1:-1])
        if self.simple is None:
            point, x = u, Eu[:, self.y] if A_point is None else A_point + self.beta
            if self.composites:
                tv_image = Eu[:, self.blocks[1]]
        else:
            point, x = z[:, self.v], A_point + self.beta
            if self.composites:
                tv_image = self.composites[0][1].apply(point)
        return duality.evaluate(point, x, q, At_lambda, tv_dual, tv_image)[2]

    def primal_residuals(self, Eu: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Relative ‖E u + c − z‖ of the y block and of the regulariser blocks, each (B,)."""

        def relative(block: slice) -> np.ndarray:
            a, b = Eu[:, block], z[:, block]
            return relative_residual(batch_norm(a - b), batch_norm(a), batch_norm(b))

        return relative(self.y), relative(self.reg)


class _Frozen:
    """The problems of a batch that left the active set: their returned inputs, bounds, final
    objectives and per-problem statistics (ρ_y, ρ_p, number of penalty changes, iterations), in
    the batch's original order."""

    def __init__(self, batch: int) -> None:
        self.active = np.arange(batch)
        self.u: dict[int, np.ndarray] = {}
        self.bound: dict[int, float] = {}
        self.statistics: dict[int, np.ndarray] = {}
        self.objective = 0.0

    def freeze(self, done, u_out, bound, split: _Splitting, Eu, z, statistics) -> None:
        """Store the rows ``done`` (of the active ones) and drop them from the active set
        (``statistics`` (B, 4) from :meth:`item_statistics`)."""
        values = split.objective_rows(Eu, z)
        for i in np.flatnonzero(done):
            self.u[int(self.active[i])] = u_out[i].copy()
            self.bound[int(self.active[i])] = float(bound[i])
            self.statistics[int(self.active[i])] = statistics[i]
            self.objective += float(values[i])
        self.active = self.active[~done]

    def complete(self, u_out: np.ndarray, bound: np.ndarray):
        """(u (B, n), bound (B,)) of the whole batch from the frozen and the active rows."""
        return self._full(u_out, self.u), self._full(bound, self.bound)

    @staticmethod
    def item_statistics(split: _Splitting, policy: _PenaltyPolicy, k: int) -> np.ndarray:
        """(ρ_y, ρ_p, number of penalty changes, iterations) of the active problems (B, 4)."""
        iterations = np.full(len(split.rho_y), k)
        return np.stack([split.rho_y, split.rho_p, policy.updates, iterations], axis=1)

    def complete_statistics(self, statistics: np.ndarray) -> np.ndarray:
        """The per-problem statistics (B, 4) of the whole batch."""
        return self._full(statistics, self.statistics)

    def _full(self, active: np.ndarray, stored: dict) -> np.ndarray:
        """Rows of the whole batch: ``active`` (of the active problems) and ``stored``."""
        if not stored:
            return active
        full = np.empty((len(stored) + self.active.size, *active.shape[1:]), dtype=active.dtype)
        full[self.active] = active
        for i, row in stored.items():
            full[i] = row
        return full


class _PenaltyPolicy:
    """When and by how much the penalties (ρ_y, ρ_p) of each problem change (see the module
    docstring). Every decision is made per problem from its own residuals, as it would be alone:

    * Rescue balancing: at iterations 20, 40, 80, … (before the late increase), a block whose
      relative primal/dual residual ratio is off by more than ``_BALANCE`` gets
      ρ_b ← ρ_b √ratio (at most ``_MAX_FACTOR``-fold, so in effect exactly ``_MAX_FACTOR``-fold
      up or down, since an imbalance of more than ``_BALANCE`` = ``_MAX_FACTOR``² is needed).
    * Late increase: once the KKT residuals fall below ``_LATE_THRESHOLD`` (the active
      structure is found), both penalties grow by ``_LATE_FACTOR``, once.
    * Catch-up: the increase is undone once the primal residual is ≤ tol while the dual one is
      more than ``_CATCH_UP_RATIO`` times larger (large penalties converge the primal side fast
      and the multipliers slowly).

    ``factors`` (B, 2) holds the factors (ρ_y, ρ_p) to apply at the next iteration to the
    problems marked ``pending`` (at most one change per problem and iteration).
    """

    def __init__(self, adaptive: bool, tol: float, batch: int) -> None:
        self.adaptive = adaptive
        self.late_done = np.full(batch, not adaptive or tol >= _LATE_THRESHOLD)
        self.next_check = _FIRST_CHECK
        self.updates = np.zeros(batch, dtype=int)
        self.raised = np.zeros(batch, dtype=bool)
        self.tol = tol
        self.pending = np.zeros(batch, dtype=bool)
        self.factors = np.ones((batch, 2))

    def restrict(self, keep: np.ndarray) -> None:
        """Keep only the problems ``keep`` (the others converged)."""
        for name in ("late_done", "updates", "raised", "pending", "factors"):
            setattr(self, name, getattr(self, name)[keep])

    def balance_due(self, k: int) -> np.ndarray:
        """The problems (B,) for which iteration k is a balance check."""
        return (
            self.adaptive
            & ~self.late_done
            & (k == self.next_check)
            & (self.updates < MAX_PENALTY_UPDATES)
        )

    def balance(self, due: np.ndarray, ratio_y: np.ndarray, ratio_reg: np.ndarray) -> None:
        """Decide the rescue factors of the problems ``due`` from their primal/dual ratios of
        both blocks (B,)."""
        self.next_check *= 2
        ratios = np.stack([ratio_y, ratio_reg], axis=1)
        off = (ratios > _BALANCE) | (ratios < 1.0 / _BALANCE)
        factors = np.clip(np.sqrt(ratios), 1.0 / _MAX_FACTOR, _MAX_FACTOR)
        self._change(due & off.any(axis=1), np.where(off, factors, 1.0))

    def late_increase(self, residual: np.ndarray) -> None:
        """Grow both penalties by ``_LATE_FACTOR`` once ``residual`` (B,) < ``_LATE_THRESHOLD``."""
        rows = self._change(~self.late_done & (residual < _LATE_THRESHOLD), _LATE_FACTOR)
        self.late_done |= rows
        self.raised |= rows

    def catch_up(self, primal: np.ndarray, dual: np.ndarray) -> None:
        """Undo the late increase once the primal residual is ≤ tol but the dual one lags."""
        lagging = self.raised & (primal <= self.tol) & (dual > _CATCH_UP_RATIO * primal)
        self.raised &= ~self._change(lagging, 1.0 / _LATE_FACTOR)

    def take(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, factors (B, 2)) of the pending changes, which are then cleared."""
        rows, factors = self.pending, self.factors
        self.pending = np.zeros_like(rows)
        self.factors = np.ones_like(factors)
        return rows, factors

    def _change(self, rows: np.ndarray, factors) -> np.ndarray:
        """Schedule ``factors`` for the problems ``rows`` without a pending change; returns
        those that got one."""
        rows = rows & ~self.pending
        self.factors[rows] = np.broadcast_to(factors, self.factors.shape)[rows]
        self.pending |= rows
        self.updates += rows
        return rows


# --------------------------------------------------------------------------- the solver
def solve(
    problem,
    tol: float = 1e-6,
    max_iter: int | None = None,
    warm_start=None,
    progress: bool = False,
    dtype=np.float64,
    *,
    rho_data: float | None = None,
    rho_reg: float | None = None,
    relaxation: float = 1.0,
    memory: int = 5,
    adaptive: bool = True,
):
    """Solve min_u B_Ψ(f, A u + β) + J(u) by accelerated ADMM (see the module docstring).

    Parameters
    ----------
    problem : Inversion
        ``fidelity="bregman"``, one ``Dense`` or ``Conv2d`` layer; J = simple part + TV terms.
    tol : float
        Bound on the relative objective error (relative duality gap) where the gap is available,
        else relative tolerance of the KKT residuals (module docstring, ``stats["guarantee"]``).
    max_iter : int, optional
        Iteration limit (:data:`DEFAULT_MAX_ITER` when None).
    warm_start : None, array_like, (u, z) or Result
        Starting input u₀ (see :mod:`bregmod.solvers._common`); ζ starts at E u₀ + c.
    progress : bool
        Show a tqdm progress bar.
    dtype : numpy.float64 or numpy.float32
        Floating dtype of the iterates and of Â (the m × m factorisation is float64).
    rho_data, rho_reg : float, optional
        Initial penalties ρ_y of y = A u + β and ρ_p of p = ∇u (ρ_v = κ ρ_p); None for the
        defaults of the module docstring.
    relaxation : float
        Relaxation θ ∈ (0, 2) of the ADMM step.
    memory : int
        Anderson memory (0: plain ADMM).
    adaptive : bool
        Adapt ρ_y and ρ_p by residual balancing.

    Returns
    -------
    Result
        ``stats`` holds ``guarantee`` and ``bound`` (what the stop certifies, and the value
        reached; a batch's worst), the final penalties ``rho_data`` and ``rho_reg``, the number
        of penalty changes ``penalty_updates`` and the iterations ``item_iterations`` each
        problem ran (floats and ints for one problem; for a batch arrays (B,), per problem in
        the batch's order: a problem certified early leaves the active set), their sum
        ``row_iterations`` (the work done, in problem-iterations), the number of Cholesky
        factorisations, the Anderson rejections, κ, θ, the memory and ``blas_threads`` (the
        setup's and the iterations' thread counts, and how often the products were timed; for
        a batch solved as two halves on two threads, ``{"halves": [each half's]}``, see the
        module docstring). The history's ``rho_data`` and ``rho_reg`` are the largest over the
        problems still iterating.

    Raises
    ------
    ValueError
        Unsupported problem (the message names what is supported), bad option values, NaN/Inf
        in the data or warm start (from :func:`~bregmod.solvers._common.prepare`).
    SolverError
        A matrix-free A too large to densify, or a penalty so extreme that the m × m
        capacitance matrix is not positive definite.
    """
    simple, composites, image_shape = _split(problem)
    rho_data, rho_reg, relaxation, memory, adaptive = _check_options(
        rho_data, rho_reg, relaxation, memory, adaptive
    )
    m, n = problem.A.shape
    batch = problem.batch_size or 1
    entries = batch * (m + 2 * n * len(composites) + n)
    options = dict(
        tol=tol, max_iter=max_iter, progress=progress, dtype=dtype, rho_data=rho_data,
        rho_reg=rho_reg, relaxation=relaxation, memory=memory, adaptive=adaptive,
    )
    if entries >= _SPLIT_ENTRIES and batch >= 2 and idle_threads(1.0) >= 2:
        return _solve_halves(problem, warm_start, options)
    return _solve_whole(problem, warm_start, **options)


def _solve_whole(
    problem, warm_start, tol, max_iter, progress, dtype, rho_data, rho_reg, relaxation, memory,
    adaptive,
):
    """:func:`solve` of the whole batch in this thread (options validated by the caller)."""
    simple, composites, image_shape = _split(problem)
    setup = prepare(
        problem,
        solver="admm",
        tol=tol,
        max_iter=max_iter,
        warm_start=warm_start,
        dtype=dtype,
        default_max_iter=DEFAULT_MAX_ITER,
    )
    dt, batch = setup.dtype, setup.batch
    A = _dense_operator(problem.A)
    m, n = A.shape
    transform = CosineTransform(image_shape)
    laplacian = len(composites) * transform.laplacian_eigenvalues() if composites else np.zeros(n)
    # κ: 1 for a simple part (or no TV); else the smallest nonzero eigenvalue of ΣL_kᵀL_k, which
    # fixes the constant mode without worsening the conditioning of d₀.
    kappa = 1.0 if simple is not None or not composites else float(np.min(laplacian[1:]))
    d0 = laplacian + kappa
    split = _Splitting(setup.energy(), simple, composites, kappa, dt)
    with blas_threads(2.0 * m * n):  # its anchor duals' products: matrix–vector products
        duality, no_gap = DualityGap.of(split.energy, simple, composites)
    # BLAS threads suited to each phase (bregmod.solvers._threads): the SYRK of G₀ (m²n
    # flops) may use idle cores; the iteration's products (2mn per problem) below.
    with blas_threads(float(m) * m * n) as setup_threads:
        gram32 = float(m) * m * n >= _GRAM32_FLOPS and setup.tol >= _GRAM32_TOL
        system = _WoodburySystem(
            A,
            transform,
            d0,
            dt,
            np.float32 if gram32 else dt,
            incremental=dt == np.float64 and m * n >= _INCREMENTAL_ENTRIES,
            # under the KKT rule the dual residual, which the run stops on, is computed exactly
            exact_dual=duality is None,
            workers=setup_threads,  # for the DCT of A's rows
        )
        rho_y = rho_data if rho_data is not None else _RHO_DATA
        rho_p = rho_reg if rho_reg is not None else rho_y * system.frobenius_sq / (4 * min(m, n))
        split.rho_y, split.rho_p = np.full(batch, rho_y), np.full(batch, rho_p)
        system.set_penalties(split.rho_y, split.rho_p)

    # The iteration's products (2mn flops per problem): threads chosen by timing them.
    matrix = system.iteration_matrix
    rows_in, rows_out = np.ones((batch, n), matrix.dtype), np.ones((batch, m), matrix.dtype)
    with LoopThreads(
        lambda: (_rows_times(rows_in, matrix.T), _rows_times(rows_out, matrix)),
        2.0 * m * n * batch,
    ) as threads:
        u = setup.u0.astype(dt, copy=False)
        u_hat = transform.forward(u)
        Eu = split.images(u, u_hat @ system.A_hat.T)
        zeta = Eu.copy()
        anderson = _Anderson(memory, batch, split.size, split.weights()) if memory else None
        policy = _PenaltyPolicy(adaptive, setup.tol, batch)
        monitor = Monitor(setup, progress=progress, criterion="gap" if duality else "residuals")
        z_prev = None
        dual = np.full(batch, np.inf)
        bound, evaluated_at = np.full(batch, np.inf), 0
        frozen, row_iterations = _Frozen(batch), 0
        for k in range(1, setup.max_iter + 1):
            threads.tick()
            if not all_finite(zeta):
                monitor.non_finite(k, "ADMM state ζ")
                break
            batch = zeta.shape[0]  # the problems still iterating (converged ones are frozen)
            row_iterations += batch
            z = split.prox(zeta)
            mu = zeta - z
            if policy.pending.any():  # the problems whose penalties change (λ = ρ μ is kept)
                changed, factors = policy.take()
                mu[changed, split.y] /= split.column(factors[changed, 0])
                mu[changed, split.reg] /= split.column(factors[changed, 1])
                zeta = np.where(changed[:, None], z + mu, zeta)
                split.rho_y, split.rho_p = split.rho_y * factors[:, 0], split.rho_p * factors[:, 1]
                system.set_penalties(split.rho_y, split.rho_p)
                if anderson is not None:
                    anderson.weights = split.weights()
                    anderson.reset(changed)
            primal_y, primal_reg = split.primal_residuals(Eu, z)
            primal = np.maximum(primal_y, primal_reg)
            due = policy.balance_due(k)
            balance = due.any() and z_prev is not None
            # The dual residual costs another row in the product with Âᵀ. Under the KKT rule the
            # run can stop only where it is fresh (a stale value > 10·tol never lets the monitor
            # stop); under the gap rule it only steers the penalties.
            gap_due = duality is not None and (
                k % _GAP_EVERY == 1 or bound.max() <= _GAP_NEAR * setup.tol or k == setup.max_iter
            )
            fresh = (
                balance
                or gap_due
                or k % _DUAL_EVERY == 1
                or (duality is None and primal.max() <= setup.tol and dual.max() <= 10 * setup.tol)
            )

            # u-step right-hand side: ρ_y Âᵀ s + d ⊙ t̂ with s = ρ_y(y − μ_y − β).
            s = split.column(split.rho_y) * (z[:, split.y] - mu[:, split.y] - split.beta)
            rows = [split.reg_adjoint(z - mu)]
            lam = s[:0]
            if fresh:  # Eᵀλ = Âᵀλ_y + T(ρ_p ΣL_kᵀμ_k + ρ_v μ_v), λ_y = ρ_y μ_y = σ(z_y) − f
                rows.append(split.reg_adjoint(mu))
                q = split.energy.activation.prox(z[:, split.y])
                lam = np.asarray(q - split.energy.data, dtype=dt)
            gap_at_v = gap_due and simple is not None  # the gap at v ∈ dom s needs A v
            if gap_at_v:
                rows.append(z[:, split.v])
            transformed = transform.forward(np.concatenate(rows), threads.count)
            t_hat = transformed[:batch] / system.d
            u_hat_next, Au, At_lambda, Av = system.solve(
                s, t_hat, lam, transformed[-batch:] if gap_at_v else t_hat[:0]
            )
            if fresh:
                dual = relative_residual(
                    batch_norm(At_lambda + transformed[batch : 2 * batch]),
                    batch_norm(At_lambda),
                    batch_norm(rows[1]),
                )
                policy.late_increase(np.maximum(primal, dual))
                policy.catch_up(primal, dual)
            if balance:  # ρ_y ‖Aᵀ Δy‖ and ρ_p ‖ΣL_kᵀΔp_k + κ Δv‖
                At_step = _rows_times(z[:, split.y] - z_prev[:, split.y], system.A_hat)
                dual_y = relative_residual(
                    split.rho_y * batch_norm(At_step), batch_norm(At_lambda)
                )
                dual_reg = relative_residual(
                    batch_norm(split.reg_adjoint(z - z_prev)), batch_norm(rows[1])
                )
                policy.balance(
                    due,
                    primal_y / np.maximum(dual_y, 1e-300),
                    primal_reg / np.maximum(dual_reg, 1e-300),
                )
            if gap_due:
                # products are in the DCT domain: Âᵀλ_y = T Aᵀλ_y
                At_lambda = transform.inverse(At_lambda, threads.count)
                bound = split.gap(duality, u, Eu, z, mu, q, At_lambda, Av if gap_at_v else None)
                # With the float32 Gram the u-step's A u carries G₀'s rounding, and the float32
                # increments carry theirs into A u, A v and Aᵀλ: a bound the run may stop on or
                # return is evaluated again from float64 products with A (two more).
                exact = not system.approximate
                if not exact and ((bound <= setup.tol).any() or k == setup.max_iter):
                    point = u if simple is None else z[:, split.v]
                    bound = split.gap(
                        duality,
                        u,
                        Eu,
                        z,
                        mu,
                        q,
                        _rows_times(np.asarray(q - split.energy.data, dtype=dt), A),
                        _rows_times(point, A.T),
                    )
                    exact = True
                if exact:
                    evaluated_at = k
            if monitor.record(
                k,
                primal_residual=primal,
                dual_residual=dual,
                objective=split.objective(Eu, z) + frozen.objective,
                rho_data=split.rho_y.max(),
                rho_reg=split.rho_p.max(),
                gap=bound if duality is not None else None,
            ):
                break
            if gap_due and (done := bound <= setup.tol).any():
                # Certified problems of a batch leave the active set: their returned input and
                # bound are kept, their iterates no longer computed.
                u_out = u if simple is None else z[:, split.v]
                statistics = frozen.item_statistics(split, policy, k)
                frozen.freeze(done, u_out, bound, split, Eu, z, statistics)
                keep = ~done
                split.restrict(keep)
                system.restrict(keep, split.rho_y, split.rho_p)
                policy.restrict(keep)
                duality = duality.restrict(keep, split.energy)
                if anderson is not None:
                    anderson.restrict(keep)
                u_hat_next, Au, z, mu, zeta, dual, bound = (
                    a[keep] for a in (u_hat_next, Au, z, mu, zeta, dual, bound)
                )
            u_next = transform.inverse(u_hat_next, threads.count)
            if not all_finite(u_next, Au):
                monitor.non_finite(k, "u-step solution")
                break
            u, u_hat = u_next, u_hat_next
            Eu = split.images(u, Au)
            plain = Eu + mu  # θ(E u + c) + (1 − θ) z + μ
            if relaxation != 1.0:
                plain += (1.0 - relaxation) * (z - Eu)
            z_prev = z
            zeta = anderson.step(zeta, plain) if anderson is not None else plain

    u_out, bound = frozen.complete(u if simple is None else z[:, split.v], bound)
    rho_y, rho_p, updates, items = frozen.complete_statistics(
        frozen.item_statistics(split, policy, monitor.iterations)
    ).T
    updates, items = updates.astype(int), items.astype(int)
    if not setup.batched:
        rho_y, rho_p = float(rho_y[0]), float(rho_p[0])
        updates, items = int(updates[0]), int(items[0])
    return finish(
        setup,
        monitor,
        u0=u_out,
        stats={
            **guarantee(monitor, duality, no_gap, bound, evaluated_at),
            "row_iterations": row_iterations,
            "item_iterations": items,
            "rho_data": rho_y,
            "rho_reg": rho_p,
            "kappa": kappa,
            "relaxation": relaxation,
            "memory": memory,
            "penalty_updates": updates,
            "factorizations": system.factorizations,
            "gram_dtype": system.gram_dtype.name,
            "incremental_products": system.incremental,
            "anderson_rejections": anderson.rejections if anderson is not None else 0,
            "blas_threads": {
                "setup": setup_threads,
                "iterations": threads.count,
                "timings": threads.timings,
            },
        },
    )


def _solve_halves(problem, warm_start, options: dict):
    """Solve the two halves of a batch on two threads (BLAS on one thread each) and merge them
    into one Result, as if solved together: u and the per-problem statistics in the batch's
    order, the sums of the work counts, the worst status and bound, and the history of
    ``bregmod.distributed._merge_history`` (objectives summed, residuals, gaps and penalties
    maximised, a half that stopped holding its last value). Each problem follows its own
    schedule either way; only the gap's evaluation schedule, which a batch shares until all
    its problems are near tol, may make a problem stop a few iterations apart."""
    from bregmod.distributed import _merge_history, _warm_chunk, chunk_slices
    from bregmod.solvers.registry import worst_status

    start = time.perf_counter()
    halves = chunk_slices(problem.batch_size, (problem.batch_size + 1) // 2)
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(2) as pool:
        futures = [
            pool.submit(
                _solve_whole,
                problem.with_data(problem.data[items]),
                warm_start=_warm_chunk(problem, warm_start, items),
                **options,
            )
            for items in halves
        ]
        results = [future.result() for future in futures]
    stats = {key: value for key, value in results[0].stats.items() if key not in _PER_PROBLEM}
    for key in ("rho_data", "rho_reg", "penalty_updates", "item_iterations"):
        stats[key] = np.concatenate([r.stats[key] for r in results])
    for key in ("row_iterations", "factorizations", "anderson_rejections"):
        stats[key] = sum(r.stats[key] for r in results)
    bounds = [r.stats["bound"] for r in results]
    stats["bound"] = None if None in bounds else max(bounds)
    if len({r.stats["guarantee"] for r in results}) > 1:
        stats["guarantee"] = None
    stats["message"] = "; ".join(
        f"items {items.start}–{items.stop - 1}: {r.stats['message']}"
        for r, items in zip(results, halves, strict=True)
    )
    stats["batch_size"] = problem.batch_size
    stats["blas_threads"] = {"halves": [r.stats["blas_threads"] for r in results]}
    return problem.make_result(
        np.concatenate([np.asarray(r.u, dtype=np.float64) for r in results]),
        status=worst_status([r.status for r in results]),
        solver="admm",
        iterations=max(r.iterations for r in results),
        history=_merge_history(results),
        stats=stats,
        wall_time=time.perf_counter() - start,
    )


#: Result statistics of a half that are merged by :func:`_solve_halves` rather than copied.
_PER_PROBLEM = (
    "rho_data", "rho_reg", "penalty_updates", "item_iterations", "row_iterations",
    "factorizations", "anderson_rejections", "bound", "message", "blas_threads",
)
