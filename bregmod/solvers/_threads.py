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
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

__all__ = ["MULTITHREAD_FLOPS", "blas_threads", "thread_count"]

#: A BLAS call with fewer floating-point operations than this runs on one thread.
MULTITHREAD_FLOPS = 1e8

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


def thread_count(flops: float) -> int:
    """The BLAS thread count for calls of ``flops`` operations (module docstring)."""
    current = max((lib["num_threads"] for lib in _blas().info()), default=1)
    if flops < MULTITHREAD_FLOPS or current <= 1:
        return 1
    cores = _cores()
    try:
        # This process accounts for about one unit of the load while it runs.
        idle = int(cores + 1.0 - os.getloadavg()[0])
    except OSError:
        idle = cores
    return max(1, min(current, cores, idle))


@contextlib.contextmanager
def blas_threads(flops: float) -> Iterator[int]:
    """Run the block with :func:`thread_count` ``(flops)`` BLAS threads; yields that count."""
    count = thread_count(flops)
    with _blas().limit(limits=count):
        yield count
