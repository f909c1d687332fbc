"""Error estimate for the ReLU perceptron with J = ½‖·‖² (the talk's example,
docs/math/error-estimate.md).

u_α ∈ argmin_u B_Ψ(f^δ, W u + b) + α ½‖u‖² with σ = ReLU. For ReLU the Burbea–Rao part of the
bound vanishes as soon as |v†_j| ≤ f^δ_j/α, which needs v†_j = 0 wherever f^δ_j = 0; we
therefore take the minimal-norm source element supported on {f > 0.1} (W has more rows than
columns, so any u† satisfies the source condition on that support). With α(δ) = δ√2/‖v†‖ the
theorem gives D_J ≤ 2√2‖v†‖δ; the script sweeps δ over two decades, prints the table and the
fitted log–log slope of D_J, and saves the plot.

Run: python examples/theory_relu_l2.py [--out out/]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bregmod.activations import ReLU
from bregmod.data import phantom
from bregmod.network import Dense
from bregmod.regularizers import SquaredL2
from bregmod.theory import rate_experiment, source_element


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    shape = (16, 16)
    n, m = 256, 512
    W = rng.standard_normal((m, n)) / np.sqrt(n)  # random entries, zero mean
    b = rng.standard_normal(m)
    net = Dense(W, b, ReLU(), in_shape=shape)
    u_true = phantom(16)
    f = net(u_true)
    J = SquaredL2()

    v = source_element(net, J, u_true, support=f > 0.1)
    print(f"{int((f > 0).sum())} of {m} outputs active; ‖v†‖ = {np.linalg.norm(v):.4g}")
    direction = rng.standard_normal(m)
    direction[f == 0] = np.abs(direction[f == 0])  # keep f^δ ≥ 0 where f = 0

    start = time.perf_counter()
    table = rate_experiment(
        net, J, u_true, v, direction, np.logspace(-4, -2, 5), plot=out / "theory_relu_l2.png"
    )
    print(table)
    constant = 2 * np.sqrt(2) * np.linalg.norm(v)
    print(
        "D_J ≤ 2√2‖v†‖δ at every δ:",
        all(row.d_j <= constant * row.delta for row in table.rows),
        f"({time.perf_counter() - start:.1f} s; plot in {out / 'theory_relu_l2.png'})",
    )
    print(table.checks[-1].summary())


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out"), help="output directory")
    main(parser.parse_args().out)
