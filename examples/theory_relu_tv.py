"""Error estimate for a ReLU layer with total-variation regularisation on a 32×32 image.

u_α ∈ argmin_u B_Ψ(f^δ, W u + b) + α TV(u) with σ = ReLU and u† the 32×32 Shepp–Logan phantom.
The source condition Wᵀv† ∈ ∂TV(u†) needs Wᵀ to reach a subgradient of TV; with more active
rows than pixels, W restricted to them is onto and the minimal-norm v† (on {f > 0.1}, so that
the Burbea–Rao part vanishes for small α) exists. W is a sparse random matrix (16 non-zeros per
row), which keeps the exact CVXPY solves at this size to a few seconds; a dense W with fewer rows
than pixels, as in the talk's 512 × 4096 perceptron, generally violates the source condition for
TV (range(Wᵀ) then misses ∂TV(u†)). Subgradient residuals for TV use zero_tol = 1e-6 (interior-
point iterates have no exactly flat regions), and the source element is accepted at a distance
tol = 1e-6 from ∂TV(u†) (the interior-point distance test is not accurate to 1e-7 here).

Run: python examples/theory_relu_tv.py [--out out/]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from bregmod.activations import ReLU
from bregmod.data import phantom
from bregmod.network import Dense
from bregmod.regularizers import TotalVariation
from bregmod.theory import rate_experiment, source_element


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    shape = (32, 32)
    n = 32 * 32
    m = 3 * n // 2
    W = sp.random(m, n, density=16 / n, random_state=rng, data_rvs=rng.standard_normal) / 4
    b = 0.5 * rng.standard_normal(m) + 0.5
    net = Dense(W.toarray(), b, ReLU(), in_shape=shape)
    u_true = phantom(32)
    f = net(u_true)
    J = TotalVariation(shape)

    start = time.perf_counter()
    v = source_element(net, J, u_true, support=f > 0.1, tol=1e-6, zero_tol=1e-6)
    print(
        f"{int((f > 0.1).sum())} of {m} outputs above 0.1, {n} pixels; ‖v†‖ = "
        f"{np.linalg.norm(v):.4g} ({time.perf_counter() - start:.1f} s)"
    )
    direction = rng.standard_normal(m)
    direction[f == 0] = np.abs(direction[f == 0])

    table = rate_experiment(
        net,
        J,
        u_true,
        v,
        direction,
        np.logspace(-3, -1, 5),
        zero_tol=1e-6,
        plot=out / "theory_relu_tv_rate.png",
    )
    print(table)
    print(table.checks[-1].summary())
    _save_images(out / "theory_relu_tv.png", u_true, table.checks[-1])
    print(f"({time.perf_counter() - start:.1f} s; figures in {out})")


def _save_images(path: Path, u_true: np.ndarray, check) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 2.6), layout="constrained")
    axes = fig.subplots(1, 3)
    # u† and u_α share one grey scale covering both (nothing clipped); the error has its own
    scale = (min(u_true.min(), check.u_alpha.min()), max(u_true.max(), check.u_alpha.max()))
    for ax, image, title, limits in zip(
        axes,
        (u_true, check.u_alpha, np.abs(check.u_alpha - u_true)),
        ("u†", f"u_α (δ = {check.delta:g})", "|u_α − u†|"),
        (scale, scale, (None, None)),
        strict=True,
    ):
        shown = ax.imshow(image, cmap="gray", vmin=limits[0], vmax=limits[1])
        ax.set_title(title)
        ax.axis("off")
        fig.colorbar(shown, ax=ax, fraction=0.046)
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out"), help="output directory")
    main(parser.parse_args().out)
