"""bregmod.torch: importing torch models and exporting bregmod networks (same forward maps)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch import nn  # noqa: E402

import bregmod as bm  # noqa: E402
from bregmod import activations as act  # noqa: E402
from bregmod.errors import ConversionError, ShapeError  # noqa: E402
from bregmod.operators import dot_test  # noqa: E402
from bregmod.torch import Residual, from_torch, to_torch  # noqa: E402

TOL = 1e-10


def torch_forward(module: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def assert_same_map(module: nn.Module, network, input_shape, seed: int = 0, scale: float = 1.0):
    x = scale * np.random.default_rng(seed).standard_normal((5, *input_shape))
    expected = torch_forward(module, x)
    got = network(x)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOL)


def randomise_batch_norm(bn, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(bn.num_features, generator=g, dtype=torch.float64))
        bn.running_var.copy_(0.5 + torch.rand(bn.num_features, generator=g, dtype=torch.float64))
        if bn.affine:
            bn.weight.copy_(torch.randn(bn.num_features, generator=g, dtype=torch.float64))
            bn.bias.copy_(torch.randn(bn.num_features, generator=g, dtype=torch.float64))


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


# --------------------------------------------------------------------------- activations
ACTIVATIONS = [
    (nn.ReLU(), act.ReLU),
    (nn.LeakyReLU(0.1), act.LeakyReLU),
    (nn.LeakyReLU(0.0), act.ReLU),
    (nn.PReLU(init=0.3), act.LeakyReLU),
    (nn.Hardtanh(-0.5, 2.0), act.Clip),
    (nn.ReLU6(), act.Clip),
    (nn.Hardsigmoid(), act.Clip),
    (nn.Softshrink(0.3), act.SoftThreshold),
    (nn.Tanh(), act.Tanh),
    (nn.Sigmoid(), act.Sigmoid),
    (nn.Softsign(), act.Softsign),
    (nn.ELU(0.7), act.ELU),
    (nn.CELU(2.0), act.ELU),
    (nn.Softplus(), act.Softplus),
    (nn.Softplus(beta=3.0), act.Softplus),
    (nn.LogSigmoid(), act.Softplus),
    (nn.Softmax(dim=-1), act.Softmax),
    (nn.Identity(), act.Identity),
]


@pytest.mark.parametrize(("activation", "kind"), ACTIVATIONS, ids=lambda a: type(a).__name__)
def test_every_activation_between_two_linear_layers(activation, kind):
    # 4 → 7 (activation) → 3: the second affine map absorbs output scalings of the activation.
    module = nn.Sequential(nn.Linear(4, 7), activation, nn.Linear(7, 3)).double().eval()
    network = from_torch(module, (4,))
    assert isinstance(network.layers[0].activation, kind)
    assert_same_map(module, network, (4,), scale=2.0)


@pytest.mark.parametrize(("activation", "kind"), ACTIVATIONS, ids=lambda a: type(a).__name__)
def test_every_activation_as_the_last_module(activation, kind):
    module = nn.Sequential(nn.Linear(5, 6), activation).double().eval()
    network = from_torch(module, (5,))
    assert isinstance(network.layers[0].activation, kind)
    assert_same_map(module, network, (5,), scale=2.0)


def test_softplus_scalings_are_folded_into_the_neighbouring_affine_maps():
    module = nn.Sequential(nn.Linear(3, 4), nn.Softplus(beta=4.0), nn.Linear(4, 2)).double()
    network = from_torch(module, (3,))
    first, second = network.layers
    np.testing.assert_allclose(first.W, 4.0 * module[0].weight.detach().numpy(), rtol=1e-15)
    np.testing.assert_allclose(second.W, module[2].weight.detach().numpy() / 4.0, rtol=1e-15)


def test_consecutive_activations_get_an_identity_affine_map_between_them():
    module = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Tanh()).double()
    network = from_torch(module, (3,))
    assert len(network.layers) == 2
    np.testing.assert_array_equal(network.layers[1].W, np.eye(4))
    assert_same_map(module, network, (3,))


# --------------------------------------------------------------------------- architectures
DENSE_ACTIVATIONS = [nn.ReLU, nn.Tanh, nn.Sigmoid, nn.Softsign, lambda: nn.LeakyReLU(0.2),
                     lambda: nn.ELU(0.5), lambda: nn.Hardtanh(-1.0, 0.5), nn.Identity]


@settings(max_examples=25, derandomize=True, deadline=None)
@given(
    widths=st.lists(st.integers(1, 9), min_size=2, max_size=5),
    choices=st.lists(st.integers(0, len(DENSE_ACTIVATIONS) - 1), min_size=4, max_size=4),
    bias=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_random_dense_architectures(widths, choices, bias, seed):
    torch.manual_seed(seed)
    modules = []
    for j, (n, m) in enumerate(zip(widths[:-1], widths[1:], strict=False)):
        modules += [nn.Linear(n, m, bias=bias), DENSE_ACTIVATIONS[choices[j]]()]
    module = nn.Sequential(*modules).double().eval()
    network = from_torch(module, (widths[0],))
    assert_same_map(module, network, (widths[0],), seed=seed)
    np.testing.assert_allclose(
        torch_forward(to_torch(network), np.ones((2, widths[0]))),
        torch_forward(module, np.ones((2, widths[0]))), rtol=0, atol=TOL,
    )


CONVOLUTIONS = [
    dict(stride=1, padding=0),
    dict(stride=2, padding=1),
    dict(stride=(2, 1), padding=(0, 2)),
    dict(stride=1, padding="same"),
    dict(stride=1, padding="valid", bias=False),
    dict(stride=1, padding=2, dilation=2),
    dict(stride=2, padding=1, groups=2),
]


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("options", CONVOLUTIONS, ids=str)
@pytest.mark.parametrize("kernel_size", [3, (2, 3)])
def test_convolutions(options, kernel_size):
    conv = nn.Conv2d(2, 4, kernel_size, **options)
    module = nn.Sequential(conv, nn.ReLU()).double().eval()
    network = from_torch(module, (2, 9, 8))
    assert isinstance(network.layers[0], bm.Conv2d)
    assert_same_map(module, network, (2, 9, 8))


@pytest.mark.parametrize("options", [dict(kernel_size=2), dict(kernel_size=3, stride=2,
                                                                 padding=1)], ids=str)
def test_average_pooling_is_a_convolution(options):
    module = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.AvgPool2d(**options), nn.Tanh())
    module = module.double().eval()
    assert_same_map(module, from_torch(module, (1, 10, 10)), (1, 10, 10))


def test_mixed_architecture_with_batch_norm_dropout_and_reshapes():
    module = nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 3, 3, stride=2, padding=1), nn.BatchNorm2d(3), nn.ReLU()),
        nn.Conv2d(3, 4, 3, padding=1, bias=False),
        nn.Flatten(),
        nn.Softplus(),
        nn.Linear(4 * 4 * 4, 10),
        nn.BatchNorm1d(10),
        nn.Dropout(0.5),
        nn.Tanh(),
        nn.Linear(10, 2 * 3 * 3),
        nn.Unflatten(1, (2, 3, 3)),
        nn.ELU(0.9),
        nn.Conv2d(2, 2, 2),
        nn.Flatten(),
        nn.Linear(8, 5),
        nn.Softmax(dim=1),
    ).double()
    randomise_batch_norm(module[0][1], 1)
    randomise_batch_norm(module[5], 2)
    module.eval()
    network = from_torch(module, (1, 8, 8))
    # Batch norms, dropout and reshapes add no layer, and the last convolution (no activation)
    # folds into the last Linear: six affine maps, five layers.
    assert [layer.kind for layer in network.layers] == ["Conv2d", "Conv2d", "Dense", "Dense",
                                                         "Dense"]
    assert network.layers[4].in_shape == (2, 3, 3)
    assert network.out_shape == (5,) and network.layers[3].out_shape == (2, 3, 3)
    assert network.layers[1].out_shape == (64,)
    assert_same_map(module, network, (1, 8, 8))
    assert_same_map(module, from_torch(to_torch(network), (1, 8, 8)), (1, 8, 8), seed=3)


# --------------------------------------------------------------------------- folding
def test_batch_norm_folding_matches_torch_in_eval_mode():
    for bn, layer in [(nn.BatchNorm1d(6), nn.Linear(4, 6)),
                      (nn.BatchNorm1d(6, affine=False), nn.Linear(4, 6, bias=False))]:
        module = nn.Sequential(layer, bn, nn.ReLU()).double()
        randomise_batch_norm(bn, 5)
        module.eval()
        network = from_torch(module, (4,))
        assert len(network.layers) == 1
        # The folded map by hand: s ⊙ (W x + b − μ) + β with s = γ/√(var + ε).
        s = 1 / np.sqrt(bn.running_var.numpy() + bn.eps)
        if bn.affine:
            s = s * bn.weight.detach().numpy()
        np.testing.assert_allclose(network.layers[0].W, s[:, None] * layer.weight.detach().numpy(),
                                   rtol=1e-14)
        assert_same_map(module, network, (4,))


@pytest.mark.parametrize("padding", [0, 1])
def test_batch_norm_after_an_activation_folds_into_the_next_layer_where_exact(padding):
    bn = nn.BatchNorm2d(3)
    module = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), bn, nn.Conv2d(3, 2, 3, padding=padding),
                           nn.Sigmoid()).double()
    randomise_batch_norm(bn, 7)
    module.eval()
    network = from_torch(module, (1, 9, 9))
    # Without padding the shift folds into the next bias; with zero padding it would not be
    # exact at the border, so the batch norm stays a 1×1 convolution with the identity.
    assert len(network.layers) == (2 if padding == 0 else 3)
    assert_same_map(module, network, (1, 9, 9))


def test_affine_layers_without_activation_are_folded():
    module = nn.Sequential(nn.Linear(3, 5), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 6),
                           nn.Linear(6, 2)).double()
    network = from_torch(module, (3,))
    assert [layer.W.shape for layer in network.layers] == [(4, 3), (2, 4)]
    lifted = network.lift()
    assert len(lifted.z_blocks) == 1  # the trailing affine map is the output map K u + c
    assert_same_map(module, network, (3,))


def test_convolution_then_linear_without_activation_becomes_one_dense_map():
    module = nn.Sequential(nn.Conv2d(2, 3, 3, stride=2), nn.Flatten(), nn.Linear(27, 4),
                           nn.Tanh()).double()
    network = from_torch(module, (2, 7, 7))
    assert [layer.kind for layer in network.layers] == ["Dense"]
    assert network.layers[0].in_shape == (2, 7, 7)
    assert_same_map(module, network, (2, 7, 7))


# --------------------------------------------------------------------------- residual blocks
@pytest.mark.parametrize("tied", [True, False])
def test_residual_wrapper(tied):
    block = Residual(5, 8, nn.ReLU(), tied=tied, dtype=torch.float64)
    module = nn.Sequential(nn.Linear(3, 5), nn.Tanh(), block, Residual(5, 2, nn.Softplus(3.0),
                           dtype=torch.float64), nn.Linear(5, 2)).double().eval()
    network = from_torch(module, (3,))
    kinds = [layer.kind for layer in network.layers]
    assert kinds == ["Dense", "Residual", "Residual", "Dense"]
    assert network.layers[1].v_is_wt is tied
    assert_same_map(module, network, (3,))
    # The torch module is x + V σ(W x + b) by itself, against bregmod's Residual layer.
    x = np.random.default_rng(1).standard_normal((4, 5))
    layer = network.layers[1]
    np.testing.assert_allclose(torch_forward(block, x), layer(x), rtol=0, atol=TOL)


def test_residual_chain_round_trip_keeps_v_equal_to_w_transposed():
    rng = np.random.default_rng(0)
    net = bm.Sequential(*(bm.Residual(rng.standard_normal((3, 4)), rng.standard_normal(3),
                                      bm.ReLU()) for _ in range(3)))
    back = from_torch(to_torch(net), (4,))
    assert all(layer.v_is_wt for layer in back.layers)
    assert back.lift().v_is_wt
    x = rng.standard_normal((6, 4))
    np.testing.assert_allclose(back(x), net(x), rtol=0, atol=TOL)


# --------------------------------------------------------------------------- export
def test_export_of_every_layer_kind_and_activation():
    rng = np.random.default_rng(2)
    net = bm.Sequential(
        bm.Conv2d(rng.standard_normal((3, 1, 2, 2)), rng.standard_normal(3), bm.ELU(0.5),
                  in_shape=(1, 6, 6), padding="same"),  # even kernel: uneven padding
        bm.Conv2d(rng.standard_normal((2, 3, 3, 3)), None, bm.Softmax(), in_shape=(3, 6, 6),
                  stride=2, out_shape=(8,)),
        bm.Dense(rng.standard_normal((8, 8)), rng.standard_normal(8), act.Arctan()),
        bm.Residual(rng.standard_normal((5, 8)), None, act.ISRU(), V=rng.standard_normal((8, 5))),
        bm.Dense(rng.standard_normal((4, 8)), None, act.Asinh(), out_shape=(1, 2, 2)),
        bm.Conv2d(rng.standard_normal((1, 1, 1, 1)), [0.3], bm.SoftThreshold(0.2),
                  in_shape=(1, 2, 2)),
        bm.Dense(rng.standard_normal((3, 4)), rng.standard_normal(3), bm.Clip(-0.5, 0.5),
                 in_shape=(1, 2, 2)),
    )
    module = to_torch(net)
    assert not module.training
    assert all(p.dtype == torch.float64 for p in module.parameters())
    x = rng.standard_normal((4, 1, 6, 6))
    np.testing.assert_allclose(torch_forward(module, x), net(x), rtol=0, atol=TOL)
    assert_same_map(module, from_torch(module, (1, 6, 6)), (1, 6, 6))


def test_export_in_float32():
    net = bm.Dense(np.ones((2, 3)), [0.5, -0.5], bm.Softplus())
    module = to_torch(net, dtype=torch.float32)
    out = module(torch.ones(1, 3, dtype=torch.float32))
    assert out.dtype == torch.float32
    np.testing.assert_allclose(out.detach().numpy()[0], net(np.ones(3)), rtol=1e-6)


def test_export_refusals():
    with pytest.raises(ConversionError, match=r"layer 1 \(ShallowSum\)"):
        to_torch(bm.ShallowSum([1.0, 2.0], [0.0, 1.0], [1.0, 1.0], bm.ReLU()))
    with pytest.raises(ConversionError, match="no torch module for the activation Sparsemax"):
        to_torch(bm.Dense(np.ones((2, 2)), activation=bm.Sparsemax()))
    with pytest.raises(TypeError, match="bregmod network"):
        to_torch(nn.Linear(2, 2))


# --------------------------------------------------------------------------- refusals
REFUSALS = [
    (nn.SiLU(), "SiLU at 1: SiLU is not monotone, so it is no proximal map"),
    (nn.GELU(), "GELU at 1: GELU is not monotone"),
    (nn.Mish(), "not monotone"),
    (nn.Hardswish(), "not monotone"),
    (nn.Hardshrink(), "Hardshrink is discontinuous"),
    (nn.Threshold(0.1, 20.0), "Threshold is discontinuous"),
    (nn.SELU(), "SELU has slope 1.0507 > 1"),
    (nn.LeakyReLU(1.5), r"slope 1.5 > 1 makes it expansive"),
    (nn.LeakyReLU(-0.1), r"slope -0.1 < 0 makes it decreasing"),
    (nn.PReLU(num_parameters=6), "one slope per channel"),
    (nn.ELU(2.0), r"alpha = 2.0 > 1"),
    (nn.Softplus(threshold=5.0), r"threshold = 5.0, a jump of 0.0067: that function is "
                                 "discontinuous"),
    (nn.LayerNorm(6), "normalises by statistics of its own input"),
    (nn.Dropout(0.2).train(), "Dropout at 1: in training mode it zeroes entries at random"),
    (nn.BatchNorm1d(6).train(), "BatchNorm1d at 1: in training mode"),
    (nn.BatchNorm1d(6, track_running_stats=False).eval(), "track_running_stats=False"),
    (nn.Tanhshrink(), "not monotone"),
    (nn.Embedding(3, 2), "from_torch does not read this module"),
]


@pytest.mark.parametrize(("module", "message"), REFUSALS, ids=lambda m: type(m).__name__)
def test_refused_modules_after_a_linear_layer(module, message):
    model = nn.Sequential(nn.Linear(4, 6), module)
    if not isinstance(module, (nn.Dropout, nn.BatchNorm1d)):
        model.eval()
    with pytest.raises(ConversionError, match=message):
        from_torch(model, (4,))


CONV_REFUSALS = [
    (nn.MaxPool2d(2), "MaxPool2d at features.2: max .or power. pooling"),
    (nn.Conv2d(3, 3, 3, padding=1, padding_mode="circular"), "padding_mode='circular'"),
    (nn.Conv1d(3, 3, 1), "bregmod reads 2-D convolutions only"),
    (nn.ConvTranspose2d(3, 3, 2), "ConvTranspose2d at features.2: bregmod reads 2-D conv"),
    (nn.Softmax(dim=1), r"softmax over dim 1 of a state of shape \(3, 6, 6\)"),
    (nn.Linear(6, 2), r"acts on the last axis of the state of shape \(3, 6, 6\)"),
    (nn.GroupNorm(1, 3), "normalises by statistics"),
    (nn.AvgPool2d(2, ceil_mode=True), "ceil_mode=True"),
    (nn.AvgPool2d(3, padding=1, count_include_pad=False), "count_include_pad=False"),
]


@pytest.mark.parametrize(("module", "message"), CONV_REFUSALS, ids=lambda m: type(m).__name__)
def test_refused_modules_name_their_nested_position(module, message):
    model = nn.Sequential()
    model.add_module("features", nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), module))
    model.eval()
    with pytest.raises(ConversionError, match=message):
        from_torch(model, (1, 8, 8))


def test_refused_attention_custom_container_dtype_and_device():
    attention = nn.Sequential(nn.Linear(4, 4), nn.MultiheadAttention(4, 2))
    with pytest.raises(ConversionError, match="MultiheadAttention at 1: attention multiplies"):
        from_torch(attention.eval(), (4,))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = nn.Linear(4, 4)

        def forward(self, x):
            return self.inner(x) * x

    with pytest.raises(ConversionError, match="Block at 0: a custom container"):
        from_torch(nn.Sequential(Block()), (4,))
    with pytest.raises(ConversionError, match="Linear at 0: weight has dtype torch.complex64"):
        from_torch(nn.Sequential(nn.Linear(2, 2, dtype=torch.complex64)), (2,))
    with pytest.raises(ConversionError, match="Linear at .root.: weight is on the meta device"):
        from_torch(nn.Linear(2, 2, device="meta"), (2,))
    with pytest.raises(ConversionError, match="Unflatten"):
        from_torch(nn.Sequential(nn.Unflatten(1, (1, 4, 4)), nn.Conv2d(1, 1, 2)), (16,))
    with pytest.raises(ConversionError, match="reshapes the batch axis"):
        from_torch(nn.Sequential(nn.Flatten(0), nn.Linear(4, 2)), (4,))
    with pytest.raises(ConversionError, match="ZeroPad2d at 0: zero padding is read only right"):
        from_torch(nn.Sequential(nn.ZeroPad2d(1), nn.ReLU()), (1, 3, 3))
    with pytest.raises(ConversionError, match=r"zero padding \(0, 2, 1, 1\) before it is uneven"):
        from_torch(nn.Sequential(nn.ZeroPad2d((0, 2, 1, 1)), nn.Conv2d(1, 1, 3)), (1, 4, 4))
    even = nn.Sequential(nn.ZeroPad2d((1, 1, 2, 2)), nn.Conv2d(1, 1, 3, stride=2)).double()
    assert_same_map(even, from_torch(even, (1, 5, 6)), (1, 5, 6))
    with pytest.raises(ConversionError, match="no affine layer"):
        from_torch(nn.Sequential(nn.Flatten()), (2, 2))


def test_input_checks():
    with pytest.raises(ShapeError, match="expects 3 input features, the state has shape"):
        from_torch(nn.Linear(3, 2), (4,))
    with pytest.raises(ShapeError, match="positive dimensions"):
        from_torch(nn.Linear(3, 2), (0,))
    with pytest.raises(TypeError, match="torch.nn.Module"):
        from_torch(np.eye(2), (2,))


def test_the_forward_check_catches_a_module_that_lies_about_its_type():
    class Doubled(nn.ReLU):
        def forward(self, x):
            return 2 * super().forward(x)

    model = nn.Sequential(nn.Linear(3, 4), Doubled())
    with pytest.raises(ConversionError, match="differs from the torch module"):
        from_torch(model, (3,))
    assert isinstance(from_torch(model, (3,), check=False).layers[0].activation, act.ReLU)


# --------------------------------------------------------------------------- state dicts
def test_state_dict_with_an_architecture():
    trained = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).double()
    architecture = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).double()
    before = architecture[0].weight.detach().clone()
    state = {k: v.numpy() for k, v in trained.state_dict().items()}  # arrays are accepted too
    network = from_torch(architecture, (3,), state_dict=state)
    assert_same_map(trained, network, (3,))
    assert torch.equal(architecture[0].weight, before)  # the architecture is not modified
    with pytest.raises(RuntimeError, match="Missing key"):
        from_torch(architecture, (3,), state_dict={"0.weight": state["0.weight"]})


def test_float32_modules_are_read_exactly():
    module = nn.Sequential(nn.Linear(3, 4), nn.Tanh())
    network = from_torch(module, (3,))
    np.testing.assert_array_equal(network.layers[0].W, module[0].weight.detach().double().numpy())


# --------------------------------------------------------------------------- inversion
def test_imported_conv_encoder_lifts_passes_the_dot_test_and_inverts_one_layer():
    # A one-layer expansive ReLU convolution (4 channels from 1), imported and inverted with
    # the Bregman fidelity and a little TV: noise-free data gives back the blocky image.
    conv = nn.Conv2d(1, 4, 3, padding=1).double()
    module = nn.Sequential(conv, nn.ReLU(), nn.Flatten()).eval()
    network = from_torch(module, (1, 8, 8))
    assert network.out_shape == (4 * 8 * 8,)
    lifted = network.lift()
    for op in (lifted.W, lifted.M, lifted.V, lifted.K, network.layers[0].operator):
        assert dot_test(op, rng=0) < 1e-12
    truth = np.zeros((1, 8, 8))
    truth[0, 2:6, 3:7] = 1.0
    f = torch_forward(module, truth[None])[0]
    problem = bm.Inversion(network, f, reg=1e-4 * bm.TotalVariation((8, 8)), fidelity="bregman")
    result = problem.solve(solver="cvxpy")
    assert result.status == "optimal"
    assert np.abs(result.u0 - truth).max() < 1e-3


def test_deep_imported_encoder_lifts_and_passes_the_dot_test():
    module = nn.Sequential(nn.Conv2d(1, 4, 3, stride=2, padding=1), nn.ReLU(),
                           nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU(),
                           nn.Conv2d(6, 3, 3), nn.Flatten()).double().eval()
    network = from_torch(module, (1, 16, 16))
    lifted = network.lift()
    assert lifted.output_shape == (3 * 2 * 2,)
    for op in (lifted.W, lifted.M, lifted.V, lifted.K):
        dot_test(op, rng=1)
    x = np.random.default_rng(0).standard_normal((1, 16, 16))
    u, z = lifted.forward(x)
    np.testing.assert_allclose(lifted.output(u), torch_forward(module, x[None])[0], atol=TOL)
    assert lifted.bregman(z, lifted.W.apply(u) + lifted.b) == pytest.approx(0, abs=1e-20)
    # the deep lifted Bregman model palm solves reads the same operators
    deep = bm.Inversion(network, network(x), fidelity="bregman").deep
    assert deep.depth == 3 and deep.sizes == (256, 4 * 8 * 8, 6 * 4 * 4, 12)
    for l in range(1, 4):
        assert dot_test(deep.operator(l), rng=l) < 1e-12
    states = deep.forward(x.reshape(1, -1))
    np.testing.assert_allclose(states[-1], torch_forward(module, x[None]), atol=TOL)
    assert np.abs(deep.terms(states)).max() < 1e-20


def test_import_bregmod_does_not_import_torch():
    code = "import sys, bregmod; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert bm.from_torch is from_torch and bm.to_torch is to_torch
    with pytest.raises(AttributeError, match="no attribute 'from_tensorflow'"):
        bm.from_tensorflow  # noqa: B018
