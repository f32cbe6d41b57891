r"""abc-parameterizations (Yang & Hu 2021, Tensor Programs IV): width exponents as data, and their scaling calculus.

Convention (Yang & Hu 2021, Sec. 3). An MLP with L >= 1 hidden layers of width n and a fixed input dimension d,

    h¹ = W¹ξ,   x^l = φ(h^l),   h^{l+1} = W^{l+1} x^l,   f = W^{L+1} x^L,
    W^l = n^{-a_l} w^l,   w^l_{αβ} ~ N(0, n^{-2 b_l}),

trained by SGD, w^l ← w^l - η n^{-c_l} ∂L/∂w^l, or by Adam with the same per-layer learning rates (one common
c in Yang & Hu's SGD tables; ``c`` may be one number or one per layer). A :class:`Parameterization` is these
exponents, the optimizer and a name; a :class:`Family` builds one for any depth (``MUP(3)``, ``SP(3, c=1)``).

The scaling calculus (:func:`_calculus`). The exponent e of a vector of width n is the size n^e of its typical
coordinate. Two rules decide every exponent: a sum of n independent terms of size n^e has size n^{e + 1/2}; a
sum of n aligned (correlated) terms has size n^{e + 1}; a sum over a fixed number of terms (d inputs, the batch,
one output) keeps n^e, and a sum of several contributions takes the largest exponent. Applied to the forward pass,
back-propagation and the update equations (ΔW^l is a sum of outer products of ∂L/∂h^l with x^{l-1}, so ΔW^l x is
an aligned sum), they give the coordinate sizes of h^l at initialization and of Δh^l and Δf after each step.
φ is taken positively homogeneous (ReLU-like): x^l = φ(h^l) and Δx^l have the sizes of h^l and Δh^l. The sizes are
leading orders as n -> ∞; for an unstable parameterization the products ΔW^l Δx^{l-1} are aligned sums only once
Δh >> h (when ReLU rectifies the update), which finite widths reach late, so beyond the first step's Δh^l its
blow-up exponents describe very wide networks.

Yang & Hu's r (Def. 3.2), stability (Thm 3.3), nontriviality and the feature-learning / kernel dichotomy are the
same calculus run under the stability ansatz (every forward and backward vector keeps its Θ(1) size), as in
their inductive proof: the network is stable iff the update sizes that this ansatz predicts are bounded.
"""

from dataclasses import dataclass
from functools import cached_property
from itertools import accumulate
from typing import NamedTuple

import sympy as sp

from .derive import Option, topic

__all__ = ["Parameterization", "Family", "Sizes", "Condition", "abc", "symbolic", "family", "FAMILIES",
           "SP", "NTK", "MF", "MUP", "MUP_ADAM"]

HALF = sp.S.Half
OPTIMIZERS = ("sgd", "adam")


# --------------------------------------------------------------------------------------------------------------
# The scaling calculus
# --------------------------------------------------------------------------------------------------------------


def _independent(e):
    """A sum of n independent terms of size n^e (central limit theorem)."""
    return e + HALF


def _aligned(e):
    """A sum of n aligned terms of size n^e (law of large numbers, nonzero mean)."""
    return e + 1


def _pieces(e, lattice=sp.Max):
    """The linear pieces of a max-plus (or min-plus) expression: Max(u, v) + w -> [u + w, v + w]."""
    if isinstance(e, lattice):
        return [q for arg in e.args for q in _pieces(arg, lattice)]
    if isinstance(e, sp.Add):
        sums = [sp.S.Zero]
        for term in e.args:
            sums = [s + q for s in sums for q in _pieces(term, lattice)]
        return sums
    return [e]


def _unfold(relation):
    """A relation on a min-plus expression as linear ones: Min(u, v) >= 0 iff u >= 0 and v >= 0, and
    Min(u, v) = 0 iff both are >= 0 and one is 0."""
    pieces = _pieces(relation.lhs - relation.rhs, sp.Min)
    if isinstance(relation, sp.Eq):
        return sp.And(*(q >= 0 for q in pieces), sp.Or(*(sp.Eq(q, 0) for q in pieces)))
    return sp.And(*(relation.func(q, 0) for q in pieces))


def _largest(*es):
    """The size of a sum of several contributions: the largest exponent, as one flat Max of linear pieces."""
    return sp.Max(*(q for e in es for q in _pieces(sp.sympify(e))))


class Sizes(NamedTuple):
    """Coordinate-size exponents (a coordinate is Θ(n^e)) from the scaling calculus.

    ``h[l-1]`` is e(h^l) at initialization (l = 1..L; x^l has the same size), ``f`` is e(f) at initialization,
    ``dh[t-1][l-1]`` is e(Δh^l) = e(h^l_t - h^l_0) after t steps and ``df[t-1]`` is e(f_t - f_0). -oo means zero.
    """

    h: tuple
    f: sp.Expr
    dh: tuple
    df: tuple


def _calculus(p, steps, stable):
    r"""Coordinate sizes of ``p``'s network over ``steps`` optimizer steps, by the two rules of the module.

    With ``stable=True`` the stability ansatz holds every forward and backward vector at its Θ(1) size (h^l,
    x^l, the residual f - y, and ∂f/∂h^l at the size set by the readout W^{L+1}_t); only the updates are tracked.
    Returns the :class:`Sizes`, the forward gains of layers 1..L, the exponents of W^l_0 and of ΔW^l_steps.
    """
    L, a, b, c = p.depth, p.a, p.b, p.c
    w0 = [-(al + bl) for al, bl in zip(a, b)]  # entries of W^l at initialization
    # forward gain of layer l <= L: h^1 = W^1 ξ (d terms), h^l = W^l x^{l-1} (n independent terms)
    gain = [sp.S.Zero] * L if stable else [w0[0]] + [_independent(w) for w in w0[1:L]]
    h0 = list(accumulate(gain))
    f0 = _independent(w0[L]) + h0[-1]
    dw, dx, df = [-sp.oo] * (L + 1), [-sp.oo] * L, -sp.oo
    out_dh, out_df = [], []
    for _ in range(steps):
        x = h0 if stable else [_largest(h, d) for h, d in zip(h0, dx)]
        residual = sp.S.Zero if stable else _largest(0, f0, df)  # f_t - y with a Θ(1) target y
        # backward: g[l] is the size of ∂L/∂h^{l+1}; dx^L = (W^{L+1}_t)^T (f - y) sums over the one output
        g = [None] * L + [residual]
        back = _largest(w0[L], dw[L]) + residual
        for l in reversed(range(L)):
            g[l] = back  # ∂L/∂h = ∂L/∂x ⊙ φ'(h), φ' = Θ(1)
            if l:  # (W^l_t)^T: n independent terms of W^l_0, n aligned terms of the low-rank ΔW^l
                back = g[l] + (sp.S.Zero if stable else _largest(_independent(w0[l]), _aligned(dw[l])))
        inputs = [sp.S.Zero] + x
        for l in range(L + 1):  # ΔW^l = n^{-a_l} Δw^l: SGD Δw ∝ n^{-c_l} n^{-a_l} g ⊗ x; Adam Δw = Θ(n^{-c_l})
            step = -c[l] - 2 * a[l] + g[l] + inputs[l] if p.optimizer == "sgd" else -c[l] - a[l]
            dw[l] = _largest(dw[l], step)
        prev = dx[0] = dw[0]  # Δh^1 = ΔW^1 ξ: d terms
        for l in range(1, L):  # Δh^l = W^l_0 Δx^{l-1} + ΔW^l x^{l-1}_t
            x_in = h0[l - 1] if stable else _largest(h0[l - 1], prev)
            prev = dx[l] = _largest(prev + gain[l], _aligned(dw[l]) + x_in)
        x_in = h0[L - 1] if stable else _largest(h0[L - 1], prev)
        # Δf = W^{L+1}_0 Δx^L (aligned: Δx^L grew along W^{L+1}) + ΔW^{L+1} x^L_t (aligned)
        df = _largest(_aligned(w0[L]) + prev, _aligned(dw[L]) + x_in)
        out_dh.append(tuple(dx))
        out_df.append(df)
    return Sizes(tuple(h0), f0, tuple(out_dh), tuple(out_df)), gain, w0, dw


def _negate(e):
    """-e for a flat max-plus expression: -Max(u, v) = Min(-u, -v), the form in which Yang & Hu state r."""
    return sp.Min(*(-q for q in _pieces(e)))


def _bounded(u):
    """u <= 0 written as (constant of u) - u >= (constant of u), e.g. 1 - 2a - c <= 0 as 2a + c >= 1."""
    k = u.as_coeff_Add()[0]
    return sp.Ge(sp.expand(k - u), k)


def _vanishing_gap(u):
    """u = 0 in the same form as :func:`_bounded`."""
    k = u.as_coeff_Add()[0]
    return sp.Eq(sp.expand(k - u), k)


class Condition(NamedTuple):
    """One stability condition: its relation, the calculus exponent it constrains (``= 0`` for ``kind="zero"``,
    ``<= 0`` for ``kind="bounded"``), and the quantity of that size."""

    name: str
    relation: sp.Basic
    exponent: sp.Expr
    kind: str
    quantity: str


# --------------------------------------------------------------------------------------------------------------
# Parameterizations
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameterization:
    r"""An abc-parameterization: exponents ``a``, ``b``, ``c`` (tuples of length L + 1, SymPy numbers or symbols),
    the optimizer (``"sgd"`` or ``"adam"``) and a name. Build with :func:`abc` or a :class:`Family`.

    Derived (all SymPy): :attr:`r`, :attr:`r_layers`, :attr:`conditions`, :attr:`stable`, :attr:`nontrivial`,
    :attr:`feature_learning`, :attr:`kernel_regime`, :meth:`failures`, :meth:`sizes`, :meth:`max_lr_exponent`,
    :meth:`solve`; the symmetry :meth:`shift`; :meth:`network` for the finite-width Monte-Carlo networks.
    """

    a: tuple
    b: tuple
    c: tuple
    optimizer: str = "sgd"
    name: str = "abc"

    @property
    def depth(self):
        """The number L of hidden layers."""
        return len(self.a) - 1

    @property
    def free_symbols(self):
        return set().union(*(sp.sympify(e).free_symbols for e in self.a + self.b + self.c))

    def __repr__(self):
        def row(v):
            return "(" + ", ".join(str(e) for e in v) + ")"

        c = self.c[0] if len(set(self.c)) == 1 else row(self.c)
        return f"{self.name}(depth={self.depth}, a={row(self.a)}, b={row(self.b)}, c={c}, {self.optimizer})"

    # ---- the symmetry ----------------------------------------------------------------------------------------

    def shift(self, theta):
        r"""The same network and training: a_l + θ_l, b_l - θ_l, c_l - 2θ_l (SGD) or c_l - θ_l (Adam).

        W = n^{-a-θ} (n^{θ} w) and the rescaled w' = n^θ w has gradient n^{-θ} ∂L/∂w, so its SGD step needs the
        rate scaled by n^{2θ} (Adam's step does not see the gradient's scale: n^θ). ``theta``: one value or one per
        layer.
        """
        theta = _per_layer(theta, "theta", self.depth + 1)
        k = 2 if self.optimizer == "sgd" else 1
        a = tuple(x + t for x, t in zip(self.a, theta))
        b = tuple(x - t for x, t in zip(self.b, theta))
        c = tuple(x - k * t for x, t in zip(self.c, theta))
        return Parameterization(a, b, c, self.optimizer, f"{self.name} shifted")

    # ---- the scaling calculus --------------------------------------------------------------------------------

    def sizes(self, steps=2, assume_stable=False):
        """The coordinate-size exponents of h^l, f at initialization and of Δh^l, Δf after 1..``steps`` steps
        (:class:`Sizes`), by the scaling calculus: exact leading orders for numeric exponents, or, with
        ``assume_stable=True`` (required when symbols are free), under the stability ansatz."""
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps: expected an integer >= 1, got {steps!r}")
        if self.free_symbols and not assume_stable:
            raise ValueError("sizes: the exact calculus needs numeric exponents (free symbols "
                             f"{sorted(map(str, self.free_symbols))}); use assume_stable=True")
        return _calculus(self, steps, stable=assume_stable)[0]

    @cached_property
    def _init(self):
        """(sizes at initialization, forward gains, exponents of W^l_0): the exact calculus before any step."""
        sizes, gain, w0, _ = _calculus(self, 0, stable=False)
        return sizes, gain, w0

    @cached_property
    def _ansatz(self):
        """(sizes, exponents of ΔW^l) after two steps under the stability ansatz: the readout has moved once."""
        sizes, _, _, dw = _calculus(self, 2, stable=True)
        return sizes, dw

    @property
    def r_layers(self):
        r"""(r_1, ..., r_L): layer l's own update ΔW^l x^{l-1} has coordinates Θ(n^{-r_l}) once the readout has moved
        (stability ansatz). SGD: r_l = min(a_{L+1}+b_{L+1}, 2a_{L+1}+c_{L+1}) + c_l - 1 + 2a_l + 𝕀(l=1)."""
        _, dw = self._ansatz
        return tuple(_negate(dw[0] if l == 0 else _aligned(dw[l])) for l in range(self.depth))

    @property
    def r(self):
        r"""Yang & Hu's r (Def. 3.2): Δx^L_t = Θ(n^{-r}), the smallest r_l (:attr:`r_layers`)."""
        sizes, _ = self._ansatz
        return _negate(sizes.dh[-1][-1])

    @cached_property
    def _conditions(self):
        L = self.depth
        full, gain, w0 = self._init
        sizes, dw = self._ansatz
        out = []
        for l in range(L):  # layer l + 1 keeps Θ(1) coordinates at initialization: its gain is 0
            what = f"h^{l + 1}/h^{l} at initialization" if l else "h^1 at initialization"
            relation = sp.Eq(sp.expand(-w0[l]), gain[l] - w0[l])
            out.append(Condition(f"init h^{l + 1}", relation, gain[l], "zero", what))
        f_gain = full.f - full.h[-1]
        out.append(Condition("init f", sp.Ge(sp.expand(-w0[L]), f_gain - w0[L]), f_gain, "bounded",
                             "f/x^L at initialization"))
        features = sizes.dh[-1][-1]
        out.append(Condition("r", sp.Ge(self.r, 0), features, "bounded", "Delta x^L (the features' update)"))
        readout = _aligned(dw[L])
        out.append(Condition("readout update", _bounded(readout), readout, "bounded", "Delta W^{L+1} x^L"))
        out.append(Condition("feature update of f", _bounded(sp.expand(_aligned(w0[L]) - self.r)),
                             _largest(_aligned(w0[L]) + features), "bounded", "W^{L+1}_0 Delta x^L"))
        return out

    @property
    def conditions(self):
        r"""Stability (Yang & Hu Thm 3.3) as {name: SymPy relation}; for SGD with one c they read a_1+b_1 = 0,
        a_l+b_l = 1/2 (2 <= l <= L), a_{L+1}+b_{L+1} >= 1/2, r >= 0, 2a_{L+1}+c >= 1, a_{L+1}+b_{L+1}+r >= 1."""
        return {c.name: c.relation for c in self._conditions}

    @property
    def stable(self):
        """True/False, or the SymPy conjunction of :attr:`conditions` when symbols are free."""
        return sp.And(*self.conditions.values())

    @property
    def nontrivial(self):
        """Stable with Δf = Θ(1): a_{L+1}+b_{L+1}+r = 1 or 2a_{L+1}+c = 1 (SGD), the two terms of Δf."""
        _, _, w0 = self._init
        _, dw = self._ansatz
        terms = (sp.expand(_aligned(w0[-1]) - self.r), _aligned(dw[-1]))
        return sp.And(self.stable, sp.Or(*(_vanishing_gap(u) for u in terms)))

    @property
    def feature_learning(self):
        """Stable with Δx^L = Θ(1): r = 0."""
        return sp.And(self.stable, sp.Eq(self.r, 0))

    @property
    def kernel_regime(self):
        """Stable, nontrivial and r > 0: the features stay put while f moves (the dynamical dichotomy, Thm 3.4)."""
        return sp.And(self.nontrivial, sp.Gt(self.r, 0))

    def failures(self):
        """Each stability condition that fails, as a sentence saying which quantity blows up or vanishes, and how."""
        out = []
        for c in self._conditions:
            if c.relation is sp.false:
                verb = "vanishes" if c.kind == "zero" and c.exponent < 0 else "grows"
                out.append(f"{c.name} fails: {c.quantity} {verb} like n^({c.exponent})")
        return out

    def max_lr_exponent(self):
        r"""The largest ε such that learning rates η n^{ε - c_l} (every layer's rate times n^ε) keep the network
        stable: 0 if p's rates are the largest stable ones, -1 for SP with c = 0 (they must shrink like 1/n);
        -oo if no rate is stable (an unstable initialization). Needs numeric a, b, c.

        Every constrained exponent is a maximum of pieces α + βε, linear in ε: each piece bounds ε.
        """
        if self.free_symbols:
            raise ValueError(f"max_lr_exponent: needs numeric exponents, got free symbols {self.free_symbols}")
        eps = sp.Dummy("epsilon", real=True)
        moved = Parameterization(self.a, self.b, tuple(c - eps for c in self.c), self.optimizer)
        low, high = -sp.oo, sp.oo
        for cond in moved._conditions:
            if cond.kind == "zero":
                if cond.relation is sp.false:
                    return -sp.oo
                continue
            for piece in _pieces(cond.exponent):
                alpha, beta = piece.subs(eps, 0), sp.diff(piece, eps)
                if beta > 0:
                    high = sp.Min(high, -alpha / beta)
                elif beta < 0:
                    low = sp.Max(low, -alpha / beta)
                elif alpha > 0:
                    return -sp.oo
        return high if low <= high else -sp.oo

    def solve(self, symbol, regime="stable"):
        """The set of values of the free ``symbol`` for which p is ``regime``: stable, nontrivial,
        feature_learning or kernel_regime (the other symbols must be numbers). E.g. SP's learning-rate exponent:
        ``abc(SP(2).a, SP(2).b, c=c).solve(c, "nontrivial")`` is {1}."""
        if regime not in ("stable", "nontrivial", "feature_learning", "kernel_regime"):
            raise ValueError(f"regime: expected stable, nontrivial, feature_learning or kernel_regime, got {regime!r}")
        condition = getattr(self, regime)
        if condition in (sp.true, sp.false):
            return sp.S.Reals if condition else sp.S.EmptySet
        if condition.free_symbols != {symbol}:
            raise ValueError(f"symbol: the {regime} condition has free symbols {condition.free_symbols}; give numbers "
                             f"for all but {symbol}")
        linear = condition.replace(lambda x: isinstance(x, (sp.Ge, sp.Gt, sp.Eq)) and x.has(sp.Min), _unfold)
        return linear.as_set()

    # ---- display ---------------------------------------------------------------------------------------------

    def summary(self):
        """The parameterization and what the calculus derives from it, as a list of ``sympy.Eq``: e(x) is the
        exponent of x's coordinate size, as a row over the layers l = 1..L (Δ(h_t): Δh^l after t steps)."""
        def row(v):
            return sp.Matrix([list(v)])

        def eq(lhs, rhs):
            return sp.Eq(sp.Symbol(lhs) if isinstance(lhs, str) else lhs, rhs, evaluate=False)

        stable, nontrivial = sp.Symbol("stable"), sp.Symbol("nontrivial")
        c = row(self.c) if len(set(self.c)) > 1 else self.c[0]
        eqs = [eq("a", row(self.a)), eq("b", row(self.b)), eq("c", c), eq("r", self.r), eq(stable, self.stable)]
        if self.free_symbols:  # in terms of r and of stability, as Yang & Hu state them
            r = {self.r: sp.Symbol("r")}
            gap = self.nontrivial.args[-1] if isinstance(self.nontrivial, sp.And) else self.nontrivial
            eqs[-1] = eq(stable, self.stable.xreplace(r))
            return eqs + [eq(nontrivial, sp.And(stable, gap.xreplace(r))),
                          eq("feature learning", sp.And(stable, sp.Eq(sp.Symbol("r"), 0))),
                          eq("kernel regime", sp.And(nontrivial, sp.Gt(sp.Symbol("r"), 0)))]
        e, delta = sp.Function("e"), sp.Function("Delta")
        s = self.sizes(2)
        eqs += [eq(nontrivial, self.nontrivial), eq("feature learning", self.feature_learning),
                eq("kernel regime", self.kernel_regime), eq(e(sp.Symbol("h_0")), row(s.h)),
                eq(e(sp.Symbol("f_0")), s.f)]
        for t in (1, 2):
            eqs += [eq(e(delta(sp.Symbol(f"h_{t}"))), row(s.dh[t - 1])),
                    eq(e(delta(sp.Symbol(f"f_{t}"))), s.df[t - 1])]
        return eqs + [eq(sp.Symbol("epsilon_max"), self.max_lr_exponent())]

    def _repr_latex_(self):
        from . import latex

        return f"$\\displaystyle {latex.latex(self.summary())}$"

    # ---- finite networks -------------------------------------------------------------------------------------

    def network(self, d, width, activation="relu", sigma_w2=2.0):
        """``(mlp, rates)``: the width-``width`` :class:`theory.montecarlo.MLP` of this parameterization and its
        per-layer learning-rate factors n^{-c_l}: multipliers σ_l n^{-a_l} (σ_1 = σ_w/√d: Yang & Hu's fixed input
        dimension enters as a constant; σ_l = σ_w for l >= 2), init_stds n^{-b_l}, no biases
        (:mod:`theory.montecarlo.coordinate_check`)."""
        from .montecarlo.coordinate_check import abc_network

        if self.free_symbols:
            raise ValueError(f"network: needs numeric exponents, got free symbols {self.free_symbols}")
        return abc_network(*([float(e) for e in v] for v in (self.a, self.b, self.c)), d=d, width=width,
                           activation=activation, sigma_w2=sigma_w2)


def _exponent(value, name):
    if isinstance(value, bool):
        raise TypeError(f"{name}: expected a real number or SymPy expression, got {value!r}")
    if isinstance(value, float):
        value = sp.nsimplify(value, rational=True)
    try:
        e = sp.sympify(value, strict=True)
    except (sp.SympifyError, TypeError):
        raise TypeError(f"{name}: expected a real number or SymPy expression, got {value!r}") from None
    if not isinstance(e, sp.Expr) or e.is_real is False or e.has(sp.oo, -sp.oo, sp.zoo, sp.nan):
        raise ValueError(f"{name}: expected a finite real exponent, got {value!r}")
    return e


def _per_layer(values, name, count):
    if isinstance(values, (list, tuple)):
        if len(values) != count:
            raise ValueError(f"{name}: expected one value or {count} (one per layer l = 1..L+1), got {len(values)}")
        return tuple(_exponent(v, f"{name}[{i}]") for i, v in enumerate(values))
    return (_exponent(values, name),) * count


def abc(a, b, c, optimizer="sgd", name="abc"):
    r"""An abc-parameterization: ``a``, ``b`` of length L + 1 >= 2 (layers 1..L+1), ``c`` one value or L + 1 values.

    Entries are numbers (floats become exact rationals) or SymPy expressions, e.g. symbols to solve for;
    ``optimizer`` is ``"sgd"`` or ``"adam"``. See the module for the convention.
    """
    if not isinstance(a, (list, tuple)) or len(a) < 2:
        raise ValueError(f"a: expected a list of L + 1 >= 2 exponents (layers 1..L+1), got {a!r}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer: expected one of {', '.join(OPTIMIZERS)}, got {optimizer!r}")
    count = len(a)
    return Parameterization(_per_layer(list(a), "a", count), _per_layer(b, "b", count), _per_layer(c, "c", count),
                            optimizer, str(name))


def symbolic(depth, optimizer="sgd", per_layer_c=None):
    """The generic parameterization of depth L with free symbols a_l, b_l and c (SGD) or c_l (Adam, or
    ``per_layer_c=True``)."""
    depth = _depth(depth)
    per_layer_c = optimizer == "adam" if per_layer_c is None else per_layer_c
    layers = range(1, depth + 2)
    a = [sp.Symbol(f"a_{l}", real=True) for l in layers]
    b = [sp.Symbol(f"b_{l}", real=True) for l in layers]
    c = [sp.Symbol(f"c_{l}", real=True) for l in layers] if per_layer_c else sp.Symbol("c", real=True)
    return abc(a, b, c, optimizer, "abc")


def _depth(depth):
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth: expected an integer L >= 1 (hidden layers), got {depth!r}")
    return depth


# --------------------------------------------------------------------------------------------------------------
# Named families: one entry each
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """A named parameterization for every depth: ``a``, ``b``, ``c`` are constants or functions (l, L) -> exponent
    of layer l = 1..L+1. Call it with the depth: ``MUP(3)``; ``c=`` overrides the learning-rate exponent
    (``SP(3, c=1)``)."""

    name: str
    description: str
    a: object
    b: object
    c: object
    optimizer: str = "sgd"
    depths: tuple | None = None  # the allowed depths (None: any L >= 1)

    def __call__(self, depth, c=None):
        depth = _depth(depth)
        if self.depths is not None and depth not in self.depths:
            raise ValueError(f"depth: {self.name} is defined for L in {self.depths}, got {depth}")

        def values(rule):
            return [rule(l, depth) if callable(rule) else rule for l in range(1, depth + 2)]

        return abc(values(self.a), values(self.b), values(self.c) if c is None else c, self.optimizer, self.name)

    def __repr__(self):
        return f"Family({self.name!r}: {self.description})"


def _first_hidden_last(first, hidden, last):
    return lambda l, L: first if l == 1 else last if l == L + 1 else hidden


FAMILIES: dict[str, Family] = {
    "sp": Family("SP", "standard parameterization: w ~ N(0, 1/fan_in), no multipliers, learning rate η (c = 0; "
                 "Yang & Hu's Table 1 uses c = 1)", 0, _first_hidden_last(0, HALF, HALF), 0),
    "ntk": Family("NTK", "NTK parameterization: multipliers 1/√fan_in, w ~ N(0, 1)",
                  _first_hidden_last(0, HALF, HALF), 0, 0),
    "mf": Family("MF", "mean-field parameterization of a one-hidden-layer network: f = (1/n) Σ w² φ(w¹ξ)",
                 _first_hidden_last(0, None, 1), 0, -1, depths=(1,)),
    "mup": Family("muP", "maximal-update parameterization for SGD (Yang & Hu 2021, Table 1)",
                  _first_hidden_last(-HALF, 0, HALF), HALF, 0),
    "mup_adam": Family("muP-Adam", "maximal-update parameterization for Adam (Yang et al. 2022, Table 3): no "
                       "multipliers, readout variance 1/n², rates η for the input layer and η/n elsewhere",
                       0, _first_hidden_last(0, HALF, 1), _first_hidden_last(0, 1, 1), optimizer="adam"),
}

SP, NTK, MF, MUP, MUP_ADAM = (FAMILIES[k] for k in ("sp", "ntk", "mf", "mup", "mup_adam"))


def family(name):
    """The named :class:`Family` (``sp``, ``ntk``, ``mf``, ``mup``, ``mup_adam``)."""
    key = str(name).lower().replace("-", "_")
    if key not in FAMILIES:
        raise ValueError(f"parameterization: expected one of {', '.join(FAMILIES)} (or abc), got {name!r}")
    return FAMILIES[key]


# --------------------------------------------------------------------------------------------------------------
# theory derive abc
# --------------------------------------------------------------------------------------------------------------


def _c_option(text):
    try:
        return sp.Rational(text)
    except (TypeError, ValueError):
        raise ValueError(f"expected a number, got {text!r}") from None


@topic("abc", "an abc-parameterization: its exponents, r, stability, regime, and the derived coordinate sizes "
       "(abc: free symbols)",
       Option("param", "abc", "abc (free symbols), " + ", ".join(FAMILIES)),
       Option("depth", 2, "number of hidden layers L", int),
       Option("c", None, "override the learning-rate exponent c", _c_option))
def _derive_abc(param, depth, c):
    p = symbolic(depth) if param == "abc" else family(param)(depth, c=c)
    if param == "abc" and c is not None:
        p = abc(p.a, p.b, c)
    return p.summary()
