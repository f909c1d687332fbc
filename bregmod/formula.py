"""Safe parsing of user formulas into sympy expressions (no ``eval``, no ``sympify``).

``parse_expression`` walks Python's ``ast`` of the text and builds sympy objects from a small
whitelist of functions (``exp``, ``log``, ``tanh``, ``Abs``, ``Max``, ``Piecewise``, …),
operators and constants; anything else is refused with a message naming it. The size limits
(:func:`check_size`: nesting depth, constant bit length, text length, exponents) bound the
work of the symbolic derivations that consume the result (:mod:`bregmod.derivation`).
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Sequence

import numpy as np
import sympy as sp

from bregmod.errors import ExpressionTooComplexError

__all__ = ["check_size", "parse_expression", "shorten"]

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


class _ExpressionBuilder:
    """Build a sympy expression from a whitelisted Python ``ast`` (no ``eval`` anywhere)."""

    def __init__(self, text: str, symbols: dict[str, sp.Symbol]):
        self.text = text
        self.symbols = symbols

    def refuse(self, what: str) -> ValueError:
        return ValueError(f"disallowed construct in expression {self.text!r}: {what}")

    def too_large(self, what: str) -> ExpressionTooComplexError:
        return ExpressionTooComplexError(
            f"expression {shorten(self.text)} holds {what} (exact constants are limited to "
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


def shorten(text: str, limit: int = 60) -> str:
    """``repr(text)``, cut in the middle when longer than ``limit`` (for error messages)."""
    shown = repr(text)
    return shown if len(shown) <= limit else f"{shown[: limit // 2]}…{shown[-limit // 2 :]}"


def _bits(value: sp.Rational) -> int:
    """Bit length of the larger of numerator and denominator of a sympy rational."""
    return max(abs(int(value.p)).bit_length(), int(value.q).bit_length())


def check_size(expr: sp.Expr, label: str) -> None:
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
    check_size(result, shorten(text))
    return result
