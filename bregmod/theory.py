"""The error estimate of the one-layer Bregman inversion (docs/math/error-estimate.md), checked
numerically.

Setting. One layer u ↦ σ(W u + b) with σ = prox_Ψ (a ``Dense`` or ``Conv2d`` layer), exact data
f = σ(W u† + b), noisy data f^δ ∈ dom Ψ with B_Ψ(f^δ, W u† + b) ≤ δ², a convex J with the
source condition p† := Wᵀv† ∈ ∂J(u†), and

    u_α ∈ argmin_u B_Ψ(f^δ, W u + b) + α J(u).

The theorem of the talk (Wang & Benning, Front. Appl. Math. Stat. 9, 2023) reads

    D_J(u†, u_α) ≤ 2δ²/α + α‖v†‖²                                   (classical part)
                   + (1/α)(Ψ(f^δ + αv†) + Ψ(f^δ − αv†) − 2Ψ(f^δ))     (Burbea–Rao part),

without saying which subgradient D_J uses.

Which D_J, and the proof. Write x_α = W u_α + b, x† = W u† + b. Since ∇ₓB_Ψ(y, x) = σ(x) − y,
the optimality condition of u_α is 0 ∈ Wᵀ(σ(x_α) − f^δ) + α∂J(u_α), i.e.

    p_α := Wᵀ(f^δ − σ(x_α)) / α ∈ ∂J(u_α).

The proof bounds the symmetric Bregman distance

    D_J^sym(u_α, u†) = ⟨p_α − p†, u_α − u†⟩ = D_J^{p_α}(u†, u_α) + D_J^{p†}(u_α, u†),

with D_J^p(u, w) = J(u) − J(w) − ⟨p, u − w⟩:

1. α⟨p_α, u_α − u†⟩ = ⟨f^δ − σ(x_α), x_α − x†⟩ ≤ B_Ψ(f^δ, x†) − B_Ψ(f^δ, x_α), by convexity of
   Φ* (∇Φ* = σ): Φ*(x†) ≥ Φ*(x_α) + ⟨σ(x_α), x† − x_α⟩.
2. −α⟨p†, u_α − u†⟩ = −α⟨v†, x_α⟩ + α⟨v†, x†⟩, and Fenchel–Young ⟨y, x⟩ ≤ Φ(y) + Φ*(x) with
   y = f^δ ∓ αv† gives −α⟨v†, x_α⟩ ≤ Φ(f^δ − αv†) − Φ(f^δ) + B_Ψ(f^δ, x_α) and
   α⟨v†, x†⟩ ≤ Φ(f^δ + αv†) − Φ(f^δ) + B_Ψ(f^δ, x†).
3. Adding, with Φ = ½‖·‖² + Ψ (the quadratic parts give α²‖v†‖²) and B_Ψ(f^δ, x†) ≤ δ²:
   α D_J^sym ≤ 2δ² + α²‖v†‖² + Ψ(f^δ + αv†) + Ψ(f^δ − αv†) − 2Ψ(f^δ).

Both one-sided distances are ≥ 0 when p_α ∈ ∂J(u_α) and p† ∈ ∂J(u†), so the bound holds for
each of them too: for the talk's D_J(u†, u_α) = D_J^{p_α}(u†, u_α) (subgradient at u_α from the
optimality condition) and for D_J^{p†}(u_α, u†) (what the minimality argument E(u_α) ≤ E(u†)
alone gives). :func:`check_bound` reports all three and tests the strongest, D_J^sym.

What a numerical check can and cannot show. Steps 1–3 use neither p_α ∈ ∂J(u_α) nor
p† ∈ ∂J(u†): the number ⟨p_α − Wᵀv, u − u†⟩, with p_α computed from u by the formula above, is
below the bound for *every* u and v once B_Ψ(f^δ, x†) ≤ δ². The premises and the solve decide
whether that number is a Bregman distance of J, i.e. an error measure. Hence the check measures

* the noise premise B_Ψ(f^δ, x†) ≤ δ² (from the data, not taken on trust),
* the source residual r† = dist(Wᵀv†, ∂J(u†)),
* the optimality residual r_α = dist(p_α, ∂J(u_α)) of the computed minimiser (0 for an exact
  one; p_α from the formula, never from solver duals),

and reports a premise failure as "premise violated", never as "verified".

Solver tolerance. Let p̂_α ∈ ∂J(u_α) and p̂† ∈ ∂J(u†) be the subgradients nearest to p_α and
Wᵀv†. The symmetric Bregman distance built from them, D̂ = ⟨p̂_α − p̂†, u_α − u†⟩, differs from
the computed D_J^sym by at most (Cauchy–Schwarz)

    tol_term = (r_α + r†) ‖u_α − u†‖ + 1e-12 (1 + |J(u†)| + |J(u_α)| + (‖p_α‖ + ‖p†‖)‖u_α − u†‖),

the last part a float64 rounding allowance. The verdict is "verified" only when even the worst
case is below the bound, D_J^sym + tol_term ≤ bound; "violated" when D_J^sym − tol_term > bound
(impossible under the premises, by steps 1–3: it would mean a bug); otherwise "inconclusive" —
also when a one-sided distance is below −r‖u_α − u†‖ (its r_α or r†), which a subgradient within
r of p cannot give, so the residuals understate the error. Residuals use the regularisers'
convention that entries of u (TV: gradient vectors) of magnitude ≤ ``zero_tol`` are zeros. An
interior-point solution has no exact zeros and p_α amplifies its error by 1/α, so when αJ has a
closed-form prox the solver's point is polished by forward–backward steps
u_α ← prox_{ταJ}(u_α − τWᵀ(σ(W u_α + b) − f^δ)), τ = 1/‖W‖² (descent steps of the objective,
with exact zeros), which drive r_α towards rounding level.

Bregman noise. :func:`bregman_noise` returns f^δ = f + t d for a given direction d with
B_Ψ(f^δ, x†) = δ² to a relative 1e-10: g(t) = B_Ψ(f + t d, x†) is convex with g(0) = 0 = min g and
g(t) ≥ ½t²‖d‖², so g increases on t ≥ 0 (while f + t d ∈ dom Ψ) and its root lies in
[0, √2 δ/‖d‖]; Brent's method finds it. The accuracy is limited by f^δ itself: rounded to
float64, its entries move B_Ψ by a relative ≈ eps·|f|/δ, so 1e-10 is reached down to δ ≈ 1e-6
(for |f| ≲ 1; the penalties themselves keep their relative precision near y = σ(x)).

Rates. With α(δ) = δ√2/‖v†‖ the classical part equals 2√2‖v†‖δ; for ReLU the Burbea–Rao part
is 0 as soon as |v†_j| ≤ f^δ_j/α for all j (it needs v†_j = 0 wherever f^δ_j = 0: pass
``support``), so D_J ≤ 2√2‖v†‖δ. :func:`rate_experiment` sweeps δ and fits the log–log slope.
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import cvxpy as cp
import numpy as np
import scipy.sparse as sp
from scipy.optimize import brentq

from bregmod._checks import finite_array, positive_scalar
from bregmod.activations import Activation
from bregmod.errors import (
    DomainError,
    ShapeError,
    SolverError,
    SourceConditionError,
    describe_entries,
)
from bregmod.network import Network
from bregmod.operators import Operator
from bregmod.problem import Inversion
from bregmod.regularizers import Regularizer

__all__ = [
    "BoundCheck",
    "ErrorBound",
    "RateRow",
    "RateTable",
    "SourceConditionError",
    "bregman_noise",
    "check_bound",
    "error_bound",
    "rate_experiment",
    "source_element",
    "source_solution",
]

#: The noise premise B_Ψ(f^δ, x†) ≤ δ² is accepted up to this relative excess (rounding).
NOISE_RTOL = 1e-9
#: Relative float64 rounding allowance in the tolerance term of :class:`BoundCheck`.
ROUNDING_RTOL = 1e-12
#: Tolerances of the small CVXPY programs (Clarabel) of :func:`source_element`.
_CLARABEL_OPTIONS = {"tol_gap_abs": 1e-9, "tol_gap_rel": 1e-9, "tol_feas": 1e-9}


# --- validation ---------------------------------------------------------------------------------


class _Layer(NamedTuple):
    """The single layer u ↦ σ(A u + β) of a network, as compiled
    (:meth:`~bregmod.lifted.LiftedNetwork.single_layer`), with its input and output shapes."""

    operator: Operator
    bias: np.ndarray
    activation: Activation
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]


def _layer(network) -> _Layer:
    """The single ``Dense``/``Conv2d`` layer u ↦ σ(W u + b) of ``network``."""
    if not isinstance(network, Network):
        raise TypeError(
            f"network must be a bregmod network (e.g. Dense(W, b, ReLU())), got "
            f"{type(network).__name__}"
        )
    lifted = network.lift()
    try:
        operator, bias, activation = lifted.single_layer()
    except ValueError as exc:
        raise ValueError(
            f"the error estimate is for one layer u ↦ σ(W u + b), got {network!r}: {exc}"
        ) from None
    return _Layer(operator, bias, activation, lifted.input_shape, lifted.output_shape)


def _regularizer(J) -> Regularizer:
    if not isinstance(J, Regularizer):
        raise TypeError(
            f"J must be a bregmod Regularizer (e.g. SquaredL2(), L1(), TotalVariation(shape)), "
            f"got {type(J).__name__}"
        )
    return J


def _vector(x, shape: tuple[int, ...], name: str) -> np.ndarray:
    """``x`` (of ``shape`` or flat) as a finite flat float array."""
    arr = finite_array(x, name)
    size = int(np.prod(shape))
    if arr.shape not in (shape, (size,)):
        raise ShapeError(f"{name} must have shape {shape} (or ({size},)), got {arr.shape}")
    return arr.ravel()


def _support(support, m: int) -> np.ndarray:
    """A boolean mask of the entries of v† that may be non-zero (all by default)."""
    if support is None:
        return np.ones(m, dtype=bool)
    mask = np.asarray(support)
    if mask.dtype != bool or mask.size != m:
        raise ShapeError(
            f"support must be a boolean mask with {m} entries (one per output of the layer), "
            f"got dtype {mask.dtype} and {mask.size} entries"
        )
    if not mask.any():
        raise ValueError("support is empty: v† = 0 is the only candidate; allow some entries")
    return mask.ravel()


def _solve_small(problem: cp.Problem, what: str) -> float:
    """Solve with Clarabel; the optimal value (+inf if infeasible). An inaccurate solve is
    accepted (without CVXPY's warning): the callers verify the point they use."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Solution may be inaccurate", UserWarning)
        problem.solve(solver=cp.CLARABEL, **_CLARABEL_OPTIONS)
    if problem.status not in (cp.OPTIMAL, cp.OPTIMAL_INACCURATE, cp.INFEASIBLE):
        raise SolverError(f"{what}: CVXPY ended with status {problem.status!r}")
    return np.inf if problem.status == cp.INFEASIBLE else float(problem.value)


# --- source elements ----------------------------------------------------------------------------


def source_element(
    network: Network,
    J: Regularizer,
    u_true,
    *,
    support=None,
    tol: float = 1e-7,
    zero_tol: float = 1e-10,
) -> np.ndarray:
    """A minimal-norm source element: v† ∈ argmin { ‖v‖ : Wᵀv ∈ ∂J(u†), v = 0 off ``support`` }.

    Two small convex programs (CVXPY/Clarabel): first d* = min_v dist(Wᵀv, ∂J(u†)) decides
    whether the source condition can hold; then min ‖v‖ subject to dist(Wᵀv, ∂J(u†)) ≤ tol/2.

    Parameters
    ----------
    network : Dense or Conv2d
        The layer u ↦ σ(W u + b) (only W is used).
    J : Regularizer
        The (unweighted) regulariser of the theorem: ``SquaredL2``, ``L1``, ``TotalVariation``,
        ``Box``, or a weighted sum of them.
    u_true : array_like
        u† in the layer's input shape (or flat).
    support : array_like of bool, optional
        Entries of v† allowed to be non-zero (one per output). For ReLU the Burbea–Rao term is
        finite only if v†_j = 0 where f^δ_j = 0, so pass e.g. ``support = f > 0``.
    tol : float
        Accepted distance dist(Wᵀv†, ∂J(u†)) (Euclidean).
    zero_tol : float
        Entries of u† (TV: gradient vectors) of magnitude ≤ zero_tol count as zero.

    Returns
    -------
    ndarray, shape (m,)
        v† (zero off the support).

    Raises
    ------
    SourceConditionError
        When no admissible v has dist(Wᵀv, ∂J(u†)) ≤ tol/2; the message gives d*.
    DomainError
        When u† ∉ dom J (∂J(u†) = ∅).
    SolverError
        When CVXPY fails, or its v† misses ∂J(u†) by more than ``tol``.
    """
    layer, J = _layer(network), _regularizer(J)
    u = _vector(u_true, layer.in_shape, "u_true")
    tol, zero_tol = positive_scalar(tol, "tol"), positive_scalar(zero_tol, "zero_tol")
    A = sp.csr_matrix(layer.operator.to_dense())  # sparse W (e.g. a convolution) stays sparse
    mask = _support(support, A.shape[0])
    s, constraints = J.subdifferential_cvx(u, zero_tol)
    v = cp.Variable(int(mask.sum()))
    misfit = cp.norm(A[mask].T @ v - s, 2)
    gap = _solve_small(cp.Problem(cp.Minimize(misfit), constraints), "source condition test")
    where = "" if support is None else f" supported on the {int(mask.sum())} allowed entries"
    if gap > tol / 2:
        raise SourceConditionError(
            f"the source condition fails for {J.name}: no v{where} has Wᵀv ∈ ∂J(u†); "
            f"min_v dist(Wᵀv, ∂J(u†)) = {gap:.3g} > tol/2 = {tol / 2:.3g}. The error estimate "
            "does not apply to this u† (see source_solution for a u† that satisfies it)."
        )
    norm = cp.Problem(cp.Minimize(cp.sum_squares(v)), [*constraints, misfit <= tol / 2])
    if not np.isfinite(_solve_small(norm, "minimal-norm source element")):
        raise SolverError("minimal-norm source element: CVXPY reports the problem infeasible")
    v_full = np.zeros(A.shape[0])
    v_full[mask] = v.value
    residual = _distance(J, A.T @ v_full, u, zero_tol)
    if residual > tol:
        raise SolverError(
            f"the computed source element misses ∂J(u†) by {residual:.3g} > tol = {tol:g} "
            "(inaccurate CVXPY solve); raise tol"
        )
    return v_full


def source_solution(
    network: Network, J: Regularizer, w, *, support=None, tol: float = 1e-9
) -> tuple[np.ndarray, np.ndarray]:
    """A u† that satisfies the source condition by construction, and a v with Wᵀv ∈ ∂J(u†).

    u† = prox_J(w) and p = w − u† ∈ ∂J(u†) (the optimality condition of the prox); v is the
    least-squares solution of Wᵀv = p (on ``support``). For J = ½‖·‖² and w = 2Wᵀv₀ this is
    u† = Wᵀv₀, v = v₀ (any W); for other J it needs p ∈ range(Wᵀ), e.g. W (restricted to the
    support) with full column rank. v is a source element, not necessarily the minimal-norm
    one (:func:`source_element`).

    Parameters
    ----------
    network : Dense or Conv2d
        The layer (only W is used).
    J : Regularizer
        A regulariser with a ``prox`` (an iterative prox, e.g. TV, gives p ∈ ∂J(u†) only to
        its accuracy).
    w : array_like
        In the layer's input shape (or flat).
    support : array_like of bool, optional
        Entries of v allowed to be non-zero.
    tol : float
        Relative accuracy required of Wᵀv = p.

    Returns
    -------
    u_true : ndarray
        u† in the layer's input shape.
    v : ndarray, shape (m,)

    Raises
    ------
    SourceConditionError
        When p ∉ range(Wᵀ) (on the support), relative residual > ``tol``.
    """
    layer, J = _layer(network), _regularizer(J)
    w = _vector(w, layer.in_shape, "w")
    tol = positive_scalar(tol, "tol")
    A = layer.operator.to_dense()
    mask = _support(support, A.shape[0])
    u = J.prox(w.reshape(layer.in_shape), 1.0).ravel()
    p = w - u
    v_support = np.linalg.lstsq(A[mask].T, p, rcond=None)[0]
    residual = float(np.linalg.norm(A[mask].T @ v_support - p))
    if residual > tol * max(1.0, float(np.linalg.norm(p))):
        raise SourceConditionError(
            f"p = w − prox_J(w) ∈ ∂J(u†) is not in the range of Wᵀ (restricted to the "
            f"support): ‖Wᵀv − p‖ = {residual:.3g} at best. Use W with full column rank on the "
            "support, or J = SquaredL2() with w = 2·Wᵀv₀ (then u† = Wᵀv₀)."
        )
    v = np.zeros(A.shape[0])
    v[mask] = v_support
    return u.reshape(layer.in_shape), v


# --- noise --------------------------------------------------------------------------------------


def _data(layer: _Layer, f_delta) -> np.ndarray:
    """f^δ (output shape or flat) as a finite array in the layer's output shape."""
    return _vector(f_delta, layer.out_shape, "f_delta").reshape(layer.out_shape)


def _forward(layer: _Layer, u: np.ndarray) -> np.ndarray:
    """x = W u + b in the layer's output shape."""
    return (layer.operator.apply(u) + layer.bias).reshape(layer.out_shape)


def bregman_noise(
    network: Network, u_true, delta: float, direction, *, rtol: float = 1e-10
) -> np.ndarray:
    """Noisy data f^δ = f + t d with B_Ψ(f^δ, W u† + b) = δ² (to a relative ``rtol``).

    f = σ(W u† + b); t ≥ 0 is the root of g(t) = B_Ψ(f + t d, W u† + b) − δ², increasing on
    t ≥ 0 while f + t d ∈ dom Ψ and below √2 δ/‖d‖ (since B_Ψ(y, x) ≥ ½‖y − σ(x)‖²); found
    by Brent's method. Entries on a closed end of dom Ψ are clipped onto it (rounding only).

    Parameters
    ----------
    network : Dense or Conv2d
        The layer u ↦ σ(W u + b).
    u_true : array_like
        u† in the layer's input shape (or flat).
    delta : float
        δ > 0.
    direction : array_like
        d ≠ 0 in the layer's output shape (or flat). It must point into dom Ψ where f is on
        its boundary (ReLU: d_j ≥ 0 where f_j = 0); for vector activations each vector of d
        must sum to 0.
    rtol : float
        Required relative accuracy of B_Ψ(f^δ, W u† + b) = δ².

    Returns
    -------
    ndarray
        f^δ in the layer's output shape.

    Raises
    ------
    DomainError
        When f + t d leaves dom Ψ before B_Ψ reaches δ² (the message names the entry that hits
        the boundary and the largest reachable δ), or d violates the simplex constraint.
    SolverError
        When rounding prevents the relative accuracy ``rtol``: f^δ is a float64 vector, and
        its rounding moves B_Ψ(f^δ, W u† + b) by a relative ≈ eps·|f|/δ (the default 1e-10
        holds down to δ ≈ 1e-6 for |f| ≲ 1).
    """
    layer = _layer(network)
    act = layer.activation
    x = _forward(layer, _vector(u_true, layer.in_shape, "u_true"))
    f = act.prox(x)
    d = _vector(direction, layer.out_shape, "direction").reshape(f.shape)
    delta, rtol = positive_scalar(delta, "delta"), positive_scalar(rtol, "rtol")
    if not d.any():
        raise ValueError("direction is zero; the noise needs a direction d ≠ 0")
    if act.is_vector:
        sums = d.sum(axis=-1)
        off = np.abs(sums) > 1e-12 * np.abs(d).sum(axis=-1)
        if off.any():
            raise DomainError(
                f"{act.name} lives on the simplex: each vector of the direction must sum to 0, "
                f"sums: {describe_entries(off, sums)}"
            )
    target = delta**2
    dom = act.domain
    lo = dom.lo if dom.lo_closed else np.nextafter(dom.lo, np.inf)
    hi = dom.hi if dom.hi_closed else np.nextafter(dom.hi, -np.inf)
    with np.errstate(divide="ignore", invalid="ignore"):
        steps = np.where(d > 0, (hi - f) / d, np.where(d < 0, (lo - f) / d, np.inf))
    limit = float(steps.min()) + 0.0  # + 0.0 turns −0 into 0
    t_hi = min(limit, np.sqrt(2 * target) / np.linalg.norm(d) * (1 + 1e-6))

    def level(t: float) -> float:
        return act.bregman(np.clip(f + t * d, lo, hi), x) - target

    if level(t_hi) < 0 and t_hi < limit:
        raise SolverError(
            f"B_Ψ(f + t d, W u† + b) < δ² at t = √2δ/‖d‖·(1 + 1e-6), against B_Ψ(y, x) ≥ "
            f"½‖y − σ(x)‖²: rounding in {act.name}'s Bregman penalty at δ = {delta:g}"
        )
    if level(t_hi) < 0:
        hit = steps == limit
        raise DomainError(
            f"the noise direction leaves dom Ψ = {dom} of {act.name} at t = {limit:.6g} "
            f"(first at {describe_entries(hit, f)}, the values of f there) before "
            f"B_Ψ(f^δ, W u† + b) reaches δ² = {target:.6g}: along this direction δ ≤ "
            f"{np.sqrt(level(t_hi) + target):.6g}. Choose a direction that points into dom Ψ "
            "(ReLU: d ≥ 0 where f = 0) or a smaller δ."
        )
    t = brentq(level, 0.0, t_hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500)
    f_delta = np.clip(f + t * d, lo, hi)
    error = abs(act.bregman(f_delta, x) - target) / target
    if error > rtol:
        raise SolverError(
            f"B_Ψ(f^δ, W u† + b) = δ² reached only to a relative {error:.2g} > rtol = {rtol:g} "
            f"for {act.name} at δ = {delta:g}: the rounding of f^δ to float64 moves B_Ψ by a "
            "relative ≈ eps·|f|/δ; raise rtol or δ"
        )
    return f_delta


# --- the bound ----------------------------------------------------------------------------------


class ErrorBound(NamedTuple):
    """The right-hand side of the theorem, term by term.

    Attributes
    ----------
    classical : float
        2δ²/α + α‖v†‖².
    burbea_rao : float
        (1/α) Σ (Ψ(f^δ + αv†) + Ψ(f^δ − αv†) − 2Ψ(f^δ)), +inf when f^δ ± αv† leaves dom Ψ.
    bound : float
        classical + burbea_rao.
    infinite_entries : tuple of int
        Flat indices (per vector for vector activations) where Ψ(f^δ + αv†) or Ψ(f^δ − αv†)
        is +inf; empty when the bound is finite.
    """

    classical: float
    burbea_rao: float
    bound: float
    infinite_entries: tuple[int, ...]


def error_bound(network: Network, f_delta, v, alpha: float, delta: float) -> ErrorBound:
    """The bound 2δ²/α + α‖v‖² + (1/α)(Ψ(f^δ + αv) + Ψ(f^δ − αv) − 2Ψ(f^δ)).

    Parameters
    ----------
    network : Dense or Conv2d
        The layer (its activation gives Ψ).
    f_delta : array_like
        f^δ in the layer's output shape (or flat); must lie in dom Ψ.
    v : array_like
        v† in the layer's output shape (or flat).
    alpha, delta : float
        α > 0, δ > 0.

    Returns
    -------
    ErrorBound

    Raises
    ------
    DomainError
        When f^δ ∉ dom Ψ.
    """
    layer = _layer(network)
    act = layer.activation
    f = act.check_domain(_data(layer, f_delta), "f_delta")
    v = _vector(v, layer.out_shape, "v").reshape(f.shape)
    alpha, delta = positive_scalar(alpha, "alpha"), positive_scalar(delta, "delta")
    classical = 2 * delta**2 / alpha + alpha * float(v.ravel() @ v.ravel())
    plus, minus = act.psi(f + alpha * v), act.psi(f - alpha * v)
    infinite = ~(np.isfinite(plus) & np.isfinite(minus))
    if infinite.any():
        return ErrorBound(classical, np.inf, np.inf, tuple(np.flatnonzero(infinite).tolist()))
    burbea_rao = float(np.sum(plus + minus - 2 * act.psi(f))) / alpha
    return ErrorBound(classical, burbea_rao, classical + burbea_rao, ())


@dataclass(frozen=True)
class BoundCheck:
    """The theorem checked on one problem (see the module docstring for D_J and the tolerance).

    Attributes
    ----------
    delta, alpha : float
        δ and α.
    classical, burbea_rao, bound : float
        The terms of the bound (:class:`ErrorBound`); ``bound`` may be +inf.
    d_j : float
        The realised symmetric Bregman distance D_J^sym(u_α, u†) = ⟨p_α − p†, u_α − u†⟩,
        p_α = Wᵀ(f^δ − σ(W u_α + b))/α, p† = Wᵀv†.
    d_j_talk : float
        D_J^{p_α}(u†, u_α) = J(u†) − J(u_α) − ⟨p_α, u† − u_α⟩ (the talk's argument order).
    d_j_source : float
        D_J^{p†}(u_α, u†) = J(u_α) − J(u†) − ⟨p†, u_α − u†⟩; d_j = d_j_talk + d_j_source.
    solver_tolerance : float
        tol_term = (r_α + r†)‖u_α − u†‖ + rounding: the largest possible gap between ``d_j``
        and a symmetric Bregman distance with genuine subgradients.
    holds : bool
        The premises hold and d_j + tol_term ≤ bound (a +inf bound holds vacuously).
    verdict : str
        ``"verified"``, ``"vacuous: …"``, ``"inconclusive: …"``, ``"violated: …"`` or
        ``"premise violated: …"``.
    infinite_entries : tuple of int
        Entries making the Burbea–Rao part infinite.
    source_residual : float
        r† = dist(Wᵀv†, ∂J(u†)).
    optimality_residual : float
        r_α = dist(p_α, ∂J(u_α)).
    noise_level : float
        The measured B_Ψ(f^δ, W u† + b) (premise: ≤ δ²).
    solver_status : str
        The status of the solve of u_α.
    u_alpha : ndarray
        The (polished) minimiser u_α in the input shape.
    notes : tuple of str
        Everything else worth knowing (premise failures, statuses, how the bound was judged).
    """

    delta: float
    alpha: float
    classical: float
    burbea_rao: float
    bound: float
    d_j: float
    d_j_talk: float
    d_j_source: float
    solver_tolerance: float
    holds: bool
    verdict: str
    infinite_entries: tuple[int, ...]
    source_residual: float
    optimality_residual: float
    noise_level: float
    solver_status: str
    u_alpha: np.ndarray
    notes: tuple[str, ...]

    def summary(self) -> str:
        """A human-readable report: the verdict, the terms of the bound and the residuals."""
        lines = [
            f"error estimate at δ = {self.delta:.4g}, α = {self.alpha:.4g}: {self.verdict}",
            f"  D_J^sym(u_α, u†) = {self.d_j:.6g}  (= D_J^pα(u†, u_α) {self.d_j_talk:.6g} "
            f"+ D_J^p†(u_α, u†) {self.d_j_source:.6g})",
            f"  bound = {self.bound:.6g}  (classical 2δ²/α + α‖v†‖² = {self.classical:.6g}, "
            f"Burbea–Rao = {self.burbea_rao:.6g})",
            f"  tolerance term {self.solver_tolerance:.3g} from r_α = "
            f"{self.optimality_residual:.3g}, r† = {self.source_residual:.3g}; measured "
            f"B_Ψ(f^δ, W u† + b) = {self.noise_level:.6g} vs δ² = {self.delta**2:.6g}",
        ]
        if self.infinite_entries:
            shown = list(self.infinite_entries[:5])
            lines.append(
                f"  Burbea–Rao part infinite at {len(self.infinite_entries)} entries "
                f"(first {shown}): f^δ ± αv† leaves dom Ψ there"
            )
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)


def _polish(problem: Inversion, u: np.ndarray, steps: int) -> tuple[np.ndarray, int]:
    """Forward–backward steps u ← prox_{τ reg}(u − τWᵀ(σ(W u + b) − f^δ)), τ = 1/‖W‖².

    Each is a descent step of the objective (σ is 1-Lipschitz, so the smooth part has the
    Lipschitz constant ‖W‖²). Stops after ``steps`` steps or when a step moves u by at most
    1e-13·max(1, ‖u‖) (rounding level). Returns the point and the number of steps taken.
    """
    energy, reg = problem.energy(), problem.reg
    tau = 1.0 / energy.lipschitz
    shape = problem.lifted.input_shape
    for step in range(1, steps + 1):
        rows = u.reshape(1, -1)
        forward = u - tau * energy.gradient(rows, energy.images(rows))[0].ravel()
        u_next = reg.prox(forward.reshape(shape), tau).ravel()
        moved = float(np.linalg.norm(u_next - u))
        u = u_next
        if moved <= 1e-13 * max(1.0, float(np.linalg.norm(u))):
            return u, step
    return u, steps


def _distance(J: Regularizer, p: np.ndarray, u: np.ndarray, zero_tol: float) -> float:
    """dist(p, ∂J(u)) by ``J.in_subdifferential`` (entries ≤ ``zero_tol`` count as zero)."""
    return J.in_subdifferential(p, u, tol=zero_tol).residual


def check_bound(
    network: Network,
    J: Regularizer,
    u_true,
    v,
    f_delta,
    delta: float,
    alpha: float,
    *,
    solver: str = "cvxpy",
    solver_tol: float = 1e-9,
    source_tol: float = 1e-6,
    zero_tol: float = 1e-10,
    polish: int = 500,
    solver_options: dict | None = None,
) -> BoundCheck:
    """Solve for u_α and check D_J(u_α, u†) against the bound (see the module docstring).

    Parameters
    ----------
    network : Dense or Conv2d
        The layer u ↦ σ(W u + b).
    J : Regularizer
        The unweighted regulariser (the problem solved is ``Inversion(network, f_delta,
        reg=alpha * J, fidelity="bregman")``).
    u_true : array_like
        u† (input shape or flat).
    v : array_like
        The source element v† (output shape or flat).
    f_delta : array_like
        f^δ ∈ dom Ψ (output shape or flat).
    delta, alpha : float
        δ > 0 (the claimed noise level) and α > 0.
    solver : str
        Passed to :meth:`Inversion.solve` (``"cvxpy"`` by default).
    solver_tol : float
        Its tolerance.
    source_tol : float
        The source condition counts as satisfied when dist(Wᵀv†, ∂J(u†)) ≤ source_tol (10 times
        the default accuracy of :func:`source_element`; r† enters the tolerance term anyway).
    zero_tol : float
        Entries (TV: gradient vectors) of magnitude ≤ zero_tol count as zero in the residuals
        (the convention of ``Regularizer.in_subdifferential``; the tolerance term does not
        include its O(zero_tol) effect). TV needs about 1e-6: its iterates have no exact zeros.
    polish : int
        At most this many forward–backward steps polish the solver's point, when J has a
        closed-form prox (no composite term in ``J.split()``); 0 turns polishing off.
    solver_options : dict, optional
        Further keyword arguments of :meth:`Inversion.solve` (e.g. ``max_iter``).

    Returns
    -------
    BoundCheck

    Raises
    ------
    DomainError
        f^δ ∉ dom Ψ, or u† ∉ dom J.
    SolverError
        The solver returned no point, or a subgradient residual (``J.in_subdifferential``)
        could not be computed to CVXPY status "optimal".
    """
    layer, J = _layer(network), _regularizer(J)
    act = layer.activation
    u = _vector(u_true, layer.in_shape, "u_true")
    v = _vector(v, layer.out_shape, "v")
    f_delta = act.check_domain(_data(layer, f_delta), "f_delta")
    delta, alpha = positive_scalar(delta, "delta"), positive_scalar(alpha, "alpha")
    source_tol = positive_scalar(source_tol, "source_tol")
    zero_tol = positive_scalar(zero_tol, "zero_tol")
    if isinstance(polish, bool) or not isinstance(polish, numbers.Integral) or polish < 0:
        raise ValueError(f"polish must be a number of steps ≥ 0, got {polish!r}")
    A = layer.operator
    notes: list[str] = []

    problem = Inversion(network, f_delta, reg=alpha * J, fidelity="bregman")
    energy = problem.energy()
    noise_level = float(energy.data_term(energy.pre_activation(u.reshape(1, -1)))[0])
    p_true = A.apply_adjoint(v)
    source_residual = _distance(J, p_true, u, zero_tol)

    result = problem.solve(solver=solver, tol=solver_tol, **(solver_options or {}))
    u_alpha = np.asarray(result.u0, dtype=float).ravel()
    if not np.isfinite(u_alpha).all():
        raise SolverError(f"{result.solver} returned no point (status {result.status!r})")
    if result.status != "optimal":
        notes.append(f"solver status {result.status!r}")
    if polish and J.split()[1]:
        notes.append("not polished: J has a composite term (TV), whose prox is iterative")
    elif polish:
        u_alpha, steps = _polish(problem, u_alpha, polish)
        notes.append(f"polished by {steps} forward–backward step(s)")
    rows = u_alpha.reshape(1, -1)
    p_alpha = -energy.gradient(rows, energy.images(rows))[0].ravel() / alpha
    optimality_residual = _distance(J, p_alpha, u_alpha, zero_tol)

    d_talk = float(J.bregman_distance(u, u_alpha, p_alpha))
    d_source = float(J.bregman_distance(u_alpha, u, p_true))
    d_j = d_talk + d_source
    terms = error_bound(network, f_delta, v, alpha, delta)
    distance = float(np.linalg.norm(u_alpha - u))
    scale = abs(J(u)) + abs(J(u_alpha))
    scale += (np.linalg.norm(p_alpha) + np.linalg.norm(p_true)) * distance
    rounding = ROUNDING_RTOL * (1 + float(scale))
    # p within r of ∂J makes each one-sided distance ≥ −r‖u_α − u†‖ (Cauchy–Schwarz)
    slack_alpha, slack_true = optimality_residual * distance, source_residual * distance
    tol_term = slack_alpha + slack_true + rounding

    premises = []
    if noise_level > delta**2 * (1 + NOISE_RTOL):
        premises.append(f"noise level B_Ψ(f^δ, W u† + b) = {noise_level:.6g} > δ² = {delta**2:.6g}")
    if not source_residual <= source_tol:
        premises.append(
            f"source condition: dist(Wᵀv†, ∂J(u†)) = {source_residual:.3g} > "
            f"source_tol = {source_tol:g}"
        )
    if premises:
        relation = "exceeds" if d_j > terms.bound else "is below"
        verdict = "premise violated: " + "; ".join(premises)
        notes.append(
            f"D_J^sym = {d_j:.6g} {relation} the bound {terms.bound:.6g}, but the theorem "
            "does not apply"
        )
        holds = False
    elif not np.isfinite(terms.bound):
        verdict = "vacuous: the Burbea–Rao part is +inf, so the bound says nothing"
        holds = True
    elif d_talk < -(slack_alpha + rounding) or d_source < -(slack_true + rounding):
        verdict = (
            "inconclusive: a one-sided distance is more negative than its residual allows "
            f"(D_J^pα(u†, u_α) = {d_talk:.3g}, D_J^p†(u_α, u†) = {d_source:.3g}), so the "
            "residuals understate the error (zero_tol convention); lower zero_tol or solve "
            "more accurately"
        )
        holds = False
    elif d_j + tol_term <= terms.bound:
        verdict, holds = "verified", True
    elif d_j - tol_term > terms.bound:
        verdict, holds = "violated: D_J^sym exceeds the bound by more than the tolerance", False
    else:
        verdict = (
            f"inconclusive: |D_J^sym − bound| = {abs(d_j - terms.bound):.3g} is within the "
            f"tolerance term {tol_term:.3g}; solve more accurately"
        )
        holds = False
    return BoundCheck(
        delta=delta,
        alpha=alpha,
        classical=terms.classical,
        burbea_rao=terms.burbea_rao,
        bound=terms.bound,
        d_j=d_j,
        d_j_talk=d_talk,
        d_j_source=d_source,
        solver_tolerance=tol_term,
        holds=holds,
        verdict=verdict,
        infinite_entries=terms.infinite_entries,
        source_residual=source_residual,
        optimality_residual=optimality_residual,
        noise_level=noise_level,
        solver_status=result.status,
        u_alpha=u_alpha.reshape(layer.in_shape),
        notes=tuple(notes),
    )


# --- rates --------------------------------------------------------------------------------------


class RateRow(NamedTuple):
    """One δ of a rate experiment: (δ, α, D_J, bound, D_J/bound)."""

    delta: float
    alpha: float
    d_j: float
    bound: float
    ratio: float


def _loglog_slope(x: np.ndarray, y: np.ndarray) -> float | None:
    """Least-squares slope of log y against log x over the entries with finite y > 0."""
    keep = np.isfinite(y) & (y > 0)
    if keep.sum() < 2:
        return None
    return float(np.polyfit(np.log(x[keep]), np.log(y[keep]), 1)[0])


@dataclass(frozen=True)
class RateTable:
    """The outcome of :func:`rate_experiment`.

    Attributes
    ----------
    rows : tuple of RateRow
        One row per δ, in increasing δ.
    checks : tuple of BoundCheck
        The full check at each δ.
    slope : float or None
        Least-squares slope of log D_J against log δ (rows with D_J > 0; None with a note when
        fewer than two remain). The theorem gives D_J ≤ Cδ, i.e. a rate of at least δ in the
        sense of the bound; the slope is what is observed.
    bound_slope : float or None
        The same for the bound (1 when the Burbea–Rao part vanishes).
    notes : tuple of str
    """

    rows: tuple[RateRow, ...]
    checks: tuple[BoundCheck, ...]
    slope: float | None
    bound_slope: float | None
    notes: tuple[str, ...]

    def __str__(self) -> str:
        header = f"{'δ':>11} {'α':>11} {'D_J':>11} {'bound':>11} {'D_J/bound':>10}  verdict"
        lines = [header] + [
            f"{r.delta:11.4e} {r.alpha:11.4e} {r.d_j:11.4e} {r.bound:11.4e} {r.ratio:10.4f}  "
            f"{c.verdict}"
            for r, c in zip(self.rows, self.checks, strict=True)
        ]
        slope = "n/a" if self.slope is None else f"{self.slope:.3f}"
        bound = "n/a" if self.bound_slope is None else f"{self.bound_slope:.3f}"
        lines.append(f"fitted log–log slope: D_J {slope}, bound {bound}")
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines)

    def plot(self, path) -> Path:
        """Save a log–log plot of D_J and the bound against δ (with the fitted slopes) as PNG.

        Raises
        ------
        ImportError
            When matplotlib is missing (``pip install 'bregmod[plot]'``).
        """
        try:
            from matplotlib.figure import Figure
        except ImportError:
            raise ImportError(
                "RateTable.plot needs matplotlib: pip install 'bregmod[plot]'"
            ) from None
        path = Path(path)
        delta = np.array([r.delta for r in self.rows])
        d_j = np.array([r.d_j for r in self.rows], dtype=float)
        bounds = np.array([r.bound for r in self.rows], dtype=float)
        fig = Figure(figsize=(5.5, 4))
        ax = fig.subplots()
        positive = d_j > 0
        fitted = "" if positive.all() else f", fitted to its {int(positive.sum())} points > 0"
        slope = "" if self.slope is None else f" (slope {self.slope:.2f}{fitted})"
        bound = "" if self.bound_slope is None else f" (slope {self.bound_slope:.2f})"
        ax.loglog(delta[positive], d_j[positive], "o-", label=f"$D_J$ realised{slope}")
        ax.loglog(delta, bounds, "s--", label=f"bound{bound}")
        if not positive.all():
            # D_J ≤ 0 (zero up to rounding) has no place on a log axis: mark it at the floor
            shown = np.concatenate([d_j[positive], bounds[np.isfinite(bounds) & (bounds > 0)]])
            floor = float(shown.min()) / 10 if shown.size else 1e-12
            ax.loglog(delta[~positive], np.full(int((~positive).sum()), floor), "v",
                      color="C0", mfc="none",
                      label=f"$D_J \\leq 0$ (zero to rounding), drawn at {floor:.1g}")
        ax.set_xlabel(r"$\delta$")
        ax.set_ylabel("Bregman distance")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(path, dpi=120)
        return path


def rate_experiment(
    network: Network,
    J: Regularizer,
    u_true,
    v,
    direction,
    deltas: Sequence[float],
    *,
    alpha: Callable[[float], float] | None = None,
    plot=None,
    **check_options,
) -> RateTable:
    """δ-sweep of the error estimate with α = α(δ) (default δ√2/‖v†‖).

    For each δ: f^δ = :func:`bregman_noise` (``direction``), then :func:`check_bound`.

    Parameters
    ----------
    network, J, u_true, v
        As for :func:`check_bound`.
    direction : array_like
        The noise direction d (the same for every δ).
    deltas : sequence of float
        At least two distinct positive noise levels.
    alpha : callable, optional
        δ ↦ α(δ) > 0; default δ√2/‖v†‖ (the choice that gives D_J ≤ 2√2‖v†‖δ when the
        Burbea–Rao part vanishes).
    plot : str or Path, optional
        Where to save the log–log plot (PNG, needs matplotlib).
    **check_options
        Passed to :func:`check_bound`.

    Returns
    -------
    RateTable
    """
    grid = np.sort(finite_array(deltas, "deltas").ravel())
    if grid.size < 2 or (grid <= 0).any() or np.unique(grid).size != grid.size:
        raise ValueError(
            f"deltas must hold at least two distinct positive noise levels, got {grid.tolist()}"
        )
    v_arr = finite_array(v, "v")
    if alpha is None:
        norm = float(np.linalg.norm(v_arr))
        if norm == 0:
            raise ValueError(
                "v† = 0 (u† minimises J): α(δ) = δ√2/‖v†‖ is undefined; pass alpha=callable"
            )

        def alpha(delta: float) -> float:
            return delta * np.sqrt(2) / norm

    rows, checks = [], []
    for delta in grid:
        f_delta = bregman_noise(network, u_true, delta, direction)
        check = check_bound(
            network, J, u_true, v_arr, f_delta, delta, alpha(delta), **check_options
        )
        checks.append(check)
        ratio = check.d_j / check.bound
        rows.append(RateRow(float(delta), check.alpha, check.d_j, check.bound, ratio))
    d_j = np.array([r.d_j for r in rows])
    notes = []
    if (d_j <= 0).any():
        notes.append(f"{int((d_j <= 0).sum())} row(s) with D_J ≤ 0 left out of the slope fit")
    slope = _loglog_slope(grid, d_j)
    if slope is None:
        notes.append("fewer than two rows with D_J > 0: no slope fitted")
    table = RateTable(
        tuple(rows),
        tuple(checks),
        slope,
        _loglog_slope(grid, np.array([r.bound for r in rows])),
        tuple(notes),
    )
    if plot is not None:
        table.plot(plot)
    return table
