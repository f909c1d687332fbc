"""Throughput of batch inversion on a local Dask cluster against the in-process batched solver.

Problem: the bundled spec ``perceptron-tv-batch`` (ReLU perceptron 32 × 32 → 256, Gaussian
weights, phantom, Bregman fidelity + TV, solver ``admm`` at tol 1e-6), with ``--batch`` noisy
copies of the data. Timed, in one run on this machine:

* ``in-process, one batch``: ``problem.solve(...)`` on the whole batch (one batched solve);
* ``in-process, chunked``: the same chunks as the cluster, solved one after another here
  (separates the effect of chunking — each chunk stops when its own worst item converges and
  repeats the solver's setup — from that of parallelism);
* ``Dask, P workers``: ``problem.solve(..., client=client)`` on a ``LocalCluster`` of P
  single-threaded worker processes, after one warm-up run (imports on the workers); the
  first (cold) run is reported separately, as is the cluster's start-up.

Also measured: the bytes Dask ships — the pickled model (once per worker), the data of one
chunk and the pickled Result of one chunk (per task) — and the matrix-product rate of one core
(float64 GEMM), used by the communication model in ``benchmarks/README.md``.

Run: ``python benchmarks/bench_distributed.py [--batch 32] [--chunk-size 4] [--workers 1 2]
[--repeat 3] [--quick]``
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import time
import warnings

import numpy as np


def median_time(run, repeats: int) -> tuple[float, object]:
    """(median wall time over ``repeats`` calls of ``run()``, the last return value)."""
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def gemm_rate(n: int = 1024, repeats: int = 5) -> float:
    """float64 GEMM rate of this process in FLOP/s (2 n³ per product)."""
    a = np.random.default_rng(0).standard_normal((n, n))
    seconds, _ = median_time(lambda: a @ a, repeats)
    return 2 * n**3 / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--chunk-size", type=int, default=4)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="the spec's [quick] size")
    args = parser.parse_args()

    from distributed import Client, LocalCluster

    from bregmod.distributed import chunk_slices, solve_batch
    from bregmod.spec import load_spec, resolve_spec

    warnings.simplefilter("ignore")
    spec = load_spec(resolve_spec("perceptron-tv-batch"), quick=args.quick,
                     overrides={"data.noise.copies": args.batch})
    problem, kwargs = spec.problem, spec.solver.kwargs()
    problem.certify()
    print(f"# {spec.name}{' [quick]' if args.quick else ''}: {problem!r}, batch {args.batch}, "
          f"chunk size {args.chunk_size}, solver {kwargs}")
    print(f"# load average at start: {os.getloadavg()}, cores: {os.cpu_count()}, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}")
    rate = gemm_rate()
    print(f"# float64 GEMM (1024², one core): {rate / 1e9:.1f} GFLOP/s")

    template = problem.with_data(problem.data[:1])
    slices = chunk_slices(args.batch, args.chunk_size)
    chunk = problem.with_data(problem.data[slices[0]])
    chunk_result = chunk.solve(**kwargs)
    sizes = {
        "model (pickled, once per worker)": len(pickle.dumps(template, protocol=5)),
        "data of one chunk (per task)": problem.data[slices[0]].nbytes,
        "Result of one chunk (pickled, per task)": len(pickle.dumps(chunk_result, protocol=5)),
    }
    for name, size in sizes.items():
        print(f"# bytes: {name}: {size:,}")

    rows = []
    seconds, whole = median_time(lambda: problem.solve(**kwargs), args.repeat)
    rows.append(("in-process, one batch", seconds, whole.status, whole.iterations))

    def chunked():
        return [problem.with_data(problem.data[s]).solve(**kwargs) for s in slices]

    seconds, parts = median_time(chunked, args.repeat)
    rows.append(("in-process, chunked", seconds, sorted({p.status for p in parts}),
                 max(p.iterations for p in parts)))
    for workers in args.workers:
        start = time.perf_counter()
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            started = time.perf_counter() - start
            start = time.perf_counter()
            solve_batch(problem, client, chunk_size=args.chunk_size, **kwargs)
            cold = time.perf_counter() - start
            seconds, result = median_time(
                lambda client=client: solve_batch(problem, client, chunk_size=args.chunk_size,
                                                  **kwargs), args.repeat)
        print(f"# {workers} worker(s): cluster start {started:.1f} s, first (cold) run "
              f"{cold:.2f} s")
        rows.append((f"Dask, {workers} worker process(es)", seconds, result.status,
                     result.iterations))
        deviation = np.abs(result.u0 - whole.u0).max() / np.abs(whole.u0).max()
        print(f"# {workers} worker(s): max |u0 - u0(one batch)| / max |u0| = {deviation:.1e}")

    reference = rows[0][1]
    print("\n| run | time | items/s | vs one batch in-process | status | iterations (max) |")
    print("|---|---|---|---|---|---|")
    for name, seconds, status, iterations in rows:
        print(f"| {name} | {seconds:.2f} s | {args.batch / seconds:.1f} | "
              f"{reference / seconds:.2f}× | {status} | {iterations} |")
    print(f"\n# load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
