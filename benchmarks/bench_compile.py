"""Compile time of ``lift()``: a deep, wide residual network and a convolutional network.

Run ``python benchmarks/bench_compile.py`` (about 5 s, 0.4 GB of weights). Prints, per network,
the time to declare it, the median time of ``lift()`` and the peak memory that ``lift()``
allocates (tracemalloc), next to the size a dense matrix of the whole problem would have.

- Residual: depth 20, states of width 4096, W_j of shape (512, 4096) in float64 (V_j = W_jᵀ).
  4096 × 4096 weights would be 20 × 128 MB = 2.7 GB; the compile cost does not depend on m,
  since ``lift()`` only places the layers' operators in block grids.
- Convolutional: 64 × 64 images, 1 → 16 → 16 → 16 → 1 channels, 3 × 3 kernels, one stride-2
  layer, ReLU; ``lift()`` also runs the adjoint dot-test on the matrix-free operators.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from bregmod.activations import ReLU
from bregmod.lifted import lift
from bregmod.network import Conv2d, Residual, Sequential


def residual_network(depth: int, width: int, rows: int, rng: np.random.Generator) -> Sequential:
    """u_j = u_{j−1} + W_jᵀ ReLU(W_j u_{j−1} + b_j) with W_j of shape (rows, width)."""
    scale = 1.0 / np.sqrt(width)
    return Sequential(
        *(
            Residual(scale * rng.standard_normal((rows, width)), rng.standard_normal(rows), ReLU())
            for _ in range(depth)
        )
    )


def conv_network(size: int, channels: int, rng: np.random.Generator) -> Sequential:
    """Four 3 × 3 convolutions on size × size images; the third has stride 2."""

    def kernel(c_out, c_in):
        return rng.standard_normal((c_out, c_in, 3, 3)) / np.sqrt(9 * c_in)

    c1 = Conv2d(kernel(channels, 1), None, ReLU(), in_shape=(1, size, size), padding="same")
    c2 = Conv2d(kernel(channels, channels), None, ReLU(), in_shape=c1.out_shape, padding="same")
    c3 = Conv2d(
        kernel(channels, channels), None, ReLU(), in_shape=c2.out_shape, stride=2, padding=1
    )
    c4 = Conv2d(kernel(1, channels), None, ReLU(), in_shape=c3.out_shape, padding="same")
    return Sequential(c1, c2, c3, c4)


def measure(name: str, build, repeats: int, check_adjoint: bool = True) -> None:
    start = time.perf_counter()
    network = build()
    declare = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        lifted = lift(network, check_adjoint=check_adjoint)
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    lift(network, check_adjoint=check_adjoint)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    dense_gb = 8 * (lifted.n_u * (lifted.n_z + lifted.n_c)) / 1e9
    print(
        f"{name}: declare {declare:.3f} s, lift() median {1e3 * np.median(times):.1f} ms "
        f"(min {1e3 * min(times):.1f} ms, {repeats} runs, check_adjoint={check_adjoint}), "
        f"peak allocation in lift() {peak / 1e6:.2f} MB; n_u = {lifted.n_u}, n_z = {lifted.n_z}, "
        f"n_c = {lifted.n_c} (dense W and M would take {dense_gb:.1f} GB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--width", type=int, default=4096)
    parser.add_argument("--rows", type=int, default=512, help="rows m of each W_j")
    parser.add_argument("--image", type=int, default=64)
    parser.add_argument("--channels", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    measure(
        f"residual, depth {args.depth}, width {args.width}, W_j {args.rows}×{args.width}",
        lambda: residual_network(args.depth, args.width, args.rows, rng),
        args.repeats,
    )
    for check in (True, False):
        measure(
            f"conv, {args.image}×{args.image}, {args.channels} channels",
            lambda: conv_network(args.image, args.channels, rng),
            args.repeats,
            check_adjoint=check,
        )


if __name__ == "__main__":
    main()
