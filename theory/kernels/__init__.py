r"""NNGP and NTK recursions of deep fully-connected networks, symbolic and numeric.

Convention: NTK parameterization (Jacot et al. 2018; Lee et al. 2018), inputs x, x' in R^d, L nonlinearities:

    K⁰(x, x') = σ_b² + σ_w² x·x'/d,                     Θ⁰ = K⁰,
    K^l = σ_b² + σ_w² ⟨φ(u) φ(v)⟩_{K^{l-1}},            K̇^l = σ_w² ⟨φ'(u) φ'(v)⟩_{K^{l-1}},
    Θ^l = K^l + K̇^l Θ^{l-1},                            l = 1..L,

where ⟨·⟩_K averages over (u, v) ~ N(0, [[K(x,x), K(x,x')], [K(x,x'), K(x',x')]]). The output's NNGP and NTK
are K^L and Θ^L.

The one-layer map is derived once (:func:`layer`); the depth-L kernel is its composition, symbolically
(:class:`KernelRecursion`) or numerically (:func:`nngp_ntk`, a loop over layers of the lambdified map).

Modules: :mod:`.maps` (the symbolic maps and their lambdified steps), :mod:`.engine` (tiles, threads, the
numbers), :mod:`.ccode` (the same maps printed as one C loop). ``theory.kernels`` is this module; the symbolic
recursion is :func:`kernels` in it (``theory.mlp_kernels`` at the top level).
"""

from .engine import Kernel, nngp, nngp_ntk
from .maps import KernelRecursion, Layer, kernels, layer
from . import ccode, engine, maps  # noqa: F401

__all__ = ["Layer", "layer", "KernelRecursion", "kernels", "Kernel", "nngp", "nngp_ntk"]
