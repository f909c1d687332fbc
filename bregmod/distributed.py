"""Batch inversion on the workers of a Dask cluster (``Inversion.solve(..., client=client)``).

The inversions of the items f^δ_1, …, f^δ_B of a batch are independent problems that share
one compiled model (K, c, M, V, W, b, Ψ, J, λ, ρ and the certificate). :func:`solve_batch`
therefore

1. certifies the model once on the driver and ships it to every worker *once*
   (``client.scatter(..., broadcast=True)``; the template carries one data item only);
2. splits the batch into contiguous chunks and submits one task per chunk, which solves its
   chunk with the ordinary in-process batched solver (one matrix–matrix product per operator
   and iteration, as without a cluster);
3. gathers the chunks as they complete (a tqdm bar over items with ``progress=True``) and
   merges them, in the original order, into one :class:`~bregmod.problem.Result` built by
   :meth:`~bregmod.problem.Inversion.make_result` on the driver.

Statuses. A batched first-order solve stops when its *worst* item meets the tolerance, so its
one status is that of the whole chunk: ``Result.stats["statuses"]`` gives every item the status
of its chunk (the CVXPY backend's own per-item statuses where it reports them). "optimal" for
an item therefore always means that item converged; "max_iter" means its chunk did not, which
is conservative for the other items of that chunk. ``Result.status`` is the worst item status
(the order of :data:`~bregmod.solvers.registry.STATUSES`, as for a batched CVXPY solve), and
``Result.stats["chunks"]`` records each chunk's items, status, iterations and message.
A solver that runs until the worst item converges also means that chunking changes where the
other items stop: the items of a chunked run agree with a single batched solve to the
tolerance, not bit for bit (the CVXPY backend solves item by item and agrees exactly; ``admm``
iterates every item with its own penalties and freezes it once certified, so most agree to
rounding: 2e-12 to 1e-10 for 13 of the 16 items of the gallery's run, the others stopping a
few iterations apart).

Faults. Dask reschedules the tasks of a worker that dies, and a task that raises is retried
``retries`` times; every chunk is a pure function of its data, so a run that loses workers
returns the same result as an undisturbed one. The scattered model is replicated on every
worker and survives the loss of all but one of them.

Dask is an optional dependency (``pip install 'bregmod[distributed]'``), imported only inside
the functions of this module; the rest of bregmod never imports it.
"""

from __future__ import annotations

import contextlib
import math
import time
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from bregmod.errors import SolverWarning
from bregmod.solvers.registry import worst_status

__all__ = ["CONNECT_TIMEOUT", "DEFAULT_RETRIES", "chunk_slices", "cluster", "solve_batch"]

#: Times a chunk whose task raised is resubmitted (a lost worker's tasks are rescheduled by
#: Dask without counting against this).
DEFAULT_RETRIES = 2
#: Seconds :func:`cluster` waits for a scheduler before giving up.
CONNECT_TIMEOUT = 10.0
#: Chunks per worker thread when ``chunk_size`` is not given: several, so that the work of a
#: lost worker is spread over the others and a slow chunk does not hold up the end of the run.
CHUNKS_PER_THREAD = 2
_MERGED_HISTORY = {"objective": np.sum, "primal_residual": np.max, "dual_residual": np.max,
                   "gap": np.max, "rho_data": np.max, "rho_reg": np.max}


def _dask():
    """``distributed``, or an ImportError that says how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(
            f"distributed solving needs Dask: pip install 'bregmod[distributed]' ({exc})"
        ) from None
    return distributed


def chunk_slices(batch_size: int, chunk_size: int) -> list[slice]:
    """Contiguous slices of ``range(batch_size)``, each of at most ``chunk_size`` items.

    The chunks are as even as possible: ⌈B / chunk_size⌉ chunks whose sizes differ by at most
    one (10 items in chunks of at most 4 give sizes 4, 3, 3).

    Raises
    ------
    ValueError
        ``batch_size`` or ``chunk_size`` is not a positive integer.
    """
    for name, value in (("batch_size", batch_size), ("chunk_size", chunk_size)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    count = math.ceil(batch_size / chunk_size)
    base, larger = divmod(int(batch_size), count)
    bounds = np.cumsum([0] + [base + 1] * larger + [base] * (count - larger)).tolist()
    return [slice(start, stop) for start, stop in zip(bounds[:-1], bounds[1:], strict=True)]


def _warm_rows(value, size: int, items: slice):
    """The rows ``items`` of a batched warm-start array; an unbatched one (``size`` entries)
    is passed whole (the solvers broadcast it), as in :func:`bregmod.solvers._common.prepare`."""
    arr = np.asarray(value)
    return arr if arr.size == size else arr[items]


def _warm_chunk(problem, warm_start, items: slice):
    """The part of ``warm_start`` (None, u₀, (u, z) or a Result) that belongs to ``items``
    (package-internal, shared with ``admm``'s two halves of a batch; the caller validated the
    warm start)."""
    lifted = problem.lifted
    if warm_start is None:
        return None
    if hasattr(warm_start, "u") and hasattr(warm_start, "z"):
        warm_start = (warm_start.u, warm_start.z)
    if isinstance(warm_start, tuple) and len(warm_start) == 2:
        u, z = warm_start
        return _warm_rows(u, lifted.n_u, items), _warm_rows(z, lifted.n_z, items)
    return _warm_rows(warm_start, int(np.prod(lifted.input_shape)), items)


def _solve_chunk(template, data: np.ndarray, warm_start, arguments: dict[str, Any]):
    """Solve ``template`` with the data of one chunk (runs on a worker).

    The solver's SolverWarning is silenced here: the driver's merged Result warns once.
    """
    problem = template.with_data(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SolverWarning)
        return problem.solve(warm_start=warm_start, **arguments)


def _same(a, b) -> bool:
    """Whether two statistics are equal (False when they cannot be compared as one bool)."""
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def _merge_history(results: list) -> dict[str, list]:
    """The batch history of the chunks: objectives summed and residuals, gaps and penalties
    maximised over the chunks at every iteration, a chunk that stopped holding its last value
    (the point it returned). Other (solver-specific) series stay in the chunks' own
    statistics. Package-internal, shared with ``admm``'s two halves of a batch."""
    keys = [key for key in _MERGED_HISTORY if all(r.history.get(key) for r in results)]
    length = max((len(r.history[key]) for r in results for key in keys), default=0)
    merged = {}
    for key in keys:
        columns = []
        for r in results:
            series = np.asarray(r.history[key], dtype=float)
            columns.append(np.concatenate([series, np.full(length - len(series), series[-1])]))
        merged[key] = _MERGED_HISTORY[key](np.stack(columns), axis=0).tolist()
    return merged


def _merge(problem, results: list, slices: list[slice], wall_time: float, info: dict):
    """One Result for the whole batch from the chunk Results, in the original order."""
    statuses = []
    for r, items in zip(results, slices, strict=True):
        count = items.stop - items.start
        own = r.stats.get("statuses")
        statuses.extend(own if isinstance(own, list) and len(own) == count else [r.status] * count)
    status = worst_status(statuses)
    first = results[0].stats
    stats = {key: value for key, value in first.items()
             if all(key in r.stats and _same(value, r.stats[key]) for r in results[1:])}
    stats.pop("constraint_violation", None)  # recomputed by make_result for the whole batch
    chunks = [
        {"items": [items.start, items.stop], "status": r.status, "iterations": r.iterations,
         "wall_time": r.wall_time, "message": r.stats.get("message", "")}
        for r, items in zip(results, slices, strict=True)
    ]
    unfinished = [f"items {c['items'][0]}–{c['items'][1] - 1}: {c['status']}"
                  + (f" ({c['message']})" if c["message"] else "")
                  for c in chunks if c["status"] != "optimal"]
    stats.update(
        statuses=statuses,
        batch_size=problem.batch_size,
        chunks=chunks,
        distributed=info,
        message="; ".join(unfinished) if unfinished else
        f"all {len(chunks)} chunks converged",
    )
    solvers = sorted({r.solver for r in results})
    u = np.concatenate([np.asarray(r.u, dtype=np.float64) for r in results])
    z = np.concatenate([np.asarray(r.z, dtype=np.float64) for r in results])
    return problem.make_result(
        u,
        None if problem.fidelity == "bregman" else z,
        status=status,
        solver=solvers[0] if len(solvers) == 1 else "+".join(solvers),
        iterations=max(r.iterations for r in results),
        history=_merge_history(results),
        stats=stats,
        wall_time=wall_time,
        global_optimum_claimed=None if all(r.global_optimum_claimed for r in results) else False,
    )


def solve_batch(
    problem,
    client,
    *,
    chunk_size: int | None = None,
    retries: int = DEFAULT_RETRIES,
    warm_start=None,
    progress: bool = False,
    **arguments,
):
    """Solve the items of a batched :class:`~bregmod.problem.Inversion` on a Dask cluster.

    Ships the compiled problem once to every worker, solves contiguous chunks of the batch
    in parallel with the in-process batched solver and merges them into one Result in the
    original order (see the module docstring for statuses and faults).

    Parameters
    ----------
    problem : Inversion
        A problem with batched data (B, *output_shape).
    client : dask.distributed.Client
        A connected client (``Client(LocalCluster(...))`` or ``Client("tcp://host:8786")``).
    chunk_size : int, optional
        Items per task; default ⌈B / (2 · worker threads)⌉. Larger chunks use matrix–matrix
        products better; smaller ones balance the load and lose less work with a worker.
    retries : int
        How often a chunk whose task raised is resubmitted (≥ 0).
    warm_start : None, array_like, (u, z) or Result
        As for :meth:`~bregmod.problem.Inversion.solve`; batched starts are split with the
        data, unbatched ones are used for every item.
    progress : bool
        A tqdm bar over the items, advanced as chunks complete (the workers show none).
    **arguments
        ``solver``, ``tol``, ``max_iter``, ``dtype`` and the solver's options, as for
        :meth:`~bregmod.problem.Inversion.solve`.

    Returns
    -------
    Result
        Item i of every array is item i of the batch. ``stats["statuses"]`` holds the item
        statuses, ``stats["chunks"]`` the chunks, ``stats["distributed"]`` the scheduler
        address, the number of workers, the chunk size and the retries; ``wall_time`` is the
        driver's time for the whole run.

    Raises
    ------
    TypeError
        ``client`` is not a ``dask.distributed.Client``.
    ValueError
        Unbatched data, a bad ``chunk_size`` or ``retries``, a cluster without workers; any
        error of the solver itself (raised on the driver with its original type).
    ImportError
        Dask is not installed.
    """
    distributed = _dask()
    if not isinstance(client, distributed.Client):
        raise TypeError(f"client must be a dask.distributed.Client, got {type(client).__name__}")
    if problem.batch_size is None:
        raise ValueError(
            "client= solves the items of a batch in parallel, but the data is one item of shape "
            f"{problem.data.shape}; pass a batch (B, *{problem.lifted.output_shape}) or solve "
            "without a client"
        )
    if isinstance(retries, bool) or not isinstance(retries, (int, np.integer)) or retries < 0:
        raise ValueError(f"retries must be an integer ≥ 0, got {retries!r}")
    start = time.perf_counter()
    threads = sum(client.nthreads().values())
    if threads == 0:
        raise ValueError(f"the Dask cluster at {client.scheduler.address} has no workers")
    batch = problem.batch_size
    if chunk_size is None:
        chunk_size = math.ceil(batch / (CHUNKS_PER_THREAD * threads))
    slices = chunk_slices(batch, chunk_size)
    problem.certify()  # cached on the problem, so the workers receive it with the template
    run = uuid.uuid4().hex
    template = client.scatter(problem.with_data(problem.data[:1]), broadcast=True, hash=False)
    try:
        futures = {
            client.submit(
                _solve_chunk, template, problem.data[items],
                _warm_chunk(problem, warm_start, items), arguments,
                retries=int(retries), pure=False, key=f"bregmod-chunk-{i}-{run}",
            ): i
            for i, items in enumerate(slices)
        }
        results: list = [None] * len(slices)
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=batch, desc="items", unit="item")
        try:
            for future in distributed.as_completed(futures, loop=client.loop):
                index = futures[future]
                results[index] = future.result()
                if bar is not None:
                    bar.update(slices[index].stop - slices[index].start)
        finally:
            if bar is not None:
                bar.close()
            for future in futures:
                future.release()
    finally:
        template.release()
    info = {"scheduler": client.scheduler.address, "workers": len(client.nthreads()),
            "threads": threads, "chunk_size": chunk_size, "retries": int(retries)}
    return _merge(problem, results, slices, time.perf_counter() - start, info)


@contextlib.contextmanager
def cluster(
    workers: int | None = None,
    scheduler: str | None = None,
    timeout: float = CONNECT_TIMEOUT,
) -> Iterator[Any]:
    """A Dask client: on a new local cluster of ``workers`` processes, or on a scheduler.

    The local cluster runs one thread per worker process (the solvers' matrix products are
    single-threaded per worker) and is shut down, with its processes, when the block ends.

    Parameters
    ----------
    workers : int, optional
        Start a ``LocalCluster`` of this many worker processes.
    scheduler : str, optional
        Connect to the scheduler at this address (``"tcp://host:8786"``).
    timeout : float
        Seconds to wait for the scheduler (or the local cluster) before giving up.

    Yields
    ------
    dask.distributed.Client
        ``client.dashboard_link`` is the address of Dask's dashboard.

    Raises
    ------
    ValueError
        Neither or both of ``workers`` and ``scheduler``, or ``workers`` < 1.
    ConnectionError
        No scheduler answered at ``scheduler`` within ``timeout`` seconds.
    """
    if (workers is None) == (scheduler is None):
        raise ValueError("give either workers (a local cluster) or scheduler (an address)")
    distributed = _dask()
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            raise ConnectionError(
                f"no Dask scheduler answered at {scheduler!r} within {timeout:g} s ({exc}); "
                "check the address and that the scheduler is running"
            ) from None
        with client:
            yield client
        return
    if isinstance(workers, bool) or not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    with distributed.LocalCluster(n_workers=int(workers), threads_per_worker=1,
                                  processes=True) as local:
        with distributed.Client(local, set_as_default=False, timeout=timeout) as client:
            yield client
