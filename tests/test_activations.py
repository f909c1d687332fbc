"""Tests of bregmod.activations against independent truth.

Truth comes from: the closed forms of docs/math/activations.md evaluated in 60-digit mpmath (Bregman
stability), brute-force scalar minimisation/maximisation with scipy (prox, Φ*, Ψ*),
CVXPY/Clarabel solves written in the test (vector activations), sympy derivatives of Ψ,
and hypothesis properties of the Bregman penalty (docs/math/bregman.md).
"""

from __future__ import annotations

import functools
import subprocess
import sys

import cvxpy as cp
import mpmath as mp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar

from bregmod.activations import (
    ELU,
    ISRU,
    Activation,
    Arctan,
    Asinh,
    Clip,
    DCPTerm,
    Identity,
    Interval,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Softplus,
    Softsign,
    SoftThreshold,
    Sparsemax,
    Tanh,
)
from bregmod.errors import DomainError, NoDCPFormError, NotAdmissibleError, ShapeError

SCALAR = [
    Identity(),
    ReLU(),
    LeakyReLU(0.2),
    LeakyReLU(1.0),
    SoftThreshold(0.5),
    Clip(-1.0, 2.0),
    Tanh(),
    Sigmoid(),
    ELU(0.7),
    ELU(1.0),
    Arctan(),
    ISRU(),
    Softsign(),
    Asinh(),
    Softplus(),
]
VECTOR = [Softmax(), Sparsemax()]
NO_DCP = {"Arctan", "Softplus"}
DCP_SCALAR = [a for a in SCALAR if a.name not in NO_DCP]
PROPS = settings(max_examples=25, deadline=None)
finite = st.floats(-30, 30, allow_nan=False)
unit = st.floats(0, 1)


def ids(acts):
    return [a.name for a in acts]


def domain_point(act: Activation, w: float, x2: float) -> float:
    """A point of dom Ψ: a closed end for small w, else a convex combination or σ(x2)."""
    dom = act.domain
    if w < 0.1 and dom.lo_closed and np.isfinite(dom.lo):
        return dom.lo
    if w > 0.9 and dom.hi_closed and np.isfinite(dom.hi):
        return dom.hi
    y = dom.lo + w * (dom.hi - dom.lo)
    return y if np.isfinite(y) and dom.contains(y) else float(act.prox(x2))


def brute_min(f, bounds: tuple[float, float]) -> float:
    """min f over [lo, hi]: bounded Brent (xatol 1e-13) and the two end points."""
    res = minimize_scalar(f, bounds=bounds, method="bounded", options={"xatol": 1e-13})
    return min(res.fun, f(bounds[0]), f(bounds[1]))


def search_bounds(act: Activation, centre: float, radius: float) -> tuple[float, float]:
    """[centre − radius, centre + radius] ∩ dom Ψ, pulled inside open ends."""
    dom = act.domain
    lo = max(centre - radius, dom.lo if dom.lo_closed else dom.lo + 1e-15)
    hi = min(centre + radius, dom.hi if dom.hi_closed else dom.hi - 1e-15)
    return lo, hi


# ---------------------------------------------------------------------- reference (mpmath)
def _at_least_60_digits(func):
    """Evaluate ``func`` with 60 significant digits, or more where the caller works with more."""

    @functools.wraps(func)
    def wrapper(*args):
        with mp.workdps(max(60, mp.mp.dps)):
            return func(*args)

    return wrapper


def _mp_li2(z):
    return mp.polylog(2, z)


@_at_least_60_digits
def mp_phi(act: Activation, y):
    """Φ(y) = ½y² + Ψ(y) from docs/math/activations.md, written independently in mpmath."""
    y = mp.mpf(y)
    n = act.name
    if n in ("Identity", "ReLU") or n.startswith("Clip"):
        return y**2 / 2
    if n.startswith("LeakyReLU"):
        return y**2 / 2 + (1 / mp.mpf(act.slope) - 1) * min(y, 0) ** 2 / 2
    if n.startswith("SoftThreshold"):
        return y**2 / 2 + mp.mpf(act.threshold) * abs(y)
    if n == "Tanh":  # u artanh u + ½ log(1 − u²), = log 2 at ±1
        return mp.log(2) if abs(y) == 1 else y * mp.atanh(y) + mp.log(1 - y**2) / 2
    if n == "Sigmoid":
        return sum(p * mp.log(p) for p in (y, 1 - y) if p > 0)
    if n.startswith("ELU"):
        a = mp.mpf(act.alpha)
        if y > 0:
            return y**2 / 2
        return (0 if y == -a else (y + a) * mp.log(1 + y / a)) - y
    if n == "Arctan":
        return -2 / mp.pi * mp.log(mp.cos(mp.pi * y / 2))
    if n == "ISRU":
        return -mp.sqrt(1 - y**2)
    if n == "Softsign":
        return -abs(y) - mp.log(1 - abs(y))
    if n == "Asinh":
        return mp.cosh(y) - 1
    if n == "Softplus":  # Ψ(u) = ∫₀ᵘ log(1 − e^{−w}) dw, Ψ(0) = 0
        return y**2 / 2 + (mp.quad(lambda w: mp.log(-mp.expm1(-w)), [0, y]) if y > 0 else 0)
    raise AssertionError(n)


@_at_least_60_digits
def mp_phi_conj(act: Activation, x):
    """Φ*(x) from the table of docs/math/activations.md, in mpmath."""
    x = mp.mpf(x)
    n = act.name
    if n == "Identity":
        return x**2 / 2
    if n == "ReLU":
        return max(x, 0) ** 2 / 2
    if n.startswith("LeakyReLU"):
        return x**2 / 2 if x >= 0 else mp.mpf(act.slope) * x**2 / 2
    if n.startswith("SoftThreshold"):
        return max(abs(x) - mp.mpf(act.threshold), 0) ** 2 / 2
    if n.startswith("Clip"):
        dist = max(mp.mpf(act.lo) - x, x - mp.mpf(act.hi), 0)
        return x**2 / 2 - dist**2 / 2
    if n == "Tanh":
        return mp.log(mp.cosh(x))
    if n == "Sigmoid":
        return mp.log(1 + mp.exp(x))
    if n.startswith("ELU"):
        a = mp.mpf(act.alpha)
        return x**2 / 2 if x > 0 else a * (mp.exp(x) - 1 - x)
    if n == "Arctan":
        return 2 / mp.pi * (x * mp.atan(x) - mp.log(1 + x**2) / 2)
    if n == "ISRU":
        return mp.sqrt(1 + x**2)
    if n == "Softsign":
        return abs(x) - mp.log(1 + abs(x))
    if n == "Asinh":
        return x * mp.asinh(x) - mp.sqrt(1 + x**2) + 1
    if n == "Softplus":
        return -_mp_li2(-mp.exp(x))
    raise AssertionError(n)


@_at_least_60_digits
def mp_sigma(act: Activation, x):
    """σ(x) from the table, in mpmath."""
    x = mp.mpf(x)
    n = act.name
    table = {
        "Identity": lambda: x,
        "ReLU": lambda: max(x, 0),
        "Tanh": lambda: mp.tanh(x),
        "Sigmoid": lambda: 1 / (1 + mp.exp(-x)),
        "Arctan": lambda: 2 / mp.pi * mp.atan(x),
        "ISRU": lambda: x / mp.sqrt(1 + x**2),
        "Softsign": lambda: x / (1 + abs(x)),
        "Asinh": lambda: mp.asinh(x),
        "Softplus": lambda: mp.log(1 + mp.exp(x)),
    }
    if n in table:
        return table[n]()
    if n.startswith("LeakyReLU"):
        return x if x >= 0 else mp.mpf(act.slope) * x
    if n.startswith("SoftThreshold"):
        return mp.sign(x) * max(abs(x) - mp.mpf(act.threshold), 0)
    if n.startswith("Clip"):
        return min(max(x, mp.mpf(act.lo)), mp.mpf(act.hi))
    if n.startswith("ELU"):
        return x if x > 0 else mp.mpf(act.alpha) * (mp.exp(x) - 1)
    raise AssertionError(n)


@_at_least_60_digits
def mp_bregman(act, y, x):
    return mp_phi(act, y) + mp_phi_conj(act, x) - mp.mpf(x) * mp.mpf(y)


# ---------------------------------------------------------------------- the table itself
@pytest.mark.parametrize("act", SCALAR, ids=ids(SCALAR))
def test_table_constants_satisfy_fenchel_young_with_equality(act):
    """Φ(σ(x)) + Φ*(x) = x σ(x) for every row of docs/math/activations.md, at 60 digits.

    All rows hold as printed (no constant needed fixing). Two notes on the table:
    the Tanh Ψ is read as its continuous extension (log 2 − ½) at u = ±1, and ELU's Ψ is
    finite at u = −α, so lower semicontinuity puts −α in dom Ψ = [−α, ∞) (the table writes
    (−α, 0]); the range of σ stays (−α, ∞). Softplus has no closed-form Ψ in the table: the
    implementation uses Ψ(u) = Li₂(e^{−u}) − π²/6, checked here through the integral.
    """
    with mp.workdps(60):
        for x in (-7.5, -1.0, -0.2, 0.0, 0.4, 3.0, 9.0):
            s = mp_sigma(act, x)
            gap = mp_phi(act, s) + mp_phi_conj(act, x) - mp.mpf(x) * s
            assert abs(gap) < mp.mpf(10) ** -40, (act.name, x, gap)
    if act.name.startswith("ELU"):
        assert act.domain.contains(-act.alpha) and not act.range.contains(-act.alpha)


@pytest.mark.parametrize("act", SCALAR, ids=ids(SCALAR))
def test_prox_phi_psi_against_table(act):
    x = np.array([-6.0, -1.3, -0.1, 0.0, 0.25, 1.7, 8.0])
    s = act.prox(x)
    np.testing.assert_allclose(s, [float(mp_sigma(act, xi)) for xi in x], rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(
        act.phi_conj(x), [float(mp_phi_conj(act, xi)) for xi in x], rtol=1e-13, atol=1e-15
    )
    inside = s[act.domain.contains(s)]
    np.testing.assert_allclose(
        act.phi(inside), [float(mp_phi(act, yi)) for yi in inside], rtol=1e-12, atol=1e-14
    )
    np.testing.assert_allclose(act.psi(inside), act.phi(inside) - 0.5 * inside**2, atol=1e-14)


# ---------------------------------------------------------------------- hypothesis properties
@pytest.mark.parametrize("act", SCALAR, ids=ids(SCALAR))
@PROPS
@given(x=finite, w=unit, x2=finite)
def test_bregman_nonnegative_and_strongly_convex_bound(act, x, w, x2):
    """B(y, x) ≥ ½(y − σ(x))² ≥ 0 for every y in dom Ψ."""
    y = domain_point(act, w, x2)
    b = act.bregman(y, x)
    s = float(act.prox(x))
    assert b >= 0
    assert b >= 0.5 * (y - s) ** 2 - 1e-10 * (1 + x * x + y * y)


@pytest.mark.parametrize("act", SCALAR, ids=ids(SCALAR))
@PROPS
@given(x=finite)
def test_bregman_vanishes_at_sigma(act, x):
    assert act.bregman(act.prox(x), x) <= 1e-12 * (1 + abs(x))


@pytest.mark.parametrize("act", SCALAR, ids=ids(SCALAR))
@PROPS
@given(x=finite, w=unit, x2=finite)
def test_bregman_grad_matches_finite_difference(act, x, w, x2):
    """∂B_Ψ(y, x)/∂x by central differences of B_Ψ's value (h = 1e-6).

    The difference error is ≤ h/4 per unit jump of σ at a kink (ReLU, LeakyReLU) and O(h²)
    elsewhere; the worst measured |fd − grad| / (1 + |x| + |y|) over 3000 random points per
    activation is 2.5e-7 (ReLU at its kink), 6e-8 for ELU(0.7), ≤ 7e-9 for the others.
    """
    y = domain_point(act, w, x2)
    h = 1e-6
    fd = (act.bregman(y, x + h) - act.bregman(y, x - h)) / (2 * h)
    grad = act.bregman_grad(y, x)
    assert abs(fd - grad) <= 5e-7 * (1 + abs(x) + abs(y))


@pytest.mark.parametrize("act", SCALAR, ids=ids(SCALAR))
@PROPS
@given(v=st.floats(-5, 5), t=st.floats(0.05, 5))
def test_prox_scaled_against_bruteforce_minimisation(act, v, t):
    """prox_{tΨ}(v) = argmin_u ½(u − v)² + tΨ(u), by bounded scalar minimisation."""
    u = float(act.prox_scaled(v, t))
    lo, hi = search_bounds(act, v, 12.0)

    def objective(z):
        return 0.5 * (z - v) ** 2 + t * float(act.psi(z))

    brute = minimize_scalar(objective, bounds=(lo, hi), method="bounded",
                            options={"xatol": 1e-12})
    assert objective(u) <= brute.fun + 1e-11
    assert abs(u - brute.x) <= 1e-5


CLOSED_PROX = [a for a in SCALAR if type(a)._prox_scaled is not Activation._prox_scaled]


@pytest.mark.parametrize("act", CLOSED_PROX, ids=ids(CLOSED_PROX))
@PROPS
@given(v=st.floats(-5, 5), t=st.floats(0.05, 5))
def test_generic_prox_solver_matches_closed_forms(act, v, t):
    """The base class's root-finding prox agrees with the closed forms (also at range ends)."""
    generic = Activation._prox_scaled(act, np.array([v]), np.asarray(t))
    np.testing.assert_allclose(generic, act.prox_scaled([v], t), rtol=1e-14, atol=1e-14)


CONJ_BOUNDS = {  # dom Ψ* for the brute-force prox of Ψ*/t
    "ReLU": (-100.0, 0.0),
    "LeakyReLU(slope=0.2)": (-100.0, 0.0),
    "SoftThreshold(threshold=0.5)": (-0.5, 0.5),
    "Clip(lo=-1.0, hi=2.0)": (-100.0, 100.0),
}


@pytest.mark.parametrize("name", sorted(CONJ_BOUNDS))
@PROPS
@given(v=st.floats(-5, 5), t=st.floats(0.05, 5))
def test_moreau_identity(name, v, t):
    """prox_{tΨ}(v) + t prox_{Ψ*/t}(v/t) = v, with prox_{Ψ*/t} by brute-force minimisation."""
    act = next(a for a in SCALAR if a.name == name)
    conj = minimize_scalar(
        lambda p: 0.5 * (p - v / t) ** 2 + float(act.psi_conj(p)) / t,
        bounds=CONJ_BOUNDS[name], method="bounded", options={"xatol": 1e-12},
    )
    assert abs(float(act.prox_scaled(v, t)) + t * conj.x - v) <= 1e-7 * (1 + t)


@pytest.mark.parametrize("name", sorted(CONJ_BOUNDS))
def test_psi_conj_against_numeric_supremum(name):
    act = next(a for a in SCALAR if a.name == name)
    lo, hi = CONJ_BOUNDS[name]
    for p in np.linspace(lo, hi, 7):
        sup = -brute_min(lambda u, p=p: float(act.psi(u)) - p * u, search_bounds(act, 0.0, 60.0))
        assert abs(float(act.psi_conj(p)) - sup) <= 1e-8
    assert np.isinf(act.psi_conj(hi + 1.0)) == (name != "Clip(lo=-1.0, hi=2.0)")


def test_identity_psi_conj_is_indicator_of_zero():
    np.testing.assert_array_equal(Identity().psi_conj([0.0, 1e-9]), [0.0, np.inf])
    np.testing.assert_array_equal(LeakyReLU(1.0).psi_conj([0.0, -1e-9]), [0.0, np.inf])


@pytest.mark.parametrize("act", SCALAR, ids=ids(SCALAR))
def test_phi_conj_against_numeric_supremum(act):
    """Φ*(x) = sup_y x y − Φ(y), brute force on a grid including large |x|."""
    big = 1e3 if act.name not in ("Asinh",) else 1e6
    for x in (-big, -50.0, -5.0, -1.0, 0.0, 0.3, 2.0, 50.0, big):
        centre = float(act.prox(x))
        sup = -brute_min(lambda y, x=x: float(act.phi(y)) - x * y,
                         search_bounds(act, centre, 10.0))
        assert abs(float(act.phi_conj(x)) - sup) <= 1e-8 * max(1.0, abs(sup)), x


# ---------------------------------------------------------------------- stability
def _extreme_pairs(act):
    dom, n = act.domain, act.name
    if n.startswith(("Tanh", "Sigmoid", "Softplus", "ELU")):
        xs = (-700.0, -50.0, 50.0, 700.0)
    else:
        xs = (-1e8, -1e3, 1e3, 1e8)
    lo = dom.lo if np.isfinite(dom.lo) else -3.0
    hi = dom.hi if np.isfinite(dom.hi) else 3.0
    ys = [lo + f * (hi - lo) for f in (0.0, 0.3, 0.77, 1.0)]
    if not dom.lo_closed:
        ys[0] = lo + 1e-3 * (hi - lo)
    if not dom.hi_closed:
        ys[-1] = hi - 1e-3 * (hi - lo)
    return [(y, x) for x in xs for y in ys]


@pytest.mark.parametrize("act", SCALAR, ids=ids(SCALAR))
def test_bregman_stable_at_large_x_against_mpmath(act):
    """No cancellation or overflow: relative accuracy 1e-9 even where B is tiny (e^{−700})."""
    pairs = _extreme_pairs(act)
    ours = act.bregman_terms([p[0] for p in pairs], [p[1] for p in pairs])
    for (y, x), b in zip(pairs, ours, strict=True):
        ref = mp_bregman(act, y, x)
        assert np.isfinite(b)
        assert abs(b - ref) <= 1e-9 * abs(ref) + 1e-300, (y, x, b, float(ref))


def test_bregman_tiny_values_keep_relative_accuracy():
    """Cases where Φ(y) + Φ*(x) − xy cancels to ~1e-9..e^{−60} (60-digit reference)."""
    cases = [
        (Sigmoid(), 1.0, 60.0), (Sigmoid(), 0.0, -60.0), (Tanh(), 1.0, 30.0),
        (ELU(0.7), -0.7, -60.0), (ISRU(), 1.0, 1e8), (ISRU(), -1.0, -1e8),
        (Softplus(), 0.0, -60.0), (Softsign(), 0.999, 1e3),
    ]
    for act, y, x in cases:
        ref = mp_bregman(act, y, x)
        assert 0 < ref < 1e-6
        assert abs(act.bregman(y, x) - ref) <= 1e-8 * ref, (act.name, ref)


NEAR_SIGMA = [Sigmoid(), Tanh(), Softsign(), ISRU(), Asinh(), ELU(0.7)]


def _near_sigma(act, x, eps):
    """Targets y ≠ σ(x) at relative distance eps from σ(x), and from the nearer end of the
    range of σ (y = 1 − (1 − σ)(1 ± eps) for σ → 1), inside dom Ψ."""
    s = float(mp_sigma(act, x))
    ends = [act.range.lo, act.range.hi] if np.isfinite(act.range.hi) else [act.range.lo]
    candidates = []
    for sign in (1.0, -1.0):
        candidates.append(s * (1 + sign * eps))
        candidates += [e + (s - e) * (1 + sign * eps) for e in ends if np.isfinite(e)]
    return [y for y in candidates if y != s and act.domain.contains(y)]


@pytest.mark.parametrize("act", NEAR_SIGMA, ids=ids(NEAR_SIGMA))
def test_bregman_near_sigma_has_full_relative_precision(act):
    """B(y, x) for y = σ(x)(1 ± ε), ε from 1e-9 to 0.9, x in [−30, 30], against the table
    formula Φ(y) + Φ*(x) − xy evaluated with 110 digits (≥ 50 significant after its
    cancellation, which reaches ~46 digits for Tanh at x = 30, ε = 1e-9).

    Accepted error: 1e-12·B plus 4 ulp of x times |∂B/∂x| = |y − σ(x)|. The second part is
    the conditioning of B in x, not the formula: a 1-ulp change of x changes B by a relative
    ~2|x|(1 − σ)ε⁻¹·1e-16 (Sigmoid; 7e-6 at x = −30, ε = 1e-9), so no evaluation of σ(x)
    in double precision can do better. The former difference of O(1) entropy terms (Tanh,
    Sigmoid), e − log r (Softsign), e^d − 1 − d (Asinh) and KL form (ELU) missed it by up to
    1e14 times."""
    ulp = np.finfo(np.float64).eps
    for x in np.r_[np.linspace(-30.0, 30.0, 13), -1.2, -0.7, -1e-3, 1e-3, 0.7, 1.2]:
        for eps in np.r_[np.logspace(-9, -2, 8), 0.1, 0.5, 0.9]:
            ys = _near_sigma(act, x, eps)
            ours = act.bregman_terms(ys, np.full(len(ys), x))
            for y, b in zip(ys, ours, strict=True):
                with mp.workdps(110):
                    ref = mp_bregman(act, y, x)
                    slope = abs(mp.mpf(y) - mp_sigma(act, x))
                tol = 1e-12 * ref + 4 * ulp * abs(x) * slope
                assert abs(b - ref) <= tol, (x, eps, y, b, float(ref))


def test_tanh_penalty_is_the_sigmoid_penalty_at_2x_with_factor_one():
    """B_tanh(y, x) = B_sigmoid((1 + y)/2, 2x), factor 1 (not 2): Φ_tanh(y) = Φ_sig(p) + log 2
    with p = (1 + y)/2 and Φ*_tanh(x) = log cosh x = Φ*_sig(2x) − x − log 2. Checked on the
    mpmath table formulas and on the implementation (dyadic y: (1 + y)/2 is exact)."""
    for y, x in [(0.5, 0.3), (-0.75, -2.0), (0.999755859375, 4.0), (0.0, 1e-3)]:
        tanh_ref = mp_bregman(Tanh(), y, x)
        assert abs(tanh_ref - mp_bregman(Sigmoid(), (1 + y) / 2, 2 * x)) <= 1e-50 * tanh_ref
        ours = Sigmoid().bregman((1 + y) / 2, 2 * x)
        assert Tanh().bregman(y, x) == pytest.approx(ours, rel=1e-14)
        assert ours == pytest.approx(float(tanh_ref), rel=1e-13)


def test_bregman_overflow_is_reported_not_inf():
    with pytest.raises(OverflowError, match=r"B_Ψ\(y, x\) of Asinh exceeds the double range at "
                       r"1 entry, first at indices \[1\] with values \[800\.0\]"):
        Asinh().bregman([0.0, 800.0], [0.0, -1e8])
    ref = mp_bregman(Asinh(), 700.0, -1e8)  # ≈ cosh(700) ≈ 5e303: finite, no early overflow
    assert abs(Asinh().bregman(700.0, -1e8) - ref) <= 1e-13 * ref


def test_relu_bregman_at_1e8_exact():
    # B(y, x) = ½ y² + ½ x₊² − x y, exactly representable here
    np.testing.assert_array_equal(
        ReLU().bregman_terms([3.0, 0.0, 1e8 + 2], [-1e8, 1e8, 1e8]), [3e8 + 4.5, 5e15, 2.0]
    )


# ---------------------------------------------------------------------- CVXPY
X_GRID = np.array([-3.0, -0.4, 0.0, 0.7, 2.5])


@pytest.mark.parametrize("act", DCP_SCALAR, ids=ids(DCP_SCALAR))
def test_cvx_phi_recovers_sigma_and_phi_conj(act):
    """min_y Σ Φ(y) − ⟨y, x⟩ = −Σ Φ*(x), attained at y = σ(x) (Fenchel–Young)."""
    y = cp.Variable(X_GRID.shape)
    term = act.cvx_phi(y)
    assert isinstance(term, DCPTerm)
    prob = cp.Problem(cp.Minimize(term.expr - X_GRID @ y), term.constraints)
    assert prob.is_dcp()
    prob.solve(solver=cp.CLARABEL)
    np.testing.assert_allclose(prob.value, -act.phi_conj(X_GRID).sum(), atol=1e-6)
    np.testing.assert_allclose(y.value, act.prox(X_GRID), atol=2e-4)


@pytest.mark.parametrize("act", DCP_SCALAR, ids=ids(DCP_SCALAR))
def test_cvx_phi_conj_matches_phi_conj(act):
    """Σ Φ*(x) at fixed x (2-D shape), minimising over the auxiliary variables."""
    x_val = X_GRID[:4].reshape(2, 2) * 1.5
    x = cp.Variable(x_val.shape)
    term = act.cvx_phi_conj(x)
    prob = cp.Problem(cp.Minimize(term.expr), [*term.constraints, x == x_val])
    assert prob.is_dcp()
    prob.solve(solver=cp.CLARABEL)
    np.testing.assert_allclose(prob.value, act.phi_conj(x_val).sum(), atol=1e-6)


def test_cvx_phi_matches_phi_at_fixed_point():
    for act in DCP_SCALAR:
        y_val = act.prox(np.array([[-0.8, 0.3], [1.1, 0.05]]))
        y = cp.Variable(y_val.shape)
        term = act.cvx_phi(y)
        prob = cp.Problem(cp.Minimize(term.expr), [*term.constraints, y == y_val])
        prob.solve(solver=cp.CLARABEL)
        np.testing.assert_allclose(prob.value, act.phi(y_val).sum(), atol=1e-6, err_msg=act.name)


def test_clip_degenerate_interval_dcp_and_prox():
    act = Clip(0.5, 0.5)
    x = cp.Variable(3)
    term = act.cvx_phi_conj(x)
    prob = cp.Problem(cp.Minimize(term.expr), [x == [-1.0, 0.5, 4.0]])
    prob.solve(solver=cp.CLARABEL)
    np.testing.assert_allclose(prob.value, act.phi_conj([-1.0, 0.5, 4.0]).sum(), atol=1e-7)
    np.testing.assert_array_equal(act.prox_scaled([-3.0, 9.0], 2.0), [0.5, 0.5])


@pytest.mark.parametrize("act", VECTOR, ids=ids(VECTOR))
def test_cvx_vector_activations(act):
    x_val = np.array([[1.0, -0.5, 0.2], [3.0, 2.9, -4.0]])
    y = cp.Variable(x_val.shape)
    term = act.cvx_phi(y)
    prob = cp.Problem(cp.Minimize(term.expr - cp.sum(cp.multiply(x_val, y))), term.constraints)
    prob.solve(solver=cp.CLARABEL)
    np.testing.assert_allclose(prob.value, -act.phi_conj(x_val).sum(), atol=1e-6)
    np.testing.assert_allclose(y.value, act.prox(x_val), atol=2e-4)
    x = cp.Variable(x_val.shape)
    conj = act.cvx_phi_conj(x)
    prob = cp.Problem(cp.Minimize(conj.expr), [*conj.constraints, x == x_val])
    prob.solve(solver=cp.CLARABEL)
    np.testing.assert_allclose(prob.value, act.phi_conj(x_val).sum(), atol=1e-6)
    one = cp.Variable(3)  # 1-D expressions reduce to a scalar too
    assert act.cvx_phi_conj(one).expr.shape == ()


PSI_DCP = [Identity(), ReLU(), LeakyReLU(0.3), SoftThreshold(0.5), Clip(-0.5, 1.0), Sparsemax()]


@pytest.mark.parametrize("act", PSI_DCP, ids=ids(PSI_DCP))
def test_cvx_psi_prox_recovers_sigma(act):
    """argmin_y ½‖y − x‖² + Σ Ψ(y) = prox_Ψ(x) = σ(x), with Ψ alone from ``cvx_psi``."""
    x_val = np.array([[1.3, -0.7, 0.2], [3.0, 2.9, -4.0]])  # away from the kinks (±0.5, 1)
    y = cp.Variable(x_val.shape)
    term = act.cvx_psi(y)
    prob = cp.Problem(cp.Minimize(0.5 * cp.sum_squares(y - x_val) + term.expr), term.constraints)
    assert prob.is_dcp()
    prob.solve(solver=cp.CLARABEL)
    np.testing.assert_allclose(y.value, act.prox(x_val), atol=1e-6)
    inside = cp.Variable(x_val.shape)
    value = act.cvx_psi(inside)
    fixed = cp.Problem(cp.Minimize(value.expr), [*value.constraints, inside == act.prox(x_val)])
    fixed.solve(solver=cp.CLARABEL)
    np.testing.assert_allclose(fixed.value, act.psi(act.prox(x_val)).sum(), atol=1e-6)


@pytest.mark.parametrize("act", [Tanh(), Sigmoid(), Softmax(), Arctan()], ids=str)
def test_cvx_psi_absent_where_psi_is_a_difference_of_convex_terms(act):
    with pytest.raises(NoDCPFormError, match=rf"^{act.name}: Ψ alone has no DCP form"):
        act.cvx_psi(cp.Variable(3))


@pytest.mark.parametrize("act", [Arctan(), Softplus()], ids=["Arctan", "Softplus"])
def test_no_dcp_form_raises_naming_activation(act):
    y = cp.Variable(2)
    with pytest.raises(NoDCPFormError, match=rf"^{act.name}: Φ has no DCP form"):
        act.cvx_phi(y)
    with pytest.raises(NoDCPFormError, match=rf"^{act.name}: Φ\* has no DCP form"):
        act.cvx_phi_conj(y)
    assert issubclass(NoDCPFormError, NotImplementedError)


# ---------------------------------------------------------------------- vector activations
def simplex_point(rng, n):
    y = rng.dirichlet(np.ones(n))
    y[rng.random(n) < 0.3] = 0.0
    if y.sum() == 0:
        y[0] = 1.0
    return y / y.sum()


@pytest.mark.parametrize("act", VECTOR, ids=ids(VECTOR))
@PROPS
@given(seed=st.integers(0, 10_000), scale=st.floats(0.1, 30))
def test_vector_bregman_properties(act, seed, scale):
    rng = np.random.default_rng(seed)
    x = scale * rng.normal(size=(3, 4))
    y = np.stack([simplex_point(rng, 4) for _ in range(3)])
    s = act.prox(x)
    terms = act.bregman_terms(y, x)
    assert terms.shape == (3,)
    assert (terms >= 0.5 * ((y - s) ** 2).sum(-1) - 1e-10 * (1 + scale**2)).all()
    assert act.bregman(s, x) <= 1e-12 * (1 + scale)
    h = 1e-6
    grad = act.bregman_grad(y, x)
    for j in range(4):
        e = np.zeros(4)
        e[j] = h
        fd = (act.bregman_terms(y, x + e) - act.bregman_terms(y, x - e)) / (2 * h)
        np.testing.assert_allclose(fd, grad[:, j], atol=1e-5 * (1 + scale))


@pytest.mark.parametrize("act", VECTOR, ids=ids(VECTOR))
def test_vector_against_mpmath_and_conjugate(act):
    x = np.array([[1e3, 0.0, -1e3], [0.3, -0.2, 0.1], [700.0, 699.0, -5.0]])
    y = np.array([[0.0, 0.25, 0.75], [1 / 3, 1 / 3, 1 / 3], [1.0, 0.0, 0.0]])
    with mp.workdps(60):
        for yi, xi, b in zip(y, x, act.bregman_terms(y, x), strict=True):
            xm, ym = [mp.mpf(v) for v in xi], [mp.mpf(v) for v in yi]
            if act.name == "Softmax":
                phi = sum(v * mp.log(v) for v in ym if v > 0)
                conj = mp.log(sum(mp.exp(v) for v in xm))
            else:
                p = [mp.mpf(v) for v in act.prox(xi)]
                phi = sum(v**2 for v in ym) / 2
                conj = sum(a * c for a, c in zip(xm, p, strict=True)) - sum(v**2 for v in p) / 2
            ref = phi + conj - sum(a * c for a, c in zip(xm, ym, strict=True))
            assert abs(b - ref) <= 1e-10 * abs(ref) + 1e-300
    # Ψ*(v) of sparsemax = max v; Moreau: prox_Ψ(v) + prox_Ψ*(v) = v with prox_Ψ* by CVXPY.
    if act.name == "Sparsemax":
        v = np.array([0.9, -0.4, 0.7, 2.0])
        p = cp.Variable(4)
        cp.Problem(cp.Minimize(0.5 * cp.sum_squares(p - v) + cp.max(p))).solve(cp.CLARABEL)
        np.testing.assert_allclose(act.prox(v) + p.value, v, atol=1e-7)
        assert act.psi_conj(v) == 2.0


@PROPS
@given(seed=st.integers(0, 10_000), t=st.floats(0.01, 20), scale=st.floats(0.1, 50))
def test_softmax_prox_scaled_kkt(seed, t, scale):
    """KKT of min ½‖u − v‖² + t(Σ u log u − ½‖u‖²) on Δ: (1 − t)uᵢ + t log uᵢ − vᵢ = −λ."""
    v = scale * np.random.default_rng(seed).normal(size=5)
    u = Softmax().prox_scaled(v, t)
    assert abs(u.sum() - 1) <= 1e-12 and (u >= 0).all() and u.max() > 0
    positive = u > 0  # entries below 1e-308 underflow to 0
    r = (1 - t) * u[positive] + t * np.log(u[positive]) - v[positive]
    assert np.ptp(r) <= 1e-9 * (1 + scale + t)


def test_softmax_prox_scaled_against_cvxpy():
    v = np.array([[0.5, -1.0, 2.0, 0.0], [3.0, 3.0, -2.0, 1.0]])
    t = np.array([[0.3], [0.9]])
    ours = Softmax().prox_scaled(v, t)
    for k in range(2):  # Clarabel's exponential cone is accurate to ~1e-4 in u, 1e-9 in value
        u = cp.Variable(4)
        obj = 0.5 * (1 - t[k, 0]) * cp.sum_squares(u) - v[k] @ u - t[k, 0] * cp.sum(cp.entr(u))
        prob = cp.Problem(cp.Minimize(obj), [cp.sum(u) == 1])
        prob.solve(cp.CLARABEL)
        u.value = ours[k]
        assert obj.value <= prob.value + 1e-12
        np.testing.assert_allclose(ours[k], prob.variables()[0].value, atol=1e-3)
    np.testing.assert_allclose(Softmax().prox_scaled(v, 1.0), Softmax().prox(v), atol=1e-15)
    np.testing.assert_array_equal(Softmax().prox_scaled([[4.0]], 2.0), [[1.0]])


def test_sparsemax_projection_against_cvxpy():
    v = np.random.default_rng(3).normal(size=(4, 6)) * 2
    ours = Sparsemax().prox_scaled(v, 0.5)
    for k in range(4):
        u = cp.Variable(6)
        cp.Problem(cp.Minimize(cp.sum_squares(u - v[k])), [u >= 0, cp.sum(u) == 1]).solve(
            cp.CLARABEL
        )
        np.testing.assert_allclose(ours[k], u.value, atol=1e-7)


# ---------------------------------------------------------------------- shapes
@pytest.mark.parametrize("act", SCALAR, ids=ids(SCALAR))
def test_scalar_shapes(act):
    assert np.shape(act.prox(0.3)) == ()
    x = np.linspace(-2, 2, 6).reshape(2, 3)
    y = act.prox(x[::-1])
    for f in (act.prox, act.phi_conj):
        assert f(x).shape == (2, 3)
    assert act.psi(y).shape == act.phi(y).shape == (2, 3)
    assert act.bregman_terms(y, x).shape == (2, 3)
    assert act.bregman_grad(y, x).shape == (2, 3)
    np.testing.assert_allclose(act.bregman(y, x), act.bregman_terms(y, x).sum())
    t = np.array([[0.5], [2.0]])
    np.testing.assert_allclose(
        act.prox_scaled(x, t), np.vstack([act.prox_scaled(x[0], 0.5), act.prox_scaled(x[1], 2.0)])
    )
    assert act.bregman_terms(float(y[0, 0]), x).shape == (2, 3)  # broadcasting


@pytest.mark.parametrize("act", VECTOR, ids=ids(VECTOR))
def test_vector_shapes(act):
    x = np.random.default_rng(0).normal(size=(2, 3, 4))
    s = act.prox(x)
    assert s.shape == (2, 3, 4)
    np.testing.assert_allclose(s.sum(-1), 1.0)
    for f in (act.psi, act.phi, act.phi_conj):
        assert f(s).shape == (2, 3)
    assert act.bregman_terms(s, x).shape == (2, 3)
    assert act.prox_scaled(x, np.full((2, 3, 1), 0.4)).shape == (2, 3, 4)
    assert act.prox(np.zeros(5)).shape == (5,)
    assert act.psi(np.array([0.5, 0.6])) == np.inf  # off the simplex: +inf


def test_psi_is_inf_off_domain():
    np.testing.assert_array_equal(ReLU().psi([-1.0, 2.0]), [np.inf, 0.0])
    assert Tanh().psi(1.5) == np.inf and np.isfinite(Tanh().psi(1.0))
    assert Arctan().psi(1.0) == np.inf
    assert ELU(0.5).psi(-0.6) == np.inf and np.isfinite(ELU(0.5).psi(-0.5))


# ---------------------------------------------------------------------- generic machinery
SMOOTH = [a for a in SCALAR if type(a).sigma_inv_grad is not Activation.sigma_inv_grad]


def from_inverse(act: Activation, with_grad: bool) -> Activation:
    """``act`` seen only through Ψ and σ⁻¹ (and (σ⁻¹)'), as a symbolic activation would be:
    prox, prox_scaled and Φ* then come from the base class (root finding in u)."""
    namespace = {
        "name": f"FromInverse({act.name})",
        "domain": act.domain,
        "range": act.range,
        "_psi": lambda self, u: act._psi(u),
        "sigma_inv": lambda self, u: act.sigma_inv(u),
    }
    if with_grad:
        namespace["sigma_inv_grad"] = lambda self, u: act.sigma_inv_grad(u)
    return type("FromInverse", (Activation,), namespace)()


@pytest.mark.parametrize("act", SMOOTH, ids=ids(SMOOTH))
@pytest.mark.parametrize("with_grad", [True, False], ids=["newton", "secant"])
@settings(max_examples=15, deadline=None)
@given(v=st.floats(-50, 50), t=st.floats(0.01, 100))
def test_generic_prox_in_u_matches_prox_in_x(act, with_grad, v, t):
    """Two independent formulations of the same root: (1 − t)u + tσ⁻¹(u) = v in u, and
    t x + (1 − t)σ(x) = v in x (used by the built-ins); plus extreme v at fixed t."""
    generic = from_inverse(act, with_grad)
    vs = np.array([v, 1e3, -1e3, 1e8, -1e8, 0.0])
    np.testing.assert_allclose(generic.prox_scaled(vs, t), act.prox_scaled(vs, t),
                               rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("act", SMOOTH, ids=ids(SMOOTH))
def test_sigma_inv_and_its_derivative(act):
    x = np.array([-3.0, -0.7, 0.2, 1.4, 4.0])
    s = act.prox(x)
    np.testing.assert_allclose(act.sigma_inv(s), x, rtol=1e-12)
    h = 1e-6 * np.minimum(1.0, np.minimum(s - act.range.lo, act.range.hi - s))
    fd = (act.sigma_inv(s + h) - act.sigma_inv(s - h)) / (2 * h)
    np.testing.assert_allclose(act.sigma_inv_grad(s), fd, rtol=1e-6)
    assert (act.sigma_inv_grad(s) >= 1 - 1e-12).all()  # σ is 1-Lipschitz


def test_generic_prox_and_conjugate_from_inverse_only():
    act = from_inverse(Tanh(), with_grad=False)
    x = np.array([-40.0, -3.0, -1e-9, 0.0, 0.5, 2.0, 19.0, 1e8])
    np.testing.assert_allclose(act.prox(x), np.tanh(x), rtol=2e-16, atol=2e-16)
    np.testing.assert_allclose(act.phi_conj(x[:-1]), Tanh().phi_conj(x[:-1]), rtol=1e-14,
                               atol=1e-15)
    clip = from_inverse(Clip(0.0, 1.0), with_grad=False)
    np.testing.assert_array_equal(clip.prox([-2.0, 0.25, 3.0]), [0.0, 0.25, 1.0])  # closed ends
    assert repr(act) == "FromInverse(Tanh)"


def test_float_midpoint_and_root_finder_failure():
    from bregmod.activations import _float_midpoint, _monotone_root
    from bregmod.errors import SolverError

    lo, hi = np.array([1e-300, -1.0, -8.0, 2.0]), np.array([1.0, 4.0, -2.0, 8.0])
    mid = _float_midpoint(lo, hi)
    np.testing.assert_array_equal(mid[1:], [0.0, -4.0, 4.0])  # exact: 0 splits signs, 2^±1
    # in [1e-300, 1] the midpoint halves the number of doubles (≈ 1e-150, geometric)
    below = int(np.abs(mid[0]).view(np.int64)) - int(lo[0].view(np.int64))
    above = int(hi[0].view(np.int64)) - int(np.abs(mid[0]).view(np.int64))
    assert abs(below - above) <= 1 and 1e-151 < mid[0] < 1e-149

    def broken(x):  # NaN inside the bracket: no progress is possible
        g = np.where(x <= 0, -1.0, np.where(x >= 1, 1.0, np.nan))
        return g, None, np.zeros_like(x)

    with pytest.raises(SolverError, match=r"^demo: the safeguarded root finder did not converge"):
        _monotone_root(broken, [0.0], [1.0], what="demo")


def test_from_psi_and_from_sigma_build_the_activation_of_the_derivation():
    """The constructors import the derivation (bregmod.derivation), not the symbolic front end
    that builds on this module: a fresh interpreter never imports bregmod.symbolic."""
    code = (
        "import sys\n"
        "from bregmod.activations import Activation, SymbolicActivation\n"
        "a = Activation.from_psi('abs(u)', time_limit=None)\n"
        "b = Activation.from_sigma('Max(x, 0)', time_limit=None)\n"
        "assert isinstance(a, SymbolicActivation) and isinstance(b, SymbolicActivation)\n"
        "assert 'bregmod.symbolic' not in sys.modules, 'activations imported the front end'\n"
        "print(a.derivation.name, b.prox([-1.0, 2.0]).tolist())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["Symbolic(Ψ", "=", "Abs(u)", "on", "[-oo,", "oo])", "[0.0,",
                                  "2.0]"]


@pytest.mark.parametrize("act", SCALAR, ids=ids(SCALAR))
def test_sympy_psi_matches_psi_and_its_derivative(act):
    """Ψ from sympy equals psi, and Ψ'(σ(x)) = x − σ(x) on the interior of the range."""
    import sympy as sp

    u = sp.Symbol("u", real=True)
    expr, domain = act.sympy_psi(u)
    f = sp.lambdify(u, expr, "mpmath")
    df = sp.lambdify(u, sp.diff(expr, u), "mpmath")
    for x in (-2.2, -0.3, 0.6, 1.9):
        s = float(act.prox(x))
        assert bool(domain.contains(sp.Float(s)))
        assert abs(float(f(s)) - float(act.psi(s))) <= 1e-12
        interior = act.range.contains(s) and s not in (act.range.lo, act.range.hi)
        if interior and not (act.name.startswith("SoftThreshold") and s == 0):
            assert abs(float(df(s)) - (x - s)) <= 1e-10, (act.name, x)
    assert bool(domain.contains(sp.Float(5.0))) == act.domain.contains(5.0)


def test_interval_contains_and_str():
    i = Interval(0.0, 1.0, False, True)
    np.testing.assert_array_equal(i.contains([0.0, 0.5, 1.0, 1.5]), [False, True, True, False])
    assert str(i) == "(0, 1]" and str(Interval(-np.inf, 2.0)) == "(-inf, 2]"


def test_equality_and_names():
    assert LeakyReLU(0.1) == LeakyReLU(0.1) and LeakyReLU(0.1) != LeakyReLU(0.2)
    assert len({ReLU(), ReLU(), Tanh()}) == 2
    assert LeakyReLU(0.1).name == "LeakyReLU(slope=0.1)"
    assert Softmax().is_vector is True and ReLU().is_vector is False


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: LeakyReLU(1.5), r"slope 1\.5 > 1 makes σ expansive, so it is not a proximal map"),
        (lambda: LeakyReLU(0.0), r"slope 0\.0 ≤ 0 .* ReLU for slope 0"),
        (lambda: LeakyReLU(float("nan")), r"LeakyReLU: slope must be a finite number, got nan"),
        (lambda: LeakyReLU("a"), r"slope must be a finite number, got 'a'"),
        (lambda: SoftThreshold(-1), r"threshold -1\.0 < 0 makes σ discontinuous at 0"),
        (lambda: Clip(2.0, 1.0), r"lo 2\.0 > hi 1\.0 makes \[lo, hi\] empty"),
        (lambda: Clip(0.0, np.inf), r"Clip: hi must be a finite number, got inf"),
        (lambda: ELU(1.5), r"alpha 1\.5 > 1 makes σ'\(0⁻\) = alpha > 1, so σ is expansive"),
        (lambda: ELU(-1), r"ELU: alpha -1\.0 ≤ 0"),
    ],
)
def test_non_admissible_parameters(make, message):
    with pytest.raises(NotAdmissibleError, match=message):
        make()


def test_out_of_domain_targets_raise_domain_error():
    with pytest.raises(DomainError, match=r"y is outside the domain \[0, inf\) of Ψ for ReLU "
                       r".*1 entry, first at indices \[1\] with values \[-0\.5\]"):
        ReLU().bregman([1.0, -0.5], [0.0, 0.0])
    with pytest.raises(DomainError, match=r"for Sigmoid .*indices \[\(0, 1\)\]"):
        Sigmoid().bregman_terms([[0.5, 1.5]], [[0.0, 0.0]])
    with pytest.raises(DomainError, match=r"target is outside the domain \(-1, 1\) .*Arctan"):
        Arctan().check_domain([1.0], what="target")
    with pytest.raises(DomainError, match=r"for ELU\(alpha=0\.5\)"):
        ELU(0.5).bregman_grad(-0.75, 0.0)
    with pytest.raises(DomainError, match=r"Softmax\): vectors along the last axis must sum to 1"):
        Softmax().bregman([0.5, 0.6], [0.0, 0.0])
    with pytest.raises(DomainError, match=r"Sparsemax\): entries must lie in \[0, 1\]"):
        Sparsemax().bregman([1.5, -0.5], [0.0, 0.0])
    assert issubclass(DomainError, ValueError)


def test_nan_and_bad_arrays_rejected():
    with pytest.raises(ValueError, match=r"x of Tanh contains NaN or Inf: 1 entry"):
        Tanh().prox([0.0, np.nan])
    with pytest.raises(ValueError, match=r"y of ReLU contains NaN or Inf"):
        ReLU().bregman([np.inf], [0.0])
    with pytest.raises(ValueError, match=r"u of Sigmoid contains NaN"):
        Sigmoid().psi(np.nan)
    with pytest.raises(ValueError, match=r"v of Softplus must be a numeric array"):
        Softplus().prox_scaled("abc", 1.0)
    with pytest.raises(ShapeError, match=r"do not broadcast \(Tanh\)"):
        Tanh().bregman(np.zeros(3), np.zeros(2))
    with pytest.raises(ShapeError, match=r"Softmax acts on vectors along the last axis"):
        Softmax().prox(1.0)


def test_prox_step_validation():
    with pytest.raises(ValueError, match=r"prox step t of Tanh must be > 0 .*values \[0\.0\]"):
        Tanh().prox_scaled(1.0, 0.0)
    with pytest.raises(ValueError, match=r"prox step t of ReLU must be > 0 .*values \[-1\.0\]"):
        ReLU().prox_scaled([1.0, 2.0], [1.0, -1.0])
    with pytest.raises(ValueError, match=r"prox step t of ELU\(alpha=1\.0\) contains NaN"):
        ELU().prox_scaled(1.0, np.nan)
    with pytest.raises(ShapeError, match=r"does not broadcast to v's shape \(2,\)"):
        Tanh().prox_scaled([1.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ShapeError, match=r"one prox step per vector: t must be a scalar or have "
                       r"shape \(2, 1\)"):
        Softmax().prox_scaled(np.zeros((2, 3)), np.ones((2, 3)))


def test_not_implemented_paths_name_the_activation():
    with pytest.raises(NotImplementedError, match=r"Softmax has no closed-form inverse σ⁻¹"):
        Softmax().sigma_inv(0.5)
    with pytest.raises(NotImplementedError, match=r"Tanh has no closed-form Ψ\*"):
        Tanh().psi_conj(0.0)
    with pytest.raises(NotImplementedError, match=r"Sparsemax has no scalar sympy form"):
        Sparsemax().sympy_psi(None)
