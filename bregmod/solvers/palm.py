"""PALM: proximal alternating linearised minimisation for deep lifted Bregman inversion.

The problem (docs/math/deep.md) is, for a feed-forward chain of ``Dense``/``Conv2d`` layers,

    min_{u, x_1, …, x_{L−1}}  Σ_{l=1}^{L} γ_l B_{Ψ_l}(x_l, W_l x_{l−1} + b_l) + J(u),
    x_0 = u,  x_L = f^δ,

with the energy and its layer weights γ_l (``Inversion(..., layer_weights=…)``, default all 1)
read from :class:`bregmod.model.deep.DeepBregman`. It is convex in each block
given the others but not jointly, so this is a local method (Bolte, Sabach & Teboulle 2014):
one sweep updates the blocks x_0 = u, x_1, …, x_{L−1} in turn (Gauss–Seidel) by a proximal
gradient step on the block's smooth part h_k (no σ′ needed),

    x_k ← prox_{μ_k p_k}(x_k − μ_k ∇h_k(x_k)),
    ∇h_k(x_k) = γ_{k+1} W_{k+1}ᵀ(σ_{k+1}(W_{k+1} x_k + b_{k+1}) − x_{k+1})
                − [k ≥ 1] γ_k (W_k x_{k−1} + b_k),

with p_0 = J and p_k = γ_k Φ_k, Φ_k = ½‖·‖² + Ψ_k (prox_{μγΦ}(v) = prox_{tΨ}(v/(1 + μγ)),
t = μγ/(1 + μγ)).

Steps. μ_k starts at 1/(γ_{k+1}‖W_{k+1}‖²) (the operators' ``norm_bound()``, a Lipschitz
constant of ∇h_k) and is adapted by backtracking on the descent inequality
h_k(x⁺) ≤ h_k(x) + ⟨∇h_k(x), x⁺ − x⟩ + ‖x⁺ − x‖²/(2μ_k), tested through the Bregman terms
themselves (γ_{k+1}(B(y, q⁺) − B(y, q) − ⟨σ(q) − y, q⁺ − q⟩) ≤ ‖x⁺ − x‖²/(2μ_k),
q = W_{k+1} x + b); an accepted step is tried 1.5× larger next sweep, a rejected one halved but
never below 1/(γ_{k+1}‖W_{k+1}‖²), where the inequality holds by the Lipschitz bound (a failed
test there is rounding, and the step is taken). Each accepted block step with an exact prox
decreases E_γ + J by at least ‖x⁺ − x‖²/(2μ_k), so the energy is monotone (recorded every
sweep; ``stats["energy_increases"]`` counts the sweeps where it was not).

The input block and J. Where J has a closed-form prox (none, ½‖·‖², ℓ1, box, their weighted
sums) it is used exactly. A J with composite terms (total variation: J = simple + Σ w g(L u),
``reg.split()``) gets prox_{μJ} from a dual FISTA on the composite terms, warm-started from
the previous call's dual variables (rescaled by μ⁺/μ when the step changes, since the dual
feasible set is μ·w·(unit ball of the dual norm of g)) and stopped by its duality gap G, which
certifies e = √(2G) ≥ ‖u⁺ − û‖, û = prox_{μJ}(v). The stopping rule is a relative error rule
(Attouch, Bolte & Svaiter 2013): e ≤ c‖u⁺ − u‖ with c = :data:`RELATIVE_PROX_ERROR` = ¼, or
e ≤ a tenth of tol relative to ‖v‖ (the floor, reached near stationarity). Since
½‖u⁺ − v‖² + μJ(u⁺) exceeds its minimum by at most G and the minimum is at most
½‖u − v‖² + μJ(u) − ½‖u − û‖² (strong convexity), the input step decreases E_γ + J by at least
(‖u − û‖² − e²)/(2μ_0) ≥ ‖u⁺ − u‖²/(4μ_0) under the relative rule (‖u − û‖ ≥ ¾‖u⁺ − u‖); at
the floor the energy can rise by at most e²/(2μ_0). The outer functions g must be norms (g* an
indicator), as every bregmod composite is.

Stopping rule: a bound on dist(0, ∂(E_γ + J)) at the new point. From the prox optimality
condition of each block step,
A_k = (x_k − x_k⁺)/μ_k + γ_{k+1} W_{k+1}ᵀ(σ(q⁺) − σ(q) − (x_{k+1}⁺ − x_{k+1}))
lies in ∂_{x_k}(E_γ + J) at the end of the sweep, and
‖A_k‖ ≤ ‖x_k − x_k⁺‖/μ_k + γ_{k+1}‖W_{k+1}‖ ‖σ(q⁺) − σ(q) − (x_{k+1}⁺ − x_{k+1})‖ (+ e/μ_0
on the input block: with the inexact prox, (v − u⁺)/μ_0 is a G/μ_0-subgradient of J at u⁺,
the dual iterate being feasible, and e/μ_0 bounds its distance to (v − û)/μ_0 ∈ ∂J(û)).
The run stops when ‖A_k‖ relative to the size of the terms
of block k's optimality condition (γ_k‖W_k x_{k−1} + b_k‖, γ_{k+1}‖W_{k+1}‖ ‖x_{k+1}‖) is ≤ tol
for every block:
``primal_residual`` is the worst hidden block, ``dual_residual`` the input block. On a problem
that is not certified convex this is a stationary point, and ``Inversion.make_result``
reports it as ``"stationary"``.

Initialisation (``init=``): ``"layerwise"`` (default) solves the one-layer inversions from
the data backwards, x_{L−1} ≈ argmin_x B_{Ψ_L}(f, W_L x + b_L) + εΦ_{L−1}(x), …, and
u ≈ argmin_u γ_1 B_{Ψ_1}(x_1, W_1 u + b_1) + J(u), each by accelerated proximal gradient steps
(at most :data:`LAYERWISE_STEPS`, fewer once a step moves the state by less than
:data:`LAYERWISE_RTOL` relative); ``"forward"`` takes the forward pass of the warm start u₀
(zero by default); a lifted warm start (a previous Result or ``(u, z)``) restarts from its
states.

Layer weights and continuation. With γ_l = 1 the hidden states can absorb noise and model
error cheaply, and the minimiser of the lifted energy can be worse than the reduced problem's
(docs/math/deep.md, "Layer weights"). :func:`continuation` solves E_γ for an increasing
sequence of hidden weights γ (γ_l = γ for l < L, γ_L = 1), each stage warm-started from the
previous one's states: a penalty continuation in the spirit of MAC (Carreira-Perpiñán & Wang
2014), tending to the reduced problem min_u B_{Ψ_L}(f^δ, W_L N_{L−1}(u) + b_L) + J(u) as γ → ∞.
Every block stays convex and needs no σ′; the price is conditioning: the input's step is
1/(γ_1‖W_1‖²), so the sweeps needed grow with γ.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from bregmod.errors import SolverWarning
from bregmod.solvers._common import Monitor, batch_dot, batch_norm, finish, prepare

__all__ = ["DEFAULT_MAX_ITER", "INITS", "NAME", "continuation", "solve", "supports"]

#: The solver's name in the registry.
NAME = "palm"

#: Iteration (sweep) limit when ``max_iter`` is None.
DEFAULT_MAX_ITER = 20_000
#: The initialisations ``solve`` accepts.
INITS = ("layerwise", "forward")
#: Proximal gradient steps per layer of the ``"layerwise"`` initialisation, at most; a layer
#: stops earlier once a step moves its state by less than LAYERWISE_RTOL relative.
LAYERWISE_STEPS = 200
LAYERWISE_RTOL = 1e-6
#: Weight ε of Φ_l in the hidden one-layer inversions of the ``"layerwise"`` initialisation
#: (keeps them well-posed and x_l in dom Ψ_l).
LAYERWISE_EPSILON = 1e-6
#: Growth of an accepted step for the next sweep, and shrink factor on a failed descent test.
STEP_GROWTH, STEP_SHRINK = 1.5, 0.5
#: Inner dual iterations per prox of a composite J, at most.
INNER_MAX_ITER = 5_000
#: Relative error rule of the inexact input prox: ‖u⁺ − prox‖ ≤ c‖u⁺ − u‖ with this c (< ½;
#: ¼ keeps a decrease of ‖u⁺ − u‖²/(4μ) per input step, module docstring).
RELATIVE_PROX_ERROR = 0.25


def supports(problem) -> str | None:
    """None when PALM applies to ``problem``, else the reason.

    PALM solves the deep lifted Bregman model: ``fidelity="bregman"`` with a feed-forward chain
    of at least two ``Dense``/``Conv2d`` layers (one layer is the convex one-layer model, for
    which fista/admm/cvxpy are the right solvers).
    """
    if getattr(problem, "deep", None) is None:
        return (
            "palm solves the deep lifted Bregman model (fidelity='bregman' with a feed-forward "
            "Sequential of two or more Dense/Conv2d layers)"
        )
    return None


class InputProx:
    """prox_{τJ} on rows of inputs, exact or by a warm-started, gap-certified dual FISTA.

    Parameters
    ----------
    reg : Regularizer or None
        J (with its weight).
    batch : int
        Number of rows.
    dtype : numpy dtype
        Floating dtype of the iterates.
    """

    def __init__(self, reg, batch: int, dtype) -> None:
        self.reg = reg
        self.dtype = np.dtype(dtype)
        if reg is None:
            self.simple, self.composites = None, []
        else:
            self.simple, self.composites = reg.split()
        self.duals: list[np.ndarray | None] = [None] * len(self.composites)
        self.dual_step = (
            1.0 / sum(L.norm_bound() ** 2 for _, L, _ in self.composites)
            if self.composites
            else None
        )
        self.tau: float | None = None
        self.inner_iterations = 0

    @property
    def exact(self) -> bool:
        """Whether prox_{τJ} is computed in closed form."""
        return not self.composites

    def values(self, U: np.ndarray) -> np.ndarray:
        """J of each row of U (B, n) → (B,)."""
        if self.reg is None:
            return np.zeros(U.shape[0])
        if self.reg.shape is None:
            return np.array([self.reg(row) for row in U], dtype=np.float64)
        return np.atleast_1d(self.reg(U.reshape(U.shape[0], *self.reg.shape)))

    def _simple_prox(self, V: np.ndarray, tau: float) -> np.ndarray:
        if self.simple is None:
            return V
        return np.asarray(self.simple.prox(V, tau), dtype=self.dtype)

    def __call__(self, V: np.ndarray, tau: float, accuracy: np.ndarray,
                 anchor: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(U, e): U ≈ prox_{τJ}(V) row-wise with ‖U_i − prox_{τJ}(V_i)‖ ≤ e_i (e = 0 for the
        closed forms).

        e_i ≤ accuracy_i (one entry per row), or, given the block's current point ``anchor``,
        e_i ≤ max(accuracy_i, :data:`RELATIVE_PROX_ERROR`·‖U_i − anchor_i‖): the relative
        error rule that keeps the PALM step a descent step (module docstring).
        """
        if self.exact:
            return self._simple_prox(V, tau), np.zeros(V.shape[0])
        return self._dual_fista(V, tau, accuracy, anchor)

    def _dual_fista(self, V, tau, accuracy, anchor):
        # Dual of min_u ½‖u − v‖² + τ s(u) + Σ_k τ w_k g_k(L_k u):
        # u(q) = prox_{τs}(v − Σ L_kᵀ q_k), q_k ∈ τ w_k · (unit ball of g_k*); gradient ascent
        # in q with step 1/Σ‖L_k‖²; gap G = Σ τ w_k g_k(L_k u) − ⟨q_k, L_k u⟩ ≥ ½‖u − u*‖².
        # Without s, u(q) is affine in q, so L_k u at the extrapolated point is the same
        # combination of the L_k u(q) as the point of the q: one L and one Lᵀ per iteration.
        radii = [tau * w for w, _, _ in self.composites]
        if self.tau is not None and self.tau != tau:
            # the dual feasible sets scale with τ: keep the warm start feasible
            self.duals = [None if q is None else q * (tau / self.tau) for q in self.duals]
        self.tau = tau
        Q = [
            np.zeros((V.shape[0], L.shape[0]), dtype=self.dtype) if q is None else q
            for q, (_, L, _) in zip(self.duals, self.composites, strict=True)
        ]
        affine = self.simple is None

        def primal(duals):
            shift = sum(L.apply_adjoint(q) for q, (_, L, _) in zip(duals, self.composites,
                                                                    strict=True))
            return self._simple_prox(V - shift, tau)

        def images(U):
            return [L.apply(U) for _, L, _ in self.composites]

        floor = 0.5 * np.asarray(accuracy, dtype=np.float64) ** 2
        U = primal(Q)
        LU = images(U)
        Y, LU_Y, momentum = Q, LU, 1.0
        gap = np.full(V.shape[0], np.inf)
        for _ in range(INNER_MAX_ITER):
            if not affine and Y is not Q:
                LU_Y = images(primal(Y))
            Q_next = []
            for y, ly, r, (_, _, g) in zip(Y, LU_Y, radii, self.composites, strict=True):
                Q_next.append(r * g.prox_conj((y + self.dual_step * ly) / r, self.dual_step / r))
            U_next = primal(Q_next)
            LU_next = images(U_next)
            gap = np.zeros(V.shape[0])
            for q, lu, r, (_, _, g) in zip(Q_next, LU_next, radii, self.composites, strict=True):
                gap += r * np.atleast_1d(g(lu)) - batch_dot(q, lu)
            self.inner_iterations += 1
            momentum_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * momentum**2))
            restart = sum(
                float(np.sum((y - qn) * (qn - q))) for y, qn, q in zip(Y, Q_next, Q, strict=True)
            ) > 0
            beta = 0.0 if restart else (momentum - 1.0) / momentum_next
            if beta == 0.0:
                Y, LU_Y = Q_next, LU_next
            else:
                Y = [qn + beta * (qn - q) for qn, q in zip(Q_next, Q, strict=True)]
                LU_Y = [ln + beta * (ln - lq) for ln, lq in zip(LU_next, LU, strict=True)]
            Q, U, LU, momentum = Q_next, U_next, LU_next, 1.0 if restart else momentum_next
            target = floor
            if anchor is not None:
                target = np.maximum(floor, 0.5 * (RELATIVE_PROX_ERROR
                                                  * batch_norm(U - anchor)) ** 2)
            if (gap <= target).all():
                break
        self.duals = Q
        return U, np.sqrt(2.0 * np.maximum(gap, 0.0))


class _Chain:
    """The state of one PALM run: states, pre-activations and Bregman terms, kept consistent.

    ``x[k]`` (B, n_k) for k = 0…L (x_L = f fixed), ``pre[l]`` = W_l x_{l−1} + b_l and
    ``terms[l]`` = B_{Ψ_l}(x_l, pre[l]) per row for l = 1…L (index 0 unused).
    """

    def __init__(self, model, states: list[np.ndarray]) -> None:
        self.model = model
        self.x = states
        self.pre = [None] + [
            model.preactivation(l, states[l - 1]) for l in range(1, model.depth + 1)
        ]
        self.terms = [None] + [self.term(l, states[l], self.pre[l]) for l in
                               range(1, model.depth + 1)]

    def term(self, l: int, y: np.ndarray, pre: np.ndarray) -> np.ndarray:
        values = self.model.activation(l).bregman_terms(y, pre)
        return values.reshape(y.shape[0], -1).sum(axis=1)

    def energy(self) -> np.ndarray:
        """E_γ = Σ_l γ_l B_l per row (without J)."""
        weighted = [g * t for g, t in zip(self.model.weights, self.terms[1:], strict=True)]
        return np.sum(weighted, axis=0)


def _initial_states(model, data: np.ndarray, u0: np.ndarray, init: str, input_prox,
                    dtype) -> list[np.ndarray]:
    """States x_0, …, x_{L−1}, f for ``init`` (see the module docstring)."""
    L = model.depth
    if init == "forward":
        states = model.forward(u0.astype(dtype, copy=False))
        states[L] = data
        return states
    # layerwise: one-layer inversions from the data backwards, accelerated prox-gradient
    states = [None] * (L + 1)
    states[L] = data
    for k in range(L - 1, -1, -1):
        op = model.operator(k + 1)
        activation = model.activation(k + 1)
        bias = model.bias(k + 1).astype(dtype)
        gamma = model.weights[k]
        step = 1.0 / model.state_lipschitz(k)
        if k == 0:
            x = u0.astype(dtype, copy=True)
        else:
            x = np.zeros((data.shape[0], model.sizes[k]), dtype=dtype)
            x = model.prox_phi(k, x, 1.0)  # a point of dom Ψ_k
        y, t = x, 1.0
        for _ in range(LAYERWISE_STEPS):
            pre = op.apply(y) + bias
            grad = gamma * op.apply_adjoint(
                np.asarray(activation.prox(pre), dtype=dtype) - states[k + 1]
            )
            if k == 0:
                x_next, _ = input_prox(y - step * grad, step, np.full(y.shape[0], 1e-3 *
                                       max(1.0, float(np.abs(y).max()))))
            else:
                x_next = model.prox_phi(k, y - step * grad, gamma * step * LAYERWISE_EPSILON)
            t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
            y = x_next + ((t - 1.0) / t_next) * (x_next - x)
            if k > 0:  # the extrapolation may leave dom Ψ_k (e.g. x < 0 for ReLU)
                y = model.prox_phi(k, y, 1e-12) if not _in_domain(model, k, y) else y
            settled = np.all(batch_norm(x_next - x) <= LAYERWISE_RTOL * batch_norm(x_next))
            x, t = x_next, t_next
            if settled:
                break
        states[k] = x
    return states


def _in_domain(model, k: int, x: np.ndarray) -> bool:
    return bool(np.all(model.activation(k).domain.contains(x)))


def solve(
    problem,
    tol: float = 1e-6,
    max_iter: int | None = None,
    warm_start=None,
    progress: bool = False,
    dtype=np.float64,
    *,
    init: str = "layerwise",
):
    """Solve the deep lifted Bregman inversion by PALM (see the module docstring).

    Parameters
    ----------
    problem : Inversion
        ``fidelity="bregman"`` with a feed-forward chain of two or more Dense/Conv2d layers.
    tol : float
        Relative stationarity tolerance (every block).
    max_iter : int, optional
        Sweep limit (default :data:`DEFAULT_MAX_ITER`).
    warm_start : None, array_like, (u, z) or Result
        An input u₀ (used by ``init``), or a lifted point whose states restart the run.
    progress : bool
        tqdm progress bar.
    dtype : numpy.float64 or numpy.float32
        Floating dtype of the iterates.
    init : {"layerwise", "forward"}
        Initialisation when ``warm_start`` is not a lifted point.

    Returns
    -------
    Result
        ``"stationary"`` (or ``"optimal"`` on a certified problem) when the stationarity
        bound is ≤ tol, ``"max_iter"`` otherwise; ``stats`` holds the steps, the inner
        iterations of the input prox and the initialisation.

    Raises
    ------
    ValueError
        The problem is not a deep Bregman problem, or an unknown ``init``.
    """
    reason = supports(problem)
    if reason is not None:
        raise ValueError(reason)
    if init not in INITS:
        raise ValueError(f"unknown init {init!r}; choose one of {INITS}")
    model = problem.deep
    setup = prepare(problem, solver="palm", tol=tol, max_iter=max_iter, warm_start=warm_start,
                    dtype=dtype, default_max_iter=DEFAULT_MAX_ITER)
    dt = setup.dtype
    data = setup.data
    input_prox = InputProx(problem.reg, setup.batch, dt)
    lifted_start = warm_start is not None and (
        isinstance(warm_start, tuple) or hasattr(warm_start, "u")
    )
    if lifted_start:
        states = problem._deep_states(setup.u, data)
        init_used = "warm start (lifted point)"
    else:
        states = _initial_states(model, data, setup.u0, init, input_prox, dt)
        init_used = init
    chain = _Chain(model, [np.array(s, dtype=dt) for s in states])
    L = model.depth
    gammas = model.weights
    norms = [model.operator(l).norm_bound() for l in range(1, L + 1)]
    safe = [1.0 / model.state_lipschitz(k) for k in range(L)]
    steps = list(safe)
    monitor = Monitor(setup, progress=progress)
    objective = chain.energy() + input_prox.values(chain.x[0])
    backtracks = 0
    energy_increases = 0
    while True:
        iteration = monitor.iterations + 1
        previous = list(chain.x)
        moves: list[np.ndarray] = []
        sigma_moves: list[np.ndarray] = []
        prox_error = np.zeros(setup.batch)
        for k in range(L):
            x = chain.x[k]
            q, y = chain.pre[k + 1], chain.x[k + 1]
            activation = model.activation(k + 1)
            sigma_q = np.asarray(activation.prox(q), dtype=dt)
            residual = sigma_q - y
            grad = gammas[k] * model.operator(k + 1).apply_adjoint(residual)
            if k >= 1:
                grad = grad - gammas[k - 1] * chain.pre[k]
            while True:
                mu = steps[k]
                v = x - mu * grad
                if k == 0:
                    floor = 0.1 * setup.tol * batch_norm(v)
                    x_new, prox_error = input_prox(v, mu, floor, anchor=x)
                else:
                    x_new = model.prox_phi(k, v, gammas[k - 1] * mu)
                move = x_new - x
                q_new = model.preactivation(k + 1, x_new)
                term_new = chain.term(k + 1, y, q_new)
                lhs = gammas[k] * (term_new - chain.terms[k + 1] - batch_dot(residual, q_new - q))
                rhs = batch_dot(move, move) / (2.0 * mu)
                # Steps up to the Lipschitz step 1/‖W‖² descend by theory (a failed test there
                # is rounding); larger ones must pass the test.
                if mu <= safe[k] or np.all(lhs <= rhs):
                    break
                steps[k] = max(mu * STEP_SHRINK, safe[k])
                backtracks += 1
            chain.x[k] = x_new
            chain.pre[k + 1] = q_new
            chain.terms[k + 1] = term_new
            if k >= 1:
                chain.terms[k] = chain.term(k, x_new, chain.pre[k])
            moves.append(batch_norm(move) / mu)
            sigma_moves.append(np.asarray(activation.prox(q_new), dtype=dt) - sigma_q)
            if k == 0:
                moves[0] = moves[0] + prox_error / mu
            steps[k] = mu * STEP_GROWTH
        # stationarity bound per block (the module docstring)
        bounds = []
        scales = []
        for k in range(L):
            coupling = sigma_moves[k]
            if k + 1 < L:
                coupling = coupling - (chain.x[k + 1] - previous[k + 1])
            bounds.append(moves[k] + gammas[k] * norms[k] * batch_norm(coupling))
        # scales: the terms of each block's optimality condition
        for k in range(L):
            terms = [gammas[k] * norms[k] * batch_norm(chain.x[k + 1])]
            if k >= 1:
                terms.append(gammas[k - 1] * batch_norm(chain.pre[k]))
            scales.append(np.maximum.reduce(terms))
        relative = [b / np.maximum(s, 1e-12) for b, s in zip(bounds, scales, strict=True)]
        new_objective = chain.energy() + input_prox.values(chain.x[0])
        increase = new_objective - objective
        if np.any(increase > 1e-10 * np.maximum(1.0, np.abs(objective))):
            energy_increases += 1
        objective = new_objective
        hidden = np.max(relative[1:], axis=0) if L > 1 else np.zeros(setup.batch)
        if monitor.record(iteration, primal_residual=hidden, dual_residual=relative[0],
                          objective=objective):
            break
    u, z = problem._deep_lifted(chain.x)
    return finish(
        setup,
        monitor,
        u=u,
        z=z,
        stats={
            "init": init_used,
            "steps": [float(s / STEP_GROWTH) for s in steps],
            "norm_bounds": norms,
            "backtracks": backtracks,
            "inner_iterations": input_prox.inner_iterations,
            "input_prox": "closed form" if input_prox.exact else "dual FISTA (gap-certified)",
            "energy_increases": energy_increases,
        },
    )


def continuation(
    problem,
    weights: Sequence[float],
    tol: float | Sequence[float] = 1e-6,
    max_iter: int | None = None,
    warm_start=None,
    progress: bool = False,
    dtype=np.float64,
    *,
    init: str = "layerwise",
):
    """PALM along a path of layer weights: solve E_γ for γ = ``weights[0]``, ``weights[1]``, …
    in turn, each stage warm-started from the previous stage's states.

    E_γ = Σ_{l<L} γ B_{Ψ_l}(x_l, W_l x_{l−1} + b_l) + B_{Ψ_L}(f^δ, W_L x_{L−1} + b_L) + J(u)
    (``problem.with_layer_weights(γ)``); a number γ weights the hidden terms, a sequence gives
    every γ_l. As γ → ∞ the hidden states are forced onto the forward pass and E_γ tends to
    the reduced problem min_u B_{Ψ_L}(f^δ, W_L N_{L−1}(u) + b_L) + J(u) (module docstring).

    Parameters
    ----------
    problem : Inversion
        A deep lifted Bregman problem (its own ``layer_weights`` are replaced by each stage's).
    weights : sequence of (float or sequence of float)
        The stages' ``layer_weights``, at least one, typically increasing (e.g. (10, 100)).
    tol : float or sequence of float
        As for :func:`solve`: one tolerance for every stage, or one per stage. The stopping
        rule is relative to the block terms, which grow with γ while the reduced problem's
        gradient does not, so a later stage needs a smaller tol for the same accuracy in u
        (e.g. tol ∝ 1/γ).
    max_iter, progress, dtype, init
        As for :func:`solve`, for every stage (``init`` for the first one only; later stages
        start from the previous stage's states).
    warm_start : None, array_like, (u, z) or Result
        The first stage's start (as for :func:`solve`).

    Returns
    -------
    Result
        The last stage's result: a point of E_γ for the last γ (its ``objective``, status and
        certificate are that problem's: ``"optimal"`` only when the weighted energy is
        certified convex, which large γ usually prevents, else at best ``"stationary"``).
        ``stats["continuation"]`` lists every stage: its ``layer_weights``, tol, sweeps,
        status, objective (summed over a batch) and wall time.

    Raises
    ------
    ValueError
        An empty ``weights``, a weight that is not a finite positive number, a ``tol`` list of
        another length, or a problem that is not a deep Bregman problem.
    """
    weights = list(weights)
    if not weights:
        raise ValueError("continuation needs at least one stage in weights, e.g. (10, 100)")
    tols = [tol] * len(weights) if np.ndim(tol) == 0 else list(tol)
    if len(tols) != len(weights):
        raise ValueError(f"continuation: {len(tols)} tolerances for {len(weights)} stages; give "
                         "one tol or one per stage")
    reason = supports(problem)
    if reason is not None:
        raise ValueError(reason)
    stages = [problem.with_layer_weights(gamma) for gamma in weights]
    path = []
    result = warm_start
    for k, (stage, stage_tol) in enumerate(zip(stages, tols, strict=True)):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = solve(stage, tol=stage_tol, max_iter=max_iter, warm_start=result,
                           progress=progress, dtype=dtype, init=init)
        for warning in caught:
            # an intermediate stationary stage is the path working; everything else is shown
            if not (k + 1 < len(stages) and result.status == "stationary"
                    and issubclass(warning.category, SolverWarning)):
                warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                       warning.lineno)
        path.append({
            "layer_weights": list(stage.deep.weights),
            "tol": float(stage_tol),
            "iterations": result.iterations,
            "status": result.status,
            "objective": float(np.sum(result.objective)),
            "wall_time": result.wall_time,
        })
    result.stats["continuation"] = path
    return result
