"""BLAS thread counts that suit the operation sizes, set with threadpoolctl.

OpenBLAS starts one thread per core. For the matrix–vector products of a first-order
iteration (a few MFLOP, memory-bound) extra threads buy little on an idle machine and cost a
lot on a busy one: with two cores and one of them busy, a pair of products with a 512 × 4096
matrix took 15.9 ms with OpenBLAS's 2 threads against 0.59 ms with one (27×; benchmarks/
README.md). The solvers therefore run their loops inside :func:`blas_threads`:

* below :data:`MULTITHREAD_FLOPS` floating-point operations per BLAS call: one thread;
* above it (batched products, the m × m Gram matrix of ``admm``'s setup): as many threads as
  the cores this process may use that the 1-minute load average leaves idle (at least one),
  never more than the limit already in force, so that ``OPENBLAS_NUM_THREADS=1`` or an
  enclosing ``threadpool_limits(1)`` is respected.

A solver loop whose products are too small for that rule but not tiny (at least
:data:`PROBE_FLOPS` per iteration) uses :class:`LoopThreads`, which *times* the loop's own
products on one thread and on that idle-core count and keeps the faster: on an idle 2-core
machine two threads ran the pair of products with a 2048 × 16384 W (128 × 128 images) 1.5×
(float64) to 1.8× (float32) faster than one; at 512 × 4096 (64 × 64 images, below
:data:`PROBE_FLOPS`, untimed) they were 2× faster on an idle machine (0.27 against 0.58 ms per
pair) and 3× slower under a light load from other processes (3.2 against 1.1 ms).
The 1-minute load average lags, so a run on more than one thread watches its iteration times:
an iteration more than :data:`SLOWDOWN` times slower than the fastest since the last timing,
twice in a row (another process took a core), times the products again.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator

__all__ = [
    "MULTITHREAD_FLOPS",
    "PROBE_FLOPS",
    "SLOWDOWN",
    "LoopThreads",
    "blas_threads",
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
#: :class:`LoopThreads` times a core even when the 1-minute load average says it is busy, unless
#: it is busy by a whole core more (the timing decides): on an idle 2-core machine the average
#: read 1.2–1.6 during a benchmark (its own process and what ran just before), which the untimed
#: rule counts as one idle core. A count whose untimed warm-up already takes more than
#: _PROBE_ABORT times the best time of one thread is not timed further (bounds the cost of
#: timing on a busy core: one slow pair of products).
_PROBE_MARGIN, _PROBE_ABORT = 1.0, 3.0

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


def idle_threads(margin: float = 0.0) -> int:
    """Cores this process may use that the load leaves idle, within the limit in force (≥ 1);
    ``margin`` counts a core as idle when the load leaves at least 1 − margin of it."""
    current = max((lib["num_threads"] for lib in _blas().info()), default=1)
    if current <= 1:
        return 1
    cores = _cores()
    try:
        # This process accounts for about one unit of the load while it runs.
        idle = int(cores + 1.0 + margin - os.getloadavg()[0])
    except OSError:
        idle = cores
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
        (on one thread and on the cores the load average leaves idle, ``_PROBE_MARGIN``);
        from :data:`MULTITHREAD_FLOPS` on, :func:`thread_count` decides as for any large call
        where it gives more than one thread, and the products are timed as for mid-sized ones
        where it gives one (the 1-minute load average lags: a batch of 64 problems at 64 × 64,
        run right after other work, got one thread from a load of 1.2–1.6 on an otherwise idle
        2-core machine, and took 7.3 s against 6.2–6.3 s on two). Only a loop on more than one
        thread is timed again after a slowdown.

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
        """Mark the end of an iteration; time the products again after a slowdown."""
        now = time.perf_counter()
        if self._last is not None and self.count > 1:
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
