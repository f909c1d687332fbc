"""Symbolic derivation of an activation from a formula for Ψ or for σ (docs/math/activations.md).

An activation σ is admissible iff σ = prox_Ψ for a proper, convex, lsc Ψ. With Φ = ½u² + Ψ,

    σ = ∇Φ* = (∇Φ)⁻¹,   σ⁻¹(u) = u + Ψ'(u),   Φ(σ(x)) + Φ*(x) = x σ(x)   (Fenchel–Young).

:func:`derive_from_psi` solves the stationarity condition x = u + Ψ'(u) for u (the Legendre
transform of Φ); :func:`derive_from_sigma` checks that σ is nondecreasing and 1-Lipschitz (a
scalar prox map) and recovers Ψ(u) = ∫(σ⁻¹(u) − u) du and Φ*(x) = ∫σ(x) dx. Both work piece by
piece on piecewise expressions (``Abs``, ``Max``, ``Min``, ``sign``, ``Heaviside`` and
``Piecewise`` are split into smooth pieces), check every closed form they find (symbolically,
else numerically) and compile it to numpy/scipy; where sympy finds none the
:class:`Derivation` says so and the activation evaluates numerically.

The result is a :class:`Derivation` (formulas, compiled functions, domain, range, notes);
:class:`bregmod.activations.SymbolicActivation` is the activation built from it
(``Activation.from_psi``/``from_sigma``, :mod:`bregmod.symbolic`). This module does not import
the activations: the dependency runs activations → derivation → formula.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import sympy as sp
from scipy.special import spence
from sympy.calculus.util import continuous_domain
from sympy.codegen.rewriting import expm1_opt, log1p_opt, optimize

from bregmod.errors import ExpressionTooComplexError, NotAdmissibleError
from bregmod.formula import check_size, parse_expression, shorten

__all__ = ["TIME_LIMIT", "Derivation", "derive_from_psi", "derive_from_sigma"]

#: Seconds after which one derivation is stopped by default.
TIME_LIMIT = 120.0
_SIMPLIFY_OPS = 60  # larger expressions are not simplified (sympy.simplify gets slow)


class _Expired(BaseException):
    """Raised by `_time_limit`'s alarm handler; never escapes `_time_limit`."""


@contextlib.contextmanager
def _time_limit(seconds: float | None, label: str) -> Iterator[None]:
    """Abort the body with ``ExpressionTooComplexError`` after ``seconds`` (POSIX main thread only).

    Uses ``SIGALRM``/``setitimer`` (re-armed every 0.5 s until the body ends, so a library
    that swallows the first exception cannot lose the limit) and restores the previous
    handler; elsewhere
    (Windows, worker threads) or with ``seconds=None`` the body runs without a limit.
    The handler raises `_Expired`, a ``BaseException``, so that the ``except ValueError``
    clauses of the derivation (and of sympy) cannot turn the time limit into another error;
    it becomes ``ExpressionTooComplexError`` here.
    """
    if seconds is not None and not (np.isfinite(seconds) and seconds > 0):
        raise ValueError(f"time_limit must be a positive number of seconds, got {seconds}")
    usable = (
        seconds is not None
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def expire(signum, frame):
        raise _Expired

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.5)
    try:
        yield
    except _Expired:
        raise ExpressionTooComplexError(
            f"the symbolic derivation for {label} ran longer than {seconds:g} s and was stopped "
            "(simplify the formula, or pass a larger time_limit)"
        ) from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)



# ---------------------------------------------------------------------------- input


def _symbolic_input(expr, var, role: str) -> tuple[sp.Expr, sp.Symbol]:
    """``expr`` (str, number or sympy) as a sympy expression in a real symbol named ``var``."""
    name = var.name if isinstance(var, sp.Symbol) else var
    if not (isinstance(name, str) and name.isidentifier()) or name.startswith("__"):
        raise ValueError(
            f"the variable of {role} must be a sympy Symbol or identifier, got {var!r}"
        )
    symbol = sp.Symbol(name, real=True)
    if isinstance(expr, str):
        return parse_expression(expr, (name,)), symbol
    if isinstance(expr, (int, float)) and not isinstance(expr, bool):
        expr = sp.Rational(repr(expr)) if isinstance(expr, float) else sp.Integer(expr)
    if not isinstance(expr, sp.Expr):
        raise TypeError(f"{role} must be a string or a sympy expression, got {type(expr).__name__}")
    others = sorted(s.name for s in expr.free_symbols if s.name != name)
    if others:
        raise ValueError(
            f"{role} = {expr} has free symbols {others} besides {name!r}: substitute numbers "
            "for parameters"
        )
    check_size(expr, f"{role}")
    expr = expr.xreplace({s: symbol for s in expr.free_symbols})
    if expr.has(sp.zoo, sp.nan, sp.oo, -sp.oo, sp.I):
        raise ValueError(f"{role} = {expr} contains an infinite, undefined or complex constant")
    return expr, symbol


def _number(value, what: str) -> sp.Expr:
    """A real end point as an exact sympy number (±oo allowed)."""
    if isinstance(value, str):
        value = parse_expression(value, ())
    if isinstance(value, float):
        if np.isnan(value):
            raise ValueError(f"{what} is NaN")
        return sp.oo * int(np.sign(value)) if np.isinf(value) else sp.Rational(repr(value))
    if isinstance(value, int) and not isinstance(value, bool):
        return sp.Integer(value)
    if isinstance(value, sp.Expr) and value.is_number and value.is_extended_real:
        return value
    raise ValueError(f"{what} must be a real number, got {value!r}")


def _domain_bounds(domain) -> tuple[sp.Expr, sp.Expr]:
    """End points of dom Ψ from an ``Interval`` (anything with ``lo``, ``hi``), a sympy
    ``Interval``, a pair, or None (ℝ)."""
    if domain is None:
        lo, hi = -sp.oo, sp.oo
    elif not isinstance(domain, sp.Basic) and hasattr(domain, "lo") and hasattr(domain, "hi"):
        lo, hi = _number(float(domain.lo), "domain lo"), _number(float(domain.hi), "domain hi")
    elif isinstance(domain, sp.Interval):
        lo, hi = domain.inf, domain.sup
    elif domain is sp.S.Reals:
        lo, hi = -sp.oo, sp.oo
    elif isinstance(domain, (tuple, list)) and len(domain) == 2:
        lo, hi = _number(domain[0], "domain lo"), _number(domain[1], "domain hi")
    else:
        raise ValueError(
            f"domain must be an Interval, a sympy Interval, a pair (lo, hi) or None, got {domain!r}"
        )
    if not bool(lo < hi):
        raise ValueError(f"domain ({lo}, {hi}) is empty: need lo < hi")
    return lo, hi


# ---------------------------------------------------------------------------- pieces


@dataclass(frozen=True)
class _Piece:
    """A smooth piece ``expr`` of a scalar function on the interval [lo, hi]."""

    expr: sp.Expr
    lo: sp.Expr
    hi: sp.Expr

    def anchor(self) -> sp.Expr:
        """A simple interior point: 0 if inside, else a midpoint or one unit inside."""
        if self.lo < 0 < self.hi:
            return sp.Integer(0)
        if self.lo.is_finite and self.hi.is_finite:
            return (self.lo + self.hi) / 2
        return self.lo + 1 if self.lo.is_finite else self.hi - 1

    def samples(self) -> np.ndarray:
        """A few interior points spread over the piece (for numerical checks)."""
        lo, hi = float(self.lo), float(self.hi)
        if np.isfinite(lo) and np.isfinite(hi):
            return lo + (hi - lo) * np.array([0.03, 0.17, 0.31, 0.5, 0.66, 0.83, 0.97])
        steps = np.array([0.02, 0.15, 0.4, 0.9, 1.7, 3.1])
        if np.isfinite(lo):
            return lo + steps
        if np.isfinite(hi):
            return hi - steps
        return np.array([-3.1, -1.7, -0.6, -0.15, 0.0, 0.2, 0.7, 1.6, 3.3])


def _split(expr: sp.Expr, var: sp.Symbol, lo: sp.Expr, hi: sp.Expr) -> list[_Piece]:
    """Split ``expr`` on [lo, hi] into smooth pieces (``Abs``, ``Max``, ``sign``, ... unfolded).

    The pieces are sorted, adjacent pieces with the same formula merged, and they tile
    [lo, hi] (single points, where a ``Piecewise`` may take isolated values, are dropped:
    every function split here is continuous or checked to be).
    """
    whole = sp.Interval(lo, hi)
    folded = sp.piecewise_fold(expr.rewrite(sp.Piecewise))
    branches = folded.args if isinstance(folded, sp.Piecewise) else ((folded, sp.true),)
    taken = sp.S.EmptySet
    pieces = []
    for branch, condition in branches:
        try:
            where = sp.S.Reals if condition == sp.true else condition.as_set()
        except (NotImplementedError, ValueError, TypeError) as exc:
            raise ValueError(f"cannot analyse the condition {condition} in {expr}: {exc}") from None
        region = sp.Complement(sp.Intersection(where, whole), taken)
        taken = sp.Union(taken, where)
        for part in region.args if isinstance(region, sp.Union) else (region,):
            if isinstance(part, sp.Interval) and part.measure > 0:
                pieces.append(_Piece(branch, part.inf, part.sup))
    merged = _merge(sorted(pieces, key=lambda p: float(p.lo)))
    ends = [(a.hi, b.lo) for a, b in zip(merged, merged[1:], strict=False)]
    if not merged or merged[0].lo != lo or merged[-1].hi != hi or any(a != b for a, b in ends):
        raise ValueError(f"{expr} is not defined on all of [{lo}, {hi}]")
    return merged


def _merge(pieces: list[_Piece]) -> list[_Piece]:
    """Merge touching pieces (sorted) that have the same formula."""
    merged: list[_Piece] = []
    for piece in pieces:
        if merged and merged[-1].expr == piece.expr and merged[-1].hi == piece.lo:
            merged[-1] = _Piece(piece.expr, merged[-1].lo, piece.hi)
        else:
            merged.append(piece)
    return merged


def _as_piecewise(pieces: list[_Piece], var: sp.Symbol) -> sp.Expr:
    """One sympy expression for a list of pieces (``Piecewise`` when there are several)."""
    if len(pieces) == 1:
        return pieces[0].expr
    branches = [(p.expr, var <= p.hi) for p in pieces[:-1]]
    return sp.Piecewise(*branches, (pieces[-1].expr, True))


def _edge(expr: sp.Expr, var: sp.Symbol, point: sp.Expr, side: str) -> sp.Expr | None:
    """One-sided value of ``expr`` at ``point`` (``side`` '+' from the right, '-' from the left).

    The value itself where it is finite, else the limit; ``None`` when sympy cannot tell.
    """
    try:
        if point.is_finite:
            value = expr.subs(var, point)
            if not (value.is_finite and value.is_real):
                value = sp.limit(expr, var, point, dir=side)
        else:
            value = sp.limit(expr, var, point)
    except (NotImplementedError, ValueError, TypeError, AttributeError, RecursionError):
        return None
    if isinstance(value, sp.Limit) or value.has(sp.AccumBounds, sp.nan, sp.zoo, sp.I):
        return None
    return value if value.is_extended_real else None


def _nonnegative(expr: sp.Expr, var: sp.Symbol, piece: _Piece) -> bool | None:
    """Whether ``expr ≥ 0`` on the piece, by sympy's assumptions (None: not decided)."""
    p = sp.Dummy("p", nonnegative=True)
    if piece.lo.is_finite and piece.hi.is_finite:
        point = piece.lo + (piece.hi - piece.lo) * p / (1 + p)
    elif piece.lo.is_finite:
        point = piece.lo + p
    elif piece.hi.is_finite:
        point = piece.hi - p
    else:
        point = sp.Dummy("t", real=True)
    candidate = expr.subs(var, point)
    for simplification in (lambda e: e, lambda e: sp.factor(sp.together(e)), _tidy):
        verdict = simplification(candidate).is_nonnegative
        if verdict is not None:
            return verdict
    return None


def _finite_members(solutions: sp.Set) -> list[sp.Expr]:
    """Explicit solutions contained in a sympy solution set (``Intersection``s, ``Union``s...)."""
    if isinstance(solutions, sp.FiniteSet):
        return list(solutions.args)
    if isinstance(solutions, sp.Complement):
        return _finite_members(solutions.args[0])
    if isinstance(solutions, (sp.Intersection, sp.Union)):
        return [m for arg in solutions.args for m in _finite_members(arg)]
    return []


def _invert(piece: _Piece, var: sp.Symbol, target: sp.Symbol) -> sp.Expr | None:
    """The inverse of the increasing ``piece`` as an expression of ``target`` (None if not found).

    Candidates come from ``solveset`` over the reals (then ``solve``); the first one that maps
    ``piece(t)`` back to ``t`` at sample points of the piece, in double precision, is taken.
    """
    equation = sp.Eq(piece.expr, target)
    try:
        candidates = _finite_members(sp.solveset(equation, var, sp.S.Reals))
    except (NotImplementedError, ValueError, TypeError):
        try:
            candidates = sp.solve(equation, var)
        except (NotImplementedError, ValueError, TypeError):
            return None
    t = piece.samples()
    forward = _numeric(piece.expr, var)
    if forward is None:
        return None
    s = forward(t)
    keep = np.isfinite(s)
    for candidate in candidates:
        if candidate.has(var):
            continue
        backward = _numeric(candidate, target)
        if backward is not None and np.allclose(backward(s[keep]), t[keep], rtol=1e-7, atol=1e-9):
            return candidate
    return None


# ---------------------------------------------------------------------------- numerics


def _polylog(order, z):
    """Li_s(z) for s ∈ {1, 2} and real z ≤ 1: Li₁(z) = −log(1 − z), Li₂(z) = spence(1 − z)."""
    z = np.asarray(z, dtype=np.float64)
    if order == 1:
        return -np.log1p(-z)
    if order == 2:
        return spence(1 - z)
    raise NotImplementedError(f"polylog of order {order} has no numerical form here")


def _numeric(expr: sp.Expr, var: sp.Symbol) -> Callable[[np.ndarray], np.ndarray] | None:
    """A float64 numpy function of ``expr`` (warnings silenced; None if it cannot be evaluated).

    ``exp(t) − 1`` and ``log(1 + t)`` are rewritten to ``expm1``/``log1p`` first (accuracy
    near t = 0) in expressions small enough for sympy's rewriting (it factors).
    """
    try:
        if expr.has(sp.exp, sp.log) and sp.count_ops(expr) <= _SIMPLIFY_OPS:
            expr = optimize(expr, [expm1_opt, log1p_opt])
        compiled = sp.lambdify(var, expr, modules=[{"polylog": _polylog}, "scipy", "numpy"])
    except (NameError, TypeError, SyntaxError, KeyError):
        return None

    def evaluate(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=np.float64)
        with np.errstate(all="ignore"):
            out = np.asarray(compiled(v))
        if np.iscomplexobj(out):
            out = np.where(np.abs(out.imag) <= 1e-12 * (1 + np.abs(out.real)), out.real, np.nan)
        return np.broadcast_to(out.astype(np.float64), v.shape).copy()

    try:
        evaluate(np.array([0.5, 1.5]))
    except (
        NameError,
        TypeError,
        ValueError,
        AttributeError,
        ZeroDivisionError,
        NotImplementedError,
    ):
        return None
    return evaluate


class _PiecewiseNumeric:
    """Numerical evaluation of a list of pieces (each piece on its closed interval)."""

    def __init__(self, pieces: list[_Piece], var: sp.Symbol):
        self.bounds = [(float(p.lo), float(p.hi)) for p in pieces]
        self.functions = [_numeric(p.expr, var) for p in pieces]
        self.ok = all(f is not None for f in self.functions)

    def __call__(self, v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, dtype=np.float64)
        out = np.full(v.shape, np.nan)
        todo = np.ones(v.shape, dtype=bool)
        for (lo, hi), function in zip(self.bounds, self.functions, strict=True):
            mask = todo & (v >= lo) & (v <= hi)
            if mask.any():
                out[mask] = function(v[mask])
                todo &= ~mask
        return out


def _tidy(expr: sp.Expr) -> sp.Expr:
    """``sympy.simplify`` for expressions small enough to simplify quickly (else unchanged)."""
    if sp.count_ops(expr) > _SIMPLIFY_OPS:
        return expr
    try:
        return sp.simplify(expr)
    except (NotImplementedError, TypeError, ValueError, RecursionError):
        return expr


def _identity(expr: sp.Expr, var: sp.Symbol, piece: _Piece, thorough: bool = False) -> str | None:
    """How ``expr ≡ 0`` on the piece was established: 'symbolic', 'numeric', or None (false).

    The identity must hold numerically at sample points of the piece (to 1e-9); it counts
    as symbolic when a cheap normalisation (or, if ``thorough``, ``simplify``) gives 0.
    """
    function = _numeric(expr, var)
    if function is None or not np.all(np.abs(function(piece.samples())) <= 1e-9):
        return None
    if sp.count_ops(expr) > _SIMPLIFY_OPS:  # normalising large radicals can take minutes
        return "numeric"
    cheap = sp.cancel(sp.expand(expr))
    if cheap == 0 or (thorough and _tidy(cheap) == 0):
        return "symbolic"
    return "numeric"


def _grid(lo: float, hi: float) -> np.ndarray:
    """A dense grid of the open interval (lo, hi): fine near the ends and near 0."""
    edge = np.geomspace(1e-5, 1e-3, 100)  # closer to a finite end, rounding dominates
    if np.isfinite(lo) and np.isfinite(hi):
        inner = np.linspace(0.0, 1.0, 20001)[1:-1]
        return np.unique(lo + (hi - lo) * np.concatenate([edge, inner, 1 - edge]))
    far = np.geomspace(10.0, 1e4, 1500)
    near = np.linspace(-10.0, 10.0, 20001)
    if np.isfinite(lo):
        return np.unique(lo + np.concatenate([edge, near[near > 0], far]))
    if np.isfinite(hi):
        return np.unique(hi - np.concatenate([edge, near[near > 0], far]))
    return np.unique(np.concatenate([-far, near, far]))


def _finite_on_grid(expr, var, function, grid, role: str, label: str):
    """Values of ``function`` on ``grid``; overflow-only points dropped, true poles refused."""
    values = function(grid)
    bad = ~np.isfinite(values)
    if bad.any():  # overflow happens far out: check the first and the innermost bad points
        for where in {float(grid[np.argmax(bad)]), float(grid[bad][np.argmin(np.abs(grid[bad]))])}:
            exact = expr.subs(var, sp.Float(where, 30)).evalf()
            if not (exact.is_real and exact.is_finite):
                raise NotAdmissibleError(
                    f"{role} = {label} is not finite at {var} = {where:.6g} (value {exact}): it "
                    "must be a real function on all of its domain"
                )
        grid, values = grid[~bad], values[~bad]
    return grid, values


def _jump_at(function, a: float, b: float) -> float:
    """Size of a jump of ``function`` inside [a, b] (0 if the change shrinks when bisecting)."""
    fa, fb = function(np.array([a, b]))
    start = abs(fb - fa)
    for _ in range(80):
        m = 0.5 * (a + b)
        if not a < m < b:
            break
        fm = function(np.array([m]))[0]
        if abs(fm - fa) >= abs(fb - fm):
            b, fb = m, fm
        else:
            a, fa = m, fm
    final = abs(fb - fa)
    return final if final >= 0.5 * start and final > 1e-9 * (1 + abs(fa)) else 0.0


# ---------------------------------------------------------------------------- admissibility


_NOT_CONTINUOUS = (
    "a proximal map is continuous (1-Lipschitz), so σ is not admissible (hard thresholding, "
    "for example, is not a prox)"
)


def _check_sigma(sigma: sp.Expr, x: sp.Symbol, pieces: list[_Piece], label: str) -> str:
    """Refuse σ unless continuous, nondecreasing and 1-Lipschitz; say how this was shown."""
    for left, right in zip(pieces, pieces[1:], strict=False):
        a, b = _edge(left.expr, x, left.hi, "-"), _edge(right.expr, x, right.lo, "+")
        if a is not None and b is not None and abs(float(a - b)) > 1e-12 * (1 + abs(float(a))):
            raise NotAdmissibleError(
                f"σ = {label} is discontinuous at x = {left.hi}: it jumps from {a} to {b}; "
                + _NOT_CONTINUOUS
            )
    proved = True
    for piece in pieces:
        slope = sp.diff(piece.expr, x)
        increasing, lipschitz = _nonnegative(slope, x, piece), _nonnegative(1 - slope, x, piece)
        where = f"for x in ({piece.lo}, {piece.hi})"
        if increasing is False:
            raise NotAdmissibleError(
                f"σ = {label} is decreasing: σ'(x) = {slope} < 0 {where}; an admissible activation "
                "must be nondecreasing"
            )
        if lipschitz is False:
            raise NotAdmissibleError(
                f"σ = {label} is not 1-Lipschitz: σ'(x) = {slope} > 1 {where} (a proximal map is "
                "nonexpansive)"
            )
        try:
            continuous = continuous_domain(piece.expr, x, sp.Interval(piece.lo, piece.hi))
        except (NotImplementedError, ValueError, TypeError):
            continuous = sp.S.EmptySet
        proved &= bool(increasing and lipschitz and continuous == sp.Interval(piece.lo, piece.hi))
    if proved:
        return "admissibility (continuous, 0 ≤ σ' ≤ 1) proved symbolically"
    function = _numeric(sigma, x)
    if function is None:
        raise ValueError(f"σ = {label} cannot be evaluated numerically")
    breaks = np.array([float(p.hi) for p in pieces[:-1]])
    grid = np.unique(np.concatenate([_grid(-np.inf, np.inf), breaks, breaks - 1e-7, breaks + 1e-7]))
    grid, values = _finite_on_grid(sigma, x, function, grid, "σ", label)
    step = np.diff(grid)
    quotient = np.diff(values) / step
    slack = (
        1e-9 + 8 * np.finfo(float).eps * np.maximum(np.abs(values[1:]), np.abs(values[:-1])) / step
    )
    bad = (quotient < -slack) | (quotient > 1 + slack)
    for i in np.flatnonzero(bad)[np.argsort(-np.abs(np.diff(values))[bad])][:20]:
        jump = _jump_at(function, grid[i], grid[i + 1])
        if jump:
            raise NotAdmissibleError(
                f"σ = {label} is discontinuous at x ≈ {grid[i]:.6g} (jump of {jump:.3g}); "
                + _NOT_CONTINUOUS
            )
    if (quotient < -slack).any():
        i = int(np.argmin(quotient))
        raise NotAdmissibleError(
            f"σ = {label} is decreasing near x = {grid[i]:.6g} (difference quotient "
            f"{quotient[i]:.4g} < 0): an admissible activation must be nondecreasing"
        )
    if bad.any():
        central = np.abs(grid[:-1]) <= 10
        region = central if (bad & central).any() else np.ones_like(central)
        i = int(np.argmax(np.where(region, quotient, -np.inf)))
        raise NotAdmissibleError(
            f"σ = {label} is not 1-Lipschitz: its slope reaches {quotient[i]:.4g} > 1 near "
            f"x = {grid[i]:.6g} (a proximal map is nonexpansive)"
        )
    return (
        "admissibility checked numerically (no discontinuity, 0 ≤ σ' ≤ 1 on a dense grid of "
        "[-1e4, 1e4]); sympy could not prove it"
    )


def _check_psi(psi: sp.Expr, u: sp.Symbol, pieces: list[_Piece], label: str) -> str:
    """Refuse Ψ unless convex on its domain; say how convexity was shown."""
    proved = True
    for left, right in zip(pieces, pieces[1:], strict=False):
        b = left.hi
        values = _edge(left.expr, u, b, "-"), _edge(right.expr, u, b, "+")
        slopes = _edge(sp.diff(left.expr, u), u, b, "-"), _edge(sp.diff(right.expr, u), u, b, "+")
        if any(v is None or not v.is_finite for v in (*values, *slopes)):
            proved = False  # left to the grid check
            continue
        if abs(float(values[0] - values[1])) > 1e-12 * (1 + abs(float(values[0]))):
            raise NotAdmissibleError(
                f"Ψ = {label} is discontinuous at u = {b} (from {values[0]} to {values[1]}): a "
                "convex function is continuous inside its domain"
            )
        if bool(slopes[0] > slopes[1]):
            raise NotAdmissibleError(
                f"Ψ = {label} is not convex: its slope drops from {slopes[0]} to {slopes[1]} "
                f"at u = {b}"
            )
    for piece in pieces:
        curvature = sp.diff(piece.expr, u, 2)
        verdict = _nonnegative(curvature, u, piece)
        if verdict is False:
            raise NotAdmissibleError(
                f"Ψ = {label} is not convex: Ψ''(u) = {curvature} < 0 for u in "
                f"({piece.lo}, {piece.hi})"
            )
        try:
            continuous = continuous_domain(piece.expr, u, sp.Interval.open(piece.lo, piece.hi))
        except (NotImplementedError, ValueError, TypeError):
            continuous = sp.S.EmptySet
        proved &= bool(verdict) and continuous == sp.Interval.open(piece.lo, piece.hi)
    if proved:
        return "convexity of Ψ proved symbolically"
    function = _numeric(psi, u)
    if function is None:
        raise ValueError(f"Ψ = {label} cannot be evaluated numerically")
    grid = _grid(float(pieces[0].lo), float(pieces[-1].hi))
    grid, values = _finite_on_grid(psi, u, function, grid, "Ψ", label)
    slope = np.diff(values) / np.diff(grid)
    scale = np.maximum(np.abs(values[1:]), np.abs(values[:-1])) / np.diff(grid)
    slack = 1e-9 + 16 * np.finfo(float).eps * (scale[1:] + scale[:-1])
    drops = np.diff(slope) < -slack
    if drops.any():
        i = int(np.argmax(drops))
        raise NotAdmissibleError(
            f"Ψ = {label} is not convex: its slope decreases near u = {grid[i + 1]:.6g} "
            f"(from {slope[i]:.6g} to {slope[i + 1]:.6g})"
        )
    return "convexity of Ψ checked numerically on a dense grid; sympy could not prove it"


# ---------------------------------------------------------------------------- derivations


def _require_numeric(pieces: list[_Piece], var: sp.Symbol, what: str) -> None:
    """Refuse a formula that numpy/scipy cannot evaluate (bregmod needs numbers from it)."""
    if not _PiecewiseNumeric(pieces, var).ok:
        raise ValueError(f"{what} cannot be evaluated numerically with numpy/scipy")


def _other_symbol(var: sp.Symbol, preferred: str) -> sp.Symbol:
    """A real symbol named ``preferred`` (or a variant) different from ``var``."""
    name = preferred if preferred != var.name else preferred + "_"
    return sp.Symbol(name, real=True)


def _real_form(expr: sp.Expr, var: sp.Symbol, piece: _Piece) -> sp.Expr:
    """The real part of ``expr`` on the piece (for antiderivatives returned with complex logs).

    On an interval where ``expr`` is analytic, Re(expr) has the same real derivative.
    """
    p = sp.Symbol("p", positive=True)
    if piece.lo.is_finite:
        point, back = piece.lo + p, var - piece.lo
    elif piece.hi.is_finite:
        point, back = piece.hi - p, piece.hi - var
    else:
        return _tidy(sp.re(expr))
    return _tidy(sp.re(expr.subs(var, point))).subs(p, back)


def _integral(expr: sp.Expr, var: sp.Symbol, piece: _Piece) -> sp.Expr | None:
    """An antiderivative of ``expr`` on the piece, real-valued, or None if sympy finds none."""
    try:
        result = sp.integrate(expr, var)
    except (NotImplementedError, ValueError, TypeError, RecursionError):
        return None
    if result.has(sp.Integral):
        return None
    function = _numeric(result, var)
    if function is None or not np.isfinite(function(piece.samples())).all():
        result = _real_form(result, var, piece)
    return result


def _phi_conj_from_sigma(pieces: list[_Piece], x: sp.Symbol, at_zero: sp.Expr) -> list | None:
    """Φ* = ∫σ piece by piece, continuous, with Φ*(0) = ``at_zero``; None if sympy fails."""
    antiderivatives = [_integral(p.expr, x, p) for p in pieces]
    if any(F is None for F in antiderivatives):
        return None
    k0 = next(k for k, p in enumerate(pieces) if p.lo <= 0 <= p.hi)
    constants: list[sp.Expr | None] = [None] * len(pieces)
    start = _edge(antiderivatives[k0], x, sp.Integer(0), "+")
    if start is None:
        return None
    constants[k0] = at_zero - start
    order = [(k, k - 1, pieces[k].lo) for k in range(k0 + 1, len(pieces))]
    order += [(k, k + 1, pieces[k].hi) for k in range(k0 - 1, -1, -1)]
    for k, known, point in order:
        side_known, side_new = ("-", "+") if known < k else ("+", "-")
        a = _edge(antiderivatives[known], x, point, side_known)
        b = _edge(antiderivatives[k], x, point, side_new)
        if a is None or b is None:
            return None
        constants[k] = _tidy(a + constants[known] - b)
    result = []
    for F, c, p in zip(antiderivatives, constants, pieces, strict=True):
        candidate = _tidy(F + c)
        if _identity(sp.diff(candidate, x) - p.expr, x, p) is None:
            return None
        result.append(_Piece(candidate, p.lo, p.hi))
    return result


def _psi_from_inverse(
    sigma_piece: _Piece, inverse: _Piece, phi_conj: _Piece, x: sp.Symbol, u: sp.Symbol
) -> sp.Expr | None:
    """Ψ = ∫(σ⁻¹(u) − u) du on one piece, constant fixed by Fenchel–Young; None if unverified."""
    g = inverse.expr
    candidates = []
    antiderivative = _integral(g - u, u, inverse)
    if antiderivative is not None:
        x0 = sigma_piece.anchor()
        u0 = _tidy(sigma_piece.expr.subs(x, x0))
        value = x0 * u0 - phi_conj.expr.subs(x, x0) - u0**2 / 2
        candidates.append(antiderivative + _tidy(value - antiderivative.subs(u, u0)))
    # Fenchel–Young directly: Ψ(u) = u g(u) − Φ*(g(u)) − u²/2
    candidates.append(_tidy(u * g - phi_conj.expr.subs(x, g) - u**2 / 2))
    for psi in candidates:
        fenchel_young = psi.subs(u, sigma_piece.expr) + sigma_piece.expr**2 / 2 + phi_conj.expr
        if _identity(fenchel_young - x * sigma_piece.expr, x, sigma_piece) is not None:
            return psi
    return None


def derive_from_sigma(
    expr, var="x", *, time_limit: float | None = TIME_LIMIT
) -> Derivation:
    """The derivation from a formula for σ (check admissibility, derive Ψ and Φ*), stopped
    after ``time_limit`` seconds (:func:`bregmod.symbolic.activation_from_sigma` documents the
    method, the arguments and the errors)."""
    with _time_limit(time_limit, f"σ = {shorten(str(expr))}"):
        return _from_sigma(expr, var)


def _from_sigma(expr, var) -> Derivation:
    """The derivation of ``derive_from_sigma`` (without its time limit)."""
    sigma, x = _symbolic_input(expr, var, "σ")
    label = str(sigma)
    pieces = _split(sigma, x, -sp.oo, sp.oo)
    _require_numeric(pieces, x, f"σ = {label}")
    notes = [_check_sigma(sigma, x, pieces, label)]  # a step function is refused here
    if not any(p.expr.has(x) for p in pieces):
        raise ValueError(
            f"σ = {label} is constant: it is the prox of the indicator of one point, which bregmod "
            "does not support as an activation"
        )
    u = _other_symbol(x, "u")
    low = _edge(pieces[0].expr, x, -sp.oo, "+")
    high = _edge(pieces[-1].expr, x, sp.oo, "-")
    if low is None or high is None:
        raise ValueError(f"could not determine the limits of σ = {label} at ±∞ with sympy")
    value_range = (
        float(low), float(high), not pieces[0].expr.has(x), not pieces[-1].expr.has(x)
    )
    sigma_at_zero = next(_edge(p.expr, x, sp.Integer(0), "+") for p in pieces if p.lo <= 0 < p.hi)
    phi_conj = _phi_conj_from_sigma(pieces, x, -(sigma_at_zero**2) / 2)
    notes.append("constants fixed by Ψ(σ(0)) = 0, i.e. Φ*(0) = −σ(0)²/2")
    moving = [(k, p) for k, p in enumerate(pieces) if p.expr.has(x)]
    inverse: list[_Piece] | None = []
    for _, p in moving:
        g = _invert(p, x, u)
        a, b = _edge(p.expr, x, p.lo, "+"), _edge(p.expr, x, p.hi, "-")
        if g is None or a is None or b is None:
            inverse = None
            break
        inverse.append(_Piece(g, a, b))
    psi: list[_Piece] | None = None
    if phi_conj is not None and inverse is not None:
        psi = []
        for (k, p), g in zip(moving, inverse, strict=True):
            psi_k = _psi_from_inverse(p, g, phi_conj[k], x, u)
            if psi_k is None:
                psi = None
                break
            psi.append(_Piece(psi_k, g.lo, g.hi))
    if phi_conj is None:
        notes.append("no closed form for Φ* = ∫σ: Φ* is computed by quadrature")
    if inverse is None:
        notes.append("no closed form for σ⁻¹: it is computed by a root finder")
    if psi is None:
        notes.append(
            "no verified closed form for Ψ: Ψ(u) = u σ⁻¹(u) − Φ*(σ⁻¹(u)) − u²/2 numerically"
        )
    return _derivation(
        source=f"σ = {label}",
        x=x,
        u=u,
        sigma=pieces,
        sigma_inv=inverse,
        psi=None if psi is None else _merge(psi),
        phi_conj=phi_conj,
        domain_bounds=(low, high),
        value_range=value_range,
        notes=notes,
    )


def derive_from_psi(
    expr, var="u", domain=None, *, time_limit: float | None = TIME_LIMIT
) -> Derivation:
    """The derivation from a formula for Ψ (the Legendre transform of Φ = ½u² + Ψ), stopped
    after ``time_limit`` seconds (:func:`bregmod.symbolic.activation_from_psi` documents the
    method, the arguments and the errors)."""
    with _time_limit(time_limit, f"Ψ = {shorten(str(expr))}"):
        return _from_psi(expr, var, domain)


def _from_psi(expr, var, domain) -> Derivation:
    """The derivation of ``derive_from_psi`` (without its time limit)."""
    psi, u = _symbolic_input(expr, var, "Ψ")
    lo, hi = _domain_bounds(domain)
    label = str(psi)
    pieces = _split(psi, u, lo, hi)
    _require_numeric(pieces, u, f"Ψ = {label}")
    notes = [_check_psi(psi, u, pieces, label)]
    x = _other_symbol(u, "x")
    gradient = [_Piece(sp.expand(u + sp.diff(p.expr, u)), p.lo, p.hi) for p in pieces]
    breaks = [(_edge(g.expr, u, g.lo, "+"), _edge(g.expr, u, g.hi, "-")) for g in gradient]
    sigma, phi_conj = _legendre(gradient, breaks, pieces, u, x)
    if sigma is None:
        notes.append("no closed form for σ (Legendre transform): σ and Φ* are computed numerically")
    elif phi_conj is None:
        notes.append("Φ* = xσ − Φ(σ) did not verify: Φ* is computed numerically")
    closed_lo = breaks[0][0] is not None and breaks[0][0].is_finite
    closed_hi = breaks[-1][1] is not None and breaks[-1][1].is_finite
    return _derivation(
        source=f"Ψ = {label} on [{lo}, {hi}]",
        x=x,
        u=u,
        sigma=sigma,
        sigma_inv=gradient,
        psi=pieces,
        phi_conj=phi_conj,
        domain_bounds=(lo, hi),
        value_range=(float(lo), float(hi), closed_lo, closed_hi),
        notes=notes,
    )


def _legendre(
    gradient: list[_Piece], breaks: list, pieces: list[_Piece], u: sp.Symbol, x: sp.Symbol
) -> tuple[list[_Piece] | None, list[_Piece] | None]:
    """σ = (Φ')⁻¹ and Φ* = xσ − Φ(σ) piece by piece; ``(None, None)`` if σ has no closed form.

    σ is constant (= the kink or the end point c) across the jumps of Φ', where
    Φ*(x) = c x − c²/2 − Ψ(c). Φ* is None when Φ*' = σ cannot be verified.
    """
    if any(a is None or b is None for a, b in breaks):
        return None, None
    # (σ piece, Ψ piece whose formula applies or the constant σ = c with the side of Ψ(c))
    plan: list[tuple[_Piece, _Piece, str | None]] = []
    if breaks[0][0] != -sp.oo:
        plan.append((_Piece(pieces[0].lo, -sp.oo, breaks[0][0]), pieces[0], "+"))
    for k, g in enumerate(gradient):
        inverse = _invert(g, u, x)
        if inverse is None:
            return None, None
        plan.append((_Piece(inverse, breaks[k][0], breaks[k][1]), pieces[k], None))
        if k + 1 < len(gradient) and bool(breaks[k][1] < breaks[k + 1][0]):
            plan.append((_Piece(g.hi, breaks[k][1], breaks[k + 1][0]), pieces[k], "-"))
    if breaks[-1][1] != sp.oo:
        plan.append((_Piece(pieces[-1].hi, breaks[-1][1], sp.oo), pieces[-1], "-"))
    sigma = [s for s, _, _ in plan]
    phi_conj = []
    for s, psi_piece, side in plan:
        if side is None:
            psi_value = psi_piece.expr.subs(u, s.expr)
        else:
            psi_value = _edge(psi_piece.expr, u, s.expr, side)
            if psi_value is None:
                return sigma, None
        candidate = _tidy(x * s.expr - s.expr**2 / 2 - psi_value)
        if _identity(sp.diff(candidate, x) - s.expr, x, s) is None:
            return sigma, None
        phi_conj.append(_Piece(candidate, s.lo, s.hi))
    return sigma, phi_conj


# ---------------------------------------------------------------------------- the result


@dataclass(frozen=True)
class Derivation:
    """What a derivation found: verified formulas, their compiled numeric forms, the domain
    of Ψ and the range of σ (:class:`bregmod.activations.SymbolicActivation` is built from it).

    Attributes
    ----------
    name : str
        ``"Symbolic(<formula>)"``, with ``" [numeric: no closed form]"`` unless ``closed_form``.
    closed_form : bool
        True when σ, σ⁻¹, Ψ and Φ* all have verified closed forms that numpy/scipy evaluate.
    notes : tuple of str
        How admissibility was established, how constants were fixed, what is numerical.
    x_symbol, u_symbol : sympy.Symbol
        The variables of σ, Φ* (x) and of Ψ, σ⁻¹ (u).
    sigma, sigma_inv, psi, phi_conj : callable or None
        float64 numpy functions of the closed forms (None where there is none).
    sigma_pieces, phi_conj_pieces : list of pieces or None
        The verified pieces of σ and Φ* (for symbolic re-checks).
    psi_expr, sigma_expr, sigma_inv_expr, phi_conj_expr : sympy.Expr or None
        The closed forms (``Piecewise`` for several pieces).
    domain, range : tuple (lo, hi, lo_closed, hi_closed)
        dom Ψ and the range of σ.
    domain_bounds : tuple of sympy.Expr
        The exact end points of dom Ψ.
    ends : tuple of (float, float)
        (end point, Ψ there) at the closed finite end points of dom Ψ.
    phi_conj_at_zero : float or None
        Φ*(0) = −σ(0)²/2 (None without a closed-form σ).
    """

    name: str
    closed_form: bool
    notes: tuple[str, ...]
    x_symbol: sp.Symbol
    u_symbol: sp.Symbol
    sigma: Callable | None
    sigma_inv: Callable | None
    psi: Callable | None
    phi_conj: Callable | None
    sigma_pieces: list[_Piece] | None
    phi_conj_pieces: list[_Piece] | None
    psi_expr: sp.Expr | None
    sigma_expr: sp.Expr | None
    sigma_inv_expr: sp.Expr | None
    phi_conj_expr: sp.Expr | None
    domain: tuple[float, float, bool, bool]
    range: tuple[float, float, bool, bool]
    domain_bounds: tuple[sp.Expr, sp.Expr]
    ends: tuple[tuple[float, float], ...]
    phi_conj_at_zero: float | None


def _compile(pieces: list[_Piece] | None, var: sp.Symbol) -> tuple:
    """``(numeric function, pieces)``, both None unless every piece can be evaluated."""
    if pieces is None:
        return None, None
    function = _PiecewiseNumeric(pieces, var)
    return (function, pieces) if function.ok else (None, None)


def _derivation(
    *,
    source: str,
    x: sp.Symbol,
    u: sp.Symbol,
    sigma: list[_Piece] | None,
    sigma_inv: list[_Piece] | None,
    psi: list[_Piece] | None,
    phi_conj: list[_Piece] | None,
    domain_bounds: tuple[sp.Expr, sp.Expr],
    value_range: tuple[float, float, bool, bool],
    notes: list[str],
) -> Derivation:
    """The :class:`Derivation` of the pieces found; a closed form counts only if numpy/scipy
    can evaluate it. dom Ψ is closed at a finite end point where Ψ has a finite limit."""
    sigma_f, sigma = _compile(sigma, x)
    sigma_inv_f, sigma_inv = _compile(sigma_inv, u)
    psi_f, psi = _compile(psi, u)
    phi_conj_f, phi_conj = _compile(phi_conj, x)
    closed_form = all(part is not None for part in (sigma, sigma_inv, psi, phi_conj))
    lo, hi = domain_bounds
    ends: list[tuple[float, float]] = []  # Ψ at the closed finite end points
    if psi is None:  # Ψ known through σ⁻¹ only: dom Ψ taken as the range of σ
        domain = value_range
        notes.append("numeric Ψ: dom Ψ is taken to be the range of σ")
    else:
        closed = []
        for end, side, piece in ((lo, "+", psi[0]), (hi, "-", psi[-1])):
            value = _edge(piece.expr, u, end, side) if end.is_finite else None
            closed.append(value is not None and bool(value.is_finite))
            if closed[-1]:
                ends.append((float(end), float(value)))
        domain = (float(lo), float(hi), closed[0], closed[1])
    return Derivation(
        name=f"Symbolic({source})" + ("" if closed_form else " [numeric: no closed form]"),
        closed_form=closed_form,
        notes=tuple(notes),
        x_symbol=x,
        u_symbol=u,
        sigma=sigma_f,
        sigma_inv=sigma_inv_f,
        psi=psi_f,
        phi_conj=phi_conj_f,
        sigma_pieces=sigma,
        phi_conj_pieces=phi_conj,
        psi_expr=None if psi is None else _as_piecewise(psi, u),
        sigma_expr=None if sigma is None else _as_piecewise(sigma, x),
        sigma_inv_expr=None if sigma_inv is None else _as_piecewise(sigma_inv, u),
        phi_conj_expr=None if phi_conj is None else _as_piecewise(phi_conj, x),
        domain=domain,
        range=value_range,
        domain_bounds=(lo, hi),
        ends=tuple(ends),
        phi_conj_at_zero=(None if sigma_f is None
                          else -0.5 * float(sigma_f(np.zeros(1))[0]) ** 2),
    )
