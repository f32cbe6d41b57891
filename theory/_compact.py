r"""Deep compositions that print compactly.

The depth-L kernel K^L(x, x') is a composition of L layer maps: a DAG of size O(L) in SymPy, but a tree (what
str, pretty printing and LaTeX traverse) of size exponential in L -- 127,000 characters at depth 5, a
RecursionError at depth 50. :func:`compact` wraps such an expression in an unevaluated function application
``K^{(L)}_{12}(g_11, g_12, g_22, σ_w², σ_b²)`` that prints as that, whose ``doit()`` is the full expression, and
which differentiates, substitutes (through its arguments: every free symbol of the expression), evaluates (``evalf``)
and lambdifies (with common subexpressions, linear in the depth) like it. The layer-by-layer definition is
``theory.kernels(...).equations``.
"""

import sympy as sp

__all__ = ["Composed", "compact", "kernel", "EXPANDED_DEPTH"]

#: Kernels up to this depth are shown expanded (a few hundred characters for relu), deeper ones compactly.
EXPANDED_DEPTH = 2


class Composed(sp.Function):
    """An expression shown by name: subclasses carry ``build`` (a function returning the expression, called once,
    on first use: printing never builds it), ``symbols`` (its free symbols, in the order of the arguments) and
    ``label`` (pretty) / ``latex_label``."""

    build = None
    symbols = ()
    label = latex_label = ""

    @classmethod
    def expanded(cls):
        """The full expression (built on first use; a DAG of size O(L), a tree exponential in L)."""
        if "_expanded" not in cls.__dict__:
            cls._expanded = cls.build()
        return cls._expanded

    def doit(self, **hints):
        return self.expanded().xreplace(dict(zip(self.symbols, self.args)))

    def fdiff(self, argindex=1):
        if not 1 <= argindex <= len(self.symbols):
            raise sp.ArgumentIndexError(self, argindex)
        return sp.diff(self.expanded(), self.symbols[argindex - 1]).xreplace(dict(zip(self.symbols, self.args)))

    def _eval_evalf(self, prec):
        if all(a.is_number for a in self.args):
            return self.doit()._eval_evalf(prec)

    def _numeric_helper(self):
        from .numeric import lambdify

        return type(self), lambdify(self.symbols, self.expanded()), self.args

    def _latex(self, printer):
        return rf"{self.latex_label}\left({', '.join(printer._print(a) for a in self.args)}\right)"

    def _pretty(self, printer):
        return printer._print_Function(self, func_name=self.label)


def compact(build, symbols, name, label, latex_label):
    """The expression ``build()`` (free symbols ``symbols``) as a :class:`Composed` application named ``name`` (str),
    ``label`` (pretty), ``latex_label``; ``build`` runs only when the expression itself is needed."""
    symbols = tuple(sorted(symbols, key=sp.default_sort_key))
    cls = type(name, (Composed,), {"build": staticmethod(build), "symbols": symbols, "label": label,
                                   "latex_label": latex_label, "nargs": len(symbols)})
    return cls(*symbols)


_SUPERSCRIPT = str.maketrans("0123456789()", "⁰¹²³⁴⁵⁶⁷⁸⁹⁽⁾")


_KERNELS = {}


def kernel(key, build, symbols, kind, depth):
    """The depth-``depth`` kernel ``build()`` (``kind`` "K" or "Theta", free symbols ``symbols``): the expression
    itself up to :data:`EXPANDED_DEPTH`, else compact as K^(L)_12(...) / Θ^(L)_12(...), one class per hashable
    ``key`` (the recursion's parameters, so that k.nngp == k.nngp without comparing expression trees, which SymPy
    walks as trees: exponential in the depth)."""
    if depth <= EXPANDED_DEPTH:
        return build()
    if (key, kind) not in _KERNELS:
        if len(_KERNELS) >= 256:  # bounded, oldest first
            del _KERNELS[next(iter(_KERNELS))]
        pretty = ("K" if kind == "K" else "Θ") + f"({depth})".translate(_SUPERSCRIPT) + "₁₂"
        latex = ("K" if kind == "K" else r"\Theta") + f"^{{({depth})}}_{{12}}"
        _KERNELS[key, kind] = compact(build, symbols, f"{kind}_12^({depth})", pretty, latex)
    return _KERNELS[key, kind]
