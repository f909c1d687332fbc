r"""The one-layer Bregman inversion energy (docs/math/error-estimate.md, docs/math/solvers.md).

For a single layer u₀ ↦ σ(A u₀ + β), σ = prox_Ψ, data f in dom Ψ and a convex J::

    E(u₀) = B_Ψ(f, A u₀ + β) + J(u₀),
    B_Ψ(f, x) = Σ Φ(f) + Σ Φ*(x) − ⟨f, x⟩,        Φ = ½‖·‖² + Ψ,

convex for every A, β, Ψ (Φ* is convex, the rest constant or affine in u₀). Its data term,
as a function h(y) = B_Ψ(f, y) of the pre-activation y = A u₀ + β, is smooth with

    ∇_{u₀} B_Ψ(f, A u₀ + β) = Aᵀ(σ(A u₀ + β) − f)        (σ only, never σ′),

Lipschitz with constant ‖A‖² because σ is nondecreasing and 1-Lipschitz, and prox-friendly:

    prox_{t h}(w)   = prox_{tΦ*}(w + t f)                          (ADMM's data block),
    prox_{s h₀*}(v) = prox_{sΦ}(v + sβ + f) − f,  h₀(x) = h(x + β)  (PDHG's dual data block),

with the proxes of Φ and Φ* from the activation (:meth:`Activation.prox_phi`,
:meth:`Activation.prox_phi_conj`). Every array is a batch of rows (B, ·), one per problem.
:class:`OneLayerEnergy` is the only place these formulas are computed: the objective of
:class:`~bregmod.problem.Inversion`, every first-order solver, the theory and the CLI read it.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from bregmod.activations import Activation
from bregmod.operators import Operator

__all__ = ["OneLayerEnergy", "data_rows", "regularizer_rows"]


def data_rows(problem) -> np.ndarray:
    """The data of an Inversion as rows (B, n_out), B = 1 when unbatched."""
    return problem.data.reshape(problem.batch_size or 1, -1)


def regularizer_rows(reg, u0: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """J(u₀) of every row of u₀ (B, n_in), each reshaped to J's item shape (e.g. (H, W) for TV
    on a (1, H, W) convolution input) or else to ``shape``; zeros when J is None."""
    if reg is None:
        return np.zeros(u0.shape[0])
    item = reg.shape if reg.shape is not None else shape
    return np.array([reg(row.reshape(item)) for row in u0])


def _batch_dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, y, dtype=np.float64)


def _row_sums(values, batch: int) -> np.ndarray:
    return np.asarray(values, dtype=np.float64).reshape(batch, -1).sum(axis=1)


class OneLayerEnergy:
    """E(u₀) = B_Ψ(f, A u₀ + β) + J(u₀) on a batch of data rows (see the module docstring).

    Two evaluations of the data term: :meth:`data_term` sums the activation's accurate
    entrywise B_Ψ(f, x) (the model's value :meth:`energy`, ≥ 0); the smooth-part protocol of
    the solvers (``images(x)``, ``value(x, images)``, ``gradient(x, images)``,
    ``objective(x, images)``, ``lipschitz``; x = u₀ here) uses the expanded form
    ΣΦ*(x) − ⟨f, x⟩ + ΣΦ(f) with its magnitude Σ|terms| (rounding level of line searches).
    Images are linear in x, so that an accelerated method can extrapolate them.

    Parameters
    ----------
    A : Operator (m × n_in)
        The layer's linear map.
    beta : ndarray (m,)
        The bias β.
    activation : Activation
        σ = prox_Ψ.
    data : ndarray (B, m)
        The data rows f, in dom Ψ.
    reg : Regularizer, optional
        J (with its weight); None for J = 0.
    input_shape : tuple of int
        Shape of u₀ (J's item shape when it has none).
    dtype : numpy float dtype
        Dtype of the iterates the solvers pass (β is stored in it).

    Raises
    ------
    DomainError
        If the data lie outside dom Ψ (the data term would be +inf).
    """

    def __init__(
        self,
        A: Operator,
        beta: np.ndarray,
        activation: Activation,
        data: np.ndarray,
        reg=None,
        input_shape: tuple[int, ...] | None = None,
        dtype=np.float64,
    ) -> None:
        self.A, self.activation, self.reg = A, activation, reg
        self.dtype = np.dtype(dtype)
        self.data = data
        activation.check_domain(data, "data")
        self.beta = np.asarray(beta, dtype=self.dtype)
        self.input_shape = (A.shape[1],) if input_shape is None else tuple(input_shape)

    @classmethod
    def of(cls, problem, data: np.ndarray | None = None, dtype=np.float64) -> OneLayerEnergy:
        """The energy of an ``Inversion(..., fidelity="bregman")`` (its data rows by default)."""
        A, beta, activation = problem.lifted.single_layer()
        rows = data_rows(problem) if data is None else data
        return cls(A, beta, activation, rows, problem.reg, problem.lifted.input_shape, dtype)

    # ------------------------------------------------------------------ the model's value
    def pre_activation(self, u0: np.ndarray) -> np.ndarray:
        """x = A u₀ + β for rows u₀ (B, n_in)."""
        return self.A.apply(u0) + self.beta

    def data_term(self, x: np.ndarray) -> np.ndarray:
        """B_Ψ(f, x) per row (B,) at pre-activations x (B, m), from the accurate entrywise
        Bregman terms of the activation."""
        return _row_sums(self.activation.bregman_terms(self.data, x), x.shape[0])

    def energy(self, u0: np.ndarray) -> np.ndarray:
        """E(u₀) = B_Ψ(f, A u₀ + β) + J(u₀) per row (B,)."""
        return self.data_term(self.pre_activation(u0)) + regularizer_rows(
            self.reg, u0, self.input_shape
        )

    def item(self, index: int) -> OneLayerEnergy:
        """The energy of data row ``index`` alone (a batch of one)."""
        return OneLayerEnergy(self.A, self.beta, self.activation, self.data[index : index + 1],
                              self.reg, self.input_shape, self.dtype)

    def feasible_point(self, u0: np.ndarray) -> np.ndarray:
        """The point of dom E next to rows u₀ (B, n_in): u₀ projected onto dom J
        (:meth:`~bregmod.regularizers.Regularizer.project_domain`; a copy)."""
        if self.reg is None:
            return np.array(u0)
        return self.reg.project_domain(u0)

    # ------------------------------------------------------------------ smooth part (solvers)
    @cached_property
    def data_constant(self) -> np.ndarray:
        """ΣΦ(f) per row (B,), the constant of the expanded data term."""
        return _row_sums(self.activation.phi(self.data), self.data.shape[0])

    @cached_property
    def _At_data(self) -> np.ndarray:
        return self.A.apply_adjoint(self.data)

    @cached_property
    def lipschitz(self) -> float:
        """‖A‖² (an upper bound from ``A.norm_bound()``): ∇ of the data term is L-Lipschitz."""
        return self.A.norm_bound() ** 2

    @property
    def lipschitz_note(self) -> str:
        """The Lipschitz bound in words, for ``Result.stats``."""
        return f"L_f = ‖A‖² ≤ {self.lipschitz:.6g}"

    def images(self, u0: np.ndarray) -> tuple[np.ndarray, ...]:
        """The linear images (A u₀,)."""
        return (self.A.apply(u0),)

    def value(self, u0: np.ndarray, images: tuple[np.ndarray, ...]):
        """(h, Σ|terms|) per row at x = A u₀ + β (:meth:`expanded_data_term`)."""
        return self.expanded_data_term(images[0] + self.beta)

    def expanded_data_term(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(h, Σ|terms|) per row: h = ΣΦ*(x) − ⟨f, x⟩ + ΣΦ(f) = B_Ψ(f, x) expanded.

        The magnitude bounds the rounding error of h (about eps · magnitude).
        """
        conj = self.activation._phi_conj(np.asarray(x, dtype=np.float64))
        linear = _batch_dot(self.data, x)
        batch = x.shape[0]
        value = _row_sums(conj, batch) - linear + self.data_constant
        magnitude = _row_sums(np.abs(conj), batch) + np.abs(linear) + np.abs(self.data_constant)
        return value, magnitude

    def objective(self, u0: np.ndarray, images: tuple[np.ndarray, ...]) -> np.ndarray:
        """The data term B_Ψ(f, A u₀ + β) per row, expanded (J is the solvers' prox part)."""
        return self.value(u0, images)[0]

    def gradient(self, u0: np.ndarray, images: tuple[np.ndarray, ...]):
        """(Aᵀ(σ(A u₀ + β) − f), scale), scale = max(‖Aᵀσ(A u₀ + β)‖, ‖Aᵀf‖) per row."""
        x = images[0] + self.beta
        grad = self.A.apply_adjoint(self.activation.prox(x).astype(self.dtype) - self.data)
        norm = np.sqrt(_batch_dot(self._At_data, self._At_data))
        total = grad + self._At_data
        return grad, np.maximum(np.sqrt(_batch_dot(total, total)), norm)

    # ------------------------------------------------------------------ prox-friendly parts
    def prox_data(self, w: np.ndarray, t: float) -> np.ndarray:
        """prox_{t h}(w) = prox_{tΦ*}(w + t f) for h(y) = B_Ψ(f, y) (rows of y), t > 0.

        Like every method of the model, it takes a solver's rows as they are (finite, checked
        once at the solver's entry): the activation's unchecked kernel
        :meth:`~bregmod.activations.Activation._prox_phi_conj` runs, in float64.
        """
        out = self.activation._prox_phi_conj(np.asarray(w + t * self.data, dtype=np.float64), t)
        return out.astype(w.dtype, copy=False)

    def prox_data_conj(self, v: np.ndarray, s: float) -> np.ndarray:
        """prox_{s h₀*}(v) = prox_{sΦ}(v + sβ + f) − f for h₀(x) = B_Ψ(f, x + β).

        h₀*(y) = Φ(y + f) − ⟨y, β⟩ (up to a constant), the data term seen by a dual block.
        """
        prox = self.activation.prox_phi(v + s * self.beta + self.data, s)
        return np.asarray(prox, dtype=v.dtype) - self.data
