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

from functools import cached_property, lru_cache
from typing import NamedTuple

import numpy as np
import sympy as sp

from . import _validate
from .activations import activation as _activation
from .gaussian import gaussian_expectation
from .numeric import lambdify
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
        self.sigma_w2, self.sigma_b2 = sp.sympify(sigma_w2), sp.sympify(sigma_b2)
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
        """K^L(x, x') in terms of g11, g12, g22 (the input Gram entries over d)."""
        return self._composed[1]

    @property
    def ntk(self):
        """Θ^L(x, x') in terms of g11, g12, g22."""
        return self._composed[3]

    @cached_property
    def equations(self):
        """The recursion as a list of ``sympy.Eq``, one block per layer, in per-layer symbols K^{(l)}_{ab}, Θ^{(l)}."""
        def syms(l):
            return (sp.Symbol(f"K^{{({l})}}_{{11}}", positive=True), sp.Symbol(f"K^{{({l})}}_{{12}}", real=True),
                    sp.Symbol(f"K^{{({l})}}_{{22}}", positive=True), sp.Symbol(f"\\Theta^{{({l})}}_{{12}}", real=True))

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
        rows = [rf"{sp.latex(e.lhs)} &= {sp.latex(e.rhs)}" for e in self.equations]
        return "\\begin{aligned}\n" + " \\\\\n".join(rows) + "\n\\end{aligned}"

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


@lru_cache(maxsize=128)
def _layer_functions(act, with_ntk):
    lay = layer(act)
    args, diag_args = (q11, q12, q22, sym.sigma_w2, sym.sigma_b2), (q11, sym.sigma_w2, sym.sigma_b2)
    f_kdot = lambdify(args, lay.kdot) if with_ntk else None
    return lambdify(args, lay.nngp), lambdify(diag_args, lay.nngp_diag), f_kdot


def _recursion(X1, X2, activation, depth, sigma_w2, sigma_b2, with_ntk):
    act = _activation(activation)
    X1 = _validate.inputs(X1, "X1")
    X2 = X1 if X2 is None else _validate.inputs(X2, "X2", d=X1.shape[1])
    depth = _validate.count(depth, "depth")
    sw = _validate.variance(sigma_w2, "sigma_w2")
    sb = _validate.variance(sigma_b2, "sigma_b2")
    if with_ntk and act.derivative.has(sp.DiracDelta):
        raise ValueError(f"activation {act.name}: its derivative is a Dirac delta, so the NTK is infinite for "
                         "colinear inputs; use theory.nngp for the NNGP alone")
    if act.parameters:
        raise ValueError(f"activation {act.name}: give numbers for its parameters to evaluate kernels")
    f_nngp, f_nngp_diag, f_kdot = _layer_functions(act, with_ntk)
    d = X1.shape[1]
    k11 = np.einsum("ij,ij->i", X1, X1) / d
    k22 = k11 if X2 is X1 else np.einsum("ij,ij->i", X2, X2) / d
    k12 = X1 @ X2.T / d
    if X2 is X1:
        np.fill_diagonal(k12, k11)  # x·x computed once, so the diagonal is exactly at ρ = 1
    k11, k12, k22 = (sb + sw * k for k in (k11, k12, k22))
    theta = k12.copy() if with_ntk else None
    with np.errstate(divide="ignore", invalid="ignore"):
        for _ in range(depth):
            a, b = k11[:, None], k22[None, :]
            if with_ntk:
                theta *= f_kdot(a, k12, b, sw, sb)
            k12 = f_nngp(a, k12, b, sw, sb)
            if with_ntk:
                theta += k12
            k11 = f_nngp_diag(k11, sw, sb)
            k22 = k11 if X2 is X1 else f_nngp_diag(k22, sw, sb)
    return Kernel(np.array(k12, dtype=np.float64), theta)


def nngp(X1, X2=None, activation="relu", depth=1, sigma_w2=1.0, sigma_b2=0.0):
    """The N×M NNGP matrix K^L(X1, X2) (float64); see :func:`nngp_ntk` for the arguments."""
    return _recursion(X1, X2, activation, depth, sigma_w2, sigma_b2, with_ntk=False).nngp


def nngp_ntk(X1, X2=None, activation="relu", depth=1, sigma_w2=1.0, sigma_b2=0.0):
    """The NNGP and NTK matrices K^L(X1, X2), Θ^L(X1, X2) of a depth-``depth`` network, as float64 arrays.

    Parameters
    ----------
    X1, X2 : arrays of shape (N, d) and (M, d); X2 defaults to X1.
    activation : a registered name, a SymPy expression in ``theory.symbols.z`` or an Activation.
    depth : the number L >= 0 of nonlinearities.
    sigma_w2, sigma_b2 : weight and bias variances (>= 0).

    The numbers come from lambdifying the derived one-layer map (:func:`layer`) and looping over layers.
    Zero-norm, identical and antipodal inputs give finite values; for X2 = None the diagonal is computed at
    exactly ρ = 1.
    """
    return _recursion(X1, X2, activation, depth, sigma_w2, sigma_b2, with_ntk=True)
