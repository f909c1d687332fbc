"""Talk example 2: a depth-20 residual network fitted to u³ + u, certified, then inverted.

Network (scalar u, V_j = W_jᵀ, W_j of shape (k, 1)):

    u_j = u_{j−1} + W_jᵀ ReLU(W_j u_{j−1} + b_j),   j = 1, …, 20,   N(u₀) = u₂₀.

Why this can fit an increasing, odd function. A unit w·ReLU(w v + b) with kink t = −b/w is
w²(v − t)₊ when w > 0 (convex, slope steps up from 0 to w² at t) and −w²(t − v)₊ when w < 0
(concave, slope steps down from w² to 0 at t). Every layer is therefore v ↦ v + g_j(v) with
g_j' = Σ w_i² [unit i active] ≥ 0: increasing with slope ≥ 1, and the composition is increasing.
u³ + u has slope 3u² + 1: concave for u < 0 (use units with w < 0 and kinks t ≤ 0) and convex
for u > 0 (w > 0, t ≥ 0), and with all kinks on the side they act on, g_j(0) = 0 exactly.

Construction (a layer-wise non-negative least-squares fit, no backpropagation). Layer j should
move the states from T_{j−1} to T_j, where T_j(u) = u + (j/20)u³ interpolates between the
identity (T_0) and the target T = T_20. Given the actual states v_i = u_{j−1}(u₀_i) of the layers
built so far on a grid u₀_i of [−1, 1], fix k/2 kinks t ≥ 0 and k/2 kinks t ≤ 0 at quantiles of
the v_i, and fit g_j(v_i) ≈ T_j(u₀_i) − v_i by NNLS in the unit weights s = w² ≥ 0 (the
columns are (v − t)₊ and −(t − v)₊); then w = ±√s, b = −w t. Fitting to the actual states
lets each layer correct the errors of the ones before it.

Certification: for V = Wᵀ the paper's certificate Q = λKᵀK − ρ⁻¹I − M − Mᵀ ⪰ 0 depends only on
λ, ρ and the depth; at λ = 1, depth 20 needs ρ ≥ 187.4 (``smallest_rho``), and ρ = 200 is used.
Data f^δ = N(u†) + ε for u† across [−1, 1] are inverted in one batched
``Inversion(net, f^δ, reg=α·SquaredL2(), lam=1, rho=200).solve()``. Writes
``residual_cubic.png`` to ``--out``.

Run: ``python examples/residual_cubic.py [--out DIR] [--quick]``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from bregmod.activations import ReLU
from bregmod.certificate import certify, smallest_rho
from bregmod.network import Residual, Sequential
from bregmod.problem import Inversion, SolverWarning
from bregmod.regularizers import SquaredL2

DEPTH, LAM, RHO, ALPHA, INTERVAL = 20, 1.0, 200.0, 1e-4, (-1.0, 1.0)


def target(u: np.ndarray) -> np.ndarray:
    """T(u) = u³ + u."""
    return u**3 + u


def fit_network(units: int = 10, depth: int = DEPTH) -> Sequential:
    """The layer-wise NNLS construction of the module docstring (``units`` = k per layer)."""
    grid = np.linspace(*INTERVAL, 401)
    states = grid.copy()
    layers = []
    for j in range(1, depth + 1):
        goal = grid + (j / depth) * (target(grid) - grid)
        quantiles = np.linspace(0.0, 1.0, units // 2, endpoint=False)
        up = np.quantile(states[states >= 0], quantiles)
        down = -np.quantile(-states[states <= 0], quantiles)
        columns = [np.maximum(states - t, 0.0) for t in up]
        columns += [-np.maximum(t - states, 0.0) for t in down]
        s, _ = nnls(np.column_stack(columns), goal - states)
        kinks = np.concatenate([up, down])
        w = np.sqrt(s) * np.repeat([1.0, -1.0], units // 2)
        layer = Residual(w[:, None], -w * kinks, activation=ReLU())
        states = layer(states[:, None])[:, 0]
        layers.append(layer)
    return Sequential(*layers)


def main(argv: list[str] | None = None) -> int:
    """Fit, certify, invert and plot; return 0 (1 when not certified or not converged)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/residual-cubic"))
    parser.add_argument("--quick", action="store_true", help="fewer data points")
    parser.add_argument("--noise", type=float, default=0.02, help="noise standard deviation")
    args = parser.parse_args(argv)

    network = fit_network()
    lifted = network.lift()
    threshold = smallest_rho(lifted, LAM, method="paper")
    certificate = certify(lifted, LAM, RHO, method="paper")
    print(f"paper certificate at λ = {LAM:g}: smallest ρ = {threshold.value:.4g}; at ρ = {RHO:g}: "
          f"{'CERTIFIED' if certificate.certified else 'NOT certified'} "
          f"(smallest eigenvalue of Q {certificate.min_eig:.3g})")

    truth = np.linspace(*INTERVAL, 7 if args.quick else 41)
    rng = np.random.default_rng(0)
    data = network(truth[:, None]) + args.noise * rng.standard_normal((truth.size, 1))
    problem = Inversion(network, data, reg=ALPHA * SquaredL2(), lam=LAM, rho=RHO)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverWarning)  # the status is reported below
        result = problem.solve()
    recovered = np.asarray(result.u0)[:, 0]

    grid = np.linspace(*INTERVAL, 401)
    fitted = network(grid[:, None])[:, 0]
    fit_error = float(np.max(np.abs(fitted - target(grid))))
    error = float(np.sqrt(np.mean((recovered - truth) ** 2)))
    print(f"fit: max |N − (u³ + u)| on [−1, 1] = {fit_error:.3g}, min slope "
          f"{np.min(np.diff(fitted) / np.diff(grid)):.3g}")
    print(f"inversion of {truth.size} data: solver {result.solver}, status {result.status}, "
          f"global optimum claimed: {result.global_optimum_claimed}, {result.wall_time:.2f} s, "
          f"RMS error {error:.3g}")

    from matplotlib.figure import Figure

    fig = Figure(figsize=(8.5, 3.6))
    left, right = fig.subplots(1, 2)
    left.plot(grid, target(grid), label="u³ + u")
    left.plot(grid, fitted, "--", label="N(u), depth 20")
    left.plot(truth, data[:, 0], ".", color="0.4", label="data f^δ")
    left.set_xlabel("u")
    left.legend(fontsize=8)
    left.set_title(f"layer-wise NNLS fit, max error {fit_error:.2g}", fontsize=9)
    right.plot(INTERVAL, INTERVAL, color="0.6", lw=1, label="u = u†")
    right.plot(truth, recovered, "o", ms=4, label="R(f^δ)")
    right.set_xlabel("u†")
    right.set_ylabel("recovered u")
    right.set_title(f"certified inversion (λ = {LAM:g}, ρ = {RHO:g}), {result.solver}",
                    fontsize=9)
    right.legend(fontsize=8)
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "residual_cubic.png", dpi=110)
    print(f"wrote {args.out / 'residual_cubic.png'}")
    return 0 if certificate.certified and result.status == "optimal" else 1


if __name__ == "__main__":
    sys.exit(main())
