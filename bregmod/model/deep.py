"""The deep lifted Bregman energy of a feed-forward chain (docs/math/deep.md, docs/math/solvers.md,
docs/math/training.md).

For a network N = σ_L(W_L … σ_1(W_1 x₀ + b_1) … + b_L) of affine maps W_l (dense matrices or
matrix-free convolutions), biases b_l and admissible activations σ_l = prox_{Ψ_l}, the lifted
Bregman energy of the states x₀, x₁, …, x_L with layer weights γ_l > 0 (default all 1) is

    E_γ(x₀, …, x_L) = Σ_{l=1}^{L} γ_l B_{Ψ_l}(x_l, W_l x_{l−1} + b_l),
    B_Ψ(y, x) = Φ(y) + Φ*(x) − ⟨y, x⟩,   Φ = ½‖·‖² + Ψ.

Every term is ≥ 0 and vanishes exactly on the forward pass x_l = σ_l(W_l x_{l−1} + b_l). Large
weights on the hidden terms (γ_l → ∞ for l < L, γ_L = 1) force the hidden states onto the
forward pass: the penalty view of docs/math/deep.md, whose limit is the reduced problem.
Inversion fixes x_L = f^δ and frees the input x₀ = u (plus J(u)) and the hidden states;
training fixes x₀ and x_L per sample and frees the weights and the hidden states. Both read
the energy, its block gradients and the block prox steps from :class:`DeepBregman`; the
formulas live here only.

Block structure (no σ′ anywhere, docs/math/deep.md):

* ∇_{x_{l−1}} B_{Ψ_l}(x_l, W_l x_{l−1} + b_l) = W_lᵀ(σ_l(W_l x_{l−1} + b_l) − x_l);
* x_l enters term l as γ_l(Φ_l(x_l) − ⟨x_l, W_l x_{l−1} + b_l⟩) and term l + 1 as
  γ_{l+1}(Φ*_{l+1}(W_{l+1} x_l + b_{l+1}) − ⟨x_{l+1}, W_{l+1} x_l⟩): convex in x_l, with the
  smooth part γ_{l+1} W_{l+1}ᵀ(σ_{l+1}(W_{l+1} x_l + b_{l+1}) − x_{l+1}) − γ_l(W_l x_{l−1} + b_l),
  Lipschitz with constant γ_{l+1}‖W_{l+1}‖², and the prox part γ_l Φ_l, whose prox is
  prox_{μγ_lΦ_l}(v) = prox_{t Ψ_l}(v/(1 + μγ_l)), t = μγ_l/(1 + μγ_l).

States are passed as a list ``[x₀, x₁, …, x_L]`` of 2-D arrays of rows, shape (B, n_l) (one
flattened sample per row, float64 or float32); :attr:`DeepBregman.shapes` holds the state
shapes (e.g. (C, H, W) for convolutions). Everything is batched over the samples.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from bregmod._checks import finite_array, positive_scalar
from bregmod.activations import Activation
from bregmod.errors import ShapeError
from bregmod.network import Conv2d, Dense, Network, Sequential
from bregmod.operators import Conv2dOperator, MatrixOperator, Operator

__all__ = ["DeepBregman", "ParameterGradient"]

Shape = tuple[int, ...]


class ParameterGradient(NamedTuple):
    """Gradient of the mean energy (1/B) Σ_i E_i with respect to one layer's parameters.

    Attributes
    ----------
    weight : ndarray
        Shape (m, n) for a dense layer (a ``MatrixOperator``), the kernel's shape
        (C_out, C_in, kh, kw) for a convolution.
    bias : ndarray
        Shape (m,) for a dense layer; (C_out,) for a convolution, whose bias is one value per
        output channel (the gradient sums over the channel's pixels).
    """

    weight: np.ndarray
    bias: np.ndarray


def _as_like(values: np.ndarray, like: np.ndarray) -> np.ndarray:
    """``values`` in the floating dtype of ``like`` (activations compute in float64)."""
    return values.astype(like.dtype, copy=False)


class DeepBregman:
    """The deep lifted Bregman energy E_γ = Σ_l γ_l B_{Ψ_l}(x_l, W_l x_{l−1} + b_l) of a chain.

    Parameters
    ----------
    operators : sequence of Operator
        W_1, …, W_L (``MatrixOperator`` for dense layers, ``Conv2dOperator`` for
        convolutions, or any `bregmod.operators.Operator`); W_l maps ℝ^{n_{l−1}} → ℝ^{n_l}.
    biases : sequence of array_like
        b_1, …, b_L, each of shape (n_l,); for a ``Conv2dOperator`` also (C_out,), one value per
        output channel (broadcast over its pixels). ``None`` entries mean zero.
    activations : sequence of Activation
        σ_1 = prox_{Ψ_1}, …, σ_L. A vector activation (softmax, sparsemax) acts on the whole
        flattened state of its layer, as in `bregmod.lifted.lift`.
    shapes : sequence of tuple, optional
        Shapes of the states x₀, …, x_L (default: the operators' ``in_shape``/``out_shape``
        where they have one, else flat vectors).
    weights : sequence of float, optional
        The layer weights γ_1, …, γ_L > 0 of the terms (default all 1, the energy of the
        paper). :meth:`with_weights` gives the same chain with other weights.

    Attributes
    ----------
    depth : int
        L, the number of layers.
    operators, biases, activations, shapes, sizes : tuple
        W_l, b_l (flat, shape (n_l,)), σ_l for l = 1…L (index l − 1), and the shapes and sizes
        n_0, …, n_L of the states.
    weights : tuple of float
        γ_1, …, γ_L.
    weighted : bool
        Whether some γ_l ≠ 1.

    Raises
    ------
    ShapeError
        Consecutive operators do not chain, a bias or shape has the wrong size.
    TypeError
        A non-Operator or non-Activation entry.
    ValueError
        Lists of different lengths, an empty chain, NaN/Inf in a bias, a weight that is not a
        finite positive number.
    """

    def __init__(
        self,
        operators: Sequence[Operator],
        biases: Sequence,
        activations: Sequence[Activation],
        shapes: Sequence[Shape] | None = None,
        weights: Sequence[float] | None = None,
    ) -> None:
        operators, biases, activations = list(operators), list(biases), list(activations)
        if not operators:
            raise ValueError("DeepBregman needs at least one layer")
        if not len(operators) == len(biases) == len(activations):
            raise ValueError(
                f"DeepBregman: got {len(operators)} operators, {len(biases)} biases and "
                f"{len(activations)} activations; give one of each per layer"
            )
        for l, (op, act) in enumerate(zip(operators, activations, strict=True), start=1):
            if not isinstance(op, Operator):
                raise TypeError(
                    f"DeepBregman: W_{l} must be a bregmod.operators.Operator (e.g. "
                    f"MatrixOperator(W)), got {type(op).__name__}"
                )
            if not isinstance(act, Activation):
                raise TypeError(
                    f"DeepBregman: σ_{l} must be a bregmod Activation, got {type(act).__name__}"
                )
            if l > 1 and op.shape[1] != operators[l - 2].shape[0]:
                raise ShapeError(
                    f"DeepBregman: W_{l} has {op.shape[1]} columns but W_{l - 1} has "
                    f"{operators[l - 2].shape[0]} rows; the layers do not chain"
                )
        self._operators = tuple(operators)
        self._activations = tuple(activations)
        self._biases = tuple(
            self._flat_bias(b, op, l)
            for l, (b, op) in enumerate(zip(biases, operators, strict=True), start=1)
        )
        sizes = (operators[0].shape[1], *(op.shape[0] for op in operators))
        self._sizes = tuple(int(n) for n in sizes)
        self._shapes = self._state_shapes(shapes)
        self._weights = self._layer_weights(weights)

    # ------------------------------------------------------------------ construction
    def _layer_weights(self, weights) -> tuple[float, ...]:
        if weights is None:
            return (1.0,) * self.depth
        weights = list(weights) if not np.isscalar(weights) else [weights]
        if len(weights) != self.depth:
            raise ValueError(
                f"DeepBregman: weights must list one γ_l per layer ({self.depth}), got "
                f"{len(weights)}"
            )
        return tuple(
            positive_scalar(g, f"layer weight γ_{l}") for l, g in enumerate(weights, start=1)
        )

    def with_weights(self, weights: Sequence[float]) -> DeepBregman:
        """The same chain with the layer weights γ_1, …, γ_L (shares the operators)."""
        return DeepBregman(self._operators, self._biases, self._activations, self._shapes,
                           weights)

    @staticmethod
    def _flat_bias(b, op: Operator, l: int) -> np.ndarray:
        m = op.shape[0]
        if b is None:
            flat = np.zeros(m)
        else:
            flat = np.array(finite_array(b, f"b_{l} of DeepBregman")).ravel()
            if isinstance(op, Conv2dOperator) and flat.size == op.out_shape[0] != m:
                flat = np.repeat(flat, op.out_shape[1] * op.out_shape[2])
            if flat.shape != (m,):
                raise ShapeError(f"DeepBregman: b_{l} must have {m} entries, got {flat.size}")
        flat.flags.writeable = False
        return flat

    def _state_shapes(self, shapes) -> tuple[Shape, ...]:
        if shapes is None:
            first = getattr(self._operators[0], "in_shape", (self._sizes[0],))
            rest = [getattr(op, "out_shape", (op.shape[0],)) for op in self._operators]
            shapes = [first, *rest]
        shapes = [tuple(int(d) for d in s) for s in shapes]
        if len(shapes) != self.depth + 1:
            raise ValueError(
                f"DeepBregman: shapes must list the {self.depth + 1} states x_0..x_{self.depth}, "
                f"got {len(shapes)}"
            )
        for l, (shape, n) in enumerate(zip(shapes, self._sizes, strict=True)):
            if int(np.prod(shape, dtype=int)) != n:
                raise ShapeError(f"DeepBregman: shape {shape} of x_{l} does not have {n} entries")
        return tuple(shapes)

    @classmethod
    def from_network(cls, network: Network) -> DeepBregman:
        """The energy of a feed-forward network: a ``Sequential`` (or single layer) of ``Dense``
        and ``Conv2d`` layers, every layer a term (an affine last layer gives the quadratic
        term B_Identity(x_L, W_L x_{L−1} + b_L) = ½‖x_L − W_L x_{L−1} − b_L‖²).

        Raises
        ------
        TypeError
            ``network`` is not a bregmod network, or one of its layers is not ``Dense`` or
            ``Conv2d`` (e.g. ``Residual``, ``ShallowSum``); the message names the layer.
        """
        if not isinstance(network, Network):
            raise TypeError(
                f"DeepBregman.from_network needs a bregmod network, got {type(network).__name__}"
            )
        for l, layer in enumerate(network.layers, start=1):
            if not isinstance(layer, (Dense, Conv2d)):
                raise TypeError(
                    f"the deep Bregman model covers feed-forward chains of Dense and Conv2d "
                    f"layers; layer {l} is {layer!r} ({layer.kind})"
                )
        layers = network.layers
        return cls(
            [layer.operator for layer in layers],
            [layer.bias for layer in layers],
            [layer.activation for layer in layers],
            [layers[0].in_shape, *(layer.out_shape for layer in layers)],
        )

    def to_network(self) -> Sequential:
        """The network σ_L(W_L … σ_1(W_1 x + b_1) … + b_L) as a ``Sequential`` of ``Dense``
        (``MatrixOperator`` weights) and ``Conv2d`` (``Conv2dOperator`` weights) layers.

        The layers keep the state shapes (:attr:`shapes`): x_0 is the network's input shape
        (a convolution's own (C, H, W) when it reads x_0) and x_l the output shape of layer l,
        except that a state read by a convolution has that convolution's (C, H, W), so that
        ``DeepBregman.from_network(net).to_network()`` has the shapes of ``net``.

        Raises
        ------
        TypeError
            A layer's operator is neither a ``MatrixOperator`` nor a ``Conv2dOperator``.
        ValueError
            A convolution's bias is not constant on each output channel.
        """
        shapes = list(self._shapes)
        for l, op in enumerate(self._operators):
            if isinstance(op, Conv2dOperator):
                shapes[l] = op.in_shape
        layers = []
        for l in range(1, self.depth + 1):
            op, b, act = self.operator(l), self._biases[l - 1], self._activations[l - 1]
            if isinstance(op, MatrixOperator):
                matrix = op.to_dense()
                layers.append(
                    Dense(matrix, b, act, in_shape=shapes[l - 1], out_shape=shapes[l])
                )
            elif isinstance(op, Conv2dOperator):
                per_channel = b.reshape(op.out_shape[0], -1)
                if not (per_channel == per_channel[:, :1]).all():
                    raise ValueError(
                        f"layer {l}: a Conv2d bias is one value per output channel; b_{l} varies "
                        "inside a channel"
                    )
                top, bottom, left, right = op.padding
                padding = (top, left) if (top, left) == (bottom, right) else "same"
                layers.append(
                    Conv2d(op.kernel, per_channel[:, 0], act, in_shape=op.in_shape,
                           stride=op.stride, padding=padding, out_shape=shapes[l])
                )
            else:
                raise TypeError(
                    f"layer {l}: {op!r} is neither a dense matrix nor a convolution; no layer "
                    "class declares it"
                )
        return Sequential(*layers)

    # ------------------------------------------------------------------ accessors
    depth = property(lambda self: len(self._operators), doc="L, the number of layers.")
    operators = property(lambda self: self._operators, doc="(W_1, …, W_L).")
    biases = property(lambda self: self._biases, doc="(b_1, …, b_L), flat, read-only.")
    activations = property(lambda self: self._activations, doc="(σ_1, …, σ_L).")
    shapes = property(lambda self: self._shapes, doc="Shapes of x_0, …, x_L.")
    sizes = property(lambda self: self._sizes, doc="Sizes n_0, …, n_L of x_0, …, x_L.")
    weights = property(lambda self: self._weights, doc="The layer weights (γ_1, …, γ_L).")
    weighted = property(
        lambda self: any(g != 1.0 for g in self._weights), doc="Whether some γ_l ≠ 1."
    )

    def _layer(self, l: int) -> int:
        if isinstance(l, bool) or not isinstance(l, (int, np.integer)) or not 1 <= l <= self.depth:
            raise ValueError(f"layer index must be an integer in 1..{self.depth}, got {l!r}")
        return int(l)

    def operator(self, l: int) -> Operator:
        """W_l (layers are numbered 1…L)."""
        return self._operators[self._layer(l) - 1]

    def bias(self, l: int) -> np.ndarray:
        """b_l, flat (n_l,)."""
        return self._biases[self._layer(l) - 1]

    def activation(self, l: int) -> Activation:
        """σ_l = prox_{Ψ_l}."""
        return self._activations[self._layer(l) - 1]

    def __repr__(self) -> str:
        chain = " → ".join(
            [str(self._sizes[0])]
            + [f"{n} ({a.name})" for n, a in zip(self._sizes[1:], self._activations, strict=True)]
        )
        weights = f", weights {tuple(f'{g:g}' for g in self._weights)}" if self.weighted else ""
        return f"DeepBregman({chain}{weights})"

    # ------------------------------------------------------------------ validation
    def _rows(self, x, k: int, what: str) -> np.ndarray:
        """``x`` as rows (B, n_k) of a float dtype, else ShapeError."""
        arr = np.asarray(x)
        if arr.dtype not in (np.float32, np.float64):
            arr = arr.astype(np.float64)
        if arr.ndim != 2 or arr.shape[1] != self._sizes[k]:
            raise ShapeError(
                f"{what} must be a 2-D array of rows (B, {self._sizes[k]}) (x_{k} flattened, "
                f"shape {self._shapes[k]}), got shape {arr.shape}"
            )
        return arr

    def _states(self, states, first: int = 0, last: int | None = None) -> list[np.ndarray]:
        """Validate the states x_first..x_last of the list ``[x_0, …, x_L]``."""
        if not isinstance(states, (list, tuple)) or len(states) != self.depth + 1:
            got = len(states) if isinstance(states, (list, tuple)) else type(states).__name__
            raise ShapeError(
                f"states must be a list [x_0, …, x_{self.depth}] of {self.depth + 1} arrays, "
                f"got {got}"
            )
        last = self.depth if last is None else last
        out = list(states)
        batch = None
        for k in range(first, last + 1):
            out[k] = self._rows(states[k], k, f"state x_{k}")
            if batch is None:
                batch = out[k].shape[0]
            elif out[k].shape[0] != batch:
                raise ShapeError(
                    f"states have different batch sizes: x_{first} has {batch} rows, x_{k} has "
                    f"{out[k].shape[0]}"
                )
        return out

    # ------------------------------------------------------------------ the energy
    def forward(self, x0) -> list[np.ndarray]:
        """The forward-pass states [x_0, σ_1(W_1 x_0 + b_1), …, x_L], on which E = 0.

        Parameters
        ----------
        x0 : array_like
            Rows (B, n_0), or one input / a batch in the input shape ``shapes[0]``.

        Returns
        -------
        list of ndarray
            The states as rows (B, n_l), in the dtype of ``x0`` (float32 or float64).
        """
        arr = np.asarray(x0)
        if arr.dtype not in (np.float32, np.float64):
            arr = arr.astype(np.float64)
        if arr.shape == self._shapes[0]:
            arr = arr.reshape(1, -1)
        elif arr.shape[1:] == self._shapes[0] and arr.ndim == len(self._shapes[0]) + 1:
            arr = arr.reshape(arr.shape[0], -1)
        states = [self._rows(arr, 0, "x_0")]
        for l in range(1, self.depth + 1):
            pre = self.preactivation(l, states[-1])
            states.append(_as_like(self._activations[l - 1].prox(pre), pre))
        return states

    def preactivation(self, l: int, x_prev) -> np.ndarray:
        """W_l x_{l−1} + b_l for rows x_{l−1} of shape (B, n_{l−1})."""
        op = self.operator(l)
        x_prev = self._rows(x_prev, l - 1, f"x_{l - 1}")
        return op.apply(x_prev) + self._biases[l - 1].astype(x_prev.dtype, copy=False)

    def _term_rows(self, l: int, y: np.ndarray, pre: np.ndarray) -> np.ndarray:
        terms = self._activations[l - 1].bregman_terms(y, pre)
        return terms.reshape(y.shape[0], -1).sum(axis=1)

    def terms(self, states) -> np.ndarray:
        """B_{Ψ_l}(x_l, W_l x_{l−1} + b_l) per sample and layer, shape (B, L) (float64), without
        the weights γ_l.

        Raises
        ------
        DomainError
            Some x_l lies outside dom Ψ_l (the term is +inf there), naming the entries.
        """
        states = self._states(states)
        columns = [
            self._term_rows(l, states[l], self.preactivation(l, states[l - 1]))
            for l in range(1, self.depth + 1)
        ]
        return np.stack(columns, axis=1)

    def value(self, states) -> np.ndarray:
        """E_γ(x_0, …, x_L) = Σ_l γ_l B_{Ψ_l}(x_l, W_l x_{l−1} + b_l) per sample, shape (B,)."""
        terms = self.terms(states)
        return (terms * np.asarray(self._weights)).sum(axis=1) if self.weighted else terms.sum(
            axis=1)

    def layer_residual(self, l: int, states) -> np.ndarray:
        """σ_l(W_l x_{l−1} + b_l) − x_l = ∇ of term l in its pre-activation, rows (B, n_l)."""
        states = self._states(states, l - 1, self._layer(l))
        pre = self.preactivation(l, states[l - 1])
        return _as_like(self._activations[l - 1].prox(pre), pre) - states[l]

    def input_gradient(self, l: int, states) -> np.ndarray:
        """∇_{x_{l−1}} B_{Ψ_l}(x_l, W_l x_{l−1} + b_l) = W_lᵀ(σ_l(W_l x_{l−1} + b_l) − x_l)."""
        return self.operator(l).apply_adjoint(self.layer_residual(l, states))

    def state_gradient(self, k: int, states) -> np.ndarray:
        """The gradient in x_k of the smooth part of E_γ (all of E_γ but γ_k Φ_k(x_k)), rows
        (B, n_k):

            γ_{k+1} W_{k+1}ᵀ(σ_{k+1}(W_{k+1} x_k + b_{k+1}) − x_{k+1}) − γ_k (W_k x_{k−1} + b_k),

        the first part for k < L, the second for k ≥ 1 (for k = 0 it is the gradient of E_γ in
        the input). Lipschitz in x_k with constant :meth:`state_lipschitz` (k).
        """
        k = self._state_index(k)
        states = self._states(states, max(k - 1, 0), min(k + 1, self.depth))
        grad = None
        if k < self.depth:
            grad = self._weighted(k + 1, self.input_gradient(k + 1, states))
        if k >= 1:
            pre = self._weighted(k, self.preactivation(k, states[k - 1]))
            grad = -pre if grad is None else grad - pre
        return grad

    def _weighted(self, l: int, values):
        """γ_l · values (values itself when γ_l = 1, so the unweighted energy is unchanged)."""
        gamma = self._weights[l - 1]
        return values if gamma == 1.0 else gamma * values

    def _state_index(self, k: int) -> int:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= self.depth:
            raise ValueError(f"state index must be an integer in 0..{self.depth}, got {k!r}")
        return int(k)

    def state_lipschitz(self, k: int) -> float:
        """A Lipschitz constant of :meth:`state_gradient` (k) in x_k: γ_{k+1}‖W_{k+1}‖² (σ is
        1-Lipschitz and monotone), from the operator's ``norm_bound()``; 0 for k = L."""
        k = self._state_index(k)
        return 0.0 if k == self.depth else self._weighted(
            k + 1, self._operators[k].norm_bound() ** 2)

    def prox_phi(self, l: int, v, mu: float) -> np.ndarray:
        """prox_{μΦ_l}(v), Φ_l = ½‖·‖² + Ψ_l, rows (B, n_l): `Activation.prox_phi` of layer l."""
        mu = positive_scalar(mu, "prox step μ")
        v = self._rows(v, self._layer(l), f"v (a point of x_{l})")
        return _as_like(self._activations[l - 1].prox_phi(v, mu), v)

    def state_step(self, l: int, states, mu: float) -> np.ndarray:
        """One proximal gradient step on the hidden state x_l (1 ≤ l < L), the others fixed:

            x_l ← prox_{μγ_lΦ_l}(x_l − μ(γ_{l+1} W_{l+1}ᵀ(σ_{l+1}(W_{l+1} x_l + b_{l+1}) − x_{l+1})
                                          − γ_l (W_l x_{l−1} + b_l))).

        It does not increase E_γ when μ ≤ 1/(γ_{l+1}‖W_{l+1}‖²) (:meth:`state_lipschitz`); its
        fixed points are the minimisers of E_γ in x_l (E_γ is convex in x_l). The update of
        PALM inversion and of lifted training.
        """
        l = self._layer(l)
        if l == self.depth:
            raise ValueError(
                f"x_{l} = x_L is the output state, fixed by the data or the target; state_step "
                f"updates the hidden states x_1..x_{self.depth - 1}"
            )
        mu = positive_scalar(mu, "prox step μ")
        states = self._states(states, l - 1, l + 1)
        return self.prox_phi(l, states[l] - mu * self.state_gradient(l, states),
                             self._weighted(l, mu))

    # ------------------------------------------------------------------ training
    def param_gradient(self, l: int, states) -> ParameterGradient:
        """Gradient of the mean energy (1/B) Σ_i E_γ,i in the parameters of layer l:

            ∂/∂W_l = (γ_l/B) Σ_i (σ_l(W_l x_i^{l−1} + b_l) − x_i^l)(x_i^{l−1})ᵀ,
            ∂/∂b_l = (γ_l/B) Σ_i (σ_l(W_l x_i^{l−1} + b_l) − x_i^l),

        no σ′ (docs/math/training.md). For a convolution the weight gradient is the kernel gradient
        (the adjoint of W ↦ W x contracted with the residual) and the bias gradient is summed
        over each output channel's pixels.

        Raises
        ------
        TypeError
            W_l is neither a ``MatrixOperator`` nor a ``Conv2dOperator``.
        """
        l = self._layer(l)
        states = self._states(states, l - 1, l)
        residual = self._weighted(l, self.layer_residual(l, states))
        x_prev = states[l - 1]
        batch = residual.shape[0]
        op = self._operators[l - 1]
        if isinstance(op, MatrixOperator):
            return ParameterGradient(residual.T @ x_prev / batch, residual.sum(axis=0) / batch)
        if isinstance(op, Conv2dOperator):
            kernel = op.kernel_gradient(x_prev, residual) / batch
            per_channel = residual.reshape(batch, op.out_shape[0], -1).sum(axis=(0, 2)) / batch
            return ParameterGradient(kernel, per_channel)
        raise TypeError(
            f"param_gradient: W_{l} is {op!r}; gradients are implemented for dense matrices "
            "(MatrixOperator) and convolutions (Conv2dOperator)"
        )
