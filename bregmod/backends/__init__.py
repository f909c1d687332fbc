"""Exact backends for :class:`bregmod.problem.Inversion`.

* :mod:`bregmod.backends.cvxpy_backend` — the certified model in DCP form, solved by CVXPY
  (Clarabel by default); selected with ``Inversion.solve(solver="cvxpy")``.
"""
