"""Monte-Carlo oracle: ensembles of finite-width NumPy networks, their empirical NNGP and NTK, and their training."""

from .features import layer_kernels
from .mlp import MLP, Cache, EnsembleKernels, Params, empirical_kernels
from .train import Trajectory, train

__all__ = ["MLP", "Params", "Cache", "EnsembleKernels", "empirical_kernels", "layer_kernels", "Trajectory", "train"]
