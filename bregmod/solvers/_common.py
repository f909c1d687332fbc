"""Machinery shared by every iterative solver of :mod:`bregmod.solvers`.

One stopping policy, one history format, one warm-start convention, one way to build the
:class:`~bregmod.problem.Result`. A solver module uses it like this::

    setup = prepare(problem, solver="pdhg", tol=tol, max_iter=max_iter,
                    warm_start=warm_start, dtype=dtype, default_max_iter=20_000)
    monitor = Monitor(setup, progress=progress)
    for k in range(1, setup.max_iter + 1):
        ...                                       # one iteration on 2-D batches (B, n)
        if monitor.record(k, primal_residual=rp, dual_residual=rd, objective=obj):
            break
    return finish(setup, monitor, u=u, z=z, stats={"step_condition": ...})

Conventions
-----------
* Iterates are 2-D arrays with a leading batch axis, shape (B, n), B = 1 for an unbatched
  problem, in the selected floating dtype (float64 by default, float32 selectable). Every
  operator is applied to the whole batch at once (one matrix–matrix product per operator).
* Stopping: the solver reports *relative* primal and dual residuals of the optimality
  conditions (``relative_residual``; for a batch, the worst problem counts) and, where it can
  compute one, a relative primal–dual gap. The run stops with status ``"optimal"`` when all
  reported quantities are ≤ ``tol``, with ``"max_iter"`` after ``max_iter`` iterations, and
  with ``"diverged"`` as soon as a reported quantity is NaN/Inf, a residual exceeds
  ``DIVERGENCE_FACTOR · max(first residual, tol)`` or the objective exceeds its first value by
  ``DIVERGENCE_FACTOR · max(1, |first value|)`` (relative residuals stay O(1) while the
  iterates explode; the objective does not). A solver never returns NaN: on divergence it
  returns its last finite iterate, and ``Result.stats["message"]`` says what happened.
* The splitting min f(x) + g(x) + Σ h_i(L_i x): the smooth parts f come from the model
  (:mod:`bregmod.model`: ``OneLayerEnergy``, ``LiftedSmooth``, ``ReducedSmooth`` with the
  ``Elimination`` of {M u = V z}; gradients from σ only, provable Lipschitz bounds), g is
  :class:`ProxPart`; :meth:`Setup.energy` builds the model of a run.
* History: ``Result.history`` maps ``"objective"``, ``"primal_residual"``,
  ``"dual_residual"`` (only for solvers with a dual variable), ``"gap"`` (the relative
  duality gap, its last evaluated value at every iteration) or solver-specific keys when
  reported, to one float per recorded iteration; the objective of a batch is the sum over the
  batch, residuals and the gap are the batch maxima.
* Guarantee: ``Result.stats["guarantee"]`` says what the stop certifies — ``"duality gap"``
  (``stats["bound"]`` bounds the relative objective error, :mod:`bregmod.solvers.gap`),
  ``"KKT residual"`` (``stats["bound"]`` is the largest final relative residual, not an
  objective bound) or None (diverged, or no bound at the returned point).
* Warm start (``warm_start=``): ``None`` starts from the forward pass of u₀ = 0; an array of
  the input shape (optionally batched) starts from the forward pass of that u₀; a pair
  ``(u, z)`` of stacked lifted vectors, or a previous :class:`~bregmod.problem.Result`, starts
  from that lifted point.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bregmod._checks import finite_array, positive_scalar
from bregmod.errors import ShapeError
from bregmod.model.lifted import LiftedEnergy
from bregmod.model.onelayer import OneLayerEnergy

__all__ = [
    "DIVERGENCE_FACTOR",
    "FLOAT32_TOL",
    "Monitor",
    "ProxPart",
    "Setup",
    "all_finite",
    "batch_dot",
    "batch_norm",
    "finish",
    "prepare",
    "relative_residual",
]

#: A residual that grows beyond this factor times max(its first value, tol) means divergence.
DIVERGENCE_FACTOR = 1e8

_STATUS_OPTIMAL = "optimal"
_STATUS_MAX_ITER = "max_iter"
_STATUS_DIVERGED = "diverged"
#: Below this tol a float32 run that ends at max_iter within _FLOAT32_NEAR·tol of it says that
#: float32 may be the limit: on the inversion benchmark (perceptron + TV) float32 admm certified
#: tol 1e-5 after 477 (32 × 32) and 349 (64 × 64) iterations, but at tol 1e-6 its duality gap
#: crept from 2.5e-6 (iteration 1000) to 1.8e-6 (iteration 5000) at 32 × 32 without reaching
#: tol (2.1e-6 after 3000 iterations at 64 × 64); smaller problems reach 1e-6 in float32.
FLOAT32_TOL, _FLOAT32_NEAR = 1e-5, 100.0
_FLOAT32_HINT = (
    "; float32 rounding may keep it above this tol (on the inversion benchmark it stalls near "
    "2e-6): use dtype=numpy.float64 for a tol below 1e-5"
)
_STATUS_INTERRUPTED = "interrupted"
#: Set by a caller (``bregmod run``'s Ctrl-C handler) to stop every running first-order solver
#: at its next recorded iteration with status ``"interrupted"`` and its current iterate.
STOP_REQUESTED = threading.Event()
#: Seconds between two progress lines of ``progress="lines"``.
PROGRESS_LINE_INTERVAL = 10.0


@dataclass
class Setup:
    """Validated arguments and the starting point of one solver run.

    Attributes
    ----------
    problem : Inversion
        The problem being solved.
    solver : str
        Name of the solver (``"pdhg"``, ``"fista"``, ``"cd"``, ``"admm"``).
    tol : float
        Tolerance of the relative residuals (and gap).
    max_iter : int or None
        Iteration limit (None only for a solver with its own, see :func:`prepare`).
    dtype : numpy.dtype
        Floating dtype of every iterate (float64 or float32).
    batched : bool
        Whether ``problem.data`` has a leading batch axis.
    batch : int
        Number of problems solved at once (1 when not batched).
    data : ndarray, shape (B, n_out)
        The data f, flattened per problem, in ``dtype``.
    u0 : ndarray, shape (B, n_in)
        Starting input u₀ (flattened per problem).
    u, z : ndarray, shape (B, n_u), (B, n_z), or None
        Starting stacked lifted point (``None`` for ``fidelity="bregman"``, whose only
        variable is u₀).
    certificate : Certificate or None
        Convexity certificate of the problem (``None`` when it could not be computed).
    certified : bool
        Whether the problem is certified convex (first-order solvers still run otherwise, as
        local methods, and no global optimality is claimed).
    start_time : float
        ``time.perf_counter()`` at the start of the run.
    """

    problem: Any
    solver: str
    tol: float
    max_iter: int | None
    dtype: np.dtype
    batched: bool
    batch: int
    data: np.ndarray
    u0: np.ndarray
    u: np.ndarray | None
    z: np.ndarray | None
    certificate: Any
    certified: bool
    start_time: float = field(default_factory=time.perf_counter)

    @property
    def u0_slice(self) -> slice:
        """Slice of u₀ inside the stacked lifted vector u."""
        return self.problem.lifted.u_blocks[0].slice

    def energy(self):
        """The model of the run (its data rows and dtype): a
        :class:`~bregmod.model.onelayer.OneLayerEnergy` for ``fidelity="bregman"``, else a
        :class:`~bregmod.model.lifted.LiftedEnergy`."""
        if self.problem.fidelity == "bregman":
            return OneLayerEnergy.of(self.problem, self.data, self.dtype)
        return LiftedEnergy.of(self.problem, self.data, self.dtype)


def _check_dtype(dtype) -> np.dtype:
    """Return ``dtype`` as float64 or float32, raising ``ValueError`` for anything else."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be numpy.float64 or numpy.float32, got {dtype!r}") from None
    if dt not in (np.dtype(np.float64), np.dtype(np.float32)):
        raise ValueError(f"dtype must be numpy.float64 or numpy.float32, got {dt}")
    return dt


def _check_max_iter(max_iter, default: int | None) -> int | None:
    """Return ``max_iter`` (``default`` when None) as a positive int, else ``ValueError``."""
    if max_iter is None:
        return default
    if isinstance(max_iter, bool) or not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    return int(max_iter)


def _check_tol(tol, dtype: np.dtype) -> float:
    """Return ``tol`` as a float in (0, 1), not below what ``dtype`` can resolve."""
    value = positive_scalar(tol, "tol")
    if value >= 1:
        raise ValueError(f"tol is a relative tolerance and must be < 1, got {value}")
    floor = 4 * float(np.finfo(dtype).eps)
    if value < floor:
        raise ValueError(
            f"tol={value:g} is below what {dtype} arithmetic resolves (4·eps = {floor:.2g}); "
            f"use a larger tol or dtype=numpy.float64"
        )
    return value


def _as_rows(x, size: int, batch: int, batched: bool, name: str, dtype) -> np.ndarray:
    """Reshape ``x`` to (batch, size): one flattened copy per problem (broadcast if unbatched)."""
    arr = finite_array(x, name, dtype=dtype)
    if arr.size == size:
        return np.broadcast_to(arr.reshape(1, size), (batch, size)).copy()
    if batched and arr.size == batch * size and arr.shape[0] == batch:
        return arr.reshape(batch, size).copy()
    expected = f"{size} entries" + (f" or a batch of {batch} × {size}" if batched else "")
    raise ShapeError(f"{name} has shape {arr.shape}, expected {expected}")


def _warm_start(problem, warm_start, batch: int, batched: bool, dtype):
    """Starting (u₀, u, z) as 2-D batches; see the module docstring for the accepted forms."""
    lifted = problem.lifted
    n_in = int(np.prod(lifted.input_shape))
    lifted_point = None
    if warm_start is None:
        u0 = np.zeros((batch, n_in), dtype=dtype)
    elif hasattr(warm_start, "u") and hasattr(warm_start, "z"):
        lifted_point = (warm_start.u, warm_start.z)
    elif isinstance(warm_start, tuple):
        if len(warm_start) != 2:
            raise ValueError(
                f"warm_start as a tuple must be the lifted pair (u, z), got {len(warm_start)} items"
            )
        lifted_point = warm_start
    else:
        u0 = _as_rows(warm_start, n_in, batch, batched, "warm_start (u₀)", dtype)
    if lifted_point is not None:
        u = _as_rows(lifted_point[0], lifted.n_u, batch, batched, "warm_start u", dtype)
        z = _as_rows(lifted_point[1], lifted.n_z, batch, batched, "warm_start z", dtype)
        return u[:, lifted.u_blocks[0].slice].copy(), u, z
    if problem.fidelity == "bregman":
        return u0, None, None
    shaped = u0.reshape((batch, *lifted.input_shape))
    u, z = lifted.forward(shaped)
    u = np.asarray(u, dtype=dtype).reshape(batch, lifted.n_u)
    z = np.asarray(z, dtype=dtype).reshape(batch, lifted.n_z)
    return u0, u, z


def prepare(
    problem,
    *,
    solver: str,
    tol: float,
    max_iter: int | None,
    warm_start=None,
    dtype=np.float64,
    default_max_iter: int | None,
) -> Setup:
    """Validate the common solver arguments and build the starting point.

    Parameters
    ----------
    problem : Inversion
        The problem to solve.
    solver : str
        Name of the calling solver (used in messages and in the Result).
    tol : float
        Relative tolerance in (0, 1), at least 4·eps of ``dtype``.
    max_iter : int or None
        Iteration limit (``default_max_iter`` when None).
    warm_start : None, array_like, (u, z) or Result
        Starting point; see the module docstring.
    dtype : numpy float64 or float32
        Floating dtype of the iterates.
    default_max_iter : int or None
        Iteration limit used when ``max_iter`` is None (None: the solver sets none itself,
        e.g. the CVXPY backend keeps its conic solver's own limit, and ``Setup.max_iter`` is
        None).

    Returns
    -------
    Setup

    Raises
    ------
    ValueError
        Bad ``tol``, ``max_iter``, ``dtype``, NaN/Inf in the data or in the warm start.
    ShapeError
        Data or warm start of the wrong size.
    """
    dt = _check_dtype(dtype)
    tol = _check_tol(tol, dt)
    max_iter = _check_max_iter(max_iter, default_max_iter)
    batched = problem.batch_size is not None
    batch = int(problem.batch_size) if batched else 1
    n_data = int(np.prod(problem.lifted.output_shape))
    data = _as_rows(problem.data, n_data, batch, batched, "data", dt)
    u0, u, z = _warm_start(problem, warm_start, batch, batched, dt)
    lifted = problem.lifted
    for operator in (lifted.K, lifted.W, lifted.M, lifted.V):
        operator.cache_as(dt)
    certificate = problem.certify()
    return Setup(
        problem=problem,
        solver=solver,
        tol=tol,
        max_iter=max_iter,
        dtype=dt,
        batched=batched,
        batch=batch,
        data=data,
        u0=u0,
        u=u,
        z=z,
        certificate=certificate,
        certified=bool(getattr(certificate, "certified", False)),
    )


def batch_norm(x: np.ndarray) -> np.ndarray:
    """Euclidean norm of every row of a 2-D batch, shape (B,), computed in float64."""
    return np.sqrt(np.einsum("ij,ij->i", x, x, dtype=np.float64))


def batch_dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Row-wise inner products ⟨x_i, y_i⟩ of two 2-D batches, shape (B,), in float64."""
    return np.einsum("ij,ij->i", x, y, dtype=np.float64)


def relative_residual(residual, *scales) -> np.ndarray:
    """``residual / max(scales…, 1e-12)``: a residual relative to the size of the terms it balances.

    Parameters
    ----------
    residual : ndarray, shape (B,)
        Norms of the residual of an optimality condition, one per problem.
    *scales : ndarray, shape (B,)
        Norms of the terms whose difference the residual is (e.g. ‖∇f(x)‖ and ‖(x − x⁺)/τ‖);
        the largest is the scale. The floor 1e-12 only guards a vanishing scale.
    """
    scale = np.maximum.reduce([np.asarray(s, dtype=np.float64) for s in scales])
    with np.errstate(invalid="ignore", over="ignore"):  # inf/inf of a diverging run → NaN
        return np.asarray(residual, dtype=np.float64) / np.maximum(scale, 1e-12)


class Monitor:
    """The shared stopping policy, per-iteration history and optional tqdm progress bar.

    Parameters
    ----------
    setup : Setup
        From :func:`prepare` (supplies ``tol``, ``max_iter`` and the solver name).
    progress : bool or "lines"
        True: a tqdm progress bar (updated every iteration, residuals shown every 25);
        ``"lines"``: one line on stderr every ``PROGRESS_LINE_INTERVAL`` seconds (for logs and
        pipes, where a bar does not render).
    criterion : {"residuals", "gap"}
        What must be ≤ tol to stop with ``"optimal"``: every reported relative residual (and
        the gap when given), or only the relative duality gap (a bound on the relative
        objective error, :mod:`bregmod.solvers.gap`). A solver that evaluates the gap every
        few iterations passes its last value in between: a value > tol never stops the run,
        so the stop happens only where the gap was just evaluated.

    Attributes
    ----------
    status : str or None
        ``"optimal"``, ``"max_iter"``, ``"diverged"`` or ``"interrupted"`` (``STOP_REQUESTED``
        was set) once :meth:`record` returned True.
    message : str
        Human-readable reason for stopping.
    iterations : int
        Last recorded iteration.
    history : dict[str, list]
        Per-iteration values (see the module docstring).
    """

    def __init__(self, setup: Setup, progress: bool = False, criterion: str = "residuals") -> None:
        if criterion not in ("residuals", "gap"):
            raise ValueError(f"criterion must be 'residuals' or 'gap', got {criterion!r}")
        self.criterion = criterion
        self.tol = setup.tol
        self.max_iter = setup.max_iter
        self.status: str | None = None
        self.message = ""
        self.iterations = 0
        self.history: dict[str, list] = {}
        self._reference: dict[str, float] = {}
        self._bar = None
        self._solver = setup.solver
        self._single = np.dtype(setup.dtype) == np.float32
        self._lines = progress == "lines"
        self._last_line = time.perf_counter()
        if progress and not self._lines:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=setup.max_iter, desc=setup.solver, leave=False)

    def _stop(self, status: str, message: str) -> bool:
        self.status, self.message = status, message
        self.close()
        return True

    def record(
        self,
        iteration: int,
        *,
        primal_residual,
        dual_residual=None,
        objective=None,
        gap=None,
        **extra,
    ) -> bool:
        """Record one iteration and decide whether to stop.

        Parameters
        ----------
        iteration : int
            Number of completed iterations.
        primal_residual : float or ndarray (B,)
            Relative residual of the optimality conditions (batch: worst problem counts).
        dual_residual : float or ndarray (B,), optional
            Relative residual of the dual optimality conditions, for solvers with a dual
            variable (None: the solver has none; nothing is recorded, and the test uses the
            primal residual alone).
        objective : float or ndarray (B,), optional
            Objective value (batch: summed).
        gap : float or ndarray (B,), optional
            Relative primal–dual gap where computable (batch: worst problem counts); when given
            it must also be ≤ tol for convergence.
        **extra : float or array_like
            Further per-iteration values to keep in the history (e.g. ``step=τ``,
            ``bregman_gaps=[...]``), stored as floats or lists of floats.

        Returns
        -------
        bool
            True when the run must stop (see :attr:`status`).
        """
        self.iterations = iteration
        values = {"primal_residual": float(np.max(primal_residual))}
        if dual_residual is not None:
            values["dual_residual"] = float(np.max(dual_residual))
        if objective is not None:
            values["objective"] = float(np.sum(objective, dtype=np.float64))
        if gap is not None:
            values["gap"] = float(np.max(gap))
        for key, value in values.items():
            self.history.setdefault(key, []).append(value)
        for key, value in extra.items():
            arr = np.asarray(value, dtype=np.float64)
            self.history.setdefault(key, []).append(float(arr) if arr.ndim == 0 else arr.tolist())
        if self._bar is not None:
            self._bar.update(1)
            if iteration % 25 == 0:
                self._bar.set_postfix(
                    rp=values["primal_residual"], rd=values.get("dual_residual", np.nan)
                )
        if self._lines and time.perf_counter() - self._last_line >= PROGRESS_LINE_INTERVAL:
            self._last_line = time.perf_counter()
            print(f"{self._solver}: iteration {iteration}/{self.max_iter}, relative residuals "
                  f"{self._residuals(values)} (tol {self.tol:g})", file=sys.stderr, flush=True)
        for key, value in values.items():
            # An infinite gap only means "no bound at this point"; NaN anywhere is divergence.
            if not np.isfinite(value) and not (key == "gap" and value == np.inf):
                return self._stop(
                    _STATUS_DIVERGED,
                    f"non-finite {key.replace('_', ' ')} ({value}) at iteration {iteration}: "
                    "the iterates diverged; the last finite iterate is returned",
                )
        for key in ("primal_residual", "dual_residual", "objective"):
            if key not in values:
                continue
            first = self._reference.setdefault(key, values[key])
            # Residuals are relative (they stay O(1) while iterates explode); the objective
            # catches that case. Both are compared with their first recorded value.
            reference = max(first, self.tol) if key != "objective" else max(1.0, abs(first))
            limit = DIVERGENCE_FACTOR * reference + (first if key == "objective" else 0.0)
            if values[key] > limit:
                return self._stop(
                    _STATUS_DIVERGED,
                    f"{key.replace('_', ' ')} grew from {first:.3g} to {values[key]:.3g} "
                    f"(by more than {DIVERGENCE_FACTOR:.0e} × {reference:.3g}) by iteration "
                    f"{iteration}: the iterates diverged (step too large?); the last finite "
                    "iterate is returned",
                )
        measured = ("primal_residual", "dual_residual", "gap")
        worst = max(values[key] for key in measured if key in values)
        if STOP_REQUESTED.is_set():
            return self._stop(
                _STATUS_INTERRUPTED,
                f"interrupted at iteration {iteration} (Ctrl-C): the current iterate is returned "
                f"(relative residuals {self._residuals(values)}, tol = {self.tol:g})",
            )
        if self.criterion == "gap":
            if values.get("gap", np.inf) <= self.tol:
                return self._stop(
                    _STATUS_OPTIMAL,
                    f"relative duality gap {values['gap']:.2e} ≤ tol = {self.tol:g} after "
                    f"{iteration} iterations: the relative objective error is at most that",
                )
        elif worst <= self.tol:
            return self._stop(
                _STATUS_OPTIMAL,
                f"relative residuals ≤ tol = {self.tol:g} after {iteration} iterations",
            )
        if iteration >= self.max_iter:
            by_gap = self.criterion == "gap" and self.history.get("gap")
            reached = self.history["gap"][-1] if by_gap else worst
            near = self._single and self.tol < FLOAT32_TOL and reached <= _FLOAT32_NEAR * self.tol
            return self._stop(
                _STATUS_MAX_ITER,
                f"max_iter = {self.max_iter} reached before the relative "
                + (
                    f"duality gap ({reached:.2e})"
                    if by_gap
                    else f"residuals ({self._residuals(values)})"
                )
                + f" fell below tol = {self.tol:g}"
                + (_FLOAT32_HINT if near else ""),
            )
        return False

    @staticmethod
    def _residuals(values: dict) -> str:
        """The recorded relative residuals (primal, and dual where the solver has one)."""
        keys = ("primal_residual", "dual_residual")
        return ", ".join(f"{values[key]:.2e}" for key in keys if key in values)

    def non_finite(self, iteration: int, what: str) -> bool:
        """Stop with status ``"diverged"`` because ``what`` became NaN/Inf; returns True."""
        self.iterations = iteration
        return self._stop(
            _STATUS_DIVERGED,
            f"non-finite {what} at iteration {iteration}: the iterates diverged; the last "
            "finite iterate is returned",
        )

    def close(self) -> None:
        """Close the progress bar (idempotent)."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    @property
    def diverged(self) -> bool:
        """True once the run stopped with status ``"diverged"``."""
        return self.status == _STATUS_DIVERGED


def finish(
    setup: Setup,
    monitor: Monitor,
    *,
    u0: np.ndarray | None = None,
    u: np.ndarray | None = None,
    z: np.ndarray | None = None,
    stats: dict | None = None,
):
    """Build the :class:`~bregmod.problem.Result` of a run through the problem's helper.

    Parameters
    ----------
    setup : Setup
        From :func:`prepare`.
    monitor : Monitor
        The run's monitor (status, message, iterations, history).
    u0 : ndarray (B, n_in), optional
        Final input (``fidelity="bregman"``); the lifted point is its forward pass.
    u, z : ndarray (B, n_u), (B, n_z), optional
        Final lifted point (``fidelity="quadratic"``).
    stats : dict, optional
        Solver statistics (step sizes, the checked step condition, …); the monitor's message,
        the dtype, the batch size and the certification state are added.

    Returns
    -------
    Result
        With ``global_optimum_claimed`` true only for a certified problem solved to
        ``"optimal"``.
    """
    monitor.close()
    problem = setup.problem
    lifted = problem.lifted
    shape = (setup.batch,) if setup.batched else ()
    if u is None:
        if u0 is None:
            raise ValueError("finish needs either u0 or the lifted pair (u, z)")
        # Bregman fidelity: only the block u₀ is read (make_result recomputes the forward pass).
        u = np.zeros((setup.batch, lifted.n_u), dtype=setup.dtype)
        u[:, setup.u0_slice] = u0
    u = np.asarray(u, dtype=setup.dtype).reshape(*shape, lifted.n_u)
    if z is not None:
        z = np.asarray(z, dtype=setup.dtype).reshape(*shape, lifted.n_z)
    status = monitor.status or _STATUS_MAX_ITER
    stats = dict(stats or {})
    stats.setdefault("message", monitor.message)
    stats.setdefault("dtype", str(setup.dtype))
    stats.setdefault("batch_size", setup.batch if setup.batched else None)
    stats.setdefault("tol", setup.tol)
    stats.setdefault("max_iter", setup.max_iter)
    if "guarantee" not in stats:
        # What the stopping test bounds: the KKT residuals (not the objective error).
        residuals = [monitor.history[k][-1] for k in ("primal_residual", "dual_residual")
                     if monitor.history.get(k)]
        diverged = status == _STATUS_DIVERGED or not residuals
        stats["guarantee"] = None if diverged else "KKT residual"
        stats["bound"] = None if diverged else float(max(residuals))
    if not setup.certified:
        stats.setdefault(
            "note",
            "the problem is not certified convex: the solver ran as a local method and no "
            "global optimality is claimed",
        )
    return problem.make_result(
        u=u,
        z=z,
        solver=setup.solver,
        status=status,
        iterations=monitor.iterations,
        stats=stats,
        wall_time=time.perf_counter() - setup.start_time,
        history=monitor.history,
        global_optimum_claimed=setup.certified and status == _STATUS_OPTIMAL,
    )


# --------------------------------------------------------------------------- splitting parts
#
# The first-order solvers see the problem as  min_x f(x) + g(x) + Σ_i h_i(L_i x)  with
# f convex and smooth (from :mod:`bregmod.model`), g prox-friendly (:class:`ProxPart`) and
# h_i the composites of J's splitting view. Smooth parts are written f(x) = F(x, images(x))
# with ``images`` *linear* in x, so that an accelerated method can extrapolate the images
# instead of re-applying the operators.


def all_finite(*arrays: np.ndarray) -> bool:
    """True iff every entry of every array is finite (a cheap divergence guard)."""
    return all(np.isfinite(np.sum(a, dtype=np.float64)) for a in arrays)


class ProxPart:
    """The prox-friendly part g of the splitting: g(x) = J_simple(u₀) (+ Ψ(z) when lifted).

    ``J_simple`` is the ``simple`` of ``problem.reg.split()`` (None: no term). x is a stacked
    batch whose first entries are u₀ (u₀ is the first block of u) and, when ``z_start`` is
    given, whose entries from ``z_start`` on are z. The prox acts blockwise: prox_{tJ_simple}
    on u₀, prox_{tΨ} on z (the activations' ``prox_scaled``), the identity elsewhere.

    Parameters
    ----------
    setup : Setup
        The run.
    simple : Regularizer or None
        The simple part of J.
    z_start : int or None
        Offset of z in x: n_u for x = (u, z), n_in for x = (u₀, z); None when x = u₀.
    """

    def __init__(self, setup: Setup, simple, z_start: int | None) -> None:
        self.simple = simple
        self.dtype = setup.dtype
        lifted = setup.problem.lifted
        self.network = None if z_start is None else lifted
        self.input_shape = lifted.input_shape
        self.u0 = setup.u0_slice
        self.z_start = z_start

    def _u0(self, v: np.ndarray) -> np.ndarray:
        return v[:, self.u0].reshape(v.shape[0], *self.input_shape)

    def prox(self, v: np.ndarray, t: float) -> np.ndarray:
        """prox_{t g}(v) for a batch v (B, n_x) and a scalar step t > 0."""
        out = v.copy()
        if self.simple is not None:
            u0 = self.simple.prox(self._u0(v), t)
            out[:, self.u0] = np.asarray(u0, dtype=self.dtype).reshape(v.shape[0], -1)
        if self.network is not None:
            out[:, self.z_start :] = self.network.prox_scaled(v[:, self.z_start :], t)
        return out

    def total(self, x: np.ndarray) -> float:
        """g(x) summed over the batch: J_simple(u₀) (+ Ψ(z) if lifted).

        A batch total, because a regulariser without an item shape values a batch as one item.
        """
        value = 0.0 if self.simple is None else float(np.sum(self.simple(self._u0(x))))
        if self.network is not None:
            value += float(np.sum(self.network.psi(x[:, self.z_start :])))
        return value
