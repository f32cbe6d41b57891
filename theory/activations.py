"""Activation functions as SymPy expressions in one variable, registered by name.

An :class:`Activation` is a SymPy expression ``expr`` in :data:`theory.symbols.z`; its derivative is SymPy's
(Heaviside and Dirac deltas where needed). Everything else -- Gaussian expectations, kernels, the numeric
functions used by the Monte-Carlo networks -- is derived from ``expr``.

A new activation is one entry in ``_REGISTRY``: a name and a function returning its expression.
"""

import re
from functools import cached_property

import sympy as sp

from .numeric import lambdify
from .symbols import z

__all__ = ["Activation", "activation", "names"]


def _vanishing_deltas_removed(expr):
    """Use f(z) δ(cz + e) = f(-e/c) δ(cz + e): e.g. the z·δ(z) left by differentiating z·H(z) vanishes."""
    out = []
    for term in sp.Add.make_args(sp.expand(expr)):
        deltas = [f for f in sp.Mul.make_args(term) if isinstance(f, sp.DiracDelta) and len(f.args) == 1]
        root = sp.solve(deltas[0].args[0], z) if len(deltas) == 1 and deltas[0].args[0].is_polynomial(z) else []
        if len(root) == 1 and sp.degree(deltas[0].args[0], z) == 1:
            rest = sp.Mul(*[f for f in sp.Mul.make_args(term) if f is not deltas[0]])
            term = rest.subs(z, root[0]) * deltas[0]
        out.append(term)
    return sp.Add(*out)


class Activation:
    """An activation function φ(z), given as a SymPy expression in ``theory.symbols.z``.

    >>> from theory.symbols import z
    >>> import sympy
    >>> Activation(sympy.exp(-z**2 / 2)).derivative
    -z*exp(-z**2/2)

    Symbols other than ``z`` are parameters; they must be numbers before the activation is evaluated numerically.
    """

    def __init__(self, expr, name=None):
        if isinstance(expr, Activation):
            expr, name = expr.expr, name or expr.name
        try:
            expr = sp.sympify(expr)
        except (sp.SympifyError, TypeError) as err:
            raise TypeError(f"activation: expected a SymPy expression in z, got {expr!r}") from err
        if not isinstance(expr, sp.Expr):
            raise TypeError(f"activation: expected a SymPy expression in z, got {expr!r}")
        self.expr = expr
        self.name = name or str(expr)

    @cached_property
    def parameters(self):
        """Free symbols other than ``z`` (e.g. the slope of a leaky ReLU given as a symbol)."""
        return self.expr.free_symbols - {z}

    @cached_property
    def derivative(self):
        """φ'(z), with Dirac deltas where φ jumps."""
        return _vanishing_deltas_removed(sp.diff(self.expr, z))

    @cached_property
    def numpy(self):
        """``(φ, φ')`` as vectorized float64 NumPy functions, for finite networks.

        φ' is the derivative almost everywhere: Dirac deltas are dropped, as back-propagation through a finite
        network does.
        """
        if self.parameters:
            names_ = ", ".join(sorted(map(str, self.parameters)))
            raise ValueError(f"activation {self.name}: give numbers for its parameters ({names_}) to evaluate it")
        ae_derivative = self.derivative.replace(lambda e: isinstance(e, sp.DiracDelta), lambda e: sp.S.Zero)
        return lambdify([z], self.expr), lambdify([z], ae_derivative)

    def latex(self):
        return rf"\phi(z) = {sp.latex(self.expr)}"

    def _repr_latex_(self):
        return f"${self.latex()}$"

    def __repr__(self):
        return f"Activation({self.name})"

    def __eq__(self, other):
        return isinstance(other, Activation) and self.expr == other.expr

    def __hash__(self):
        return hash(self.expr)


def _polynomial(*coeffs):
    if not coeffs:
        raise ValueError("activation polynomial: give at least one coefficient (c0, c1, ... of 1, z, ...)")
    return sum(sp.sympify(c) * z**i for i, c in enumerate(coeffs))


def _monomial(k):
    k = sp.sympify(k)
    if not (k.is_integer and k.is_nonnegative):
        raise ValueError(f"activation monomial: the degree k must be a non-negative integer, got {k}")
    return z**k


_REGISTRY = {
    "relu": lambda: sp.Max(0, z),
    "leaky_relu": lambda alpha=sp.Rational(1, 100): alpha * z + (1 - sp.sympify(alpha)) * sp.Max(0, z),
    "abs": lambda: sp.Abs(z),
    "step": lambda: sp.Heaviside(z),
    "sign": lambda: sp.sign(z),
    "identity": lambda: z,
    "erf": lambda: sp.erf(z),
    "tanh": lambda: sp.tanh(z),
    "sigmoid": lambda: 1 / (1 + sp.exp(-z)),
    "gelu": lambda: z * (1 + sp.erf(z / sp.sqrt(2))) / 2,
    "swish": lambda: z / (1 + sp.exp(-z)),
    "softplus": lambda: sp.log(1 + sp.exp(z)),
    "sin": lambda: sp.sin(z),
    "cos": lambda: sp.cos(z),
    "monomial": _monomial,
    "polynomial": _polynomial,
}


def names():
    """The registered activation names."""
    return sorted(_REGISTRY)


def _number(text):
    try:
        return sp.Rational(text)
    except (TypeError, ValueError):
        return sp.sympify(text)


def activation(spec, *params):
    """Resolve ``spec`` into an :class:`Activation`.

    ``spec`` is an :class:`Activation`, a SymPy expression in ``z``, a registered name (``"relu"``), or a name
    with parameters, either as extra arguments (``activation("leaky_relu", 0.1)``) or in the string
    (``"leaky_relu(1/10)"``, ``"polynomial(0, 1, 1/2)"``).
    """
    if isinstance(spec, Activation):
        if params:
            raise TypeError(f"activation {spec.name}: parameters are given only with a registered name")
        return spec
    if isinstance(spec, sp.Basic):
        return Activation(spec)
    if not isinstance(spec, str):
        raise TypeError(f"activation: expected a name, a SymPy expression or an Activation, got {spec!r}")
    match = re.fullmatch(r"\s*([A-Za-z_]\w*)\s*(?:\((.*)\))?\s*", spec)
    if match is None or match.group(1) not in _REGISTRY:
        raise ValueError(f"activation: unknown activation {spec!r}; registered names are {', '.join(names())}")
    name, inline = match.groups()
    if inline is not None:
        if params:
            raise TypeError(f"activation {name}: give parameters either in the string or as arguments, not both")
        params = tuple(_number(p) for p in inline.split(",") if p.strip())
    try:
        expr = _REGISTRY[name](*params)
    except TypeError as err:
        raise TypeError(f"activation {name}: wrong parameters {params!r} ({err})") from None
    label = name if not params else f"{name}({', '.join(str(sp.sympify(p)) for p in params)})"
    return Activation(expr, name=label)
