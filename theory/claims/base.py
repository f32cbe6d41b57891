r"""Claims: statements from the literature that the package both predicts and measures.

A :class:`Claim` has an id (``topic.name``), one sentence, its source, a symbolic prediction (for LaTeX), and an
experiment ``run(seed, size) -> Result`` on finite-width networks. A :class:`Result` carries the numeric
prediction, the estimate and its standard error, the raw data, the recorded inputs of its statistical criteria,
and optionally a figure. Experiments build results with the criterion helpers below, so that every verdict is
a number compared with a stated tolerance and can be re-scored (``theory verify --perturb``) without re-running
the experiment:

* :func:`compare` -- |estimate - prediction| <= z·SE + bias;
* :func:`compare_all` -- the same for every entry of an array (max_i |Δ_i| / (z·SE_i + bias_i) <= 1);
* :func:`power_law` -- the fitted log-log slope's interval (± z·SE) covers the predicted exponent;
* :func:`profile_law` -- the same for a profile-likelihood fit C₀ x^{-a} (1 + b/x) + C_∞ (a likelihood-ratio test);
* :func:`condition` -- a stated yes/no condition (an inequality: nothing to perturb, so it states why);
* :func:`combine` -- one verdict from several criteria.

The threshold z is not a constant: a run tests all registered claims at the family-wise level
:data:`theory.stats.ALPHA` (Bonferroni over the claims, and within a claim over its tests). Each criterion also
takes ``rivals``, wrong predictions that the same data must exclude: the verdict is ``holds`` (the prediction is
consistent and every rival excluded), ``fails`` (the prediction is excluded) or ``inconclusive`` (neither).

Every topic registers its claims with the :func:`claim` decorator in a module of :mod:`theory.claims`.
"""

import concurrent.futures
import fnmatch
import math
import time
import traceback
import zlib
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np
import sympy as sp
from threadpoolctl import threadpool_limits

from .. import stats

__all__ = ["Claim", "Result", "Outcomes", "claim", "registry", "select", "run", "verify", "sweep", "sized", "seed_for",
           "bootstrap", "compare", "compare_all", "power_law", "profile_law", "condition", "combine", "Perturbation",
           "SIZES"]

#: Experiment sizes: ``quick`` for smoke runs and documents, ``default`` for ``theory verify`` (all claims within
#: five minutes on two cores), ``full`` for tighter statistics.
SIZES = ("quick", "default", "full")


class Result:
    """The outcome of one claim's experiment.

    ``prediction``, ``estimate`` and ``stderr`` are the headline numbers (for an array claim, one representative
    entry; the verdict covers them all); ``criteria`` are the recorded statistical tests (built by :func:`compare`,
    :func:`compare_all`, :func:`power_law`, :func:`condition`, :func:`combine`), from which :attr:`verdict`,
    :attr:`criterion` and :meth:`perturb` are computed at the run's family-wise level; ``interval`` is a confidence
    interval where the criterion uses one; ``plot(fig)`` draws the figure into a matplotlib figure.
    ``data["bound"]`` (">" or "<"), when set, says the prediction is a bound: the table shows "> 4".
    """

    def __init__(self, prediction, estimate, stderr, passed=None, criterion=None, interval=None, data=None,
                 plot=None, criteria=()):
        self.prediction, self.estimate, self.stderr = float(prediction), float(estimate), float(stderr)
        self.criteria = list(criteria)
        if passed is not None:  # a verdict built by hand: a condition that cannot be re-scored
            self.criteria.append(_Condition(bool(passed), criterion or "a verdict built by hand"))
        if not self.criteria:
            raise ValueError("criteria: a Result needs at least one criterion (build it with compare, compare_all, "
                             "power_law, condition or combine)")
        self._criterion, self._interval = criterion, interval
        self.data = {} if data is None else data
        self.plot = plot

    @property
    def alpha(self):
        """The level of each of this claim's tests: :data:`theory.stats.ALPHA` / (registered claims × tests)."""
        return stats.bonferroni(stats.bonferroni(stats.ALPHA, max(len(_REGISTRY), 1)), self.tests)

    @property
    def tests(self):
        """The number of statistical tests the criteria make (array entries count one each)."""
        return max(sum(c.tests for c in self.criteria), 1)

    @property
    def verdict(self):
        """``holds``, ``fails`` or ``inconclusive`` (:func:`theory.stats.combine` of the criteria)."""
        return stats.combine(c.verdict(self.alpha) for c in self.criteria)

    @property
    def passed(self):
        """The verdict is ``holds``."""
        return self.verdict == "holds"

    @property
    def criterion(self):
        """The criteria with their numbers, as text."""
        if self._criterion is not None and all(isinstance(c, _Condition) for c in self.criteria):
            return self._criterion
        return "; ".join(c.text(self.alpha) for c in self.criteria)

    @property
    def interval(self):
        """The confidence interval of the criterion (the first exponent's, at the run's level), or None."""
        if self._interval is not None:
            return self._interval
        return next((c.interval(self.alpha) for c in self.criteria if isinstance(c, (_Slope, _Profile))), None)

    def perturb(self, delta=0.1):
        """Re-score the claim with every prediction perturbed at once (× (1 - delta), then × (1 + delta); exponents
        shifted by ∓delta of their value, or by ∓delta when it is 0) on the same measurements: one
        :class:`Perturbation` per direction, whose ratio is the largest over the criteria (the perturbed claim is
        rejected when some criterion rejects its perturbed prediction).

        Criteria exempt with a reason, and conditions (nothing to perturb), are skipped; a result with nothing to
        re-score gives their exemptions (or, without a reason, a row that is not rejected)."""
        parts = [c.perturb(self.alpha, delta) for c in self.criteria]
        rows = []
        for direction in (0, 1):
            scored = [part[direction] for part in parts if len(part) == 2 and part[direction].rescored]
            if scored:
                worst = max(scored, key=lambda row: row.ratio)
                changes = ", ".join(dict.fromkeys(row.change for row in scored))
                rows.append(Perturbation(worst.criterion, changes, worst.ratio))
        if rows:
            return rows
        exempt = [row for part in parts for row in part if not row.rescored]
        return exempt + [Perturbation(c.text(self.alpha), "", math.nan, c.exempt)
                         for c in self.criteria if isinstance(c, _Condition)]

    def replace(self, **changes):
        """A copy with the same criteria and ``changes`` to prediction, estimate, stderr, interval, data or plot
        (e.g. headline numbers in other units than the fit's)."""
        fields = {"prediction": self.prediction, "estimate": self.estimate, "stderr": self.stderr,
                  "interval": self._interval, "data": self.data, "plot": self.plot, **changes}
        copy = Result(criteria=self.criteria, **fields)
        copy._criterion = self._criterion
        return copy

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


class Perturbation(NamedTuple):
    """One perturbed prediction re-scored: ``ratio`` = |estimate - perturbed| / tolerance (> 1: rejected), or no
    re-scoring (``ratio`` NaN) with the stated ``exempt`` reason (without a reason: not re-scorable, not rejected)."""

    criterion: str
    change: str
    ratio: float
    exempt: str | None = None

    @property
    def rescored(self):
        return not math.isnan(self.ratio)

    @property
    def rejected(self):
        """The perturbed prediction is excluded (or the criterion is exempt with a stated reason)."""
        return self.ratio > 1 if self.rescored else self.exempt is not None


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
                 r.verdict if r.passed else r.verdict.upper(), f"{s:.1f}") for c, r, s in self]

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
    return Result(math.nan, math.nan, math.nan, criteria=[_Condition(False, f"error: {type(err).__name__}: {err} "
                                                                         f"({tail})")])


def bootstrap(samples, statistic, seed, reps=200):
    """``(statistic(samples), its bootstrap standard error)``, resampling the first axis (the networks)."""
    samples = np.asarray(samples)
    rng = np.random.default_rng(seed)
    draws = [statistic(samples[rng.integers(0, len(samples), len(samples))]) for _ in range(reps)]
    return float(statistic(samples)), float(np.std(draws, ddof=1))


# --------------------------------------------------------------------------------------------------------------
# Criteria
# --------------------------------------------------------------------------------------------------------------


class _Criterion:
    """A recorded statistical test: its inputs, scored at a level ``alpha`` per test (see :attr:`Result.alpha`)."""

    tests = 1
    exempt = None

    def verdict(self, alpha):
        raise NotImplementedError

    def text(self, alpha):
        raise NotImplementedError

    def perturb(self, alpha, delta):
        return []


def _ratio(gap, tolerance):
    """max |gap| / tolerance over entries, with 0/0 = 0 and x/0 = inf (an exact criterion)."""
    gap, tolerance = np.abs(np.asarray(gap, float)), np.asarray(tolerance, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(gap == 0, 0.0, gap / tolerance)
    return float(np.max(np.where(np.isnan(gap), np.inf, ratio))) if ratio.size else 0.0


class _Comparison(_Criterion):
    """|estimate - prediction| <= z SE + bias for every entry; each rival (an array or a scalar) must be excluded in
    some entry."""

    def __init__(self, prediction, estimate, stderr, bias, rivals, what, exempt):
        self.prediction, self.estimate = np.asarray(prediction, float), np.asarray(estimate, float)
        shape = np.broadcast_shapes(self.prediction.shape, self.estimate.shape)
        self.stderr = np.broadcast_to(np.asarray(stderr, float), shape)
        self.bias = np.broadcast_to(np.asarray(bias, float), shape)
        if np.any(self.stderr < 0) or np.any(self.bias < 0):
            raise ValueError("stderr, bias: expected non-negative standard errors and bias bounds")
        self.rivals = {str(k): np.broadcast_to(np.asarray(v, float), shape) for k, v in (rivals or {}).items()}
        self.what, self.exempt = what, exempt
        self.tests = int(np.prod(shape))

    def tolerance(self, alpha):
        return stats.threshold(alpha) * self.stderr + self.bias

    def ratio(self, alpha, prediction=None):
        """max over entries of |estimate - prediction| / (z SE + bias) (> 1: that prediction is excluded)."""
        prediction = self.prediction if prediction is None else prediction
        return _ratio(self.estimate - prediction, self.tolerance(alpha))

    def verdict(self, alpha):
        return stats.verdict(self.ratio(alpha) <= 1, all(self.ratio(alpha, r) > 1 for r in self.rivals.values()))

    def text(self, alpha):
        z, worst = stats.threshold(alpha), self.ratio(alpha)
        if self.tests == 1:
            est, pred = float(self.estimate.flat[0]), float(self.prediction.flat[0])
            tol = float(self.tolerance(alpha).flat[0])
            head = (f"|{est:.6g} - {pred:.6g}| = {abs(est - pred):.3g} {'<=' if worst <= 1 else '>'} {z:.2f} SE + "
                    f"bias = {tol:.3g}")
        else:
            head = (f"max over {self.tests} {self.what} of |estimate - prediction| / ({z:.2f} SE + bias) = "
                    f"{worst:.3g} {'<=' if worst <= 1 else '>'} 1")
        return head + _rival_text({k: self.ratio(alpha, v) for k, v in self.rivals.items()})

    def perturb(self, alpha, delta):
        if self.exempt is not None:
            return [Perturbation(self.what, "", math.nan, self.exempt)]
        return [Perturbation(self.what, f"x{1 + f:g}", self.ratio(alpha, self.prediction * (1 + f)))
                for f in (-delta, delta)]


def _rival_text(ratios):
    if not ratios:
        return ""
    return "; rivals: " + ", ".join(f"{k} {'excluded' if r > 1 else 'NOT excluded'} (ratio {r:.3g})"
                                    for k, r in ratios.items())


class _Exponent(_Criterion):
    """A criterion on an exponent: perturbed by ±``delta`` of its value (±``delta`` itself when it is 0)."""

    def perturb(self, alpha, delta):
        if self.exempt is not None:
            return [Perturbation(self.what, "", math.nan, self.exempt)]
        step = delta * abs(self.exponent) if self.exponent != 0 else delta
        return [Perturbation(self.what, f"{s:+.3g}", self.ratio(alpha, self.exponent + s)) for s in (-step, step)]


class _Slope(_Exponent):
    """The log-log slope's interval ± q SE (:func:`theory.stats.log_slope`) covers the exponent and excludes every
    rival exponent."""

    def __init__(self, fit, exponent, rivals, correction, level, what, exempt):
        self.fit, self.exponent, self.correction, self.level = fit, float(exponent), correction, level
        self.rivals = {str(k): float(v) for k, v in (rivals or {}).items()}
        self.what, self.exempt = what, exempt

    def _alpha(self, alpha):
        return alpha if self.level is None else 1 - self.level

    def interval(self, alpha):
        return tuple(float(end) for end in self.fit.interval(self._alpha(alpha)))

    def ratio(self, alpha, exponent=None):
        exponent = self.exponent if exponent is None else exponent
        return _ratio(self.fit.slope - exponent, self.fit.quantile(self._alpha(alpha)) * self.fit.stderr)

    def verdict(self, alpha):
        return stats.verdict(self.ratio(alpha) <= 1, all(self.ratio(alpha, r) > 1 for r in self.rivals.values()))

    def text(self, alpha):
        lo, hi = self.interval(alpha)
        terms = int(self.correction)  # validated by stats.log_slope
        model = {0: "", 1: "with a 1/x correction, "}.get(terms, f"with 1/x .. 1/x^{terms} corrections, ")
        level = 1 - self._alpha(alpha)
        return ((f"{self.what}: " if self.what != "exponent" else "")
                + f"fitted exponent {self.fit.slope:.3f} ({model}{level:.6g} interval [{lo:.3f}, {hi:.3f}]) "
                f"{'covers' if self.ratio(alpha) <= 1 else 'misses'} {self.exponent:g}; chi2/dof = "
                f"{self.fit.chi2_dof:.2f}" + _rival_text({k: self.ratio(alpha, v) for k, v in self.rivals.items()}))


class _Profile(_Exponent):
    """A profile-likelihood power-law fit (:func:`theory.stats.fit_power_law`, y ∝ x^{-a}): the likelihood-ratio
    test at the run's level accepts the exponent and rejects every rival exponent."""

    def __init__(self, fit, exponent, rivals, what, exempt):
        if fit.inputs is None:
            raise ValueError("fit: expected a PowerLawFit from theory.stats.fit_power_law")
        self.fit, self.exponent = fit, float(exponent)
        self.rivals = {str(k): float(v) for k, v in (rivals or {}).items()}
        self.what, self.exempt, self._intervals = what, exempt, {}

    def ratio(self, alpha, exponent=None):
        return self.fit.ratio(self.exponent if exponent is None else exponent, alpha)

    def interval(self, alpha):
        if alpha not in self._intervals:
            x, y, y_se, offset, correction, se_dof = self.fit.inputs
            self._intervals[alpha] = stats.fit_power_law(x, y, y_se, offset, correction, level=1 - alpha,
                                                         se_dof=se_dof).interval
        return self._intervals[alpha]

    def verdict(self, alpha):
        return stats.verdict(self.ratio(alpha) <= 1, all(self.ratio(alpha, r) > 1 for r in self.rivals.values()))

    def text(self, alpha):
        lo, hi = self.interval(alpha)
        f = self.fit
        model = "C0 x^-a" + (" (1 + b/x)" if f.inputs[4] else "") + (" + C_inf" if f.inputs[3] else "")
        return ((f"{self.what}: " if self.what != "exponent" else "")
                + f"fitted exponent {f.exponent:.3f} of {model} ({1 - alpha:.6g} profile interval [{lo:.3f}, "
                f"{hi:.3f}]) {'covers' if self.ratio(alpha) <= 1 else 'misses'} {self.exponent:g}; chi2/dof = "
                f"{f.chi2 / max(f.dof, 1):.2f}"
                + _rival_text({k: self.ratio(alpha, v) for k, v in self.rivals.items()}))


class _JointRival(_Criterion):
    """A rival that predicts a value for each of several criteria (e.g. another parameterization's exponents):
    excluded when some criterion excludes its value; otherwise the verdict is inconclusive."""

    tests = 0

    def __init__(self, name, pairs):
        self.name, self.pairs = name, [(c, float(v)) for c, v in pairs]

    def ratio(self, alpha):
        return max(c.ratio(alpha, v) for c, v in self.pairs)

    def verdict(self, alpha):
        return "holds" if self.ratio(alpha) > 1 else "inconclusive"

    def text(self, alpha):
        ratio = self.ratio(alpha)
        return f"rival {self.name} {'excluded' if ratio > 1 else 'NOT excluded'} (largest ratio {ratio:.3g})"


class _Condition(_Criterion):
    """A stated yes/no condition (an inequality, an ordering): no prediction to perturb; ``exempt`` says why."""

    tests = 0

    def __init__(self, holds, description, exempt=None):
        self.holds, self.description, self.exempt = bool(holds), str(description), exempt

    def verdict(self, alpha):
        return "holds" if self.holds else "fails"

    def text(self, alpha):
        return f"{self.description}: {'yes' if self.holds else 'NO'}"


def compare(prediction, estimate, stderr, bias=0.0, rivals=None, what="prediction", exempt=None, **extra):
    """|estimate - prediction| <= z·SE + bias, with ``bias`` a stated bound on the estimator's systematic error and
    z from the run's family-wise level; every rival value in ``rivals`` ({description: value}) must be excluded.

    ``exempt`` (a reason) exempts the criterion from the perturbation run (e.g. a prediction of 0)."""
    criterion = _Comparison(prediction, estimate, stderr, bias, rivals, what, exempt)
    if criterion.tests != 1:
        raise ValueError("prediction, estimate, stderr: expected scalars (use compare_all for arrays)")
    return Result(float(prediction), float(estimate), float(stderr), criteria=[criterion], **extra)


def compare_all(prediction, estimate, stderr, bias=0.0, rivals=None, shown=None, what="entries", exempt=None,
                **extra):
    """:func:`compare` for every entry of arrays (Bonferroni over the entries); a rival (an array of the
    prediction's shape, or a scalar) is excluded when some entry excludes it. The headline numbers are those of
    entry ``shown`` (default: the worst)."""
    criterion = _Comparison(prediction, estimate, stderr, bias, rivals, what, exempt)
    prediction = np.broadcast_to(criterion.prediction, criterion.stderr.shape)
    estimate = np.broadcast_to(criterion.estimate, criterion.stderr.shape)
    if shown is None:
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.abs(estimate - prediction) / (criterion.stderr + criterion.bias)
        shown = np.unravel_index(np.argmax(np.nan_to_num(ratio, nan=np.inf)), ratio.shape)
    return Result(float(prediction[shown]), float(estimate[shown]), float(criterion.stderr[shown]),
                  criteria=[criterion], **extra)


def power_law(x, y, y_se, exponent, rivals=None, correction=False, level=None, what="exponent", exempt=None,
              **extra):
    """Fit log y = a + s log x by weighted least squares (:func:`theory.stats.log_slope`); the interval of s at the
    run's family-wise level must cover ``exponent`` and exclude every rival exponent in ``rivals``.

    With ``correction=True`` the model is y = C x^s (1 + b/x), i.e. log y ≈ a + s log x + b/x: the leading finite-x
    correction of a law that holds as x -> ∞ (a width, a sample size) is fitted instead of biasing s; with
    ``correction=k`` the next terms b₂/x² .. b_k/x^k too.
    The weights are 1/SE(log y)² with SE(log y) = SE(y)/y and the interval uses the normal quantile; when the points
    scatter more than their errors say (χ²/dof > 1, model misfit) the slope's standard error is scaled up by
    √(χ²/dof).
    ``y_se=None`` (one point per network, say): ordinary least squares with the error from the residuals.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    y_se = None if y_se is None else np.asarray(y_se, float)
    fit = stats.log_slope(x, y, y_se, correction=correction)
    data = {"x": x, "y": y, "y_se": y_se, "fit": fit.coef, **extra.pop("data", {})}
    criterion = _Slope(fit, exponent, rivals, correction, level, what, exempt)
    return Result(float(exponent), float(fit.slope), float(fit.stderr), criteria=[criterion], data=data, **extra)


def profile_law(fit, exponent, rivals=None, what="exponent", exempt=None, **extra):
    """A :class:`theory.stats.PowerLawFit` (y = C₀ x^{-a} (1 + b/x) + C_∞, profile likelihood) as a criterion: the
    likelihood-ratio test at the run's level must accept ``exponent`` (a, the decay rate) and reject every rival."""
    criterion = _Profile(fit, exponent, rivals, what, exempt)
    return Result(float(exponent), fit.exponent, fit.stderr, criteria=[criterion], **extra)


def condition(holds, description, exempt=None, **extra):
    """A stated yes/no condition as a criterion (for :func:`combine`): it cannot be perturbed, so a claim that is
    only conditions must give ``exempt``, the reason (e.g. its content is an inequality)."""
    return Result(math.nan, math.nan, math.nan, criteria=[_Condition(holds, description, exempt)], **extra)


def combine(*results, headline=0, rivals=None, **extra):
    """One verdict from several results' criteria: holds iff all hold, fails if any fails, otherwise inconclusive
    (Bonferroni over all their tests). ``rivals`` ({description: [value for each result, or None]}) are joint
    rivals, e.g. another theory's exponents: excluded when some result's criterion excludes its value. The headline
    numbers, interval, data and plot are those of ``results[headline]`` unless given in ``extra``."""
    if not results:
        raise ValueError("results: expected at least one Result to combine")
    head = results[headline]
    criteria = []
    for r in results:
        criteria += r.criteria
    for name, values in (rivals or {}).items():
        if len(values) != len(results):
            raise ValueError(f"rivals: {name!r} needs one value (or None) per result, got {len(values)}")
        pairs = [(r.criteria[0], v) for r, v in zip(results, values) if v is not None]
        if not pairs or not all(hasattr(c, "ratio") for c, _ in pairs):
            raise ValueError(f"rivals: {name!r} needs values for results built by compare or a power-law fit")
        criteria.append(_JointRival(name, pairs))
    options = {"interval": head._interval, "data": head.data, "plot": head.plot, **extra}
    return Result(head.prediction, head.estimate, head.stderr, criteria=criteria, **options)
