r"""The quadratic lifted energy (docs/math/lifted.md, docs/math/certificates.md).

For the compiled network N(u₀) = K u + c, M u = V z, z = prox_Ψ(W u + b)
(:mod:`bregmod.lifted`), data f, λ, ρ > 0 and J::

    E(u, z) = λ/2 ‖K u + c − f‖² + B_Ψ(z, W u + b) + χ_{=0}(M u − V z) + ρ/2 ‖M u − V z‖²
              + J(u₀),
    B_Ψ(z, x) = Σ_k B_{Ψ_k}(z_k, x_k) = ½‖z‖² + Ψ(z) + Φ*(x) − ⟨z, x⟩,

+inf off dom Ψ, off dom J and off the constraint set (‖M u − V z‖ >
:data:`FEASIBILITY_RTOL` · max(1, ‖M u‖, ‖V z‖)). The pieces the solvers need:

* :class:`LiftedEnergy` — the value E, the Bregman gaps B_{Ψ_k}(z_k, (W u + b)_k) per block,
  the constraint violation ‖M u − V z‖;
* :class:`LiftedSmooth` — the smooth part f(u, z) = λ/2‖K u + c − f‖² + ½‖z‖² − ⟨z, W u + b⟩
  + ΣΦ*(W u + b) + μ/2‖M u − V z‖² with its gradient (σ only) and Lipschitz bound;
* :class:`Elimination` — (u, z) = P(u₀, z) on {M u = V z} and Pᵀ;
* :class:`ReducedSmooth` — f on the constraint set, f(P ξ), with its Lipschitz bound ‖G‖².

Every array is a batch of rows (B, ·), one per problem. This module is the only place these
formulas are computed.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from bregmod.errors import SolverError
from bregmod.model.onelayer import data_rows, regularizer_rows
from bregmod.operators import Operator

__all__ = [
    "FEASIBILITY_RTOL",
    "Elimination",
    "LiftedEnergy",
    "LiftedSmooth",
    "ReducedSmooth",
]

#: χ_{=0}(M u − V z) counts as 0 when ‖M u − V z‖ ≤ FEASIBILITY_RTOL · max(1, ‖M u‖, ‖V z‖).
FEASIBILITY_RTOL = 1e-8


def _batch_norm(x: np.ndarray) -> np.ndarray:
    return np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))


def _batch_dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, y, dtype=np.float64)


class LiftedEnergy:
    """E(u, z) of the lifted model on a batch of data rows (see the module docstring).

    Parameters
    ----------
    lifted : LiftedNetwork
        The compiled network.
    lam : float
        λ > 0.
    rho : float
        ρ > 0.
    data : ndarray (B, n_out)
        The data rows f.
    reg : Regularizer, optional
        J (with its weight) of u₀; None for J = 0.
    dtype : numpy float dtype
        Dtype of the solvers' iterates.
    """

    def __init__(self, lifted, lam: float, rho: float, data: np.ndarray, reg=None,
                 dtype=np.float64) -> None:
        self.lifted, self.lam, self.rho = lifted, float(lam), float(rho)
        self.data, self.reg, self.dtype = data, reg, np.dtype(dtype)

    @classmethod
    def of(cls, problem, data: np.ndarray | None = None, dtype=np.float64) -> LiftedEnergy:
        """The energy of an ``Inversion(..., fidelity="quadratic")`` (its data rows by default)."""
        rows = data_rows(problem) if data is None else data
        return cls(problem.lifted, problem.lam, problem.rho, rows, problem.reg, dtype)

    def item(self, index: int) -> LiftedEnergy:
        """The energy of data row ``index`` alone (a batch of one)."""
        return LiftedEnergy(self.lifted, self.lam, self.rho, self.data[index : index + 1],
                            self.reg, self.dtype)

    @cached_property
    def data_constant(self) -> np.ndarray:
        """λ/2‖c − f‖² per row (B,), the constant of λ/2‖K u + c − f‖² expanded in u."""
        residual = self.lifted.c - self.data
        return 0.5 * self.lam * _batch_dot(residual, residual)

    def feasible_point(self, u: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The point of dom E next to rows (u, z): u₀ projected onto dom J, every z block onto
        dom Ψ_k (:meth:`~bregmod.activations.Activation.project_domain`), and the hidden states
        recomputed from M u = V z with u₀ and z fixed
        (:meth:`~bregmod.lifted.LiftedNetwork.states_from`)."""
        lifted = self.lifted
        u0 = u[:, lifted.u_blocks[0].slice]
        if self.reg is not None:
            u0 = self.reg.project_domain(u0)
        z = z.copy()
        for blk, act in zip(lifted.z_blocks, lifted.activations, strict=True):
            z[:, blk.slice] = act.project_domain(z[:, blk.slice])
        return lifted.states_from(u0.reshape(-1, *lifted.input_shape), z), z

    def violation(self, u: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """‖M u − V z‖ and the scale max(1, ‖M u‖, ‖V z‖) of every row."""
        Mu, Vz = self.lifted.M.apply(u), self.lifted.V.apply(z)
        scale = np.maximum(1.0, np.maximum(_batch_norm(Mu), _batch_norm(Vz)))
        return _batch_norm(Mu - Vz), scale

    def bregman_gaps(self, u: np.ndarray, z: np.ndarray) -> np.ndarray:
        """B_{Ψ_k}(z_k, (W u + b)_k) per row and z block, shape (B, blocks)."""
        x = self.lifted.W.apply(u) + self.lifted.b
        return np.atleast_2d(self.lifted.bregman_per_block(z, x))

    def energy(self, u: np.ndarray, z: np.ndarray) -> np.ndarray:
        """E(u, z) per row (B,), +inf where z ∉ dom Ψ, u₀ ∉ dom J or the point is infeasible."""
        lifted = self.lifted
        u0 = u[:, lifted.u_blocks[0].slice]
        values = regularizer_rows(self.reg, u0, lifted.input_shape)
        residual = lifted.K.apply(u) + lifted.c - self.data
        values = values + 0.5 * self.lam * _batch_dot(residual, residual)
        violation, scale = self.violation(u, z)
        values = np.where(
            violation <= FEASIBILITY_RTOL * scale, values + 0.5 * self.rho * violation**2, np.inf
        )
        inside = np.isfinite(np.atleast_1d(lifted.psi(z)))
        if inside.any():
            x = lifted.W.apply(u[inside]) + lifted.b
            values[inside] += np.atleast_1d(lifted.bregman(z[inside], x))
        values[~inside] = np.inf
        return values


class LiftedSmooth:
    """Smooth part of the lifted model in x = (u, z), with the Finsler weight μ ≥ 0:

        f(u, z) = λ/2‖K u + c − f^δ‖² + ½‖z‖² − ⟨z, W u + b⟩ + Σ Φ*(W u + b) + μ/2‖M u − V z‖².

    With Ψ(z) (in g) it is E_Ψ^ρ without the constraint, whose value on {M u = V z} does not
    depend on μ or ρ. Its quadratic part is ½ xᵀ(H₀ + μ AᵀA) x, A = [M, −V], convex when the
    exact certificate holds with this μ (docs/math/certificates.md); Φ* is convex with ∇Φ* = σ.
    Gradient:

        ∇_u f = λ Kᵀ(K u + c − f^δ) + Wᵀ(σ(W u + b) − z) + Mᵀ q,
        ∇_z f = z − (W u + b) − Vᵀ q,        q = μ (M u − V z) (+ a multiplier y, see below).

    Lipschitz bound: with 0 ⪯ σ′ ⪯ I the Hessian is ⪯ [[λKᵀK, 0], [0, 0]] + [W, −I]ᵀ[W, −I]
    + μ AᵀA, hence L_f ≤ λ‖K‖² + (‖W‖² + 1) + μ(‖M‖² + ‖V‖²) (‖AAᵀ‖ ≤ ‖M‖² + ‖V‖²).

    ``images(x) = (K u, W u, M u, V z)``.

    Parameters
    ----------
    energy : LiftedEnergy
        The lifted energy (network, λ, data rows, dtype).
    mu : float
        The Finsler weight μ ≥ 0.
    constraint : bool
        Whether the constraint terms (M u, V z, the μ term and a multiplier) are used; with
        ``constraint=False`` and μ = 0 the images are (K u, W u) only (``ReducedSmooth``).
    """

    def __init__(self, energy: LiftedEnergy, mu: float, constraint: bool = True) -> None:
        lifted = energy.lifted
        self.constraint = constraint or mu > 0
        self.dtype = energy.dtype
        self.lifted = lifted
        self.lam = energy.lam
        self.mu = float(mu)
        self.data = energy.data
        self.c = np.asarray(lifted.c, dtype=self.dtype)
        self.b = np.asarray(lifted.b, dtype=self.dtype)
        self.n_u, self.n_z = lifted.n_u, lifted.n_z

    @cached_property
    def _norms(self) -> dict[str, float]:
        return {name: getattr(self.lifted, name).norm_bound() for name in ("K", "W", "M", "V")}

    @cached_property
    def lipschitz(self) -> float:
        """λ‖K‖² + ‖W‖² + 1 + μ(‖M‖² + ‖V‖²) (from the operators' norm bounds)."""
        norms = self._norms
        return (
            self.lam * norms["K"] ** 2
            + norms["W"] ** 2
            + 1.0
            + self.mu * (norms["M"] ** 2 + norms["V"] ** 2)
        )

    @property
    def lipschitz_note(self) -> str:
        """The Lipschitz bound in words, for ``Result.stats``."""
        norms = self._norms
        return (
            f"L_f = λ‖K‖² + ‖W‖² + 1 + μ(‖M‖² + ‖V‖²) ≤ {self.lipschitz:.6g} "
            f"(λ = {self.lam:g}, μ = {self.mu:g}, ‖K‖ ≤ {norms['K']:.4g}, ‖W‖ ≤ {norms['W']:.4g}, "
            f"‖M‖ ≤ {norms['M']:.4g}, ‖V‖ ≤ {norms['V']:.4g})"
        )

    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Views (u, z) of a stacked batch x = (u, z)."""
        return x[:, : self.n_u], x[:, self.n_u :]

    def images(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        """The linear images (K u, W u, M u, V z) ((K u, W u) without constraint terms)."""
        u, z = self.split(x)
        lifted = self.lifted
        if not self.constraint:
            return lifted.K.apply(u), lifted.W.apply(u)
        return lifted.K.apply(u), lifted.W.apply(u), lifted.M.apply(u), lifted.V.apply(z)

    def _parts(self, x, images):
        z = self.split(x)[1]
        a = images[2] - images[3] if self.constraint else None
        return z, images[0] + self.c - self.data, images[1] + self.b, a

    def _terms(self, x: np.ndarray, images: tuple[np.ndarray, ...], penalty: bool):
        z, r, pre, a = self._parts(x, images)
        terms = [
            0.5 * self.lam * _batch_norm(r) ** 2,
            0.5 * _batch_norm(z) ** 2,
            -_batch_dot(z, pre),
            np.asarray(self.lifted.phi_conj(pre), dtype=np.float64),
        ]
        if penalty and self.constraint:
            terms.append(0.5 * self.mu * _batch_norm(a) ** 2)
        return terms

    def value(self, x: np.ndarray, images: tuple[np.ndarray, ...]):
        """(f(x), magnitude) per problem; magnitude = Σ |terms of f| bounds its rounding."""
        terms = self._terms(x, images, penalty=True)
        return sum(terms), sum(np.abs(t) for t in terms)

    def objective(self, x: np.ndarray, images: tuple[np.ndarray, ...]) -> np.ndarray:
        """λ/2‖K u + c − f^δ‖² + ½‖z‖² − ⟨z, W u + b⟩ + Σ Φ*(W u + b) (f without the μ term)."""
        return sum(self._terms(x, images, penalty=False))

    def gradient(self, x: np.ndarray, images: tuple[np.ndarray, ...], multiplier=None):
        """(∇f(x) + Aᵀ multiplier, scale), scale = the largest norm of the additive terms.

        ``multiplier`` (B, n_c) is a dual variable of M u = V z, whose Aᵀ y is merged with the
        μ term (one application of Mᵀ and Vᵀ).
        """
        lifted = self.lifted
        z, r, pre, a = self._parts(x, images)
        data_term = self.lam * lifted.K.apply_adjoint(r)
        activation_term = lifted.W.apply_adjoint(lifted.prox(pre).astype(self.dtype) - z)
        if not self.constraint:
            grad = np.concatenate([data_term + activation_term, z - pre], axis=1)
            terms = (data_term, activation_term, z, pre)
        else:
            q = self.mu * a if multiplier is None else self.mu * a + multiplier
            Mq, Vq = lifted.M.apply_adjoint(q), lifted.V.apply_adjoint(q)
            grad = np.concatenate([data_term + activation_term + Mq, z - pre - Vq], axis=1)
            terms = (data_term, activation_term, Mq, z, pre, Vq)
        return grad, np.maximum.reduce([_batch_norm(t) for t in terms])


class Elimination:
    """x = P ξ: the lifted point (u, z) on {M u = V z} parametrised by ξ = (u₀, z).

    P ξ completes the hidden states by the sweep of
    :meth:`~bregmod.lifted.LiftedNetwork.complete_states` (exact for the aligned
    unit-triangular constraint u_{1:} − N u_{1:} = V z − M₀ u₀ of every compiled network), and
    Pᵀ by the transposed sweep. Any other constraint rows (the zero row of residual chains)
    must vanish.

    Parameters
    ----------
    lifted : LiftedNetwork
        The compiled network.

    Raises
    ------
    SolverError
        If the constraint does not have this aligned unit-triangular form (checked on random
        points: P ξ must satisfy M u = V z, and Pᵀ must be the adjoint of P).
    """

    def __init__(self, lifted) -> None:
        self.lifted = lifted
        self.M, self.V = lifted.M, lifted.V
        self.n0 = lifted.u_blocks[0].size
        self.n_u, self.n_z = lifted.n_u, lifted.n_z
        self.rows = self.n_u - self.n0
        self.sweeps = max(len(lifted.u_blocks) - 1, 1)
        if lifted.n_c < self.rows:
            raise SolverError(self._refusal(f"{lifted.n_c} constraint rows < {self.rows} states"))
        rng = np.random.default_rng(0)
        xi = rng.standard_normal((2, self.n0 + self.n_z))
        x = self.apply(xi)
        violation = _batch_norm(self.M.apply(x[:, : self.n_u]) - self.V.apply(x[:, self.n_u :]))
        g = rng.standard_normal((2, self.n_u + self.n_z))
        mismatch = np.abs(_batch_dot(x, g) - _batch_dot(xi, self.adjoint(g)))
        if (violation > 1e-10 * _batch_norm(x)).any() or (
            mismatch > 1e-10 * _batch_norm(x) * _batch_norm(g)
        ).any():
            raise SolverError(
                self._refusal(
                    f"the sweep leaves ‖M u − V z‖ = {violation.max():.3g} or an adjoint "
                    f"mismatch of {mismatch.max():.3g}"
                )
            )

    @staticmethod
    def _refusal(detail: str) -> str:
        return (
            "the lifted constraint M u = V z of this network cannot be eliminated "
            f"({detail}); solve it with solver='pdhg', constraint='dual'"
        )

    def apply(self, xi: np.ndarray) -> np.ndarray:
        """P ξ = (u₀, u_{1:}, z) with M u = V z, for a batch ξ (B, n₀ + n_z)
        (:meth:`~bregmod.lifted.LiftedNetwork.complete_states`)."""
        n0, n_u = self.n0, self.n_u
        x = np.zeros((xi.shape[0], n_u + self.n_z), dtype=xi.dtype)
        x[:, :n0] = xi[:, :n0]
        x[:, n_u:] = xi[:, n0:]
        self.lifted.complete_states(x[:, :n_u], self.V.apply(xi[:, n0:]))
        return x

    def adjoint(self, g: np.ndarray) -> np.ndarray:
        """Pᵀ g = (g_{u₀} − M₀ᵀ w, g_z + Vᵀ w) with (I − N)ᵀ w = g_{u_{1:}}, for a batch g."""
        n0, n_u = self.n0, self.n_u
        w = np.zeros((g.shape[0], self.M.shape[0]), dtype=g.dtype)
        rhs = g[:, n0:n_u]
        for _ in range(self.sweeps):
            update = rhs - self.M.apply_adjoint(w)[:, n0:]
            if not update.any():
                break
            w[:, : self.rows] += update
        out = np.empty((g.shape[0], n0 + self.n_z), dtype=g.dtype)
        out[:, :n0] = g[:, :n0] - self.M.apply_adjoint(w)[:, :n0]
        out[:, n0:] = g[:, n_u:] + self.V.apply_adjoint(w)
        return out


class _CurvatureOperator(Operator):
    """G ξ = (√λ K u, W u − z) at (u, z) = P ξ; Pᵀ(∇²f)P ⪯ GᵀG gives L_f ≤ ‖G‖²."""

    def __init__(self, lifted, lam: float, elimination: Elimination) -> None:
        self.lifted, self.root_lam, self.P = lifted, np.sqrt(lam), elimination
        n_in = elimination.n0 + elimination.n_z
        super().__init__((lifted.n_out + lifted.n_z, n_in), matrix_free=True)

    def _apply(self, X):
        x = self.P.apply(X)
        u, z = x[:, : self.P.n_u], x[:, self.P.n_u :]
        return np.concatenate(
            [self.root_lam * self.lifted.K.apply(u), self.lifted.W.apply(u) - z], axis=1
        )

    def _apply_adjoint(self, Y):
        n_out = self.lifted.n_out
        top, bottom = Y[:, :n_out], Y[:, n_out:]
        g_u = self.root_lam * self.lifted.K.apply_adjoint(top) + self.lifted.W.apply_adjoint(bottom)
        return self.P.adjoint(np.concatenate([g_u, -bottom], axis=1))


class ReducedSmooth:
    """The lifted smooth part on the feasible set: f(ξ) = f_lifted(P ξ) with μ = 0.

    f(ξ) = λ/2‖K u + c − f^δ‖² + ½‖z‖² − ⟨z, W u + b⟩ + Σ Φ*(W u + b) at (u, z) = P ξ,
    ∇f(ξ) = Pᵀ ∇f_lifted(P ξ). Convex iff Pᵀ H₀ P ⪰ 0, i.e. iff the exact certificate holds
    (no Finsler μ is needed). Lipschitz bound: with 0 ⪯ σ′ ⪯ I,
    ∇²f ⪯ Pᵀ([[λKᵀK, 0], [0, 0]] + [W, −I]ᵀ[W, −I])P = GᵀG, so L_f ≤ ‖G‖², G ξ = (√λ K u, W u − z)
    (``Operator.norm_bound`` of G: exact for small sizes, else a Lanczos estimate with margin).
    ``images(ξ) = (P ξ, K u, W u)``, linear in ξ.
    """

    def __init__(self, energy: LiftedEnergy, elimination: Elimination) -> None:
        self.smooth = LiftedSmooth(energy, 0.0, constraint=False)
        self.P = elimination

    @cached_property
    def lipschitz(self) -> float:
        """‖G‖² (``Operator.norm_bound`` of G)."""
        return _CurvatureOperator(self.smooth.lifted, self.smooth.lam, self.P).norm_bound() ** 2

    @property
    def lipschitz_note(self) -> str:
        """The Lipschitz bound in words, for ``Result.stats``."""
        return f"L_f ≤ ‖G‖² = {self.lipschitz:.6g}, G ξ = (√λ K u, W u − z) at (u, z) = P ξ"

    def images(self, xi: np.ndarray) -> tuple[np.ndarray, ...]:
        """(P ξ, K u, W u)."""
        x = self.P.apply(xi)
        return (x, *self.smooth.images(x))

    def value(self, xi: np.ndarray, images: tuple[np.ndarray, ...]):
        """(f(ξ), magnitude) per problem."""
        return self.smooth.value(images[0], images[1:])

    def objective(self, xi: np.ndarray, images: tuple[np.ndarray, ...]) -> np.ndarray:
        """Same as :meth:`value` (μ = 0)."""
        return self.smooth.objective(images[0], images[1:])

    def gradient(self, xi: np.ndarray, images: tuple[np.ndarray, ...]):
        """(Pᵀ ∇f_lifted(P ξ), scale) (see :meth:`LiftedSmooth.gradient`)."""
        grad, scale = self.smooth.gradient(images[0], images[1:])
        return self.P.adjoint(grad), scale
