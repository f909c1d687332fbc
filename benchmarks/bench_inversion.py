"""Inversion benchmark: the talk's ReLU perceptron with TV, CVXPY against bregmod's solvers.

Problem (the talk's perceptron): W and b with N(0, 1) entries (m = n/8 rows, n = N²),
u† the Shepp–Logan phantom ``bregmod.data.phantom(N)``, f = max(0, W u† + b + noise) with noise
std 0.01·mean|W u† + b|, and

    min_u  B_Ψ(f, W u + b) + α TV(u),   Ψ = ι_{≥0} (ReLU),  α = 0.015·m,

isotropic TV with forward differences and Neumann boundary. Accuracy is the relative objective
gap (F − F_ref)/|F_ref| to the most accurate solution available: the lowest objective among
CVXPY + Clarabel (tol 1e-8, where run) and a long bregmod ADMM run (KKT tol 1e-10).

Measured in one process, on the same problems:

* CVXPY + Clarabel (``solver="cvxpy"``, tol 1e-8; at 128 × 128 only with
  ``--with-clarabel-128``, about 40 minutes and 7 GB) and CVXPY + SCS (eps 1e-6): wall time
  of ``problem.solve`` (model construction included), the accuracy reached, iterations.
* bregmod ``admm`` (and ``pdhg`` where ready and feasible): "reach" — the first iteration k whose
  objective is within 1e-4 / 1e-6 of F_ref, found from one long run's history, then the median
  time of runs with ``max_iter=k`` (the iterates are deterministic, so such a run stops exactly
  there; setup included); "stop" — the solver's own KKT stopping rule at tol 1e-4 / 1e-6, with
  the accuracy it returned. Per-iteration cost against the floor: one product with A and one
  with Aᵀ in the same dtype (what an iteration cannot avoid).
* Peak memory: the process's peak resident set (VmHWM, reset before each run through
  /proc/self/clear_refs) minus the resident set before the run — the solver's own footprint,
  the problem data (W, already in memory) excluded.
* bregmod alone: 256 × 256 (m = n/16 by default, so that W fits in memory twice; float32 only,
  the reference being the best objective of a float32 run) and batches of problems at 64 × 64
  (the phantom shifted by k pixels for the k-th, the same W) against solving a few of them one
  by one.

Run ``python benchmarks/bench_inversion.py --sizes 32 64 128 --write-readme`` (≈ 15 minutes with
SCS at 128 × 128). ``--write-readme`` replaces the "Inversion benchmark" section of
benchmarks/README.md with the tables, the machine and the date.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from bregmod.activations import ReLU
from bregmod.data import phantom
from bregmod.network import Dense
from bregmod.problem import Inversion, SolverWarning
from bregmod.regularizers import TotalVariation

README = Path(__file__).with_name("README.md")
SECTION = "## Inversion benchmark"
TOLERANCES = (1e-4, 1e-6)


# --------------------------------------------------------------------------- problems
def make_problem(size: int, ratio: int, seed: int = 0, batch: int = 0) -> Inversion:
    """The benchmark problem on size × size images with m = size²/ratio measurements.

    ``batch > 0``: that many data vectors, the k-th from the phantom shifted by k pixels.
    """
    rng = np.random.default_rng(seed)
    n = size * size
    m = n // ratio
    W = rng.standard_normal((m, n))
    b = rng.standard_normal(m)
    images = [np.roll(phantom(size), k, axis=(0, 1)) for k in range(max(batch, 1))]
    data = []
    for image in images:
        x = W @ image.ravel() + b
        noise = 0.01 * np.mean(np.abs(x)) * rng.standard_normal(m)
        data.append(np.maximum(0.0, x + noise))
    network = Dense(W, b, ReLU(), in_shape=(size, size))
    del W
    reg = 0.015 * m * TotalVariation((size, size))
    return Inversion(network, np.stack(data) if batch else data[0], reg, fidelity="bregman")


# --------------------------------------------------------------------------- measuring
def _status_kb(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def measure(run, repeat: int = 1) -> tuple[float, object, float]:
    """(median wall time, last result, peak extra memory in MB) of ``run()``."""
    times, peaks, result = [], [], None
    for _ in range(repeat):
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")  # reset the peak resident set (VmHWM) to the current one
        before = _status_kb("VmRSS")
        start = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - start)
        peaks.append((_status_kb("VmHWM") - before) / 1024)
    return statistics.median(times), result, max(peaks)


def first_reach(objectives, reference: float, tol: float) -> int | None:
    """First iteration (1-based) whose relative objective gap is ≤ tol, or None."""
    gaps = (np.asarray(objectives) - reference) / abs(reference)
    hits = np.flatnonzero(gaps <= tol)
    return int(hits[0]) + 1 if hits.size else None


def product_floor(problem: Inversion, dtype, repeat: int) -> float:
    """Median time of one product with A and one with Aᵀ (the cost an iteration cannot avoid)."""
    A = problem.A.matrix.astype(dtype)
    x = np.ones(A.shape[1], dtype=dtype)
    y = np.ones(A.shape[0], dtype=dtype)
    samples = []
    for _ in range(max(repeat, 5)):
        start = time.perf_counter()
        A @ x
        y @ A
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def gap(result, reference: float) -> float:
    return float((np.sum(result.objective) - reference) / abs(reference))


# --------------------------------------------------------------------------- one size
def cvxpy_rows(problem, size, args) -> list[dict]:
    rows = []
    runs = [("CVXPY + SCS (eps 1e-6)", "SCS", 1e-6)]
    if size < 128 or args.with_clarabel_128:
        runs.insert(0, ("CVXPY + Clarabel", "CLARABEL", 1e-8))
    if size >= 128 and args.skip_scs_128:
        runs = [r for r in runs if r[1] != "SCS"]
    for name, solver, tol in runs:
        repeat = args.repeat if size < 128 else 1
        seconds, result, peak = measure(
            lambda s=solver, t=tol: problem.solve(solver="cvxpy", cvxpy_solver=s, tol=t), repeat
        )
        rows.append(dict(solver=name, seconds=seconds, result=result, peak=peak, repeat=repeat))
    return rows


def bregmod_row(problem, name, reference, history, dtype, args, extra) -> dict:
    """Reach and stop measurements of one first-order solver."""
    options = dict(solver=name, dtype=dtype, **extra)
    row = dict(solver=f"bregmod {name} ({np.dtype(dtype).name})", reach={}, stop={})
    tolerances = TOLERANCES if np.dtype(dtype) == np.float64 else TOLERANCES[:1]
    setup_time, _, _ = measure(lambda: problem.solve(max_iter=1, **options), args.repeat)
    row["setup"] = setup_time
    for tol in tolerances:
        k = first_reach(history, reference, tol)
        if k is None:
            row["reach"][tol] = None
            continue
        seconds, result, peak = measure(
            lambda k=k: problem.solve(max_iter=k, **options), args.repeat
        )
        row["reach"][tol] = dict(
            seconds=seconds, iterations=k, peak=peak, gap=gap(result, reference)
        )
        row["per_iteration"] = (seconds - setup_time) / max(k - 1, 1)
    for tol in tolerances:
        seconds, result, peak = measure(
            lambda tol=tol: problem.solve(tol=tol, max_iter=args.max_iter, **options), args.repeat
        )
        row["stop"][tol] = dict(
            seconds=seconds,
            iterations=result.iterations,
            peak=peak,
            gap=gap(result, reference),
            status=result.status,
        )
    row["floor"] = product_floor(problem, dtype, args.repeat)
    return row


def run_size(size: int, args) -> dict:
    big = size >= args.big
    ratio = args.ratio_big if big else args.ratio
    problem = make_problem(size, ratio)
    m, n = problem.A.shape
    print(f"\n### {size} × {size}, m = {m}, n = {n}", flush=True)
    cvx_rows = [] if big else cvxpy_rows(problem, size, args)
    # The long run: its history gives the "reach" iterations, its end a reference candidate
    # (float32 only for the big sizes, where a float64 run would take too long).
    dtypes = (np.float32,) if big else (np.float64, np.float32)
    long_tol = 1e-6 if big else 1e-10
    long_iter = args.long_iter_big if big else args.long_iter
    _, long_run, _ = measure(
        lambda: problem.solve(solver="admm", tol=long_tol, max_iter=long_iter, dtype=dtypes[0])
    )
    candidates = {
        f"bregmod admm ({np.dtype(dtypes[0]).name}, KKT tol {long_tol:g}, "
        f"{long_run.iterations} iterations)": float(np.min(long_run.history["objective"]))
    }
    candidates.update(
        {r["solver"]: r["result"].objective for r in cvx_rows if "Clarabel" in r["solver"]}
    )
    ref_name = min(candidates, key=candidates.get)
    reference = candidates[ref_name]
    print(f"reference F* = {reference:.10g} ({ref_name}); candidates {candidates}", flush=True)
    rows = []
    for dtype in dtypes:
        history = long_run.history["objective"]
        if dtype != dtypes[0]:
            _, run32, _ = measure(
                lambda d=dtype: problem.solve(solver="admm", tol=1e-6, max_iter=long_iter, dtype=d)
            )
            history = run32.history["objective"]
        rows.append(bregmod_row(problem, "admm", reference, history, dtype, args, {}))
    if "pdhg" in args.peers and size <= args.pdhg_max_size:
        _, pdhg_long, _ = measure(
            lambda: problem.solve(solver="pdhg", tol=1e-9, max_iter=args.pdhg_iter)
        )
        rows.append(
            bregmod_row(
                problem, "pdhg", reference, pdhg_long.history["objective"], np.float64, args, {}
            )
        )
    for row in cvx_rows:
        row["gap"] = gap(row["result"], reference)
    return dict(
        size=size, m=m, n=n, reference=reference, ref_name=ref_name, cvx=cvx_rows, bregmod=rows
    )


def run_batch(batch: int, args) -> dict:
    """A batch of problems at 64 × 64 against solving ``args.singles`` of them one by one."""
    problem = make_problem(64, args.ratio, batch=batch)
    print(f"\n### batch of {batch} at 64 × 64", flush=True)
    out = dict(batch=batch, rows=[])
    for dtype, tol in ((np.float64, 1e-6), (np.float64, 1e-4), (np.float32, 1e-4)):
        seconds, result, peak = measure(
            lambda t=tol, d=dtype: problem.solve(
                solver="admm", tol=t, dtype=d, max_iter=args.max_iter
            ),
            1,
        )
        single_times, gaps = [], []
        for k in range(args.singles):
            single = Inversion(problem.network, problem.data[k], problem.reg, fidelity="bregman")
            t, alone, _ = measure(
                lambda s=single, t=tol, d=dtype: s.solve(
                    solver="admm", tol=t, dtype=d, max_iter=args.max_iter
                ),
                1,
            )
            single_times.append(t)
            gaps.append(abs(result.objective[k] - alone.objective) / abs(alone.objective))
        out["rows"].append(
            dict(
                dtype=np.dtype(dtype).name,
                tol=tol,
                seconds=seconds,
                per_problem=seconds / batch,
                single=statistics.mean(single_times),
                iterations=result.iterations,
                status=result.status,
                peak=peak,
                agreement=max(gaps),
            )
        )
        print(out["rows"][-1], flush=True)
    return out


# --------------------------------------------------------------------------- reporting
def machine() -> str:
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(
            line.split(":", 1)[1].strip()
            for line in lscpu.splitlines()
            if line.startswith("Model name")
        )
    except (OSError, subprocess.CalledProcessError, StopIteration):
        model = platform.processor() or "unknown CPU"
    config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    blas = f"{config.get('name')} {config.get('version')}"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    return (
        f"{model}, {os.cpu_count()} cores; numpy {np.__version__} with {blas} "
        f"(OPENBLAS_NUM_THREADS={threads}); Python {platform.python_version()}; "
        f"load average at the end {load}"
    )


def _t(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds * 1e3:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _acc(value: float) -> str:
    return f"{max(value, 0.0):.1e}"


def tables(results: list[dict], batches: list[dict]) -> str:
    lines = []
    for res in results:
        lines.append(
            f"\n**{res['size']} × {res['size']}, m = {res['m']}** — reference F* = "
            f"{res['reference']:.10g} ({res['ref_name']})\n"
        )
        lines.append(
            "| solver | time to 1e-4 | time to 1e-6 | iterations (1e-4 / 1e-6) | own stop at tol "
            "1e-4 / 1e-6: time, iterations, accuracy reached | peak memory | Clarabel time / "
            "time (1e-6) |"
        )
        lines.append("|---|---|---|---|---|---|---|")
        clarabel = next((r["seconds"] for r in res["cvx"] if "Clarabel" in r["solver"]), None)
        for r in res["cvx"]:
            reached = {tol: r["seconds"] if r["gap"] <= tol else None for tol in TOLERANCES}
            ratio = f"{clarabel / r['seconds']:.2g}×" if clarabel and reached[1e-6] else "—"
            lines.append(
                f"| {r['solver']} | {_t(reached[1e-4])} | {_t(reached[1e-6])} | "
                f"{r['result'].iterations} | one run: {_t(r['seconds'])}, accuracy "
                f"{_acc(r['gap'])}, status {r['result'].status} (median of {r['repeat']}) | "
                f"{r['peak']:.0f} MB | {ratio} |"
            )
        for r in res["bregmod"]:
            reach = r["reach"]
            times = {tol: reach.get(tol) and reach[tol]["seconds"] for tol in TOLERANCES}
            its = " / ".join(
                str(reach[t]["iterations"]) if reach.get(t) else "—" for t in TOLERANCES
            )
            stops = "; ".join(
                f"{_t(s['seconds'])}, {s['iterations']} it, {_acc(s['gap'])}"
                + ("" if s["status"] == "optimal" else f" ({s['status']})")
                for s in r["stop"].values()
            )
            peak = max(s["peak"] for s in r["stop"].values())
            ratio = f"{clarabel / times[1e-6]:.2g}×" if clarabel and times.get(1e-6) else "—"
            lines.append(
                f"| {r['solver']} | {_t(times[1e-4])} | {_t(times.get(1e-6))} | {its} | "
                f"{stops} | {peak:.0f} MB | {ratio} |"
            )
        lines.append("")
        for r in res["bregmod"]:
            if "per_iteration" in r:
                lines.append(
                    f"- {r['solver']}: setup {_t(r['setup'])}, {r['per_iteration'] * 1e3:.2f} ms "
                    f"per iteration = {r['per_iteration'] / r['floor']:.2f}× the floor of one "
                    f"product with A and one with Aᵀ ({r['floor'] * 1e3:.2f} ms)"
                )
    for res in batches:
        lines.append(f"\n**Batch of {res['batch']} problems at 64 × 64** (one solve, shared A)\n")
        lines.append(
            "| dtype, tol | batch time | per problem | one by one (mean) | one by one / batched "
            "| iterations | peak memory | max relative objective difference to one by one |"
        )
        lines.append("|---|---|---|---|---|---|---|---|")
        for r in res["rows"]:
            lines.append(
                f"| {r['dtype']}, {r['tol']:g} | {_t(r['seconds'])} | {_t(r['per_problem'])} | "
                f"{_t(r['single'])} | {r['single'] / r['per_problem']:.1f}× | {r['iterations']} "
                f"({r['status']}) | {r['peak']:.0f} MB | {r['agreement']:.1e} |"
            )
    return "\n".join(lines)


def write_readme(body: str) -> None:
    """Replace the "Inversion benchmark" section of benchmarks/README.md (or append it)."""
    text = README.read_text() if README.exists() else "# Benchmarks\n"
    start = text.find(SECTION)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + body
    else:
        end = text.find("\n## ", start + len(SECTION))
        text = text[:start] + body + ("" if end < 0 else text[end:])
    README.write_text(text)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--batches", type=int, nargs="*", default=[64, 256])
    parser.add_argument("--singles", type=int, default=4, help="batch problems solved alone")
    parser.add_argument("--with-clarabel-128", action="store_true")
    parser.add_argument("--skip-scs-128", action="store_true")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--ratio", type=int, default=8, help="n/m below the big sizes")
    parser.add_argument("--big", type=int, default=256, help="smallest 'big' size (bregmod only)")
    parser.add_argument("--ratio-big", type=int, default=16, help="n/m at the big sizes")
    parser.add_argument("--max-iter", type=int, default=5000)
    parser.add_argument("--long-iter", type=int, default=1500)
    parser.add_argument("--long-iter-big", type=int, default=400)
    parser.add_argument("--peers", nargs="*", default=["pdhg"], choices=["pdhg"])
    parser.add_argument("--pdhg-max-size", type=int, default=64)
    parser.add_argument("--pdhg-iter", type=int, default=20_000)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", SolverWarning)
    started = time.perf_counter()
    results = [run_size(size, args) for size in args.sizes]
    batches = [run_batch(batch, args) for batch in args.batches]
    body = (
        f"{SECTION}\n\n`python benchmarks/bench_inversion.py "
        f"{' '.join(sys.argv[1:] if argv is None else argv)}` "
        f"({(time.perf_counter() - started) / 60:.0f} minutes). Measured "
        f"{datetime.date.today().isoformat()} on {machine()}.\n"
        "The problem, the reference and what is timed are described in the script's docstring; "
        "times are medians of the repeats (CVXPY at 128 × 128 and the batches: one run).\n"
        + tables(results, batches)
        + "\n"
    )
    print("\n" + body)
    if args.write_readme:
        write_readme(body)


if __name__ == "__main__":
    main()
