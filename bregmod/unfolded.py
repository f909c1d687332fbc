"""The unfolded proximal neural network (PNN) denoiser of Wang, Benning & Repetti (MLSP 2024)
and its lifted Bregman training with tied weights (docs/math/training.md).

Dual forward–backward for min_x ½‖x − z‖² + λ‖L x‖₁, unrolled K times with a learnable
convolution L_k (C filters on a one-channel H × W image) in every layer:

    u_1 = clip_{[−λ, λ]}(τ_1 L_1 z)                                   (u_0 = 0)
    u_{k+1} = clip_{[−λ, λ]}(u_k − τ_k L_k(L_kᵀ u_k − z)),   k = 1 … K − 1
    x = z − L_Kᵀ u_K.

(prox_{τ g*} is the clip for g = λ‖·‖₁.) Each layer is affine in the state (u_k, z) followed
by an admissible activation, so the unrolled network is a bregmod ``Sequential`` of ``Dense``
layers: with m = C·H·W and n = H·W,

    W_1 = [[τ_1 L_1], [I]],   W_k = [[I − τ_k L_k L_kᵀ, τ_k L_k], [0, I]],   W_{K+1} = [−L_Kᵀ, I],

the activation :class:`~bregmod.activations.ClipBox` clipping the u-part to [−λ, λ] and
carrying the z-part unchanged (bounds ±∞), and the identity on the output. Its lifted Bregman
energy is Σ_k B_{τ g*}(u_{k+1}, …) + ½‖z_{k+1} − z_k‖² (the carried copies of z) +
½‖x̄ − (z − L_Kᵀ u_K)‖² — the PNN training objective of the paper.

The weights are *tied*: training updates the kernels κ_k of L_k = L(κ_k), not the blocks. If
G_k = ∂E/∂W_k is the gradient in layer k's block matrix (`DeepBregman.param_gradient`,
no σ′), the chain rule gives

    ∂E/∂L_1 = τ_1 G_1^{u·},
    ∂E/∂L_k = −τ_k (G_k^{uu} + G_k^{uuᵀ}) L_k + τ_k G_k^{uz},
    ∂E/∂L_K += −(G_{K+1}^{·u})ᵀ                        (the output layer shares L_K),

and ∂E/∂κ_k = Σ_{ij} (∂E/∂L_k)_{ij} ∂(L_k)_{ij}/∂κ_k is the correlation
`Conv2dOperator.kernel_gradient`(I, (∂E/∂L_k)ᵀ). The weight term is quartic in κ (through
L Lᵀ), so the kernel step of the implicit SGD subproblem backtracks on the batch energy
(Armijo) instead of using a Lipschitz constant; the state steps are those of
:class:`~bregmod.training.Training`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bregmod._checks import finite_array, positive_scalar
from bregmod.activations import ClipBox, Identity
from bregmod.errors import ShapeError
from bregmod.model.deep import DeepBregman
from bregmod.network import Dense, Sequential
from bregmod.operators import Conv2dOperator, MatrixOperator
from bregmod.training import _BACKTRACK_RTOL, _MAX_BACKTRACKS, Training

__all__ = ["UnfoldedPNN", "UnfoldedTraining", "gradient_kernels"]


def gradient_kernels(size: int = 3) -> np.ndarray:
    """The forward differences ∇x = (x[i, j+1] − x[i, j], x[i+1, j] − x[i, j]) as a kernel of
    shape (2, 1, size, size) for 'same' padding (zero outside the image): the TV-like L."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 2:
        raise ValueError(f"size must be an integer ≥ 2, got {size!r}")
    kernel = np.zeros((2, 1, size, size))
    c = (size - 1) // 2
    kernel[:, 0, c, c] = -1.0
    kernel[0, 0, c, c + 1] = 1.0
    kernel[1, 0, c + 1, c] = 1.0
    return kernel


class UnfoldedPNN:
    """The unrolled dual forward–backward denoiser (module docstring) with K layers.

    Parameters
    ----------
    kernels : sequence of array_like
        κ_1 … κ_K, each (C, 1, kh, kw) with the same shape: L_k = Conv2dOperator(κ_k) with
        'same' padding on a (1, H, W) image.
    image_shape : (H, W)
        The image (patch) size.
    steps : float or sequence of float
        τ_k > 0 (one value for all layers, or K values).
    threshold : float
        λ > 0 of g = λ‖·‖₁ (the clip bound).

    Raises
    ------
    ShapeError
        Kernels of different or bad shapes, a wrong number of steps.
    ValueError
        No kernel, non-finite kernels, τ_k or λ not > 0.

    Attributes
    ----------
    kernels : tuple of ndarray (read-only)
    image_shape : (H, W)
    steps : tuple of float
    threshold : float
    """

    def __init__(
        self, kernels: Sequence, image_shape: Sequence[int], steps, threshold: float
    ) -> None:
        kernels = tuple(
            np.array(finite_array(k, f"kernel κ_{j}"), dtype=np.float64)
            for j, k in enumerate(kernels, start=1)
        )
        if not kernels:
            raise ValueError("UnfoldedPNN needs at least one layer (one kernel)")
        for j, k in enumerate(kernels, start=1):
            if k.ndim != 4 or k.shape[1] != 1 or k.shape != kernels[0].shape:
                raise ShapeError(
                    f"kernel κ_{j} must have the shape (C, 1, kh, kw) of κ_1 {kernels[0].shape} "
                    f"(C filters on a one-channel image), got {k.shape}"
                )
            k.flags.writeable = False
        shape = tuple(int(d) for d in image_shape)
        if len(shape) != 2 or min(shape) < 1:
            raise ShapeError(f"image_shape must be (H, W) with H, W ≥ 1, got {image_shape!r}")
        steps = np.asarray(steps, dtype=np.float64)
        if steps.ndim == 0:
            steps = np.full(len(kernels), float(steps))
        if steps.shape != (len(kernels),):
            raise ShapeError(f"steps must be one τ or {len(kernels)} values, got {steps.shape}")
        self.kernels = kernels
        self.image_shape = shape
        self.steps = tuple(positive_scalar(t, "step τ_k") for t in steps)
        self.threshold = positive_scalar(threshold, "threshold λ")

    depth = property(lambda self: len(self.kernels), doc="K, the number of unrolled layers.")

    def operator(self, kernel: np.ndarray) -> Conv2dOperator:
        """L = κ ∗ · on a (1, H, W) image with 'same' padding."""
        return Conv2dOperator(kernel, (1, *self.image_shape), padding="same")

    def with_kernels(self, kernels: Sequence) -> UnfoldedPNN:
        """The same denoiser (steps, λ, image size) with other kernels."""
        return UnfoldedPNN(kernels, self.image_shape, self.steps, self.threshold)

    def blocks(self) -> list[np.ndarray]:
        """W_1, …, W_{K+1}, the dense block matrices of the module docstring."""
        return _block_matrices(self, self.kernels)

    def network(self) -> Sequential:
        """The unrolled network as a ``Sequential`` of ``Dense`` layers (module docstring):
        input and output shape (1, H, W)."""
        n = int(np.prod(self.image_shape))
        blocks = self.blocks()
        m = blocks[0].shape[0] - n
        lam = self.threshold
        clip = ClipBox(
            np.r_[np.full(m, -lam), np.full(n, -np.inf)], np.r_[np.full(m, lam), np.full(n, np.inf)]
        )
        image = (1, *self.image_shape)
        layers = [Dense(blocks[0], activation=clip, in_shape=image)]
        layers += [Dense(W, activation=clip) for W in blocks[1:-1]]
        layers.append(Dense(blocks[-1], activation=Identity(), out_shape=image))
        return Sequential(*layers)

    def __repr__(self) -> str:
        return (
            f"UnfoldedPNN({self.depth} layers, kernels {self.kernels[0].shape}, image "
            f"{self.image_shape}, λ={self.threshold:g})"
        )

    def __call__(self, z) -> np.ndarray:
        """The denoised images x for noisy images z of shape (…, 1, H, W)."""
        return self.network()(z)


def _block_matrices(pnn: UnfoldedPNN, kernels: Sequence[np.ndarray]) -> list[np.ndarray]:
    """W_1 = [[τ_1 L_1], [I]], W_k = [[I − τ_k L_k L_kᵀ, τ_k L_k], [0, I]], W_{K+1} = [−L_Kᵀ, I]
    for the kernels κ_k (L_k dense)."""
    Ls = [pnn.operator(k).to_dense() for k in kernels]
    m, n = Ls[0].shape
    eye_n, eye_m = np.eye(n), np.eye(m)
    blocks = [np.vstack([pnn.steps[0] * Ls[0], eye_n])]
    for tau, L in zip(pnn.steps[1:], Ls[1:], strict=True):
        blocks.append(np.block([[eye_m - tau * L @ L.T, tau * L], [np.zeros((n, m)), eye_n]]))
    blocks.append(np.hstack([-Ls[-1].T, eye_n]))
    return blocks


def _dual_operators(matrices: Sequence[np.ndarray], pnn: UnfoldedPNN) -> list[np.ndarray]:
    """L_1 … L_K from the block matrices W_1 … W_K (their top-right m × n block is τ_k L_k)."""
    n = int(np.prod(pnn.image_shape))
    return [W[: W.shape[0] - n, -n:] / tau for W, tau in zip(matrices, pnn.steps, strict=False)]


class UnfoldedTraining(Training):
    """Lifted Bregman training of an :class:`UnfoldedPNN` with tied weights (module docstring).

    Minimises the lifted energy of :class:`~bregmod.training.Training` (no state penalties,
    no weight decay) over the kernels κ_1 … κ_K; ``solve`` takes the same arguments
    (``client`` excepted) and its ``result.network`` is the unrolled network of the trained
    kernels, :attr:`pnn_of` gives the :class:`UnfoldedPNN`.

    Parameters
    ----------
    pnn : UnfoldedPNN
        The initial denoiser (never modified).
    noisy, clean : array_like, shape (s, 1, H, W)
        Noisy inputs z_i and clean targets x̄_i.
    """

    _weight_update_needs_states = True

    def __init__(self, pnn: UnfoldedPNN, noisy, clean) -> None:
        if not isinstance(pnn, UnfoldedPNN):
            raise TypeError(f"pnn must be an UnfoldedPNN, got {type(pnn).__name__}")
        self._pnn = pnn
        super().__init__(pnn.network(), noisy, clean)

    pnn = property(lambda self: self._pnn, doc="The initial denoiser.")

    def pnn_of(self, result) -> UnfoldedPNN:
        """The :class:`UnfoldedPNN` of a training result's kernels."""
        return self._pnn.with_kernels(self._kernels_of(result.network))

    # ------------------------------------------------------------------ parameters
    # Θ is stored as one (κ, b) pair per layer of the network (the form the checkpoints and
    # the base class keep): κ_l for l ≤ K, and κ_K again for the output layer, which shares
    # L_K; the biases are the network's zero biases and stay fixed.
    def _with_kernels(self, kernels: Sequence[np.ndarray]):
        kernels = list(kernels) + [kernels[-1]]
        return [
            (k, np.zeros(layer.operator.shape[0]))
            for k, layer in zip(kernels, self._layers, strict=True)
        ]

    def _initial_weights(self):
        return self._with_kernels([np.array(k) for k in self._pnn.kernels])

    def _model(self, weights) -> DeepBregman:
        blocks = _block_matrices(self._pnn, [k for k, _ in weights[:-1]])
        shapes = [self._network.in_shape, *(layer.out_shape for layer in self._layers)]
        return DeepBregman(
            [MatrixOperator(W) for W in blocks], [b for _, b in weights], self._activations, shapes
        )

    def _build_network(self, weights) -> Sequential:
        return self._pnn.with_kernels([k for k, _ in weights[:-1]]).network()

    def _kernels_of(self, network) -> list[np.ndarray]:
        """κ_1 … κ_K read back from an unrolled network's blocks τ_k L_k.

        L = Σ_e κ_e E_e over the kernel entries e, with E_e the matrix of the unit kernel e;
        the E_e have disjoint supports, so κ_e = ⟨L, E_e⟩/‖E_e‖², ⟨L, E_e⟩ the kernel gradient
        of ⟨L, ·⟩ and ‖E_e‖² that of the all-ones kernel's matrix Σ_e E_e.
        """
        ones = self._pnn.operator(np.ones_like(self._pnn.kernels[0]))
        eye = np.eye(ones.shape[1])
        counts = ones.kernel_gradient(eye, ones.to_dense().T)
        Ls = _dual_operators([layer.W for layer in network.layers], self._pnn)
        return [ones.kernel_gradient(eye, L.T) / counts for L in Ls]

    def _weights_of(self, kernels):
        """Θ from kernels κ_1 … κ_K (``None``: the initial ones)."""
        if kernels is None:
            return self._initial_weights()
        kernels = [np.asarray(finite_array(k, "kernel")) for k in kernels]
        if len(kernels) != self._pnn.depth or any(
            k.shape != self._pnn.kernels[0].shape for k in kernels
        ):
            raise ShapeError(
                f"give {self._pnn.depth} kernels of shape {self._pnn.kernels[0].shape}"
            )
        return self._with_kernels(kernels)

    def solve(self, *args, client=None, **options):
        """:meth:`Training.solve` in this process (same arguments and result).

        Raises
        ------
        ValueError
            ``client`` given: the tied kernel step needs the batch's states in one process.
        """
        if client is not None:
            raise ValueError("UnfoldedTraining runs in one process; client= is not supported")
        return super().solve(*args, **options)

    def energy(self, kernels=None, states=None) -> float:
        """The lifted energy E(κ, X) of :meth:`Training.energy` at the kernels ``kernels``
        (default: the initial ones) and hidden states ``states`` (default: the forward pass)."""
        return super().energy(kernels, states)

    def gradient(self, kernels=None, states=None) -> list[np.ndarray]:
        """∂E/∂κ_k, k = 1 … K (module docstring: the block gradients pulled back through
        W_k(κ_k) and the shared output layer). Arguments as in :meth:`energy`."""
        model, X = self._model_and_states(kernels, states)
        blocks = [model.param_gradient(l, X).weight for l in range(1, model.depth + 1)]
        return self._kernel_gradient(model, blocks)

    def _kernel_gradient(self, model: DeepBregman, blocks: list[np.ndarray]) -> list[np.ndarray]:
        """∂E/∂κ_k from the block gradients G_l = ∂E/∂W_l (module docstring)."""
        pnn, K = self._pnn, self._pnn.depth
        Ls = _dual_operators([op.matrix for op in model.operators], pnn)
        m, n = Ls[0].shape
        grads_L = [pnn.steps[0] * blocks[0][:m]]
        for tau, L, G in zip(pnn.steps[1:], Ls[1:], blocks[1:K], strict=True):
            G_uu = G[:m, :m]
            grads_L.append(-tau * (G_uu + G_uu.T) @ L + tau * G[:m, m:])
        grads_L[-1] = grads_L[-1] - blocks[K][:, :m].T
        geometry = pnn.operator(pnn.kernels[0])
        return [geometry.kernel_gradient(np.eye(n), g.T) for g in grads_L]

    def _update_weights(self, model, weights, parts, anchor, tau, states):
        """One backtracked gradient step on all kernels of
        F(κ) = E_S(κ, X_S) + 1/(2τ) Σ_k ‖κ_k − κ_k^a‖²: the step starts at τ and halves until
        F(κ − t∇F) ≤ F(κ) − (t/2)‖∇F‖² (which holds for t ≤ 1/Lip(∇F))."""
        blocks = [
            self._weight_gradient(model, l, parts[l - 1])[0] for l in range(1, model.depth + 1)
        ]
        kernels = [k for k, _ in weights[:-1]]
        centres = [k for k, _ in anchor[:-1]]
        grads = [
            g + (k - a) / tau
            for g, k, a in zip(self._kernel_gradient(model, blocks), kernels, centres, strict=True)
        ]

        def objective(ks) -> float:
            prox = sum(float(np.sum((k - a) ** 2)) for k, a in zip(ks, centres, strict=True))
            return self._energy(self._model(self._with_kernels(ks)), states) + prox / (2 * tau)

        value = objective(kernels)
        norm_sq = sum(float(np.sum(g * g)) for g in grads)
        step = tau
        for _ in range(_MAX_BACKTRACKS):
            trial = [k - step * g for k, g in zip(kernels, grads, strict=True)]
            bound = value - 0.5 * step * norm_sq
            if objective(trial) <= bound + _BACKTRACK_RTOL * (abs(value) + 1.0):
                return self._with_kernels(trial)
            step *= 0.5
        return weights  # no acceptable step (not expected): Θ unchanged
