"""The unfolded PNN denoiser and its tied lifted training (bregmod.unfolded), and ClipBox."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import correlate2d

import bregmod as bm
from bregmod.activations import ClipBox
from bregmod.errors import DomainError, NotAdmissibleError, ShapeError
from bregmod.unfolded import UnfoldedPNN, UnfoldedTraining, gradient_kernels

H, W, K, LAM = 5, 4, 3, 0.3
STEPS = (0.12, 0.1, 0.11)


def _kernels(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [gradient_kernels() + 0.1 * rng.standard_normal((2, 1, 3, 3)) for _ in range(K)]


def _L(kernel, x):
    """L x: the C filters correlated with the image x (H, W), zero outside ('same')."""
    return np.stack([correlate2d(x, kernel[c, 0], mode="same") for c in range(len(kernel))])


def _Lt(kernel, u):
    """Lᵀ u from the matrix of _L built column by column."""
    basis = np.eye(H * W).reshape(-1, H, W)
    matrix = np.stack([_L(kernel, e).ravel() for e in basis], axis=1)
    return (matrix.T @ u.ravel()).reshape(H, W)


def _dual_forward_backward(kernels, z):
    """u_1 = clip(τ_1 L_1 z), u_{k+1} = clip(u_k − τ_k L_k(L_kᵀ u_k − z)), x = z − L_Kᵀ u_K."""
    u = np.clip(STEPS[0] * _L(kernels[0], z), -LAM, LAM)
    for kernel, tau in zip(kernels[1:], STEPS[1:], strict=True):
        u = np.clip(u - tau * _L(kernel, _Lt(kernel, u) - z), -LAM, LAM)
    return z - _Lt(kernels[-1], u)


def _problem(seed: int = 1):
    rng = np.random.default_rng(seed)
    pnn = UnfoldedPNN(_kernels(), (H, W), STEPS, LAM)
    clean = rng.uniform(0, 1, (6, 1, H, W))
    noisy = clean + 0.2 * rng.standard_normal(clean.shape)
    return pnn, UnfoldedTraining(pnn, noisy, clean), rng


def test_unrolled_network_is_the_dual_forward_backward_loop():
    pnn = UnfoldedPNN(_kernels(), (H, W), STEPS, LAM)
    z = np.random.default_rng(2).standard_normal((3, 1, H, W))
    expected = np.array([_dual_forward_backward(pnn.kernels, zi[0]) for zi in z])
    np.testing.assert_allclose(pnn(z)[:, 0], expected, atol=1e-13)
    net = pnn.network()
    assert len(net.layers) == K + 1 and net.in_shape == net.out_shape == (1, H, W)
    assert all(isinstance(layer.activation, ClipBox) for layer in net.layers[:-1])


def test_untrained_gradient_network_denoises_like_tv():
    """With L = ∇ and many layers the unrolled net approaches the TV denoiser: a noisy step
    edge gets flatter pieces and keeps its jump."""
    step = np.zeros((1, 1, 8, 8))
    step[..., 4:] = 1.0
    noisy = step + 0.1 * np.random.default_rng(3).standard_normal(step.shape)
    x = UnfoldedPNN([gradient_kernels()] * 30, (8, 8), 0.12, 0.05)(noisy)
    assert np.mean((x - step) ** 2) < 0.5 * np.mean((noisy - step) ** 2)
    assert x[..., 4:].mean() - x[..., :4].mean() > 0.8


def test_tied_kernel_gradient_matches_finite_differences_of_the_lifted_energy():
    pnn, training, rng = _problem()
    forward = training._model(training._initial_weights()).forward(training.inputs)
    clip = training.network.layers[0].activation
    states = [clip.project_domain(x + 0.05 * rng.standard_normal(x.shape)) for x in forward[1:-1]]
    gradient = training.gradient(None, states)
    assert [g.shape for g in gradient] == [(2, 1, 3, 3)] * K
    h = 1e-6
    for k in range(K):
        for index in np.ndindex(2, 1, 3, 3):
            moved = []
            for delta in (h, -h):
                kernels = [kernel.copy() for kernel in pnn.kernels]
                kernels[k][index] += delta
                moved.append(training.energy(kernels, states))
            fd = (moved[0] - moved[1]) / (2 * h)
            assert gradient[k][index] == pytest.approx(fd, rel=1e-5, abs=1e-8)


def test_kernel_step_decreases_its_subproblem_and_kernels_round_trip():
    pnn, training, rng = _problem()
    weights = training._initial_weights()
    model = training._model(weights)
    forward = model.forward(training.inputs)
    clip = training.network.layers[0].activation
    X = [
        forward[0],
        *(clip.project_domain(x + 0.1 * rng.standard_normal(x.shape)) for x in forward[1:-1]),
        training.targets,
    ]
    from bregmod.training import _Shard, _weight_parts

    parts, _ = _weight_parts(model, _Shard(X))
    tau = 1e4  # long first trials: the backtracking must shorten the step
    anchor = training._with_kernels([k + 0.05 for k in pnn.kernels])

    def subproblem(ws):
        prox = sum(
            np.sum((k - a) ** 2) for (k, _), (a, _) in zip(ws[:-1], anchor[:-1], strict=True)
        )
        return training._energy(training._model(ws), X) + prox / (2 * tau)

    stepped = training._update_weights(model, weights, [[p] for p in parts], anchor, tau, X)
    assert subproblem(stepped) < subproblem(weights) - 1e-4
    assert stepped[-1][0] is stepped[-2][0]  # the output layer shares L_K
    # The trained network's kernels are read back from its blocks.
    result = training.solve(epochs=2, batch_size=3, inner_iterations=2, tau=0.5, state_init="warm")
    trained = training.pnn_of(result)
    np.testing.assert_allclose(
        trained(training.inputs.reshape(-1, 1, H, W)),
        result.network(training.inputs.reshape(-1, 1, H, W)),
        atol=1e-12,
    )
    for k, (new, old) in enumerate(zip(trained.kernels, pnn.kernels, strict=True)):
        assert np.abs(new - old).max() > 1e-4, f"kernel {k + 1} did not move"
    assert training.energy(trained.kernels, result.states) < training.energy(None, result.states)


def test_checkpoint_resume_is_bit_identical(tmp_path):
    _, training, _ = _problem()
    options = dict(batch_size=4, inner_iterations=2, tau=0.5, seed=1)
    full = training.solve(epochs=2, **options)
    path = tmp_path / "pnn.npz"
    training.solve(epochs=1, checkpoint=path, **options)
    resumed = training.solve(epochs=2, checkpoint=path, resume=True, **options)
    for a, b in zip(training.pnn_of(full).kernels, training.pnn_of(resumed).kernels, strict=True):
        np.testing.assert_array_equal(a, b)
    assert full.history["energy"] == resumed.history["energy"]


def test_bad_denoisers_and_data_are_rejected():
    kernels = _kernels()
    with pytest.raises(ShapeError, match="shape \\(C, 1, kh, kw\\)"):
        UnfoldedPNN([kernels[0], np.ones((2, 2, 3, 3))], (H, W), 0.1, LAM)
    with pytest.raises(ShapeError, match="steps must be one τ or 3 values"):
        UnfoldedPNN(kernels, (H, W), (0.1, 0.2), LAM)
    with pytest.raises(ValueError, match="threshold"):
        UnfoldedPNN(kernels, (H, W), 0.1, 0.0)
    with pytest.raises(ValueError, match="at least one layer"):
        UnfoldedPNN([], (H, W), 0.1, LAM)
    with pytest.raises(ValueError, match="NaN"):
        UnfoldedPNN([np.full((2, 1, 3, 3), np.nan)], (H, W), 0.1, LAM)
    pnn = UnfoldedPNN(kernels, (H, W), STEPS, LAM)
    with pytest.raises(ShapeError, match="inputs"):
        UnfoldedTraining(pnn, np.ones((4, 1, H + 1, W)), np.ones((4, 1, H, W)))
    with pytest.raises(TypeError, match="UnfoldedPNN"):
        UnfoldedTraining(pnn.network(), np.ones((4, 1, H, W)), np.ones((4, 1, H, W)))
    training = UnfoldedTraining(pnn, np.ones((4, 1, H, W)), np.ones((4, 1, H, W)))
    with pytest.raises(ShapeError, match="give 3 kernels"):
        training.energy(kernels[:2])
    with pytest.raises(ValueError, match="client"):
        training.solve(epochs=1, client=object())


def test_clip_box_is_clip_and_identity_per_entry():
    box = ClipBox([-0.5, -0.5, -np.inf, 0.0], [0.5, 0.5, np.inf, np.inf])
    x = np.array([[1.0, -0.2, 3.0, -1.0], [-2.0, 0.1, -5.0, 2.0]])
    y = np.array([[0.5, 0.3, 1.0, 0.0], [-0.5, 0.0, 2.0, 1.5]])
    parts = [(bm.Clip(-0.5, 0.5), [0, 1]), (bm.Identity(), [2]), (bm.ReLU(), [3])]
    for activation, entries in parts:
        np.testing.assert_array_equal(box.prox(x)[:, entries], activation.prox(x[:, entries]))
        np.testing.assert_allclose(
            box.bregman_terms(y, x)[:, entries],
            activation.bregman_terms(y[:, entries], x[:, entries]),
            atol=1e-15,
        )
        np.testing.assert_allclose(
            box.prox_phi(x, 0.7)[:, entries], activation.prox_phi(x[:, entries], 0.7), atol=1e-15
        )
    assert box == ClipBox([-0.5, -0.5, -np.inf, 0.0], [0.5, 0.5, np.inf, np.inf])
    assert box != ClipBox([-0.5, -0.4, -np.inf, 0.0], [0.5, 0.5, np.inf, np.inf])
    with pytest.raises(DomainError, match="box"):
        box.bregman_terms(np.array([0.6, 0.0, 0.0, 0.0]), x[0])
    with pytest.raises(ShapeError, match="4 entries"):
        box.prox(np.ones((2, 3)))
    with pytest.raises(NotAdmissibleError, match="entry 1"):
        ClipBox([0.0, 1.0], [1.0, 0.0])
    with pytest.raises(NotAdmissibleError, match="entry 0"):
        ClipBox([np.inf], [np.inf])
    with pytest.raises(ShapeError, match="same length"):
        ClipBox([0.0, 1.0], [1.0])
