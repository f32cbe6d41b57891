r"""Finite-width corrections: the 1/n expansion around the infinite-width limit, derived layer by layer.

Convention: the NTK parameterization of :mod:`theory.kernels` and :mod:`theory.montecarlo` (weights N(0, σ_w²/n)
as σ_w W/√n, biases σ_b b). z⁰ = σ_w W⁰x/√d + σ_b b⁰ is the first pre-activation (exactly Gaussian) and z^l, l = 1..L,
has l nonlinearities below it; z^L = f is the output. Layer l has width n_l (hidden widths n_0..n_{L-1}). So the
layer called l in Roberts, Yaida & Hanin (2022, "PDLT") and in Yaida (2020), whose first layer is z^(1), is the
package's layer l - 1: PDLT's V^(l) is ``vertex`` at package depth l - 1.

The mechanism (one line, exact): given the layer below, the n_l units of layer l are iid and z^{l+1} is Gaussian with
the random variance K̂^{l+1} = σ_b² + σ_w² |φ(z^l)|²/n_l, so

    E[z⁴]/(3 E[z²]²) - 1 = Var K̂/(E K̂)²,     Var(K̂^{l+1} | K̂^l) = σ_w⁴ (⟨φ⁴⟩ - ⟨φ²⟩²)_{K̂^l} / n_l.

Linearizing E[K̂^{l+1} | K̂^l] = σ_b² + σ_w² ⟨φ²⟩_{K̂^l} around K^l gives the first-order recursion (the four-point
vertex of PDLT ch. 4, with Var K̂^{l} = V^{l}/n_{l-1}):

    V^{l+1} = σ_w⁴ (⟨φ⁴⟩ - ⟨φ²⟩²)_{K^l} + χ_∥² (n_l/n_{l-1}) V^l,   χ_∥ = dK^{l+1}/dK^l,   V⁰ = 0,
    κ^l := E[(z^l)⁴]/(3 E[(z^l)²]²) - 1 = V^l/(n_{l-1} (K^l)²) + O(1/n²).

The same conditioning carried through the NTK gives its fluctuations (:class:`FiniteWidth`, derived in
``derivations/finite_width.py``): the state of a layer is the kernel K, the NTK Θ, the covariance Σ of (K̂, Θ̂)
(Θ̂ = E[Θ_kk | layer below], a unit's diagonal NTK), β = E[Θ_km²] (k ≠ m), the mean shifts μ_K, μ_Θ, and the
"coherent" NTK m = â·M â / n along the activation direction â, which shifts the NTK mean.

Everything is derived from one-variable Gaussian expectations of the activation (:func:`moments`), written once as
SymPy expressions; numbers come from lambdifying them (:func:`first_order_state`).
"""

from functools import cached_property, lru_cache
from typing import NamedTuple

import numpy as np
import sympy as sp

from . import _validate
from . import symbols as sym
from .activations import Activation, activation as _activation
from .gaussian import GaussianExpectation, gaussian_expectation
from .kernels import layer
from .numeric import lambdify
from .symbols import q11, q12, q22, z

__all__ = [
    "depth_symbol", "Moments", "moments", "State", "STATE", "single_input_layer", "vertex_recursion",
    "FiniteWidth", "finite_width", "FirstOrder", "output_kurtosis", "ntk_variance", "first_order_state",
    "exact_kurtosis", "vertex_tensor", "kernel_shift", "Criticality", "criticality", "critical_points",
    "kurtosis_asymptotics",
    "cluster_exponent",
]

#: The depth L (number of nonlinearities) when it is a symbol, e.g. in large-depth asymptotics.
depth_symbol = sp.Symbol("L", positive=True, integer=True)


class Moments(NamedTuple):
    """One-variable Gaussian expectations over z ~ N(0, K), K = ``q11``: ⟨φ²⟩, ⟨φ⁴⟩, ⟨φ'²⟩, ⟨φ'⁴⟩, ⟨φ²φ'²⟩
    (the last three NaN when φ' has a Dirac delta, e.g. for the step function)."""

    phi2: sp.Expr
    phi4: sp.Expr
    dphi2: sp.Expr
    dphi4: sp.Expr
    mixed: sp.Expr


def _one_variable(expr):
    return gaussian_expectation(expr, 1, q11, 0, 1)


@lru_cache(maxsize=64)
def moments(activation):
    """The :class:`Moments` of ``activation``, derived by :func:`theory.gaussian_expectation` (closed forms where
    they exist, e.g. ⟨relu⁴⟩ = 3K²/2; otherwise unevaluated expectations that lambdify to quadrature)."""
    act = _activation(activation)
    f, d = act.expr, act.derivative
    if d.has(sp.DiracDelta):  # ⟨φ'²⟩ is infinite: the kernel statistics exist, the NTK's do not
        return Moments(_one_variable(f**2), _one_variable(f**4), sp.nan, sp.nan, sp.nan)
    return Moments(*(_one_variable(e) for e in (f**2, f**4, d**2, d**4, f**2 * d**2)))


# --------------------------------------------------------------------------------------------------------------
# The single-input state and its one-layer update
# --------------------------------------------------------------------------------------------------------------


class State(NamedTuple):
    """The single-input state of a layer, to first order in 1/n (all first-order entries are absolute, O(1/n)).

    ``kernel`` K = E K̂ at infinite width, ``ntk`` Θ; ``var_kernel``, ``cov``, ``var_ntk`` the covariance of
    (K̂, Θ̂); ``offdiag`` β = E[Θ_km²], k ≠ m; ``shift_kernel``, ``shift_ntk`` the O(1/n) shifts of E K̂, E Θ̂;
    ``coherent`` m̃ = â·(D Θ D) â / n_l of the layer's units (â = φ(z)/|φ(z)|, D = diag φ'(z)).
    """

    kernel: object
    ntk: object
    var_kernel: object
    cov: object
    var_ntk: object
    offdiag: object
    shift_kernel: object
    shift_ntk: object
    coherent: object


#: The state symbols of the one-layer update (the kernel is ``q11``, the variance of the layer's pre-activation).
STATE = State(q11, sp.Symbol("Theta", positive=True), sp.Symbol("Sigma_KK"), sp.Symbol(r"\Sigma_{K\Theta}"),
              sp.Symbol(r"\Sigma_{\Theta\Theta}"), sp.Symbol("beta"), sp.Symbol("mu_K"), sp.Symbol("mu_Theta"),
              sp.Symbol("m"))


@lru_cache(maxsize=64)
def single_input_layer(activation):
    r"""The one-layer update of the :class:`State`, summing over the n = ``symbols.n`` units of the layer.

    Given layer l-1 the units of layer l are iid: z ~ N(0, K̂^l), Θ_kk ≈ Θ̂^l. With χ_∥ = σ_w² ∂_K⟨φ²⟩,
    χ_⊥ = σ_w² ⟨φ'²⟩ and J₂₁ = χ_∥ + σ_w² ∂_K⟨φ'²⟩ Θ (all at K^l), to first order:

        K' = σ_b² + σ_w² ⟨φ²⟩,   Θ' = K' + χ_⊥ Θ,
        Σ' = J Σ Jᵀ + N/n,   J = [[χ_∥, 0], [J₂₁, χ_⊥]],   N = σ_w⁴ Cov(φ², φ² + Θ φ'²)-matrix,
        β' = σ_w⁴ ⟨φ'⁴⟩ Θ²/n + χ_⊥² β,
        μ_K' = χ_∥ μ_K + ½ σ_w² ∂²⟨φ²⟩ Σ_KK,
        μ_Θ' = μ_K' + χ_⊥ μ_Θ + σ_w² ∂⟨φ'²⟩ (μ_K Θ + Σ_KΘ) + ½ σ_w² ∂²⟨φ'²⟩ Σ_KK Θ + 2 σ_w⁴ (K - σ_b²) ∂⟨φ'²⟩ m,
        m' = (⟨φ²φ'²⟩ Θ/n + σ_w² (K - σ_b²) (∂⟨φ²⟩)² m) / ⟨φ²⟩.

    The last term of μ_Θ' is the correlation of φ'(z)² with the fluctuation of Θ_kk through the shared weights
    (E[φ'(z)² (ξ² - 1)] = 2 s² ∂_K⟨φ'²⟩ for z = sξ + σ_b b); m' carries the part of Θ along the activations, which
    the weights of the layer below add coherently. Returns the new :class:`State` as SymPy expressions.
    """
    mo = moments(activation)
    sw, sb, n = sym.sigma_w2, sym.sigma_b2, sym.n
    K, T, s_kk, s_kt, s_tt, beta, mu_k, mu_t, m = STATE
    dp2, ddp2 = sp.diff(mo.phi2, q11), sp.diff(mo.phi2, q11, 2)
    dd2, ddd2 = sp.diff(mo.dphi2, q11), sp.diff(mo.dphi2, q11, 2)
    chi_par, chi_perp = sw * dp2, sw * mo.dphi2
    j21 = chi_par + sw * dd2 * T
    c_pp = mo.phi4 - mo.phi2**2
    c_pd = mo.mixed - mo.phi2 * mo.dphi2
    c_dd = mo.dphi4 - mo.dphi2**2
    new_k = sb + sw * mo.phi2
    new_mu_k = chi_par * mu_k + sw * ddp2 * s_kk / 2
    return State(
        kernel=new_k,
        ntk=new_k + chi_perp * T,
        var_kernel=chi_par**2 * s_kk + sw**2 * c_pp / n,
        cov=chi_par * (j21 * s_kk + chi_perp * s_kt) + sw**2 * (c_pp + T * c_pd) / n,
        var_ntk=j21**2 * s_kk + 2 * j21 * chi_perp * s_kt + chi_perp**2 * s_tt
        + sw**2 * (c_pp + 2 * T * c_pd + T**2 * c_dd) / n,
        offdiag=sw**2 * mo.dphi4 * T**2 / n + chi_perp**2 * beta,
        shift_kernel=new_mu_k,
        shift_ntk=new_mu_k + chi_perp * mu_t + sw * dd2 * (mu_k * T + s_kt) + sw * ddd2 * s_kk * T / 2
        + 2 * sw**2 * (K - sb) * dd2 * m,
        coherent=(mo.mixed * T / n + sw * (K - sb) * dp2**2 * m) / mo.phi2,
    )


def vertex_recursion(activation=None):
    r"""The single-input four-point-vertex recursion as a list of ``Eq`` in per-layer symbols (package indices).

    K^{l+1} = σ_b² + σ_w² ⟨φ²⟩_{K^l},  χ_∥^l = dK^{l+1}/dK^l,
    V^{l+1} = σ_w⁴ (⟨φ⁴⟩ - ⟨φ²⟩²)_{K^l} + (χ_∥^l)² (n_l/n_{l-1}) V^l,
    κ^l = V^l/(n_{l-1} (K^l)²), with V⁰ = 0. With an activation the expectations are its derived closed forms.
    """
    k0, k1 = sp.symbols("K^(l) K^(l+1)", positive=True)
    v0, v1, chi, kappa = sp.symbols("V^(l) V^(l+1) chi_par^(l) kappa^(l)")
    n_l, n_prev = sp.symbols("n_l n_{l-1}", positive=True)
    if activation is None:
        phi2, phi4 = (sp.Function(r"\langle\phi\phi\rangle")(k0), sp.Function(r"\langle\phi\phi\phi\phi\rangle")(k0))
    else:
        mo = moments(activation)
        phi2, phi4 = mo.phi2.xreplace({q11: k0}), mo.phi4.xreplace({q11: k0})
    sw, sb = sym.sigma_w2, sym.sigma_b2
    return [sp.Eq(k1, sb + sw * phi2, evaluate=False),
            sp.Eq(chi, sp.diff(sb + sw * phi2, k0), evaluate=False),
            sp.Eq(v1, sw**2 * (phi4 - phi2**2) + chi**2 * (n_l / n_prev) * v0, evaluate=False),
            sp.Eq(kappa, v0 / (n_prev * k0**2), evaluate=False)]


# --------------------------------------------------------------------------------------------------------------
# Composition over layers: symbolic (FiniteWidth) and numeric (first_order_state)
# --------------------------------------------------------------------------------------------------------------


def _widths(width, depth):
    """A tuple of ``depth`` widths (ints >= 1 or positive SymPy expressions)."""
    def one(w, name):
        if isinstance(w, sp.Basic):
            if w.is_positive is False or (w.is_number and not w.is_positive):
                raise ValueError(f"{name}: expected a positive width, got {w}")
            return w
        return _validate.count(w, name, 1)

    if isinstance(width, (str, bytes)):
        raise TypeError(f"width: expected an integer >= 1, a SymPy symbol, or one per layer, got {width!r}")
    if isinstance(width, sp.Basic) or not np.iterable(width):
        return (one(width, "width"),) * depth
    widths = tuple(one(w, f"width[{i}]") for i, w in enumerate(width))
    if len(widths) != depth:
        raise ValueError(f"width: got {len(widths)} widths for depth {depth}")
    return widths


def _parameter(value, name):
    """A variance or input norm: a number >= 0 (kept exact when given exactly) or a SymPy expression."""
    if isinstance(value, sp.Basic) and not value.is_number:
        return value
    if isinstance(value, sp.Basic):
        if not value.is_real or value.is_negative:
            raise ValueError(f"{name}: expected a finite number >= 0, got {value}")
        return value
    _validate.variance(value, name)
    return sp.Integer(value) if isinstance(value, int) else sp.Float(value)


def _settle(expr):
    """Evaluate unevaluated Gaussian expectations whose arguments are numbers (quadrature), so that deep numeric
    compositions stay small; closed forms stay exact."""
    expr = sp.sympify(expr)
    if expr.has(GaussianExpectation) and all(all(a.is_number for a in g.args) for g in expr.atoms(GaussianExpectation)):
        expr = expr.evalf()
        return expr.xreplace({f: sp.Float(f, 15) for f in expr.atoms(sp.Float)})  # quadrature: ~15 digits
    return expr


class FirstOrder(NamedTuple):
    """A first-order finite-width prediction: the SymPy expression and its numeric value (``expr.evalf()``, a Float
    when everything is a number, e.g. ``5.0/n`` when the width is the symbol n)."""

    expr: sp.Expr
    value: sp.Expr


class FiniteWidth:
    """The first-order single-input statistics of a depth-L network, composed symbolically from
    :func:`single_input_layer`.

    >>> fw = finite_width("relu", depth=3, width=sym.n, sigma_w2=2, sigma_b2=0, q=1)
    >>> fw.kurtosis        # 15/n: E[f⁴]/(3E[f²]²) - 1 to first order
    >>> fw.ntk_variance    # Var Θ/Θ² to first order

    ``width`` is a number, a SymPy expression (e.g. ``theory.symbols.n``) or one per hidden layer; ``q`` is
    |x|²/d, so K⁰ = σ_b² + σ_w² q. Parameters default to symbols (σ_w², σ_b², g11).
    """

    def __init__(self, activation, depth, width=sym.n, sigma_w2=sym.sigma_w2, sigma_b2=sym.sigma_b2, q=sym.g11):
        self.activation = _activation(activation)
        self.depth = _validate.count(depth, "depth")
        self.widths = _widths(width, self.depth)
        self.sigma_w2 = _parameter(sigma_w2, "sigma_w2")
        self.sigma_b2 = _parameter(sigma_b2, "sigma_b2")
        self.q = _parameter(q, "q")
        if self.sigma_b2 == 0 and (self.q == 0 or self.sigma_w2 == 0):
            raise ValueError("q, sigma_w2, sigma_b2: the pre-activations vanish identically (K⁰ = σ_b² + σ_w² q = 0), "
                             "so the kurtosis and the relative NTK variance are undefined; give q > 0 or sigma_b2 > 0")

    @cached_property
    def states(self):
        """The :class:`State` of every layer l = 0..L (SymPy)."""
        update = single_input_layer(self.activation)
        params = {sym.sigma_w2: self.sigma_w2, sym.sigma_b2: self.sigma_b2}
        update = State(*(e.xreplace(params) for e in update))
        k0 = self.sigma_b2 + self.sigma_w2 * self.q
        zero = sp.S.Zero
        state = State(k0, k0, zero, zero, zero, zero, zero, zero, zero)
        out = [state]
        for width in self.widths:
            sub = dict(zip(STATE, state))
            sub[sym.n] = width
            state = State(*(_settle(e.xreplace(sub)) for e in update))
            out.append(state)
        return out

    @property
    def state(self):
        return self.states[-1]

    def _ratio(self, num, den):
        return sp.cancel(sp.together(num / den)) if not (num.has(GaussianExpectation) or den.has(GaussianExpectation)) \
            else num / den

    @property
    def kurtosis(self):
        """κ = E[f⁴]/(3E[f²]²) - 1 = Var K̂^L/(K^L)² to first order (one third of the usual excess kurtosis)."""
        return self._ratio(self.state.var_kernel, self.state.kernel**2)

    @property
    def vertex(self):
        """The four-point vertex V^L = n_{L-1} Var K̂^L (PDLT's V^(L+1)); 0 at depth 0."""
        return sp.expand(self.widths[-1] * self.state.var_kernel) if self.depth else sp.S.Zero

    def _ntk(self, value):
        if self.depth and moments(self.activation).dphi2 is sp.nan:
            raise ValueError(f"activation {self.activation.name}: φ' has a Dirac delta, so the NTK is infinite")
        return value

    @property
    def ntk_variance(self):
        """Var Θ(x, x)/Θ(x, x)² of the output's empirical NTK, to first order: (Σ_ΘΘ^L + 2β^L)/(Θ^L)²."""
        return self._ntk(self._ratio(self.state.var_ntk + 2 * self.state.offdiag, self.state.ntk**2))

    @property
    def ntk_shift(self):
        """E Θ(x, x) - Θ^L(x, x), the O(1/n) correction to the NTK mean."""
        return self._ntk(self.state.shift_ntk)

    @property
    def nngp_shift(self):
        """E[f(x)²] - K^L(x, x), the O(1/n) correction to the NNGP mean (PDLT's K^(1) term)."""
        return self.state.shift_kernel

    def __repr__(self):
        return f"FiniteWidth({self.activation.name}, depth={self.depth})"


def finite_width(activation, depth, width=sym.n, sigma_w2=sym.sigma_w2, sigma_b2=sym.sigma_b2, q=sym.g11):
    """The first-order single-input statistics of a depth-``depth`` network; see :class:`FiniteWidth`."""
    return FiniteWidth(activation, depth, width, sigma_w2, sigma_b2, q)


def output_kurtosis(activation, depth, width=sym.n, sigma_w2=sym.sigma_w2, sigma_b2=sym.sigma_b2, q=sym.g11):
    r"""E[f⁴]/(3E[f²]²) - 1 of the output f = z^L to first order in 1/n: V^L/(n_{L-1}(K^L)²), a :class:`FirstOrder`.

    >>> output_kurtosis("relu", 4, sym.n, sigma_w2=2, sigma_b2=0, q=1).expr     # 20/n (Hanin & Nica's 5 per layer)
    """
    k = finite_width(activation, depth, width, sigma_w2, sigma_b2, q).kurtosis
    return FirstOrder(k, k.evalf())


def ntk_variance(activation, depth, width=sym.n, sigma_w2=sym.sigma_w2, sigma_b2=sym.sigma_b2, q=sym.g11):
    r"""Var Θ(x, x)/Θ(x, x)² of the empirical NTK to first order in 1/n, a :class:`FirstOrder`.

    Exact for one hidden layer (Θ is then a mean of n iid terms): c/n with c from one-variable Gaussian integrals.
    """
    v = finite_width(activation, depth, width, sigma_w2, sigma_b2, q).ntk_variance
    return FirstOrder(v, v.evalf())


@lru_cache(maxsize=64)
def _numeric_update(act):
    update = single_input_layer(act)
    return lambdify((*STATE, sym.sigma_w2, sym.sigma_b2, sym.n), tuple(update))


def first_order_state(activation, depth, width, sigma_w2=1.0, sigma_b2=0.0, q=1.0):
    """The output's :class:`State` in float64: the lambdified :func:`single_input_layer` looped over the layers.

    ``width`` (the same for every hidden layer) is a number or an array of widths: the state broadcasts over it,
    one prediction per width.
    """
    act = _activation(activation)
    depth = _validate.count(depth, "depth")
    sw, sb = _validate.variance(sigma_w2, "sigma_w2"), _validate.variance(sigma_b2, "sigma_b2")
    q = _validate.variance(q, "q")
    width = np.asarray(width, dtype=np.float64)
    if not np.all(np.isfinite(width)) or np.any(width < 1):
        raise ValueError(f"width: expected widths >= 1, got {width}")
    k0 = sb + sw * q
    if k0 == 0:
        raise ValueError("q, sigma_w2, sigma_b2: the pre-activations vanish identically (K⁰ = σ_b² + σ_w² q = 0)")
    step = _numeric_update(act)
    state = State(k0, k0, *([0.0] * 7))
    for _ in range(depth):
        state = State(*step(*state, sw, sb, width))
    return State(*(np.broadcast_to(np.asarray(x, dtype=np.float64), width.shape) for x in state))


# --------------------------------------------------------------------------------------------------------------
# Exact finite-width results for positively homogeneous activations
# --------------------------------------------------------------------------------------------------------------


def _homogeneous(act):
    """(A2, A4) with ⟨φ²⟩_K = A2 K and ⟨φ⁴⟩_K = A4 K² if φ(λz) = λφ(z) for λ > 0 (ReLU, leaky ReLU, |z|, z), else None.

    A numeric screen at a few points rejects the others cheaply; the moments then decide exactly.
    """
    if not act.parameters:
        phi, _ = act.numpy
        x = np.array([-1.3, -0.4, 0.6, 2.1])
        if not np.allclose(phi(2.7 * x), 2.7 * phi(x), rtol=1e-12, atol=1e-12):
            return None
    p2, p4 = _one_variable(act.expr**2), _one_variable(act.expr**4)
    if p2.has(GaussianExpectation) or p4.has(GaussianExpectation):
        return None
    a2, a4 = p2.subs(q11, 1), p4.subs(q11, 1)
    if sp.simplify(p2 - a2 * q11) != 0 or sp.simplify(p4 - a4 * q11**2) != 0:
        return None
    return a2, a4


def exact_kurtosis(activation, depth, width=sym.n, sigma_w2=sym.sigma_w2, sigma_b2=sym.sigma_b2, q=sym.g11):
    r"""E[f⁴]/(3E[f²]²) - 1 exactly, at any width, for positively homogeneous φ (ReLU, leaky ReLU, |z|, linear).

    Given K̂^l the units are iid with ⟨φ²⟩ = A₂K̂, ⟨φ⁴⟩ = A₄K̂², so the conditional moments of
    K̂^{l+1} = σ_b² + σ_w²|φ(z^l)|²/n_l are polynomials in K̂^l and (E K̂, E K̂²) obey a closed linear recursion:

        E K̂' = σ_b² + σ_w² A₂ E K̂,   E K̂'² = (σ_b² + σ_w² A₂ K̂)² + σ_w⁴ (A₄ - A₂²) K̂²/n  averaged over K̂.

    With σ_b² = 0 the ratio E K̂²/(E K̂)² gains the factor 1 + (A₄/A₂² - 1)/n per layer, so the result is
    (1 + (A₄/A₂² - 1)/n)^L - 1 (ReLU: (1 + 5/n)^L - 1; linear: (1 + 2/n)^L - 1), for any σ_w²; ``depth`` may then be
    a SymPy symbol. Raises ValueError for other activations, whose conditional moments do not close.
    """
    act = _activation(activation)
    homogeneous = _homogeneous(act)
    if homogeneous is None:
        raise ValueError(f"activation {act.name}: exact finite-width moments need a positively homogeneous φ "
                         "(⟨φ²⟩_K ∝ K and ⟨φ⁴⟩_K ∝ K², e.g. relu, leaky_relu, abs, identity)")
    sw, sb, qq = _parameter(sigma_w2, "sigma_w2"), _parameter(sigma_b2, "sigma_b2"), _parameter(q, "q")
    mo = moments(act)
    kh, m1, m2, n_ = sp.Symbol("Khat", positive=True), sp.Symbol("m1"), sp.Symbol("m2"), sp.Dummy("n", positive=True)
    first = (sb + sw * mo.phi2).xreplace({q11: kh})
    second = sp.expand(first**2 + sw**2 * (mo.phi4 - mo.phi2**2).xreplace({q11: kh}) / n_)
    if isinstance(depth, sp.Basic) and not depth.is_number:
        if sb != 0:
            raise ValueError("depth: a symbolic depth needs sigma_b2 = 0 (the per-layer factor is then constant)")
        if not (isinstance(width, sp.Basic) or isinstance(width, (int, float))):
            raise ValueError("width: a symbolic depth needs one width for all layers")
        factor = sp.factor(sp.cancel(second / first**2)).xreplace({n_: sp.sympify(width)})
        return factor**depth - 1
    depth = _validate.count(int(depth) if isinstance(depth, sp.Integer) else depth, "depth")
    if sb == 0 and qq == 0:
        raise ValueError("q, sigma_b2: the pre-activations vanish identically (K⁰ = 0): the kurtosis is undefined")
    poly = sp.Poly(second, kh)
    moment = {0: sp.S.One, 1: m1, 2: m2}
    step_m2 = sum(c * moment[k] for (k,), c in poly.terms())
    step_m1 = first.xreplace({kh: m1})
    k0 = sb + sw * qq
    state = (k0, k0**2)
    for width_l in _widths(width, depth):
        sub = {m1: state[0], m2: state[1], n_: sp.sympify(width_l)}
        state = (step_m1.xreplace(sub), step_m2.xreplace(sub))
    return sp.factor(sp.cancel(state[1] / state[0] ** 2 - 1))


# --------------------------------------------------------------------------------------------------------------
# Two inputs: the four-point vertex as a tensor over the kernel entries (11, 12, 22)
# --------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _tensor_layer(act):
    r"""(K', J, N, H) of one layer for two inputs, in q11, q12, q22, σ_w², σ_b²: the kernel map, its Jacobian over
    (K11, K12, K22) by Price's theorem (∂K'12/∂q12 = σ_w²⟨φ'φ'⟩, ∂K'12/∂q11 = ½σ_w²⟨φ''(u)φ(v)⟩: PDLT's χ with
    indices raised by K⁻¹, written without inverting K), σ_w⁴ times the covariance of (φ_u², φ_uφ_v, φ_v²), and the
    Hessians H[k][i, j] = ∂J[k, i]/∂q_j of the three entries."""
    lay = layer(act)
    f, d = act.expr, act.derivative
    dd = Activation(d).derivative
    sw = sym.sigma_w2
    swap = {q11: q22, q22: q11}
    diag11, diag22 = lay.nngp_diag, lay.nngp_diag.xreplace({q11: q22})
    chi11 = sp.diff(lay.nngp_diag, q11)
    half = sw * gaussian_expectation(dd, f) / 2  # ∂K'12/∂q11
    J = sp.Matrix([[chi11, 0, 0],
                   [half, lay.kdot, half.xreplace(swap)],
                   [0, 0, chi11.xreplace({q11: q22})]])
    e = {k: gaussian_expectation(f**i, f**j) for k, (i, j) in {"31": (3, 1), "22": (2, 2), "13": (1, 3)}.items()}
    p4u, p4v = _one_variable(f**4), _one_variable(f**4).xreplace({q11: q22})
    p2u, p2v = _one_variable(f**2), _one_variable(f**2).xreplace({q11: q22})
    c = gaussian_expectation(f, f)
    cov = sp.Matrix([[p4u - p2u**2, e["31"] - p2u * c, e["22"] - p2u * p2v],
                     [e["31"] - p2u * c, e["22"] - c**2, e["13"] - c * p2v],
                     [e["22"] - p2u * p2v, e["13"] - c * p2v, p4v - p2v**2]])
    qs = (q11, q12, q22)
    H = sp.Matrix([[sp.diff(J[k, i], qs[j]) for i in range(3) for j in range(3)] for k in range(3)])  # (3, 9)
    return sp.Matrix([diag11, lay.nngp, diag22]), J, sw**2 * cov, H


def _inputs_gram(g):
    """``g`` = (|x|²/d, x·x'/d, |x'|²/d) as SymPy numbers or symbols; numbers must be a Gram matrix (PSD)."""
    try:
        g = tuple(sp.sympify(x) for x in g)
    except (TypeError, sp.SympifyError):
        raise TypeError(f"g: expected three numbers or symbols (|x|²/d, x·x'/d, |x'|²/d), got {g!r}") from None
    if len(g) != 3:
        raise ValueError(f"g: expected three entries (|x|²/d, x·x'/d, |x'|²/d), got {len(g)}")
    if all(x.is_number for x in g):
        a, c, b = (float(x) for x in g)
        if not (np.isfinite([a, b, c]).all() and a >= 0 and b >= 0 and c * c <= a * b * (1 + 1e-12)):
            raise ValueError(f"g: expected |x|²/d >= 0, |x'|²/d >= 0 and (x·x'/d)² <= |x|²|x'|²/d² (a Gram matrix), "
                             f"got {tuple(float(x) for x in g)}")
    return g


def _tensor_recursion(activation, depth, width, g, sigma_w2, sigma_b2):
    r"""(Σ^L, μ^L) for two inputs, composed layer by layer from Σ⁰ = μ⁰ = 0 (the first layer is exactly Gaussian):

        Σ^{l+1} = J Σ^l Jᵀ + N^l/n_l,      μ^{l+1} = J μ^l + ½ H : Σ^l,

    both from E[K̂^{l+1} | K̂^l] = F(K̂^l) (given the layer below, its units are iid Gaussian with covariance K̂^l)
    expanded to second order around K^l. Numbers in, numbers out (lambdified); symbols in, composed expressions."""
    act = _activation(activation)
    depth = _validate.count(depth, "depth")
    widths = _widths(width, depth)
    kmap, J, N, H = _tensor_layer(act)
    args = (q11, q12, q22, sym.sigma_w2, sym.sigma_b2)
    sw, sb = _parameter(sigma_w2, "sigma_w2"), _parameter(sigma_b2, "sigma_b2")
    g = _inputs_gram(g)
    k = sp.Matrix([sb + sw * x for x in g])
    if all(sp.sympify(x).is_number for x in (*g, sw, sb, *widths)):
        shapes = {"K": (3,), "J": (3, 3), "N": (3, 3), "H": (3, 3, 3)}
        funcs = {name: lambdify(args, tuple(expr)) for name, expr in zip(shapes, (kmap, J, N, H))}

        def value(name, vals):
            return np.asarray(funcs[name](*vals), dtype=float).reshape(shapes[name])

        kv, sv, mv = np.array(k, dtype=float).ravel(), np.zeros((3, 3)), np.zeros(3)
        for w in widths:
            vals = (*kv, float(sw), float(sb))
            new_k = value("K", vals)
            if not sv.any():  # Σ⁰ = μ⁰ = 0: J and H are not needed there, and can be infinite (ReLU, antipodal)
                sv = value("N", vals) / float(w)
            elif kv[1] ** 2 < kv[0] * kv[2] * (1 - 1e-12):
                jv = value("J", vals)
                mv = jv @ mv + 0.5 * np.einsum("kij,ij->k", value("H", vals), sv)
                sv = jv @ sv @ jv.T + value("N", vals) / float(w)
            else:  # |ρ^l| = 1 below the output: every network's pair is proportional here and from here on (the
                # curvature across the pair can be infinite): entry 11 alone, then (1, c, c²) with c = K12/K11
                with np.errstate(divide="ignore", invalid="ignore"):
                    j00, h000, n00 = value("J", vals)[0, 0], value("H", vals)[0, 0, 0], value("N", vals)[0, 0]
                scale = np.array([1.0, new_k[1] / new_k[0], (new_k[1] / new_k[0]) ** 2])
                mv = scale * (j00 * mv[0] + 0.5 * h000 * sv[0, 0])
                sv = np.outer(scale, scale) * (j00**2 * sv[0, 0] + n00 / float(w))
            kv = new_k
        return sp.Matrix(sv), sp.Matrix(mv)
    sigma, mu = sp.zeros(3, 3), sp.zeros(3, 1)
    for w in widths:
        sub = {q11: k[0], q12: k[1], q22: k[2], sym.sigma_w2: sw, sym.sigma_b2: sb}
        jv, nv, hv = J.xreplace(sub), N.xreplace(sub), H.xreplace(sub)
        if sigma.is_zero_matrix:  # Σ⁰ = μ⁰ = 0, as in the numeric branch
            sigma = nv / w
        else:
            mu = jv * mu + sp.Matrix([sum(hv[r, 3 * i + j] * sigma[i, j] for i in range(3) for j in range(3)) / 2
                                      for r in range(3)])
            sigma = jv * sigma * jv.T + nv / w
        k = kmap.xreplace(sub)
    return sigma, mu


def vertex_tensor(activation, depth, width=sym.n, g=(sym.g11, sym.g12, sym.g22), sigma_w2=sym.sigma_w2,
                  sigma_b2=sym.sigma_b2):
    r"""The first-order covariance of the output kernel entries (K̂11, K̂12, K̂22) for two inputs, a 3x3 Matrix.

    Cov(K̂_ab, K̂_cd) = V_{(ab)(cd)}/n to first order (PDLT's four-point vertex as a tensor), by
    Σ^{l+1} = J Σ^l Jᵀ + N^l/n_l with Σ⁰ = 0, J = ∂K^{l+1}/∂K^l over the three entries and
    N = σ_w⁴ Cov(φ_u², φ_uφ_v, φ_v²); ``g`` = (|x|²/d, x·x'/d, |x'|²/d). Numbers in, numbers out (lambdified);
    symbols in, the composed expression. Needs a derivative without Dirac deltas in φ'' ψ expectations only through
    the engine (ReLU is fine: ⟨δ(u) relu(v)⟩ is a closed form).
    """
    return _tensor_recursion(activation, depth, width, g, sigma_w2, sigma_b2)[0]


def kernel_shift(activation, depth, width=sym.n, g=(sym.g11, sym.g12, sym.g22), sigma_w2=sym.sigma_w2,
                 sigma_b2=sym.sigma_b2):
    r"""The first-order mean shift of the output kernel entries for two inputs, E[K̂^L] - K^L = (μ11, μ12, μ22), a
    3x1 Matrix (PDLT's K^{(1)}/n for two inputs; μ11 and μ22 are the single-input :attr:`FiniteWidth.nngp_shift`).

    μ^{l+1} = J μ^l + ½ Σ_ij H_ij Σ^l_ij with μ⁰ = 0: the kernel map's curvature H (its Hessian over (K11, K12, K22))
    times the fluctuations Σ^l of the layer below (:func:`vertex_tensor`) -- the mean of a nonlinear function of a
    fluctuating kernel. Arguments as for :func:`vertex_tensor`.
    """
    return _tensor_recursion(activation, depth, width, g, sigma_w2, sigma_b2)[1]


# --------------------------------------------------------------------------------------------------------------
# Criticality and large-depth asymptotics
# --------------------------------------------------------------------------------------------------------------


class Criticality(NamedTuple):
    """A critical initialization χ_∥ = χ_⊥ = 1 at a fixed point K* of the kernel map, with its universality class.

    ``kind`` is ``"scale-invariant"`` (any K* is a fixed point at σ_b² = 0; ``fixed_point`` is the symbol K*),
    ``"K*=0"`` (the fixed point K* = 0, approached like K^l ≈ 1/(-a₁ l) with a₁ = ``a1`` < 0) or ``"half-stable"``
    (K* > 0 with K' - K* = (K - K*) + a₁(K - K*)² + ...: kernels on one side of K* flow to it like 1/l, those on
    the other side flow away; PDLT §5.3.4, e.g. GELU and SWISH). Half-stable points are numbers (SymPy Floats).
    """

    sigma_w2: sp.Expr
    sigma_b2: sp.Expr
    fixed_point: sp.Expr
    kind: str
    a1: sp.Expr | None = None


def _small_variance(expr, order):
    """⟨expr(z)⟩_K as a polynomial in K = q11 through K^order, from the Taylor series of expr at z = 0
    (⟨z^{2k}⟩ = (2k-1)!! K^k)."""
    taylor = sp.series(expr, z, 0, 2 * order + 2).removeO()
    return sp.expand(_one_variable(taylor)).series(q11, 0, order + 1).removeO()


#: K* > 0 critical points are searched for in (0, 10³] (1e-6..10³ on a log grid, then brentq).
_HALF_STABLE_SCAN = np.geomspace(1e-6, 1e3, 121)


def _k_star_zero(act):
    """The K* = 0 critical point of a smooth φ with φ(0) = 0, φ'(0) ≠ 0, or None (with the reason)."""
    f = act.expr
    f0, f1 = f.xreplace({z: 0}), sp.diff(f, z).xreplace({z: 0})
    if f0 != 0 or f1 == 0 or f.has(sp.Heaviside, sp.Max, sp.Abs, sp.sign):
        return None, "the K* = 0 class needs φ(0) = 0 and φ'(0) ≠ 0 with a smooth φ"
    sw = sp.solve(sp.Eq(sym.sigma_w2 * f1**2, 1), sym.sigma_w2)[0]
    kmap = sp.expand(sw * _small_variance(f**2, 2))  # K' at σ_b² = 0, through K²
    a1 = sp.simplify(kmap.coeff(q11, 2))
    if not a1.is_negative:
        return None, (f"at σ_w² = {sw}, σ_b² = 0 the fixed point K* = 0 repels small kernels (K' = K + {a1} K² + "
                      "...)")
    return Criticality(sw, sp.S.Zero, sp.S.Zero, "K*=0", a1), ""


def _half_stable(act):
    """The K* > 0 critical points: χ_∥ - χ_⊥ = σ_w² ⟨φφ''⟩_{K*} = 0 (Stein: ∂_K⟨φ²⟩ = ⟨φ'²⟩ + ⟨φφ''⟩) fixes K*,
    then χ_⊥ = 1 gives σ_w² = 1/⟨φ'²⟩_{K*} and the fixed point σ_b² = K* - σ_w²⟨φ²⟩_{K*}, kept when >= 0;
    a₁ = ½σ_w² ∂²_K⟨φ²⟩ = ⅛σ_w²⟨∂⁴_z φ²⟩ at K*."""
    from scipy.optimize import brentq

    f = act.expr
    if act.derivative.has(sp.DiracDelta):
        return []
    gap, phi2, dphi2 = (lambdify([q11], _one_variable(e))
                        for e in (f * sp.diff(f, z, 2), f**2, act.derivative**2))
    with np.errstate(over="ignore", invalid="ignore"):
        values = gap(_HALF_STABLE_SCAN)
        scale = np.abs(dphi2(_HALF_STABLE_SCAN))
    keep = np.nonzero(np.isfinite(values) & (np.abs(values) > 1e-12 * scale))[0]
    points = []
    for i, j in zip(keep[:-1], keep[1:]):
        if np.sign(values[i]) == np.sign(values[j]):
            continue
        with np.errstate(over="ignore", invalid="ignore"):
            k = brentq(lambda x: float(gap(x)), _HALF_STABLE_SCAN[i], _HALF_STABLE_SCAN[j], xtol=1e-14, rtol=1e-15)
            sw = 1 / float(dphi2(k))
            sb = k - sw * float(phi2(k))
            if sb < -1e-12 * k:
                continue
            a1 = sw * float(lambdify([q11], _one_variable(sp.diff(f**2, z, 4)))(k)) / 8
        points.append(Criticality(sp.Float(sw, 15), sp.Float(max(sb, 0.0), 15), sp.Float(k, 15), "half-stable",
                                  sp.Float(a1, 15)))
    return points


@lru_cache(maxsize=64)
def critical_points(activation):
    r"""Every solution of χ_∥ = χ_⊥ = 1 at a fixed point K* = σ_b² + σ_w²⟨φ²⟩_{K*}: a tuple of :class:`Criticality`,
    each with its universality class (PDLT §5.3), in the order scale-invariant, K* = 0, half-stable (by K*).

    Scale-invariant φ (⟨φ²⟩ = A₂K, ⟨φ'²⟩ = A₂): χ_∥ ≡ χ_⊥ ≡ σ_w² A₂, so σ_w² = 1/A₂, σ_b² = 0 and every K* is a fixed
    point. K* = 0: a fixed point iff σ_b² = 0 and φ(0) = 0; there χ_∥ - χ_⊥ = σ_w² φ(0) φ''(0) = 0 and
    χ_⊥ = σ_w² φ'(0)², so σ_w² = 1/φ'(0)², and the kernel flows to 0 from above only if a₁ < 0 in
    K' = K + a₁K² + O(K³) (tanh, erf, sin). K* > 0 (σ_b² >= 0 solved for, not assumed): by Stein's lemma
    χ_∥ - χ_⊥ = σ_w²⟨φφ''⟩_{K*} = 0, then σ_w² = 1/⟨φ'²⟩_{K*} and σ_b² = K* - σ_w²⟨φ²⟩_{K*} must be >= 0; these
    points are half-stable, K' - K* = (K - K*) + a₁(K - K*)² (GELU: σ_w² ≈ 1.983, σ_b² ≈ 0.173, K* ≈ 3.56; SWISH:
    σ_w² ≈ 1.988, σ_b² ≈ 0.555, K* ≈ 14.3). For odd φ with φφ'' <= 0 (tanh, erf, sin) none exists. K* > 0 points
    are searched for numerically in (0, 10³].
    """
    act = _activation(activation)
    homogeneous = _homogeneous(act) if not act.derivative.has(sp.DiracDelta) else None
    if homogeneous is not None and sp.simplify(_one_variable(act.derivative**2) - homogeneous[0]) == 0:
        # χ_∥ = σ_w² d(A₂K)/dK = σ_w² A₂ and χ_⊥ = σ_w² ⟨φ'²⟩ = σ_w² A₂ at every K
        return (Criticality(sp.S.One / homogeneous[0], sp.S.Zero, sp.Symbol("K^*", positive=True), "scale-invariant"),)
    zero, _ = _k_star_zero(act)
    return tuple(([zero] if zero is not None else []) + _half_stable(act))


def criticality(activation):
    r"""The critical point of ``activation`` (χ_∥ = χ_⊥ = 1 at a fixed point K*) when it is unique: a
    :class:`Criticality` (see :func:`critical_points` for the classes and the equations).

    Raises ValueError when there is none (e.g. softplus, sigmoid, cos: χ_∥ - χ_⊥ = σ_w²⟨φφ''⟩ never vanishes with
    σ_b² >= 0), or when there are several (then :func:`critical_points` returns them all).
    """
    act = _activation(activation)
    points = critical_points(act)
    if not points:
        _, why = _k_star_zero(act)
        raise ValueError(f"activation {act.name}: no critical point found (not scale-invariant; K* = 0: {why}; no "
                         "K* in (0, 1e3] with <φφ''> = 0 and sigma_b2 >= 0)")
    if len(points) > 1:
        raise ValueError(f"activation {act.name}: {len(points)} critical points ({points}); critical_points() "
                         "returns them all")
    return points[0]


def kurtosis_asymptotics(activation):
    r"""The first-order kurtosis κ = E[f⁴]/(3E[f²]²) - 1 at criticality for large depth L, in L and n.

    Scale-invariant φ: V^{l+1} = V^l + (A₄/A₂² - 1)K², so κ = (A₄/A₂² - 1) L/n at every depth (PDLT's
    (3A₄/A₂² - 1) with their A₄ = ⟨φ⁴⟩/3): 5L/n for ReLU, 2L/n for linear networks. K* = 0 class: with
    K' = K + a₁K², χ_∥ = 1 + 2a₁K and σ_w⁴(⟨φ⁴⟩ - ⟨φ²⟩²) = s₀K² + ..., the ansatz K ≈ c/L, V ≈ A/L balances at
    order 1/L²: c = -1/a₁, A = s₀c²/3, so κ ≈ s₀ L/(3n) = (2/3) L/n for every such φ (s₀ = 2). Raises ValueError
    for the half-stable class (not derived here).
    """
    crit = criticality(activation)
    L, n = depth_symbol, sym.n
    if crit.kind == "half-stable":
        raise ValueError(f"activation {_activation(activation).name}: the large-depth kurtosis of the half-stable "
                         "class is not derived here (only the scale-invariant and K* = 0 classes)")
    if crit.kind == "scale-invariant":
        a2, a4 = _homogeneous(_activation(activation))
        return sp.simplify(a4 / a2**2 - 1) * L / n
    f = _activation(activation).expr
    sw = crit.sigma_w2
    s0 = sp.simplify(sp.expand(sw**2 * (_small_variance(f**4, 2) - _small_variance(f**2, 2) ** 2)).coeff(q11, 2))
    c, A = sp.symbols("c A")
    a1 = crit.a1
    # V_{L+1} - V_L = s0 K² + (χ_∥² - 1) V with K = c/L, χ_∥² - 1 ≈ 4 a1 K, V = A/L: the 1/L² terms balance.
    balance = sp.expand(-A - (s0 * c**2 + 4 * a1 * c * A))
    sol = sp.solve([balance, sp.Eq(c, -1 / a1)], [A, c], dict=True)[0]
    return sp.simplify((sol[A] / L) / (n * (sol[c] / L) ** 2))


# --------------------------------------------------------------------------------------------------------------
# Dyer & Gur-Ari: the cluster-graph rule
# --------------------------------------------------------------------------------------------------------------


def cluster_exponent(tensors, contractions):
    r"""The width exponent s_C of a correlation function C of derivative tensors (Dyer & Gur-Ari 2020, Conj. 1).

    C = E[Σ_{μ...} ∂^{k_1}f(x_1) ... ∂^{k_m}f(x_m)] with ``tensors`` = m factors and ``contractions`` the summed
    derivative indices as pairs (i, j) of the factors carrying them. In the cluster graph (vertices: the factors;
    edges: the contractions), with n_e components of even and n_o of odd size, C = O(n^{s_C}),
    s_C = n_e + n_o/2 - m/2. E.g. the NTK E[∂_μf ∂_μf]: s = 0; the dNTK E[∂_μf ∂_νf ∂²_μνf f]: s = -1.
    """
    m = _validate.count(tensors, "tensors", 1)
    parent = list(range(m))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for pair in contractions:
        if len(pair) != 2 or not all(isinstance(i, (int, np.integer)) and 0 <= i < m for i in pair):
            raise ValueError(f"contractions: expected pairs of factor indices in 0..{m - 1}, got {pair!r}")
        parent[root(pair[0])] = root(pair[1])
    sizes = np.bincount([root(i) for i in range(m)])
    sizes = sizes[sizes > 0]
    n_even, n_odd = int(np.sum(sizes % 2 == 0)), int(np.sum(sizes % 2 == 1))
    return sp.Integer(n_even) + sp.Rational(n_odd, 2) - sp.Rational(m, 2)


# --------------------------------------------------------------------------------------------------------------
# theory derive kurtosis
# --------------------------------------------------------------------------------------------------------------

from .derive import Option, _depth, _number, topic  # noqa: E402  (the registry is only needed from here on)


@topic("kurtosis", "the output's E[f^4]/(3E[f^2]^2) - 1 to first order in 1/n (and exactly, for ReLU-like φ)",
       Option("activation", "relu", "activation name or spec, e.g. relu, tanh, 'leaky_relu(1/10)'"),
       Option("depth", 1, "number of nonlinearities L", _depth),
       Option("sigma_w2", sym.sigma_w2, "weight variance (a number; default: the symbol)", _number),
       Option("sigma_b2", sym.sigma_b2, "bias variance (a number; default: the symbol)", _number),
       Option("q", sym.g11, "|x|^2/d of the input (a number; default: the symbol g11)", _number),
       Option("recursion", False, "print the four-point-vertex recursion instead", None))
def _derive_kurtosis(activation, depth, sigma_w2, sigma_b2, q, recursion):
    if recursion:
        return vertex_recursion(activation)
    kappa = sp.Symbol(f"kappa^({depth})")
    first = output_kurtosis(activation, depth, sym.n, sigma_w2, sigma_b2, q).expr
    out = [sp.Eq(kappa, first + sp.Order(sym.n**-2, (sym.n, sp.oo)), evaluate=False)]
    if _homogeneous(_activation(activation)) is not None:
        out.append(sp.Eq(sp.Symbol(f"kappa_exact^({depth})"),
                         exact_kurtosis(activation, depth, sym.n, sigma_w2, sigma_b2, q), evaluate=False))
    return out
