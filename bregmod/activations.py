"""Admissible activations σ = prox_Ψ (docs/math/activations.md) and their Bregman penalties
(docs/math/bregman.md).

Every activation is the proximal map of a proper, convex, lsc Ψ,

    σ(x) = prox_Ψ(x) = argmin_u ½(u − x)² + Ψ(u),

so that with Φ = ½‖·‖² + Ψ we have σ = ∇Φ* = (∇Φ)⁻¹ and the Bregman (Fenchel) penalty

    B_Ψ(y, x) = Φ(y) + Φ*(x) − ⟨y, x⟩ ≥ ½‖y − σ(x)‖² ≥ 0,   ∇ₓ B_Ψ(y, x) = σ(x) − y.

Subclasses implement ``_psi`` (Ψ on points of its domain) and ``sigma_inv`` (σ⁻¹ = id + Ψ'),
and optionally ``sigma_inv_grad`` ((σ⁻¹)' = 1 + Ψ'') and a closed-form ``_prox`` (σ); the
generic ``prox_scaled`` solves the prox optimality condition by a safeguarded Newton/secant
root finder, and Φ* defaults to Fenchel–Young with equality. Closed forms override the rest.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
from scipy.special import (
    expit,
    lambertw,
    log_expit,
    log_softmax,
    logsumexp,
    spence,
    wrightomega,
    xlog1py,
    xlogy,
)

from bregmod._checks import finite_array
from bregmod.errors import (
    DomainError,
    NoDCPFormError,
    NotAdmissibleError,
    ShapeError,
    SolverError,
    describe_entries,
)

if TYPE_CHECKING:
    from bregmod.derivation import Derivation

__all__ = [
    "ELU",
    "ISRU",
    "Activation",
    "Arctan",
    "Asinh",
    "Box",
    "Clip",
    "ClipBox",
    "DCPTerm",
    "Identity",
    "Interval",
    "Simplex",
    "LeakyReLU",
    "NAMES",
    "ReLU",
    "Sigmoid",
    "SoftThreshold",
    "Softmax",
    "Softplus",
    "Softsign",
    "Sparsemax",
    "Tanh",
]


@dataclass(frozen=True)
class Interval:
    """A real interval with closure information, e.g. dom Ψ or the range of σ.

    Parameters
    ----------
    lo, hi : float
        End points (``-inf``/``inf`` allowed, ``lo <= hi``).
    lo_closed, hi_closed : bool
        Whether the end point belongs to the interval (ignored for infinite end points).
    """

    lo: float
    hi: float
    lo_closed: bool = True
    hi_closed: bool = True

    def contains(self, x) -> np.ndarray:
        """Entrywise membership ``lo ≤ x ≤ hi`` (strict at open ends), as a boolean array."""
        x = np.asarray(x, dtype=np.float64)
        above = x >= self.lo if self.lo_closed else x > self.lo
        below = x <= self.hi if self.hi_closed else x < self.hi
        return above & below

    def interior_point(self) -> float:
        """A point of the interior: the midpoint, or one unit inside a single finite end, or 0."""
        if np.isfinite(self.lo) and np.isfinite(self.hi):
            return 0.5 * (self.lo + self.hi)
        if np.isfinite(self.lo):
            return self.lo + 1.0
        if np.isfinite(self.hi):
            return self.hi - 1.0
        return 0.0

    def project(self, x) -> np.ndarray:
        """The nearest point of the interval, entrywise (clip; an open end point is replaced by
        the nearest float inside)."""
        lo, hi = self.lo, self.hi
        lo = lo if self.lo_closed or not np.isfinite(lo) else np.nextafter(lo, np.inf)
        hi = hi if self.hi_closed or not np.isfinite(hi) else np.nextafter(hi, -np.inf)
        return np.clip(x, lo, hi)

    def __str__(self) -> str:
        left = "[" if self.lo_closed and np.isfinite(self.lo) else "("
        right = "]" if self.hi_closed and np.isfinite(self.hi) else ")"
        return f"{left}{self.lo:g}, {self.hi:g}{right}"


class Box:
    """An entrywise box B = [lo_1, hi_1] × … × [lo_n, hi_n] (±inf allowed) on the last axis:
    dom Ψ and range of :class:`ClipBox`."""

    def __init__(self, lo: np.ndarray, hi: np.ndarray) -> None:
        self.lo, self.hi = lo, hi

    def contains(self, x) -> np.ndarray:
        """Entrywise membership lo_i ≤ x_i ≤ hi_i along the last axis, as a boolean array."""
        x = np.asarray(x, dtype=np.float64)
        return (x >= self.lo) & (x <= self.hi)

    def project(self, x) -> np.ndarray:
        """The nearest point of B (entrywise clip)."""
        return np.clip(x, self.lo, self.hi)

    def __str__(self) -> str:
        return (
            f"the box Π_i [lo_i, hi_i] of {self.lo.size} entries (lo from {self.lo.min():g} to "
            f"{self.lo.max():g}, hi from {self.hi.min():g} to {self.hi.max():g})"
        )


@dataclass(frozen=True)
class Simplex:
    """The unit simplex Δ = {y ≥ 0, Σ y = 1} along the last axis: dom Ψ of vector activations.

    ``lo``, ``hi`` and their closure describe the entrywise hull [0, 1] (as for an
    :class:`Interval`); membership and projection act on whole vectors.

    Parameters
    ----------
    tol : float
        Rounding allowance of membership: entries in [0, 1 + tol], sums within tol of 1.
    """

    tol: float = 1e-8
    lo: float = 0.0
    hi: float = 1.0
    lo_closed: bool = True
    hi_closed: bool = True

    def entries_ok(self, x) -> np.ndarray:
        """Entrywise 0 ≤ x ≤ 1 + tol (the hull, with the rounding allowance of the sums)."""
        x = np.asarray(x, dtype=np.float64)
        return (x >= 0) & (x <= 1 + self.tol)

    def contains(self, x) -> np.ndarray:
        """Membership of every vector (last axis), as a boolean array of the leading shape."""
        x = np.asarray(x, dtype=np.float64)
        return self.entries_ok(x).all(axis=-1) & (np.abs(x.sum(axis=-1) - 1) <= self.tol)

    @staticmethod
    def project(x) -> np.ndarray:
        """Euclidean projection of every vector (last axis) onto Δ (sort-based):
        max(x − τ, 0) with τ = (Σ_{i ≤ ρ} x₍ᵢ₎ − 1)/ρ."""
        x = np.asarray(x)
        n = x.shape[-1]
        desc = -np.sort(-x, axis=-1)
        excess = np.cumsum(desc, axis=-1) - 1
        rho = (desc - excess / np.arange(1, n + 1) > 0).sum(axis=-1, keepdims=True)
        tau = np.take_along_axis(excess, rho - 1, axis=-1) / rho
        return np.maximum(x - tau, 0.0)

    def __str__(self) -> str:
        return "the unit simplex Δ (along the last axis)"


class DCPTerm(NamedTuple):
    """A DCP-compliant CVXPY term: a convex scalar ``expr`` and ``constraints`` it needs.

    ``constraints`` hold domain constraints and constraints on auxiliary variables that
    ``expr`` is partially minimised over (the term is exact inside a minimisation).
    """

    expr: object
    constraints: list


def _float_midpoint(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Midpoint of ``lo ≤ hi`` in the ordering of doubles (0 when the signs differ).

    Bisecting this way halves the number of doubles in the bracket, so it needs at most
    64 steps for any bracket, and it is geometric across magnitudes (e.g. [1e-300, 1]).
    """
    sign = np.where(hi <= 0, -1.0, 1.0)
    a, b = np.abs(lo).view(np.int64), np.abs(hi).view(np.int64)
    mid = ((a >> 1) + (b >> 1) + (a & b & 1)).view(np.float64)
    return np.where((lo < 0) & (hi > 0), 0.0, sign * mid)


def _monotone_root(evaluate, a, b, a_out=None, b_out=None, what: str = "root"):
    """Root of an increasing function g in the bracket ``[a, b]``, entrywise, vectorised.

    Requires g(a) ≤ 0 ≤ g(b) up to rounding, with ``a``, ``b`` finite and g finite on
    ``[a, b]``. Safeguarded Newton (when g' is given) or secant iteration: a step that leaves
    the current bracket or does not halve the previous step is replaced by bisection in the
    ordering of doubles (``_float_midpoint``), so the iteration always converges. It stops
    when |g| reaches its rounding level or the bracket is 2 ulp wide, i.e. at full double
    precision. Where g(a) ≥ 0 (g(b) ≤ 0) the result is ``a_out`` (``b_out``), by default
    the bracket end itself.

    Parameters
    ----------
    evaluate : callable
        ``evaluate(x) -> (g, slope, noise)`` elementwise on arrays of the bracket's shape:
        g(x), g'(x) (or ``None`` for secant steps) and the rounding error of g(x).
    a, b : array_like
        Bracket ends (broadcast together).
    a_out, b_out : array_like, optional
        Results where the root lies at or beyond ``a`` (``b``).
    what : str
        Names the problem in the error message.

    Raises
    ------
    SolverError
        If some entry has not converged after 400 iterations (not expected).
    """
    a, b = (np.array(z, dtype=np.float64) for z in np.broadcast_arrays(a, b))
    ga, gb = evaluate(a)[0], evaluate(b)[0]
    at_a = ga >= 0
    at_b = (gb <= 0) & ~at_a
    lo, hi = a, b
    with np.errstate(all="ignore"):
        x = lo - ga * (hi - lo) / (gb - ga)  # regula falsi start
    x = np.where((x > lo) & (x < hi), x, 0.5 * (lo + hi))
    x_prev, g_prev = lo, ga
    step_old = hi - lo
    done = at_a | at_b
    tiny = np.finfo(np.float64).smallest_subnormal
    eps = np.finfo(np.float64).eps
    for _ in range(400):
        gx, slope, noise = evaluate(x)
        lo = np.where(gx < 0, x, lo)
        hi = np.where(gx > 0, x, hi)
        with np.errstate(all="ignore"):
            if slope is None:
                slope = (gx - g_prev) / (x - x_prev)
            x_new = x - gx / slope
        inside = (x_new >= lo) & (x_new <= hi)
        converged = np.isfinite(gx) & (np.abs(gx) <= noise)
        bisect = ~((x_new > lo) & (x_new < hi)) | (np.abs(x_new - x) > 0.5 * step_old)
        x_new = np.where(converged, np.where(inside, x_new, x),
                         np.where(bisect, _float_midpoint(lo, hi), x_new))
        x_prev, g_prev, step_old = x, gx, np.abs(x_new - x)
        x = np.where(done, x, x_new)
        done |= converged | (hi - lo <= 2 * eps * np.abs(x) + tiny)
        if done.all():
            break
    else:
        raise SolverError(f"{what}: the safeguarded root finder did not converge")
    a_out = a if a_out is None else a_out
    b_out = b if b_out is None else b_out
    return np.where(at_a, a_out, np.where(at_b, b_out, x))


def _positive_step(t, shape: tuple, name: str, vector: bool) -> np.ndarray:
    """Validate a prox step ``t`` (finite, > 0, broadcastable to ``shape``); return it as array."""
    t = finite_array(t, f"prox step t of {name}")
    if (t <= 0).any():
        raise ValueError(
            f"prox step t of {name} must be > 0 (prox_{{tΨ}} needs t > 0), got "
            f"{describe_entries(t <= 0, t)}"
        )
    if vector and t.ndim and (t.ndim != len(shape) or t.shape[-1] != 1):
        raise ShapeError(
            f"{name} acts on vectors, so it needs one prox step per vector: t must be a scalar "
            f"or have shape {shape[:-1] + (1,)}, got {t.shape}"
        )
    try:
        ok = np.broadcast_shapes(t.shape, shape) == shape
    except ValueError:
        ok = False
    if not ok:
        raise ShapeError(f"prox step t of shape {t.shape} does not broadcast to v's shape {shape}")
    return t


def _parameter(value, what: str, activation: str) -> float:
    """``value`` as a float, or ``NotAdmissibleError`` if it is not a finite number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = np.nan
    if not np.isfinite(number):
        raise NotAdmissibleError(f"{activation}: {what} must be a finite number, got {value!r}")
    return number


def _li2(w: np.ndarray) -> np.ndarray:
    """Dilogarithm Li₂(w) for w ≤ 1, accurate in relative terms also for small |w|.

    Li₂(w) = spence(1 − w) in scipy's convention; for |w| ≤ ½ the power series
    Σ_{k≥1} w^k/k² (60 terms, error < 1e-19) avoids the rounding of 1 − w.
    """
    series = np.polynomial.polynomial.polyval(
        np.clip(w, -0.5, 0.5), np.r_[0.0, 1.0 / np.arange(1, 61) ** 2]
    )
    return np.where(np.abs(w) <= 0.5, series, spence(1.0 - w))


#: Radius |e| ≤ ¼ of the series below, where the closed forms of these O(e²) functions cancel.
_SERIES_RADIUS = 0.25
#: S(w) = Σ_k w^k/(2k + 3), w = z² ≤ 1/49: 10 terms leave a relative error below 1e-16.
_ATANH_TAIL = 1.0 / (2.0 * np.arange(10) + 3.0)
#: e^d − 1 − d = Σ_{k≥2} d^k/k!: terms k ≤ 14 leave a relative error below 1e-17 for |d| ≤ ¼.
_EXPM1_SERIES = 1.0 / np.cumprod(np.arange(1.0, 15.0))[1:]


def _horner(x: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
    """Σ_k c_k x^k by Horner's rule (in-place array arithmetic, faster than ``polyval``)."""
    result = np.full(x.shape, coefficients[-1])
    for c in coefficients[-2::-1]:
        result *= x
        result += c
    return result


def _log1p_tails(e: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(e − log(1 + e), (1 + e) log(1 + e) − e)`` for |e| ≤ ¼, with full relative precision
    (0 elsewhere, for np.where).

    With z = e/(2 + e), log(1 + e) = 2 artanh z = 2z + 2z³S(z²), S(w) = Σ_k w^k/(2k + 3), and
    e − 2z = ez, so e − log(1 + e) = ez − 2z³S and (1 + e) log(1 + e) − e = ez + 2(1 + e)z³S:
    the z³ parts are below 6% of ez, so nothing cancels.
    """
    e = np.where(np.abs(e) <= _SERIES_RADIUS, e, 0.0)
    z = e / (2 + e)
    ez = e * z
    tail = 2 * z * z * z * _horner(z * z, _ATANH_TAIL)
    return ez - tail, ez + (1 + e) * tail


def _expm1_excess(d: np.ndarray) -> np.ndarray:
    """e^d − 1 − d for |d| ≤ ¼ by its power series, full relative precision (0 elsewhere)."""
    d = np.where(np.abs(d) <= _SERIES_RADIUS, d, 0.0)
    return d * d * _horner(d, _EXPM1_SERIES)


def _two_difference(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(h, t)`` with h = fl(a − b) and h + t = a − b exactly (Knuth's two-sum)."""
    h = a - b
    v = h - a
    return h, (a - (h - v)) - (b + v)


def _kl_part(
    p: np.ndarray, s: np.ndarray, d: np.ndarray, log_s: Callable[[np.ndarray], np.ndarray]
) -> np.ndarray:
    """p log(p/s) − p + s ≥ 0, one term of a generalised KL divergence, without cancellation.

    ``d`` = p − s must be accurate in relative terms (it is the small quantity when p ≈ s).
    With e = d/s the term is s·h(e), h(e) = (1 + e) log(1 + e) − e = e²/2 − e³/6 + …: for
    |e| ≤ ¼ the series of ``_log1p_tails`` keeps the full relative precision, elsewhere
    p log(p/s) − d loses at most a factor ~20 of the rounding. Where p/s leaves the normal
    range (s underflows), log(p/s) = log p − log s with ``log_s(mask)``, log s on the entries
    of a boolean mask (finite also where s underflows to 0).
    """
    with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
        e = d / s
        ratio = p / s
        log_ratio = np.asarray(np.log(ratio))  # an array also for 0-d input (assigned below)
        abnormal = ~(np.isfinite(ratio) & (ratio >= np.finfo(np.float64).tiny)) & (p > 0)
        if abnormal.any():
            log_ratio[abnormal] = np.log(p[abnormal]) - log_s(abnormal)
        far = np.where(p > 0, p * log_ratio, 0.0) - d
    return np.where(np.abs(e) <= _SERIES_RADIUS, s * _log1p_tails(e)[1], far)


def _bernoulli_bregman(u: np.ndarray, z: np.ndarray, lo: float, width: float) -> np.ndarray:
    """KL((p, 1 − p) ‖ (σ(z), σ(−z))) with p = (u − lo)/width and σ the logistic function.

    The Sigmoid penalty B(y, x) is this with (u, z, lo, width) = (y, x, 0, 1), the Tanh
    penalty with (y, 2x, −1, 2). It is the sum of the two non-negative terms of ``_kl_part``,
    which need d = p − σ(z) accurate in relative terms. So σ(z) is split as c + w with c the
    nearest of 0, ½, 1 and w = σ(z), ½ tanh(z/2) or −σ(−z), accurate in relative terms, and
    d = ((u − lo − width·c) − width·w)/width, the first difference exact (two-sum). B then has
    full relative precision for the logistic value c + w, which is σ(z̃) with |z̃ − z| a few
    ulp of z: the rest of the error is the conditioning of B in x (∂B/∂x = σ(x) − y).
    """
    mid = np.abs(z) <= np.log(3.0)
    c = np.where(mid, 0.5, np.where(z > 0, 1.0, 0.0))
    w = np.where(mid, 0.5 * np.tanh(0.5 * z), np.copysign(expit(-np.abs(z)), -z))
    head, tail = _two_difference(u, lo + width * c)
    d = ((head - width * w) + tail) / width
    p, q = (u - lo) / width, (lo + width - u) / width
    return _kl_part(p, c + w, d, lambda mask: log_expit(z[mask])) + _kl_part(
        q, (1 - c) - w, -d, lambda mask: log_expit(-z[mask])
    )


class Activation(ABC):
    """An admissible activation σ = prox_Ψ (abstract base).

    Attributes
    ----------
    name : str
        Short name for messages, e.g. ``"LeakyReLU(slope=0.1)"``.
    is_vector : bool
        True when σ acts on vectors along the last axis (``Softmax``, ``Sparsemax``).
    domain : Interval or Simplex
        dom Ψ: an interval, entrywise; for vector activations the unit :class:`Simplex` (whose
        ``lo``, ``hi`` are the entrywise bounds [0, 1]).
    range : Interval
        The range of σ (entrywise).

    Notes
    -----
    Subclasses set ``name``, ``domain``, ``range`` and implement

    - ``_psi(u)``: Ψ on points of the domain (the public methods validate and put +inf
      off the domain);
    - ``sigma_inv(u)`` = ∇Φ = id + Ψ' on the interior of the range, and optionally
      ``sigma_inv_grad(u)`` = (σ⁻¹)'; with only these, ``prox``/``prox_scaled`` come from the
      generic root finder in u and ``phi_conj`` from Fenchel–Young, Φ*(x) = xσ(x) − Φ(σ(x));
    - optionally ``_prox(x)`` = σ(x) in closed form (with ``sigma_inv_grad`` the generic
      prox then runs Newton in x, which is faster and better conditioned).

    Closed forms override ``_prox_scaled``, ``_phi_conj``, ``_bregman_terms``, ``psi_conj``,
    ``cvx_phi``, ``cvx_phi_conj`` and ``sympy_psi``. The private hooks receive validated
    float arrays (``_prox_scaled``: ``v`` and ``t`` broadcastable to ``v``'s shape).
    """

    name: str
    is_vector: bool = False
    domain: Interval | Simplex | Box
    range: Interval | Box

    # ------------------------------------------------------------------ construction
    # The derivation (bregmod.derivation: sympy) does not import this module; it is imported
    # here, when first used, so that importing bregmod does not import sympy.
    @classmethod
    def from_psi(cls, expr, var="u", domain=None, **options) -> SymbolicActivation:
        """Activation σ = prox_Ψ from a formula for Ψ: the :class:`SymbolicActivation` of
        :func:`bregmod.derivation.derive_from_psi` (arguments, defaults and errors as
        :func:`bregmod.symbolic.activation_from_psi`)."""
        from bregmod.derivation import derive_from_psi

        return SymbolicActivation(derive_from_psi(expr, var, domain, **options))

    @classmethod
    def from_sigma(cls, expr, var="x", **options) -> SymbolicActivation:
        """Activation from a formula for σ: the :class:`SymbolicActivation` of
        :func:`bregmod.derivation.derive_from_sigma` (arguments, defaults and errors as
        :func:`bregmod.symbolic.activation_from_sigma`)."""
        from bregmod.derivation import derive_from_sigma

        return SymbolicActivation(derive_from_sigma(expr, var, **options))

    def __repr__(self) -> str:
        return self.name

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.name == self.name

    def __hash__(self) -> int:
        return hash((type(self), self.name))

    # ------------------------------------------------------------------ validation
    def _array(self, x, what: str) -> np.ndarray:
        """``x`` as a finite float array (``ValueError`` naming the activation otherwise)."""
        x = finite_array(x, f"{what} of {self.name}")
        if self.is_vector and x.ndim == 0:
            raise ShapeError(f"{self.name} acts on vectors along the last axis; {what} is a scalar")
        return x

    def _in_domain(self, u: np.ndarray) -> np.ndarray:
        """Boolean mask of entries (per vector for vector activations) in dom Ψ."""
        return self.domain.contains(u)

    def check_domain(self, y, what: str = "y") -> np.ndarray:
        """Raise ``DomainError`` if some entry of ``y`` lies outside dom Ψ; return ``y``.

        Parameters
        ----------
        y : array_like
            Values to check (finite).
        what : str
            What ``y`` is, used in the message.

        Raises
        ------
        DomainError
            Naming the activation, ``what``, the domain, and the offending entries.
        """
        y = self._array(y, what)
        inside = self._in_domain(y)
        if not inside.all():
            raise DomainError(
                f"{what} is outside the domain {self.domain} of Ψ for {self.name} "
                f"(B_Ψ(y, x) = +inf there): {describe_entries(~inside, y)}"
            )
        return y

    def _pair(self, y, x) -> tuple[np.ndarray, np.ndarray]:
        """Validated, broadcast ``(y, x)`` for the Bregman functions."""
        y = self.check_domain(y, "y")
        x = self._array(x, "x")
        try:
            y, x = np.broadcast_arrays(y, x)
        except ValueError:
            raise ShapeError(
                f"y of shape {y.shape} and x of shape {x.shape} do not broadcast ({self.name})"
            ) from None
        return y, x

    # ------------------------------------------------------------------ σ and Ψ
    def prox(self, x) -> np.ndarray:
        """σ(x) = prox_Ψ(x), vectorised (same shape as ``x``)."""
        return self._prox(self._array(x, "x"))

    def _prox(self, x: np.ndarray) -> np.ndarray:
        # Without a closed form, σ(x) = prox_Ψ(x) comes from σ⁻¹ (root finding in u).
        return self._prox_scaled_in_u(x, np.ones(x.shape))

    def sigma_inv(self, u) -> np.ndarray:
        """σ⁻¹(u) = ∇Φ(u) = u + Ψ'(u) on the interior of the range of σ.

        Raises
        ------
        NotImplementedError
            When the activation has no closed form (vector activations).
        """
        raise NotImplementedError(f"{self.name} has no closed-form inverse σ⁻¹")

    def sigma_inv_grad(self, u) -> np.ndarray:
        """(σ⁻¹)'(u) = 1 + Ψ''(u) on the interior of the range (optional).

        When a subclass provides it, the generic ``prox_scaled`` takes Newton steps (in x
        when σ has a closed form, else in u); otherwise secant steps in u.

        Raises
        ------
        NotImplementedError
            When not provided.
        """
        raise NotImplementedError(f"{self.name} has no closed-form derivative of σ⁻¹")

    def prox_scaled(self, v, t) -> np.ndarray:
        """prox_{tΨ}(v) = argmin_u ½(u − v)² + tΨ(u), for t > 0 (scalar or broadcastable).

        The optimality condition u − v + tΨ'(u) = 0 with Ψ' = σ⁻¹ − id reads

            (1 − t) u + t σ⁻¹(u) = v,   equivalently   t x + (1 − t) σ(x) = v,  u = σ(x).

        Generic method (closed forms override it): with σ and ``sigma_inv_grad`` available,
        Newton in x, where the left side has slope t + (1 − t)σ'(x) ∈ [min(t, 1), max(t, 1)],
        so |x − x₀| ≤ |residual(x₀)|/min(t, 1) brackets the root; otherwise (σ known only
        through σ⁻¹, e.g. symbolic activations) in u on the range of σ, where the left side is
        increasing and the root lies between any interior point c and v − tΨ'(c). Both run a
        safeguarded Newton/secant iteration with bisection fallback to full double precision.
        For vector activations ``t`` needs a trailing axis of length 1 (one step per vector).
        """
        v = self._array(v, "v")
        t = _positive_step(t, v.shape, self.name, self.is_vector)
        return self._prox_scaled(v, t)

    def prox_phi(self, v, t) -> np.ndarray:
        """prox_{tΦ}(v) for Φ = ½‖·‖² + Ψ, t > 0:  prox_{tΦ}(v) = prox_{t/(1+t) Ψ}(v/(1 + t)).

        (The optimality condition (1 + t) u − v + t∂Ψ(u) ∋ 0 is that of prox_{t/(1+t)Ψ} at
        v/(1 + t).) ``t`` as in :meth:`prox_scaled`.
        """
        t = np.asarray(t, dtype=np.float64)
        return self.prox_scaled(np.asarray(v) / (1 + t), t / (1 + t))

    def prox_phi_conj(self, x, t) -> np.ndarray:
        """prox_{tΦ*}(x) by the Moreau identity: x − t prox_{Φ/t}(x/t), t > 0.

        With :meth:`prox_phi` at step 1/t, prox_{Φ/t}(x/t) = prox_{Ψ/(1+t)}(x/(1 + t)), so
        prox_{tΦ*}(x) = x − t prox_{Ψ/(1+t)}(x/(1 + t)): σ's scaled prox only, never Φ*.
        """
        x = self._array(x, "x")
        return self._prox_phi_conj(x, _positive_step(t, x.shape, self.name, self.is_vector))

    def _prox_phi_conj(self, x: np.ndarray, t) -> np.ndarray:
        """prox_{tΦ*}(x) = x − t prox_{Ψ/(1+t)}(x/(1 + t)) without validation: the kernel of
        :meth:`prox_phi_conj`, also run by the solvers' loops on their (validated, float64)
        state (``t`` > 0, a scalar or broadcastable to ``x``)."""
        return x - t * self._prox_scaled(x / (1 + t), 1 / (1 + t))

    def project_domain(self, y) -> np.ndarray:
        """The nearest point of dom Ψ (entrywise clip to the interval; per vector the
        Euclidean projection onto the simplex for vector activations)."""
        return self.domain.project(self._array(y, "y"))

    def _has_sigma_inv_grad(self) -> bool:
        return type(self).sigma_inv_grad is not Activation.sigma_inv_grad

    def _prox_scaled(self, v: np.ndarray, t: np.ndarray) -> np.ndarray:
        v, t = np.broadcast_arrays(v, t)
        if self._has_sigma_inv_grad() and type(self)._prox is not Activation._prox:
            return self._prox_scaled_in_x(v, t)
        return self._prox_scaled_in_u(v, t)

    def _prox_scaled_in_x(self, v: np.ndarray, t: np.ndarray) -> np.ndarray:
        eps = np.finfo(np.float64).eps

        def evaluate(x):
            s = self._prox(x)
            with np.errstate(divide="ignore", over="ignore"):  # σ' → 0 where σ saturates
                slope = t + (1 - t) / self.sigma_inv_grad(s)
            terms = (t * x, (1 - t) * s, -v)
            return sum(terms), slope, 4 * eps * sum(np.abs(z) for z in terms)

        w = v - evaluate(v)[0] / np.minimum(t, 1.0)
        x = _monotone_root(evaluate, np.minimum(v, w), np.maximum(v, w),
                           what=f"prox_scaled of {self.name}")
        return self._prox(x)

    def _prox_scaled_in_u(self, v: np.ndarray, t: np.ndarray) -> np.ndarray:
        has_grad = self._has_sigma_inv_grad()
        rng = self.range
        c = rng.interior_point()
        w = v - t * (self.sigma_inv(c) - c)
        lo = np.nextafter(rng.lo, np.inf) if np.isfinite(rng.lo) else -np.inf
        hi = np.nextafter(rng.hi, -np.inf) if np.isfinite(rng.hi) else np.inf
        a = np.clip(np.minimum(c, w), lo, hi)
        b = np.clip(np.maximum(c, w), lo, hi)
        eps = np.finfo(np.float64).eps

        def evaluate(u):
            with np.errstate(over="ignore", divide="ignore"):  # steep σ⁻¹ near range ends
                terms = (u, -v, t * self.sigma_inv(u), -t * u)
                slope = 1 + t * (self.sigma_inv_grad(u) - 1) if has_grad else None
            return sum(terms), slope, 4 * eps * sum(np.abs(z) for z in terms)

        # A root beyond the last interior float lies on the end of the range (if closed).
        a_out = np.where(a == lo, rng.lo, a) if rng.lo_closed else a
        b_out = np.where(b == hi, rng.hi, b) if rng.hi_closed else b
        return _monotone_root(evaluate, a, b, a_out, b_out, f"prox_scaled of {self.name}")

    def psi(self, u) -> np.ndarray:
        """Ψ(u) entrywise, +inf off the domain; vector activations: one value per vector."""
        u = self._array(u, "u")
        inside = self._in_domain(u)
        safe = np.where(inside[..., None] if self.is_vector else inside, u, self._safe_point(u))
        return np.where(inside, self._psi(safe), np.inf)

    def _safe_point(self, u: np.ndarray) -> np.ndarray:
        """A point of dom Ψ replacing entries outside it before evaluating formulas."""
        return np.full(u.shape, self.domain.interior_point())

    @abstractmethod
    def _psi(self, u: np.ndarray) -> np.ndarray:
        """Ψ(u) for ``u`` in the domain (reduced over the last axis for vector activations)."""

    def _half_sq(self, u: np.ndarray) -> np.ndarray:
        """½‖u‖² entrywise, or per vector for vector activations."""
        sq = 0.5 * u * u
        return sq.sum(axis=-1) if self.is_vector else sq

    def phi(self, u) -> np.ndarray:
        """Φ(u) = ½u² + Ψ(u) (same conventions as ``psi``)."""
        u = self._array(u, "u")
        return self._half_sq(u) + self.psi(u)

    def phi_conj(self, x) -> np.ndarray:
        """Φ*(x) = sup_u xu − Φ(u) = ½x² − env_Ψ(x) (same conventions as ``psi``)."""
        return self._phi_conj(self._array(x, "x"))

    def _phi_conj(self, x: np.ndarray) -> np.ndarray:
        # Fenchel–Young with equality: Φ*(x) = ⟨x, σ(x)⟩ − Φ(σ(x)).
        s = self._prox(x)
        xs = x * s
        return (xs.sum(axis=-1) if self.is_vector else xs) - self._half_sq(s) - self._psi(s)

    def psi_conj(self, v) -> np.ndarray:
        """Ψ*(v) = sup_u vu − Ψ(u), where a closed form exists (+inf off its domain).

        Raises
        ------
        NotImplementedError
            When no closed form is implemented.
        """
        raise NotImplementedError(f"{self.name} has no closed-form Ψ*")

    # ------------------------------------------------------------------ Bregman penalty
    def bregman_terms(self, y, x) -> np.ndarray:
        """Entrywise (per-vector) terms of B_Ψ(y, x) = Φ(y) + Φ*(x) − ⟨y, x⟩, computed stably.

        Raises
        ------
        DomainError
            If some entry of ``y`` is outside dom Ψ (B_Ψ = +inf there).
        OverflowError
            If a term exceeds the double range (e.g. Asinh with |y − asinh x| > 709).
        """
        y, x = self._pair(y, x)
        # B ≥ 0 exactly; clamp rounding noise of size eps·|terms| below 0.
        with np.errstate(over="ignore"):
            terms = np.maximum(self._bregman_terms(y, x), 0.0)
        overflow = ~np.isfinite(terms)
        if overflow.any():
            raise OverflowError(
                f"B_Ψ(y, x) of {self.name} exceeds the double range at "
                f"{describe_entries(overflow, y)} (values of y shown)"
            )
        return terms

    def _bregman_terms(self, y: np.ndarray, x: np.ndarray) -> np.ndarray:
        # With s = σ(x) and x − s ∈ ∂Ψ(s):
        # B = ½(y − s)² + [Ψ(y) − Ψ(s) − (x − s)(y − s)]; both parts are ≥ 0.
        s = self._prox(x)
        d = y - s
        cross = (x - s) * d
        if self.is_vector:
            cross = cross.sum(axis=-1)
        return self._half_sq(d) + (self._psi(y) - self._psi(s) - cross)

    def bregman(self, y, x) -> float:
        """Σ B_Ψ(y, x) over all entries (see ``bregman_terms``)."""
        return float(np.sum(self.bregman_terms(y, x)))

    def bregman_grad(self, y, x) -> np.ndarray:
        """∇ₓ B_Ψ(y, x) = σ(x) − y (no σ' needed)."""
        y, x = self._pair(y, x)
        return self._prox(x) - y

    # ------------------------------------------------------------------ CVXPY and sympy
    def cvx_psi(self, y) -> DCPTerm:
        """DCP term for Σ Ψ(y) alone of a CVXPY expression ``y`` (domain as constraints).

        Only some activations have one: for tanh, sigmoid, softmax, … Ψ = Φ − ½u² is a
        difference of convex functions, and only Φ has a DCP form (see ``cvx_phi``).

        Raises
        ------
        NoDCPFormError
            When Ψ alone has no DCP form.
        """
        raise NoDCPFormError(f"{self.name}: Ψ alone has no DCP form in CVXPY (Φ may have one)")

    def cvx_phi(self, y) -> DCPTerm:
        """DCP term for Σ Φ(y) = ½‖y‖² + Σ Ψ(y) of a CVXPY expression ``y`` (with domain
        constraints); by default built from ``cvx_psi``.

        Raises
        ------
        NoDCPFormError
            When Φ has no DCP form.
        """
        import cvxpy as cp

        try:
            psi = self.cvx_psi(y)
        except NoDCPFormError:
            raise NoDCPFormError(f"{self.name}: Φ has no DCP form in CVXPY") from None
        return DCPTerm(0.5 * cp.sum_squares(y) + psi.expr, psi.constraints)

    def cvx_phi_conj(self, x) -> DCPTerm:
        """DCP term for Σ Φ*(x) of a CVXPY expression ``x`` (aux variables in constraints).

        Raises
        ------
        NoDCPFormError
            When Φ* has no DCP form.
        """
        raise NoDCPFormError(f"{self.name}: Φ* has no DCP form in CVXPY")

    def sympy_psi(self, u):
        """``(expr, domain)``: Ψ as a sympy expression in the symbol ``u`` and dom Ψ as a set.

        Raises
        ------
        NotImplementedError
            For vector activations.
        """
        raise NotImplementedError(f"{self.name} has no scalar sympy form of Ψ")


class Identity(Activation):
    """σ(x) = x: Ψ = 0, Φ*(x) = x²/2, B(y, x) = ½(y − x)²."""

    name = "Identity"
    domain = Interval(-np.inf, np.inf)
    range = Interval(-np.inf, np.inf)

    def _prox(self, x):
        return x.copy()

    def sigma_inv(self, u):
        return np.asarray(u, dtype=np.float64)

    def _prox_scaled(self, v, t):
        return v.copy()

    def _psi(self, u):
        return np.zeros(u.shape)

    def _phi_conj(self, x):
        return 0.5 * x * x

    def psi_conj(self, v):
        v = self._array(v, "v")
        return np.where(v == 0, 0.0, np.inf)

    def _bregman_terms(self, y, x):
        return 0.5 * (y - x) ** 2

    def cvx_psi(self, y):
        import cvxpy as cp

        return DCPTerm(cp.Constant(0.0), [])

    def cvx_phi_conj(self, x):
        import cvxpy as cp

        return DCPTerm(0.5 * cp.sum_squares(x), [])

    def sympy_psi(self, u):
        import sympy as sp

        return sp.Integer(0), sp.S.Reals


class ReLU(Activation):
    """σ(x) = max(x, 0): Ψ = ι_{u ≥ 0}, Φ*(x) = ½ max(x, 0)².

    B(y, x) = ½(y − s)² + max(−x, 0) y with s = max(x, 0) (two non-negative terms).
    """

    name = "ReLU"
    domain = Interval(0.0, np.inf)
    range = Interval(0.0, np.inf)

    def _prox(self, x):
        return np.maximum(x, 0.0)

    def sigma_inv(self, u):
        return np.asarray(u, dtype=np.float64)

    def _prox_scaled(self, v, t):
        return np.maximum(v, 0.0)

    def _psi(self, u):
        return np.zeros(u.shape)

    def _phi_conj(self, x):
        return 0.5 * np.maximum(x, 0.0) ** 2

    def psi_conj(self, v):
        v = self._array(v, "v")
        return np.where(v <= 0, 0.0, np.inf)

    def _bregman_terms(self, y, x):
        return 0.5 * (y - np.maximum(x, 0.0)) ** 2 + np.maximum(-x, 0.0) * y

    def cvx_psi(self, y):
        import cvxpy as cp

        return DCPTerm(cp.Constant(0.0), [y >= 0])

    def cvx_phi_conj(self, x):
        import cvxpy as cp

        return DCPTerm(0.5 * cp.sum_squares(cp.pos(x)), [])

    def sympy_psi(self, u):
        import sympy as sp

        return sp.Integer(0), sp.Interval(0, sp.oo)


class LeakyReLU(Activation):
    """σ(x) = x for x ≥ 0, a x for x < 0, with slope a ∈ (0, 1].

    Ψ(u) = (1/a − 1) u²/2 for u < 0 (0 otherwise), Φ*(x) = ½x₊² + (a/2) x₋², and
    B(y, x) = ½(y₊ − x₊)² + (y₋ − a x₋)²/(2a) + x₊y₋ + x₋y₊ (x₊ = max(x, 0),
    x₋ = max(−x, 0)): four non-negative terms, no cancellation.

    Raises
    ------
    NotAdmissibleError
        Unless 0 < slope ≤ 1.
    """

    domain = Interval(-np.inf, np.inf)
    range = Interval(-np.inf, np.inf)

    def __init__(self, slope: float = 0.01) -> None:
        self.slope = _parameter(slope, "slope", "LeakyReLU")
        if self.slope > 1:
            raise NotAdmissibleError(
                f"LeakyReLU: slope {self.slope!r} > 1 makes σ expansive, so it is not a "
                "proximal map (prox maps are 1-Lipschitz); use 0 < slope ≤ 1"
            )
        if self.slope <= 0:
            raise NotAdmissibleError(
                f"LeakyReLU: slope {self.slope!r} ≤ 0 gives Ψ = +inf or a decreasing σ, which "
                "is not a proximal map; use 0 < slope ≤ 1 (or ReLU for slope 0)"
            )
        self.name = f"LeakyReLU(slope={self.slope!r})"
        self._curvature = 1.0 / self.slope - 1.0  # Ψ(u) = curvature·u²/2 for u < 0

    def _prox(self, x):
        return np.where(x >= 0, x, self.slope * x)

    def sigma_inv(self, u):
        u = np.asarray(u, dtype=np.float64)
        return np.where(u >= 0, u, u / self.slope)

    def _prox_scaled(self, v, t):
        return np.where(v >= 0, v, v / (1.0 + t * self._curvature))

    def _psi(self, u):
        return 0.5 * self._curvature * np.minimum(u, 0.0) ** 2

    def _phi_conj(self, x):
        return 0.5 * np.maximum(x, 0.0) ** 2 + 0.5 * self.slope * np.minimum(x, 0.0) ** 2

    def psi_conj(self, v):
        """Ψ*(v) = v²/(2(1/a − 1)) for v ≤ 0, +inf for v > 0 (a = 1: ι_{0})."""
        v = self._array(v, "v")
        if self._curvature == 0:
            return np.where(v == 0, 0.0, np.inf)
        return np.where(v <= 0, 0.5 * v * v / self._curvature, np.inf)

    def _bregman_terms(self, y, x):
        a = self.slope
        yp, ym = np.maximum(y, 0.0), np.maximum(-y, 0.0)
        xp, xm = np.maximum(x, 0.0), np.maximum(-x, 0.0)
        return 0.5 * (yp - xp) ** 2 + 0.5 * (ym - a * xm) ** 2 / a + xp * ym + xm * yp

    def cvx_psi(self, y):
        import cvxpy as cp

        return DCPTerm(0.5 * (1.0 / self.slope - 1.0) * cp.sum_squares(cp.neg(y)), [])

    def cvx_phi_conj(self, x):
        import cvxpy as cp

        return DCPTerm(
            0.5 * cp.sum_squares(cp.pos(x)) + 0.5 * self.slope * cp.sum_squares(cp.neg(x)), []
        )

    def sympy_psi(self, u):
        import sympy as sp

        c = 1 / sp.Float(self.slope) - 1
        return sp.Piecewise((c * u**2 / 2, u < 0), (0, True)), sp.S.Reals


class SoftThreshold(Activation):
    """σ(x) = sign(x) max(|x| − θ, 0): Ψ(u) = θ|u|, Φ*(x) = ½ max(|x| − θ, 0)².

    Raises
    ------
    NotAdmissibleError
        If θ < 0 (then σ jumps at 0 and is not a proximal map).
    """

    domain = Interval(-np.inf, np.inf)
    range = Interval(-np.inf, np.inf)

    def __init__(self, threshold: float = 1.0) -> None:
        self.threshold = _parameter(threshold, "threshold", "SoftThreshold")
        if self.threshold < 0:
            raise NotAdmissibleError(
                f"SoftThreshold: threshold {self.threshold!r} < 0 makes σ discontinuous at 0 "
                "(it jumps by 2|θ|), so it is not a proximal map; use threshold ≥ 0"
            )
        self.name = f"SoftThreshold(threshold={self.threshold!r})"

    def _prox(self, x):
        return self._prox_scaled(x, np.ones(()))

    def sigma_inv(self, u):
        u = np.asarray(u, dtype=np.float64)
        return u + self.threshold * np.sign(u)

    def _prox_scaled(self, v, t):
        return np.sign(v) * np.maximum(np.abs(v) - t * self.threshold, 0.0)

    def _psi(self, u):
        return self.threshold * np.abs(u)

    def _phi_conj(self, x):
        return 0.5 * np.maximum(np.abs(x) - self.threshold, 0.0) ** 2

    def psi_conj(self, v):
        """Ψ*(v) = ι_{|v| ≤ θ}(v)."""
        v = self._array(v, "v")
        return np.where(np.abs(v) <= self.threshold, 0.0, np.inf)

    def cvx_psi(self, y):
        import cvxpy as cp

        return DCPTerm(self.threshold * cp.sum(cp.abs(y)), [])

    def cvx_phi_conj(self, x):
        import cvxpy as cp

        return DCPTerm(0.5 * cp.sum_squares(cp.pos(cp.abs(x) - self.threshold)), [])

    def sympy_psi(self, u):
        import sympy as sp

        return sp.Float(self.threshold) * sp.Abs(u), sp.S.Reals


class _ClipMaps:
    """σ = clip to [lo, hi], Ψ = ι_[lo, hi]: the maps of :class:`Clip` (scalar bounds) and
    :class:`ClipBox` (per-entry bounds), which set ``lo`` and ``hi``."""

    lo: float | np.ndarray
    hi: float | np.ndarray

    def _prox(self, x):
        return np.clip(x, self.lo, self.hi)

    def sigma_inv(self, u):
        return np.asarray(u, dtype=np.float64)

    def _prox_scaled(self, v, t):
        return np.clip(v, self.lo, self.hi)

    def _psi(self, u):
        return np.zeros(u.shape)


class Clip(_ClipMaps, Activation):
    """σ(x) = min(max(x, lo), hi) (hard tanh for [−1, 1]): Ψ = ι_[lo, hi].

    Φ*(x) = x s − ½ s² with s = σ(x), i.e. ½x² − ½ dist(x, [lo, hi])²; Ψ*(v) = max(lo v, hi v).

    Raises
    ------
    NotAdmissibleError
        If a bound is not finite or lo > hi (then Ψ is not proper).
    """

    def __init__(self, lo: float = -1.0, hi: float = 1.0) -> None:
        self.lo = _parameter(lo, "lo", "Clip")
        self.hi = _parameter(hi, "hi", "Clip")
        if self.lo > self.hi:
            raise NotAdmissibleError(
                f"Clip: lo {self.lo!r} > hi {self.hi!r} makes [lo, hi] empty, so "
                "Ψ = ι_[lo, hi] is not proper; use lo ≤ hi"
            )
        self.name = f"Clip(lo={self.lo!r}, hi={self.hi!r})"
        self.domain = self.range = Interval(self.lo, self.hi)

    def psi_conj(self, v):
        """Ψ*(v) = max(lo v, hi v), the support function of [lo, hi]."""
        v = self._array(v, "v")
        return np.maximum(self.lo * v, self.hi * v)

    def cvx_psi(self, y):
        import cvxpy as cp

        return DCPTerm(cp.Constant(0.0), [y >= self.lo, y <= self.hi])

    def cvx_phi_conj(self, x):
        # Φ*(x) = c x − c²/2 + ½ huber_r(x − c) with c the centre and r the radius, where
        # cvxpy's huber_r(z) = z² (|z| ≤ r), 2r|z| − r² (|z| > r).
        import cvxpy as cp

        c, r = 0.5 * (self.lo + self.hi), 0.5 * (self.hi - self.lo)
        return DCPTerm(cp.sum(c * x - 0.5 * c * c + 0.5 * cp.huber(x - c, r)), [])

    def sympy_psi(self, u):
        import sympy as sp

        return sp.Integer(0), sp.Interval(sp.Float(self.lo), sp.Float(self.hi))


class ClipBox(_ClipMaps, Activation):
    """σ(x) = min(max(x, lo), hi) entrywise with one bound pair per entry of the state: Ψ = ι_B,
    B = [lo_1, hi_1] × … × [lo_n, hi_n] (``Clip`` with per-entry bounds).

    Infinite bounds are allowed (lo_i = −∞, hi_i = +∞ makes σ the identity on entry i, Ψ = 0
    there), so one layer can clip part of its state and carry the rest unchanged — the
    unrolled dual forward–backward layer (u, z) ↦ (clip_{[−λ, λ]}(A u + τ L z), z) of
    `bregmod.unfolded`. Φ*(x) = ½‖x‖² − ½ dist(x, B)²; B_Ψ(y, x) = +∞ unless y ∈ B. The
    activation acts on the last axis, whose length must be n.

    Parameters
    ----------
    lo, hi : array_like, shape (n,)
        The bounds, lo ≤ hi, lo_i < +∞ and hi_i > −∞ (no NaN).

    Raises
    ------
    NotAdmissibleError
        Bounds that leave an entry's interval empty (lo_i > hi_i, lo_i = +∞ or hi_i = −∞).
    ShapeError
        ``lo`` and ``hi`` are not 1-D of the same length.
    """

    def __init__(self, lo, hi) -> None:
        lo, hi = np.array(lo, dtype=np.float64), np.array(hi, dtype=np.float64)
        if lo.ndim != 1 or lo.shape != hi.shape or lo.size == 0:
            raise ShapeError(
                f"ClipBox: lo and hi must be 1-D arrays of the same length n ≥ 1, got shapes "
                f"{lo.shape} and {hi.shape}"
            )
        if np.isnan(lo).any() or np.isnan(hi).any():
            raise ValueError("ClipBox: the bounds contain NaN")
        empty = (lo > hi) | (lo == np.inf) | (hi == -np.inf)
        if empty.any():
            raise NotAdmissibleError(
                f"ClipBox: the interval of entry {int(np.flatnonzero(empty)[0])} is empty "
                "(lo > hi or an infinite bound on the wrong side), so Ψ is not proper"
            )
        lo.flags.writeable = hi.flags.writeable = False
        self.lo, self.hi = lo, hi
        digest = hashlib.sha256(lo.tobytes() + hi.tobytes()).hexdigest()[:12]
        self.name = f"ClipBox(n={lo.size}, bounds sha256 {digest})"
        self.domain = self.range = Box(lo, hi)

    def _array(self, x, what: str) -> np.ndarray:
        x = super()._array(x, what)
        if x.ndim == 0 or x.shape[-1] != self.lo.size:
            raise ShapeError(
                f"{self.name} acts on states of {self.lo.size} entries along the last axis; "
                f"{what} has shape {x.shape}"
            )
        return x

    def _safe_point(self, u: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.clip(0.0, self.lo, self.hi), u.shape).copy()


class Tanh(Activation):
    """σ = tanh: Ψ(u) = ½(1 + u) log(1 + u) + ½(1 − u) log(1 − u) − u²/2 on [−1, 1].

    Φ*(x) = log cosh x. With p = (1 + y)/2 the penalty is the sigmoid one at 2x:
    B(y, x) = KL((p, 1 − p) ‖ (σ_logistic(2x), σ_logistic(−2x))).
    """

    name = "Tanh"
    domain = Interval(-1.0, 1.0)
    range = Interval(-1.0, 1.0, False, False)

    def _prox(self, x):
        return np.tanh(x)

    def sigma_inv(self, u):
        return np.arctanh(u)

    def sigma_inv_grad(self, u):
        u = np.asarray(u, dtype=np.float64)
        return 1 / ((1 - u) * (1 + u))

    def _psi(self, u):
        return 0.5 * (xlogy(1 + u, 1 + u) + xlogy(1 - u, 1 - u)) - 0.5 * u * u

    def _phi_conj(self, x):
        return np.logaddexp(x, -x) - np.log(2.0)

    def _bregman_terms(self, y, x):
        return _bernoulli_bregman(y, 2 * x, -1.0, 2.0)

    def cvx_phi(self, y):
        import cvxpy as cp

        return DCPTerm(-0.5 * cp.sum(cp.entr(1 + y) + cp.entr(1 - y)), [])

    def cvx_phi_conj(self, x):
        # log cosh x = log(1 + e^{2x}) − x − log 2
        import cvxpy as cp

        return DCPTerm(cp.sum(cp.logistic(2 * x) - x) - x.size * np.log(2.0), [])

    def sympy_psi(self, u):
        import sympy as sp

        expr = (1 + u) * sp.log(1 + u) / 2 + (1 - u) * sp.log(1 - u) / 2 - u**2 / 2
        return expr, sp.Interval(-1, 1)


class Sigmoid(Activation):
    """σ(x) = 1/(1 + e^{−x}): Ψ(u) = u log u + (1 − u) log(1 − u) − u²/2 on [0, 1].

    Φ*(x) = log(1 + e^x) and B(y, x) = KL((y, 1 − y) ‖ (σ(x), 1 − σ(x))).
    """

    name = "Sigmoid"
    domain = Interval(0.0, 1.0)
    range = Interval(0.0, 1.0, False, False)

    def _prox(self, x):
        return expit(x)

    def sigma_inv(self, u):
        u = np.asarray(u, dtype=np.float64)
        return np.log(u) - np.log1p(-u)

    def sigma_inv_grad(self, u):
        u = np.asarray(u, dtype=np.float64)
        return 1 / (u * (1 - u))

    def _psi(self, u):
        return xlogy(u, u) + xlogy(1 - u, 1 - u) - 0.5 * u * u

    def _phi_conj(self, x):
        return np.logaddexp(0.0, x)

    def _bregman_terms(self, y, x):
        return _bernoulli_bregman(y, x, 0.0, 1.0)

    def cvx_phi(self, y):
        import cvxpy as cp

        return DCPTerm(-cp.sum(cp.entr(y) + cp.entr(1 - y)), [])

    def cvx_phi_conj(self, x):
        import cvxpy as cp

        return DCPTerm(cp.sum(cp.logistic(x)), [])

    def sympy_psi(self, u):
        import sympy as sp

        return u * sp.log(u) + (1 - u) * sp.log(1 - u) - u**2 / 2, sp.Interval(0, 1)


class ELU(Activation):
    """σ(x) = x (x > 0), α(e^x − 1) (x ≤ 0), with α ∈ (0, 1].

    Ψ(u) = (u + α) log(1 + u/α) − u − u²/2 on [−α, 0], 0 for u > 0 (dom Ψ = [−α, ∞): Ψ is
    finite at −α, so lower semicontinuity puts −α in the domain; the range of σ is (−α, ∞)).
    Φ*(x) = x²/2 (x > 0), α(e^x − 1 − x) (x ≤ 0). For x, y ≤ 0 the penalty is the generalised
    KL divergence B = p log(p/q) − p + q with p = y + α, q = α e^x.

    Raises
    ------
    NotAdmissibleError
        Unless 0 < α ≤ 1.
    """

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = _parameter(alpha, "alpha", "ELU")
        if self.alpha > 1:
            raise NotAdmissibleError(
                f"ELU: alpha {self.alpha!r} > 1 makes σ'(0⁻) = alpha > 1, so σ is expansive "
                "and not a proximal map; use 0 < alpha ≤ 1"
            )
        if self.alpha <= 0:
            raise NotAdmissibleError(
                f"ELU: alpha {self.alpha!r} ≤ 0 makes σ non-increasing or ReLU; use "
                "0 < alpha ≤ 1 (or ReLU)"
            )
        self.name = f"ELU(alpha={self.alpha!r})"
        self.domain = Interval(-self.alpha, np.inf)
        self.range = Interval(-self.alpha, np.inf, False, False)

    def _prox(self, x):
        return np.where(x > 0, x, self.alpha * np.expm1(np.minimum(x, 0.0)))

    def sigma_inv(self, u):
        u = np.asarray(u, dtype=np.float64)
        return np.where(u > 0, u, np.log1p(np.minimum(u, 0.0) / self.alpha))

    def sigma_inv_grad(self, u):
        u = np.asarray(u, dtype=np.float64)
        return np.where(u > 0, 1.0, 1 / (np.minimum(u, 0.0) + self.alpha))

    def _psi(self, u):
        un = np.minimum(u, 0.0)
        return xlog1py(un + self.alpha, un / self.alpha) - un - 0.5 * un * un

    def _phi_conj(self, x):
        xn = np.minimum(x, 0.0)
        return np.where(x > 0, 0.5 * x * x, self.alpha * (np.expm1(xn) - xn))

    def _bregman_terms(self, y, x):
        # For x, y ≤ 0: B = p log(p/q) − p + q (``_kl_part``), which needs d = y − σ(x) = p − q
        # accurate in relative terms: σ(x) = c + w with c = −α, w = α e^x for e^x ≤ ½ and
        # c = 0, w = α(e^x − 1) otherwise (w accurate in relative terms), d = (y − c) − w
        # with the first difference exact (two-sum).
        alpha = self.alpha
        xn, yn = np.minimum(x, 0.0), np.minimum(y, 0.0)
        low = xn <= -np.log(2.0)
        head, tail = _two_difference(yn, np.where(low, -alpha, 0.0))
        q = alpha * np.exp(xn)
        d = (head - np.where(low, q, alpha * np.expm1(xn))) + tail
        kl = _kl_part(yn + alpha, q, d, lambda mask: np.log(alpha) + xn[mask])
        return np.where((x <= 0) & (y <= 0), kl, super()._bregman_terms(y, x))

    def cvx_phi(self, y):
        # Φ(y) = ½ pos(y)² + g(min(y, 0)) with g(a) = (a + α) log(1 + a/α) − a decreasing on
        # [−α, 0], so g(min(y, 0)) = min { g(a) : a ≤ 0, a ≤ y }.
        import cvxpy as cp

        a = cp.Variable(y.shape)
        alpha = self.alpha
        g = -cp.entr(a + alpha) - (a + alpha) * np.log(alpha) - a
        return DCPTerm(0.5 * cp.sum_squares(cp.pos(y)) + cp.sum(g), [a <= 0, a <= y])

    def cvx_phi_conj(self, x):
        # Φ*(x) = ½ pos(x)² + h(min(x, 0)) with h(w) = α(e^w − 1 − w) decreasing on w ≤ 0.
        import cvxpy as cp

        w = cp.Variable(x.shape)
        h = self.alpha * (cp.exp(w) - 1 - w)
        return DCPTerm(0.5 * cp.sum_squares(cp.pos(x)) + cp.sum(h), [w <= 0, w <= x])

    def sympy_psi(self, u):
        import sympy as sp

        alpha = sp.Float(self.alpha)
        negative = (u + alpha) * sp.log(1 + u / alpha) - u - u**2 / 2
        return sp.Piecewise((negative, u <= 0), (0, True)), sp.Interval(-alpha, sp.oo)


class Arctan(Activation):
    """σ(x) = (2/π) arctan x: Ψ(u) = −(2/π) log cos(πu/2) − u²/2 on (−1, 1).

    Φ*(x) = (2/π)(x arctan x − ½ log(1 + x²)). Using cos(π σ(x)/2) = 1/√(1 + x²),
    B(y, x) = x (σ(x) − y) − (2/π)[log cos(πy/2) + log √(1 + x²)]. No DCP form.
    """

    name = "Arctan"
    domain = Interval(-1.0, 1.0, False, False)
    range = Interval(-1.0, 1.0, False, False)

    @staticmethod
    def _log_cos(u):
        # log cos(πu/2) = log sin(π(1 − |u|)/2), exact near |u| = 1
        return np.log(np.sin(0.5 * np.pi * (1 - np.abs(u))))

    def _prox(self, x):
        return (2 / np.pi) * np.arctan(x)

    def sigma_inv(self, u):
        return np.tan(0.5 * np.pi * np.asarray(u, dtype=np.float64))

    def sigma_inv_grad(self, u):
        return 0.5 * np.pi * (1 + self.sigma_inv(u) ** 2)

    def _psi(self, u):
        return -(2 / np.pi) * self._log_cos(u) - 0.5 * u * u

    def _phi_conj(self, x):
        return (2 / np.pi) * (x * np.arctan(x) - np.log(np.hypot(1.0, x)))

    def _bregman_terms(self, y, x):
        s = self._prox(x)
        return x * (s - y) - (2 / np.pi) * (self._log_cos(y) + np.log(np.hypot(1.0, x)))

    def sympy_psi(self, u):
        import sympy as sp

        return -2 / sp.pi * sp.log(sp.cos(sp.pi * u / 2)) - u**2 / 2, sp.Interval.open(-1, 1)


class ISRU(Activation):
    """Inverse square root unit σ(x) = x/√(1 + x²): Ψ(u) = −√(1 − u²) − u²/2 on [−1, 1].

    Φ*(x) = √(1 + x²). With θ = arctan x and φ = arcsin y,
    B(y, x) = √(1 + x²) (1 − cos(θ − φ)) = 2√(1 + x²) sin²((θ − φ)/2), where
    θ − φ = arg((1 + ix)(√(1 − y²) − iy)) is computed by one ``arctan2`` (no cancellation).
    """

    name = "ISRU"
    domain = Interval(-1.0, 1.0)
    range = Interval(-1.0, 1.0, False, False)

    def _prox(self, x):
        return x / np.hypot(1.0, x)

    def sigma_inv(self, u):
        u = np.asarray(u, dtype=np.float64)
        return u / np.sqrt((1 - u) * (1 + u))

    def sigma_inv_grad(self, u):
        u = np.asarray(u, dtype=np.float64)
        return ((1 - u) * (1 + u)) ** -1.5

    def _psi(self, u):
        return -np.sqrt((1 - u) * (1 + u)) - 0.5 * u * u

    def _phi_conj(self, x):
        return np.hypot(1.0, x)

    def _bregman_terms(self, y, x):
        c = np.sqrt((1 - y) * (1 + y))
        angle = np.arctan2(x * c - y, c + x * y)
        return 2 * np.hypot(1.0, x) * np.sin(0.5 * angle) ** 2

    def cvx_phi(self, y):
        import cvxpy as cp

        return DCPTerm(-cp.sum(cp.sqrt(1 - cp.square(y))), [])

    def cvx_phi_conj(self, x):
        # Σ √(1 + xᵢ²) = Σ ‖(1, xᵢ)‖₂
        import cvxpy as cp

        xv = cp.vec(x, order="C")
        return DCPTerm(cp.sum(cp.norm(cp.vstack([np.ones(x.size), xv]), 2, axis=0)), [])

    def sympy_psi(self, u):
        import sympy as sp

        return -sp.sqrt(1 - u**2) - u**2 / 2, sp.Interval(-1, 1)


class Softsign(Activation):
    """Softsign (Elliot) σ(x) = x/(1 + |x|): Ψ(u) = −|u| − log(1 − |u|) − u²/2 on (−1, 1).

    Φ*(x) = |x| − log(1 + |x|). With r = (1 − |y|)(1 + |x|) = 1 + e,
    B(y, x) = (e − log r) + (|x y| − x y), two non-negative terms.
    """

    name = "Softsign"
    domain = Interval(-1.0, 1.0, False, False)
    range = Interval(-1.0, 1.0, False, False)

    def _prox(self, x):
        return x / (1 + np.abs(x))

    def sigma_inv(self, u):
        u = np.asarray(u, dtype=np.float64)
        return u / (1 - np.abs(u))

    def sigma_inv_grad(self, u):
        return (1 - np.abs(np.asarray(u, dtype=np.float64))) ** -2

    def _psi(self, u):
        a = np.abs(u)
        return -a - np.log1p(-a) - 0.5 * u * u

    def _phi_conj(self, x):
        a = np.abs(x)
        return a - np.log1p(a)

    def _bregman_terms(self, y, x):
        # r and e = r − 1 are each formed without cancellation (r → 0 near |y| = 1); near
        # y = σ(x), where e → 0, e − log r = e − log(1 + e) = e²/2 − … comes from its series.
        r = (1 - np.abs(y)) * (1 + np.abs(x))
        e = np.abs(x) * (1 - np.abs(y)) - np.abs(y)
        gap = np.where(np.abs(e) <= _SERIES_RADIUS, _log1p_tails(e)[0], e - np.log(r))
        return gap + (np.abs(x * y) - x * y)

    def cvx_phi(self, y):
        # Φ(y) = f(|y|) with f(a) = −a − log(1 − a) increasing: min { f(a) : a ≥ |y| }.
        import cvxpy as cp

        a = cp.Variable(y.shape)
        return DCPTerm(cp.sum(-a - cp.log(1 - a)), [a >= cp.abs(y)])

    def cvx_phi_conj(self, x):
        # Φ*(x) = g(|x|) with g(b) = b − log(1 + b) increasing on b ≥ 0.
        import cvxpy as cp

        b = cp.Variable(x.shape)
        return DCPTerm(cp.sum(b - cp.log(1 + b)), [b >= cp.abs(x)])

    def sympy_psi(self, u):
        import sympy as sp

        return -sp.Abs(u) - sp.log(1 - sp.Abs(u)) - u**2 / 2, sp.Interval.open(-1, 1)


class Asinh(Activation):
    """σ = asinh: Ψ(u) = cosh u − 1 − u²/2, Φ*(x) = x asinh x − √(1 + x²) + 1.

    With s = asinh x and d = y − s,
    B(y, x) = ½e^s (e^d − 1 − d) + ½e^{−s} (e^{−d} − 1 + d), two non-negative terms.
    DCP: Φ(y) = ½e^y + ½e^{−y} − 1 and, by conjugating the two exponentials,
    Φ*(x) = 1 + min { a log(2a) − a + b log(2b) − b : a, b ≥ 0, a − b = x }.
    """

    name = "Asinh"
    domain = Interval(-np.inf, np.inf)
    range = Interval(-np.inf, np.inf)

    def _prox(self, x):
        return np.arcsinh(x)

    def sigma_inv(self, u):
        return np.sinh(u)

    def sigma_inv_grad(self, u):
        return np.cosh(u)

    def _psi(self, u):
        return 2 * np.sinh(0.5 * u) ** 2 - 0.5 * u * u

    def _phi_conj(self, x):
        # √(1 + x²) − 1 = x²/(√(1 + x²) + 1) avoids cancellation at small x.
        h = np.hypot(1.0, x)
        return x * np.arcsinh(x) - x * (x / (h + 1))

    @staticmethod
    def _exp_excess(a, d):
        """e^a (e^d − 1 − d): by its power series for |d| ≤ ¼ (no cancellation), as
        e^{a+d} − e^a (1 + d) for d > 1 (no premature overflow)."""
        dm = np.minimum(d, 1.0)
        excess = np.where(np.abs(d) <= _SERIES_RADIUS, _expm1_excess(d), np.expm1(dm) - dm)
        return np.where(d > 1, np.exp(a + d) - np.exp(a) * (1 + d), np.exp(a) * excess)

    def _bregman_terms(self, y, x):
        s = np.arcsinh(x)
        d = y - s
        return 0.5 * (self._exp_excess(s, d) + self._exp_excess(-s, -d))

    def cvx_phi(self, y):
        import cvxpy as cp

        return DCPTerm(cp.sum(0.5 * cp.exp(y) + 0.5 * cp.exp(-y)) - y.size, [])

    def cvx_phi_conj(self, x):
        import cvxpy as cp

        a, b = cp.Variable(x.shape), cp.Variable(x.shape)
        expr = cp.sum(-cp.entr(a) - cp.entr(b) + (np.log(2.0) - 1) * (a + b)) + x.size
        return DCPTerm(expr, [a - b == x])

    def sympy_psi(self, u):
        import sympy as sp

        return sp.cosh(u) - 1 - u**2 / 2, sp.S.Reals


class Softplus(Activation):
    """σ(x) = log(1 + e^x): Ψ'(u) = log(1 − e^{−u}) on (0, ∞), dom Ψ = [0, ∞).

    Ψ(u) = Li₂(e^{−u}) − π²/6 = u log(1 − e^{−u}) − Li₂(1 − e^{−u}) (Euler's reflection),
    Φ*(x) = −Li₂(−e^x) = π²/6 + x²/2 + Li₂(−e^{−x}) (inversion, used for x > 0), where
    Li₂(z) = scipy.special.spence(1 − z). The dilogarithm has no DCP form.
    """

    name = "Softplus"
    domain = Interval(0.0, np.inf)
    range = Interval(0.0, np.inf, False, False)

    def _prox(self, x):
        return np.logaddexp(0.0, x)

    def sigma_inv(self, u):
        u = np.asarray(u, dtype=np.float64)
        return u + np.log(-np.expm1(-u))

    def sigma_inv_grad(self, u):
        return -1 / np.expm1(-np.asarray(u, dtype=np.float64))

    def _psi(self, u):
        w = -np.expm1(-u)
        return xlogy(u, w) - _li2(w)

    def _phi_conj(self, x):
        ax = np.abs(x)
        tail = -_li2(-np.exp(-ax))
        return np.where(x > 0, np.pi**2 / 6 + 0.5 * x * x - tail, tail)

    def sympy_psi(self, u):
        import sympy as sp

        return sp.polylog(2, sp.exp(-u)) - sp.pi**2 / 6, sp.Interval(0, sp.oo)


class _SimplexActivation(Activation):
    """Vector activation whose Ψ has the unit simplex Δ (along the last axis) as domain.

    Entries of a target must lie in [0, 1] and each vector must sum to 1, both within
    ``simplex_tol`` (1e-8) for rounding; renormalise data in float64 before use.
    """

    is_vector = True
    simplex_tol = 1e-8
    domain = Simplex(simplex_tol)

    def check_domain(self, y, what: str = "y") -> np.ndarray:
        y = self._array(y, what)
        outside = ~self.domain.entries_ok(y)
        if outside.any():
            raise DomainError(
                f"{what} is outside the unit simplex (domain of Ψ for {self.name}): entries "
                f"must lie in [0, 1]: {describe_entries(outside, y)}"
            )
        sums = y.sum(axis=-1)
        off = np.abs(sums - 1) > self.simplex_tol
        if off.any():
            raise DomainError(
                f"{what} is outside the unit simplex (domain of Ψ for {self.name}): vectors "
                f"along the last axis must sum to 1 within {self.simplex_tol:g}; sums: "
                f"{describe_entries(off, sums)}"
            )
        return y

    def _safe_point(self, u):
        return np.full(u.shape, 1.0 / u.shape[-1])

    @abstractmethod
    def _cvx_phi_on_simplex(self, y):
        """Convex CVXPY expression equal to Σ Φ(y) for y on the simplex."""

    @staticmethod
    def _simplex_constraints(y) -> list:
        import cvxpy as cp

        return [cp.sum(y, axis=y.ndim - 1) == 1, y >= 0]

    def cvx_phi(self, y):
        return DCPTerm(self._cvx_phi_on_simplex(y), self._simplex_constraints(y))


def _log_prox(r: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Solve (1 − t) u + t log u = r for u > 0 (strictly increasing in u where u ≤ 1).

    With k = (1 − t)/t: t < 1 gives u = ω(r/t + log k)/k (Wright omega ω, overflow-free),
    t = 1 gives u = e^r, and t > 1 gives u = −W₀(k e^{r/t})/|k| (Lambert W, k < 0).
    Used by the softmax prox; r ≤ 1 − t keeps u ≤ 1 and W on its principal branch.
    """
    r, t = np.broadcast_arrays(r, t)
    u = np.exp(r)  # t = 1
    below, above = t < 1, t > 1
    rb, tb = r[below], t[below]
    kb = (1 - tb) / tb
    u[below] = wrightomega(rb / tb + np.log(kb)) / kb
    ra, ta = r[above], t[above]
    ka = (1 - ta) / ta
    u[above] = lambertw(ka * np.exp(ra / ta)).real / ka
    return u


class Softmax(_SimplexActivation):
    """σ = softmax along the last axis: Ψ(u) = Σ uᵢ log uᵢ − ½‖u‖² + ι_Δ(u).

    Φ*(x) = log Σ e^{xᵢ}, B(y, x) = KL(y ‖ softmax(x)) = Σ yᵢ (log yᵢ − log softmax(x)ᵢ).
    prox_{tΨ}(v)ᵢ = uᵢ(λ) with (1 − t)uᵢ + t log uᵢ = vᵢ − λ and λ fixed by Σ uᵢ = 1.
    """

    name = "Softmax"
    range = Interval(0.0, 1.0, False, False)

    def _prox(self, x):
        return np.exp(log_softmax(x, axis=-1))

    def _prox_scaled(self, v, t):
        # Σ uᵢ(λ) decreases in λ; u_max = 1 at λ = max v − (1 − t) and u_max = 1/n at
        # λ = max v − S(1/n) with S(u) = (1 − t)u + t log u bracket the multiplier.
        n = v.shape[-1]
        t = np.broadcast_to(t, v.shape[:-1] + (1,))[..., 0]
        v_max = v.max(axis=-1)
        a = v_max - (1 - t)
        b = v_max - (1 - t) / n + t * np.log(n)

        eps = np.finfo(np.float64).eps

        def evaluate(lam):
            # deficit 1 − Σ uᵢ(λ), its slope Σ 1/S'(uᵢ) = Σ uᵢ/((1 − t)uᵢ + t), and the
            # rounding of vᵢ − λ propagated through uᵢ
            u = _log_prox(v - lam[..., None], t[..., None])
            weight = u / ((1 - t[..., None]) * u + t[..., None])
            noise = 4 * eps * (1 + (weight * (np.abs(v) + np.abs(lam[..., None]))).sum(axis=-1))
            return 1 - u.sum(axis=-1), weight.sum(axis=-1), noise

        lam = _monotone_root(evaluate, a, b, what=f"prox_scaled of {self.name}")
        u = _log_prox(v - lam[..., None], t[..., None])
        return u / u.sum(axis=-1, keepdims=True)  # remove the last rounding from Σ u = 1

    def _psi(self, u):
        return (xlogy(u, u) - 0.5 * u * u).sum(axis=-1)

    def _phi_conj(self, x):
        return logsumexp(x, axis=-1)

    def _bregman_terms(self, y, x):
        return (xlogy(y, y) - y * log_softmax(x, axis=-1)).sum(axis=-1)

    def _cvx_phi_on_simplex(self, y):
        import cvxpy as cp

        return -cp.sum(cp.entr(y))

    def cvx_phi_conj(self, x):
        import cvxpy as cp

        return DCPTerm(cp.sum(cp.log_sum_exp(x, axis=x.ndim - 1)), [])


class Sparsemax(_SimplexActivation):
    """σ = sparsemax = proj_Δ along the last axis: Ψ = ι_Δ, Φ*(x) = ½‖x‖² − ½ dist(x, Δ)².

    Ψ*(v) = max_i vᵢ (support function of Δ); DCP Φ* = min_v ½‖x − v‖² + max_i vᵢ.
    """

    name = "Sparsemax"
    range = Interval(0.0, 1.0)

    def _prox(self, x):
        return self.domain.project(x)

    def _prox_scaled(self, v, t):
        return self._prox(v)

    def _psi(self, u):
        return np.zeros(u.shape[:-1])

    def psi_conj(self, v):
        """Ψ*(v) = max_i vᵢ along the last axis."""
        return self._array(v, "v").max(axis=-1)

    def _cvx_phi_on_simplex(self, y):
        import cvxpy as cp

        return 0.5 * cp.sum_squares(y)

    def cvx_psi(self, y):
        import cvxpy as cp

        return DCPTerm(cp.Constant(0.0), self._simplex_constraints(y))

    def cvx_phi_conj(self, x):
        import cvxpy as cp

        v = cp.Variable(x.shape)
        return DCPTerm(0.5 * cp.sum_squares(x - v) + cp.sum(cp.max(v, axis=x.ndim - 1)), [])


# --------------------------------------------------------------------------- from formulas
# SymbolicActivation is public through bregmod.symbolic (and Activation.from_psi/from_sigma);
# __all__ lists the built-in families only.

class SymbolicActivation(Activation):
    """An activation derived from a formula (``Activation.from_psi``/``from_sigma``,
    ``bregmod.symbolic.activation_from_psi``/``activation_from_sigma``), built from the
    :class:`~bregmod.derivation.Derivation` (:attr:`derivation`).

    Numerical methods evaluate the verified closed forms (lambdified with numpy/scipy) where
    they exist and fall back to numerics otherwise: σ by the safeguarded root finder of
    ``Activation.prox_scaled`` (u + Ψ'(u) = x), σ⁻¹ by a bracketing root finder
    (σ(x) = u), Φ* by Fenchel–Young Φ*(x) = xσ(x) − Φ(σ(x)) or, when Ψ itself is only known
    through Φ*, by quadrature Φ*(x) = Φ*(0) + ∫₀ˣ σ.

    Attributes
    ----------
    closed_form : bool
        True when σ, σ⁻¹, Ψ and Φ* all have verified closed forms.
    notes : tuple of str
        How admissibility was established, how constants were fixed, what is numerical.
    psi_expr, sigma_expr, sigma_inv_expr, phi_conj_expr : sympy.Expr or None
        The closed forms (``Piecewise`` for several pieces; None where there is none):
        Ψ and σ⁻¹ in ``u_symbol``, σ and Φ* in ``x_symbol``.
    u_symbol, x_symbol : sympy.Symbol
    derivation : Derivation
        What the derivation found (formulas, compiled functions, domain, range).
    """

    def __init__(self, derivation: Derivation) -> None:
        d = derivation
        self.derivation = d
        self.name, self.closed_form, self.notes = d.name, d.closed_form, d.notes
        self.x_symbol, self.u_symbol = d.x_symbol, d.u_symbol
        self.psi_expr, self.sigma_expr = d.psi_expr, d.sigma_expr
        self.sigma_inv_expr, self.phi_conj_expr = d.sigma_inv_expr, d.phi_conj_expr
        self._sigma, self._sigma_inv = d.sigma, d.sigma_inv
        self._psi_closed, self._phi_conj_closed = d.psi, d.phi_conj
        self._sigma_pieces, self._phi_conj_pieces = d.sigma_pieces, d.phi_conj_pieces
        self.range = Interval(*d.range)
        self.domain = Interval(*d.domain)
        self._sympy_bounds = d.domain_bounds
        self._ends = list(d.ends)
        self._phi_conj_at_zero = d.phi_conj_at_zero

    def _finite(self, values: np.ndarray, at: np.ndarray, what: str, infinite=False):
        """``values``, or ``ValueError`` naming the entries that are NaN (±inf unless allowed)."""
        bad = np.isnan(values) if infinite else ~np.isfinite(values)
        if bad.any():
            raise ValueError(
                f"{self.name}: {what} overflowed or is undefined at {describe_entries(bad, at)} "
                "(the derived formula has no stable evaluation there)"
            )
        return values

    def _prox(self, x: np.ndarray) -> np.ndarray:
        if self._sigma is None:
            return super()._prox(x)
        values = self._sigma(x)
        overflow = ~np.isfinite(values)
        if overflow.any() and self._sigma_inv is not None:  # e.g. exp(x)/(exp(x) + 1), x ≫ 1
            values[overflow] = self._solved(x[overflow])
        return self._finite(values, x, "σ")

    def _solved(self, x: np.ndarray) -> np.ndarray:
        """σ(x) by the root finder, kept only where σ⁻¹ maps it back to x (else NaN).

        A root at the last float before a finite end of the range is accepted as it is
        (σ saturates there in double precision).
        """
        p = super()._prox(x)
        back = self.sigma_inv(p)
        ends = [e for e in (self.range.lo, self.range.hi) if np.isfinite(e)]
        saturated = np.zeros(p.shape, dtype=bool)
        for end in ends:
            saturated |= np.abs(p - end) <= 4 * np.spacing(abs(end))
        consistent = np.abs(back - x) <= 1e-8 * (1 + np.abs(x))
        return np.where(saturated | consistent, p, np.nan)

    def sigma_inv(self, u) -> np.ndarray:
        """σ⁻¹(u) = u + Ψ'(u) on the interior of the range of σ (closed form or root finder)."""
        u = np.asarray(u, dtype=np.float64)
        if self._sigma_inv is not None:  # ±inf is the right limit at an open end of the range
            return self._finite(self._sigma_inv(u), u, "σ⁻¹", infinite=True)

        def residual(t, target):
            return self._sigma(t) - target

        from scipy.optimize.elementwise import bracket_root, find_root

        bracket = bracket_root(residual, -np.ones(u.shape), np.ones(u.shape), args=(u,))
        root = find_root(residual, bracket.bracket, args=(u,))
        return self._finite(np.where(bracket.success, root.x, np.nan), u, "σ⁻¹")

    def _psi(self, u: np.ndarray) -> np.ndarray:
        if self._psi_closed is not None:
            values = self._psi_closed(u)
            for end, value in self._ends:
                values[u == end] = value
        else:  # Fenchel–Young: Ψ(u) = u σ⁻¹(u) − Φ*(σ⁻¹(u)) − u²/2
            g = self.sigma_inv(u)
            values = u * g - self._phi_conj(g) - 0.5 * u * u
        return self._finite(values, u, "Ψ")

    def _phi_conj(self, x: np.ndarray) -> np.ndarray:
        if self._phi_conj_closed is not None:
            values = self._phi_conj_closed(x)
            overflow = ~np.isfinite(values)
            if overflow.any() and self._psi_closed is not None:
                values[overflow] = super()._phi_conj(x[overflow])
            return self._finite(values, x, "Φ*")
        if self._psi_closed is not None:
            return super()._phi_conj(x)
        from scipy.integrate import quad_vec

        flat = x.ravel()
        with np.errstate(all="ignore"):
            integral, _ = quad_vec(
                lambda s: self._sigma(flat * s), 0.0, 1.0, epsabs=1e-13, epsrel=1e-12
            )
        return self._finite(self._phi_conj_at_zero + flat * integral, flat, "Φ*").reshape(x.shape)

    def sympy_psi(self, u):
        """``(expr, domain)``: the derived Ψ in the symbol ``u`` and dom Ψ as a sympy Interval.

        Raises
        ------
        NotImplementedError
            When Ψ has no closed form.
        """
        if self.psi_expr is None:
            raise NotImplementedError(f"{self.name}: Ψ has no closed form")
        import sympy as sp

        lo, hi = self._sympy_bounds
        interval = sp.Interval(lo, hi, not self.domain.lo_closed, not self.domain.hi_closed)
        return self.psi_expr.xreplace({self.u_symbol: u}), interval


#: Activation names (spec files, the CLI) ↦ (class, names of its parameters).
NAMES: dict[str, tuple[type[Activation], tuple[str, ...]]] = {
    "identity": (Identity, ()),
    "relu": (ReLU, ()),
    "leaky_relu": (LeakyReLU, ("slope",)),
    "soft_threshold": (SoftThreshold, ("threshold",)),
    "clip": (Clip, ("lo", "hi")),
    "tanh": (Tanh, ()),
    "sigmoid": (Sigmoid, ()),
    "elu": (ELU, ("alpha",)),
    "arctan": (Arctan, ()),
    "isru": (ISRU, ()),
    "softsign": (Softsign, ()),
    "asinh": (Asinh, ()),
    "softplus": (Softplus, ()),
    "softmax": (Softmax, ()),
    "sparsemax": (Sparsemax, ()),
}
