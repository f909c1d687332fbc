"""Arrays entering bregmod: complex refused, tensors duck-typed, float32 weights kept in float32
and every float64 copy of them said (issue 16, items 13 and 18)."""

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
    net = bm.Dense(FakeTensor(W), FakeTensor(np.ones(8)), bm.ReLU())
    np.testing.assert_array_equal(net.W, W.astype(np.float32))
    assert net.W.dtype == np.float32  # a float32 tensor stays float32
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


def _float32_problem():
    W32 = RNG.standard_normal((12, 6)).astype(np.float32)
    b = 0.1 * RNG.standard_normal(12)
    f = bm.Dense(W32.astype(np.float64), b, bm.ReLU())(np.abs(RNG.standard_normal(6)))
    return W32, b, f


def test_float32_weights_are_stored_in_float32_and_float32_solves_make_no_copy():
    W32, b, f = _float32_problem()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConversionWarning)
        net = bm.Dense(W32, b, bm.ReLU())
        assert net.W.dtype == np.float32 and net.W.nbytes == W32.nbytes
        problem = bm.Inversion(net, f, reg=0.05 * bm.L1(), fidelity="bregman")
        for solver in ("fista", "pdhg", "admm"):
            result = problem.solve(solver, dtype=np.float32, tol=1e-5)
            assert result.stats["dtype"] == "float32" and result.status == "optimal", solver
        # the forward pass in float64 converts for the product only: exact, no copy kept
        x = np.abs(RNG.standard_normal(6))
        np.testing.assert_array_equal(net(x), bm.Dense(W32.astype(np.float64), b, bm.ReLU())(x))
    assert net.operator.matrix.dtype == np.float32


def test_float64_solves_of_float32_weights_say_they_copy_and_match_the_float64_problem():
    W32, b, f = _float32_problem()
    net32 = bm.Dense(W32, b, bm.ReLU())
    net64 = bm.Dense(W32.astype(np.float64), b, bm.ReLU())  # the same values in float64
    p32 = bm.Inversion(net32, f, reg=0.05 * bm.L1(), fidelity="bregman")
    p64 = bm.Inversion(net64, f, reg=0.05 * bm.L1(), fidelity="bregman")
    # certificate and norm bound are computed in float64: identical
    assert net32.operator.norm_bound() == net64.operator.norm_bound()
    c32, c64 = (bm.Inversion(net, f, fidelity="quadratic", lam=1.0, rho=1.0).certify()
                for net in (net32, net64))
    assert c32.min_eig == c64.min_eig  # −3.49…; a float32 eigensolve differs at 1e-7
    with pytest.warns(ConversionWarning, match=r"W of Dense \(12×6\) is stored in float32; "
                      r"solving in float64 keeps a float64 copy.*solve\(dtype=np.float32\)"):
        r32 = p32.solve("admm", tol=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConversionWarning)
        p32.solve("admm", tol=1e-9)  # said once: the copy is kept
    r64 = p64.solve("admm", tol=1e-9)
    # same values, both in float64: the same iterates (a float32 Gram would differ at 1e-7)
    np.testing.assert_allclose(r32.u0, r64.u0, rtol=0, atol=1e-12)
    assert r32.stats["dtype"] == "float64"



def test_spec_refuses_a_complex_weight_file(tmp_path):
    from bregmod.spec import SpecError, parse_spec

    np.save(tmp_path / "w.npy", W + 1j)
    text = ('[input]\nshape = [4]\n[[layers]]\ntype = "dense"\nout = 8\n'
            'weights = { file = "w.npy" }\n[data]\nground_truth = { values = [1, 2, 3, 4] }\n')
    with pytest.raises(SpecError, match="layers.0.weights.*is complex"):
        parse_spec(text, base_dir=tmp_path)


def test_matrix_copies_only_in_float32_or_float64():
    op = bm.Dense(W.astype(np.float32), None, bm.ReLU()).operator
    for method in (op.matrix_as, op.cache_as):
        with pytest.raises(ValueError, match="dtype must be float32 or float64, got int64"):
            method(np.int64)
