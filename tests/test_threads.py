"""Tests of the solvers' BLAS thread choice (bregmod.solvers._threads)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from bregmod.activations import ReLU
from bregmod.network import Dense
from bregmod.problem import Inversion
from bregmod.regularizers import TotalVariation
from bregmod.solvers import _threads


def _blas_threads() -> int:
    return max(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")


class _FakeBlas:
    """Stands in for threadpoolctl's controller: reports ``current`` threads."""

    def __init__(self, current: int) -> None:
        self.current = current

    def info(self):
        return [{"num_threads": self.current}]


@pytest.mark.parametrize(
    ("flops", "current", "cores", "load", "expected"),
    [
        (4e6, 8, 8, 0.0, 1),  # a matrix–vector product of the benchmark: one thread
        (1e9, 8, 8, 0.5, 8),  # a large product on an idle machine: every core
        (1e9, 8, 8, 5.0, 4),  # … with 4 cores busy elsewhere: the idle ones
        (1e9, 2, 2, 3.5, 1),  # two cores, both busy: one thread
        (1e9, 1, 8, 0.0, 1),  # the caller pinned one thread: kept
        (1e9, 3, 8, 0.0, 3),  # never above the limit in force
    ],
)
def test_thread_count_follows_size_load_and_the_limit_in_force(
    monkeypatch, flops, current, cores, load, expected
):
    monkeypatch.setattr(_threads, "_blas", lambda: _FakeBlas(current))
    monkeypatch.setattr(_threads, "_cores", lambda: cores)
    monkeypatch.setattr(_threads.os, "getloadavg", lambda: (load, load, load))
    assert _threads.thread_count(flops) == expected


def test_blas_threads_sets_and_restores_the_limit():
    before = _blas_threads()
    with _threads.blas_threads(1e3) as count:
        assert count == 1 and _blas_threads() == 1
    assert _blas_threads() == before


def test_solvers_run_their_iterations_on_one_thread_for_small_products():
    rng = np.random.default_rng(0)
    W = rng.standard_normal((8, 16))
    f = np.maximum(W @ rng.standard_normal(16), 0.0)
    problem = Inversion(
        Dense(W, np.zeros(8), ReLU(), in_shape=(4, 4)), f, 0.1 * TotalVariation((4, 4)),
        fidelity="bregman",
    )
    with threadpool_limits(limits=2, user_api="blas"):
        before = _blas_threads()
        for solver in ("admm", "pdhg"):
            result = problem.solve(solver=solver, tol=1e-4)
            threads = result.stats["blas_threads"]
            assert (threads["iterations"] if solver == "admm" else threads) == 1
            assert _blas_threads() == before  # restored after the solve


class _TimedProducts:
    """Products whose duration depends on the BLAS thread count in force: ``seconds[count]``
    (a stand-in for a machine where one count is faster), recording the counts it ran on."""

    def __init__(self, seconds: dict[int, float]) -> None:
        self.seconds = seconds
        self.counts: list[int] = []

    def __call__(self) -> None:
        count = _blas_threads()
        self.counts.append(count)
        time.sleep(self.seconds[count])


@pytest.fixture
def two_idle_cores(monkeypatch):
    monkeypatch.setattr(_threads, "_cores", lambda: 2)
    monkeypatch.setattr(_threads.os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    with threadpool_limits(limits=2, user_api="blas"):
        yield


@pytest.mark.parametrize(
    ("seconds", "expected"), [({1: 0.01, 2: 0.002}, 2), ({1: 0.002, 2: 0.01}, 1)]
)
def test_loop_threads_keeps_the_faster_count(two_idle_cores, seconds, expected):
    products = _TimedProducts(seconds)
    with _threads.LoopThreads(products, 5e7) as threads:
        assert threads.count == expected and _blas_threads() == expected
        assert threads.timings == 1
    assert sorted(set(products.counts)) == [1, 2]  # both counts were timed
    assert _blas_threads() == 2  # restored


def test_loop_threads_does_not_time_small_or_pinned_loops(monkeypatch, two_idle_cores):
    products = _TimedProducts({1: 0.0, 2: 0.0})
    with _threads.LoopThreads(products, 1e6) as threads:  # below PROBE_FLOPS
        assert threads.count == 1 and _blas_threads() == 1
    with threadpool_limits(limits=1, user_api="blas"):
        with _threads.LoopThreads(products, 5e7) as threads:  # one thread already in force
            assert threads.count == 1
    monkeypatch.setattr(_threads.os, "getloadavg", lambda: (2.5, 2.5, 2.5))
    with _threads.LoopThreads(products, 5e7) as threads:  # both cores busy
        assert threads.count == 1
    assert products.counts == [] and threads.timings == 0


def test_loop_threads_times_again_after_two_slow_iterations(two_idle_cores):
    products = _TimedProducts({1: 0.01, 2: 0.002})
    fast, slow = 0.005, 0.06
    with _threads.LoopThreads(products, 5e7) as threads:
        assert threads.count == 2
        for _ in range(3):  # fast iterations set the reference
            threads.tick()
            time.sleep(fast)
        for pause in (slow, fast, slow, fast):  # isolated slow iterations: no new timing
            threads.tick()
            time.sleep(pause)
        threads.tick()
        assert threads.timings == 1
        products.seconds = {1: 0.002, 2: 0.02}  # another process took the second core
        threads.tick()
        time.sleep(slow)  # one slow iteration: no new timing yet
        threads.tick()
        assert threads.timings == 1
        time.sleep(slow)
        threads.tick()  # the second in a row: timed again, one thread is now faster
        assert threads.timings == 2 and threads.count == 1 and _blas_threads() == 1
        for _ in range(3):  # on one thread slow iterations never trigger another timing
            time.sleep(slow)
            threads.tick()
        assert threads.timings == 2
    assert _blas_threads() == 2


def test_loop_threads_times_a_partly_busy_core(monkeypatch, two_idle_cores):
    """A load average of 1.6 on 2 cores (the solve's own process and a little more): the
    untimed rule counts one idle core, LoopThreads times two threads as well."""
    monkeypatch.setattr(_threads.os, "getloadavg", lambda: (1.6, 1.6, 1.6))
    assert _threads.thread_count(1e9) == 1
    products = _TimedProducts({1: 0.01, 2: 0.002})
    with _threads.LoopThreads(products, 5e7) as threads:
        assert threads.timings == 1 and threads.count == 2
    # a large loop (a batch) that the untimed rule would put on one thread is timed too
    with _threads.LoopThreads(products, 1e9) as threads:
        assert threads.timings == 1 and threads.count == 2
    monkeypatch.setattr(_threads.os, "getloadavg", lambda: (0.2, 0.2, 0.2))
    with _threads.LoopThreads(products, 1e9) as threads:  # idle: two threads, untimed
        assert threads.timings == 0 and threads.count == 2


def test_loop_threads_stops_timing_a_busy_core_after_its_warm_up(two_idle_cores):
    products = _TimedProducts({1: 0.002, 2: 0.05})
    with _threads.LoopThreads(products, 5e7) as threads:
        assert threads.count == 1
    assert products.counts == [1, 1, 1, 2]  # one thread: warm-up + 2 timed; two: warm-up only
