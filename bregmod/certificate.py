"""Convexity certificates for the lifted inversion energy (docs/math/certificates.md).

The lifted energy is

    E_Ψ^ρ(u, z) = λ/2 ‖K u + c − f‖² + B_Ψ(z, W u + b) + χ_{=0}(M u − V z) + ρ/2 ‖M u − V z‖²,

with B_Ψ(z, x) = ½‖z‖² + Ψ(z) + Φ*(x) − ⟨z, x⟩. Everything in it is convex except the
bilinear −⟨z, W u⟩, and :func:`certify` checks one of two sufficient conditions:

``method="paper"`` (Wang & Benning; needs V = Wᵀ)
    Q := λ KᵀK + α E₀ − ρ⁻¹ I − M − Mᵀ ⪰ 0 on the u-space. With V = Wᵀ and a = M Δu − V Δz,
    −2⟨Δz, W Δu⟩ = −2⟨M Δu − a, Δu⟩ ≥ −Δuᵀ(M + Mᵀ)Δu − ρ‖a‖² − ρ⁻¹‖Δu‖², and the ρ‖a‖²
    is paid by the penalty term.
``method="exact"`` (any V, tighter)
    H₀ = [[λ KᵀK + α E₀, −Wᵀ], [−W, I]] ⪰ 0 on the feasible subspace {(u, z) : M u = V z},
    i.e. Nᵀ H₀ N ⪰ 0 for an orthonormal basis N of ker A, A = [M, −V]. It does not depend on
    ρ. When it holds, the certificate also gives μ with H₀ + μ AᵀA ⪰ 0 (Finsler), which the
    backends use to write ½ xᵀ(H₀ + μ AᵀA)x as a convex smooth term.

Here α is J's strong-convexity modulus (α for α/2‖·‖², 0 for TV, ℓ1, boxes) and E₀ the
identity on the input block u₀, zero elsewhere: J − α/2‖u₀‖² is convex, so the α/2‖u₀‖² may
join the quadratic part (λ/2‖K u + c − f‖² brings the data term's curvature λKᵀK).

Above ``dense_limit`` unknowns the exact check needs structure: when the network compiles to a
chain u_j = a_j u_{j−1} + B_j z_j (Dense, Conv2d, Residual layers), the feasible (u, z) are
parametrised by (u₀, z), and the restricted form Pᵀ(H₀ + tol·I)P is reduced link by link by
a block LDLᵀ (:func:`_chain_elimination`, the same elimination as the deep certificate): the
verdict is "every pivot block is positive definite" ⟺ λ_min(Nᵀ H₀ N) > −tol, a verified
margin (``Certificate.factorised``); no eigenvalue is computed then.

On {M u = V z} and with V = Wᵀ, xᵀH₀x = Δuᵀ(Q + ρ⁻¹I)Δu + ‖Δz‖², so the paper certificate
implies the exact one.

Tolerance policy: a form is certified when its smallest eigenvalue is ≥ −tol with
tol = c · n · eps · scale, c = :data:`TOL_FACTOR`, n the dimension of the form and ``scale``
an upper bound of the norm of its α-free part (λ‖K‖² + ρ⁻¹ + 2‖M‖ for Q,
max(λ‖K‖², 1) + ‖W‖ for H₀), so rounding noise on a PSD form (an eigenvalue of −1e−16)
passes while a genuinely indefinite form (smallest eigenvalue ≪ −tol) never does. An
explicit ``tol`` replaces it. α is left out of the scale on purpose: α acts on u₀ only, and a
scale that grew with α would let a large enough α certify a form that is indefinite on the
directions with u₀ = 0, which α does not touch (the tolerance, not α, would pass it). For the
same reason the dense checks take the smaller of the computed smallest eigenvalue of the form
and that of the form on {u₀ = 0} (α-free, computed without α-sized entries): the true
λ_min is at most the latter, and a large α cannot hide its sign in the rounding of the full
form. The price is conservative: for α far above the scale, the rounding of the full form
(≈ eps·α) may exceed tol and reject a form that is PSD only to within that rounding.

Depth dependence of the talk's residual example u_j = u_{j−1} + W_jᵀ prox(W_j u_{j−1} + b_j)
(N(u₀) = u_L, so K = [0 … 0 I]): Q = T ⊗ I with T = tridiag(−1, 2, −1) − ρ⁻¹I of size L + 1
whose last diagonal entry is λ instead of 2. At λ = 1 the smallest eigenvalue of λKᵀK − M − Mᵀ
is 4 sin²(π / (2(2L + 3))), so the smallest certifying ρ is its inverse, independent of the
weights and of the width:

    ======  ==============
    depth   smallest ρ
    ======  ==============
    1       2.618
    2       5.049
    5       17.21
    10      53.68
    20      187.4
    ======  ==============

(about 0.41 (L + 1.5)²; the talk's "ρ ≳ 10³ at depth 20" is sufficient but not necessary).
The quadratic form of λKᵀK − M − Mᵀ is x₀² + Σ_j (x_j − x_{j+1})² + (λ − 1) x_L², whose minimum
at x_L = 1 is 1/(L + 1) + λ − 1, so for λ ≤ L/(L + 1) no ρ certifies. The exact certificate
is much weaker a requirement here: on {M u = V z} with V = Wᵀ the sum telescopes to
xᵀH₀x = (λ − 1)‖u_L‖² + ‖u₀‖² + Σ_j ‖W_jᵀ z_j‖² + ‖z‖², positive for every λ ≥ 1, every ρ
and all weights.
"""

from __future__ import annotations

import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import scipy.linalg as sla
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh, lobpcg

from bregmod._checks import nonnegative_scalar, positive_scalar
from bregmod.errors import SolverError
from bregmod.lifted import LiftedNetwork
from bregmod.operators import BlockOperator, IdentityOperator, Operator

_EPS = np.finfo(np.float64).eps

__all__ = [
    "BLOCK_LIMIT",
    "DENSE_LIMIT",
    "METHODS",
    "SEARCH_LIMIT",
    "TOL_FACTOR",
    "Certificate",
    "DeepCertificate",
    "Threshold",
    "certify",
    "certify_deep",
    "smallest_alpha",
    "smallest_lambda",
    "smallest_rho",
]

#: The certificate methods accepted by :func:`certify`.
METHODS = ("exact", "paper")
#: The factor c of the default tolerance tol = c · n · eps · scale.
TOL_FACTOR = 10.0
#: Largest dimension handled with dense eigenvalue decompositions (unless structure is found).
DENSE_LIMIT = 2000
#: Largest Schur-complement block (states x_0 … x_{L−2}) of the deep model's block certificate.
BLOCK_LIMIT = 8000
#: Iterations of the LOBPCG estimate of the deep model's smallest eigenvalue (block path).
EIG_ITERATIONS = 50
#: Largest value of λ or ρ tried by :func:`smallest_lambda` / :func:`smallest_rho`.
SEARCH_LIMIT = 1e12

_FORMULAS = {
    "paper": "Q = λKᵀK + αE₀ − ρ⁻¹I − M − Mᵀ ⪰ 0",
    "exact": "H₀ = [[λKᵀK + αE₀, −Wᵀ], [−W, I]] ⪰ 0 on {M u = V z}",
}
_SCALES = {"paper": "λ‖K‖² + ρ⁻¹ + 2‖M‖", "exact": "max(λ‖K‖², 1) + ‖W‖"}


@dataclass(frozen=True)
class Certificate:
    """Outcome of a convexity check of the lifted energy E_Ψ^ρ (see the module docstring).

    ``bool(certificate)`` is ``certificate.certified``.

    Attributes
    ----------
    method : str
        ``"paper"`` (Q ⪰ 0) or ``"exact"`` (H₀ ⪰ 0 on {M u = V z}).
    certified : bool
        True iff ``min_eig >= -tolerance`` (``factorised``: iff the block LDLᵀ of the
        restricted H₀ + tol·I has positive definite pivots): the energy is convex for these
        λ, ρ, α.
    min_eig : float or None
        The smallest eigenvalue of the checked form (of Q, or of Nᵀ H₀ N with N orthonormal,
        i.e. the minimum of xᵀH₀x / ‖x‖² over the feasible subspace): the smaller of the
        computed one and that of the form on {u₀ = 0} (see the module docstring); None when
        ``factorised`` (not computed).
    tolerance : float
        The absolute tolerance used.
    scale : float
        Upper bound of the norm of the form's α-free part (λ‖K‖² + ρ⁻¹ + 2‖M‖ for Q,
        max(λ‖K‖², 1) + ‖W‖ for H₀): α never widens the tolerance.
    tol_policy : str
        ``"relative"`` (tolerance = tol_factor · dimension · eps · scale) or ``"absolute"``
        (given by the caller).
    tol_factor : float or None
        The factor c of the relative policy (None for an absolute tolerance).
    dimension : int
        The dimension n of the form (n_u for Q, n_u + n_z for H₀).
    solver : str
        How the smallest eigenvalue was computed.
    lam, rho : float
        The weights checked.
    alpha : float
        J's strong-convexity modulus counted on the input block u₀ (``Regularizer.
        strong_convexity``; 0 when J is not given).
    factorised : bool
        True when the verdict comes from the block LDLᵀ of the restricted H₀ + tol·I along a
        chain (above ``dense_limit``): a verified margin λ_min > −tol, with no eigenvalue,
        witness or μ computed.
    smallest_alpha : float or None
        ``factorised`` only: the smallest α that certifies at this λ (from the same
        elimination), None when no α does or when not computed.
    witness : ndarray or None
        On failure, a unit direction along which the quadratic part decreases: the stacked
        u-vector (paper) or the stacked (u, z)-vector (exact, feasible: M u = V z).
    witness_block : str or None
        Name of the u- or z-block holding most of the witness' norm.
    mu : float or None
        Exact method only: a μ with H₀ + μ AᵀA ⪰ 0, A = [M, −V] (twice the smallest such μ,
        0 when H₀ ⪰ 0 already); None when not certified, not computed or nonexistent.
    mu_min : float or None
        The smallest μ ≥ 0 with H₀ + μ AᵀA ⪰ 0 (same availability as ``mu``).
    mu_note : str
        Why ``mu`` is what it is.
    advice : str
        What to change when the check fails (empty when certified).
    null_space : ndarray (n_u + n_z, k) or None
        Exact method with a dense check: the orthonormal basis N of ker [M, −V] = the feasible
        subspace {M u = V z} that the check restricted H₀ to (None otherwise).
    restricted_eigenvalues, restricted_eigenvectors : ndarray or None
        Exact dense method, certified: the eigen-decomposition θ, Q of the restricted form
        Nᵀ H₀ N = Q diag(θ) Qᵀ, so that ½ xᵀH₀x = ½‖diag(θ₊)^{1/2} Qᵀ Nᵀ x‖² on ker [M, −V]
        (the factor the exact backend writes the quadratic part with); None otherwise.
    """

    method: str
    certified: bool
    min_eig: float | None
    tolerance: float
    scale: float
    tol_policy: str
    tol_factor: float | None
    dimension: int
    solver: str
    lam: float
    rho: float
    alpha: float = 0.0
    factorised: bool = False
    smallest_alpha: float | None = None
    witness: np.ndarray | None = field(default=None, repr=False)
    witness_block: str | None = None
    mu: float | None = None
    mu_min: float | None = None
    mu_note: str = ""
    advice: str = ""
    null_space: np.ndarray | None = field(default=None, repr=False, compare=False)
    restricted_eigenvalues: np.ndarray | None = field(default=None, repr=False, compare=False)
    restricted_eigenvectors: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __bool__(self) -> bool:
        return self.certified

    @property
    def finding(self) -> str:
        """The verdict's evidence in one phrase (used in messages)."""
        if self.factorised and self.certified:
            return (
                f"verified margin: H₀ + tol·I ≻ 0 on {{M u = V z}} (every pivot block of its "
                f"block LDLᵀ is positive definite), so λ_min > −{self.tolerance:.3g}; the "
                "smallest eigenvalue itself was not computed"
            )
        if self.factorised:
            return (
                "a pivot block of the block LDLᵀ of H₀ + tol·I on {M u = V z} is not positive "
                f"definite, so the smallest eigenvalue there is < −{self.tolerance:.3g}"
            )
        relation = "≥" if self.certified else "<"
        return f"smallest eigenvalue {self.min_eig:.6g} {relation} −tolerance {self.tolerance:.3g}"

    def explain(self) -> str:
        """A human-readable account: what was checked, the result and what to change."""
        how = "verdict" if self.factorised else "smallest eigenvalue"
        checked = (
            f"Checked {_FORMULAS[self.method]} (method '{self.method}') at "
            f"λ = {self.lam:g}, ρ = {self.rho:g}, α = {self.alpha:g}, dimension "
            f"{self.dimension}, {how} by {self.solver}."
        )
        if self.tol_policy == "relative":
            policy = (
                f"tolerance = {self.tol_factor:g}·n·eps·scale = {self.tolerance:.3g} with "
                f"scale = {_SCALES[self.method]} ≤ {self.scale:.4g}"
            )
        else:
            policy = f"tolerance = {self.tolerance:.3g} (given by the caller)"
        verdict = "CERTIFIED: the lifted energy is convex" if self.certified else "NOT certified"
        lines = [checked, f"Result: {verdict}: {self.finding} ({policy})."]
        if self.method == "exact" and self.certified:
            lines.append(f"Finsler weight: {self.mu_note}")
        if not self.certified and self.witness_block is not None:
            lines.append(
                f"The quadratic part decreases along the witness direction, which lives mostly "
                f"in block '{self.witness_block}'."
            )
        if not self.certified:
            lines.append(f"To certify: {self.advice}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Threshold:
    """Result of :func:`smallest_lambda`, :func:`smallest_rho` and (quadratic lifted model)
    :func:`smallest_alpha`.

    Attributes
    ----------
    parameter : str
        ``"lam"``, ``"rho"`` or ``"alpha"``.
    method : str
        The certificate method.
    value : float or None
        The smallest certifying value (to relative accuracy ``rtol``; the infimum 0 when every
        positive value certifies), or None when no value up to the search limit certifies.
    reason : str
        How ``value`` was found, or why none exists.
    certificate : Certificate
        The certificate at ``value`` (certified), or at the largest value tried (failed).
    """

    parameter: str
    method: str
    value: float | None
    reason: str
    certificate: Certificate = field(repr=False)


# --- validation --------------------------------------------------------------------------------


def _check_lifted(lifted) -> LiftedNetwork:
    if not isinstance(lifted, LiftedNetwork):
        raise TypeError(f"expected a LiftedNetwork (from net.lift()), got {type(lifted).__name__}")
    return lifted


def _check_method(method) -> str:
    if method not in METHODS:
        raise ValueError(f"unknown certificate method {method!r}; choose one of {METHODS}")
    return method


def _check_lam(lam) -> float:
    return nonnegative_scalar(lam, "lam (the data weight λ)")


def _check_tol(tol) -> float | None:
    return None if tol is None else nonnegative_scalar(tol, "tol (absolute eigenvalue tolerance)")


def _check_dense_limit(dense_limit) -> int:
    if isinstance(dense_limit, bool) or not isinstance(dense_limit, (int, np.integer)):
        raise ValueError(f"dense_limit must be an integer ≥ 0, got {dense_limit!r}")
    if dense_limit < 0:
        raise ValueError(f"dense_limit must be an integer ≥ 0, got {dense_limit}")
    return int(dense_limit)


# --- the quadratic forms ---------------------------------------------------------------------


def _identity_pattern(op: Operator) -> tuple[np.ndarray, int] | None:
    """(S, n) with op = S ⊗ I_n, when op is a grid of zero / IdentityOperator(n, s) blocks."""
    if isinstance(op, IdentityOperator):
        return np.array([[op.scale]]), op.shape[0]
    if not isinstance(op, BlockOperator):
        return None
    sizes = {s.stop - s.start for s in op.row_slices + op.col_slices}
    if len(sizes) != 1:
        return None
    pattern = np.zeros((len(op.row_slices), len(op.col_slices)))
    for i, row in enumerate(op.blocks):
        for j, block in enumerate(row):
            if block is None or block.is_zero:
                continue
            if not isinstance(block, IdentityOperator):
                return None
            pattern[i, j] = block.scale
    return pattern, sizes.pop()


class _Stage(NamedTuple):
    """One link of a chain: u_j = a u_{j−1} + B z_j, the coupling −2⟨z_j, W u_{j−1}⟩ and the
    diagonal d‖z_j‖² of the form (see :func:`_chain_elimination`)."""

    a: float
    B: Operator | None  # None: the identity
    W: Operator
    d: float


def _gram(op: Operator) -> np.ndarray:
    """WᵀW as a dense n × n matrix, from a stored matrix or in chunks of unit vectors (the
    m × n matrix of a matrix-free W is never formed)."""
    n = op.shape[1]
    if not op.matrix_free:
        W = op.to_dense()
        return W.T @ W
    gram = np.empty((n, n))
    step = max(1, 2**22 // op.shape[0])
    for start in range(0, n, step):
        stop = min(start + step, n)
        unit = np.zeros((stop - start, n))
        unit[:, start:stop] = np.eye(stop - start)
        gram[start:stop] = op.apply_adjoint(op.apply(unit))
    return gram


def _chain_elimination(
    stages: list[_Stage], terminal: float | np.ndarray, shift: float
) -> tuple[int | None, float | np.ndarray]:
    """Block LDLᵀ (a Riccati recursion) of the quadratic form of a chain.

    The form, over (u₀, z₁, …, z_L) with u_j = a_j u_{j−1} + B_j z_j, is

        q = Σ_j [d_j‖z_j‖² − 2⟨z_j, W_j u_{j−1}⟩ + e‖u_{j−1}‖²] + u_Lᵀ P_L u_L + (u₀ terms),

    e = ``shift``, P_L = ``terminal`` (a float p stands for p·I). Minimising over z_L, then
    z_{L−1}, … (Schur complements) gives, for j = L … 1,

        G_j = d_j I + B_jᵀ P_j B_j,   F_j = a_j B_jᵀ P_j − W_j,
        P_{j−1} = e I + a_j² P_j − F_jᵀ G_j⁻¹ F_j,

    and q + D₀‖u₀‖²-terms ≻ 0 ⟺ every G_j ≻ 0 and D₀ + P₀ ≻ 0 (Sylvester's law of inertia).
    Each G_j ≻ 0 is checked by a dense Cholesky factorisation (LAPACK), which fails on a
    matrix that is not positive definite beyond its rounding. A scalar P_j with B_j = I and
    a_j = 0 (the last feed-forward link) needs only W_jᵀW_j (formed matrix-free): that link's
    z may be wide. Otherwise G_j (m_j × m_j), P_j and W_j are held densely, one link at a time.

    Returns
    -------
    (failed, P₀)
        ``failed`` the index j of the first G_j that is not positive definite (P₀ is then
        meaningless, 0.0), or None with P₀ (a float when the chain is empty and the terminal
        a float, else an n₀ × n₀ array).
    """
    P = terminal
    for j in range(len(stages), 0, -1):
        a, B, W, d = stages[j - 1]
        if np.ndim(P) == 0 and B is None and a == 0.0:
            if d + P <= 0.0:
                return j, 0.0
            P = shift * np.eye(W.shape[1]) - _gram(W) / (d + P)
            continue
        P_mat = P * np.eye(W.shape[0] if B is None else B.shape[0]) if np.ndim(P) == 0 else P
        BtP = P_mat if B is None else B.to_dense().T @ P_mat
        G = d * np.eye(W.shape[0]) + (BtP if B is None else BtP @ B.to_dense())
        try:
            factor = sla.cholesky(G, lower=True, check_finite=False)
        except np.linalg.LinAlgError:
            return j, 0.0
        F = a * BtP - W.to_dense() if a else -W.to_dense()
        X = sla.solve_triangular(factor, F, lower=True, check_finite=False)
        P = shift * np.eye(W.shape[1]) - X.T @ X
        if a:
            P += a * a * P_mat
    return None, P


def _grid_block(op: Operator, i: int, j: int) -> Operator | None:
    """Block (i, j) of a BlockOperator or of the adjoint of one (None when zero)."""
    if isinstance(op, BlockOperator):
        block = op.blocks[i][j]
    elif isinstance(op.H, BlockOperator):
        block = op.H.blocks[j][i]
        block = None if block is None else block.H
    else:
        return None
    return None if block is None or block.is_zero else block


def _lifted_chain(
    lifted: LiftedNetwork,
) -> tuple[list[tuple[float, Operator | None, Operator]], Operator] | str:
    """The links (a_j, B_j, W_j) and the output block K_L of a chain, or why it is not one.

    A chain: constraint row j − 1 reads u_j − a_j u_{j−1} = B_j z_j (M = I on u_j, −a_j I or
    nothing on u_{j−1}, V = B_j on the next z blocks in order; feed-forward: a_j = 0, B_j = I;
    residual: a_j = 1, B_j = V_j), those z blocks read only u_{j−1} through W, further
    constraint rows are zero and K reads only the last u block. Dense, Conv2d and Residual
    layers (also with a folded affine last layer) and a ShallowSum with one activation compile
    to chains.
    """
    L = len(lifted.u_blocks) - 1
    if L < 1 or len(lifted.constraint_blocks) < L:
        return "the constraint rows do not form a chain u_j = a u_{j−1} + B z_j"
    links, z_next = [], 0
    for j in range(1, L + 1):
        row = j - 1
        head = _grid_block(lifted.M, row, j)
        tail = _grid_block(lifted.M, row, j - 1)
        others = [
            k
            for k in range(L + 1)
            if k not in (j - 1, j) and _grid_block(lifted.M, row, k) is not None
        ]
        if (
            not (isinstance(head, IdentityOperator) and head.scale == 1.0)
            or others
            or not (tail is None or isinstance(tail, IdentityOperator))
        ):
            return f"constraint row {row} is not u_{j} = a u_{j - 1} + B z_{j}"
        zs = [k for k in range(len(lifted.z_blocks)) if _grid_block(lifted.V, row, k) is not None]
        if not zs or zs != list(range(z_next, z_next + len(zs))):
            return f"the z blocks of constraint row {row} are not the next ones in order"
        z_next += len(zs)
        for k in zs:
            reads = [c for c in range(L + 1) if _grid_block(lifted.W, k, c) is not None]
            if reads != [j - 1]:
                return f"z block {k} does not read u_{j - 1} alone"
        Vs = [_grid_block(lifted.V, row, k) for k in zs]
        Ws = [_grid_block(lifted.W, k, j - 1) for k in zs]
        B = Vs[0] if len(zs) == 1 else BlockOperator([Vs])
        if isinstance(B, IdentityOperator) and B.scale == 1.0:
            B = None
        W = Ws[0] if len(zs) == 1 else BlockOperator([[w] for w in Ws])
        links.append((0.0 if tail is None else -tail.scale, B, W))
    extra = range(L, len(lifted.constraint_blocks))
    if z_next != len(lifted.z_blocks) or any(
        _grid_block(op, row, k) is not None
        for op, width in ((lifted.M, L + 1), (lifted.V, len(lifted.z_blocks)))
        for row in extra
        for k in range(width)
    ):
        return "there are constraint rows beyond the chain"
    if any(_grid_block(lifted.K, 0, k) is not None for k in range(L)):
        return "the output reads a u block before the last"
    return links, _grid_block(lifted.K, 0, L)


class _Form(ABC):
    """The quadratic form of one method for one network, precomputed for repeated (λ, ρ, α)."""

    method: str
    dimension: int
    solver: str

    @abstractmethod
    def smallest(self, lam: float, rho: float, alpha: float) -> tuple[float, np.ndarray]:
        """Smallest eigenvalue and a unit eigenvector (in the stacked u or (u, z) space)."""

    @abstractmethod
    def scale(self, lam: float, rho: float) -> float:
        """Upper bound of the norm of the form's α-free part at (λ, ρ) (the tolerance's
        scale; α is left out, see the module docstring)."""

    def input_free(self, lam: float, rho: float) -> tuple[float, np.ndarray] | None:
        """Smallest eigenvalue and a unit vector of the form on the directions with u₀ = 0,
        where α has no effect (None when not available, or when there are none)."""
        return None

    def kernel_min(self, rho: float, alpha: float) -> float | None:
        """Smallest eigenvalue of the form on ker K (where λ has no effect; +inf if ker K = 0).

        This is the limit λ → ∞ of the smallest eigenvalue, computed without forming λKᵀK.
        None when not available (matrix-free forms).
        """
        return None


def _exact_scale(form, lam: float) -> float:
    """max(λ‖K‖², 1) + ‖W‖: the tolerance's scale for H₀, α left out (module docstring)."""
    return max(lam * form.norm_K**2, 1.0) + form.norm_W


def _min_on(basis: np.ndarray, form: np.ndarray) -> float:
    """Smallest eigenvalue of basisᵀ form basis (+inf for an empty basis)."""
    if basis.shape[1] == 0:
        return math.inf
    return float(sla.eigh(basis.T @ form @ basis, eigvals_only=True, subset_by_index=[0, 0])[0])


class _PaperForm(_Form):
    """Q(λ, ρ, α) = λ KᵀK + α E₀ − ρ⁻¹ I − M − Mᵀ on ℝ^{n_u}."""

    method = "paper"

    def __init__(self, lifted: LiftedNetwork) -> None:
        self.dimension = lifted.n_u
        self.n_0 = lifted.u_blocks[0].size
        self.norm_K = lifted.K.norm_bound()
        self.norm_M = lifted.M.norm_bound()

    def scale(self, lam: float, rho: float) -> float:
        return lam * self.norm_K**2 + 1.0 / rho + 2.0 * self.norm_M


class _PaperMatrix(_PaperForm):
    """Q = T ⊗ I_n with T = λ KₛᵀKₛ + α E₀ − ρ⁻¹I − Mₛ − Mₛᵀ for small dense Kₛ, Mₛ.

    n = 1 is the dense case (Kₛ = K, Mₛ = M, E₀ the identity on the first n₀ entries); n > 1
    the residual case where K and M are grids of identity blocks (K = Kₛ ⊗ I_n,
    M = Mₛ ⊗ I_n, E₀ = e₀e₀ᵀ: u₀ is the first block) and the witness is t ⊗ e, e = 1/√n.
    """

    def __init__(self, lifted: LiftedNetwork, K_s: np.ndarray, M_s: np.ndarray, n: int) -> None:
        super().__init__(lifted)
        self.n = n
        self.KtK = K_s.T @ K_s
        self.sym_M = M_s + M_s.T
        self.ker_K = sla.null_space(K_s)
        size = M_s.shape[0]
        self.E_0 = np.zeros(size)
        self.E_0[: self.n_0 if n == 1 else 1] = 1.0
        self.solver = (
            "dense eigh (LAPACK)"
            if n == 1
            else f"scalar {size}×{size} pattern T with Q = T ⊗ I_{n} (identity blocks; eigh of T)"
        )

    def smallest(self, lam, rho, alpha):
        return self._smallest(lam * self.KtK + np.diag(alpha * self.E_0), rho, self.E_0 >= 0)

    def input_free(self, lam, rho):
        free = self.E_0 == 0
        return self._smallest(lam * self.KtK, rho, free) if free.any() else None

    def _smallest(self, T_data: np.ndarray, rho: float, rows: np.ndarray):
        """λ_min and unit vector of T = T_data − Mₛ − Mₛᵀ − ρ⁻¹I on the entries ``rows``."""
        T = T_data - self.sym_M - np.eye(self.E_0.size) / rho
        theta, vec = sla.eigh(T[np.ix_(rows, rows)], subset_by_index=[0, 0])
        t = np.zeros(self.E_0.size)
        t[rows] = vec[:, 0]
        if self.n == 1:
            return float(theta[0]), t
        return float(theta[0]), np.kron(t, np.full(self.n, 1.0 / math.sqrt(self.n)))

    def kernel_min(self, rho, alpha):
        return _min_on(self.ker_K, np.diag(alpha * self.E_0) - self.sym_M) - 1.0 / rho


class _PaperOperator(_PaperForm):
    """Q as a LinearOperator (large, unstructured K or M): Lanczos for its smallest eigenvalue."""

    solver = "eigsh (ARPACK Lanczos, which='SA'; iterative, not a proof)"

    def __init__(self, lifted: LiftedNetwork) -> None:
        super().__init__(lifted)
        self.K = lifted.K
        self.M = lifted.M

    def smallest(self, lam, rho, alpha):
        K, M, n_0 = self.K, self.M, self.n_0

        def matvec(x):
            x = np.ravel(x)
            Mx = M.apply(x)
            Qx = lam * K.apply_adjoint(K.apply(x)) - x / rho - Mx - M.apply_adjoint(x)
            Qx[:n_0] += alpha * x[:n_0]
            return Qx

        Q = LinearOperator((self.dimension,) * 2, matvec=matvec, dtype=np.float64)
        v0 = np.random.default_rng(0).standard_normal(self.dimension)
        try:
            theta, vec = eigsh(Q, k=1, which="SA", v0=v0)
        except ArpackNoConvergence as exc:
            raise SolverError(
                f"eigsh did not converge on Q (n = {self.dimension}): {exc}; "
                "pass a larger dense_limit to use a dense decomposition"
            ) from None
        return float(theta[0]), vec[:, 0] / np.linalg.norm(vec[:, 0])


class _ExactDense(_Form):
    """Nᵀ H₀(λ, α) N = λ (K N_u)ᵀ(K N_u) + α N₀ᵀN₀ + Nᵀ H_c N with N an orthonormal basis of
    ker [M, −V] and N₀ its rows of the input block u₀."""

    method = "exact"
    solver = "orthonormal null-space basis of [M, −V] (SVD) + dense eigh (LAPACK)"

    def __init__(self, lifted: LiftedNetwork) -> None:
        n_u, n_z = lifted.n_u, lifted.n_z
        n_0 = lifted.u_blocks[0].size
        self.dimension = n_u + n_z
        self.norm_K = lifted.K.norm_bound()
        self.norm_W = lifted.W.norm_bound()
        K = lifted.K.to_dense()
        W = lifted.W.to_dense()
        self.A = np.hstack([lifted.M.to_dense(), -lifted.V.to_dense()])
        # one SVD gives both ker A (N) and range Aᵀ (R, used for μ), as in sla.null_space/orth
        _, sv, Vh = sla.svd(self.A, full_matrices=True)
        rank = int(np.sum(sv > (sv.max() if sv.size else 0.0) * max(self.A.shape) * _EPS))
        self.N, self.R = Vh[rank:].conj().T, Vh[:rank].conj().T
        if self.N.shape[1] == 0:
            raise ValueError(
                "the constraint M u = V z admits only (u, z) = 0; the lifted network is degenerate"
            )
        self.E = sla.block_diag(K.T @ K, np.zeros((n_z, n_z)))
        self.E_0 = np.zeros(n_u + n_z)
        self.E_0[:n_0] = 1.0
        self.H_c = np.block([[np.zeros((n_u, n_u)), -W.T], [-W, np.eye(n_z)]])
        KN = K @ self.N[:n_u]
        self.R_lam = KN.T @ KN
        self.R_alpha = self.N[:n_0].T @ self.N[:n_0]
        self.R_c = self.N.T @ self.H_c @ self.N
        self.ker_KN = sla.null_space(KN)
        # feasible directions with u₀ = 0 (N Y): α has no effect there
        self.Y = sla.null_space(self.N[:n_0])
        self.Y_lam, self.Y_c = self.Y.T @ self.R_lam @ self.Y, self.Y.T @ self.R_c @ self.Y

    def scale(self, lam, rho):
        return _exact_scale(self, lam)

    def input_free(self, lam, rho):
        if self.Y.shape[1] == 0:
            return None
        theta, vec = sla.eigh(lam * self.Y_lam + self.Y_c, subset_by_index=[0, 0])
        return float(theta[0]), self.N @ (self.Y @ vec[:, 0])

    def smallest(self, lam, rho, alpha):
        theta, vec = sla.eigh(self._restricted(lam, alpha), subset_by_index=[0, 0])
        return float(theta[0]), self.N @ vec[:, 0]

    def _restricted(self, lam: float, alpha: float) -> np.ndarray:
        return lam * self.R_lam + alpha * self.R_alpha + self.R_c

    def restricted(self, lam: float, alpha: float) -> tuple[np.ndarray, np.ndarray]:
        """(θ, Q) with Nᵀ H₀(λ, α) N = Q diag(θ) Qᵀ (all eigenpairs)."""
        return sla.eigh(self._restricted(lam, alpha))

    def kernel_min(self, rho, alpha):
        return _min_on(self.ker_KN, self.R_c + alpha * self.R_alpha)

    def finsler_mu(
        self, lam: float, alpha: float, tol: float, theta: np.ndarray, U: np.ndarray
    ) -> tuple[float | None, str]:
        """Smallest μ ≥ 0 with H₀ + μ AᵀA ⪰ 0, or None with the reason.

        With x = N a + R r (R an orthonormal basis of range Aᵀ, S = Rᵀ AᵀA R ≻ 0),
        H₀ + μAᵀA ⪰ 0 iff the restricted form H_NN ⪰ 0, H_RN vanishes on ker H_NN and
        H_RR − H_RN H_NN⁺ H_NR + μ S ⪰ 0 (Schur complement); μ_min is the largest eigenvalue
        of the pencil (−(H_RR − H_RN H_NN⁺ H_NR), S), clipped at 0. ``theta``, ``U``: the
        eigen-decomposition of H_NN = Nᵀ H₀ N (:meth:`restricted`).
        """
        H0 = lam * self.E + np.diag(alpha * self.E_0) + self.H_c
        R = self.R
        if R.shape[1] == 0:
            return 0.0, "there are no constraints, H₀ itself is the checked form"
        H_RN = R.T @ H0 @ self.N
        kernel = theta <= tol
        coupling = np.linalg.norm(H_RN @ U[:, kernel], 2) if kernel.any() else 0.0
        if coupling > tol:
            return None, (
                "no finite μ exists: the restricted form is singular and H₀ couples its kernel "
                f"to constraint violations (coupling {coupling:.3g} > tolerance {tol:.3g}); "
                "keep the constraint M u = V z as a hard constraint"
            )
        C = H_RN @ U[:, ~kernel]
        schur = R.T @ H0 @ R - (C / theta[~kernel]) @ C.T
        S = R.T @ self.A.T @ self.A @ R
        mu_min = max(0.0, float(sla.eigh(-schur, S, eigvals_only=True)[-1]))
        return mu_min, ""


class _ExactChain:
    """The exact check of a chain by block LDLᵀ (:func:`_chain_elimination`), for networks
    above ``dense_limit`` (see the module docstring).

    Feasible points are x = P(u₀, z): u_j = a_j u_{j−1} + B_j z_j. Since P is injective with
    range {M u = V z}, Pᵀ(H₀ + s I)P ≻ 0 ⟺ Nᵀ(H₀ + s I)N ≻ 0 ⟺ λ_min(Nᵀ H₀ N) > −s
    (congruence). With ‖x‖² = ‖u‖² + ‖z‖², the form xᵀ(H₀ + sI)x is the chain form of
    :func:`_chain_elimination` with d_j = 1 + s, e = s, P_L = λ K_LᵀK_L + s I, and
    D₀ = α I on u₀ at the end.
    """

    method = "exact"

    def __init__(self, lifted: LiftedNetwork, links, K_L: Operator | None) -> None:
        self.dimension = lifted.n_u + lifted.n_z
        self.norm_K = lifted.K.norm_bound()
        self.norm_W = lifted.W.norm_bound()
        self.links, self.K_L = links, K_L
        self.terminal_gram = (
            None if K_L is None or isinstance(K_L, IdentityOperator) else _gram(K_L)
        )
        self._last: tuple[tuple[float, float], tuple[int | None, np.ndarray]] | None = None
        self.solver = (
            f"block LDLᵀ of the restricted H₀ + tol·I along the chain of {len(links)} "
            f"link{'s' if len(links) != 1 else ''} "
            "(dense Cholesky of each pivot block; the restriction through the parametrisation "
            "u_j = a_j u_{j−1} + B_j z_j)"
        )

    def scale(self, lam: float, rho: float) -> float:
        return _exact_scale(self, lam)

    def reduce(self, lam: float, shift: float) -> tuple[int | None, np.ndarray]:
        """(failed link, P₀) of the chain at λ and s = ``shift`` (the last result is cached)."""
        if self._last is not None and self._last[0] == (lam, shift):
            return self._last[1]
        if self.K_L is None:
            terminal = shift
        elif self.terminal_gram is None:
            terminal = lam * self.K_L.scale**2 + shift
        else:
            terminal = lam * self.terminal_gram + shift * np.eye(self.terminal_gram.shape[0])
        stages = [_Stage(a, B, W, 1.0 + shift) for a, B, W in self.links]
        result = _chain_elimination(stages, terminal, shift)
        self._last = ((lam, shift), result)
        return result


def _check_chain_sizes(lifted: LiftedNetwork, links, K_L) -> str:
    """Why the chain's dense blocks exceed BLOCK_LIMIT ("" when they fit)."""
    sizes = [blk.size for blk in lifted.u_blocks[:-1]]
    sizes += [W.shape[0] for _, _, W in links[:-1]]
    a, B, W = links[-1]
    if not (a == 0.0 and B is None and (K_L is None or isinstance(K_L, IdentityOperator))):
        sizes += [W.shape[0], lifted.u_blocks[-1].size]
    if max(sizes) > BLOCK_LIMIT:
        return (
            f"a dense block of the chain's elimination has {max(sizes)} rows > BLOCK_LIMIT = "
            f"{BLOCK_LIMIT}"
        )
    return ""


def _build_form(lifted: LiftedNetwork, method: str, dense_limit) -> _Form | _ExactChain:
    dense_limit = _check_dense_limit(dense_limit)
    if method == "paper":
        if not lifted.v_is_wt:
            raise ValueError(
                "method='paper' needs V = Wᵀ (pure residual layers u_j = u_{j−1} + W_jᵀ "
                "prox(W_j u_{j−1} + b_j)); this network has V ≠ Wᵀ, use method='exact', "
                "which is valid for any V"
            )
        K_pattern, M_pattern = _identity_pattern(lifted.K), _identity_pattern(lifted.M)
        if K_pattern is not None and M_pattern is not None and K_pattern[1] == M_pattern[1]:
            return _PaperMatrix(lifted, K_pattern[0], M_pattern[0], M_pattern[1])
        if lifted.n_u <= dense_limit:
            return _PaperMatrix(lifted, lifted.K.to_dense(), lifted.M.to_dense(), 1)
        return _PaperOperator(lifted)
    if lifted.n_u + lifted.n_z <= dense_limit:
        return _ExactDense(lifted)
    chain = _lifted_chain(lifted)
    why = chain if isinstance(chain, str) else _check_chain_sizes(lifted, *chain)
    if why:
        raise ValueError(
            f"method='exact' above dense_limit = {dense_limit} (n_u + n_z = "
            f"{lifted.n_u + lifted.n_z}) needs the chain structure of Dense, Conv2d and Residual "
            f"layers, and {why}; pass a larger dense_limit (memory ~ 8 n² bytes) or use "
            "method='paper' when V = Wᵀ"
        )
    return _ExactChain(lifted, *chain)


# --- certificates -----------------------------------------------------------------------------


def _witness_block(lifted: LiftedNetwork, method: str, witness: np.ndarray) -> str:
    """Name of the u- (or z-) block carrying most of the witness' norm."""
    blocks = [(blk.name, witness[blk.slice]) for blk in lifted.u_blocks]
    if method == "exact":
        z_part = witness[lifted.n_u :]
        blocks += [(blk.name, z_part[blk.slice]) for blk in lifted.z_blocks]
    return max(blocks, key=lambda item: float(np.linalg.norm(item[1])))[0]


def _advice(lifted: LiftedNetwork, method: str, kernel_indefinite: bool) -> str:
    """What to change after a failed check; ``kernel_indefinite``: the form is indefinite on
    ker K, where λ has no effect."""
    if method == "paper":
        text = (
            "increase ρ, λ or J's strong-convexity modulus α on u₀ (the smallest eigenvalue of "
            "Q grows with each; see smallest_rho, smallest_lambda, smallest_alpha), or use "
            "method='exact', which is tighter"
        )
        if kernel_indefinite:
            text += (
                "; at this ρ, Q is indefinite on ker K (directions the output does not see), "
                "where λ has no effect, so λ alone cannot help"
            )
        return text
    if kernel_indefinite:
        text = (
            "no λ helps: H₀ is indefinite on feasible directions the output does not see "
            "(ker K), and the exact check does not depend on ρ; add strong convexity on the "
            "input (α/2‖u₀‖² in J, see smallest_alpha) if that helps, or change the architecture"
        )
    else:
        text = (
            "increase λ or J's strong-convexity modulus α on u₀ (the exact check does not "
            "depend on ρ; see smallest_lambda, smallest_alpha)"
        )
    if not lifted.v_is_wt:
        text += ", e.g. use V = Wᵀ (pure residual layers)"
    return text


def _tolerance(form, lam: float, rho: float, tol: float | None) -> dict:
    """The tolerance fields of a Certificate: relative policy unless ``tol`` is given (its
    scale leaves α out, see the module docstring)."""
    scale = form.scale(lam, rho)
    if tol is None:
        tolerance = TOL_FACTOR * form.dimension * _EPS * scale
        return dict(tolerance=tolerance, scale=scale, tol_policy="relative", tol_factor=TOL_FACTOR)
    return dict(tolerance=tol, scale=scale, tol_policy="absolute", tol_factor=None)


def _chain_certificate(
    form: _ExactChain,
    lam: float,
    rho: float,
    alpha: float,
    tol: float | None,
) -> Certificate:
    """The verdict of the block LDLᵀ at s = tol: every G_j ≻ 0 and α I + P₀ ≻ 0 (Cholesky);
    the threshold α* = max(−λ_min(P₀), 0) from the same P₀."""
    common = _tolerance(form, lam, rho, tol)
    failed, P_0 = form.reduce(lam, common["tolerance"])
    threshold = None
    certified = False
    if failed is None:
        threshold = max(-float(sla.eigh(P_0, eigvals_only=True, subset_by_index=[0, 0])[0]), 0.0)
        try:
            sla.cholesky(alpha * np.eye(P_0.shape[0]) + P_0, check_finite=False)
            certified = True
        except np.linalg.LinAlgError:
            pass
    if certified:
        advice = ""
    elif threshold is None:
        advice = (
            f"no α helps at this λ: the pivot block of link {failed} is not positive definite "
            "(the hidden couplings ‖W_j‖ are too strong for the ½‖z‖² in Φ); increase λ "
            "(the exact check does not depend on ρ) or change the architecture"
        )
    else:
        advice = (
            f"a regulariser with strong-convexity modulus α ≥ {threshold:.6g} on u₀ (e.g. "
            f"{threshold:.4g} * SquaredL2() added to J; J has α = {alpha:g}), or a larger λ"
        )
    return Certificate(
        method="exact",
        certified=certified,
        min_eig=None,
        dimension=form.dimension,
        solver=form.solver,
        lam=lam,
        rho=rho,
        alpha=alpha,
        factorised=True,
        smallest_alpha=threshold,
        advice=advice,
        mu_note="not computed on the factorised path (the exact backend needs the dense one)",
        **common,
    )


def _certificate(
    lifted: LiftedNetwork,
    form: _Form | _ExactChain,
    lam: float,
    rho: float,
    alpha: float,
    tol: float | None,
) -> Certificate:
    if isinstance(form, _ExactChain):
        return _chain_certificate(form, lam, rho, alpha, tol)
    min_eig, vector = form.smallest(lam, rho, alpha)
    free = form.input_free(lam, rho)
    if free is not None and free[0] < min_eig:  # λ_min ≤ the form's minimum on {u₀ = 0}
        min_eig, vector = free
    common = _tolerance(form, lam, rho, tol)
    certified = bool(min_eig >= -common["tolerance"])
    common.update(
        method=form.method,
        certified=certified,
        min_eig=min_eig,
        dimension=form.dimension,
        solver=form.solver,
        lam=lam,
        rho=rho,
        alpha=alpha,
    )
    if isinstance(form, _ExactDense):
        common["null_space"] = form.N
    if not certified:
        limit = form.kernel_min(rho, alpha)
        return Certificate(
            **common,
            witness=vector,
            witness_block=_witness_block(lifted, form.method, vector),
            advice=_advice(lifted, form.method, limit is not None and limit < -common["tolerance"]),
        )
    if not isinstance(form, _ExactDense):
        return Certificate(**common)
    theta, U = form.restricted(lam, alpha)
    common.update(restricted_eigenvalues=theta, restricted_eigenvectors=U)
    mu_min, reason = form.finsler_mu(lam, alpha, common["tolerance"], theta, U)
    if mu_min is None:
        return Certificate(**common, mu_note=reason)
    note = (
        f"μ = {2 * mu_min:.6g} = 2 μ_min, μ_min = {mu_min:.6g} the smallest μ ≥ 0 with "
        "H₀ + μ AᵀA ⪰ 0 (Schur complement); ρ ≥ μ_min would make E convex even without "
        "the hard constraint"
    )
    return Certificate(**common, mu=2 * mu_min, mu_min=mu_min, mu_note=note)


def _check_alpha(alpha) -> float:
    return nonnegative_scalar(alpha, "alpha (J's strong-convexity modulus α)")


def certify(
    lifted: LiftedNetwork,
    lam: float,
    rho: float,
    method: str = "exact",
    tol: float | None = None,
    *,
    alpha: float = 0.0,
    dense_limit: int = DENSE_LIMIT,
) -> Certificate:
    """Certify that the lifted energy E_Ψ^ρ + J is convex at (λ, ρ) with J's modulus α.

    ``method="paper"``: Q = λKᵀK + αE₀ − ρ⁻¹I − M − Mᵀ ⪰ 0 (needs V = Wᵀ).
    ``method="exact"``: H₀ = [[λKᵀK + αE₀, −Wᵀ], [−W, I]] ⪰ 0 on {M u = V z} (any V;
    independent of ρ), plus μ with H₀ + μ[M, −V]ᵀ[M, −V] ⪰ 0 when it holds (dense path).

    The smallest eigenvalue is computed from a scalar pattern when K and M are grids of
    identity blocks (residual networks: Q = T ⊗ I_n, T of size depth + 1), by dense ``eigh``
    when the dimension is at most ``dense_limit``, and else by ``eigsh`` (paper). Above
    ``dense_limit`` the exact check of a chain (Dense, Conv2d, Residual layers) is decided by
    the block LDLᵀ of the restricted H₀ + tol·I (``factorised``: a verified margin, no
    eigenvalue); other networks are refused there.

    Parameters
    ----------
    lifted : LiftedNetwork
        The compiled network (``net.lift()``).
    lam : float
        Data weight λ ≥ 0.
    rho : float
        Penalty weight ρ > 0.
    method : {"exact", "paper"}
        Which sufficient condition to check.
    tol : float, optional
        Absolute tolerance on the smallest eigenvalue; default c · n · eps · scale (see the
        module docstring).
    alpha : float
        J's strong-convexity modulus α ≥ 0 on the input block (``Regularizer.
        strong_convexity``; ``Inversion.certify`` passes it).
    dense_limit : int
        Largest dimension handled densely.

    Returns
    -------
    Certificate

    Raises
    ------
    ValueError
        Bad λ, ρ, α, tol or method; ``method="paper"`` on a network with V ≠ Wᵀ; ``"exact"``
        above ``dense_limit`` on a network that is not a chain, or whose chain has a dense
        block larger than :data:`BLOCK_LIMIT`.
    TypeError
        ``lifted`` is not a LiftedNetwork.
    """
    lifted = _check_lifted(lifted)
    lam, rho = _check_lam(lam), positive_scalar(rho, "rho (the penalty weight ρ)")
    method, tol, alpha = _check_method(method), _check_tol(tol), _check_alpha(alpha)
    return _certificate(lifted, _build_form(lifted, method, dense_limit), lam, rho, alpha, tol)


def _search(
    certify_at: Callable[[float], Certificate],
    value_of: Callable[[Certificate], float],
    rtol: float,
) -> tuple[Certificate, bool]:
    """Smallest certifying p in [1/SEARCH_LIMIT, SEARCH_LIMIT] for a criterion nondecreasing in p.

    Brackets by factors of 10 from p = 1, then bisects geometrically down to relative width
    ``rtol``. Returns (certificate at the certifying end, True), or (certificate at
    SEARCH_LIMIT, False) when even that fails.
    """
    success = certify_at(1.0)
    if success.certified:
        fail = 0.1
        while (trial := certify_at(fail)).certified:
            success = trial
            if fail <= 1.0 / SEARCH_LIMIT:
                return success, True
            fail /= 10
    else:
        p = 1.0
        while not success.certified:
            if p >= SEARCH_LIMIT:
                return success, False
            p = min(10 * p, SEARCH_LIMIT)
            success = certify_at(p)
        fail = p / 10
    hi = value_of(success)
    while hi - fail > rtol * hi:
        mid = math.sqrt(fail * hi)
        trial = certify_at(mid)
        if trial.certified:
            hi, success = mid, trial
        else:
            fail = mid
    return success, True


def smallest_lambda(
    lifted: LiftedNetwork,
    rho: float,
    method: str = "exact",
    *,
    alpha: float = 0.0,
    tol: float | None = None,
    rtol: float = 1e-6,
    dense_limit: int = DENSE_LIMIT,
) -> Threshold:
    """Smallest λ ≥ 0 for which :func:`certify` succeeds at the given ρ (and J's modulus α).

    The smallest eigenvalue of Q (paper) and of Nᵀ H₀ N (exact) is nondecreasing in λ (λ
    multiplies the PSD term KᵀK), so λ = 0 is tried first, then a bracket by factors of 10
    up to 1e12 is bisected geometrically to relative accuracy ``rtol``.

    Returns
    -------
    Threshold
        ``value`` None (with the reason) when λ = 1e12 still fails, typically because the form
        is indefinite on ker K, where λ has no effect.
    """
    lifted = _check_lifted(lifted)
    rho, method = positive_scalar(rho, "rho (the penalty weight ρ)"), _check_method(method)
    tol, rtol, alpha = _check_tol(tol), positive_scalar(rtol, "rtol"), _check_alpha(alpha)
    form = _build_form(lifted, method, dense_limit)

    def certify_at(lam: float) -> Certificate:
        return _certificate(lifted, form, lam, rho, alpha, tol)

    at_zero = certify_at(0.0)
    if at_zero.certified:
        return Threshold("lam", method, 0.0, "certified already at λ = 0", at_zero)
    limit = form.kernel_min(rho, alpha)
    if limit is not None and limit < -at_zero.tolerance:
        reason = (
            f"no λ certifies at ρ = {rho:g}: on ker K (directions the output does not see) λ has "
            f"no effect, and there the form's smallest eigenvalue is {limit:.3g} < "
            f"−{at_zero.tolerance:.3g}; the certificate returned is the one at λ = 0"
        )
        return Threshold("lam", method, None, reason, at_zero)
    cert, found = _search(certify_at, lambda c: c.lam, rtol)
    if found:
        reason = f"bisection to relative accuracy {rtol:g} at ρ = {rho:g}"
        return Threshold("lam", method, cert.lam, reason, cert)
    reason = (
        f"no λ ≤ {SEARCH_LIMIT:g} certifies at ρ = {rho:g}: at λ = {SEARCH_LIMIT:g}, "
        f"{cert.finding}; {cert.advice}"
    )
    return Threshold("lam", method, None, reason, cert)


def smallest_rho(
    lifted: LiftedNetwork,
    lam: float,
    method: str = "paper",
    *,
    alpha: float = 0.0,
    tol: float | None = None,
    rtol: float = 1e-6,
    dense_limit: int = DENSE_LIMIT,
) -> Threshold:
    """Smallest ρ > 0 for which :func:`certify` succeeds at the given λ (and J's modulus α).

    ``"paper"``: the smallest eigenvalue of Q = λKᵀK − M − Mᵀ − ρ⁻¹I increases with ρ, towards
    that of P = λKᵀK − M − Mᵀ, so the threshold is 1/λ_min(P) when P ≻ 0 and does not exist
    otherwise; it is found by a bracket of factors of 10 up to 1e12 and geometric bisection to
    relative accuracy ``rtol``. ``"exact"``: the check does not depend on ρ, so either every
    ρ > 0 certifies (value 0.0, the infimum) or none does (value None).

    Returns
    -------
    Threshold
    """
    lifted = _check_lifted(lifted)
    lam, method = _check_lam(lam), _check_method(method)
    tol, rtol, alpha = _check_tol(tol), positive_scalar(rtol, "rtol"), _check_alpha(alpha)
    form = _build_form(lifted, method, dense_limit)

    def certify_at(rho: float) -> Certificate:
        return _certificate(lifted, form, lam, rho, alpha, tol)

    if method == "exact":
        cert = certify_at(1.0)
        if cert.certified:
            reason = (
                "the exact check does not depend on ρ (the penalty vanishes on M u = V z) and "
                f"holds at λ = {lam:g}: every ρ > 0 certifies, 0 is the infimum"
            )
            return Threshold("rho", method, 0.0, reason, cert)
        reason = (
            f"no ρ certifies: the exact check does not depend on ρ and fails at λ = {lam:g}; "
            f"{cert.advice}"
        )
        return Threshold("rho", method, None, reason, cert)
    cert, found = _search(certify_at, lambda c: c.rho, rtol)
    if found:
        reason = f"bisection to relative accuracy {rtol:g} at λ = {lam:g}"
        return Threshold("rho", method, cert.rho, reason, cert)
    reason = (
        f"no ρ ≤ {SEARCH_LIMIT:g} certifies at λ = {lam:g}: as ρ → ∞, Q tends to "
        f"λKᵀK + αE₀ − M − Mᵀ, whose smallest eigenvalue ≈ {cert.min_eig + 1 / cert.rho:.3g} is "
        "not positive; increase λ (see smallest_lambda)"
    )
    return Threshold("rho", method, None, reason, cert)


# --- the deep lifted Bregman model (docs/math/deep.md) ---------------------------------------


@dataclass(frozen=True)
class DeepCertificate:
    """Outcome of the exact convexity check of the deep lifted Bregman inversion energy

        Σ_{l=1}^{L} B_{Ψ_l}(x_l, W_l x_{l−1} + b_l) + J(x_0),   x_L = f fixed,

    over ξ = (x_0, …, x_{L−1}). Its quadratic part is ½ ξᵀH₀ξ with H₀ block-tridiagonal: J's
    strong-convexity modulus α on x_0, I (the ½‖x_l‖² in Φ_l) on x_1 … x_{L−1}, −W_l at block
    (l, l−1) and −W_lᵀ at (l−1, l) for l = 1 … L−1 (the bilinear −⟨x_l, W_l x_{l−1}⟩; the last
    layer's is linear since x_L is fixed). The rest — Ψ_l(x_l), Φ*_l(W_l x_{l−1} + b_l) and
    J − α/2‖·‖² — is convex, so H₀ ⪰ 0 certifies that the whole energy is convex. For two
    layers H₀ ⪰ 0 ⟺ α ≥ ‖W_1‖².

    ``bool(certificate)`` is ``certified``.

    Attributes
    ----------
    certified : bool
        True iff ``min_eig ≥ −tolerance`` (same relative tolerance policy as :func:`certify`,
        with scale = 1 + 2 max_{l<L} ‖W_l‖, which leaves α out: α never widens it).
    min_eig : float
        The smallest eigenvalue of H₀ (dense path: the smaller of the computed one and that of
        its hidden block x_1 … x_{L−1}, where α has no effect; above ``dense_limit``: the
        Rayleigh quotient of a LOBPCG vector, an upper bound of it, not part of the verdict;
        ``solver`` says whether it converged). With layer weights: of the congruent
        unit-weight form H̃₀ = D⁻¹ H_γ D⁻¹ (see ``weights``).
    tolerance : float
        The absolute tolerance used.
    alpha : float
        J's strong-convexity modulus (``Regularizer.strong_convexity``).
    smallest_alpha : float or None
        The smallest modulus that certifies (:func:`smallest_alpha`); None when no α does
        (the hidden part of H₀ is indefinite, e.g. ‖W_2‖ > 1 for three layers).
    dimension : int
        n_0 + … + n_{L−1}.
    solver : str
        How the smallest eigenvalue was computed.
    method : str
        ``"deep"``.
    advice : str
        What would certify the problem (empty when certified).
    factorised : bool
        True when the verdict comes from the block LDLᵀ of H₀ + tol·I (above ``dense_limit``):
        certified iff every pivot block is positive definite, and ``min_eig`` is only an
        estimate (an upper bound) beside it.
    weights : tuple of float or None
        The layer weights γ_1, …, γ_L of a weighted energy E_γ (None for unit weights). Its
        quadratic part H_γ (γ_l I on x_l, −γ_l W_l off the diagonal) is checked through the
        congruent H̃₀ = D⁻¹ H_γ D⁻¹, D = diag(I, √γ_1 I, …, √γ_{L−1} I): the unit-weight form
        with W_l ← √(γ_l/γ_{l−1}) W_l (γ_0 = 1; γ_L does not enter). Same inertia, so the
        verdict and ``smallest_alpha`` are H_γ's; ``min_eig``, ``tolerance`` and the margin
        are H̃₀'s.
    """

    certified: bool
    min_eig: float
    tolerance: float
    alpha: float
    smallest_alpha: float | None
    dimension: int
    solver: str
    method: str = "deep"
    advice: str = ""
    factorised: bool = False
    weights: tuple[float, ...] | None = None

    @property
    def finding(self) -> str:
        """The verdict's evidence in one phrase (used in messages)."""
        if self.factorised and self.certified:
            return "every pivot block of the block LDLᵀ of H₀ + tol·I is positive definite"
        if self.factorised:
            return (
                "a pivot block of the block LDLᵀ of H₀ + tol·I is not positive definite, so the "
                f"smallest eigenvalue is < −{self.tolerance:.3g}"
            )
        relation = "≥" if self.certified else "<"
        return f"smallest eigenvalue {self.min_eig:.6g} {relation} −tolerance {self.tolerance:.3g}"

    def __bool__(self) -> bool:
        return self.certified

    def explain(self) -> str:
        """What was checked, the result and what would certify it."""
        verdict = (
            "CERTIFIED: the deep lifted energy is convex" if self.certified else ("NOT certified")
        )
        lines = [
            f"Checked H₀ ⪰ 0 for the deep lifted Bregman energy (block-tridiagonal: α = "
            f"{self.alpha:g} on x_0, I on the hidden states, −W_l off the diagonal), dimension "
            f"{self.dimension}, by {self.solver}.",
            f"Result: {verdict}: {self.finding}.",
        ]
        if self.weights is not None:
            lines.insert(
                1,
                "Layer weights γ = ("
                + ", ".join(f"{g:g}" for g in self.weights)
                + "): checked through the congruent unit-weight form D⁻¹H_γD⁻¹ (W_l ← "
                "√(γ_l/γ_{l−1}) W_l, D = diag(I, √γ_1 I, …)): same inertia, so the verdict and "
                "α* are H_γ's; eigenvalues and tolerance are those of the rescaled form.",
            )
        if self.factorised:
            lines.append(
                f"Smallest-eigenvalue estimate (an upper bound, not part of the verdict): "
                f"{self.min_eig:.6g}."
            )
        if not self.certified:
            lines.append(f"To certify: {self.advice}")
        return "\n".join(lines)


def _deep_form(model, alpha: float) -> np.ndarray:
    """H₀ as a dense matrix (see :class:`DeepCertificate`)."""
    sizes = model.sizes[: model.depth]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    H = np.eye(offsets[-1])
    H[: sizes[0], : sizes[0]] *= alpha
    for l in range(1, model.depth):
        rows = slice(offsets[l], offsets[l + 1])
        cols = slice(offsets[l - 1], offsets[l])
        W = model.operator(l).to_dense()
        H[rows, cols] = -W
        H[cols, rows] = -W.T
    return H


def _deep_operator(model, alpha: float) -> LinearOperator:
    """H₀ as a matrix-free LinearOperator: (H₀ξ)_l = d_l x_l − W_l x_{l−1} − W_{l+1}ᵀ x_{l+1}
    (d_0 = α, d_l = 1; the terms with x_{−1}, x_L are absent)."""
    L, sizes = model.depth, model.sizes[: model.depth]
    offsets = np.concatenate([[0], np.cumsum(sizes)])

    def matvec(xi):
        xi = np.ravel(xi)
        x = [xi[offsets[l] : offsets[l + 1]] for l in range(L)]
        out = [x[0] * alpha, *x[1:]]
        for l in range(1, L):
            W = model.operator(l)
            out[l] = out[l] - W.apply(x[l - 1])
            out[l - 1] = out[l - 1] - W.apply_adjoint(x[l])
        return np.concatenate(out)

    return LinearOperator((int(offsets[-1]),) * 2, matvec=matvec, dtype=np.float64)


def _deep_schur(model, shift: float) -> tuple[int | None, np.ndarray]:
    """Block LDLᵀ of H₀ + s I from the last free state back to x_1 (docs/math/certificates.md).

    With S_{L−1} = (1 + s) I and, for l = L−1 … 2,

        S_{l−1} = (1 + s) I − W_lᵀ S_l⁻¹ W_l,

    H₀ + s I ≻ 0 ⟺ S_{L−1}, …, S_1 ≻ 0 and (α + s) I − P ≻ 0 with P = W_1ᵀ S_1⁻¹ W_1
    (Schur complements; Sylvester's law of inertia). This is the chain elimination
    :func:`_chain_elimination` with links x_l = z_l (a = 0, B = I), d = 1 + s, e = 0 and
    P_{L−1} = 0 (x_L is fixed): G_l = S_l and P = −P₀. Only S_l (n_l × n_l, l ≤ L − 2) and W_l
    are held in memory; the first step uses S_{L−1} = (1 + s) I, so the last free state may be
    large.

    Returns
    -------
    (failed, P)
        ``failed`` the index l ≥ 1 of the first hidden Schur complement that is not positive
        definite (then P is empty), or None with P = W_1ᵀ S_1⁻¹ W_1 (n_0 × n_0).
    """
    stages = [_Stage(0.0, None, model.operator(l), 1.0 + shift) for l in range(1, model.depth)]
    failed, P_0 = _chain_elimination(stages, 0.0, 0.0)
    if failed is not None:
        return failed, np.empty((0, 0))
    n_0 = model.sizes[0]
    return None, -P_0 if np.ndim(P_0) else np.zeros((n_0, n_0))


class _ScaledOperator(Operator):
    """c · W for a constant c > 0: a link of the congruent chain of :func:`_unit_weight_chain`."""

    def __init__(self, op: Operator, c: float) -> None:
        super().__init__(op.shape, matrix_free=op.matrix_free)
        self.op, self.c = op, c

    def _apply(self, X: np.ndarray) -> np.ndarray:
        return self.c * self.op.apply(X)

    def _apply_adjoint(self, Y: np.ndarray) -> np.ndarray:
        return self.c * self.op.apply_adjoint(Y)

    def _norm_bound(self) -> float:
        return self.c * self.op.norm_bound()

    def to_dense(self) -> np.ndarray:
        return self.c * self.op.to_dense()


class _UnitWeightChain(NamedTuple):
    """The depth, state sizes and links W̃_l of the unit-weight chain of :func:`_unit_weight_chain`
    (the part of the DeepBregman interface that the certificate reads)."""

    depth: int
    sizes: tuple[int, ...]
    operators: tuple[Operator, ...]

    def operator(self, l: int) -> Operator:
        """W̃_l (layers are numbered 1…L)."""
        return self.operators[l - 1]


def _unit_weight_chain(model):
    """The unit-weight chain whose H₀ is congruent to the weighted model's (docs/math/deep.md).

    With layer weights γ_l the quadratic part of E_γ is H_γ: α I on x_0, γ_l I on x_l and
    −γ_l W_l at block (l, l−1), for l = 1 … L−1 (γ_L multiplies the data term, which is
    convex plus linear in x_{L−1} since x_L = f is fixed, so it does not enter H_γ). With
    D = diag(I, √γ_1 I, …, √γ_{L−1} I),

        D⁻¹ H_γ D⁻¹ = H̃₀:  α I on x_0, I on x_l, −√(γ_l/γ_{l−1}) W_l at (l, l−1)   (γ_0 = 1),

    the unit-weight H₀ of the links W̃_l = √(γ_l/γ_{l−1}) W_l. A congruence preserves inertia
    (Sylvester), so H_γ ⪰ 0 ⟺ H̃₀ ⪰ 0, and α enters both unchanged (D is I on x_0): the verdict
    and α* of H̃₀ are those of H_γ; its eigenvalues (and the tolerance) are H̃₀'s. The model
    itself is returned when every γ_l = 1; W_L (not in H₀) is kept.
    """
    if not model.weighted:
        return model
    gammas = (1.0, *model.weights)
    operators = tuple(
        model.operator(l)
        if l == model.depth or gammas[l] == gammas[l - 1]
        else _ScaledOperator(model.operator(l), math.sqrt(gammas[l] / gammas[l - 1]))
        for l in range(1, model.depth + 1)
    )
    return _UnitWeightChain(model.depth, tuple(model.sizes), operators)


def _deep_threshold(chain) -> float | None:
    """α* = λ_max(W_1ᵀ S_1⁻¹ W_1) of a unit-weight chain (None: a hidden S_l is not ≻ 0); see
    :func:`smallest_alpha`."""
    _check_blocks(chain)
    failed, P = _deep_schur(chain, 0.0)
    if failed is not None:
        return None
    if chain.depth == 1:
        return 0.0
    return float(sla.eigh(P, eigvals_only=True, subset_by_index=[P.shape[0] - 1] * 2)[0])


def _check_blocks(model) -> None:
    """Refuse a model whose Schur complements (states x_0 … x_{L−2}) exceed BLOCK_LIMIT."""
    large = [l for l, n in enumerate(model.sizes[: max(model.depth - 1, 1)]) if n > BLOCK_LIMIT]
    if large:
        raise ValueError(
            f"the block certificate of the deep model holds dense n_l × n_l Schur complements "
            f"for the states x_0 … x_{model.depth - 2}; x_{large[0]} has "
            f"{model.sizes[large[0]]} entries > BLOCK_LIMIT = {BLOCK_LIMIT}"
        )


def smallest_alpha(
    model,
    lam: float | None = None,
    rho: float | None = None,
    method: str = "exact",
    *,
    tol: float | None = None,
    rtol: float = 1e-6,
    dense_limit: int = DENSE_LIMIT,
) -> float | None | Threshold:
    """The smallest strong-convexity modulus α of J on the input that certifies convexity.

    **Deep lifted Bregman model** (``model`` a DeepBregman, ``Inversion.deep``; the other
    arguments unused). With the block elimination of :func:`_deep_schur` at s = 0,
    H₀(α) ⪰ 0 ⟺ the hidden Schur complements S_{L−1}, …, S_1 are positive definite and
    α I − W_1ᵀ S_1⁻¹ W_1 ⪰ 0, so α* = λ_max(W_1ᵀ S_1⁻¹ W_1) (= ‖W_1‖² for two layers). Returns
    that float, or None when a hidden Schur complement is not positive definite (no α
    certifies; singular is treated as such, conservatively). Its states x_0 … x_{L−2} must
    have at most :data:`BLOCK_LIMIT` entries each (the last free state x_{L−1} may be larger).
    With layer weights γ this is computed on the congruent unit-weight chain of
    :func:`_unit_weight_chain` (W_l ← √(γ_l/γ_{l−1}) W_l), which has the same α*.

    **Quadratic lifted model** (``model`` a LiftedNetwork, with λ and, for the paper check,
    ρ): a :class:`Threshold` like :func:`smallest_lambda`, for :func:`certify`'s ``alpha``.
    The checked forms are nondecreasing in α (α multiplies the PSD term E₀), so α = 0 is
    tried first; on the dense paths, when the form is indefinite (below −tol) on the
    directions with u₀ = 0, where α has no effect, no α certifies (None, without a search);
    else a bracket by factors of 10 up to 1e12 is bisected geometrically to
    relative accuracy ``rtol``; on the factorised path (a chain above ``dense_limit``) the
    threshold max(−λ_min(P₀), 0) comes from one elimination (:func:`_chain_elimination`) and
    is returned raised by the relative ``rtol`` (the certificate at the threshold itself is
    singular).

    Raises
    ------
    ValueError
        A deep state x_0 … x_{L−2} has more than :data:`BLOCK_LIMIT` entries; a LiftedNetwork
        without λ, or without ρ for ``method="paper"``; what :func:`certify` refuses.
    """
    if not isinstance(model, LiftedNetwork):
        return _deep_threshold(_unit_weight_chain(model))
    if lam is None:
        raise ValueError("smallest_alpha of a LiftedNetwork needs lam (the data weight λ)")
    method = _check_method(method)
    if rho is None and method == "paper":
        raise ValueError("smallest_alpha with method='paper' needs rho (the penalty weight ρ)")
    lam, tol, rtol = _check_lam(lam), _check_tol(tol), positive_scalar(rtol, "rtol")
    rho = 1.0 if rho is None else positive_scalar(rho, "rho (the penalty weight ρ)")
    form = _build_form(model, method, dense_limit)

    def certify_at(alpha: float) -> Certificate:
        return _certificate(model, form, lam, rho, alpha, tol)

    at_zero = certify_at(0.0)
    if at_zero.certified:
        return Threshold("alpha", method, 0.0, "certified already at α = 0", at_zero)
    free = None if isinstance(form, _ExactChain) else form.input_free(lam, rho)
    if free is not None and free[0] < -at_zero.tolerance:
        reason = (
            f"no α certifies at λ = {lam:g}{f', ρ = {rho:g}' if method == 'paper' else ''}: on "
            f"the directions with u₀ = 0, where α has no effect, the form's smallest eigenvalue "
            f"is {free[0]:.3g} < −{at_zero.tolerance:.3g}; {at_zero.advice}"
        )
        return Threshold("alpha", method, None, reason, at_zero)
    if isinstance(form, _ExactChain):
        if at_zero.smallest_alpha is None:
            reason = f"no α certifies at λ = {lam:g}: {at_zero.finding}; {at_zero.advice}"
            return Threshold("alpha", method, None, reason, at_zero)
        for raise_by in (rtol, 10 * rtol, 100 * rtol):  # the Cholesky of α I + P₀ decides
            value = at_zero.smallest_alpha * (1.0 + raise_by)
            cert = certify_at(value)
            if cert.certified:
                break
        reason = (
            f"max(−λ_min(P₀), 0) = {at_zero.smallest_alpha:.10g} of the block elimination at "
            f"λ = {lam:g}, s = tol, raised by the relative {raise_by:g}"
        )
        return Threshold("alpha", method, value if cert.certified else None, reason, cert)
    cert, found = _search(certify_at, lambda c: c.alpha, rtol)
    if found:
        reason = f"bisection to relative accuracy {rtol:g} at λ = {lam:g}, ρ = {rho:g}"
        return Threshold("alpha", method, cert.alpha, reason, cert)
    reason = (
        f"no α ≤ {SEARCH_LIMIT:g} certifies at λ = {lam:g}, ρ = {rho:g}: {cert.finding} (α acts "
        f"on u₀ only); {cert.advice}"
    )
    return Threshold("alpha", method, None, reason, cert)


def _lobpcg_min(model, alpha: float) -> tuple[float, bool]:
    """(r, converged): LOBPCG's estimate of λ_min(H₀), matrix-free, preconditioned by the inverse
    of H₀'s diagonal blocks (1/max(α, 1) on x_0, 1 elsewhere), at most :data:`EIG_ITERATIONS`
    iterations; r is the Rayleigh quotient vᵀH₀v / vᵀv of its vector, recomputed, so
    λ_min ≤ r rigorously whether or not it converged."""
    H = _deep_operator(model, alpha)
    n, n_0 = H.shape[0], model.sizes[0]
    diagonal = np.ones(n)
    diagonal[:n_0] = max(alpha, 1.0)
    precondition = LinearOperator(
        (n, n),
        matvec=lambda x: np.ravel(x) / diagonal,
        matmat=lambda X: X / diagonal[:, None],
        dtype=np.float64,
    )
    start = np.random.default_rng(0).standard_normal((n, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "did not converge": reported below
        _, vec = lobpcg(H, start, M=precondition, largest=False, maxiter=EIG_ITERATIONS, tol=1e-9)
    v = vec[:, 0] / np.linalg.norm(vec[:, 0])
    Hv = H.matvec(v)
    quotient = float(v @ Hv)
    residual = float(np.linalg.norm(Hv - quotient * v))
    return quotient, residual <= 1e-6 * max(1.0, abs(alpha))


def certify_deep(
    model, reg=None, tol: float | None = None, *, dense_limit: int = DENSE_LIMIT
) -> DeepCertificate | None:
    """The exact convexity certificate of the deep lifted Bregman inversion energy: H₀ ⪰ 0.

    Two paths (docs/math/certificates.md):

    * dimension ≤ ``dense_limit``: the smallest eigenvalue of the dense H₀ (LAPACK eigvalsh),
      certified iff it is ≥ −tol;
    * larger: the block LDLᵀ of H₀ + tol·I (:func:`_deep_schur`, dense Cholesky factors of the
      n_l × n_l Schur complements, l ≤ L − 2): certified iff every pivot block is positive
      definite, i.e. H₀ + tol·I ≻ 0 — a verified margin, with no eigenvalue estimate in the
      verdict. ``min_eig`` is then the Rayleigh quotient of LOBPCG's vector (matrix-free, at
      most :data:`EIG_ITERATIONS` iterations), reported for information: a rigorous upper
      bound of λ_min, equal to it when LOBPCG converged (``solver`` says which); a
      certificate that it contradicts (quotient < −tol) raises instead of passing.

    Parameters
    ----------
    model : DeepBregman
        The energy (``Inversion.deep``).
    reg : Regularizer or None
        J; only its strong-convexity modulus (``strong_convexity``) enters.
    tol : float, optional
        Absolute tolerance on the smallest eigenvalue (default: the relative policy of
        :func:`certify`, tol = c · n · eps · scale).
    dense_limit : int
        Largest dimension checked with a dense eigen-decomposition.

    Returns
    -------
    DeepCertificate or None
        None when the block path does not apply either (a state x_0 … x_{L−2} has more than
        :data:`BLOCK_LIMIT` entries): no check is made, nothing is claimed.

    Raises
    ------
    SolverError
        The eigenvalue estimate contradicts the block factorisation (never seen; a pass is
        never reported then).
    """
    dense_limit = _check_dense_limit(dense_limit)
    weights = model.weights if model.weighted else None
    model = _unit_weight_chain(model)
    alpha = 0.0 if reg is None else float(reg.strong_convexity)
    dimension = int(sum(model.sizes[: model.depth]))
    norms = [model.operator(l).norm_bound() for l in range(1, model.depth)]
    scale = 1.0 + 2 * max(norms, default=0.0)
    tolerance = _check_tol(tol)
    if tolerance is None:
        tolerance = TOL_FACTOR * dimension * _EPS * scale
    if dimension <= dense_limit:
        H = _deep_form(model, alpha)
        min_eig = float(np.linalg.eigvalsh(H)[0])
        n_0 = model.sizes[0]
        if model.depth > 1:  # λ_min ≤ that of the hidden block, where α has no effect
            min_eig = min(min_eig, float(np.linalg.eigvalsh(H[n_0:, n_0:])[0]))
        certified = min_eig >= -tolerance
        blocks = model.sizes[: max(model.depth - 1, 1)]
        threshold = _deep_threshold(model) if max(blocks) <= BLOCK_LIMIT else None
        solver = "numpy.linalg.eigvalsh (dense)"
    else:
        if max(model.sizes[: max(model.depth - 1, 1)]) > BLOCK_LIMIT:
            return None
        failed, P = _deep_schur(model, tolerance)
        threshold = None
        if failed is None:
            threshold = max(float(sla.eigh(P, eigvals_only=True)[-1]) - tolerance, 0.0)
        certified = threshold is not None and alpha >= threshold
        min_eig, converged = _lobpcg_min(model, alpha)
        if certified and min_eig < -tolerance:
            raise SolverError(
                f"certify_deep: the block factorisation says H₀ + tol·I ≻ 0 but a Rayleigh "
                f"quotient is {min_eig:.3g} < −{tolerance:.3g}; undecided, nothing is claimed"
            )
        solver = (
            "block LDLᵀ of H₀ + tol·I (dense Cholesky of each Schur complement) for the "
            "verdict; smallest eigenvalue by LOBPCG (matrix-free, "
            + (
                "converged"
                if converged
                else f"not converged in {EIG_ITERATIONS} iterations: an upper bound"
            )
            + ")"
        )
    if certified:
        advice = ""
    elif threshold is None:
        advice = (
            "no strong convexity of J on x_0 suffices: the hidden layers' couplings are too "
            "strong (for three layers ‖W_2‖ < 1 is needed"
            + (", with W_l ← √(γ_l/γ_{l−1}) W_l under the layer weights" if weights else "")
            + "); the block solver palm finds stationary points"
        )
    else:
        advice = (
            f"a regulariser with strong-convexity modulus α ≥ {threshold:.6g} on x_0 (e.g. "
            f"{threshold:.4g} * SquaredL2() added to J; J has α = {alpha:g})"
        )
    return DeepCertificate(
        certified=bool(certified),
        min_eig=min_eig,
        tolerance=float(tolerance),
        alpha=alpha,
        smallest_alpha=threshold,
        dimension=dimension,
        solver=solver,
        advice=advice,
        factorised=dimension > dense_limit,
        weights=weights,
    )
