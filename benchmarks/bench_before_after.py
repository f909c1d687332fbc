"""Before/after timing of the 64 × 64 problem of bench_inversion.py (``make_problem(64, 8)``).

For checks of a refactor on a loaded machine: time the same cases with two trees of bregmod,
alternated, in separate processes, and compare iterations, objectives and time ratios::

    git archive <old commit> bregmod | tar -x -C /tmp/before
    for case in "admm tol 1e-4" "admm tol 1e-6"; do
        PYTHONPATH=/tmp/before python benchmarks/bench_before_after.py "$case"
        PYTHONPATH=. python benchmarks/bench_before_after.py "$case"
    done

Prints one JSON line per case (the tree, seconds of ``problem.solve``, status, iterations,
objective); problem construction is not timed.
"""
import json
import sys
import time
import warnings

import numpy as np

import bregmod
from bregmod.activations import ReLU
from bregmod.data import phantom
from bregmod.network import Dense
from bregmod.problem import Inversion
from bregmod.regularizers import TotalVariation


def make_problem(size, ratio, seed=0):
    rng = np.random.default_rng(seed)
    n = size * size
    m = n // ratio
    W = rng.standard_normal((m, n))
    b = rng.standard_normal(m)
    x = W @ phantom(size).ravel() + b
    data = np.maximum(0.0, x + 0.01 * np.mean(np.abs(x)) * rng.standard_normal(m))
    return Inversion(Dense(W, b, ReLU(), in_shape=(size, size)), data,
                     0.015 * m * TotalVariation((size, size)), fidelity="bregman")


cases = {
    "admm tol 1e-4": dict(solver="admm", tol=1e-4),
    "admm tol 1e-6": dict(solver="admm", tol=1e-6),
    "admm float32 tol 1e-4": dict(solver="admm", tol=1e-4, dtype=np.float32),
    "cvxpy (Clarabel) tol 1e-6": dict(solver="cvxpy", tol=1e-6),
}
which = sys.argv[1:] or list(cases)
for name in which:
    problem = make_problem(64, 8)  # construction not timed
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = problem.solve(**cases[name])
    elapsed = time.perf_counter() - start
    print(json.dumps({"tree": bregmod.__file__, "case": name, "seconds": elapsed,
                      "status": result.status, "iterations": int(result.iterations),
                      "objective": float(np.sum(result.objective))}), flush=True)
