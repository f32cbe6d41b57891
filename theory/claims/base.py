r"""Claims: statements from the literature that the package both predicts and measures.

A :class:`Claim` has an id (``topic.name``), one sentence, its source, a symbolic prediction (for LaTeX), and an
experiment ``run(seed, size) -> Result`` on finite-width networks. A :class:`Result` carries the numeric
prediction, the estimate and its standard error, the raw data, a verdict from a stated statistical criterion,
and optionally a figure. Experiments build results with the criterion helpers below, so that every verdict is
a number compared with a stated tolerance:

* :func:`compare` -- |estimate - prediction| <= k·SE + bias;
* :func:`compare_all` -- the same for every entry of an array (max_i |Δ_i| / (k·SE_i + bias_i) <= 1);
* :func:`power_law` -- the fitted log-log slope's confidence interval covers the predicted exponent.

Every topic registers its claims with the :func:`claim` decorator in a module of :mod:`theory.claims`.
"""

import concurrent.futures
import fnmatch
import math
import time
import traceback
import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import scipy.stats
import sympy as sp
from threadpoolctl import threadpool_limits

__all__ = ["Claim", "Result", "Outcomes", "claim", "registry", "select", "run", "verify", "sweep", "sized", "seed_for",
           "bootstrap", "compare", "compare_all", "power_law", "SIZES"]

#: Experiment sizes: ``quick`` for smoke runs and documents, ``default`` for ``theory verify`` (all claims within
#: five minutes on two cores), ``full`` for tighter statistics.
SIZES = ("quick", "default", "full")


@dataclass
class Result:
    """The outcome of one claim's experiment.

    ``prediction``, ``estimate`` and ``stderr`` are the headline numbers (for an array claim, one representative
    entry; the verdict covers them all); ``criterion`` states the test with its numbers; ``interval`` is a
    confidence interval where the criterion uses one; ``plot(fig)`` draws the figure into a matplotlib figure.
    ``data["bound"]`` (">" or "<"), when set, says the prediction is a bound, and the table shows "> 4".
    """

    prediction: float
    estimate: float
    stderr: float
    passed: bool
    criterion: str
    interval: tuple | None = None
    data: dict = field(default_factory=dict)
    plot: Callable | None = None

    def figure(self):
        """The result's figure as a matplotlib Figure (no pyplot state), or None without a plot.

        Raises ImportError without matplotlib (the optional ``plot`` extra).
        """
        if self.plot is None:
            return None
        from matplotlib.figure import Figure

        fig = Figure(figsize=(6, 4.2), layout="constrained")
        self.plot(fig)
        return fig


@dataclass(frozen=True)
class Claim:
    """A registered claim; ``prediction()`` returns the SymPy prediction (lazily: derivations can take time)."""

    id: str
    statement: str
    source: str
    prediction: Callable[[], sp.Basic]
    run: Callable[[int, str], Result]

    @property
    def topic(self):
        return self.id.split(".", 1)[0]

    def latex(self):
        """The prediction as LaTeX."""
        return sp.latex(self.prediction())

    def _repr_latex_(self):
        return f"$\\displaystyle {self.latex()}$"


_REGISTRY: dict[str, Claim] = {}


def claim(id, statement, source, prediction):
    """Register the decorated ``run(seed, size) -> Result`` as the experiment of a claim.

    ``prediction`` is a SymPy object or a function returning one (the formula whose value the experiment checks).
    """
    if id in _REGISTRY:
        raise ValueError(f"claim {id!r} is registered twice")
    predict = prediction if callable(prediction) else (lambda: prediction)

    def register(run):
        _REGISTRY[id] = Claim(id, statement, source, predict, run)
        return run

    return register


def registry():
    """All registered claims, by id (importing :mod:`theory.claims` registers the package's own)."""
    return dict(_REGISTRY)


def select(patterns=()):
    """The claims whose id matches any of ``patterns`` (globs, or prefixes such as ``ntk``), in id order.

    Raises ValueError naming a pattern that matches nothing.
    """
    ids = sorted(_REGISTRY)
    if not patterns:
        return [_REGISTRY[i] for i in ids]
    chosen = set()
    for pattern in patterns:
        hits = [i for i in ids if fnmatch.fnmatchcase(i, pattern) or i == pattern or i.startswith(pattern + ".")]
        if not hits:
            raise ValueError(f"no claim matches {pattern!r}; registered claims: {', '.join(ids)}")
        chosen.update(hits)
    return [_REGISTRY[i] for i in ids if i in chosen]


class Outcomes(list):
    """The outcomes [(claim, result, seconds)] of a run; prints as the verify table (text, Markdown, LaTeX)."""

    @property
    def passed(self):
        return all(r.passed for _, r, _ in self)

    def rows(self):
        """(id, prediction, measured ± SE, verdict, seconds) strings, one per claim."""
        return [(c.id, f"{r.data.get('bound', '')} {r.prediction:.4g}".strip(), f"{r.estimate:.4g} ± {r.stderr:.2g}",
                 "holds" if r.passed else "FAILS", f"{s:.1f}") for c, r, s in self]

    HEAD = ("claim", "prediction", "measured ± SE", "verdict", "s")

    def __str__(self):
        rows = self.rows()
        widths = [max(len(r[i]) for r in [self.HEAD, *rows]) for i in range(len(self.HEAD))]
        line = "  ".join("{:%s%d}" % ("<" if i in (0, 3) else ">", w) for i, w in enumerate(widths))
        return "\n".join([line.format(*self.HEAD), "  ".join("-" * w for w in widths)] + [line.format(*r) for r in rows])

    def _repr_markdown_(self):
        return "\n".join(["| " + " | ".join(self.HEAD) + " |", "|---|---|---|---|---|"]
                         + ["| " + " | ".join(r) + " |" for r in self.rows()])

    def latex(self):
        from .. import latex as tex

        rows = [" & ".join(tex.text(cell) for cell in row) + r" \\" for row in self.rows()]
        return "\n".join([r"\begin{tabular}{lrrlr}", r"\hline", r"claim & prediction & measured $\pm$ SE & verdict & s \\",
                          r"\hline", *rows, r"\hline", r"\end{tabular}"])


def verify(patterns=(), seed=0, size="default", progress=False, executor=None):
    """Run the claims matching ``patterns`` (all by default): an :class:`Outcomes` list.

    ``executor`` (a ``concurrent.futures.Executor``, e.g. from :func:`theory.distributed.executor`: local processes
    or a Dask cluster) runs the claims in parallel; None runs them here, one after another. The results are the
    same either way: every experiment draws from :func:`seed_for` (seed, ...), never from shared state.
    """
    return sweep(patterns, [seed], size, progress, executor)[seed]


def sweep(patterns=(), seeds=range(10), size="default", progress=False, executor=None):
    """Run the claims matching ``patterns`` at each of ``seeds`` (claim × seed units, on ``executor`` as in
    :func:`verify`): ``{seed: Outcomes}``. How many seeds a claim holds at measures its robustness."""
    from .._progress import Progress

    chosen, seeds = select(patterns), list(dict.fromkeys(int(s) for s in seeds))
    units = [(c, s) for s in seeds for c in chosen]
    bar = Progress(len(units), "claims" if len(seeds) == 1 else "runs", enabled=progress)
    done = {}
    for k, outcome in _outcomes(units, size, executor, bar):
        done[k] = outcome
        bar.update(len(done), units[k][0].id)
    bar.close()
    return {s: Outcomes((c, *done[k]) for k, (c, s_) in enumerate(units) if s_ == s) for s in seeds}


def _outcomes(units, size, executor, bar):
    """Yield (index, (Result, seconds)) for the (claim, seed) ``units``: in order here, or as the executor's
    workers complete them. A worker runs the claims of one module at one seed, in order, so that an ensemble
    they share (a cached experiment) is computed once, as here. Experiments and results travel pickled by
    cloudpickle (plots are closures)."""
    if executor is None:
        for k, (c, s) in enumerate(units):
            bar.update(k, c.id)
            yield k, run(c, s, size)
        return
    import cloudpickle

    groups = {}
    for k, (c, s) in enumerate(units):
        groups.setdefault((c.run.__module__, s), []).append(k)
    futures = {executor.submit(_remote, cloudpickle.dumps([units[k][0].run for k in ks]), seed, size): ks
               for (_, seed), ks in groups.items()}
    for future in concurrent.futures.as_completed(futures):
        try:
            outcomes = [cloudpickle.loads(outcome) for outcome in future.result()]
        except Exception as err:  # the worker died, or could not run the group: its claims fail, visibly
            outcomes = [(_failed(err, traceback.format_exc(limit=-1)), math.nan)] * len(futures[future])
        yield from zip(futures[future], outcomes)


def _remote(experiments, seed, size):
    """A worker's unit: pickled experiments run in order at (seed, size); each (Result, seconds) pickled."""
    import cloudpickle

    def pickled(outcome):
        try:
            return cloudpickle.dumps(outcome)
        except Exception as err:  # a result that cannot travel back fails, visibly, without taking the others
            return cloudpickle.dumps((_failed(err, traceback.format_exc(limit=-1)), outcome[1]))

    return [pickled(_timed(experiment, seed, size)) for experiment in cloudpickle.loads(experiments)]


def sized(size, quick, default, full):
    """Pick the parameter of an experiment for ``size`` (one of :data:`SIZES`)."""
    if size not in SIZES:
        raise ValueError(f"size: expected one of {', '.join(SIZES)}, got {size!r}")
    return {"quick": quick, "default": default, "full": full}[size]


def seed_for(seed, *keys):
    """A SeedSequence determined by the run's seed and ``keys`` (strings or ints), independent of claim order.

    Experiments that share an ensemble use the same keys; everything else uses its claim id.
    """
    words = [int(seed)] + [zlib.crc32(str(k).encode()) for k in keys]
    return np.random.SeedSequence(words)


def run(claim_, seed=0, size="default"):
    """Run one claim: ``(Result, seconds)``. An experiment that raises is a failed result naming the error."""
    return _timed(claim_.run, seed, size)


def _timed(experiment, seed, size):
    start = time.perf_counter()
    try:
        # one BLAS thread: claims make many small LAPACK calls, whose idle threads spin against the other workers
        with threadpool_limits(1, user_api="blas"):
            result = experiment(seed, size)
    except Exception as err:  # a claim that crashes fails, visibly, without stopping the others
        result = _failed(err, traceback.format_exc(limit=-2))
    return result, time.perf_counter() - start


def _failed(err, trace):
    tail = trace.strip().splitlines()[-1]
    return Result(math.nan, math.nan, math.nan, False, f"error: {type(err).__name__}: {err} ({tail})")


def bootstrap(samples, statistic, seed, reps=200):
    """``(statistic(samples), its bootstrap standard error)``, resampling the first axis (the networks)."""
    samples = np.asarray(samples)
    rng = np.random.default_rng(seed)
    draws = [statistic(samples[rng.integers(0, len(samples), len(samples))]) for _ in range(reps)]
    return float(statistic(samples)), float(np.std(draws, ddof=1))


# --------------------------------------------------------------------------------------------------------------
# Criteria
# --------------------------------------------------------------------------------------------------------------


def compare(prediction, estimate, stderr, k=5.0, bias=0.0, **extra):
    """|estimate - prediction| <= k·SE + bias, with ``bias`` a stated bound on the estimator's systematic error."""
    tolerance = k * stderr + bias
    gap = abs(estimate - prediction)
    criterion = f"|{estimate:.6g} - {prediction:.6g}| = {gap:.3g} <= {k:g} SE + bias = {tolerance:.3g}"
    return Result(float(prediction), float(estimate), float(stderr), bool(gap <= tolerance), criterion, **extra)


def compare_all(prediction, estimate, stderr, k=5.0, bias=0.0, shown=None, what="entries", **extra):
    """:func:`compare` for every entry of arrays; the headline numbers are those of entry ``shown``."""
    prediction, estimate = np.asarray(prediction, float), np.asarray(estimate, float)
    tolerance = k * np.asarray(stderr, float) + np.broadcast_to(bias, prediction.shape)
    ratio = np.abs(estimate - prediction) / tolerance
    worst = float(np.max(ratio))
    shown = np.unravel_index(np.argmax(ratio), ratio.shape) if shown is None else shown
    se = np.broadcast_to(stderr, prediction.shape)
    criterion = (f"max over {prediction.size} {what} of |estimate - prediction| / ({k:g} SE + bias) = {worst:.3g} "
                 f"<= 1")
    return Result(float(prediction[shown]), float(estimate[shown]), float(se[shown]), bool(worst <= 1), criterion,
                  **extra)


def power_law(x, y, y_se, exponent, level=0.99, correction=False, **extra):
    """Fit log y = a + s log x by weighted least squares; pass when the ``level`` interval of s covers ``exponent``.

    With ``correction=True`` the model is y = C x^s (1 + b/x), i.e. log y ≈ a + s log x + b/x: the leading finite-x
    correction of a law that holds as x -> ∞ (a width, a sample size) is fitted instead of biasing s.
    The weights are 1/SE(log y)² with SE(log y) = SE(y)/y. With the errors known, the interval uses the normal
    quantile; when the points scatter more than their errors say (χ²/dof > 1, model misfit) the slope's standard
    error is scaled up by √(χ²/dof) and the quantile is Student's t with the residual degrees of freedom.
    """
    x, y, y_se = (np.asarray(a, float) for a in (x, y, y_se))
    lx, ly, w = np.log(x), np.log(y), (y / y_se) ** 2
    columns = [np.ones_like(lx), lx] + ([1 / x] if correction else [])
    design = np.stack(columns, axis=1)
    cov = np.linalg.inv(design.T @ (w[:, None] * design))
    coef = cov @ design.T @ (w * ly)
    dof = max(len(x) - len(columns), 1)
    chi2 = float(np.sum(w * (ly - design @ coef) ** 2))
    misfit = chi2 / dof > 1
    slope, se = float(coef[1]), float(np.sqrt(cov[1, 1] * max(1.0, chi2 / dof)))
    quantile = scipy.stats.t.ppf(0.5 + level / 2, dof) if misfit else scipy.stats.norm.ppf(0.5 + level / 2)
    half = quantile * se
    interval = (slope - half, slope + half)
    passed = interval[0] <= exponent <= interval[1]
    model = "with a 1/x correction, " if correction else ""
    criterion = (f"fitted exponent {slope:.3f} ({model}{level:.0%} interval [{interval[0]:.3f}, {interval[1]:.3f}]) "
                 f"{'covers' if passed else 'misses'} {exponent:g}; chi2/dof = {chi2 / dof:.2f}")
    data = {"x": x, "y": y, "y_se": y_se, "fit": coef, **extra.pop("data", {})}
    return Result(float(exponent), slope, se, bool(passed), criterion, interval=interval, data=data, **extra)
