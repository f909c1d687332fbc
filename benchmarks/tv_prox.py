"""TotalVariation.prox against CVXPY (truth), scikit-image and PyProximal, by hand.

    PYTHONPATH=. python benchmarks/tv_prox.py            # the optional peers if importable

The prox of t·TV (isotropic, forward differences, Neumann boundary) of 8 images: 32 × 32 and
64 × 64, "blocks" (two rectangles + N(0, 0.1²)) and the Shepp–Logan phantom + N(0, 0.05²), at
t = 0.3 and 2.0 (the cases of issue 16, item 14). The truth u* is CVXPY + Clarabel at
tolerance 1e-12. Reported per method: wall time and the relative error ‖u − u*‖/‖u*‖; for
bregmod also the certified bound √(2G)/‖u*‖ (G the duality gap of the returned point).
Peers (optional, not dependencies): ``skimage.restoration.denoise_tv_chambolle`` (weight = t;
it stops on a relative energy change ``eps``) and ``pyproximal.TV`` (``sigma = t``, a fixed
number of iterations ``niter``).
"""

from __future__ import annotations

import time
import warnings

import cvxpy as cp
import numpy as np

from bregmod.data import phantom
from bregmod.errors import SolverWarning
from bregmod.regularizers import TotalVariation


def image(kind: str, size: int) -> np.ndarray:
    rng = np.random.default_rng(size)
    if kind == "phantom":
        return phantom(size) + 0.05 * rng.standard_normal((size, size))
    x = np.zeros((size, size))
    x[size // 4: 3 * size // 4, size // 4: size // 2] = 1
    x[size // 8: size // 3, size // 2: 7 * size // 8] = 0.5
    return x + 0.1 * rng.standard_normal((size, size))


def truth(tv: TotalVariation, v: np.ndarray, t: float) -> np.ndarray:
    u = cp.Variable(v.size)
    term = tv.cvx(u)
    cp.Problem(cp.Minimize(0.5 * cp.sum_squares(u - v.ravel()) + t * term.expr),
               term.constraints).solve(solver=cp.CLARABEL, tol_gap_abs=1e-12, tol_gap_rel=1e-12,
                                       tol_feas=1e-12, max_iter=500)
    return np.asarray(u.value).reshape(v.shape)


def timed(function):
    start = time.perf_counter()
    value = function()
    return value, time.perf_counter() - start


def main() -> None:
    try:
        from skimage.restoration import denoise_tv_chambolle
    except ImportError:
        denoise_tv_chambolle = None
    try:
        import pyproximal
    except ImportError:
        pyproximal = None
    print("| image | t | bregmod (default prox_tol) | certified bound | bregmod prox_tol=1e-8 "
          "| skimage eps=2e-4 (default) | skimage eps=1e-8 | pyproximal niter=100 | "
          "pyproximal niter=2000 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for size in (32, 64):
        for kind in ("blocks", "phantom"):
            for t in (0.3, 2.0):
                v = image(kind, size)
                tv = TotalVariation((size, size))
                ref = truth(tv, v, t)
                scale = np.linalg.norm(ref)

                def err(u, ref=ref, scale=scale):
                    return np.linalg.norm(u - ref) / scale

                row = [f"{kind} {size}²", f"{t:g}"]
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", SolverWarning)
                    (u, bound), seconds = timed(lambda tv=tv, v=v, t=t: tv.prox_certified(v, t))
                row += [f"{err(u):.1e} in {seconds:.2f} s" + (" (warned)" if caught else ""),
                        f"{bound / scale:.1e}"]
                tight = TotalVariation((size, size), prox_tol=1e-8, prox_max_iter=100_000)
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", SolverWarning)
                    u, seconds = timed(lambda j=tight, v=v, t=t: j.prox(v, t))
                row.append(f"{err(u):.1e} in {seconds:.2f} s" + (" (warned)" if caught else ""))
                for eps in (2e-4, 1e-8):
                    if denoise_tv_chambolle is None:
                        row.append("n/a")
                        continue
                    u, seconds = timed(lambda v=v, t=t, eps=eps: denoise_tv_chambolle(
                        v, weight=t, eps=eps, max_num_iter=100_000))
                    row.append(f"{err(u):.1e} in {seconds:.2f} s")
                for niter in (100, 2000):
                    if pyproximal is None:
                        row.append("n/a")
                        continue
                    op = pyproximal.TV(dims=(size, size), sigma=t, niter=niter)
                    u, seconds = timed(lambda op=op, v=v: op.prox(v.ravel(), 1.0).reshape(v.shape))
                    row.append(f"{err(u):.1e} in {seconds:.2f} s")
                print("| " + " | ".join(row) + " |", flush=True)


if __name__ == "__main__":
    main()
