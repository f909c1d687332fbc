"""Lifted Bregman training (docs/math/training.md): bregmod.training.Training."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from scipy.optimize import minimize_scalar

import bregmod as bm
from bregmod.errors import CheckpointError, DomainError, ShapeError
from bregmod.model.deep import DeepBregman
from bregmod.training import _Batch, _InProcess, _Shard, _weight_parts, layer_parameters, prox_state

D, H, M = 8, 24, 4


def _teacher_data(seed: int = 0, samples: int = 200):
    rng = np.random.default_rng(seed)
    T1 = rng.standard_normal((H, D)) / np.sqrt(D)
    T2 = rng.standard_normal((M, H)) / np.sqrt(H)

    def teacher(X):
        return np.maximum(X @ T1.T, 0) @ T2.T

    X, Xt = rng.standard_normal((samples, D)), rng.standard_normal((200, D))
    W1 = rng.standard_normal((H, D)) / np.sqrt(D)
    W2 = rng.standard_normal((M, H)) / np.sqrt(H)
    return X, teacher(X), Xt, teacher(Xt), W1, W2


def _student(W1, W2) -> bm.Sequential:
    return bm.Sequential(bm.Dense(W1, activation=bm.ReLU()), bm.Dense(W2))


def _adam_baseline(X, Y, W1, W2, epochs: int, batch: int, lr: float = 1e-2, seed: int = 0):
    """Backprop + Adam on ½ mean ‖W2 relu(W1 x + b1) + b2 − y‖² (independent of bregmod)."""
    rng = np.random.default_rng(seed)
    params = [W1.copy(), np.zeros(W1.shape[0]), W2.copy(), np.zeros(W2.shape[0])]
    first = [np.zeros_like(p) for p in params]
    second = [np.zeros_like(p) for p in params]
    t = 0
    for _ in range(epochs):
        perm = rng.permutation(len(X))
        for k in range(0, len(X), batch):
            x, y = X[perm[k:k + batch]], Y[perm[k:k + batch]]
            A1, c1, A2, c2 = params
            pre = x @ A1.T + c1
            hidden = np.maximum(pre, 0)
            r = (hidden @ A2.T + c2 - y) / len(x)
            dh = (r @ A2) * (pre > 0)
            grads = [dh.T @ x, dh.sum(0), r.T @ hidden, r.sum(0)]
            t += 1
            for i, g in enumerate(grads):
                first[i] = 0.9 * first[i] + 0.1 * g
                second[i] = 0.999 * second[i] + 0.001 * g * g
                step = (first[i] / (1 - 0.9**t)) / (np.sqrt(second[i] / (1 - 0.999**t)) + 1e-8)
                params[i] = params[i] - lr * step
    A1, c1, A2, c2 = params
    return lambda X: np.maximum(X @ A1.T + c1, 0) @ A2.T + c2


def _mse(f, X, Y) -> float:
    return float(np.mean((f(X) - Y) ** 2))


def test_teacher_student_reaches_backprop_quality():
    X, Y, Xt, Yt, W1, W2 = _teacher_data()
    student = _student(W1, W2)
    initial = _mse(student, Xt, Yt)
    result = bm.Training(student, X, Y).solve(
        epochs=20, batch_size=20, tau=10.0, inner_iterations=3, seed=1, validation=(Xt, Yt)
    )
    lifted = _mse(result.network, Xt, Yt)
    adam = _mse(_adam_baseline(X, Y, W1, W2, epochs=50, batch=20), Xt, Yt)
    assert lifted <= 0.2 * initial
    assert lifted <= 3.0 * adam
    assert result.history["val_loss"][-1] == pytest.approx(lifted)
    assert result.status == "epochs" and result.stats["epochs"] == 20
    assert len(result.history["energy"]) == 20
    # The initial network is untouched; the result is a new, normal bregmod network.
    np.testing.assert_array_equal(student.layers[0].W, W1)
    assert result.network is not student
    assert result.network.lift().n_z > 0


def _random_problem(seed: int = 0, penalties=None, decay: float = 0.0):
    rng = np.random.default_rng(seed)
    net = bm.Sequential(
        bm.Dense(rng.standard_normal((6, 4)), rng.standard_normal(6), bm.Tanh()),
        bm.Dense(rng.standard_normal((5, 6)), rng.standard_normal(5), bm.SoftThreshold(0.3)),
        bm.Dense(rng.standard_normal((3, 5)), rng.standard_normal(3), bm.Sigmoid()),
    )
    X = rng.standard_normal((7, 4))
    Y = rng.uniform(0.1, 0.9, size=(7, 3))
    states = [np.tanh(rng.standard_normal((7, 6))), rng.standard_normal((7, 5))]
    training = bm.Training(net, X, Y, state_penalties=penalties, weight_decay=decay)
    return training, net, states


def _with_weight(net: bm.Sequential, layer: int, name: str, index, delta: float):
    layers = []
    for j, lay in enumerate(net.layers):
        W, b = lay.W.copy(), lay.b.copy()
        if j == layer:
            (W if name == "W" else b)[index] += delta
        layers.append(bm.Dense(W, b, lay.activation))
    return bm.Sequential(*layers)


@pytest.mark.parametrize("decay", [0.0, 0.3])
def test_weight_gradient_matches_finite_differences(decay):
    training, net, states = _random_problem(penalties={2: 0.2}, decay=decay)
    gradient = training.gradient(net, states)
    rng = np.random.default_rng(5)
    h = 1e-6
    for layer, lay in enumerate(net.layers):
        for name, shape in (("W", lay.W.shape), ("b", lay.b.shape)):
            for _ in range(3):
                index = tuple(int(rng.integers(n)) for n in shape)
                plus = training.energy(_with_weight(net, layer, name, index, h), states)
                minus = training.energy(_with_weight(net, layer, name, index, -h), states)
                fd = (plus - minus) / (2 * h)
                analytic = gradient[layer][0 if name == "W" else 1][index]
                assert analytic == pytest.approx(fd, rel=1e-5, abs=1e-7)


def test_energy_is_the_sum_of_bregman_penalties():
    training, net, states = _random_problem(penalties={1: 0.5}, decay=0.2)
    X = [training.inputs, *states, training.targets]
    total = 0.0
    for l, layer in enumerate(net.layers, start=1):
        pre = X[l - 1] @ layer.W.T + layer.b
        total += layer.activation.bregman(X[l], pre)
    total += 0.5 * np.abs(states[0]).sum()
    expected = total / 7 + 0.1 * sum(np.sum(layer.W**2) for layer in net.layers)
    assert training.energy(net, states) == pytest.approx(expected, rel=1e-12)
    # On the forward pass only the last layer's term remains.
    forward = net.states(training.inputs)
    last = net.layers[-1]
    expected_forward = (
        last.activation.bregman(training.targets, forward[2] @ last.W.T + last.b) / 7
        + 0.5 * np.abs(forward[1]).sum() / 7
        + 0.1 * sum(np.sum(layer.W**2) for layer in net.layers)
    )
    assert training.energy(net) == pytest.approx(expected_forward, rel=1e-12)


def test_each_state_update_decreases_the_energy():
    training, net, states = _random_problem(penalties={1: 0.1, 2: 0.05})
    model = DeepBregman.from_network(net)
    weights = [(layer.W, layer.b) for layer in net.layers]
    batch = _Batch(_InProcess(), model, weights, [(training.inputs, training.targets, states)])
    mus = [10.0, 10.0]  # too long: backtracking must act
    energy = training.energy(net, states)
    halvings = 0
    for _ in range(5):
        for l in (1, 2):
            mus[l - 1], count = training._state_step(batch, l, mus[l - 1])
            halvings += count
            batch.weight_parts(last=True)
            new = training.energy(net, batch.states)
            assert new <= energy + 1e-12
            energy = new
    assert halvings > 0
    assert energy < training.energy(net, states) - 1e-3


def test_weight_step_decreases_the_subproblem():
    training, net, states = _random_problem(decay=0.1)
    weights = [(layer.W, layer.b) for layer in net.layers]
    model = DeepBregman.from_network(net)
    anchor = [(W + 0.1, b - 0.1) for W, b in weights]
    X = [training.inputs, *states, training.targets]
    tau = 0.5

    def subproblem(ws):
        prox = sum(np.sum((W - W0) ** 2) + np.sum((b - b0) ** 2)
                   for (W, b), (W0, b0) in zip(ws, anchor, strict=True))
        return training._energy(training._model(ws), X) + prox / (2 * tau)

    before = subproblem(weights)
    parts, _ = _weight_parts(model, _Shard(X))
    stepped = [training._weight_step(model, l, [parts[l - 1]], anchor, tau) for l in (1, 2, 3)]
    assert subproblem(stepped) < before - 1e-6


@pytest.mark.parametrize(
    "activation", [bm.ReLU(), bm.SoftThreshold(0.4), bm.Tanh(), bm.Identity()],
    ids=lambda a: a.name,
)
def test_state_prox_with_l1_matches_brute_force(activation):
    alpha, mu = 0.3, 0.7
    v = np.array([[-2.0, -0.5, -0.1, 0.05, 0.6, 1.7]])
    net = bm.Sequential(bm.Dense(np.eye(6), activation=activation), bm.Dense(np.eye(6)))
    got = prox_state(DeepBregman.from_network(net), 1, alpha, v, mu)
    lo, hi = activation.domain.lo, activation.domain.hi
    lo, hi = max(lo, -10.0), min(hi, 10.0)
    for vi, gi in zip(v[0], got[0], strict=True):
        def objective(u, vi=vi):
            return (u - vi) ** 2 / 2 + mu * (float(activation.phi(np.array(u))) + alpha * abs(u))

        ref = minimize_scalar(objective, bounds=(lo, hi), method="bounded",
                              options={"xatol": 1e-12}).x
        assert gi == pytest.approx(ref, abs=1e-6)


def test_same_seed_same_result_and_seeds_matter():
    X, Y, Xt, Yt, W1, W2 = _teacher_data(samples=60)
    training = bm.Training(_student(W1, W2), X, Y)
    a = training.solve(epochs=2, batch_size=16, seed=3, inner_iterations=2)
    b = training.solve(epochs=2, batch_size=16, seed=3, inner_iterations=2)
    c = training.solve(epochs=2, batch_size=16, seed=4, inner_iterations=2)
    for la, lb, lc in zip(a.network.layers, b.network.layers, c.network.layers, strict=True):
        np.testing.assert_array_equal(la.W, lb.W)
        assert not np.array_equal(la.W, lc.W)
    assert a.history["energy"] == b.history["energy"]


def _assert_same_run(a: bm.TrainingResult, b: bm.TrainingResult) -> None:
    for la, lb in zip(a.network.layers, b.network.layers, strict=True):
        for pa, pb in zip(layer_parameters(la), layer_parameters(lb), strict=True):
            np.testing.assert_array_equal(pa, pb)
    for sa, sb in zip(a.states, b.states, strict=True):
        np.testing.assert_array_equal(sa, sb)
    for key in ("epoch", "energy", "train_loss", "val_loss", "tau"):
        np.testing.assert_array_equal(a.history[key], b.history[key])


@pytest.mark.parametrize("state_init", ["forward", "warm"])
def test_checkpoint_resume_is_bit_identical(tmp_path, state_init):
    X, Y, Xt, Yt, W1, W2 = _teacher_data(samples=60)
    options = dict(batch_size=16, seed=2, inner_iterations=2, schedule="sqrt",
                   state_init=state_init, validation=(Xt, Yt))
    full = bm.Training(_student(W1, W2), X, Y).solve(epochs=4, **options)
    path = tmp_path / "run.npz"
    first = bm.Training(_student(W1, W2), X, Y).solve(epochs=2, checkpoint=path, **options)
    assert first.stats["epochs"] == 2 and path.exists()
    resumed = bm.Training(_student(W1, W2), X, Y).solve(
        epochs=4, checkpoint=path, resume=True, **options
    )
    assert resumed.stats["resumed_from_epoch"] == 2
    _assert_same_run(full, resumed)
    # The checkpoint is a plain .npz: no pickle needed.
    with np.load(path, allow_pickle=False) as data:
        assert json.loads(str(data["meta"]))["epoch"] == 4


def test_interrupt_writes_checkpoint_and_resume_matches(tmp_path, monkeypatch):
    X, Y, _, _, W1, W2 = _teacher_data(samples=60)
    options = dict(batch_size=16, seed=2, inner_iterations=2)
    full = bm.Training(_student(W1, W2), X, Y).solve(epochs=3, **options)
    path = tmp_path / "run.npz"
    training = bm.Training(_student(W1, W2), X, Y)
    original = bm.Training._batch_step
    calls = {"n": 0}

    def interrupted(self, *args):
        calls["n"] += 1
        if calls["n"] == 6:  # in the middle of epoch 2 (4 batches per epoch)
            raise KeyboardInterrupt
        return original(self, *args)

    monkeypatch.setattr(bm.Training, "_batch_step", interrupted)
    with pytest.raises(KeyboardInterrupt):
        training.solve(epochs=3, checkpoint=path, checkpoint_every=10, **options)
    monkeypatch.setattr(bm.Training, "_batch_step", original)
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
    assert (meta["epoch"], meta["batch"]) == (1, 1)
    resumed = bm.Training(_student(W1, W2), X, Y).solve(
        epochs=3, checkpoint=path, resume=True, **options
    )
    _assert_same_run(full, resumed)


def test_bad_checkpoints_are_refused(tmp_path):
    X, Y, _, _, W1, W2 = _teacher_data(samples=40)
    options = dict(batch_size=16, seed=0, inner_iterations=1)
    path = tmp_path / "run.npz"
    bm.Training(_student(W1, W2), X, Y).solve(epochs=1, checkpoint=path, **options)
    training = bm.Training(_student(W1, W2), X, Y)
    # Other settings.
    with pytest.raises(CheckpointError, match="batch_size"):
        training.solve(epochs=2, checkpoint=path, resume=True, batch_size=8, seed=0,
                       inner_iterations=1)
    # Another network (other initial weights) or other data.
    with pytest.raises(CheckpointError, match="another training problem"):
        bm.Training(_student(W1 + 1, W2), X, Y).solve(
            epochs=2, checkpoint=path, resume=True, **options)
    wide = bm.Sequential(bm.Dense(np.ones((5, D)), activation=bm.ReLU()), bm.Dense(np.ones((M, 5))))
    with pytest.raises(CheckpointError, match="layers"):
        bm.Training(wide, X, Y).solve(epochs=2, checkpoint=path, resume=True, **options)
    # A tampered array.
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    arrays["W1"] = arrays["W1"] + 1e-9
    tampered = tmp_path / "tampered.npz"
    np.savez(tampered, **arrays)
    with pytest.raises(CheckpointError, match="corrupt"):
        training.solve(epochs=2, checkpoint=tampered, resume=True, **options)
    # A truncated file, and something that is not a checkpoint.
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[:200])
    with pytest.raises(CheckpointError, match="not a readable"):
        training.solve(epochs=2, checkpoint=truncated, resume=True, **options)
    other = tmp_path / "other.npz"
    np.savez(other, meta=np.array(json.dumps({"format": "something"})))
    with pytest.raises(CheckpointError, match="not a bregmod training checkpoint"):
        training.solve(epochs=2, checkpoint=other, resume=True, **options)
    with pytest.raises(FileNotFoundError):
        training.solve(epochs=2, checkpoint=tmp_path / "missing.npz", resume=True, **options)
    # No temporary files are left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "other.npz", "run.npz", "tampered.npz", "truncated.npz"
    ]


def test_early_stopping_returns_the_best_epoch():
    X, Y, Xt, Yt, W1, W2 = _teacher_data(samples=60)
    # A huge τ overfits/oscillates on 60 samples; the returned weights are the best epoch's.
    result = bm.Training(_student(W1, W2), X, Y).solve(
        epochs=30, batch_size=8, tau=1e3, inner_iterations=2, validation=(Xt, Yt),
        early_stopping=2,
    )
    best = result.stats["best_epoch"]
    losses = result.history["val_loss"]
    assert losses[best - 1] == min(losses)
    assert _mse(result.network, Xt, Yt) == pytest.approx(min(losses))
    if result.status == "early_stopping":
        assert len(losses) == best + 2


def test_float32_states():
    X, Y, _, _, W1, W2 = _teacher_data(samples=40)
    result = bm.Training(_student(W1, W2), X, Y).solve(
        epochs=1, batch_size=20, dtype="float32", state_init="warm"
    )
    assert result.states[0].dtype == np.float32
    assert result.network.layers[0].W.dtype == np.float64


def test_bad_inputs_are_rejected():
    X, Y, _, _, W1, W2 = _teacher_data(samples=20)
    net = _student(W1, W2)
    with pytest.raises(ShapeError, match="inputs"):
        bm.Training(net, X[:, :5], Y)
    with pytest.raises(ShapeError, match="targets"):
        bm.Training(net, X, Y[:, :3])
    with pytest.raises(ShapeError, match="same leading sample axis"):
        bm.Training(net, X, Y[:10])
    with pytest.raises(ValueError, match="empty"):
        bm.Training(net, X[:0], Y[:0])
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        bm.Training(net, bad, Y)
    relu_out = bm.Sequential(bm.Dense(W1, activation=bm.ReLU()),
                             bm.Dense(W2, activation=bm.ReLU()))
    with pytest.raises(DomainError, match="targets"):
        bm.Training(relu_out, X, Y - 10.0)
    residual = bm.Sequential(bm.Residual(np.eye(D), activation=bm.ReLU()), bm.Dense(W2 @ W1))
    with pytest.raises(ValueError, match="layer 1: Training supports .* Dense and Conv2d"):
        bm.Training(residual, X, Y)
    with pytest.raises(TypeError):
        bm.Training("net", X, Y)
    with pytest.raises(ValueError, match="hidden layer index"):
        bm.Training(net, X, Y, state_penalties={2: 0.1})
    sigmoid = bm.Sequential(bm.Dense(W1, activation=bm.Sigmoid()), bm.Dense(W2))
    with pytest.raises(ValueError, match="σ\\(0\\) = 0"):
        bm.Training(sigmoid, X, Y, state_penalties={1: 0.1})
    with pytest.raises(ValueError, match="weight_decay"):
        bm.Training(net, X, Y, weight_decay=-1.0)
    training = bm.Training(net, X, Y)
    with pytest.raises(ValueError, match="early_stopping needs validation"):
        training.solve(epochs=1, early_stopping=2)
    with pytest.raises(ValueError, match="schedule"):
        training.solve(epochs=1, schedule="cosine")
    with pytest.raises(ValueError, match="batch_size"):
        training.solve(epochs=1, batch_size=0)
    with pytest.raises(ValueError, match="tau"):
        training.solve(epochs=1, tau=-1.0)
    with pytest.raises(ShapeError, match="validation"):
        training.solve(epochs=1, validation=(X, Y[:5]))


@pytest.mark.parametrize("weight_decay", [0.0, 0.3])
def test_implicit_step_solves_its_proximal_subproblem(weight_decay):
    """One full-batch implicit step on a linear layer (no hidden states) is the closed-form
    minimiser of E(Θ) + (λ/2)‖W‖² + 1/(2τ)‖Θ − Θ^k‖², E = 1/s Σ ½‖y_i − W x_i − b‖²:
    (X̃ᵀX̃/s + diag(λ, …, λ, 0) + I/τ) Θᵀ = X̃ᵀY/s + Θ^kᵀ/τ, X̃ = [X, 1] (numpy solve)."""
    rng = np.random.default_rng(3)
    s, n, m, tau = 30, 5, 3, 0.5
    X, Y = rng.standard_normal((s, n)), rng.standard_normal((s, m))
    W0, b0 = 0.3 * rng.standard_normal((m, n)), 0.1 * rng.standard_normal(m)
    training = bm.Training(bm.Sequential(bm.Dense(W0, b0)), X, Y, weight_decay=weight_decay)
    layer = training.solve(epochs=1, batch_size=s, tau=tau, inner_iterations=100).network.layers[0]
    X1, theta0 = np.hstack([X, np.ones((s, 1))]), np.hstack([W0, b0[:, None]])
    system = X1.T @ X1 / s + np.diag([weight_decay] * n + [0.0]) + np.eye(n + 1) / tau
    theta = np.linalg.solve(system, X1.T @ Y / s + theta0.T / tau).T
    assert np.abs(theta - theta0).max() > 0.1  # the step moves the weights
    np.testing.assert_allclose(np.hstack([layer.W, layer.b[:, None]]), theta, atol=1e-12)


def test_training_without_a_client_never_imports_dask():
    code = ("import sys, numpy as np, bregmod as bm\n"
            "net = bm.Sequential(bm.Dense(np.eye(2), activation=bm.ReLU()), bm.Dense(np.eye(2)))\n"
            "bm.Training(net, np.ones((4, 2)), np.ones((4, 2))).solve(epochs=1, batch_size=2)\n"
            "assert not {'dask', 'distributed'} & set(sys.modules), 'dask was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# ------------------------------------------------------------------ convolutional layers
S, C = 6, 4  # image side, hidden channels


def _conv_net(rng, activation=None) -> bm.Sequential:
    """Conv2d(1 → C, 3×3, padding 1, ReLU) → Conv2d(C → 1, 3×3, padding 1, identity)."""
    return bm.Sequential(
        bm.Conv2d(rng.standard_normal((C, 1, 3, 3)) / 3, activation=activation or bm.ReLU(),
                  in_shape=(1, S, S), padding=1),
        bm.Conv2d(rng.standard_normal((1, C, 3, 3)) / np.sqrt(9 * C), in_shape=(C, S, S),
                  padding=1),
    )


def _conv_teacher_data(samples: int = 200):
    rng = np.random.default_rng(0)
    teacher = _conv_net(rng)
    X, Xt = rng.standard_normal((samples, 1, S, S)), rng.standard_normal((200, 1, S, S))
    return X, teacher(X), Xt, teacher(Xt), _conv_net(rng)


def _mixed_conv_problem(decay: float):
    """Conv (tanh, stride 2, 'same'-like uneven padding) → Conv (soft threshold) → Dense."""
    rng = np.random.default_rng(4)
    net = bm.Sequential(
        bm.Conv2d(rng.standard_normal((3, 2, 3, 2)), rng.standard_normal(3), bm.Tanh(),
                  in_shape=(2, 5, 6), stride=2, padding=1),
        bm.Conv2d(rng.standard_normal((2, 3, 2, 2)), rng.standard_normal(2),
                  bm.SoftThreshold(0.2), in_shape=(3, 3, 4), padding="same"),
        bm.Dense(rng.standard_normal((3, 24)), rng.standard_normal(3), bm.Sigmoid(),
                 in_shape=(2, 3, 4)),
    )
    X = rng.standard_normal((5, 2, 5, 6))
    Y = rng.uniform(0.1, 0.9, size=(5, 3))
    states = [np.tanh(rng.standard_normal((5, 36))), rng.standard_normal((5, 24))]
    return bm.Training(net, X, Y, state_penalties={2: 0.1}, weight_decay=decay), net, states


def _with_parameter(net: bm.Sequential, layer: int, which: int, index, delta: float):
    """``net`` with parameter ``which`` (0 weight/kernel, 1 bias) of layer ``layer`` moved."""
    layers = []
    for j, lay in enumerate(net.layers):
        params = [p.copy() for p in layer_parameters(lay)]
        if j == layer:
            params[which][index] += delta
        if isinstance(lay, bm.Conv2d):
            op = lay.operator
            layers.append(bm.Conv2d(*params, lay.activation, in_shape=op.in_shape,
                                    stride=op.stride, padding=op.padding))
        else:
            layers.append(bm.Dense(*params, lay.activation, in_shape=lay.in_shape))
    return bm.Sequential(*layers)


@pytest.mark.parametrize("decay", [0.0, 0.3])
def test_conv_kernel_gradient_matches_finite_differences_of_the_lifted_energy(decay):
    training, net, states = _mixed_conv_problem(decay)
    gradient = training.gradient(net, states)
    assert gradient[0][0].shape == (3, 2, 3, 2) and gradient[0][1].shape == (3,)
    h = 1e-6
    for layer, lay in enumerate(net.layers):
        for which, param in enumerate(layer_parameters(lay)):
            for index in np.ndindex(param.shape):
                plus = training.energy(_with_parameter(net, layer, which, index, h), states)
                minus = training.energy(_with_parameter(net, layer, which, index, -h), states)
                fd = (plus - minus) / (2 * h)
                assert gradient[layer][which][index] == pytest.approx(fd, rel=1e-5, abs=1e-7)


def test_conv_implicit_step_solves_its_proximal_subproblem():
    """A full-batch implicit step on one linear convolution is the closed-form minimiser of
    1/s Σ ½‖y_i − k ∗ x_i − b‖² + 1/(2τ)‖(k, b) − (k, b)^k‖²: per output channel o,
    (P̃ᵀP̃/s + I/τ) θ_o = P̃ᵀ y_o/s + θ_o^k/τ with P̃ = [P, 1] the im2col matrix built here by
    loops over the pixels (independent of the operator), θ_o = (vec k[o], b[o]); and one sweep
    is one gradient step with the exact step 1/L, L = λ_max(P̃ᵀP̃)/s + 1/τ."""
    rng = np.random.default_rng(6)
    s, tau = 12, 0.1
    X = rng.standard_normal((s, 2, 5, 5))
    k0, b0 = 0.3 * rng.standard_normal((3, 2, 3, 3)), 0.1 * rng.standard_normal(3)
    Y = rng.standard_normal((s, 3, 3, 3))  # stride 2, padding 1: 5×5 → 3×3
    layer = bm.Conv2d(k0, b0, in_shape=(2, 5, 5), stride=2, padding=1)
    trained = bm.Training(layer, X, Y).solve(
        epochs=1, batch_size=s, tau=tau, inner_iterations=100
    ).network.layers[0]
    padded = np.pad(X, ((0, 0), (0, 0), (1, 1), (1, 1)))
    rows = [np.append(padded[i, :, 2 * r:2 * r + 3, 2 * c:2 * c + 3].ravel(), 1.0)
            for i in range(s) for r in range(3) for c in range(3)]
    P = np.array(rows)
    # One sweep is one gradient step from (k, b)^k with step 1/L, L = λ_max(P̃ᵀP̃)/s + 1/τ.
    step = 1 / (np.linalg.eigvalsh(P.T @ P)[-1] / s + 1 / tau)
    one = bm.Training(layer, X, Y).solve(epochs=1, batch_size=s, tau=tau, inner_iterations=1)
    for o in range(3):
        theta0 = np.append(k0[o].ravel(), b0[o])
        expected = theta0 - step * P.T @ (P @ theta0 - Y[:, o].reshape(-1)) / s
        got = np.append(one.network.layers[0].kernel[o].ravel(), one.network.layers[0].b[o])
        np.testing.assert_allclose(got, expected, atol=1e-12)
    system = P.T @ P / s + np.eye(P.shape[1]) / tau
    for o in range(3):
        target = Y[:, o].reshape(-1)  # rows in the order (sample, r, c)
        theta0 = np.append(k0[o].ravel(), b0[o])
        theta = np.linalg.solve(system, P.T @ target / s + theta0 / tau)
        got = np.append(trained.kernel[o].ravel(), trained.b[o])
        assert np.abs(theta - theta0).max() > 0.1  # the step moves the weights
        np.testing.assert_allclose(got, theta, atol=1e-10)


def test_conv_teacher_student_trains():
    X, Y, Xt, Yt, student = _conv_teacher_data()
    initial = _mse(student, Xt, Yt)
    result = bm.Training(student, X, Y).solve(
        epochs=10, batch_size=20, tau=10.0, inner_iterations=3, seed=1
    )
    trained = result.network
    # Measured 0.049 × the initial test MSE (the issue asks for ≤ 0.2×).
    assert _mse(trained, Xt, Yt) <= 0.07 * initial
    assert [type(layer) for layer in trained.layers] == [bm.Conv2d, bm.Conv2d]
    assert trained.layers[0].operator.padding == student.layers[0].operator.padding
    # A normal bregmod network: it lifts, and its deep model inverts it (the input of a
    # forward pass is a minimiser with zero energy).
    assert trained.lift().n_z > 0
    model = DeepBregman.from_network(trained)
    forward = model.forward(Xt[:2])
    assert np.abs(model.value(forward)).max() == 0.0


def test_trained_conv_network_exports_to_torch():
    torch = pytest.importorskip("torch")
    from bregmod.torch import to_torch

    X, Y, Xt, _, student = _conv_teacher_data(samples=20)
    trained = bm.Training(student, X, Y).solve(epochs=1, batch_size=10).network
    module = to_torch(trained)
    with torch.no_grad():
        out = module(torch.from_numpy(Xt[:3])).numpy()
    np.testing.assert_allclose(out.reshape(3, -1), trained(Xt[:3]).reshape(3, -1), atol=1e-12)


def test_conv_checkpoint_resume_is_bit_identical(tmp_path):
    X, Y, Xt, Yt, student = _conv_teacher_data(samples=40)
    options = dict(batch_size=16, seed=2, inner_iterations=2, validation=(Xt, Yt))
    full = bm.Training(student, X, Y).solve(epochs=3, **options)
    path = tmp_path / "conv.npz"
    bm.Training(student, X, Y).solve(epochs=1, checkpoint=path, **options)
    resumed = bm.Training(student, X, Y).solve(epochs=3, checkpoint=path, resume=True, **options)
    assert resumed.stats["resumed_from_epoch"] == 1
    _assert_same_run(full, resumed)
    assert not np.array_equal(full.network.layers[0].kernel, student.layers[0].kernel)
    # The same kernels, shapes and data with the padding moved are another problem.
    shifted = bm.Sequential(
        bm.Conv2d(student.layers[0].kernel, activation=bm.ReLU(), in_shape=(1, S, S),
                  padding=(0, 2, 0, 2)),
        student.layers[1],
    )
    with pytest.raises(CheckpointError, match="layers"):
        bm.Training(shifted, X, Y).solve(epochs=3, checkpoint=path, resume=True, **options)


def test_conv_bad_inputs_are_rejected():
    X, Y, _, _, student = _conv_teacher_data(samples=10)
    with pytest.raises(ShapeError, match=r"inputs must have shape \(s, \*\(1, 6, 6\)\)"):
        bm.Training(student, np.ones((10, 2, S, S)), Y)  # two channels, the kernel reads one
    with pytest.raises(ShapeError, match="targets"):
        bm.Training(student, X, np.ones((10, 2, S, S)))
    relu_out = bm.Conv2d(np.ones((1, 1, 3, 3)), activation=bm.ReLU(), in_shape=(1, S, S))
    with pytest.raises(DomainError, match="targets"):
        bm.Training(relu_out, X, -np.ones((10, 1, 4, 4)))


@pytest.mark.parametrize("sweeps", [1, 2])
def test_one_sweep_reaches_every_layer(sweeps):
    """From the forward pass only x^{L−1} has a nonzero residual (the target's); the states are
    swept top-down, so within one sweep every layer's weights get a gradient (a bottom-up sweep
    moves the residual one layer per sweep and leaves W_1 … W_{L−1−sweeps} exactly unchanged)."""
    rng = np.random.default_rng(3)
    width, samples = 12, 40
    layers = [bm.Dense(rng.standard_normal((width, width)) / np.sqrt(width),
                       0.1 * rng.standard_normal(width), bm.ReLU()) for _ in range(4)]
    layers.append(bm.Dense(rng.standard_normal((width, width)) / np.sqrt(width)))
    net = bm.Sequential(*layers)
    X = rng.standard_normal((samples, width))
    Y = rng.standard_normal((samples, width))
    result = bm.Training(net, X, Y).solve(epochs=1, batch_size=20, inner_iterations=sweeps,
                                          state_init="forward", seed=0)
    changes = [float(np.max(np.abs(after.W - before.W)))
               for before, after in zip(net.layers, result.network.layers, strict=True)]
    assert min(changes) > 1e-4, changes
