"""The ``bregmod`` command line.

::

    bregmod run SPEC [--out DIR] [--quick] [--set KEY=VALUE ...] [--no-progress] [--no-figures]
                     [--workers N | --scheduler ADDRESS]
    bregmod certify SPEC [--method {exact,paper}] [--quick] [--set KEY=VALUE ...]
    bregmod bound SPEC [--delta D] [--solver NAME] [--zero-tol T] [--quick] [--set ...]
    bregmod conjugate EXPR [--sigma] [--var NAME] [--domain LO HI] [--no-verify]
    bregmod examples
    bregmod train SPEC --out DIR [--resume] [--quick] [--set KEY=VALUE ...] [--no-progress]

SPEC is a spec file (:mod:`bregmod.spec`) or the name of a bundled spec (``bregmod examples``
lists them). ``--quick`` applies the spec's ``[quick]`` overrides (reduced sizes); ``--set``
overrides any entry by its dotted path, the value written in TOML (``--set solver.tol=1e-3``,
``--set 'input.shape=[32, 32]'``; a bare word is taken as a string: ``--set solver.name=pdhg``).
``--workers N`` solves the items of a spec with batched data on a local Dask cluster of N
worker processes, ``--scheduler ADDRESS`` on a running one (:mod:`bregmod.distributed`; the
extra ``bregmod[distributed]``).

Exit codes
----------
0
    Success: solved to tolerance (status ``optimal``, or ``stationary`` on a problem that is
    not certified convex: a local solution, and the summary says so), certified, bound
    verified, identities verified.
1
    The command ran but the answer is negative: the solver stopped without converging
    (status other than ``optimal`` or ``stationary``; the outputs are still written), the
    problem is not certified, the error estimate is not verified (violated, inconclusive,
    vacuous, a premise fails or the source condition has no solution), the expression is not
    an admissible activation or fails a verification check.
2
    An error: bad usage, a malformed spec (the message names file, line and key), a
    missing file, an uncertified problem sent to the exact solver, a missing optional
    dependency. The message is one line on stderr, ``bregmod: error: ...``.
130
    Interrupted (Ctrl-C). During ``bregmod run``'s solve a first Ctrl-C stops a first-order
    solver at its next iteration and writes its iterate with status ``"interrupted"``
    (report.json says so); a second Ctrl-C, or one outside the solve, aborts without output.
    (The CVXPY backend is not interrupted by the first Ctrl-C; press it twice.)

Progress: on a terminal ``run`` shows a progress bar; otherwise (logs, pipes) it prints a line
every 10 s. ``--no-progress`` turns both off.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import tempfile
import threading
import tomllib
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bregmod import __version__
from bregmod.errors import BregmodError, NotAdmissibleError
from bregmod.solvers import registry

__all__ = ["main"]

#: Exit status of a command that ran but whose answer is negative.
EXIT_NEGATIVE = 1
#: Exit status of an error.
EXIT_ERROR = 2
#: Exit status after Ctrl-C (128 + SIGINT).
EXIT_INTERRUPTED = 130


class _UsageError(Exception):
    """Bad command-line usage (raised instead of argparse's print-and-exit)."""


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, reported by :func:`main`."""

    def error(self, message: str):
        raise _UsageError(f"{message} (see '{self.prog} --help')")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Print a warning as one line on stderr (``warnings.showwarning`` signature)."""
    print(f"bregmod: warning: {_one_line(message)} ({category.__name__})", file=sys.stderr)


def _negative(message: str) -> int:
    print(f"bregmod: {message}", file=sys.stderr)
    return EXIT_NEGATIVE


def _override(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE in TOML syntax (a bare word is a string)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise _UsageError(f"--set expects KEY=VALUE, got {text!r}")
    try:
        parsed = tomllib.loads(f"value = {value.strip()}")["value"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return key.strip(), parsed


def _load(args: argparse.Namespace):
    from bregmod.spec import load_spec, resolve_spec

    overrides = dict(_override(item) for item in args.set)
    return load_spec(resolve_spec(args.spec), quick=args.quick, overrides=overrides,
                     check_memory=not args.no_memory_check)


def _writable_directory(out: Path) -> None:
    """Create ``out`` and check that a file can be written in it, before any work is done."""
    for parent in (out, *out.parents):
        if parent.exists() and not parent.is_dir():
            what = "is a file" if parent == out else f"lies under the file {parent}"
            raise _UsageError(f"--out {out} {what}: give a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise _UsageError(f"--out {out} is not writable: {exc.strerror or exc}") from None


# --- commands -------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    from bregmod.problem import SolverWarning
    from bregmod.report import build_report, format_summary, write_outputs

    if args.out:
        _writable_directory(Path(args.out))
    spec = _load(args)
    out = Path(args.out) if args.out else Path("bregmod-out") / spec.name
    _writable_directory(out)
    progress = False if args.no_progress else True if sys.stderr.isatty() else "lines"
    with warnings.catch_warnings(), _stop_on_first_interrupt():
        warnings.simplefilter("ignore", SolverWarning)  # the status is reported below
        if args.workers is None and args.scheduler is None:
            result = spec.problem.solve(progress=progress, **spec.solver.kwargs())
        else:
            result = _run_on_cluster(args, spec, progress)
    report = build_report(spec, result)
    write_outputs(out, spec, result, report, figures=not args.no_figures)
    print(format_summary(report, out))
    if result.status == "interrupted":
        print(f"bregmod: interrupted: the iterate reached so far is written to {out} "
              f"(status 'interrupted')", file=sys.stderr)
        return EXIT_INTERRUPTED
    if result.status == "stationary":
        print("note: converged to a stationary point of a problem that is not certified convex "
              "(a local solution; no global optimum is claimed)")
    elif result.status != "optimal":
        return _negative(f"{result.solver} finished with status {result.status!r} (not "
                         f"converged to tol = {spec.solver.tol:g}); outputs written to {out}")
    return 0


def _run_on_cluster(args: argparse.Namespace, spec, progress: bool):
    """Solve the items of the spec's batch on a Dask cluster (``--workers``/``--scheduler``)."""
    import importlib.util

    from bregmod.distributed import cluster

    if spec.problem.batch_size is None:
        raise _UsageError(
            f"--workers/--scheduler solve the items of a batch in parallel, but {spec.name} has "
            "one data item; declare a batch (data.noise.copies = N, or a data file of shape "
            "(N, *output_shape))")
    if args.workers is not None and args.workers < 1:
        raise _UsageError(f"--workers must be >= 1, got {args.workers}")
    with cluster(workers=args.workers, scheduler=args.scheduler) as client:
        where = (f"local cluster of {args.workers} worker process(es)" if args.scheduler is None
                 else f"{len(client.nthreads())} worker(s)")
        dashboard = client.dashboard_link + (
            "" if importlib.util.find_spec("bokeh") else " (install bokeh to view it)")
        print(f"dask: {where} at {client.scheduler.address}, dashboard {dashboard}", flush=True)
        return spec.problem.solve(progress=progress, client=client, **spec.solver.kwargs())


@contextlib.contextmanager
def _stop_on_first_interrupt():
    """During a solve, a first Ctrl-C asks the solver to stop at its next iteration (status
    "interrupted", the iterate is kept); a second one aborts at once (KeyboardInterrupt)."""
    from bregmod.solvers._common import STOP_REQUESTED

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum, frame):
        STOP_REQUESTED.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print("bregmod: stopping at the next iteration to write the iterate reached "
              "(Ctrl-C again to abort without output)", file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, request_stop)
    STOP_REQUESTED.clear()
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        STOP_REQUESTED.clear()


def _certify(args: argparse.Namespace) -> int:
    spec = _load(args)
    certificate = spec.problem.certify(args.method)
    if certificate is None:
        return _negative("no certificate applies: the network is too large for the exact check "
                         "and V ≠ Wᵀ rules out the paper check")
    print(f"{spec.name}: {spec.problem!r}")
    print(certificate.explain())
    return 0 if certificate.certified else EXIT_NEGATIVE


def _split_weight(reg) -> tuple[float, Any]:
    """(α, J) with reg = α·J: the weight of a single-term sum, else (1, reg)."""
    from bregmod.regularizers import WeightedSum

    if isinstance(reg, WeightedSum) and len(reg.terms) == 1:
        return reg.terms[0]
    return 1.0, reg


def _bound(args: argparse.Namespace) -> int:
    from bregmod.theory import SourceConditionError, check_bound, source_element

    if args.delta is not None and not (np.isfinite(args.delta) and args.delta > 0):
        raise _UsageError(f"--delta must be a finite number > 0 (the noise level δ = "
                          f"√B_Ψ(f^δ, W u† + b) in the bound 2δ²/α + ...), got {args.delta}")
    spec = _load(args)
    problem = spec.problem
    if problem.fidelity != "bregman":
        raise ValueError("the error estimate is for the one-layer Bregman fidelity; set "
                         "model.fidelity = 'bregman' in the spec")
    if spec.ground_truth is None or problem.reg is None:
        raise ValueError("the error estimate needs data.ground_truth (u†) and a regulariser")
    alpha, J = _split_weight(problem.reg)
    truth, data = spec.ground_truth, spec.data
    energy = problem.energy()
    misfit = energy.data_term(energy.pre_activation(truth.reshape(1, -1)))[0]
    measured = float(np.sqrt(max(misfit, 0.0)))
    delta = measured if args.delta is None else args.delta
    if not delta > 0:
        raise ValueError("the data are noise-free (B_Ψ(f^δ, W u† + b) = 0): give --delta")
    domain = problem.activation.domain
    support = (data > domain.lo) & (data < domain.hi)  # v† = 0 where f^δ is on ∂ dom Ψ
    try:
        v = source_element(spec.network, J, truth, support=support.ravel(),
                           zero_tol=args.zero_tol)
    except SourceConditionError as exc:
        return _negative(f"bound: {_one_line(exc)}")
    check = check_bound(spec.network, J, truth, v, data, delta, alpha, solver=args.solver,
                        zero_tol=args.zero_tol)
    print(f"{spec.name}: J = {spec.regularizer} (α = {alpha:g}), measured δ = "
          f"√B_Ψ(f^δ, W u† + b) = {measured:.6g}, ‖v†‖ = {np.linalg.norm(v):.6g}")
    print(check.summary())
    # "vacuous" (an infinite Burbea–Rao part) holds trivially but verifies nothing.
    return 0 if check.holds and np.isfinite(check.bound) else EXIT_NEGATIVE


def _endpoint(text: str):
    """A domain end point: a float (``inf`` allowed) or an expression for the library."""
    try:
        return float(text)
    except ValueError:
        return text


def _conjugate(args: argparse.Namespace) -> int:
    from bregmod.symbolic import activation_from_psi, activation_from_sigma, verify

    try:
        if args.sigma:
            if args.domain:
                raise _UsageError("--domain applies to Ψ; σ is defined on all of ℝ")
            act = activation_from_sigma(args.expr, var=args.var or "x")
        else:
            domain = tuple(_endpoint(end) for end in args.domain) if args.domain else None
            act = activation_from_psi(args.expr, var=args.var or "u", domain=domain)
    except NotAdmissibleError as exc:
        return _negative(f"not admissible: {_one_line(exc)}")
    rows = [
        (f"Ψ({act.u_symbol})", act.psi_expr, f"on dom Ψ = {act.domain}"),
        (f"σ({act.x_symbol})", act.sigma_expr, f"range {act.range}"),
        (f"Φ*({act.x_symbol})", act.phi_conj_expr, "Φ = ½u² + Ψ"),
        (f"σ⁻¹({act.u_symbol})", act.sigma_inv_expr, ""),
    ]
    print(act.name)
    for label, expr, note in rows:
        shown = "(no closed form: evaluated numerically)" if expr is None else str(expr)
        print(f"  {label} = {shown}" + (f"    [{note}]" if note else ""))
    for note in act.notes:
        print(f"  note: {note}")
    if args.no_verify:
        return 0
    report = verify(act)
    print(report.summary())
    return 0 if report.passed else EXIT_NEGATIVE


def _examples(args: argparse.Namespace) -> int:
    from bregmod.spec import SPEC_DIR, bundled_specs

    specs = bundled_specs()
    width = max((len(name) for name in specs), default=0)
    for name, (_, description) in specs.items():
        print(f"{name:<{width}}  {description}")
    print(f"\nrun one with: bregmod run NAME [--quick] [--out DIR]   (spec files in {SPEC_DIR})")
    return 0


def _train(args: argparse.Namespace) -> int:
    from bregmod.training_spec import load_training_spec, write_outputs

    overrides = dict(_override(item) for item in args.set)
    spec = load_training_spec(args.spec, quick=args.quick, overrides=overrides)
    out = Path(args.out)
    checkpoint = out / "checkpoint.npz"
    progress = not args.no_progress and sys.stderr.isatty()
    try:
        result = spec.training.solve(validation=spec.validation, checkpoint=checkpoint,
                                     resume=args.resume, progress=progress, **spec.solve_options)
    except KeyboardInterrupt:
        print(f"bregmod: interrupted; checkpoint saved to {checkpoint} (continue with --resume)",
              file=sys.stderr)
        return 130
    report = write_outputs(out, spec, result)
    final = report["final"]
    print(f"{spec.name}: {report['stats']['epochs']} epochs, status {result.status}, "
          f"{result.wall_time:.1f} s; energy {final['energy']:.4g}, train MSE "
          f"{final['train_loss']:.4g}" + (f", validation MSE {final['val_loss']:.4g}"
                                          if final["val_loss"] is not None else ""))
    print(f"wrote {out / 'weights.npz'}, report.json, loss_curves.png, checkpoint.npz")
    return 0


# --- parser ---------------------------------------------------------------------------------


def _spec_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="spec file, or the name of a bundled spec "
                                     "(see 'bregmod examples')")
    parser.add_argument("--quick", action="store_true",
                        help="apply the spec's [quick] overrides (reduced sizes)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a spec entry by dotted path, VALUE in TOML syntax "
                             "(repeatable), e.g. --set solver.tol=1e-3")
    parser.add_argument("--no-memory-check", action="store_true",
                        help="do not refuse a spec whose estimated memory exceeds the memory "
                             "available")


def _parser() -> _Parser:
    parser = _Parser(
        prog="bregmod",
        description="Lifted Bregman inversion of neural networks: run, certify and check "
                    "declarative specs, derive activations symbolically.",
        epilog="Exit codes: 0 success; 1 ran but the answer is negative (not converged, not "
               "certified, bound not verified, not admissible); 2 error; 130 interrupted "
               "(Ctrl-C; run writes the iterate reached with status 'interrupted').",
    )
    parser.add_argument("--version", action="version", version=f"bregmod {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run", help="compile, certify and solve a spec; write result.npz, report.json, figures",
        description="Compile the spec's network, certify the model, solve it (with a progress "
                    "bar on a terminal; the CVXPY backend shows its solver's log instead), "
                    "print a summary table and write result.npz, report.json, "
                    "reconstruction.png and convergence.png to DIR. Exit 1 when the solver "
                    "stops without converging (the outputs are still written).")
    _spec_arguments(run)
    run.add_argument("--out", metavar="DIR",
                     help="output directory (default: bregmod-out/<spec name>)")
    run.add_argument("--no-progress", action="store_true",
                     help="no progress bar (on a terminal) or progress lines (elsewhere)")
    run.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    target = run.add_mutually_exclusive_group()
    target.add_argument("--workers", type=int, metavar="N",
                        help="solve the items of a batched spec on a local Dask cluster of N "
                             "worker processes (prints the dashboard address)")
    target.add_argument("--scheduler", metavar="ADDRESS",
                        help="solve the items of a batched spec on the Dask cluster at ADDRESS "
                             "(tcp://host:8786)")
    run.set_defaults(handler=_run)

    certify = commands.add_parser(
        "certify", help="check that the spec's lifted model is convex",
        description="Check the convexity certificate of the spec's model and explain it. "
                    "Exit 0 when certified, 1 when not.")
    _spec_arguments(certify)
    certify.add_argument("--method", choices=("exact", "paper"),
                         help="certificate (default: exact when small enough, else paper)")
    certify.set_defaults(handler=_certify)

    bound = commands.add_parser(
        "bound", help="check the error estimate of a one-layer Bregman-fidelity spec",
        description="For a one-layer spec with fidelity = 'bregman', J = α·J₀ and a known "
                    "ground truth: find the minimal-norm source element v† (Wᵀv† ∈ ∂J₀(u†), "
                    "v† = 0 where f^δ is on the boundary of dom Ψ), measure "
                    "δ = √B_Ψ(f^δ, W u† + b), solve, and check D_J(u_α, u†) against "
                    "2δ²/α + α‖v†‖² + Burbea–Rao term. Exit 0 when verified, 1 otherwise.")
    _spec_arguments(bound)
    bound.add_argument("--delta", type=float,
                       help="claimed noise level δ (default: the measured one)")
    bound.add_argument("--solver", default="cvxpy", choices=registry.names(),
                       help="solver for u_α (default cvxpy)")
    bound.add_argument("--zero-tol", type=float, default=1e-6,
                       help="entries (TV: gradient vectors) below this count as zero in "
                            "subgradient tests (default 1e-6)")
    bound.set_defaults(handler=_bound)

    conjugate = commands.add_parser(
        "conjugate", help="derive σ, Ψ and Φ* from a formula and verify them",
        description="Derive the activation σ = prox_Ψ from a formula for Ψ (default) or for σ "
                    "(--sigma), print Ψ, σ, Φ* = (½‖·‖² + Ψ)* and σ⁻¹, and verify the "
                    "identities numerically and symbolically. Exit 1 when the formula is "
                    "not admissible or a check fails.")
    conjugate.add_argument("expr", help="formula, e.g. 'abs(u)' or (with --sigma) 'tanh(x)'")
    conjugate.add_argument("--sigma", action="store_true", help="EXPR is σ, not Ψ")
    conjugate.add_argument("--var", help="variable of EXPR (default u for Ψ, x for σ)")
    conjugate.add_argument("--domain", nargs=2, metavar=("LO", "HI"),
                           help="dom Ψ (default ℝ); end points may be inf or expressions")
    conjugate.add_argument("--no-verify", action="store_true", help="skip the verification")
    conjugate.set_defaults(handler=_conjugate)

    train = commands.add_parser(
        "train", help="lifted Bregman training of a training spec; write weights.npz, "
                      "report.json, loss_curves.png",
        description="Train the spec's network by lifted Bregman training (bregmod.Training: "
                    "implicit SGD, proximal-gradient subproblems, no backpropagation). Writes "
                    "weights.npz (W1, b1, ...), report.json, loss_curves.png and a checkpoint "
                    "(every [solver] checkpoint_every epochs and on Ctrl-C) to DIR; --resume "
                    "continues from DIR/checkpoint.npz. SPEC is a training spec file or a "
                    "bundled one (teacher-student).")
    _spec_arguments(train)
    train.add_argument("--out", metavar="DIR", required=True, help="output directory")
    train.add_argument("--resume", action="store_true",
                       help="continue from DIR/checkpoint.npz up to [solver] epochs in total")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.set_defaults(handler=_train)

    examples = commands.add_parser("examples", help="list the bundled specs",
                                   description="List the specs bundled with bregmod.")
    examples.set_defaults(handler=_examples)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``bregmod`` command line; return the exit status (see the module docstring)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
        with warnings.catch_warnings():  # restores the default display afterwards
            warnings.showwarning = _show_warning
            return args.handler(args)
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else 0
    except _UsageError as exc:
        print(f"bregmod: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("bregmod: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (BregmodError, ValueError, OSError, ImportError, NotImplementedError) as exc:
        print(f"bregmod: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
