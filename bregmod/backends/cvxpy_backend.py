"""Exact solves with CVXPY: the certified model in DCP form (docs/math/certificates.md,
docs/math/error-estimate.md).

``fidelity="quadratic"``. With x = (u, z), the quadratic terms of the lifted model are
½ xᵀHx with H = [[λKᵀK + αE₀, −Wᵀ], [−W, D]] (D = I: the ½‖z‖² inside Φ = ½‖·‖² + Ψ;
α = J's strong-convexity modulus, E₀ the identity on u₀: the α/2‖u₀‖² of J), and on the
constraint set A x = 0, A = [M, −V] (where the ρ-penalty vanishes) the model is

    ½ xᵀHx + λ⟨K u, c − f⟩ + λ/2 ‖c − f‖² − ⟨b, z⟩ + Σ_k Ψ_k(z_k) + Σ_k Φ_k*((W u + b)_k)
    + (J − α/2‖·‖²)(u₀).

The certificate (``Inversion.certify("exact")``) counts the same α in H₀, so H is the form it
certifies, and J enters only through its remainder ``Regularizer.cvx_remainder``: α is counted
once (a problem certified only thanks to α is solved as the convex problem it is).

The exact certificate says H ⪰ 0 on ker A. With N an orthonormal basis of ker A and
NᵀHN = QΘQᵀ (Θ clipped at 0), the quadratic is written ½‖L x‖², L = Θ^{1/2} Qᵀ Nᵀ, which
equals ½ xᵀHx on ker A. This is the factorisation H₀ + μAᵀA = LᵀL of docs/math/certificates.md,
with the μ-term replaced by the projection onto ker A: no μ to choose, no ill-conditioning
from a large μ, and valid also when no finite μ exists (``Certificate.mu is None``).

Which Ψ terms are DCP. Activations give DCP forms of Φ (``cvx_phi``) and Φ* (``cvx_phi_conj``),
but Ψ alone is DCP only for some of them (ReLU: ι_{≥0}; not tanh, whose
Ψ(u) = ½[(1+u)log(1+u) + (1−u)log(1−u)] − u²/2 is a difference of convex terms). A block whose
activation offers ``cvx_psi`` (Ψ alone) keeps D_k = I; any other block takes its ½‖z_k‖² out of
the quadratic (D_k = 0) and uses Φ_k(z_k) = ``cvx_phi``. That needs H ⪰ 0 on ker A with
those D_k = 0, stronger than the certificate; the backend checks it and otherwise refuses with
``NotCertifiedError``, naming the blocks.

``fidelity="bregman"``. B_Ψ(f, A u₀ + β) + J(u₀) = ΣΦ(f) + ΣΦ*(A u₀ + β) − ⟨f, A u₀ + β⟩ + J(u₀),
convex for every layer, with ΣΦ(f) a constant.

Returned points. The solver's point is made exactly feasible before the Result is built: u₀ is
clipped into dom J (its Box terms), z projected onto dom Ψ (``Activation.project_domain``: clip
to the interval; vector activations: projection onto the simplex) and the hidden states are
recomputed from M u = V z with u₀ and z fixed (``LiftedNetwork.states_from``). The
model's value there is compared with CVXPY's; a mismatch beyond √tol · max(1, |value|)
downgrades the status to ``"optimal_inaccurate"`` (with a :class:`~bregmod.errors.SolverWarning`).
Batched data is solved one problem after the other (the data enters as a CVXPY parameter, so
the problem is compiled once) and the results are stacked.
"""

from __future__ import annotations

import time
import warnings
from typing import NamedTuple

import cvxpy as cp
import numpy as np
import scipy.linalg as sla
import scipy.sparse as sp

from bregmod.activations import DCPTerm
from bregmod.certificate import DENSE_LIMIT, Certificate
from bregmod.errors import NoDCPFormError, NotCertifiedError
from bregmod.problem import Inversion, Result
from bregmod.solvers._common import prepare
from bregmod.solvers.registry import worst_status

__all__ = ["DEFAULT_SOLVER", "NAME", "solve", "supports", "to_cvxpy"]

#: The solver's name in the registry (:mod:`bregmod.solvers.registry`).
NAME = "cvxpy"

#: The CVXPY solver used unless ``cvxpy_solver`` names another installed one.
DEFAULT_SOLVER = "CLARABEL"
#: Solver options that receive ``tol`` (other solvers keep their own defaults).
_TOLERANCE_OPTIONS = {
    "CLARABEL": ("tol_gap_abs", "tol_gap_rel", "tol_feas"),
    "SCS": ("eps_abs", "eps_rel"),
}
#: The finest tolerance asked of an interior-point solver (see ``_relative_options``).
_FINEST_TOLERANCE = 1e-10
#: Solver option that receives ``max_iter``.
_MAX_ITER_OPTION = {"CLARABEL": "max_iter", "SCS": "max_iters"}
_STATUS = {
    cp.OPTIMAL: "optimal",
    cp.OPTIMAL_INACCURATE: "optimal_inaccurate",
    cp.USER_LIMIT: "max_iter",
    cp.INFEASIBLE: "infeasible",
    cp.INFEASIBLE_INACCURATE: "infeasible_inaccurate",
    cp.UNBOUNDED: "unbounded",
    cp.UNBOUNDED_INACCURATE: "unbounded_inaccurate",
}


class _Model(NamedTuple):
    """The DCP problem with its data parameters and what is needed to read back a point."""

    problem: cp.Problem
    handles: dict[str, cp.Expression]
    data: cp.Parameter
    constant: cp.Parameter
    u_vars: list[cp.Variable]  # one per u block (only u₀ for the Bregman fidelity)
    z_vars: list[cp.Variable]  # one per z block (none for the Bregman fidelity)
    u: cp.Expression  # stacked u (quadratic) or u₀ flattened (bregman)
    z: cp.Expression | None
    split: dict[str, str]  # "Ψ" or "Φ" per z block (see the module docstring)


def _short(name: str) -> str:
    """``"u1 (layer 1, Residual)"`` ↦ ``"u1"``."""
    return name.split()[0]


def _variable(shape: tuple[int, ...], name: str) -> cp.Variable:
    """A Variable in ``shape``, flattened (C order) beyond two axes (CVXPY's fast path)."""
    return cp.Variable(shape if len(shape) <= 2 else int(np.prod(shape)), name=name)


def _flat(expr: cp.Expression) -> cp.Expression:
    return expr if expr.ndim == 1 else cp.vec(expr, order="C")


def _stack(parts: list[cp.Expression]) -> cp.Expression:
    return parts[0] if len(parts) == 1 else cp.hstack(parts)


def _dcp(term_of, expr, what: str) -> DCPTerm:
    """``term_of(expr)``, re-raising NoDCPFormError with ``what`` and the way out."""
    try:
        return term_of(expr)
    except NoDCPFormError as exc:
        raise NoDCPFormError(
            f"{what}: {exc}; the CVXPY backend cannot write this model, use a first-order "
            "solver (solver='pdhg')"
        ) from None


def _psi_or_phi(activation, z: cp.Expression, what: str) -> tuple[DCPTerm, bool]:
    """DCP term of Ψ(z) alone (True) when the activation has one, else of Φ(z) (False)."""
    cvx_psi = getattr(activation, "cvx_psi", None)
    if cvx_psi is not None:
        try:
            return cvx_psi(z), True
        except NoDCPFormError:
            pass
    return _dcp(activation.cvx_phi, z, f"{what} ({activation.name})"), False


def _certified(problem: Inversion) -> Certificate:
    """The exact certificate; NotCertifiedError (with its explanation) when it fails."""
    certificate = problem.certify("exact")
    if not certificate.certified:
        raise NotCertifiedError(
            f"the lifted model is not certified convex at λ = {problem.lam:g}, so the exact "
            "(convex) CVXPY backend refuses it rather than hand CVXPY a non-convex problem.\n"
            f"{certificate.explain()}\n"
            "Change λ, ρ or the architecture as advised above, or solve with a first-order "
            "solver (solver='pdhg'), which runs as a local method and claims no global optimum."
        )
    return certificate


def supports(problem) -> str | None:
    """None when the exact backend can write ``problem`` in DCP form, else the reason.

    Checks what is known before building the problem: an :class:`Inversion`, small enough for
    dense matrices (quadratic fidelity), certified convex, and a DCP form of Φ* and of Ψ or Φ
    for every activation. The DCP split can still refuse at solve time (see the module
    docstring), with :class:`~bregmod.errors.NotCertifiedError`.
    """
    if not isinstance(problem, Inversion):
        return f"the CVXPY backend solves an Inversion, got {type(problem).__name__}"
    lifted = problem.lifted
    if problem.fidelity == "quadratic":
        if lifted.n_u + lifted.n_z > DENSE_LIMIT:
            return (
                f"n_u + n_z = {lifted.n_u + lifted.n_z} > DENSE_LIMIT = {DENSE_LIMIT}: too "
                "large for the dense matrices of the exact backend"
            )
        certificate = problem.certify("exact")
        if not certificate.certified:
            return f"not certified convex at λ = {problem.lam:g} (exact certificate)"
    try:
        for blk, act in zip(lifted.z_blocks, lifted.activations, strict=True):
            variable = cp.Variable(blk.size)
            _dcp(act.cvx_phi_conj, variable, f"Φ* of z block {blk.name} ({act.name})")
            if problem.fidelity == "quadratic":
                _psi_or_phi(act, variable, f"z block {blk.name}")
    except NoDCPFormError as exc:
        return str(exc)
    return None


def _quadratic_factor(
    problem: Inversion, certificate: Certificate, dense: dict[str, np.ndarray], half: np.ndarray
) -> np.ndarray:
    """L with ½‖L x‖² = ½ xᵀHx on ker A, H = [[λKᵀK + αE₀, −Wᵀ], [−W, diag(half)]],
    A = [M, −V], α = ``certificate.alpha`` on the input block u₀.

    Reuses the certificate's orthonormal basis N of ker A and, when H = H₀ (every block keeps
    ½‖z_k‖², ``half`` all ones), its eigen-decomposition of Nᵀ H₀ N. ``dense`` holds K and W as
    dense matrices. Raises NotCertifiedError when H has an eigenvalue below −tolerance on
    ker A.
    """
    lifted = problem.lifted
    N = certificate.null_space
    if half.all():
        theta, Q = certificate.restricted_eigenvalues, certificate.restricted_eigenvectors
    else:
        K, W = dense["K"], dense["W"]
        H = np.block([[problem.lam * K.T @ K, -W.T], [-W, np.diag(half)]])
        n_0 = lifted.u_blocks[0].size
        H[:n_0, :n_0] += certificate.alpha * np.eye(n_0)
        theta, Q = sla.eigh(N.T @ H @ N)
    tolerance = certificate.tolerance
    if theta.size and theta[0] < -tolerance:
        names = [
            f"{blk.name} ({act.name})"
            for blk, act in zip(lifted.z_blocks, lifted.activations, strict=True)
            if not half[blk.slice].any()
        ]
        raise NotCertifiedError(
            "the lifted model is certified convex, but the DCP form needs more: "
            f"{', '.join(names)} offer(s) a DCP form of Φ = ½‖·‖² + Ψ only, not of Ψ alone, "
            "so the ½‖z‖² of those blocks must leave the quadratic part, and the rest "
            "[[λKᵀK + αE₀, −Wᵀ], [−W, D]] is not PSD on {M u = V z} (smallest eigenvalue "
            f"{theta[0]:.4g} < −{tolerance:.3g}). Increase λ, or solve with a "
            "first-order solver (solver='pdhg')."
        )
    keep = theta > 0
    return (np.sqrt(theta[keep])[:, None] * Q[:, keep].T) @ N.T


def _build_quadratic(problem: Inversion) -> _Model:
    lifted = problem.lifted
    if lifted.n_u + lifted.n_z > DENSE_LIMIT:
        raise ValueError(
            f"the CVXPY backend works with dense matrices of size n_u + n_z = "
            f"{lifted.n_u + lifted.n_z} > {DENSE_LIMIT}; use a first-order solver "
            "(solver='pdhg')"
        )
    certificate = _certified(problem)
    dense = {name: getattr(lifted, name).to_dense() for name in ("K", "W", "M", "V")}
    u_vars = [_variable(blk.shape, _short(blk.name)) for blk in lifted.u_blocks]
    z_vars = [cp.Variable(blk.size, name=_short(blk.name)) for blk in lifted.z_blocks]
    u = _stack([_flat(v) for v in u_vars])
    z = _stack(z_vars)
    pre = sp.csr_matrix(dense["W"]) @ u + lifted.b
    terms, half, split = [], np.zeros(lifted.n_z), {}
    for blk, act, zk in zip(lifted.z_blocks, lifted.activations, z_vars, strict=True):
        term, psi_alone = _psi_or_phi(act, zk, f"z block {blk.name}")
        half[blk.slice] = float(psi_alone)
        split[_short(blk.name)] = "Ψ" if psi_alone else "Φ"
        what = f"Φ* of z block {blk.name} ({act.name})"
        terms += [term, _dcp(act.cvx_phi_conj, pre[blk.slice], what)]
    if problem.reg is not None:  # J − α/2‖u₀‖²: the certificate's H₀ holds the α/2‖u₀‖²
        terms.append(problem.reg.cvx_remainder(u_vars[0]))
    L = _quadratic_factor(problem, certificate, dense, half)
    data = cp.Parameter(lifted.n_out, name="data")
    constant = cp.Parameter(name="constant")
    objective = (
        0.5 * cp.sum_squares(L @ cp.hstack([u, z]))
        + problem.lam * (lifted.c - data) @ (sp.csr_matrix(dense["K"]) @ u)
        + constant
        - lifted.b @ z
        + sum(term.expr for term in terms)
    )
    M, V = sp.csr_matrix(dense["M"]), sp.csr_matrix(dense["V"])
    constraints = [M @ u == V @ z] + [c for term in terms for c in term.constraints]
    handles = {_short(blk.name): v for blk, v in zip(lifted.u_blocks, u_vars, strict=True)}
    handles |= {_short(blk.name): v for blk, v in zip(lifted.z_blocks, z_vars, strict=True)}
    handles |= {"u": u, "z": z}
    return _Model(
        cp.Problem(cp.Minimize(objective), constraints),
        handles,
        data,
        constant,
        u_vars,
        z_vars,
        u,
        z,
        split,
    )


def _build_bregman(energy) -> _Model:
    """ΣΦ*(A u₀ + β) − ⟨f, A u₀ + β⟩ + ΣΦ(f) + J(u₀) of a OneLayerEnergy (f, ΣΦ(f): parameters)."""
    u0 = _variable(energy.input_shape, "u0")
    pre = sp.csr_matrix(energy.A.to_dense()) @ _flat(u0) + energy.beta
    what = f"Φ* of the layer ({energy.activation.name})"
    terms = [_dcp(energy.activation.cvx_phi_conj, pre, what)]
    if energy.reg is not None:
        terms.append(energy.reg.cvx(u0))
    data = cp.Parameter(energy.A.shape[0], name="data")
    constant = cp.Parameter(name="constant")
    objective = constant + sum(term.expr for term in terms) - data @ pre
    constraints = [c for term in terms for c in term.constraints]
    return _Model(
        cp.Problem(cp.Minimize(objective), constraints),
        {"u0": u0},
        data,
        constant,
        [u0],
        [],
        _flat(u0),
        None,
        {},
    )


def _build(problem: Inversion, energy) -> _Model:
    if problem.fidelity == "bregman":
        return _build_bregman(energy)
    return _build_quadratic(problem)


def _set_data(model: _Model, energy, index: int) -> None:
    """Load problem ``index`` of the batch into the data parameters: f and the model's
    constant (ΣΦ(f), or λ/2‖c − f‖²) from the energy."""
    model.data.value = energy.data[index]
    model.constant.value = float(energy.data_constant[index])


def _check_index(problem: Inversion, index) -> int:
    if problem.batch_size is None:
        if index not in (None, 0):
            raise ValueError(f"index must be None for unbatched data, got {index!r}")
        return 0
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
        raise ValueError(
            f"the data holds a batch of {problem.batch_size} problems: pass index=i "
            f"(0 ≤ i < {problem.batch_size}) to choose one, got {index!r}"
        )
    if not 0 <= index < problem.batch_size:
        raise ValueError(f"index {index} out of range for a batch of {problem.batch_size}")
    return int(index)


def to_cvxpy(problem: Inversion, index: int | None = None):
    """The exact DCP problem of a certified Inversion and named handles of its variables.

    Parameters
    ----------
    problem : Inversion
    index : int, optional
        Which problem of a batch (required when the data is batched).

    Returns
    -------
    cvxpy.Problem
        Its optimal value is the model's minimum (the constants included).
    dict[str, cvxpy.Expression]
        ``fidelity="quadratic"``: the Variables ``"u0"``, ``"u1"``, … (in the states' shapes;
        flattened in C order for states with more than two axes) and ``"z1"``, … (flat), and
        the stacked expressions ``"u"`` and ``"z"``. ``fidelity="bregman"``: the Variable
        ``"u0"`` (same shape rule). Add constraints or terms with them and solve the problem
        yourself.

    Raises
    ------
    NotCertifiedError
        The model is not certified convex, or its DCP split needs more (see the module
        docstring); the message includes the certificate's explanation and what to change.
    NoDCPFormError
        An activation (named) has no DCP form.
    ValueError
        Bad ``index``, or a network too large for dense matrices.
    """
    if not isinstance(problem, Inversion):
        raise TypeError(f"expected an Inversion, got {type(problem).__name__}")
    energy = problem.energy()
    model = _build(problem, energy)
    _set_data(model, energy, _check_index(problem, index))
    return model.problem, model.handles


def _solver_options(name: str, tol: float, max_iter: int | None, extra) -> dict:
    options = {key: tol for key in _TOLERANCE_OPTIONS.get(name, ())}
    if max_iter is not None and name in _MAX_ITER_OPTION:
        options[_MAX_ITER_OPTION[name]] = max_iter
    if extra is not None:
        if not isinstance(extra, dict):
            raise TypeError(f"solver_options must be a dict, got {type(extra).__name__}")
        options |= extra
    return options


def _set_start(model: _Model, lifted, u: np.ndarray, z: np.ndarray | None, i: int) -> None:
    """Initial values of the variables: u (stacked, or u₀ alone) and row i of z."""
    offset = 0
    for blk, var in zip(lifted.u_blocks, model.u_vars, strict=False):
        var.value = u[offset : offset + blk.size].reshape(var.shape)
        offset += blk.size
    for blk, var in zip(lifted.z_blocks, model.z_vars, strict=False):
        var.value = z[i, blk.slice]


class _Outcome(NamedTuple):
    """One CVXPY solve: statuses, value, statistics and the feasible point (None if none)."""

    status: str
    cvxpy_status: str
    value: float
    iterations: int
    solve_time: float
    u: np.ndarray | None
    z: np.ndarray | None
    message: str


def _relative_options(name: str, options: dict, tol: float, solved: cp.Problem) -> dict | None:
    """Tolerances for a second solve when the first one's accuracy is not relative to |F|.

    Interior-point tolerances act like absolute ones for |F| < 1 (Clarabel's gaps are
    measured against max(1, |cost|)), so a problem with a small optimal value F solved at
    ``tol`` can be off by much more than tol·|F| (seen: 8e−6 relative at tol = 1e−6,
    F ≈ 0.005). When the value is below 1 and the caller left the tolerances at ``tol``, they
    are scaled to tol·|F| for a second solve, so that the relative claim holds. Where
    tol·|F| < ``_FINEST_TOLERANCE`` (e.g. exact data, F ≈ 0) interior-point methods cannot
    resolve it in double precision and the accuracy stays absolute (≈ tol); the same when the
    second solve fails (the first one is then repeated). None when no second solve is needed.
    """
    keys = _TOLERANCE_OPTIONS.get(name, ())
    value = solved.value
    if (not keys or solved.status != cp.OPTIMAL or value is None or not abs(value) < 1
            or tol * abs(value) < _FINEST_TOLERANCE
            or any(options.get(key) != tol for key in keys)):
        return None
    return {**options, **{key: tol * abs(float(value)) for key in keys}}


def _solve_one(
    energy, lifted, model: _Model, name: str, options: dict, tol: float, *, verbose: bool,
    warm: bool,
) -> _Outcome:
    """Solve the loaded problem, whose energy is ``energy`` (one data row; ``lifted``: the
    compiled network); return the feasible point and a checked status.

    The status is downgraded to ``"optimal_inaccurate"`` when the model's value at the
    feasible point (``energy.feasible_point``) differs from CVXPY's by more than
    √tol · max(1, |value|).
    """
    try:
        with warnings.catch_warnings():
            # CVXPY's "Solution may be inaccurate": the status says so (SolverWarning).
            warnings.filterwarnings("ignore", "Solution may be inaccurate", UserWarning)
            model.problem.solve(solver=name, verbose=verbose, warm_start=warm, **options)
            tight = _relative_options(name, options, tol, model.problem)
            if tight is not None:
                try:
                    model.problem.solve(solver=name, verbose=verbose, warm_start=warm, **tight)
                except cp.error.SolverError:
                    pass
                if model.problem.status != cp.OPTIMAL:  # keep the first, absolute-accuracy solve
                    model.problem.solve(solver=name, verbose=verbose, warm_start=warm, **options)
    except cp.error.SolverError as exc:
        return _Outcome("solver_error", "solver_error", np.nan, 0, 0.0, None, None, str(exc))
    raw = model.problem.status
    stats = model.problem.solver_stats
    status = _STATUS.get(raw, "solver_error")
    value = np.nan if model.problem.value is None else float(model.problem.value)
    common = (raw, value, int(stats.num_iters or 0), float(stats.solve_time or 0.0))
    if model.u.value is None:
        return _Outcome(status, *common, None, None, f"CVXPY status {raw!r}, no point")
    u = np.reshape(model.u.value, (1, -1))
    if model.z is None:  # the one-layer model: u₀, and the states of its forward pass
        u0 = energy.feasible_point(u)
        ours = float(energy.energy(u0)[0])
        u, z = lifted.forward(u0.reshape(1, *lifted.input_shape))[0], None
    else:
        u, z = energy.feasible_point(u, np.reshape(model.z.value, (1, -1)))
        ours = float(energy.energy(u, z)[0])
    message = ""
    if not abs(ours - value) <= np.sqrt(tol) * max(1.0, abs(ours)):
        message = (
            f"the model's value {ours:.10g} at the returned point differs from CVXPY's "
            f"{value:.10g} beyond √tol (inaccurate solve)"
        )
        status = "optimal_inaccurate" if status == "optimal" else status
    return _Outcome(status, *common, u[0], None if z is None else z[0], message)


def _check_dtype(dtype) -> None:
    if np.dtype(dtype) != np.float64:
        raise ValueError(
            f"the CVXPY backend computes in float64, got dtype={np.dtype(dtype)}; use a "
            "first-order solver for float32"
        )


def solve(
    problem: Inversion,
    tol: float = 1e-6,
    max_iter: int | None = None,
    warm_start=None,
    progress: bool = False,
    dtype=np.float64,
    *,
    cvxpy_solver: str = DEFAULT_SOLVER,
    solver_options: dict | None = None,
) -> Result:
    """Solve a certified Inversion exactly with CVXPY (see the module docstring).

    Parameters
    ----------
    problem : Inversion
    tol : float
        Relative tolerance, passed to Clarabel (``tol_gap_abs``, ``tol_gap_rel``,
        ``tol_feas``) and SCS (``eps_abs``, ``eps_rel``); other solvers keep their defaults.
        When the optimal value F is below 1 in magnitude, a second solve at tol·|F| makes
        the accuracy relative to |F| (the solvers' gaps are absolute there), as long as
        tol·|F| ≥ 1e-10; below that the accuracy is absolute (≈ tol).
    max_iter : int, optional
        Iteration limit of Clarabel (``max_iter``) or SCS (``max_iters``).
    warm_start : None, array_like, (u, z) or Result
        Initial values of the variables (used by solvers that warm-start, e.g. SCS).
    progress : bool
        Verbose solver output.
    dtype : numpy dtype
        Must be float64.
    cvxpy_solver : str
        Any installed CVXPY solver (``cvxpy.installed_solvers()``); Clarabel by default.
    solver_options : dict, optional
        Further keyword arguments of ``cvxpy.Problem.solve`` (override the mapped ones).

    Returns
    -------
    Result
        ``solver="cvxpy"``; ``stats`` holds ``cvxpy_solver``, the CVXPY status(es), the solver
        time, CVXPY's objective value(s) and the DCP split per z block. A CVXPY failure gives
        status ``"solver_error"`` (NaN point) and a warning; batched data: the worst status.

    Raises
    ------
    NotCertifiedError, NoDCPFormError
        See :func:`to_cvxpy`.
    ValueError
        Unknown or uninstalled solver, float32 dtype, bad ``tol``/``max_iter``/``warm_start``.
    """
    start = time.perf_counter()
    _check_dtype(dtype)
    name = str(cvxpy_solver).upper()
    if name not in cp.installed_solvers():
        raise ValueError(
            f"CVXPY solver {cvxpy_solver!r} is not installed; installed: {cp.installed_solvers()}"
        )
    if not isinstance(problem, Inversion):
        raise TypeError(f"expected an Inversion, got {type(problem).__name__}")
    # The solvers' shared validation of tol, max_iter and warm_start (max_iter=None keeps the
    # CVXPY solver's own limit) and the model of the run.
    setup = prepare(
        problem,
        solver="cvxpy",
        tol=tol,
        max_iter=max_iter,
        warm_start=warm_start,
        dtype=dtype,
        default_max_iter=None,
    )
    energy = setup.energy()
    model = _build(problem, energy)
    options = _solver_options(name, setup.tol, setup.max_iter, solver_options)
    lifted = problem.lifted
    u_rows = np.full((setup.batch, lifted.n_u), np.nan)
    z_rows = np.full((setup.batch, lifted.n_z), np.nan)
    outcomes = []
    for i in range(setup.batch):
        _set_data(model, energy, i)
        if warm_start is not None:
            _set_start(model, lifted, setup.u0[i] if model.z is None else setup.u[i], setup.z, i)
        outcome = _solve_one(
            energy.item(i), lifted, model, name, options, setup.tol, verbose=bool(progress),
            warm=warm_start is not None,
        )
        outcomes.append(outcome)
        if outcome.u is not None:
            u_rows[i] = outcome.u
            if outcome.z is not None:
                z_rows[i] = outcome.z

    batched = problem.batch_size is not None

    def per_problem(values: list) -> list | object:
        return values if batched else values[0]

    statuses = [o.status for o in outcomes]
    stats = {
        "cvxpy_solver": name,
        "cvxpy_status": per_problem([o.cvxpy_status for o in outcomes]),
        "cvxpy_objective": per_problem([o.value for o in outcomes]),
        "solve_time": sum(o.solve_time for o in outcomes),
        "solver_options": options,
        "dcp_split": model.split,
    }
    if batched:
        stats["statuses"] = statuses
    messages = [f"problem {i}: {o.message}" for i, o in enumerate(outcomes) if o.message]
    if messages:
        stats["message"] = "; ".join(messages)
    return problem.make_result(
        per_problem(u_rows),
        None if model.z is None else per_problem(z_rows),
        status=worst_status(statuses),
        solver="cvxpy",
        iterations=max(o.iterations for o in outcomes),
        stats=stats,
        wall_time=time.perf_counter() - start,
    )

