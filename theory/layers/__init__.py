r"""Architectures as data: a composable layer algebra whose every layer is both a derived kernel map and a finite
network (neural-tangents' conventions: NTK parameterization, channel-last inputs, ``sigma_w2 = W_std²``,
``sigma_b2 = b_std²``, ``sigma_b2=None`` = no bias).

>>> from theory.layers import serial, Dense, Relu, Conv, GlobalAvgPool, Residual, LayerNorm
>>> net = serial(Conv((3,)), Relu(), Residual(Conv((3,)), Relu(), Conv((3,))), GlobalAvgPool(), Dense())
>>> K, Theta = net.nngp_ntk(X)            # X of shape (N, P, C): the infinite-width NNGP and NTK, (N, N)
>>> net.kernels                           # the layer-by-layer system, SymPy (LaTeX in Jupyter)
>>> net.network(width=256).empirical_kernels(X, networks=50)   # finite networks of the same declaration

Files mirror neural-tangents' stax: :mod:`.linear` (Dense, Conv, AvgPool, GlobalAvgPool, Flatten),
:mod:`.elementwise` (Activation and aliases, LayerNorm), :mod:`.combinators` (Residual), :mod:`.network`
(serial, the engines, the symbolic system, finite networks), :mod:`.core` (the layer protocol and kernel state).
A new layer type is one class: its shape rule, its kernel map (pointwise in SymPy, or linear on the spatial
tensor), its finite forward/backward.
"""

from .combinators import Residual
from .core import Layer
from .elementwise import Activation, Erf, Gelu, LayerNorm, Relu, Tanh
from .linear import AvgPool, Conv, Dense, Flatten, GlobalAvgPool
from .network import FiniteNetwork, Network, System, serial

__all__ = ["Dense", "Activation", "Relu", "Erf", "Tanh", "Gelu", "Conv", "AvgPool", "GlobalAvgPool", "Flatten",
           "LayerNorm", "Residual", "serial", "Network", "FiniteNetwork", "System", "Layer"]
