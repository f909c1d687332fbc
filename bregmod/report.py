"""Reports of a solved spec: the summary table, ``report.json``, ``result.npz`` and PNG figures.

One dictionary, built by :func:`build_report`, is the single source of every number: the
console table (:func:`format_summary`) and ``report.json`` are both rendered from it.
Figures are drawn with :class:`matplotlib.figure.Figure` directly (the Agg renderer, no
display and no pyplot state); matplotlib is the optional extra ``plot``.

``report.json`` holds (see :data:`REPORT_KEYS`)::

    spec         name, description, source, quick, overrides, input_shape, output_shape,
                 network, fidelity, lam, rho, regularizer, noise
    certificate  method, certified, explain, factorised; for eigenvalue checks tolerance
                 and min_eig (the decisive smallest eigenvalue), or, for factorised checks
                 (block LDLᵀ: the verdict is a verified margin λ_min > −tolerance, or its
                 failure), min_eig_estimate (a LOBPCG upper bound; null when not computed)
                 instead of min_eig; null when no check applies
    solver       requested, used, auto_reason, status, iterations, wall_time, tol, max_iter
    objective    the model's value at the solution
    bregman_gaps [{block, value}] per z block (the data misfit for the Bregman fidelity)
    metrics      psnr, ssim, relative_error against the ground truth (null when unknown)
    context      what the numbers compare with (see :func:`context`): baselines (the zero
                 image and, for one layer, the pseudo-inverse from the data alone) scored
                 like the result, the noise, and the data misfit at u† and relative to ½‖f^δ‖²
    global_optimum_claimed
    files        names of the files written next to it

Non-finite numbers (an infinite PSNR of an exact reconstruction) are written as null. For
batched data (N items) ``objective``, each gap ``value`` and each metric are lists over the
items, ``solver.statuses`` lists the item statuses, and ``context`` and the reconstruction
figure are those of item 1.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from bregmod import __version__
from bregmod.metrics import psnr, ssim

__all__ = [
    "FIGURES",
    "REPORT_KEYS",
    "build_report",
    "context",
    "convergence_figure",
    "format_summary",
    "plot_convergence",
    "plot_reconstruction",
    "quality",
    "reconstruction_figure",
    "write_outputs",
]

#: Top-level keys of ``report.json``.
REPORT_KEYS = ("bregmod_version", "spec", "certificate", "solver", "objective", "bregman_gaps",
               "metrics", "context", "global_optimum_claimed", "files")
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


#: Largest m·n for which the pseudo-inverse baseline densifies the layer's operator.
PSEUDO_INVERSE_LIMIT = 2 * 10**7


def pseudo_inverse(spec) -> tuple[np.ndarray, int] | None:
    """The reconstruction from the data term alone: u = A⁺(σ⁻¹(f^δ) − β) on the trusted rows.

    For a one-layer network u ↦ σ(A u + β) whose activation has a closed-form σ⁻¹: the rows
    where f^δ lies in the interior of the range of σ (for ReLU: f^δ > 0) are inverted and
    A u = σ⁻¹(f^δ) − β is solved there by minimum-norm least squares (no regulariser). None
    when the network has several layers, σ⁻¹ has no closed form, no row is usable, or A has
    more than :data:`PSEUDO_INVERSE_LIMIT` entries. Returns (u in the input shape, rows used).
    """
    layers = spec.network.layers
    operator = getattr(layers[0], "operator", None) if len(layers) == 1 else None
    if operator is None or np.prod(operator.shape) > PSEUDO_INVERSE_LIMIT:
        return None
    activation, data = layers[0].activation, spec.data.ravel()
    value_range = activation.range
    inside = (data > value_range.lo) & (data < value_range.hi)
    if not inside.any():
        return None
    try:
        target = activation.sigma_inv(data[inside]) - np.broadcast_to(
            layers[0].bias, data.shape)[inside]
    except NotImplementedError:
        return None
    A = operator.to_dense()[inside]
    u = np.linalg.lstsq(A, target, rcond=None)[0]
    return u.reshape(spec.input_shape), int(inside.sum())


def context(spec, result) -> dict[str, Any]:
    """What the result's numbers compare with (the ``context`` entry of ``report.json``).

    * ``baselines``: PSNR, SSIM and relative error of the zero image and of
      :func:`pseudo_inverse` (when it applies), against the ground truth;
    * ``noise``: the spec's noise description, and ``relative_data_noise``
      ‖f^δ − N(u†)‖/‖N(u†)‖ when u† is known;
    * ``misfit_at_truth``: for the Bregman fidelity, B_Ψ(f^δ, A u† + β) (the δ² of the error
      estimate): a reconstruction that fits the data better than u† fits the noise;
    * ``half_data_norm_sq``: ½‖f^δ‖², the scale of the data misfit (B_Ψ(f^δ, β) ~ ½‖f^δ‖²
      when A u = 0 and σ is the identity).
    """
    truth, data = spec.ground_truth, spec.data
    baselines: dict[str, Any] = {}
    if truth is not None:
        baselines["zero image"] = quality(np.zeros_like(truth), truth)
        inverse = pseudo_inverse(spec)
        if inverse is not None:
            u, rows = inverse
            baselines["pseudo-inverse"] = {**quality(u, truth), "rows": rows}
    entry: dict[str, Any] = {
        "baselines": baselines,
        "noise": _jsonable(spec.noise),
        "relative_data_noise": None,
        "misfit_at_truth": None,
        "half_data_norm_sq": _number(0.5 * float(np.sum(data**2))),
    }
    if truth is not None and spec.clean_data is not None:
        clean = np.asarray(spec.clean_data, dtype=float)
        norm = float(np.linalg.norm(clean))
        if norm > 0:
            entry["relative_data_noise"] = _number(np.linalg.norm(data - clean) / norm)
    problem = spec.problem
    if truth is not None and problem.fidelity == "bregman":
        pre = problem.A.apply(truth.ravel()) + problem.bias
        entry["misfit_at_truth"] = _number(problem.activation.bregman(data.ravel(), pre))
    return entry


def _certificate(certificate) -> dict[str, Any] | None:
    if certificate is None:
        return None
    factorised = bool(getattr(certificate, "factorised", False))
    entry = {"method": certificate.method, "certified": bool(certificate.certified),
             "explain": certificate.explain(), "factorised": factorised}
    for name in ("tolerance", "lam", "rho", "alpha"):
        if hasattr(certificate, name):
            entry[name] = _number(getattr(certificate, name))
    if hasattr(certificate, "min_eig"):
        value = certificate.min_eig
        entry["min_eig_estimate" if factorised else "min_eig"] = (
            None if value is None else _number(value)
        )
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


def _first_item(spec, result):
    """(spec, result) restricted to the first item of a batch (its context and figure)."""
    first = spec.data[0]
    return (dataclasses.replace(spec, data=first, problem=spec.problem.with_data(first)),
            dataclasses.replace(result, u0=result.u0[0]))


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
        "context": context(*_first_item(spec, result)) if batched else context(spec, result),
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
        if certificate.get("factorised"):
            relation = ">" if certificate["certified"] else "<"
            verdict += (f", block LDLᵀ: smallest eigenvalue {relation} "
                        f"−{certificate['tolerance']:.2g}")
            estimate = certificate.get("min_eig_estimate")
            verdict += ("; eigenvalue not computed" if estimate is None else
                        f"; eigenvalue estimate {estimate:.3g}, an upper bound")
        elif certificate.get("min_eig") is not None:
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
    gaps, ctx = report["bregman_gaps"], report.get("context") or {}
    first = " (item 1)" if "statuses" in solver else ""  # a batch: the context of item 1
    half = ctx.get("half_data_norm_sq")
    if len(gaps) == 1:
        value = gaps[0]["value"]
        text = f"{_fmt(value, '.3e')}  ({gaps[0]['block']})"
        if value is not None and half and not isinstance(value, list):
            text += f" = {value / half:.2%} of ½‖f^δ‖²"
        if ctx.get("misfit_at_truth") is not None:
            text += f"; at u†{first}: {ctx['misfit_at_truth']:.3e}"
        rows.append(("Bregman gap", text))
    else:
        rows += [(f"Bregman gap {gap['block']}", _fmt(gap["value"], ".3e")) for gap in gaps]
    noise = ctx.get("noise")
    if noise:
        text = (f"{noise['kind']}, level {noise['level']:g}"
                f"{' (relative)' if noise['relative'] else ''} at the {noise['where']}")
        if ctx.get("relative_data_noise") is not None:
            text += f": ‖f^δ − N(u†)‖/‖N(u†)‖{first} = {ctx['relative_data_noise']:.3g}"
        rows.append(("noise", text))
    if metrics["psnr"] is not None or metrics["relative_error"] is not None:
        baselines = ctx.get("baselines", {})

        def compared(key: str, spec_: str, unit: str = "") -> str:
            shown = _fmt(metrics[key], spec_, unit)
            others = [f"{name} {_fmt(b[key], spec_, unit)}" for name, b in baselines.items()
                      if b.get(key) is not None]
            return shown + (f"   (baselines: {'; '.join(others)})" if others else "")

        rows += [
            ("PSNR", compared("psnr", ".2f", " dB")),
            ("SSIM", compared("ssim", ".3f")),
            ("relative error", compared("relative_error", ".3g")),
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
    fig = Figure(figsize=(size * columns, size * rows * 0.95), layout="constrained")
    return fig, np.atleast_1d(fig.subplots(rows, columns))


def _show(ax, values: np.ndarray, title: str, *, limits: tuple[float, float] | None = None,
          cmap: str = "gray", zero_line: bool = False) -> None:
    """An image for 2-D (and [C, H, W]: first channel) states, else a line/bar plot.

    ``limits`` is the colour scale of an image (default: its own range).
    """
    values = np.asarray(values, dtype=float)
    if values.ndim == 3:
        values, title = values[0], f"{title} (channel 0)"
    if values.ndim == 2:
        vmin, vmax = limits if limits is not None else (None, None)
        image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    elif values.size == 1:
        ax.bar([0], [float(values.ravel()[0])], color="C0")
        ax.set_xticks([])
    else:
        marker = "o" if values.size <= 64 else None
        ax.plot(values.ravel(), lw=0.8, marker=marker, ms=3)
        if zero_line:
            ax.axhline(0.0, color="0.5", lw=0.6)
        ax.set_xlabel("index")
    ax.set_title(title, fontsize=9)


def reconstruction_figure(spec, result, metrics: dict | None = None):
    """The figure of :func:`plot_reconstruction` (a matplotlib ``Figure``).

    Panels: ground truth u† (when known) and the reconstruction u on one colour scale that
    covers both (nothing clipped), the error u − u† (when u† is known), the data f^δ, and
    the data residual N(u) − f^δ on its own scale. For a batch: its first item.
    """
    item = ""
    if spec.problem.batch_size is not None:
        item = f" (item 1 of {spec.problem.batch_size})"
        spec, result = _first_item(spec, result)
        metrics = {key: values[0] for key, values in metrics.items()} if metrics else None
    truth = spec.ground_truth
    metrics = metrics or quality(result.u0, truth)
    estimate = np.asarray(result.u0, dtype=float).reshape(spec.input_shape)
    fitted = np.asarray(spec.network(estimate), dtype=float).reshape(spec.data.shape)
    panels = 5 if truth is not None else 3
    fig, axes = _figure(panels)
    shown = [estimate] if truth is None else [truth, estimate]
    limits = (min(float(a.min()) for a in shown), max(float(a.max()) for a in shown))
    column = 0
    if truth is not None:
        _show(axes[0], truth, "ground truth u†", limits=limits)
        column = 1
    title = "reconstruction u"
    if metrics["psnr"] is not None:
        title += f", PSNR {metrics['psnr']:.2f} dB"
    _show(axes[column], estimate, title, limits=limits)
    if truth is not None:
        error = estimate - truth
        bound = float(np.abs(error).max()) or 1.0
        _show(axes[column + 1], error, "error u − u†", limits=(-bound, bound), cmap="RdBu_r",
              zero_line=True)
        column += 1
    _show(axes[column + 1], spec.data, "data f^δ")
    residual = fitted - spec.data
    scale = float(np.linalg.norm(spec.data)) or 1.0
    _show(axes[column + 2], residual,
          f"residual N(u) − f^δ (relative {np.linalg.norm(residual) / scale:.3g})",
          cmap="RdBu_r", zero_line=True,
          limits=(-float(np.abs(residual).max()) or -1.0, float(np.abs(residual).max()) or 1.0))
    fig.suptitle(f"{spec.name}{item}: {result.solver}, {result.status}", fontsize=10)
    return fig


def plot_reconstruction(path: str | Path, spec, result, metrics: dict | None = None) -> Path:
    """Save :func:`reconstruction_figure` as PNG."""
    path = Path(path)
    reconstruction_figure(spec, result, metrics).savefig(path, dpi=110)
    return path


def _is_residual(key: str) -> bool:
    return "residual" in key or "gap" in key


def convergence_figure(result):
    """The figure of :func:`plot_convergence` (a matplotlib ``Figure``).

    Panels (log scales): the objective's distance to its last value, |F_k − F_last|/|F_last|
    (F_last is the final iterate's value, not a certified optimum); the relative residuals
    (and the gap, when the solver records one); the penalty parameters or step sizes, when
    recorded. Legends sit below the axes, off the curves. A solver without a history (CVXPY)
    gets a figure that says so.
    """
    history = {key: np.asarray(values, dtype=float) for key, values in result.history.items()
               if len(values) and np.asarray(values).dtype.kind in "fiu"}
    objective = history.pop("objective", None)
    residuals = {k: v for k, v in history.items() if _is_residual(k)}
    parameters = {k: v for k, v in history.items() if not _is_residual(k)}
    panels = [p for p in ("objective", "residuals", "parameters")
              if {"objective": objective is not None, "residuals": bool(residuals),
                  "parameters": bool(parameters)}[p]]
    fig, axes = _figure(max(len(panels), 2), size=3.6)
    if not panels:
        for ax in axes:
            ax.axis("off")
        axes[0].text(0.0, 0.5, f"{result.solver} records no per-iteration history\n"
                               f"({result.iterations} iterations, status {result.status})",
                     fontsize=10, va="center")
        return fig
    for ax in axes[len(panels):]:
        ax.axis("off")
    for ax, panel in zip(axes, panels, strict=False):
        ax.set_xlabel("iteration")
        if panel == "objective":
            last = float(objective[-1])
            distance = np.abs(objective - last) / max(abs(last), np.finfo(float).tiny)
            ax.semilogy(np.arange(1, distance.size + 1),
                        np.where(distance > 0, distance, np.nan), lw=1)
            ax.set_title(f"objective: |F − F_last| / |F_last|\n(F_last = {last:.6g})", fontsize=9)
            continue
        series = residuals if panel == "residuals" else parameters
        for key, values in series.items():
            values = values.reshape(values.shape[0], -1)
            for column in range(values.shape[1]):
                positive = np.where(values[:, column] > 0, values[:, column], np.nan)
                label = key if values.shape[1] == 1 else f"{key}[{column}]"
                ax.semilogy(np.arange(1, positive.size + 1), positive, lw=1, label=label)
        if panel == "residuals":
            has_gap = any("gap" in key for key in residuals)
            ax.set_title("relative residuals" + (" and gap" if has_gap else ""), fontsize=9)
            tol = result.stats.get("tol")
            if tol:
                ax.axhline(tol, color="0.4", ls="--", lw=0.8, label=f"tol = {tol:g}")
        else:
            ax.set_title("penalty parameters / step sizes", fontsize=9)
        ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2,
                  frameon=False)
    fig.suptitle(f"{result.solver}: {result.status} after {result.iterations} iterations",
                 fontsize=10)
    return fig


def plot_convergence(path: str | Path, result) -> Path:
    """Save :func:`convergence_figure` (the solver's per-iteration history) as PNG."""
    path = Path(path)
    convergence_figure(result).savefig(path, dpi=110)
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
