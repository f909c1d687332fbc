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
from bregmod.training import (  # noqa: E402
    Training,
    _Batch,
    _InProcess,
    _OnDask,
    _sufficient_decrease,
)
from bregmod.training_spec import load_training_spec  # noqa: E402

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


# --- data-parallel lifted training (before the faults: they replace a worker) ---------------------


def teacher_training() -> Training:
    """A small teacher–student problem: a ReLU teacher's outputs, a 3-layer student with an ℓ1
    penalty on its soft-threshold layer and weight decay (every coupling of the samples)."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((60, 6))
    Y = np.maximum(X @ rng.standard_normal((16, 6)).T, 0) @ rng.standard_normal((3, 16)).T / 4
    student = Sequential(Dense(rng.standard_normal((16, 6)) / 3, activation=act.ReLU()),
                         Dense(rng.standard_normal((8, 16)) / 5, activation=act.SoftThreshold(0.1)),
                         Dense(rng.standard_normal((3, 8)) / 3))
    return Training(student, X, Y, state_penalties={2: 0.01}, weight_decay=0.01)


#: Batches of 15 rows: shards of 8 and 7 samples (unequal, so the shard weights m_p/m matter).
TRAIN = dict(epochs=2, batch_size=15, seed=3, tau=5.0, inner_iterations=2)


@pytest.fixture(scope="module")
def trained(client):
    """The teacher–student problem trained in this process and on the 2-worker cluster."""
    training = teacher_training()
    return training, training.solve(**TRAIN), training.solve(**TRAIN, client=client)


def _weights(result) -> list[np.ndarray]:
    return [a for layer in result.network.layers for a in (layer.W, layer.b)]


def test_data_parallel_training_matches_single_process(trained):
    """Same seed, same weights, up to floating-point reassociation: each shard sums its own
    rows and the driver adds the shard sums (the backtracking sums, Σ_p (m_p/m) ∇_p, Σ_p
    X̃_pᵀX̃_p), so sums of the batch are added in another order than in one process — relative
    differences of 1e-16 per operation that the iterations carry along (measured ≈ 1e-15 after
    2 epochs). 1e-10 leaves room for that and fails on any change of the algorithm (a μ or a
    step size per shard, a gradient without the shard weights: differences ≥ 1e-3)."""
    _, local, remote = trained
    for a, b in zip(_weights(local), _weights(remote), strict=True):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-10 * np.abs(a).max())
    for a, b in zip(local.states, remote.states, strict=True):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-10 * np.abs(a).max())
    np.testing.assert_allclose(remote.history["energy"], local.history["energy"], rtol=1e-10)
    for key in ("batches", "inner_sweeps", "state_backtracks"):
        assert remote.stats[key] == local.stats[key]
    info = remote.stats["distributed"]
    assert (info["workers"], info["shards"]) == (2, 2) and "distributed" not in local.stats
    # Per batch and sweep: the 2 shards' gradients and Gram rows come back, Θ goes out once.
    assert info["bytes_received"] > 2 * 8 * (16 * 7 + 8 * 17 + 3 * 9) * 8  # ≥ the gradients
    assert info["round_trips_per_batch"] >= 2 * 2  # ≥ 1 state step + 1 weight step per sweep


def test_data_parallel_training_of_convolutions_matches_single_process(client):
    """A Conv2d → Conv2d student (kernel gradients and im2col Gram matrices summed over the
    shards): the same weights as in one process, to rounding (as above)."""
    rng = np.random.default_rng(8)
    X = rng.standard_normal((30, 1, 5, 5))
    Y = np.maximum(X, 0)[:, :, 1:-1, 1:-1] - 0.5 * X[:, :, :-2, 2:]
    student = Sequential(
        Conv2d(rng.standard_normal((3, 1, 3, 3)) / 3, activation=act.ReLU(), in_shape=(1, 5, 5),
               padding=1),
        Conv2d(rng.standard_normal((1, 3, 3, 3)) / 5, in_shape=(3, 5, 5)),
    )
    training = Training(student, X, Y)
    local, remote = training.solve(**TRAIN), training.solve(**TRAIN, client=client)
    for a, b in zip(local.network.layers, remote.network.layers, strict=True):
        for u, v in ((a.kernel, b.kernel), (a.b, b.b)):
            np.testing.assert_allclose(v, u, rtol=0, atol=1e-10 * np.abs(u).max())
    assert local.history["train_loss"][-1] < 0.5 * np.mean((student(X) - Y) ** 2)


def test_the_reductions_over_shards_are_the_batch_sums(client):
    """A batch cut into shards of 8 and 7 rows on the cluster gives the backtracking sums, the
    decisions, the weight step and the states of the whole batch in one process (to rounding),
    for a step μ so long that the test rejects it and for one it accepts."""
    training = teacher_training()
    weights = training._initial_weights()
    model = training._model(weights)
    x, y = training.inputs[:15], training.targets[:15]
    whole = _Batch(_InProcess(), model, weights, [(x, y, None)])
    executor = _OnDask(client)
    shards = _Batch(executor, model, weights, [(x[:8], y[:8], None), (x[8:], y[8:], None)])
    try:
        decisions = []
        for l, alpha in ((2, 0.01), (1, 0.0)):  # x^1 is optimal at the forward pass until x^2 moves
            for mu in (100.0, 0.01):
                a = whole.state_sums(l, alpha, mu, first=mu == 100.0)
                b = shards.state_sums(l, alpha, mu, first=mu == 100.0)
                np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-14)
                decisions.append(_sufficient_decrease(a, mu))
                assert _sufficient_decrease(b, mu) is decisions[-1]
            whole.accept()
            shards.accept()
        assert decisions == [False, True, False, True]
        a, b = whole.weight_parts(last=True), shards.weight_parts(last=True)
        assert [len(p) for p in b] == [2, 2, 2]
        for l in (1, 2, 3):
            for u, v in zip(training._weight_step(model, l, a[l - 1], weights, 5.0),
                            training._weight_step(model, l, b[l - 1], weights, 5.0), strict=True):
                np.testing.assert_allclose(v, u, rtol=1e-12, atol=1e-14)
        for u, v in zip(whole.states, shards.states, strict=True):
            np.testing.assert_allclose(v, u, rtol=1e-12, atol=1e-14)
    finally:
        executor.release()


def test_training_on_the_cluster_resumes_from_its_checkpoints(trained, client, tmp_path):
    """A run interrupted after epoch 1 and resumed (on the cluster) is bit-identical to the
    uninterrupted run on the cluster: the shard computations and the order of the shard sums
    do not depend on which worker runs them."""
    training, local, remote = trained
    path = tmp_path / "run.npz"
    training.solve(**{**TRAIN, "epochs": 1}, checkpoint=path, client=client)
    resumed = training.solve(**TRAIN, checkpoint=path, resume=True, client=client)
    assert resumed.stats["resumed_from_epoch"] == 1
    for a, b in zip(_weights(remote), _weights(resumed), strict=True):
        assert np.array_equal(a, b)
    assert resumed.history["energy"] == remote.history["energy"]


def test_cli_trains_on_a_running_cluster(client, tmp_path):
    code, out, err = _cli(["train", "teacher-student", "--quick", "--set", "solver.epochs=1",
                           "--scheduler", client.scheduler.address, "--out", str(tmp_path)])
    assert code == 0, err
    assert f"dask: 2 worker(s) at {client.scheduler.address}, dashboard http" in out
    spec = load_training_spec("teacher-student", quick=True, overrides={"solver.epochs": 1})
    reference = spec.training.solve(validation=spec.validation, **spec.solve_options)
    with np.load(tmp_path / "weights.npz") as saved:
        for l, layer in enumerate(reference.network.layers, start=1):
            np.testing.assert_allclose(saved[f"W{l}"], layer.W, rtol=0, atol=1e-10)


def test_training_rejects_a_bad_client():
    with pytest.raises(TypeError, match="dask.distributed.Client"):
        teacher_training().solve(epochs=1, client="tcp://127.0.0.1:8786")


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



def test_a_worker_killed_mid_epoch_changes_nothing(trained, client):
    """SIGKILL one worker process while it runs a shard of a training batch: Dask recomputes
    the lost shard's tasks (pure functions of their inputs, all held until the batch step
    ends) and the run ends with exactly the weights of the undisturbed run on the cluster."""
    training, _, undisturbed = trained
    client.wait_for_workers(2, timeout=60)
    pids = client.run(os.getpid)
    victim = sorted(pids)[0]
    outcome = {}

    def run():
        outcome["result"] = training.solve(**TRAIN, client=client)

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(0.3)  # a few batch steps into the first epoch (the run takes about 1 s)
    deadline = time.monotonic() + 60
    while not client.processing().get(victim) and time.monotonic() < deadline:
        time.sleep(0.002)
    assert thread.is_alive(), "the run ended before the worker could be killed"
    os.kill(pids[victim], signal.SIGKILL)
    thread.join(timeout=300)
    assert not thread.is_alive() and "result" in outcome
    result = outcome["result"]
    assert pids[victim] not in client.run(os.getpid).values()  # the process really died
    assert result.stats["epochs"] == TRAIN["epochs"]
    for a, b in zip(_weights(undisturbed), _weights(result), strict=True):
        assert np.array_equal(a, b)
    for a, b in zip(undisturbed.states, result.states, strict=True):
        assert np.array_equal(a, b)
