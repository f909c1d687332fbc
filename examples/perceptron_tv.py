"""Talk example 3: the ReLU perceptron 64×64 → 512 with TV, Bregman vs quadratic data term.

The problems are the bundled specs ``perceptron-tv`` (Bregman fidelity
B_Ψ(f^δ, W u + b) + α TV(u)) and ``perceptron-tv-quadratic`` (the lifted model with the
quadratic data term λ/2‖K u − f^δ‖²); see those files for the network, the data and the
scaling convention of α = 0.015. This script runs both through ``bregmod run`` (each writes
result.npz, report.json and its figures to ``--out``/<spec name>) and draws one comparison
figure, ``perceptron_tv.png``: ground truth, the two reconstructions and their PSNR.

Run: ``python examples/perceptron_tv.py [--out DIR] [--quick]``, or a single spec with
``bregmod run perceptron-tv --out DIR``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from bregmod.cli import main as bregmod

SPECS = ("perceptron-tv", "perceptron-tv-quadratic")


def main(argv: list[str] | None = None) -> int:
    """Run both specs and draw the comparison; return the worse of their exit statuses."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/perceptron-tv"))
    parser.add_argument("--quick", action="store_true", help="the specs' [quick] sizes")
    args = parser.parse_args(argv)

    codes, panels = [], []
    for name in SPECS:
        out = args.out / name
        codes.append(bregmod(["run", name, "--out", str(out), "--no-progress"]
                             + (["--quick"] if args.quick else [])))
        if codes[-1] == 2:
            return 2
        report = json.loads((out / "report.json").read_text(encoding="utf-8"))
        with np.load(out / "result.npz", allow_pickle=False) as saved:
            panels.append((report, saved["u0"], saved["ground_truth"]))

    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8), layout="constrained")
    axes = fig.subplots(1, 3)
    truth = panels[0][2]
    axes[0].imshow(truth, cmap="gray", vmin=0, vmax=1)
    axes[0].set_title("ground truth u†", fontsize=9)
    for ax, (report, u0, _) in zip(axes[1:], panels, strict=True):
        ax.imshow(u0, cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"{report['spec']['fidelity']} fidelity: PSNR "
                     f"{report['metrics']['psnr']:.2f} dB\n({report['solver']['used']}, "
                     f"{report['solver']['status']}, {report['solver']['iterations']} it.)",
                     fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(f"ReLU perceptron {truth.shape[0]}×{truth.shape[1]} → "
                 f"{panels[0][0]['spec']['output_shape'][0]}, J = "
                 f"{panels[0][0]['spec']['regularizer']}", fontsize=10)
    fig.savefig(args.out / "perceptron_tv.png", dpi=110)
    print(f"wrote {args.out / 'perceptron_tv.png'}")
    return max(codes)


if __name__ == "__main__":
    sys.exit(main())
