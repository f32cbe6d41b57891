"""theory: derive the formulas of wide-network theory, export them as LaTeX, verify them on finite networks.

Symbolic: :func:`activation`, :func:`gaussian_expectation`, :func:`layer`, :func:`kernels` (SymPy objects that print
as LaTeX). Numeric: :func:`nngp`, :func:`nngp_ntk` (lambdified from the symbolic layer map). Finite networks:
:mod:`theory.montecarlo`. Claims and ``theory verify``: :mod:`theory.claims`. Export: :mod:`theory.latex`.
"""

from . import claims, latex, montecarlo, symbols
from .activations import Activation, activation
from .gaussian import dual_activation, gaussian_expectation, hermite_coefficients
from .kernels import Kernel, KernelRecursion, kernels, layer, nngp, nngp_ntk

__all__ = [
    "claims", "latex", "montecarlo", "symbols",
    "Activation", "activation",
    "gaussian_expectation", "hermite_coefficients", "dual_activation",
    "Kernel", "KernelRecursion", "kernels", "layer", "nngp", "nngp_ntk",
]
