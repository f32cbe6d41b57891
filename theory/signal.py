r"""Signal propagation through deep random networks: the length and correlation maps, their fixed points, the
order-to-chaos transition and its depth scales (Poole et al. 2016; Schoenholz et al. 2017; Roberts, Yaida & Hanin
2022, "PDLT", ch. 5).

Convention: the NTK parameterization of :mod:`theory.kernels`. Two inputs whose layer-l pre-activations have equal
variance q^l and correlation c^l obey the diagonal and off-diagonal layer maps of :func:`theory.kernels.layer`:

    q^{l+1} = σ_b² + σ_w² E[φ(√q z)²]                                 (the length map),
    c^{l+1} = (σ_b² + σ_w² E[φ(u)φ(v)]) / q^{l+1},  (u, v) ~ N(0, q [[1, c], [c, 1]])   (the correlation map).

At a fixed point q* of the length map, c = 1 is a fixed point of the correlation map with slope
χ₁ = σ_w² E[φ'(√q* z)²] (PDLT's χ_⊥): the ordered phase χ₁ < 1 (c* = 1 attracts), the chaotic phase χ₁ > 1 (a
fixed point c* < 1 attracts), the critical line χ₁ = 1. Deviations from the fixed points decay geometrically,
|q^l - q*| ~ e^{-l/ξ_q} and |c^l - c*| ~ e^{-l/ξ_c}, with

    ξ_q = -1/log χ_∥,   χ_∥ = dq^{l+1}/dq^l at q*,      ξ_c = -1/log χ_c,   χ_c = dc^{l+1}/dc^l at c*,

and ξ_c diverges on the critical line (χ_c = χ₁ = 1 at c* = 1). Every map is the package's derived layer map; the
numbers come from root finding (SciPy's brentq) on its lambdified form.
"""

import warnings
from functools import cached_property, lru_cache

import numpy as np
import sympy as sp
from scipy.optimize import brentq
from sympy.printing.pretty.stringpict import prettyForm

from . import _validate, latex
from . import symbols as sym
from .activations import activation as _activation
from .gaussian import Angle, GaussianExpectation
from .kernels import layer
from .numeric import lambdify
from .symbols import q11, q12, q22, rho

__all__ = ["SignalPropagation", "signal_propagation", "order_chaos_line", "phase_diagram", "maps", "PHASES",
           "Q_MAX"]

#: The phase names, by χ₁ < 1, > 1, = 1.
PHASES = ("ordered", "chaotic", "critical")
#: Fixed points of the length map are searched for in [σ_b², Q_MAX] (the quadrature of activations without a
#: closed form is accurate to 1e-12 up to variances of about 10³).
Q_MAX = 1e3
#: |χ - 1| below which a susceptibility counts as 1 (the root finding resolves χ₁ to ~1e-12).
_CRITICAL = 1e-9
#: The scan for roots, in decades of q: 0, then 1e-8..10 finely, then 10..100 and 100..Q_MAX (costly for
#: activations without a closed form, whose quadrature at q > 10 is a trapezoidal rule), scanned only when needed.
_DECADES = (np.concatenate([[0.0], np.geomspace(1e-8, 10, 91)]), np.geomspace(10, 100, 11)[1:],
            np.geomspace(100, Q_MAX, 11)[1:])
#: The scan for correlation fixed points below 1: steps of 0.01, then geometric towards 1 (near the critical line
#: c* = 1 - O(χ₁ - 1)).
_RHOS = np.concatenate([np.linspace(-1.0, 0.9, 191), 1 - np.geomspace(0.1, 1e-7, 61)[1:]])



class _Named(sp.Symbol):
    """A symbol named by its LaTeX, with its own unicode pretty form (``\\chi_1`` pretty-prints as ``χ₁``)."""

    _PRETTY = {"q^*": "q*", "c^*": "c*", "q^{l}": "qˡ", "q^{l+1}": "qˡ⁺¹", "c^{l}": "cˡ", "c^{l+1}": "cˡ⁺¹",
               r"\chi_1": "χ₁", r"\chi_\parallel": "χ_∥", r"\chi_c": "χ_c", r"\xi_q": "ξ_q", r"\xi_c": "ξ_c",
               r"\sigma_{w,c}^2": "σ_w,c²"}

    def _pretty(self, printer):
        return prettyForm(self._PRETTY.get(self.name, self.name))


_sw, _sb = sym.sigma_w2, sym.sigma_b2
_Q_STAR, _C_STAR = _Named("q^*", positive=True), _Named("c^*", real=True)
_Q_L, _Q_NEXT = _Named("q^{l}", positive=True), _Named("q^{l+1}", positive=True)
_C_L, _C_NEXT = _Named("c^{l}", real=True), _Named("c^{l+1}", real=True)
_CHI_1, _CHI_PAR, _CHI_C = _Named(r"\chi_1"), _Named(r"\chi_\parallel"), _Named(r"\chi_c")
_XI_Q, _XI_C = _Named(r"\xi_q"), _Named(r"\xi_c")
_SW_CRITICAL = _Named(r"\sigma_{w,c}^2")


class Maps:
    """The derived length and correlation maps of one activation (SymPy, in q = ``q11``, c = ``rho``, σ_w², σ_b²)
    and their lambdified forms."""

    def __init__(self, act):
        lay = layer(act)
        self.activation = act
        #: q ↦ σ_b² + σ_w² E[φ(√q z)²], its slope χ_∥, and χ₁ = σ_w² E[φ'(√q z)²] (the diagonal K̇ map)
        self.length = lay.nngp_diag
        self.chi_parallel = sp.diff(lay.nngp_diag, q11)
        self.chi_1 = lay.kdot_diag
        #: c ↦ K^{l+1}(x, x')/K^{l+1}(x, x) at variance q, and its slope χ_c = ∂c^{l+1}/∂c
        self.correlation = lay.nngp.xreplace({q12: rho * q11, q22: q11}) / lay.nngp_diag
        self.chi_c = sp.diff(self.correlation, rho)
        args = (q11, _sw, _sb)
        self.length_f, self.chi_parallel_f, self.chi_1_f = (lambdify(args, e) for e in
                                                            (self.length, self.chi_parallel, self.chi_1))
        self.correlation_f = lambdify((q11, rho, _sw, _sb), self.correlation)
        self.chi_c_f = lambdify((q11, rho, _sw, _sb), self.chi_c)
        # E[φ²] and E[φ'²] at variance q, read off the derived maps (they are affine in σ_b², linear in σ_w²)
        self.phi2 = sp.simplify((lay.nngp_diag - _sb) / _sw)
        self.dphi2 = sp.simplify(lay.kdot_diag / _sw)
        self.phi2_f, self.dphi2_f = lambdify([q11], self.phi2), lambdify([q11], self.dphi2)

    @cached_property
    def bound(self):
        """sup φ² when φ is bounded (its limits at ±∞ are finite), else ∞: no fixed point of the length map lies
        beyond σ_b² + σ_w² sup φ²."""
        phi = self.activation.expr
        try:
            ends = [sp.limit(phi, sym.z, end) for end in (sp.oo, -sp.oo)]
        except (NotImplementedError, ValueError):
            return np.inf
        sup = []
        for end in ends:
            if isinstance(end, sp.AccumBounds):
                end = sp.Max(abs(end.min), abs(end.max))
            if not end.is_finite:
                return np.inf
            sup.append(float(abs(end)) ** 2)
        values, _ = self.activation.numpy
        return max(sup + [float(np.max(values(np.linspace(-50, 50, 20001)) ** 2))])

    @cached_property
    def scale_invariant(self):
        """True when the length map at σ_b² = 0 is linear in q (ReLU, leaky ReLU, |z|, linear): then every
        q is a fixed point on the critical line."""
        return bool(sp.simplify(sp.diff(self.phi2, q11, 2)) == 0 and sp.simplify(self.phi2.subs(q11, 0)) == 0)


@lru_cache(maxsize=32)
def _maps(act):
    return Maps(act)


def maps(activation):
    """The :class:`Maps` (length map, correlation map, χ₁, χ_∥, χ_c) of ``activation``, derived from
    :func:`theory.kernels.layer`."""
    return _maps(_activation(activation))


def _closed(expr):
    return not expr.has(GaussianExpectation)


def _xi(chi):
    """-1/log|χ|: the depth over which a deviation shrinks by e (∞ at |χ| = 1)."""
    chi = abs(chi)
    if abs(chi - 1) <= _CRITICAL:
        return np.inf
    return -1 / np.log(chi) if chi < 1 else np.inf


class SignalPropagation(latex.Equations):
    r"""The fixed points, susceptibilities and depth scales of one (activation, σ_w², σ_b²).

    Numbers (float): ``q_star``, ``c_star`` (the stable correlation fixed point reached from positively correlated
    inputs), ``chi_1`` = σ_w² E[φ'(√q* z)²] (χ_⊥ in PDLT), ``chi_parallel`` = dq^{l+1}/dq^l at q*, ``chi_c`` =
    dc^{l+1}/dc^l at c* (= χ₁ when c* = 1), ``xi_q`` = -1/log χ_∥, ``xi_c`` = -1/log χ_c (∞ at criticality), and
    ``phase``. Symbolic: ``equations`` (the maps and the formulas of χ₁, χ_∥, χ_c, ξ_q, ξ_c in q*, c*),
    ``q_star_expr`` (q* in closed form where SymPy solves the length map, else None); ``latex()`` and
    ``_repr_latex_`` print them. References: Poole et al. (2016), Schoenholz et al. (2017), PDLT §5.
    """

    def __init__(self, activation, sigma_w2, sigma_b2, q_star, c_star, chi_1, chi_parallel, chi_c, note=""):
        self.activation, self.sigma_w2, self.sigma_b2 = activation, sigma_w2, sigma_b2
        self.q_star, self.c_star = float(q_star), float(c_star)
        self.chi_1, self.chi_parallel, self.chi_c = float(chi_1), float(chi_parallel), float(chi_c)
        self.xi_q, self.xi_c = _xi(self.chi_parallel), _xi(self.chi_c)
        self.note = note

    @property
    def phase(self):
        """"ordered" (χ₁ < 1), "chaotic" (χ₁ > 1) or "critical" (χ₁ = 1 to 1e-9)."""
        if abs(self.chi_1 - 1) <= _CRITICAL:
            return "critical"
        return "ordered" if self.chi_1 < 1 else "chaotic"

    @cached_property
    def q_star_expr(self):
        """q* in closed form in σ_w², σ_b² where SymPy solves q = σ_b² + σ_w² E[φ(√q z)²] (e.g. ReLU:
        σ_b²/(1 - σ_w²/2)), else None."""
        m = maps(self.activation)
        if not _closed(m.length) or m.length.has(Angle):
            return None
        try:
            roots = sp.solve(sp.Eq(m.length, q11), q11)
        except NotImplementedError:
            return None
        return roots[0] if len(roots) == 1 else None

    @cached_property
    def equations(self):
        """The maps and the susceptibilities and depth scales as ``Eq`` in q^l, c^l, q*, c*, σ_w², σ_b²."""
        m = maps(self.activation)
        at = {q11: _Q_STAR, rho: _C_STAR}
        eqs = [sp.Eq(_Q_NEXT, m.length.xreplace({q11: _Q_L}), evaluate=False),
               sp.Eq(_C_NEXT, m.correlation.xreplace({q11: _Q_L, rho: _C_L}), evaluate=False),
               sp.Eq(_CHI_1, m.chi_1.xreplace(at), evaluate=False),
               sp.Eq(_CHI_PAR, m.chi_parallel.xreplace(at), evaluate=False),
               sp.Eq(_CHI_C, m.chi_c.xreplace(at), evaluate=False),
               sp.Eq(_XI_Q, -1 / sp.log(_CHI_PAR), evaluate=False),
               sp.Eq(_XI_C, -1 / sp.log(_CHI_C), evaluate=False)]
        if self.q_star_expr is not None:
            eqs.insert(2, sp.Eq(_Q_STAR, self.q_star_expr, evaluate=False))
        return eqs

    def values(self):
        """The numbers as a dict."""
        return {k: getattr(self, k) for k in ("q_star", "c_star", "chi_1", "chi_parallel", "chi_c", "xi_q",
                                              "xi_c", "phase")}

    def __repr__(self):
        name = self.activation.name
        return (f"SignalPropagation({name}, sigma_w2={self.sigma_w2:g}, sigma_b2={self.sigma_b2:g}: "
                f"q*={self.q_star:.6g}, c*={self.c_star:.6g}, chi_1={self.chi_1:.6g}, xi_c={self.xi_c:.4g}, "
                f"{self.phase})")


def _roots(f, grid, gap, *args):
    """The roots of f on ``grid`` (where f = ``gap``) as (root, falling): exact zeros at the first point, and brentq
    between the sign changes of the entries above the rounding (1e-12 of the scale), so that noise around a root
    at 0 is none. ``falling`` says f goes from + to - through the root (a stable fixed point of q -> q + f(q))."""
    keep = np.nonzero(np.abs(gap) > 1e-12 * (1 + np.abs(grid)))[0]
    roots = [(float(grid[0]), bool(keep.size) and gap[keep[0]] < 0)] if gap[0] == 0 else []
    for i, j in zip(keep[:-1], keep[1:]):
        if np.sign(gap[i]) != np.sign(gap[j]):
            roots.append((brentq(f, grid[i], grid[j], args=args, xtol=1e-15, rtol=1e-15), bool(gap[i] > 0)))
    return roots


@lru_cache(maxsize=256)
def _length_fixed_points(m, sw, sb):
    """The stable and unstable fixed points of the length map in [σ_b², Q_MAX], by a scan and brentq; a fixed
    point is stable when the map crosses the diagonal from above (q^{l+1} > q^l below it, < above it).

    The scan goes decade by decade (:data:`_DECADES`) and stops where the map lies below the diagonal after a
    stable fixed point, or beyond σ_b² + σ_w² sup φ² for bounded φ (no fixed point lies there)."""
    f = lambda q: float(m.length_f(q, sw, sb)) - q  # noqa: E731
    grid, gap = np.empty(0), np.empty(0)
    for decade in _DECADES:
        if grid.size and (grid[-1] > sb + sw * m.bound or (gap[-1] < 0 and any(s for _, s in _roots(f, grid, gap)))):
            break
        points = sb + decade
        beyond = np.nonzero(points > sb + sw * m.bound)[0]
        points = points[:beyond[0] + 1] if beyond.size else points  # one point past the bound brackets the last root
        with np.errstate(over="ignore", invalid="ignore"):
            values = m.length_f(points, sw, sb)
        grid, gap = np.concatenate([grid, points]), np.concatenate([gap, values - points])
    if np.all(np.abs(gap) <= 1e-12 * np.maximum(grid, 1e-300)):
        return None, None  # every q is a fixed point
    roots = _roots(f, grid, gap)
    return tuple(q for q, s in roots if s), tuple(q for q, s in roots if not s)


def _correlation_fixed_point(m, q, sw, sb, chi_1):
    """The largest stable fixed point c* of the correlation map at variance q*, and χ_c there."""
    if q == 0:  # the variance vanishes: K^{l+1}(x, x')/K^{l+1}(x, x) -> c, so every correlation is marginal
        return 1.0, 1.0
    if chi_1 <= 1 + _CRITICAL:
        return 1.0, chi_1
    gap = m.correlation_f(q, _RHOS, sw, sb) - _RHOS
    f = lambda c: float(m.correlation_f(q, c, sw, sb)) - c  # noqa: E731
    stable = [c for c, falling in _roots(f, _RHOS, gap) if falling]
    if not stable:
        raise ValueError(f"no stable correlation fixed point below c = 1 at q* = {q:.6g} although chi_1 = "
                         f"{chi_1:.6g} > 1")
    return stable[-1], float(m.chi_c_f(q, stable[-1], sw, sb))


def _one(m, sw, sb, q, note):
    chi_1 = float(m.chi_1_f(q, sw, sb))
    chi_par = float(m.chi_parallel_f(q, sw, sb))
    c, chi_c = _correlation_fixed_point(m, q, sw, sb, chi_1)
    return SignalPropagation(m.activation, sw, sb, q, c, chi_1, chi_par, chi_c, note)


def signal_propagation(activation, sigma_w2, sigma_b2=0.0, q=None):
    r"""The signal-propagation theory of ``activation`` at (σ_w², σ_b²): a :class:`SignalPropagation`.

    Fixed points q* = σ_b² + σ_w² E[φ(√q* z)²] are searched for in [σ_b², 10³]; c* is the largest stable fixed
    point of the correlation map (c* = 1 in the ordered phase and on the critical line). When the length map has
    several stable fixed points, the one that the input variance ``q`` (K⁰ = σ_b² + σ_w²|x|²/d) flows to is
    returned if ``q`` is given; otherwise a tuple of all of them, with a warning that says so. When every q is a
    fixed point (scale-invariant φ at σ_w² = 1/E[φ'²], σ_b² = 0, e.g. ReLU at 2, 0) q* is ``q`` (default 1).
    Raises ValueError when no stable fixed point exists (e.g. ReLU at σ_w² > 2: the variance grows without bound).

    Poole et al. (2016) eqs. (3), (5); Schoenholz et al. (2017) eqs. (2)-(9); PDLT §5.1-5.3.
    """
    m = maps(activation)
    sw = _validate.variance(sigma_w2, "sigma_w2", positive=True)
    sb = _validate.variance(sigma_b2, "sigma_b2")
    if q is not None:
        q = _validate.variance(q, "q")
    stable, unstable = _length_fixed_points(m, sw, sb)
    name = m.activation.name
    if stable is None:
        q0 = 1.0 if q is None else q
        return _one(m, sw, sb, q0, "every q is a fixed point of the length map; q* is the input variance")
    if not stable:
        where = f" (unstable fixed points: {', '.join(f'{u:.6g}' for u in unstable)})" if unstable else ""
        raise ValueError(f"activation {name}: at sigma_w2 = {sw:g}, sigma_b2 = {sb:g} the length map q -> sigma_b2 + "
                         f"sigma_w2 E[phi(sqrt(q) z)^2] has no stable fixed point in [sigma_b2, {Q_MAX:g}]{where}: "
                         "the variance of the pre-activations grows (or collapses) without bound")
    if len(stable) == 1:
        return _one(m, sw, sb, stable[0], "")
    if q is not None:  # the basin of q: the stable fixed points bracket the unstable ones between them
        target = min(stable, key=lambda s: (any(min(s, q) < u < max(s, q) for u in unstable), abs(s - q)))
        return _one(m, sw, sb, target, f"one of {len(stable)} stable fixed points, the one q = {q:g} flows to")
    warnings.warn(f"activation {name}: the length map at sigma_w2 = {sw:g}, sigma_b2 = {sb:g} has {len(stable)} "
                  f"stable fixed points ({', '.join(f'{s:.6g}' for s in stable)}); returning all of them (pass q= "
                  "to select the one an input variance flows to)", stacklevel=2)
    return tuple(_one(m, sw, sb, s, f"one of {len(stable)} stable fixed points") for s in stable)


def _critical_variances(m, largest):
    """(q grid, σ_b²(q) = q - E[φ²]/E[φ'²]): at q* = q the critical σ_w² = 1/E[φ'²] puts q on the critical
    line with this bias variance (the fixed-point condition is affine in σ_b², σ_w²). The scan goes decade by
    decade (:data:`_DECADES`) until σ_b²(q) exceeds ``largest``."""
    grid, bias = np.empty(0), np.empty(0)
    for decade in _DECADES:
        if bias.size and bias[-1] > largest:
            break
        grid, bias = np.concatenate([grid, decade]), np.concatenate([bias, decade - m.phi2_f(decade) / m.dphi2_f(decade)])
    return grid, bias


def order_chaos_line(activation, sigma_b2):
    r"""The critical σ_w² where χ₁ = σ_w² E[φ'(√q* z)²] = 1 at the fixed point q* of the length map, for each σ_b²
    (a float for a scalar, an array of the shape of ``sigma_b2`` otherwise).

    On the line, q* and σ_w² solve q* = σ_b² + σ_w² E[φ²]_{q*} and σ_w² E[φ'²]_{q*} = 1, i.e.
    σ_b² = q* - E[φ²]_{q*}/E[φ'²]_{q*} (solved for q* by brentq) and σ_w² = 1/E[φ'²]_{q*} (Schoenholz et al. 2017,
    Fig. 1; Poole et al. 2016, Fig. 2). For scale-invariant φ (ReLU) χ₁ does not depend on q*: the line is
    σ_w² = 1/E[φ'²] at σ_b² = 0 only (at σ_b² > 0 the variance diverges there). Raises ValueError naming σ_b²
    when no or several critical σ_w² exist.
    """
    m = maps(activation)
    arr = np.asarray(sigma_b2, dtype=np.float64)
    if arr.size == 0:
        return arr.copy()
    for value in arr.ravel():
        _validate.variance(float(value), "sigma_b2")
    name = m.activation.name
    out = np.empty(arr.shape)
    if m.scale_invariant:
        if np.any(arr > 0):
            raise ValueError(f"activation {name} is scale-invariant: chi_1 = 1 needs sigma_w2 = "
                             f"{1 / float(m.dphi2_f(1.0)):.6g}, where the length map has a fixed point only at "
                             "sigma_b2 = 0 (at sigma_b2 > 0 the variance diverges)")
        out[...] = 1 / float(m.dphi2_f(1.0))
        return float(out) if out.ndim == 0 else out
    grid, bias = _critical_variances(m, float(arr.max()))
    h = lambda q, target: float(q - m.phi2_f(q) / m.dphi2_f(q)) - target  # noqa: E731
    for index, target in np.ndenumerate(arr):
        roots = [r for r, _ in _roots(h, grid, bias - target, target)]
        roots = [r for r in roots if float(m.chi_parallel_f(r, 1 / float(m.dphi2_f(r)), target)) < 1 + _CRITICAL]
        if len(roots) != 1:
            what = "no" if not roots else f"{len(roots)} ({', '.join(f'q* = {r:.6g}' for r in roots)})"
            raise ValueError(f"activation {name}: {what} critical point with a stable q* <= {Q_MAX:g} at "
                             f"sigma_b2 = {target:g}")
        out[index] = 1 / float(m.dphi2_f(roots[0]))
    return float(out) if out.ndim == 0 else out


def phase_diagram(activation, sigma_w2=None, sigma_b2=None, fig=None):
    r"""The order-to-chaos phase diagram (Schoenholz et al. 2017, Fig. 1): ξ_c over the (σ_w², σ_b²) plane as
    filled contours (log scale), the critical line χ₁ = 1, and the phases. ``sigma_w2``, ``sigma_b2``: 1-D grids
    (default 1..4 by 0.25 and 0..0.3 by 0.05: 91 points, ~0.3 s each for tanh). Returns a matplotlib Figure
    without pyplot state (like :meth:`theory.claims.Result.figure`), or draws into ``fig``. Needs the ``plot``
    extra (matplotlib).
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter

    sw = np.arange(1.0, 4.0001, 0.25) if sigma_w2 is None else np.asarray(sigma_w2, dtype=np.float64)
    sb = np.arange(0.0, 0.3001, 0.05) if sigma_b2 is None else np.asarray(sigma_b2, dtype=np.float64)
    if sw.ndim != 1 or sb.ndim != 1 or sw.size < 2 or sb.size < 2:
        raise ValueError("sigma_w2, sigma_b2: expected 1-D grids of at least two values each")
    act = maps(activation).activation

    def xi_c(w, b):  # blank where no single stable fixed point exists (e.g. ReLU beyond σ_w² = 2)
        try:
            s = signal_propagation(act, w, b)
        except ValueError:
            return np.nan
        return np.nan if isinstance(s, tuple) else s.xi_c

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        xi = np.array([[xi_c(w, b) for w in sw] for b in sb])
    fig = Figure(figsize=(6, 4.2), layout="constrained") if fig is None else fig
    ax = fig.add_subplot()
    log_xi = np.log10(np.where(np.isfinite(xi), xi, np.nan))  # contours interpolate log ξ_c, which varies smoothly
    levels = np.linspace(np.nanmin(log_xi), np.nanmax(log_xi), 13)
    filled = ax.contourf(sw, sb, log_xi, levels=levels, cmap="viridis")
    fig.colorbar(filled, ax=ax, label=r"$\xi_c$ (layers)", format=FuncFormatter(lambda v, _: f"{10 ** v:.3g}"))
    ax.contour(sw, sb, log_xi, levels=levels, colors="white", linewidths=0.4)
    line = []
    for b in np.linspace(sb.min(), sb.max(), 40):
        try:
            line.append((order_chaos_line(act, b), b))
        except ValueError:  # no critical σ_w² at this σ_b² (e.g. ReLU at σ_b² > 0)
            continue
    if line:
        ax.plot(*np.transpose(line), color="red", lw=2, label=r"critical line $\chi_1 = 1$")
    ax.set_xlim(sw.min(), sw.max())
    ax.set_xlabel(r"$\sigma_w^2$")
    ax.set_ylabel(r"$\sigma_b^2$")
    ax.text(0.05, 0.9, "ordered", transform=ax.transAxes, color="white")
    ax.text(0.8, 0.1, "chaotic", transform=ax.transAxes, color="white")
    ax.set_title(f"{act.name}: depth scale of correlations")
    if line:
        ax.legend(loc="lower left")
    return fig


# --------------------------------------------------------------------------------------------------------------
# theory derive signal
# --------------------------------------------------------------------------------------------------------------

from .derive import Option, _number, topic  # noqa: E402  (the registry is only needed from here on)


def _float(value):
    return sp.oo if np.isinf(value) else sp.Float(value, 10)


@topic("signal", "signal propagation: the fixed point q*, chi_1 and the critical sigma_w^2 at a bias variance",
       Option("activation", "tanh", "activation name or spec, e.g. tanh, erf, relu"),
       Option("sigma_b2", sp.Rational(1, 20), "bias variance (a number)", _number),
       Option("sigma_w2", None, "weight variance (a number; default: the critical one)", _number),
       Option("maps", False, "print the length and correlation maps and the formulas of chi and xi too", None))
def _derive_signal(activation, sigma_b2, sigma_w2, maps):
    sb = float(sigma_b2)
    critical = order_chaos_line(activation, sb)
    sw = critical if sigma_w2 is None else float(sigma_w2)
    theory = signal_propagation(activation, sw, sb)
    if isinstance(theory, tuple):
        raise ValueError(f"{len(theory)} stable fixed points at sigma_w2 = {sw:g}, sigma_b2 = {sb:g}; use the Python "
                         "API with q=")
    out = [sp.Eq(_SW_CRITICAL, _float(critical), evaluate=False),
           sp.Eq(_sw, _float(sw), evaluate=False), sp.Eq(_sb, sigma_b2, evaluate=False),
           sp.Eq(_Q_STAR, _float(theory.q_star), evaluate=False), sp.Eq(_C_STAR, _float(theory.c_star), evaluate=False),
           sp.Eq(_CHI_1, _float(theory.chi_1), evaluate=False),
           sp.Eq(_CHI_PAR, _float(theory.chi_parallel), evaluate=False),
           sp.Eq(_XI_Q, _float(theory.xi_q), evaluate=False), sp.Eq(_XI_C, _float(theory.xi_c), evaluate=False),
           sp.Eq(sp.Symbol("phase"), sp.Symbol(theory.phase), evaluate=False)]
    return (theory.equations + out) if maps else out
