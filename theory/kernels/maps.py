r"""The symbolic layer maps of fully-connected networks and their lambdified steps.

One layer in the NTK parameterization (Jacot et al. 2018; Lee et al. 2018) maps the kernel state
(K(x,x), K(x,x'), K(x',x'), Θ(x,x')) to

    K^l = σ_b² + σ_w² ⟨φ(u) φ(v)⟩_{K^{l-1}},    K̇^l = σ_w² ⟨φ'(u) φ'(v)⟩_{K^{l-1}},    Θ^l = K^l + K̇^l Θ^{l-1},

where ⟨·⟩_K averages over (u, v) ~ N(0, [[K(x,x), K(x,x')], [K(x,x'), K(x',x')]]), with K⁰ = Θ⁰ = σ_b² + σ_w² x·x'/d.
:func:`layer` derives the map once; :class:`KernelRecursion` composes it symbolically; :func:`_step` lambdifies it
(with the carried angle where the map is not smooth at ρ = ±1) for :mod:`theory.kernels.engine`, and
:mod:`theory.kernels.ccode` prints the same expressions as C.
"""

from functools import cached_property, lru_cache
from typing import NamedTuple

import numpy as np
import sympy as sp

from .. import _compact, _validate, latex
from ..activations import activation as _activation
from ..gaussian import Angle, gaussian_expectation
from ..numeric import c_statements, lambdify
from .. import symbols as sym
from ..symbols import g12, g11, g22, q11, q12, q22

__all__ = ["Layer", "layer", "KernelRecursion", "kernels"]

class Layer(NamedTuple):
    """One layer's maps, as SymPy expressions in q11, q12, q22, σ_w², σ_b².

    ``nngp`` and ``kdot`` are K^l(x, x') and K̇^l(x, x'); ``nngp_diag`` and ``kdot_diag`` are the same at x = x'
    (q12 = q22 = q11), simplified exactly (e.g. σ_b² + σ_w² q11/2 for ReLU).
    """

    nngp: sp.Expr
    kdot: sp.Expr
    nngp_diag: sp.Expr
    kdot_diag: sp.Expr


@lru_cache(maxsize=128)
def layer(activation):
    """The derived one-layer NNGP and K̇ maps of ``activation`` (a name, SymPy expression or Activation)."""
    act = _activation(activation)
    k = sym.sigma_b2 + sym.sigma_w2 * gaussian_expectation(act, act)
    kd = sym.sigma_w2 * gaussian_expectation(act.derivative, act.derivative)
    diag = {q12: q11, q22: q11}
    return Layer(k, kd, sp.simplify(k.xreplace(diag)), sp.simplify(kd.xreplace(diag)))


def _input_kernel(g):
    return sym.sigma_b2 + sym.sigma_w2 * g


class KernelRecursion(latex.Equations):
    r"""The NNGP and NTK of a depth-L network, derived symbolically.

    >>> k = kernels("relu", depth=2)
    >>> k.nngp      # K^2(x, x') as a SymPy expression of g11 = |x|²/d, g12 = x·x'/d, g22 = |x'|²/d
    >>> k.equations # the layer-by-layer system, compact at any depth

    ``sigma_w2`` and ``sigma_b2`` default to the symbols σ_w², σ_b²; numbers may be given instead.
    """

    def __init__(self, activation, depth, sigma_w2=sym.sigma_w2, sigma_b2=sym.sigma_b2):
        self.activation = _activation(activation)
        self.depth = _validate.count(depth, "depth")
        self.sigma_w2, self.sigma_b2 = (_validate.symbolic_variance(value, name) for value, name in
                                        ((sigma_w2, "sigma_w2"), (sigma_b2, "sigma_b2")))
        self._params = {sym.sigma_w2: self.sigma_w2, sym.sigma_b2: self.sigma_b2}
        self.layer = Layer(*(e.xreplace(self._params) for e in layer(self.activation)))

    def _step(self, k11, k12, k22, theta):
        sub = {q11: k11, q12: k12, q22: k22}
        new12 = self.layer.nngp.xreplace(sub)
        new_theta = new12 + self.layer.kdot.xreplace(sub) * theta
        return (self.layer.nngp_diag.xreplace({q11: k11}), new12, self.layer.nngp_diag.xreplace({q11: k22}),
                new_theta)

    @cached_property
    def _composed(self):
        k11, k12, k22 = (_input_kernel(g).xreplace(self._params) for g in (g11, g12, g22))
        state = (k11, k12, k22, k12)
        for _ in range(self.depth):
            state = self._step(*state)
        return state

    @property
    def nngp(self):
        """K^L(x, x') in terms of g11, g12, g22 (the input Gram entries over d); beyond depth 2 shown compactly as
        K^(L)_12(g11, g12, g22, ...), whose ``doit()`` is the full expression (see :mod:`theory._compact`)."""
        return self._compact("K", 1)

    @property
    def ntk(self):
        """Θ^L(x, x') in terms of g11, g12, g22; beyond depth 2 compact, like :attr:`nngp`."""
        return self._compact("Theta", 3)

    def _compact(self, kind, index):
        # the free symbols without building the composition: the input Gram entries and the layer map's parameters
        symbols = {g11, g12, g22}.union(*(e.free_symbols for e in self.layer)) - {q11, q12, q22}
        symbols |= self.sigma_w2.free_symbols | self.sigma_b2.free_symbols
        key = (self.activation, self.depth, self.sigma_w2, self.sigma_b2)
        return _compact.kernel(key, lambda: self._composed[index], symbols, kind, self.depth)

    @cached_property
    def equations(self):
        """The recursion as a list of ``sympy.Eq``, one block per layer, in per-layer symbols K_ab^(l), Theta_12^(l)."""
        def syms(l):
            return (sp.Symbol(f"K_11^({l})", positive=True), sp.Symbol(f"K_12^({l})", real=True),
                    sp.Symbol(f"K_22^({l})", positive=True), sp.Symbol(f"Theta_12^({l})", real=True))

        k11, k12, k22, th = syms(0)
        eqs = [sp.Eq(k11, _input_kernel(g11).xreplace(self._params), evaluate=False),
               sp.Eq(k12, _input_kernel(g12).xreplace(self._params), evaluate=False),
               sp.Eq(k22, _input_kernel(g22).xreplace(self._params), evaluate=False),
               sp.Eq(th, k12, evaluate=False)]
        for l in range(1, self.depth + 1):
            new = syms(l)
            eqs += [sp.Eq(lhs, rhs, evaluate=False) for lhs, rhs in zip(new, self._step(k11, k12, k22, th))]
            k11, k12, k22, th = new
        return eqs

    def __repr__(self):
        return f"KernelRecursion({self.activation.name}, depth={self.depth})"


def kernels(activation, depth, sigma_w2=sym.sigma_w2, sigma_b2=sym.sigma_b2):
    """The symbolic NNGP/NTK recursion of a depth-``depth`` network; see :class:`KernelRecursion`."""
    return KernelRecursion(activation, depth, sigma_w2, sigma_b2)


# --------------------------------------------------------------------------------------------------------------
# Numerics. Near ρ = ±1 the angle θ = arccos(q12/√(q11 q22)) cannot be recovered from the kernel entries: the
# determinant q11 q22 - q12² cancels, and activations whose maps are not smooth at ρ = ±1 (ReLU, |z|, step, ...)
# see θ directly (K̇ = σ_w² (π - θ)/2π for ReLU), so a 1e-16 rounding of q12 becomes a 1e-8 error. For those
# activations the recursion carries θ itself, through the angle map derived below, which has no cancellation.
# --------------------------------------------------------------------------------------------------------------

_PLAIN_ANGLE = Angle(q11, q12, q22)
_SERIES_ORDER = 14  # Taylor terms of the gaps near θ = 0 and θ = π
_SERIES_CUTOFF = sp.Rational(1, 20)  # below it the series is exact to ~1e-16; above, the direct form is


_GAP_MINUS, _GAP_PLUS = sp.symbols("g_- g_+", real=True)  # non-negative, but for rounding
_ENDS = sp.symbols("G H", nonnegative=True)


def _angle_map(pair, bias=True):
    r"""The angle map θ -> θ' = Angle(K'11, K'12, K'22) of one layer, in pieces that never cancel.

    ``pair`` is E[φ(u)φ(v)] in q11, q12, q22 and Angle(q11, q12, q22). With A = E[φ(u)²] on each side,
    G = √(K'11 K'22) - K'12 and H = √(K'11 K'22) + K'12 give tan(θ'/2) = √(G/H), and, multiplied by
    D = √(K'11 K'22) + σ_b² + σ_w² √(A11 A22) > 0 (θ' only depends on G/H),

        D·G = σ_b² σ_w² (√A11 - √A22)² + σ_w² D g₋,      g₋ = √(A11 A22) - E12,
        D·H = σ_b² σ_w² (√A11 - √A22)² + D (2σ_b² + σ_w² g₊),   g₊ = √(A11 A22) + E12,

    sums of non-negative terms; without bias (``bias=False``: σ_b² = 0) simply G/H = g₋/g₊. The gaps g∓ cancel
    where they vanish: g₋ near θ = 0 (and near θ = π for even φ), g₊ near θ = π (odd φ). Within
    ``_SERIES_CUTOFF`` of 0 and of π their Taylor series replace them. When everything vanishes (zero variances)
    θ' = π/2, i.e. ρ := 0.

    Returns ``(ends, polar, minus, plus)``: (G, H) (up to the factor D) in (q11, q22, g₋, g₊, σ_w², σ_b²);
    (θ', sin θ', cos θ') = (2 atan √(G/H), 2√(GH)/(G + H), (H - G)/(G + H)) in (G, H) -- one inverse tangent, and
    the sine and cosine by division, so that the next layer needs no trigonometric function; and each gap in
    (q11, q22, θ) as a triple (direct form, series at θ = 0, series at θ = π), the series in Horner form.
    """
    e = pair.xreplace({_PLAIN_ANGLE: sym.theta}).xreplace({q12: sp.sqrt(q11 * q22) * sp.cos(sym.theta)})
    a11 = sp.simplify(pair.xreplace({q12: q11, q22: q11}))
    a22 = a11.xreplace({q11: q22})
    root = sp.sqrt(a11 * a22)
    eps = sp.Dummy("epsilon", nonnegative=True)

    def forms(gap):
        at_zero = sp.series(gap, sym.theta, 0, _SERIES_ORDER).removeO()
        at_pi = sp.series(gap.xreplace({sym.theta: sp.pi - eps}), eps, 0, _SERIES_ORDER).removeO()
        return gap, sp.horner(at_zero, sym.theta), sp.horner(at_pi, eps).xreplace({eps: sp.pi - sym.theta})

    # evaluate=False: SymPy would otherwise try (slowly, and in vain) to decide the signs of large expressions
    if bias:
        sw, sb = sym.sigma_w2, sym.sigma_b2
        d = sp.sqrt((sb + sw * a11) * (sb + sw * a22)) + sb + sw * root
        spread = sb * sw * (sp.sqrt(a11) - sp.sqrt(a22)) ** 2
        g = sp.Max(0, spread + sw * d * _GAP_MINUS, evaluate=False)
        h = sp.Max(0, spread + d * (2 * sb + sw * _GAP_PLUS), evaluate=False)
    else:
        g, h = sp.Max(0, _GAP_MINUS, evaluate=False), sp.Max(0, _GAP_PLUS, evaluate=False)
    G, H = _ENDS
    r = G + H
    polar = tuple(sp.Piecewise((zero_variance, sp.Eq(r, 0)), (value, True)) for zero_variance, value in
                  ((sp.pi / 2, 2 * sp.atan(sp.sqrt(G / H))), (1, 2 * sp.sqrt(G * H) / r), (0, (H - G) / r)))
    return (g, h), polar, forms(root - e), forms(root + e)


class _AngleStep:
    """The numeric angle map: the gaps' direct forms, patched by their series within the cutoff of 0 or π, combined
    into (θ', sin θ', cos θ')."""

    def __init__(self, pair, bias=True):
        self.forms = ends, polar, minus, plus = _angle_map(pair, bias)
        self.gaps = tuple(_carry_trig(form) for form in (minus[0], plus[0]))  # direct; fused into a layer's step
        self.direct = lambdify(_ANGLE_ARGS, self.gaps)
        self.series = [[lambdify((q11, q22, sym.theta), form) for form in forms[1:]] for forms in (minus, plus)]
        self.ends = lambdify((q11, q22, _GAP_MINUS, _GAP_PLUS, sym.sigma_w2, sym.sigma_b2), ends)
        self.polar = lambdify(_ENDS, polar, cse=False)  # divisions, not a shared reciprocal: G + H may be subnormal

    def patch(self, a, b, theta, gaps):
        """The gaps (g₋, g₊) with their series in place of the direct forms where θ is near 0 or π."""
        gaps = list(gaps)
        cutoff = float(_SERIES_CUTOFF)
        for i, near in enumerate((theta < cutoff, theta > np.pi - cutoff)):
            if near.any():
                args = [np.broadcast_to(x, theta.shape)[near] for x in (a, b, theta)]
                for k, series in enumerate(self.series):
                    gaps[k] = np.array(gaps[k])
                    gaps[k][near] = series[i](*args)
        return gaps

    def __call__(self, a, b, polar, sw, sb, gaps=None):
        """(θ', sin θ', cos θ') from ``polar`` = (θ, sin θ, cos θ); ``gaps`` are the direct gaps when the caller has
        evaluated them already."""
        gaps = self.patch(a, b, polar[0], self.direct(a, b, *polar) if gaps is None else gaps)
        return self.polar(*self.ends(a, b, *gaps, sw, sb))

    def c(self, names, hoist=lambda e: e):
        """The same map as a C block that updates the variables th, s, c from the direct gaps gm, gp (branching to
        the series near 0 and π instead of patching), ``hoist`` applied to the expressions first; None when it has
        no C form. ``names`` maps the symbols to C variables."""
        ends, polar, minus, plus = self.forms
        series = [c_statements(names, {"gm_s": hoist(minus[i]), "gp_s": hoist(plus[i])}) for i in (1, 2)]
        ends = c_statements(names, {"G": hoist(ends[0]), "H": hoist(ends[1])}, prefix="e")
        polar = c_statements(names, dict(zip(("th_", "s_", "c_"), polar)), cse=False)
        if None in (*series, ends, polar):
            return None
        cutoff = float(_SERIES_CUTOFF)
        return f"""{{
    double gm_p = gm, gp_p = gp;
    if (th < {cutoff!r}) {{
        {series[0]}
        gm_p = gm_s; gp_p = gp_s;
    }} else if (th > M_PI - {cutoff!r}) {{
        {series[1]}
        gm_p = gm_s; gp_p = gp_s;
    }}
    {{
        const double gm = gm_p, gp = gp_p;
        {ends}
        {polar}
        th = th_; s = s_; c = c_;
    }}
}}"""


_SIN, _COS = sp.symbols("s_theta c_theta")  # sin θ and cos θ, carried through the layers with θ
_ANGLE_ARGS = (q11, q22, sym.theta, _SIN, _COS)
_NTK_IN, _FAN_IN = sp.symbols("Theta_in n_in")  # the NTK of the layer below; the fan-in (standard parameterization)
_STEP_ARGS = (q11, q12, q22, sym.theta, _SIN, _COS, _NTK_IN, sym.sigma_w2, sym.sigma_b2, _FAN_IN)


def _carry_trig(expr):
    """``expr`` with sin θ and cos θ as the carried symbols (multiple angles expanded first)."""
    return sp.expand_trig(expr).xreplace({sp.sin(sym.theta): _SIN, sp.cos(sym.theta): _COS})


class _Step(NamedTuple):
    """One layer of the numeric recursion. ``fused`` maps (q11, q12, q22, θ, sin θ, cos θ, Θ, σ_w², σ_b², n_in) to
    the new K12, the new Θ (when an NTK is requested) and, with ``angle`` set, the direct gaps of the angle map, in
    one lambdified function whose common subexpressions (√(q11 q22), the sums with θ, ...) are computed once."""

    fused: object
    diag: object
    angle: object
    outputs: tuple


@lru_cache(maxsize=128)
def _step(act, mode, bias):
    """The compiled layer of ``act`` for ``mode`` None (NNGP only), "ntk" or "standard" (see :func:`nngp_ntk`);
    without ``bias`` the expressions are specialized to σ_b² = 0 (SymPy drops the bias terms)."""
    lay = layer(act) if bias else Layer(*(e.xreplace({sym.sigma_b2: 0}) for e in layer(act)))
    ntk = {None: [], "ntk": [lay.nngp + lay.kdot * _NTK_IN],
           "standard": [lay.kdot * _NTK_IN + _FAN_IN * sp.diff(lay.nngp, sym.sigma_w2) + 1]}[mode]
    outputs = [lay.nngp] + ntk
    angle = None
    if any(e.has(_PLAIN_ANGLE) for e in outputs):
        angle = _AngleStep(gaussian_expectation(act, act), bias)
        outputs = [_carry_trig(e.xreplace({_PLAIN_ANGLE: sym.theta})) for e in outputs] + list(angle.gaps)
    return _Step(lambdify(_STEP_ARGS, outputs), lambdify((q11, sym.sigma_w2, sym.sigma_b2), lay.nngp_diag), angle,
                 tuple(outputs))


_NEAR = 0.99  # |ρ| beyond which an angle is not taken from the kernel's entries
#: Θ⁰ of each parameterization, in g12 = x·x'/d and the input dimension n_in
_INPUT_NTK = {"ntk": _input_kernel(g12), "standard": 1 + _FAN_IN * g12}


@lru_cache(maxsize=1)
def _input_angle_map():
    """The angle map of the input layer K⁰ = σ_b² + σ_w² x·x'/d (with bias; without, it keeps the angle): the
    identity's, in (g11, g22, θ_x)."""
    return _AngleStep(sp.sqrt(q11 * q22) * sp.cos(_PLAIN_ANGLE))
