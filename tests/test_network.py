"""Declared networks: forward passes against independent numpy code, states, and errors."""

import numpy as np
import pytest

from bregmod.activations import Identity, ReLU, Softmax, Tanh
from bregmod.errors import ShapeError
from bregmod.network import Conv2d, Dense, Residual, Sequential, ShallowSum

RNG = np.random.default_rng(20231)


# --- independent reference implementations ---------------------------------------------------
def relu(x):
    return np.maximum(x, 0.0)


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def conv_reference(x, kernel, bias, stride, padding):
    """Direct loops: y[o, i, j] = Σ_{c,p,q} k[o, c, p, q] x_pad[c, i s + p, j s + q] + b[o]."""
    c_out, _, kh, kw = kernel.shape
    xp = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))
    h_out = (xp.shape[1] - kh) // stride + 1
    w_out = (xp.shape[2] - kw) // stride + 1
    y = np.empty((c_out, h_out, w_out))
    for o in range(c_out):
        for i in range(h_out):
            for j in range(w_out):
                patch = xp[:, i * stride : i * stride + kh, j * stride : j * stride + kw]
                y[o, i, j] = np.sum(kernel[o] * patch) + bias[o]
    return y


def gaussian(*shape):
    return RNG.standard_normal(shape)


# --- forward passes --------------------------------------------------------------------------
def test_dense_chain_matches_numpy_single_and_batched():
    W1, b1 = gaussian(6, 4), gaussian(6)
    W2, b2 = gaussian(5, 6), gaussian(5)
    W3, b3 = gaussian(3, 5), gaussian(3)
    W4, b4 = gaussian(2, 3), gaussian(2)
    net = Sequential(
        Dense(W1, b1, ReLU()), Dense(W2, b2, Tanh()), Dense(W3, b3, Softmax()), Dense(W4, b4)
    )

    def reference(x):
        return W4 @ softmax(W3 @ np.tanh(W2 @ relu(W1 @ x + b1) + b2) + b3) + b4

    X = gaussian(7, 4)
    np.testing.assert_allclose(net(X[0]), reference(X[0]), rtol=1e-12, atol=1e-13)
    batched = net(X)
    assert batched.shape == (7, 2)
    np.testing.assert_allclose(batched, [reference(x) for x in X], rtol=1e-12, atol=1e-13)


def test_states_are_every_layer_output():
    W1, W2 = gaussian(5, 3), gaussian(2, 5)
    net = Sequential(Dense(W1, activation=ReLU()), Dense(W2))
    x = gaussian(3)
    u0, u1, u2 = net.states(x)
    np.testing.assert_array_equal(u0, x)
    np.testing.assert_allclose(u1, relu(W1 @ x), rtol=1e-14)
    np.testing.assert_allclose(u2, W2 @ relu(W1 @ x), rtol=1e-13)
    batched = net.states(np.stack([x, 2 * x]))
    assert [s.shape for s in batched] == [(2, 3), (2, 5), (2, 2)]
    np.testing.assert_allclose(batched[2][1], W2 @ relu(2 * W1 @ x), rtol=1e-13)


def test_single_layer_is_a_network():
    W, b = gaussian(3, 4), gaussian(3)
    layer = Dense(W, b, ReLU())
    x = gaussian(4)
    np.testing.assert_allclose(layer(x), relu(W @ x + b), rtol=1e-14)
    assert layer.layers == (layer,)
    assert layer.in_shape == (4,) and layer.out_shape == (3,)


def test_nested_sequential_is_flattened():
    a, b, c = Dense(gaussian(4, 3)), Dense(gaussian(4, 4), activation=ReLU()), Dense(gaussian(2, 4))
    net = Sequential(Sequential(a, b), c)
    assert net.layers == (a, b, c)
    x = gaussian(3)
    np.testing.assert_allclose(net(x), c(b(a(x))), rtol=1e-14)


@pytest.mark.parametrize("sign", ["Wt", "-Wt", "general"])
def test_residual_matches_numpy(sign):
    W, b = gaussian(3, 5), gaussian(3)
    V = {"Wt": None, "-Wt": -W.T, "general": gaussian(5, 3)}[sign]
    V_used = W.T if V is None else V
    net = Sequential(Residual(W, b, ReLU(), V=V), Residual(W, -b, Tanh(), V=V))
    x = gaussian(5)
    u1 = x + V_used @ relu(W @ x + b)
    u2 = u1 + V_used @ np.tanh(W @ u1 - b)
    np.testing.assert_allclose(net(x), u2, rtol=1e-13)
    np.testing.assert_allclose(net(np.stack([x, x]))[1], u2, rtol=1e-13)


def test_residual_v_is_wt_flag():
    W = gaussian(3, 5)
    assert Residual(W).v_is_wt
    assert Residual(W, V=W.T.copy()).v_is_wt  # equal to Wᵀ entry by entry
    assert not Residual(W, V=-W.T).v_is_wt


def test_shallow_sum_scalar_input_talk_example():
    # The talk's example: m = 25, w_j = 1, b_j = −(j − 1) h, h = 3/50, ReLU.
    m, h = 25, 3 / 50
    w, b, c = np.ones(m), -np.arange(m) * h, gaussian(m)
    net = ShallowSum(w, b, c, ReLU())
    assert net.in_shape == () and net.out_shape == ()
    for u in (-0.5, 0.0, 0.37, 1.2):
        assert net(u).shape == ()
        np.testing.assert_allclose(net(u), c @ relu(w * u + b), rtol=1e-13)
    grid = np.linspace(-1, 2, 9)
    np.testing.assert_allclose(
        net(grid), [c @ relu(w * u + b) for u in grid], rtol=1e-13, atol=1e-14
    )


def test_shallow_sum_vector_input_mixed_activations():
    w, b, c = gaussian(5, 3), gaussian(5), gaussian(5)
    activations = [ReLU(), ReLU(), Tanh(), ReLU(), Identity()]
    net = ShallowSum(w, b, c, activations)
    assert net.in_shape == (3,)
    assert [(s.start, s.stop, a.name) for s, a in net.groups] == [
        (0, 2, "ReLU"),
        (2, 3, "Tanh"),
        (3, 4, "ReLU"),
        (4, 5, "Identity"),
    ]
    x = gaussian(3)
    pre = w @ x + b
    hidden = np.array([relu(pre[0]), relu(pre[1]), np.tanh(pre[2]), relu(pre[3]), pre[4]])
    np.testing.assert_allclose(net(x), c @ hidden, rtol=1e-13)


@pytest.mark.parametrize(("stride", "padding"), [(1, 0), (1, 1), (2, 1), (2, 0)])
def test_conv2d_matches_direct_loops(stride, padding):
    kernel, bias = gaussian(3, 2, 3, 3), gaussian(3)
    layer = Conv2d(kernel, bias, ReLU(), in_shape=(2, 7, 6), stride=stride, padding=padding)
    X = gaussian(2, 2, 7, 6)
    expected = [relu(conv_reference(x, kernel, bias, stride, padding)) for x in X]
    assert layer.out_shape == expected[0].shape
    np.testing.assert_allclose(layer(X), expected, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(layer(X[1]), expected[1], rtol=1e-12, atol=1e-13)


def test_conv2d_then_dense_with_image_in_shape():
    kernel = gaussian(2, 1, 3, 3)
    conv = Conv2d(kernel, activation=ReLU(), in_shape=(1, 5, 5))
    W = gaussian(4, 18)
    net = Sequential(conv, Dense(W, in_shape=(2, 3, 3)))
    x = gaussian(1, 5, 5)
    expected = W @ relu(conv_reference(x, kernel, np.zeros(2), 1, 0)).ravel()
    np.testing.assert_allclose(net(x), expected, rtol=1e-12)


# --- errors ----------------------------------------------------------------------------------
def test_inconsistent_consecutive_shapes_name_both_layers():
    with pytest.raises(
        ShapeError,
        match=r"layer 2 \(Dense\) expects input of shape \(64,\), "
        r"but layer 1 \(Residual\) outputs \(32,\)",
    ):
        Sequential(Residual(gaussian(8, 32)), Dense(gaussian(3, 64)))
    with pytest.raises(ShapeError, match=r"layer 3 \(Residual\) .* layer 2 \(Dense\) outputs"):
        Sequential(Dense(gaussian(4, 3)), Dense(gaussian(5, 4)), Residual(gaussian(2, 4)))


def test_non_finite_weights_are_rejected():
    W = gaussian(3, 4)
    W[1, 2] = np.nan
    with pytest.raises(ValueError, match=r"W of Dense contains NaN or Inf: 1 entry"):
        Dense(W)
    with pytest.raises(ValueError, match=r"b of Residual contains NaN or Inf"):
        Residual(gaussian(2, 4), b=[0.0, np.inf])
    with pytest.raises(ValueError, match=r"kernel of Conv2d contains NaN or Inf"):
        Conv2d(np.full((1, 1, 2, 2), np.inf), in_shape=(1, 4, 4))
    with pytest.raises(ValueError, match=r"c of ShallowSum contains NaN or Inf"):
        ShallowSum(np.ones(2), np.zeros(2), [1.0, np.nan], ReLU())


def test_residual_v_of_wrong_shape():
    with pytest.raises(ShapeError, match=r"V must have shape \(5, 3\) .* got \(3, 5\)"):
        Residual(gaussian(3, 5), V=gaussian(3, 5))


def test_bad_shapes_and_types():
    with pytest.raises(
        ShapeError, match=r"Dense: W must be a non-empty 2-D array, got shape \(3,\)"
    ):
        Dense(np.ones(3))
    with pytest.raises(ShapeError, match=r"Dense: b must have shape \(3,\), got \(4,\)"):
        Dense(np.ones((3, 2)), b=np.ones(4))
    with pytest.raises(ShapeError, match=r"Dense: in_shape \(2, 2\) has 4 entries, but W has 3"):
        Dense(np.ones((3, 3)), in_shape=(2, 2))
    with pytest.raises(TypeError, match=r"Dense: activation must be a .*Activation, got ufunc"):
        Dense(np.ones((3, 3)), activation=np.tanh)
    with pytest.raises(ShapeError, match=r"kernel expects C_in=2 input channels"):
        Conv2d(np.ones((1, 2, 3, 3)), in_shape=(3, 8, 8))
    with pytest.raises(ShapeError, match=r"sequence of m = 3, got"):
        ShallowSum(np.ones(3), np.zeros(3), np.ones(3), [ReLU(), ReLU()])
    with pytest.raises(ValueError, match=r"per-unit activations must act entrywise, got Softmax"):
        ShallowSum(np.ones(2), np.zeros(2), np.ones(2), [ReLU(), Softmax()])
    with pytest.raises(ValueError, match=r"Sequential needs at least one layer"):
        Sequential()
    with pytest.raises(TypeError, match=r"Sequential: expected layers .* got ndarray"):
        Sequential(Dense(np.ones((2, 2))), np.ones((2, 2)))


def test_input_of_wrong_shape_or_non_finite():
    net = Dense(np.ones((2, 3)))
    with pytest.raises(
        ShapeError, match=r"network input must have shape \(3,\) or \(batch, \*\(3,\)\), got \(4,\)"
    ):
        net(np.ones(4))
    with pytest.raises(ShapeError, match=r"got \(2, 2, 3\)"):
        net(np.ones((2, 2, 3)))
    with pytest.raises(ValueError, match=r"network input contains NaN or Inf"):
        net([1.0, np.nan, 0.0])


def test_layers_keep_private_copies_of_their_weights():
    W, b, V = gaussian(3, 4), gaussian(3), gaussian(4, 3)
    w, c = gaussian(5), gaussian(5)
    layers = [
        Dense(W, b, ReLU()),
        Residual(W, b, Tanh(), V),
        ShallowSum(w, b[:1].repeat(5), c, ReLU()),
    ]
    inputs = [gaussian(4), gaussian(4), 0.3]
    before = [layer(x) for layer, x in zip(layers, inputs, strict=True)]
    for array in (W, b, V, w, c):
        array[:] = 0.0
    for layer, x, y in zip(layers, inputs, before, strict=True):
        np.testing.assert_array_equal(layer(x), y)


def test_dense_and_conv2d_out_shape_reshape_their_output():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((12, 4))
    dense = Dense(W, activation=ReLU(), out_shape=(3, 2, 2))
    x = rng.standard_normal((5, 4))
    assert dense.out_shape == (3, 2, 2) and dense(x).shape == (5, 3, 2, 2)
    np.testing.assert_array_equal(dense(x).reshape(5, -1), np.maximum(x @ W.T, 0))
    conv = Conv2d(rng.standard_normal((2, 3, 2, 2)), in_shape=(3, 2, 2), out_shape=(2,))
    net = Sequential(dense, conv)
    assert net.out_shape == (2,)
    np.testing.assert_allclose(net.lift().output(net.lift().forward(x)[0]), net(x))
    with pytest.raises(ShapeError, match=r"Dense: out_shape \(5,\) has 5 entries, but the layer"):
        Dense(W, out_shape=(5,))
    with pytest.raises(ShapeError, match=r"Conv2d: out_shape \(3,\) has 3 entries"):
        Conv2d(np.ones((2, 3, 2, 2)), in_shape=(3, 2, 2), out_shape=(3,))
