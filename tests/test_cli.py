"""Tests of the ``bregmod`` command line (bregmod.cli) and its outputs (bregmod.report).

Commands run in-process through ``main(argv)``; one test runs ``python -m bregmod`` as a process.
Every error path must print exactly one line ``bregmod: error: ...`` to stderr, nothing to
stdout, and return 2; "ran but negative" outcomes return 1.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bregmod.cli import main
from bregmod.report import FIGURES, REPORT_KEYS
from bregmod.spec import bundled_specs

SPEC = """\
name = "tiny"

[input]
shape = [6, 6]

[[layers]]
type = "dense"
out = 48
activation = "relu"
weights = { distribution = "normal", seed = 0 }
bias = { distribution = "normal", seed = 1 }

[data]
ground_truth = { image = "phantom" }
noise = { level = 0.01, where = "pre_activation", seed = 2 }

[regularizer]
expr = "0.05 * tv"

[model]
fidelity = "bregman"

[solver]
name = "cvxpy"
tol = 1e-7
"""


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_error(capsys, *argv: str, fragments: tuple[str, ...] = ()) -> str:
    code, out, err = run(capsys, *argv)
    assert code == 2, err
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("bregmod: error: ")
    for fragment in fragments:
        assert fragment in err
    return err


@pytest.fixture
def spec_file(tmp_path):
    def write(text: str = SPEC, name: str = "spec.toml"):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write


# --- help, listing, usage ----------------------------------------------------------------------


@pytest.mark.parametrize("command", [[], ["run"], ["certify"], ["bound"], ["conjugate"],
                                     ["examples"]])
def test_help_everywhere(capsys, command):
    code, out, _ = run(capsys, *command, "--help")
    assert code == 0 and out.startswith("usage: bregmod")


def test_examples_lists_every_bundled_spec(capsys):
    code, out, _ = run(capsys, "examples")
    assert code == 0
    for name, (_, description) in bundled_specs().items():
        assert f"{name}  " in out and description in out


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        ((), "required: COMMAND"),
        (("frobnicate",), "invalid choice: 'frobnicate'"),
        (("run",), "required: spec"),
        (("certify", "perceptron-tv", "--method", "fast"), "invalid choice: 'fast'"),
        (("run", "perceptron-tv", "--set", "solver.tol"), "--set expects KEY=VALUE"),
    ],
)
def test_usage_errors(capsys, argv, fragment):
    assert_error(capsys, *argv, fragments=(fragment,))


# --- spec error paths (the list) -------------------------------------------------------


def test_bad_toml(capsys, spec_file):
    path = spec_file(SPEC.replace("out = 48", "out = = 48"))
    assert_error(capsys, "run", str(path), fragments=("invalid TOML", "line 8, column 7"))


def test_unknown_key(capsys, spec_file):
    path = spec_file(SPEC.replace("[model]", "[model]\nlambda = 2.0"))
    assert_error(capsys, "certify", str(path),
                 fragments=(f"{path}, line 21: model.lambda: unknown key 'lambda'",))


def test_missing_weight_file(capsys, spec_file):
    path = spec_file(SPEC.replace('{ distribution = "normal", seed = 0 }', '{ file = "W.npz" }'))
    assert_error(capsys, "run", str(path),
                 fragments=("line 10: layers.0.weights.file: file not found", "W.npz"))


def test_shape_mismatch(capsys, spec_file, tmp_path):
    np.save(tmp_path / "W.npy", np.zeros((48, 35)))
    path = spec_file(SPEC.replace('{ distribution = "normal", seed = 0 }', '{ file = "W.npy" }'))
    assert_error(capsys, "run", str(path),
                 fragments=("layers.0.weights.file", "(48, 35)", "expected shape (48, 36)"))


def test_uncertified_problem_sent_to_the_exact_solver(capsys, spec_file):
    text = SPEC.replace('fidelity = "bregman"', 'fidelity = "quadratic"')
    err = assert_error(capsys, "run", str(spec_file(text)), fragments=("not certified",))
    assert "cvxpy" in err.lower() or "exact" in err.lower()


def test_unknown_spec_name_and_missing_file(capsys, tmp_path):
    assert_error(capsys, "run", "perceptron-tvv", fragments=("no bundled spec of that name",))
    assert_error(capsys, "certify", str(tmp_path / "nope.toml"),
                 fragments=("no spec file", "nope.toml"))


def test_bad_override_value(capsys):
    assert_error(capsys, "run", "perceptron-tv", "--quick", "--set", "solver.tol=fast",
                 fragments=("solver.tol: expected number", "(value from the command line)"))


def test_bound_needs_a_one_layer_bregman_spec(capsys, spec_file):
    text = SPEC.replace('fidelity = "bregman"', 'fidelity = "quadratic"')
    assert_error(capsys, "bound", str(spec_file(text)),
                 fragments=("one-layer Bregman fidelity",))


# --- run: outputs and report -------------------------------------------------------------------


def test_run_writes_result_report_and_figures(capsys, spec_file, tmp_path):
    out_dir = tmp_path / "out"
    code, out, err = run(capsys, "run", str(spec_file()), "--out", str(out_dir))
    assert code == 0, err
    for name in ("result.npz", "report.json", *FIGURES):
        assert (out_dir / name).stat().st_size > 0
    report = json.loads((out_dir / "report.json").read_text())
    assert tuple(report) == REPORT_KEYS
    assert report["solver"] == {
        "requested": "cvxpy", "used": "cvxpy", "auto_reason": None, "status": "optimal",
        "iterations": report["solver"]["iterations"], "wall_time": report["solver"]["wall_time"],
        "tol": 1e-7, "max_iter": None,
    }
    assert report["certificate"]["certified"] and report["certificate"]["method"] == "structure"
    assert report["global_optimum_claimed"] is True
    assert report["spec"]["input_shape"] == [6, 6] and report["spec"]["regularizer"] == "0.05·tv"
    assert report["files"] == ["result.npz", *FIGURES, "report.json"]
    with np.load(out_dir / "result.npz", allow_pickle=False) as saved:
        truth, u0 = saved["ground_truth"], saved["u0"]
        assert u0.shape == (6, 6) and saved["data"].shape == (48,)
    from bregmod.metrics import psnr

    assert report["metrics"]["psnr"] == pytest.approx(psnr(u0, truth))
    assert report["metrics"]["relative_error"] == pytest.approx(
        np.linalg.norm(u0 - truth) / np.linalg.norm(truth))
    assert (report["bregman_gaps"][0]["block"] == "data misfit B_Ψ(f^δ, W u + b)"
            and report["bregman_gaps"][0]["value"] >= 0)
    for label in ("certificate", "CERTIFIED", "solver", "iterations", "time", "objective",
                  "Bregman gap", "PSNR", "SSIM", str(out_dir)):
        assert label in out


@pytest.fixture(scope="module")
def quick_runs(tmp_path_factory) -> dict[str, tuple[int, str, str, Path]]:
    """``bregmod run NAME --quick`` of every bundled spec, once: name → (code, out, err, dir)."""
    runs = {}
    for name in sorted(bundled_specs()):
        folder = tmp_path_factory.mktemp(name)
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["run", name, "--quick", "--out", str(folder)])
        runs[name] = (code, out.getvalue(), err.getvalue(), folder)
    return runs


#: PSNR of each bundled spec's quick run, a margin below the measured value (2026-12-02:
#: perceptron-tv 21.58 dB, perceptron-tv-quadratic 20.58 dB, perceptron-bound 38.98 dB; the
#: zero image scores 14.07 dB and 11.27 dB). A new bundled spec needs its measured entry.
QUICK_PSNR = {"perceptron-tv": 20.5, "perceptron-tv-quadratic": 19.5, "perceptron-bound": 37.5,
              "perceptron-tv-batch": 20.5}


@pytest.mark.parametrize("name", sorted(bundled_specs()))
def test_every_bundled_spec_runs_end_to_end_in_quick_mode(quick_runs, name):
    code, out, err, folder = quick_runs[name]
    report = json.loads((folder / "report.json").read_text())
    # a bundled spec must reach its tolerance (stopping at max_iter is not success)
    assert report["solver"]["status"] in ("optimal", "stationary") and code == 0, err
    assert report["spec"]["name"] == name and report["spec"]["quick"]
    assert report["files"] == ["result.npz", *FIGURES, "report.json"]
    assert all((folder / file).stat().st_size > 0 for file in report["files"])
    # a batched spec has one value per item (perceptron-tv-batch: 21.57-21.61 dB)
    assert np.min(report["metrics"]["psnr"]) > QUICK_PSNR[name]
    assert f"bregmod run: {name}" in out


def test_quick_perceptron_tv_report(quick_runs):
    code, _, err, folder = quick_runs["perceptron-tv"]
    assert code == 0, err
    report = json.loads((folder / "report.json").read_text())
    assert report["spec"]["regularizer"] == "1.92·tv"  # 0.015 · m, m = 128 outputs
    assert report["solver"]["used"] == "admm" and report["solver"]["status"] == "optimal"
    assert report["global_optimum_claimed"] and report["metrics"]["psnr"] > 20.5  # 21.58 dB
    with np.load(folder / "result.npz") as saved:
        assert saved["history_primal_residual"].shape == (report["solver"]["iterations"],)


def test_quick_quadratic_variant_report(quick_runs):
    folder = quick_runs["perceptron-tv-quadratic"][3]
    report = json.loads((folder / "report.json").read_text())
    assert report["spec"]["fidelity"] == "quadratic" and report["spec"]["lam"] == 1.0
    assert report["certificate"]["certified"] is False and not report["global_optimum_claimed"]
    assert [gap["block"] for gap in report["bregman_gaps"]] == ["z1 (layer 1, Dense)"]


def test_run_that_does_not_converge_exits_1_and_still_writes(capsys, tmp_path):
    code, out, err = run(capsys, "run", "perceptron-tv", "--quick", "--out", str(tmp_path),
                         "--set", "solver.max_iter=5", "--no-figures")
    assert code == 1
    assert err.count("\n") == 1 and "status 'max_iter'" in err and str(tmp_path) in err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["solver"]["status"] == "max_iter" and report["solver"]["iterations"] == 5
    assert report["files"] == ["result.npz", "report.json"]
    assert not report["global_optimum_claimed"]


# --- certify, bound, conjugate -----------------------------------------------------------------


def test_certify(capsys):
    code, out, _ = run(capsys, "certify", "perceptron-tv", "--quick")
    assert code == 0 and "CERTIFIED by structure" in out
    code, out, _ = run(capsys, "certify", "perceptron-tv-quadratic", "--quick",
                       "--set", "input.shape=[8, 8]", "--set", "layers.0.out=32")
    assert code == 1 and "NOT certified" in out and "To certify" in out
    assert "Dense(64→32, ReLU)" in out


def test_bound_verifies_the_error_estimate(capsys):
    code, out, err = run(capsys, "bound", "perceptron-bound", "--quick")
    assert code == 0, err
    assert "verified" in out and "measured δ" in out and "Burbea–Rao = 0" in out


def test_bound_with_too_small_a_claimed_delta_is_negative(capsys):
    code, out, _ = run(capsys, "bound", "perceptron-bound", "--quick", "--delta", "0.01")
    assert code == 1 and "premise violated" in out


def test_bound_with_an_infinite_burbea_rao_part_is_vacuous_and_negative(capsys):
    code, out, err = run(capsys, "bound", "perceptron-bound", "--quick",
                         "--set", 'regularizer.expr="5 * tv"')
    assert code == 1, err
    assert "vacuous" in out and "bound = inf" in out


def test_bound_without_a_source_element_is_negative(capsys):
    code, out, err = run(capsys, "bound", "perceptron-bound", "--quick",
                         "--set", "layers.0.out=16")
    assert code == 1 and out == ""
    assert err.startswith("bregmod: bound: the source condition fails") and err.count("\n") == 1


_REAL_BOUND_CHECK: dict = {}


@pytest.mark.parametrize(
    ("verdict", "holds", "bound", "expected"),
    [
        ("verified", True, 2.0, 0),
        ("vacuous: the Burbea–Rao part is +inf, so the bound says nothing", True, np.inf, 1),
        ("violated: D_J^sym exceeds the bound by more than the tolerance", False, 2.0, 1),
        ("inconclusive: |D_J^sym − bound| is within the tolerance term", False, 2.0, 1),
        ("premise violated: noise level > δ²", False, 2.0, 1),
    ],
    ids=["verified", "vacuous", "violated", "inconclusive", "premise-violated"],
)
def test_bound_exit_code_of_every_verdict(capsys, monkeypatch, verdict, holds, bound, expected):
    """The exit status follows the verdict (each verdict of ``check_bound``, not only the ones a
    bundled spec reaches); the real check (run once) is given that verdict."""
    import dataclasses

    from bregmod import theory

    real = theory.check_bound

    def with_verdict(*args, **kwargs):
        if "check" not in _REAL_BOUND_CHECK:
            _REAL_BOUND_CHECK["check"] = real(*args, **kwargs)
        return dataclasses.replace(_REAL_BOUND_CHECK["check"], verdict=verdict, holds=holds,
                                   bound=bound)

    monkeypatch.setattr(theory, "check_bound", with_verdict)
    code, out, err = run(capsys, "bound", "perceptron-bound", "--quick")
    assert code == expected, err
    assert verdict in out


def test_conjugate_of_psi(capsys):
    code, out, err = run(capsys, "conjugate", "abs(u)")
    assert code == 0, err
    assert "σ(x) =" in out and "Φ*(x) =" in out and "PASSED" in out


def test_conjugate_of_sigma(capsys):
    code, out, err = run(capsys, "conjugate", "--sigma", "max(x, 0)")
    assert code == 0, err
    assert "Ψ(u) =" in out and "PASSED" in out


def test_conjugate_of_a_non_admissible_sigma(capsys):
    code, out, err = run(capsys, "conjugate", "--sigma", "2*x")
    assert code == 1 and out == ""
    assert err.startswith("bregmod: not admissible: ") and err.count("\n") == 1


def test_conjugate_refuses_code(capsys):
    assert_error(capsys, "conjugate", "__import__('os').system('true')",
                 fragments=("disallowed construct",))


# --- the command as a process ------------------------------------------------------------------


def test_command_line_process_exit_code(tmp_path):
    """``python -m bregmod`` (the same ``main`` as the console script) in a fresh process."""
    bad = subprocess.run([sys.executable, "-m", "bregmod", "certify", str(tmp_path / "x.toml")],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("bregmod: error: ") and bad.stderr.count("\n") == 1


def test_warnings_are_shown_on_one_line(capsys, monkeypatch):
    import warnings

    from bregmod import cli

    def noisy(args):
        warnings.simplefilter("always")
        warnings.warn("first line\nsecond line", UserWarning, stacklevel=1)
        return 0

    shown = warnings.showwarning
    monkeypatch.setattr(cli, "_examples", noisy)
    code, out, err = run(capsys, "examples")
    assert code == 0 and out == ""
    assert err == "bregmod: warning: first line second line (UserWarning)\n"
    assert warnings.showwarning is shown


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("bregmod ")


@pytest.mark.parametrize("expr, message", [
    ("((9**999)**999)**999*0 + x/2", "exact constants are limited"),
    ("tanh(" * 150 + "x" + ")" * 150, "nested too deeply"),
])
def test_conjugate_refuses_expressions_that_cost_unbounded_work(capsys, expr, message):
    assert_error(capsys, "conjugate", expr, "--sigma", fragments=(message,))


def test_conjugate_calls_a_step_function_discontinuous(capsys):
    code, out, err = run(capsys, "conjugate", "--sigma", "Heaviside(x)")
    assert code == 1
    assert "discontinuous at x = 0" in err and "constant" not in err


# --- hardening (issue 16, items 3, 4, 7, 9) ----------------------------------------------------


@pytest.mark.parametrize("override", ["input.shape=[100000, 100000]", "layers.0.out=100000"])
def test_run_refuses_a_spec_larger_than_memory_before_allocating(capsys, tmp_path, override):
    err = assert_error(capsys, "run", "perceptron-tv", "--set", override, "--out",
                       str(tmp_path / "o"), fragments=("GiB of memory", "GiB are available",
                                                       "--no-memory-check"))
    assert ("input.shape" if "input" in override else "layers.0.out") in err


@pytest.mark.parametrize("where", ["file", "under_file", "read_only"])
def test_run_checks_out_before_any_work(capsys, tmp_path, spec_file, monkeypatch, where):
    import os

    import bregmod.spec as spec_module

    blocker = tmp_path / "taken"
    blocker.write_text("x")
    out = {"file": blocker, "under_file": blocker / "sub", "read_only": tmp_path / "ro" / "o"}
    if where == "read_only":
        (tmp_path / "ro").mkdir(mode=0o500)
        if os.access(tmp_path / "ro", os.W_OK):  # root writes anyway: the OS refusal, simulated
            import bregmod.cli as cli_module

            def refused(*args, **kwargs):
                raise PermissionError(13, "Permission denied")

            monkeypatch.setattr(cli_module.tempfile, "TemporaryFile", refused)

    def forbidden(*args, **kwargs):
        raise AssertionError("the spec was loaded before --out was checked")

    monkeypatch.setattr(spec_module, "load_spec", forbidden)
    fragment = {"file": "is a file", "under_file": "lies under the file",
                "read_only": "is not writable"}[where]
    assert_error(capsys, "run", str(spec_file()), "--out", str(out[where]),
                 fragments=(fragment,))


@pytest.mark.parametrize("delta", ["-1", "0", "nan", "inf"])
def test_bound_says_an_invalid_delta_is_invalid(capsys, delta):
    err = assert_error(capsys, "bound", "perceptron-bound", "--quick", "--delta", delta,
                       fragments=("--delta must be a finite number > 0",))
    assert "noise-free" not in err


def test_certify_of_a_directory_says_it_is_a_directory(capsys, tmp_path):
    (tmp_path / "d.toml").mkdir()
    assert_error(capsys, "certify", str(tmp_path / "d.toml"), fragments=("is a directory",))


# --- Ctrl-C and progress lines (issue 16, items 5, 21) -----------------------------------------

FIRST_ORDER_SPEC = SPEC.replace('name = "cvxpy"\ntol = 1e-7',
                                'name = "pdhg"\ntol = 1e-9\nmax_iter = 5000')


def test_first_ctrl_c_writes_the_iterate_reached_with_status_interrupted(capsys, spec_file,
                                                                         tmp_path, monkeypatch):
    import os
    import signal

    from bregmod.solvers import _common

    original = _common.Monitor.record

    def record(self, iteration, **values):
        if iteration == 3:
            os.kill(os.getpid(), signal.SIGINT)  # the user presses Ctrl-C during the solve
        return original(self, iteration, **values)

    monkeypatch.setattr(_common.Monitor, "record", record)
    out_dir = tmp_path / "out"
    code, out, err = run(capsys, "run", str(spec_file(FIRST_ORDER_SPEC)), "--out", str(out_dir),
                         "--no-figures")
    assert code == 130, err
    assert "stopping at the next iteration" in err and "status 'interrupted'" in err
    report = json.loads((out_dir / "report.json").read_text())
    assert report["solver"]["status"] == "interrupted" and report["solver"]["iterations"] == 3
    assert not report["global_optimum_claimed"]
    with np.load(out_dir / "result.npz") as saved:
        assert np.isfinite(saved["u0"]).all() and saved["history_primal_residual"].shape == (3,)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored
    assert not _common.STOP_REQUESTED.is_set()


def test_progress_lines_off_a_terminal(capsys, spec_file, tmp_path, monkeypatch):
    from bregmod.solvers import _common

    monkeypatch.setattr(_common, "PROGRESS_LINE_INTERVAL", 0.0)
    code, out, err = run(capsys, "run", str(spec_file(FIRST_ORDER_SPEC.replace(
        "max_iter = 5000", "max_iter = 4"))), "--out", str(tmp_path / "o"), "--no-figures")
    assert code == 1  # 4 iterations do not reach tol
    lines = [line for line in err.splitlines() if line.startswith("pdhg: iteration")]
    assert [line.split()[2] for line in lines] == ["1/4,", "2/4,", "3/4,", "4/4,"]
    assert "relative residuals" in lines[0] and "(tol 1e-09)" in lines[0]
    _, _, quiet = run(capsys, "run", str(spec_file(FIRST_ORDER_SPEC.replace(
        "max_iter = 5000", "max_iter = 4"))), "--out", str(tmp_path / "q"), "--no-figures",
        "--no-progress")
    assert "pdhg: iteration" not in quiet
