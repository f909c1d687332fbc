"""Error estimate for a tanh layer with J = ½‖·‖²: a non-zero Burbea–Rao part
(docs/math/error-estimate.md).

σ = tanh = prox_Ψ with Ψ(u) = ½(1 + u)log(1 + u) + ½(1 − u)log(1 − u) − u²/2 on [−1, 1], which
is strictly convex inside (Ψ''(u) = u²/(1 − u²)), so the Burbea–Rao part
(1/α) Σ (Ψ(f^δ + αv†) + Ψ(f^δ − αv†) − 2Ψ(f^δ)) ≈ α Σ Ψ''(f^δ_j) v†_j² is positive; with
α(δ) = δ√2/‖v†‖ it is O(δ) like the classical part. As in the talk, W has fewer rows than
columns (64 outputs, a 12×12 input), and u† = Wᵀv₀ satisfies the source condition by design.
The sweep starts at δ = 1e-4: below, the solver's error (amplified by 1/α in the optimality
residual) becomes comparable to D_J itself, although the checks still verify down to δ = 1e-6.

Run: python examples/theory_tanh.py [--out out/]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from bregmod.activations import Tanh
from bregmod.network import Dense
from bregmod.regularizers import SquaredL2
from bregmod.theory import rate_experiment, source_element, source_solution


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    shape, m = (12, 12), 64
    W = rng.standard_normal((m, 144)) / 12
    net = Dense(W, 0.3 * rng.standard_normal(m), Tanh(), in_shape=shape)
    J = SquaredL2()
    v0 = 0.5 * rng.standard_normal(m)
    u_true, _ = source_solution(net, J, 2 * W.T @ v0)  # u† = Wᵀv₀
    v = source_element(net, J, u_true)
    f = net(u_true)
    print(
        f"‖v†‖ = {np.linalg.norm(v):.4g} (‖v† − v₀‖ = {np.linalg.norm(v - v0):.2g}); "
        f"max |f| = {np.abs(f).max():.3f}"
    )

    start = time.perf_counter()
    table = rate_experiment(
        net,
        J,
        u_true,
        v,
        rng.standard_normal(m),
        np.logspace(-4, -1, 7),
        plot=out / "theory_tanh.png",
    )
    print(table)
    print(f"{'δ':>11} {'classical':>11} {'Burbea–Rao':>11}  α Σ Ψ''(f) v†² (leading term)")
    curvature = f**2 / (1 - f**2)  # Ψ''(f) for tanh
    for check in table.checks:
        taylor = check.alpha * np.sum(curvature * v**2)
        print(f"{check.delta:11.4e} {check.classical:11.4e} {check.burbea_rao:11.4e}  {taylor:.4e}")
    print(f"({time.perf_counter() - start:.1f} s; plot in {out / 'theory_tanh.png'})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out"), help="output directory")
    main(parser.parse_args().out)
