"""Declarative inversion specs (TOML).

A spec declares an inversion problem completely: the input, the network, the data, the
regulariser, the model (fidelity, λ, ρ) and the solver. It is read with the standard
library's :mod:`tomllib`; nothing in it is evaluated as code (the regulariser expression has
its own small grammar) and arrays are loaded with ``allow_pickle=False``. Every key is
checked: unknown keys, wrong types, missing files and inconsistent shapes raise
:class:`SpecError`, whose message names the file, the line (where it can be found) and the
key as a dotted path (``layers.0.weights.std``).

Example (the talk's ReLU perceptron with TV, the bundled ``perceptron-tv``)::

    name = "perceptron-tv"
    description = "ReLU perceptron 64x64 -> 512, phantom, Bregman fidelity + 0.015 TV (talk ex. 3)"

    [input]
    shape = [64, 64]

    [[layers]]
    type = "dense"
    out = 512
    activation = "relu"
    weights = { distribution = "normal", mean = 0.0, std = 1.0, seed = 0 }
    bias = { distribution = "normal", mean = 0.0, std = 1.0, seed = 1 }

    [data]
    ground_truth = { image = "phantom" }
    noise = { kind = "gaussian", level = 0.01, relative = true, where = "pre_activation", seed = 2 }

    [regularizer]
    expr = "0.015 * tv"
    scale = "per_output"

    [model]
    fidelity = "bregman"

    [solver]
    name = "auto"
    tol = 1e-6
    max_iter = 5000

    [quick]
    "input.shape" = [16, 16]
    "layers.0.out" = 128
    "solver.name" = "admm"

Tables and keys
---------------
``name``, ``description``
    Strings (the name defaults to the file's stem).
``[input] shape``
    Shape of u₀: ``[H, W]`` for images, ``[n]`` for vectors, ``[C, H, W]`` before a
    ``conv2d`` layer, ``[]`` for a scalar (``shallow_sum`` only).
``[[layers]]``, one table per layer, in order; ``type`` is one of

    * ``dense``: ``out``, ``activation``, ``weights`` (out × n_in), ``bias`` (out);
    * ``residual``: ``width`` (default n), ``activation``, ``weights`` (width × n),
      ``bias`` (width), ``V`` = ``"Wt"`` (default), ``"-Wt"`` or an array table (n × width);
      the input must be a vector;
    * ``conv2d``: ``channels``, ``kernel_size`` (default 3), ``stride`` (1), ``padding`` (0),
      ``activation``, ``weights`` (channels × C_in × k × k), ``bias`` (channels); the input
      must be ``[C, H, W]``;
    * ``shallow_sum``: ``units`` m, ``activation``, ``weights`` (m, or m × d for an input
      ``[d]``), ``bias`` (m), ``coefficients`` (m); the input must be a scalar or a vector.

    ``activation`` is a name of :data:`ACTIVATIONS` (``"relu"``) or a table with ``name`` and
    the parameters (``{ name = "leaky_relu", slope = 0.1 }``); the default is ``identity``.
``array tables`` (``weights``, ``bias``, ``coefficients``, ``V``)
    either ``file`` (a ``.npy`` or ``.npz``; ``key`` names the array of an ``.npz`` holding
    several), or ``values`` (a TOML array of the right size), or ``distribution`` =
    ``normal`` (``mean``, ``std``), ``uniform`` (``low``, ``high``), ``constant``
    (``value``) or ``linspace`` (``low``, ``high``: evenly spaced, in C order), with ``seed``
    (for :func:`numpy.random.default_rng`, default 0). ``scale`` multiplies the array.
``[data]``
    either ``file`` (+ ``key``): f^δ from a ``.npy``/``.npz`` array or an image file (PNG/JPEG,
    read as grey values in [0, 1]), optionally with ``ground_truth`` for the metrics;
    or ``ground_truth`` + ``noise``: f^δ generated from u†. ``ground_truth`` is
    ``{ image = "phantom" }`` (a built-in test image of :mod:`bregmod.data` at the input's
    size, square 2-D inputs only), ``{ file = ... }`` or ``{ values = [...] }``.
    ``noise`` has ``kind`` (``gaussian`` or ``uniform``, both with standard deviation s),
    ``level`` (default 0), ``relative`` (default true: s = level · RMS of the perturbed
    signal, so ‖ε‖ ≈ level · ‖signal‖), ``where`` (``output``: f^δ = N(u†) + ε;
    ``pre_activation``: f^δ = σ(W u† + b + ε) for a last ``dense``/``conv2d`` layer, which
    keeps f^δ in the range of σ), ``project`` (default true: with the Bregman fidelity, output
    noise is clipped onto the closure of dom Ψ), ``seed`` and ``copies`` (default: one data
    item; ``copies = N`` draws N independent noisy copies of N(u†), a batch of N problems).
    A data ``file`` holding an array of shape ``(N, *output_shape)``, N > 1, is a batch of N
    items.
    A batch is solved item by item in one batched solve, or on a Dask cluster with
    ``bregmod run --workers N`` (:mod:`bregmod.distributed`).
``[regularizer]``
    ``expr``: a sum of terms ``[weight *] name``, names ``tv`` (isotropic, 2-D inputs),
    ``tv_anisotropic``, ``l1``, ``squared_l2`` (½‖u‖²), ``nonnegative``, ``box(lo, hi)``;
    e.g. ``"0.015 * tv + nonnegative"``. ``scale`` = ``"none"`` (default) or
    ``"per_output"``: multiply the weights of the non-indicator terms by the number m of
    network outputs. A talk or paper that averages the fidelity over the m outputs,
    (1/m) Σ_j B_Ψ(f_j, ·), states α for that average; bregmod's fidelity is the sum, so the
    same problem has α·m, which ``per_output`` applies.
``[model]``
    ``fidelity`` (``quadratic``, the lifted model, default; or ``bregman``, one layer),
    ``lam`` (λ, default 1) and ``rho`` (ρ; default chosen by
    :class:`~bregmod.problem.Inversion`); the Bregman fidelity takes neither.
    ``layer_weights`` (``bregman`` with two or more Dense/Conv2d layers only): a number γ for
    the hidden terms or one γ_l per layer (``Inversion(..., layer_weights=…)``).
``[solver]``
    ``name`` (``auto``, ``cvxpy``, ``pdhg``, ``fista``, ``cd``, ``admm``), ``tol``,
    ``max_iter``, ``dtype`` (``float64``/``float32``) and ``options`` (a table of the named
    solver's own keyword arguments, checked against its signature).
``[quick]``
    Overrides applied by ``quick=True`` (``bregmod run --quick``): keys are dotted paths into
    the spec (``"layers.0.out"``, list entries by index), values replace the entries. Used for
    reduced sizes in tests. The same mechanism takes overrides from the caller
    (``bregmod run --set solver.tol=1e-3``).
"""

from __future__ import annotations

import copy
import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bregmod import activations as _act
from bregmod import regularizers as _rg
from bregmod._checks import real_array
from bregmod.errors import BregmodError, DomainError, ParameterError, SolverError
from bregmod.solvers import registry

__all__ = [
    "ACTIVATIONS",
    "REGULARIZERS",
    "SPEC_DIR",
    "SolverSettings",
    "Spec",
    "SpecError",
    "bundled_specs",
    "estimate_memory",
    "load_spec",
    "parse_spec",
    "resolve_spec",
]

#: Directory of the specs bundled with bregmod (package data ``bregmod/specs/*.toml``).
SPEC_DIR = Path(__file__).parent / "specs"


class SpecError(BregmodError, ValueError):
    """A spec is malformed: the message names the file, the line (if known) and the key.

    Attributes
    ----------
    source : str
        The file (or ``"<string>"``).
    line : int or None
        1-based line of the offending entry, when it could be located.
    key : str
        Dotted path of the offending entry (empty for document-level errors).
    """

    def __init__(self, message: str, source: str = "<string>", line: int | None = None,
                 key: str = "") -> None:
        where = f"{source}, line {line}" if line else source
        super().__init__(f"{where}: {key}: {message}" if key else f"{where}: {message}")
        self.source, self.line, self.key = source, line, key


ACTIVATIONS: dict[str, tuple[type, tuple[str, ...]]] = _act.NAMES
#: Regulariser names of ``[regularizer] expr`` (:data:`bregmod.regularizers.NAMES`).
REGULARIZERS: dict[str, tuple] = _rg.NAMES
"""Activation names usable in specs, with their classes and parameter names."""

# --- schema ---------------------------------------------------------------------------------

_NUMBER = (int, float)
_TYPE_NAMES = {int: "integer", float: "number", str: "string", bool: "boolean",
               list: "array", dict: "table"}

_TOP = {"name": (str,), "description": (str,), "input": (dict,), "layers": (list,),
        "data": (dict,), "regularizer": (dict,), "model": (dict,), "solver": (dict,),
        "quick": (dict,)}
_INPUT = {"shape": (list,)}
_COMMON_LAYER = {"type": (str,), "activation": (str, dict), "weights": (dict,),
                 "bias": (dict,)}
_LAYERS = {
    "dense": {**_COMMON_LAYER, "out": (int,)},
    "residual": {**_COMMON_LAYER, "width": (int,), "V": (str, dict)},
    "conv2d": {**_COMMON_LAYER, "channels": (int,), "kernel_size": (int,), "stride": (int,),
               "padding": (int,)},
    "shallow_sum": {**_COMMON_LAYER, "units": (int,), "coefficients": (dict,)},
}
_ARRAY = {"file": (str,), "key": (str,), "values": (list,), "distribution": (str,),
          "mean": _NUMBER, "std": _NUMBER, "low": _NUMBER, "high": _NUMBER, "value": _NUMBER,
          "seed": (int,), "scale": _NUMBER}
#: Keys each distribution takes (besides ``distribution``, ``seed`` and ``scale``).
_DISTRIBUTIONS = {"normal": ("mean", "std"), "uniform": ("low", "high"), "constant": ("value",),
                  "linspace": ("low", "high")}
_DATA = {"file": (str,), "key": (str,), "ground_truth": (dict,), "noise": (dict,)}
_TRUTH = {"image": (str,), "file": (str,), "key": (str,), "values": (list,)}
_NOISE = {"kind": (str,), "level": _NUMBER, "relative": (bool,), "where": (str,),
          "project": (bool,), "seed": (int,), "copies": (int,)}
_REG = {"expr": (str,), "scale": (str,)}
_MODEL = {"fidelity": (str,), "lam": _NUMBER, "rho": _NUMBER, "layer_weights": (*_NUMBER, list)}
_SOLVER = {"name": (str,), "tol": _NUMBER, "max_iter": (int,), "dtype": (str,),
           "options": (dict,)}
_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}


# --- locating keys in the text --------------------------------------------------------------

_BARE_OR_QUOTED = r'(?:[A-Za-z0-9_-]+|"[^"]*"|\'[^\']*\')'
_KEY = re.compile(rf"\s*({_BARE_OR_QUOTED}(?:\s*\.\s*{_BARE_OR_QUOTED})*)\s*=")
_HEADER = re.compile(rf"\s*(\[\[?)\s*({_BARE_OR_QUOTED}(?:\s*\.\s*{_BARE_OR_QUOTED})*)\s*\]")


def _key_parts(text: str) -> list[str]:
    """The components of a dotted TOML key, quotes removed."""
    return [part.strip().strip("\"'") for part in re.findall(_BARE_OR_QUOTED, text)]


def _outside_strings(text: str) -> Iterator[tuple[int, str]]:
    """(index, character) of ``text`` outside string literals, up to a comment."""
    i = 0
    while i < len(text):
        char = text[i]
        if char in "\"'":
            end = text.find(char, i + 1)
            i = len(text) if end < 0 else end + 1
            continue
        if char == "#":
            return
        yield i, char
        i += 1


def _bracket_balance(text: str) -> int:
    """Opened minus closed square brackets outside strings and comments."""
    return sum((char == "[") - (char == "]") for _, char in _outside_strings(text))


class _Locator:
    """The line of every key of a TOML document, by dotted path (``layers.1.weights.std``).

    Arrays of tables get an index per ``[[...]]`` header; keys of inline tables are found on
    the line of their table. Multi-line arrays and strings are not parsed: a key defined
    inside one is located at the nearest enclosing key found.
    """

    def __init__(self, text: str) -> None:
        self.lines: dict[str, int] = {}
        counts: dict[str, int] = {}
        table: list[str] = []
        depth = 0  # open brackets of a multi-line array value
        for number, line in enumerate(text.splitlines(), start=1):
            if depth > 0:
                depth += _bracket_balance(line)
                continue
            header = _HEADER.match(line)
            if header:
                parts = _key_parts(header.group(2))
                name = ".".join(parts)
                if header.group(1) == "[[":
                    counts[name] = counts.get(name, -1) + 1
                    self.lines.setdefault(name, number)
                    table = [*parts, str(counts[name])]
                else:
                    table = parts
                self.lines[".".join(table)] = number
                continue
            match = _KEY.match(line)
            if match:
                path = ".".join([*table, *_key_parts(match.group(1))])
                self.lines[path] = number
                self._inline(line[match.end():], path, number)
                depth = max(_bracket_balance(line[match.end():]), 0)

    def _inline(self, text: str, base: str, number: int) -> None:
        """Record the keys of the inline tables in ``text`` (the value of ``base``)."""
        stack, current = [base], base
        for i, char in _outside_strings(text):
            if char == "{":
                stack.append(current)
            elif char == "}" and len(stack) > 1:
                stack.pop()
            if char in "{," and len(stack) > 1:
                match = _KEY.match(text, i + 1)
                if match:
                    current = ".".join([stack[-1], *_key_parts(match.group(1))])
                    self.lines[current] = number

    def line(self, path: str) -> int | None:
        """Line of ``path``, or of its nearest ancestor that has one."""
        parts = path.split(".")
        while parts:
            found = self.lines.get(".".join(parts))
            if found:
                return found
            parts.pop()
        return None


class _Context:
    """Where a spec comes from: builds located :class:`SpecError` s and resolves files."""

    def __init__(self, text: str, source: str, base_dir: Path) -> None:
        self.text = text
        self.locator = _Locator(text)
        self.source = source
        self.base_dir = base_dir
        #: Paths set by overrides, mapped to where the override came from.
        self.overridden: dict[str, str] = {}

    def error(self, key: str, message: str) -> SpecError:
        for path, origin in self.overridden.items():
            if key == path or key.startswith(path + "."):
                if origin.startswith("quick."):
                    line = self.locator.line(origin)
                    return SpecError(f"{message} (value from [quick])", self.source, line, key)
                return SpecError(f"{message} (value from {origin})", self.source, None, key)
        return SpecError(message, self.source, self.locator.line(key) if key else None, key)

    def resolve(self, name: str, key: str) -> Path:
        path = (self.base_dir / name).resolve()
        if not path.is_file():
            raise self.error(key, f"file not found: {path}")
        return path


def _type_name(types: tuple[type, ...]) -> str:
    names = dict.fromkeys(_TYPE_NAMES[t] for t in types)
    if "number" in names:
        names.pop("integer", None)
    return " or ".join(names)


def _check_table(ctx: _Context, table: dict, allowed: dict, where: str, what: str = "") -> None:
    """Reject unknown keys and values of the wrong type (a bool is never a number)."""
    for key, value in table.items():
        path = f"{where}.{key}" if where else key
        if key not in allowed:
            owner = what or (f"[{where}]" if where else "the top level")
            raise ctx.error(path, f"unknown key {key!r} in {owner}; allowed keys: "
                                  f"{', '.join(sorted(allowed))}")
        types = allowed[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            shown = f"{type(value).__name__} {value!r}"
            raise ctx.error(path, f"expected {_type_name(types)}, got {shown}")
        if isinstance(value, float) and not np.isfinite(value):
            raise ctx.error(path, f"expected a finite number, got {value!r}")
        if key == "seed" and value < 0:
            raise ctx.error(path, f"seed must be an integer >= 0, got {value}")


def _require(ctx: _Context, table: dict, key: str, where: str):
    if key not in table:
        path = f"{where}.{key}" if where else key
        raise ctx.error(where, f"missing required key {path!r}")
    return table[key]


def _table(ctx: _Context, raw: dict, key: str, allowed: dict, where: str) -> dict:
    table = raw.get(key, {})
    _check_table(ctx, table, allowed, where)
    return table


# --- arrays ---------------------------------------------------------------------------------


def _load_array(ctx: _Context, file: str, array_key: str | None, key: str) -> np.ndarray:
    """A finite float array from a ``.npy``/``.npz`` file or a grey-value image in [0, 1]."""
    path = ctx.resolve(file, f"{key}.file")
    suffix = path.suffix.lower()
    if array_key is not None and suffix != ".npz":
        raise ctx.error(f"{key}.key", f"'key' selects an array of an .npz file, not {path.name}")
    try:
        if suffix == ".npy":
            array = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as archive:
                names = list(archive.files)
                if array_key is None and len(names) != 1:
                    raise ctx.error(f"{key}.file",
                                    f"{path.name} holds {names}; name one with 'key'")
                name = names[0] if array_key is None else array_key
                if name not in names:
                    raise ctx.error(f"{key}.key", f"{path.name} has no array {name!r}; "
                                                  f"it holds {names}")
                array = archive[name]
        elif suffix in _IMAGE_SUFFIXES:
            try:
                from PIL import Image
            except ImportError:
                raise ctx.error(f"{key}.file", "reading images needs Pillow: "
                                               "pip install 'bregmod[plot]'") from None
            with Image.open(path) as image:
                array = np.asarray(image.convert("L"), dtype=float) / 255.0
        else:
            images = ", ".join(sorted(_IMAGE_SUFFIXES))
            raise ctx.error(f"{key}.file", f"unsupported file type {path.suffix!r}; use .npy, "
                                           f".npz or an image ({images})")
        array = real_array(array, f"the array in {file}")
    except SpecError:
        raise
    except (OSError, ValueError, TypeError) as exc:
        raise ctx.error(f"{key}.file", f"cannot read {path.name}: {exc}") from None
    if not np.all(np.isfinite(array)):
        raise ctx.error(f"{key}.file", f"{path.name} contains NaN or Inf")
    return array


def _fit_shape(ctx: _Context, array: np.ndarray, shape: tuple[int, ...], key: str,
               origin: str) -> np.ndarray:
    """``array`` in ``shape``: as it is, or flattened/unflattened (e.g. an 8×8 image for an
    input of shape [64], or a flat list for a matrix), or with singleton axes dropped.

    Two different multi-dimensional shapes of the same size (a transposed matrix) are an
    error, not reshaped.
    """
    if array.shape == shape:
        return array
    same_size = array.size == int(np.prod(shape))
    flat = array.ndim <= 1 or len(shape) <= 1
    squeezed = array.squeeze().shape == tuple(d for d in shape if d != 1)
    if same_size and (flat or squeezed):
        return array.reshape(shape)
    raise ctx.error(key, f"{origin} has shape {array.shape} ({array.size} entries), "
                         f"expected shape {shape}")


def _values(ctx: _Context, values: list, shape: tuple[int, ...], key: str) -> np.ndarray:
    try:
        array = np.array(values, dtype=float)
    except (TypeError, ValueError):
        raise ctx.error(key, "values must be a (nested) array of numbers of equal lengths") \
            from None
    if not np.all(np.isfinite(array)):
        raise ctx.error(key, "values contain NaN or Inf")
    return _fit_shape(ctx, array, shape, key, "values")


def _array(ctx: _Context, table: dict, shape: tuple[int, ...], key: str) -> np.ndarray:
    """An array of ``shape`` from a file, from ``values`` or drawn from a distribution."""
    _check_table(ctx, table, _ARRAY, key, f"the array table {key}")
    sources = [name for name in ("file", "values", "distribution") if name in table]
    if len(sources) != 1:
        raise ctx.error(key, "give exactly one of 'file', 'values' or 'distribution'"
                             + (f", not {' and '.join(sources)}" if sources else ""))
    drawn = {"mean", "std", "low", "high", "value", "seed"} & set(table)
    if "distribution" not in table and drawn:
        raise ctx.error(f"{key}.{sorted(drawn)[0]}", "applies only with 'distribution'")
    if "key" in table and "file" not in table:
        raise ctx.error(f"{key}.key", "'key' applies only with 'file'")
    scale = float(table.get("scale", 1.0))
    if "file" in table:
        array = _load_array(ctx, table["file"], table.get("key"), key)
        return scale * _fit_shape(ctx, array, shape, f"{key}.file", f"the array in {table['file']}")
    if "values" in table:
        return scale * _values(ctx, table["values"], shape, f"{key}.values")
    name = table["distribution"]
    if name not in _DISTRIBUTIONS:
        raise ctx.error(f"{key}.distribution", f"unknown distribution {name!r}; use "
                                               f"{', '.join(_DISTRIBUTIONS)}")
    params = _DISTRIBUTIONS[name]
    unexpected = sorted(drawn - {"seed", *params})
    if unexpected:
        raise ctx.error(f"{key}.{unexpected[0]}", f"does not apply to distribution {name!r} "
                                                  f"(it takes {', '.join(params)})")
    rng = np.random.default_rng(table.get("seed", 0))  # seed >= 0 checked by _check_table
    if name == "normal":
        std = float(table.get("std", 1.0))
        if std < 0:
            raise ctx.error(f"{key}.std", f"std must be >= 0, got {std}")
        array = rng.normal(float(table.get("mean", 0.0)), std, size=shape)
    elif name == "uniform":
        low, high = float(table.get("low", -1.0)), float(table.get("high", 1.0))
        if low > high:
            raise ctx.error(f"{key}.low", f"low = {low} exceeds high = {high}")
        array = rng.uniform(low, high, size=shape)
    elif name == "constant":
        array = np.full(shape, float(table.get("value", 0.0)))
    else:
        array = np.linspace(float(table.get("low", 0.0)), float(table.get("high", 1.0)),
                            int(np.prod(shape))).reshape(shape)
    return scale * array


# --- network --------------------------------------------------------------------------------


def _activation(ctx: _Context, value, key: str) -> _act.Activation:
    if isinstance(value, str):
        name, params = value, {}
    else:
        params = dict(value)
        name = params.pop("name", None)
        if not isinstance(name, str):
            raise ctx.error(key, "an activation table needs a string 'name'")
    if name not in ACTIVATIONS:
        raise ctx.error(key, f"unknown activation {name!r}; available: {', '.join(ACTIVATIONS)}")
    cls, allowed = ACTIVATIONS[name]
    for param, number in params.items():
        if param not in allowed:
            accepted = f"its parameters: {', '.join(allowed)}" if allowed else "it has none"
            raise ctx.error(f"{key}.{param}", f"activation {name!r} has no parameter "
                                              f"{param!r} ({accepted})")
        if not isinstance(number, _NUMBER) or isinstance(number, bool):
            raise ctx.error(f"{key}.{param}", f"expected number, got {number!r}")
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise ctx.error(key, str(exc)) from None


def _positive(ctx: _Context, table: dict, name: str, key: str, default: int | None = None,
              minimum: int = 1) -> int:
    value = table.get(name, default) if default is not None else _require(ctx, table, name, key)
    if value < minimum:
        raise ctx.error(f"{key}.{name}", f"must be >= {minimum}, got {value}")
    return value


def _bias(ctx: _Context, table: dict, size: int, key: str) -> np.ndarray | None:
    return _array(ctx, table["bias"], (size,), f"{key}.bias") if "bias" in table else None


def _dense(ctx: _Context, table: dict, shape: tuple[int, ...], key: str):
    from bregmod.network import Dense

    out = _positive(ctx, table, "out", key)
    n = int(np.prod(shape))
    W = _array(ctx, _require(ctx, table, "weights", key), (out, n), f"{key}.weights")
    activation = _activation(ctx, table.get("activation", "identity"), f"{key}.activation")
    return Dense(W, _bias(ctx, table, out, key), activation=activation, in_shape=shape)


def _residual(ctx: _Context, table: dict, shape: tuple[int, ...], key: str):
    from bregmod.network import Residual

    if len(shape) != 1:
        raise ctx.error(key, f"a residual layer acts on vectors, but its input has shape {shape}; "
                             "declare the input as [n]")
    n = shape[0]
    width = _positive(ctx, table, "width", key, default=n)
    W = _array(ctx, _require(ctx, table, "weights", key), (width, n), f"{key}.weights")
    V = table.get("V", "Wt")
    if V == "Wt":
        V = None
    elif V == "-Wt":
        V = -W.T
    elif isinstance(V, dict):
        V = _array(ctx, V, (n, width), f"{key}.V")
    else:
        raise ctx.error(f"{key}.V", f"V must be 'Wt', '-Wt' or an array table, got {V!r}")
    activation = _activation(ctx, table.get("activation", "identity"), f"{key}.activation")
    return Residual(W, _bias(ctx, table, width, key), activation=activation, V=V)


def _conv2d(ctx: _Context, table: dict, shape: tuple[int, ...], key: str):
    from bregmod.network import Conv2d

    if len(shape) != 3:
        raise ctx.error(key, f"a conv2d layer needs an input of shape [C, H, W], got {shape}; "
                             "declare a grey image as [1, H, W]")
    channels = _positive(ctx, table, "channels", key)
    size = _positive(ctx, table, "kernel_size", key, default=3)
    kernel = _array(ctx, _require(ctx, table, "weights", key), (channels, shape[0], size, size),
                    f"{key}.weights")
    activation = _activation(ctx, table.get("activation", "identity"), f"{key}.activation")
    return Conv2d(kernel, _bias(ctx, table, channels, key), activation=activation, in_shape=shape,
                  stride=_positive(ctx, table, "stride", key, default=1),
                  padding=_positive(ctx, table, "padding", key, default=0, minimum=0))


def _shallow_sum(ctx: _Context, table: dict, shape: tuple[int, ...], key: str):
    from bregmod.network import ShallowSum

    if len(shape) > 1:
        raise ctx.error(key, f"a shallow_sum layer needs a scalar ([]) or vector ([d]) input, "
                             f"got shape {shape}")
    m = _positive(ctx, table, "units", key)
    w = _array(ctx, _require(ctx, table, "weights", key), (m, *shape), f"{key}.weights")
    b = _bias(ctx, table, m, key)
    c = _array(ctx, _require(ctx, table, "coefficients", key), (m,), f"{key}.coefficients")
    activation = _activation(ctx, table.get("activation", "identity"), f"{key}.activation")
    return ShallowSum(w, np.zeros(m) if b is None else b, c, activation=activation)


_LAYER_BUILDERS = {"dense": _dense, "residual": _residual, "conv2d": _conv2d,
                   "shallow_sum": _shallow_sum}


def _network(ctx: _Context, layers: list, input_shape: tuple[int, ...]):
    from bregmod.network import Sequential

    if not layers:
        raise ctx.error("layers", "a spec needs at least one [[layers]] table")
    built = []
    shape = input_shape
    for index, table in enumerate(layers):
        key = f"layers.{index}"
        if not isinstance(table, dict):
            raise ctx.error(key, f"each layer must be a table, got {table!r}")
        kind = _require(ctx, table, "type", key)
        if kind not in _LAYER_BUILDERS:
            raise ctx.error(f"{key}.type", f"unknown layer type {kind!r}; use "
                                           f"{', '.join(_LAYER_BUILDERS)}")
        _check_table(ctx, table, _LAYERS[kind], key, f"a {kind} layer ({key})")
        try:
            layer = _LAYER_BUILDERS[kind](ctx, table, shape, key)
        except SpecError:
            raise
        except (ValueError, TypeError) as exc:
            raise ctx.error(key, str(exc)) from None
        built.append(layer)
        shape = tuple(layer.out_shape)
    return built[0] if len(built) == 1 else Sequential(*built)


def _layer_sizes(layers: list, input_shape: tuple[int, ...]) -> Iterator[tuple[str, int, int, int]]:
    """(key, weight entries, output size, dense Gram side) per layer, read from the raw tables.

    Stops at the first table it cannot read (``_network`` reports the error later).
    """
    shape = input_shape
    for index, table in enumerate(layers):
        try:
            kind, n = table["type"], int(np.prod(shape, dtype=object))
            if kind == "dense":
                m = int(table["out"])
                yield f"layers.{index}.out", m * n, m, m
                shape = (m,)
            elif kind == "residual":
                width = int(table.get("width", n))
                yield f"layers.{index}.width", 2 * width * n, width, width
            elif kind == "conv2d":
                c_in, height, width = shape
                k, stride = int(table.get("kernel_size", 3)), int(table.get("stride", 1))
                padding = int(table.get("padding", 0))
                channels = int(table["channels"])
                shape = (channels, (height + 2 * padding - k) // stride + 1,
                         (width + 2 * padding - k) // stride + 1)
                yield f"layers.{index}.channels", channels * c_in * k * k, int(np.prod(shape)), 0
            elif kind == "shallow_sum":
                units = int(table["units"])
                yield f"layers.{index}.units", units * (n + 2), units, units
                shape = ()
            else:
                return
        except (KeyError, TypeError, ValueError, AttributeError):
            return


def _available_memory() -> int | None:
    """Bytes of memory available to a new allocation (``MemAvailable``), None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def estimate_memory(raw: Mapping[str, Any]) -> tuple[int, str]:
    """Rough peak memory (bytes) of building and solving a spec, before anything is allocated.

    Counted in float64: each weight array three times (as drawn, in the layer, in the solver's
    copy), the solver's working set of about 20 vectors of the size of all lifted states,
    and, for solvers that form it (``auto``, ``admm``, ``cvxpy``), four dense m × m Gram or
    factor matrices of the widest dense layer. The estimate errs low for ``cvxpy`` on large
    problems; it exists to refuse absurd sizes before they are allocated.

    Returns
    -------
    (int, str)
        The estimate in bytes and the key of the entry that dominates it.
    """
    shape = tuple(raw.get("input", {}).get("shape", ()))
    n_in = int(np.prod(shape, dtype=object))
    layers = raw.get("layers", [])
    sizes = list(_layer_sizes(layers if isinstance(layers, list) else [], shape))
    solver = raw.get("solver", {}).get("name", "auto")
    gram = solver in ("auto", "admm", "cvxpy")
    weights = sum(w for _, w, _, _ in sizes)
    states = n_in + sum(m for _, _, m, _ in sizes)
    square = max((g * g for *_, g in sizes), default=0) if gram else 0
    total = 8 * (3 * weights + 20 * states + 4 * square)
    parts = [(3 * w + 20 * m + (4 * g * g if gram else 0), key) for key, w, m, g in sizes]
    widest = max((m for _, _, m, _ in sizes), default=0)
    key = max(parts)[1] if parts and widest > n_in else "input.shape"
    return total, key


def _check_memory(ctx: _Context, raw: dict) -> None:
    """Refuse a spec whose estimated memory exceeds what is available (SpecError)."""
    available = _available_memory()
    if available is None:
        return
    needed, key = estimate_memory(raw)
    if needed > available:
        raise ctx.error(key, f"this spec needs about {needed / 2**30:.3g} GiB of memory (weights, "
                             f"data and the solver's working set, estimated before allocating) "
                             f"but {available / 2**30:.3g} GiB are available; reduce the sizes, "
                             "or skip this check (check_memory=False, bregmod --no-memory-check)")


def _input_shape(ctx: _Context, raw: dict) -> tuple[int, ...]:
    table = _require(ctx, raw, "input", "")
    _check_table(ctx, table, _INPUT, "input")
    value = _require(ctx, table, "shape", "input")
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value):
        raise ctx.error("input.shape", f"shape must be a list of positive integers, got {value!r}")
    return tuple(value)


# --- data -----------------------------------------------------------------------------------


def _ground_truth(ctx: _Context, table: dict, shape: tuple[int, ...]) -> np.ndarray:
    key = "data.ground_truth"
    _check_table(ctx, table, _TRUTH, key)
    sources = [name for name in ("image", "file", "values") if name in table]
    if len(sources) != 1:
        raise ctx.error(key, "give exactly one of 'image', 'file' or 'values'")
    if "key" in table and "file" not in table:
        raise ctx.error(f"{key}.key", "'key' applies only with 'file'")
    if "image" in table:
        from bregmod.data import load_image

        image = shape[1:] if shape[:1] == (1,) else shape  # a grey [1, H, W] input
        if len(image) != 2 or image[0] != image[1]:
            raise ctx.error(f"{key}.image", f"built-in images are square 2-D ([H, H] or "
                                            f"[1, H, H]), but the input shape is {shape}")
        try:
            return load_image(table["image"], image[0]).reshape(shape)
        except (ValueError, ImportError) as exc:
            raise ctx.error(f"{key}.image", str(exc)) from None
    if "file" in table:
        truth = _load_array(ctx, table["file"], table.get("key"), key)
        return _fit_shape(ctx, truth, shape, f"{key}.file", "the ground truth")
    return _values(ctx, table["values"], shape, f"{key}.values")


def _noisy(ctx: _Context, noise: dict, network, truth: np.ndarray, fidelity: str):
    """f^δ from u† and the noise table; also the noise description for reports."""
    from bregmod.network import Conv2d, Dense

    key = "data.noise"
    _check_table(ctx, noise, _NOISE, key)
    level = float(noise.get("level", 0.0))
    if level < 0:
        raise ctx.error(f"{key}.level", f"level must be >= 0, got {level}")
    kind = noise.get("kind", "gaussian")
    if kind not in ("gaussian", "uniform"):
        raise ctx.error(f"{key}.kind", f"unknown noise kind {kind!r}; use 'gaussian' or 'uniform'")
    where = noise.get("where", "output")
    last = network.layers[-1]
    if where == "pre_activation":
        if not isinstance(last, (Dense, Conv2d)) or isinstance(last.activation, _act.Identity):
            raise ctx.error(f"{key}.where", "'pre_activation' noise needs a last dense or conv2d "
                                            "layer with an activation")
        previous = network.states(truth)[-2].reshape(1, -1)
        signal = (last.operator.apply(previous) + last.bias)[0]
    elif where == "output":
        signal = np.asarray(network(truth), dtype=float).ravel()
    else:
        raise ctx.error(f"{key}.where", f"where must be 'output' or 'pre_activation', "
                                        f"got {where!r}")
    relative = noise.get("relative", True)
    std = level * (float(np.sqrt(np.mean(signal**2))) if relative else 1.0)
    rng = np.random.default_rng(noise.get("seed", 0))
    copies = noise.get("copies")
    if copies is not None and copies < 1:
        raise ctx.error(f"{key}.copies", f"copies must be >= 1, got {copies}")
    shape = signal.shape if copies is None else (copies, *signal.shape)
    if kind == "gaussian":
        eps = std * rng.standard_normal(shape)
    else:
        eps = std * np.sqrt(3.0) * rng.uniform(-1.0, 1.0, shape)
    noisy = signal + eps
    projected = False
    if where == "pre_activation":
        data = last.activation.prox(noisy)
    else:
        data = noisy
        if fidelity == "bregman" and noise.get("project", True):
            data = last.activation.project_domain(noisy)
            projected = True
    description = {"kind": kind, "level": level, "relative": relative, "where": where,
                   "std": std, "seed": noise.get("seed", 0), "projected": projected,
                   "copies": copies}
    batch = () if copies is None else (copies,)
    return data.reshape(batch + tuple(network.out_shape)), description


def _data(ctx: _Context, raw: dict, network, fidelity: str):
    """(f^δ, u† or None, N(u†) or None, noise description or None)."""
    table = _require(ctx, raw, "data", "")
    _check_table(ctx, table, _DATA, "data")
    shape = tuple(network.in_shape)
    truth = _ground_truth(ctx, table["ground_truth"], shape) if "ground_truth" in table else None
    if "file" in table:
        if "noise" in table:
            raise ctx.error("data.noise", "noise applies to generated data, not to data read "
                                          "from 'file'")
        data = _load_array(ctx, table["file"], table.get("key"), "data")
        shape = tuple(network.out_shape)
        batch = data.ndim == len(shape) + 1 and data.shape[1:] == shape and len(data) > 1
        if not batch:
            data = _fit_shape(ctx, data, shape, "data.file", "the data (the network's output)")
        clean = None if truth is None else np.asarray(network(truth), dtype=float)
        return data, truth, clean, None
    if "key" in table:
        raise ctx.error("data.key", "'key' applies only with 'file'")
    if truth is None:
        raise ctx.error("data", "give 'file' (measured data) or 'ground_truth' (+ 'noise') to "
                                "generate data")
    clean = np.asarray(network(truth), dtype=float)
    data, noise = _noisy(ctx, table.get("noise", {}), network, truth, fidelity)
    return data, truth, clean, noise


# --- regulariser ----------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)|"
                    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[-*+(),]))")


def _tokens(ctx: _Context, text: str, key: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text.rstrip()):
        match = _TOKEN.match(text, position)
        if not match:
            raise ctx.error(key, f"cannot parse {text!r} at {text[position:].strip()!r}")
        kind = match.lastgroup
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


def _parse_terms(ctx: _Context, text: str, key: str) -> list[tuple[float, str, tuple]]:
    """``"0.015 * tv + box(0, 1)"`` → [(0.015, "tv", ()), (1.0, "box", (0.0, 1.0))].

    Grammar: expr = term ("+" term)*; term = [number "*"] name ["(" number ("," number)* ")"]
    ["*" number]; numbers may carry a leading "-".
    """
    tokens = _tokens(ctx, text, key)
    position = 0

    def peek(token: tuple[str, str]) -> bool:
        return position < len(tokens) and tokens[position] == token

    def take(kind: str, value: str | None, expected: str) -> str:
        nonlocal position
        if position >= len(tokens) or tokens[position][0] != kind or (
            value is not None and tokens[position][1] != value
        ):
            found = repr(tokens[position][1]) if position < len(tokens) else "the end"
            raise ctx.error(key, f"cannot parse {text!r}: expected {expected}, found {found}")
        position += 1
        return tokens[position - 1][1]

    def number() -> float:
        sign = -1.0 if peek(("op", "-")) else 1.0
        if sign < 0:
            take("op", "-", "'-'")
        text_number = take("number", None, "a number")
        value = float(text_number)
        if not np.isfinite(value):
            raise ctx.error(key, f"the number {text_number} in {text!r} overflows to infinity "
                                 "(weights must be finite)")
        return sign * value

    terms: list[tuple[float, str, tuple]] = []
    while True:
        weight = 1.0
        if peek(("op", "-")) or (position < len(tokens) and tokens[position][0] == "number"):
            weight = number()
            take("op", "*", "'*' after the weight")
        name = take("name", None, "a term name")
        if name not in REGULARIZERS:
            raise ctx.error(key, f"unknown regulariser {name!r} in {text!r}; available: "
                                 f"{', '.join(REGULARIZERS)}")
        args: tuple[float, ...] = ()
        if peek(("op", "(")):
            take("op", "(", "'('")
            args = (number(),)
            while peek(("op", ",")):
                take("op", ",", "','")
                args += (number(),)
            take("op", ")", "')'")
        if peek(("op", "*")):
            take("op", "*", "'*'")
            weight *= number()
        parameters = REGULARIZERS[name][1]
        if len(args) != len(parameters):
            usage = f"{name}({', '.join(parameters)})" if parameters else f"{name} (no arguments)"
            raise ctx.error(key, f"{name} takes {len(parameters)} argument(s): {usage} "
                                 f"(in {text!r})")
        if not 0 < weight < np.inf:
            hint = ("a negative weight makes J non-convex" if weight < 0
                    else "drop the term instead of giving it weight 0" if weight == 0
                    else "weights must be finite")
            raise ctx.error(key, f"the weight of {name} must be finite and > 0, got {weight:g} "
                                 f"({hint})")
        terms.append((weight, name, args))
        if position == len(tokens):
            return terms
        take("op", "+", "'+' between terms")


def _regularizer(ctx: _Context, raw: dict, input_shape: tuple[int, ...], n_out: int):
    """(J with its weights, or None; the expression as written with the scale applied)."""
    table = _table(ctx, raw, "regularizer", _REG, "regularizer")
    if not table:
        return None, "none"
    text = _require(ctx, table, "expr", "regularizer")
    scale = table.get("scale", "none")
    if scale not in ("none", "per_output"):
        raise ctx.error("regularizer.scale", f"scale must be 'none' or 'per_output', "
                                             f"got {scale!r}")
    factor = float(n_out) if scale == "per_output" else 1.0
    reg, parts = None, []
    for weight, name, args in _parse_terms(ctx, text, "regularizer.expr"):
        try:
            base = _rg.by_name(name, input_shape, args)
        except ValueError as exc:
            raise ctx.error("regularizer.expr", str(exc)) from None
        if not isinstance(base, _rg.Box):  # an indicator's weight does not matter
            weight *= factor
            if not np.isfinite(weight):
                raise ctx.error("regularizer.scale", f"the weight of {name} times m = "
                                                     f"{factor:g} outputs overflows to infinity")
        term = weight * base if weight != 1.0 else base
        reg = term if reg is None else reg + term
        shown = f"{name}({', '.join(f'{a:g}' for a in args)})" if args else name
        parts.append(shown if weight == 1.0 else f"{weight:g}·{shown}")
    return reg, " + ".join(parts)


# --- model and solver -----------------------------------------------------------------------


@dataclass(frozen=True)
class SolverSettings:
    """The ``[solver]`` table: how :meth:`~bregmod.problem.Inversion.solve` is called."""

    name: str = "auto"
    tol: float = 1e-6
    max_iter: int | None = None
    dtype: str = "float64"
    options: dict[str, Any] = field(default_factory=dict)

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :meth:`~bregmod.problem.Inversion.solve`."""
        return {"solver": self.name, "tol": self.tol, "max_iter": self.max_iter,
                "dtype": np.dtype(self.dtype), **self.options}


def _solver_names() -> tuple[str, ...]:
    return registry.names()


def _solver_parameters(ctx: _Context, name: str) -> set[str]:
    """Keyword arguments of the named solver's ``solve`` beyond the common ones."""
    try:
        return registry.options(name)
    except SolverError:
        raise ctx.error("solver.name", f"solver {name!r} is not available in this installation "
                                       f"(module {registry.MODULES[name]} is missing)") from None


def _solver(ctx: _Context, raw: dict) -> SolverSettings:
    table = _table(ctx, raw, "solver", _SOLVER, "solver")
    name = table.get("name", "auto")
    names = _solver_names()
    if name not in names:
        raise ctx.error("solver.name", f"unknown solver {name!r}; use {', '.join(names)}")
    tol = float(table.get("tol", 1e-6))
    if not tol > 0:
        raise ctx.error("solver.tol", f"tol must be > 0, got {tol}")
    max_iter = table.get("max_iter")
    if max_iter is not None and max_iter < 1:
        raise ctx.error("solver.max_iter", f"max_iter must be >= 1, got {max_iter}")
    dtype = table.get("dtype", "float64")
    if dtype not in ("float64", "float32"):
        raise ctx.error("solver.dtype", f"dtype must be 'float64' or 'float32', got {dtype!r}")
    options = table.get("options", {})
    if options:
        if name == "auto":
            raise ctx.error("solver.options", "options belong to one solver; name it in "
                                              "solver.name instead of 'auto'")
        allowed = _solver_parameters(ctx, name)
        for option in options:
            if option not in allowed:
                raise ctx.error(f"solver.options.{option}",
                                f"solver {name!r} has no option {option!r}; its options: "
                                f"{', '.join(sorted(allowed)) or 'none'}")
    return SolverSettings(name, tol, max_iter, dtype, dict(options))


def _model(ctx: _Context, raw: dict) -> tuple[str, float, float | None, Any]:
    """(fidelity, λ, ρ, layer weights) of ``[model]``, λ and ρ checked by the rule of
    :func:`bregmod.problem.model_weights` (ρ stays None when not given:
    :class:`~bregmod.problem.Inversion` chooses it); the layer weights are a number, a list of
    numbers or None (their values are checked by ``Inversion.with_layer_weights``)."""
    from bregmod.problem import model_weights

    table = _table(ctx, raw, "model", _MODEL, "model")
    fidelity = table.get("fidelity", "quadratic")
    try:
        lam, rho = model_weights(fidelity, table.get("lam"), table.get("rho"))
    except ParameterError as exc:
        raise ctx.error(f"model.{exc.parameter}", str(exc)) from None
    layer_weights = table.get("layer_weights")
    if isinstance(layer_weights, list) and not all(
        isinstance(w, _NUMBER) and not isinstance(w, bool) for w in layer_weights
    ):
        raise ctx.error("model.layer_weights", "expected a number or a list of numbers (one "
                                               f"γ_l per layer), got {layer_weights!r}")
    return fidelity, lam, None if table.get("rho") is None else rho, layer_weights


# --- the spec -------------------------------------------------------------------------------


@dataclass
class Spec:
    """A fully built inversion problem declared by a spec file.

    Attributes
    ----------
    name, description : str
        Identification (the name defaults to the file's stem).
    source : str
        The file the spec came from (``"<string>"`` for text).
    network : Network
        The declared network.
    problem : Inversion
        The inversion problem (network, data, regulariser, λ, ρ, fidelity).
    data : ndarray
        f^δ in the network's output shape, or a batch ``(N, *output_shape)``.
    ground_truth : ndarray or None
        u† in the input shape, when known.
    clean_data : ndarray or None
        N(u†), when u† is known.
    noise : dict or None
        How f^δ was generated (kind, level, relative, where, std, seed, projected).
    regularizer : str
        J as applied, e.g. ``"7.68·tv"`` (weights after ``scale``), or ``"none"``.
    solver : SolverSettings
        How to call :meth:`Inversion.solve <bregmod.problem.Inversion.solve>`.
    quick : bool
        Whether the ``[quick]`` overrides were applied.
    overrides : dict
        The caller's overrides that were applied.
    """

    name: str
    description: str
    source: str
    network: Any
    problem: Any
    data: np.ndarray
    ground_truth: np.ndarray | None
    clean_data: np.ndarray | None
    noise: dict[str, Any] | None
    regularizer: str
    solver: SolverSettings
    quick: bool = False
    overrides: dict[str, Any] = field(default_factory=dict)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of u₀."""
        return tuple(self.network.in_shape)

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Shape of N(u₀) and of the data."""
        return tuple(self.network.out_shape)


def _read_tables(
    ctx: _Context, top: dict, quick: bool, overrides: Mapping[str, Any] | None
) -> dict:
    """Parse ``ctx.text`` as TOML, check its top-level keys against ``top``, and apply the
    ``[quick]`` table (when ``quick``) and then the command-line ``overrides``."""
    try:
        raw = tomllib.loads(ctx.text)
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"invalid TOML: {exc}", ctx.source) from None
    _check_table(ctx, raw, top, "")
    quick_raw = _apply_overrides(ctx, raw, raw.get("quick", {}), "quick")
    if quick:
        raw = quick_raw
    else:
        ctx.overridden.clear()
    if overrides:
        raw = _apply_overrides(ctx, raw, overrides, "the command line")
    _check_table(ctx, raw, top, "")
    return raw


def _apply_overrides(ctx: _Context, raw: dict, overrides: Mapping[str, Any], origin: str) -> dict:
    """A copy of ``raw`` with each dotted path of ``overrides`` replaced (parents must exist)."""
    raw = copy.deepcopy(raw)
    for dotted, value in overrides.items():
        where = f"{origin}.{dotted}" if origin == "quick" else origin
        parts = dotted.split(".")
        node: Any = raw
        try:
            for part in parts[:-1]:
                node = node[int(part)] if isinstance(node, list) else node[part]
            if isinstance(node, list):
                node[int(parts[-1])] = value
            elif isinstance(node, dict):
                node[parts[-1]] = value
            else:
                raise TypeError
        except (KeyError, IndexError, ValueError, TypeError):
            message = f"override {dotted!r} does not name an entry of the spec"
            if origin == "quick":
                raise ctx.error(where, message) from None
            raise SpecError(f"{message} (from {origin})", ctx.source) from None
        ctx.overridden[dotted] = where
    return raw


def parse_spec(
    text: str,
    base_dir: str | Path = ".",
    source: str = "<string>",
    quick: bool = False,
    overrides: Mapping[str, Any] | None = None,
    check_memory: bool = True,
) -> Spec:
    """Build a :class:`Spec` from TOML text (see the module docstring for the format).

    Parameters
    ----------
    text : str
        The TOML document.
    base_dir : path
        Directory that relative file names are resolved against.
    source : str
        Name used in error messages (the file name).
    quick : bool
        Apply the ``[quick]`` overrides (reduced sizes). They are checked either way.
    overrides : mapping, optional
        Further dotted-path overrides (``{"solver.tol": 1e-3}``), applied after ``[quick]``.
    check_memory : bool
        Refuse, before allocating anything, a spec whose :func:`estimate_memory` exceeds the
        memory available on this machine.

    Returns
    -------
    Spec

    Raises
    ------
    SpecError
        On any malformed, unknown, missing or inconsistent entry, when the data lie
        outside dom Ψ for the Bregman fidelity, and when the spec would need more memory
        than is available.
    """
    ctx = _Context(text, source, Path(base_dir))
    raw = _read_tables(ctx, _TOP, quick, overrides)

    input_shape = _input_shape(ctx, raw)
    if check_memory:
        _check_memory(ctx, raw)
    network = _network(ctx, _require(ctx, raw, "layers", ""), input_shape)
    fidelity, lam, rho, layer_weights = _model(ctx, raw)
    data, truth, clean, noise = _data(ctx, raw, network, fidelity)
    reg, reg_text = _regularizer(ctx, raw, input_shape, int(np.prod(network.out_shape)))
    solver = _solver(ctx, raw)

    from bregmod.problem import Inversion

    try:
        problem = Inversion(network, data, reg=reg, lam=lam, rho=rho, fidelity=fidelity)
    except DomainError as exc:
        raise ctx.error("data", f"{exc}; generate the data with noise.where = "
                                "'pre_activation' or noise.project = true") from None
    except (ValueError, TypeError) as exc:
        raise ctx.error("model", str(exc)) from None
    if layer_weights is not None:
        try:
            problem = problem.with_layer_weights(layer_weights)
        except ValueError as exc:
            raise ctx.error("model.layer_weights", str(exc)) from None
    return Spec(
        name=raw.get("name", Path(source).stem),
        description=raw.get("description", ""),
        source=source,
        network=network,
        problem=problem,
        data=data,
        ground_truth=truth,
        clean_data=clean,
        noise=noise,
        regularizer=reg_text,
        solver=solver,
        quick=quick,
        overrides=dict(overrides or {}),
    )


def load_spec(path: str | Path, quick: bool = False,
              overrides: Mapping[str, Any] | None = None, check_memory: bool = True) -> Spec:
    """Read and build the spec file at ``path`` (see :func:`parse_spec`).

    Raises
    ------
    SpecError
        When the file is missing or unreadable, or the spec is malformed.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read spec file: {exc}", str(path)) from None
    return parse_spec(text, base_dir=path.parent, source=str(path), quick=quick,
                      overrides=overrides, check_memory=check_memory)


def bundled_specs() -> dict[str, tuple[Path, str]]:
    """The specs shipped with bregmod: name → (path, description), sorted by name."""
    found = {}
    for path in sorted(SPEC_DIR.glob("*.toml")):
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        found[path.stem] = (path, raw.get("description", ""))
    return found


def resolve_spec(name_or_path: str | Path) -> Path:
    """The spec file ``name_or_path`` names: an existing file, else a bundled spec's name.

    Raises
    ------
    SpecError
        When it is neither (the message lists the bundled specs).
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    bundled = bundled_specs()
    name = path.name.removesuffix(".toml")
    if path.parent == Path(".") and name in bundled:
        return bundled[name][0]
    if path.is_dir():
        raise SpecError("is a directory, not a spec file (give the .toml file inside it)",
                        str(name_or_path))
    raise SpecError(f"no spec file {str(name_or_path)!r} and no bundled spec of that name; "
                    f"bundled specs: {', '.join(bundled) or 'none'}", str(name_or_path))
