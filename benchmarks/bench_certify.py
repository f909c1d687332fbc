"""Time the convexity certificate on a deep, wide residual network.

Network: 20 residual layers u_j = u_{j−1} + W_jᵀ ReLU(W_j u_{j−1} + b_j) with 4096-wide states
and W_j of shape 64 × 4096 (Q does not depend on W, so a thin W keeps memory small); the lifted
u-space has 21 · 4096 = 86016 entries. Prints the median wall time of ``certify(method="paper")``
and of ``smallest_rho``, and, for reference, the dense exact certificate of a small network.

Run: ``python benchmarks/bench_certify.py``
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import numpy as np

from bregmod.activations import ReLU
from bregmod.certificate import certify, smallest_rho
from bregmod.network import Residual, Sequential


def median_time(run: Callable[[], object], repeats: int = 5) -> float:
    """Median wall time of ``run()`` over ``repeats`` calls, in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def residual_net(depth: int, width: int, hidden: int, seed: int = 0) -> Sequential:
    """The talk's residual chain with random weights (V = Wᵀ)."""
    rng = np.random.default_rng(seed)
    return Sequential(
        *[
            Residual(
                rng.standard_normal((hidden, width)) / hidden, rng.standard_normal(hidden), ReLU()
            )
            for _ in range(depth)
        ]
    )


def main() -> None:
    depth, width, hidden = 20, 4096, 64
    start = time.perf_counter()
    lifted = residual_net(depth, width, hidden).lift()
    elapsed = time.perf_counter() - start
    print(f"lift: depth {depth}, width {width}, n_u = {lifted.n_u}: {elapsed:.3f} s")
    cert = certify(lifted, 1.0, 200.0, method="paper")
    print(f"certify(paper, λ=1, ρ=200): certified={cert.certified}, min_eig={cert.min_eig:.4g}")
    print(f"  solver: {cert.solver}")
    print(
        f"  median time: {median_time(lambda: certify(lifted, 1.0, 200.0, method='paper')):.4f} s"
    )
    rho = smallest_rho(lifted, 1.0, method="paper")
    print(f"smallest_rho(λ=1) = {rho.value:.6g}")
    print(f"  median time: {median_time(lambda: smallest_rho(lifted, 1.0, method='paper')):.4f} s")

    small = residual_net(depth=5, width=64, hidden=32).lift()
    exact = certify(small, 1.0, 1.0, method="exact")
    n = small.n_u + small.n_z
    print(f"certify(exact) depth 5, width 64, n_u + n_z = {n}: certified={exact.certified}")
    print(f"  median time: {median_time(lambda: certify(small, 1.0, 1.0), repeats=3):.4f} s")


if __name__ == "__main__":
    main()
