"""The compiler: N(u₀) = K u + c, M u = V z, z = prox_Ψ(W u + b) for every architecture family.

Every family is checked against its own forward pass (feasibility, zero Bregman terms, output),
and small examples against hand-assembled dense matrices (docs/math/lifted.md).
"""

import numpy as np
import pytest

from bregmod.activations import Identity, ReLU, Softmax, Tanh
from bregmod.errors import AdjointError, DomainError, ShapeError
from bregmod.lifted import Block, LiftedNetwork, lift
from bregmod.network import Conv2d, Dense, Residual, Sequential, ShallowSum
from bregmod.operators import BlockOperator, Conv2dOperator, IdentityOperator

RNG = np.random.default_rng(777)


def gaussian(*shape):
    return RNG.standard_normal(shape)


def relu(x):
    return np.maximum(x, 0.0)


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# --- architecture families -------------------------------------------------------------------
# Each case: (network, batch of inputs, expected v_is_wt, which u blocks are the layer states:
# "all" = u == states, "but_last" = the last state is folded into K, c, None = not a chain).
def _residual(V_of):
    Ws = [gaussian(3, 5) * 0.7 for _ in range(3)]
    acts = [ReLU(), Tanh(), ReLU()]
    return Sequential(
        *(Residual(W, gaussian(3), a, V=V_of(W)) for W, a in zip(Ws, acts, strict=True))
    )


def _cases():
    conv1 = Conv2d(
        gaussian(3, 2, 3, 3), gaussian(3), ReLU(), in_shape=(2, 9, 8), stride=2, padding=1
    )
    conv2 = Conv2d(
        gaussian(2, 3, 3, 3), gaussian(2), Tanh(), in_shape=conv1.out_shape, padding="same"
    )
    return {
        "dense_chain_folded": (
            Sequential(
                Dense(gaussian(6, 4), gaussian(6), ReLU()),
                Dense(gaussian(5, 6), gaussian(5), Tanh()),
                Dense(gaussian(3, 5), gaussian(3), Softmax()),
                Dense(gaussian(2, 3), gaussian(2)),
            ),
            gaussian(3, 4),
            False,
            "but_last",
        ),
        "dense_chain_activation_last": (
            Sequential(
                Dense(gaussian(6, 4), gaussian(6), Tanh()), Dense(gaussian(3, 6), None, ReLU())
            ),
            gaussian(3, 4),
            False,
            "all",
        ),
        "single_dense_identity": (Dense(gaussian(3, 4), gaussian(3)), gaussian(3, 4), False, "all"),
        "residual_Wt": (_residual(lambda W: None), gaussian(3, 5), True, "all"),
        "residual_minus_Wt": (_residual(lambda W: -W.T), gaussian(3, 5), False, "all"),
        "residual_general_V": (_residual(lambda W: gaussian(5, 3)), gaussian(3, 5), False, "all"),
        "residual_then_affine": (
            Sequential(
                Residual(gaussian(3, 4), gaussian(3), ReLU()), Dense(gaussian(2, 4), gaussian(2))
            ),
            gaussian(3, 4),
            True,
            "but_last",
        ),
        "shallow_scalar": (
            ShallowSum(np.ones(25), -np.arange(25) * 3 / 50, gaussian(25), ReLU()),
            np.array([-0.3, 0.4, 1.3]),
            False,
            None,
        ),
        "shallow_vector_mixed": (
            ShallowSum(
                gaussian(5, 3),
                gaussian(5),
                gaussian(5),
                [ReLU(), ReLU(), Tanh(), Identity(), ReLU()],
            ),
            gaussian(3, 3),
            False,
            None,
        ),
        "shallow_then_dense": (
            Sequential(
                ShallowSum(gaussian(4, 2), gaussian(4), gaussian(4), Tanh()),
                Dense(gaussian(3, 1), gaussian(3), ReLU(), in_shape=()),
            ),
            gaussian(3, 2),
            False,
            None,
        ),
        "conv_stride_padding": (Sequential(conv1, conv2), gaussian(3, 2, 9, 8), False, "all"),
        "mixture_dense_residual_dense": (
            Sequential(
                Dense(gaussian(5, 4), gaussian(5), ReLU()),
                Residual(gaussian(3, 5), gaussian(3), Tanh()),
                Residual(gaussian(3, 5), gaussian(3), ReLU(), V=gaussian(5, 3)),
                Dense(gaussian(2, 5), gaussian(2)),
            ),
            gaussian(3, 4),
            False,
            "but_last",
        ),
    }


CASES = _cases()


@pytest.fixture(params=sorted(CASES))
def case(request):
    net, X, v_is_wt, states = CASES[request.param]
    return net, lift(net), X, v_is_wt, states


def test_forward_is_feasible_with_zero_bregman_terms(case):
    net, lifted, X, _, _ = case
    u, z = lifted.forward(X)
    assert u.shape == (len(X), lifted.n_u) and z.shape == (len(X), lifted.n_z)
    residual = lifted.M.apply(u) - lifted.V.apply(z)
    assert np.abs(residual).max() <= 1e-12 * max(1.0, np.abs(u).max())
    pre = lifted.W.apply(u) + lifted.b
    per_block = lifted.bregman_per_block(z, pre)
    assert per_block.shape == (len(X), len(lifted.z_blocks))
    assert np.abs(per_block).max() <= 1e-12  # rounding may leave terms of ±1e-16
    np.testing.assert_allclose(z, lifted.prox(pre), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(lifted.output(u), net(X), rtol=1e-12, atol=1e-12)


def test_states_from_recovers_the_forward_states_and_any_feasible_point(case):
    _, lifted, X, _, _ = case
    u, z = lifted.forward(X)
    np.testing.assert_allclose(lifted.states_from(X, z), u, rtol=1e-10, atol=1e-12)
    # an arbitrary z (not an activation output) still gives a point with M u = V z
    z_other = z + np.random.default_rng(3).standard_normal(z.shape)
    u_other = lifted.states_from(X, z_other)
    np.testing.assert_array_equal(u_other[:, lifted.u_blocks[0].slice], X.reshape(len(X), -1))
    residual = lifted.M.apply(u_other) - lifted.V.apply(z_other)
    assert np.abs(residual).max() <= 1e-10 * (1 + np.abs(z_other).max())
    np.testing.assert_allclose(lifted.states_from(X[0], z_other[0]), u_other[0], atol=1e-12)


def test_the_three_recoveries_of_the_states_agree(case):
    """states_from (the sweep), the solvers' elimination x = P ξ and a dense least-squares solve
    of M[:, hidden] u_hidden = V z − M[:, u₀] u₀ (independent of both) give the same states."""
    from bregmod.model.lifted import Elimination

    _, lifted, X, _, _ = case
    _, z = lifted.forward(X)
    z = z + 0.5 * np.random.default_rng(4).standard_normal(z.shape)  # any z, not only σ(…)
    x0 = X.reshape(len(X), -1)
    swept = lifted.states_from(X, z)
    eliminated = Elimination(lifted).apply(np.concatenate([x0, z], axis=1))[:, : lifted.n_u]
    M, n0 = lifted.M.to_dense(), lifted.u_blocks[0].size
    rhs = lifted.V.apply(z) - x0 @ M[:, :n0].T
    dense = np.linalg.lstsq(M[:, n0:], rhs.T, rcond=None)[0].T
    scale = 1.0 + np.abs(swept).max()
    np.testing.assert_allclose(eliminated, swept, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(swept[:, n0:], dense, rtol=0, atol=1e-10 * scale)


def test_states_from_rejects_bad_input(mixed):
    lifted = mixed
    u0 = np.zeros(lifted.input_shape)
    with pytest.raises(ValueError, match="z contains NaN or Inf"):
        lifted.states_from(u0, np.full(lifted.n_z, np.nan))
    with pytest.raises(ShapeError, match="batch size 1 but z has 2"):
        lifted.states_from(u0[None], np.zeros((2, lifted.n_z)))


def test_batched_forward_equals_looped(case):
    _, lifted, X, _, _ = case
    u, z = lifted.forward(X)
    for i, x in enumerate(X):
        u_i, z_i = lifted.forward(x)
        np.testing.assert_allclose(u_i, u[i], rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(z_i, z[i], rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(lifted.output(u_i), lifted.output(u)[i], rtol=1e-13, atol=1e-14)


def test_layout_sizes_flags_and_states(case):
    net, lifted, X, v_is_wt, states = case
    assert lifted.v_is_wt is v_is_wt
    assert lifted.input_shape == net.in_shape and lifted.output_shape == net.out_shape
    for blocks, n in [
        (lifted.u_blocks, lifted.n_u),
        (lifted.z_blocks, lifted.n_z),
        (lifted.constraint_blocks, lifted.n_c),
    ]:
        assert blocks[0].slice.start == 0 and blocks[-1].slice.stop == n
        assert all(
            a.slice.stop == b.slice.start for a, b in zip(blocks[:-1], blocks[1:], strict=True)
        )
    assert len(lifted.activations) == len(lifted.z_blocks)
    assert lifted.M.shape == (lifted.n_c, lifted.n_u) and lifted.V.shape == (lifted.n_c, lifted.n_z)
    assert lifted.K.shape == (lifted.n_out, lifted.n_u) and lifted.b.shape == (lifted.n_z,)
    if v_is_wt:
        assert lifted.n_c == lifted.n_u
        assert lifted.V.H is lifted.W  # V is literally the adjoint operator of W
    u, _ = lifted.forward(X)
    parts = lifted.split_u(u)
    np.testing.assert_array_equal(parts[0], X)
    if states is not None:
        expected = net.states(X)[: None if states == "all" else -1]
        assert len(parts) == len(expected)
        for part, state in zip(parts, expected, strict=True):
            np.testing.assert_allclose(part, state, rtol=1e-13, atol=1e-14)


def test_no_dense_matrix_of_the_whole_problem(case):
    _, lifted, _, _, _ = case
    for op in (lifted.K, lifted.M, lifted.W):
        assert isinstance(op, BlockOperator)
    assert isinstance(lifted.V.H if lifted.v_is_wt else lifted.V, BlockOperator)


# --- hand-assembled examples -----------------------------------------------------------------
def test_feed_forward_matrices_by_hand():
    W1, b1, W2, b2, W3, b3 = (
        gaussian(3, 2),
        gaussian(3),
        gaussian(4, 3),
        gaussian(4),
        gaussian(2, 4),
        gaussian(2),
    )
    lifted = lift(Sequential(Dense(W1, b1, ReLU()), Dense(W2, b2, Tanh()), Dense(W3, b3)))
    Z = np.zeros
    I3, I4 = np.eye(3), np.eye(4)
    np.testing.assert_array_equal(
        lifted.W.to_dense(), np.block([[W1, Z((3, 3)), Z((3, 4))], [Z((4, 2)), W2, Z((4, 4))]])
    )
    np.testing.assert_array_equal(
        lifted.M.to_dense(), np.block([[Z((3, 2)), I3, Z((3, 4))], [Z((4, 2)), Z((4, 3)), I4]])
    )
    np.testing.assert_array_equal(lifted.V.to_dense(), np.eye(7))
    np.testing.assert_array_equal(lifted.K.to_dense(), np.block([Z((2, 2)), Z((2, 3)), W3]))
    np.testing.assert_array_equal(lifted.c, b3)
    np.testing.assert_array_equal(lifted.b, np.concatenate([b1, b2]))
    assert [a.name for a in lifted.activations] == ["ReLU", "Tanh"]
    assert [blk.name for blk in lifted.u_blocks] == [
        "u0 (input)",
        "u1 (layer 1, Dense)",
        "u2 (layer 2, Dense)",
    ]
    assert [blk.name for blk in lifted.constraint_blocks] == [
        "layer 1, Dense: u1 = z1",
        "layer 2, Dense: u2 = z2",
    ]


@pytest.mark.parametrize("general", [False, True])
def test_residual_matrices_by_hand(general):
    W1, W2, b1, b2 = gaussian(3, 4), gaussian(3, 4), gaussian(3), gaussian(3)
    V1, V2 = (gaussian(4, 3), gaussian(4, 3)) if general else (W1.T, W2.T)
    lifted = lift(
        Sequential(
            Residual(W1, b1, ReLU(), V1 if general else None),
            Residual(W2, b2, ReLU(), V2 if general else None),
        )
    )
    I, O, o = np.eye(4), np.zeros((4, 4)), np.zeros((4, 3))
    np.testing.assert_array_equal(
        lifted.M.to_dense(), np.block([[-I, I, O], [O, -I, I], [O, O, O]])
    )
    np.testing.assert_array_equal(lifted.V.to_dense(), np.block([[V1, o], [o, V2], [o, o]]))
    np.testing.assert_array_equal(lifted.W.to_dense(), np.block([[W1, o.T, o.T], [o.T, W2, o.T]]))
    np.testing.assert_array_equal(lifted.K.to_dense(), np.block([O, O, I]))
    np.testing.assert_array_equal(lifted.c, np.zeros(4))
    assert lifted.v_is_wt is (not general)
    assert lifted.constraint_blocks[-1].name == "zero row (aligned with u2)"


def test_residual_chain_M_is_the_weight_independent_pattern():
    depth, n = 5, 3
    lifted = lift(Sequential(*(Residual(gaussian(2, n), activation=ReLU()) for _ in range(depth))))
    assert lifted.v_is_wt and lifted.M.shape == (n * (depth + 1), n * (depth + 1))
    expected = np.kron(np.eye(depth + 1, k=1) - np.diag([1.0] * depth + [0.0]), np.eye(n))
    np.testing.assert_array_equal(lifted.M.to_dense(), expected)
    grid = lifted.M.blocks
    for j in range(depth):
        assert isinstance(grid[j][j], IdentityOperator) and grid[j][j].scale == -1.0
        assert isinstance(grid[j][j + 1], IdentityOperator) and grid[j][j + 1].scale == 1.0
    assert all(blk is None for blk in grid[depth])
    np.testing.assert_array_equal(lifted.V.to_dense(), lifted.W.to_dense().T)


def test_shallow_sum_matrices_by_hand():
    w, b, c = gaussian(4), gaussian(4), gaussian(4)
    lifted = lift(ShallowSum(w, b, c, [ReLU(), ReLU(), Tanh(), Tanh()]))
    assert lifted.n_u == 5 and lifted.n_z == 4 and lifted.output_shape == ()
    assert [blk.size for blk in lifted.z_blocks] == [2, 2]
    assert [a.name for a in lifted.activations] == ["ReLU", "Tanh"]
    col = w[:, None]
    np.testing.assert_array_equal(lifted.W.to_dense(), np.block([[col, np.zeros((4, 4))]]))
    M = np.zeros((4, 5))
    M[:, 1:] = np.eye(4)
    np.testing.assert_array_equal(lifted.M.to_dense(), M)
    np.testing.assert_array_equal(lifted.V.to_dense(), np.eye(4))
    np.testing.assert_array_equal(lifted.K.to_dense(), np.concatenate([[0.0], c])[None, :])
    np.testing.assert_array_equal(lifted.b, b)
    u, z = lifted.forward(0.7)
    assert lifted.output(u).shape == ()


def test_single_identity_dense_keeps_one_z_block():
    W, b = gaussian(3, 2), gaussian(3)
    lifted = lift(Dense(W, b))
    assert len(lifted.z_blocks) == 1 and lifted.activations[0].name == "Identity"
    np.testing.assert_array_equal(lifted.K.to_dense(), np.block([np.zeros((3, 2)), np.eye(3)]))


# --- convolutions: matrix-free and adjoint check ---------------------------------------------
def test_conv_blocks_are_the_matrix_free_layer_operators():
    conv = Conv2d(gaussian(2, 1, 3, 3), activation=ReLU(), in_shape=(1, 6, 6), padding=1)
    lifted = lift(conv)
    assert lifted.W.matrix_free and lifted.W.blocks[0][0] is conv.operator
    assert lifted.z_blocks[0].shape == (2, 6, 6) and lifted.u_blocks[0].shape == (1, 6, 6)
    x = gaussian(1, 6, 6)
    np.testing.assert_allclose(lifted.split_u(lifted.forward(x)[0])[1], conv(x), rtol=1e-14)


def test_check_adjoint_catches_a_wrong_adjoint(monkeypatch):
    conv = Conv2d(gaussian(2, 1, 3, 3), activation=ReLU(), in_shape=(1, 5, 5))
    correct = Conv2dOperator._apply_adjoint
    monkeypatch.setattr(Conv2dOperator, "_apply_adjoint", lambda self, Y: 1.001 * correct(self, Y))
    with pytest.raises(AdjointError, match=r"failed the adjoint dot-test"):
        lift(conv)
    assert isinstance(lift(conv, check_adjoint=False), LiftedNetwork)


# --- blockwise activations -------------------------------------------------------------------
@pytest.fixture
def mixed():
    """z blocks: ReLU (4), Softmax (3), Tanh (2)."""
    net = Sequential(
        Dense(gaussian(4, 3), activation=ReLU()),
        Dense(gaussian(3, 4), activation=Softmax()),
        Dense(gaussian(2, 3), activation=Tanh()),
    )
    return lift(net)


def test_blockwise_prox_and_phi_conj_against_closed_forms(mixed):
    x = gaussian(2, 9)
    expected = np.concatenate([relu(x[:, :4]), softmax(x[:, 4:7]), np.tanh(x[:, 7:])], axis=1)
    np.testing.assert_allclose(mixed.prox(x), expected, rtol=1e-13)
    np.testing.assert_allclose(mixed.prox(x[0]), expected[0], rtol=1e-13)
    # Φ*: ReLU max(x, 0)²/2, softmax log Σ e^x, tanh log cosh x (docs/math/activations.md).
    phi_conj = (
        0.5 * (relu(x[:, :4]) ** 2).sum(1)
        + np.log(np.exp(x[:, 4:7]).sum(1))
        + np.log(np.cosh(x[:, 7:])).sum(1)
    )
    np.testing.assert_allclose(mixed.phi_conj(x), phi_conj, rtol=1e-12)
    assert isinstance(mixed.phi_conj(x[1]), float)


def test_blockwise_prox_scaled(mixed):
    v = gaussian(9)
    t = 0.4
    out = mixed.prox_scaled(v, t)
    np.testing.assert_allclose(out[:4], relu(v[:4]), rtol=1e-14)  # prox of tι is the projection
    for blk, act in zip(mixed.z_blocks, mixed.activations, strict=True):
        np.testing.assert_allclose(out[blk.slice], act.prox_scaled(v[blk.slice], t), rtol=1e-14)
    steps = np.concatenate([np.full(4, 0.3), np.full(3, 0.5), [0.2, 0.9]])
    out = mixed.prox_scaled(np.stack([v, -v]), steps)
    np.testing.assert_allclose(
        out[1, 7:], [Tanh().prox_scaled(-v[7], 0.2), Tanh().prox_scaled(-v[8], 0.9)], rtol=1e-14
    )
    with pytest.raises(ValueError, match=r"prox step t must be constant on the block z2"):
        mixed.prox_scaled(v, np.linspace(0.1, 1.0, 9))
    with pytest.raises(ValueError, match=r"prox step t of ReLU must be > 0"):
        mixed.prox_scaled(v, -1.0)


def test_bregman_per_block_against_closed_form():
    lifted = lift(
        Sequential(
            Dense(gaussian(3, 2), activation=ReLU()), Dense(gaussian(2, 3), activation=ReLU())
        )
    )
    z, x = np.abs(gaussian(4, 5)), gaussian(4, 5)
    # B(y, x) = ½y² + ½max(x, 0)² − y x for y ≥ 0 (Φ = ½y² + ι, Φ* = ½ max(x, 0)²).
    terms = 0.5 * z**2 + 0.5 * relu(x) ** 2 - z * x
    expected = np.stack([terms[:, :3].sum(1), terms[:, 3:].sum(1)], axis=1)
    np.testing.assert_allclose(lifted.bregman_per_block(z, x), expected, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(lifted.bregman(z, x), expected.sum(1), rtol=1e-12)
    assert isinstance(lifted.bregman(z[0], x[0]), float)
    assert lifted.psi(z[0]) == 0.0
    z[2, 4] = -0.5
    assert lifted.psi(z)[2] == np.inf  # Ψ = ι_{≥0}: +inf off the domain, by definition
    with pytest.raises(DomainError, match=r"block z2 \(layer 2, Dense\) is outside the domain"):
        lifted.bregman(z, x)


def test_blockwise_shape_errors(mixed):
    with pytest.raises(
        ShapeError, match=r"z must have shape \(9,\) or \(batch, \*\(9,\)\), got \(8,\)"
    ):
        mixed.bregman(np.ones(8), np.ones(9))
    with pytest.raises(
        ShapeError, match=r"z and x must have the same shape, got \(9,\) and \(2, 9\)"
    ):
        mixed.bregman(np.full(9, 0.1), np.ones((2, 9)))
    with pytest.raises(ShapeError, match=r"u0 must have shape \(3,\)"):
        mixed.forward(np.ones(4))
    with pytest.raises(ShapeError, match=r"u must have shape \(12,\)"):
        mixed.output(np.ones(11))
    with pytest.raises(ShapeError, match=r"prox step t of shape \(4,\) does not broadcast"):
        mixed.prox_scaled(np.ones(9), np.ones(4))


def test_lift_rejects_non_networks_and_method_matches_function():
    with pytest.raises(TypeError, match=r"lift needs a bregmod network .* got ndarray"):
        lift(np.eye(3))
    net = Residual(gaussian(2, 3), activation=ReLU())
    a, b = net.lift(), lift(net)
    np.testing.assert_array_equal(a.M.to_dense(), b.M.to_dense())
    np.testing.assert_array_equal(a.W.to_dense(), b.W.to_dense())


def test_block_is_a_small_frozen_record():
    blk = Block("u1 (layer 1, Conv2d)", (2, 3, 3), slice(5, 23))
    assert blk.size == 18
    with pytest.raises(AttributeError):
        blk.name = "other"
