"""Tests of the solvers' BLAS thread choice (bregmod.solvers._threads)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
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
    ("flops", "current", "cores", "busy", "expected"),
    [
        (4e6, 8, 8, 0.0, 1),  # a matrix–vector product of the benchmark: one thread
        (1e9, 8, 8, 0.0, 8),  # a large product on an idle machine: every core
        (1e9, 8, 8, 4.0, 4),  # … with 4 cores busy elsewhere: the idle ones
        (1e9, 8, 8, 4.5, 3),  # … a core half busy is not idle
        (1e9, 2, 2, 2.0, 1),  # two cores, both busy: one thread
        (1e9, 1, 8, 0.0, 1),  # the caller pinned one thread: kept
        (1e9, 3, 8, 0.0, 3),  # never above the limit in force
    ],
)
def test_thread_count_follows_size_load_and_the_limit_in_force(
    monkeypatch, flops, current, cores, busy, expected
):
    monkeypatch.setattr(_threads, "_blas", lambda: _FakeBlas(current))
    monkeypatch.setattr(_threads, "_cores", lambda: cores)
    monkeypatch.setattr(_threads, "busy_elsewhere", lambda: busy)
    assert _threads.thread_count(flops) == expected


def _fake_proc(tmp_path, machine: int, states: dict[int, str]) -> tuple[str, str]:
    """A /proc/loadavg with ``machine`` runnable threads and a /proc/self/task with one thread
    per entry of ``states`` (thread id: state letter)."""
    (tmp_path / "loadavg").write_text(f"0.50 0.40 0.30 {machine}/120 4242\n")
    for tid, state in states.items():
        (tmp_path / "task" / str(tid)).mkdir(parents=True)
        (tmp_path / "task" / str(tid) / "stat").write_text(f"{tid} (py thon) {state} 1 2 3\n")
    return str(tmp_path / "loadavg"), str(tmp_path / "task")


def test_busy_elsewhere_does_not_count_the_callers_blas_workers(monkeypatch, tmp_path):
    """5 runnable threads: the caller, this process's spinning BLAS worker (not a Python
    thread), a busy Python thread of this process, and two threads of other processes: 3
    cores are busy with other work; a sleeping worker is not counted either way."""
    release = threading.Event()
    sibling = threading.Thread(target=release.wait)
    sibling.start()
    try:
        paths = _fake_proc(
            tmp_path,
            5,
            {
                threading.get_native_id(): "R",
                sibling.native_id: "R",
                10**7 + 1: "R",  # a BLAS worker spinning after a call
                10**7 + 2: "S",  # a sleeping one
            },
        )
        monkeypatch.setattr(_threads, "_LOADAVG", paths[0])
        monkeypatch.setattr(_threads, "_TASKS", paths[1])
        assert _threads._runnable_elsewhere() == 3
        assert _threads.busy_elsewhere() == 3.0
    finally:
        release.set()
        sibling.join()


def test_busy_elsewhere_keeps_the_least_reading_and_falls_back_on_the_load(monkeypatch):
    readings = iter([3, 1, 2])
    monkeypatch.setattr(_threads, "_runnable_elsewhere", lambda: next(readings))
    assert _threads.busy_elsewhere() == 1.0
    monkeypatch.undo()
    monkeypatch.setattr(_threads, "_LOADAVG", "/nonexistent/loadavg")
    monkeypatch.setattr(_threads.os, "getloadavg", lambda: (2.5, 2.5, 2.5))
    assert _threads.busy_elsewhere() == 1.5  # this process's own unit of load left out
    monkeypatch.setattr(_threads.os, "getloadavg", lambda: (0.3, 0.3, 0.3))
    assert _threads.busy_elsewhere() == 0.0
    monkeypatch.delattr(_threads.os, "getloadavg")  # neither /proc nor a load average
    assert _threads.busy_elsewhere() == 0.0


@pytest.mark.skipif(not os.path.exists("/proc/loadavg"), reason="reads Linux's /proc")
def test_busy_elsewhere_sees_a_busy_process():
    """A process that spins is runnable at every reading."""
    spinning = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        assert _threads.busy_elsewhere() >= 1.0
    finally:
        spinning.kill()
        spinning.wait()


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
    monkeypatch.setattr(_threads, "busy_elsewhere", lambda: 0.0)
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
    monkeypatch.setattr(_threads, "busy_elsewhere", lambda: 2.0)
    with _threads.LoopThreads(products, 5e7) as threads:  # both cores busy
        assert threads.count == 1
        for _ in range(2 * _threads._SECOND_TIMING):  # no second timing of an untimed loop
            threads.tick()
    assert products.counts == [] and threads.timings == 0


def test_loop_threads_times_a_single_thread_loop_once_more(two_idle_cores):
    """A timing that chose one thread is checked once, after _SECOND_TIMING iterations."""
    products = _TimedProducts({1: 0.002, 2: 0.01})
    with _threads.LoopThreads(products, 5e7) as threads:
        assert threads.count == 1 and threads.timings == 1
        products.seconds = {1: 0.01, 2: 0.002}  # the first timing was disturbed
        for _ in range(_threads._SECOND_TIMING - 1):
            threads.tick()
        assert threads.count == 1 and threads.timings == 1
        threads.tick()
        assert threads.count == 2 and threads.timings == 2 and _blas_threads() == 2
    products = _TimedProducts({1: 0.002, 2: 0.01})
    with _threads.LoopThreads(products, 5e7) as threads:
        for _ in range(3 * _threads._SECOND_TIMING):
            threads.tick()
        assert threads.count == 1 and threads.timings == 2  # confirmed once, then left alone


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
    """0.6 of a core busy elsewhere on 2 cores: the untimed rule counts one idle core,
    LoopThreads times two threads as well."""
    monkeypatch.setattr(_threads, "busy_elsewhere", lambda: 0.6)
    assert _threads.thread_count(1e9) == 1
    products = _TimedProducts({1: 0.01, 2: 0.002})
    with _threads.LoopThreads(products, 5e7) as threads:
        assert threads.timings == 1 and threads.count == 2
    # a large loop (a batch) that the untimed rule would put on one thread is timed too
    with _threads.LoopThreads(products, 1e9) as threads:
        assert threads.timings == 1 and threads.count == 2
    monkeypatch.setattr(_threads, "busy_elsewhere", lambda: 0.0)
    with _threads.LoopThreads(products, 1e9) as threads:  # idle: two threads, untimed
        assert threads.timings == 0 and threads.count == 2


def test_loop_threads_stops_timing_a_busy_core_after_its_warm_up(two_idle_cores):
    products = _TimedProducts({1: 0.002, 2: 0.05})
    with _threads.LoopThreads(products, 5e7) as threads:
        assert threads.count == 1
    assert products.counts == [1, 1, 1, 2]  # one thread: warm-up + 2 timed; two: warm-up only
