"""Monte-Carlo oracle: ensembles of finite-width NumPy networks and their empirical NNGP and NTK."""

from .features import layer_kernels
from .mlp import MLP, Cache, EnsembleKernels, Params, empirical_kernels

__all__ = ["MLP", "Params", "Cache", "EnsembleKernels", "empirical_kernels", "layer_kernels"]
