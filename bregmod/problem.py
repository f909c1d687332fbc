"""The user-facing inversion problem (docs/math/lifted.md, docs/math/error-estimate.md) and the
:class:`Result` of every solver.

Two models of the input u₀ behind data f^δ (docs/math/lifted.md, docs/math/error-estimate.md):

``fidelity="quadratic"`` — the lifted model
    E(u, z) = λ/2 ‖K u + c − f^δ‖² + Σ_k B_{Ψ_k}(z_k, (W u + b)_k) + χ_{=0}(M u − V z)
              + ρ/2 ‖M u − V z‖² + J(u₀),
    with u = (u₀, u₁, …) the stacked layer states and z the activation outputs of the compiled
    network N(u₀) = K u + c, M u = V z, z = prox_Ψ(W u + b) (:mod:`bregmod.lifted`).
``fidelity="bregman"`` — the one-layer model of the error estimate
    E(u₀) = B_Ψ(f^δ, A u₀ + β) + J(u₀)
    for a network u₀ ↦ σ(A u₀ + β) of a single ``Dense`` or ``Conv2d`` layer. It is convex for
    every A, β, Ψ and convex J, so it needs no certificate (:class:`StructuralCertificate`).

The regulariser J carries its own weight (``0.015 * TotalVariation(shape)``).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bregmod._checks import finite_array, positive_scalar, real_array
from bregmod.activations import Activation
from bregmod.certificate import Certificate, certify, certify_deep
from bregmod.errors import (
    DomainError,
    NoDCPFormError,
    NotCertifiedError,
    ParameterError,
    ShapeError,
    SolverWarning,
)
from bregmod.lifted import LiftedNetwork
from bregmod.model.deep import DeepBregman
from bregmod.model.lifted import FEASIBILITY_RTOL, LiftedEnergy
from bregmod.model.onelayer import OneLayerEnergy, data_rows, regularizer_rows
from bregmod.network import Conv2d, Dense, Network
from bregmod.operators import Operator
from bregmod.regularizers import Regularizer
from bregmod.solvers import registry
from bregmod.solvers.registry import AUTO_EXACT_LIMIT, STATUSES

__all__ = [
    "AUTO_EXACT_LIMIT",
    "DEFAULT_RHO",
    "FEASIBILITY_RTOL",
    "FIDELITIES",
    "STATUSES",
    "Inversion",
    "Result",
    "SolverWarning",
    "StructuralCertificate",
    "model_weights",
]

#: The data terms of :class:`Inversion`.
FIDELITIES = ("quadratic", "bregman")
#: ρ used when ``rho=None`` (the talk's value for deep residual nets; the exact certificate and
#: the exact solve do not depend on ρ, since the penalty vanishes on M u = V z).
DEFAULT_RHO = 1e3


def model_weights(
    fidelity: str, lam: float | None = 1.0, rho: float | None = None
) -> tuple[float, float | None]:
    """(λ, ρ) of the model with data term ``fidelity``: the one rule of :class:`Inversion` and
    of spec files.

    ``"quadratic"``: λ > 0 (None: 1.0) and ρ > 0 (None: :data:`DEFAULT_RHO`).
    ``"bregman"``: B_Ψ(f, A u₀ + β) + J(u₀) has no λ or ρ (the weight is in J); only λ = 1.0
    or None and ρ = None are accepted, and (1.0, None) is returned.

    Raises
    ------
    ParameterError
        An unknown fidelity, a λ or ρ that is not finite and > 0, or a λ or ρ given for the
        Bregman fidelity (``parameter`` names which).
    """
    if fidelity not in FIDELITIES:
        raise ParameterError(
            "fidelity", f"unknown fidelity {fidelity!r}; choose one of {FIDELITIES}"
        )
    if fidelity == "bregman":
        if lam not in (None, 1.0) or rho is not None:
            raise ParameterError(
                "lam" if lam not in (None, 1.0) else "rho",
                f"fidelity='bregman' has no λ or ρ (got lam={lam!r}, rho={rho!r}): the model "
                "is B_Ψ(f, A u₀ + β) + J(u₀); put the weight α into the regulariser "
                "(reg = alpha * J)",
            )
        return 1.0, None
    weights = []
    for name, value, default, what in (("lam", lam, 1.0, "the data weight λ"),
                                       ("rho", rho, DEFAULT_RHO, "the penalty ρ")):
        try:
            weights.append(default if value is None else positive_scalar(value, f"{name} ({what})"))
        except ValueError as exc:
            raise ParameterError(name, str(exc)) from None
    return weights[0], weights[1]


@dataclass(frozen=True)
class StructuralCertificate:
    """Convexity known from the structure of the model, without an eigenvalue check.

    Used for ``fidelity="bregman"``: B_Ψ(f, A u₀ + β) = Σ Φ(f) + Σ Φ*(A u₀ + β) − ⟨f, A u₀ + β⟩
    is convex in u₀ (Φ* is convex, the rest is constant or affine) and J is convex.
    ``bool(certificate)`` is ``certified`` (always True).

    Attributes
    ----------
    method : str
        ``"structure"``.
    certified : bool
        True.
    reason : str
        Why the model is convex.
    """

    reason: str
    method: str = "structure"
    certified: bool = True

    def __bool__(self) -> bool:
        return self.certified

    def explain(self) -> str:
        """The reason the model is convex."""
        return f"CERTIFIED by structure: {self.reason}"


@dataclass
class Result:
    """The outcome of :meth:`Inversion.solve` (every solver and backend returns one).

    Build it with :meth:`Inversion.make_result`, which computes every derived field. For a
    batched problem every array has a leading batch axis.

    Attributes
    ----------
    u0 : ndarray
        The recovered input u₀ in the network's input shape.
    u : ndarray, shape (n_u,)
        The stacked lifted states u = (u₀, u₁, …).
    states : list of ndarray
        The blocks u₀, u₁, … of ``u``, each in its state shape.
    z : ndarray, shape (n_z,)
        The stacked activation variables.
    objective : float or ndarray
        The model's value at (u, z) (:meth:`Inversion.objective`); one value per batch item.
    status : str
        One of :data:`STATUSES`.
    solver : str
        The solver actually used (``"cvxpy"``, ``"pdhg"``, …), also when chosen by ``"auto"``.
    iterations : int
        Iterations of the solver (for a CVXPY batch: the largest over the batch).
    stats : dict
        Solver statistics and messages.
    wall_time : float
        Seconds spent in the solver (including model construction).
    bregman_gaps : ndarray, shape (number of z blocks,)
        B_{Ψ_k}(z_k, (W u + b)_k) per z block: how far each layer is from its activation
        equation z_k = σ_k((W u + b)_k). For ``fidelity="bregman"``: the single value
        B_Ψ(f^δ, A u₀ + β), the data misfit.
    history : dict
        Per-iteration lists (``"objective"``, ``"primal_residual"``, …); empty for CVXPY.
    certificate : Certificate, StructuralCertificate or None
        The convexity certificate of the problem (None when none could be computed).
    global_optimum_claimed : bool
        True only for a certified problem solved with status ``"optimal"``.
    """

    u0: np.ndarray
    u: np.ndarray
    states: list[np.ndarray]
    z: np.ndarray
    objective: float | np.ndarray
    status: str
    solver: str
    iterations: int
    stats: dict[str, Any]
    wall_time: float
    bregman_gaps: np.ndarray
    history: dict[str, list] = field(default_factory=dict)
    certificate: Certificate | StructuralCertificate | None = None
    global_optimum_claimed: bool = False


def _item_shape_fits(item_shape: tuple[int, ...], input_shape: tuple[int, ...]) -> bool:
    """Whether J's item shape fits u₀: same size, and the same grid unless u₀ is a flat vector.

    Axes of length 1 are ignored (TV on (H, W) fits a grey (1, H, W) input); a flat input (n,)
    declares no grid, so any item shape of size n fits it.
    """
    if np.prod(item_shape) != np.prod(input_shape):
        return False
    if len(input_shape) <= 1:
        return True
    return tuple(d for d in item_shape if d != 1) == tuple(d for d in input_shape if d != 1)


class Inversion:
    """Regularised inversion of a network: recover u₀ from data f^δ ≈ N(u₀).

    ``fidelity="quadratic"`` (the lifted model, docs/math/lifted.md)::

        min_{u, z}  λ/2 ‖K u + c − f^δ‖² + B_Ψ(z, W u + b) + χ_{=0}(M u − V z)
                    + ρ/2 ‖M u − V z‖² + J(u₀)

    ``fidelity="bregman"`` (one layer u₀ ↦ σ(A u₀ + β), docs/math/error-estimate.md)::

        min_{u₀}  B_Ψ(f^δ, A u₀ + β) + J(u₀)

    ``fidelity="bregman"`` with two or more ``Dense``/``Conv2d`` layers (the deep lifted model,
    docs/math/deep.md; :attr:`deep`), with layer weights γ_l (``layer_weights``, default 1)::

        min_{u₀, x_1..x_{L−1}}  Σ_{l=1}^{L} γ_l B_{Ψ_l}(x_l, W_l x_{l−1} + b_l) + J(u₀),
        x_0 = u₀, x_L = f^δ

    Parameters
    ----------
    network : Network
        The declared network (compiled here with ``network.lift()``).
    data : array_like
        f^δ in the network's output shape, or a batch ``(B, *output_shape)`` of independent
        problems. Must be finite; for ``fidelity="bregman"`` it must lie in dom Ψ (e.g.
        f^δ ≥ 0 for ReLU), since B_Ψ(f^δ, ·) = +inf otherwise.
    reg : Regularizer, optional
        J of the input u₀, with its weight (``0.1 * L1()``); None for J = 0. A regulariser with
        a ``shape`` must match the input shape.
    lam : float
        λ > 0, the weight of the quadratic data term. ``fidelity="bregman"`` has no λ (put the
        weight into ``reg``); it only accepts the default 1.0.
    rho : float, optional
        ρ > 0, the penalty weight; None means :data:`DEFAULT_RHO` = 1e3. The exact certificate
        and the exact solve do not depend on ρ; the paper certificate and penalty-based
        solvers do. Must be None for ``fidelity="bregman"``.
    fidelity : {"quadratic", "bregman"}
        The data term.
    scale : {"sum", "per_output"}
        How ``reg``'s weight is read. ``"sum"`` (default): against the data term as written
        above, a sum over the m outputs. ``"per_output"``: against the mean (1/m) Σ over the
        outputs, the talk's convention, so that α need not be retuned when m changes; solved
        as the equivalent sum form with J multiplied by m (same minimisers; objectives are
        reported in the sum form). The spec key ``regularizer.scale = "per_output"`` is the
        same convention.
    data_projection : {None, "domain"}
        ``fidelity="bregman"`` only. None (default): data outside dom Ψ raise ``DomainError``.
        ``"domain"``: f^δ is replaced by its projection onto the closure of the range of σ
        (= cl dom Ψ; e.g. negative entries become 0 for ReLU), with a ``UserWarning`` giving
        the number of entries moved and the distance ‖P f^δ − f^δ‖; both are recorded in
        :attr:`data_projection_record` and in every result's ``stats["data_projection"]``.
        Scalar activations only.
    layer_weights : float or sequence of float, optional
        The deep model only (``fidelity="bregman"``, two or more layers): the weights γ_l > 0
        of its terms. A number γ weights the hidden terms (γ_l = γ for l < L, γ_L = 1 on the
        data term); a sequence gives γ_1, …, γ_L. None (default): all 1, the model of the
        paper. Large γ pushes the hidden states onto the forward pass; γ → ∞ tends to the
        reduced problem min_u B_{Ψ_L}(f^δ, W_L N_{L−1}(u) + b_L) + J(u) (docs/math/deep.md,
        "Layer weights"). The deep certificate counts the weights (through a congruence
        that rescales W_l, :func:`bregmod.certificate.certify_deep`), so a weighted problem
        is certified when its H_γ ⪰ 0; since α* grows with γ (for two layers
        α* = γ_1‖W_1‖²), large weights usually leave it uncertified and its results
        ``"stationary"``.

    Attributes
    ----------
    network, lifted, data, reg, lam, rho, fidelity, batch_size
        The declaration and its compiled form (read-only: an Inversion is immutable, so its
        cached certificates stay valid). ``batch_size`` is None for unbatched data; ``data``
        is the projected f^δ when ``data_projection="domain"`` moved entries.
    data_projection_record : dict or None
        ``{"entries": count, "distance": ‖P f^δ − f^δ‖}`` when the data were projected.
    A, bias, activation
        ``fidelity="bregman"`` only: the layer's map u₀ ↦ A u₀ + β and its activation.

    Raises
    ------
    TypeError
        ``network`` is not a Network, ``reg`` not a Regularizer.
    ValueError
        Unknown fidelity, bad λ or ρ, NaN/Inf in the data, λ or ρ given for the Bregman
        fidelity, ``layer_weights`` on a problem without the deep model or with a weight
        that is not a finite positive number.
    ShapeError
        Data or regulariser shape does not match the network.
    DomainError
        Bregman fidelity with data outside dom Ψ (the message names the entries).
    """

    def __init__(
        self,
        network: Network,
        data,
        reg: Regularizer | None = None,
        lam: float = 1.0,
        rho: float | None = None,
        fidelity: str = "quadratic",
        scale: str = "sum",
        data_projection: str | None = None,
        layer_weights: float | Sequence[float] | None = None,
    ) -> None:
        if not isinstance(network, Network):
            raise TypeError(
                "network must be a bregmod network (Dense, Conv2d, Residual, ShallowSum, "
                f"Sequential), got {type(network).__name__}"
            )
        self._lam, self._rho = model_weights(fidelity, lam, rho)
        self._network = network
        self._fidelity = fidelity
        self._deep: DeepBregman | None = None
        self._lifted = network.lift()
        self._reg = self._check_reg(reg)
        if scale not in ("sum", "per_output"):
            raise ValueError(f"scale must be 'sum' or 'per_output', got {scale!r}")
        if scale == "per_output" and self._reg is not None:
            self._reg = int(np.prod(self._lifted.output_shape)) * self._reg
        if data_projection not in (None, "domain"):
            raise ValueError(f"data_projection must be None or 'domain', got {data_projection!r}")
        if data_projection is not None and fidelity != "bregman":
            raise ValueError("data_projection applies to fidelity='bregman' (the quadratic "
                             "fidelity accepts any data)")
        self._data_projection = data_projection
        self.data_projection_record: dict[str, float] | None = None
        if fidelity == "bregman":
            self._deep = self._deep_model(network)
        if layer_weights is not None:
            self._deep = self._weighted_deep(layer_weights)
        self._data, self._batch_size = self._check_data(data)
        self._certificates: dict[str, Certificate] = {}

    # ------------------------------------------------------------------ declaration
    network = property(lambda self: self._network, doc="The declared network.")
    lifted = property(lambda self: self._lifted, doc="The compiled LiftedNetwork.")
    data = property(lambda self: self._data, doc="f^δ (with the batch axis, if any).")
    reg = property(lambda self: self._reg, doc="The regulariser J (with its weight) or None.")
    lam = property(lambda self: self._lam, doc="λ (1.0 for the Bregman fidelity).")
    rho = property(lambda self: self._rho, doc="ρ (None for the Bregman fidelity).")
    fidelity = property(lambda self: self._fidelity, doc='"quadratic" or "bregman".')
    batch_size = property(lambda self: self._batch_size, doc="B, or None when unbatched.")
    deep = property(
        lambda self: self._deep,
        doc="The deep lifted Bregman energy (fidelity='bregman' with two or more layers), "
        "else None.",
    )

    @property
    def A(self) -> Operator:
        """``fidelity="bregman"``: the operator A of the pre-activation A u₀ + β."""
        return self._bregman_lifted().single_layer()[0]

    @property
    def bias(self) -> np.ndarray:
        """``fidelity="bregman"``: the bias β of the pre-activation A u₀ + β."""
        return self._bregman_lifted().single_layer()[1]

    @property
    def activation(self) -> Activation:
        """``fidelity="bregman"``: the activation σ = prox_Ψ of the layer."""
        return self._bregman_lifted().single_layer()[2]

    def energy(self) -> OneLayerEnergy | LiftedEnergy | DeepBregman:
        """The model's energy (:mod:`bregmod.model`) on the data rows of this problem:
        :class:`~bregmod.model.onelayer.OneLayerEnergy` for the one-layer Bregman fidelity,
        :class:`~bregmod.model.lifted.LiftedEnergy` for ``fidelity="quadratic"``, the
        :class:`~bregmod.model.deep.DeepBregman` model (:attr:`deep`) for a deep chain."""
        if self._deep is not None:
            return self._deep
        if self._fidelity == "bregman":
            return OneLayerEnergy.of(self)
        return LiftedEnergy.of(self)

    def _bregman_lifted(self) -> LiftedNetwork:
        if self._fidelity != "bregman":
            raise AttributeError(
                "A, bias and activation describe the single layer of fidelity='bregman'; "
                "this problem has fidelity='quadratic' (see .lifted)"
            )
        if self._deep is not None:
            raise AttributeError(
                "A, bias and activation describe the single layer of fidelity='bregman'; this "
                f"network has {self._deep.depth} layers (see .deep for their operators)"
            )
        return self._lifted

    def __repr__(self) -> str:
        batch = "" if self._batch_size is None else f", batch_size={self._batch_size}"
        weights = f"lam={self._lam:g}, rho={self._rho:g}" if self._rho is not None else ""
        if self._deep is not None and self._deep.weighted:
            weights = "layer_weights=" + repr(tuple(f"{g:g}" for g in self._deep.weights))
        return (
            f"Inversion({self._network!r}, reg={self._reg!r}, fidelity={self._fidelity!r}"
            f"{', ' + weights if weights else ''}{batch})"
        )

    def with_data(self, data) -> Inversion:
        """The same compiled problem with other data f^δ (validated as in the constructor).

        Shares the compiled network, the regulariser and the cached certificates, which do
        not depend on the data; used to solve parts of a batch (:mod:`bregmod.distributed`).
        """
        other = copy.copy(self)
        other._data, other._batch_size = other._check_data(data)
        return other

    def with_layer_weights(self, layer_weights: float | Sequence[float] | None) -> Inversion:
        """The same deep problem with other layer weights γ (as ``layer_weights`` of the
        constructor; None: all 1). Shares the compiled network, the regulariser and the data;
        the certificates are recomputed (they depend on the weights). The stages of
        :func:`bregmod.solvers.palm.continuation`.

        Raises
        ------
        ValueError
            The problem has no deep model, or a weight is not a finite positive number.
        """
        other = copy.copy(self)
        other._deep = self._weighted_deep(1.0 if layer_weights is None else layer_weights)
        other._certificates = {}
        return other

    # ------------------------------------------------------------------ validation
    def _check_reg(self, reg) -> Regularizer | None:
        if reg is None:
            return None
        if not isinstance(reg, Regularizer):
            raise TypeError(
                f"reg must be a bregmod Regularizer (e.g. 0.1 * L1()) or None, got "
                f"{type(reg).__name__}"
            )
        shape = tuple(self._lifted.input_shape)
        if reg.shape is not None and not _item_shape_fits(tuple(reg.shape), shape):
            raise ShapeError(
                f"the regulariser {reg.name} acts on items of shape {reg.shape}, but the "
                f"network input u₀ has shape {shape}"
                + (" (same size, different grid: J must act on u₀'s own shape)"
                   if np.prod(reg.shape) == np.prod(shape) else "")
            )
        return reg

    @staticmethod
    def _deep_model(network: Network) -> DeepBregman | None:
        """The deep Bregman energy of a feed-forward chain of two or more Dense/Conv2d layers
        (None for one layer, the one-layer model); ValueError naming any other layer."""
        layers = network.layers
        for j, layer in enumerate(layers, start=1):
            if not isinstance(layer, (Dense, Conv2d)):
                raise ValueError(
                    "fidelity='bregman' needs a feed-forward network of Dense and Conv2d layers "
                    f"(one layer: u₀ ↦ σ(A u₀ + β); several: the deep lifted Bregman model), but "
                    f"layer {j} of {network!r} is {layer.kind}; use fidelity='quadratic' for it"
                )
        return DeepBregman.from_network(network) if len(layers) > 1 else None

    def _weighted_deep(self, layer_weights) -> DeepBregman:
        """The deep model with the layer weights γ (a number: γ on the hidden terms, 1 on the
        data term; else one weight per layer)."""
        if self._deep is None:
            raise ValueError(
                "layer_weights weight the terms of the deep lifted Bregman model "
                "(fidelity='bregman' with two or more Dense/Conv2d layers); this problem has "
                + ("one layer" if self._fidelity == "bregman" else "fidelity='quadratic'")
            )
        L = self._deep.depth
        if np.ndim(layer_weights) == 0:
            gamma = positive_scalar(layer_weights, "layer_weights")
            layer_weights = [gamma] * (L - 1) + [1.0]
        return self._deep.with_weights(layer_weights)

    def _check_data(self, data) -> tuple[np.ndarray, int | None]:
        arr = finite_array(data, "data")
        shape = self._lifted.output_shape
        if arr.shape == shape:
            batch_size = None
        elif arr.ndim == len(shape) + 1 and arr.shape[1:] == shape and arr.shape[0] > 0:
            batch_size = arr.shape[0]
        else:
            raise ShapeError(
                f"data has shape {arr.shape}, but the network's output has shape {shape}; pass "
                f"data of shape {shape} or a batch of shape (B, *{shape})"
            )
        if self._fidelity == "bregman":
            if self._deep is not None:
                activation, size = self._deep.activations[-1], self._deep.sizes[-1]
            else:
                activation, size = self._lifted.activations[0], self._lifted.n_z
            if self._data_projection == "domain":
                arr = self._project_data(arr, activation)
            # A vector activation acts on the whole (flattened) layer output, as in lift().
            values = arr.reshape(-1, size) if activation.is_vector else arr
            try:
                activation.check_domain(values, what="data f^δ (fidelity='bregman')")
            except DomainError as exc:
                raise DomainError(
                    f"{exc}. Inversion(..., data_projection='domain') projects f^δ onto the "
                    "closure of the range of σ (and says how far it moved)"
                ) from None
        return arr, batch_size

    def _project_data(self, data: np.ndarray, activation: Activation) -> np.ndarray:
        """f^δ projected onto cl dom Ψ = cl range σ (scalar activations), with a warning."""
        if activation.is_vector:
            raise ValueError(f"data_projection='domain' is for scalar activations, not "
                             f"{activation.name}")
        projected = activation.project_domain(data)
        moved = projected != data
        if moved.any():
            distance = float(np.linalg.norm(projected - data))
            self.data_projection_record = {"entries": int(moved.sum()), "distance": distance}
            warnings.warn(
                f"data_projection='domain': {int(moved.sum())} of {data.size} entries of f^δ "
                f"were outside dom Ψ = {activation.domain} of {activation.name} and were projected "
                f"onto it (distance moved ‖P f^δ − f^δ‖ = {distance:.4g})",
                UserWarning,
                stacklevel=4,
            )
        return projected

    def _rows(self, x, size: int, what: str, allow_missing: bool = False) -> np.ndarray:
        """``x`` as float64 rows (B, size), B = 1 unbatched; validates the batch layout.

        With ``allow_missing``, rows made only of NaN mark problems without a solution.
        """
        batch = 1 if self._batch_size is None else self._batch_size
        expected = (size,) if self._batch_size is None else (batch, size)
        arr = real_array(x, what)
        if arr.shape != expected:
            raise ShapeError(f"{what} must have shape {expected}, got {arr.shape}")
        rows = arr.reshape(batch, size)
        if allow_missing:
            missing = np.isnan(rows).all(axis=1) & (size > 0)
            finite_array(rows[~missing], what)
        else:
            finite_array(rows, what)
        return rows

    # ------------------------------------------------------------------ certificate
    def certify(self, method: str | None = None) -> Certificate | StructuralCertificate | None:
        """The convexity certificate of the model at this λ, ρ (cached per method).

        Parameters
        ----------
        method : {"exact", "paper"} or None
            See :func:`bregmod.certificate.certify`, which receives J's strong-convexity
            modulus α (``reg.strong_convexity``, 0 without J). None chooses ``"exact"`` when
            the network is small enough for its dense check (n_u + n_z ≤
            ``certificate.DENSE_LIMIT``) or compiles to a chain (its block LDLᵀ path), else
            ``"paper"`` when V = Wᵀ, else returns None (no check applies).

        Returns
        -------
        Certificate, StructuralCertificate or None
            ``fidelity="bregman"`` with one layer always gets a :class:`StructuralCertificate`
            (the model is convex by structure; ``method`` is ignored); with two or more layers
            the deep model's exact check :func:`bregmod.certificate.certify_deep`, layer
            weights included (None when the network is too large for it: nothing is
            claimed).
        """
        if self._deep is not None:
            if "deep" not in self._certificates:
                self._certificates["deep"] = certify_deep(self._deep, self._reg)
            return self._certificates["deep"]
        if self._fidelity == "bregman":
            return StructuralCertificate(
                "B_Ψ(f, A u₀ + β) = ΣΦ(f) + ΣΦ*(A u₀ + β) − ⟨f, A u₀ + β⟩ is convex in u₀ "
                "(Φ* is convex, the other terms constant or affine) and J is convex"
            )
        alpha = 0.0 if self._reg is None else float(self._reg.strong_convexity)
        if method is None:
            for candidate in ("exact", "paper"):
                try:
                    return self.certify(candidate)
                except ValueError:  # too large and not a chain; V ≠ Wᵀ
                    continue
            return None
        if method not in self._certificates:
            self._certificates[method] = certify(
                self._lifted, self._lam, self._rho, method=method, alpha=alpha
            )
        return self._certificates[method]

    # ------------------------------------------------------------------ the model
    def objective(self, u, z=None) -> float | np.ndarray:
        """The model's value at a lifted point (one value per problem of a batch).

        ``fidelity="quadratic"``: E(u, z) = λ/2‖K u + c − f‖² + Σ_k B_{Ψ_k}(z_k, (W u + b)_k)
        + χ_{=0}(M u − V z) + ρ/2‖M u − V z‖² + J(u₀), +inf when z ∉ dom Ψ, u₀ ∉ dom J or
        ‖M u − V z‖ > :data:`FEASIBILITY_RTOL` · max(1, ‖M u‖, ‖V z‖).

        ``fidelity="bregman"``: B_Ψ(f, A u₀ + β) + J(u₀) with u₀ the first block of u;
        ``z`` is ignored. With two or more layers, the deep lifted Bregman energy
        Σ_l B_{Ψ_l}(x_l, W_l x_{l−1} + b_l) + J(x₀) (:mod:`bregmod.model.deep`) with the
        states x_0, …, x_{L−1} the first L blocks of u and x_L = f; +inf when a state lies
        outside dom Ψ_l.

        Parameters
        ----------
        u : array_like, shape (n_u,) or (B, n_u)
            Stacked lifted states (with the batch axis iff the data has one).
        z : array_like, shape (n_z,) or (B, n_z)
            Stacked activation variables (required for the quadratic fidelity).

        Returns
        -------
        float or ndarray (B,)
        """
        u_rows = self._rows(u, self._lifted.n_u, "u")
        if self._fidelity == "quadratic" and z is None:
            raise ValueError("objective needs z for fidelity='quadratic' (E depends on (u, z))")
        z_rows = None if self._fidelity == "bregman" else self._rows(z, self._lifted.n_z, "z")
        values = self._objective_rows(u_rows, z_rows, self._data_rows())
        return values if self._batch_size is not None else float(values[0])

    def _data_rows(self) -> np.ndarray:
        """The data as rows (B, n_out), B = 1 when unbatched."""
        return data_rows(self)

    def _objective_rows(self, u: np.ndarray, z: np.ndarray | None, f: np.ndarray) -> np.ndarray:
        """E on rows u (B, n_u), z (B, n_z) with data rows f (B, n_out) → (B,)."""
        u0 = u[:, self._lifted.u_blocks[0].slice]
        if self._deep is None and self._fidelity == "bregman":
            return OneLayerEnergy.of(self, f).energy(u0)
        if self._deep is None:
            return LiftedEnergy.of(self, f).energy(u, z)
        values = self._reg_rows(u0)
        states = self._deep_states(u, f)
        inside = np.ones(u.shape[0], dtype=bool)
        for activation, x in zip(self._deep.activations[:-1], states[1:-1], strict=True):
            inside &= np.isfinite(activation.psi(x)).reshape(u.shape[0], -1).all(axis=1)
        values[~inside] = np.inf
        if inside.any():
            values[inside] += self._deep.value([x[inside] for x in states])
        return values

    def _violation_rows(self, u: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """‖M u − V z‖ and the scale max(1, ‖M u‖, ‖V z‖) of every row."""
        return LiftedEnergy(self._lifted, self._lam, self._rho, None).violation(u, z)

    def _reg_rows(self, u0: np.ndarray) -> np.ndarray:
        """J(u₀) of every row of u₀ (B, n_in) (:func:`~bregmod.model.onelayer.regularizer_rows`)."""
        return regularizer_rows(self._reg, u0, self._lifted.input_shape)

    def _deep_states(self, u: np.ndarray, f: np.ndarray) -> list[np.ndarray]:
        """The deep model's states [x_0, …, x_{L−1}, f] from lifted rows u (B, n_u): the first L
        u blocks (the lifted feed-forward layout stacks the layer states)."""
        blocks = self._lifted.u_blocks[: self._deep.depth]
        return [u[:, blk.slice] for blk in blocks] + [f]

    def _deep_lifted(self, states: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Lifted rows (u, z) of deep states [x_0, …, x_L]: u stacks the states that have a u
        block (x_L = f too unless a trailing affine layer was folded), z = u without x_0."""
        u = np.concatenate(states[: len(self._lifted.u_blocks)], axis=1)
        return u, u[:, self._lifted.u_blocks[0].size :]

    def _bregman_gap_rows(self, u: np.ndarray, z: np.ndarray, f: np.ndarray) -> np.ndarray:
        """Per-block Bregman gaps (B, blocks); the data misfit (B, 1) for the one-layer Bregman
        fidelity; the L terms B_{Ψ_l}(x_l, W_l x_{l−1} + b_l) (B, L) for the deep model."""
        if self._deep is not None:
            return self._deep.terms(self._deep_states(u, f))
        if self._fidelity == "bregman":
            energy = OneLayerEnergy.of(self, f)
            x = energy.pre_activation(u[:, self._lifted.u_blocks[0].slice])
            return energy.data_term(x)[:, None]
        return LiftedEnergy.of(self, f).bregman_gaps(u, z)

    # ------------------------------------------------------------------ results
    def make_result(
        self,
        u,
        z=None,
        *,
        status: str,
        solver: str,
        iterations: int = 0,
        history: dict | None = None,
        stats: dict | None = None,
        wall_time: float = 0.0,
        global_optimum_claimed: bool | None = None,
    ) -> Result:
        """Build the :class:`Result` of a solver from its final lifted point (u, z).

        Computes the objective (:meth:`objective`), the per-block Bregman gaps
        B_{Ψ_k}(z_k, (W u + b)_k), the states u₀, u₁, … in their shapes, the certificate
        (:meth:`certify` with its default method) and ``global_optimum_claimed`` = certified,
        ``status == "optimal"`` and a finite value (and not vetoed by the caller). For the
        quadratic fidelity ``stats["constraint_violation"]`` is set to
        max ‖M u − V z‖ / max(1, ‖M u‖, ‖V z‖).
        Warns with :class:`SolverWarning` whenever ``status`` is not ``"optimal"`` and when
        the model's value at the point is +inf (infeasible point).

        Parameters
        ----------
        u : array_like (n_u,) or (B, n_u), or None
            Final stacked states. A row of NaN (or ``u=None`` for all rows) marks a problem
            for which the solver has no point (allowed only with a non-optimal status); its
            fields are NaN. ``fidelity="bregman"``: only the block u₀ is read, and (u, z) are
            recomputed as the forward pass of u₀.
        z : array_like (n_z,) or (B, n_z), or None
            Final activation variables (ignored for ``fidelity="bregman"``).
        status : str
            One of :data:`STATUSES`.
        solver : str
            Name of the solver, recorded in the Result.
        iterations : int
            Iteration count.
        history : dict, optional
            Per-iteration lists.
        stats : dict, optional
            Solver statistics (copied).
        wall_time : float
            Seconds spent.
        global_optimum_claimed : bool, optional
            ``False`` vetoes the claim (e.g. for a local method); None or True leave it to
            the rule above.

        Returns
        -------
        Result

        Raises
        ------
        ValueError
            Unknown status, NaN/Inf in a point, or no point with status ``"optimal"``.
        ShapeError
            ``u`` or ``z`` of the wrong shape.
        """
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; use one of {STATUSES}")
        lifted = self._lifted
        batch = 1 if self._batch_size is None else self._batch_size
        u_rows = np.full((batch, lifted.n_u), np.nan) if u is None else u
        u_rows = self._rows(u_rows, lifted.n_u, "u", allow_missing=True)
        solved = ~np.isnan(u_rows).all(axis=1)
        if status == "optimal" and not solved.all():
            raise ValueError("status 'optimal' needs a point u for every problem, got NaN rows")
        u_rows = u_rows.copy()
        if self._deep is not None:
            z_rows = np.full((batch, lifted.n_z), np.nan)
            if solved.any():
                states = self._deep_states(u_rows[solved], self._data_rows()[solved])
                u_rows[solved], z_rows[solved] = self._deep_lifted(states)
        elif self._fidelity == "bregman":
            z_rows = np.full((batch, lifted.n_z), np.nan)
            if solved.any():
                u0 = u_rows[solved, lifted.u_blocks[0].slice]
                u_rows[solved], z_rows[solved] = lifted.forward(
                    u0.reshape(-1, *lifted.input_shape)
                )
        else:
            if z is None:
                raise ValueError("make_result needs z for fidelity='quadratic'")
            z_rows = self._rows(z, lifted.n_z, "z", allow_missing=True).copy()
            if not np.array_equal(np.isnan(z_rows).all(axis=1), ~solved):
                raise ValueError("u and z must mark the same problems as unsolved (NaN rows)")
        objective = np.full(batch, np.nan)
        if self._deep is not None:
            gaps_size = self._deep.depth
        else:
            gaps_size = 1 if self._fidelity == "bregman" else len(lifted.z_blocks)
        gaps = np.full((batch, gaps_size), np.nan)
        if solved.any():
            f = self._data_rows()[solved]
            objective[solved] = self._objective_rows(u_rows[solved], z_rows[solved], f)
            gaps[solved] = self._bregman_gap_rows(u_rows[solved], z_rows[solved], f)
        stats = dict(stats or {})
        if self._fidelity == "quadratic" and solved.any():
            violation, scale = self._violation_rows(u_rows[solved], z_rows[solved])
            stats["constraint_violation"] = float(np.max(violation / scale))
        if np.isinf(objective).any():
            warnings.warn(
                f"{solver}: the model's value at the returned point is +inf for "
                f"{int(np.isinf(objective).sum())} problem(s): z ∉ dom Ψ, u₀ ∉ dom J or "
                f"‖M u − V z‖ > {FEASIBILITY_RTOL:g}·scale (relative violation "
                f"{stats.get('constraint_violation', 0.0):.3g}); the point is not feasible",
                SolverWarning,
                stacklevel=2,
            )
        certificate = self.certify()
        certified = certificate is not None and bool(certificate.certified)
        if status == "optimal" and not certified:
            status = "stationary"
            stats["message"] = (
                f"{stats.get('message', '')}; " if stats.get("message") else ""
            ) + self._uncertified_note(certificate)
            warnings.warn(
                f"{solver} stopped at its tolerance, but {stats['message']}",
                SolverWarning,
                stacklevel=2,
            )
        claimed = (
            certified
            and status == "optimal"
            and bool(np.isfinite(objective).all())
            and global_optimum_claimed is not False
        )
        if status not in ("optimal", "stationary"):
            message = stats.get("message", "")
            warnings.warn(
                f"{solver} finished with status {status!r}"
                + (f": {message}" if message else "")
                + "; the result is not certified optimal",
                SolverWarning,
                stacklevel=2,
            )

        def unbatch(rows: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
            shaped = rows.reshape(batch, *shape)
            return shaped if self._batch_size is not None else shaped[0]

        states = [unbatch(u_rows[:, blk.slice], blk.shape) for blk in lifted.u_blocks]
        if self.data_projection_record is not None:
            stats = {**stats, "data_projection": dict(self.data_projection_record)}
        return Result(
            u0=states[0],
            u=unbatch(u_rows, (lifted.n_u,)),
            states=states,
            z=unbatch(z_rows, (lifted.n_z,)),
            objective=objective if self._batch_size is not None else float(objective[0]),
            status=status,
            solver=solver,
            iterations=int(iterations),
            stats=stats,
            wall_time=float(wall_time),
            bregman_gaps=unbatch(gaps, (gaps_size,)),
            history=dict(history or {}),
            certificate=certificate,
            global_optimum_claimed=claimed,
        )

    def _uncertified_note(self, certificate) -> str:
        """Why a converged run is only a stationary point, and what would certify it."""
        if certificate is None and self._deep is not None:
            why = (
                "no convexity certificate applies (a state of the deep model exceeds "
                "certificate.BLOCK_LIMIT entries, too large for its exact check)"
            )
        elif certificate is None:
            why = (
                "no convexity certificate applies (the network is too large for the exact check "
                "and V ≠ Wᵀ rules out the paper check)"
            )
        else:
            why = (
                f"the problem is not certified convex (the {certificate.method} check: "
                f"{certificate.finding})"
            )
        advice = getattr(certificate, "advice", "") if certificate is not None else ""
        return (
            f"{why}: the point is stationary (a local solution), not a certified global "
            "optimum" + (f"; {advice}" if advice else "")
        )

    # ------------------------------------------------------------------ solving
    def solve(
        self,
        solver: str = "auto",
        tol: float = 1e-6,
        max_iter: int | None = None,
        warm_start=None,
        progress: bool = False,
        dtype=np.float64,
        client=None,
        **options,
    ) -> Result:
        """Solve the model and return a :class:`Result`.

        Parameters
        ----------
        solver : str
            A name of the solver registry :mod:`bregmod.solvers.registry`: ``"cvxpy"``
            (exact, :mod:`bregmod.backends.cvxpy_backend`; certified problems only), a
            first-order solver of :mod:`bregmod.solvers` (``"pdhg"``, ``"fista"``, ``"cd"``,
            ``"admm"``, ``"palm"``), or ``"auto"``: the first solver of
            ``registry.AUTO_ORDER`` (per fidelity; ``"palm"`` for a deep chain) whose
            ``supports(problem)`` accepts it — ``"cvxpy"`` when the problem is certified, has
            at most :data:`AUTO_EXACT_LIMIT` unknowns, ``dtype`` is float64 and every
            activation has a DCP form; otherwise ``"pdhg"`` (for the Bregman fidelity:
            ``"fista"`` when J has no composite term, ``"admm"`` when J's composite terms are
            total variation on the input and the layer fits in memory as a dense matrix).
            The reason is in ``Result.stats["auto"]``.
        tol : float
            Relative tolerance (CVXPY: passed to the solver's gap/feasibility tolerances).
        max_iter : int, optional
            Iteration limit (solver default when None).
        warm_start : None, array_like, (u, z) or Result
            Starting point (see :mod:`bregmod.solvers._common`).
        progress : bool or "lines"
            Show progress: a bar, or ``"lines"`` on stderr every 10 s for logs (first-order
            solvers; CVXPY: verbose solver output).
        dtype : numpy float dtype
            Floating dtype of first-order iterates (CVXPY: float64 only).
        client : dask.distributed.Client, optional
            Solve the items of a batch in chunks on the client's workers
            (:func:`bregmod.distributed.solve_batch`); None solves in this process.
        **options
            Passed to the solver (CVXPY: ``cvxpy_solver``, ``solver_options``).

        Returns
        -------
        Result

        Raises
        ------
        ValueError
            Unknown solver name.
        SolverError
            The named solver's module is missing.
        NotCertifiedError, NoDCPFormError
            From the CVXPY backend, when named explicitly.
        """
        if solver not in registry.names():
            raise ValueError(f"unknown solver {solver!r}; choose one of {registry.names()}")
        arguments = dict(
            tol=tol, max_iter=max_iter, warm_start=warm_start, progress=progress, dtype=dtype
        )
        if self._deep is not None and solver not in ("auto", "palm"):
            raise ValueError(
                f"solver {solver!r} does not solve the deep lifted Bregman model ({self._deep!r}); "
                "use solver='palm' (or 'auto')"
            )
        if client is not None:
            from bregmod.distributed import solve_batch

            return solve_batch(self, client, solver=solver, **arguments, **options)
        if solver != "auto":
            return registry.load(solver).solve(self, **arguments, **options)
        name, _, reason = registry.choose(self, dtype)
        try:
            result = registry.load(name).solve(self, **arguments, **options)
        except (NoDCPFormError, NotCertifiedError) as exc:
            if name not in registry.EXACT:
                raise
            # The DCP split can need more than the certificate (cvxpy_backend's docstring).
            name, _, _ = registry.choose(self, dtype, exclude=registry.EXACT)
            reason = f"the exact backend refused ({exc}); fell back to {name}"
            result = registry.load(name).solve(self, **arguments, **options)
        result.stats["auto"] = reason
        return result

    def to_cvxpy(self, index: int | None = None):
        """The exact DCP problem as ``(cvxpy.Problem, handles)`` (certified problems only).

        See :func:`bregmod.backends.cvxpy_backend.to_cvxpy`; ``index`` selects the problem of
        a batch (required when the data is batched).
        """
        return registry.load("cvxpy").to_cvxpy(self, index=index)
