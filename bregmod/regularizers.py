"""Convex regularisers J of the network input u₀ (docs/math/lifted.md) and their convex-analysis
toolkit.

Every :class:`Regularizer` provides

* its value J(u) (``reg(u)``),
* its proximal map prox_{tJ}(v) = argmin_u ½‖u − v‖² + t J(u) (``reg.prox(v, t)``),
* a DCP CVXPY form (``reg.cvx(u_expr) -> DCPTerm(expr, constraints)``),
* a subgradient p ∈ ∂J(u) and an exact membership test p ∈ ∂J(u) (for Bregman distances and
  source conditions Wᵀv† ∈ ∂J(u†), docs/math/error-estimate.md),
* the Bregman distance D_J^p(u, v) = J(u) − J(v) − ⟨p, u − v⟩ with p ∈ ∂J(v),
* a splitting view for first-order solvers, J(u) = simple(u) + Σ_k w_k g_k(L_k u).

Weights and sums: ``0.015 * TotalVariation((28, 28)) + NonNegative()`` is a :class:`WeightedSum`.
Weights must be finite and positive (a negative weight makes J non-convex).

Shapes. A regulariser with a ``shape`` (always for :class:`TotalVariation`, optional for the
separable ones, inherited by a :class:`WeightedSum` from its terms) takes one item of that shape
(or flattened, (n,)) or a batch with one leading axis, (B, *shape) or (B, n); the value of a
batch is one value per item. A separable regulariser without a shape (the default) acts
entrywise on an array of any shape, which is then one item (its value is a float).

Indicator parts. Box and NonNegative are indicators: their value is 0 on the set and +inf off it
(the mathematically correct value; :meth:`Regularizer.bregman_distance` and the subdifferential
methods raise :class:`~bregmod.errors.DomainError` instead of returning inf). In CVXPY they are
the ``constraints`` of the returned :class:`~bregmod.activations.DCPTerm` (with ``expr`` = 0);
every DCP form is a ``DCPTerm`` and both parts must be used.
"""

from __future__ import annotations

import numbers
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import cvxpy as cp
import numpy as np
import scipy.sparse as sp

from bregmod._checks import finite_array, positive_scalar
from bregmod.activations import DCPTerm
from bregmod.errors import DomainError, ShapeError, SolverError, SolverWarning, describe_entries
from bregmod.operators import Gradient2D, Operator

__all__ = [
    "NAMES",
    "Box",
    "L1",
    "L21Norm",
    "NonNegative",
    "OuterFunction",
    "Regularizer",
    "SeparableRegularizer",
    "SquaredL2",
    "SubgradientTest",
    "TotalVariation",
    "WeightedSum",
    "by_name",
]


# --- small helpers ------------------------------------------------------------------------------


def _check_shape(shape, owner: str) -> tuple[int, ...] | None:
    """Return ``shape`` as a tuple of positive ints (or None), raising ``ShapeError`` otherwise."""
    if shape is None:
        return None
    try:
        dims = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise ShapeError(
            f"{owner}: shape must be a tuple of positive ints, got {shape!r}"
        ) from None
    if not dims or any(d <= 0 for d in dims) or dims != tuple(shape):
        raise ShapeError(f"{owner}: shape must be a tuple of positive ints, got {shape!r}")
    return dims


def _check_weight(weight, reg: Regularizer) -> float:
    """Return a regulariser weight as a float; it must be finite and positive (convexity)."""
    if not isinstance(weight, numbers.Real):
        raise TypeError(
            f"the weight of {reg.name} must be a real number, got {type(weight).__name__}"
        )
    w = float(weight)
    if np.isnan(w):
        raise ValueError(f"the weight of {reg.name} is NaN")
    if w < 0:
        raise ValueError(
            f"negative weight {w:g} on {reg.name} makes the regulariser non-convex; "
            "weights must be positive"
        )
    if w == 0:
        raise ValueError(
            f"the weight of {reg.name} must be finite and positive, got 0 "
            "(drop the term instead of giving it weight 0)"
        )
    if not np.isfinite(w):
        raise ValueError(f"the weight of {reg.name} must be finite, got {w:g}")
    return w


def _format_term(weight: float, reg: Regularizer) -> str:
    return reg.name if weight == 1.0 else f"{weight:g}·{reg.name}"


def _interval_constraints(s: cp.Variable, lower: np.ndarray, upper: np.ndarray) -> list:
    """CVXPY constraints lower ≤ s ≤ upper, skipping the infinite bounds."""
    constraints = []
    for bound, is_lower in ((lower, True), (upper, False)):
        idx = np.flatnonzero(np.isfinite(bound))
        if idx.size:
            constraints.append(s[idx] >= bound[idx] if is_lower else s[idx] <= bound[idx])
    return constraints


def _interval_distance(p: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """dist(p, Π_i [lower_i, upper_i]) = ‖p − clip(p, lower, upper)‖₂."""
    return float(np.linalg.norm(p - np.clip(p, lower, upper)))


def _cvx_distance(owner: str, p: np.ndarray, s: cp.Expression, constraints: list) -> float:
    """min ‖p − s‖₂ over s subject to ``constraints`` (an SOCP solved with Clarabel).

    A zero optimum (p ∈ ∂J(u), the case that matters most) is degenerate for an interior-point
    method, which may then report "optimal_inaccurate". Such a result is accepted only when its
    s satisfies the constraints to 1e-7: a feasible s gives the upper bound ‖p − s‖ on the
    distance, which is what is returned (so membership is not claimed on a bad solve).
    """
    problem = cp.Problem(cp.Minimize(cp.norm(p - s, 2)), constraints)
    problem.solve(solver=cp.CLARABEL)
    usable = problem.status == cp.OPTIMAL or (
        problem.status == cp.OPTIMAL_INACCURATE
        and all(np.max(c.violation(), initial=0.0) <= 1e-7 for c in constraints)
    )
    if not usable:
        raise SolverError(
            f"{owner}: the subdifferential test (min ‖p − s‖ over s ∈ ∂J(u)) ended with "
            f"CVXPY status {problem.status!r}"
        )
    return float(np.linalg.norm(np.ravel(p - s.value)))


@dataclass(frozen=True)
class SubgradientTest:
    """Outcome of :meth:`Regularizer.in_subdifferential`.

    Truthy iff ``is_member``; unpacks as ``is_member, residual = reg.in_subdifferential(p, u)``.

    Attributes
    ----------
    is_member : bool
        ``residual <= tol``.
    residual : float
        dist(p, ∂J(u)) = min_{s ∈ ∂J(u)} ‖p − s‖₂ (Euclidean), with the tolerance conventions
        of :meth:`Regularizer.in_subdifferential`.
    """

    is_member: bool
    residual: float

    def __bool__(self) -> bool:
        return self.is_member

    def __iter__(self) -> Iterator:
        return iter((self.is_member, self.residual))


# --- outer functions of the splitting view ------------------------------------------------------


class OuterFunction(Protocol):
    """An outer function g of a composite term w·g(L u) in :meth:`Regularizer.split`."""

    def __call__(self, y) -> float | np.ndarray: ...

    def prox(self, y, t) -> np.ndarray: ...

    def prox_conj(self, y, s) -> np.ndarray: ...


class L21Norm:
    """Mixed ℓ2,1 norm of a stacked vector y = [y¹; …; yᶜ] ∈ R^{c·m}:

        g(y) = Σ_{i<m} ‖(y¹_i, …, yᶜ_i)‖₂.

    With c = 2 and y = ∇u = [dx; dy] this is isotropic TV; with c = 1 it is the ℓ1 norm
    (anisotropic TV). The conjugate g* is the indicator of the ℓ2,∞ unit ball
    {q : ‖(q¹_i, …, qᶜ_i)‖₂ ≤ 1 for all i}.

    Parameters
    ----------
    components : int
        c, the number of stacked blocks that form one group.
    """

    def __init__(self, components: int) -> None:
        if isinstance(components, bool) or not isinstance(components, numbers.Integral):
            raise TypeError(f"L21Norm: components must be an int, got {components!r}")
        if components < 1:
            raise ValueError(f"L21Norm: components must be ≥ 1, got {components}")
        self.components = int(components)

    @property
    def name(self) -> str:
        return f"L21Norm(components={self.components})"

    def __repr__(self) -> str:
        return self.name

    def _groups(self, y, what: str) -> tuple[np.ndarray, bool]:
        """Validate y of shape (c·m,) or (B, c·m); return it as (B, c, m) and if it was batched."""
        arr = finite_array(y, f"{what} for {self.name}")
        if arr.ndim not in (1, 2) or arr.shape[-1] % self.components:
            raise ShapeError(
                f"{self.name}: {what} must have shape (N,) or (B, N) with N divisible by "
                f"{self.components}, got {arr.shape}"
            )
        batched = arr.ndim == 2
        return arr.reshape(arr.shape[0] if batched else 1, self.components, -1), batched

    @staticmethod
    def _norms(Y: np.ndarray) -> np.ndarray:
        """Group norms of Y (B, c, m) → (B, m)."""
        return np.sqrt(np.einsum("bcm,bcm->bm", Y, Y))

    def _project(self, Y: np.ndarray) -> np.ndarray:
        """Projection of Y (B, c, m) onto the ℓ2,∞ unit ball: groups y_i ↦ y_i / max(1, ‖y_i‖)."""
        return Y / np.maximum(1.0, self._norms(Y))[:, None, :]

    def _directions(self, Y: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
        """Unit directions y_i/‖y_i‖ where ‖y_i‖ > threshold (0 elsewhere), and that mask."""
        norms = self._norms(Y)
        active = norms > threshold
        return np.where(
            active[:, None, :], Y / np.where(active, norms, 1.0)[:, None, :], 0.0
        ), active

    def __call__(self, y) -> float | np.ndarray:
        """g(y) = Σ_i ‖y_i‖₂; a float for y of shape (N,), one value per row for (B, N)."""
        Y, batched = self._groups(y, "y")
        values = self._norms(Y).sum(axis=1)
        return values if batched else float(values[0])

    def dual_norm(self, y: np.ndarray) -> np.ndarray:
        """max_i ‖(y¹_i, …, yᶜ_i)‖₂ (the ℓ2,∞ norm, dual to g) of every row of y (B, c·m):
        g∗(y) = 0 iff it is ≤ 1 (+inf otherwise)."""
        Y = np.asarray(y, dtype=np.float64)
        return self._norms(Y.reshape(Y.shape[0], self.components, -1)).max(axis=1)

    def prox_conj(self, y, s) -> np.ndarray:
        """prox_{s g*}(y) = projection onto the ℓ2,∞ unit ball (independent of s > 0).

        For a weighted term w·g the solver needs prox_{s (w g)*}(y) = w · prox_conj(y / w, s / w),
        the projection onto the ball of radius w.
        """
        positive_scalar(s, "s (step of prox_conj)")
        Y, _ = self._groups(y, "y")
        return self._project(Y).reshape(np.shape(y))

    def prox(self, y, t) -> np.ndarray:
        """prox_{t g}(y) = y − t prox_{g*/t}(y/t) (Moreau) = group soft thresholding:
        y_i ↦ max(1 − t/‖y_i‖, 0) y_i."""
        t = positive_scalar(t, "t (step of prox)")
        Y, _ = self._groups(y, "y")
        return self._shrink(Y, t).reshape(np.shape(y))

    def _shrink(self, Y: np.ndarray, t: float) -> np.ndarray:
        """Group soft thresholding y_i ↦ max(1 − t/‖y_i‖, 0) y_i of Y (B, c, m), without
        validation (the kernel of :meth:`prox`, also run by the solvers' loops): groups with
        ‖y_i‖ ≤ t become exactly 0."""
        norms = self._norms(Y)
        with np.errstate(divide="ignore"):
            factor = np.maximum(1.0 - t / norms, 0.0)
        return Y * factor[:, None, :].astype(Y.dtype, copy=False)

    def cvx_group_norms(self, y_expr: cp.Expression) -> cp.Expression:
        """CVXPY vector of the group norms ‖y_i‖₂ of a flat expression y of length c·m."""
        if y_expr.ndim != 1 or y_expr.shape[0] % self.components:
            raise ShapeError(
                f"{self.name}: expected a flat CVXPY expression of length divisible by "
                f"{self.components}, got shape {y_expr.shape}"
            )
        grouped = cp.reshape(
            y_expr, (self.components, y_expr.shape[0] // self.components), order="C"
        )
        return cp.norm(grouped, 2, axis=0)


def _separable_conjugate(Q: np.ndarray, a: float, b: float, lo: float, hi: float) -> np.ndarray:
    """Entrywise f∗(q) = sup_t q t − f(t) of f(t) = a t²/2 + b|t| + ι_[lo, hi](t) (a, b ≥ 0).

    a > 0: the maximiser is t∗ = clip(sign(q) max(|q| − b, 0)/a, lo, hi) (the concave objective
    clipped to the interval), f∗(q) = q t∗ − a t∗²/2 − b|t∗|. a = 0: the objective is piecewise
    linear with kinks at 0, lo, hi, so f∗(q) is its largest value there (0 only when lo ≤ 0 ≤ hi);
    +inf where an unbounded side has slope |q| > b (outside :func:`_separable_conjugate_domain`).
    """
    Q = np.asarray(Q, dtype=np.float64)
    if a > 0:
        T = np.clip(np.sign(Q) * np.maximum(np.abs(Q) - b, 0.0) / a, lo, hi)
        return Q * T - 0.5 * a * T**2 - b * np.abs(T)
    values = np.full(Q.shape, -np.inf)
    for t in (lo, hi):
        if np.isfinite(t):
            values = np.maximum(values, Q * t - b * abs(t))
    if lo <= 0.0 <= hi:
        values = np.maximum(values, 0.0)
    q_lo, q_hi = _separable_conjugate_domain(a, b, lo, hi)
    return np.where((Q < q_lo) | (Q > q_hi), np.inf, values)


def _separable_conjugate_domain(a: float, b: float, lo: float, hi: float) -> tuple[float, float]:
    """The interval dom f∗ of :func:`_separable_conjugate`: all of R for a > 0, else q ≤ b where
    hi = +inf and q ≥ −b where lo = −inf."""
    if a > 0:
        return -np.inf, np.inf
    return (-b if lo == -np.inf else -np.inf), (b if hi == np.inf else np.inf)


# --- the base class -----------------------------------------------------------------------------


class Regularizer(ABC):
    """A proper, convex, lsc regulariser J (see the module docstring for the shape rules).

    Attributes
    ----------
    shape : tuple of int or None
        The shape of one item, or None for a separable regulariser acting on any array.
    separable : bool
        True iff J(u) = Σ_i f_i(u_i); then ∂J(u) is a product of intervals.
    """

    shape: tuple[int, ...] | None = None
    separable: bool = False
    #: The largest α ≥ 0 with J − α/2‖·‖² convex (α for α·SquaredL2, 0 for ℓ1, TV, boxes);
    #: convexity certificates count it on the input block.
    strong_convexity: float = 0.0
    __array_ufunc__ = None  # ``np.float64(0.1) * reg`` defers to Regularizer.__rmul__

    @property
    @abstractmethod
    def name(self) -> str:
        """Short name used in messages, e.g. ``"0.015·TotalVariation(shape=(8, 8))"``."""

    def __repr__(self) -> str:
        return self.name

    @property
    def _key(self) -> tuple:
        """Identity of the unit regulariser; terms with equal keys merge in a WeightedSum."""
        return (type(self).__name__,)

    # --- shapes -----------------------------------------------------------------------------
    def _items(self, x, what: str) -> tuple[np.ndarray, bool]:
        """Validate ``x`` and return it as rows (B, n) and whether it was a batch."""
        arr = finite_array(x, f"{what} for {self.name}")
        if self.shape is None:
            return arr.reshape(1, -1), False
        n = int(np.prod(self.shape))
        if arr.shape in (self.shape, (n,)):
            return arr.reshape(1, n), False
        if arr.ndim >= 2 and arr.shape[1:] in (self.shape, (n,)):
            return arr.reshape(arr.shape[0], n), True
        raise ShapeError(
            f"{self.name}: {what} has shape {arr.shape}; expected one item of shape {self.shape} "
            f"(or ({n},)) or a batch of shape (B, *{self.shape}) (or (B, {n}))"
        )

    def _item(self, x, what: str) -> np.ndarray:
        """Validate ``x`` as a single item and return it flat (n,)."""
        X, batched = self._items(x, what)
        if batched:
            raise ShapeError(f"{self.name}: {what} must be one item, got a batch of {X.shape[0]}")
        return X[0]

    def _flat_expr(self, u_expr) -> cp.Expression:
        """Check a CVXPY expression for one item and return it flattened in C order."""
        if not isinstance(u_expr, cp.Expression):
            raise TypeError(
                f"{self.name}.cvx expects a CVXPY expression, got {type(u_expr).__name__}"
            )
        if self.shape is not None and u_expr.shape not in (self.shape, (int(np.prod(self.shape)),)):
            raise ShapeError(
                f"{self.name}.cvx: expression has shape {u_expr.shape}, expected {self.shape} "
                f"or ({int(np.prod(self.shape))},)"
            )
        return cp.vec(u_expr, order="C") if u_expr.ndim != 1 else u_expr

    # --- the public API ---------------------------------------------------------------------
    def __call__(self, u) -> float | np.ndarray:
        """J(u): a float for one item, one value per item for a batch (+inf off dom J)."""
        U, batched = self._items(u, "u")
        values = self._values(U)
        return values if batched else float(values[0])

    def prox(self, v, t) -> np.ndarray:
        """prox_{tJ}(v) = argmin_u ½‖u − v‖² + t J(u) for t > 0 (same shape as v, batched)."""
        t = positive_scalar(t, "t (prox step)")
        V, _ = self._items(v, "v")
        return self._prox(V, t).reshape(np.shape(v))

    @abstractmethod
    def cvx(self, u_expr: cp.Expression) -> DCPTerm:
        """DCP form of J at a CVXPY expression for one item: ``DCPTerm(expr, constraints)``."""

    def cvx_remainder(self, u_expr: cp.Expression) -> DCPTerm:
        """DCP form of J − α/2‖u‖², α = ``strong_convexity`` (convex by the definition of α).

        The convexity certificates count α/2‖u₀‖² in the quadratic part H₀; the exact backend
        writes that part through a factor of H₀ and J through this remainder, so that α is
        counted once.
        """
        if self.strong_convexity:
            raise NotImplementedError(
                f"{self.name} has strong_convexity {self.strong_convexity:g} but no DCP form of "
                "J − α/2‖·‖²"
            )
        return self.cvx(u_expr)

    def subgradient(self, u) -> np.ndarray:
        """One element p ∈ ∂J(u) (same shape as u, batched); see the subclasses for which one.

        Raises ``DomainError`` when u ∉ dom J (then ∂J(u) = ∅).
        """
        U, _ = self._items(u, "u")
        return self._subgradient(U).reshape(np.shape(u))

    def in_subdifferential(self, p, u, tol: float = 1e-6) -> SubgradientTest:
        """Test p ∈ ∂J(u) for one item; returns ``SubgradientTest(residual <= tol, residual)``.

        The residual is dist(p, ∂J(u)) = min_{s ∈ ∂J(u)} ‖p − s‖₂, in closed form for separable
        J and by a small SOCP (CVXPY/Clarabel) otherwise. Tolerance convention: an entry of u
        (for TV: a gradient vector ∇u_i) of magnitude ≤ tol counts as zero, and an entry within
        tol of a bound of a Box counts as on the bound; entries further outside a Box raise
        ``DomainError`` (∂J(u) = ∅).
        """
        tol = positive_scalar(tol, "tol")
        U = self._item(u, "u")
        P = self._item(p, "p")
        if P.shape != U.shape:
            raise ShapeError(f"{self.name}: p has {P.size} entries but u has {U.size}")
        residual = self._subdiff_distance(P, U, tol)
        return SubgradientTest(bool(residual <= tol), residual)

    def subdifferential_cvx(self, u, tol: float = 0.0) -> tuple[cp.Expression, list]:
        """CVXPY description of ∂J(u) for one item u: ``(s, constraints)`` with
        {s : constraints} = ∂J(u).

        s is an affine CVXPY expression of length n in auxiliary variables (an interval per
        entry for separable terms; for TV, ∇ᵀq with the constants q_i = ∇u_i/|∇u_i| on the
        support of ∇u and variables |q_i| ≤ 1 only on the free groups ∇u_i = 0; weighted sums
        of these for a WeightedSum). Use it for source conditions, e.g. constraints +
        [A.T @ v == s] for Aᵀv ∈ ∂J(u). ``tol`` follows the convention of
        :meth:`in_subdifferential` (0: exact).
        """
        tol = 0.0 if tol == 0 else positive_scalar(tol, "tol")
        return self._subdiff_cvx(self._item(u, "u"), tol)

    def bregman_distance(
        self, u, v, p=None, *, check: bool = False, tol: float = 1e-6
    ) -> float | np.ndarray:
        """Bregman distance D_J^p(u, v) = J(u) − J(v) − ⟨p, u − v⟩ with p ∈ ∂J(v).

        Parameters
        ----------
        u, v : array_like
            Points of dom J, one item or a batch (same shape).
        p : array_like, optional
            A subgradient of J at v (same shape as v); default :meth:`subgradient` ``(v)``.
        check : bool
            Raise ``ValueError`` unless p ∈ ∂J(v) (:meth:`in_subdifferential` with ``tol``).
        tol : float
            Tolerance of that check.

        Returns
        -------
        float or ndarray
            D ≥ 0 (up to rounding), one value per item for a batch.

        Raises
        ------
        DomainError
            If u or v lies outside dom J (D would be +inf, or ∂J(v) = ∅).
        """
        U, batched = self._items(u, "u")
        V, v_batched = self._items(v, "v")
        if U.shape != V.shape or batched != v_batched:
            raise ShapeError(
                f"{self.name}: u and v must have the same shape, "
                f"got {np.shape(u)} and {np.shape(v)}"
            )
        J_u, J_v = self._values(U), self._values(V)
        for what, values in (("u", J_u), ("v", J_v)):
            if not np.isfinite(values).all():
                raise DomainError(
                    f"{self.name}: {what} lies outside dom J (J({what}) = +inf for "
                    f"{int((~np.isfinite(values)).sum())} item(s)), so D_J is not finite"
                )
        if p is None:
            P = self._subgradient(V)
        else:
            P, p_batched = self._items(p, "p")
            if P.shape != V.shape or p_batched != v_batched:
                raise ShapeError(
                    f"{self.name}: p must have the shape of v, got {np.shape(p)} and {np.shape(v)}"
                )
        if check:
            tol = positive_scalar(tol, "tol")
            for i, (p_i, v_i) in enumerate(zip(P, V, strict=True)):
                residual = self._subdiff_distance(p_i, v_i, tol)
                if residual > tol:
                    raise ValueError(
                        f"{self.name}: p is not a subgradient at v (item {i}): "
                        f"dist(p, ∂J(v)) = {residual:.3g} > tol = {tol:g}"
                    )
        distances = J_u - J_v - np.einsum("bn,bn->b", P, U - V)
        return distances if batched else float(distances[0])

    @abstractmethod
    def split(self) -> tuple[Regularizer | None, list[tuple[float, Operator, OuterFunction]]]:
        """Splitting view J(u) = simple(u) + Σ_k w_k g_k(L_k u) for first-order solvers.

        ``simple`` has a closed-form prox (or is None); each composite is ``(w, L, g)`` with L
        an :class:`~bregmod.operators.Operator` and g an :class:`OuterFunction` (unweighted:
        prox_{s (w g)*}(y) = w · g.prox_conj(y / w, s / w)).
        """

    # --- weights ----------------------------------------------------------------------------
    def __mul__(self, weight) -> WeightedSum:
        if not isinstance(weight, numbers.Real):
            return NotImplemented
        return WeightedSum([(weight, self)])

    __rmul__ = __mul__

    def __add__(self, other) -> WeightedSum:
        if not isinstance(other, Regularizer):
            return NotImplemented
        return WeightedSum([(1.0, self), (1.0, other)])

    # --- domain -------------------------------------------------------------------------------
    def project_domain(self, u) -> np.ndarray:
        """The nearest point of dom J to ``u`` (any shape; a copy): u itself where J is finite
        everywhere; indicators (:class:`Box`) clip to their bounds."""
        return np.array(u, dtype=np.float64)

    # --- hooks for subclasses (validated (B, n) arrays) ---------------------------------------
    @abstractmethod
    def _values(self, U: np.ndarray) -> np.ndarray:
        """J of each row of U (B, n) → (B,)."""

    @abstractmethod
    def _prox(self, V: np.ndarray, t: float) -> np.ndarray:
        """prox_{tJ} of each row of V (B, n)."""

    @abstractmethod
    def _subgradient(self, U: np.ndarray) -> np.ndarray:
        """An element of ∂J at each row of U (B, n); ``DomainError`` off dom J."""

    @abstractmethod
    def _subdiff_cvx(self, u: np.ndarray, tol: float) -> tuple[cp.Expression, list]:
        """``subdifferential_cvx`` for a validated flat item u."""

    def _subdiff_distance(self, p: np.ndarray, u: np.ndarray, tol: float) -> float:
        """dist(p, ∂J(u)) for one item (flat arrays) by an SOCP; closed forms override it."""
        return _cvx_distance(self.name, p, *self._subdiff_cvx(u, tol))


# --- separable regularisers ---------------------------------------------------------------------


class SeparableRegularizer(Regularizer):
    """J(u) = Σ_i f(u_i) for a convex scalar f; ∂J(u) = Π_i [lower_i, upper_i].

    :meth:`subgradient` returns the minimal-norm subgradient, clip(0, lower, upper).
    """

    separable = True

    def __init__(self, shape: Sequence[int] | None = None) -> None:
        self.shape = _check_shape(shape, type(self).__name__)

    @abstractmethod
    def _entrywise(self, U: np.ndarray) -> np.ndarray:
        """f(U) entrywise."""

    def _values(self, U: np.ndarray) -> np.ndarray:
        return self._entrywise(U).sum(axis=1)

    @abstractmethod
    def _subdiff_bounds(self, U: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
        """Entrywise ∂f(U) = [lower, upper] (tolerance convention of ``in_subdifferential``)."""

    def _subgradient(self, U):
        return np.clip(0.0, *self._subdiff_bounds(U, 0.0))

    def _subdiff_cvx(self, u, tol):
        s = cp.Variable(u.size)
        return s, _interval_constraints(s, *self._subdiff_bounds(u, tol))

    def _subdiff_distance(self, p, u, tol):
        return _interval_distance(p, *self._subdiff_bounds(u, tol))

    def split(self):
        """(self, []): the prox is in closed form."""
        return self, []

    @abstractmethod
    def _scalar_form(self) -> tuple[float, float, float, float]:
        """(a, b, lo, hi) with f(t) = a t²/2 + b|t| + ι_[lo, hi](t) the entrywise function."""

    def conjugate(self, q) -> np.ndarray:
        """J∗(q) = Σ_i f∗(q_i) of every row of a 2-D batch q (B, n), shape (B,) (+inf off
        dom J∗); f∗ from :func:`_separable_conjugate`."""
        Q = np.asarray(q, dtype=np.float64)
        return _separable_conjugate(Q, *self._scalar_form()).sum(axis=1)

    def conjugate_domain(self) -> tuple[float, float]:
        """The interval [q_lo, q_hi] of every entry of dom J∗ (J∗ is finite exactly there)."""
        return _separable_conjugate_domain(*self._scalar_form())


class SquaredL2(SeparableRegularizer):
    """J(u) = ½‖u‖₂²; prox_{tJ}(v) = v / (1 + t); ∂J(u) = {u}.

    Parameters
    ----------
    shape : tuple of int, optional
        Item shape (enables per-item values of a batch); None acts on any array.
    """

    strong_convexity = 1.0

    @property
    def name(self) -> str:
        return "SquaredL2"

    def _entrywise(self, U):
        return 0.5 * U**2

    def _prox(self, V, t):
        return V / (1.0 + t)

    def cvx(self, u_expr) -> DCPTerm:
        return DCPTerm(0.5 * cp.sum_squares(self._flat_expr(u_expr)), [])

    def cvx_remainder(self, u_expr) -> DCPTerm:
        self._flat_expr(u_expr)
        return DCPTerm(cp.Constant(0.0), [])

    def _subdiff_bounds(self, U, tol):
        return U, U

    def _scalar_form(self):
        return 1.0, 0.0, -np.inf, np.inf


class L1(SeparableRegularizer):
    """J(u) = ‖u‖₁ = Σ|u_i|; prox_{tJ}(v) = sign(v) max(|v| − t, 0) = v − clip(v, −t, t) (Moreau);
    ∂|·|(u_i) = {sign u_i} for u_i ≠ 0, [−1, 1] at 0.

    Parameters
    ----------
    shape : tuple of int, optional
        Item shape (enables per-item values of a batch); None acts on any array.
    """

    @property
    def name(self) -> str:
        return "L1"

    def _entrywise(self, U):
        return np.abs(U)

    def _prox(self, V, t):
        return V - np.clip(V, -t, t)

    def cvx(self, u_expr) -> DCPTerm:
        return DCPTerm(cp.norm1(self._flat_expr(u_expr)), [])

    def _subdiff_bounds(self, U, tol):
        zero = np.abs(U) <= tol
        sign = np.sign(U)
        return np.where(zero, -1.0, sign), np.where(zero, 1.0, sign)

    def _scalar_form(self):
        return 0.0, 1.0, -np.inf, np.inf


class Box(SeparableRegularizer):
    """Indicator J(u) = ι_{[lo, hi]}(u) (0 if lo ≤ u_i ≤ hi for all i, else +inf).

    prox_{tJ}(v) = clip(v, lo, hi) for every t; ∂J(u) is the normal cone: entrywise
    (−inf, 0] at u_i = lo, [0, +inf) at u_i = hi, {0} inside (all of R when lo = hi).
    Its DCP form is ``DCPTerm(0, [u >= lo, u <= hi])`` (infinite bounds omitted).

    Parameters
    ----------
    lo, hi : float
        Bounds, lo ≤ hi; lo may be −inf and hi +inf (not both infinite on the same side).
    shape : tuple of int, optional
        Item shape (enables per-item values of a batch); None acts on any array.
    """

    def __init__(self, lo: float, hi: float, shape: Sequence[int] | None = None) -> None:
        super().__init__(shape)
        bounds = []
        for label, bound in (("lo", lo), ("hi", hi)):
            if not isinstance(bound, numbers.Real) or np.isnan(bound):
                raise ValueError(f"Box: {label} must be a real number (not NaN), got {bound!r}")
            bounds.append(float(bound))
        self.lo, self.hi = bounds
        if self.lo > self.hi:
            raise ValueError(f"Box: lo = {self.lo:g} > hi = {self.hi:g}, the box is empty")
        if self.lo == np.inf or self.hi == -np.inf:
            raise ValueError(f"Box: the box [{self.lo:g}, {self.hi:g}] is empty")

    @property
    def name(self) -> str:
        return f"Box(lo={self.lo:g}, hi={self.hi:g})"

    def _intersect(self, other: Box) -> Box:
        """The indicator of the intersection: ι_A + ι_B = ι_{A ∩ B}."""
        lo, hi = max(self.lo, other.lo), min(self.hi, other.hi)
        if lo > hi:
            raise DomainError(f"{self.name} + {other.name}: the boxes do not intersect, J ≡ +inf")
        shape = self.shape if self.shape is not None else other.shape
        return NonNegative(shape) if (lo, hi) == (0.0, np.inf) else Box(lo, hi, shape)

    def _entrywise(self, U):
        return np.where((U >= self.lo) & (U <= self.hi), 0.0, np.inf)

    def _prox(self, V, t):
        return np.clip(V, self.lo, self.hi)

    def project_domain(self, u) -> np.ndarray:
        """clip(u, lo, hi)."""
        return np.clip(np.asarray(u, dtype=np.float64), self.lo, self.hi)

    def cvx(self, u_expr) -> DCPTerm:
        u = self._flat_expr(u_expr)
        constraints = [u >= self.lo] if np.isfinite(self.lo) else []
        constraints += [u <= self.hi] if np.isfinite(self.hi) else []
        return DCPTerm(cp.Constant(0.0), constraints)

    def _subdiff_bounds(self, U, tol):
        outside = (U < self.lo - tol) | (U > self.hi + tol)
        if outside.any():
            raise DomainError(
                f"{self.name}: u lies outside the box, so ∂J(u) is empty: "
                f"{describe_entries(outside, U)}"
            )
        lower = np.where(U <= self.lo + tol, -np.inf, 0.0)
        upper = np.where(U >= self.hi - tol, np.inf, 0.0)
        return lower, upper

    def _scalar_form(self):
        return 0.0, 0.0, self.lo, self.hi


class NonNegative(Box):
    """Indicator of the non-negative orthant, J = ι_{u ≥ 0} = Box(0, +inf); prox = max(v, 0).

    Parameters
    ----------
    shape : tuple of int, optional
        Item shape (enables per-item values of a batch); None acts on any array.
    """

    def __init__(self, shape: Sequence[int] | None = None) -> None:
        super().__init__(0.0, np.inf, shape)

    @property
    def name(self) -> str:
        return "NonNegative"


# --- total variation ----------------------------------------------------------------------------


class TotalVariation(Regularizer):
    """Total variation of an H × W image with forward differences and Neumann boundary:

        TV(u) = Σ_pixels √(dx² + dy²)   (isotropic),    Σ_pixels |dx| + |dy|   (anisotropic),

    i.e. TV(u) = g(∇u) with ∇ = :class:`~bregmod.operators.Gradient2D` and g the
    :class:`L21Norm` with 2 (isotropic) or 1 (anisotropic) components.

    Subdifferential: p ∈ ∂TV(u) iff p = ∇ᵀq = −div q with q in the ℓ2,∞ (resp. ℓ∞) unit ball and
    q_i = ∇u_i / |∇u_i| wherever ∇u_i ≠ 0. :meth:`subgradient` returns ∇ᵀq with q_i = 0 where
    ∇u_i = 0 (cheap, not the minimal-norm subgradient).

    :meth:`prox` is iterative (no closed form): FISTA with adaptive restart on the dual problem
    max_{q : |q_i| ≤ t} ½‖v‖² − ½‖v − ∇ᵀq‖², u = v − ∇ᵀq, step 1/‖∇‖². It stops when the duality
    gap G = t TV(u) − ⟨∇u, q⟩ ≤ ``prox_tol``·½‖v‖², which certifies
    ‖u − prox_{tTV}(v)‖ ≤ √(2G) ≤ √prox_tol · ‖v‖ (per item of a batch), or after
    ``prox_max_iter`` iterations; then it returns the iterate with the smallest gap and warns
    (:class:`~bregmod.errors.SolverWarning`) with the gap reached. :meth:`prox_certified`
    returns the bound √(2G) with the point. The gap falls like O(1/k²) at best: on 32 × 32
    and 64 × 64 images in [0, 1] it reaches 1e−6·½‖v‖² within a few thousand iterations for
    t ≤ 2, and 1e−10 can take 10⁵ (``benchmarks/tv_prox.py``).

    The CVXPY form uses sparse difference matrices (:attr:`difference_matrix`), not ``cp.tv``,
    which drops the last row and column and so does not match the Neumann convention.

    Parameters
    ----------
    shape : tuple of int
        Image shape (H, W).
    isotropic : bool
        Isotropic (ℓ2 over the 2-vectors) or anisotropic (ℓ1) TV.
    prox_tol : float
        Relative duality-gap tolerance of :meth:`prox` (default 1e-6: certified relative
        accuracy ‖u − prox‖ ≤ 1e-3·‖v‖; the attained accuracy is typically 100 times better,
        see ``benchmarks/tv_prox.py``).
    prox_max_iter : int
        Iteration limit of :meth:`prox`; reaching it returns the best iterate with a warning.
    """

    def __init__(
        self,
        shape: Sequence[int],
        isotropic: bool = True,
        *,
        prox_tol: float = 1e-6,
        prox_max_iter: int = 20_000,
    ) -> None:
        self.gradient = Gradient2D(shape)
        self.shape = self.gradient.in_shape
        self.isotropic = bool(isotropic)
        self.norm = L21Norm(2 if self.isotropic else 1)
        self.prox_tol = positive_scalar(prox_tol, "prox_tol")
        if (
            isinstance(prox_max_iter, bool)
            or not isinstance(prox_max_iter, numbers.Integral)
            or prox_max_iter < 1
        ):
            raise ValueError(
                f"TotalVariation: prox_max_iter must be a positive int, got {prox_max_iter!r}"
            )
        self.prox_max_iter = int(prox_max_iter)

    @property
    def name(self) -> str:
        return f"TotalVariation(shape={self.shape}{'' if self.isotropic else ', anisotropic'})"

    @property
    def _key(self) -> tuple:
        return (type(self).__name__, self.shape, self.isotropic)

    @cached_property
    def difference_matrix(self) -> sp.csr_matrix:
        """∇ as a sparse (2HW × HW) matrix, [D_H ⊗ I_W; I_H ⊗ D_W] with D_n the forward
        difference whose last row is zero (Neumann); used for the CVXPY forms only."""

        def forward_difference(n: int) -> sp.dia_matrix:
            return sp.diags([np.r_[-np.ones(n - 1), 0.0], np.ones(n - 1)], [0, 1], shape=(n, n))

        H, W = self.shape
        return sp.vstack(
            [sp.kron(forward_difference(H), sp.eye(W)), sp.kron(sp.eye(H), forward_difference(W))]
        ).tocsr()

    def _grouped(self, Y: np.ndarray) -> np.ndarray:
        """Gradients Y (B, 2n) as (B, c, m) groups of the outer norm."""
        return Y.reshape(Y.shape[0], self.norm.components, -1)

    def _values(self, U):
        return self.norm._norms(self._grouped(self.gradient.apply(U))).sum(axis=1)

    def _prox(self, V, t):
        U, gap = self._dual_fista(V, t)
        self._warn_if_unreached(V, t, gap)
        return U

    def prox_certified(self, v, t) -> tuple[np.ndarray, float | np.ndarray]:
        """prox_{tTV}(v) and a certified bound on its error: (u, e) with ‖u − prox_{tTV}(v)‖ ≤ e.

        e = √(2G) with G the duality gap of the returned iterate (the objective
        ½‖u − v‖² + t TV(u) is 1-strongly convex, so ½‖u − u*‖² ≤ G). e is a float for one
        item and an array (B,) for a batch. Like :meth:`prox`, it warns when the gap is above
        ``prox_tol``·½‖v‖² after ``prox_max_iter`` iterations.
        """
        t = positive_scalar(t, "t (prox step)")
        V, batched = self._items(v, "v")
        U, gap = self._dual_fista(V, t)
        self._warn_if_unreached(V, t, gap)
        bound = np.sqrt(2.0 * gap)
        return U.reshape(np.shape(v)), bound if batched else float(bound[0])

    def _warn_if_unreached(self, V, t: float, gap: np.ndarray) -> None:
        """Warn (SolverWarning) when some item's gap is above ``prox_tol``·½‖v‖²."""
        half_norm = 0.5 * np.einsum("bn,bn->b", V, V)
        missed = gap > self.prox_tol * half_norm
        if not missed.any():
            return
        relative = gap / np.maximum(half_norm, np.finfo(float).tiny)
        k = int(np.argmax(np.where(missed, relative, -np.inf)))
        warnings.warn(
            f"{self.name}.prox(v, t={t:g}): the dual FISTA stopped at prox_max_iter = "
            f"{self.prox_max_iter} with a duality gap of {relative[k]:.3g}·½‖v‖² > prox_tol = "
            f"{self.prox_tol:g}·½‖v‖² ({int(missed.sum())} of {len(gap)} items); the best "
            f"iterate is returned, within ‖u − prox‖ ≤ √(2·gap) = {np.sqrt(2 * gap[k]):.3g} "
            "(prox_certified returns this bound; raise prox_max_iter or prox_tol)",
            SolverWarning,
            stacklevel=4,
        )

    def _dual_fista(self, V, t) -> tuple[np.ndarray, np.ndarray]:
        """The best iterate u = v − ∇ᵀq of the dual FISTA per item and its duality gap G (B,).

        Stops when G ≤ ``prox_tol``·½‖v‖² for every item or after ``prox_max_iter`` iterations.
        """
        # Dual FISTA in q with u(q) = v − ∇ᵀq; by linearity the extrapolated point's gradient
        # ∇u(y) is the same combination of ∇u(q) as y of q: one ∇ and one ∇ᵀ per iteration.
        grad = self.gradient
        step = 1.0 / grad.norm_bound() ** 2
        target = self.prox_tol * 0.5 * np.einsum("bn,bn->b", V, V)
        Q = np.zeros((V.shape[0], grad.shape[0]))
        G = grad.apply(V)  # ∇u(Q)
        Y, G_Y, momentum_t = Q, G, np.ones(V.shape[0])
        best, best_gap = V.copy(), np.full(V.shape[0], np.inf)
        for _ in range(self.prox_max_iter):
            ascent = self._grouped((Y + step * G_Y) / t)
            Q_next = t * self.norm._project(ascent).reshape(Q.shape)
            U = V - grad.apply_adjoint(Q_next)
            G_next = grad.apply(U)
            norms = self.norm._norms(self._grouped(G_next)).sum(axis=1)
            gap = np.maximum(t * norms - np.einsum("bm,bm->b", G_next, Q_next), 0.0)
            better = gap < best_gap
            best[better], best_gap[better] = U[better], gap[better]
            if (best_gap <= target).all():
                break
            t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * momentum_t**2))
            restart = np.einsum("bm,bm->b", Y - Q_next, Q_next - Q) > 0
            beta = np.where(restart, 0.0, (momentum_t - 1.0) / t_next)[:, None]
            Y, G_Y = Q_next + beta * (Q_next - Q), G_next + beta * (G_next - G)
            Q, G, momentum_t = Q_next, G_next, np.where(restart, 1.0, t_next)
        return best, best_gap

    def cvx(self, u_expr) -> DCPTerm:
        u = self._flat_expr(u_expr)
        return DCPTerm(cp.sum(self.norm.cvx_group_norms(self.difference_matrix @ u)), [])

    def _subgradient(self, U):
        directions, _ = self.norm._directions(self._grouped(self.gradient.apply(U)), 0.0)
        return self.gradient.apply_adjoint(directions.reshape(U.shape[0], -1))

    def _subdiff_cvx(self, u, tol):
        # Only the free groups (|∇u_i| ≤ tol) are variables, bounded by the unit ball; the fixed
        # ones are the constants q_i = ∇u_i/|∇u_i|. Bounding those too would make |q_i| ≤ 1
        # active with no strictly feasible point, which stalls Clarabel ("optimal_inaccurate").
        # The bottom-right pixel has ∇u = 0 (Neumann), so there is always a free group.
        directions, active = self.norm._directions(self._grouped(self.gradient.apply(u[None])), tol)
        groups = active.shape[1]
        free = np.flatnonzero(~active[0])
        rows = (np.arange(self.norm.components)[:, None] * groups + free).ravel()
        q_free = cp.Variable(rows.size)
        D_T = self.difference_matrix.T
        s = D_T @ directions.ravel() + D_T[:, rows] @ q_free
        return s, [self.norm.cvx_group_norms(q_free) <= 1]

    def split(self):
        """(None, [(1, ∇, g)]): TV(u) = g(∇u) with g the ℓ2,1 (isotropic) or ℓ1 norm."""
        return None, [(1.0, self.gradient, self.norm)]


# --- weighted sums ------------------------------------------------------------------------------


class WeightedSum(Regularizer):
    """J(u) = Σ_k w_k J_k(u) with weights w_k > 0.

    The terms are kept in a canonical form (``.terms``, a list of ``(weight, regularizer)``):
    nested sums are flattened, equal regularisers merge (a·L1 + b·L1 = (a + b)·L1), and all
    indicators merge into one Box of the intersection with weight 1 (w·ι = ι).

    prox_{tJ}(v) in closed form:

    * the quadratic part a = Σ weights of SquaredL2 is absorbed,
      prox_{t(f + a/2‖·‖²)}(v) = prox_{t/(1+ta) f}(v / (1 + ta));
    * f = b·h + ι_{[lo, hi]} with h separable (L1): prox_{tf}(v) = clip(prox_{tbh}(v), lo, hi)
      (exact for separable 1-D convex h);
    * f = α·TV (without an indicator or L1) uses the iterative :meth:`TotalVariation.prox`.

    Other combinations (TV + NonNegative, TV + L1, two different TVs) raise
    ``NotImplementedError`` naming the terms; use :meth:`split` (first-order solvers) or CVXPY.

    ∂J(u) = Σ_k w_k ∂J_k(u) (sum rule; all terms but the indicator are finite everywhere).
    :meth:`subgradient` returns the minimal-norm element of the separable part plus Σ w_k p_k of
    the TV terms.

    Parameters
    ----------
    terms : sequence of (float, Regularizer)
        Positive finite weights and regularisers; their shapes must agree where given.
    """

    def __init__(self, terms: Sequence[tuple[float, Regularizer]]) -> None:
        flat: list[tuple[float, Regularizer]] = []
        for term in terms:
            if not (
                isinstance(term, tuple) and len(term) == 2 and isinstance(term[1], Regularizer)
            ):
                raise TypeError(
                    f"WeightedSum: terms must be (weight, Regularizer) pairs, got {term!r}"
                )
            weight, reg = _check_weight(term[0], term[1]), term[1]
            if isinstance(reg, WeightedSum):
                flat.extend((weight * w, r) for w, r in reg.terms)
            else:
                flat.append((weight, reg))
        if not flat:
            raise ValueError("WeightedSum needs at least one term")
        shapes = {r.shape for _, r in flat if r.shape is not None}
        if len(shapes) > 1:
            raise ShapeError(
                "WeightedSum: the terms have different shapes "
                + ", ".join(f"{r.name}: {r.shape}" for _, r in flat if r.shape is not None)
            )
        self.shape = shapes.pop() if shapes else None
        merged: dict[tuple, list] = {}
        for weight, reg in flat:
            key = ("indicator",) if isinstance(reg, Box) else reg._key
            if key not in merged:
                merged[key] = [1.0 if isinstance(reg, Box) else weight, reg]
            elif isinstance(reg, Box):
                merged[key][1] = merged[key][1]._intersect(reg)
            else:
                merged[key][0] += weight
        self.terms: list[tuple[float, Regularizer]] = [(w, r) for w, r in merged.values()]
        self.separable = all(r.separable for _, r in self.terms)
        self.strong_convexity = float(sum(w * r.strong_convexity for w, r in self.terms))

    @property
    def name(self) -> str:
        return " + ".join(_format_term(w, r) for w, r in self.terms)

    def project_domain(self, u) -> np.ndarray:
        """dom J is the box of its one merged indicator term (all of ℝⁿ without one)."""
        boxes = [r for _, r in self.terms if isinstance(r, Box)]
        return boxes[0].project_domain(u) if boxes else super().project_domain(u)

    def _values(self, U):
        return sum(w * r._values(U) for w, r in self.terms)

    def _prox(self, V, t):
        quadratic = sum(w for w, r in self.terms if isinstance(r, SquaredL2))
        boxes = [r for _, r in self.terms if isinstance(r, Box)]
        others = [(w, r) for w, r in self.terms if not isinstance(r, (SquaredL2, Box))]
        if len(others) > 1 or (others and boxes and not others[0][1].separable):
            blocking = [_format_term(w, r) for w, r in others] + [b.name for b in boxes]
            raise NotImplementedError(
                f"the prox of {self.name} has no closed form ({' with '.join(blocking)}); "
                "use split() with a first-order solver, or the CVXPY backend"
            )
        scale = 1.0 / (1.0 + t * quadratic)
        X = V * scale
        for w, r in others:
            X = r._prox(X, t * scale * w)
        for box in boxes:
            X = box._prox(X, t)
        return X

    def cvx(self, u_expr) -> DCPTerm:
        return self._weighted(u_expr, lambda r, u: r.cvx(u))

    def cvx_remainder(self, u_expr) -> DCPTerm:
        """Σ_k w_k (J_k − α_k/2‖·‖²): the strong convexity of a sum is Σ_k w_k α_k."""
        return self._weighted(u_expr, lambda r, u: r.cvx_remainder(u))

    def _weighted(self, u_expr, term_of) -> DCPTerm:
        """Σ_k w_k ``term_of``(J_k, u) with the terms' constraints."""
        u = self._flat_expr(u_expr)
        parts = [(w, term_of(r, u)) for w, r in self.terms]
        return DCPTerm(
            sum(w * part.expr for w, part in parts),
            [c for _, part in parts for c in part.constraints],
        )

    def _separable_bounds(self, U: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
        """[lower, upper] of Σ w_k ∂J_k(U) over the separable terms (intervals add)."""
        lower, upper = np.zeros_like(U), np.zeros_like(U)
        for w, r in self.terms:
            if r.separable:
                lo, hi = r._subdiff_bounds(U, tol)
                lower, upper = lower + w * lo, upper + w * hi
        return lower, upper

    def _subgradient(self, U):
        P = np.clip(0.0, *self._separable_bounds(U, 0.0))
        for w, r in self.terms:
            if not r.separable:
                P = P + w * r._subgradient(U)
        return P

    def _subdiff_cvx(self, u, tol):
        s = cp.Variable(u.size)
        constraints = _interval_constraints(s, *self._separable_bounds(u, tol))
        for w, r in self.terms:
            if not r.separable:
                s_r, constraints_r = r._subdiff_cvx(u, tol)
                s, constraints = s + w * s_r, constraints + constraints_r
        return s, constraints

    def _subdiff_distance(self, p, u, tol):
        if self.separable:
            return _interval_distance(p, *self._separable_bounds(u, tol))
        return super()._subdiff_distance(p, u, tol)

    def conjugate(self, q) -> np.ndarray:
        """J∗(q) of every row of a 2-D batch q (B, n) for a separable sum (a·½‖·‖² + b‖·‖₁ +
        ι_box: the entrywise f∗ of :func:`_separable_conjugate`), shape (B,).

        Raises
        ------
        NotImplementedError
            For a sum with a non-separable term (TV): its conjugate is an infimal convolution.
        """
        return _separable_conjugate(np.asarray(q, dtype=np.float64), *self._scalar_form()).sum(
            axis=1
        )

    def conjugate_domain(self) -> tuple[float, float]:
        """The interval of every entry of dom J∗ (separable sums only, see :meth:`conjugate`)."""
        return _separable_conjugate_domain(*self._scalar_form())

    def _scalar_form(self) -> tuple[float, float, float, float]:
        if not self.separable:
            raise NotImplementedError(
                f"the conjugate of {self.name} has no closed form here (a non-separable term)"
            )
        a = b = 0.0
        lo, hi = -np.inf, np.inf
        for w, r in self.terms:
            ra, rb, rlo, rhi = r._scalar_form()
            a, b = a + w * ra, b + w * rb
            lo, hi = max(lo, rlo), min(hi, rhi)  # the indicators merged into one Box
        return a, b, lo, hi

    def split(self):
        """simple = the weighted sum of the separable terms (closed-form prox) or None;
        composites = the TV terms as (w, ∇, g)."""
        simple_terms: list[tuple[float, Regularizer]] = []
        composites: list[tuple[float, Operator, OuterFunction]] = []
        for w, r in self.terms:
            simple, parts = r.split()
            if simple is not None:
                simple_terms.append((w, simple))
            composites.extend((w * w_k, L, g) for w_k, L, g in parts)
        return (WeightedSum(simple_terms) if simple_terms else None), composites


# --- names (spec files) -------------------------------------------------------------------------


def _total_variation(isotropic: bool):
    def build(input_shape: tuple[int, ...]) -> TotalVariation:
        image = input_shape[1:] if input_shape[:1] == (1,) else input_shape
        if len(image) != 2:
            name = "tv" if isotropic else "tv_anisotropic"
            raise ValueError(
                f"{name} needs a 2-D input [H, W] or [1, H, W], got shape {input_shape}"
            )
        return TotalVariation(image, isotropic=isotropic)

    return build


#: Regulariser names (spec files) ↦ (builder from the network's input shape and the term's
#: arguments, names of the arguments): ``box(lo, hi)`` takes two bounds, the others none; TV
#: acts on a 2-D input [H, W] or a grey [1, H, W].
NAMES: dict[str, tuple] = {
    "tv": (_total_variation(True), ()),
    "tv_anisotropic": (_total_variation(False), ()),
    "l1": (lambda input_shape: L1(), ()),
    "squared_l2": (lambda input_shape: SquaredL2(), ()),
    "nonnegative": (lambda input_shape: NonNegative(), ()),
    "box": (lambda input_shape, lo, hi: Box(lo, hi), ("lo", "hi")),
}


def by_name(name: str, input_shape: tuple[int, ...], args: Sequence[float] = ()) -> Regularizer:
    """The regulariser of :data:`NAMES` called ``name`` (unit weight) on inputs of
    ``input_shape``, with its arguments ``args``.

    Raises
    ------
    ValueError
        An unknown name, the wrong number of arguments, or an input shape the term does not
        apply to (TV on a non-image input).
    """
    if name not in NAMES:
        raise ValueError(f"unknown regulariser {name!r}; available: {', '.join(NAMES)}")
    build, parameters = NAMES[name]
    if len(args) != len(parameters):
        raise ValueError(
            f"{name} takes {len(parameters)} argument(s) ({', '.join(parameters) or 'none'}), "
            f"got {len(args)}"
        )
    return build(tuple(input_shape), *args)
