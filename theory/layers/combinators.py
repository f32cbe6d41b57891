r"""Residual blocks: out = shortcut(x) + α·branch(x) (FanOut(2) → parallel(branch, shortcut) → FanInSum).

Kernel map: K' = K_shortcut + α² K_branch, Θ' = Θ_shortcut + α² Θ_branch -- the cross-covariance of the two paths
vanishes at infinite width when one of them ends in fresh weights (a Dense or Conv, then only pooling), which the
shapes pass checks (He et al. 2016; Yang 2019; neural-tangents' FanInSum). ``alpha`` scales the branch, as
depth-μP residual networks do (out = x + α·branch(x), e.g. α = 1/√L).
"""

import numpy as np
import sympy as sp

from .core import FULL, Layer, Shape

__all__ = ["Residual"]


def modes(layers, out_mode):
    """The kernel mode each layer needs on its input, for ``out_mode`` after the last one."""
    out = []
    for layer in reversed(layers):
        out_mode = layer.requires(out_mode)
        out.append(out_mode)
    return out[::-1]


def run_kernel(layers, state):
    """The kernel state after ``layers`` (each given the mode it needs)."""
    for layer, mode in zip(layers, modes(layers, state.mode)):
        state = layer.kernel(state.to_mode(mode))
    return state


def walk_shapes(layers, shape):
    for layer in layers:
        shape = layer.output_shape(shape)
    return shape


class Residual(Layer):
    """``Residual(*branch, shortcut=(), alpha=1)``: out = shortcut(x) + α·branch(x); an empty shortcut is the
    identity. The two paths must give the same shape, and one of them must end in its own Dense/Conv (then only
    pooling; see the module)."""

    def __init__(self, *branch, shortcut=(), alpha=1.0):
        from .network import _as_layers
        self.branch = _as_layers(branch, "Residual branch")
        self.shortcut = _as_layers(shortcut, "Residual shortcut")
        if not self.branch:
            raise ValueError("Residual: the branch needs at least one layer")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.integer, np.floating)) \
                or not np.isfinite(alpha):
            raise TypeError(f"Residual: alpha must be a finite real number, got {alpha!r}")
        self.alpha = float(alpha)

    def __repr__(self):
        short = f", shortcut={self.shortcut!r}" if self.shortcut else ""
        return f"Residual({', '.join(map(repr, self.branch))}{short}, alpha={self.alpha})"

    def output_shape(self, shape):
        b, s = walk_shapes(self.branch, shape), walk_shapes(self.shortcut, shape)
        if (b.spatial, b.channels) != (s.spatial, s.channels):
            raise ValueError(f"Residual: the branch gives positions {b.spatial} with {b.channels or 'width'} "
                             f"channels, the shortcut {s.spatial} with {s.channels or 'width'}: they must match")
        private = Shape(shape.spatial, shape.channels, shape.gaussian, False)  # weights below are shared
        if not (walk_shapes(self.branch, private).fresh or walk_shapes(self.shortcut, private).fresh):
            raise ValueError("Residual: neither the branch nor the shortcut ends in a Dense or Conv, so the two paths "
                             "are correlated and their kernels do not add; end the branch with a Dense or Conv")
        return Shape(b.spatial, b.channels, b.gaussian and s.gaussian, b.fresh and s.fresh)

    def requires(self, mode):
        needs = [modes(path, mode)[0] for path in (self.branch, self.shortcut) if path]
        return FULL if FULL in needs else mode

    def kernel(self, state):
        b = run_kernel(self.branch, state)
        s = run_kernel(self.shortcut, state)
        a2 = self.alpha ** 2
        return state.replace(k=s.k + a2 * b.k, t=s.t + a2 * b.t, c1=s.c1 + a2 * b.c1, c2=s.c2 + a2 * b.c2,
                             spatial=b.spatial, mode=b.mode).fix_diagonal()

    def symbolic(self, system, state):
        b = system.run(self.branch, state)
        s = system.run(self.shortcut, state)
        return system.combine(self, s, b, sp.nsimplify(self.alpha) ** 2)
