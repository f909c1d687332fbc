"""The deep lifted Bregman energy (bregmod.model.deep) against independent truth:
the forward pass (E = 0), finite differences, brute-force block minimisation, closed forms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from bregmod import (
    Conv2d,
    Dense,
    Identity,
    LeakyReLU,
    ReLU,
    Residual,
    Sequential,
    ShallowSum,
    Sigmoid,
    Softplus,
    Tanh,
)
from bregmod.errors import DomainError, ShapeError
from bregmod.model.deep import DeepBregman
from bregmod.operators import Conv2dOperator, MatrixOperator


def dense_net(rng, sizes, activations):
    layers = []
    for (n, m), act in zip(zip(sizes[:-1], sizes[1:], strict=True), activations, strict=True):
        layers.append(Dense(rng.normal(size=(m, n)) / np.sqrt(n), rng.normal(size=m) * 0.3, act))
    return Sequential(*layers)


def conv_net(rng):
    return Sequential(
        Conv2d(rng.normal(size=(3, 1, 3, 3)) / 3, rng.normal(size=3) * 0.2, Tanh(),
               in_shape=(1, 6, 6), padding=1),
        Conv2d(rng.normal(size=(2, 3, 3, 3)) / 5, rng.normal(size=2) * 0.2, Sigmoid(),
               in_shape=(3, 6, 6), stride=2, padding=1),
        Dense(rng.normal(size=(5, 18)) / 4, rng.normal(size=5) * 0.1, Softplus(),
              in_shape=(2, 3, 3)),
    )


SMOOTH = [Tanh(), Sigmoid(), Softplus()]


def perturbed(model, states, rng, scale=0.3):
    """States near the forward pass, inside every dom Ψ (σ of a perturbed pre-activation)."""
    out = [states[0] + scale * rng.normal(size=states[0].shape)]
    for l in range(1, model.depth + 1):
        pre = model.preactivation(l, states[l - 1]) + scale * rng.normal(size=states[l].shape)
        out.append(model.activation(l).prox(pre))
    return out


def test_energy_vanishes_exactly_on_the_forward_pass():
    rng = np.random.default_rng(0)
    net = dense_net(rng, [4, 7, 9, 3], [ReLU(), LeakyReLU(0.2), Identity()])
    model = DeepBregman.from_network(net)
    x0 = rng.normal(size=(5, 4))
    states = model.forward(x0)
    assert np.array_equal(model.value(states), np.zeros(5))
    # the forward pass is the network's own
    reference = net.states(x0)
    for mine, theirs in zip(states, reference, strict=True):
        np.testing.assert_array_equal(mine, theirs.reshape(5, -1))


def test_smooth_and_conv_forward_pass_has_zero_energy():
    rng = np.random.default_rng(1)
    model = DeepBregman.from_network(conv_net(rng))
    assert model.shapes == ((1, 6, 6), (3, 6, 6), (2, 3, 3), (5,))
    states = model.forward(rng.normal(size=(3, 1, 6, 6)))
    assert np.all(model.value(states) <= 1e-13)
    moved = perturbed(model, states, rng)
    assert np.all(model.terms(moved) > 1e-6)


def test_terms_are_the_layers_bregman_penalties():
    rng = np.random.default_rng(2)
    net = dense_net(rng, [3, 5, 4], [Tanh(), Sigmoid()])
    model = DeepBregman.from_network(net)
    states = perturbed(model, model.forward(rng.normal(size=(2, 3))), rng)
    for i in range(2):
        for l, layer in enumerate(net.layers, start=1):
            pre = layer.W @ states[l - 1][i] + layer.b
            # B_Ψ(y, x) = Φ(y) + Φ*(x) − ⟨y, x⟩ from the activation's own Φ and Φ*
            act = layer.activation
            expected = act.phi(states[l][i]).sum() + act.phi_conj(pre).sum() - states[l][i] @ pre
            assert model.terms(states)[i, l - 1] == pytest.approx(expected, abs=1e-10)


def numeric_gradient(f, x, h=1e-6):
    g = np.zeros_like(x)
    for j in range(x.size):
        e = np.zeros_like(x)
        e.flat[j] = h
        g.flat[j] = (f(x + e) - f(x - e)) / (2 * h)
    return g


#: Layer weights γ_l of the weighted energy Σ γ_l B_l (None: all 1), for three layers.
WEIGHTS = [None, (0.5, 3.0, 7.0)]


@pytest.mark.parametrize("weights", WEIGHTS, ids=["unweighted", "weighted"])
@pytest.mark.parametrize("act", SMOOTH, ids=lambda a: a.name)
def test_state_gradient_matches_finite_differences(act, weights):
    """For smooth Ψ the whole energy is differentiable; ∇_{x_k}E_γ = state_gradient + γ_k∇Φ_k.
    The weighted value is Σ γ_l times the unweighted terms."""
    rng = np.random.default_rng(3)
    net = dense_net(rng, [3, 6, 5, 4], [act, act, act])
    model = DeepBregman.from_network(net).with_weights(weights or (1.0,) * 3)
    states = perturbed(model, model.forward(rng.normal(size=(1, 3))), rng)
    gammas = np.array(weights or (1.0,) * 3)
    unweighted = DeepBregman.from_network(net)
    assert model.weighted is (weights is not None)
    assert model.value(states)[0] == pytest.approx(unweighted.terms(states)[0] @ gammas,
                                                   rel=1e-14)
    for k in range(model.depth):
        def energy(x, k=k):
            trial = list(states)
            trial[k] = x
            return model.value(trial)[0]

        numeric = numeric_gradient(energy, states[k])
        grad = model.state_gradient(k, states)
        if k >= 1:
            grad = grad + gammas[k - 1] * act.sigma_inv(states[k])  # ∇Φ = σ⁻¹
        np.testing.assert_allclose(grad, numeric, atol=2e-6 * gammas.max())


def test_input_gradient_of_conv_layer_matches_finite_differences():
    rng = np.random.default_rng(4)
    model = DeepBregman.from_network(conv_net(rng))
    states = perturbed(model, model.forward(rng.normal(size=(1, 1, 6, 6))), rng)
    for l in (1, 2):
        def term(x, l=l):
            trial = list(states)
            trial[l - 1] = x
            return model.terms(trial)[0, l - 1]

        np.testing.assert_allclose(
            model.input_gradient(l, states), numeric_gradient(term, states[l - 1]), atol=2e-6
        )


@pytest.mark.parametrize("weights", [None, (4.0, 0.3)], ids=["unweighted", "weighted"])
def test_state_step_is_the_block_minimiser_at_its_fixed_point(weights):
    """Iterating state_step converges to argmin_{x_l} E_γ (E_γ convex in x_l), checked by
    L-BFGS-B on the block; ReLU's Φ has the constraint x ≥ 0."""
    rng = np.random.default_rng(5)
    net = dense_net(rng, [4, 8, 6], [ReLU(), Tanh()])
    model = DeepBregman.from_network(net).with_weights(weights or (1.0, 1.0))
    states = perturbed(model, model.forward(rng.normal(size=(1, 4))), rng, scale=0.5)
    mu = 1.0 / model.state_lipschitz(1)
    before = model.value(states)[0]
    x = states[1]
    for k in range(300):
        trial = list(states)
        trial[1] = x
        new = model.state_step(1, trial, mu)
        if k < 20:  # monotone
            trial_new = list(states)
            trial_new[1] = new
            assert model.value(trial_new)[0] <= model.value(trial)[0] + 1e-12
        x = new
    after = list(states)
    after[1] = x

    def block(v):
        trial = list(states)
        trial[1] = v[None, :]
        return model.value(trial)[0]

    best = minimize(block, np.maximum(states[1][0], 0), method="L-BFGS-B",
                    bounds=[(0, None)] * 8, options={"ftol": 1e-15, "gtol": 1e-12})
    assert model.value(after)[0] <= before
    assert model.value(after)[0] == pytest.approx(best.fun, abs=1e-9)
    np.testing.assert_allclose(x[0], best.x, atol=1e-4)


def test_prox_phi_closed_form_for_relu():
    """prox_{μΦ}(v) for Φ = ½x² + ι_{x≥0} is max(v, 0)/(1 + μ)."""
    rng = np.random.default_rng(6)
    model = DeepBregman.from_network(dense_net(rng, [2, 5, 3], [ReLU(), Identity()]))
    v = rng.normal(size=(4, 5))
    np.testing.assert_allclose(model.prox_phi(1, v, 0.7), np.maximum(v, 0) / 1.7)


@pytest.mark.parametrize("weights", [None, (2.0, 0.5, 3.0)], ids=["unweighted", "weighted"])
def test_param_gradient_dense_and_conv_match_finite_differences(weights):
    rng = np.random.default_rng(7)
    net = conv_net(rng)
    model = DeepBregman.from_network(net).with_weights(weights or (1.0,) * 3)
    states = perturbed(model, model.forward(rng.normal(size=(3, 1, 6, 6))), rng)
    for l, layer in enumerate(net.layers, start=1):
        grad = model.param_gradient(l, states)
        op = model.operator(l)

        def rebuilt(weight, bias, l=l, op=op):
            ops, biases = list(model.operators), list(model.biases)
            if isinstance(op, Conv2dOperator):
                ops[l - 1] = Conv2dOperator(weight, op.in_shape, op.stride, op.padding[::2])
            else:
                ops[l - 1] = MatrixOperator(weight)
            biases[l - 1] = bias
            other = DeepBregman(ops, biases, model.activations, model.shapes, model.weights)
            return other.value(states).mean()

        weight = layer.kernel if isinstance(layer, Conv2d) else layer.W
        np.testing.assert_allclose(
            grad.weight, numeric_gradient(lambda w, b=layer.b: rebuilt(w, b), np.array(weight)),
            atol=1e-6,
        )
        np.testing.assert_allclose(
            grad.bias, numeric_gradient(lambda b, w=weight: rebuilt(w, b), np.array(layer.b)),
            atol=1e-6,
        )


def test_float32_states_stay_float32():
    rng = np.random.default_rng(8)
    model = DeepBregman.from_network(dense_net(rng, [3, 6, 4], [ReLU(), Identity()]))
    states = model.forward(rng.normal(size=(2, 3)).astype(np.float32))
    assert all(s.dtype == np.float32 for s in states)
    assert model.state_step(1, states, 0.1).dtype == np.float32
    assert model.state_gradient(0, states).dtype == np.float32


def test_to_network_round_trip():
    rng = np.random.default_rng(9)
    net = conv_net(rng)
    model = DeepBregman.from_network(net)
    x = rng.normal(size=(2, 1, 6, 6))
    np.testing.assert_allclose(model.to_network()(x), net(x))


def test_to_network_keeps_the_state_shapes():
    # A flattened convolution output read by a dense layer, a dense output reshaped into the
    # image of a convolution, and a flat input of a dense first layer: the shapes come back.
    rng = np.random.default_rng(11)
    net = Sequential(
        Dense(rng.normal(size=(36, 16)) / 4, rng.normal(size=36), ReLU(), in_shape=(4, 4),
              out_shape=(1, 6, 6)),
        Conv2d(rng.normal(size=(3, 1, 3, 3)) / 3, rng.normal(size=3), Tanh(), in_shape=(1, 6, 6),
               stride=2, padding=1, out_shape=(27,)),
        Dense(rng.normal(size=(5, 27)) / 5, rng.normal(size=5), Identity(), out_shape=(5, 1)),
    )
    model = DeepBregman.from_network(net)
    back = model.to_network()
    assert [(layer.in_shape, layer.out_shape) for layer in back.layers] == [
        (layer.in_shape, layer.out_shape) for layer in net.layers
    ]
    x = rng.normal(size=(2, 4, 4))
    np.testing.assert_allclose(back(x), net(x), rtol=1e-13, atol=1e-13)
    assert back(x).shape == (2, 5, 1)


def test_bad_input_is_refused_with_clear_errors():
    rng = np.random.default_rng(10)
    with pytest.raises(TypeError, match="layer 2 is Residual"):
        DeepBregman.from_network(Sequential(Dense(np.eye(3), activation=ReLU()),
                                            Residual(np.eye(3), activation=ReLU())))
    with pytest.raises(TypeError, match="ShallowSum"):
        DeepBregman.from_network(ShallowSum(np.ones(3), np.zeros(3), np.ones(3), ReLU()))
    with pytest.raises(ShapeError, match="do not chain"):
        DeepBregman([MatrixOperator(np.ones((3, 2))), MatrixOperator(np.ones((2, 4)))],
                    [None, None], [ReLU(), ReLU()])
    model = DeepBregman.from_network(dense_net(rng, [2, 4, 3], [ReLU(), ReLU()]))
    states = model.forward(rng.normal(size=(2, 2)))
    with pytest.raises(ShapeError, match="list"):
        model.value(states[:2])
    with pytest.raises(ShapeError, match=r"rows \(B, 4\)"):
        model.value([states[0], states[1][:, :3], states[2]])
    with pytest.raises(ShapeError, match="batch sizes"):
        model.value([states[0], states[1][:1], states[2]])
    bad = list(states)
    bad[2] = -np.ones((2, 3))
    with pytest.raises(DomainError, match="ReLU"):
        model.value(bad)
    with pytest.raises(ValueError, match="output state"):
        model.state_step(2, states, 0.1)
    with pytest.raises(ValueError, match="positive"):
        model.state_step(1, states, 0.0)
    with pytest.raises(ValueError, match="layer index"):
        model.preactivation(0, states[0])
    with pytest.raises(ValueError, match="one γ_l per layer"):
        model.with_weights((1.0,))
    for bad_weight in (0.0, -1.0, np.nan, np.inf):
        with pytest.raises(ValueError, match="γ_2"):
            model.with_weights((1.0, bad_weight))


@pytest.mark.parametrize("act", [Tanh(), LeakyReLU(0.3)], ids=lambda a: a.name)
def test_prox_phi_minimises_the_scaled_phi(act):
    """prox_{μΦ}(v) = argmin_x ½(x − v)² + μΦ(x), checked by 1-D minimisation per entry."""
    from scipy.optimize import minimize_scalar

    rng = np.random.default_rng(11)
    model = DeepBregman.from_network(dense_net(rng, [2, 4, 3], [act, Identity()]))
    v = rng.normal(size=(1, 4)) * 2
    mu = 0.6
    got = model.prox_phi(1, v, mu)
    for j in range(4):
        best = minimize_scalar(lambda x, j=j: 0.5 * (x - v[0, j]) ** 2 + mu * act.phi(x),
                               bounds=(-0.999999, 0.999999) if isinstance(act, Tanh) else (-10, 10),
                               method="bounded", options={"xatol": 1e-12})
        assert got[0, j] == pytest.approx(best.x, abs=1e-6)


@pytest.mark.parametrize("weights", [None, (3.0, 0.25)], ids=["unweighted", "weighted"])
def test_state_lipschitz_bounds_the_gradient_and_is_attained(weights):
    """Against the gradient itself, not the formula: every difference quotient
    ‖∇_k(x) − ∇_k(x')‖ / ‖x − x'‖ of :meth:`state_gradient` is ≤ the constant, and where every
    ReLU is active (large bias) the quotient along W_{k+1}'s top right singular vector (from
    numpy's SVD) reaches it; the output state's gradient does not depend on x_L (constant 0)."""
    rng = np.random.default_rng(12)
    layers = [Dense(rng.normal(size=(m, n)) / np.sqrt(n), np.full(m, 50.0), ReLU())
              for n, m in ((3, 6), (6, 5))]
    model = DeepBregman.from_network(Sequential(*layers)).with_weights(weights or (1.0, 1.0))
    states = model.forward(rng.normal(size=(1, 3)))
    for k in range(model.depth + 1):
        lipschitz = model.state_lipschitz(k)

        def gradient(x, k=k):
            moved = list(states)
            moved[k] = x
            return model.state_gradient(k, moved)

        for _ in range(20):  # random pairs, some leaving the active region
            x, y = (states[k] + rng.normal(size=states[k].shape) * scale
                    for scale in rng.choice([0.1, 100.0], 2))
            ratio = np.linalg.norm(gradient(x) - gradient(y)) / np.linalg.norm(x - y)
            assert ratio <= lipschitz * (1 + 1e-12)
        if k == model.depth:
            assert lipschitz == 0.0
            continue
        top = np.linalg.svd(layers[k].W)[2][:1]  # ‖W top‖ = ‖W‖₂
        # near x_k = 0, W_{k+1} x_k + 50 > 0: every unit is active and σ' = 1
        ratio = np.linalg.norm(gradient(1e-3 * top) - gradient(0 * top)) / 1e-3
        assert ratio == pytest.approx(lipschitz, rel=1e-9)
