r"""Gaussian expectations :math:`\langle \phi(u)\psi(v)\rangle_Q = E_{(u,v)\sim N(0,Q)}[\phi(u)\psi(v)]`.

One entry point, :func:`gaussian_expectation`, returns a SymPy expression in the covariance entries
``q11, q12, q22``. It derives closed forms rather than looking them up:

1. φ and ψ are split by linearity into atoms ``c · z^j · exp(s z - a z²) · B(α z)`` with
   ``B ∈ {1, Heaviside, DiracDelta, erf}`` (ReLU, |z|, sign, leaky ReLU, GELU, sin, cos, polynomials, ... all
   split this way);
2. a Gaussian weight ``exp(-a z²)`` is absorbed into the covariance, ``Q -> (Q^{-1} + 2A)^{-1}``;
3. a Dirac delta conditions on its variable being 0;
4. a linear exponential ``exp(s z)`` shifts the mean (completing the square);
5. powers of ``u`` and ``v`` are removed by Gaussian integration by parts (Stein's lemma),
   ``E[u F] = q11 E[∂_u F] + q12 E[∂_v F]``;
6. what is left is ``E[B1(u) B2(v)]``, which Sheppard's formula ``E[sign(u) sign(v)] = 1 - 2θ/π`` gives, with
   ``erf(αz) = E_ξ[sign(z + ξ)]``, ``ξ ~ N(0, 1/(2α²))``.

Anything else (tanh, sigmoid, softplus, swish, user expressions) becomes an unevaluated
:class:`GaussianExpectation` that lambdifies to Mehler's series in Hermite coefficients, or a 2-D trapezoidal rule
where the series would be too long. The angle between the two
inputs, :class:`Angle`, prints to NumPy in a form that is finite for zero variances and exact for ρ = ±1.
"""

from dataclasses import dataclass, replace
from functools import cache, lru_cache
from typing import NamedTuple

import numpy as np
import scipy.special as sc
import sympy as sp

import sys

from ._budget import OverBudget, active, budget
from .activations import Activation, _vanishing_deltas_removed, activation
from .numeric import lambdify
from .symbols import q11, q12, q22, rho, z

__all__ = [
    "Angle",
    "GaussianExpectation",
    "Numeric",
    "gaussian_expectation",
    "hermite_coefficients",
    "dual_activation",
    "QUADRATURE_STEP",
]

#: Step of the trapezoidal quadrature fallback, in units of 1/√(largest variance) (see ``GaussianExpectation``).
QUADRATURE_STEP = 0.2
_MAX_NODES = 2001


class Angle(sp.Function):
    r"""θ(q11, q12, q22) = arccos(q12 / √(q11 q22)), the angle between two inputs in feature space.

    Numerically it is ``π/2 - arctan2(q12, √max(q11 q22 - q12², 0))``: no division, no arccos of a number
    slightly above 1, exactly 0 for identical inputs, and π/2 (ρ = 0) when a variance is 0, which matches the
    conventions H(0) = 1/2 and sign(0) = 0.
    """

    nargs = 3
    is_real = True

    @classmethod
    def eval(cls, a, c, b):
        # Structural tests only: the arguments of deep compositions are large DAGs that must not be traversed.
        if c == 0:
            return sp.pi / 2
        if a == b == c:
            return sp.S.Zero
        if a == b == -c:
            return sp.pi

    def fdiff(self, argindex=1):
        a, c, b = self.args
        root = sp.sqrt(a * b - c**2)
        if argindex == 2:
            return -1 / root
        if argindex == 1:
            return c / (2 * a * root)
        if argindex == 3:
            return c / (2 * b * root)
        raise sp.ArgumentIndexError(self, argindex)

    def _eval_rewrite_as_acos(self, a, c, b, **kwargs):
        return sp.acos(c / sp.sqrt(a * b))

    def _eval_evalf(self, prec):
        return self.rewrite(sp.acos)._eval_evalf(prec)

    def _latex(self, printer):
        a, c, b = (printer._print(x) for x in self.args)
        return rf"\theta\left({a}, {c}, {b}\right)"

    def _pretty(self, printer):
        return printer._print_Function(self, func_name="θ")

    def _numpy(self, printer, a, c, b):
        np_ = printer._module_format("numpy")
        a, c, b = (printer._print(x) for x in (a, c, b))
        return f"({np_}.pi/2 - {np_}.arctan2({c}, {np_}.sqrt({np_}.maximum(({a})*({b}) - ({c})**2, 0))))"

    def _c(self, printer, a, c, b):  # arcsin where it is well conditioned (|ρ| < 0.9): half the cost of atan2
        a, c, b = (printer._print(x) for x in (a, c, b))
        ab = f"(({a})*({b}))"
        return (f"(fabs({c}) < 0.9*sqrt({ab}) ? M_PI_2 - asin(({c})/sqrt({ab})) "
                f": M_PI_2 - atan2({c}, sqrt(fmax({ab} - ({c})*({c}), 0))))")


class Numeric(sp.Function):
    r"""φ(z) itself, marked for the numeric path: its Gaussian expectations are never reduced to a closed form
    (the reducer sees an unknown function) but evaluated by quadrature (:class:`GaussianExpectation`). It is what a
    symbolic derivation falls back to when it exceeds its time budget (see :mod:`theory._budget`). It prints as φ;
    its derivative is ``Numeric(φ')``; NumPy evaluates φ.
    """

    nargs = 1

    @classmethod
    def eval(cls, expr):
        if isinstance(expr, Numeric) or not expr.has(z):
            return expr

    def _eval_derivative(self, s):
        return Numeric(_vanishing_deltas_removed(sp.diff(self.args[0], s)))

    def _numpy(self, printer, expr):
        return printer._print(expr)

    def _latex(self, printer):
        return printer._print(self.args[0])

    def _sympystr(self, printer):
        return printer._print(self.args[0])

    def _pretty(self, printer):
        return printer._print(self.args[0])


# --------------------------------------------------------------------------------------------------------------
# Atoms: c · z^power · exp(shift·z − weight·z²) · base(scale·z)
# --------------------------------------------------------------------------------------------------------------


class _NoClosedForm(Exception):
    pass


@dataclass(frozen=True)
class _Factor:
    power: int = 0
    shift: sp.Expr = sp.S.Zero
    weight: sp.Expr = sp.S.Zero
    base: str | None = None  # None, "H", "delta", "erf"
    scale: sp.Expr = sp.S.One  # α of erf(α z)


def _heaviside_normalized(arg, *h0):
    """H(c z) for a constant c: H(z) if c > 0, 1 - H(z) if c < 0 (exact with H(0) = 1/2)."""
    c = sp.simplify(arg / z)
    if c.has(z) or c.is_positive is None or (h0 and h0[0] != sp.S.Half):
        raise _NoClosedForm
    return sp.Heaviside(z) if c.is_positive else 1 - sp.Heaviside(z)


def _factor(expr):
    """Split one product term into (coefficient, _Factor)."""
    coef, rest = expr.as_independent(z, as_Add=False)
    power, exponent, base, scale = 0, sp.S.Zero, None, sp.S.One
    for f in sp.Mul.make_args(rest):
        if f == 1:
            continue
        if f == z:
            power += 1
        elif f.is_Pow and f.base == z and f.exp.is_integer and f.exp.is_positive:
            power += int(f.exp)
        elif isinstance(f, sp.exp):
            exponent += f.args[0]
        elif base is None and isinstance(f, sp.Heaviside) and f.args[0] == z:
            base = "H"
        elif base is None and f.is_Pow and isinstance(f.base, sp.Heaviside) and f.base.args[0] == z \
                and f.exp.is_integer and f.exp.is_positive:
            base = "H"  # H(z)^k = H(z) almost everywhere
        elif base is None and isinstance(f, sp.DiracDelta) and len(f.args) == 1:
            c = f.args[0] / z
            if c.has(z):
                raise _NoClosedForm
            base, coef = "delta", coef / sp.Abs(c)
        elif base is None and isinstance(f, sp.erf) and not (f.args[0] / z).has(z):
            base, scale = "erf", f.args[0] / z
        else:
            raise _NoClosedForm
    poly = sp.Poly(exponent, z) if exponent.has(z) else None
    if poly is not None and poly.degree() > 2:
        raise _NoClosedForm
    a2, a1, a0 = (poly.all_coeffs()[::-1] + [0, 0, 0])[:3][::-1] if poly else (0, 0, exponent)
    return coef * sp.exp(a0), _Factor(power, sp.sympify(a1), sp.sympify(-a2), base, scale)


def _atoms(expr):
    """Split an expression in z into [(coefficient, _Factor)] by linearity, or raise _NoClosedForm."""
    expr = expr.replace(lambda e: isinstance(e, (sp.Max, sp.Min, sp.Abs, sp.sign)),
                        lambda e: e.rewrite(sp.Heaviside))
    expr = expr.rewrite(sp.sin, sp.exp).rewrite(sp.cos, sp.exp)
    expr = expr.replace(sp.Heaviside, _heaviside_normalized)
    return [_factor(term) for term in sp.Add.make_args(sp.expand(expr))]


# --------------------------------------------------------------------------------------------------------------
# The reduction
# --------------------------------------------------------------------------------------------------------------


def _derivative(f):
    """[(coefficient, _Factor)] for d/dz of the base of ``f`` (power, shift and weight are zero here)."""
    if f.base is None:
        return []
    if f.base == "H":
        return [(sp.S.One, replace(f, base="delta"))]
    # d/dz erf(αz) = 2α/√π exp(-α² z²)
    return [(2 * f.scale / sp.sqrt(sp.pi), replace(f, base=None, scale=sp.S.One, weight=f.scale**2))]


def _sign_form(f):
    """A base B(z) as c0 + c1·E_ξ[sign(z + ξ)] with Var ξ = noise: (c0, c1, noise)."""
    if f.base is None:
        return sp.S.One, sp.S.Zero, sp.S.Zero
    if f.base == "H":
        return sp.S.Half, sp.S.Half, sp.S.Zero
    return sp.S.Zero, sp.sign(f.scale), 1 / (2 * f.scale**2)


@lru_cache(maxsize=4096)
def _expect(fu, fv, a, c, b):
    """E[fu(u) fv(v)] for (u, v) ~ N(0, [[a, c], [c, b]])."""
    # 1. Gaussian weights: E_Q[exp(-α u² - β v²) F] = det(I + 2AQ)^(-1/2) E_Q̃[F], Q̃ = (Q^{-1} + 2A)^{-1}.
    if fu.weight != 0 or fv.weight != 0:
        al, be = fu.weight, fv.weight
        det_q = a * b - c**2
        d = sp.cancel((1 + 2 * al * a) * (1 + 2 * be * b) - 4 * al * be * c**2)
        qt = (sp.cancel((a + 2 * be * det_q) / d), sp.cancel(c / d), sp.cancel((b + 2 * al * det_q) / d))
        num, den = sp.fraction(d)  # both positive: det(I + 2AQ) > 0 for PSD Q
        return _expect(replace(fu, weight=sp.S.Zero), replace(fv, weight=sp.S.Zero), *qt) * sp.sqrt(den) / sp.sqrt(
            num)
    # 2. Dirac deltas: u^j δ(u) = 0 for j > 0; otherwise condition on u = 0.
    if fu.base == "delta" or fv.base == "delta":
        if (fu.base == "delta" and fu.power) or (fv.base == "delta" and fv.power):
            return sp.S.Zero
        theta = Angle(a, c, b)
        if fu.base == fv.base == "delta":
            return 1 / (2 * sp.pi * sp.sqrt(a * b) * sp.sin(theta))
        if fv.base == "delta":
            return _expect(fv, fu, b, c, a)
        # v | u = 0 ~ N(0, s²), s = √b sin θ: compute with a positive placeholder for s, then substitute.
        s = sp.Dummy("s", positive=True)
        rest = _expect(_Factor(), fv, sp.S.One, sp.S.Zero, s**2)
        return rest.xreplace({s: sp.sqrt(b) * sp.sin(theta)}) / sp.sqrt(2 * sp.pi * a)
    # 3. Linear exponentials: E[exp(su + tv) P(u, v)] = exp(½(s,t)Q(s,t)ᵀ) E[P(u + m_u, v + m_v)].
    if fu.shift != 0 or fv.shift != 0:
        if fu.base is not None or fv.base is not None:
            raise _NoClosedForm
        s_, t_ = fu.shift, fv.shift
        mu, mv = s_ * a + t_ * c, s_ * c + t_ * b
        total = sp.S.Zero
        for i in range(fu.power + 1):
            for j in range(fv.power + 1):
                moment = _expect(_Factor(power=i), _Factor(power=j), a, c, b)
                total += sp.binomial(fu.power, i) * sp.binomial(fv.power, j) * mu ** (fu.power - i) * mv ** (
                    fv.power - j) * moment
        return sp.exp((s_**2 * a + 2 * s_ * t_ * c + t_**2 * b) / 2) * total
    # 4./5. Stein's lemma on the first variable that carries a power of itself.
    if fu.power or fv.power:
        if not fu.power:
            return _expect(fv, fu, b, c, a)
        g = replace(fu, power=fu.power - 1)
        total = a * (fu.power - 1) * _expect(replace(fu, power=fu.power - 2), fv, a, c, b) if fu.power > 1 else 0
        total += a * sum(k * _expect(dg, fv, a, c, b) for k, dg in _derivative(g))
        if fv.power:
            total += c * fv.power * _expect(g, replace(fv, power=fv.power - 1), a, c, b)
        # In front of δ(v), which brings 1/√b, write c = √(ab) cos θ so that nothing divides by a norm.
        c_delta = sp.sqrt(a) * sp.sqrt(b) * sp.cos(Angle(a, c, b))
        total += sum(k * (c_delta if dv.base == "delta" else c) * _expect(g, dv, a, c, b) for k, dv in _derivative(fv))
        return sp.expand(total)
    # 6. Bases only: Sheppard's formula for E[sign(u') sign(v')].
    cu0, cu1, nu = _sign_form(fu)
    cv0, cv1, nv = _sign_form(fv)
    return cu0 * cv0 + cu1 * cv1 * (1 - 2 * Angle(a + nu, c, b + nv) / sp.pi)


# --------------------------------------------------------------------------------------------------------------
# The quadrature: Mehler's formula, and the trapezoidal rule where its series is too long
# --------------------------------------------------------------------------------------------------------------

#: Gauss-Hermite rules (numbers of nodes) tried in turn for the Hermite coefficients of one variance.
_HERMITE_RULES = (64, 128, 256, 512, 1024, 2048)
#: A rule of n nodes resolves the coefficients of φ(√q x) when those of order >= 3n/4 hold at most this part of
#: their norm (see ``_coefficients``).
_RESOLVED = 1e-8
#: The truncation of Mehler's series leaves at most this part of √(E[φ(u)²] E[ψ(v)²]) (see ``_mehler``).
_TRUNCATION = 1e-16
#: Mehler's series is summed over blocks of at most _BLOCK_SIDE² pairs of an outer (rows × columns) structure,
#: or _BLOCK pairs otherwise: every block computes the coefficients of its own variances.
_BLOCK_SIDE = 256
_BLOCK = 4096
#: Candidate |ρ| beyond which the last terms of the series are summed over the pairs that need them only.
_SPLITS = (0.5, 0.8, 0.9, 0.95, 0.99, 0.999)


def _normalized_hermite(x, n):
    """h_k(x) = He_k(x)/√(k!) for k < n, shape (len(x), n), by h_{k+1} = (x h_k - √k h_{k-1})/√(k+1)."""
    h = np.empty((n, x.size))
    h[0], h[1] = 1.0, x
    for k in range(1, n - 1):
        h[k + 1] = (x * h[k] - np.sqrt(k) * h[k - 1]) / np.sqrt(k + 1)
    return h.T


@cache
def _gauss_hermite(n):
    r"""The n-node Gauss-Hermite rule for x ~ N(0, 1) as (nodes x_i, matrix w_i h_k(x_i) for k < n).

    The nodes are SciPy's roots of He_n after one Newton step on h_n (h_n' = √n h_{n-1}), the weights the
    Christoffel numbers w_i = 1/Σ_{k<n} h_k(x_i)²: with SciPy's own nodes and weights (asymptotic formulas for
    n > 150) the coefficients of cos(√q x) are off by up to 4e-14, with these by 2e-15. Nodes of weight below
    1e-40 are dropped: they change no coefficient by more than 1e-20 max|φ|, since the √w_i h_k(x_i) are entries
    of an orthogonal matrix. What is left is |x| <= 13.3 (60 nodes of 64, 382 of 2048).
    """
    x, w = sc.roots_hermitenorm(n)
    x = x[w > 1e-40 * np.sqrt(2 * np.pi)]
    h = _normalized_hermite(x, n + 1)
    x = x - h[:, n] / (np.sqrt(n) * h[:, n - 1])
    h = _normalized_hermite(x, n)
    w = 1 / np.einsum("ik,ik->i", h, h)
    return x, np.ascontiguousarray(w[:, None] * h)


class _Coefficients(NamedTuple):
    """Hermite coefficients of φ(√q x) for each of a set of variances q, all from one n-node rule."""

    values: np.ndarray  # c_k(q), shape (len(q), n)
    tails: np.ndarray  # ‖(c_j)_{j>=k}‖ / ‖c‖ for k = 0..n, shape (len(q), n + 1); 0 for k > 0 if unresolved
    resolved: np.ndarray  # (len(q),) bool
    n: int


def _coefficients(f, q, n_min=_HERMITE_RULES[0]):
    r"""c_k(q) = E[f(√q x) h_k(x)], x ~ N(0, 1), by the first Gauss-Hermite rule of at least ``n_min`` nodes that
    resolves all of them.

    An n-node rule is exact for polynomials of degree < 2n, so its ĉ_k differ from c_k only by aliases of the
    orders j >= 2n - k; and Σ_{k<n} ĉ_k² is the rule's E[f(√q x)²] ≈ Σ_k c_k² (the matrix √w_i h_k(x_i) is
    orthogonal), so the computed tails ‖ĉ_{>=k}‖ also hold the energy of the orders beyond n. For f analytic in the
    strip |Im x| < τ (tanh(√q x): poles at τ = π/(2√q)) the coefficients decay like exp(-τ√k) (Hille 1940, for
    Hermite functions of x/√2): tanh needs K ≈ 134 q + 24 orders for ‖c_{>=K}‖ <= 1e-8 ‖c‖. A rule is accepted
    when ‖ĉ_{>=3n/4}‖ <= ``_RESOLVED`` ‖ĉ‖, i.e. when the series of the variance with itself needs at most 3n/4
    terms at ρ = 1; the aliases are then below the rounding: such sums at ρ = ±1 agree with a 4096-node rule to
    7e-15 for tanh, tanh', tanh'', tanh'⁴, sigmoid and softplus (measured up to q = 4). Variances that the
    largest rule does not resolve are reported as such: tanh beyond q ≈ 11, tanh' beyond 8, sigmoid 47, softplus
    78, non-smooth f at any q. q = 0 gives exactly (f(0), 0, 0, ...); non-finite q give NaN.
    """
    finite = np.isfinite(q)
    quadrature = finite & (q != 0)
    for n in (m for m in _HERMITE_RULES if m >= n_min):
        x, basis = _gauss_hermite(n)
        values = np.zeros((q.size, n))
        values[quadrature] = np.asarray(f(np.sqrt(q[quadrature])[:, None] * x), dtype=np.float64) @ basis
        tails = np.zeros((q.size, n + 1))
        tails[:, :n] = np.sqrt(np.cumsum((values**2)[:, ::-1], axis=1)[:, ::-1])
        norm = tails[:, :1]
        resolved = np.isfinite(norm[:, 0]) & (tails[:, 3 * n // 4] <= _RESOLVED * norm[:, 0])
        if resolved.all():
            break
    tails = np.divide(tails, norm, out=np.zeros_like(tails), where=resolved[:, None] & (norm > 0))
    tails[:, 0] = 1.0  # every series keeps its first term (c_0 = f(0) when q = 0, NaN when q is not finite)
    values[q == 0, 0] = np.asarray(f(np.zeros(1)), dtype=np.float64)[0]
    values[~finite] = np.nan
    return _Coefficients(values, tails, resolved, n)


def _horner(c_rows, d_rows, ia, ib, rho, start, stop):
    """Σ_{start <= k < stop} c_k d_k ρ^(k - start) by Horner's rule s <- s ρ + c_k d_k, c_k = c_rows[k][ia] and
    d_k = d_rows[k][ib] (row k of the coefficients, gathered for the pairs)."""
    out = np.zeros(rho.shape)
    for k in range(stop - 1, start - 1, -1):
        out *= rho
        out += c_rows[k][ia] * d_rows[k][ib]
    return out


def _outer(a, b, shape):
    """(a as a column (n, 1), b as a row (1, m)) when ``shape`` is (n, m), a is constant along its rows and b
    along its columns -- read from the shapes and strides of a, b, no broadcasting -- else (None, None)."""
    if len(shape) != 2 or a.ndim > 2 or b.ndim > 2:
        return None, None
    a, b = a.reshape((1,) * (2 - a.ndim) + a.shape), b.reshape((1,) * (2 - b.ndim) + b.shape)
    if (a.shape[1] == 1 or a.strides[1] == 0) and (b.shape[0] == 1 or b.strides[0] == 0):
        return np.broadcast_to(a[:, :1], (shape[0], 1)), np.broadcast_to(b[:1, :], (1, shape[1]))
    return None, None


def _mehler(phi, psi, fallback):
    r"""Vectorized E[φ(u) ψ(v)] by Mehler's formula (Mehler 1866), the expansion of the bivariate normal density
    in Hermite polynomials: with u = √a x, v = √b y, corr(x, y) = ρ = c/√(ab) and h_k = He_k/√(k!),

        E[φ(u) ψ(v)] = Σ_k c_k(a) d_k(b) ρ^k,   c_k(a) = E[φ(√a x) h_k(x)],   d_k(b) = E[ψ(√b y) h_k(y)].

    The coefficients depend on one variance each: a block of pairs computes them once per distinct variance (per
    row and per column when a is a column and b a row, as in the kernels' tiles) by Gauss-Hermite quadrature
    (``_coefficients``); then a pair costs O(K): Horner's rule s <- s ρ + c_k d_k, one vectorized pass over the
    block per order. The series stops after the least K with r^K t_a(K) t_b(K) <= ``_TRUNCATION``, r the block's
    largest |ρ| and t(K) = ‖c_{>=K}‖ / ‖c‖ the largest relative tail of its variances: by Cauchy-Schwarz the rest
    is at most ``_TRUNCATION`` √(E[φ(u)²] E[ψ(v)²]) (‖c‖² = E[φ(u)²]). Pairs near |ρ| = 1, usually few (the
    diagonal of a kernel's tile), need many more terms than the others (tanh at q = 2: 296 at ρ = 1, 36 at
    ρ = 1/2), so the terms beyond those that suffice for |ρ| <= s are summed over the pairs with |ρ| > s only, s
    among ``_SPLITS`` minimizing the work. Pairs with
    a variance the coefficients do not resolve go to ``fallback``. With a zero variance ρ = 0, and the sum is
    c_0 d_0, e.g. φ(0) E[ψ(v)].
    """

    def block(a, c, b):
        a, b = np.maximum(a, 0), np.maximum(b, 0)
        norm = np.sqrt(a) * np.sqrt(b)
        rho = np.clip(np.divide(c, norm, out=np.zeros(c.shape), where=norm > 0), -1.0, 1.0)
        if phi is psi:  # one set of coefficients: the sum is then exactly symmetric in (a, b)
            q, index = np.unique(np.concatenate([a.ravel(), b.ravel()]), return_inverse=True)
            ia, ib = index[:a.size].reshape(a.shape), index[a.size:].reshape(b.shape)
            ca = cb = _coefficients(phi, q)
        else:
            (qa, ia), (qb, ib) = (np.unique(v, return_inverse=True) for v in (a, b))
            ia, ib = ia.reshape(a.shape), ib.reshape(b.shape)
            ca = _coefficients(phi, qa)
            cb = _coefficients(psi, qb, ca.n)
            if cb.n > ca.n:
                ca = _coefficients(phi, qa, cb.n)
        size = np.abs(rho)
        tails = ca.tails.max(axis=0) * cb.tails.max(axis=0)
        orders = np.arange(tails.size)

        def terms(r):  # the least K, which exists: tails[n] = 0
            return int(np.argmax(tails * r**orders <= _TRUNCATION))

        def work(r):
            return size.size * terms(r) + 2 * np.count_nonzero(size > r) * (full - terms(r))

        r_max = np.nanmax(size, initial=0.0)
        full = terms(r_max)
        split = min([r for r in _SPLITS if r < r_max] + [r_max], key=work)
        bulk = terms(split)
        c_rows, d_rows = ca.values[:, :full].T.copy(), cb.values[:, :full].T.copy()
        out = _horner(c_rows, d_rows, ia, ib, rho, 0, bulk)
        if bulk < full:
            near = np.nonzero(size > split)
            ia_near, ib_near = (np.broadcast_to(i, rho.shape)[near] for i in (ia, ib))
            out[near] += rho[near] ** bulk * _horner(c_rows, d_rows, ia_near, ib_near, rho[near], bulk, full)
        unresolved = ~ca.resolved[ia] | ~cb.resolved[ib]
        if unresolved.any():
            shape = rho.shape
            out[unresolved] = fallback(*(np.broadcast_to(v, shape)[unresolved] for v in (a, c, b)))
        return out

    def expectation(a, c, b):
        a, c, b = (np.asarray(q, dtype=np.float64) for q in (a, c, b))
        shape = np.broadcast_shapes(a.shape, c.shape, b.shape)
        out = np.empty(shape)
        column, row = _outer(a, b, shape)
        if column is not None:
            c = np.broadcast_to(c, shape)
            for i in range(0, shape[0], _BLOCK_SIDE):
                for j in range(0, shape[1], _BLOCK_SIDE):
                    rows, cols = slice(i, i + _BLOCK_SIDE), slice(j, j + _BLOCK_SIDE)
                    out[rows, cols] = block(column[rows], c[rows, cols], row[:, cols])
        else:
            a, c, b = (np.broadcast_to(q, shape).reshape(-1) for q in (a, c, b))
            flat = out.reshape(-1)
            for i in range(0, flat.size, _BLOCK):
                flat[i:i + _BLOCK] = block(a[i:i + _BLOCK], c[i:i + _BLOCK], b[i:i + _BLOCK])
        return out

    return expectation


def _trapezoid(phi, psi):
    """Vectorized E[φ(u) ψ(v)] by the tensor trapezoidal rule on u = √q11 x, v = √q22 (ρx + √(1-ρ²) y).

    For integrands analytic in a strip |Im x| < a the trapezoidal rule with step h converges like exp(-2πa/h).
    Activations such as tanh have poles at distance ~π/(2√q) from the real axis in x, so the step is
    ``QUADRATURE_STEP / √q_max`` (q_max the largest variance of the pairs evaluated together), on |x| <= 9.
    """

    def expectation(a, c, b):
        a, c, b = np.broadcast_arrays(*(np.asarray(q, dtype=np.float64) for q in (a, c, b)))
        shape = a.shape
        a, c, b = (np.maximum(q.reshape(-1), 0) if q is not c else q.reshape(-1) for q in (a, c, b))
        if phi is psi:  # E[φ(u)φ(v)] is symmetric in (a, b): make its quadrature symmetric too
            a, b = np.minimum(a, b), np.maximum(a, b)
        sa, sb = np.sqrt(a), np.sqrt(b)
        norm = sa * sb
        r = np.clip(np.divide(c, norm, out=np.zeros_like(c), where=norm > 0), -1.0, 1.0)
        r_perp = np.sqrt(1 - r**2)
        out = np.empty_like(a)
        q_pair = np.maximum(a, b)
        order = np.argsort(q_pair)  # pairs of similar variance share a grid
        lo = 0
        while lo < order.size:
            hi = min(lo + 64, order.size)
            q_max = max(float(q_pair[order[hi - 1]]), 1.0)
            m = min(int(np.ceil(9 * np.sqrt(q_max) / QUADRATURE_STEP)), _MAX_NODES // 2)
            x = np.arange(-m, m + 1) * (9 / m)
            w = (9 / m) * np.exp(-x**2 / 2) / np.sqrt(2 * np.pi)
            hi = lo + max(1, min(hi - lo, 2**22 // x.size**2))
            idx = order[lo:hi]
            lo = hi
            inner = np.asarray(psi(sb[idx, None, None] * (r[idx, None, None] * x[None, :, None]
                                                          + r_perp[idx, None, None] * x[None, None, :])),
                               dtype=np.float64) @ w
            out[idx] = (np.asarray(phi(sa[idx, None] * x[None, :]), dtype=np.float64) * inner) @ w
        return out.reshape(shape)

    return expectation


class GaussianExpectation(sp.Function):
    r"""Unevaluated ⟨φ(u) ψ(v)⟩ over (u, v) ~ N(0, [[q11, q12], [q12, q22]]), for φ, ψ without a closed form.

    ``GaussianExpectation.of(φ, ψ)`` is the SymPy function (q11, q12, q22) -> ⟨φ(u) ψ(v)⟩, one class per pair,
    so that only the covariance entries are arguments. Derivatives follow Price's theorem
    (∂/∂q12 = ⟨φ'ψ'⟩, ∂/∂q11 = ½⟨φ''ψ⟩). Lambdified, it takes one of two numeric paths, pair by pair:

    * Mehler's series Σ_k c_k(q11) d_k(q22) ρ^k in the Hermite coefficients of φ(√q11 x) and ψ(√q22 y)
      (``_mehler``), wherever a Gauss-Hermite rule of at most 2048 nodes resolves those coefficients (the series
      then needs at most 1536 terms): for tanh up to q ≈ 11 (K ≈ 134 q + 24 terms at ρ = ±1, ~40 at |ρ| = 1/2),
      tanh' up to 8, sigmoid 47, softplus 78. The coefficients cost one 1-D quadrature per distinct variance, then
      a pair O(K) operations: ~1 µs a pair in the tiles of :func:`theory.kernels.nngp_ntk`;
    * elsewhere (larger variances, non-smooth φ) a tensor trapezoidal rule whose step shrinks like 1/√(variance)
      (``_trapezoid``), ~1 ms a pair.

    For activations analytic in a strip around the real axis (tanh, sigmoid, softplus, swish, and products of them
    such as E[tanh'(u)⁴], whose poles are of order 8) both are within 1e-12 relative of an mpmath reference, the
    trapezoidal rule at any variance up to about 10³ (beyond, its grid reaches its cap of 2001 nodes per
    dimension); for non-smooth φ the trapezoidal rule converges only algebraically.
    """

    nargs = 3
    phi = psi = None

    @staticmethod
    @lru_cache(maxsize=256)
    def of(phi, psi):
        """The function (q11, q12, q22) -> ⟨φ(u) ψ(v)⟩ for SymPy expressions φ, ψ in z."""
        return type(f"E[{phi}, {psi}]", (GaussianExpectation,), {"phi": phi, "psi": psi})

    @classmethod
    def eval(cls, a, c, b):
        return None

    def fdiff(self, argindex=1):
        a, c, b = self.args
        dphi, dpsi = Activation(self.phi).derivative, Activation(self.psi).derivative
        if argindex == 2:
            return gaussian_expectation(dphi, dpsi, a, c, b)
        if argindex == 1:
            return gaussian_expectation(Activation(dphi).derivative, self.psi, a, c, b) / 2
        if argindex == 3:
            return gaussian_expectation(self.phi, Activation(dpsi).derivative, a, c, b) / 2
        raise sp.ArgumentIndexError(self, argindex)

    def __reduce__(self):
        return _rebuild, (self.phi, self.psi, self.args)

    def _latex(self, printer):
        fu = printer._print(self.phi.xreplace({z: sp.Symbol("u")}))
        fv = printer._print(self.psi.xreplace({z: sp.Symbol("v")}))
        q = ", ".join(printer._print(x) for x in self.args)
        return rf"\left\langle {fu}\, {fv} \right\rangle_{{{q}}}"

    def _numeric_helper(self):
        return (self.phi, self.psi), _quadrature(self.phi, self.psi), self.args

    def _eval_evalf(self, prec):
        if all(x.is_number for x in self.args):  # a float64 quadrature: 53 bits, whatever precision is asked
            return sp.Float(float(_quadrature(self.phi, self.psi)(*map(float, self.args))), precision=53)


def _rebuild(phi, psi, args):
    return GaussianExpectation.of(phi, psi)(*args)


@lru_cache(maxsize=256)
def _quadrature(phi, psi):
    f = lambdify([z], phi)
    g = f if psi == phi else lambdify([z], psi)
    return _mehler(f, g, _trapezoid(f, g))


# --------------------------------------------------------------------------------------------------------------
# Public functions
# --------------------------------------------------------------------------------------------------------------


def _as_expr(f, name):
    if isinstance(f, (Activation, str)):
        return activation(f).expr
    try:
        expr = sp.sympify(f)
    except (sp.SympifyError, TypeError) as err:
        raise TypeError(f"{name}: expected an activation or a SymPy expression in z, got {f!r}") from err
    if not isinstance(expr, sp.Expr):
        raise TypeError(f"{name}: expected an activation or a SymPy expression in z, got {f!r}")
    return expr


@lru_cache(maxsize=1024)
def _expectation(phi, psi):
    try:
        pairs = [(cu * cv, fu, fv) for cu, fu in _atoms(phi) for cv, fv in _atoms(psi)]
        total = sp.Add(*[coef * _expect(fu, fv, q11, q12, q22) for coef, fu, fv in pairs])
    except _NoClosedForm:
        return GaussianExpectation.of(phi, psi)(q11, q12, q22)
    if total.has(sp.exp):
        # a sum of exponentials e^{-(a q11 + 2b q12 + c q22)/2}, each exponent <= 0: simplify would factor it into
        # products such as e^{2 q12} e^{-q11/2 - q12 - q22/2}, which overflow for large variances
        total = sp.powsimp(sp.expand(total), combine="exp")
        return sp.expand_complex(total) if total.has(sp.I) else total
    return sp.simplify(total, ratio=1) if total.count_ops() < 200 else total


_ABANDONED = set()  # pairs (φ, ψ) whose reduction exceeded the budget once


def _budgeted(phi, psi):
    """:func:`_expectation` within the symbolic time budget; past it, the quadrature form, with a one-line note."""
    if active():  # an outer budget (a layer map's) governs: its holder chooses the path
        return _expectation(phi, psi)
    if (phi, psi) not in _ABANDONED:
        try:
            with budget():
                return _expectation(phi, psi)
        except OverBudget:
            _ABANDONED.add((phi, psi))
            print(f"theory: no closed form for E[{phi} · {psi}] within the symbolic budget; using quadrature",
                  file=sys.stderr)
    return GaussianExpectation.of(phi, psi)(q11, q12, q22)


def gaussian_expectation(phi, psi, a=q11, c=q12, b=q22):
    r"""E[φ(u) ψ(v)] for (u, v) ~ N(0, [[a, c], [c, b]]), as a SymPy expression.

    ``phi`` and ``psi`` are :class:`~theory.activations.Activation` objects or SymPy expressions in
    ``theory.symbols.z``; ``a, c, b`` default to the symbols ``q11, q12, q22``. The result is a closed form when
    the reduction in this module's docstring applies, otherwise an unevaluated :class:`GaussianExpectation`. A
    reduction that takes longer than ``theory._budget.SYMBOLIC_SECONDS`` (5 s) is abandoned for the unevaluated form
    (with a one-line note on stderr); :class:`Numeric` (φ) asks for the unevaluated form directly.

    >>> from theory.symbols import z
    >>> import sympy
    >>> gaussian_expectation(z**2, z**2)
    q_11*q_22 + 2*q_12**2
    """
    phi, psi = _as_expr(phi, "phi"), _as_expr(psi, "psi")
    expr = _budgeted(phi, psi)
    if (a, c, b) == (q11, q12, q22):
        return expr
    return expr.xreplace({q11: sp.sympify(a), q12: sp.sympify(c), q22: sp.sympify(b)})


def hermite_coefficients(phi, k_max, q=1):
    r"""Normalized Hermite coefficients a_k = E[φ(√q x) He_k(x)] / √(k!), x ~ N(0, 1), for k = 0..k_max.

    He_k are the probabilists' Hermite polynomials; φ(√q x) = Σ_k a_k He_k(x)/√(k!) in L²(N(0,1)).
    """
    if not (isinstance(k_max, int) and k_max >= 0):
        raise ValueError(f"k_max: must be a non-negative integer, got {k_max!r}")
    phi = _as_expr(phi, "phi").xreplace({z: sp.sqrt(q) * z})
    return [sp.simplify(gaussian_expectation(phi * sp.hermite_prob(k, z), 1, 1, 0, 1) / sp.sqrt(sp.factorial(k)))
            for k in range(k_max + 1)]


def dual_activation(phi, k_max, q=1):
    r"""The dual activation E[φ(u) φ(v)] = Σ_{k ≤ k_max} a_k² ρ^k for unit-correlation-ρ inputs of variance q.

    Exact when φ is a polynomial of degree ≤ k_max (Mehler's formula); otherwise the truncated series.
    """
    return sp.Add(*[a**2 * rho**k for k, a in enumerate(hermite_coefficients(phi, k_max, q))])
