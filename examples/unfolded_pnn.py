"""Talk example (Part I): the unfolded proximal neural network denoiser (Wang, Benning &
Repetti, MLSP 2024) trained by lifted Bregman training with tied weights.

K unrolled layers of dual forward–backward for min_x ½‖x − z‖² + λ‖L x‖₁,

    u_1 = clip_{[−λ, λ]}(τ L_1 z),  u_{k+1} = clip_{[−λ, λ]}(u_k − τ L_k(L_kᵀ u_k − z)),
    x = z − L_Kᵀ u_K,

with learnable convolutions L_k (two 3×3 filters each, started at the forward differences:
the untrained network is a truncated TV denoiser), on 8×8 patches of scikit-image's
``camera`` image (values in [0, 1]) with Gaussian noise σ = 0.1: training and validation
patches from the top half of the image, test patches from the bottom half. Compared, by test
PSNR (data range 1, over all test pixels):

* the noisy input itself;
* the untrained unrolled denoiser (L_k = ∇, TV-like);
* LBN — lifted Bregman training of the kernels (``bregmod.unfolded.UnfoldedTraining``: implicit
  SGD with proximal-gradient subproblems, tied weights through the chain rule, no σ′; hidden
  states kept from the previous visit, ``state_init="warm"``), with early stopping on the
  validation patches;
* BP — backpropagation (PyTorch autograd, Adam) of the same architecture and loss from the same
  start (skipped with a message without PyTorch).

Writes ``unfolded_pnn.json`` to ``--out``. Run:
``python examples/unfolded_pnn.py [--out DIR] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from bregmod.metrics import psnr
from bregmod.unfolded import UnfoldedPNN, UnfoldedTraining, gradient_kernels

PATCH, NOISE, LAYERS, STEP, THRESHOLD = 8, 0.1, 6, 0.12, 0.05
#: Settings (a small search over τ, state_init and sweeps on 1000 patches, see the docs).
LBN = {"tau": 1.0, "inner_iterations": 3, "batch_size": 50, "state_init": "warm"}
BP = {"lr": 3e-3, "batch_size": 50}
FULL = {"train": 2000, "test": 1000, "epochs": 10}
QUICK = {"train": 300, "test": 300, "epochs": 3}
PATIENCE = 2


def load_patches(n_train: int, n_test: int, seed: int = 0):
    """(clean, noisy) pairs of training and validation patches (n_test // 2) from the top half
    of ``camera`` and of test patches from the bottom half, each (s, 1, 8, 8)."""
    from skimage import data

    image = data.camera().astype(np.float64) / 255.0
    rng = np.random.default_rng(seed)
    half = image.shape[0] // 2

    def patches(top: int, count: int) -> np.ndarray:
        rows = rng.integers(top, top + half - PATCH, count)
        cols = rng.integers(0, image.shape[1] - PATCH, count)
        return np.array(
            [image[r : r + PATCH, c : c + PATCH] for r, c in zip(rows, cols, strict=True)]
        )[:, None]

    sets = patches(0, n_train), patches(0, n_test // 2), patches(half, n_test)
    return tuple((clean, clean + NOISE * rng.standard_normal(clean.shape)) for clean in sets)


def initial_pnn() -> UnfoldedPNN:
    """The untrained denoiser: L_k = forward differences in every layer."""
    return UnfoldedPNN([gradient_kernels(3)] * LAYERS, (PATCH, PATCH), STEP, THRESHOLD)


def train_lbn(train, validation, epochs: int):
    clean, noisy = train
    training = UnfoldedTraining(initial_pnn(), noisy, clean)
    start = time.perf_counter()
    result = training.solve(
        epochs=epochs, seed=0, validation=validation[::-1], early_stopping=PATIENCE, **LBN
    )
    seconds = time.perf_counter() - start
    history = [float(10 * np.log10(1 / v)) for v in result.history["val_loss"]]
    return training.pnn_of(result), seconds, history


def train_bp(train, validation, epochs: int):
    """Adam on the mean squared error of the same unrolled network (tied kernels)."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    pnn = initial_pnn()
    kernels = [torch.tensor(k, requires_grad=True) for k in pnn.kernels]
    steps, lam = pnn.steps, pnn.threshold

    def forward(z):
        u = torch.clamp(steps[0] * F.conv2d(z, kernels[0], padding=1), -lam, lam)
        for k, tau in zip(kernels[1:], steps[1:], strict=True):
            residual = F.conv_transpose2d(u, k, padding=1) - z
            u = torch.clamp(u - tau * F.conv2d(residual, k, padding=1), -lam, lam)
        return z - F.conv_transpose2d(u, kernels[-1], padding=1)

    z_validation = torch.from_numpy(validation[1])
    with torch.no_grad():  # the same network as bregmod's at the start
        np.testing.assert_allclose(forward(z_validation).numpy(), pnn(validation[1]), atol=1e-10)
    clean, noisy = (torch.from_numpy(a) for a in train)
    optimizer = torch.optim.Adam(kernels, lr=BP["lr"])
    generator = np.random.default_rng(0)
    history, start = [], time.perf_counter()
    for _ in range(epochs):
        order = generator.permutation(len(clean))
        for first in range(0, len(order), BP["batch_size"]):
            batch = torch.from_numpy(order[first : first + BP["batch_size"]])
            optimizer.zero_grad()
            loss = torch.mean((forward(noisy[batch]) - clean[batch]) ** 2)
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            history.append(psnr(forward(z_validation).numpy(), validation[0], data_range=1.0))
    seconds = time.perf_counter() - start
    return pnn.with_kernels([k.detach().numpy() for k in kernels]), seconds, history


def run(n_train: int, n_test: int, epochs: int) -> dict:
    """All four denoisers on one data set; returns the report: test PSNR (dB), training
    seconds and the validation PSNR after every epoch of each trained method."""
    train, validation, test = load_patches(n_train, n_test)
    clean, noisy = test
    report = {
        "train": n_train,
        "test": n_test,
        "epochs": epochs,
        "noise": NOISE,
        "layers": LAYERS,
        "step": STEP,
        "threshold": THRESHOLD,
        "psnr": {
            "noisy input": psnr(noisy, clean, data_range=1.0),
            "untrained (L = ∇, TV-like)": psnr(initial_pnn()(noisy), clean, data_range=1.0),
        },
        "seconds": {},
        "history": {},
    }
    methods = {"LBN (lifted Bregman)": train_lbn}
    try:
        import torch  # noqa: F401
    except ImportError:
        print("PyTorch is not installed: the backpropagation baseline is skipped")
    else:
        methods["BP (autograd + Adam)"] = train_bp
    for name, method in methods.items():
        pnn, seconds, history = method(train, validation, epochs)
        report["psnr"][name] = psnr(pnn(noisy), clean, data_range=1.0)
        report["seconds"][name], report["history"][name] = seconds, history
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK['train']} patches, {QUICK['epochs']} epochs (a smoke run)",
    )
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    report = run(sizes["train"], sizes["test"], sizes["epochs"])
    print(
        f"camera 8×8 patches, σ = {NOISE}: {report['train']} training, {report['test']} test "
        f"patches, {report['layers']} unrolled layers, {report['epochs']} epochs"
    )
    print("| denoiser | test PSNR (dB) | training time (s) |\n|---|---|---|")
    for name, value in report["psnr"].items():
        seconds = report["seconds"].get(name)
        print(f"| {name} | {value:.2f} | {'–' if seconds is None else f'{seconds:.1f}'} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "unfolded_pnn.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out / 'unfolded_pnn.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
