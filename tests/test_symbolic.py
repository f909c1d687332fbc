"""Tests of bregmod.symbolic: safe parsing, derivations from σ and from Ψ, and verify().

Independent truths: the closed forms of docs/math/activations.md written out in numpy below, sympy
high-precision evaluation of the talk's Ψ for tanh, scipy root finding and 1-D minimisation
(brute-force prox), and scipy quadrature of σ.
"""

from __future__ import annotations

import builtins
import functools
import inspect

import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.integrate import quad
from scipy.optimize import brentq, minimize_scalar

import bregmod.activations as activations
from bregmod.activations import Activation, Interval
from bregmod.errors import ExpressionTooComplexError, NotAdmissibleError
from bregmod.symbolic import (
    SymbolicActivation,
    VerificationReport,
    activation_from_psi,
    activation_from_sigma,
    parse_expression,
    verify,
)

X = sp.Symbol("x", real=True)
U = sp.Symbol("u", real=True)
XS = np.linspace(-4.0, 4.0, 17)
ENTROPY = "u*log(u) + (1 - u)*log(1 - u) - u**2/2"


@functools.cache
def _from_sigma(text: str) -> SymbolicActivation:
    """Derivations are slow-ish (sympy): share them between tests."""
    return activation_from_sigma(text)


@functools.cache
def _from_psi(text: str, domain=None) -> SymbolicActivation:
    return activation_from_psi(text, "u", domain)


# ---------------------------------------------------------------------------- parser


def test_parse_builds_the_expected_sympy_expression():
    parsed = parse_expression("u*atanh(u) + log(1 - u**2)/2 - u**2/2", ("u",))
    assert parsed == U * sp.atanh(U) + sp.log(1 - U**2) / 2 - U**2 / 2


def test_parse_decimals_are_exact_and_constants_known():
    assert parse_expression("0.1*x + pi - E") == X / 10 + sp.pi - sp.E
    assert parse_expression("-x**-2") == -(X**-2)


def test_parse_piecewise_max_heaviside():
    parsed = parse_expression("Piecewise((x, -1 < x <= 1), (0, True)) + Max(x, 0) + Heaviside(x)")
    expected = sp.Piecewise((X, sp.And(X > -1, X <= 1)), (0, True)) + sp.Max(X, 0) + sp.Heaviside(X)
    assert parsed == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("__import__('os')", "dunder name '__import__'"),
        ("x.__class__", r"attribute access '\.__class__'"),
        ("[1][0]", "subscript"),
        ("lambda: 1", "lambda"),
        ("open('f')", "unknown function 'open'"),
        ("'abc'", "constant 'abc'"),
        ("exp('x')", "constant 'x'"),
        ("y + 1", "unknown name 'y'"),
        ("exp(x, 2)", "'exp' takes one argument"),
        ("exp(x=1)", "keyword arguments"),
        ("x if x else 1", "conditional expression"),
        ("(x := 1)", "assignment expression"),
        ("x == 1", "comparison"),
        ("[x for x in ()]", "comprehension"),
        ("().__class__.__bases__[0]", "subscript"),
        ("(lambda: 0).__globals__", "attribute access"),
        ("x % 2", "operator Mod"),
        ("True + x", "constant True"),
        ("1j * x", "constant 1j"),
        ("10**10**10", "exponent"),
        ("exp", "used without a call"),
        ("exp(x)(1)", "call of Call"),
        ("x +", "not valid syntax"),
        ("1/0 + x", "infinite or undefined"),
        ("Piecewise((x, x > 0), 1)", "not an \\(expression, condition\\) pair"),
        ("Piecewise((x, x))", "Name as a Piecewise condition"),
    ],
)
def test_parse_refuses_disallowed_constructs(text, message):
    with pytest.raises(ValueError, match=message):
        parse_expression(text)


def test_parse_validates_variables_and_type():
    with pytest.raises(ValueError, match="not a plain identifier"):
        parse_expression("x", ("__x",))
    with pytest.raises(ValueError, match="clashes"):
        parse_expression("x", ("exp",))
    with pytest.raises(TypeError, match="must be a str"):
        parse_expression(3)
    with pytest.raises(ValueError, match="longer than"):
        parse_expression("x+" * 2000 + "x")


def test_parse_never_evaluates_code(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("code evaluation attempted")

    monkeypatch.setattr(sp, "sympify", forbidden)
    monkeypatch.setattr(sp, "parse_expr", forbidden)
    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    assert parse_expression("tanh(x) + Max(x, 1/2)") == sp.tanh(X) + sp.Max(X, sp.Rational(1, 2))


_leaves = st.one_of(st.just(X), st.integers(1, 5).map(sp.Integer), st.just(sp.Rational(1, 3)))
_unary = st.sampled_from([sp.exp, sp.tanh, sp.atan, sp.asinh, sp.Abs, sp.sign, sp.erf, sp.sinh])


def _extend(children):
    return st.one_of(
        st.tuples(_unary, children).map(lambda t: t[0](t[1])),
        st.tuples(children, children).map(lambda t: t[0] + t[1]),
        st.tuples(children, children).map(lambda t: t[0] * t[1]),
        st.tuples(children, children).map(lambda t: t[0] - t[1]),
        st.tuples(children, st.integers(1, 4)).map(lambda t: t[0] / t[1]),
        st.tuples(children, st.integers(-3, 3)).map(lambda t: t[0] ** t[1]),
        st.tuples(children, children).map(lambda t: sp.Max(t[0], t[1])),
    )


@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    st.recursive(_leaves, _extend, max_leaves=8).filter(
        lambda e: not e.has(sp.zoo, sp.nan, sp.oo, -sp.oo, sp.I)
    )
)
def test_parse_round_trips_sympy_printing(expr):
    assert parse_expression(str(expr)) == expr


# ---------------------------------------------------------------------------- from σ

TALK_PSI_TANH = U * sp.atanh(U) + (sp.log(1 - U**2) - U**2) / 2


def test_tanh_reproduces_the_talks_psi_and_log_cosh():
    act = _from_sigma("tanh(x)")
    assert isinstance(act, SymbolicActivation) and act.closed_form
    assert "proved symbolically" in act.notes[0]
    for u0 in ["-0.99", "-0.5", "0", "0.3", "0.9"]:
        difference = (act.psi_expr - TALK_PSI_TANH).subs(act.u_symbol, sp.Rational(u0))
        assert abs(sp.N(difference.subs(U, sp.Rational(u0)), 50)) < 1e-40
    for x0 in ["-3", "-0.25", "0", "1.5", "6"]:
        difference = act.phi_conj_expr - sp.log(sp.cosh(act.x_symbol))
        assert abs(sp.N(difference.subs(act.x_symbol, sp.Rational(x0)), 50)) < 1e-40
    assert act.domain == Interval(-1.0, 1.0, True, True)
    assert act.range == Interval(-1.0, 1.0, False, False)
    # Ψ(±1) is the finite limit log 2 − 1/2 (lsc closure), not nan
    assert np.allclose(act.psi(np.array([-1.0, 1.0])), np.log(2) - 0.5, rtol=1e-14)
    assert np.allclose(act.phi_conj(XS), np.log(np.cosh(XS)), rtol=1e-13, atol=1e-15)


def _relu(x):
    return np.maximum(x, 0.0)


# σ (text), σ, Ψ and Φ* of docs/math/activations.md in numpy, and points of dom Ψ to compare Ψ at
TABLE = {
    "sigmoid": (
        "1/(1 + exp(-x))",
        lambda x: 1 / (1 + np.exp(-x)),
        lambda u: u * np.log(u) + (1 - u) * np.log(1 - u) - u**2 / 2,
        lambda x: np.log1p(np.exp(x)),
    ),
    "arctan": (
        "2/pi*atan(x)",
        lambda x: 2 / np.pi * np.arctan(x),
        lambda u: -2 / np.pi * np.log(np.cos(np.pi * u / 2)) - u**2 / 2,
        lambda x: 2 / np.pi * (x * np.arctan(x) - 0.5 * np.log1p(x**2)),
    ),
    "softsign": (
        "x/(1 + abs(x))",
        lambda x: x / (1 + np.abs(x)),
        lambda u: -np.abs(u) - np.log(1 - np.abs(u)) - u**2 / 2,
        lambda x: np.abs(x) - np.log1p(np.abs(x)),
    ),
    "relu": (
        "Max(x, 0)",
        _relu,
        lambda u: np.zeros_like(u),
        lambda x: _relu(x) ** 2 / 2,
    ),
    "isru": (
        "x/sqrt(1 + x**2)",
        lambda x: x / np.sqrt(1 + x**2),
        lambda u: -np.sqrt(1 - u**2) - u**2 / 2,
        lambda x: np.sqrt(1 + x**2),
    ),
    "asinh": (
        "asinh(x)",
        np.arcsinh,
        lambda u: np.cosh(u) - 1 - u**2 / 2,
        lambda x: x * np.arcsinh(x) - np.sqrt(1 + x**2) + 1,
    ),
    "elu(1/2)": (
        "Piecewise((x, x > 0), (exp(x)/2 - 1/2, True))",
        lambda x: np.where(x > 0, x, 0.5 * np.expm1(x)),
        lambda u: np.where(u > 0, 0.0, (u + 0.5) * np.log1p(2 * u) - u - u**2 / 2),
        lambda x: np.where(x > 0, x**2 / 2, 0.5 * (np.expm1(x) - x)),
    ),
    "leaky(1/4)": (
        "Max(x, x/4)",
        lambda x: np.where(x >= 0, x, x / 4),
        lambda u: np.where(u < 0, 3 * u**2 / 2, 0.0),
        lambda x: np.where(x >= 0, x**2 / 2, x**2 / 8),
    ),
    "soft threshold(1/2)": (
        "sign(x)*Max(abs(x) - 1/2, 0)",
        lambda x: np.sign(x) * _relu(np.abs(x) - 0.5),
        lambda u: 0.5 * np.abs(u),
        lambda x: _relu(np.abs(x) - 0.5) ** 2 / 2,
    ),
    "clip(-1, 2)": (
        "Min(Max(x, -1), 2)",
        lambda x: np.clip(x, -1, 2),
        lambda u: np.zeros_like(u),
        lambda x: x**2 / 2 - (x - np.clip(x, -1, 2)) ** 2 / 2,
    ),
}


@pytest.mark.parametrize("key", list(TABLE))
def test_from_sigma_matches_the_closed_forms_of_math_md(key):
    text, sigma, psi, phi_conj = TABLE[key]
    act = _from_sigma(text)
    assert act.closed_form, act.notes
    assert np.allclose(act.prox(XS), sigma(XS), rtol=1e-13, atol=1e-14)
    # Ψ and Φ* are fixed up to opposite constants (Fenchel–Young pairs them)
    shift = act.phi_conj(XS) - phi_conj(XS)
    assert np.ptp(shift) < 1e-10
    u = sigma(XS)
    assert np.allclose(act.psi(u) - psi(u), -shift[0], atol=1e-10)
    # normalisation Ψ(σ(0)) = 0
    assert abs(act.psi(sigma(np.zeros(1)))[0]) < 1e-12


def test_softplus_has_no_closed_form_phi_conj_and_falls_back_to_quadrature():
    act = activation_from_sigma("log(1 + exp(x))")
    assert not act.closed_form and "[numeric" in act.name
    assert act.phi_conj_expr is None and act.psi_expr is None
    assert any("quadrature" in note for note in act.notes)
    # Φ*(x) − Φ*(0) = ∫₀ˣ σ, and Φ*(0) = −σ(0)²/2 = −(log 2)²/2
    for x0 in (-3.0, 0.7, 4.0):
        integral = quad(lambda t: np.log1p(np.exp(t)), 0.0, x0, epsabs=1e-13)[0]
        assert act.phi_conj(np.array([x0]))[0] == pytest.approx(
            integral - np.log(2) ** 2 / 2, abs=1e-10
        )
    assert verify(act, n_samples=40).passed
    # σ itself overflows far out and σ⁻¹ = log(expm1(u)) cannot recover it: an error, not 709.8
    with pytest.raises(ValueError, match="σ overflowed or is undefined"):
        act.prox(np.array([1e300]))
    with pytest.raises(ValueError, match="Φ\\* overflowed or is undefined"):
        act.phi_conj(np.array([1e300]))


def test_admissibility_notes_say_how_it_was_shown():
    assert "proved symbolically" in _from_sigma("Max(x, 0)").notes[0]
    assert "checked numerically" in _from_sigma(TABLE["arctan"][0]).notes[0]


def test_from_sigma_numeric_inverse_matches_a_root_finder():
    act = activation_from_sigma("(x + tanh(x))/2")
    assert not act.closed_form and act.sigma_inv_expr is None
    assert act.phi_conj_expr is not None  # ∫σ exists in closed form
    for u0 in (-2.0, -0.3, 0.0, 1.1, 5.0):
        root = brentq(lambda t, u0=u0: (t + np.tanh(t)) / 2 - u0, -20, 20, xtol=1e-14)
        assert act.sigma_inv(np.array([u0]))[0] == pytest.approx(root, abs=1e-10)
    assert verify(act, n_samples=40).passed


@pytest.mark.parametrize(
    "expr, message",
    [
        ("Piecewise((x, Abs(x) > 1), (0, True))", "discontinuous at x = -1: it jumps from -1 to 0"),
        ("x*Heaviside(Abs(x) - 1)", "discontinuous at x = -1"),
        ("x/2 + sign(x)", "discontinuous at x = 0"),
        (sp.floor(X) / 2, r"discontinuous at x ≈ .*jump of 0\.5"),
        ("x**3", "not 1-Lipschitz: its slope reaches"),
        ("2*x", r"not 1-Lipschitz: σ'\(x\) = 2 > 1"),
        ("Max(x, 3*x/2)", r"not 1-Lipschitz: σ'\(x\) = 3/2 > 1"),
        ("-x", r"decreasing: σ'\(x\) = -1 < 0"),
        ("Heaviside(x)", "discontinuous at x = 0: it jumps from 0 to 1"),
        ("Heaviside(x - 1)/2 + Heaviside(x + 1)/2", "discontinuous at x = -1"),
        ("sin(x)", "decreasing near x"),
        ("log(x)", "not finite at x"),
        ("1/x", "not finite at x"),
    ],
)
def test_from_sigma_refuses_non_admissible_functions_with_a_reason(expr, message):
    with pytest.raises(NotAdmissibleError, match=message):
        activation_from_sigma(expr)


def test_from_sigma_input_errors():
    with pytest.raises(ValueError, match="is constant"):
        activation_from_sigma("3")
    with pytest.raises(ValueError, match=r"free symbols \['a'\]"):
        activation_from_sigma(sp.Symbol("a") * sp.tanh(X), X)
    with pytest.raises(ValueError, match="unknown name 'y'"):
        activation_from_sigma("tanh(y)")
    with pytest.raises(TypeError, match="string or a sympy expression"):
        activation_from_sigma(np.tanh)
    with pytest.raises(ValueError, match="identifier"):
        activation_from_sigma("tanh(x)", var="1x")
    with pytest.raises(ValueError, match="cannot be evaluated numerically"):
        activation_from_sigma(sp.Function("f")(X), X)
    with pytest.raises(ValueError, match="cannot be evaluated numerically"):
        activation_from_psi(sp.Function("g")(U), U)


def test_steep_but_continuous_is_not_called_discontinuous():
    with pytest.raises(NotAdmissibleError, match="not 1-Lipschitz") as info:
        activation_from_sigma("tanh(5*x)")
    assert "discontinuous" not in str(info.value)


def test_classmethods_delegate_and_accept_sympy_symbols():
    act = Activation.from_sigma(sp.Max(sp.Symbol("t"), 0), sp.Symbol("t"))
    assert np.array_equal(act.prox(XS), _relu(XS))
    act = Activation.from_psi(sp.Symbol("v") ** 2, "v", None)
    assert np.allclose(act.prox(XS), XS / 3)


# ---------------------------------------------------------------------------- from Ψ


def test_from_psi_abs_gives_soft_thresholding():
    act = _from_psi("3*Abs(u)/10")
    assert act.closed_form
    assert np.allclose(act.prox(XS), np.sign(XS) * _relu(np.abs(XS) - 0.3), atol=1e-15)
    assert np.allclose(act.phi_conj(XS), _relu(np.abs(XS) - 0.3) ** 2 / 2, atol=1e-15)
    assert "proved symbolically" in act.notes[0]


def test_from_psi_indicator_of_half_line_gives_relu():
    act = activation_from_psi("0", "u", Interval(0.0, np.inf))
    assert np.array_equal(act.prox(XS), _relu(XS))
    assert act.range.lo_closed and act.domain.lo_closed
    assert np.isinf(act.psi(np.array([-1e-9]))[0])


def test_from_psi_scaled_square():
    act = activation_from_psi("3*u**2/2", "u")
    assert np.allclose(act.prox(XS), XS / 4)
    assert np.allclose(act.phi_conj(XS), XS**2 / 8)


def test_from_psi_sigmoid_entropy():
    act = _from_psi(ENTROPY, (0, 1))
    assert act.closed_form
    assert np.allclose(act.prox(XS), 1 / (1 + np.exp(-XS)), rtol=1e-14)
    assert np.allclose(act.phi_conj(XS), np.log1p(np.exp(XS)), rtol=1e-13)
    assert act.domain == Interval(0.0, 1.0, True, True)
    assert act.range == Interval(0.0, 1.0, False, False)
    # far out the closed form overflows; the safeguarded solver takes over
    assert np.allclose(act.prox(np.array([-800.0, 800.0])), [0.0, 1.0])
    assert act.phi_conj(np.array([800.0]))[0] == pytest.approx(800.0)


def test_from_psi_talks_tanh_psi_gives_tanh():
    act = activation_from_psi(TALK_PSI_TANH, U, sp.Interval(-1, 1))
    assert np.allclose(act.prox(XS), np.tanh(XS), rtol=1e-14)
    assert np.allclose(act.phi_conj(XS), np.log(np.cosh(XS)), rtol=1e-12)


def test_from_psi_quartic_closed_form_is_the_real_cardano_root():
    act = activation_from_psi("u**4/4", "u")
    assert act.closed_form
    for x0 in (-7.0, -1.0, 0.0, 0.4, 12.0):
        root = brentq(lambda t, x0=x0: t + t**3 - x0, -10, 10, xtol=1e-15)
        assert act.prox(np.array([x0]))[0] == pytest.approx(root, abs=1e-12)


def test_from_psi_without_closed_form_falls_back_and_says_so():
    text = "cosh(u) - 1 - u**2/2 + u**4"
    act = activation_from_psi(text, "u")
    assert not act.closed_form and act.sigma_expr is None and act.phi_conj_expr is None
    assert "[numeric: no closed form]" in act.name and "[numeric" in repr(act)
    assert any("no closed form for σ" in note for note in act.notes)

    def objective(u, x0):
        return 0.5 * (u - x0) ** 2 + np.cosh(u) - 1 - u**2 / 2 + u**4

    for x0 in (-5.0, -0.7, 0.0, 0.2, 3.0):
        brute = minimize_scalar(objective, bracket=(-3, 3), args=(x0,), tol=1e-12).x
        assert act.prox(np.array([x0]))[0] == pytest.approx(brute, abs=1e-7)
    report = verify(act, n_samples=40)
    assert report.passed, report.summary()


@pytest.mark.parametrize(
    "expr, domain, message",
    [
        ("-u**2", None, r"not convex: Ψ''\(u\) = -2 < 0"),
        ("-Abs(u)", None, "not convex: its slope drops from 1 to -1 at u = 0"),
        ("u**4 - u**2", None, "not convex: its slope decreases near u"),
        ("Piecewise((0, u < 0), (1 + u, True))", None, "discontinuous at u = 0"),
        ("log(u)", None, "not finite at u"),
    ],
)
def test_from_psi_refuses_non_convex_psi(expr, domain, message):
    with pytest.raises(NotAdmissibleError, match=message):
        activation_from_psi(expr, "u", domain)


def test_from_psi_domain_validation():
    with pytest.raises(ValueError, match="empty"):
        activation_from_psi("0", "u", (1, 0))
    with pytest.raises(ValueError, match="unknown name 'a'"):
        activation_from_psi("0", "u", ("a", 1))
    with pytest.raises(ValueError, match="domain must be"):
        activation_from_psi("0", "u", "[0, 1]")
    with pytest.raises(ValueError, match="NaN"):
        activation_from_psi("0", "u", (float("nan"), 1.0))


# ---------------------------------------------------------------------------- verify


def _builtin_activations() -> list[Activation]:
    classes = [
        getattr(activations, name)
        for name in activations.__all__
        if inspect.isclass(getattr(activations, name))
        and issubclass(getattr(activations, name), Activation)
        and not inspect.isabstract(getattr(activations, name))
        # ClipBox acts on states of a fixed length (per-entry bounds), not on scalars;
        # tests/test_unfolded.py checks it entry by entry against Clip, Identity and ReLU.
        and name != "ClipBox"
    ]
    instances = [cls() for cls in classes]
    instances += [
        activations.LeakyReLU(0.3),
        activations.SoftThreshold(0.25),
        activations.Clip(-0.5, 2.0),
        activations.ELU(0.5),
    ]
    return instances


def test_the_builtin_list_is_complete():
    names = {type(a).__name__ for a in _builtin_activations()}
    assert {"Identity", "ReLU", "Tanh", "Sigmoid", "Softplus", "Softmax", "Sparsemax"} <= names
    assert len(names) >= 15


@pytest.mark.parametrize("act", _builtin_activations(), ids=lambda a: a.name)
def test_verify_passes_for_every_builtin(act):
    report = verify(act)
    assert isinstance(report, VerificationReport)
    assert report.passed, report.summary()
    ran = {c.name for c in report.checks if c.passed}
    assert "Φ*' = σ (central differences)" in ran and "B(y, x) ≥ ½‖y − σ(x)‖² ≥ 0" in ran
    if not act.is_vector:
        assert "sympy Ψ equals psi; x − σ(x) = Ψ'(σ(x))" in ran


@pytest.mark.parametrize(
    "make",
    [
        lambda: _from_sigma("tanh(x)"),
        lambda: _from_sigma(TABLE["softsign"][0]),
        lambda: _from_sigma(TABLE["soft threshold(1/2)"][0]),
        lambda: _from_psi("3*Abs(u)/10"),
        lambda: _from_psi(ENTROPY, (0, 1)),
    ],
    ids=["tanh", "softsign", "soft-threshold", "abs", "entropy"],
)
def test_verify_passes_for_derived_activations(make):
    report = verify(make(), n_samples=60)
    assert report.passed, report.summary()
    derived = next(c for c in report.checks if c.name == "derived Φ*' − σ ≡ 0 (sympy)")
    assert derived.passed


class _TanhWrongConjugate(activations.Tanh):
    name = "Tanh with 2Φ*"

    def _phi_conj(self, x):
        return 2.0 * super()._phi_conj(x)


class _ShrunkReLU(activations.ReLU):
    name = "0.9 ReLU"

    def _prox(self, x):
        return 0.9 * np.maximum(x, 0.0)


class _SigmoidWrongPsi(activations.Sigmoid):
    name = "Sigmoid with Ψ + u/20"

    def _psi(self, u):
        return super()._psi(u) + u / 20


@pytest.mark.parametrize(
    "act, failing",
    [
        (
            _TanhWrongConjugate(),
            {
                "Φ*' = σ (central differences)",
                "Fenchel–Young: Φ(σ(x)) + Φ*(x) = ⟨x, σ(x)⟩",
                "B(y, x) = Φ(y) + Φ*(x) − ⟨y, x⟩",
            },
        ),
        (_ShrunkReLU(), {"prox minimises ½‖w − x‖² + Ψ(w)", "Φ*' = σ (central differences)"}),
        (_SigmoidWrongPsi(), {"sympy Ψ equals psi; x − σ(x) = Ψ'(σ(x))"}),
    ],
    ids=["2 phi_conj", "0.9 relu", "sigmoid psi"],
)
def test_verify_fails_for_wrong_activations(act, failing):
    report = verify(act, n_samples=60)
    assert not report.passed
    failed = {c.name for c in report.failures()}
    assert failing <= failed, report.summary()
    assert "FAILED" in report.summary() and "FAIL  " in report.summary()


def test_verify_validates_its_input():
    with pytest.raises(TypeError, match="needs an Activation"):
        verify("tanh")
    with pytest.raises(ValueError, match="n_samples must be an integer ≥ 2"):
        verify(activations.Tanh(), n_samples=1)


def test_report_with_only_skipped_checks_does_not_pass():
    report = VerificationReport("none", [])
    assert not report.passed


# --- bounded work (issue 16, items 1, 2, 11) --------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["((9**999)**999)**999*0 + x/2", "(9**999)**999*0 + x/2", "x/2 + 0*(10**1000*10**1000)"],
)
def test_parse_refuses_constants_too_large_to_compute_in_bounded_time(text):
    with pytest.raises(ExpressionTooComplexError, match="exact constants are limited to 4096 bits"):
        parse_expression(text)
    with pytest.raises(ExpressionTooComplexError, match="bits"):
        Activation.from_sigma(text)


def test_parse_refuses_a_huge_power_before_computing_it():
    with pytest.raises(ExpressionTooComplexError, match=r"power whose value has about 3.16e\+06"):
        parse_expression("(9**999)**999*0 + x/2")


def test_parse_keeps_large_but_bounded_constants():
    assert parse_expression("9**999*0 + x/2") == X / 2
    assert parse_expression("2**1000*2**1000*3**1000*x") == 2**2000 * 3**1000 * X


def test_parse_bounds_the_nesting_depth():
    deep = "tanh(" * 150 + "x" + ")" * 150
    assert len(deep) < 2000
    with pytest.raises(ExpressionTooComplexError, match="nested too deeply"):
        parse_expression(deep)
    with pytest.raises(ExpressionTooComplexError, match="nested too deeply"):
        activation_from_sigma(functools.reduce(lambda e, _: sp.tanh(e), range(150), X), X)
    parse_expression("tanh(" * 20 + "x" + ")" * 20)  # moderate nesting stays allowed
    parse_expression("+".join(["x"] * 500))  # a long flat sum is shallow


def test_derivation_is_stopped_at_its_time_limit():
    with pytest.raises(ExpressionTooComplexError, match="ran longer than 0.001 s"):
        activation_from_sigma("tanh(x)/2 + atan(x)/4", time_limit=0.001)
    with pytest.raises(ExpressionTooComplexError, match="ran longer than 0.001 s"):
        activation_from_psi("u**4 + cosh(u)", time_limit=0.001)
    with pytest.raises(ValueError, match="time_limit must be a positive"):
        activation_from_sigma("tanh(x)", time_limit=0)
    assert activation_from_sigma("tanh(x)", time_limit=None).name == "Symbolic(σ = tanh(x))"


def test_activation_constructors_have_the_same_defaults_as_the_functions():
    derived = activation_from_sigma("tanh(x)")
    assert Activation.from_sigma("tanh(x)").sigma_expr == derived.sigma_expr
    assert Activation.from_psi("abs(u)").psi_expr == activation_from_psi("abs(u)").psi_expr
    for method, function in [(Activation.from_sigma, activation_from_sigma),
                             (Activation.from_psi, activation_from_psi)]:
        defaults = {k: p.default for k, p in inspect.signature(function).parameters.items()
                    if k != "time_limit"}
        mine = {k: p.default for k, p in inspect.signature(method).parameters.items()
                if k != "options"}
        assert mine == defaults
