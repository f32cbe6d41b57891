r"""Pointwise layers: Activation (any activation :mod:`theory.activations` accepts) and LayerNorm.

* ``Activation(φ)``: K' = ⟨φ(u) φ(v)⟩_K, Θ' = ⟨φ'(u) φ'(v)⟩_K Θ, the Gaussian expectations derived by
  :func:`theory.gaussian.gaussian_expectation` (closed form, else Mehler's series) -- the maps of
  :func:`theory.kernels.layer` without the following Dense's σ_w², σ_b² (Lee et al. 2018; Jacot et al. 2018).
* ``LayerNorm()`` over the channel axis, on Gaussian features: K' = K(x,x')/√(K(x,x) K(x',x')),
  Θ' = Θ/√(K(x,x) K(x',x')) (per position pair; 0 where a variance is 0) -- neural-tangents' map; the finite
  layer centres and scales over the channels, which at infinite width only rescales.

Exactness near ρ = ±1: the MLP engine (recognised by :class:`theory.layers.Network`) carries the angle; here a
ReLU-like map sees θ = arccos ρ through ``Angle``'s arctan2 form, exact at ρ = ±1 exactly (a symmetric kernel's
diagonal is reset from the self kernel after every layer) but, as any map that reads θ from rounded entries,
with ~1e-8 relative errors for distinct inputs within 1e-16 of colinear. Smooth activations are exact to rounding.
"""

from functools import lru_cache

import numpy as np
import sympy as sp

from ..activations import activation as _activation
from ..gaussian import gaussian_expectation
from ..symbols import q11, q12, q22
from .core import THETA, Layer, Shape

__all__ = ["Activation", "Relu", "Erf", "Tanh", "Gelu", "LayerNorm"]


@lru_cache(maxsize=128)
def _activation_maps(act):
    return gaussian_expectation(act, act), gaussian_expectation(act.derivative, act.derivative) * THETA


class Activation(Layer):
    """φ applied to every unit; ``name_or_expr`` as :func:`theory.activations.activation` accepts it (a name such
    as ``"relu"`` or ``"leaky_relu(0.2)"``, or a SymPy expression in ``theory.symbols.z``)."""

    def __init__(self, name_or_expr):
        self.activation = _activation(name_or_expr)
        if self.activation.parameters:
            raise ValueError(f"Activation({self.activation.name}): give numbers for its parameters "
                             f"({', '.join(sorted(map(str, self.activation.parameters)))})")
        if self.activation.derivative.has(sp.DiracDelta):
            raise ValueError(f"Activation({self.activation.name}): its derivative is a Dirac delta, so the NTK is "
                             "infinite for colinear inputs")

    def __repr__(self):
        return f"Activation({self.activation.name!r})"

    def output_shape(self, shape):
        if not shape.gaussian:
            raise ValueError(f"{self!r}: its input is not Gaussian at infinite width -- put a Dense or Conv "
                             "before it (the kernel map averages over Gaussian pre-activations)")
        return Shape(shape.spatial, shape.channels, False, False)

    def pointwise(self):
        return _activation_maps(self.activation)

    def forward(self, params, a):
        phi, _ = self.activation.numpy
        return phi(a), a

    def backward(self, params, cache, delta):
        _, dphi = self.activation.numpy
        return delta * dphi(cache)[:, None]


def Relu():
    """``Activation("relu")``."""
    return Activation("relu")


def Erf():
    """``Activation("erf")``."""
    return Activation("erf")


def Tanh():
    """``Activation("tanh")``."""
    return Activation("tanh")


def Gelu():
    """``Activation("gelu")``: z (1 + erf(z/√2))/2."""
    return Activation("gelu")


_SCALE = sp.sqrt(q11 * q22)
_LAYERNORM = tuple(sp.Piecewise((0, sp.Eq(q11 * q22, 0)), (e / _SCALE, True)) for e in (q12, THETA))


class LayerNorm(Layer):
    """Normalisation over the channel axis (no learned scale or shift): y = (z - mean_c z)/√(var_c z + ε),
    ε = 1e-12 (neural-tangents' default) in the finite layer. Needs Gaussian inputs (after a Dense or Conv)."""

    eps = 1e-12

    def output_shape(self, shape):
        if not shape.gaussian:
            raise ValueError("LayerNorm(): its input is not Gaussian at infinite width (it must follow a Dense or "
                             "Conv, not the raw inputs or an Activation), where the map K/√(K11 K22) holds")
        return Shape(shape.spatial, shape.channels, True, False)

    def pointwise(self):
        return _LAYERNORM

    def forward(self, params, a):
        centred = a - a.mean(axis=-1, keepdims=True)
        scale = 1 / np.sqrt((centred * centred).mean(axis=-1, keepdims=True) + self.eps)
        y = centred * scale
        return y, (y, scale)

    def backward(self, params, cache, delta):
        y, scale = cache
        y, scale = y[:, None], scale[:, None]
        g = delta - delta.mean(axis=-1, keepdims=True)
        g -= y * (delta * y).mean(axis=-1, keepdims=True)
        return g * scale

