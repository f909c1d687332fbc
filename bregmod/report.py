"""Reports of a solved spec: the summary table, ``report.json``, ``result.npz`` and PNG figures.

One dictionary, built by :func:`build_report`, is the single source of every number: the
console table (:func:`format_summary`) and ``report.json`` are both rendered from it.
Figures are drawn with :class:`matplotlib.figure.Figure` directly (the Agg renderer, no
display and no pyplot state); matplotlib is the optional extra ``plot``.

``report.json`` holds (see :data:`REPORT_KEYS`)::

    spec         name, description, source, quick, overrides, input_shape, output_shape,
                 network, fidelity, lam, rho, regularizer, noise
    certificate  method, certified, explain (and min_eig, tolerance for eigenvalue checks),
                 or null when no check applies
    solver       requested, used, auto_reason, status, iterations, wall_time, tol, max_iter
    objective    the model's value at the solution
    bregman_gaps [{block, value}] per z block (the data misfit for the Bregman fidelity)
    metrics      psnr, ssim, relative_error against the ground truth (null when unknown)
    global_optimum_claimed
    files        names of the files written next to it

Non-finite numbers (an infinite PSNR of an exact reconstruction) are written as null. For
batched data (N items) ``objective``, each gap ``value`` and each metric are lists over the
items, ``solver.statuses`` lists the item statuses, and the reconstruction figure shows item 1.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bregmod import __version__
from bregmod.metrics import psnr, ssim

__all__ = [
    "FIGURES",
    "REPORT_KEYS",
    "build_report",
    "format_summary",
    "plot_convergence",
    "plot_reconstruction",
    "quality",
    "write_outputs",
]

#: Top-level keys of ``report.json``.
REPORT_KEYS = ("bregmod_version", "spec", "certificate", "solver", "objective", "bregman_gaps",
               "metrics", "global_optimum_claimed", "files")
#: The PNG figures :func:`write_outputs` draws.
FIGURES = ("reconstruction.png", "convergence.png")


def _number(value) -> float | None:
    """``value`` as a JSON number; None when it is not finite."""
    value = float(value)
    return value if math.isfinite(value) else None


def quality(estimate: np.ndarray, truth: np.ndarray | None) -> dict[str, float | None]:
    """PSNR (dB), SSIM and relative error ‖u − u†‖/‖u†‖ of ``estimate`` against ``truth``.

    SSIM is None unless the images are 2-D and at least 7 × 7 (and scikit-image is
    installed); everything is None without a ground truth.
    """
    if truth is None:
        return {"psnr": None, "ssim": None, "relative_error": None}
    estimate = np.asarray(estimate, dtype=float).reshape(truth.shape)
    norm = float(np.linalg.norm(truth))
    error = float(np.linalg.norm(estimate - truth))
    structural = None
    if truth.ndim == 2 and min(truth.shape) >= 7:
        try:
            structural = ssim(estimate, truth)
        except ImportError:
            structural = None
    return {
        "psnr": _number(psnr(estimate, truth)),
        "ssim": None if structural is None else _number(structural),
        "relative_error": _number(error / norm) if norm > 0 else None,
    }


def _certificate(certificate) -> dict[str, Any] | None:
    if certificate is None:
        return None
    entry = {"method": certificate.method, "certified": bool(certificate.certified),
             "explain": certificate.explain()}
    for name in ("min_eig", "tolerance", "lam", "rho"):
        if hasattr(certificate, name):
            entry[name] = _number(getattr(certificate, name))
    return entry


def _gap_labels(problem) -> list[str]:
    if problem.fidelity == "bregman":
        return ["data misfit B_Ψ(f^δ, W u + b)"]
    return [block.name for block in problem.lifted.z_blocks]


def _jsonable(value):
    """Tuples, numpy scalars and arrays of ``value`` as JSON types (non-finite → None)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return _number(value)
    return value


def build_report(spec, result) -> dict[str, Any]:
    """The report of ``result`` (a :class:`~bregmod.problem.Result`) of ``spec``'s problem.

    Parameters
    ----------
    spec : Spec
        The spec that was solved.
    result : Result
        The outcome of ``spec.problem.solve(...)``.

    Returns
    -------
    dict
        JSON-compatible, keys :data:`REPORT_KEYS` (``files`` empty until written).
    """
    problem = spec.problem
    batched = problem.batch_size is not None
    gaps = np.asarray(result.bregman_gaps, dtype=float)
    gaps = gaps.T if batched else np.atleast_1d(gaps)
    if batched:
        items = [quality(u0, spec.ground_truth) for u0 in result.u0]
        metrics = {key: [item[key] for item in items] for key in items[0]}
    else:
        metrics = quality(result.u0, spec.ground_truth)
    return {
        "bregmod_version": __version__,
        "spec": _jsonable({
            "name": spec.name,
            "description": spec.description,
            "source": spec.source,
            "quick": spec.quick,
            "overrides": {k: str(v) for k, v in spec.overrides.items()},
            "input_shape": spec.input_shape,
            "output_shape": spec.output_shape,
            "network": repr(spec.network),
            "fidelity": problem.fidelity,
            "lam": problem.lam if problem.fidelity == "quadratic" else None,
            "rho": problem.rho,
            "regularizer": spec.regularizer,
            "noise": spec.noise,
        }),
        "certificate": _certificate(result.certificate),
        "solver": _jsonable({
            "requested": spec.solver.name,
            "used": result.solver,
            "auto_reason": result.stats.get("auto"),
            "status": result.status,
            "iterations": result.iterations,
            "wall_time": result.wall_time,
            "tol": spec.solver.tol,
            "max_iter": spec.solver.max_iter,
            **({"statuses": result.stats.get("statuses", [result.status] * len(result.u0))}
               if batched else {}),
        }),
        "objective": _jsonable(result.objective),
        "bregman_gaps": [
            {"block": label, "value": _jsonable(value)}
            for label, value in zip(_gap_labels(problem), gaps, strict=True)
        ],
        "metrics": metrics,
        "global_optimum_claimed": bool(result.global_optimum_claimed),
        "files": [],
    }


def _fmt(value, spec: str = ".4g", unit: str = "") -> str:
    """A number, or the range of a list of numbers (one per item of a batch)."""
    if isinstance(value, list):
        known = [v for v in value if v is not None]
        if not known:
            return "n/a"
        return (f"{_fmt(min(known), spec, unit)} to {_fmt(max(known), spec, unit)} over "
                f"{len(value)} items")
    return "n/a" if value is None else f"{value:{spec}}{unit}"


def format_summary(report: dict[str, Any], out_dir: str | Path | None = None) -> str:
    """The console table of a report (see :func:`build_report`)."""
    spec, solver, metrics = report["spec"], report["solver"], report["metrics"]
    certificate = report["certificate"]
    if certificate is None:
        verdict = "no check applies (not certified)"
    else:
        verdict = ("CERTIFIED" if certificate["certified"] else "NOT certified") + \
            f" ({certificate['method']}"
        if certificate.get("min_eig") is not None:
            verdict += f", smallest eigenvalue {certificate['min_eig']:.3g}"
        verdict += ")"
    used = solver["used"] + (f" (auto: {solver['auto_reason']})" if solver["auto_reason"] else "")
    model = f"fidelity {spec['fidelity']}"
    if spec["fidelity"] == "quadratic":
        model += f", λ = {spec['lam']:g}, ρ = {spec['rho']:g}"
    rows = [
        ("spec", spec["source"] + (" [quick]" if spec["quick"] else "")),
        ("network", spec["network"]),
        ("model", f"{model}, J = {spec['regularizer']}"),
        ("certificate", verdict),
        ("solver", used),
        ("status", solver["status"] + ("  (global optimum claimed)"
                                       if report["global_optimum_claimed"] else "")
         + ("" if "statuses" not in solver else "  [items: " + ", ".join(
             f"{solver['statuses'].count(s)} {s}" for s in dict.fromkeys(solver["statuses"]))
            + "]")),
        ("iterations", str(solver["iterations"])),
        ("time", _fmt(solver["wall_time"], ".2f", " s")),
        ("objective", _fmt(report["objective"], ".6e")),
    ]
    gaps = report["bregman_gaps"]
    if len(gaps) == 1:
        rows.append(("Bregman gap", f"{_fmt(gaps[0]['value'], '.3e')}  ({gaps[0]['block']})"))
    else:
        rows += [(f"Bregman gap {gap['block']}", _fmt(gap["value"], ".3e")) for gap in gaps]
    if metrics["psnr"] is not None or metrics["relative_error"] is not None:
        rows += [
            ("PSNR", _fmt(metrics["psnr"], ".2f", " dB")),
            ("SSIM", _fmt(metrics["ssim"], ".3f")),
            ("relative error", _fmt(metrics["relative_error"], ".3g")),
        ]
    if out_dir is not None:
        rows.append(("written to", f"{out_dir}: {', '.join(report['files'])}"))
    width = max(len(name) for name, _ in rows)
    title = f"bregmod run: {spec['name']}"
    return "\n".join([title, *(f"  {name:<{width}}  {value}" for name, value in rows)])


def _figure(columns: int, rows: int = 1, size: float = 3.2):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("figures need matplotlib: pip install 'bregmod[plot]'") from None
    fig = Figure(figsize=(size * columns, size * rows * 0.95))
    return fig, np.atleast_1d(fig.subplots(rows, columns))


def _show(ax, values: np.ndarray, title: str, *, reference: np.ndarray | None = None,
          labels: Sequence[str] = ()) -> None:
    """An image for 2-D (and [C, H, W]: first channel) states, else a line/bar plot.

    ``reference`` sets the grey scale of an image; a signal of the same size is drawn with it
    (legend ``labels``).
    """
    values = np.asarray(values, dtype=float)
    if values.ndim == 3:
        values, title = values[0], f"{title} (channel 0)"
    if values.ndim == 2:
        image = ax.imshow(values, cmap="gray", vmin=None if reference is None else reference.min(),
                          vmax=None if reference is None else reference.max())
        ax.set_xticks([])
        ax.set_yticks([])
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    elif values.size == 1:
        ax.bar([0], [float(values.ravel()[0])], color="C0")
        ax.set_xticks([])
    else:
        marker = "o" if values.size <= 64 else None
        ax.plot(values.ravel(), lw=0.8, marker=marker, ms=3, label=labels[0] if labels else None)
        if reference is not None and reference.size == values.size and labels[1:]:
            ax.plot(reference.ravel(), lw=0.8, marker=marker, ms=3, alpha=0.7, label=labels[1])
            ax.legend(fontsize=7)
        ax.set_xlabel("index")
    ax.set_title(title, fontsize=9)


def plot_reconstruction(path: str | Path, spec, result, metrics: dict | None = None) -> Path:
    """Save ground truth (when known), data and reconstruction side by side as PNG."""
    truth, data, estimate, item = spec.ground_truth, spec.data, result.u0, ""
    if spec.problem.batch_size is not None:  # a batch: its first item
        data, estimate, item = data[0], estimate[0], f" (item 1 of {len(spec.data)})"
        metrics = {key: values[0] for key, values in (metrics or {}).items()} or None
    metrics = metrics or quality(estimate, truth)
    panels = 3 if truth is not None else 2
    fig, axes = _figure(panels)
    column = 0
    if truth is not None:
        _show(axes[0], truth, "ground truth u†", reference=truth)
        column = 1
    if data.ndim >= 2:  # an image: shown on its own grey scale
        _show(axes[column], data, "data f^δ")
    else:  # a signal: overlaid with the network's output at the reconstruction
        fitted = np.asarray(spec.network(estimate), dtype=float)
        _show(axes[column], data, "data f^δ and N(reconstruction)", reference=fitted,
              labels=("f^δ", "N(reconstruction)"))
    title = "reconstruction"
    if metrics["psnr"] is not None:
        title += f", PSNR {metrics['psnr']:.2f} dB"
    _show(axes[column + 1], estimate, title, reference=truth,
          labels=("reconstruction", "ground truth u†"))
    fig.suptitle(f"{spec.name}{item}: {result.solver}, {result.status}", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path


def plot_convergence(path: str | Path, result) -> Path:
    """Save the solver's per-iteration history (objective, residuals, gaps) as PNG.

    A solver without a history (CVXPY) gets a figure that says so.
    """
    history = {key: np.asarray(values, dtype=float) for key, values in result.history.items()
               if len(values) and np.asarray(values).dtype.kind in "fiu"}
    fig, axes = _figure(2, size=3.6)
    if not history:
        for ax in axes:
            ax.axis("off")
        axes[0].text(0.0, 0.5, f"{result.solver} records no per-iteration history\n"
                               f"({result.iterations} iterations, status {result.status})",
                     fontsize=10, va="center")
    else:
        objective = history.pop("objective", None)
        if objective is not None:
            axes[0].plot(np.arange(1, objective.shape[0] + 1), objective, lw=1)
            axes[0].set_title("objective", fontsize=9)
            axes[0].set_xlabel("iteration")
        for key, values in history.items():
            if key == "tau":
                continue
            values = values.reshape(values.shape[0], -1)
            for column in range(values.shape[1]):
                positive = np.where(values[:, column] > 0, values[:, column], np.nan)
                label = key if values.shape[1] == 1 else f"{key}[{column}]"
                axes[1].semilogy(np.arange(1, positive.size + 1), positive, lw=1, label=label)
        axes[1].set_title("residuals and gaps", fontsize=9)
        axes[1].set_xlabel("iteration")
        if axes[1].lines:
            axes[1].legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    return path


def _npz_arrays(spec, result) -> dict[str, np.ndarray]:
    arrays = {
        "u0": result.u0, "u": result.u, "z": result.z, "data": spec.data,
        "objective": np.asarray(result.objective, dtype=float),
        "bregman_gaps": np.asarray(result.bregman_gaps, dtype=float),
    }
    if spec.ground_truth is not None:
        arrays["ground_truth"] = spec.ground_truth
        arrays["clean_data"] = spec.clean_data
    for key, values in result.history.items():
        try:
            arrays[f"history_{key}"] = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            continue  # a non-numeric record (e.g. a message) has no place in an array file
    return {name: np.asarray(value, dtype=float) for name, value in arrays.items()}


def write_outputs(out_dir: str | Path, spec, result, report: dict[str, Any],
                  figures: bool = True) -> list[Path]:
    """Write ``result.npz``, the figures (:data:`FIGURES`) and ``report.json`` to ``out_dir``.

    ``report["files"]`` is filled in with the names written. Returns the paths.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "result.npz"]
    np.savez_compressed(written[0], **_npz_arrays(spec, result))
    if figures:
        written.append(plot_reconstruction(out / FIGURES[0], spec, result, report["metrics"]))
        written.append(plot_convergence(out / FIGURES[1], result))
    written.append(out / "report.json")
    report["files"] = [path.name for path in written]
    written[-1].write_text(json.dumps(report, indent=2, ensure_ascii=False, allow_nan=False)
                           + "\n", encoding="utf-8")
    return written
