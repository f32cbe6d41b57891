"""Monte-Carlo oracle: ensembles of finite-width NumPy networks, their empirical NNGP and NTK, their training, and
learning-rate sweeps over widths (μTransfer)."""

from .data import Task, digits, teacher
from .features import layer_kernels
from .sweep import Optimum, Sweep, lr_sweep
from .mlp import MLP, Cache, EnsembleKernels, Params, empirical_kernels
from .train import Trajectory, train

__all__ = ["MLP", "Params", "Cache", "EnsembleKernels", "empirical_kernels", "layer_kernels", "Trajectory", "train",
           "lr_sweep", "Sweep", "Optimum", "Task", "teacher", "digits"]
