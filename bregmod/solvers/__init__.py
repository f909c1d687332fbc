"""Solvers for the inversion problem, selected by ``Inversion.solve(solver=name)``.

The registry (:mod:`bregmod.solvers.registry`) maps each name to its module; every module
declares ``NAME``, ``supports(problem) -> str | None`` and ``solve``:

* ``cvxpy`` — the exact DCP backend (:mod:`bregmod.backends.cvxpy_backend`; certified problems);
* ``pdhg``  — Condat–Vũ primal–dual splitting on the compiled structure (any problem; J may
  contain linear operators such as TV's gradient);
* ``fista`` — accelerated proximal gradient with backtracking and restart (J without a linear
  operator inside; the lifted constraint is eliminated);
* ``cd``    — the implicit/explicit coordinate descent for ``ShallowSum`` networks;
* ``admm``  — structure-exploiting solver for the one-layer Bregman-fidelity problem;
* ``palm``  — block proximal gradient (PALM) for the deep lifted Bregman model.

The first-order solvers share the stopping policy, history, warm start and Result
construction of :mod:`bregmod.solvers._common`.
"""

from bregmod.solvers.registry import SOLVERS

__all__ = ["SOLVERS"]
