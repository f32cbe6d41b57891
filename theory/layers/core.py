r"""The layer protocol: shapes, the infinite-width kernel state, the symbolic system, the finite network.

A layer is one object with three views of the same declaration (neural-tangents' conventions: NTK
parameterization, channel-last inputs of shape (N, *spatial, C)):

* its **kernel map** on the state (K(x,x), K(x,x'), K(x',x'), Θ(x,x')): a *pointwise* map, written once in SymPy
  in (q11, q12, q22, Θ) (:meth:`Layer.pointwise`) and lambdified, or a *linear* operator on the spatial kernel
  tensor (:meth:`Layer.linear`: shifts, window sums, means), applied alike to K and Θ;
* its **symbolic** step (:meth:`Layer.symbolic`), from which ``Network.kernels`` writes the layer-by-layer system;
* its **finite** forward and backward passes (:meth:`Layer.forward`, :meth:`Layer.backward`) and, for layers with
  parameters, their per-example gradients' inner products (:meth:`Layer.ntk_term`): the Monte-Carlo oracle.

The kernel state of two input sets X1 (N1 inputs) and X2 (N2) with spatial shape ``s`` (``()`` for vectors) holds
the pair tensors ``k``, ``t`` (NNGP, NTK) of shape (N1, N2, *pairs) and the self kernels ``c1``, ``c2`` of shape
(N1, *pairs), (N2, *pairs), where ``pairs`` is ``(*s, *s)`` (every pair of positions, "full") or ``s`` (the
positions' diagonal only, "diag": all that a Flatten readout needs, as in neural-tangents). The input state is
K⁰(x, x')(p, p') = x_p·x'_p'/C, Θ⁰ = 0.
"""

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy as sp

from ..kernels.engine import _variance
from ..numeric import lambdify
from ..symbols import q11, q12, q22

__all__ = ["Layer", "Shape", "State", "THETA"]

#: The NTK of the layer below in a pointwise map (the NNGP entries are q11, q12, q22).
THETA = sp.Symbol("Theta", real=True)
FULL, DIAG = "full", "diag"


@dataclass(frozen=True)
class Shape:
    """What flows between layers: the spatial shape, the channels (None: the width, infinite for the kernel),
    whether the features are Gaussian at infinite width (after a Dense/Conv), and whether they are zero-mean
    Gaussian *with fresh weights on top* (so that a sum with anything else adds kernels)."""

    spatial: tuple
    channels: object
    gaussian: bool
    fresh: bool


class State:
    """The kernel state of a block of input pairs (see the module): ``k``, ``t``, ``c1``, ``c2`` and the mode."""

    def __init__(self, k, t, c1, c2, spatial, mode, symmetric_rows=None):
        self.k, self.t, self.c1, self.c2 = k, t, c1, c2
        self.spatial, self.mode = spatial, mode
        #: for a block of a symmetric kernel: the block's rows' indices into the columns, whose pairs (i, i)
        #: are reset to the self kernel after each layer (exactly ρ = 1 there)
        self.symmetric_rows = symmetric_rows

    def replace(self, **kw):
        out = State(self.k, self.t, self.c1, self.c2, self.spatial, self.mode, self.symmetric_rows)
        for name, value in kw.items():
            setattr(out, name, value)
        return out

    def diagonal(self, c):
        """The variances K(x,x)(p,p) of a self kernel ``c`` of shape (N, *pairs), shape (N, *s)."""
        r = len(self.spatial)
        if self.mode == DIAG or r == 0:
            return c
        letters = "abcdefgh"[:r]
        return np.einsum(f"n{letters}{letters}->n{letters}", c)

    def to_mode(self, mode):
        """The state in ``mode``: full -> diag takes the positions' diagonal; diag -> full is impossible."""
        if mode == self.mode or not self.spatial:
            return self.replace(mode=mode)
        if mode == FULL:
            raise AssertionError("a diagonal state cannot become a full one (the requirements pass prevents it)")
        r = len(self.spatial)
        letters = "abcdefgh"[:r]

        def diag(a, lead):
            return None if a is None else np.einsum(f"{lead}{letters}{letters}->{lead}{letters}", a).copy()

        return State(diag(self.k, "nm"), diag(self.t, "nm"), diag(self.c1, "n"), diag(self.c2, "n"),
                     self.spatial, DIAG, self.symmetric_rows)

    def fix_diagonal(self):
        """For a symmetric kernel's block, K(x_i, x_i) := the self kernel (exactly), as the MLP engine does."""
        if self.symmetric_rows is not None:
            rows = np.arange(len(self.symmetric_rows))
            self.k[rows, self.symmetric_rows] = self.c1
        return self


@lru_cache(maxsize=256)
def _pointwise_function(k_expr, t_expr):
    return lambdify((q11, q12, q22, THETA), (k_expr, t_expr))


def apply_pointwise(state, k_expr, t_expr):
    """A pointwise map (K, Θ) -> (k_expr, t_expr) in (q11, q12, q22, Θ), on the pair tensors and the self kernels.

    q11 and q22 are the variances at the pair's two positions: for the pair tensor (i, j, p, p') those of x_i at p
    and of x_j at p'; for a self kernel (i, p, p') those of x_i at p and at p'."""
    f = _pointwise_function(k_expr, t_expr)
    r = len(state.spatial)
    full = state.mode == FULL and r > 0
    v1, v2 = state.diagonal(state.c1), state.diagonal(state.c2)

    def sides(va, vb):
        """Variances broadcast against a pair tensor (Na, Nb, *pairs) or, with vb None, a self kernel."""
        ones = (1,) * r if full else ()
        if vb is not None:
            return (va.reshape(va.shape[0], 1, *va.shape[1:], *ones),
                    vb.reshape(1, vb.shape[0], *ones, *vb.shape[1:]))
        return va.reshape(*va.shape, *ones), va.reshape(va.shape[0], *ones, *va.shape[1:])

    a, b = sides(v1, v2)
    k, t = f(a, state.k, b, state.t)
    c1 = f(*_self(sides(v1, None), state.c1))[0]
    c2 = f(*_self(sides(v2, None), state.c2))[0]
    return state.replace(k=np.array(k), t=np.array(t), c1=np.array(c1), c2=np.array(c2)).fix_diagonal()


def _self(ab, c):
    a, b = ab
    return a, c, b, np.zeros(())


class Layer:
    """Base class. Subclasses override what applies to them:

    * ``output_shape(shape)`` -- the Shape after the layer (raising ValueError naming the layer on a bad input);
    * ``requires(mode)`` -- the kernel mode (FULL or DIAG) the layer needs on its input to give ``mode``;
    * ``kernel(state)`` -- the numeric map on a :class:`State` (by default the pointwise map below);
    * ``pointwise()`` -- (K', Θ') as SymPy expressions in q11, q12, q22, Θ, for pointwise layers;
    * ``symbolic(system, state)`` -- the symbolic step (see :class:`theory.layers.network.System`), with
      ``operator_names()`` -> (text, LaTeX) naming a linear layer's operator;
    * ``parameter_shapes(shape_in, channels_out)`` -- the shapes of its parameters (none by default);
    * ``forward(params, a)`` -> (z, cache), ``backward(params, cache, delta)`` -> delta_in,
      ``ntk_term(params, cache1, cache2, delta1, delta2)`` -> (E, N1, N2) (the per-example gradients' products),
      ``grads(params, cache, delta)`` -> gradients shaped as ``params``.
    """

    parametric = False

    def output_shape(self, shape):
        return shape

    def requires(self, mode):
        return mode

    def pointwise(self):
        raise NotImplementedError

    def kernel(self, state):
        return apply_pointwise(state, *self.pointwise())

    def symbolic(self, system, state):
        return system.pointwise(self, state, *self.pointwise())

    def parameter_shapes(self, shape_in, channels_out):
        return []

    def forward(self, params, a):
        raise NotImplementedError

    def backward(self, params, cache, delta):
        raise NotImplementedError

    def __repr__(self):
        return f"{type(self).__name__}()"


def variance(value, name, layer, allow_none=False):
    """A weight or bias variance: a real number >= 0 within float64's comfortable range (None for no bias)."""
    if value is None and allow_none:
        return None
    try:
        return _variance(value, name)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{layer}: {err}") from None


def sigma(v):
    return 0.0 if v is None else v

