"""The one registry of solvers: names, modules, what each supports, and the choice of ``"auto"``.

Every solver is a module that declares

* ``NAME`` — the name users pass as ``Inversion.solve(solver=NAME)`` and write in a spec's
  ``[solver] name``;
* ``supports(problem) -> str | None`` — None when the solver applies to the problem, else a
  human-readable reason why not (what it supports and what to use instead);
* ``solve(problem, tol=1e-6, max_iter=None, warm_start=None, progress=False,
  dtype=numpy.float64, **options) -> Result`` — its keyword-only options beyond these
  common arguments are the ones a spec's ``[solver.options]`` table may set.

Adding a solver is one module plus one line in :data:`MODULES` (and, if ``"auto"`` should
consider it, one entry in :data:`AUTO_ORDER`). :meth:`bregmod.problem.Inversion.solve`,
:mod:`bregmod.spec` and the CLI read this registry; modules are imported only when used (the
CVXPY backend imports CVXPY).

``solver="auto"`` (:func:`choose`) walks :data:`AUTO_ORDER` for the kind of problem and
takes the first solver whose ``supports`` accepts the problem. Exact solvers
(:data:`EXACT`) are asked only when ``dtype`` is float64 and the problem has at most
:data:`AUTO_EXACT_LIMIT` unknowns (their dense factorisations grow as the cube of the size);
the reason for the choice, and why each earlier candidate was passed over, is recorded in
``Result.stats["auto"]``.
"""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType

import numpy as np

from bregmod.errors import SolverError

__all__ = [
    "AUTO_EXACT_LIMIT",
    "AUTO_ORDER",
    "COMMON_ARGUMENTS",
    "EXACT",
    "MODULES",
    "SOLVERS",
    "STATUSES",
    "choose",
    "kind",
    "load",
    "names",
    "options",
    "supports",
    "worst_status",
]

#: Solver name ↦ the module that implements it.
MODULES: dict[str, str] = {
    "cvxpy": "bregmod.backends.cvxpy_backend",
    "pdhg": "bregmod.solvers.pdhg",
    "fista": "bregmod.solvers.fista",
    "cd": "bregmod.solvers.cd",
    "admm": "bregmod.solvers.admm",
    "palm": "bregmod.solvers.palm",
}
#: The first-order (iterative, numpy) solvers.
SOLVERS: tuple[str, ...] = ("pdhg", "fista", "cd", "admm", "palm")
#: Solvers that compute an exact solution with dense factorisations (CVXPY): ``"auto"`` asks
#: them only for float64 and at most :data:`AUTO_EXACT_LIMIT` unknowns.
EXACT: tuple[str, ...] = ("cvxpy",)
#: ``solver="auto"``: the candidates, per kind of problem (:func:`kind`), in the order their
#: ``supports`` is asked. One-layer Bregman fidelity: the exact backend, then FISTA (J without
#: a linear operator), ADMM (J's linear operators are TV on the input), PDHG (everything).
#: Quadratic fidelity: the exact backend, then PDHG. The deep lifted Bregman model (a chain of
#: two or more layers): PALM. ``cd`` (ShallowSum networks only) is never chosen automatically.
AUTO_ORDER: dict[str, tuple[str, ...]] = {
    "bregman": ("cvxpy", "fista", "admm", "pdhg"),
    "quadratic": ("cvxpy", "pdhg"),
    "deep": ("palm",),
}
#: ``"auto"`` asks the exact backend up to this many scalar unknowns (n_u + n_z, or n_in + m
#: for the Bregman fidelity), a few seconds with Clarabel.
AUTO_EXACT_LIMIT = 2000
#: Statuses a solver's :class:`~bregmod.problem.Result` may carry, from best to worst.
#: ``"optimal"``: converged to tolerance on a problem certified convex; ``"stationary"``:
#: converged to tolerance on a problem that is not certified convex (a stationary point / local
#: solution; :meth:`~bregmod.problem.Inversion.make_result` converts).
STATUSES = (
    "optimal",
    "stationary",
    "optimal_inaccurate",
    "max_iter",
    "diverged",
    "interrupted",
    "solver_error",
    "infeasible",
    "infeasible_inaccurate",
    "unbounded",
    "unbounded_inaccurate",
)
#: The arguments every ``solve`` takes; the others are the solver's options.
COMMON_ARGUMENTS = frozenset(
    {"problem", "tol", "max_iter", "warm_start", "progress", "dtype", "solver"}
)


def worst_status(statuses) -> str:
    """The status of a batch: the worst of its items' ``statuses`` in the order of
    :data:`STATUSES` (ValueError for a status not in it)."""
    return max(statuses, key=STATUSES.index)


def names() -> tuple[str, ...]:
    """Every accepted ``solver=`` value: ``"auto"`` and the registered solvers."""
    return ("auto", *MODULES)


def load(name: str) -> ModuleType:
    """The module of solver ``name``.

    Raises
    ------
    ValueError
        ``name`` is not registered (the message lists the names).
    SolverError
        The solver's module is missing from this installation.
    """
    if name not in MODULES:
        raise ValueError(f"unknown solver {name!r}; choose one of {names()}")
    module_name = MODULES[name]
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise SolverError(
            f"solver {name!r} is not available: the module {module_name} is missing"
        ) from None


def options(name: str) -> set[str]:
    """The keyword options of solver ``name`` beyond :data:`COMMON_ARGUMENTS`."""
    solve = load(name).solve
    return set(inspect.signature(solve).parameters) - COMMON_ARGUMENTS


def supports(name: str, problem) -> str | None:
    """None when solver ``name`` applies to ``problem``, else the reason it does not."""
    return load(name).supports(problem)


def kind(problem) -> str:
    """The key of :data:`AUTO_ORDER` for ``problem``: ``"deep"`` for the deep lifted Bregman
    model, else its fidelity."""
    return "deep" if getattr(problem, "deep", None) is not None else problem.fidelity


def _size(problem) -> int:
    """The number of scalar unknowns the exact backend works with."""
    lifted = problem.lifted
    if problem.fidelity == "bregman":
        return int(np.prod(lifted.input_shape)) + lifted.n_z
    return lifted.n_u + lifted.n_z


def choose(
    problem, dtype=np.float64, exclude: tuple[str, ...] = ()
) -> tuple[str, list[tuple[str, str]], str]:
    """The solver ``"auto"`` picks for ``problem``.

    Parameters
    ----------
    problem : Inversion
    dtype : numpy float dtype
        The requested dtype of the iterates.
    exclude : tuple of str
        Candidates not to ask (e.g. the exact backend after it refused at solve time).

    Returns
    -------
    name : str
        The first solver of ``AUTO_ORDER[kind(problem)]`` that supports the problem.
    passed_over : list of (name, reason)
        The earlier candidates and why each was not taken.
    reason : str
        Why ``name`` was taken (for ``Result.stats["auto"]``).
    """
    order = tuple(name for name in AUTO_ORDER[kind(problem)] if name not in exclude)
    passed_over: list[tuple[str, str]] = []
    for name in order:
        if name in EXACT:
            size = _size(problem)
            if np.dtype(dtype) != np.float64:
                passed_over.append((name, f"dtype {np.dtype(dtype)}: {name} computes in float64"))
                continue
            if size > AUTO_EXACT_LIMIT:
                passed_over.append(
                    (name, f"{size} unknowns > AUTO_EXACT_LIMIT = {AUTO_EXACT_LIMIT}")
                )
                continue
        refusal = supports(name, problem)
        if refusal is not None:
            passed_over.append((name, refusal))
            continue
        if name in EXACT:
            reason = f"certified convex, {_size(problem)} unknowns ≤ {AUTO_EXACT_LIMIT}"
        else:
            reason = f"{name} is the first of {order} that supports the problem"
        if passed_over:
            reason += "; passed over: " + "; ".join(f"{n} ({r})" for n, r in passed_over)
        return name, passed_over, reason
    raise SolverError(
        "no solver supports this problem: "
        + "; ".join(f"{n}: {r}" for n, r in passed_over)
    )
