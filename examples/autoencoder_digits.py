"""Talk example 4: replace a trained decoder by the regularised inversion of its encoder.

Autoencoder A(u) = W₂ ReLU(W₁u + b₁) + b₂ on scikit-learn's 8×8 digits (values in [0, 1]),
64 → 48 → 64, trained to A(u) ≈ u with scikit-learn's ``MLPRegressor`` (ReLU hidden layer,
identity output, squared loss, Adam, L2 penalty 1e−4, 300 epochs, seed 0) on 1497 digits.
The remaining 300 digits are held out.

Encoder N(u) = ReLU(W₁u + b₁) with the trained W₁, b₁. For a held-out digit u† with code
f = N(u†), compare

* the trained decoder: W₂ f + b₂, and
* the inversion R(f) ∈ argmin_u B_Ψ(f, W₁u + b₁) + α TV(u) + ι_[0,1](u), α = 1e−4
  (Bregman fidelity, convex by structure; no training: R only uses W₁, b₁),

by their PSNR against u† (data range 1). Writes ``autoencoder_digits.png`` (a few digits:
truth, decoder, inversion) to ``--out``. Needs scikit-learn (``pip install 'bregmod[data]'``).

Run: ``python examples/autoencoder_digits.py [--out DIR] [--quick]``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np

from bregmod.activations import ReLU
from bregmod.data import digits
from bregmod.metrics import psnr
from bregmod.network import Dense
from bregmod.problem import Inversion, SolverWarning
from bregmod.regularizers import Box, TotalVariation

CODE, ALPHA, N_TRAIN, SHOWN = 48, 1e-4, 1497, 8


def train_autoencoder(images: np.ndarray, epochs: int):
    """(W₁, b₁, W₂, b₂) of a 64 → CODE → 64 ReLU autoencoder trained with MLPRegressor."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPRegressor

    model = MLPRegressor(hidden_layer_sizes=(CODE,), activation="relu", solver="adam",
                         alpha=1e-4, max_iter=epochs, tol=0.0, n_iter_no_change=epochs,
                         random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # a fixed number of epochs
        model.fit(images, images)
    (W1, W2), (b1, b2) = model.coefs_, model.intercepts_
    return W1.T, b1, W2.T, b2


def main(argv: list[str] | None = None) -> int:
    """Train, invert, compare and plot; return 0 (1 when the inversion did not converge)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/autoencoder-digits"))
    parser.add_argument("--quick", action="store_true", help="fewer epochs and test digits")
    args = parser.parse_args(argv)

    images, _ = digits()
    flat = images.reshape(len(images), -1)
    order = np.random.default_rng(0).permutation(len(flat))
    train, test = flat[order[:N_TRAIN]], flat[order[N_TRAIN:]]
    if args.quick:
        test = test[:SHOWN]
    W1, b1, W2, b2 = train_autoencoder(train, epochs=40 if args.quick else 300)

    encoder = Dense(W1, b1, activation=ReLU(), in_shape=(8, 8))
    codes = encoder(test.reshape(-1, 8, 8))
    decoded = codes @ W2.T + b2
    problem = Inversion(encoder, codes, reg=ALPHA * TotalVariation((8, 8)) + Box(0.0, 1.0),
                        fidelity="bregman")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverWarning)  # the status is reported below
        result = problem.solve()
    inverted = np.asarray(result.u0).reshape(len(test), -1)

    psnr_decoder = np.array([psnr(d, u, 1.0) for d, u in zip(decoded, test, strict=True)])
    psnr_inverse = np.array([psnr(r, u, 1.0) for r, u in zip(inverted, test, strict=True)])
    print(f"{len(test)} held-out digits, code size {CODE}, "
          f"{np.mean(codes > 0):.0%} of the code entries active")
    print(f"decoder W₂ f + b₂:     mean PSNR {psnr_decoder.mean():.2f} dB")
    print(f"inversion R(f) ({result.solver}, {result.status}): mean PSNR "
          f"{psnr_inverse.mean():.2f} dB, better on {np.mean(psnr_inverse > psnr_decoder):.0%} "
          "of the digits")

    from matplotlib.figure import Figure

    fig = Figure(figsize=(1.3 * SHOWN, 4.4))
    axes = fig.subplots(3, SHOWN)
    rows = (("truth u†", test, None), ("decoder", decoded, psnr_decoder),
            ("inversion R(f)", inverted, psnr_inverse))
    for row, (label, values, scores) in zip(axes, rows, strict=True):
        for k, ax in enumerate(row):
            ax.imshow(values[k].reshape(8, 8), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if scores is not None:
                ax.set_xlabel(f"{scores[k]:.1f} dB", fontsize=7)
        row[0].set_ylabel(label, fontsize=8)
    fig.suptitle(f"mean PSNR over {len(test)} held-out digits: decoder "
                 f"{psnr_decoder.mean():.2f} dB, inversion {psnr_inverse.mean():.2f} dB",
                 fontsize=9)
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out / "autoencoder_digits.png", dpi=110)
    print(f"wrote {args.out / 'autoencoder_digits.png'}")
    return 0 if result.status == "optimal" else 1


if __name__ == "__main__":
    sys.exit(main())
