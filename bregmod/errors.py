"""Exceptions raised by bregmod.

Every error carries a message that says what was wrong and, where possible, what to change.
"""

from __future__ import annotations


class BregmodError(Exception):
    """Base class of all bregmod-specific errors."""


class ShapeError(BregmodError, ValueError):
    """Inconsistent shapes (between layers, between data and network, ...)."""


class DomainError(BregmodError, ValueError):
    """A value lies outside the domain of Ψ (or of a regulariser), e.g. a negative ReLU target."""


class NotAdmissibleError(BregmodError, ValueError):
    """A function is not an admissible activation (not a proximal map)."""


class ExpressionTooComplexError(BregmodError, ValueError):
    """A formula would cost unbounded work: nested too deeply, huge constants, or a symbolic
    derivation that ran past its time limit."""


class NoDCPFormError(BregmodError, NotImplementedError):
    """An activation or regulariser has no DCP-compliant CVXPY form."""


class NotCertifiedError(BregmodError):
    """The convexity certificate failed, so the exact (convex) solver refuses the problem."""


class AdjointError(BregmodError):
    """An operator failed the randomized adjoint dot-test."""


class ParameterError(BregmodError, ValueError):
    """A model parameter (``fidelity``, ``lam``, ``rho``) that the model does not accept;
    ``parameter`` names it (a spec file points at its key)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter


class SolverError(BregmodError):
    """A solver could not produce a trustworthy answer."""


class SourceConditionError(BregmodError, ValueError):
    """No v satisfies the source condition Wᵀv ∈ ∂J(u†) (within the tolerance)."""


class ConversionError(BregmodError, ValueError):
    """A model that cannot be converted between PyTorch and bregmod (`bregmod.torch`).

    The message names the module or layer, its position and why it has no counterpart.
    """


class CheckpointError(BregmodError):
    """A training checkpoint is corrupt, unreadable, or belongs to another problem or settings."""


class ConversionWarning(UserWarning):
    """An input was converted (e.g. float32 weights stored in float64); the message says how."""


class SolverWarning(UserWarning):
    """A solver returned a status other than ``"optimal"`` (inaccurate, stopped early, failed)."""


def describe_entries(mask, values, limit: int = 5) -> str:
    """Describe the entries selected by a boolean ``mask`` for an error message.

    Returns e.g. ``"3 entries, first at indices [(0, 2), (1, 4)] with values [-0.5, -1.0]"``.
    """
    import numpy as np

    mask = np.asarray(mask, dtype=bool)
    values = np.asarray(values)
    idx = np.argwhere(mask)[:limit]
    count = int(mask.sum())
    shown = [tuple(int(i) for i in row) if len(row) != 1 else int(row[0]) for row in idx]
    vals = [float(values[tuple(row)]) for row in idx]
    noun = "entry" if count == 1 else "entries"
    return f"{count} {noun}, first at indices {shown} with values {vals}"
