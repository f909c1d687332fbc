"""The compiler: a declared network in the compact lifted form (docs/math/lifted.md).

    N(u₀) = K u + c,   M u = V z,   z = prox_Ψ(W u + b)

u = (u₀, u₁, …) stacks the layer states (u₀ the input), z the activation outputs. Layouts:

- feed-forward layer j (``Dense``, ``Conv2d``): z_j = σ(W_j u_{j−1} + b_j) and the constraint
  u_j = z_j (identity blocks in M and V); W_j at (z block j, u block j−1) of W;
- residual layer j: z_j = σ(W_j u_{j−1} + b_j) and u_j − u_{j−1} = V_j z_j (−I, I in M).
  A pure residual chain gets one more, zero, constraint row block aligned with u_L, so M is
  square with −I on the block diagonal (but the last) and I on the block superdiagonal; when
  every V_j = W_jᵀ the operator V *is* the adjoint of W (``v_is_wt``);
- ``ShallowSum``: hidden state u₁ = σ(w u₀ + b) (one z block per run of equal activations),
  output N(u₀) = cᵀ u₁;
- a trailing affine ``Dense`` (``Identity`` activation) and the output of a trailing
  ``ShallowSum`` are folded into K, c; otherwise K selects the last u block and c = 0.

K, M, V, W are `BlockOperator` grids of the layers' own operators (matrices, matrix-free
convolutions, ``IdentityOperator(n, ±1)``): no dense matrix of the whole problem is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import numpy as np

from bregmod._checks import as_batch, finite_array, from_batch
from bregmod.activations import Activation
from bregmod.errors import ShapeError
from bregmod.operators import (
    BlockOperator,
    IdentityOperator,
    Operator,
    dot_test,
)

__all__ = ["Block", "LiftedNetwork", "lift"]


@dataclass(frozen=True)
class Block:
    """A named block of a stacked vector: entries ``slice`` hold a state of ``shape``.

    Attributes
    ----------
    name : str
        For messages, e.g. ``"u2 (layer 2, Residual)"``.
    shape : tuple of int
        Shape of the state (e.g. ``(C, H, W)`` for images; ``()`` for a scalar).
    slice : slice
        Position in the flat stacked vector.
    """

    name: str
    shape: tuple[int, ...]
    slice: slice

    @property
    def size(self) -> int:
        """Number of entries."""
        return self.slice.stop - self.slice.start


class LayerLowering(Protocol):
    """What :func:`lift` needs from a layer (implemented by the layers of
    :mod:`bregmod.network`, which lower themselves through the builder's ``add_u``,
    ``add_z``, ``add_constraint`` and ``set_output``); the compiler never imports the
    declarations."""

    kind: str
    residual: bool  # a residual layer u_j = u_{j−1} + V_j z_j (then also ``v_is_wt``)

    def _lower(self, builder: _Builder, u_in: int, label: str, last: bool) -> int | None: ...

    def _evaluate(self, x: np.ndarray, folded: bool): ...


class _Step(NamedTuple):
    """Bookkeeping of one compiled layer: its u and z blocks and whether it was folded."""

    layer: LayerLowering
    u_blocks: range
    z_blocks: range
    constraint_blocks: range
    folded: bool


@dataclass(frozen=True, eq=False)
class LiftedNetwork:
    """The compiled compact form N(u₀) = K u + c, M u = V z, z = prox_Ψ(W u + b).

    Attributes
    ----------
    K : Operator (n_out × n_u)
    c : ndarray (n_out,)
        Output map N(u₀) = K u + c.
    M : Operator (n_c × n_u)
    V : Operator (n_c × n_z)
        Constraint M u = V z.
    W : Operator (n_z × n_u)
    b : ndarray (n_z,)
        Pre-activations W u + b.
    u_blocks, z_blocks, constraint_blocks : list of Block
        Layout of u (u₀, the input, first), of z and of the rows of M and V.
    activations : list of Activation
        Ψ of each z block (aligned with ``z_blocks``).
    v_is_wt : bool
        True iff V = Wᵀ exactly (residual chains with V = Wᵀ); then V is ``W.H`` and M is
        square (n_c == n_u).
    input_shape, output_shape : tuple of int
        Shapes of u₀ and N(u₀).

    Notes
    -----
    Stacked vectors are flat; every method accepts one vector or a batch (leading axis).
    """

    K: Operator
    c: np.ndarray
    M: Operator
    V: Operator
    W: Operator
    b: np.ndarray
    u_blocks: list[Block]
    z_blocks: list[Block]
    activations: list[Activation]
    constraint_blocks: list[Block]
    v_is_wt: bool
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    _steps: tuple[_Step, ...] = field(repr=False)

    @property
    def n_u(self) -> int:
        """Size of the stacked state u."""
        return self.W.shape[1]

    @property
    def n_z(self) -> int:
        """Size of z."""
        return self.W.shape[0]

    @property
    def n_c(self) -> int:
        """Number of constraint rows (rows of M and V)."""
        return self.M.shape[0]

    @property
    def n_out(self) -> int:
        """Size of the output N(u₀)."""
        return self.K.shape[0]

    # ------------------------------------------------------------------ states
    def forward(self, u0) -> tuple[np.ndarray, np.ndarray]:
        """The feasible point of the forward pass: u = (u₀, u₁, …), z = prox_Ψ(W u + b).

        It satisfies M u = V z, every Bregman term B_Ψ(z, W u + b) is zero, and
        K u + c = N(u₀). Computed by the layers' own forward passes (not from K, M, V, W).

        Parameters
        ----------
        u0 : array_like
            Input of shape ``input_shape`` or ``(batch, *input_shape)``.

        Returns
        -------
        u, z : ndarray
            Shapes (n_u,), (n_z,), or (batch, n_u), (batch, n_z).
        """
        x, batched = as_batch(u0, self.input_shape, "u0")
        u = np.empty((x.shape[0], self.n_u))
        z = np.empty((x.shape[0], self.n_z))
        u[:, self.u_blocks[0].slice] = x
        for step in self._steps:
            evaluation = step.layer._evaluate(x, step.folded)
            for k, value in zip(step.u_blocks, evaluation.u, strict=True):
                u[:, self.u_blocks[k].slice] = value
            for k, value in zip(step.z_blocks, evaluation.z, strict=True):
                z[:, self.z_blocks[k].slice] = value
            x = evaluation.out
        return (u, z) if batched else (u[0], z[0])

    def states_from(self, u0, z) -> np.ndarray:
        """The stacked u with input u₀ that satisfies M u = V z exactly.

        The hidden states are completed by :meth:`complete_states` (the sweep the solvers
        use), then M u = V z is checked.

        Parameters
        ----------
        u0 : array_like
            Input of shape ``input_shape`` (or with a leading batch axis).
        z : array_like
            Stacked z of size ``n_z`` (with the same batch axis, if any).

        Returns
        -------
        ndarray
            u of shape (n_u,) or (batch, n_u).

        Raises
        ------
        ValueError
            If the recovered u violates M u = V z (a constraint that does not determine the
            states), or the inputs are not finite or of the wrong shape.
        """
        x, batched = as_batch(u0, self.input_shape, "u0")
        zb, _ = as_batch(z, (self.n_z,), "z")
        if zb.shape[0] != x.shape[0]:
            raise ShapeError(f"u0 has batch size {x.shape[0]} but z has {zb.shape[0]}")
        u = np.zeros((x.shape[0], self.n_u))
        u[:, self.u_blocks[0].slice] = x
        Vz = self.V.apply(zb)
        self.complete_states(u, Vz)
        violation = np.linalg.norm(self.M.apply(u) - Vz, axis=-1)
        scale = 1.0 + np.linalg.norm(Vz, axis=-1)
        if np.any(violation > 1e-10 * scale):
            # A constraint without the aligned unit-triangular form (a user-defined layer, e.g.
            # 2 u₁ − u₀ = V z): the hidden states by dense least squares on M's hidden columns.
            M, n0 = self.M.to_dense(), self.u_blocks[0].size
            rhs = Vz - u[:, :n0] @ M[:, :n0].T
            u[:, n0:] = np.linalg.lstsq(M[:, n0:], rhs.T, rcond=None)[0].T
            violation = np.linalg.norm(self.M.apply(u) - Vz, axis=-1)
        if np.any(violation > 1e-10 * scale):
            raise ValueError(
                f"states_from: M u = V z violated by {violation.max():.3g}; the constraint rows "
                "do not determine the states"
            )
        return u if batched else u[0]

    def complete_states(self, u: np.ndarray, Vz: np.ndarray) -> np.ndarray:
        """Overwrite the hidden states u_{1:} of rows u (B, n_u) so that M u = V z; returns u.

        ``lift`` aligns the first n_u − n₀ constraint rows with the hidden states: they read
        u_{1:} − N u_{1:} = (V z)_{rows} − M₀ u₀ with N nilpotent (zero for feed-forward nets
        and shallow sums, the block subdiagonal of residual chains). So
        u_{1:} = (I − N)⁻¹((V z)_{rows} − M₀ u₀) is reached exactly by at most depth sweeps
        u_{1:} ← u_{1:} + ((V z) − M u)_{rows} (one operator application each). The result is
        not checked here (:meth:`states_from` checks it; the solvers' elimination verifies the
        form once).

        Parameters
        ----------
        u : ndarray (B, n_u)
            Rows whose block u₀ is set (the other blocks are overwritten); may be a view.
        Vz : ndarray (B, n_c)
            V z for the same rows.
        """
        n0 = self.u_blocks[0].size
        rows = self.n_u - n0
        u[:, n0:] = 0.0
        target = Vz[:, :rows]
        for _ in range(max(len(self.u_blocks) - 1, 1)):
            update = target - self.M.apply(u)[:, :rows]
            if not update.any():
                break
            u[:, n0:] += update
        return u

    def single_layer(self) -> tuple[Operator, np.ndarray, Activation]:
        """(A, β, σ) of a one-layer network u₀ ↦ σ(A u₀ + β) (one Dense or Conv2d layer).

        Raises
        ------
        ValueError
            If the network is not a single layer with one activation block read at the
            output (K selects z = u₁, c = 0).
        """
        if not (
            len(self.u_blocks) == 2
            and len(self.z_blocks) == 1
            and len(self._steps) == 1
            and self._steps[0].layer.kind in ("Dense", "Conv2d")
        ):
            raise ValueError(
                "single_layer needs a one-layer network u₀ ↦ σ(A u₀ + β) (a single Dense or "
                f"Conv2d layer), got {len(self._steps)} layer(s) with "
                f"{len(self.z_blocks)} activation block(s)"
            )
        return self.W.blocks[0][0], self.b, self.activations[0]

    def output(self, u) -> np.ndarray:
        """N(u₀) = K u + c in ``output_shape`` (with the batch axis of ``u``, if any)."""
        flat, batched = as_batch(u, (self.n_u,), "u")
        return from_batch(self.K.apply(flat) + self.c, self.output_shape, batched)

    def split_u(self, u) -> list[np.ndarray]:
        """The blocks u₀, u₁, … of a stacked u, each in its state shape (batch axis kept)."""
        return self._split(u, self.n_u, self.u_blocks, "u")

    def split_z(self, z) -> list[np.ndarray]:
        """The blocks of a stacked z, each in its shape (batch axis kept)."""
        return self._split(z, self.n_z, self.z_blocks, "z")

    @staticmethod
    def _split(vector, size: int, blocks: list[Block], what: str) -> list[np.ndarray]:
        flat, batched = as_batch(vector, (size,), what)
        return [from_batch(flat[:, blk.slice], blk.shape, batched) for blk in blocks]

    # ------------------------------------------------------------------ blockwise activations
    def _z_space(self, x, what: str) -> tuple[np.ndarray, bool]:
        return as_batch(x, (self.n_z,), what)

    def prox(self, x) -> np.ndarray:
        """prox_Ψ(x) = (σ_k(x_k))_k blockwise; vector activations act on whole blocks."""
        flat, batched = self._z_space(x, "x")
        out = np.empty_like(flat)
        for blk, activation in zip(self.z_blocks, self.activations, strict=True):
            out[:, blk.slice] = activation.prox(flat[:, blk.slice])
        return out if batched else out[0]

    def prox_scaled(self, v, t) -> np.ndarray:
        """prox_{tΨ}(v) = (prox_{t_k Ψ_k}(v_k))_k blockwise.

        Parameters
        ----------
        v : array_like, shape (n_z,) or (batch, n_z)
        t : float or array_like
            Step t > 0: a scalar, or an array broadcastable to the shape of ``v`` (entrywise
            steps); on a block with a vector activation the step must be constant.
        """
        flat, batched = self._z_space(v, "v")
        t = finite_array(t, "prox step t")
        if t.ndim:
            try:
                t = np.broadcast_to(t, flat.shape if batched else flat.shape[1:])
            except ValueError:
                raise ShapeError(
                    f"prox step t of shape {t.shape} does not broadcast to v of shape {np.shape(v)}"
                ) from None
            t = t.reshape(-1, self.n_z)
        out = np.empty_like(flat)
        for blk, activation in zip(self.z_blocks, self.activations, strict=True):
            step = t[:, blk.slice] if t.ndim else t
            if t.ndim and activation.is_vector:
                if np.ptp(step, axis=1).any():
                    raise ValueError(
                        f"prox step t must be constant on the block {blk.name} "
                        f"({activation.name} is a vector activation)"
                    )
                step = step[:, :1]
            out[:, blk.slice] = activation.prox_scaled(flat[:, blk.slice], step)
        return out if batched else out[0]

    def _per_block(self, flat: np.ndarray, term) -> np.ndarray:
        """(batch, blocks) array of the sums of ``term(activation, block, values)`` per z block."""
        sums = np.empty((flat.shape[0], len(self.z_blocks)))
        for k, (blk, activation) in enumerate(zip(self.z_blocks, self.activations, strict=True)):
            values = term(activation, blk, flat[:, blk.slice])
            sums[:, k] = values.reshape(flat.shape[0], -1).sum(axis=1)
        return sums

    def psi(self, z) -> float | np.ndarray:
        """Ψ(z) = Σ_k Ψ_k(z_k), +inf off dom Ψ; a float, or one value per batch item."""
        flat, batched = self._z_space(z, "z")
        total = self._per_block(flat, lambda activation, blk, zk: activation.psi(zk)).sum(axis=1)
        return total if batched else float(total[0])

    def phi_conj(self, x) -> float | np.ndarray:
        """Φ*(x) = Σ_k Φ_k*(x_k), Φ_k = ½‖·‖² + Ψ_k; a float, or one value per batch item."""
        flat, batched = self._z_space(x, "x")
        total = self._per_block(flat, lambda activation, blk, xk: activation.phi_conj(xk))
        return total.sum(axis=1) if batched else float(total.sum())

    def bregman_per_block(self, z, x) -> np.ndarray:
        """B_{Ψ_k}(z_k, x_k) for every z block k: shape (blocks,) or (batch, blocks).

        Raises
        ------
        DomainError
            If a block of ``z`` lies outside dom Ψ_k (the message names the block).
        """
        z_flat, batched = self._z_space(z, "z")
        x_flat, _ = self._z_space(x, "x")
        if np.shape(z) != np.shape(x):
            raise ShapeError(
                f"z and x must have the same shape, got {np.shape(z)} and {np.shape(x)}"
            )

        def term(activation: Activation, blk: Block, zk: np.ndarray) -> np.ndarray:
            activation.check_domain(zk, what=f"block {blk.name}")
            return activation.bregman_terms(zk, x_flat[:, blk.slice])

        per_block = self._per_block(z_flat, term)
        return per_block if batched else per_block[0]

    def bregman(self, z, x) -> float | np.ndarray:
        """B_Ψ(z, x) = Σ_k B_{Ψ_k}(z_k, x_k) ≥ 0, zero iff z = prox_Ψ(x).

        A float, or one value per batch item.
        """
        per_block = self.bregman_per_block(z, x)
        return per_block.sum(axis=-1) if per_block.ndim == 2 else float(per_block.sum())


class _Builder:
    """Collects blocks and operator entries while the layers lower themselves.

    ``W[(z, u)]``, ``M[(row, u)]``, ``V[(row, z)]`` hold the operator blocks by block index;
    ``K`` maps u block indices to the output map's blocks.
    """

    def __init__(self) -> None:
        self.u_blocks: list[Block] = []
        self.z_blocks: list[Block] = []
        self.constraint_blocks: list[Block] = []
        self.activations: list[Activation] = []
        self.biases: list[np.ndarray] = []
        self.W: dict[tuple[int, int], Operator] = {}
        self.M: dict[tuple[int, int], Operator] = {}
        self.V: dict[tuple[int, int], Operator] = {}
        self.K: dict[int, Operator] = {}
        self.c: np.ndarray | None = None

    @staticmethod
    def _append(blocks: list[Block], name: str, shape: tuple[int, ...]) -> int:
        start = blocks[-1].slice.stop if blocks else 0
        blocks.append(Block(name, tuple(shape), slice(start, start + int(np.prod(shape)))))
        return len(blocks) - 1

    @staticmethod
    def u_ref(k: int) -> str:
        """Short name of u block k: u₀ is the input."""
        return f"u{k}"

    @staticmethod
    def z_ref(k: int) -> str:
        """Short name of z block k, counted from 1 (z_j belongs to u_j in a chain)."""
        return f"z{k + 1}"

    def add_u(self, label: str, shape: tuple[int, ...]) -> int:
        """Add the u block ``u<k> (label)``; return its index k."""
        k = len(self.u_blocks)
        return self._append(self.u_blocks, f"{self.u_ref(k)} ({label})", shape)

    def add_z(
        self, label: str, shape: tuple[int, ...], activation: Activation, bias: np.ndarray
    ) -> int:
        """Add a z block with its activation and bias (flat, its size); return its index."""
        self.activations.append(activation)
        self.biases.append(bias)
        k = len(self.z_blocks)
        return self._append(self.z_blocks, f"{self.z_ref(k)} ({label})", shape)

    def add_constraint(self, name: str, size: int) -> int:
        """Add a row block of M and V; return its index."""
        return self._append(self.constraint_blocks, name, (size,))

    def set_output(self, K: dict[int, Operator], c: np.ndarray) -> None:
        """Fold an affine output map N(u₀) = Σ_k K[k] u_k + c."""
        self.K = K
        self.c = c


def _assemble(
    entries: dict[tuple[int, int], Operator], rows: list[Block], cols: list[Block]
) -> BlockOperator:
    grid = [[entries.get((i, j)) for j in range(len(cols))] for i in range(len(rows))]
    return BlockOperator(grid, [blk.size for blk in rows], [blk.size for blk in cols])


def lift(network, check_adjoint: bool = True) -> LiftedNetwork:
    """Compile a network into N(u₀) = K u + c, M u = V z, z = prox_Ψ(W u + b) (docs/math/lifted.md).

    Parameters
    ----------
    network : Network
        A layer or a ``Sequential``.
    check_adjoint : bool, optional
        Run `bregmod.operators.dot_test` on every matrix-free operator among K, M, V, W
        (i.e. those containing convolutions); raises ``AdjointError`` on a wrong adjoint.

    Returns
    -------
    LiftedNetwork
        Block operators built from the layers' operators (never a dense matrix of the whole
        problem).
    """
    layers = getattr(network, "layers", None)
    if not isinstance(layers, list | tuple) or not all(
        hasattr(layer, "_lower") for layer in layers
    ):
        raise TypeError(
            f"lift needs a bregmod network (Dense, Conv2d, Residual, ShallowSum, Sequential), "
            f"got {type(network).__name__}"
        )
    builder = _Builder()
    u = builder.add_u("input", network.in_shape)
    steps = []
    for j, layer in enumerate(layers, start=1):
        first_u, first_z = len(builder.u_blocks), len(builder.z_blocks)
        first_c = len(builder.constraint_blocks)
        u_out = layer._lower(builder, u, f"layer {j}, {layer.kind}", last=j == len(layers))
        steps.append(
            _Step(
                layer,
                range(first_u, len(builder.u_blocks)),
                range(first_z, len(builder.z_blocks)),
                range(first_c, len(builder.constraint_blocks)),
                folded=u_out is None,
            )
        )
        u = u_out
    if u is not None:
        builder.set_output({u: IdentityOperator(builder.u_blocks[u].size)}, None)

    residual_chain = any(layer.residual for layer in layers) and all(
        step.layer.residual or not step.z_blocks for step in steps
    )
    if residual_chain:
        last = builder.u_blocks[-1]
        builder.add_constraint(
            f"zero row (aligned with {builder.u_ref(len(builder.u_blocks) - 1)})", last.size
        )
    v_is_wt = residual_chain and all(
        layer.v_is_wt for layer in layers if layer.residual
    )

    n_out = int(np.prod(network.out_shape, dtype=int))
    output_block = [Block("output", network.out_shape, slice(0, n_out))]
    W = _assemble(builder.W, builder.z_blocks, builder.u_blocks)
    M = _assemble(builder.M, builder.constraint_blocks, builder.u_blocks)
    V = W.H if v_is_wt else _assemble(builder.V, builder.constraint_blocks, builder.z_blocks)
    K = _assemble({(0, k): op for k, op in builder.K.items()}, output_block, builder.u_blocks)
    if check_adjoint:
        for op in (K, M, V, W):
            if op.matrix_free:
                dot_test(op)
    return LiftedNetwork(
        K=K,
        c=np.zeros(n_out) if builder.c is None else np.array(builder.c),
        M=M,
        V=V,
        W=W,
        b=np.concatenate(builder.biases),
        u_blocks=builder.u_blocks,
        z_blocks=builder.z_blocks,
        activations=builder.activations,
        constraint_blocks=builder.constraint_blocks,
        v_is_wt=v_is_wt,
        input_shape=network.in_shape,
        output_shape=network.out_shape,
        _steps=tuple(steps),
    )
