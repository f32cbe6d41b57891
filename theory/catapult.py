r"""The catapult mechanism: the uv model's two-scalar map, derived from gradient descent, its fixed points and phases.

Model (Lewkowycz, Bahri, Dyer, Sohl-Dickstein & Gur-Ari 2020, the uv model): a two-layer linear network
f = vᵀu/√n with u, v in R^n, one example x = 1 with target 0, loss L = f²/2, and its NTK λ = (|u|² + |v|²)/n.
Gradient descent u ← u - η ∂L/∂u, v ← v - η ∂L/∂v closes on the inner products uᵀv, |u|², |v|², hence on (f, λ):

    f_{t+1} = (1 - ηλ_t + η² f_t²/n) f_t,        λ_{t+1} = λ_t + (η f_t²/n)(ηλ_t - 4).

Every formula below is derived by SymPy from the updates (:func:`inner_product_map` -> :func:`uv_map` -> fixed
points, Jacobian, phases); numbers come from lambdifying them (:func:`step`, :func:`trajectory`, :func:`phase`).
Phases of (η, λ₀): ``lazy`` for η ≤ 2/λ₀, ``catapult`` for 2/λ₀ < η < 4/λ₀, ``divergent`` for η ≥ 4/λ₀.
"""

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy as sp
from sympy.printing.pretty.stringpict import prettyForm

from .derive import Option, topic
from .numeric import lambdify
from .symbols import eta, n

__all__ = ["f", "lam", "f0", "lam0", "g", "uu", "vv", "uv", "PHASES",
           "inner_product_map", "uv_map", "equations", "rescaled_map", "fixed_points", "jacobian", "stable_set",
           "phase_conditions", "boundaries", "growth_time", "step", "trajectory", "Trajectory", "phase",
           "observed_phase"]


class _Named(sp.Symbol):
    """A symbol with its own unicode pretty form (``u^{\\top}v`` pretty-prints as ``uᵀv``)."""

    _PRETTY = {r"u^{\top}v": "uᵀv", r"\lambda_{t+1}": "λ_{t+1}"}

    def _pretty(self, printer):
        return prettyForm(self._PRETTY.get(self.name, self.name))


#: The network output f = vᵀu/√n and its NTK λ = (|u|² + |v|²)/n at a step; their initial values f₀, λ₀.
f = sp.Symbol("f", real=True)
lam = sp.Symbol("lambda", positive=True)
f0 = sp.Symbol("f_0", real=True)
lam0 = sp.Symbol("lambda_0", positive=True)
#: The rescaled output g = f/√n, in which the map does not depend on n.
g = sp.Symbol("g", real=True)
#: The inner products the gradient-descent updates close on: |u|², |v|², uᵀv.
uu = sp.Symbol("|u|^2", positive=True)
vv = sp.Symbol("|v|^2", positive=True)
uv = _Named(r"u^{\top}v", real=True)
_LAM_NEXT = _Named(r"\lambda_{t+1}")

#: The phase names, in order of increasing ηλ₀.
PHASES = ("lazy", "catapult", "divergent")

_U, _V = sp.MatrixSymbol("u", n, 1), sp.MatrixSymbol("v", n, 1)
_INNER = {frozenset([_U]): uu, frozenset([_V]): vv, frozenset([_U, _V]): uv}


def _contract(expr):
    """A 1x1 matrix expression (a sum of chains aᵀb cᵀd ...) as a scalar polynomial in |u|², |v|², uᵀv."""
    total, expr = sp.S.Zero, sp.expand(expr)
    for term in expr.args if isinstance(expr, sp.MatAdd) else [expr]:
        scalar, chain = term.as_coeff_matrices()
        if len(chain) % 2:
            raise ValueError(f"not a product of inner products: {term}")
        for left, right in zip(chain[::2], chain[1::2]):
            scalar *= _INNER[frozenset([left.arg, right])]
        total += scalar
    return total


@lru_cache(maxsize=1)
def inner_product_map():
    """The next (uᵀv, |u|², |v|²) after one gradient-descent step, as SymPy expressions in the current ones.

    Derived, not typed: L = (vᵀu/√n)²/2, the gradients ∂L/∂u, ∂L/∂v by SymPy's matrix calculus, the updates
    u' = u - η ∂L/∂u, v' = v - η ∂L/∂v, and the products u'ᵀv', u'ᵀu', v'ᵀv' expanded and contracted.
    """
    output = (_V.T * _U) / sp.sqrt(n)
    loss = (output.T * output) / 2
    u1, v1 = _U - eta * loss.diff(_U), _V - eta * loss.diff(_V)
    return tuple(sp.factor(_contract(e)) for e in (u1.T * v1, u1.T * u1, v1.T * v1))


@lru_cache(maxsize=1)
def uv_map():
    """``(f_{t+1}, λ_{t+1})`` as SymPy expressions in f, λ, η, n: :func:`inner_product_map` with uᵀv = √n f,
    |u|² = nλ - |v|² substituted (|v|² cancels: the map closes on the two scalars)."""
    uv1, uu1, vv1 = inner_product_map()
    close = {uv: sp.sqrt(n) * f, uu: n * lam - vv}
    f_next = f * sp.expand(sp.cancel(uv1.subs(close) / (sp.sqrt(n) * f)))
    lam_next = sp.collect(sp.expand((uu1 + vv1).subs(close) / n), f**2, sp.factor)
    for e in (f_next, lam_next):
        if vv in e.free_symbols:
            raise AssertionError(f"the map did not close on (f, lambda): {e}")
    return f_next, lam_next


def equations(rescaled=False):
    """The derived map as equations ``[f_{t+1} = ..., λ_{t+1} = ...]`` (variables at step t); with ``rescaled``,
    the same map in g = f/√n (:func:`rescaled_map`)."""
    (x_next, lam_next), name = (rescaled_map(), "g_{t+1}") if rescaled else (uv_map(), "f_{t+1}")
    return [sp.Eq(sp.Symbol(name), x_next, evaluate=False), sp.Eq(_LAM_NEXT, lam_next, evaluate=False)]


@lru_cache(maxsize=1)
def rescaled_map():
    """The map in g = f/√n: ``(g_{t+1}, λ_{t+1})`` in g, λ, η only -- n drops out, so the peak |f| scales as √n
    and n enters only through the initial condition g₀ = f₀/√n (hence growth times ∝ log n)."""
    f_next, lam_next = uv_map()
    to_g = {f: sp.sqrt(n) * g}
    g_next = g * sp.expand(sp.cancel(f_next.subs(to_g) / (sp.sqrt(n) * g)))
    return g_next, sp.collect(sp.expand(lam_next.subs(to_g)), g**2, sp.factor)


@lru_cache(maxsize=1)
def fixed_points():
    """The solutions of (f, λ) = map(f, λ), as dicts: the line {f = 0} (any λ) and (f, λ) = (±2√n/η, 4/η)."""
    f_next, lam_next = uv_map()
    found = sp.solve([f_next - f, lam_next - lam], [f, lam], dict=True)
    # drop special cases of a larger family, e.g. {f: 0, λ: 4/η} of the line {f: 0}
    return [s for s in found if not any(o != s and o.items() <= s.items() for o in found)]


def jacobian(point=None):
    """The Jacobian ∂(f_{t+1}, λ_{t+1})/∂(f, λ) (a 2x2 SymPy Matrix), at ``point`` (a dict) if given."""
    J = sp.Matrix(uv_map()).jacobian([f, lam])
    return J if point is None else sp.simplify(J.subs(point))


@lru_cache(maxsize=1)
def stable_set():
    """The stable fixed points: f = 0 with the transverse eigenvalue 1 - ηλ of the Jacobian inside the unit
    circle, solved for λ: ``f = 0 and λ < 2/η`` (the other eigenvalue is 1, along the line of fixed points)."""
    J = jacobian({f: 0})
    transverse = J[0, 0]
    if J[0, 1] != 0 or J[1, 0] != 0 or J[1, 1] != 1:
        raise AssertionError(f"unexpected Jacobian on the line f = 0: {J}")
    return sp.And(sp.Eq(f, 0), sp.solve_univariate_inequality(sp.Abs(transverse) < 1, lam))


@lru_cache(maxsize=1)
def phase_conditions():
    """The phases of (η, λ₀) as solved inequalities in η, in a dict keyed by :data:`PHASES`.

    lazy: the f = 0 fixed point at λ₀ is not unstable, |∂f_{t+1}/∂f| = |1 - ηλ₀| ≤ 1, i.e. η ≤ 2/λ₀;
    divergent: as f grows the kernel does not shrink, ∂λ_{t+1}/∂(f²) = η(ηλ₀ - 4)/n ≥ 0, i.e. η ≥ 4/λ₀;
    catapult: neither (f grows, and the growth drives λ down until λ < 2/η): 2/λ₀ < η < 4/λ₀.
    """
    f_next, lam_next = uv_map()
    square = sp.Symbol("s", positive=True)
    push = sp.cancel(sp.diff(lam_next.subs(f, sp.sqrt(square)), square).subs(lam, lam0))
    lazy = sp.solve_univariate_inequality(sp.Abs(_linear_rate()) <= 1, eta)
    divergent = sp.solve_univariate_inequality(push >= 0, eta)
    low, high = _bound(lazy, "upper"), _bound(divergent, "lower")
    return {"lazy": lazy, "catapult": sp.And(low < eta, eta < high), "divergent": divergent}


def _linear_rate():
    """∂f_{t+1}/∂f at f = 0, λ = λ₀: the factor 1 - ηλ₀ by which a small output is multiplied per step."""
    return sp.cancel(sp.diff(uv_map()[0], f).subs({f: 0, lam: lam0}))


def _bound(relation, side):
    """The finite bound of a solved relation in η (``eta <= b`` or ``b <= eta``, possibly and-ed with 0 < η)."""
    parts = relation.args if isinstance(relation, sp.And) else (relation,)
    for r in parts:
        other = r.rhs if r.lhs == eta else r.lhs
        is_upper = (r.lhs == eta) == isinstance(r, (sp.LessThan, sp.StrictLessThan))
        if other.is_finite and other != 0 and is_upper == (side == "upper"):
            return other
    raise AssertionError(f"no {side} bound in {relation}")


def boundaries():
    """``(2/λ₀, 4/λ₀)``: the lazy -> catapult and catapult -> divergent learning rates, read off
    :func:`phase_conditions`."""
    conditions = phase_conditions()
    return _bound(conditions["lazy"], "upper"), _bound(conditions["divergent"], "lower")


@lru_cache(maxsize=1)
def growth_time():
    """t* = log(√n/|f₀|) / log|1 - ηλ₀|: the steps for |f| to grow from |f₀| to the scale √n at the linear rate
    |1 - ηλ₀| (solved from |1 - ηλ₀|^t |f₀| = √n); for f₀ = O(1) it grows as log n / (2 log|1 - ηλ₀|)."""
    ts = sp.Symbol("t", positive=True)
    (solution,) = sp.solve(sp.Eq(sp.Abs(_linear_rate())**ts * sp.Abs(f0), sp.sqrt(n)), ts)
    return sp.expand_log(solution, force=True)


# --------------------------------------------------------------------------------------------------------------
# Numbers: the lambdified map
# --------------------------------------------------------------------------------------------------------------


def step(f_t, lam_t, eta_t, n_t):
    """One step of the derived map on arrays (broadcast together): ``(f_{t+1}, λ_{t+1})`` as float64 arrays."""
    return lambdify((f, lam, eta, n), uv_map())(f_t, lam_t, eta_t, n_t)


@dataclass(frozen=True)
class Trajectory:
    """Iterates of the map: ``f`` and ``lam`` of shape (steps + 1, *shape); non-finite once the run overflows."""

    f: np.ndarray
    lam: np.ndarray

    def phase(self):
        """The observed phase of each run, from |f| (see :func:`observed_phase`)."""
        return observed_phase(np.abs(self.f))


def trajectory(f_init, lam_init, eta_, n_, steps):
    """Iterate the derived map ``steps`` times from (f₀, λ₀) = (``f_init``, ``lam_init``) at learning rate
    ``eta_`` and width ``n_`` (all broadcast together, e.g. a grid of η and n): a :class:`Trajectory`."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps: expected an integer >= 0, got {steps!r}")
    values = [np.asarray(a, dtype=np.float64) for a in (f_init, lam_init, eta_, n_)]
    for name, a, low in zip(("f_init", "lam_init", "eta_", "n_"), values, (None, 0, 0, 0)):
        if not np.all(np.isfinite(a)) or (low is not None and np.any(a <= low)):
            raise ValueError(f"{name}: expected finite values" + ("" if low is None else " > 0"))
    shape = np.broadcast_shapes(*(a.shape for a in values))
    fs, lams = np.empty((steps + 1, *shape)), np.empty((steps + 1, *shape))
    fs[0], lams[0] = np.broadcast_to(values[0], shape), np.broadcast_to(values[1], shape)
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(steps):
            fs[k + 1], lams[k + 1] = step(fs[k], lams[k], values[2], values[3])
    return Trajectory(fs, lams)


def phase(eta_, lam0_):
    """The predicted phase of learning rate ``eta_`` at initial kernel ``lam0_`` (broadcast): an array of
    :data:`PHASES` names, from :func:`boundaries` (lambdified): lazy η ≤ 2/λ₀, catapult, divergent η ≥ 4/λ₀."""
    eta_, lam0_ = np.asarray(eta_, dtype=np.float64), np.asarray(lam0_, dtype=np.float64)
    for name, a in (("eta_", eta_), ("lam0_", lam0_)):
        if not np.all(np.isfinite(a)) or np.any(a <= 0):
            raise ValueError(f"{name}: expected finite values > 0")
    low, high = lambdify((lam0,), boundaries())(lam0_)
    return np.where(eta_ <= low, PHASES[0], np.where(eta_ < high, PHASES[1], PHASES[2]))


def observed_phase(size, rise=1e-6, floor=1e-8):
    """The phase of runs from a series ``size`` of shape (steps + 1, ...): |f| for the uv model, the loss for a
    network. lazy: it never rises; catapult: it rises at some step and ends at or below its start; divergent: it
    ends above its start, or overflows. A rise is a step that multiplies ``size`` by more than 1 + ``rise``, counted
    while ``size`` stays above ``floor`` times its start (below that, rounding noise is not a rise). An array of
    :data:`PHASES` names."""
    size = np.asarray(size, dtype=np.float64)
    start, last = size[0], size[-1]
    with np.errstate(invalid="ignore", over="ignore"):
        alive = np.minimum.accumulate(np.where(np.isnan(size), np.inf, size), axis=0)[:-1] > floor * start
        rises = np.any(alive & ~(size[1:] <= size[:-1] * (1 + rise)), axis=0)
        back = np.isfinite(last) & (last <= start)
    return np.where(back & ~rises, PHASES[0], np.where(back, PHASES[1], PHASES[2]))


# --------------------------------------------------------------------------------------------------------------
# theory derive catapult
# --------------------------------------------------------------------------------------------------------------


@topic("catapult", "the uv model's two-scalar map (f, lambda) derived from gradient descent; --phases adds the "
       "solved phase conditions and the stable set, --rescaled the n-free map in g = f/sqrt(n)",
       Option("phases", False, "also print the phase conditions (lazy, catapult, divergent) and the stable set",
              None),
       Option("rescaled", False, "print the map in g = f/sqrt(n) (it does not depend on n)", None))
def _derive(phases, rescaled):
    out = equations(rescaled)
    if phases:  # labelled: "lazy = (η ≤ 2/λ₀)", ...
        labelled = {**phase_conditions(), "stable set": stable_set()}
        out += [sp.Eq(sp.Symbol(name), condition, evaluate=False) for name, condition in labelled.items()]
    return out
