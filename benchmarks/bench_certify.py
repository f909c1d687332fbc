"""Time the convexity certificates of the quadratic lifted model at scale.

``paper``: 20 residual layers u_j = u_{j−1} + W_jᵀ ReLU(W_j u_{j−1} + b_j) with 4096-wide states
and W_j of shape 64 × 4096 (Q does not depend on W, so a thin W keeps memory small); the lifted
u-space has 21 · 4096 = 86016 entries. Prints the median wall time of ``certify(method="paper")``
and of ``smallest_rho``, and, for reference, the dense exact certificate of a small network.

``exact``: the exact certificate above ``DENSE_LIMIT`` (block LDLᵀ of the restricted
H₀ + tol·I along the chain, a verified margin) on networks with n_u + n_z ≈ 10⁵, λ = 1:

* ``dense``: 784 → 49 × 1000 ReLU (hidden ‖W_j‖ = 0.45, W_1 Gaussian): 98,784 unknowns;
* ``conv``: 3 × 3 'same' convolutions on 28 × 28, 1 → 8 → 60 channels (second kernel scaled
  to ‖W_2‖ ≤ 0.45): 784 + 2 · (6,272 + 47,040) = 107,408 unknowns;
* ``residual``: 66 residual layers on 1000-wide states, u_j = u_{j−1} + V_j ReLU(W_j u_{j−1}),
  W_j, V_j Gaussian 500 × 1000 and 1000 × 500 with ‖W_j‖ = ‖V_j‖ = 0.3: 67,000 + 33,000 =
  100,000 unknowns.

For each: the wall and CPU time of ``certify`` at α = 0 (which reports the threshold α* for
J = α/2‖u₀‖²; its first call also computes the operators' norm bounds) and at 1.01 α* and
0.99 α* (both verdicts), with the load average.

Run: ``python benchmarks/bench_certify.py [--only paper|exact] [--cases dense conv residual]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numpy as np

from bregmod.activations import ReLU
from bregmod.certificate import certify, smallest_rho
from bregmod.network import Conv2d, Dense, Residual, Sequential
from bregmod.operators import Conv2dOperator


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


def dense_chain(seed: int = 0) -> Sequential:
    rng = np.random.default_rng(seed)
    sizes = [784] + [1000] * 49
    layers = []
    for j, (n, m) in enumerate(zip(sizes[:-1], sizes[1:], strict=True), start=1):
        W = rng.standard_normal((m, n))
        if j > 1:
            W *= 0.45 / np.linalg.norm(W, 2)
        layers.append(Dense(W, 0.1 * rng.standard_normal(m), ReLU()))
    return Sequential(*layers)


def conv_chain(seed: int = 0) -> Sequential:
    rng = np.random.default_rng(seed)
    first = rng.standard_normal((8, 1, 3, 3))
    second = rng.standard_normal((60, 8, 3, 3))
    second *= 0.45 / Conv2dOperator(second, (8, 28, 28), padding="same").fourier_bound()
    return Sequential(
        Conv2d(first, None, ReLU(), in_shape=(1, 28, 28), padding="same"),
        Conv2d(second, None, ReLU(), in_shape=(8, 28, 28), padding="same"),
    )


def residual_chain(seed: int = 0) -> Sequential:
    rng = np.random.default_rng(seed)
    layers = []
    for _ in range(66):
        W, V = rng.standard_normal((500, 1000)), rng.standard_normal((1000, 500))
        W *= 0.3 / np.linalg.norm(W, 2)
        V *= 0.3 / np.linalg.norm(V, 2)
        layers.append(Residual(W, None, ReLU(), V=V))
    return Sequential(*layers)


def timed(run: Callable[[], object]) -> tuple[object, float, float]:
    """(value, wall seconds, CPU seconds of the process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = run()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def exact_at_scale(cases: list[str]) -> None:
    builders = {"dense": dense_chain, "conv": conv_chain, "residual": residual_chain}
    for name in cases:
        lifted = builders[name]().lift()
        n = lifted.n_u + lifted.n_z
        print(f"\n{name}: n_u + n_z = {n}, load average {os.getloadavg()[0]:.1f}")
        cert, wall, cpu = timed(lambda lifted=lifted: certify(lifted, 1.0, 1.0))
        threshold = cert.smallest_alpha
        print(f"  α = 0: certified={cert.certified}, α* = {threshold}, {wall:.1f} s wall, "
              f"{cpu:.1f} s CPU (with the norm bounds)")
        if threshold is None:
            continue
        for factor in (1.01, 0.99):
            cert, wall, cpu = timed(
                lambda lifted=lifted, a=factor * threshold: certify(lifted, 1.0, 1.0, alpha=a)
            )
            print(f"  α = {factor} α*: certified={cert.certified}, {wall:.1f} s wall, "
                  f"{cpu:.1f} s CPU, load average {os.getloadavg()[0]:.1f}")
        print(f"  {cert.finding}")


def paper_at_scale() -> None:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("paper", "exact"))
    parser.add_argument("--cases", nargs="+", default=["dense", "conv", "residual"],
                        choices=("dense", "conv", "residual"))
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}")
    if args.only != "exact":
        paper_at_scale()
    if args.only != "paper":
        exact_at_scale(args.cases)


if __name__ == "__main__":
    main()
