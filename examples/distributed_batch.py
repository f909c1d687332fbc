"""A batch of inversions on a local Dask cluster, against one batched solve in this process.

The problem is the bundled spec ``perceptron-tv-batch``: the ReLU perceptron 32×32 → 256
with TV and the Bregman fidelity (certified convex), inverted for 16 independent noisy copies
of the phantom's data, solved by ``admm`` at tol 1e-6. The script

1. solves the 16 items in this process as one batch (``problem.solve(...)``);
2. starts a local Dask cluster of ``--workers`` worker processes (``bregmod.distributed
   .cluster``, what ``bregmod run perceptron-tv-batch --workers 2`` does) and solves the same
   batch on it (``problem.solve(..., client=client)``: the model shipped once per worker, the
   batch cut into chunks, one task per chunk), recording which worker ran which chunk when;
3. prints the statuses, per-item quality, each chunk, the times and the largest difference
   between the two solutions, and draws ``distributed_batch.png``: the ground truth and two
   items' reconstructions, the chunks on the workers over time, and the per-item difference
   between the distributed and the in-process solution.

Times depend on the machine's load: on a shared or small machine the workers compete with
each other and with this process for cores (``benchmarks/README.md``, "Distributed batch
inversion"). Needs ``pip install 'bregmod[distributed]'``.

Run: ``python examples/distributed_batch.py [--out DIR] [--workers N] [--quick]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from bregmod.distributed import cluster
from bregmod.report import quality
from bregmod.spec import load_spec, resolve_spec

SPEC = "perceptron-tv-batch"


def relative_differences(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """‖a_i − b_i‖ / ‖b_i‖ for every item i of two batches."""
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    return np.linalg.norm(a - b, axis=1) / np.linalg.norm(b, axis=1)


def chunk_runs(task_stream: list[dict], chunks: list[dict], start: float) -> list[tuple]:
    """(worker, first item, last item, begin, end) of every chunk's compute, from Dask's task
    stream (times in seconds after ``start``); a chunk's task key is ``bregmod-chunk-I-…``."""
    runs = []
    for task in task_stream:
        key = str(task["key"])
        if not key.startswith("bregmod-chunk-"):
            continue
        first, stop = chunks[int(key.split("-")[2])]["items"]
        for span in task["startstops"]:
            if span["action"] == "compute":
                runs.append((task["worker"], first, stop - 1, span["start"] - start,
                             span["stop"] - start))
    return sorted(runs, key=lambda run: run[3])


def figure(path: Path, spec, distributed, runs, differences, times) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 6.6), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[1, 1.05])
    images = top.subplots(1, 3)
    truth = spec.ground_truth
    last = len(distributed.u0) - 1
    shown = [("ground truth u†", truth), *(
        (f"item {i + 1}: PSNR {quality(distributed.u0[i], truth)['psnr']:.2f} dB",
         distributed.u0[i]) for i in (0, last))]
    for ax, (title, image) in zip(images, shown, strict=True):
        ax.imshow(image, cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    top.suptitle(f"{SPEC}: {len(distributed.u0)} noisy copies of the data, each inverted\n"
                 "(Bregman fidelity + TV, admm, tol 1e-6)", fontsize=11)

    gantt, diff = bottom.subplots(1, 2, width_ratios=[1.5, 1])
    workers = sorted({run[0] for run in runs})
    colours = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"]
    for worker, first, last_item, begin, end in runs:
        row = workers.index(worker)
        gantt.barh(row, end - begin, left=begin, height=0.6,
                   color=colours[row % len(colours)], edgecolor="black")
        label = (f"item {first + 1}" if first == last_item
                 else f"items {first + 1}–{last_item + 1}")
        gantt.text((begin + end) / 2, row, label, ha="center", va="center", fontsize=10)
    gantt.set_yticks(range(len(workers)), [f"worker {i + 1}" for i in range(len(workers))])
    gantt.set_ylim(-0.6, len(workers) - 0.4)
    gantt.set_xlim(0, times["distributed"])
    gantt.set_xlabel("seconds after the distributed solve was called")
    gantt.set_title(f"chunks on {len(workers)} worker processes: the whole solve "
                    f"{times['distributed']:.1f} s\n(one batch in-process: "
                    f"{times['in_process']:.1f} s)", fontsize=10)

    items = np.arange(1, len(differences) + 1)
    identical = differences == 0.0  # no place on a log scale: drawn at its floor, open
    diff.semilogy(items[~identical], differences[~identical], "o", color="black",
                  label="differ")
    if identical.any():
        diff.semilogy(items[identical], np.full(identical.sum(), 2e-13), "v", color="gray",
                      markerfacecolor="none", label="bit-identical (0, drawn at the floor)")
        diff.legend(loc="upper right", fontsize=8)
    diff.set_xticks(items[::max(1, len(items) // 8)])
    diff.set_xlabel("item")
    diff.set_ylim(1e-13, 1e-2)
    diff.set_ylabel("relative difference of u (log scale)")
    diff.set_title("‖u_dask − u_local‖ / ‖u_local‖ per item\n"
                   "(u_local: one batch in-process)", fontsize=10)
    diff.grid(True, alpha=0.3)
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    """Solve in-process and on the cluster, compare, plot; 1 when an item did not converge."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/distributed-batch"))
    parser.add_argument("--workers", type=int, default=2, help="local worker processes")
    parser.add_argument("--quick", action="store_true", help="the spec's [quick] sizes")
    args = parser.parse_args(argv)
    from dask.distributed import get_task_stream

    spec = load_spec(resolve_spec(SPEC), quick=args.quick)
    problem, settings = spec.problem, spec.solver.kwargs()
    print(f"{spec.name}: {spec.network}, {problem.batch_size} items, J = {spec.regularizer}, "
          f"solver {settings['solver']} at tol {settings['tol']:g}")

    start = time.perf_counter()
    local = problem.solve(**settings)
    times = {"in_process": time.perf_counter() - start}
    print(f"in-process, one batch: {local.solver} {local.status}, {local.iterations} "
          f"iterations, {times['in_process']:.1f} s")

    start = time.perf_counter()
    with cluster(workers=args.workers) as client:
        times["startup"] = time.perf_counter() - start
        print(f"local cluster of {args.workers} worker processes started in "
              f"{times['startup']:.1f} s")
        with get_task_stream(client) as stream:
            start = time.time()
            distributed = problem.solve(client=client, **settings)
            times["distributed"] = time.time() - start
        runs = chunk_runs(stream.data, distributed.stats["chunks"], start)
    statuses = distributed.stats["statuses"]
    print(f"on the cluster: {distributed.solver} {distributed.status} "
          f"({statuses.count('optimal')} of {len(statuses)} items optimal), "
          f"{distributed.iterations} iterations (largest chunk), {times['distributed']:.1f} s")
    for chunk in distributed.stats["chunks"]:
        first, stop = chunk["items"]
        print(f"  chunk items {first + 1}–{stop}: {chunk['status']}, {chunk['iterations']} "
              f"iterations, {chunk['wall_time']:.1f} s")

    scores = [quality(u, spec.ground_truth) for u in distributed.u0]
    psnrs = [s["psnr"] for s in scores]
    zero = quality(np.zeros_like(spec.ground_truth), spec.ground_truth)["psnr"]
    print(f"PSNR over the items: min {min(psnrs):.2f} dB, max {max(psnrs):.2f} dB "
          f"(zero image {zero:.2f} dB); SSIM min {min(s['ssim'] for s in scores):.3f}")
    differences = relative_differences(distributed.u0, local.u0)
    print(f"largest relative difference from the in-process batch: {differences.max():.1e}")

    args.out.mkdir(parents=True, exist_ok=True)
    figure(args.out / "distributed_batch.png", spec, distributed, runs, differences, times)
    print(f"wrote {args.out / 'distributed_batch.png'}")
    return 0 if distributed.status == "optimal" and local.status == "optimal" else 1


if __name__ == "__main__":
    sys.exit(main())
