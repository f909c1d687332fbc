"""Input validation shared by every public function (one place, one wording)."""

from __future__ import annotations

import numpy as np

from bregmod.errors import ShapeError, describe_entries


def from_tensor(x, name: str):
    """A tensor-like ``x`` (``detach`` and ``numpy`` methods, e.g. a torch tensor) as a numpy
    array, without importing torch; other objects unchanged. A module is refused."""
    if callable(getattr(x, "detach", None)) and callable(getattr(x, "numpy", None)):
        x = x.detach()
        x = x.cpu() if callable(getattr(x, "cpu", None)) else x
        return x.numpy()
    if callable(getattr(x, "parameters", None)) and callable(getattr(x, "forward", None)):
        raise TypeError(
            f"{name} must be an array, got the module {type(x).__name__}: pass its weight "
            "tensor (e.g. layer.weight) or array, not the layer"
        )
    return x


def real_array(x, name: str, dtype=np.float64) -> np.ndarray:
    """Return ``x`` as a real float array of ``dtype`` (NaN and Inf allowed).

    Conversions, the same for every array that enters bregmod: a tensor-like object (with
    ``detach()`` and ``numpy()``, e.g. a torch tensor, also one that requires grad) is read
    through ``x.detach().cpu().numpy()`` — torch is never imported; integers and booleans
    become floats; every float is converted to ``dtype`` (float64 by default; weight matrices
    keep float32, see :func:`storage_dtype`). Complex arrays are refused (``ValueError``):
    dropping the imaginary part silently would change the problem.
    """
    x = from_tensor(x, name)
    try:
        raw = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array, got {type(x).__name__}: {exc}") from None
    if raw.dtype.kind == "c":
        raise ValueError(
            f"{name} is complex ({raw.dtype}); bregmod works with real arrays and will not drop "
            "the imaginary part: pass x.real (or abs(x)) explicitly"
        )
    if raw.dtype.kind not in "biufO":
        raise ValueError(f"{name} must be a numeric array, got {type(x).__name__} of dtype "
                         f"{raw.dtype}")
    try:
        return raw.astype(dtype, copy=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array, got {type(x).__name__}: {exc}") from None


def finite_array(x, name: str, dtype=np.float64) -> np.ndarray:
    """Return ``x`` as a real float array (:func:`real_array`), raising ``ValueError`` if it
    holds NaN or Inf.

    Parameters
    ----------
    x : array_like
        The input.
    name : str
        What ``x`` is, used in the message (``"data"``, ``"W of layer 2"``).
    dtype : numpy dtype, optional
        Target floating dtype (float64 by default).
    """
    arr = real_array(x, name, dtype)
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{name} contains NaN or Inf: {describe_entries(bad, arr)}")
    return arr


def storage_dtype(x) -> np.dtype:
    """The floating dtype bregmod stores the weights ``x`` in: float32 when they are float32
    (a numpy array or a tensor-like object), float64 for everything else.

    Single-precision weights are kept as given (half the memory); a computation in float64
    (the default ``solve()``, a float64 input) then uses a float64 copy, made once per operator
    and announced by a :class:`~bregmod.errors.ConversionWarning` (see
    :meth:`bregmod.operators.MatrixOperator.matrix_as`).
    """
    dtype = getattr(x, "dtype", None)
    return np.dtype(np.float32) if str(dtype) in ("float32", "torch.float32") else np.dtype(
        np.float64)


def positive_scalar(t, name: str) -> float:
    """Return ``t`` as a float, raising ``ValueError`` unless it is finite and > 0."""
    try:
        value = float(t)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {t!r}") from None
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite positive number, got {value}")
    return value


def nonnegative_scalar(t, name: str) -> float:
    """Return ``t`` as a float, raising ``ValueError`` unless it is finite and ≥ 0."""
    try:
        value = float(t)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number ≥ 0, got {t!r}") from None
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number ≥ 0, got {value}")
    return value


def as_batch(x, shape: tuple[int, ...], what: str) -> tuple[np.ndarray, bool]:
    """Return ``x`` (of ``shape`` or ``(batch, *shape)``) as a finite (batch, size) array.

    The second value says whether ``x`` carried a batch axis.
    """
    arr = finite_array(x, what)
    size = int(np.prod(shape, dtype=int))
    if arr.shape == shape:
        return arr.reshape(1, size), False
    if arr.ndim == len(shape) + 1 and arr.shape[1:] == shape:
        return arr.reshape(arr.shape[0], size), True
    raise ShapeError(f"{what} must have shape {shape} or (batch, *{shape}), got {arr.shape}")


def from_batch(x: np.ndarray, shape: tuple[int, ...], batched: bool) -> np.ndarray:
    """Inverse of :func:`as_batch`: reshape a (batch, size) array to ``shape`` (with the batch
    axis when ``batched``)."""
    return x.reshape((x.shape[0], *shape)) if batched else x.reshape(shape)
