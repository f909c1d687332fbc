"""Talk example 1: regularised inversion of a shallow ReLU network.

N(u) = Σ_j c_j ReLU(w_j u + b_j) with m = 25 units, w_j = 1, b_j = −(j−1)h, h = 3/50, so the
kinks sit at 0, 0.06, …, 1.44. The outer weights c are fitted by linear least squares on a grid
of 301 points of [0, 1.5] so that N approximates the talk's increasing target

    K(u) = u (2u/3)^(3u)    (K(0) = 0, K(1.5) = 1.5; increasing on [0, 1.5]).

Data f^δ = N(u†) + ε (Gaussian, standard deviation ``--noise``) for u† across [0, 1.5] are
inverted all at once (one batched :class:`~bregmod.problem.Inversion`) with the quadratic
fidelity, λ = 1 and J(u₀) = α/2 |u₀|², α = 1e−4, by the talk's implicit/explicit coordinate
descent (``solver="cd"``). The lifted model of a shallow sum is not certified convex, so the
solver runs as a local method. Writes ``shallow_relu.png`` (target and fit, the coefficients,
recovered u against the truth) to ``--out``.

Run: ``python examples/shallow_relu.py [--out DIR] [--quick]``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

from bregmod.activations import ReLU
from bregmod.network import ShallowSum
from bregmod.problem import Inversion, SolverWarning
from bregmod.regularizers import SquaredL2

M, H, ALPHA, INTERVAL = 25, 3 / 50, 1e-4, (0.0, 1.5)


def target(u: np.ndarray) -> np.ndarray:
    """The talk's increasing target K(u) = u (2u/3)^(3u) (with 0^0 = 1 at u = 0)."""
    return u * (2 * u / 3) ** (3 * u)


def fit_network() -> ShallowSum:
    """N(u) = Σ c_j ReLU(u − (j−1)h) with c the least-squares fit of K on [0, 1.5]."""
    w, b = np.ones(M), -np.arange(M) * H
    grid = np.linspace(*INTERVAL, 301)
    design = np.maximum(np.outer(grid, w) + b, 0.0)
    c = np.linalg.lstsq(design, target(grid), rcond=None)[0]
    return ShallowSum(w, b, c, activation=ReLU())


def main(argv: list[str] | None = None) -> int:
    """Fit, invert and plot; return 0 (1 when a solve did not converge)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/shallow-relu"))
    parser.add_argument("--quick", action="store_true", help="fewer data points")
    parser.add_argument("--noise", type=float, default=0.01, help="noise standard deviation")
    args = parser.parse_args(argv)

    network = fit_network()
    truth = np.linspace(*INTERVAL, 6 if args.quick else 61)
    rng = np.random.default_rng(0)
    data = network(truth) + args.noise * rng.standard_normal(truth.shape)
    problem = Inversion(network, data, reg=ALPHA * SquaredL2(), lam=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverWarning)  # the status is reported below
        result = problem.solve(solver="cd", tol=1e-4, max_iter=20000)
    recovered = np.asarray(result.u0)

    grid = np.linspace(*INTERVAL, 301)
    slopes = np.cumsum(network.c)  # N'(u) on the cells between the kinks
    fit_error = float(np.max(np.abs(network(grid) - target(grid))))
    error = float(np.sqrt(np.mean((recovered - truth) ** 2)))
    print(f"fit: max |N − K| on [0, 1.5] = {fit_error:.3g}, smallest slope of N = "
          f"{slopes.min():.3g} ({'increasing' if slopes.min() > 0 else 'not monotone'})")
    print(f"inversion of {truth.size} data: solver {result.solver}, status {result.status}, "
          f"{result.iterations} iterations, {result.wall_time:.2f} s, RMS error {error:.3g}")

    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 3.6))
    left, middle, right = fig.subplots(1, 3)
    left.plot(grid, target(grid), label="target $K(u) = u\\,(2u/3)^{3u}$")
    left.plot(grid, network(grid), "--", label="fitted N(u)")
    left.set_xlabel("u")
    left.legend(fontsize=8)
    left.set_title("least-squares fit, m = 25, h = 3/50", fontsize=9)
    middle.stem(np.arange(1, M + 1), network.c)
    middle.set_xlabel("j")
    middle.set_title("coefficients c_j", fontsize=9)
    right.plot(INTERVAL, INTERVAL, color="0.6", lw=1, label="u = u†")
    right.plot(truth, recovered, "o", ms=4, label="R(f^δ)")
    right.set_xlabel("u†")
    right.set_ylabel("recovered u")
    right.set_title(f"inversion, α = {ALPHA:g}, σ_noise = {args.noise:g}", fontsize=9)
    right.legend(fontsize=8)
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "shallow_relu.png", dpi=110)
    print(f"wrote {args.out / 'shallow_relu.png'}")
    return 0 if result.status in ("optimal", "stationary") else 1


if __name__ == "__main__":
    sys.exit(main())
