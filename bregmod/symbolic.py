"""Activations from formulas, and the check of any activation against the mathematics.

docs/math/activations.md: an activation σ is admissible iff σ = prox_Ψ for a proper, convex,
lsc Ψ. ``activation_from_psi`` derives σ and Φ* from a formula for Ψ, ``activation_from_sigma``
derives Ψ and Φ* from a formula for σ (:mod:`bregmod.derivation`: the symbolic work, piece by
piece, every closed form verified, numerics flagged by ``closed_form=False`` where sympy finds
none); both return a :class:`~bregmod.activations.SymbolicActivation`, the same as
``Activation.from_psi``/``from_sigma``. ``verify`` checks any activation (built-in or derived)
against the identities of docs/math/activations.md, docs/math/bregman.md, and
``parse_expression`` (:mod:`bregmod.formula`) turns user text into sympy without evaluating
code.

Modules: :mod:`bregmod.formula` (parse) → :mod:`bregmod.derivation` (derive) →
:mod:`bregmod.activations` (the activation) → this front end (and verify).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import sympy as sp

from bregmod.activations import Activation, SymbolicActivation
from bregmod.derivation import TIME_LIMIT, _identity, _Piece, _PiecewiseNumeric, _split, _tidy
from bregmod.formula import parse_expression

__all__ = [
    "CheckResult",
    "SymbolicActivation",
    "VerificationReport",
    "activation_from_psi",
    "activation_from_sigma",
    "parse_expression",
    "verify",
]


# ---------------------------------------------------------------------------- derivations


def activation_from_sigma(
    expr, var="x", *, time_limit: float | None = TIME_LIMIT
) -> SymbolicActivation:
    """Activation from a formula for σ: check admissibility, derive Ψ and Φ*.

    σ must be a prox map: continuous, nondecreasing and 1-Lipschitz on ℝ (0 ≤ σ' ≤ 1). This is
    proved with sympy where possible and otherwise checked on a dense grid of [−1e4, 1e4]
    (with a bisection that tells jumps from steep slopes). Then (docs/math/activations.md)

        Φ*(x) = ∫σ(x) dx,   Ψ(u) = ∫(σ⁻¹(u) − u) du   on the range of σ,

    with the constants fixed by Ψ(σ(0)) = 0 and Fenchel–Young with equality,
    Φ(σ(x)) + Φ*(x) = x σ(x) (so Φ*(0) = −σ(0)²/2). Piecewise σ (``Max``, ``Abs``, ...) are
    treated piece by piece. Every closed form is verified (symbolically, else numerically);
    where sympy finds none, σ⁻¹ is computed by a bracketing root finder, Φ* by quadrature of
    σ and Ψ(u) = u σ⁻¹(u) − Φ*(σ⁻¹(u)) − u²/2, and ``closed_form`` is False.

    Parameters
    ----------
    expr : str or sympy.Expr
        σ as a formula in ``var`` (strings go through ``parse_expression``).
    var : str or sympy.Symbol
        The variable of σ.
    time_limit : float or None
        Seconds after which the derivation is stopped (``None``: no limit). Enforced with
        ``SIGALRM`` in the main thread of POSIX systems only.

    Returns
    -------
    SymbolicActivation

    Raises
    ------
    NotAdmissibleError
        If σ is discontinuous, decreasing somewhere, not 1-Lipschitz, or not finite on ℝ
        (the message says which and where).
    ValueError
        For unparsable input, extra free symbols, or a constant σ.
    ExpressionTooComplexError
        For formulas nested too deeply or holding huge constants, and when the derivation
        runs longer than ``time_limit``.
    """
    return Activation.from_sigma(expr, var, time_limit=time_limit)


def activation_from_psi(
    expr, var="u", domain=None, *, time_limit: float | None = TIME_LIMIT
) -> SymbolicActivation:
    """Activation σ = prox_Ψ from a formula for Ψ: Legendre transform of Φ = ½u² + Ψ.

    Ψ must be convex on ``domain`` (proved with sympy where possible, else checked on a dense
    grid). σ solves the stationarity condition x = u + Ψ'(u) (the inverse of Φ' = id + Ψ',
    piece by piece; the branch whose values lie in the domain is chosen), σ is constant on
    the gaps of Φ' at kinks and at finite end points of the domain, and

        Φ*(x) = x σ(x) − Φ(σ(x)),   σ = ∇Φ*   (docs/math/activations.md).

    Every closed form is verified (σ at sample points, Φ*' = σ symbolically or numerically).
    Where sympy finds none, σ is computed by the safeguarded root finder of
    ``Activation.prox_scaled`` applied to u + Ψ'(u) = x, Φ* by Fenchel–Young, and
    ``closed_form`` is False (also stated in the name) — never an unverified formula.

    Parameters
    ----------
    expr : str or sympy.Expr
        Ψ as a formula in ``var``.
    var : str or sympy.Symbol
        The variable of Ψ.
    domain : Interval, sympy.Interval, (lo, hi) or None
        dom Ψ (None: ℝ). Only the end points are used: an end point belongs to dom Ψ exactly
        when Ψ has a finite limit there (the lower-semicontinuous extension).
    time_limit : float or None
        Seconds after which the derivation is stopped (``None``: no limit). Enforced with
        ``SIGALRM`` in the main thread of POSIX systems only.

    Returns
    -------
    SymbolicActivation

    Raises
    ------
    NotAdmissibleError
        If Ψ is not convex (or not finite) on the domain.
    ValueError
        For unparsable input, extra free symbols or an empty domain.
    ExpressionTooComplexError
        For formulas nested too deeply or holding huge constants, and when the derivation
        runs longer than ``time_limit``.
    """
    return Activation.from_psi(expr, var, domain, time_limit=time_limit)


# ---------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class CheckResult:
    """One check of ``verify``.

    Attributes
    ----------
    name : str
        The identity checked, e.g. ``"Φ*' = σ (central differences)"``.
    passed : bool or None
        None when the check does not apply (e.g. no sympy form of Ψ).
    max_error, tolerance : float
        The error and its tolerance at the worst sample (largest error/tolerance ratio).
    detail : str
        How the check was done, or why it was skipped.
    """

    name: str
    passed: bool | None
    max_error: float = 0.0
    tolerance: float = 0.0
    detail: str = ""


@dataclass
class VerificationReport:
    """Result of ``verify``: ``passed`` is True iff no check failed and at least one ran."""

    activation: str
    checks: list[CheckResult]
    passed: bool = field(init=False)

    def __post_init__(self):
        ran = [c.passed for c in self.checks if c.passed is not None]
        self.passed = bool(ran) and all(ran)

    def failures(self) -> list[CheckResult]:
        """The checks that failed."""
        return [c for c in self.checks if c.passed is False]

    def summary(self) -> str:
        """One line per check: PASS/FAIL/SKIP, the identity, worst error and tolerance."""
        lines = [f"verify({self.activation}): {'PASSED' if self.passed else 'FAILED'}"]
        for c in self.checks:
            status = {True: "PASS", False: "FAIL", None: "SKIP"}[c.passed]
            numbers = (
                f"  max error {c.max_error:.3g} (tol {c.tolerance:.3g})"
                if c.passed is not None
                else ""
            )
            lines.append(f"  {status}  {c.name}{numbers}{'  — ' + c.detail if c.detail else ''}")
        return "\n".join(lines)


def _worst(name: str, error, tolerance, detail: str = "") -> CheckResult:
    """A check passing iff ``error ≤ tolerance`` entrywise, reporting the worst ratio."""
    error, tolerance = np.broadcast_arrays(np.asarray(error, float), np.asarray(tolerance, float))
    if error.size == 0:
        return CheckResult(name, None, detail="no sample points")
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(np.isfinite(error), error / tolerance, np.inf).ravel()
    i = int(np.argmax(ratio))
    return CheckResult(
        name, bool(ratio[i] <= 1), float(error.ravel()[i]), float(tolerance.ravel()[i]), detail
    )


def _run(name: str, check: Callable[[], CheckResult]) -> CheckResult:
    """Run one check; an exception from the activation is a failure reported with its message."""
    try:
        return check()
    except NotImplementedError as exc:
        return CheckResult(name, None, detail=f"not applicable: {exc}")
    except (ValueError, ArithmeticError, TypeError) as exc:
        return CheckResult(name, False, float("inf"), 0.0, f"raised {type(exc).__name__}: {exc}")


def verify(
    activation: Activation, *, n_samples: int = 120, seed: int = 0, symbolic: bool = True
) -> VerificationReport:
    """Check an activation against the identities of docs/math/activations.md,
    docs/math/bregman.md, numerically and symbolically.

    With s = σ(x), Φ = ½u² + Ψ and random x, y ∈ dom Ψ (y = σ(x') and points of dom Ψ):

    - σ(x) lies in the range of σ and in dom Ψ;
    - Φ*' = σ: central differences with step h, whose error is at most h/2 because σ is
      1-Lipschitz (plus rounding);
    - Fenchel–Young with equality Φ(s) + Φ*(x) = ⟨x, s⟩, and B_Ψ(s, x) = 0;
    - B_Ψ(y, x) = Φ(y) + Φ*(x) − ⟨y, x⟩ and B_Ψ(y, x) ≥ ½‖y − σ(x)‖² ≥ 0;
    - ∇ₓ B_Ψ(y, x) = σ(x) − y (``bregman_grad`` against central differences of B);
    - prox consistency: p = prox_{tΨ}(v) minimises the 1-strongly convex
      q(w) = ½‖w − v‖² + tΨ(w), so q(w) ≥ q(p) + ½‖w − p‖² for w on segments to points
      of dom Ψ (t = 1 through ``prox``, other t through ``prox_scaled``);
    - σ(σ⁻¹(u)) = u where ``sigma_inv`` exists;
    - symbolic (``symbolic=True``, scalar activations with ``sympy_psi``): the sympy Ψ equals
      ``psi``, and x − σ(x) = Ψ'(σ(x)) with Ψ' differentiated by sympy; for
      ``SymbolicActivation`` also Φ*' − σ ≡ 0 simplified piece by piece.

    Parameters
    ----------
    activation : Activation
        Built-in or derived.
    n_samples : int
        Number of random sample points (vectors of length 4 for vector activations).
    seed : int
        Seed of the random samples.
    symbolic : bool
        Whether to run the sympy-based checks.

    Returns
    -------
    VerificationReport
    """
    if not isinstance(activation, Activation):
        raise TypeError(f"verify needs an Activation, got {type(activation).__name__}")
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 2:
        raise ValueError(f"n_samples must be an integer ≥ 2, got {n_samples!r}")
    rng = np.random.default_rng(seed)
    act = activation
    shape = (n_samples, 4) if act.is_vector else (n_samples,)
    x = 3.0 * rng.standard_normal(shape)
    if not act.is_vector:
        x[:7] = [-8.0, -2.0, -0.5, 0.0, 0.5, 2.0, 8.0][: min(7, n_samples)]
    y = _domain_samples(act, rng, shape)
    checks = [
        _run("σ(x) in the range of σ and in dom Ψ", lambda: _check_range(act, x)),
        _run("Φ*' = σ (central differences)", lambda: _check_gradient(act, x)),
        _run("Fenchel–Young: Φ(σ(x)) + Φ*(x) = ⟨x, σ(x)⟩", lambda: _check_fenchel_young(act, x)),
        _run("B(σ(x), x) = 0", lambda: _check_zero_gap(act, x)),
        _run("B(y, x) = Φ(y) + Φ*(x) − ⟨y, x⟩", lambda: _check_definition(act, y, x)),
        _run("B(y, x) ≥ ½‖y − σ(x)‖² ≥ 0", lambda: _check_lower_bound(act, y, x)),
        _run("∇ₓB(y, x) = σ(x) − y", lambda: _check_bregman_grad(act, y, x)),
        _run("prox minimises ½‖w − x‖² + Ψ(w)", lambda: _check_prox(act, x, y, None)),
        _run("prox_scaled minimises ½‖w − v‖² + tΨ(w)", lambda: _check_prox(act, x, y, rng)),
        _run("σ(σ⁻¹(u)) = u", lambda: _check_inverse(act, x)),
    ]
    if symbolic:
        checks.append(_run("sympy Ψ equals psi; x − σ(x) = Ψ'(σ(x))", lambda: _check_sympy(act, x)))
        if isinstance(act, SymbolicActivation):
            checks.append(_run("derived Φ*' − σ ≡ 0 (sympy)", lambda: _check_derived(act)))
    return VerificationReport(act.name, checks)


def _dot(act: Activation, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """⟨a, b⟩ entrywise, or per vector."""
    return (a * b).sum(axis=-1) if act.is_vector else a * b


def _half_sq(act: Activation, a: np.ndarray) -> np.ndarray:
    return 0.5 * _dot(act, a, a)


def _domain_samples(act: Activation, rng: np.random.Generator, shape: tuple) -> np.ndarray:
    """Points of dom Ψ: σ of random points, plus uniform points and closed finite end points."""
    y = act.prox(3.0 * rng.standard_normal(shape))
    if act.is_vector:
        return y
    dom = act.domain
    lo, hi = dom.lo, dom.hi
    third = shape[0] // 3
    if np.isfinite(lo) and np.isfinite(hi):
        y[:third] = rng.uniform(lo, hi, third)
    elif np.isfinite(lo):
        y[:third] = lo + rng.exponential(2.0, third)
    elif np.isfinite(hi):
        y[:third] = hi - rng.exponential(2.0, third)
    ends = [
        e for e, closed in ((lo, dom.lo_closed), (hi, dom.hi_closed)) if closed and np.isfinite(e)
    ]
    y[third : third + len(ends)] = ends
    return y[dom.contains(y)]


def _check_range(act: Activation, x: np.ndarray) -> CheckResult:
    s = act.prox(x)
    act.check_domain(s, "σ(x)")
    outside = ~act.range.contains(s)
    return CheckResult(
        "σ(x) in the range of σ and in dom Ψ",
        not outside.any(),
        float(outside.sum()),
        0.0,
        f"range {act.range}, domain {act.domain}",
    )


def _central_difference(function, x: np.ndarray, h: float, vector: bool) -> np.ndarray:
    """Central differences of a scalar (per entry, or per vector) function: the gradient."""
    if not vector:
        return (function(x + h) - function(x - h)) / (2 * h)
    gradient = np.empty_like(x)
    for j in range(x.shape[-1]):
        step = np.zeros(x.shape[-1])
        step[j] = h
        gradient[..., j] = (function(x + step) - function(x - step)) / (2 * h)
    return gradient


def _difference_tolerance(function, x: np.ndarray, h: float, vector: bool) -> np.ndarray:
    """h/2 (σ is 1-Lipschitz) plus the rounding of the two function values over 2h."""
    scale = np.abs(function(x))
    if vector:
        scale = scale[..., None]
    return 0.5 * h + 64 * np.finfo(float).eps * (1 + scale) / h


def _check_gradient(act: Activation, x: np.ndarray) -> CheckResult:
    h = 1e-5
    fd = _central_difference(act.phi_conj, x, h, act.is_vector)
    tol = _difference_tolerance(act.phi_conj, x, h, act.is_vector)
    return _worst("Φ*' = σ (central differences)", np.abs(fd - act.prox(x)), tol, f"h = {h:g}")


def _check_fenchel_young(act: Activation, x: np.ndarray) -> CheckResult:
    s = act.prox(x)
    phi, conj, xs = act.phi(s), act.phi_conj(x), _dot(act, x, s)
    error = np.abs(phi + conj - xs)
    tol = 1e-9 * (1 + np.abs(phi) + np.abs(conj) + np.abs(xs))
    return _worst("Fenchel–Young: Φ(σ(x)) + Φ*(x) = ⟨x, σ(x)⟩", error, tol)


def _check_zero_gap(act: Activation, x: np.ndarray) -> CheckResult:
    s = act.prox(x)
    gap = act.bregman_terms(s, x)
    tol = 1e-9 * (1 + np.abs(act.phi_conj(x)) + np.abs(_dot(act, x, s)))
    return _worst("B(σ(x), x) = 0", np.abs(gap), tol)


def _check_definition(act: Activation, y: np.ndarray, x: np.ndarray) -> CheckResult:
    x = x[: len(y)]
    phi, conj, yx = act.phi(y), act.phi_conj(x), _dot(act, y, x)
    error = np.abs(act.bregman_terms(y, x) - (phi + conj - yx))
    tol = 1e-9 * (1 + np.abs(phi) + np.abs(conj) + np.abs(yx))
    return _worst("B(y, x) = Φ(y) + Φ*(x) − ⟨y, x⟩", error, tol)


def _check_lower_bound(act: Activation, y: np.ndarray, x: np.ndarray) -> CheckResult:
    x = x[: len(y)]
    terms = act.bregman_terms(y, x)
    bound = _half_sq(act, y - act.prox(x))
    tol = 1e-9 * (1 + np.abs(act.phi(y)) + np.abs(act.phi_conj(x)) + np.abs(_dot(act, y, x)))
    return _worst("B(y, x) ≥ ½‖y − σ(x)‖² ≥ 0", np.maximum(bound - terms, 0.0), tol)


def _check_bregman_grad(act: Activation, y: np.ndarray, x: np.ndarray) -> CheckResult:
    x = x[: len(y)]
    h = 1e-5

    def gap(z):
        return act.bregman_terms(y, z)

    fd = _central_difference(gap, x, h, act.is_vector)
    tol = _difference_tolerance(gap, x, h, act.is_vector)
    grad = act.bregman_grad(y, x)
    exact = np.abs(grad - (act.prox(x) - y))
    error = np.maximum(np.abs(fd - grad), np.where(exact <= 1e-12 * (1 + np.abs(grad)), 0, np.inf))
    return _worst("∇ₓB(y, x) = σ(x) − y", error, tol, f"h = {h:g}")


def _check_prox(act: Activation, v: np.ndarray, y: np.ndarray, rng) -> CheckResult:
    """Strong-convexity test q(w) ≥ q(p) + ½‖w − p‖² on segments from p to points of dom Ψ."""
    v = v[: len(y)]
    if rng is None:
        name, t, p = "prox minimises ½‖w − x‖² + Ψ(w)", np.ones(()), act.prox(v)
        act.check_domain(p, "prox(x)")
    else:
        name = "prox_scaled minimises ½‖w − v‖² + tΨ(w)"
        t = rng.choice([0.1, 0.5, 2.0, 7.0], size=v.shape[:-1] + (1,) if act.is_vector else v.shape)
        p = act.prox_scaled(v, t)
        act.check_domain(p, "prox_scaled(v, t)")
        if act.is_vector:
            t = t[..., 0]

    def q(w):
        return _half_sq(act, w - v) + t * act.psi(w)

    qp = q(p)
    errors, tolerances = [], []
    for shift in (1, 7, 31):
        target = np.roll(y, shift, axis=0)
        for weight in (1e-3, 0.2, 1.0):
            w = (1 - weight) * p + weight * target
            excess = qp + _half_sq(act, w - p) - q(w)
            errors.append(np.maximum(excess, 0.0))
            tolerances.append(1e-9 * (1 + np.abs(qp) + np.abs(q(w))))
    if rng is None:
        errors.append(np.abs(act.prox_scaled(v, 1.0) - p).reshape(len(p), -1).max(axis=-1))
        tolerances.append(1e-9 * (1 + np.abs(p).reshape(len(p), -1).max(axis=-1)))
    return _worst(name, np.concatenate(errors), np.concatenate(tolerances))


def _check_inverse(act: Activation, x: np.ndarray) -> CheckResult:
    if act.is_vector:
        raise NotImplementedError("σ⁻¹ is checked for scalar activations only")
    u = act.prox(x)
    rng_ = act.range
    inside = (u > rng_.lo) & (u < rng_.hi)
    u = u[inside]
    error = np.abs(act.prox(act.sigma_inv(u)) - u)
    return _worst("σ(σ⁻¹(u)) = u", error, 1e-9 * (1 + np.abs(u)))


def _check_sympy(act: Activation, x: np.ndarray) -> CheckResult:
    if act.is_vector:
        raise NotImplementedError("vector activation: no scalar sympy form of Ψ")
    u = sp.Symbol("u", real=True)
    expr, dom = act.sympy_psi(u)
    pieces = _split(expr, u, dom.inf, dom.sup)
    psi_numeric = _PiecewiseNumeric(pieces, u)
    derivative = _PiecewiseNumeric(
        [_Piece(_tidy(sp.diff(p.expr, u)), p.lo, p.hi) for p in pieces], u
    )
    if not (psi_numeric.ok and derivative.ok):
        raise NotImplementedError("the sympy form of Ψ cannot be evaluated numerically")
    s = act.prox(x)
    kinks = np.array([float(p.lo) for p in pieces] + [float(pieces[-1].hi)])
    smooth = np.min(np.abs(s[:, None] - kinks[None, :]), axis=1) > 1e-7 * (1 + np.abs(s))
    s, xs = s[smooth], x[smooth]
    stationarity = np.abs(xs - s - derivative(s))
    tol_stationarity = 1e-7 * (1 + np.abs(xs))
    lo, hi = act.domain.lo, act.domain.hi
    if np.isfinite(lo) and np.isfinite(hi):
        interior = lo + (hi - lo) * (0.5 + 0.49 * np.tanh(x))
    elif np.isfinite(lo) or np.isfinite(hi):
        interior = lo + np.abs(x) + 1e-3 if np.isfinite(lo) else hi - np.abs(x) - 1e-3
    else:
        interior = x
    values = act.psi(interior)
    agreement = np.abs(psi_numeric(interior) - values)
    return _worst(
        "sympy Ψ equals psi; x − σ(x) = Ψ'(σ(x))",
        np.concatenate([stationarity, agreement]),
        np.concatenate([tol_stationarity, 1e-9 * (1 + np.abs(values))]),
        f"Ψ = {expr} on {dom}",
    )


def _check_derived(act: SymbolicActivation) -> CheckResult:
    if act._sigma_pieces is None or act._phi_conj_pieces is None:
        raise NotImplementedError("no closed forms of σ and Φ* to differentiate")
    how = []
    for s, conj in zip(act._sigma_pieces, act._phi_conj_pieces, strict=True):
        how.append(_identity(sp.diff(conj.expr, act.x_symbol) - s.expr, act.x_symbol, s, True))
    passed = None not in how
    return CheckResult(
        "derived Φ*' − σ ≡ 0 (sympy)",
        passed,
        0.0 if passed else float("inf"),
        0.0,
        f"per piece: {how}",
    )
