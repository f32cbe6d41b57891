"""theory: derive the formulas of wide-network theory, export them as LaTeX, verify them on finite networks.

Symbolic: :func:`activation`, :func:`gaussian_expectation`, :func:`layer`, :func:`mlp_kernels` (SymPy objects that print
as LaTeX). Numeric: :func:`nngp`, :func:`nngp_ntk` (lambdified from the symbolic layer map).
Architectures beyond the MLP (Dense, Conv, pooling, LayerNorm, residual blocks): :mod:`theory.layers`. Finite
networks: :mod:`theory.montecarlo`. Theories: :mod:`theory.parameterizations` (abc, muP), :mod:`theory.dynamics` (NTK-GP
training dynamics), :mod:`theory.finite_width` (1/n corrections), :mod:`theory.signal` (signal propagation, order to chaos),
:mod:`theory.catapult` (large learning rates), :mod:`theory.scaling`,
:mod:`theory.double_descent` and :mod:`theory.deep_bootstrap` (solvable models of generalization). Claims and ``theory verify``: :mod:`theory.claims`.
Export: :mod:`theory.latex`.
"""

__version__ = "0.1.0"

from . import (catapult, claims, deep_bootstrap, distributed, double_descent, dynamics, finite_width, kernels, latex,
               layers, montecarlo, parameterizations, scaling, signal, symbols)
from .activations import Activation, activation
from .distributed import blocked_nngp_ntk, dask_nngp_ntk
from .double_descent import random_features_risk, ridgeless_risk
from .dynamics import MSEDynamics, cross_entropy_flow, nngp_posterior
from .finite_width import critical_points, criticality, exact_kurtosis, ntk_variance, output_kurtosis
from .gaussian import dual_activation, gaussian_expectation, hermite_coefficients
from .kernels import Kernel, KernelRecursion, layer, nngp, nngp_ntk
from .kernels import kernels as mlp_kernels
from .parameterizations import MF, MUP, MUP_ADAM, NTK, SP, abc
from .signal import SignalPropagation, order_chaos_line, phase_diagram, signal_propagation

__all__ = [
    "catapult", "claims", "deep_bootstrap", "distributed", "double_descent", "dynamics", "finite_width", "kernels",
    "latex", "layers", "montecarlo", "parameterizations", "scaling", "signal", "symbols",
    "Activation", "activation",
    "gaussian_expectation", "hermite_coefficients", "dual_activation",
    "Kernel", "KernelRecursion", "mlp_kernels", "layer", "nngp", "nngp_ntk", "blocked_nngp_ntk", "dask_nngp_ntk",
    "abc", "SP", "NTK", "MF", "MUP", "MUP_ADAM",
    "MSEDynamics", "cross_entropy_flow", "nngp_posterior",
    "output_kurtosis", "exact_kurtosis", "ntk_variance", "criticality", "critical_points",
    "SignalPropagation", "signal_propagation", "order_chaos_line", "phase_diagram",
    "ridgeless_risk", "random_features_risk",
]
