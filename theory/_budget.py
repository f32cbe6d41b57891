"""A CPU-time budget for symbolic steps that may not finish (SymPy simplifications, series of large expressions).

``with budget(seconds): ...`` raises :class:`OverBudget` inside the block once the process has spent ``seconds`` of
CPU time in it, so the caller can take a numeric path instead. CPU time, not wall time: a loaded machine must not
change which path runs. It uses SIGPROF, so it limits only the main thread of a process (elsewhere, and inside
another budget, the block runs unlimited: the outer budget governs).
"""

import contextlib
import signal
import threading

__all__ = ["OverBudget", "budget", "active", "SYMBOLIC_SECONDS"]

#: The default budget of one symbolic derivation (a layer map, a Gaussian expectation), in CPU seconds.
SYMBOLIC_SECONDS = 5.0


class OverBudget(BaseException):
    """Raised inside a :func:`budget` block when its time is up. A BaseException, so that the ``except Exception``
    of library code it interrupts does not swallow it."""


_active = _armed = False


def active():
    """Whether a budget governs the current block (an inner one would not limit it)."""
    return _active


def _alarm(signum, frame):
    if _armed:
        raise OverBudget


@contextlib.contextmanager
def budget(seconds=None):
    """The block, interrupted by :class:`OverBudget` after ``seconds`` (default :data:`SYMBOLIC_SECONDS`) of CPU."""
    global _active, _armed
    seconds = SYMBOLIC_SECONDS if seconds is None else seconds
    if _active or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return
    previous = signal.signal(signal.SIGPROF, _alarm)
    _active = _armed = True
    try:
        signal.setitimer(signal.ITIMER_PROF, seconds, 0.5)  # and again every 0.5 s, should one be swallowed
        yield
    finally:
        _armed = False
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, previous)
        _active = False
