"""Inversion benchmark: the talk's ReLU perceptron with TV, CVXPY + Clarabel against bregmod.

Problem (the talk's perceptron): W and b with N(0, 1) entries (m = n/8 rows, n = N²),
u† the Shepp–Logan phantom ``bregmod.data.phantom(N)``, f = max(0, W u† + b + noise) with noise
std 0.01·mean|W u† + b|, and

    min_u  B_Ψ(f, W u + b) + α TV(u),   Ψ = ι_{≥0} (ReLU),  α = 0.015·m,

isotropic TV with forward differences and Neumann boundary.

What is timed: every row is one whole call ``problem.solve(solver=…, tol=…)`` as a user makes
it — setup, factorisations, iterations, the Result — median of ``--repeat`` runs, in two
thread settings measured in the same process:

* "default": the BLAS thread count the environment gives (run the script *without*
  ``OPENBLAS_NUM_THREADS``; bregmod's solvers then choose their own counts,
  :mod:`bregmod.solvers._threads`, and CVXPY/Clarabel run as they do by default);
* "pinned": the same call inside ``threadpoolctl.threadpool_limits(1)``.

Accuracy: the relative objective error (F − F*)/|F*| actually reached, against an independent
high-accuracy reference F*: CVXPY + Clarabel at tol 1e-10 (an interior-point solve of the DCP
model). Where Clarabel is not run (128 × 128 unless ``--clarabel-128``), F* is the lower end of
the certified interval of a long bregmod ``admm`` run, F − G (G its duality gap), so that the
accuracy shown is never flattering. "≤ tol" says whether the call delivered what it was asked.
The solver's own certificate is shown too (``stats["guarantee"]`` and ``stats["bound"]``).

The peers: CVXPY + Clarabel (interior point) and CVXPY + SCS (first order) as a user calls them
through bregmod, ``problem.solve(solver="cvxpy", cvxpy_solver=…, tol=t)`` (Clarabel's gap and
feasibility tolerances, SCS's eps_abs and eps_rel set to t), at every t of ``PEERS``, each with
its accuracy reached. A bregmod row asked for tol is compared with the fastest Clarabel call
(same thread setting) whose accuracy reached is ≤ tol — what a user who wants that accuracy from
Clarabel has to run (Clarabel at t = 1e-6 may return 3e-6), never Clarabel at 1e-10 when a looser
t already delivers — and with the fastest such call of either solver.

Also measured: one product with W and one with Wᵀ (the work an iteration cannot avoid) with the
default thread count and with one thread, and a batch of ``--batch`` problems at 64 × 64 (the
phantom shifted by k pixels for the k-th, the same W) against solving ``--singles`` of them one
by one.

Run ``python benchmarks/bench_inversion.py --sizes 32 64 --write-readme`` (on the 2-core
machine, 2026-12-03, ``--sizes 32 64 128 --batch 64 --repeat 3 --pdhg-max-size 32
--pdhg-1e6-max-size 0`` took 9 minutes; pdhg at 64 × 64 and to 1e-6 add more).
``--write-readme`` replaces the "Inversion benchmark" section of benchmarks/README.md with the
tables, the machine, the load and the thread settings.
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
from contextlib import nullcontext
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

from bregmod.activations import ReLU
from bregmod.data import phantom
from bregmod.network import Dense
from bregmod.problem import Inversion, SolverWarning
from bregmod.regularizers import TotalVariation

README = Path(__file__).with_name("README.md")
SECTION = "## Inversion benchmark"
THREADS = ("default", "pinned")
#: The CVXPY solvers timed and their tolerances; Clarabel's last (pinned) is the reference F*.
PEERS = {"CLARABEL": (1e-4, 1e-6, 1e-8, 1e-10), "SCS": (1e-4, 1e-6)}
REFERENCE = ("CLARABEL", PEERS["CLARABEL"][-1])


# --------------------------------------------------------------------------- problems
def make_problem(size: int, ratio: int = 8, seed: int = 0, batch: int = 0) -> Inversion:
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
def blas_threads() -> int:
    """The BLAS thread count in force (the largest over the loaded BLAS libraries)."""
    return max((lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"),
               default=1)


def threads_context(setting: str):
    return threadpool_limits(limits=1, user_api="blas") if setting == "pinned" else nullcontext()


def timed(run, repeat: int, setting: str) -> tuple[float, object]:
    """(median wall time, last result) of ``run()`` in a thread setting."""
    times, result = [], None
    for _ in range(repeat):
        with threads_context(setting):
            start = time.perf_counter()
            result = run()
            times.append(time.perf_counter() - start)
    return statistics.median(times), result


def product_pair(problem: Inversion, setting: str, repeat: int = 20) -> float:
    """Median time of one product with W and one with Wᵀ (float64) in a thread setting."""
    A = problem.A.matrix
    x, y = np.ones(A.shape[1]), np.ones(A.shape[0])
    samples = []
    with threads_context(setting):
        for _ in range(repeat):
            start = time.perf_counter()
            A @ x
            y @ A
            samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def accuracy(objective, reference: float) -> float:
    return float((np.sum(objective) - reference) / abs(reference))


def fastest(peers: list[dict], tol: float, solver: str | None = None) -> dict | None:
    """The fastest peer call (of ``solver``, or of any) whose accuracy reached is ≤ tol."""
    reached = [
        c for c in peers if abs(c["accuracy"]) <= tol and solver in (None, c["solver"])
    ]
    return min(reached, key=lambda c: c["seconds"]) if reached else None


def ratio(peer: dict | None, seconds: float) -> str:
    """"N× (solver tol t: time)" of a bregmod row against a peer call."""
    if peer is None:
        return "—"
    name = "Clarabel" if peer["solver"] == "CLARABEL" else peer["solver"]
    return f"{peer['seconds'] / seconds:.2g}× ({name} {peer['tol']:g}: {_t(peer['seconds'])})"


# --------------------------------------------------------------------------- one size
def run_size(size: int, args) -> dict:
    problem = make_problem(size)
    m, n = problem.A.shape
    print(f"\n### {size} × {size}, m = {m}, n = {n}", flush=True)
    out = dict(size=size, m=m, n=n, rows=[], peers={s: [] for s in THREADS})
    out["products"] = {s: product_pair(problem, s) for s in THREADS}
    if size < 128 or args.clarabel_128:
        for name, tols in PEERS.items():
            for tol in tols:
                for setting in THREADS:
                    seconds, result = timed(
                        lambda n=name, t=tol: problem.solve(
                            solver="cvxpy", cvxpy_solver=n, tol=t
                        ),
                        1 if size >= 64 else args.repeat,
                        setting,
                    )
                    out["peers"][setting].append(
                        dict(solver=name, tol=tol, seconds=seconds, result=result)
                    )
                    print(f"{name} {setting} tol {tol:g}: {seconds:.2f} s, {result.status}",
                          flush=True)
        reference = next(
            float(np.sum(c["result"].objective))
            for c in out["peers"]["pinned"]
            if (c["solver"], c["tol"]) == REFERENCE
        )
        out["ref_name"] = f"CVXPY + Clarabel, tol {REFERENCE[1]:g}"
        for setting in THREADS:
            for c in out["peers"][setting]:
                c["accuracy"] = accuracy(c["result"].objective, reference)
    else:
        long = problem.solve(solver="admm", tol=args.reference_tol, max_iter=20_000)
        gap = long.stats["bound"] * abs(long.objective)
        reference = float(long.objective - gap)
        out["ref_name"] = (
            f"lower end F − G of a bregmod admm run certified to a relative gap of "
            f"{long.stats['bound']:.1e}"
        )
    out["reference"] = reference
    configs = [("admm", np.float64, 1e-4), ("admm", np.float64, 1e-6), ("admm", np.float32, 1e-4)]
    if size <= args.pdhg_max_size:
        configs += [("pdhg", np.float64, 1e-4)]
        if size <= args.pdhg_1e6_max_size:
            configs += [("pdhg", np.float64, 1e-6)]
    for solver, dtype, tol in configs:
        for setting in THREADS:
            repeat = args.repeat if size < 128 else 1
            seconds, result = timed(
                lambda s=solver, d=dtype, t=tol: problem.solve(
                    solver=s, tol=t, dtype=d, max_iter=args.max_iter
                ),
                repeat,
                setting,
            )
            gram = result.stats.get("gram_dtype")
            label = np.dtype(dtype).name
            if gram not in (None, label):
                label += f", {gram} Gram"
            if result.stats.get("incremental_products"):
                label += ", float32 increments"
            row = dict(
                solver=f"bregmod {solver} ({label})", tol=tol, threads=setting,
                seconds=seconds, iterations=result.iterations, status=result.status,
                guarantee=result.stats.get("guarantee"), bound=result.stats.get("bound"),
                accuracy=accuracy(result.objective, reference),
                solver_threads=result.stats.get("blas_threads"),
            )
            out["rows"].append(row)
            print(row, flush=True)
    return out


def run_batch(batch: int, args) -> dict:
    """A batch of problems at 64 × 64 against solving ``args.singles`` of them one by one."""
    problem = make_problem(64, batch=batch)
    print(f"\n### batch of {batch} at 64 × 64", flush=True)
    out = dict(batch=batch, rows=[])
    for tol in (1e-4, 1e-6):
        seconds, result = timed(
            lambda t=tol: problem.solve(solver="admm", tol=t, max_iter=args.max_iter), 1, "default"
        )
        single_times, differences = [], []
        for k in range(args.singles):
            single = Inversion(problem.network, problem.data[k], problem.reg, fidelity="bregman")
            t, alone = timed(
                lambda s=single, t=tol: s.solve(solver="admm", tol=t, max_iter=args.max_iter),
                1,
                "default",
            )
            single_times.append(t)
            differences.append(abs(result.objective[k] - alone.objective) / abs(alone.objective))
        out["rows"].append(dict(
            tol=tol, seconds=seconds, per_problem=seconds / batch,
            single=statistics.mean(single_times), iterations=result.iterations,
            status=result.status, bound=result.stats.get("bound"), agreement=max(differences),
            row_iterations=result.stats.get("row_iterations"),
        ))
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
    return (
        f"{model}, {os.cpu_count()} cores; numpy {np.__version__} with {blas}; "
        f"Python {platform.python_version()}"
    )


def _t(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 1e-2:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e3:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _e(value) -> str:
    return "—" if value is None else f"{value:.1e}"


def tables(results: list[dict], batches: list[dict]) -> str:
    lines = []
    for res in results:
        lines.append(
            f"\n**{res['size']} × {res['size']}, m = {res['m']}** — F* = {res['reference']:.10g} "
            f"({res['ref_name']}). One product with W and one with Wᵀ: "
            + ", ".join(f"{_t(res['products'][s])} ({s})" for s in THREADS)
            + ".\n"
        )
        lines.append(
            "| solver | tol | threads | whole call | iterations | status | guarantee: bound "
            "| accuracy reached | ≤ tol | fastest Clarabel call reaching tol / time "
            "| fastest CVXPY call reaching tol / time |"
        )
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for setting in THREADS:
            for c in res["peers"][setting]:
                name = "Clarabel" if c["solver"] == "CLARABEL" else c["solver"]
                lines.append(
                    f"| CVXPY + {name} | {c['tol']:g} | {setting} | {_t(c['seconds'])} | "
                    f"{c['result'].iterations} | {c['result'].status} | — | "
                    f"{_e(c['accuracy'])} | "
                    f"{'yes' if abs(c['accuracy']) <= c['tol'] else '**no**'} | | |"
                )
        for r in res["rows"]:
            peers = res["peers"][r["threads"]]
            clarabel = ratio(fastest(peers, r["tol"], "CLARABEL"), r["seconds"])
            any_peer = ratio(fastest(peers, r["tol"]), r["seconds"])
            threads = r["threads"]
            chosen = r["solver_threads"]
            if isinstance(chosen, dict):  # admm: setup and iteration threads, timings
                timed = " timed" if chosen.get("timings") else ""
                chosen = f"{chosen['setup']} setup, {chosen['iterations']}{timed} iterations"
            if chosen is not None and threads == "default":
                threads += f" (solver chose {chosen})"
            lines.append(
                f"| {r['solver']} | {r['tol']:g} | {threads} | {_t(r['seconds'])} | "
                f"{r['iterations']} | {r['status']} | {r['guarantee']}: {_e(r['bound'])} | "
                f"{_e(r['accuracy'])} | {'yes' if abs(r['accuracy']) <= r['tol'] else '**no**'} | "
                f"{clarabel} | {any_peer} |"
            )
    for res in batches:
        lines.append(
            f"\n**Batch of {res['batch']} problems at 64 × 64** (one solve, shared W, default "
            "threads)\n"
        )
        lines.append(
            "| tol | batch time | per problem | one by one (mean) | one by one / batched "
            "| iterations | problem-iterations / (B × iterations) | bound "
            "| max relative objective difference to one by one |"
        )
        lines.append("|---|---|---|---|---|---|---|---|---|")
        for r in res["rows"]:
            share = r["row_iterations"] / (res["batch"] * r["iterations"])
            lines.append(
                f"| {r['tol']:g} | {_t(r['seconds'])} | {_t(r['per_problem'])} | "
                f"{_t(r['single'])} | {r['single'] / r['per_problem']:.1f}× | "
                f"{r['iterations']} ({r['status']}) | {share:.2f} | {_e(r['bound'])} | "
                f"{r['agreement']:.1e} |"
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
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--batch", type=int, nargs="*", default=[64])
    parser.add_argument("--singles", type=int, default=4, help="batch problems solved alone")
    parser.add_argument("--clarabel-128", action="store_true")
    parser.add_argument("--reference-tol", type=float, default=1e-9)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--max-iter", type=int, default=20_000)
    parser.add_argument("--pdhg-max-size", type=int, default=64)
    parser.add_argument("--pdhg-1e6-max-size", type=int, default=32)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", SolverWarning)
    started = time.perf_counter()
    load_start = os.getloadavg()
    default_threads = blas_threads()
    results = [run_size(size, args) for size in args.sizes]
    batches = [run_batch(batch, args) for batch in args.batch]
    load_end = os.getloadavg()
    env = os.environ.get("OPENBLAS_NUM_THREADS", "unset")
    body = (
        f"{SECTION}\n\n`python benchmarks/bench_inversion.py "
        f"{' '.join(sys.argv[1:] if argv is None else argv)}` "
        f"({(time.perf_counter() - started) / 60:.0f} minutes). Measured "
        f"{datetime.date.today().isoformat()} on {machine()}. Threads: OPENBLAS_NUM_THREADS "
        f"{env}, default BLAS thread count {default_threads}; \"pinned\" runs inside "
        "threadpool_limits(1). Load average (1, 5, 15 min) at the start "
        + ", ".join(f"{x:.1f}" for x in load_start)
        + ", at the end "
        + ", ".join(f"{x:.1f}" for x in load_end)
        + ".\nWhat is timed and the reference are described in the script's docstring; times are "
        "medians of the repeats (Clarabel at 64 × 64 and above, and the batches: one run).\n"
        + tables(results, batches)
        + "\n"
    )
    print("\n" + body)
    if args.write_readme:
        write_readme(body)


if __name__ == "__main__":
    main()
