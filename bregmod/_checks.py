"""Input validation shared by every public function (one place, one wording)."""

from __future__ import annotations

import numpy as np

from bregmod.errors import ShapeError, describe_entries


def finite_array(x, name: str, dtype=np.float64) -> np.ndarray:
    """Return ``x`` as a float array, raising ``ValueError`` if it holds NaN or Inf.

    Parameters
    ----------
    x : array_like
        The input.
    name : str
        What ``x`` is, used in the message (``"data"``, ``"W of layer 2"``).
    dtype : numpy dtype, optional
        Target floating dtype (float64 by default).
    """
    try:
        arr = np.asarray(x, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a numeric array, got {type(x).__name__}: {exc}") from None
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ValueError(f"{name} contains NaN or Inf: {describe_entries(bad, arr)}")
    return arr


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
