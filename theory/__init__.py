"""theory: derive the formulas of wide-network theory, export them as LaTeX, verify them on finite networks."""

from .activations import Activation, activation
from .gaussian import dual_activation, gaussian_expectation, hermite_coefficients
from .kernels import Kernel, KernelRecursion, kernels, layer, nngp, nngp_ntk

__all__ = [
    "Activation", "activation",
    "gaussian_expectation", "hermite_coefficients", "dual_activation",
    "Kernel", "KernelRecursion", "kernels", "layer", "nngp", "nngp_ntk",
]
