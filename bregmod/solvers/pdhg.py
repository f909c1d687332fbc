r"""Condat–Vũ primal–dual splitting ("pdhg") on the compiled structure.

Splitting
---------
Every problem is written as

    min_x  f(x) + g(x) + Σ_i h_i(L_i x)

with f convex and L_f-smooth, g prox-friendly and h_i with a cheap prox of h_i*:

* ``fidelity="bregman"`` (x = u₀): f(u₀) = B_Ψ(f^δ, A u₀ + β) with ∇f = Aᵀ(σ(A u₀ + β) − f^δ)
  (σ only, never σ′) and L_f = ‖A‖² (docs/math/solvers.md); g = the ``simple`` part of J;
  h_i = w_i g_i, L_i the composites of ``J.split()`` (TV: L = ∇, prox of h* = projection).
  With ``dualize_data`` (default when J has composites) the data term is a dual block
  instead: h_0(A u₀) with h_0(x) = Σ Φ*(x + β) − ⟨f^δ, x + β⟩, h_0*(y) = Φ(y + f^δ) − ⟨y, β⟩,
  prox_{σh_0*}(v) = prox_{σΦ}(v + σβ + f^δ) − f^δ, prox_{σΦ}(q) = prox_{σ/(1+σ)Ψ}(q/(1+σ)),
  and f = 0 (the Chambolle–Pock form with the data term dualised).
* ``fidelity="quadratic"``: expanding B_Ψ(z, W u + b) = ½‖z‖² + Ψ(z) + Φ*(W u + b) − ⟨z, W u + b⟩,
  the lifted energy without its constraint is

      F(u, z) = λ/2‖K u + c − f^δ‖² + ½‖z‖² − ⟨z, W u + b⟩ + Σ Φ*(W u + b)  [smooth]
                + Ψ(z) + J_simple(u₀)  [g, prox blockwise: ``prox_scaled`` and J's prox],

  ½‖z‖² stays in the smooth part (that is what makes H₀ ⪰ 0 possible) and
  ∇F = (λKᵀ(K u + c − f^δ) + Wᵀ(σ(W u + b) − z), z − (W u + b)) needs σ only. The
  constraint M u = V z is handled in one of two ways (option ``constraint``):

  - ``"eliminate"`` (default where possible, ``constraint="auto"``): x = ξ = (u₀, z) and
    (u, z) = P ξ (:class:`~bregmod.model.lifted.Elimination`, exact for every compiled
    architecture), f(ξ) = F_smooth(P ξ). f is convex iff Pᵀ H₀ P ⪰ 0, which is exactly the
    exact certificate, and L_f ≤ ‖G‖², G ξ = (√λ K u, W u − z) (``ReducedSmooth``).
  - ``"dual"``: x = (u, z) and the constraint is a linear-operator part h_0 = χ_{0}, L_0 =
    A = [M, −V], with its own multiplier; f = F_smooth + μ/2‖A x‖² with μ = ``certificate.mu``
    (Finsler: H₀ + μAᵀA ⪰ 0, so f is convex; for a paper certificate μ = ρ), which does not
    change the minimisers on {A x = 0}. h_0* = 0: the dual step is a plain ascent step and
    the dual residual of block 0 is the constraint violation. L_f ≤ λ‖K‖² + ‖W‖² + 1
    + μ(‖M‖² + ‖V‖²) (``LiftedSmooth``).

  J's composites act on u₀ in both cases.

Iteration (Condat 2013, Vũ 2013), with dual steps σ_i = s ω_i:

    x⁺   = prox_{τ g}(x − τ(∇f(x) + Σ_i L_iᵀ y_i))
    y_i⁺ = prox_{σ_i h_i*}(y_i + σ_i L_i(2x⁺ − x)),    prox_{σ(w g)*}(v) = w prox_{(σ/w) g*}(v/w).

Convergence condition (checked, and recorded in ``Result.stats["step_condition"]``): with
‖Σ^{1/2} L‖² ≤ Σ_i σ_i ‖L_i‖² from the operators' norm upper bounds,

    τ (L_f/2 + Σ_i σ_i ‖L_i‖²) ≤ θ < 1     (θ = 0.99),

which implies Condat's 1/τ − ‖Σ^{1/2} L‖² > L_f/2. Given s, τ is the largest step allowed,
τ = θ / (L_f/2 + s Σ_i ω_i‖L_i‖²). Diagonal (block) preconditioning: ω_i = 1/‖L_i‖², so every
dual block gets the same normalised step (else ω_i = 1).

Adaptive steps (Goldstein–Esser–Baraniuk): when the relative primal residual exceeds Δ = 2
times the relative dual one, s ← s(1 − α) (a larger τ); in the opposite case s ← s/(1 − α);
α starts at 0.5 and shrinks by η = 0.95 at every change, so the steps settle and the
condition above holds at every iteration.

Stopping: for ``fidelity="bregman"`` with J = TV and/or a separable simple part whose
conjugate domain contains 0 inside, the run stops when the relative duality gap of
:mod:`bregmod.solvers.gap` is ≤ tol (a certified bound on the relative objective error;
``stats["guarantee"]`` = ``"duality gap"``), evaluated every ``_GAP_EVERY`` iterations (every
iteration once ≤ ``_GAP_NEAR``·tol) at x⁺ with the dual blocks' y⁺ (the data block's Aᵀy₀ is the
iteration's own product). Otherwise (shared KKT policy of ``_common``): the primal residual
p = (x − x⁺)/τ + (∇f + Lᵀy)(x⁺, y⁺) − (∇f + Lᵀy)(x, y) ∈ ∂g(x⁺) + ∇f(x⁺) + Lᵀy⁺ and the dual
residuals d_i = (y_i − y_i⁺)/σ_i + L_i(x⁺ − x) ∈ ∂h_i*(y_i⁺) − L_i x⁺ (Goldstein et al.), each
relative to the largest norm of the terms of its optimality condition, must be ≤ tol.
"""

from __future__ import annotations

import numpy as np

from bregmod._checks import positive_scalar
from bregmod.errors import SolverError
from bregmod.model.lifted import Elimination, LiftedSmooth, ReducedSmooth
from bregmod.model.onelayer import OneLayerEnergy
from bregmod.solvers._common import (
    Monitor,
    ProxPart,
    Setup,
    all_finite,
    batch_norm,
    finish,
    prepare,
    relative_residual,
)
from bregmod.solvers._threads import blas_threads
from bregmod.solvers.gap import DualityGap, guarantee

__all__ = ["NAME", "solve", "supports"]

#: The solver's name in the registry (:mod:`bregmod.solvers.registry`).
NAME = "pdhg"

#: Safety factor θ < 1 of the step condition τ(L_f/2 + Σσ_i‖L_i‖²) ≤ θ.
THETA = 0.99
#: Imbalance ratio Δ, initial adaptation α₀ and its decay η of the adaptive steps.
_DELTA, _ALPHA0, _ETA = 2.0, 0.5, 0.95
DEFAULT_MAX_ITER = 50_000
#: The duality gap (``fidelity="bregman"``; no product with A beyond the iteration's own) is
#: evaluated every _GAP_EVERY iterations, and at every iteration once it is ≤ _GAP_NEAR·tol.
_GAP_EVERY, _GAP_NEAR = 10, 10.0


class _Composite:
    """A dual block h(L u₀) = w g(L u₀) of J's splitting view."""

    def __init__(self, weight: float, L, g, u0: slice, dtype) -> None:
        self.weight, self.L, self.g, self.u0, self.dtype = float(weight), L, g, u0, dtype
        self.norm_sq = L.norm_bound() ** 2

    def apply(self, x: np.ndarray) -> np.ndarray:
        return self.L.apply(x[:, self.u0])

    def adjoint_into(self, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        term = self.L.apply_adjoint(y)
        out[:, self.u0] += term
        return term

    def prox_conj(self, v: np.ndarray, sigma: float) -> np.ndarray:
        w = self.weight
        return (w * np.asarray(self.g.prox_conj(v / w, sigma / w))).astype(self.dtype, copy=False)

    def value(self, Lx: np.ndarray) -> float:
        return self.weight * float(np.sum(self.g(Lx)))


class _DataDual:
    """The Bregman data term as a dual block: h(A u₀) with h(x) = Σ Φ*(x + β) − ⟨f^δ, x + β⟩;
    the prox of h* is the model's (:meth:`OneLayerEnergy.prox_data_conj`)."""

    def __init__(self, energy: OneLayerEnergy) -> None:
        self.energy, self.L = energy, energy.A
        self.norm_sq = energy.lipschitz

    def apply(self, x: np.ndarray) -> np.ndarray:
        return self.L.apply(x)

    def adjoint_into(self, y: np.ndarray, out: np.ndarray) -> np.ndarray:
        term = self.L.apply_adjoint(y)
        out += term
        return term

    def prox_conj(self, v: np.ndarray, sigma: float) -> np.ndarray:
        return self.energy.prox_data_conj(v, sigma)

    def value(self, Lx: np.ndarray) -> float:
        return float(np.sum(self.energy.objective(None, (Lx,))))


class _NoSmooth:
    """f = 0 (the data term moved to a dual block): no images, zero gradient, L_f = 0."""

    lipschitz = 0.0
    lipschitz_note = "L_f = 0 (the data term is a dual block)"

    def images(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        return ()

    def gradient(self, x: np.ndarray, images):
        return np.zeros_like(x), np.zeros(x.shape[0])

    def objective(self, x: np.ndarray, images) -> np.ndarray:
        return np.zeros(x.shape[0])


def _gap(duality, blocks, x, images, y, Lx, adjoint_terms, grad) -> np.ndarray:
    """Relative duality-gap bound per problem at x = u₀ (``fidelity="bregman"``).

    The data dual: the dual block's y₀ (q = y₀ + f, in the range of prox_{σΦ}) with Aᵀy₀ from
    its adjoint term, or, with the data term in the smooth part, λ = σ(A u₀ + β) − f with
    Aᵀλ = ∇f (q = σ(A u₀ + β)). The TV multipliers: the composite blocks' y_i.
    """
    energy = duality.energy
    tv_dual = tv_image = None
    composite = [i for i, blk in enumerate(blocks) if isinstance(blk, _Composite)]
    if composite:
        tv_dual = sum(y[i] for i in composite)
        tv_image = Lx[composite[0]]
    if blocks and isinstance(blocks[0], _DataDual):
        x_pre = Lx[0] + energy.beta
        q, At_lambda = y[0] + energy.data, adjoint_terms[0]
    else:
        x_pre = images[0] + energy.beta
        q, At_lambda = energy.activation.prox(x_pre), grad
    return duality.evaluate(x, x_pre, q, At_lambda, tv_dual, tv_image)[2]


def _mu(setup: Setup, mu) -> tuple[float, str]:
    """The Finsler weight μ of the lifted smooth part and a note on the convexity of f."""
    if mu is not None:
        value = float(mu)
        if not np.isfinite(value) or value < 0:
            raise ValueError(f"mu must be a finite number ≥ 0, got {mu!r}")
        return value, f"μ = {value:g} given by the caller: f is convex iff H₀ + μAᵀA ⪰ 0"
    certificate, rho = setup.certificate, float(setup.problem.rho)
    cert_mu = getattr(certificate, "mu", None)
    if setup.certified and cert_mu is not None:
        return float(cert_mu), f"μ = {cert_mu:g} from the certificate: H₀ + μAᵀA ⪰ 0, f convex"
    if setup.certified and getattr(certificate, "method", None) == "paper":
        return rho, f"μ = ρ = {rho:g}: the paper certificate makes E_Ψ^ρ (with ρ) convex"
    return rho, (
        f"no certified μ (H₀ + μAᵀA ⪰ 0 not established); μ = ρ = {rho:g} (the model's own "
        "penalty) is used, f may be non-convex and the method runs as a local method"
    )


def _initial_steps(tau, sigma, half_lf: float, c: float) -> tuple[float, float]:
    """(τ, s) from the user's steps, completed by the condition τ(L_f/2 + s c) = θ.

    Without user steps the start is balanced, τ = s: c τ² + (L_f/2) τ − θ = 0 (τ = θ/(L_f/2)
    without dual blocks, c = 0).
    """
    if tau is not None and sigma is not None:
        return tau, sigma
    if tau is not None:
        s = (THETA / tau - half_lf) / c if c > 0 else 0.0
        if c > 0 and s <= 0:
            raise ValueError(
                f"tau = {tau:g} leaves no admissible dual step: τ·L_f/2 = {tau * half_lf:.3g} "
                f"must be < θ = {THETA}"
            )
        return tau, s
    if sigma is not None:
        return THETA / (half_lf + sigma * c), sigma
    s = (-half_lf + np.sqrt(half_lf**2 + 4 * c * THETA)) / (2 * c) if c > 0 else 0.0
    return THETA / (half_lf + s * c), s


_CONSTRAINT_MODES = ("auto", "eliminate", "dual")


def _constraint_mode(problem, constraint: str):
    """(mode, Elimination or None, stats) for the ``constraint`` option.

    mode is ``"bregman"`` (no lifted constraint), ``"eliminated"`` or ``"dual"``.
    """
    if constraint not in _CONSTRAINT_MODES:
        raise ValueError(f"constraint must be one of {_CONSTRAINT_MODES}, got {constraint!r}")
    if problem.fidelity == "bregman":
        return "bregman", None, {}
    if constraint == "dual":
        return "dual", None, {"constraint": "dual (M u = V z through its multiplier)"}
    try:
        elimination = Elimination(problem.lifted)
    except SolverError:
        if constraint == "eliminate":
            raise
        return "dual", None, {"constraint": "dual (the constraint cannot be eliminated)"}
    return "eliminated", elimination, {"constraint": "eliminated (x = P(u₀, z))"}


def supports(problem) -> str | None:
    """None: PDHG applies to every problem (any fidelity, any J with a splitting view)."""
    return None


def solve(
    problem,
    tol: float = 1e-6,
    max_iter: int | None = None,
    warm_start=None,
    progress: bool = False,
    dtype=np.float64,
    *,
    tau: float | None = None,
    sigma: float | None = None,
    adaptive: bool = True,
    precondition: bool = True,
    mu: float | None = None,
    constraint: str = "auto",
    dualize_data: bool | None = None,
):
    """Solve an :class:`~bregmod.problem.Inversion` with Condat–Vũ primal–dual splitting.

    Iteration x⁺ = prox_{τg}(x − τ(∇f(x) + Lᵀy)), y⁺ = prox_{σh*}(y + σL(2x⁺ − x)) (see the
    module docstring for the splitting of each fidelity). Converges (for a certified problem)
    when τ(L_f/2 + Σ_i σ_i‖L_i‖²) < 1, which the default steps satisfy with margin θ = 0.99;
    stops when the relative primal and dual residuals are ≤ ``tol``.

    Parameters
    ----------
    problem : Inversion
        The problem (any fidelity, any regulariser with a splitting view).
    tol : float
        Bound on the relative objective error (relative duality gap) where the gap is available
        (module docstring), else relative tolerance of the primal and dual residuals.
    max_iter : int, optional
        Iteration limit (default 50 000).
    warm_start : None, array_like, (u, z) or Result
        Starting point (default: forward pass of u₀ = 0), see :mod:`bregmod.solvers._common`.
    progress : bool
        Show a tqdm progress bar.
    dtype : numpy.float64 or numpy.float32
        Floating dtype of the iterates.
    tau : float, optional
        Fixed primal step (disables the adaptive steps). With ``sigma`` also given, both are
        used as they are even if they violate the convergence condition (the violation is
        recorded in ``stats``); alone, σ follows from the condition.
    sigma : float, optional
        Fixed dual step s (σ_i = s ω_i); alone, τ follows from the condition.
    adaptive : bool
        Balance the primal and dual residuals by adapting s (and τ); ignored with fixed steps.
    precondition : bool
        Block-diagonal preconditioning of the dual steps (ω_i = 1/‖L_i‖²).
    mu : float, optional
        ``constraint="dual"`` only: the Finsler weight μ (default ``certificate.mu``).
    constraint : {"auto", "eliminate", "dual"}
        Quadratic fidelity: eliminate M u = V z (``"auto"`` does where the constraint has
        the compiled aligned form, i.e. for every supported architecture) or keep it through
        its multiplier (module docstring).
    dualize_data : bool, optional
        ``fidelity="bregman"`` only: move the data term to a dual block h(A u₀) (prox of h*
        through Ψ's prox, module docstring) instead of the smooth part. Default: True when J
        has a linear-operator part (TV), where it needs 2–3× fewer iterations; else False.

    Returns
    -------
    Result
        ``stats`` holds ``guarantee`` and ``bound`` (what the stop certifies, and the value
        reached), ``step_condition`` (the checked inequality with its value),
        ``step_condition_satisfied``, ``tau``, ``sigma``, ``L_f``, ``constraint`` and, with the
        dual constraint, ``mu`` and ``convexity``.

    Raises
    ------
    ValueError
        Bad arguments (messages name the argument), NaN/Inf in the data.
    DomainError
        Data outside dom Ψ for the Bregman fidelity.
    """
    setup = prepare(
        problem,
        solver="pdhg",
        tol=tol,
        max_iter=max_iter,
        warm_start=warm_start,
        dtype=dtype,
        default_max_iter=DEFAULT_MAX_ITER,
    )
    tau = None if tau is None else positive_scalar(tau, "tau (primal step)")
    sigma = None if sigma is None else positive_scalar(sigma, "sigma (dual step)")
    simple, composites = (None, []) if problem.reg is None else problem.reg.split()
    mode, elimination, stats = _constraint_mode(problem, constraint)
    if mode == "dual":
        mu_value, note = _mu(setup, mu)
        smooth = LiftedSmooth(setup.energy(), mu_value)
        x = np.concatenate([setup.u, setup.z], axis=1)
        prox = ProxPart(setup, simple, problem.lifted.n_u)
        stats.update(mu=mu_value, convexity=note)
    elif mode == "eliminated":
        smooth = ReducedSmooth(setup.energy(), elimination)
        x = np.concatenate([setup.u0, setup.z], axis=1)
        prox = ProxPart(setup, simple, elimination.n0)
    else:
        smooth = setup.energy()
        x = setup.u0.copy()
        prox = ProxPart(setup, simple, None)
    dual_constraint = mode == "dual"
    blocks = [_Composite(w, L, g, setup.u0_slice, setup.dtype) for w, L, g in composites]
    if dualize_data is None:
        dualize_data = bool(composites) and mode == "bregman"
    if dualize_data and mode != "bregman":
        raise ValueError(
            "dualize_data=True needs fidelity='bregman' (the quadratic-fidelity data term is "
            "part of the lifted smooth part)"
        )
    if dualize_data:
        blocks.insert(0, _DataDual(smooth))
        smooth = _NoSmooth()
    norms_sq = [blk.norm_sq for blk in blocks]
    if dual_constraint:
        lifted = problem.lifted
        norms_sq.insert(0, lifted.M.norm_bound() ** 2 + lifted.V.norm_bound() ** 2)
    weights = [1.0 / n if precondition and n > 0 else 1.0 for n in norms_sq]
    c = sum(w * n for w, n in zip(weights, norms_sq, strict=True))
    half_lf = 0.5 * smooth.lipschitz

    fixed = tau is not None or sigma is not None or not adaptive or c == 0
    tau, s = _initial_steps(tau, sigma, half_lf, c)
    worst_condition = tau * (half_lf + s * c)
    stats.update(L_f=smooth.lipschitz, lipschitz=smooth.lipschitz_note)

    # Matrix–vector products: one BLAS thread unless batched and large (bregmod.solvers._threads).
    with blas_threads(2.0 * setup.batch * float(np.prod(problem.lifted.W.shape))) as threads:
        duality, no_gap = (None, "the gap is implemented for fidelity='bregman' only")
        if mode == "bregman":
            duality, no_gap = DualityGap.of(setup.energy(), simple, composites)
        bound, evaluated_at = np.full(setup.batch, np.inf), 0
        monitor = Monitor(setup, progress, criterion="gap" if duality else "residuals")
        images = smooth.images(x)
        y = [np.zeros((setup.batch, blk.L.shape[0]), dtype=setup.dtype) for blk in blocks]
        Ly = [blk.apply(x) for blk in blocks]
        if dual_constraint:
            a = images[2] - images[3]
            y0 = np.zeros_like(a)
            grad, _ = smooth.gradient(x, images, y0)
        else:
            grad, _ = smooth.gradient(x, images)

        def adjoint_sum(duals):
            """(Σ_i L_iᵀ y_i, max_i ‖L_iᵀ y_i‖, [L_iᵀ y_i]): the terms may cancel at a solution."""
            out, scale, terms = np.zeros_like(x), np.zeros(x.shape[0]), []
            for blk, yi in zip(blocks, duals, strict=True):
                terms.append(blk.adjoint_into(yi, out))
                scale = np.maximum(scale, batch_norm(terms[-1]))
            return out, scale, terms

        LTy = adjoint_sum(y)[0]
        alpha = _ALPHA0
        # Below s_floor, τ is within 10 % of its cap 2θ/L_f: a smaller s no longer helps the primal.
        s_floor = min(s, (1 / 0.9 - 1) * half_lf / c) if c > 0 else 0.0
        for k in range(1, setup.max_iter + 1):
            direction = grad + LTy
            v = x - tau * direction
            if not all_finite(v):
                monitor.non_finite(k, "primal iterate")
                break
            x_new = prox.prox(v, tau)
            images_new = smooth.images(x_new)
            if not all_finite(*images_new):
                monitor.non_finite(k, "operator images of the primal iterate")
                break
            sigmas = [s * w for w in weights]
            dual_res_sq = np.zeros(setup.batch)
            dual_scale = np.zeros(setup.batch)
            if dual_constraint:
                Mu, Vz = images_new[2], images_new[3]
                a_new = Mu - Vz
                y0 = y0 + sigmas[0] * (2 * a_new - a)
                dual_res_sq += batch_norm(a_new) ** 2
                dual_scale = np.maximum(batch_norm(Mu), batch_norm(Vz))
                a = a_new
            y_new, Ly_new = [], []
            for i, blk in enumerate(blocks):
                sig = sigmas[i + int(dual_constraint)]
                Lx_new = blk.apply(x_new)
                ascent = y[i] + sig * (2 * Lx_new - Ly[i])
                yi = blk.prox_conj(ascent, sig)
                dual_res_sq += batch_norm((y[i] - yi) / sig + Lx_new - Ly[i]) ** 2
                dual_scale = np.maximum.reduce(
                    [dual_scale, batch_norm(Lx_new), batch_norm((ascent - yi) / sig)]
                )
                y_new.append(yi)
                Ly_new.append(Lx_new)
            grad_new, grad_scale = (
                smooth.gradient(x_new, images_new, y0)
                if dual_constraint
                else smooth.gradient(x_new, images_new)
            )
            LTy_new, adjoint_scale, adjoint_terms = adjoint_sum(y_new)
            step_term = (x - x_new) / tau
            p = step_term + (grad_new + LTy_new) - direction
            primal = relative_residual(
                batch_norm(p), grad_scale, adjoint_scale, batch_norm(step_term - direction)
            )
            # Without dual blocks there is no dual variable and no dual residual.
            dual = (
                relative_residual(np.sqrt(dual_res_sq), dual_scale)
                if dual_constraint or blocks
                else None
            )
            objective = (
                float(np.sum(smooth.objective(x_new, images_new)))
                + prox.total(x_new)
                + sum(blk.value(Lx) for blk, Lx in zip(blocks, Ly_new, strict=True))
            )
            if duality is not None and (
                k % _GAP_EVERY == 1 or bound.max() <= _GAP_NEAR * setup.tol or k == setup.max_iter
            ):
                bound = _gap(
                    duality, blocks, x_new, images_new, y_new, Ly_new, adjoint_terms, grad_new
                )
                evaluated_at = k
            stop = monitor.record(
                k,
                primal_residual=primal,
                dual_residual=dual,
                objective=objective,
                gap=bound if duality is not None else None,
                tau=tau,
            )
            if monitor.diverged:
                break
            x, images, grad, LTy, y, Ly = x_new, images_new, grad_new, LTy_new, y_new, Ly_new
            if stop:
                break
            if not fixed:
                # adaptive ⇒ c > 0 ⇒ dual blocks
                rp, rd = float(np.max(primal)), float(np.max(dual))
                if rp > _DELTA * rd and s > s_floor:
                    s = max(s * (1 - alpha), s_floor)
                elif rd > _DELTA * rp:
                    s /= 1 - alpha
                else:
                    continue
                alpha *= _ETA
                tau = THETA / (half_lf + s * c)
                worst_condition = max(worst_condition, tau * (half_lf + s * c))
    satisfied = worst_condition <= THETA * (1 + 1e-12)
    stats.update(guarantee(monitor, duality, no_gap, bound, evaluated_at))
    stats.update(
        tau=tau,
        sigma=[s * w for w in weights],
        step_condition=(
            f"τ(L_f/2 + Σ_i σ_i‖L_i‖²) ≤ θ = {THETA}: {worst_condition:.6g} "
            + ("≤" if satisfied else ">")
            + f" {THETA}"
            + ("" if satisfied else " — NOT satisfied (user-supplied steps): no guarantee")
        ),
        step_condition_satisfied=satisfied,
        adaptive=not fixed,
        precondition=precondition,
        dualize_data=dualize_data,
        blas_threads=threads,
    )
    if mode == "bregman":
        return finish(setup, monitor, u0=x, stats=stats)
    if mode == "eliminated":
        x = elimination.apply(x)
    n_u = problem.lifted.n_u
    return finish(setup, monitor, u=x[:, :n_u], z=x[:, n_u:], stats=stats)
