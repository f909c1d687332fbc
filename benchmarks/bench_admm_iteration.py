"""Per-iteration cost of ``admm`` against the two products with W, one case, one process.

On the problem of bench_inversion.py (``make_problem(size)``), inside
``threadpool_limits(1)``: the CPU time (``time.process_time``, robust to a shared machine) of
a whole ``problem.solve(solver="admm", tol=…, dtype=…)`` call minus that of a 1-iteration
call, per iteration, next to one product with W and one with Wᵀ in a tight loop. Prints one
JSON line (the bregmod tree imported, iterations, status, bound, CPU and wall times, the Gram
dtype, the 1-minute load average). For a before/after comparison, alternate two trees::

    git archive <old commit> bregmod | tar -x -C /tmp/before
    for tree in /tmp/before . /tmp/before .; do
        PYTHONPATH=$tree python benchmarks/bench_admm_iteration.py 64 1e-6 float64
    done
"""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

import bregmod

sys.path.insert(0, str(Path(__file__).parent))
from bench_inversion import make_problem  # noqa: E402


def main(size: int, tol: float, dtype: str) -> dict:
    warnings.simplefilter("ignore")  # the 1-iteration call ends at max_iter
    dt = np.dtype(dtype)
    problem = make_problem(size)
    with threadpool_limits(1):
        A = problem.A.matrix.astype(dt)
        x, y = np.ones((1, A.shape[1]), dt), np.ones((1, A.shape[0]), dt)
        repeat = max(5, int(2e8 / A.size))
        start = time.process_time()
        for _ in range(repeat):
            x @ A.T
            y @ A
        pair = (time.process_time() - start) / repeat
        c0 = time.process_time()
        problem.solve(solver="admm", tol=tol, max_iter=1, dtype=dt)
        w1, c1 = time.perf_counter(), time.process_time()
        result = problem.solve(solver="admm", tol=tol, dtype=dt)
        w2, c2 = time.perf_counter(), time.process_time()
    return dict(
        tree=str(Path(bregmod.__file__).parent.parent), size=size, tol=tol, dtype=dt.name,
        iterations=int(result.iterations), status=result.status, bound=result.stats.get("bound"),
        gram=result.stats.get("gram_dtype"), whole_wall=w2 - w1, whole_cpu=c2 - c1,
        one_iteration_cpu=c1 - c0,
        per_iteration_cpu=((c2 - c1) - (c1 - c0)) / max(result.iterations - 1, 1),
        pair_cpu=pair, load=os.getloadavg()[0],
    )


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: bench_admm_iteration.py SIZE TOL float64|float32")
    print(json.dumps(main(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3])), flush=True)
