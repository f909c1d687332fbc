"""Declaring networks: layers and their sequential composition (docs/math/lifted.md).

Layers (each one is itself a network):

- ``Dense``:      u ↦ σ(W u + b)
- ``Conv2d``:     u ↦ σ(k ∗ u + b), a matrix-free convolution, b one value per output channel
- ``Residual``:   u ↦ u + V σ(W u + b), with V = Wᵀ unless another V is given
- ``ShallowSum``: u ↦ Σ_j c_j σ_j(w_j u + b_j), u scalar or a vector

``Sequential(*layers)`` composes layers. Every network is callable on one input or on a batch
(leading batch axis), exposes all intermediate states through ``states``, and compiles into the
compact lifted form N(u₀) = K u + c, M u = V prox_Ψ(W u + b) with ``lift`` (`bregmod.lifted`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import scipy.sparse as sp

from bregmod._checks import as_batch, finite_array, from_batch, storage_dtype
from bregmod.activations import Activation, Identity
from bregmod.errors import ShapeError
from bregmod.operators import Conv2dOperator, IdentityOperator, MatrixOperator, Operator

if TYPE_CHECKING:
    from bregmod.lifted import LiftedNetwork, _Builder

Shape = tuple[int, ...]


class _Evaluation(NamedTuple):
    """One layer's forward pass on a batch of flat inputs (every array is (batch, size)).

    ``z`` holds the values of the layer's z blocks, ``u`` those of its u blocks (in the order
    the layer's ``_lower`` creates them), ``out`` the layer's output.
    """

    z: list[np.ndarray]
    u: list[np.ndarray]
    out: np.ndarray


def _activation(activation, owner: str) -> Activation:
    if activation is None:
        return Identity()
    if not isinstance(activation, Activation):
        raise TypeError(
            f"{owner}: activation must be a bregmod.activations.Activation, "
            f"got {type(activation).__name__}"
        )
    return activation


def _matrix(W, name: str, owner: str) -> np.ndarray:
    """W as a finite 2-D array in its storage dtype (float32 kept, else float64)."""
    arr = finite_array(W, f"{name} of {owner}", storage_dtype(W))
    if arr.ndim != 2 or arr.size == 0:
        raise ShapeError(f"{owner}: {name} must be a non-empty 2-D array, got shape {arr.shape}")
    return arr


def _vector(b, size: int, name: str, owner: str) -> np.ndarray:
    """``b`` (zeros for ``None``) as a read-only copy of shape (size,)."""
    arr = np.zeros(size) if b is None else np.array(finite_array(b, f"{name} of {owner}"))
    if arr.shape != (size,):
        raise ShapeError(f"{owner}: {name} must have shape ({size},), got {arr.shape}")
    arr.flags.writeable = False
    return arr


def _shape(shape, name: str, owner: str) -> Shape:
    try:
        dims = tuple(int(d) for d in shape)
    except (TypeError, ValueError):
        raise TypeError(f"{owner}: {name} must be a tuple of ints, got {shape!r}") from None
    if any(d <= 0 for d in dims):
        raise ShapeError(f"{owner}: {name} must have positive dimensions, got {dims}")
    return dims


def _reshaped(out_shape, natural: Shape, owner: str) -> Shape:
    """``out_shape`` (default ``natural``) checked to hold as many entries as ``natural``."""
    if out_shape is None:
        return natural
    shape = _shape(out_shape, "out_shape", owner)
    if int(np.prod(shape)) != int(np.prod(natural)):
        raise ShapeError(
            f"{owner}: out_shape {shape} has {int(np.prod(shape))} entries, but the layer "
            f"outputs {int(np.prod(natural))} {natural}"
        )
    return shape


class Network(ABC):
    """A declared network u₀ ↦ N(u₀): a single `Layer` or a `Sequential` of layers."""

    @property
    @abstractmethod
    def layers(self) -> tuple[Layer, ...]:
        """The layers in order (a single layer is its own only layer)."""

    @property
    def in_shape(self) -> Shape:
        """Shape of the input u₀ (without batch axis)."""
        return self.layers[0].in_shape

    @property
    def out_shape(self) -> Shape:
        """Shape of the output N(u₀) (without batch axis)."""
        return self.layers[-1].out_shape

    def states(self, x) -> list[np.ndarray]:
        """All states of the forward pass: ``[u₀, u₁, …, u_L]`` with u_j the output of layer j.

        Parameters
        ----------
        x : array_like
            One input of shape ``in_shape`` or a batch of shape ``(batch, *in_shape)``.

        Returns
        -------
        list of ndarray
            u_j in the output shape of layer j (with the batch axis if ``x`` had one).
        """
        flat, batched = as_batch(x, self.in_shape, "network input")
        states = [flat]
        for layer in self.layers:
            states.append(layer._evaluate(states[-1], folded=False).out)
        shapes = [self.in_shape] + [layer.out_shape for layer in self.layers]
        return [from_batch(s, shape, batched) for s, shape in zip(states, shapes, strict=True)]

    def __call__(self, x) -> np.ndarray:
        """The forward pass N(x) for one input or a batch (leading batch axis)."""
        return self.states(x)[-1]

    def lift(self, check_adjoint: bool = True) -> LiftedNetwork:
        """Compile into the lifted form N(u₀) = K u + c, M u = V prox_Ψ(W u + b).

        See `bregmod.lifted.lift`.
        """
        from bregmod.lifted import lift

        return lift(self, check_adjoint=check_adjoint)


class Layer(Network):
    """One layer; subclasses define the forward pass and the lowering into the lifted form
    (``_lower``, through the builder protocol of :class:`bregmod.lifted.LayerLowering`)."""

    #: Whether the layer is residual, u_j = u_{j−1} + V_j z_j (read by the compiler).
    residual = False

    def __init__(self, in_shape: Shape, out_shape: Shape) -> None:
        self._in_shape = in_shape
        self._out_shape = out_shape

    @property
    def layers(self) -> tuple[Layer, ...]:
        return (self,)

    @property
    def in_shape(self) -> Shape:
        return self._in_shape

    @property
    def out_shape(self) -> Shape:
        return self._out_shape

    @property
    def kind(self) -> str:
        """The layer type used in messages (``"Dense"``, ``"Residual"``, …)."""
        return type(self).__name__

    @abstractmethod
    def _evaluate(self, x: np.ndarray, folded: bool) -> _Evaluation:
        """Forward pass on flat inputs x of shape (batch, in_size).

        ``folded`` says whether `_lower` folded the layer's output map into K, c.
        """

    @abstractmethod
    def _lower(self, builder: _Builder, u_in: int, label: str, last: bool) -> int | None:
        """Add this layer's blocks to ``builder``; return the index of its output u block.

        ``u_in`` is the index of the input u block. A ``last`` layer whose output map is
        affine may fold that map into K, c (`_Builder.set_output`) and return ``None``.
        """


class _AffineActivationLayer(Layer):
    """u ↦ σ(A u + β) for a linear operator A (dense matrix or convolution).

    Lifted: z = σ(A u_{j−1} + β), the constraint u_j = z (M and V identity on the blocks), and
    A at (z block, u block j−1) in W.
    """

    #: Whether the layer is affine (``Identity`` activation) and may be folded into K, c.
    _foldable = False

    def __init__(
        self, operator: Operator, bias: np.ndarray, activation: Activation, in_shape, out_shape
    ) -> None:
        super().__init__(in_shape, out_shape)
        self.operator = operator
        self.bias = bias
        self.activation = activation

    def _evaluate(self, x: np.ndarray, folded: bool) -> _Evaluation:
        pre = self.operator.apply(x) + self.bias
        if folded:
            return _Evaluation([], [], pre)
        z = self.activation.prox(pre)
        return _Evaluation([z], [z], z)

    def _lower(self, builder: _Builder, u_in: int, label: str, last: bool) -> int | None:
        # Fold an affine last layer, unless that would leave the lifted form without z blocks.
        if last and self._foldable and builder.z_blocks:
            builder.set_output({u_in: self.operator}, self.bias)
            return None
        n = self.bias.size
        z = builder.add_z(label, self.out_shape, self.activation, self.bias)
        u = builder.add_u(label, self.out_shape)
        row = builder.add_constraint(f"{label}: {builder.u_ref(u)} = {builder.z_ref(z)}", n)
        builder.W[z, u_in] = self.operator
        builder.M[row, u] = IdentityOperator(n)
        builder.V[row, z] = IdentityOperator(n)
        return u


class Dense(_AffineActivationLayer):
    """Fully connected layer u ↦ σ(W u + b).

    Parameters
    ----------
    W : array_like, shape (m, n)
        Weights, stored in their dtype when float32 (half the memory; solve with
        ``dtype=np.float32`` to iterate in it, see `bregmod.operators.MatrixOperator`), else
        float64. Biases, kernels and data are always float64.
    b : array_like, shape (m,), optional
        Bias (zero by default).
    activation : Activation, optional
        σ = prox_Ψ (``Identity()`` by default). Vector activations act on the whole output.
    in_shape : tuple of int, optional
        Shape of the input when it is not a vector (e.g. ``(C, H, W)`` after a ``Conv2d``);
        the input is flattened in C order. Its size must be n. Default ``(n,)``.
    out_shape : tuple of int, optional
        Shape of the output (the m values in C order, e.g. ``(C, H, W)`` before a ``Conv2d``).
        Its size must be m. Default ``(m,)``.

    Notes
    -----
    As the last layer of a network with ``Identity`` activation (and at least one layer
    before it that creates a z block), the layer is folded into the output map:
    N(u₀) = W u_{L−1} + b = K u + c, and it creates no z block.
    """

    def __init__(
        self, W, b=None, activation: Activation | None = None, in_shape=None, out_shape=None
    ) -> None:
        W = _matrix(W, "W", "Dense")
        m, n = W.shape
        activation = _activation(activation, "Dense")
        if in_shape is None:
            in_shape = (n,)
        else:
            in_shape = _shape(in_shape, "in_shape", "Dense")
            if int(np.prod(in_shape)) != n:
                raise ShapeError(
                    f"Dense: in_shape {in_shape} has {int(np.prod(in_shape))} entries, "
                    f"but W has {n} columns"
                )
        super().__init__(
            MatrixOperator(W, name="W of Dense"),
            _vector(b, m, "b", "Dense"),
            activation,
            in_shape,
            _reshaped(out_shape, (m,), "Dense"),
        )
        self.W = self.operator.matrix
        self.b = self.bias
        self._foldable = isinstance(activation, Identity)

    def __repr__(self) -> str:
        m, n = self.W.shape
        return f"Dense({n}→{m}, {self.activation.name})"


class Conv2d(_AffineActivationLayer):
    """Convolutional layer u ↦ σ(k ∗ u + b) on states of shape (C, H, W).

    Parameters
    ----------
    kernel : array_like, shape (C_out, C_in, kh, kw)
        Convolution kernel (cross-correlation, as in deep-learning libraries); applied matrix-free
        by `bregmod.operators.Conv2dOperator`, whose adjoint is the transposed convolution.
    b : array_like, shape (C_out,), optional
        Bias, one value per output channel (broadcast over the image); zero by default.
    activation : Activation, optional
        σ = prox_Ψ (``Identity()`` by default). Vector activations act on the whole output.
    in_shape : tuple (C_in, H, W)
        Shape of the input state.
    stride, padding : int or pair of int
        Passed to `Conv2dOperator`.
    out_shape : tuple of int, optional
        Shape of the output, its entries in C order (e.g. ``(C_out·H_out·W_out,)`` to flatten
        it). Default ``(C_out, H_out, W_out)``.
    """

    def __init__(
        self,
        kernel,
        b=None,
        activation: Activation | None = None,
        *,
        in_shape,
        stride=1,
        padding=0,
        out_shape=None,
    ) -> None:
        # A private float64 copy (kernels are small): the operator stores it read-only.
        kernel = np.array(finite_array(kernel, "kernel of Conv2d"))
        activation = _activation(activation, "Conv2d")
        operator = Conv2dOperator(
            kernel, _shape(in_shape, "in_shape", "Conv2d"), stride=stride, padding=padding
        )
        C_out, H_out, W_out = operator.out_shape
        channel_bias = _vector(b, C_out, "b", "Conv2d")
        bias = np.repeat(channel_bias, H_out * W_out)
        out_shape = _reshaped(out_shape, operator.out_shape, "Conv2d")
        super().__init__(operator, bias, activation, operator.in_shape, out_shape)
        self.kernel = operator.kernel
        self.b = channel_bias

    def __repr__(self) -> str:
        return f"Conv2d({self.in_shape}→{self.out_shape}, {self.activation.name})"


class Residual(Layer):
    """Residual layer u ↦ u + V σ(W u + b).

    Parameters
    ----------
    W : array_like, shape (m, n)
        Weights of the pre-activation.
    b : array_like, shape (m,), optional
        Bias (zero by default).
    activation : Activation, optional
        σ = prox_Ψ (``Identity()`` by default).
    V : array_like, shape (n, m), optional
        Output weights. ``None`` means V = Wᵀ, the case covered by the paper's convexity
        certificate (docs/math/certificates.md); any other V (e.g. −Wᵀ) is allowed.

    Notes
    -----
    Lifted (docs/math/lifted.md): z_j = σ(W u_{j−1} + b) and the constraint u_j − u_{j−1} = V z_j.
    """

    residual = True

    def __init__(self, W, b=None, activation: Activation | None = None, V=None) -> None:
        W = _matrix(W, "W", "Residual")
        m, n = W.shape
        self.operator = MatrixOperator(W, name="W of Residual")
        self.W = self.operator.matrix
        self.b = _vector(b, m, "b", "Residual")
        self.activation = _activation(activation, "Residual")
        if V is not None:
            V = _matrix(V, "V", "Residual")
            if V.shape != (n, m):
                raise ShapeError(
                    f"Residual: V must have shape {(n, m)} (the shape of Wᵀ for W of shape "
                    f"{W.shape}), got {V.shape}"
                )
        #: True when V = Wᵀ exactly (then V is compiled as the adjoint of W).
        self.v_is_wt = V is None or np.array_equal(V, self.W.T)
        if self.v_is_wt:
            self.V_operator = self.operator.H
            self.V = self.W.T
        else:
            self.V_operator = MatrixOperator(V, name="V of Residual")
            self.V = self.V_operator.matrix
        super().__init__((n,), (n,))

    def _evaluate(self, x: np.ndarray, folded: bool) -> _Evaluation:
        z = self.activation.prox(self.operator.apply(x) + self.b)
        out = x + self.V_operator.apply(z)
        return _Evaluation([z], [out], out)

    def _lower(self, builder: _Builder, u_in: int, label: str, last: bool) -> int | None:
        m, n = self.W.shape
        z = builder.add_z(label, (m,), self.activation, self.b)
        u = builder.add_u(label, (n,))
        row = builder.add_constraint(
            f"{label}: {builder.u_ref(u)} − {builder.u_ref(u_in)} = V {builder.z_ref(z)}", n
        )
        builder.W[z, u_in] = self.operator
        builder.M[row, u_in] = IdentityOperator(n, scale=-1.0)
        builder.M[row, u] = IdentityOperator(n)
        builder.V[row, z] = self.V_operator
        return u

    def __repr__(self) -> str:
        m, n = self.W.shape
        v = "Wᵀ" if self.v_is_wt else "V"
        return f"Residual({n}, width {m}, {self.activation.name}, {v})"


class ShallowSum(Layer):
    """Shallow sum u ↦ Σ_j c_j σ_j(w_j u + b_j), j = 1…m (a two-layer network).

    Parameters
    ----------
    w : array_like, shape (m,) or (m, d)
        Inner weights: shape (m,) for a scalar input u (``in_shape == ()``), (m, d) for u ∈ ℝᵈ.
    b : array_like, shape (m,)
        Inner biases.
    c : array_like, shape (m,)
        Outer weights; the output is a scalar (``out_shape == ()``).
    activation : Activation or sequence of m Activations
        One activation for all units (a vector activation then acts on all m units), or one
        entrywise activation per unit.

    Notes
    -----
    Lifted (docs/math/lifted.md) as the hidden state u₁ = σ(w u₀ + b) with u = (u₀, u₁) and the
    affine output N(u₀) = (0, cᵀ) u. Consecutive units with equal activations share one z block.
    """

    def __init__(self, w, b, c, activation) -> None:
        w = finite_array(w, "w of ShallowSum")
        if w.ndim not in (1, 2) or w.size == 0:
            raise ShapeError(f"ShallowSum: w must have shape (m,) or (m, d), got {w.shape}")
        m = w.shape[0]
        self.operator = MatrixOperator(w.reshape(m, -1), name="w of ShallowSum")
        self._w = self.operator.matrix
        self.w = self._w.reshape(w.shape)
        self.b = _vector(b, m, "b", "ShallowSum")
        self.c = _vector(c, m, "c", "ShallowSum")
        self.groups = self._groups(activation, m)
        super().__init__(() if w.ndim == 1 else (w.shape[1],), ())

    @staticmethod
    def _groups(activation, m: int) -> list[tuple[slice, Activation]]:
        """Split the m units into runs of equal activations: [(slice, activation), …]."""
        if isinstance(activation, Activation) or activation is None:
            return [(slice(0, m), _activation(activation, "ShallowSum"))]
        if not isinstance(activation, Sequence) or len(activation) != m:
            raise ShapeError(
                f"ShallowSum: activation must be one Activation or a sequence of m = {m}, "
                f"got {activation!r}"
            )
        units = [_activation(a, "ShallowSum") for a in activation]
        vector = [a.name for a in units if a.is_vector]
        if vector:
            raise ValueError(
                f"ShallowSum: per-unit activations must act entrywise, got {vector[0]}; "
                "pass a vector activation as the single activation of all units"
            )
        groups: list[tuple[slice, Activation]] = []
        start = 0
        for j in range(1, m + 1):
            if j == m or units[j] != units[start]:
                groups.append((slice(start, j), units[start]))
                start = j
        return groups

    def _evaluate(self, x: np.ndarray, folded: bool) -> _Evaluation:
        pre = self.operator.apply(x) + self.b
        z = [activation.prox(pre[:, units]) for units, activation in self.groups]
        hidden = np.concatenate(z, axis=1)
        out = (hidden @ self.c)[:, None]
        return _Evaluation(z, [hidden] if folded else [hidden, out], out)

    def _lower(self, builder: _Builder, u_in: int, label: str, last: bool) -> int | None:
        m = self.c.size
        hidden = builder.add_u(f"{label}, hidden units", (m,))
        for units, activation in self.groups:
            size = units.stop - units.start
            unit_label = f"{label}, units {units.start}..{units.stop - 1}"
            z = builder.add_z(unit_label, (size,), activation, self.b[units])
            row = builder.add_constraint(
                f"{unit_label}: {builder.u_ref(hidden)}[units] = {builder.z_ref(z)}", size
            )
            builder.W[z, u_in] = MatrixOperator(self._w[units])
            builder.M[row, hidden] = (
                IdentityOperator(m) if size == m else MatrixOperator(sp.eye(m, format="csr")[units])
            )
            builder.V[row, z] = IdentityOperator(size)
        if last:
            builder.set_output({hidden: MatrixOperator(self.c[None, :])}, np.zeros(1))
            return None
        u = builder.add_u(label, ())
        row = builder.add_constraint(f"{label}: {builder.u_ref(u)} = cᵀ {builder.u_ref(hidden)}", 1)
        builder.M[row, u] = IdentityOperator(1)
        builder.M[row, hidden] = MatrixOperator(-self.c[None, :])
        return u

    def __repr__(self) -> str:
        names = ", ".join(f"{a.name}×{s.stop - s.start}" for s, a in self.groups)
        return f"ShallowSum({self.in_shape or 'scalar'}→scalar, {names})"


class Sequential(Network):
    """The composition layer_L ∘ … ∘ layer_1 (nested ``Sequential`` are flattened).

    Raises
    ------
    ShapeError
        If a layer's input shape differs from the previous layer's output shape; the message
        names both layers and both shapes.
    """

    def __init__(self, *layers: Network) -> None:
        if not layers:
            raise ValueError("Sequential needs at least one layer")
        flat: list[Layer] = []
        for layer in layers:
            if not isinstance(layer, Network):
                raise TypeError(
                    f"Sequential: expected layers (Dense, Conv2d, Residual, ShallowSum, "
                    f"Sequential), got {type(layer).__name__}"
                )
            flat.extend(layer.layers)
        for j in range(1, len(flat)):
            previous, layer = flat[j - 1], flat[j]
            if layer.in_shape != previous.out_shape:
                raise ShapeError(
                    f"layer {j + 1} ({layer.kind}) expects input of shape {layer.in_shape}, "
                    f"but layer {j} ({previous.kind}) outputs {previous.out_shape}"
                )
        self._layers = tuple(flat)

    @property
    def layers(self) -> tuple[Layer, ...]:
        return self._layers

    def __repr__(self) -> str:
        return "Sequential(" + ", ".join(repr(layer) for layer in self._layers) + ")"
