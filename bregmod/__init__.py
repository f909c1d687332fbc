"""bregmod: lifted Bregman formulations of neural networks.

Declare a network, compile it into the compact lifted form
N(u₀) = K u + c, M u = V prox_Ψ(W u + b), certify when the lifted inversion problem is
convex, and solve it exactly (CVXPY) or with first-order splitting solvers.
"""

from bregmod.activations import (
    ELU,
    ISRU,
    Activation,
    Arctan,
    Asinh,
    Clip,
    ClipBox,
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Softplus,
    Softsign,
    SoftThreshold,
    Sparsemax,
    Tanh,
)
from bregmod.certificate import (
    Certificate,
    certify,
    smallest_alpha,
    smallest_lambda,
    smallest_rho,
)
from bregmod.errors import (
    BregmodError,
    ConversionError,
    DomainError,
    NoDCPFormError,
    NotAdmissibleError,
    NotCertifiedError,
    ShapeError,
)
from bregmod.lifted import LiftedNetwork, lift
from bregmod.network import Conv2d, Dense, Residual, Sequential, ShallowSum
from bregmod.problem import Inversion, Result
from bregmod.regularizers import L1, Box, NonNegative, SquaredL2, TotalVariation
from bregmod.training import Training, TrainingResult

__version__ = "0.1.0"


def __getattr__(name: str):
    """``from_torch`` and ``to_torch`` load `bregmod.torch` (and torch) on first use only."""
    if name in ("from_torch", "to_torch"):
        from bregmod import torch as _torch_interop

        return getattr(_torch_interop, name)
    raise AttributeError(f"module 'bregmod' has no attribute {name!r}")


__all__ = [
    "ELU",
    "ISRU",
    "L1",
    "Activation",
    "Arctan",
    "Asinh",
    "Box",
    "BregmodError",
    "Certificate",
    "Clip",
    "ClipBox",
    "Conv2d",
    "ConversionError",
    "Dense",
    "DomainError",
    "Identity",
    "Inversion",
    "LeakyReLU",
    "LiftedNetwork",
    "NoDCPFormError",
    "NonNegative",
    "NotAdmissibleError",
    "NotCertifiedError",
    "ReLU",
    "Residual",
    "Result",
    "Sequential",
    "ShallowSum",
    "ShapeError",
    "Sigmoid",
    "SoftThreshold",
    "Softmax",
    "Softplus",
    "Softsign",
    "Sparsemax",
    "SquaredL2",
    "Tanh",
    "TotalVariation",
    "Training",
    "TrainingResult",
    "certify",
    "from_torch",
    "lift",
    "smallest_alpha",
    "smallest_lambda",
    "smallest_rho",
    "to_torch",
]
