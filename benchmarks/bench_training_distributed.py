"""Data-parallel lifted training on Dask against the in-process run (issue 14).

The problem is the talk's sparse autoencoder of ``examples/sparse_autoencoder.py`` (imported
from it): 784-784-784-784-784, ReLU/ReLU/soft-threshold/ReLU/identity, α‖x³‖₁, noisy MNIST
digits in, clean digits out, batch 100, τ = 10, 2 sweeps per batch, float64. Measured in one
run, side by side, from the same start and seed:

* seconds per epoch (``history["time"]``: the batch steps, not the end-of-epoch evaluation)
  in this process and on a ``LocalCluster`` of 1 and 2 single-threaded worker processes;
* what each distributed run moved (``stats["distributed"]``: the bytes of the arrays sent to
  and received from the workers, tasks and round trips per batch step) and the size of Θ as
  Dask pickles it;
* the largest difference of the trained weights from the in-process run;
* the seconds to ship Θ to a worker and an array of its size back (one sweep's transfers);
* the float64 GEMM rate of one core (the F of the estimate in benchmarks/README.md).

Run: ``OPENBLAS_NUM_THREADS=1 python benchmarks/bench_training_distributed.py [--train N]
[--epochs E] [--json PATH]``. Needs dask[distributed] and mlxtend.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import time
from pathlib import Path

import numpy as np
from bench_training import _example  # the sparse autoencoder example, loaded once per run


def gemm_rate(n: int = 1024, repeat: int = 3) -> float:
    """FLOP/s of a float64 n×n matrix product (best of ``repeat``)."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    best = min(_timed(lambda: a @ b) for _ in range(repeat))
    return 2 * n**3 / best


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _same_size(weights) -> np.ndarray:
    """An array as large as the weights (what a shard's gradients weigh)."""
    return np.ones(sum(W.size + b.size for W, b in weights))


def transfer_seconds(client, weights, repeat: int = 3) -> float:
    """Seconds to ship Θ to a worker in a task and get an array of its size back (median)."""
    from bregmod.training import _shipped

    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        shipped = client.submit(_shipped, weights, pure=False)
        client.submit(_same_size, shipped, pure=False).result()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    from distributed import Client, LocalCluster

    import bregmod as bm

    example = _example()
    train, noisy, _, _ = example.load_digits(args.train)
    training = bm.Training(example.network(example.initial_weights(0)), noisy, train,
                           state_penalties={3: example.ALPHA})
    options = dict(epochs=args.epochs, seed=0, **example.LBN)
    runs = {"in-process": training.solve(**options)}
    weights = training._initial_weights()
    transfers = {}
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster) as client:
            client.run(lambda: __import__("bregmod.training"))  # warm the workers
            name = f"dask, {workers} worker(s)"
            transfers[name] = transfer_seconds(client, weights)
            runs[name] = training.solve(**options, client=client)
    reference = runs["in-process"]
    model = training._model(weights)
    results = {
        "train": args.train,
        "epochs": args.epochs,
        "batches_per_epoch": reference.stats["batches"] // args.epochs,
        "theta_array_bytes": int(sum(W.nbytes + b.nbytes for W, b in weights)),
        "theta_pickled_bytes": len(pickle.dumps(model, protocol=5)),
        "gemm_flops_per_s": gemm_rate(),
        "runs": {},
    }
    base = float(np.mean(reference.history["time"]))
    for name, result in runs.items():
        entry = {"seconds_per_epoch": float(np.mean(result.history["time"])),
                 "max_weight_difference": max(
                     float(np.abs(a.W - b.W).max())
                     for a, b in zip(reference.network.layers, result.network.layers,
                                     strict=True))}
        entry["vs_in_process"] = base / entry["seconds_per_epoch"]
        entry.update(result.stats.get("distributed", {}))
        if name in transfers:
            entry["theta_round_trip_seconds"] = transfers[name]
        results["runs"][name] = entry
    print(f"sparse autoencoder 784^5, {args.train} digits, batch {example.LBN['batch_size']}, "
          f"{example.LBN['inner_iterations']} sweeps, {args.epochs} epoch(s)")
    print(f"Θ: {results['theta_array_bytes']:,} bytes of arrays, "
          f"{results['theta_pickled_bytes']:,} pickled; GEMM {results['gemm_flops_per_s']:.3g} "
          "FLOP/s")
    for name, r in results["runs"].items():
        line = (f"{name:20s} {r['seconds_per_epoch']:8.2f} s/epoch  {r['vs_in_process']:.2f}×  "
                f"max |ΔW| {r['max_weight_difference']:.1e}")
        if "bytes_sent_per_batch" in r:
            line += (f"  sent {r['bytes_sent_per_batch'] / 1e6:.2f} MB/batch, received "
                     f"{r['bytes_received_per_batch'] / 1e6:.2f} MB/batch, "
                     f"{r['round_trips_per_batch']:.1f} round trips, "
                     f"{r['tasks_per_batch']:.1f} tasks; Θ out and back "
                     f"{r['theta_round_trip_seconds']:.2f} s")
        print(line)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
