"""Beyond one machine: kernels block by block (memory-mapped or as Dask arrays) and an executor for claim sweeps.

* :func:`blocked_nngp_ntk` -- K^L and Θ^L for N·M larger than memory: :func:`theory.nngp_ntk` on row × column
  blocks of the inputs, written into arrays in memory or ``.npy`` files opened as memory maps;
* :func:`dask_nngp_ntk` -- the same blocks as lazy Dask arrays (one task per block, both kernels from one task);
* :func:`executor` -- where ``theory verify`` runs its claims: local processes, or a Dask distributed cluster.

A block is ``nngp_ntk(X1[rows], X2[cols])``; diagonal blocks of a symmetric kernel (X2 = None) are
``nngp_ntk(X1[rows])``, so the diagonal is computed at exactly ρ = 1 as in memory, and only blocks with
cols >= rows are computed (the rest is their transpose). The entries equal those of the in-memory call.
"""

import concurrent.futures
import contextlib
import os
import pathlib
import signal

import numpy as np

from . import _validate
from ._progress import Progress
from .kernels import Kernel, nngp_ntk
from .kernels.engine import _tiles, _write

__all__ = ["blocked_nngp_ntk", "dask_nngp_ntk", "executor", "cores"]

def blocked_nngp_ntk(X1, X2=None, *, block=1024, out=None, progress=False, **params):
    """The NNGP and NTK of :func:`theory.nngp_ntk`, computed ``block`` rows × ``block`` columns at a time.

    ``params`` are nngp_ntk's (activation, depth, sigma_w2, sigma_b2, parameterization, widths). With ``out`` a
    directory the kernels are written to ``out/nngp.npy`` and ``out/ntk.npy`` and returned as memory maps
    (``numpy.load(path, mmap_mode="r")`` opens them later); with ``out=None`` they are arrays in memory. Peak
    memory beyond the result is that of one block, whatever N. ``progress`` draws a bar over blocks on stderr.
    """
    X1, X2, block, params = _checked(X1, X2, block, params)
    shape = (len(X1), len(X1 if X2 is None else X2))
    target = _directory(out)
    nngp, ntk = (np.empty(shape) if target is None else
                 np.lib.format.open_memmap(target / f"{name}.npy", mode="w+", dtype=np.float64, shape=shape)
                 for name in ("nngp", "ntk"))
    pairs = _tiles(*shape, block, block, X2 is None)
    bar = Progress(len(pairs), "kernel blocks", enabled=progress)
    for done, (rows, cols) in enumerate(pairs, 1):
        for array, value in zip((nngp, ntk), _block(X1, X2, rows, cols, params)):
            _write(array, value, rows, cols, X2 is None)
        bar.update(done)
    bar.close()
    for array in (nngp, ntk):
        if isinstance(array, np.memmap):
            array.flush()
    return Kernel(nngp, ntk)


def dask_nngp_ntk(X1, X2=None, *, block=1024, **params):
    """The NNGP and NTK of :func:`theory.nngp_ntk` as lazy Dask arrays with ``block`` × ``block`` chunks.

    One task per block computes both kernels (``dask.compute(*k)`` evaluates them together, each block once); the
    inputs enter the graph once. Compute on any Dask scheduler, store with ``dask.array.store`` or ``to_zarr``;
    ``dask.diagnostics.ProgressBar`` (or ``distributed.progress``) shows progress. Raises ImportError without dask.
    """
    try:
        import dask
        import dask.array as da
    except ImportError as err:
        raise ImportError("dask_nngp_ntk needs dask: pip install 'theory[dask]'") from err
    X1, X2, block, params = _checked(X1, X2, block, params)
    shape = (len(X1), len(X1 if X2 is None else X2))
    inputs = [None if x is None else dask.delayed(x, pure=True) for x in (X1, X2)]  # in the graph once
    edges = [_slices(n, block) for n in shape]

    def chunk(rows, cols):
        task = dask.delayed(_block, pure=False, nout=2)(*inputs, rows, cols, params)
        size = (rows.stop - rows.start, cols.stop - cols.start)
        return tuple(da.from_delayed(t, size, dtype=np.float64, meta=np.empty((0, 0))) for t in task)

    computed = {(i, j): chunk(rows, cols) for i, rows in enumerate(edges[0]) for j, cols in enumerate(edges[1])
                if X2 is not None or j >= i}
    grid = [[computed[i, j] if (i, j) in computed else tuple(a.T for a in computed[j, i])
             for j in range(len(edges[1]))] for i in range(len(edges[0]))]
    return Kernel(*(da.block([[cell[n] for cell in row] for row in grid]) for n in (0, 1)))


@contextlib.contextmanager
def executor(jobs=None, scheduler=None):
    """The executor of a claim sweep (:func:`theory.claims.verify`), as a context manager.

    With ``scheduler`` (an address such as ``tcp://host:8786``) the claims run on that Dask distributed cluster
    (its workers need ``theory`` installed); otherwise on ``jobs`` local processes (default: every core of this
    machine). ``jobs=1`` yields None: the claims run in this process, one after another.
    """
    if scheduler is not None:
        if jobs is not None:
            raise ValueError("jobs: a Dask cluster has its own workers; give jobs or scheduler, not both")
        try:
            from distributed import Client
        except ImportError as err:
            raise ImportError("a scheduler needs dask.distributed: pip install 'theory[dask]'") from err
        with Client(scheduler, timeout="10s") as client:
            yield client.get_executor(pure=False)
        return
    jobs = cores() if jobs is None else _validate.count(jobs, "jobs", 1)
    if jobs == 1:
        yield None
        return
    pool = concurrent.futures.ProcessPoolExecutor(jobs, initializer=_ignore_interrupts)
    try:
        yield pool
    except BaseException:  # an interrupt (Ctrl-C) or error: end the workers now, not after their running claims
        for process in list((pool._processes or {}).values()):
            process.terminate()
        # wait for the pool's manager thread (quick: its workers are gone), so that it has closed its wakeup pipe
        # before Python's exit hook writes to it (a race that printed "Bad file descriptor" after the one line)
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _ignore_interrupts():
    """Workers ignore SIGINT (a terminal's Ctrl-C reaches the whole process group): the parent ends them, and no
    worker prints a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def cores():
    """The number of cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _checked(X1, X2, block, params):
    """Validated inputs (X2 = None when it equals X1, as nngp_ntk does) and parameters, checked on one pair."""
    X1 = _validate.inputs(X1, "X1")
    X2 = None if X2 is None else _validate.inputs(X2, "X2", d=X1.shape[1])
    if X2 is not None and np.array_equal(X1, X2):
        X2 = None
    block = _validate.count(block, "block", 1)
    nngp_ntk(X1[:1], None if X2 is None else X2[:1], **params)  # a bad parameter raises here, before any block
    return X1, X2, block, params


def _directory(out):
    if out is None:
        return None
    path = pathlib.Path(out)
    if path.exists() and not path.is_dir():
        raise ValueError(f"out: expected a directory for nngp.npy and ntk.npy, got the file {str(path)!r}")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _slices(n, block):
    return [slice(start, min(start + block, n)) for start in range(0, n, block)] or [slice(0, 0)]


def _block(X1, X2, rows, cols, params):
    """One block: nngp_ntk(X1[rows], X2[cols]); on the diagonal of a symmetric kernel, nngp_ntk(X1[rows])."""
    if X2 is None and rows == cols:
        return nngp_ntk(X1[rows], **params)
    return nngp_ntk(X1[rows], (X1 if X2 is None else X2)[cols], **params)
