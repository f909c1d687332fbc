"""BLAS thread counts that suit the operation sizes, set with threadpoolctl.

OpenBLAS starts one thread per core. For the matrix–vector products of a first-order
iteration (a few MFLOP, memory-bound) extra threads buy little on an idle machine and cost a
lot on a busy one: with two cores and one of them busy, a pair of products with a 512 × 4096
matrix took 15.9 ms with OpenBLAS's 2 threads against 0.59 ms with one (27×; benchmarks/
README.md). The solvers therefore run their loops inside :func:`blas_threads`:

* below :data:`MULTITHREAD_FLOPS` floating-point operations per BLAS call: one thread;
* above it (batched products, the m × m Gram matrix of ``admm``'s setup): as many threads as
  the cores this process may use that other work leaves idle (at least one), never more than
  the limit already in force, so that ``OPENBLAS_NUM_THREADS=1`` or an enclosing
  ``threadpool_limits(1)`` is respected.

Other work is read when the threads are chosen (:func:`busy_elsewhere`): the threads that are
runnable on the machine now (Linux's ``/proc/loadavg``) less the caller and this process's
threads that Python did not start (BLAS workers, which spin for 50–500 ms after a call),
the least of three readings. The 1-minute load average, used before (and still where
``/proc`` cannot be read), counts the solve's own recent work: a benchmark's 128 × 128 solve,
run after others on an otherwise idle 2-core machine, read a load of 1.1–1.6, formed its
Gram matrix on one thread and took 4.97 s against 4.50 s on two (float32, tol 1e-4).

A solver loop whose products are too small for that rule but not tiny (at least
:data:`PROBE_FLOPS` per iteration) uses :class:`LoopThreads`, which *times* the loop's own
products on one thread and on that idle-core count and keeps the faster: on an idle 2-core
machine two threads ran the pair of products with a 2048 × 16384 W (128 × 128 images) 1.5×
(float64) to 1.8× (float32) faster than one; at 512 × 4096 (64 × 64 images, below
:data:`PROBE_FLOPS`, untimed) they were 2× faster on an idle machine (0.27 against 0.58 ms per
pair) and 3× slower under a light load from other processes (3.2 against 1.1 ms).
Other work may start after the choice, so a run on more than one thread watches its iteration
times: an iteration more than :data:`SLOWDOWN` times slower than the fastest since the last
timing, twice in a row (another process took a core), times the products again. A timing is
noisy (right after ``admm``'s setup, two threads took 7.4–16.6 ms per pair at 128 × 128 where
one took 10–16 ms), so a loop that its first timing put on one thread is timed once more
after ``_SECOND_TIMING`` iterations.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator

__all__ = [
    "MULTITHREAD_FLOPS",
    "PROBE_FLOPS",
    "SLOWDOWN",
    "LoopThreads",
    "blas_threads",
    "busy_elsewhere",
    "idle_threads",
    "thread_count",
]

#: A BLAS call with fewer floating-point operations than this runs on one thread.
MULTITHREAD_FLOPS = 1e8
#: A loop with fewer floating-point operations per iteration in its products runs on one
#: thread without timing them (32 × 32 and 64 × 64 images: 0.3 and 4.2 MFLOP, where two
#: threads gain little when idle and lose much when not; a try at 2·10⁶ under load re-timed 5
#: times in one 64 × 64 solve and made it 30 % slower).
PROBE_FLOPS = 1e7
#: :class:`LoopThreads` times the products again after two iterations in a row this many times
#: slower than the fastest one since its last timing.
SLOWDOWN = 3.0
#: Timed repetitions of the products per thread count (after one untimed warm-up).
_PROBE_REPEATS = 2
#: :class:`LoopThreads` times a core even when other work seems to keep it busy, unless it is
#: busy by a whole core more (the timing decides): a core shared with another process may still
#: run the products faster (and with the load average, read before :func:`busy_elsewhere`, an
#: idle 2-core machine read 1.2–1.6 during a benchmark). A count whose untimed warm-up already
#: takes more than _PROBE_ABORT times the best time of one thread is not timed further (bounds
#: the cost of timing on a busy core: one slow pair of products).
_PROBE_MARGIN, _PROBE_ABORT = 1.0, 3.0
#: A loop that its first timing put on one thread (while more were candidates) is timed once
#: more at this iteration: a loop on more threads is timed again when it slows down, one on a
#: single thread would otherwise never be (at 128 × 128, float32, idle 2-core machine, one run
#: of six chose one thread and took 6.3 s against 4.7–5.0 s for those on two).
_SECOND_TIMING = 20
#: Where :func:`busy_elsewhere` reads the machine's runnable threads and this process's threads.
_LOADAVG, _TASKS = "/proc/loadavg", "/proc/self/task"
#: Readings of the runnable threads, of which :func:`busy_elsewhere` keeps the least (a thread
#: that runs for a moment, e.g. another process's start-up, is not a busy core).
_READINGS = 3

_controller = None


def _blas():
    """threadpoolctl's controller of the loaded BLAS libraries (built once: it scans them)."""
    global _controller
    if _controller is None:
        from threadpoolctl import ThreadpoolController

        _controller = ThreadpoolController().select(user_api="blas")
    return _controller


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _runnable_elsewhere() -> int:
    """One reading: the machine's runnable threads (fourth field of ``/proc/loadavg``) less the
    caller and this process's runnable threads that Python did not start."""
    with open(_LOADAVG) as file:
        machine = int(file.read().split()[3].split("/")[0])
    python = {thread.native_id for thread in threading.enumerate()}
    own = 0
    for tid in os.listdir(_TASKS):
        if int(tid) in python:
            continue
        try:
            with open(os.path.join(_TASKS, tid, "stat")) as file:
                stat = file.read()
        except OSError:  # the thread has ended
            continue
        own += stat[stat.rindex(")") + 2] == "R"  # the state follows the name "(…)"
    return machine - own - 1


def busy_elsewhere() -> float:
    """Cores that work other than this solve keeps busy now (module docstring): the least of
    ``_READINGS`` readings of :func:`_runnable_elsewhere`, or, where ``/proc`` cannot be read,
    the 1-minute load average less the one unit this process accounts for while it runs."""
    try:
        return float(max(0, min(_runnable_elsewhere() for _ in range(_READINGS))))
    except (OSError, ValueError, IndexError):
        try:
            return max(0.0, os.getloadavg()[0] - 1.0)
        except (OSError, AttributeError):  # no load average (Windows): count no core as busy
            return 0.0


def idle_threads(margin: float = 0.0) -> int:
    """Cores this process may use that other work leaves idle, within the limit in force
    (≥ 1); ``margin`` counts a core as idle when other work leaves at least 1 − margin of it."""
    current = max((lib["num_threads"] for lib in _blas().info()), default=1)
    if current <= 1:
        return 1
    cores = _cores()
    idle = int(cores + margin - busy_elsewhere())
    return max(1, min(current, cores, idle))


def thread_count(flops: float) -> int:
    """The BLAS thread count for calls of ``flops`` operations (module docstring)."""
    return 1 if flops < MULTITHREAD_FLOPS else idle_threads()


@contextlib.contextmanager
def blas_threads(flops: float) -> Iterator[int]:
    """Run the block with :func:`thread_count` ``(flops)`` BLAS threads; yields that count."""
    count = thread_count(flops)
    with _blas().limit(limits=count):
        yield count


class LoopThreads:
    """BLAS threads for a solver loop, chosen by timing the loop's products (module docstring).

    Use as a context manager around the loop and call :meth:`tick` once per iteration::

        with LoopThreads(products, flops) as threads:
            for k in ...:
                threads.tick()
                ...

    Parameters
    ----------
    products : callable
        Runs the products of one iteration (its result is discarded).
    flops : float
        Their floating-point operations: below :data:`PROBE_FLOPS` the loop runs on one thread
        untimed; from :data:`PROBE_FLOPS` to :data:`MULTITHREAD_FLOPS` the products are timed
        (on one thread and on the cores other work leaves idle, ``_PROBE_MARGIN``);
        from :data:`MULTITHREAD_FLOPS` on, :func:`thread_count` decides as for any large call
        where it gives more than one thread, and the products are timed as for mid-sized ones
        where it gives one (a batch of 64 problems at 64 × 64, run right after other work, got
        one thread from a load average of 1.2–1.6 on an otherwise idle 2-core machine, and took
        7.3 s against 6.2–6.3 s on two). Only a loop on more than one thread is timed again after
        a slowdown; one that its timing put on one thread is timed once more, after
        ``_SECOND_TIMING`` iterations.

    Attributes
    ----------
    count : int
        The thread count in force.
    timings : int
        How many times the products were timed (0: the count came from the size rule).
    """

    def __init__(self, products: Callable[[], object], flops: float) -> None:
        self.products = products
        self.flops = flops
        self.count = 1
        self.timings = 0
        self._candidate = 1
        self._limit = None
        self._fastest = float("inf")
        self._slow = 0
        self._last = None
        self._ticks = 0

    def __enter__(self) -> LoopThreads:
        if self.flops >= MULTITHREAD_FLOPS and thread_count(self.flops) > 1:
            self._set(thread_count(self.flops))
        else:  # small, mid-sized, or large with the untimed rule saying one thread
            self._candidate = idle_threads(_PROBE_MARGIN) if self.flops >= PROBE_FLOPS else 1
            self._set(self._fastest_count() if self._candidate > 1 else 1)
        return self

    def __exit__(self, *exc) -> None:
        self._limit.unregister()

    def tick(self) -> None:
        """Mark the end of an iteration; time the products again after a slowdown, or once
        after ``_SECOND_TIMING`` iterations where a timing chose one thread."""
        now = time.perf_counter()
        self._ticks += 1
        if self._ticks == _SECOND_TIMING and self.count == 1 and self.timings == 1:
            self._set(self._fastest_count())
            now = time.perf_counter()
        elif self._last is not None and self.count > 1:
            elapsed = now - self._last
            self._slow = self._slow + 1 if elapsed > SLOWDOWN * self._fastest else 0
            self._fastest = min(self._fastest, elapsed)
            if self._slow >= 2:
                self._set(self._fastest_count())
                self._fastest, self._slow = float("inf"), 0
                now = time.perf_counter()
        self._last = now

    def _set(self, count: int) -> None:
        if self._limit is not None:
            self._limit.unregister()
        self.count = count
        self._limit = _blas().limit(limits=count)

    def _fastest_count(self) -> int:
        """1 or the idle-core count, whichever runs :attr:`products` faster (best of
        ``_PROBE_REPEATS`` after a warm-up; a warm-up ``_PROBE_ABORT`` times slower than one
        thread's best ends the timing)."""
        self.timings += 1
        best = {}
        for count in (1, self._candidate):
            with _blas().limit(limits=count):
                start = time.perf_counter()
                self.products()
                warm_up = time.perf_counter() - start
                if count > 1 and warm_up > _PROBE_ABORT * best[1]:
                    break
                times = []
                for _ in range(_PROBE_REPEATS):
                    start = time.perf_counter()
                    self.products()
                    times.append(time.perf_counter() - start)
            best[count] = min(times)
        return min(best, key=best.get)
