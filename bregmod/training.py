"""Lifted Bregman training (docs/math/training.md): train a network without backpropagation and
without σ′.

For a feed-forward network x^l = σ_l(W_l x^{l−1} + b_l), l = 1…L (W_l a dense matrix or a
convolution k_l ∗ ·, whose bias is one value per output channel), with inputs x_i^0 and
targets x_i^L = y_i, the hidden states x_i^1…x_i^{L−1} become variables and the training
energy is the lifted Bregman energy

    E(Θ, X) = 1/s Σ_i [ Σ_l B_{Ψ_l}(x_i^l, W_l x_i^{l−1} + b_l) + Σ_l α_l ‖x_i^l‖₁ ]
              + (λ/2) Σ_l ‖W_l‖²_F,

Θ = (W_l, b_l)_l, with optional ℓ1 penalties α_l on hidden states (the sparse autoencoder's
α‖x^3‖₁) and weight decay λ. (The talk writes 1/(2s) in front of the sum: that only rescales
τ and λ.) Every term B_Ψ ≥ 0 vanishes on the forward pass; an identity last layer gives
½‖y − W_L x^{L−1} − b_L‖².

The algorithm (the talk's implementation slide) is an implicit stochastic gradient step on a
random batch S,

    (Θ⁺, X_S⁺) ≈ argmin_{Θ, X_S}  E_S(Θ, X_S) + 1/(2τ_k) ‖Θ − Θ^k‖²,

solved inexactly by a few sweeps of proximal gradient descent:

* a gradient step in each (W_l, b_l) (the layers are independent given the states), with

      ∇_{W_l} = 1/|S| Σ_{i∈S} (σ_l(W_l x_i^{l−1} + b_l) − x_i^l)(x_i^{l−1})ᵀ
                + (W_l − W_l^k)/τ + λ W_l

  and the step 1/L_l from the exact Lipschitz constant
  L_l = λ_max(X̃ᵀX̃)/|S| + 1/τ + λ of that gradient (X̃ = [x^{l−1}, 1] of the batch; for a
  convolution the gradient in the kernel is the correlation of the residual with the input,
  `Conv2dOperator.kernel_gradient`, and X̃ = [P, 1] with P the im2col matrix of the batch,
  `Conv2dOperator.patches`: k_l ∗ x + b_l is X̃ (vec k_l[o], b_l[o]) in each output channel o,
  so the same bound holds);
* a proximal gradient step in each hidden state, x^{L−1} first and x^1 last (the samples are
  independent given Θ),

      x^l ← prox_{μ(Φ_l + α_l‖·‖₁)}(x^l − μ(W_{l+1}ᵀ(σ_{l+1}(W_{l+1} x^l + b_{l+1}) − x^{l+1})
                                         − (W_l x^{l−1} + b_l))),

  Φ_l = ½‖·‖² + Ψ_l, with one step μ per layer and batch, backtracked from a power-iteration
  estimate of 1/‖W_{l+1}‖² (the sufficient-decrease test makes every state update decrease
  the energy).

Only σ and the prox of Φ appear: no σ′ anywhere. The energy, its block gradients and the
prox of Φ come from :class:`bregmod.model.deep.DeepBregman`. A batch's hidden states start
from the forward pass of the current weights (or, with ``state_init="warm"``, from the
sample's previous visit); the states of all samples are kept and saved in checkpoints.

Data-parallel training (``Training.solve(..., client=client)``, docs/guide/distributed.md)
runs the same algorithm with each batch cut into shards on Dask workers: the shard functions
below compute on a shard's rows, the reductions add up what the algorithm sums over the batch
(the backtracking sums of a state step, the weight gradient, the Gram matrix X̃ᵀX̃), and in one
process the batch is a single shard of the same functions. Dask is imported only with a client.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import scipy.linalg

from bregmod._checks import finite_array, nonnegative_scalar, positive_scalar
from bregmod.distributed import _dask, chunk_slices
from bregmod.errors import CheckpointError, ShapeError
from bregmod.model.deep import DeepBregman, ParameterGradient
from bregmod.network import Conv2d, Dense, Layer, Network, Sequential
from bregmod.operators import Conv2dOperator, MatrixOperator, Operator

__all__ = [
    "SCHEDULES",
    "STATE_DTYPES",
    "STATE_INITS",
    "Training",
    "TrainingResult",
    "layer_parameters",
]

#: τ schedules: τ_e for epoch e = 0, 1, … is τ, τ/√(e + 1) or τ/(e + 1).
SCHEDULES = ("constant", "sqrt", "inverse")
#: Starting points of a batch's hidden states (see :meth:`Training.solve`).
STATE_INITS = ("forward", "warm")
#: Storage types of the hidden states (computations run in float64).
STATE_DTYPES = ("float64", "float32")
#: Format tag and version of training checkpoints.
CHECKPOINT_FORMAT = "bregmod-training-checkpoint"
CHECKPOINT_VERSION = 1
#: Relative slack of the backtracking test (rounding noise of the energies compared).
_BACKTRACK_RTOL = 1e-12
#: Largest number of step halvings in one backtracking search.
_MAX_BACKTRACKS = 60


@dataclass
class TrainingResult:
    """The outcome of :meth:`Training.solve`.

    Attributes
    ----------
    network : Sequential
        The trained network: a new ``Sequential`` of ``Dense`` and ``Conv2d`` layers (those of
        the initial network) with the trained weights (the network given to :class:`Training`
        is never modified). With early stopping, the
        weights of the epoch with the best validation loss.
    history : dict[str, list]
        Per epoch: ``"epoch"`` (1, 2, …), ``"energy"`` (the lifted energy E(Θ, X) over all
        training samples at the end of the epoch), ``"train_loss"`` and ``"val_loss"`` (the
        forward-pass mean squared error (1/(s·m)) Σ ‖N(x_i) − y_i‖² on the training and
        validation data; ``val_loss`` holds NaN without validation data), ``"tau"`` and
        ``"time"`` (seconds of the epoch).
    states : list of ndarray
        The hidden states x^1 … x^{L−1} of all training samples, each (s, n_l), in the storage
        dtype.
    status : str
        ``"epochs"`` (ran the requested number of epochs) or ``"early_stopping"``. Training is a
        non-convex problem: no status claims an optimum.
    wall_time : float
        Seconds spent in :meth:`Training.solve` (this call only, not earlier runs of a resumed
        checkpoint).
    stats : dict
        ``epochs``, ``batches``, ``inner_sweeps`` (in total), ``state_backtracks``, ``best_epoch``,
        ``resumed_from_epoch`` and the settings of the run.
    """

    network: Sequential
    history: dict[str, list]
    states: list[np.ndarray]
    status: str
    wall_time: float
    stats: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# The lifted energy of one layer and its gradients (every formula once).
# ---------------------------------------------------------------------------------------------


def _soft_threshold(v: np.ndarray, t: float) -> np.ndarray:
    """sign(v) max(|v| − t, 0), the prox of t‖·‖₁."""
    return np.sign(v) * np.maximum(np.abs(v) - t, 0.0)


def prox_state(model: DeepBregman, l: int, alpha: float, v: np.ndarray, mu: float) -> np.ndarray:
    """prox_{μ(Φ_l + α‖·‖₁)}(v) = prox_{μΦ_l}(soft_{μα}(v)), Φ_l = ½‖·‖² + Ψ_l.

    prox_{μΦ}(v) = prox_{tΨ}(v/(1 + μ)) with t = μ/(1 + μ) (`DeepBregman.prox_phi`), and
    prox_{t(Ψ + α|·|)} = prox_{tΨ} ∘ prox_{tα|·|} because prox_{tΨ} keeps signs when σ(0) = 0
    (checked by :class:`Training`); soft_{tα}(v/(1 + μ)) = soft_{μα}(v)/(1 + μ).
    """
    return model.prox_phi(l, _soft_threshold(v, mu * alpha) if alpha > 0 else v, mu)


def _norm_estimate_sq(W: Operator, iterations: int = 8) -> float:
    """A power-iteration estimate of ‖W‖₂² (from below; backtracking absorbs the error)."""
    v = np.ones(W.shape[1])
    value = 0.0
    for _ in range(iterations):
        w = W.apply_adjoint(W.apply(v))
        value = float(np.linalg.norm(w))
        if value == 0.0:
            return 0.0
        v = w / value
    return value


# ---------------------------------------------------------------------------------------------
# The parameters of a layer: (W_l, b_l) for a Dense layer, (k_l, b_l) with the kernel
# k_l (C_out, C_in, kh, kw) and one bias per output channel for a Conv2d layer.
# ---------------------------------------------------------------------------------------------


def layer_parameters(layer: Layer) -> tuple[np.ndarray, np.ndarray]:
    """The trainable parameters (W, b) of a ``Dense`` layer, (kernel, b) of a ``Conv2d`` layer
    (b of shape (C_out,)).

    Raises
    ------
    ValueError
        Any other layer (e.g. ``Residual``, ``ShallowSum``); the message names it.
    """
    if isinstance(layer, Dense):
        return layer.W, layer.b
    if isinstance(layer, Conv2d):
        return layer.kernel, layer.b
    raise ValueError(
        f"Training supports feed-forward networks of Dense and Conv2d layers, got {layer.kind} "
        f"({layer!r})"
    )


def _parameters(model: DeepBregman, l: int) -> tuple[np.ndarray, np.ndarray]:
    """(W_l, b_l) of ``model`` as training updates them: a dense layer's matrix and bias, a
    convolution's kernel and per-channel bias (the model stores b_l repeated over the pixels)."""
    W, b = model.operator(l), model.bias(l)
    if isinstance(W, Conv2dOperator):
        return W.kernel, b.reshape(W.out_shape[0], -1)[:, 0]
    return W.matrix, b


def _operator_like(layer: Layer, W: np.ndarray) -> Operator:
    """W_l of ``layer``'s geometry with the parameter array ``W`` (matrix or kernel)."""
    if isinstance(layer, Conv2d):
        op = layer.operator
        return Conv2dOperator(W, op.in_shape, stride=op.stride, padding=op.padding)
    return MatrixOperator(W)


def _layer_like(layer: Layer, W: np.ndarray, b: np.ndarray) -> Layer:
    """A layer like ``layer`` (kind, activation, shapes, stride, padding) with parameters W, b."""
    if isinstance(layer, Conv2d):
        op = layer.operator
        return Conv2d(W, b, layer.activation, in_shape=op.in_shape, stride=op.stride,
                      padding=op.padding, out_shape=layer.out_shape)
    return Dense(W, b, layer.activation, in_shape=layer.in_shape, out_shape=layer.out_shape)


def _geometry(layer: Layer) -> list:
    """What fixes a layer's map besides its parameters: [parameter shape, activation] and, for a
    convolution, its input shape, stride and padding."""
    W, _ = layer_parameters(layer)
    if isinstance(layer, Conv2d):
        op = layer.operator
        return [list(W.shape), layer.activation.name,
                {"in_shape": list(op.in_shape), "stride": list(op.stride),
                 "padding": list(op.padding)}]
    return [list(W.shape), layer.activation.name]


def _full_states(states, x0: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """[x^0, x^1, …, x^{L−1}, x^L] in float64 from stored hidden states, inputs and targets."""
    return [x0, *(np.asarray(s, dtype=np.float64) for s in states), y]


# ---------------------------------------------------------------------------------------------
# One batch step, split into what each shard of the batch computes on its own rows and the
# reductions over the shards (docs/guide/distributed.md). The samples of a batch are
# independent given Θ except through (i) the backtracking test of a state step, which sums
# Bregman values and the bound over the batch (one μ per layer and batch), and (ii) the weight
# step, whose gradient is the batch mean and whose step comes from λ_max of the batch's
# X̃ᵀX̃. The shard functions are pure functions of their arguments (a Dask worker may rerun
# them); the reductions run on the driver. In-process the batch is one shard.
# ---------------------------------------------------------------------------------------------


class _StatePoint(NamedTuple):
    """A shard's values at the current x^l that every backtracking trial of a state step uses."""

    gradient: np.ndarray  #: ∇f(x^l), `DeepBregman.state_gradient`
    pre: np.ndarray  #: p = W_{l+1} x^l + b_{l+1}
    residual: np.ndarray  #: σ_{l+1}(p) − x^{l+1}
    value: float  #: Σ_i B_{Ψ_{l+1}}(x_i^{l+1}, p_i)


class _Shard(NamedTuple):
    """A shard's states X = [x^0, …, x^L]; after a trial step on x^l, X holds the trial x⁺
    and ``point``, ``sums`` its backtracking data (the shard moves on from the accepted one)."""

    X: list[np.ndarray]
    point: _StatePoint | None = None
    #: [Σ B(x^{l+1}, p⁺), Σ B(x^{l+1}, p), ⟨σ(p) − x^{l+1}, p⁺ − p⟩, ‖x⁺ − x‖²]
    sums: np.ndarray | None = None


class _GramPart(NamedTuple):
    """A shard's share of X̃ᵀX̃, X̃ = [x^{l−1}, 1] (for a convolution [P, 1], P the im2col
    matrix of x^{l−1}): its rows X̃_p when it has no more rows than columns (fewer bytes than
    the Gram matrix), else X̃_pᵀX̃_p."""

    rows: np.ndarray | None
    gram: np.ndarray | None


class _WeightPart(NamedTuple):
    """A shard's share of the weight step of one layer."""

    rows: int  #: m_p, the shard's number of samples
    gradient: ParameterGradient  #: `DeepBregman.param_gradient` (the mean over the shard)
    gram: _GramPart


def _shard_states(model: DeepBregman, inputs: np.ndarray, targets: np.ndarray, states
                  ) -> _Shard:
    """A shard at the start of a batch step: the forward pass of Θ (``states`` None) or the
    stored hidden states (``state_init="warm"``)."""
    if states is None:
        return _Shard(model.forward(inputs)[:-1] + [targets])
    return _Shard(_full_states(states, inputs, targets))


def _state_point(model: DeepBregman, X: list[np.ndarray], l: int) -> _StatePoint:
    """The gradient, pre-activation, residual and Bregman value at a shard's x^l."""
    activation, above = model.activation(l + 1), X[l + 1]
    pre = model.preactivation(l + 1, X[l])
    return _StatePoint(model.state_gradient(l, X), pre, activation.prox(pre) - above,
                       activation.bregman(above, pre))


def _state_trial(model: DeepBregman, shard: _Shard, rejected: _Shard | None, l: int,
                 alpha: float, mu: float) -> _Shard:
    """x⁺ = prox_{μ(Φ_l + α‖·‖₁)}(x^l − μ∇f(x^l)) on a shard, with its backtracking sums.

    ``rejected`` is the shard's previous (rejected) trial on the same x^l, whose point is
    reused, or None for the first trial.
    """
    X = shard.X
    point = _state_point(model, X, l) if rejected is None else rejected.point
    x, above = X[l], X[l + 1]
    new = prox_state(model, l, alpha, x - mu * point.gradient, mu)
    new_pre = model.preactivation(l + 1, new)
    d = new - x
    sums = np.array([model.activation(l + 1).bregman(above, new_pre), point.value,
                     np.sum(point.residual * (new_pre - point.pre)), np.sum(d * d)])
    return _Shard([*X[:l], new, *X[l + 1:]], point, sums)


def _trial_sums(trial: _Shard) -> np.ndarray:
    """The four sums of a trial (all a worker sends back for a backtracking decision)."""
    return trial.sums


def _weight_parts(model: DeepBregman, shard: _Shard, with_states: bool = False):
    """A shard's share of every layer's weight step (its mean gradient, rows and Gram part);
    with ``with_states`` also its hidden states x^1 … x^{L−1} (at the end of a batch step)."""
    X = shard.X
    parts = []
    for l in range(1, model.depth + 1):
        op = model.operator(l)
        inputs = op.patches(X[l - 1]) if isinstance(op, Conv2dOperator) else X[l - 1]
        x_tilde = np.hstack([inputs, np.ones((inputs.shape[0], 1))])
        rows, columns = x_tilde.shape
        gram = _GramPart(x_tilde, None) if rows <= columns else _GramPart(None, x_tilde.T @ x_tilde)
        parts.append(_WeightPart(X[l - 1].shape[0], model.param_gradient(l, X), gram))
    return parts, (X[1:-1] if with_states else None)


def _sufficient_decrease(sums: np.ndarray, mu: float) -> bool:
    """The backtracking test of a state step on the batch sums (`_Trial.sums` added over the
    shards): Σ B(x^{l+1}, p⁺) ≤ Σ B(x^{l+1}, p) + ⟨σ(p) − x^{l+1}, p⁺ − p⟩ + ‖x⁺ − x‖²/(2μ),
    up to a relative slack for rounding (see `Training._state_step`)."""
    trial, value, linear, step = sums
    bound = value + linear + step / (2 * mu)
    return bool(trial <= bound + _BACKTRACK_RTOL * (abs(value) + abs(bound) + 1.0))


def _largest_eigenvalue_of_gram(parts: list[_GramPart]) -> float:
    """λ_max(X̃ᵀX̃) = ‖X̃‖₂² of the batch X̃ = [X̃_1; …; X̃_P] from its shards' parts.

    From the smaller Gram matrix: X̃X̃ᵀ of the stacked rows when every shard sent rows and
    the batch has no more rows than columns, else Σ_p X̃_pᵀX̃_p.
    """
    G = None
    if all(p.gram is None for p in parts):
        stacked = np.vstack([p.rows for p in parts])
        if stacked.shape[0] <= stacked.shape[1]:
            G = stacked @ stacked.T
    if G is None:
        G = sum(p.gram if p.gram is not None else p.rows.T @ p.rows for p in parts)
    n = G.shape[0]
    return float(scipy.linalg.eigh(G, eigvals_only=True, subset_by_index=[n - 1, n - 1])[0])


def _shipped(value):
    """``value`` itself: a task whose result the other tasks of a sweep share (Θ)."""
    return value


def _array_bytes(value) -> int:
    """Bytes of the NumPy arrays in ``value`` (nested tuples and lists; futures count 0)."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, (tuple, list)):
        return sum(_array_bytes(v) for v in value)
    return 0


class _InProcess:
    """Runs the shard functions in this process, at once: the single-process path."""

    shards = 1

    @staticmethod
    def submit(function, *args):
        return function(*args)

    @staticmethod
    def broadcast(value, nbytes: int):
        return value

    @staticmethod
    def gather(values: list) -> list:
        return values

    def release(self) -> None:
        """Nothing is held."""


class _OnDask:
    """Runs the shard functions as Dask tasks, one chain of tasks per shard.

    Every task is a pure function of its arguments: the shard's rows travel with the first
    task of a batch step, Θ inside a task of its own (once per sweep; the workers copy it
    among themselves), and all futures of a batch step are held until it ends, so Dask can
    recompute what a lost worker held. Counts the bytes of the
    arrays sent and received (not Dask's own messages) and the round trips that wait for
    results.
    """

    def __init__(self, client) -> None:
        distributed = _dask()
        if not isinstance(client, distributed.Client):
            raise TypeError(
                f"client must be a dask.distributed.Client, got {type(client).__name__}"
            )
        threads = sum(client.nthreads().values())
        if threads == 0:
            raise ValueError(f"the Dask cluster at {client.scheduler.address} has no workers")
        self.client = client
        self.shards = threads
        self._held: list = []
        self.counts = dict.fromkeys(("tasks", "round_trips", "bytes_sent", "bytes_received"), 0)

    def submit(self, function, *args):
        future = self.client.submit(function, *args, pure=False)
        self._held.append(future)
        self.counts["tasks"] += 1
        self.counts["bytes_sent"] += _array_bytes(args)
        return future

    def broadcast(self, value, nbytes: int):
        # Θ travels inside a task (not client.scatter) so that Dask can recompute it when the
        # worker holding it dies; Dask's advice against large task arguments does not apply.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sending large graph", category=UserWarning)
            future = self.client.submit(_shipped, value, pure=False)
        self._held.append(future)
        self.counts["tasks"] += 1
        self.counts["bytes_sent"] += nbytes
        return future

    def gather(self, futures: list) -> list:
        values = self.client.gather(futures)
        self.counts["round_trips"] += 1
        self.counts["bytes_received"] += _array_bytes(values)
        return values

    def release(self) -> None:
        for future in self._held:
            future.release()
        self._held.clear()

    def info(self, batches: int) -> dict[str, Any]:
        per = {f"{key}_per_batch": value / max(batches, 1) for key, value in self.counts.items()}
        return {"scheduler": self.client.scheduler.address, "workers": len(self.client.nthreads()),
                "shards": self.shards, **self.counts, **per}


class _Batch:
    """The shards of one batch: contiguous pieces of its rows, each with its states
    X = [x^0, …, x^L], kept where ``executor`` runs the shard functions.

    Every method is a step of the algorithm on all shards followed, where the algorithm
    couples the samples, by the reduction on the driver.
    """

    def __init__(self, executor, model: DeepBregman, weights, rows: list[tuple]) -> None:
        self._executor = executor
        self._next: tuple | None = (model, weights)
        self._model = None
        handle = self._model_handle()
        self._shards = [executor.submit(_shard_states, handle, *shard) for shard in rows]
        self._trials: list = []
        self.states: list[np.ndarray] | None = None

    def set_model(self, model: DeepBregman, weights) -> None:
        """Θ for the next steps (shipped to the workers when a step first needs it)."""
        self._next = (model, weights)

    def _model_handle(self):
        if self._next is not None:
            model, weights = self._next
            self._model = self._executor.broadcast(model, _array_bytes(weights))
            self._next = None
        return self._model

    def state_sums(self, l: int, alpha: float, mu: float, first: bool) -> np.ndarray:
        """The backtracking sums of the trial step μ on x^l, added over the shards."""
        submit, model = self._executor.submit, self._model_handle()
        rejected = [None] * len(self._shards) if first else self._trials
        self._trials = [submit(_state_trial, model, shard, previous, l, alpha, mu)
                        for shard, previous in zip(self._shards, rejected, strict=True)]
        sums = self._executor.gather([submit(_trial_sums, trial) for trial in self._trials])
        return np.sum(np.stack(sums), axis=0)

    def accept(self) -> None:
        """Keep the last trial on every shard."""
        self._shards = self._trials

    def weight_parts(self, last: bool) -> list[list[_WeightPart]]:
        """Per layer, every shard's share of the weight step; at the ``last`` sweep also the
        batch's hidden states x^1 … x^{L−1} (rows in the batch's order) into ``states``."""
        model = self._model_handle()
        shards = self._executor.gather(
            [self._executor.submit(_weight_parts, model, shard, last) for shard in self._shards]
        )
        if last:
            self.states = [np.concatenate(layer)
                           for layer in zip(*(states for _, states in shards), strict=True)]
        return [list(layer) for layer in zip(*(parts for parts, _ in shards), strict=True)]


# ---------------------------------------------------------------------------------------------
# The training problem.
# ---------------------------------------------------------------------------------------------


@dataclass
class _Run:
    """The mutable state of a training run (everything a checkpoint holds)."""

    weights: list[tuple[np.ndarray, np.ndarray]]
    states: list[np.ndarray]
    rng: np.random.Generator
    epoch: int = 0
    batch: int = 0
    permutation: np.ndarray | None = None
    history: dict[str, list] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    best_loss: float = math.inf
    best_epoch: int = 0
    best_weights: list[tuple[np.ndarray, np.ndarray]] | None = None
    stale_epochs: int = 0
    #: A batch committed but not yet written into the fields above (see _apply_pending).
    pending: tuple | None = None


_HISTORY_KEYS = ("epoch", "energy", "train_loss", "val_loss", "tau", "time")
_COUNTER_KEYS = ("batches", "inner_sweeps", "state_backtracks")


class Training:
    """Lifted Bregman training of a feed-forward network (docs/math/training.md).

    ::

        min_{Θ, X}  1/s Σ_i [ Σ_l B_{Ψ_l}(x_i^l, W_l x_i^{l−1} + b_l) + Σ_l α_l ‖x_i^l‖₁ ]
                    + (λ/2) Σ_l ‖W_l‖²_F,      x_i^0 = inputs_i,  x_i^L = targets_i

    (for a ``Conv2d`` layer W_l x = k_l ∗ x, ‖W_l‖_F stands for the kernel's ‖k_l‖_F, and b_l
    has one value per output channel).

    Parameters
    ----------
    network : Network
        The initial network: a ``Sequential`` (or a single layer) of ``Dense`` and ``Conv2d``
        layers with any admissible activations (including ones derived with sympy) and an
        identity last layer allowed. It is never modified; training returns a new network.
    inputs : array_like, shape (s, *network.in_shape)
        The inputs x_i^0 (finite), leading sample axis.
    targets : array_like, shape (s, *network.out_shape)
        The targets y_i = x_i^L (finite, in the range of the last activation, i.e. in dom Ψ_L:
        B_{Ψ_L}(y, ·) = +∞ otherwise).
    state_penalties : mapping {l: α_l}, optional
        ℓ1 penalties α_l ‖x^l‖₁ (α_l ≥ 0) on hidden states, l = 1 … L−1 (layer l's output);
        the activation of layer l must satisfy σ_l(0) = 0 and act entrywise.
    weight_decay : float
        λ ≥ 0, the weight of (λ/2) Σ_l ‖W_l‖²_F (biases are not penalised).

    Raises
    ------
    TypeError
        ``network`` is not a bregmod network.
    ValueError
        A layer other than ``Dense`` or ``Conv2d``; NaN/Inf in the data; an empty data set; a
        bad penalty or weight decay.
    ShapeError
        Inputs or targets do not match the network or each other.
    DomainError
        Targets outside the range of the last activation (the message names the entries).
    """

    def __init__(
        self,
        network: Network,
        inputs,
        targets,
        *,
        state_penalties: Mapping[int, float] | None = None,
        weight_decay: float = 0.0,
    ) -> None:
        if not isinstance(network, Network):
            raise TypeError(
                f"network must be a bregmod network (Dense and Conv2d layers in a Sequential), got "
                f"{type(network).__name__}"
            )
        layers = network.layers
        for j, layer in enumerate(layers, start=1):
            try:
                layer_parameters(layer)
            except ValueError as exc:
                raise ValueError(f"layer {j}: {exc}") from None
        self._network = network
        self._layers = layers
        self._activations = [layer.activation for layer in layers]
        self._inputs = self._samples(inputs, network.in_shape, "inputs")
        self._targets = self._samples(targets, network.out_shape, "targets")
        if self._inputs.shape[0] != self._targets.shape[0]:
            raise ShapeError(
                f"inputs hold {self._inputs.shape[0]} samples but targets hold "
                f"{self._targets.shape[0]}; both need the same leading sample axis"
            )
        self._activations[-1].check_domain(
            self._targets,
            what=f"targets (the range of the last activation {self._activations[-1].name})",
        )
        self._weight_decay = nonnegative_scalar(weight_decay, "weight_decay")
        self._alphas = self._penalties(state_penalties)

    # ------------------------------------------------------------------ declaration
    network = property(lambda self: self._network, doc="The initial network (never modified).")
    inputs = property(lambda self: self._inputs, doc="The inputs (s, n_0), float64, flattened.")
    targets = property(lambda self: self._targets, doc="The targets (s, n_L), float64.")
    weight_decay = property(lambda self: self._weight_decay, doc="λ of (λ/2)Σ‖W_l‖².")
    n_samples = property(lambda self: self._inputs.shape[0], doc="s, the number of samples.")

    @property
    def state_penalties(self) -> dict[int, float]:
        """The ℓ1 weights {l: α_l} of the hidden states (only the nonzero ones)."""
        return {l: a for l, a in enumerate(self._alphas) if a > 0}

    def __repr__(self) -> str:
        return (
            f"Training({self._network!r}, samples={self.n_samples}, "
            f"state_penalties={self.state_penalties}, weight_decay={self._weight_decay:g})"
        )

    @staticmethod
    def _samples(x, shape: tuple[int, ...], what: str) -> np.ndarray:
        arr = finite_array(x, what)
        if arr.ndim != len(shape) + 1 or arr.shape[1:] != shape:
            raise ShapeError(
                f"{what} must have shape (s, *{shape}) with a leading sample axis (the network's "
                f"{'input' if what == 'inputs' else 'output'} shape is {shape}), got {arr.shape}"
            )
        if arr.shape[0] == 0:
            raise ValueError(f"{what}: the data set is empty (0 samples)")
        return np.ascontiguousarray(arr.reshape(arr.shape[0], -1))

    def _penalties(self, penalties) -> list[float]:
        n_layers = len(self._layers)
        alphas = [0.0] * n_layers  # alphas[l] for hidden state l = 1 … L−1 (index 0 unused)
        if penalties is None:
            return alphas
        if not isinstance(penalties, Mapping):
            raise TypeError(
                "state_penalties must be a mapping {layer l: α_l}, got "
                f"{type(penalties).__name__}"
            )
        for key, value in penalties.items():
            if isinstance(key, bool) or not isinstance(key, int) or not 1 <= key < n_layers:
                raise ValueError(
                    f"state_penalties: key {key!r} must be a hidden layer index l with "
                    f"1 ≤ l ≤ {n_layers - 1} (the output of layer l)"
                )
            alpha = nonnegative_scalar(value, f"state_penalties[{key}]")
            activation = self._activations[key - 1]
            if alpha > 0 and (
                activation.is_vector or float(activation.prox(np.zeros(1))[0]) != 0.0
            ):
                raise ValueError(
                    f"state_penalties[{key}]: an ℓ1 penalty needs an entrywise activation with "
                    f"σ(0) = 0 on layer {key}, got {activation.name}"
                )
            alphas[key] = alpha
        return alphas

    # ------------------------------------------------------------------ the model
    def _initial_weights(self) -> list[tuple[np.ndarray, np.ndarray]]:
        return [
            (np.array(W, dtype=np.float64), np.array(b))
            for W, b in map(layer_parameters, self._layers)
        ]

    def _model(self, weights) -> DeepBregman:
        """The deep lifted Bregman energy (`bregmod.model.deep`) at the parameters ``weights``."""
        shapes = [self._network.in_shape, *(layer.out_shape for layer in self._layers)]
        operators = [_operator_like(layer, W)
                     for layer, (W, _) in zip(self._layers, weights, strict=True)]
        return DeepBregman(operators, [b for _, b in weights], self._activations, shapes)

    def _build_network(self, weights) -> Sequential:
        return Sequential(
            *(_layer_like(layer, W, b) for (W, b), layer in zip(weights, self._layers, strict=True))
        )

    def _weights_of(self, network: Network | None) -> list[tuple[np.ndarray, np.ndarray]]:
        if network is None:
            return self._initial_weights()
        layers = network.layers
        if len(layers) != len(self._layers) or any(
            type(a) is not type(b) or _geometry(a) != _geometry(b) or a.activation != b.activation
            for a, b in zip(layers, self._layers, strict=False)
        ):
            raise ShapeError(
                f"network {network!r} does not have the architecture of this training problem "
                f"({self._network!r})"
            )
        return [tuple(np.asarray(p) for p in layer_parameters(layer)) for layer in layers]

    def _check_states(self, states, rows: int) -> list[np.ndarray]:
        hidden = [layer.operator.shape[0] for layer in self._layers[:-1]]
        if len(states) != len(hidden):
            raise ShapeError(f"states must hold {len(hidden)} hidden states x^1…x^{len(hidden)}")
        out = []
        for l, (x, n) in enumerate(zip(states, hidden, strict=True), start=1):
            x = finite_array(x, f"hidden state x^{l}")
            if x.shape != (rows, n):
                raise ShapeError(f"hidden state x^{l} must have shape {(rows, n)}, got {x.shape}")
            out.append(x)
        return out

    def _energy(self, model: DeepBregman, X: list[np.ndarray]) -> float:
        """E(Θ, X) on the rows of ``X`` (mean over them); Θ is ``model``'s parameters."""
        per_sample = model.value(X)
        for l, alpha in self.state_penalties.items():
            per_sample = per_sample + alpha * np.abs(X[l]).sum(axis=1)
        decay = sum(float(np.sum(_parameters(model, l)[0] ** 2)) for l in range(1, model.depth + 1))
        return float(np.mean(per_sample)) + 0.5 * self._weight_decay * decay

    def energy(self, network: Network | None = None, states=None) -> float:
        """The lifted energy E(Θ, X) (formula in the class docstring).

        Parameters
        ----------
        network : Network, optional
            Θ: a network of this architecture (default: the initial network).
        states : sequence of array_like, optional
            The hidden states x^1 … x^{L−1}, each (s, n_l); default: the forward pass of
            ``network`` (then only the last layer's term is nonzero).
        """
        model, X = self._model_and_states(network, states)
        return self._energy(model, X)

    def gradient(self, network: Network | None = None, states=None):
        """∇_{(W_l, b_l)} E(Θ, X) for every layer: ``[(∂E/∂W_l, ∂E/∂b_l), …]``.

        ∂E/∂W_l = 1/s Σ_i (σ_l(W_l x_i^{l−1} + b_l) − x_i^l)(x_i^{l−1})ᵀ + λ W_l and
        ∂E/∂b_l = 1/s Σ_i (σ_l(W_l x_i^{l−1} + b_l) − x_i^l): no σ′. For a ``Conv2d`` layer the
        kernel gradient is the correlation of that residual with the input (shape of the kernel)
        and the bias gradient its sum over each output channel. Arguments as in :meth:`energy`.
        """
        model, X = self._model_and_states(network, states)
        parts, _ = _weight_parts(model, _Shard(X))
        return [self._weight_gradient(model, l, [part]) for l, part in enumerate(parts, start=1)]

    def _model_and_states(self, network, states) -> tuple[DeepBregman, list[np.ndarray]]:
        model = self._model(self._weights_of(network))
        if states is None:
            X = model.forward(self._inputs)[:-1] + [self._targets]
        else:
            X = _full_states(
                self._check_states(states, self.n_samples), self._inputs, self._targets
            )
        return model, X

    def _weight_gradient(self, model: DeepBregman, l: int, parts: list[_WeightPart]):
        """(∂E/∂W_l, ∂E/∂b_l) on the rows of the shards: Σ_p (m_p/m) ∇_p + (λ W_l, 0), ∇_p
        the shard means of `DeepBregman.param_gradient`, m = Σ_p m_p."""
        rows = sum(part.rows for part in parts)
        weight = sum((part.rows / rows) * part.gradient.weight for part in parts)
        bias = sum((part.rows / rows) * part.gradient.bias for part in parts)
        return weight + self._weight_decay * _parameters(model, l)[0], bias

    # ------------------------------------------------------------------ the block updates
    def _state_step(self, batch: _Batch, l: int, mu: float) -> tuple[float, int]:
        """One proximal gradient step on hidden state x^l of the batch, μ backtracked.

        Smooth part f(x) = Σ_i B_{Ψ_{l+1}}(x_i^{l+1}, W_{l+1} x_i + b_{l+1}) − ⟨x_i, W_l x_i^{l−1}
        + b_l⟩ with gradient `DeepBregman.state_gradient`; prox part Φ_l + α_l‖·‖₁
        (:func:`prox_state`). μ is halved until f(x⁺) ≤ f(x) + ⟨∇f, x⁺ − x⟩ + ‖x⁺ − x‖²/(2μ),
        which gives E(x⁺) ≤ E(x) − ‖x⁺ − x‖²/(2μ). The linear term cancels from this test, and
        with p = W_{l+1} x + b_{l+1}, ⟨W_{l+1}ᵀ r, x⁺ − x⟩ = ⟨r, p⁺ − p⟩, so it reads
        Σ B(x^{l+1}, p⁺) ≤ Σ B(x^{l+1}, p) + ⟨σ(p) − x^{l+1}, p⁺ − p⟩ + ‖x⁺ − x‖²/(2μ)
        (:func:`_sufficient_decrease`), summed over the whole batch: one reduction over the
        shards per trial.

        Returns the accepted μ and the number of halvings.
        """
        for halvings in range(_MAX_BACKTRACKS):
            if _sufficient_decrease(batch.state_sums(l, self._alphas[l], mu, halvings == 0), mu):
                batch.accept()
                return mu, halvings
            mu *= 0.5
        return mu, _MAX_BACKTRACKS  # no acceptable step (not expected): x^l unchanged

    def _weight_step(self, model: DeepBregman, l: int, parts: list[_WeightPart], anchor,
                     tau: float):
        """One gradient step on (W_l, b_l) of E_S + 1/(2τ)‖(W_l, b_l) − (W_l, b_l)^k‖².

        Step 1/L with L = λ_max(X̃ᵀX̃)/|S| + 1/τ + λ, X̃ = [x^{l−1}, 1] (for a convolution
        [P, 1], P its im2col matrix of x^{l−1}): a Lipschitz constant of the gradient in
        (W_l, b_l) (σ_l is 1-Lipschitz). ``parts`` are the shards' shares
        (`_weight_parts`) of layer l.
        """
        W, b = _parameters(model, l)
        W0, b0 = anchor[l - 1]
        gW, gb = self._weight_gradient(model, l, parts)
        gW = gW + (W - W0) / tau
        gb = gb + (b - b0) / tau
        rows = sum(part.rows for part in parts)
        lipschitz = (
            _largest_eigenvalue_of_gram([part.gram for part in parts]) / rows + 1.0 / tau
            + self._weight_decay
        )
        return W - gW / lipschitz, b - gb / lipschitz

    #: Whether :meth:`_update_weights` needs the batch's states after every sweep (a step that
    #: backtracks on the batch energy, `bregmod.unfolded`); the exact-Lipschitz steps do not.
    _weight_update_needs_states = False

    def _update_weights(self, model: DeepBregman, weights, parts: list[list[_WeightPart]],
                        anchor, tau: float, states: list[np.ndarray] | None):
        """Θ after the weight part of a sweep: a gradient step on every (W_l, b_l), the layers
        being independent given the states (:meth:`_weight_step`). ``weights`` are the current
        parameters (those of ``model``), ``anchor`` Θ^k of the implicit step, ``parts`` the
        shards' shares per layer and ``states`` the batch's states when
        ``_weight_update_needs_states``."""
        return [self._weight_step(model, l, parts[l - 1], anchor, tau)
                for l in range(1, model.depth + 1)]

    def _batch_step(self, run: _Run, index: np.ndarray, tau: float, inner: int,
                    state_init: str, executor) -> None:
        """The implicit SGD step on the batch ``index``, committed to ``run`` at the end.

        The batch is cut into ``executor.shards`` contiguous shards (one in-process). Their
        hidden states start from the forward pass of the current weights
        (``state_init="warm"``: from their values at the sample's previous visit); the final
        states are stored in ``run`` either way. Each sweep updates x^{L−1}, …, x^1 in turn
        (top-down Gauss–Seidel), then all (W_l, b_l) (independent given the states).

        Top-down, because from the forward pass only x^{L−1} sees a nonzero residual (the
        target's): each state step passes it on to the layer below, so one sweep reaches every
        layer; bottom-up (or Jacobi) sweeps move it one layer per sweep, and with fewer sweeps
        than hidden layers the first layers' weights would get no gradient.
        """
        model = self._model(run.weights)
        L = model.depth
        rows = [
            (self._inputs[index[part]], self._targets[index[part]],
             None if state_init == "forward" else [s[index[part]] for s in run.states])
            for part in chunk_slices(len(index), math.ceil(len(index) / executor.shards))
        ]
        mus = [1.0 / max(_norm_estimate_sq(W), 1e-12) for W in model.operators[1:]]
        halvings = 0
        weights = run.weights
        batch = _Batch(executor, model, run.weights, rows)
        try:
            for sweep in range(inner):
                for l in range(L - 1, 0, -1):
                    mus[l - 1], count = self._state_step(batch, l, mus[l - 1])
                    halvings += count
                needs_states = self._weight_update_needs_states
                parts = batch.weight_parts(last=needs_states or sweep + 1 == inner)
                X = None
                if needs_states:
                    X = _full_states(batch.states, self._inputs[index], self._targets[index])
                weights = self._update_weights(model, weights, parts, run.weights, tau, X)
                model = self._model(weights)
                batch.set_model(model, weights)
            states = batch.states
        finally:
            executor.release()
        counters = dict(run.counters)
        counters["batches"] += 1
        counters["inner_sweeps"] += inner
        counters["state_backtracks"] += halvings
        # One assignment commits the batch; _apply_pending makes it visible (idempotently).
        run.pending = (index, states, weights, run.batch + 1, counters)
        self._apply_pending(run)

    @staticmethod
    def _apply_pending(run: _Run) -> None:
        """Write a committed batch into ``run`` (safe to repeat after an interrupt)."""
        if run.pending is None:
            return
        index, states, weights, batch, counters = run.pending
        for stored, x in zip(run.states, states, strict=True):
            stored[index] = x
        run.weights, run.batch, run.counters = weights, batch, counters
        run.pending = None

    # ------------------------------------------------------------------ solving
    def _loss(self, weights, inputs: np.ndarray, targets: np.ndarray) -> float:
        """Forward-pass mean squared error (1/(s·m)) Σ_i ‖N(x_i) − y_i‖²."""
        out = self._model(weights).forward(inputs)[-1]
        return float(np.mean((out - targets) ** 2))

    def _validation(self, validation):
        if validation is None:
            return None
        try:
            x, y = validation
        except (TypeError, ValueError):
            raise TypeError("validation must be a pair (inputs, targets)") from None
        x = self._samples(x, self._network.in_shape, "validation inputs")
        y = self._samples(y, self._network.out_shape, "validation targets")
        if x.shape[0] != y.shape[0]:
            raise ShapeError(
                f"validation inputs hold {x.shape[0]} samples but validation targets {y.shape[0]}"
            )
        return x, y

    def _new_run(self, seed: int, dtype: np.dtype) -> _Run:
        weights = self._initial_weights()
        forward = self._model(weights).forward(self._inputs)
        return _Run(
            weights=weights,
            states=[s.astype(dtype) for s in forward[1:-1]],
            rng=np.random.default_rng(seed),
            history={key: [] for key in _HISTORY_KEYS},
            counters=dict.fromkeys(_COUNTER_KEYS, 0),
        )

    def solve(
        self,
        epochs: int = 10,
        batch_size: int = 32,
        *,
        seed: int = 0,
        tau: float = 1.0,
        schedule: str = "constant",
        inner_iterations: int = 5,
        state_init: str = "forward",
        validation=None,
        early_stopping: int | None = None,
        checkpoint: str | os.PathLike | None = None,
        checkpoint_every: int = 1,
        resume: bool = False,
        progress: bool = False,
        dtype: str = "float64",
        client=None,
    ) -> TrainingResult:
        """Train by implicit SGD with proximal-gradient subproblems (module docstring).

        Parameters
        ----------
        epochs : int
            Total number of epochs (with ``resume``: including those already in the
            checkpoint).
        batch_size : int
            |S|; each epoch visits the samples in a random order in batches of this size (the
            last batch may be smaller).
        seed : int
            Seed of the batch order (same seed, same data → identical results).
        tau : float
            τ > 0 of the implicit step 1/(2τ)‖Θ − Θ^k‖² (larger τ: longer steps).
        schedule : {"constant", "sqrt", "inverse"}
            τ_e = τ, τ/√(e + 1) or τ/(e + 1) in epoch e = 0, 1, ….
        inner_iterations : int
            Proximal-gradient sweeps (the hidden states x^{L−1}, …, x^1 in this order, then all
            weights) per batch.
        state_init : {"forward", "warm"}
            Where a batch's hidden states start: the forward pass of the current weights
            (default; measured better on the teacher–student problem of the tests), or the
            states of the sample's previous visit (the first from the initial forward pass).
        validation : (inputs, targets), optional
            Data for the validation loss in the history (and for early stopping).
        early_stopping : int, optional
            Stop after this many epochs without a lower validation loss, and return the weights
            of the best epoch (needs ``validation``).
        checkpoint : path, optional
            A ``.npz`` file written atomically every ``checkpoint_every`` epochs, at the end, and
            on KeyboardInterrupt (then the interrupt is re-raised).
        checkpoint_every : int
            Epochs between checkpoints.
        resume : bool
            Continue from ``checkpoint`` (which must exist and belong to this problem and these
            settings) up to ``epochs`` epochs in total; bit-identical to an uninterrupted run.
        progress : bool
            Show a tqdm progress bar over the epochs with the energy and loss.
        dtype : {"float64", "float32"}
            Storage type of the hidden states (float32 halves their memory; computations run in
            float64).
        client : dask.distributed.Client, optional
            Data-parallel training on the client's workers (docs/guide/distributed.md): each
            batch is cut into one shard per worker thread; the shards update their own hidden
            states and return the sums that couple the samples (the backtracking test, the
            weight gradient, the Gram matrix of the step size), which this process reduces
            into the new weights. The same algorithm as without a client: the same seed gives
            the same weights up to the rounding of the shard sums. ``stats["distributed"]``
            counts the tasks, round trips and the bytes of the arrays sent and received.

        Returns
        -------
        TrainingResult

        Raises
        ------
        ValueError
            Bad settings; ``early_stopping`` without ``validation``.
        CheckpointError
            A checkpoint that is corrupt, not a training checkpoint, or of another problem or
            other settings.
        FileNotFoundError
            ``resume=True`` without an existing checkpoint file.
        TypeError
            ``client`` is not a ``dask.distributed.Client``.
        ImportError
            ``client`` given but Dask is not installed.
        """
        start = time.perf_counter()
        epochs = self._count(epochs, "epochs", minimum=0)
        batch_size = self._count(batch_size, "batch_size")
        inner = self._count(inner_iterations, "inner_iterations")
        every = self._count(checkpoint_every, "checkpoint_every")
        tau = positive_scalar(tau, "tau")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be an integer ≥ 0, got {seed!r}")
        if schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {schedule!r}; choose one of {SCHEDULES}")
        if state_init not in STATE_INITS:
            raise ValueError(f"state_init must be one of {STATE_INITS}, got {state_init!r}")
        if dtype not in STATE_DTYPES:
            raise ValueError(f"dtype must be one of {STATE_DTYPES}, got {dtype!r}")
        validation = self._validation(validation)
        if early_stopping is not None:
            early_stopping = self._count(early_stopping, "early_stopping")
            if validation is None:
                raise ValueError("early_stopping needs validation data (validation=(X, Y))")
        if resume and checkpoint is None:
            raise ValueError("resume=True needs the checkpoint path")
        settings = {
            "batch_size": batch_size,
            "seed": int(seed),
            "tau": tau,
            "schedule": schedule,
            "inner_iterations": inner,
            "state_init": state_init,
            "dtype": dtype,
            "early_stopping": early_stopping,
            "validation_samples": None if validation is None else int(validation[0].shape[0]),
        }
        state_dtype = np.dtype(dtype)
        executor = _InProcess() if client is None else _OnDask(client)
        if resume:
            run = self._load_checkpoint(Path(checkpoint), settings)
            resumed_from = run.epoch
        else:
            run = self._new_run(int(seed), state_dtype)
            resumed_from = None
        n_batches = math.ceil(self.n_samples / batch_size)
        batches_before = run.counters["batches"]
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=epochs, initial=min(run.epoch, epochs), desc="lifted training",
                       leave=False)
        status = "epochs"
        try:
            while run.epoch < epochs and status == "epochs":
                epoch_start = time.perf_counter()
                tau_e = self._tau(tau, schedule, run.epoch)
                if run.permutation is None:
                    run.permutation = run.rng.permutation(self.n_samples)
                while run.batch < n_batches:
                    index = np.sort(
                        run.permutation[run.batch * batch_size:(run.batch + 1) * batch_size]
                    )
                    self._batch_step(run, index, tau_e, inner, state_init, executor)
                status = self._end_epoch(run, tau_e, validation, early_stopping,
                                         time.perf_counter() - epoch_start)
                if checkpoint is not None and (run.epoch % every == 0 or run.epoch == epochs):
                    self._save_checkpoint(Path(checkpoint), run, settings)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(energy=f"{run.history['energy'][-1]:.4g}",
                                    loss=f"{run.history['train_loss'][-1]:.4g}")
        except KeyboardInterrupt:
            if checkpoint is not None:
                self._save_checkpoint(Path(checkpoint), run, settings)
            raise
        finally:
            if bar is not None:
                bar.close()
        final = run.weights
        if early_stopping is not None and run.best_weights is not None:
            final = run.best_weights
        stats = {
            **run.counters,
            "epochs": run.epoch,
            "best_epoch": run.best_epoch if validation is not None else None,
            "resumed_from_epoch": resumed_from,
            **settings,
        }
        if client is not None:
            stats["distributed"] = executor.info(run.counters["batches"] - batches_before)
        return TrainingResult(
            network=self._build_network(final),
            history={key: list(values) for key, values in run.history.items()},
            states=[s.copy() for s in run.states],
            status=status,
            wall_time=time.perf_counter() - start,
            stats=stats,
        )

    @staticmethod
    def _count(value, name: str, minimum: int = 1) -> int:
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
            raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}")
        return int(value)

    @staticmethod
    def _tau(tau: float, schedule: str, epoch: int) -> float:
        if schedule == "sqrt":
            return tau / math.sqrt(epoch + 1)
        if schedule == "inverse":
            return tau / (epoch + 1)
        return tau

    def _end_epoch(self, run: _Run, tau_e: float, validation, patience: int | None,
                   seconds: float) -> str:
        """Record the epoch's history, track the best validation loss; return the status."""
        X = _full_states(run.states, self._inputs, self._targets)
        energy = self._energy(self._model(run.weights), X)
        train_loss = self._loss(run.weights, self._inputs, self._targets)
        val_loss = math.nan if validation is None else self._loss(run.weights, *validation)
        run.epoch += 1
        run.batch = 0
        run.permutation = None
        for key, value in zip(
            _HISTORY_KEYS, (run.epoch, energy, train_loss, val_loss, tau_e, seconds), strict=True
        ):
            run.history[key].append(value)
        if validation is None:
            return "epochs"
        if val_loss < run.best_loss:
            run.best_loss, run.best_epoch, run.stale_epochs = val_loss, run.epoch, 0
            run.best_weights = [(W.copy(), b.copy()) for W, b in run.weights]
        else:
            run.stale_epochs += 1
        if patience is not None and run.stale_epochs >= patience:
            return "early_stopping"
        return "epochs"

    # ------------------------------------------------------------------ checkpoints
    def _fingerprint(self) -> dict[str, Any]:
        """What identifies the problem: architecture, data digest, penalties, weight decay."""
        digest = hashlib.sha256()
        for arr in (self._inputs, self._targets):
            digest.update(np.ascontiguousarray(arr).tobytes())
        for W, b in map(layer_parameters, self._layers):
            digest.update(np.ascontiguousarray(W).tobytes())
            digest.update(np.ascontiguousarray(b).tobytes())
        return {
            "layers": [_geometry(layer) for layer in self._layers],
            "samples": self.n_samples,
            "data_and_initial_weights_sha256": digest.hexdigest(),
            "state_penalties": {str(k): v for k, v in self.state_penalties.items()},
            "weight_decay": self._weight_decay,
        }

    @staticmethod
    def _arrays_digest(arrays: Mapping[str, np.ndarray]) -> str:
        digest = hashlib.sha256()
        for name in sorted(arrays):
            arr = np.ascontiguousarray(arrays[name])
            digest.update(name.encode())
            digest.update(str(arr.dtype).encode())
            digest.update(str(arr.shape).encode())
            digest.update(arr.tobytes())
        return digest.hexdigest()

    def _save_checkpoint(self, path: Path, run: _Run, settings: dict[str, Any]) -> None:
        """Write ``run`` to ``path`` atomically (temporary file in the same folder + os.replace)."""
        self._apply_pending(run)
        arrays: dict[str, np.ndarray] = {}
        for l, (W, b) in enumerate(run.weights, start=1):
            arrays[f"W{l}"], arrays[f"b{l}"] = W, b
        for l, x in enumerate(run.states, start=1):
            arrays[f"x{l}"] = x
        if run.permutation is not None:
            arrays["permutation"] = run.permutation
        if run.best_weights is not None:
            for l, (W, b) in enumerate(run.best_weights, start=1):
                arrays[f"best_W{l}"], arrays[f"best_b{l}"] = W, b
        meta = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "problem": self._fingerprint(),
            "settings": settings,
            "epoch": run.epoch,
            "batch": run.batch,
            "rng": run.rng.bit_generator.state,
            "history": run.history,
            "counters": run.counters,
            "best": {"loss": run.best_loss, "epoch": run.best_epoch, "stale": run.stale_epochs},
            "arrays_sha256": self._arrays_digest(arrays),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.savez(handle, meta=np.array(json.dumps(meta)), **arrays)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _load_checkpoint(self, path: Path, settings: dict[str, Any]) -> _Run:
        if not path.exists():
            raise FileNotFoundError(f"resume=True but the checkpoint {path} does not exist")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {name: data[name] for name in data.files}
            meta = json.loads(str(arrays.pop("meta")))
        except Exception as exc:
            raise CheckpointError(f"{path} is not a readable training checkpoint: {exc}") from None
        if not isinstance(meta, dict) or meta.get("format") != CHECKPOINT_FORMAT:
            raise CheckpointError(f"{path} is not a bregmod training checkpoint")
        if meta.get("version") != CHECKPOINT_VERSION:
            raise CheckpointError(
                f"{path} has checkpoint version {meta.get('version')}, this bregmod reads "
                f"version {CHECKPOINT_VERSION}"
            )
        if meta.get("arrays_sha256") != self._arrays_digest(arrays):
            raise CheckpointError(f"{path} is corrupt: its arrays do not match their checksum")
        fingerprint = json.loads(json.dumps(self._fingerprint()))
        if meta["problem"] != fingerprint:
            differ = sorted(k for k in fingerprint if meta["problem"].get(k) != fingerprint[k])
            raise CheckpointError(
                f"{path} belongs to another training problem (different {', '.join(differ)}); "
                "use a new checkpoint path or resume=False"
            )
        if meta["settings"] != json.loads(json.dumps(settings)):
            differ = sorted(k for k in settings if meta["settings"].get(k) != settings[k])
            raise CheckpointError(
                f"{path} was written with other solver settings ({', '.join(differ)}: "
                f"{ {k: meta['settings'].get(k) for k in differ} }); resume with the same "
                "settings for a bit-identical continuation"
            )
        L = len(self._layers)
        rng = np.random.default_rng()
        rng.bit_generator.state = meta["rng"]
        best = None
        if "best_W1" in arrays:
            best = [(arrays[f"best_W{l}"], arrays[f"best_b{l}"]) for l in range(1, L + 1)]
        return _Run(
            weights=[(arrays[f"W{l}"], arrays[f"b{l}"]) for l in range(1, L + 1)],
            states=[arrays[f"x{l}"] for l in range(1, L)],
            rng=rng,
            epoch=int(meta["epoch"]),
            batch=int(meta["batch"]),
            permutation=arrays.get("permutation"),
            history={key: list(meta["history"][key]) for key in _HISTORY_KEYS},
            counters={key: int(meta["counters"][key]) for key in _COUNTER_KEYS},
            best_loss=float(meta["best"]["loss"]),
            best_epoch=int(meta["best"]["epoch"]),
            best_weights=best,
            stale_epochs=int(meta["best"]["stale"]),
        )
