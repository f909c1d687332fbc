"""Tests of bregmod.distributed: batch inversion on a local Dask cluster of 2 worker processes.

The reference is always the in-process solver: the distributed result must equal the
single-process batched solve item by item (exactly where the solver treats items separately
or the chunks are the same; to the tolerance where chunking changes when a batched run
stops), and a run that loses a worker must return exactly what an undisturbed run returns.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import warnings

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

import bregmod.activations as act  # noqa: E402
from bregmod.cli import main  # noqa: E402
from bregmod.distributed import chunk_slices, cluster, solve_batch  # noqa: E402
from bregmod.errors import SolverWarning  # noqa: E402
from bregmod.network import Conv2d, Dense, Residual, Sequential  # noqa: E402
from bregmod.problem import Inversion  # noqa: E402
from bregmod.regularizers import L1, Box, NonNegative, SquaredL2, TotalVariation  # noqa: E402
from bregmod.spec import load_spec, resolve_spec  # noqa: E402
from bregmod.symbolic import activation_from_psi  # noqa: E402

BATCH = 8


@pytest.fixture(scope="module")
def client():
    """One LocalCluster of 2 single-threaded worker processes for the module (closed after)."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as local:
        with distributed.Client(local, timeout=30) as c:
            yield c


def perceptron_batch(batch: int = BATCH, seed: int = 0, tv: bool = False) -> Inversion:
    """A batch of one-layer ReLU inversions of 4×4 images with ℓ1 or TV (Bregman fidelity)."""
    rng = np.random.default_rng(seed)
    net = Dense(rng.standard_normal((24, 16)), 0.5 * rng.standard_normal(24), act.ReLU())
    truth = np.clip(rng.standard_normal((batch, 16)), 0, None)
    data = np.asarray(net(truth)) + 0.01 * rng.random((batch, 24))
    reg = 0.3 * TotalVariation((4, 4)) if tv else 0.3 * L1()
    return Inversion(net, data, reg=reg, fidelity="bregman")


def residual_batch(batch: int = BATCH) -> Inversion:
    """A batch of lifted (quadratic fidelity) inversions of a 2-layer residual ReLU net."""
    rng = np.random.default_rng(1)
    net = Sequential(*[Residual(0.5 * rng.standard_normal((3, 4)), 0.1 * rng.standard_normal(3),
                                act.ReLU()) for _ in range(2)])
    data = np.asarray(net(rng.standard_normal((batch, 4))))
    return Inversion(net, data, reg=0.1 * L1(), lam=1.0, rho=10.0)


# --- chunks and serialisation ------------------------------------------------------------------


@pytest.mark.parametrize("batch, size, sizes", [(10, 4, [4, 3, 3]), (8, 2, [2, 2, 2, 2]),
                                                (3, 5, [3]), (7, 1, [1] * 7)])
def test_chunk_slices_cover_the_batch_in_order(batch, size, sizes):
    slices = chunk_slices(batch, size)
    assert [s.stop - s.start for s in slices] == sizes
    assert np.array_equal(np.concatenate([np.arange(batch)[s] for s in slices]), np.arange(batch))


@pytest.mark.parametrize("batch, size", [(0, 2), (4, 0), (4, 1.5), (True, 2)])
def test_chunk_slices_reject_bad_sizes(batch, size):
    with pytest.raises(ValueError, match="positive integer"):
        chunk_slices(batch, size)


def _entrywise_activations() -> list:
    return [act.Identity(), act.ReLU(), act.LeakyReLU(0.1), act.SoftThreshold(0.5),
            act.Clip(-1.0, 1.0), act.Tanh(), act.Sigmoid(), act.ELU(), act.Arctan(), act.ISRU(),
            act.Softsign(), act.Asinh(), act.Softplus(), activation_from_psi("abs(u)")]


@pytest.mark.parametrize("activation", _entrywise_activations(), ids=lambda a: a.name)
def test_compiled_problems_survive_dask_serialisation(activation):
    """What a worker receives evaluates the model exactly as the driver's problem does.

    Symbolic activations hold lambdified functions that plain pickle refuses; Dask's
    serialiser falls back to cloudpickle for them.
    """
    rng = np.random.default_rng(2)
    net = Sequential(Residual(0.5 * rng.standard_normal((3, 4)), rng.standard_normal(3),
                              activation),
                     Dense(rng.standard_normal((5, 4)), rng.standard_normal(5), activation))
    u0 = 0.3 * rng.standard_normal((2, 4))
    problem = Inversion(net, np.asarray(net(u0)), reg=0.1 * L1() + Box(-2.0, 2.0), rho=5.0)
    problem.certify()
    copy = distributed.protocol.pickle.loads(distributed.protocol.pickle.dumps(problem))
    u, z = problem.lifted.forward(u0 + 0.1)
    assert np.array_equal(copy.objective(u, z), problem.objective(u, z))
    assert copy.certify().explain() == problem.certify().explain()


@pytest.mark.parametrize("make", [
    lambda rng: (Conv2d(rng.standard_normal((2, 1, 3, 3)), rng.standard_normal(2), act.ReLU(),
                        in_shape=(1, 6, 6)), (1, 6, 6), 0.2 * TotalVariation((6, 6))),
    lambda rng: (Dense(rng.standard_normal((3, 5)), rng.standard_normal(3), act.Softmax()),
                 (5,), 0.5 * SquaredL2() + NonNegative()),
], ids=["conv2d-tv", "softmax"])
def test_bregman_problems_pickle_with_operators_and_regularisers(make):
    rng = np.random.default_rng(3)
    net, shape, reg = make(rng)
    u0 = rng.random((2, *shape))
    problem = Inversion(net, np.asarray(net(u0)), reg=reg, fidelity="bregman")
    copy = pickle.loads(pickle.dumps(problem.with_data(problem.data[:1])))
    u = problem.lifted.forward(u0)[0]
    assert np.array_equal(copy.with_data(problem.data).objective(u), problem.objective(u))


def test_with_data_validates_and_shares_the_compiled_problem():
    problem = perceptron_batch()
    part = problem.with_data(problem.data[2:5])
    assert part.batch_size == 3 and part.lifted is problem.lifted and part.reg is problem.reg
    assert problem.batch_size == BATCH  # the original is unchanged
    with pytest.raises(ValueError, match="dom"):
        problem.with_data(-np.ones((2, 24)))


def test_solving_without_a_client_never_imports_dask():
    code = ("import sys, numpy as np, bregmod as bm\n"
            "net = bm.Dense(np.eye(2), np.zeros(2), bm.ReLU())\n"
            "bm.Inversion(net, np.ones((3, 2)), fidelity='bregman').solve(solver='fista')\n"
            "assert not {'dask', 'distributed'} & set(sys.modules), 'dask was imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# --- batch inversion ---------------------------------------------------------------------------


def test_batch_inversion_equals_the_in_process_batched_solve(client):
    problem = perceptron_batch()
    tol = 1e-8
    reference = problem.solve(solver="fista", tol=tol)
    result = problem.solve(solver="fista", tol=tol, client=client)
    assert reference.status == result.status == "optimal"
    assert result.stats["statuses"] == ["optimal"] * BATCH
    assert result.global_optimum_claimed and result.u0.shape == reference.u0.shape
    # The chunks stop when their own worst item converges, the whole batch when its worst
    # does: the points agree to the accuracy the tolerance buys, the objectives much closer.
    scale = np.abs(reference.u0).max()
    np.testing.assert_allclose(result.u0, reference.u0, rtol=0, atol=1e-5 * scale)
    np.testing.assert_allclose(result.objective, reference.objective, rtol=1e-8)
    # Chunk by chunk, the workers compute exactly what this process computes.
    for chunk in result.stats["chunks"]:
        items = slice(*chunk["items"])
        local = problem.with_data(problem.data[items]).solve(solver="fista", tol=tol)
        np.testing.assert_allclose(result.u[items], local.u, rtol=1e-12, atol=1e-14)
        assert chunk["iterations"] == local.iterations and chunk["status"] == local.status


def test_exact_backend_matches_item_by_item(client):
    problem = residual_batch(batch=4)
    reference = problem.solve(solver="cvxpy")
    result = problem.solve(solver="cvxpy", client=client)
    assert result.solver == "cvxpy" and result.status == reference.status == "optimal"
    assert result.stats["statuses"] == reference.stats["statuses"]
    np.testing.assert_allclose(result.u, reference.u, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(result.objective, reference.objective, rtol=1e-12)
    np.testing.assert_allclose(result.bregman_gaps, reference.bregman_gaps, atol=1e-12)


def test_lifted_batch_with_pdhg_keeps_the_order_and_the_history(client):
    problem = residual_batch()
    result = solve_batch(problem, client, chunk_size=3, solver="pdhg", tol=1e-6)
    assert [c["items"] for c in result.stats["chunks"]] == [[0, 3], [3, 6], [6, 8]]
    locals_ = []
    for chunk in result.stats["chunks"]:
        items = slice(*chunk["items"])
        locals_.append(problem.with_data(problem.data[items]).solve(solver="pdhg", tol=1e-6))
        np.testing.assert_allclose(result.u[items], locals_[-1].u, rtol=1e-12, atol=1e-14)
    # The merged history: the batch objective is the sum over the chunks (a finished chunk
    # holds its last value), so its last entry is the sum of the chunks' last objectives;
    # the residuals are the maxima over the chunks.
    history = result.history["objective"]
    assert len(history) == result.iterations == max(r.iterations for r in locals_)
    assert history[-1] == pytest.approx(sum(r.history["objective"][-1] for r in locals_))
    assert result.history["primal_residual"][0] == max(r.history["primal_residual"][0]
                                                       for r in locals_)
    assert result.stats["distributed"]["chunk_size"] == 3


def test_item_statuses_are_those_of_their_chunks(client):
    """Items started at their solution converge at once; the others stop at max_iter.

    The batch reports the worst status and claims nothing; each item keeps its chunk's status.
    """
    problem = perceptron_batch()
    solution = problem.solve(solver="fista", tol=1e-10)
    start = np.zeros_like(solution.u0)
    start[:4] = solution.u0[:4]
    with pytest.warns(SolverWarning, match="max_iter"):
        result = solve_batch(problem, client, chunk_size=4, solver="fista", tol=1e-6,
                             max_iter=3, warm_start=start)
    assert result.stats["statuses"] == ["optimal"] * 4 + ["max_iter"] * 4
    assert result.status == "max_iter" and not result.global_optimum_claimed
    assert [c["status"] for c in result.stats["chunks"]] == ["optimal", "max_iter"]
    assert "items 4–7: max_iter" in result.stats["message"]
    np.testing.assert_allclose(result.u0[:4], solution.u0[:4], atol=1e-6)


def test_bad_arguments_are_rejected(client):
    problem = perceptron_batch()
    with pytest.raises(ValueError, match="one item"):
        problem.with_data(problem.data[0]).solve(client=client)
    with pytest.raises(TypeError, match="dask.distributed.Client"):
        problem.solve(client="tcp://127.0.0.1:8786")
    with pytest.raises(ValueError, match="retries"):
        solve_batch(problem, client, retries=-1)
    with pytest.raises(ValueError, match="chunk_size"):
        solve_batch(problem, client, chunk_size=0)
    with pytest.raises(ValueError, match="tol"):  # the solver's own errors reach the driver
        problem.solve(solver="fista", tol=2.0, client=client)


def test_unreachable_scheduler_fails_fast_with_a_clear_error():
    start = time.perf_counter()
    with pytest.raises(ConnectionError, match=r"no Dask scheduler answered at 'tcp://127\.0\.0\.1"):
        with cluster(scheduler="tcp://127.0.0.1:9", timeout=2):
            pass
    assert time.perf_counter() - start < 30


def test_cluster_needs_exactly_one_target():
    with pytest.raises(ValueError, match="either workers"):
        with cluster():
            pass
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        with cluster(workers=0):
            pass


# --- the command line ----------------------------------------------------------------------


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def test_cli_solves_a_batched_spec_on_a_running_cluster(client, tmp_path):
    code, out, err = _cli(["run", "perceptron-tv-batch", "--quick", "--no-figures",
                           "--scheduler", client.scheduler.address, "--out", str(tmp_path)])
    assert code == 0, err
    assert f"dask: 2 worker(s) at {client.scheduler.address}, dashboard http" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["solver"]["statuses"] == ["optimal"] * 4
    spec = load_spec(resolve_spec("perceptron-tv-batch"), quick=True)
    reference = spec.problem.solve(**spec.solver.kwargs())
    with np.load(tmp_path / "result.npz") as saved:
        assert saved["u0"].shape == reference.u0.shape == (4, 16, 16)
        np.testing.assert_allclose(saved["u0"], reference.u0, atol=1e-4)


def test_cli_refuses_to_distribute_a_single_item(client):
    code, _, err = _cli(["run", "perceptron-tv", "--quick", "--scheduler",
                         client.scheduler.address])
    assert code == 2 and "has one data item; declare a batch" in err


@pytest.mark.slow
def test_cli_workers_starts_and_closes_a_local_cluster(tmp_path):
    code, out, err = _cli(["run", "perceptron-tv-batch", "--quick", "--no-figures",
                           "--workers", "2", "--out", str(tmp_path)])
    assert code == 0, err
    assert "dask: local cluster of 2 worker process(es) at tcp://" in out
    assert json.loads((tmp_path / "report.json").read_text())["solver"]["statuses"] == [
        "optimal"] * 4


@pytest.mark.slow
def test_cli_unreachable_scheduler_is_an_error_not_a_hang():
    start = time.perf_counter()
    code, _, err = _cli(["run", "perceptron-tv-batch", "--quick", "--scheduler",
                         "tcp://127.0.0.1:9"])
    assert code == 2 and "no Dask scheduler answered at 'tcp://127.0.0.1:9'" in err
    assert time.perf_counter() - start < 60


# --- faults (last: the test replaces a worker of the module's cluster) -------------------------


def test_a_worker_killed_mid_run_changes_nothing(client):
    """SIGKILL one worker process while it holds chunks: Dask reschedules them and the result
    equals that of an undisturbed run bit for bit."""
    problem = perceptron_batch(batch=16, seed=4)
    arguments = dict(chunk_size=2, solver="fista", tol=1e-10)
    undisturbed = solve_batch(problem, client, **arguments)
    pids = client.run(os.getpid)
    victim = sorted(pids)[0]
    outcome = {}

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("error", SolverWarning)
            outcome["result"] = solve_batch(problem, client, **arguments)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 60
    while not client.processing().get(victim) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert client.processing().get(victim), "no chunk reached the worker"
    os.kill(pids[victim], signal.SIGKILL)
    thread.join(timeout=120)
    assert not thread.is_alive() and "result" in outcome
    result = outcome["result"]
    assert pids[victim] not in client.run(os.getpid).values()  # the process really died
    assert result.status == undisturbed.status == "optimal"
    assert result.stats["statuses"] == undisturbed.stats["statuses"]
    for field in ("u", "z", "u0", "objective", "bregman_gaps"):
        assert np.array_equal(getattr(result, field), getattr(undisturbed, field)), field
    client.wait_for_workers(2, timeout=60)
