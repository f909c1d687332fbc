"""First-order solvers for the lifted inversion problem.

Each submodule exposes ``solve(problem, tol=1e-6, max_iter=None, warm_start=None,
progress=False, dtype=numpy.float64, **options) -> Result`` and is selected by
``Inversion.solve(solver=name)``:

* ``pdhg``  — Condat–Vũ primal–dual splitting on the compiled structure (any problem; J may
  contain linear operators such as TV's gradient);
* ``fista`` — accelerated proximal gradient with backtracking and restart (J without a linear
  operator inside; the lifted constraint is eliminated);
* ``cd``    — the implicit/explicit coordinate descent for ``ShallowSum`` networks;
* ``admm``  — structure-exploiting solver for the one-layer Bregman-fidelity problem;
* ``palm``  — block proximal gradient (PALM) for the deep lifted Bregman model.

All share the stopping policy, history, warm start and Result construction of
:mod:`bregmod.solvers._common`.
"""

SOLVERS = ("pdhg", "fista", "cd", "admm", "palm")

__all__ = ["SOLVERS"]
