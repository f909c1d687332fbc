"""Activations from formulas: derive Ψ, σ and Φ* symbolically, verify them, parse safely.

docs/math/activations.md: an activation σ is admissible iff σ = prox_Ψ for a proper, convex,
lsc Ψ. With Φ = ½u² + Ψ,

    σ = ∇Φ* = (∇Φ)⁻¹,   σ⁻¹(u) = u + Ψ'(u),   Φ(σ(x)) + Φ*(x) = x σ(x)   (Fenchel–Young).

``activation_from_psi`` takes Ψ and solves the stationarity condition x = u + Ψ'(u) for u
(the Legendre transform of Φ); ``activation_from_sigma`` takes σ, checks that it is
nondecreasing and 1-Lipschitz (a scalar prox map), and recovers Ψ(u) = ∫(σ⁻¹(u) − u) du and
Φ*(x) = ∫σ(x) dx. Both work piece by piece on piecewise expressions (``Abs``, ``Max``,
``Min``, ``sign``, ``Heaviside`` and ``Piecewise`` are split into smooth pieces), check every
closed form they find (symbolically, else numerically) and fall back to numerical evaluation
— flagged by ``closed_form=False`` — wherever sympy finds none. ``verify`` checks any
activation (built-in or derived) against the identities of docs/math/activations.md,
docs/math/bregman.md, and
``parse_expression`` turns user text into sympy without evaluating code.
"""

from __future__ import annotations

import ast
import contextlib
import operator
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import sympy as sp
from scipy.integrate import quad_vec
from scipy.optimize.elementwise import bracket_root, find_root
from scipy.special import spence
from sympy.calculus.util import continuous_domain
from sympy.codegen.rewriting import expm1_opt, log1p_opt, optimize

from bregmod.activations import Activation, Interval
from bregmod.errors import ExpressionTooComplexError, NotAdmissibleError, describe_entries

__all__ = [
    "CheckResult",
    "SymbolicActivation",
    "VerificationReport",
    "activation_from_psi",
    "activation_from_sigma",
    "parse_expression",
    "verify",
]

# ---------------------------------------------------------------------------- parser

_UNARY_FUNCTIONS: dict[str, Callable] = {
    "exp": sp.exp,
    "log": sp.log,
    "sqrt": sp.sqrt,
    "tanh": sp.tanh,
    "sinh": sp.sinh,
    "cosh": sp.cosh,
    "atanh": sp.atanh,
    "asinh": sp.asinh,
    "atan": sp.atan,
    "arctan": sp.atan,
    "sin": sp.sin,
    "cos": sp.cos,
    "abs": sp.Abs,
    "Abs": sp.Abs,
    "sign": sp.sign,
    "erf": sp.erf,
    "Heaviside": sp.Heaviside,
}
_VARIADIC_FUNCTIONS: dict[str, Callable] = {
    "max": sp.Max,
    "Max": sp.Max,
    "min": sp.Min,
    "Min": sp.Min,
}
_CONSTANTS: dict[str, sp.Expr] = {"pi": sp.pi, "E": sp.E}
_BINARY_OPERATORS: dict[type, Callable] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_COMPARISONS: dict[type, Callable] = {ast.Lt: sp.Lt, ast.LtE: sp.Le, ast.Gt: sp.Gt, ast.GtE: sp.Ge}
_RESERVED = set(_UNARY_FUNCTIONS) | set(_VARIADIC_FUNCTIONS) | set(_CONSTANTS) | {"Piecewise"}
_MAX_TEXT_LENGTH = 2000
_MAX_EXPONENT = 1000
_MAX_CONSTANT_BITS = 4096  # integers and rationals up to ~1233 decimal digits
_MAX_DEPTH = 24  # nesting of function calls and operators after sympy's flattening
_TIME_LIMIT = 120.0  # seconds for one derivation (activation_from_sigma / _psi)
_SIMPLIFY_OPS = 60  # larger expressions are not simplified (sympy.simplify gets slow)


class _ExpressionBuilder:
    """Build a sympy expression from a whitelisted Python ``ast`` (no ``eval`` anywhere)."""

    def __init__(self, text: str, symbols: dict[str, sp.Symbol]):
        self.text = text
        self.symbols = symbols

    def refuse(self, what: str) -> ValueError:
        return ValueError(f"disallowed construct in expression {self.text!r}: {what}")

    def too_large(self, what: str) -> ExpressionTooComplexError:
        return ExpressionTooComplexError(
            f"expression {_shorten(self.text)} holds {what} (exact constants are limited to "
            f"{_MAX_CONSTANT_BITS} bits, about {int(_MAX_CONSTANT_BITS * 0.30103)} digits)"
        )

    def expr(self, node: ast.AST) -> sp.Expr:
        if isinstance(node, ast.Constant):
            return self.number(node.value)
        if isinstance(node, ast.Name):
            return self.name(node.id)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.expr(node.operand)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY_OPERATORS:
            left, right = self.expr(node.left), self.expr(node.right)
            if isinstance(node.op, ast.Pow) and right.is_number:
                if abs(right) > _MAX_EXPONENT:
                    raise self.refuse(f"exponent {right} (|exponent| must be ≤ {_MAX_EXPONENT})")
                if left.is_Rational and right.is_Rational:
                    bits = _bits(left) * abs(float(right))
                    if bits > _MAX_CONSTANT_BITS:
                        raise self.too_large(f"a power whose value has about {bits:.3g} bits")
            result = _BINARY_OPERATORS[type(node.op)](left, right)
            if result.is_Rational and _bits(result) > _MAX_CONSTANT_BITS:
                raise self.too_large(f"a constant of {_bits(result)} bits")
            return result
        if isinstance(node, ast.Call):
            return self.call(node)
        raise self.refuse(_describe_node(node))

    def number(self, value) -> sp.Expr:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.refuse(f"constant {value!r} (only real numbers are allowed)")
        if isinstance(value, float) and not np.isfinite(value):
            raise self.refuse(f"non-finite number {value!r}")
        return sp.Integer(value) if isinstance(value, int) else sp.Rational(repr(value))

    def name(self, identifier: str) -> sp.Expr:
        if identifier.startswith("__"):
            raise self.refuse(f"dunder name {identifier!r}")
        if identifier in self.symbols:
            return self.symbols[identifier]
        if identifier in _CONSTANTS:
            return _CONSTANTS[identifier]
        if identifier in _RESERVED:
            raise self.refuse(f"function {identifier!r} used without a call")
        allowed = sorted(self.symbols) + sorted(_CONSTANTS)
        raise self.refuse(f"unknown name {identifier!r} (allowed names: {allowed})")

    def call(self, node: ast.Call) -> sp.Expr:
        if not isinstance(node.func, ast.Name):
            raise self.refuse(f"call of {_describe_node(node.func)} (only named functions)")
        fname = node.func.id
        if node.keywords:
            raise self.refuse(f"keyword arguments in a call of {fname!r}")
        if any(isinstance(arg, ast.Starred) for arg in node.args):
            raise self.refuse(f"starred arguments in a call of {fname!r}")
        if fname == "Piecewise":
            return self.piecewise(node.args)
        if fname in _UNARY_FUNCTIONS:
            if len(node.args) != 1:
                raise self.refuse(f"{fname!r} takes one argument, got {len(node.args)}")
            return _UNARY_FUNCTIONS[fname](self.expr(node.args[0]))
        if fname in _VARIADIC_FUNCTIONS:
            if len(node.args) < 2:
                raise self.refuse(f"{fname!r} needs at least two arguments")
            return _VARIADIC_FUNCTIONS[fname](*(self.expr(arg) for arg in node.args))
        if fname.startswith("__"):
            raise self.refuse(f"call of dunder name {fname!r}")
        allowed = sorted(set(_UNARY_FUNCTIONS) | set(_VARIADIC_FUNCTIONS) | {"Piecewise"})
        raise self.refuse(f"call of unknown function {fname!r} (allowed: {allowed})")

    def piecewise(self, args: list[ast.expr]) -> sp.Expr:
        if not args:
            raise self.refuse("Piecewise without branches")
        branches = []
        for arg in args:
            if not (isinstance(arg, ast.Tuple) and len(arg.elts) == 2):
                raise self.refuse("Piecewise branch that is not an (expression, condition) pair")
            branches.append((self.expr(arg.elts[0]), self.condition(arg.elts[1])))
        return sp.Piecewise(*branches)

    def condition(self, node: ast.AST) -> sp.Basic:
        if isinstance(node, ast.Constant) and node.value is True:
            return sp.true
        if isinstance(node, ast.Compare):
            if not all(type(op) in _COMPARISONS for op in node.ops):
                raise self.refuse("comparison other than <, <=, >, >= in a Piecewise condition")
            terms = [self.expr(node.left), *(self.expr(c) for c in node.comparators)]
            return sp.And(
                *(
                    _COMPARISONS[type(op)](a, b)
                    for op, a, b in zip(node.ops, terms, terms[1:], strict=False)
                )
            )
        if isinstance(node, ast.BoolOp):
            parts = [self.condition(value) for value in node.values]
            return sp.And(*parts) if isinstance(node.op, ast.And) else sp.Or(*parts)
        raise self.refuse(f"{_describe_node(node)} as a Piecewise condition")


def _shorten(text: str, limit: int = 60) -> str:
    """``repr(text)``, cut in the middle when longer than ``limit`` (for error messages)."""
    shown = repr(text)
    return shown if len(shown) <= limit else f"{shown[: limit // 2]}…{shown[-limit // 2 :]}"


def _bits(value: sp.Rational) -> int:
    """Bit length of the larger of numerator and denominator of a sympy rational."""
    return max(abs(int(value.p)).bit_length(), int(value.q).bit_length())


def _check_size(expr: sp.Expr, label: str) -> None:
    """Refuse expressions that nest deeper than ``_MAX_DEPTH`` or hold oversized constants.

    Both bound the work of the symbolic derivation: sympy recurses through the tree (a
    150-level ``tanh(tanh(…))`` exhausts Python's stack) and its arithmetic on huge exact
    constants takes unbounded time.
    """
    stack = [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > _MAX_DEPTH:
            raise ExpressionTooComplexError(
                f"expression {label} is nested too deeply (more than {_MAX_DEPTH} levels of "
                "functions and operators)"
            )
        if node.is_Rational and _bits(node) > _MAX_CONSTANT_BITS:
            raise ExpressionTooComplexError(
                f"expression {label} holds a constant of {_bits(node)} bits (constants are "
                f"limited to {_MAX_CONSTANT_BITS} bits)"
            )
        stack.extend((arg, depth + 1) for arg in node.args)


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


def _describe_node(node: ast.AST) -> str:
    """Human-readable name of a disallowed syntax node."""
    names = {
        ast.Attribute: "attribute access",
        ast.Subscript: "subscript",
        ast.Lambda: "lambda",
        ast.List: "list display",
        ast.Tuple: "tuple",
        ast.Dict: "dict display",
        ast.Set: "set display",
        ast.ListComp: "comprehension",
        ast.GeneratorExp: "generator expression",
        ast.Compare: "comparison",
        ast.BoolOp: "boolean operator",
        ast.IfExp: "conditional expression",
        ast.NamedExpr: "assignment expression",
        ast.JoinedStr: "f-string",
        ast.Await: "await",
        ast.Starred: "starred expression",
    }
    if isinstance(node, ast.Attribute):
        return f"attribute access '.{node.attr}'"
    if isinstance(node, (ast.BinOp, ast.UnaryOp)):
        return f"operator {type(node.op).__name__}"
    return names.get(type(node), type(node).__name__)


def parse_expression(text: str, variables: Sequence[str] = ("x",)) -> sp.Expr:
    """Parse a formula into a sympy expression without evaluating any code.

    The text is parsed with Python's ``ast`` module and the tree is walked by hand; only
    real numeric constants, the given variable names, ``pi``, ``E``, the operators
    ``+ − * / **`` (and unary ±), and calls of whitelisted functions (``exp log sqrt tanh
    sinh cosh atanh asinh atan sin cos abs/Abs max/Max min/Min sign erf Heaviside`` and
    ``Piecewise((expr, cond), ..., (expr, True))`` with conditions built from ``< <= > >=``,
    ``and``, ``or``) are accepted. ``sympy.sympify``/``parse_expr`` are never called on the
    text (they ``eval``). Decimal literals become exact rationals (``0.1`` → 1/10).

    Parameters
    ----------
    text : str
        The formula, e.g. ``"u*atanh(u) + log(1 - u**2)/2 - u**2/2"``.
    variables : sequence of str
        Allowed variable names; each becomes a real sympy ``Symbol``.

    Returns
    -------
    sympy.Expr

    Raises
    ------
    ValueError
        For syntax errors and for every disallowed construct (attribute access, subscripts,
        lambdas, strings, dunder or unknown names, unknown functions, ...), naming it.
    """
    if not isinstance(text, str):
        raise TypeError(f"expression text must be a str, got {type(text).__name__}")
    if len(text) > _MAX_TEXT_LENGTH:
        raise ValueError(f"expression is longer than {_MAX_TEXT_LENGTH} characters")
    if isinstance(variables, str):
        variables = (variables,)
    symbols = {}
    for name in variables:
        if not (isinstance(name, str) and name.isidentifier()) or name.startswith("__"):
            raise ValueError(f"variable name {name!r} is not a plain identifier")
        if name in _RESERVED:
            raise ValueError(f"variable name {name!r} clashes with a function or constant")
        symbols[name] = sp.Symbol(name, real=True)
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"expression {text!r} is not valid syntax: {exc.msg}") from None
    builder = _ExpressionBuilder(text, symbols)
    try:
        result = builder.expr(tree.body)
    except RecursionError:
        raise ValueError(f"expression {text!r} is nested too deeply") from None
    if result.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        raise ValueError(f"expression {text!r} contains an infinite or undefined constant")
    _check_size(result, _shorten(text))
    return result


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
    _check_size(expr, f"{role}")
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
    """End points of dom Ψ from an ``Interval``, a sympy ``Interval``, a pair, or None (ℝ)."""
    if domain is None:
        lo, hi = -sp.oo, sp.oo
    elif isinstance(domain, Interval):
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


def activation_from_sigma(
    expr, var="x", *, time_limit: float | None = _TIME_LIMIT
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
    with _time_limit(time_limit, f"σ = {_shorten(str(expr))}"):
        return _from_sigma(expr, var)


def _from_sigma(expr, var) -> SymbolicActivation:
    """The derivation of ``activation_from_sigma`` (without its time limit)."""
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
    value_range = Interval(
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
    return SymbolicActivation(
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


def activation_from_psi(
    expr, var="u", domain=None, *, time_limit: float | None = _TIME_LIMIT
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
    with _time_limit(time_limit, f"Ψ = {_shorten(str(expr))}"):
        return _from_psi(expr, var, domain)


def _from_psi(expr, var, domain) -> SymbolicActivation:
    """The derivation of ``activation_from_psi`` (without its time limit)."""
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
    return SymbolicActivation(
        source=f"Ψ = {label} on [{lo}, {hi}]",
        x=x,
        u=u,
        sigma=sigma,
        sigma_inv=gradient,
        psi=pieces,
        phi_conj=phi_conj,
        domain_bounds=(lo, hi),
        value_range=Interval(float(lo), float(hi), closed_lo, closed_hi),
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


# ---------------------------------------------------------------------------- the activation


class SymbolicActivation(Activation):
    """An activation derived from a formula (``activation_from_psi``/``activation_from_sigma``).

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
    """

    def __init__(
        self,
        *,
        source: str,
        x: sp.Symbol,
        u: sp.Symbol,
        sigma: list[_Piece] | None,
        sigma_inv: list[_Piece] | None,
        psi: list[_Piece] | None,
        phi_conj: list[_Piece] | None,
        domain_bounds: tuple[sp.Expr, sp.Expr],
        value_range: Interval,
        notes: list[str],
    ):
        self.x_symbol, self.u_symbol = x, u
        # a closed form counts only if numpy/scipy can evaluate it
        self._sigma, sigma = self._compile(sigma, x)
        self._sigma_inv, sigma_inv = self._compile(sigma_inv, u)
        self._psi_closed, psi = self._compile(psi, u)
        self._phi_conj_closed, phi_conj = self._compile(phi_conj, x)
        self._sigma_pieces, self._phi_conj_pieces = sigma, phi_conj
        self.closed_form = all(part is not None for part in (sigma, sigma_inv, psi, phi_conj))
        self.name = f"Symbolic({source})" + (
            "" if self.closed_form else " [numeric: no closed form]"
        )
        self.psi_expr = None if psi is None else _as_piecewise(psi, u)
        self.sigma_expr = None if sigma is None else _as_piecewise(sigma, x)
        self.sigma_inv_expr = None if sigma_inv is None else _as_piecewise(sigma_inv, u)
        self.phi_conj_expr = None if phi_conj is None else _as_piecewise(phi_conj, x)
        self.range = value_range
        lo, hi = domain_bounds
        self._sympy_bounds = (lo, hi)
        self._ends: list[tuple[float, float]] = []  # Ψ at the closed finite end points
        if psi is None:  # Ψ known through σ⁻¹ only: dom Ψ taken as the range of σ
            self.domain = value_range
            notes.append("numeric Ψ: dom Ψ is taken to be the range of σ")
        else:
            closed = []
            for end, side, piece in ((lo, "+", psi[0]), (hi, "-", psi[-1])):
                value = _edge(piece.expr, u, end, side) if end.is_finite else None
                closed.append(value is not None and bool(value.is_finite))
                if closed[-1]:
                    self._ends.append((float(end), float(value)))
            self.domain = Interval(float(lo), float(hi), *closed)
        self.notes = tuple(notes)
        self._phi_conj_at_zero = None
        if self._sigma is not None:
            self._phi_conj_at_zero = -0.5 * float(self._sigma(np.zeros(1))[0]) ** 2

    @staticmethod
    def _compile(pieces: list[_Piece] | None, var: sp.Symbol) -> tuple:
        """``(numeric function, pieces)``, both None unless every piece can be evaluated."""
        if pieces is None:
            return None, None
        function = _PiecewiseNumeric(pieces, var)
        return (function, pieces) if function.ok else (None, None)

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
        lo, hi = self._sympy_bounds
        interval = sp.Interval(lo, hi, not self.domain.lo_closed, not self.domain.hi_closed)
        return self.psi_expr.xreplace({self.u_symbol: u}), interval


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
