"""Arrays entering bregmod: complex refused, tensors duck-typed, float32 conversion said
(issue 16, items 13 and 18)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bregmod as bm
from bregmod.errors import ConversionWarning

RNG = np.random.default_rng(0)
W = RNG.standard_normal((8, 4))
COMPLEX = "is complex .*will not drop the imaginary part"


def _net():
    return bm.Dense(W, RNG.standard_normal(8), bm.ReLU())


@pytest.mark.parametrize("where", ["W", "b", "data", "input", "reg", "prox", "warm_start",
                                   "kernel", "operator"])
def test_complex_arrays_are_refused_everywhere_they_enter(where):
    z = 1j * np.ones(1)
    net = _net()
    f = net(RNG.random(4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's ComplexWarning would be an error here
        with pytest.raises(ValueError, match=COMPLEX):
            if where == "W":
                bm.Dense(W + z, None, bm.ReLU())
            elif where == "b":
                bm.Dense(W, np.ones(8) + z, bm.ReLU())
            elif where == "data":
                bm.Inversion(net, f + z, fidelity="bregman")
            elif where == "input":
                net(np.ones(4) + z)
            elif where == "reg":
                bm.L1()(np.ones(4) + z)
            elif where == "prox":
                bm.ReLU().prox(np.ones(4) + z)
            elif where == "warm_start":
                bm.Inversion(net, f, fidelity="bregman").solve(
                    "fista", warm_start=np.ones(4) + z, max_iter=2)
            elif where == "kernel":
                bm.Conv2d(np.ones((1, 1, 3, 3)) + z, None, bm.ReLU(), in_shape=(1, 5, 5))
            else:
                from bregmod.operators import MatrixOperator

                MatrixOperator(W + z)


class FakeTensor:
    """Duck-types a torch tensor that requires grad: no __array__, only detach().numpy()."""

    def __init__(self, values):
        self.values = np.asarray(values, dtype=np.float32)
        self.dtype = "torch.float32"

    def detach(self):
        return self

    def cpu(self):
        return self

    def numpy(self):
        return self.values

    def __array__(self, *args, **kwargs):
        raise RuntimeError("Can't call numpy() on Tensor that requires grad")


class FakeModule:
    def parameters(self):
        return iter(())

    def forward(self, x):
        return x


def test_tensors_are_read_through_detach_numpy_and_modules_refused():
    with pytest.warns(ConversionWarning, match="float32; bregmod stores it in float64"):
        net = bm.Dense(FakeTensor(W), FakeTensor(np.ones(8)), bm.ReLU())
    np.testing.assert_array_equal(net.W, W.astype(np.float32).astype(np.float64))
    assert net.W.dtype == np.float64
    with pytest.raises(TypeError, match="got the module FakeModule: pass its weight tensor"):
        bm.Dense(FakeModule(), None, bm.ReLU())


def test_real_torch_tensors_are_accepted_consistently():
    torch = pytest.importorskip("torch")
    weight = torch.tensor(W, requires_grad=True)  # float64, requires grad
    net = bm.Dense(weight, torch.zeros(8), bm.ReLU())
    np.testing.assert_array_equal(net.W, W)
    problem = bm.Inversion(net, torch.tensor(net(np.ones(4))), fidelity="bregman")
    assert problem.data.dtype == np.float64
    with pytest.raises(TypeError, match="got the module Linear"):
        bm.Dense(torch.nn.Linear(4, 8), None, bm.ReLU())


def test_float32_weights_say_that_they_are_converted_and_float64_ones_do_not():
    with pytest.warns(ConversionWarning, match="twice the memory.*solve\\(dtype=np.float32\\)"):
        net = bm.Dense(W.astype(np.float32), None, bm.ReLU())
    assert net.W.dtype == np.float64
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConversionWarning)
        bm.Dense(W, None, bm.ReLU())
    # the first-order solvers do iterate in float32 when asked
    f = net(np.abs(RNG.standard_normal(4)))
    result = bm.Inversion(net, f, reg=0.1 * bm.L1(), fidelity="bregman").solve(
        "fista", dtype=np.float32, tol=1e-4)
    assert result.stats["dtype"] == "float32"


def test_spec_refuses_a_complex_weight_file(tmp_path):
    from bregmod.spec import SpecError, parse_spec

    np.save(tmp_path / "w.npy", W + 1j)
    text = ('[input]\nshape = [4]\n[[layers]]\ntype = "dense"\nout = 8\n'
            'weights = { file = "w.npy" }\n[data]\nground_truth = { values = [1, 2, 3, 4] }\n')
    with pytest.raises(SpecError, match="layers.0.weights.*is complex"):
        parse_spec(text, base_dir=tmp_path)
