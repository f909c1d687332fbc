"""The smooth parts the first-order solvers minimise, against finite differences.

``LiftedSmooth`` (x = (u, z), with the Finsler term μ/2‖M u − V z‖²) and ``ReducedSmooth``
(ξ = (u₀, z) on the constraint set) of a two-layer quadratic-fidelity model: their gradients
against central differences of their values, and their Lipschitz bounds against the largest
eigenvalue of the Hessian built column by column from differences of the gradient. With
identity activations (σ′ = 1) the Hessian is the worst case the bounds are derived for:
the lifted bound must hold and the reduced bound ‖G‖² (exact for these sizes) is attained.
"""

from __future__ import annotations

import numpy as np
import pytest

from bregmod.activations import Identity, Tanh
from bregmod.model.lifted import Elimination, LiftedSmooth, ReducedSmooth
from bregmod.network import Dense, Residual, Sequential
from bregmod.problem import Inversion
from bregmod.solvers._common import prepare


def quadratic_problem(activation, lam: float, residual: bool = False) -> Inversion:
    rng = np.random.default_rng(7)
    if residual:
        network = Sequential(*(Residual(rng.standard_normal((3, 4)) / 2,
                                        0.1 * rng.standard_normal(3), activation)
                               for _ in range(2)))
        return Inversion(network, rng.standard_normal(4), lam=lam)
    network = Sequential(
        Dense(rng.standard_normal((5, 4)) / 2, 0.1 * rng.standard_normal(5), activation),
        Dense(rng.standard_normal((3, 5)) / 2, 0.1 * rng.standard_normal(3), activation),
    )
    return Inversion(network, rng.standard_normal(3), lam=lam)


def smooth_part(kind: str, activation, lam: float = 1.0, mu: float = 0.7, residual=False):
    setup = prepare(quadratic_problem(activation, lam, residual), solver="pdhg", tol=1e-6,
                    max_iter=None, default_max_iter=1)
    if kind == "lifted":
        return LiftedSmooth(setup.energy(), mu)
    return ReducedSmooth(setup.energy(), Elimination(setup.problem.lifted))


def value(smooth, x):
    return float(smooth.value(x, smooth.images(x))[0][0])


def gradient(smooth, x):
    return smooth.gradient(x, smooth.images(x))[0][0]


def size(smooth) -> int:
    if isinstance(smooth, LiftedSmooth):
        return smooth.n_u + smooth.n_z
    return smooth.P.n0 + smooth.P.n_z


@pytest.mark.parametrize("kind", ["lifted", "reduced"])
def test_gradient_matches_central_differences(kind):
    smooth = smooth_part(kind, Tanh())
    n = size(smooth)
    x = np.random.default_rng(1).standard_normal((1, n))
    h = 1e-6
    fd = np.array([(value(smooth, x + h * e) - value(smooth, x - h * e)) / (2 * h)
                   for e in np.eye(n)[:, None, :]])
    # measured max |fd − grad| 8.6e-10 (lifted) and 7.1e-10 (reduced), gradients of size ~3
    np.testing.assert_allclose(gradient(smooth, x), fd, atol=5e-9)


def hessian_max_eigenvalue(smooth, x) -> float:
    n = x.shape[1]
    h = 1e-5
    columns = [(gradient(smooth, x + h * e) - gradient(smooth, x - h * e)) / (2 * h)
               for e in np.eye(n)[:, None, :]]
    H = np.array(columns)
    return float(np.linalg.eigvalsh(0.5 * (H + H.T))[-1])


def test_lifted_lipschitz_bound_holds_where_it_is_nearly_tight():
    # σ′ = 1, μ = 0 and a small λ: the Hessian's top eigenvalue is ‖[W, −I]‖² = ‖W‖² + 1 plus
    # O(λ), so the bound λ‖K‖² + ‖W‖² + 1 + μ(…) is within λ‖K‖² of it
    smooth = smooth_part("lifted", Identity(), lam=0.01, mu=0.0)
    x = np.random.default_rng(2).standard_normal((1, size(smooth)))
    top = hessian_max_eigenvalue(smooth, x)
    norm_k = smooth.lifted.K.norm_bound()
    assert top <= smooth.lipschitz * (1 + 1e-6)
    assert top >= smooth.lipschitz - smooth.lam * norm_k**2 - 1e-6


def test_lifted_lipschitz_bound_holds_with_the_finsler_term():
    smooth = smooth_part("lifted", Tanh(), lam=1.0, mu=0.7)
    x = np.random.default_rng(3).standard_normal((1, size(smooth)))
    assert hessian_max_eigenvalue(smooth, x) <= smooth.lipschitz * (1 + 1e-6)


@pytest.mark.parametrize("residual", [False, True])
def test_reduced_lipschitz_bound_is_the_top_eigenvalue_for_identity_activations(residual):
    # residual chains too: for a feed-forward chain, G and the map with W u + z have the same
    # singular values (alternate the signs of the layers' states), for u_j = u_{j−1} + V z_j not
    smooth = smooth_part("reduced", Identity(), lam=1.0, residual=residual)
    x = np.random.default_rng(4).standard_normal((1, size(smooth)))
    assert hessian_max_eigenvalue(smooth, x) == pytest.approx(smooth.lipschitz, rel=1e-6)
