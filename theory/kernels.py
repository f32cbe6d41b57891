r"""NNGP and NTK recursions of deep fully-connected networks, symbolic and numeric.

Convention: NTK parameterization (Jacot et al. 2018; Lee et al. 2018), inputs x, x' in R^d, L nonlinearities:

    K⁰(x, x') = σ_b² + σ_w² x·x'/d,                     Θ⁰ = K⁰,
    K^l = σ_b² + σ_w² ⟨φ(u) φ(v)⟩_{K^{l-1}},            K̇^l = σ_w² ⟨φ'(u) φ'(v)⟩_{K^{l-1}},
    Θ^l = K^l + K̇^l Θ^{l-1},                            l = 1..L,

where ⟨·⟩_K averages over (u, v) ~ N(0, [[K(x,x), K(x,x')], [K(x,x'), K(x',x')]]). The output's NNGP and NTK
are K^L and Θ^L.

The one-layer map is derived once (:func:`layer`); the depth-L kernel is its composition, symbolically
(:class:`KernelRecursion`) or numerically (:func:`nngp_ntk`, a loop over layers of the lambdified map).
"""

import ctypes
import os
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property, lru_cache
from typing import NamedTuple

import numpy as np
import sympy as sp
from threadpoolctl import ThreadpoolController

from . import _compact, _guard, _validate, latex
from .activations import activation as _activation
from .gaussian import Angle, gaussian_expectation
from .numeric import c_compiler, c_statements, compile_c, lambdify
from . import symbols as sym
from .symbols import g11, g12, g22, q11, q12, q22

__all__ = ["Layer", "layer", "KernelRecursion", "kernels", "Kernel", "nngp", "nngp_ntk"]


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


class KernelRecursion:
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
        return _compact.kernel(self._composed[1], "K", self.depth)

    @property
    def ntk(self):
        """Θ^L(x, x') in terms of g11, g12, g22; beyond depth 2 compact, like :attr:`nngp`."""
        return _compact.kernel(self._composed[3], "Theta", self.depth)

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

    def latex(self):
        """The equations as a LaTeX ``aligned`` block."""
        return latex.latex(self.equations)

    def _repr_latex_(self):
        return f"$\\displaystyle {self.latex()}$"

    def __repr__(self):
        return f"KernelRecursion({self.activation.name}, depth={self.depth})"


def kernels(activation, depth, sigma_w2=sym.sigma_w2, sigma_b2=sym.sigma_b2):
    """The symbolic NNGP/NTK recursion of a depth-``depth`` network; see :class:`KernelRecursion`."""
    return KernelRecursion(activation, depth, sigma_w2, sigma_b2)


class Kernel(NamedTuple):
    """The NNGP and NTK matrices of a pair of input sets (``ntk`` is None when not requested)."""

    nngp: np.ndarray
    ntk: np.ndarray | None


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


_C_NAMES = {q11: "q11", q12: "q12", q22: "q22", sym.theta: "th", _SIN: "s", _COS: "c", _NTK_IN: "ntk",
            sym.sigma_w2: "sw", sym.sigma_b2: "sb", _FAN_IN: "n_in", _GAP_MINUS: "gm", _GAP_PLUS: "gp",
            _ENDS[0]: "G", _ENDS[1]: "H", g12: "g"}
#: Θ⁰ of each parameterization, in g12 = x·x'/d and the input dimension n_in
_INPUT_NTK = {"ntk": _input_kernel(g12), "standard": 1 + _FAN_IN * g12}
_NEAR = 0.99  # |ρ| beyond which an angle is not taken from the kernel's entries
_POINTER, _LONG, _DOUBLE = ctypes.c_void_p, ctypes.c_long, ctypes.c_double
_C_ARGS = (_LONG,) * 4 + (_POINTER,) * 5 + (_POINTER, _LONG) * 2 + (_POINTER, _DOUBLE, _DOUBLE, ctypes.c_int) \
    + (_POINTER,) * 4 + (_LONG,)


def _costly(e):
    return e.has(sp.Function) or any(not x.exp.is_integer for x in e.atoms(sp.Pow))


def _diagonal_parts(exprs):
    """The maximal subexpressions of ``exprs`` that depend on one side's diagonal only (q11 or q22, besides σ_w²
    and σ_b²) and cost a function call (√(q11), √(σ_b² + σ_w² q11/2), ...), as functions of q11: computed once
    per row and column (and layer) rather than once per pair."""
    found = set()

    def visit(e, q):
        if (e.is_Pow or isinstance(e, sp.Function)) and q in e.free_symbols \
                and e.free_symbols <= {q, sym.sigma_w2, sym.sigma_b2} and _costly(e):
            found.add(e.xreplace({q22: q11}))
        else:
            for a in e.args:
                visit(a, q)

    for e in exprs:
        visit(e, q11)
        visit(e, q22)
    return tuple(sorted(found, key=sp.default_sort_key))


def _rebuild(e, mapping):
    """``e`` with the subexpressions in ``mapping`` replaced, rebuilt without evaluation (no sign decisions)."""
    if e in mapping:
        return mapping[e]
    if not e.args:
        return e
    return e.func(*(_rebuild(a, mapping) for a in e.args), evaluate=False)


@lru_cache(maxsize=128)
def _c_layers(act, mode, bias, cc):
    """A tile of the kernel by one compiled C loop (compiler ``cc``), generated from the same expressions as
    :func:`_step`: per pair, the input angle (Kahan's formula near ρ = ±1), then per layer the fused step, the
    angle map (branches to the series instead of masked patches) and the diagonal reset, in registers; the parts
    that depend on one input only come precomputed per row and column (:func:`_diagonal_parts`). Returns
    ``(function, parts)``, or None when an expression has no C form or no compiler works.

    ``layers(n, m, depth, d, x1, x2, g11, g22, G12, D1, ld1, D2, ld2, fan, sw, sb, diagonal, K, KM, T, TM, ldo)``:
    x1, x2 the tile's inputs (n×d, m×d), g11, g22 their squared norms over d, G12 the tile's Gram matrix over d;
    D1[(l*w + k)*ld1 + i] the diagonal K^l(x_i, x_i) (k = 0) and its parts (k = 1..w-1), D2 the same for the
    columns; fan the fan-ins; K, T the tile's place in the outputs (row stride ldo) and KM, TM, when not NULL, its
    mirror image's (the transposed tile, for symmetric kernels). A diagonal tile computes j >= i only.
    """
    step = _step(act, mode, bias)
    outputs = {"k_out": step.outputs[0]}
    if mode is not None:
        outputs["ntk_out"] = step.outputs[1]
    angle = step.angle
    if angle is not None:
        outputs["gm"], outputs["gp"] = step.outputs[-2:]
    exprs = list(outputs.values())
    if angle is not None:
        ends, _, minus, plus = angle.forms
        exprs += [*ends, *minus[1:], *plus[1:]]
    parts = _diagonal_parts(exprs)
    row = {e: sp.Symbol(f"r_{k}") for k, e in enumerate(parts)}
    col = {e.xreplace({q11: q22}): sp.Symbol(f"w_{k}") for k, e in enumerate(parts)}

    def hoist(e):
        return _rebuild(e, {**row, **col})

    names = {**_C_NAMES, **{v: v.name for v in (*row.values(), *col.values())}}
    fused = c_statements(names, {k: hoist(e) for k, e in outputs.items()})
    input_ntk = c_statements(names, {"ntk": _INPUT_NTK[mode]}) if mode is not None else ""
    if angle is not None:
        entry = _input_angle_map() if bias else None  # without bias, K⁰ has the inputs' angle
        blocks = (c_statements(_C_NAMES, {"gm": entry.gaps[0], "gp": entry.gaps[1]}) if bias else "",
                  entry.c(_C_NAMES) if bias else "", angle.c(names, hoist))
    if fused is None or angle is not None and None in blocks:
        return None
    width = 1 + len(parts)
    loads = "".join(f"const double r_{k} = D1[(l * {width} + {k + 1}) * ld1 + i];" for k in range(len(parts)))
    loads_col = "".join(f"const double w_{k} = D2[(l * {width} + {k + 1}) * ld2 + j];" for k in range(len(parts)))
    state = "a_k[j] = sb + sw * g;"
    if mode is not None:
        state += f"{{ const double n_in = fan[0]; {input_ntk} a_ntk[j] = ntk; }}"
    if angle is not None:
        state += f"""
            double th, s, c;
            {{
                const double norm = sqrt(g11[i] * g22[j]);
                const double rx = norm > 0 ? fmin(1.0, fmax(-1.0, g / norm)) : 0.0;
                const double k11 = sb + sw * g11[i], k22 = sb + sw * g22[j], k12 = sb + sw * g;
                const double r0 = sb > 0 ? fmin(1.0, fmax(-1.0, k12 / sqrt(k11 * k22))) : 1.0;
                if (fabs(r0) <= {_NEAR!r}) {{  /* the angle of K⁰ is exact from its entries */
                    th = acos(r0); s = sqrt((1 - r0) * (1 + r0)); c = r0;
                }} else {{  /* from the inputs' angle, through the input layer's angle map when there is a bias */
                    if (fabs(rx) > {_NEAR!r}) {{
                        double minus = 0.0, plus = 0.0;
                        const double u = 1 / sqrt(g11[i] * d), v = 1 / sqrt(g22[j] * d);
                        for (long k = 0; k < d; k++) {{
                            const double a = x1[i * d + k] * u, b = x2[j * d + k] * v;
                            minus += (a - b) * (a - b); plus += (a + b) * (a + b);
                        }}
                        th = 2 * atan2(sqrt(minus), sqrt(plus)); s = sin(th); c = cos(th);
                    }} else {{
                        th = acos(rx); s = sqrt((1 - rx) * (1 + rx)); c = rx;
                    }}
                    if (sb > 0) {{
                        const double q11 = g11[i], q22 = g22[j];
                        {blocks[0]}
                        {blocks[1]}
                    }}
                }}
            }}
            a_th[j] = th; a_s[j] = s; a_c[j] = c;"""
    carried = "double th = a_th[j], s = a_s[j], c = a_c[j];" if angle is not None else ""
    source = f"""#define _DEFAULT_SOURCE
#include <math.h>
#include <stdlib.h>

void layers(long n, long m, long depth, long d, const double *x1, const double *x2, const double *g11,
            const double *g22, const double *G12, const double *D1, long ld1, const double *D2, long ld2,
            const double *fan, double sw, double sb, int diagonal, double *K, double *KM, double *T, double *TM,
            long ldo)
{{
    double *a_k = calloc(5 * m, sizeof(double));
    double *a_ntk = a_k + m, *a_th = a_k + 2 * m, *a_s = a_k + 3 * m, *a_c = a_k + 4 * m;
    for (long i = 0; i < n; i++) {{
        const long j0 = diagonal ? i : 0;
        for (long j = j0; j < m; j++) {{
            const double g = G12[i * m + j];
            {state}
        }}
        for (long l = 0; l < depth; l++) {{
            const double q11 = D1[l * {width} * ld1 + i], n_in = fan[l + 1];
            {loads}
            for (long j = j0; j < m; j++) {{
                const double q22 = D2[l * {width} * ld2 + j], q12 = a_k[j], ntk = a_ntk[j];
                {loads_col}
                {carried}
                {fused}
                {blocks[2] if angle is not None else ""}
                a_k[j] = diagonal && i == j ? D1[(l + 1) * {width} * ld1 + i] : k_out;
                {"a_ntk[j] = ntk_out;" if mode is not None else ""}
                {"a_th[j] = th; a_s[j] = s; a_c[j] = c;" if angle is not None else ""}
            }}
        }}
        for (long j = j0; j < m; j++) {{
            K[i * ldo + j] = a_k[j];
            if (KM) KM[j * ldo + i] = a_k[j];
            if (T) T[i * ldo + j] = a_ntk[j];
            if (TM) TM[j * ldo + i] = a_ntk[j];
        }}
    }}
    free(a_k);
}}
"""
    function = compile_c(source, "layers", _C_ARGS)
    return None if function is None else (function, lambdify((q11, sym.sigma_w2, sym.sigma_b2), parts))


@lru_cache(maxsize=1)
def _input_angle_map():
    """The angle map of the input layer K⁰ = σ_b² + σ_w² x·x'/d (with bias; without, it keeps the angle): the
    identity's, in (g11, g22, θ_x)."""
    return _AngleStep(sp.sqrt(q11 * q22) * sp.cos(_PLAIN_ANGLE))


def _input_angles(X1, X2, g11, g12, g22):
    """(θ, sin θ, cos θ) of the angle between the inputs: from the Gram matrix, and from Kahan's
    θ = 2·atan2(|x̂ - x̂'|, |x̂ + x̂'|) for the near-colinear pairs, where the Gram matrix has lost the digits.
    θ = π/2 when an input is zero."""
    norm = np.sqrt(np.outer(g11, g22))
    cos = np.clip(np.divide(g12, norm, out=np.zeros_like(g12), where=norm > 0), -1.0, 1.0)
    theta, sin = np.arccos(cos), np.sqrt((1 - cos) * (1 + cos))
    i, j = np.nonzero(np.abs(cos) > _NEAR)
    u = X1[i] / np.linalg.norm(X1[i], axis=1, keepdims=True)
    v = X2[j] / np.linalg.norm(X2[j], axis=1, keepdims=True)
    theta[i, j] = near = 2 * np.arctan2(np.linalg.norm(u - v, axis=1), np.linalg.norm(u + v, axis=1))
    sin[i, j], cos[i, j] = np.sin(near), np.cos(near)
    return theta, sin, cos


def _fan_ins(parameterization, widths, depth, d):
    """None for the NTK parameterization; the fan-ins (d, n_0, ..., n_{L-1}) of layers 0..L for the standard one."""
    if parameterization not in ("ntk", "standard"):
        raise ValueError(f"parameterization: expected 'ntk' or 'standard', got {parameterization!r}")
    if parameterization == "ntk":
        if widths is not None:
            raise ValueError("widths: only the standard parameterization's NTK depends on the widths; "
                             "pass parameterization='standard' or no widths")
        return None
    if widths is None:
        raise ValueError("widths: the standard parameterization's NTK grows with the widths; give the hidden "
                         f"widths (an int, or {depth} ints)")
    if isinstance(widths, (str, bytes)) or not np.iterable(widths):
        widths = (widths,) * depth
    widths = tuple(_validate.count(w, f"widths[{i}]", 1) for i, w in enumerate(widths))
    if len(widths) != depth:
        raise ValueError(f"widths: expected {depth} hidden widths (one per layer), got {len(widths)}")
    return (d,) + widths


_BLAS = ThreadpoolController()

#: Pairs per tile: a tile's ~20 temporaries of 64K float64 stay within a core's cache hierarchy.
_TILE = 1 << 16


def _tiles(n, m, rows, cols, symmetric):
    """The (row, column) slices of ``rows`` × ``cols`` tiles of an n × m kernel; for a symmetric kernel (square
    tiles) only those on and above the diagonal."""
    return [(slice(r, min(r + rows, n)), slice(c, min(c + cols, m)))
            for r in range(0, n, rows) for c in range(r if symmetric else 0, m, cols)]


class _Problem(NamedTuple):
    """Everything a tile needs: inputs, their squared norms over d, the per-layer diagonals, parameters."""

    X1: np.ndarray
    X2: np.ndarray
    g11: np.ndarray
    g22: np.ndarray
    diag1: list
    diag2: list
    step: _Step
    mode: object
    fan_in: tuple
    sw: float
    sb: float
    compiled: object  # the C loop over layers (see _c_layers), or None


def _gram(p, rows, cols, symmetric):
    """The tile's inputs, their Gram matrix over d, and whether the tile straddles a symmetric kernel's diagonal."""
    x1, x2 = p.X1[rows], p.X2[cols]
    g12 = x1 @ x2.T / p.X1.shape[1]
    diagonal = symmetric and rows == cols
    if diagonal:
        np.fill_diagonal(g12, p.g11[rows])  # x·x from the norms, so the diagonal is exactly at ρ = 1
    return x1, x2, g12, diagonal


def _tile(p, rows, cols, symmetric):
    """K^L and Θ^L on one tile: all layers while the tile's arrays are hot in cache."""
    x1, x2, g12, diagonal = _gram(p, rows, cols, symmetric)
    g11, g22 = p.g11[rows], p.g22[cols]
    k12 = p.sb + p.sw * g12
    polar = (0.0, 0.0, 0.0)  # (θ, sin θ, cos θ) when the angle is carried
    if p.step.angle is not None:
        polar = _input_angles(x1, x2, g11, g12, g22)
    ntk = 0.0
    if p.mode is not None:
        ntk = lambdify((sym.g12, sym.sigma_w2, sym.sigma_b2, _FAN_IN), _INPUT_NTK[p.mode])(
            g12, p.sw, p.sb, p.fan_in[0] if p.fan_in else 0.0)
    if p.step.angle is not None and p.sb:
        polar = _input_angle_map()(g11[:, None], g22[None, :], polar, p.sw, p.sb)
    for l in range(len(p.diag1) - 1):
        a, b = p.diag1[l][rows, None], p.diag2[l][None, cols]
        fan = p.fan_in[l + 1] if p.fan_in else 0.0
        out = p.step.fused(a, k12, b, *polar, ntk, p.sw, p.sb, fan)
        k12 = out[0]
        if diagonal:  # K(x, x) from the diagonal map: ρ = 1 is unstable in the chaotic phase,
            k12 = np.array(k12)        # where a rounding of K12 away from K11 would grow at every layer
            np.fill_diagonal(k12, p.diag1[l + 1][rows])
        if p.mode is not None:
            ntk = out[1]
        if p.step.angle is not None:
            polar = p.step.angle(a, b, polar, p.sw, p.sb, gaps=out[-2:])
    return k12, (None if p.mode is None else np.broadcast_to(ntk, k12.shape))


def _compiled_tile(p, rows, cols, symmetric, K, T):
    """A tile of K^L and Θ^L (and its mirror image for a symmetric kernel) by the C loop of :func:`_c_layers`,
    written into the outputs K, T."""
    function, D1, D2, fan = p.compiled
    x1, x2, g12, diagonal = _gram(p, rows, cols, symmetric)
    n, m = g12.shape

    def at(a, r, c):
        return None if a is None else a[r:, c:].ctypes.data

    mirror = symmetric  # a diagonal tile computes its upper triangle and mirrors it into place
    function(n, m, len(p.diag1) - 1, x1.shape[1], x1.ctypes.data, x2.ctypes.data, p.g11[rows].ctypes.data,
             p.g22[cols].ctypes.data, g12.ctypes.data, D1[:, rows].ctypes.data, D1.shape[1],
             D2[:, cols].ctypes.data, D2.shape[1], fan.ctypes.data, p.sw, p.sb, int(diagonal),
             at(K, rows.start, cols.start), at(K, cols.start, rows.start) if mirror else None,
             at(T, rows.start, cols.start), at(T, cols.start, rows.start) if mirror and T is not None else None,
             K.shape[1])


def _write(out, value, rows, cols, symmetric):
    """Store a tile of the kernel ``out``; a tile of a symmetric kernel also fills its mirror image."""
    if not symmetric:
        out[rows, cols] = value
    elif rows == cols:  # the tile straddles the diagonal: keep its upper triangle, mirror it
        out[rows, cols] = np.triu(value) + np.triu(value, 1).T
    else:
        out[rows, cols] = value
        out[cols, rows] = value.T


#: Nonzero variances outside this range would under- or overflow the products of kernel entries in the angle map
_VARIANCES = (1e-100, 1e100)


def _variance(value, name):
    value = _validate.variance(value, name)
    if value and not _VARIANCES[0] <= value <= _VARIANCES[1]:
        raise ValueError(f"{name}: expected 0 or a number in [{_VARIANCES[0]:g}, {_VARIANCES[1]:g}] (products of "
                         f"kernel entries must stay within float64), got {value}")
    return value


@_guard.guarded
def _recursion(X1, X2, activation, depth, sigma_w2, sigma_b2, with_ntk, parameterization="ntk", widths=None):
    act = _activation(activation)
    X1 = _validate.inputs(X1, "X1")
    X2 = X1 if X2 is None else _validate.inputs(X2, "X2", d=X1.shape[1])
    if X2 is not X1 and np.array_equal(X1, X2):
        X2 = X1
    depth = _validate.count(depth, "depth")
    fan_in = _fan_ins(parameterization, widths, depth, X1.shape[1])
    sw, sb = (_variance(v, name) for v, name in ((sigma_w2, "sigma_w2"), (sigma_b2, "sigma_b2")))
    if with_ntk and act.derivative.has(sp.DiracDelta):
        raise ValueError(f"activation {act.name}: its derivative is a Dirac delta, so the NTK is infinite for "
                         "colinear inputs; use theory.nngp for the NNGP alone")
    if act.parameters:
        raise ValueError(f"activation {act.name}: give numbers for its parameters to evaluate kernels")
    mode = None if not with_ntk else parameterization
    step = _step(act, mode, sb != 0)
    symmetric = X2 is X1
    d = X1.shape[1]
    g11 = np.einsum("ij,ij->i", X1, X1) / d
    g22 = g11 if symmetric else np.einsum("ij,ij->i", X2, X2) / d
    diag1, diag2 = [sb + sw * g11], [sb + sw * g22]
    for _ in range(depth):
        diag1.append(np.array(step.diag(diag1[-1], sw, sb)))
        diag2.append(diag1[-1] if symmetric else np.array(step.diag(diag2[-1], sw, sb)))
    cc = c_compiler()
    compiled = None if cc is None else _c_layers(act, mode, sb != 0, cc)
    if compiled is not None:  # each layer's diagonal and its parts, stacked: row l*w + k
        function, parts = compiled
        D1, D2 = (np.ascontiguousarray([row for q in diag for row in (q, *parts(q, sw, sb))])
                  for diag in (diag1, diag2))
        fan = np.asarray(fan_in if fan_in else (0.0,) * (depth + 1), dtype=np.float64)
        compiled = function, D1, D2, fan
        X1 = np.ascontiguousarray(X1)
        X2 = X1 if symmetric else np.ascontiguousarray(X2)
    problem = _Problem(X1, X2, g11, g22, diag1, diag2, step, mode, fan_in, sw, sb, compiled)
    K = np.empty((X1.shape[0], X2.shape[0]))
    ntk = np.empty_like(K) if with_ntk else None

    def work(tile):
        rows, cols = tile
        if compiled is not None:
            return _compiled_tile(problem, rows, cols, symmetric, K, ntk)
        with np.errstate(divide="ignore", invalid="ignore"):  # per thread: NumPy's error state is thread-local
            k, t = _tile(problem, rows, cols, symmetric)
        _write(K, k, rows, cols, symmetric)
        if with_ntk:
            _write(ntk, t, rows, cols, symmetric)

    side = int(np.sqrt(_TILE))
    cols = side if symmetric else max(1, min(K.shape[1], side))
    tiles = _tiles(*K.shape, side if symmetric else _TILE // cols, cols, symmetric)
    if len(tiles) == 1:
        work(tiles[0])
    else:  # NumPy releases the GIL inside its loops, so threads share the cores; BLAS threads would only spin
        with _BLAS.limit(limits=1, user_api="blas"), ThreadPoolExecutor(os.cpu_count()) as pool:
            list(pool.map(work, tiles))
    return Kernel(K, ntk)


def nngp(X1, X2=None, activation="relu", depth=1, sigma_w2=1.0, sigma_b2=0.0, parameterization="ntk", widths=None):
    """The N×M NNGP matrix K^L(X1, X2) (float64), the same in both parameterizations; see :func:`nngp_ntk`."""
    return _recursion(X1, X2, activation, depth, sigma_w2, sigma_b2, False, parameterization, widths).nngp


def nngp_ntk(X1, X2=None, activation="relu", depth=1, sigma_w2=1.0, sigma_b2=0.0, parameterization="ntk",
             widths=None):
    """The NNGP and NTK matrices K^L(X1, X2), Θ^L(X1, X2) of a depth-``depth`` network, as float64 arrays.

    Parameters
    ----------
    X1, X2 : arrays of shape (N, d) and (M, d); X2 defaults to X1.
    activation : a registered name, a SymPy expression in ``theory.symbols.z`` or an Activation.
    depth : the number L >= 0 of nonlinearities.
    sigma_w2, sigma_b2 : weight and bias variances (>= 0).
    parameterization : ``"ntk"`` (the module's convention) or ``"standard"``: z^l = W^l a^{l-1} + b^l with
        W^l ~ N(0, σ_w²/n_{l-1}), b^l ~ N(0, σ_b²) trained directly (Sohl-Dickstein et al. 2020; neural-tangents'
        ``parameterization='standard'``). Same NNGP; the NTK (Σ_θ ∂f/∂θ ∂f/∂θ') becomes
        Θ⁰ = 1 + x·x', Θ^l = n_{l-1} <φ(u)φ(v)>_{K^{l-1}} + 1 + K̇^l Θ^{l-1}, i.e. each layer contributes
        n_{l-1} ∂K^l/∂σ_w² + ∂K^l/∂σ_b² where the NTK parameterization has σ_w² ∂K^l/∂σ_w² + σ_b² ∂K^l/∂σ_b².
        It grows linearly with the widths; gradient descent is stable at a learning rate η/n (n the width scale),
        whose function-space kernel Θ/n tends to Σ_{l>=1} (n_{l-1}/n) <φφ>_{K^{l-1}} Π_{k>l} K̇^k: finite, with no
        input-layer or bias terms (those layers stop learning).
    widths : the hidden widths n_0..n_{L-1} (an int for all) -- required for, and only for, ``"standard"``.

    The numbers come from the derived one-layer map (:func:`layer`), looped over layers tile by tile (64K pairs,
    all layers while in cache, a thread per core; for X2 = None only the tiles on and above the diagonal): the
    cost is linear in the depth and in the pairs, the memory the two outputs plus a few tiles. The map is printed
    as C and compiled once per machine (cached under ``~/.cache/theory``) when a C compiler is found (``cc``, or
    ``THEORY_CC``; ``THEORY_CC=none`` disables it), and lambdified into NumPy otherwise or when an expression has
    no C form (the quadrature of activations such as tanh); both printings agree to rounding.
    Zero-norm, identical and antipodal inputs give finite values; for X2 = None the diagonal comes from the
    diagonal map, exactly at ρ = 1. For N larger than memory see :func:`theory.distributed.blocked_nngp_ntk`.
    """
    return _recursion(X1, X2, activation, depth, sigma_w2, sigma_b2, True, parameterization, widths)
