"""The solver registry: every solver declares NAME, supports and solve; "auto" asks supports."""

from __future__ import annotations

import inspect
import sys
import textwrap
import types
import warnings

import numpy as np
import pytest

from bregmod.activations import Arctan, ReLU
from bregmod.errors import NoDCPFormError, NotCertifiedError, SolverError
from bregmod.network import Dense, Residual, Sequential, ShallowSum
from bregmod.problem import Inversion, SolverWarning
from bregmod.regularizers import L1, SquaredL2, TotalVariation
from bregmod.solvers import SOLVERS, registry
from bregmod.spec import SpecError, parse_spec


def bregman(reg, activation=None, seed: int = 0) -> Inversion:
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((12, 16)) / 4
    activation = activation or ReLU()
    net = Dense(W, 0.1 * rng.standard_normal(12), activation, in_shape=(4, 4))
    return Inversion(net, net(rng.standard_normal((4, 4))), reg=reg, fidelity="bregman")


def residual(activation=None, lam: float = 2.0) -> Inversion:
    rng = np.random.default_rng(1)
    net = Sequential(*[Residual(0.4 * rng.standard_normal((3, 4)), None, activation or ReLU())
                       for _ in range(2)])
    return Inversion(net, net(rng.standard_normal(4)), reg=0.1 * L1(), lam=lam)


def shallow() -> Inversion:
    net = ShallowSum(np.ones(4), -0.2 * np.arange(4), np.full(4, 0.5), ReLU())
    return Inversion(net, np.array(0.7), reg=0.1 * SquaredL2())


PROBLEMS = {
    "bregman-l1": lambda: bregman(0.1 * L1()),
    "bregman-tv": lambda: bregman(0.1 * TotalVariation((4, 4))),
    "residual": residual,
    "residual-arctan": lambda: residual(Arctan()),
    "shallow": shallow,
}
#: Which solvers support which problem (None: supported; else a phrase of the reason).
EXPECTED = {
    "bregman-l1": {"cvxpy": None, "pdhg": None, "fista": None, "cd": "fidelity='bregman'",
                   "admm": None},
    "bregman-tv": {"cvxpy": None, "pdhg": None, "fista": "composite term", "cd": "fidelity",
                   "admm": None},
    "residual": {"cvxpy": None, "pdhg": None, "fista": None, "cd": "got the network",
                 "admm": "fidelity='quadratic'"},
    "residual-arctan": {"cvxpy": "Arctan", "pdhg": None, "fista": None, "cd": "got the network",
                        "admm": "fidelity='quadratic'"},
    "shallow": {"cvxpy": "not certified convex", "pdhg": None, "fista": None, "cd": None,
                "admm": "fidelity='quadratic'"},
}


def test_every_registered_solver_declares_name_supports_and_solve():
    assert set(SOLVERS) <= set(registry.MODULES)
    assert registry.names() == ("auto", *registry.MODULES)
    for name in registry.MODULES:
        module = registry.load(name)
        assert module.NAME == name
        assert callable(module.supports) and callable(module.solve)
        parameters = inspect.signature(module.solve).parameters
        common = ["problem", "tol", "max_iter", "warm_start", "progress", "dtype"]
        assert list(parameters)[:6] == common, name
        options = list(parameters)[6:]
        assert all(parameters[p].kind == inspect.Parameter.KEYWORD_ONLY for p in options), name
        assert registry.options(name) == set(options)


@pytest.mark.parametrize("problem_name", list(PROBLEMS))
def test_supports_predicts_what_solve_refuses(problem_name):
    problem = PROBLEMS[problem_name]()
    for name, expected in EXPECTED[problem_name].items():
        reason = registry.supports(name, problem)
        if expected is None:
            assert reason is None, (name, reason)
            # the solver accepts the problem: one iteration runs (not a convergence test)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SolverWarning)
                result = problem.solve(name, max_iter=1)
            assert result.solver == name
        else:
            assert expected in reason, (name, reason)
            with pytest.raises((ValueError, SolverError, NotCertifiedError, NoDCPFormError)):
                problem.solve(name, max_iter=1)


def test_unknown_and_missing_solvers(monkeypatch):
    with pytest.raises(ValueError, match=r"unknown solver 'newton'; choose one of \('auto'"):
        registry.load("newton")
    monkeypatch.setitem(registry.MODULES, "gone", "bregmod.solvers.gone")
    with pytest.raises(SolverError, match="solver 'gone' is not available: the module "
                                          "bregmod.solvers.gone is missing"):
        registry.load("gone")


@pytest.mark.parametrize(
    ("problem_name", "dtype", "choice", "phrases"),
    [
        ("bregman-l1", np.float64, "cvxpy", ["certified convex"]),
        ("bregman-l1", np.float32, "fista", ["cvxpy (dtype float32"]),
        ("bregman-tv", np.float32, "admm", ["cvxpy (dtype float32", "fista (fista needs"]),
        ("residual", np.float64, "cvxpy", ["certified convex"]),
        ("residual-arctan", np.float64, "pdhg", ["cvxpy (", "Arctan"]),
        ("shallow", np.float64, "pdhg", ["not certified convex"]),
    ],
)
def test_auto_asks_supports_in_order_and_says_why(problem_name, dtype, choice, phrases):
    problem = PROBLEMS[problem_name]()
    name, passed_over, reason = registry.choose(problem, dtype)
    assert name == choice
    order = registry.AUTO_ORDER[problem.fidelity]
    assert [n for n, _ in passed_over] == list(order[: order.index(choice)])
    for phrase in phrases:
        assert phrase in reason


def test_auto_never_asks_the_exact_backend_above_the_size_limit(monkeypatch):
    asked = []
    load = registry.load

    def recording(name):
        module = load(name)
        return types.SimpleNamespace(
            supports=lambda problem: asked.append(name) or module.supports(problem),
            solve=module.solve,
        )

    monkeypatch.setattr(registry, "AUTO_EXACT_LIMIT", 10)
    monkeypatch.setattr(registry, "load", recording)
    name, _, reason = registry.choose(residual())
    assert name == "pdhg" and asked == ["pdhg"]
    assert "unknowns > AUTO_EXACT_LIMIT = 10" in reason


def test_a_new_solver_is_one_module_and_one_registry_line(monkeypatch):
    """A module declaring NAME, supports and solve, registered by one line, is usable by
    Inversion.solve and by specs (its options checked against its signature)."""
    module = types.ModuleType("my_solver")
    calls = []

    def solve(problem, tol=1e-6, max_iter=None, warm_start=None, progress=False,
              dtype=np.float64, *, damping: float = 1.0):
        calls.append(damping)
        u, z = problem.lifted.forward(np.zeros(problem.lifted.input_shape))
        return problem.make_result(u, z, status="optimal", solver="mine")

    module.NAME, module.solve, module.supports = "mine", solve, lambda problem: None
    monkeypatch.setitem(sys.modules, "my_solver", module)
    monkeypatch.setitem(registry.MODULES, "mine", "my_solver")
    result = residual().solve("mine", damping=0.5)
    assert result.solver == "mine" and calls == [0.5]
    spec = textwrap.dedent("""
        [input]
        shape = [4, 4]
        [[layers]]
        type = "dense"
        out = 8
        activation = "relu"
        weights = { distribution = "normal", std = 1.0, seed = 0 }
        [data]
        ground_truth = { image = "phantom" }
        [model]
        fidelity = "bregman"
        [solver]
        name = "mine"
        [solver.options]
        damping = 0.5
    """)
    assert parse_spec(spec).solver.options == {"damping": 0.5}
    with pytest.raises(SpecError, match="solver 'mine' has no option 'tau'; its options: damping"):
        parse_spec(spec.replace("damping = 0.5", "tau = 0.5"))
