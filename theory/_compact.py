r"""Deep compositions that print compactly.

The depth-L kernel K^L(x, x') is a composition of L layer maps: a DAG of size O(L) in SymPy, but a tree (what
str, pretty printing and LaTeX traverse) of size exponential in L -- 127,000 characters at depth 5, a
RecursionError at depth 50. :func:`compact` wraps such an expression in an unevaluated function application
``K^{(L)}_{12}(g_11, g_12, g_22, σ_w², σ_b²)`` that prints as that, whose ``doit()`` is the full expression, and
which differentiates, substitutes (through its arguments: every free symbol of the expression), evaluates (``evalf``)
and lambdifies (with common subexpressions, linear in the depth) like it. The layer-by-layer definition is
``theory.kernels(...).equations``.
"""

from functools import lru_cache

import sympy as sp

__all__ = ["Composed", "compact", "kernel", "EXPANDED_DEPTH"]

#: Kernels up to this depth are shown expanded (a few hundred characters for relu), deeper ones compactly.
EXPANDED_DEPTH = 2


class Composed(sp.Function):
    """An expression shown by name: subclasses carry ``expanded`` (the expression), ``symbols`` (its free symbols,
    in the order of the arguments) and ``label`` (pretty) / ``latex_label``."""

    expanded = None
    symbols = ()
    label = latex_label = ""

    def doit(self, **hints):
        return self.expanded.xreplace(dict(zip(self.symbols, self.args)))

    def fdiff(self, argindex=1):
        if not 1 <= argindex <= len(self.symbols):
            raise sp.ArgumentIndexError(self, argindex)
        return sp.diff(self.expanded, self.symbols[argindex - 1]).xreplace(dict(zip(self.symbols, self.args)))

    def _eval_evalf(self, prec):
        if all(a.is_number for a in self.args):
            return self.doit()._eval_evalf(prec)

    def _numeric_helper(self):
        from .numeric import lambdify

        return type(self), lambdify(self.symbols, self.expanded), self.args

    def _latex(self, printer):
        return rf"{self.latex_label}\left({', '.join(printer._print(a) for a in self.args)}\right)"

    def _pretty(self, printer):
        return printer._print_Function(self, func_name=self.label)


def _free_symbols(expr):
    """``expr.free_symbols``, visiting each shared subexpression once (SymPy's own walks the tree)."""
    seen, found, stack = set(), set(), [expr]
    while stack:
        e = stack.pop()
        if e in seen:
            continue
        seen.add(e)
        if isinstance(e, sp.Symbol):
            found.add(e)
        stack.extend(e.args)
    return found


def compact(expr, name, label, latex_label):
    """``expr`` as a :class:`Composed` application named ``name`` (str), ``label`` (pretty), ``latex_label``."""
    symbols = tuple(sorted(_free_symbols(expr), key=sp.default_sort_key))
    cls = type(name, (Composed,), {"expanded": expr, "symbols": symbols, "label": label, "latex_label": latex_label,
                                   "nargs": len(symbols)})
    return cls(*symbols)


_SUPERSCRIPT = str.maketrans("0123456789()", "⁰¹²³⁴⁵⁶⁷⁸⁹⁽⁾")


@lru_cache(maxsize=256)  # one class per expression: k.nngp == k.nngp
def kernel(expr, kind, depth):
    """The depth-``depth`` kernel ``expr`` (``kind`` "K" or "Theta"): itself up to :data:`EXPANDED_DEPTH`, else
    compact as K^(L)_12(...) / Θ^(L)_12(...)."""
    if depth <= EXPANDED_DEPTH:
        return expr
    pretty = ("K" if kind == "K" else "Θ") + f"({depth})".translate(_SUPERSCRIPT) + "₁₂"
    latex = ("K" if kind == "K" else r"\Theta") + f"^{{({depth})}}_{{12}}"
    return compact(expr, f"{kind}_12^({depth})", pretty, latex)
