"""Time the deep model's exact certificate at scale (block LDLᵀ + Lanczos, n ≈ 10⁵).

Networks (Gaussian weights, hidden couplings scaled to ‖W_l‖ = 0.45 so that the hidden part of
H₀ is positive definite, J = α/2‖·‖² with α above the threshold):

* dense: 28 × 28 input (n_0 = 784), 99 hidden dense layers of width 1000, a last layer to 1000
  outputs: n_0 + … + n_{L−1} = 99,784 unknowns (each Schur complement 1000 × 1000);
* conv: 1 → 8 → 96 channels on 28 × 28, 3 × 3 kernels, 'same' padding, a last 3 × 3
  convolution to 1 channel: 784 + 6,272 + 75,264 = 82,320 unknowns (one 6,272 × 6,272 Schur
  complement; the 75,264-wide state is eliminated first, matrix-free).

For each: the time of ``certify_deep`` (verdict by block Cholesky, min_eig by Lanczos), of the
block factorisation alone, and the verdicts at α just above / below the threshold.

Run: ``python benchmarks/bench_certify_deep.py [--only dense|conv]``
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from bregmod.activations import ReLU
from bregmod.certificate import _deep_schur, certify_deep
from bregmod.model.deep import DeepBregman
from bregmod.operators import Conv2dOperator, MatrixOperator
from bregmod.regularizers import SquaredL2


def dense_chain(seed: int = 0, n_0: int = 784, width: int = 1000, hidden: int = 99):
    rng = np.random.default_rng(seed)
    sizes = [n_0] + [width] * hidden + [width]
    ops = []
    for l, (n, m) in enumerate(zip(sizes[:-1], sizes[1:], strict=True), start=1):
        W = rng.standard_normal((m, n))
        if l > 1:
            W *= 0.45 / np.linalg.norm(W, 2)
        ops.append(MatrixOperator(W))
    return DeepBregman(ops, [None] * len(ops), [ReLU()] * len(ops))


def conv_chain(seed: int = 0, side: int = 28, channels=(1, 8, 96, 1)):
    rng = np.random.default_rng(seed)
    ops = []
    for l, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:], strict=True), start=1):
        kernel = rng.standard_normal((c_out, c_in, 3, 3))
        op = Conv2dOperator(kernel, (c_in, side, side), padding="same")
        if l > 1:
            kernel = kernel * 0.45 / op.fourier_bound()
            op = Conv2dOperator(kernel, (c_in, side, side), padding="same")
        ops.append(op)
    return DeepBregman(ops, [None] * len(ops), [ReLU()] * len(ops))


def run(name: str, model) -> None:
    n = sum(model.sizes[: model.depth])
    print(f"{name}: depth {model.depth}, n_0 + … + n_(L-1) = {n}")
    start = time.perf_counter()
    failed, P = _deep_schur(model, 0.0)
    factor_time = time.perf_counter() - start
    threshold = float(np.linalg.eigvalsh(P)[-1])
    print(f"  block LDLᵀ alone: {factor_time:.1f} s; hidden part PD: {failed is None}; "
          f"α* = {threshold:.6g}")
    for factor in (1.01, 0.99):
        reg = factor * threshold * SquaredL2()
        start = time.perf_counter()
        cert = certify_deep(model, reg)
        elapsed = time.perf_counter() - start
        print(f"  α = {factor} α*: certified={cert.certified}, min_eig={cert.min_eig:.6g}, "
              f"tol={cert.tolerance:.3g}, certify_deep {elapsed:.1f} s")
    print(f"  load average after: {os.getloadavg()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("dense", "conv"))
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    if args.only in (None, "dense"):
        run("dense chain", dense_chain())
    if args.only in (None, "conv"):
        run("conv chain", conv_chain())


if __name__ == "__main__":
    main()
